#!/usr/bin/env python3
"""Writes the small Keras-layout .h5 files of keras_h5_test.go, with h5py.

    /usr/bin/python3 model/resnet/testdata/make_keras_layout.py   # Debian: python3-h5py

Committed, so the name mapping is tested without Python. Not ResNet50s:
a few layers with tiny weights, each exercising one rule of the mapping
(kerasH5Tensors), which TestKerasH5Layout spells out.

  keras_layout.h5   the layers at the root, as save_weights writes them
  keras_model.h5    the same under model_weights, as model.save() does
  keras_dense.h5    a layer with weights that ResNet50 does not have
  keras_gzip.h5     a compressed (so chunked) weight, which Go does not read
"""
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def strings(values):
    return np.array([v.encode("utf8") for v in values])


def layout(g):
    layers = ["input_1", "conv1", "bn_conv1", "conv1_relu", "res2a_branch1",
              "conv2_block1_1_conv", "fc1000", "not_in_file"]
    # Split as Keras splits an attribute too big for an object header.
    g.attrs["layer_names0"] = strings(layers[:3])
    g.attrs["layer_names1"] = strings(layers[3:])
    g.attrs["backend"] = b"tensorflow"
    g.attrs["keras_version"] = b"2.2.4"

    def layer(name, weights, chunks=1):
        lg = g.create_group(name)
        for n, v in weights:
            lg.create_dataset(n, data=np.asarray(v, "<f4"))
        names = strings([n for n, _ in weights])
        if chunks == 1:
            # Without weights, an empty float64 array: np.asarray([]).
            lg.attrs["weight_names"] = names if len(names) else np.asarray([])
        else:
            for i, part in enumerate(np.array_split(names, chunks)):
                lg.attrs["weight_names%d" % i] = part

    layer("input_1", [])
    # Keras 1 names, the older release's Caffe-style layer names.
    layer("conv1", [("conv1_W:0", [[[[1, 2]]]]), ("conv1_b:0", [3, 4])])
    # Out of order: roles go by name.
    layer("bn_conv1", [("bn_conv1_running_std:0", [4]), ("bn_conv1_gamma:0", [1]),
                       ("bn_conv1_beta:0", [2]), ("bn_conv1_running_mean:0", [3])])
    layer("conv1_relu", [])
    # Nested, as Keras 2 names weights ("layer/kernel:0" inside the layer).
    layer("res2a_branch1", [("res2a_branch1/kernel:0", [[[[5]]]]), ("res2a_branch1/bias:0", [6])])
    # Names that say nothing: roles go by position.
    layer("conv2_block1_1_conv", [("w_a:0", [[[[7]]]]), ("w_b:0", np.float64([8]))])
    layer("fc1000", [("fc1000_W:0", [[9, 10]]), ("fc1000_b:0", [11, 12])], chunks=2)


def main():
    with h5py.File(os.path.join(HERE, "keras_layout.h5"), "w") as f:
        layout(f)
    with h5py.File(os.path.join(HERE, "keras_model.h5"), "w") as f:
        f.attrs["model_config"] = b"{}"
        layout(f.create_group("model_weights"))
    with h5py.File(os.path.join(HERE, "keras_dense.h5"), "w") as f:
        f.attrs["layer_names"] = strings(["dense_1"])
        g = f.create_group("dense_1")
        g.create_dataset("dense_1/kernel:0", data=np.ones((2, 2), "<f4"))
        g.attrs["weight_names"] = strings(["dense_1/kernel:0"])
    with h5py.File(os.path.join(HERE, "keras_gzip.h5"), "w") as f:
        f.attrs["layer_names"] = strings(["conv1_conv"])
        g = f.create_group("conv1_conv")
        g.create_dataset("conv1_conv/kernel:0", data=np.ones((7, 7, 3, 1), "<f4"), compression="gzip")
        g.create_dataset("conv1_conv/bias:0", data=np.zeros(1, "<f4"))
        g.attrs["weight_names"] = strings(["conv1_conv/kernel:0", "conv1_conv/bias:0"])


if __name__ == "__main__":
    main()
