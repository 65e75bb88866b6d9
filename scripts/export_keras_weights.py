#!/usr/bin/env python3
"""Write a Keras ResNet50's weights as the .npz this project loads.

The .npz holds one array per weight, keyed by its Keras name:
conv1_conv/kernel (7, 7, 3, 64) in Keras' HWIO layout, conv1_conv/bias,
conv1_bn/{gamma,beta,moving_mean,moving_variance}, ..., conv5_block3_3_bn/...,
and, for a model with its ImageNet top, predictions/{kernel,bias}.

Usage, on a machine with TensorFlow / Keras:

    python3 scripts/export_keras_weights.py resnet50.npz            # with the top
    python3 scripts/export_keras_weights.py --notop resnet50_notop.npz

which amounts to (Keras 3; on Keras 2 use w.name without the ':0'):

    model = keras.applications.ResNet50(weights="imagenet")
    np.savez(path, **{w.path: w.numpy() for w in model.weights})

Keras 3 names weights "<layer>/<variable>" already; Keras 2 names them
"<layer>/<variable>:0", which this script strips.
"""
import argparse

import numpy as np


def weight_name(w):
    name = getattr(w, "path", None) or w.name
    return name[:-2] if name.endswith(":0") else name


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="the .npz to write")
    ap.add_argument("--notop", action="store_true", help="without the ImageNet 'predictions' layer")
    a = ap.parse_args()
    try:
        import keras
    except ImportError:
        from tensorflow import keras
    model = keras.applications.ResNet50(weights="imagenet", include_top=not a.notop)
    arrays = {weight_name(w): np.asarray(w.numpy(), dtype=np.float32) for w in model.weights}
    np.savez(a.out, **arrays)
    print(f"wrote {len(arrays)} arrays to {a.out}")


if __name__ == "__main__":
    main()
