#!/usr/bin/env python3
"""Write a torchvision ResNet50 state dict (.pth) as the .npz this project loads.

The Go loader reads .pth files itself (resnet.Load, `predict --weights
resnet50-11ad3fa6.pth`); this script is the fallback, and the reference for
the mapping. Tensors take the package's Keras names, with Keras layouts:

    conv1.weight (64, 3, 7, 7) OIHW        -> conv1_conv/kernel (7, 7, 3, 64) HWIO
    bn1.weight, .bias                      -> conv1_bn/gamma, conv1_bn/beta
    bn1.running_mean, .running_var         -> conv1_bn/moving_mean, conv1_bn/moving_variance
    layerL.B.convK.weight, layerL.B.bnK.*  -> conv{L+1}_block{B+1}_{K}_conv/kernel, ..._bn/*
    layerL.0.downsample.0.weight, .1.*     -> conv{L+1}_block1_0_conv/kernel, ..._bn/*
    fc.weight (1000, 2048), fc.bias        -> predictions/kernel (2048, 1000), predictions/bias

num_batches_tracked is dropped. torchvision's convolutions have no bias, and
the .npz has none either. The array "variant/torchvision" (float32, [1])
records the variant, so the loader applies torchvision's layout (stride on
the 3x3 convolution), BatchNorm epsilon 1e-5 and 'torch' preprocessing.

Usage:

    python3 scripts/export_torchvision.py resnet50-11ad3fa6.pth resnet50_tv.npz

Official files (torchvision.models.ResNet50_Weights; the name's suffix is
the start of the file's sha256):

    resnet50-0676ba61.pth  IMAGENET1K_V1, top-1 76.13%
    resnet50-11ad3fa6.pth  IMAGENET1K_V2, top-1 80.86%

Needs numpy and torch. Only tensors are unpickled (weights_only=True) where
the installed torch supports it.
"""
import argparse
import hashlib
import re
import sys

import numpy as np

STAGES = [3, 4, 6, 3]
KNOWN = {
    "0676ba61": "resnet50-0676ba61.pth (IMAGENET1K_V1)",
    "11ad3fa6": "resnet50-11ad3fa6.pth (IMAGENET1K_V2)",
}
BN = [("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance")]


def mapping():
    """Yields (torchvision name, Keras name, transpose) for the backbone."""

    def conv(t_conv, t_bn, k):
        yield t_conv + ".weight", k + "_conv/kernel", True
        for t, kk in BN:
            yield f"{t_bn}.{t}", f"{k}_bn/{kk}", False

    yield from conv("conv1", "bn1", "conv1")
    for s, blocks in enumerate(STAGES):
        for b in range(blocks):
            p, k = f"layer{s + 1}.{b}.", f"conv{s + 2}_block{b + 1}"
            for i in (1, 2, 3):
                yield from conv(f"{p}conv{i}", f"{p}bn{i}", f"{k}_{i}")
            if b == 0:
                yield from conv(p + "downsample.0", p + "downsample.1", k + "_0")


def load_state_dict(path):
    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        sd = torch.load(path, map_location="cpu")
    for key in ("state_dict", "model"):
        if "conv1.weight" not in sd and isinstance(sd.get(key), dict):
            sd = sd[key]
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return {k: v.detach().cpu().numpy() for k, v in sd.items() if hasattr(v, "detach")}


def convert(sd):
    """Maps a state dict (name -> numpy array) to the project's arrays."""
    out = {}
    used = set()
    for t, k, transpose in mapping():
        if t not in sd:
            raise SystemExit(f"tensor {t!r} missing: not a torchvision ResNet50 state dict")
        a = np.asarray(sd[t], dtype=np.float32)
        out[k] = np.ascontiguousarray(a.transpose(2, 3, 1, 0) if transpose else a)
        used.add(t)
    if ("fc.weight" in sd) != ("fc.bias" in sd):
        raise SystemExit("fc layer incomplete: want both fc.weight and fc.bias")
    if "fc.weight" in sd:
        out["predictions/kernel"] = np.ascontiguousarray(np.asarray(sd["fc.weight"], dtype=np.float32).T)
        out["predictions/bias"] = np.asarray(sd["fc.bias"], dtype=np.float32)
        used |= {"fc.weight", "fc.bias"}
    extra = sorted(k for k in sd if k not in used and not k.endswith("num_batches_tracked"))
    if extra:
        raise SystemExit(f"unexpected tensor {extra[0]!r} (and {len(extra) - 1} more): not a torchvision ResNet50 state dict")
    out["variant/torchvision"] = np.ones(1, dtype=np.float32)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pth", help="torchvision ResNet50 state dict")
    ap.add_argument("out", help="the .npz to write")
    a = ap.parse_args()
    with open(a.pth, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    name = re.match(r"resnet50-([0-9a-f]{8})\.pth$", a.pth.rsplit("/", 1)[-1])
    if sha[:8] in KNOWN:
        print(f"{a.pth}: {KNOWN[sha[:8]]}, sha256 {sha}")
    elif name and name.group(1) in KNOWN:
        print(f"{a.pth}: WARNING: named like {KNOWN[name.group(1)]} but its sha256 is {sha}: corrupt or altered download?", file=sys.stderr)
    else:
        print(f"{a.pth}: not an official torchvision file (sha256 {sha}); converting anyway")
    arrays = convert(load_state_dict(a.pth))
    np.savez(a.out, **arrays)
    classes = arrays["predictions/kernel"].shape[1] if "predictions/kernel" in arrays else 0
    print(f"wrote {len(arrays)} arrays to {a.out}: width {arrays['conv1_conv/kernel'].shape[3]}, {classes} classes")


if __name__ == "__main__":
    main()
