#!/usr/bin/env python3
"""Writes the golden HDF5 files of package hdf5's tests, with h5py.

    /usr/bin/python3 internal/hdf5/testdata/make.py   # Debian: python3-h5py

The files are committed, so the tests run without Python; rerun this only to
change them (h5py 3.7 / HDF5 1.10.8 wrote the committed ones). What each
holds is what hdf5_test.go expects: keep the two in step.

  small.h5    h5py's defaults (libver 'earliest', what Keras' legacy
              save_weights writes): nested old-style groups, a group of 12
              (several symbol table nodes), string attributes fixed-length,
              variable-length and split Keras-style into name0, name1; a group
              with 40 attributes (its object header needs a continuation);
              float32, float64, scalar, empty and compact datasets; and what
              the reader must refuse: chunked, integer and big-endian
              datasets, a soft link.
  wide.h5     a group of 300 hard links: a B-tree of depth 1 over many
              symbol table nodes.
  latest.h5   libver 'latest': superblock 3, "OHDR" object headers (the
              root's grows into "OCHK" continuation blocks), groups of link
              messages, attribute messages 3; a group of 20 links kept in a
              fractal heap (dense storage, refused).
  userblock.h5  a 512-byte user block before the superblock.
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def strings(values):
    """Fixed-length byte strings, as Keras stores layer_names."""
    return np.array([v.encode("utf8") for v in values])


def compact(group, name, data):
    space = h5py.h5s.create_simple(data.shape)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    d = h5py.h5d.create(group.id, name.encode(), h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
    d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data, dtype="<f4"))


def common(f):
    f.attrs["names"] = strings(["conv1", "bn_conv1", "fc1000"])
    f.attrs["backend"] = np.bytes_(b"tensorflow")  # scalar, fixed-length
    f.attrs["keras_version"] = b"2.2.4"  # scalar: h5py 3 writes bytes as variable-length
    f.attrs["label"] = "café"  # scalar, variable-length UTF-8
    f.attrs["pi"] = np.float32(3.25)  # not a string
    c = f.create_group("a/b/c")
    c.create_dataset("kernel:0", data=np.arange(6, dtype="<f4").reshape(2, 3) / 4)
    f["a"].attrs["weight_names"] = strings(["b/c/kernel:0"])
    compact(f, "compact", np.array([1.5, -2, 3, 1e-3]))
    f.create_dataset("chunked", data=np.ones((4, 4), "<f4"), chunks=(2, 2))


def small():
    with h5py.File(os.path.join(HERE, "small.h5"), "w") as f:
        common(f)
        for i, part in enumerate(np.array_split(strings(["l%d" % i for i in range(7)]), 3)):
            f.attrs["layers%d" % i] = part
        f.attrs["vlen_list"] = ["x", "yz"]
        f.create_dataset("f64", data=np.array([0.1, -2.5, 1e300], "<f8"))
        f.create_dataset("scalar", data=np.float32(7))
        f.create_dataset("empty", shape=(0, 3), dtype="<f4")
        f.create_dataset("int", data=np.arange(3, dtype="<i4"))
        f.create_dataset("be", data=np.arange(3, dtype=">f4"))
        f["soft"] = h5py.SoftLink("/a")
        m = f.create_group("many")
        for i in range(12):
            m.create_dataset("d%02d" % i, data=np.float32(i))
        g = f.create_group("attrs")
        for i in range(40):
            g.attrs["attr%02d" % i] = strings(["value of attribute %d" % i])


def wide():
    with h5py.File(os.path.join(HERE, "wide.h5"), "w") as f:
        g = f.create_group("g")
        targets = [f.create_dataset("t%d" % i, data=np.float32(i)) for i in range(3)]
        for i in range(300):
            g["n%03d" % i] = targets[i % 3]


def latest():
    with h5py.File(os.path.join(HERE, "latest.h5"), "w", libver="latest") as f:
        common(f)
        d = f.create_group("dense")
        for i in range(20):
            d["x%02d" % i] = f["compact"]


def userblock():
    with h5py.File(os.path.join(HERE, "userblock.h5"), "w", userblock_size=512) as f:
        f.create_dataset("x", data=np.array([1, 2, 3], "<f4"))


if __name__ == "__main__":
    small()
    wide()
    latest()
    userblock()
