#!/usr/bin/env python3
"""Write Keras ResNet50 ImageNet weights as the .npz this project loads.

Optional: the project reads the official .h5 files directly (resnet.Load,
backbone.weights, predict --weights), with the same mapping, whose reference
is model/resnet/keras_h5.go; keep the two in step (TestKerasH5Layout checks
them against each other). This script is for those who want the .npz (for
numpy), an md5 check, or an export from a live Keras model.

From the official weight files, with h5py alone (no TensorFlow):

    python3 scripts/export_keras_resnet50.py resnet50_weights_tf_dim_ordering_tf_kernels.h5 resnet50.npz
    python3 scripts/export_keras_resnet50.py resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 resnet50_notop.npz

or from a live Keras model, where TensorFlow / Keras is installed (the
source is then an .h5 for keras.applications.ResNet50(weights=...), or
"imagenet" to let Keras download it):

    python3 scripts/export_keras_resnet50.py --from-keras imagenet resnet50.npz

Official files, and the md5 this script checks:

    tf.keras.applications.ResNet50 (storage.googleapis.com/tensorflow/keras-applications/resnet/)
      resnet50_weights_tf_dim_ordering_tf_kernels.h5        2cb95161c43110f7111970584f804107
      resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5  4d473c1dd8becc155b73f8504c6f6626
    older keras_applications/resnet50.py (github.com/fchollet/deep-learning-models/releases/download/v0.2/)
      resnet50_weights_tf_dim_ordering_tf_kernels.h5        a7b3fe01876f51b976af0dea6bc144eb
      resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5  a268eb855778b3df3c7506639542a6af

Other files are converted with a warning. The .npz holds one float32 array
per weight, keyed by Keras name: conv1_conv/kernel (7, 7, 3, 64) HWIO,
conv1_conv/bias, conv1_bn/{gamma,beta,moving_mean,moving_variance}, ...,
conv5_block3_3_bn/..., and predictions/{kernel,bias} with the top.

The files use Keras' legacy HDF5 weights layout: the root attribute
layer_names lists the layers in order, each layer's group has an attribute
weight_names, and each weight is a dataset at that name inside the group.
An attribute too large for an HDF5 header is split into name0, name1, ...
The older release names layers Caffe-style (conv1, bn_conv1, res2a_branch2a,
bn2a_branch1, fc1000); they are renamed to today's names.

Needs numpy and h5py (Debian: python3-numpy python3-h5py).
"""
import argparse
import hashlib
import re
import sys

import numpy as np

KNOWN_MD5 = {
    "2cb95161c43110f7111970584f804107": "resnet50_weights_tf_dim_ordering_tf_kernels.h5 (tf.keras)",
    "4d473c1dd8becc155b73f8504c6f6626": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 (tf.keras)",
    "a7b3fe01876f51b976af0dea6bc144eb": "resnet50_weights_tf_dim_ordering_tf_kernels.h5 (older keras_applications/resnet50.py)",
    "a268eb855778b3df3c7506639542a6af": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 (older keras_applications/resnet50.py)",
}

STAGES = [(2, 64, 3), (3, 128, 4), (4, 256, 6), (5, 512, 3)]

# Each layer kind's weights in Keras order, and the names other Keras
# versions gave them (Keras 1 called the moving variance running_std).
ROLES = {
    "conv": [("kernel", ("kernel", "W")), ("bias", ("bias", "b"))],
    "bn": [
        ("gamma", ("gamma",)),
        ("beta", ("beta",)),
        ("moving_mean", ("moving_mean", "running_mean")),
        ("moving_variance", ("moving_variance", "running_std", "running_var")),
    ],
}
ROLES["dense"] = ROLES["conv"]


def expected(width):
    """Keras name -> shape for a ResNet50 whose stem has `width` channels."""
    out = {}

    def conv(name, k, cin, cout):
        out[name + "_conv/kernel"] = (k, k, cin, cout)
        out[name + "_conv/bias"] = (cout,)
        for r in ("gamma", "beta", "moving_mean", "moving_variance"):
            out[f"{name}_bn/{r}"] = (cout,)

    conv("conv1", 7, 3, width)
    cin = width
    for stage, filters, blocks in STAGES:
        f = filters * width // 64
        for b in range(1, blocks + 1):
            name = f"conv{stage}_block{b}"
            if b == 1:
                conv(name + "_0", 1, cin, 4 * f)
            conv(name + "_1", 1, cin, f)
            conv(name + "_2", 3, f, f)
            conv(name + "_3", 1, f, 4 * f)
            cin = 4 * f
    return out


def modern_name(layer):
    """Today's Keras layer name for a layer of either release."""
    if layer == "conv1":
        return "conv1_conv"
    if layer == "bn_conv1":
        return "conv1_bn"
    if layer == "fc1000":
        return "predictions"
    m = re.fullmatch(r"(res|bn)(\d)([a-z])_branch(1|2[abc])", layer)
    if m:
        kind, stage, block, branch = m.groups()
        k = "0" if branch == "1" else str("abc".index(branch[1]) + 1)
        return f"conv{stage}_block{ord(block) - ord('a') + 1}_{k}_{'conv' if kind == 'res' else 'bn'}"
    return layer


def kind_of(layer):
    if layer == "predictions":
        return "dense"
    if layer.endswith("_conv"):
        return "conv"
    if layer.endswith("_bn"):
        return "bn"
    return None


def role_of(weight_name, kind):
    base = weight_name.split(":")[0]
    for role, aliases in ROLES[kind]:
        for a in aliases:
            if base == a or base.endswith("/" + a) or base.endswith("_" + a):
                return role
    return None


def read_attr(group, name):
    """An attribute Keras may have split into chunks name0, name1, ..."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values.extend(group.attrs[f"{name}{i}"])
            i += 1
        if i == 0:
            return None
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def from_h5(path):
    import h5py

    arrays = {}
    with h5py.File(path, "r") as f:
        g = f
        if read_attr(g, "layer_names") is None and "model_weights" in f:
            g = f["model_weights"]  # a whole model saved by model.save()
        layers = read_attr(g, "layer_names")
        if layers is None:
            raise SystemExit(
                f"{path}: no 'layer_names' attribute: not Keras' legacy HDF5 weights layout "
                "(a Keras 3 .weights.h5? load it into keras.applications.ResNet50 and use --from-keras)")
        old = False
        for layer in layers:
            names = read_attr(g[layer], "weight_names") if layer in g else None
            if not names:
                continue
            new = modern_name(layer)
            old |= new != layer
            kind = kind_of(new)
            if kind is None:
                raise SystemExit(f"{path}: layer {layer!r} has weights but is not a ResNet50 convolution, BatchNorm or 'predictions' layer")
            roles = [role_of(n, kind) for n in names]
            order = [r for r, _ in ROLES[kind]]
            if len(names) != len(order):
                raise SystemExit(f"{path}: layer {layer!r} has {len(names)} weights {names}, want {len(order)} ({', '.join(order)})")
            if None in roles or sorted(roles) != sorted(order):
                roles = order  # unrecognised names: Keras' own loader goes by position too
            for n, r in zip(names, roles):
                arrays[f"{new}/{r}"] = np.asarray(g[layer][n], dtype=np.float32)
    return arrays, old


def from_keras(source, notop):
    try:
        import keras
    except ImportError:
        from tensorflow import keras
    model = keras.applications.ResNet50(weights=source, include_top=not notop)
    arrays = {}
    for w in model.weights:
        name = getattr(w, "path", None) or w.name
        arrays[name[:-2] if name.endswith(":0") else name] = np.asarray(w.numpy(), dtype=np.float32)
    return arrays


def check(arrays, source):
    """Every tensor a ResNet50 of this width has, with its shape."""
    stem = arrays.get("conv1_conv/kernel")
    if stem is None or stem.ndim != 4 or stem.shape[:3] != (7, 7, 3):
        raise SystemExit(f"{source}: tensor 'conv1_conv/kernel' missing or not (7, 7, 3, width): not a ResNet50")
    want = expected(stem.shape[3])
    for name, shape in want.items():
        if name not in arrays:
            raise SystemExit(f"{source}: tensor {name!r} missing")
        if arrays[name].shape != shape:
            raise SystemExit(f"{source}: tensor {name!r}: want shape {shape}, got {arrays[name].shape}")
    extra = sorted(set(arrays) - set(want) - {"predictions/kernel", "predictions/bias"})
    if extra:
        raise SystemExit(f"{source}: unexpected tensor {extra[0]!r}: not a Keras ResNet50")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="Keras .h5 weights file (or, with --from-keras, 'imagenet')")
    ap.add_argument("out", help="the .npz to write")
    ap.add_argument("--notop", action="store_true", help="leave out the ImageNet 'predictions' layer")
    ap.add_argument("--from-keras", action="store_true", help="build keras.applications.ResNet50 with these weights (needs TensorFlow/Keras)")
    a = ap.parse_args()

    if a.source != "imagenet":
        with open(a.source, "rb") as f:
            md5 = hashlib.file_digest(f, "md5").hexdigest() if hasattr(hashlib, "file_digest") else hashlib.md5(f.read()).hexdigest()
        if md5 in KNOWN_MD5:
            print(f"{a.source}: {KNOWN_MD5[md5]}, md5 {md5}")
        else:
            print(f"{a.source}: WARNING: md5 {md5} is not one of the official Keras ResNet50 files; converting anyway", file=sys.stderr)

    if a.from_keras:
        arrays = from_keras(a.source, a.notop)
    else:
        arrays, old = from_h5(a.source)
        if old:
            print(f"{a.source}: Caffe-style layer names (the older keras_applications/resnet50.py), renamed. "
                  "That Keras model applied BatchNorm epsilon 1e-3; this project applies tf.keras' 1.001e-5, "
                  "so expect small differences from that old model's outputs.")
    if a.notop:
        arrays.pop("predictions/kernel", None)
        arrays.pop("predictions/bias", None)
    check(arrays, a.source)
    np.savez(a.out, **arrays)
    top = f"{arrays['predictions/kernel'].shape[1]} classes" if "predictions/kernel" in arrays else "no top"
    print(f"wrote {len(arrays)} arrays to {a.out}: width {arrays['conv1_conv/kernel'].shape[3]}, {top}")


if __name__ == "__main__":
    main()
