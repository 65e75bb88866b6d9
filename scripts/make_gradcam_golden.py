#!/usr/bin/env python3
"""Make the Grad-CAM reference data in model/gradcam/testdata/.

The narrow torchvision ResNet50 of make_torchvision_golden.py (its weights,
model/resnet/testdata/torchvision_w8_s64/weights.pth) with a seeded dense
head (256 -> 32 -> 16 -> 3, ReLU) on top of its pooled features; Grad-CAM
computed as pytorch-grad-cam and Keras' example compute it: autograd of a
class's logit with respect to the last block's output (layer4), the spatial
mean of that gradient as each channel's weight, ReLU of the weighted sum,
divided by its maximum. Everything in float64 from float32 parameters. The
script writes, into the output folder:

    inputs.npy        (N, S, S, 3) float32 NHWC, 'torch'-preprocessed
    dense_<l>_kernel.npy, dense_<l>_bias.npy
                      the head, Keras layout (in, out), float32
    heatmaps.npy      (N, classes, rows, cols) float32, each in [0, 1]
    logits.npy        (N, classes) float32
    meta.json         what was made and with which versions

Needs python3-torch, python3-torchvision, python3-numpy and python3-pil.
Usage:

    python3 scripts/make_gradcam_golden.py model/gradcam/testdata/torch_w8_s160
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
from make_torchvision_golden import MEAN, STD, NarrowResNet50, load_image  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output directory")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--hidden", default="32,16")
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2)
    a = ap.parse_args()
    weights = os.path.join(ROOT, "model", "resnet", "testdata", "torchvision_w8_s64", "weights.pth")
    state = torch.load(weights)
    width = state["conv1.weight"].shape[0]
    net = NarrowResNet50(width, state["fc.weight"].shape[0]).double()
    net.load_state_dict(state)
    net.eval()

    torch.manual_seed(a.seed)
    sizes = [8 * width * 4] + [int(h) for h in a.hidden.split(",")] + [a.classes]
    layers = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        with torch.no_grad():  # float32 values, so that Go holds the same
            lin.weight.uniform_(-0.4, 0.4)
            lin.bias.uniform_(-0.2, 0.2)
            lin.weight.copy_(lin.weight.float().double())
            lin.bias.copy_(lin.bias.float().double())
        layers.append(lin)
    head = nn.Sequential(*sum(([l, nn.ReLU()] for l in layers[:-1]), []), layers[-1]).double()

    # The cat and its mirror image, on one side of a grey canvas, so that
    # the maps have somewhere to be.
    cat = load_image(os.path.join(ROOT, "dataset", "testdata", "chelsea.png"), a.size // 2)
    imgs = []
    for img in (cat, cat[:, ::-1]):
        canvas = np.full((a.size, a.size, 3), 128.0)
        canvas[a.size // 4 : a.size // 4 + a.size // 2, : a.size // 2] = img
        imgs.append(canvas)
    x = ((np.stack(imgs) / 255 - MEAN) / STD).astype(np.float32)

    maps = {}
    net.layer4.register_forward_hook(lambda _m, _i, out: maps.__setitem__("a", out))
    heatmaps, logits_all = [], []
    for i in range(len(x)):
        xi = torch.from_numpy(x[i : i + 1].astype(np.float64)).permute(0, 3, 1, 2)
        feats_map = None
        row = []
        for c in range(a.classes):
            net.zero_grad()
            _ = net(xi)
            feats_map = maps["a"]
            feats_map.retain_grad()
            logits = head(torch.flatten(net.avgpool(feats_map), 1))
            logits[0, c].backward()
            alpha = feats_map.grad.mean(dim=(2, 3), keepdim=True)
            cam = torch.relu((alpha * feats_map).sum(dim=1))[0].detach().numpy()
            row.append(cam / cam.max() if cam.max() > 0 else cam)
        heatmaps.append(row)
        logits_all.append(logits.detach().numpy()[0])

    os.makedirs(a.out, exist_ok=True)
    np.save(os.path.join(a.out, "inputs.npy"), x)
    for l, lin in enumerate(layers):
        np.save(os.path.join(a.out, f"dense_{l}_kernel.npy"), lin.weight.detach().numpy().T.astype(np.float32))
        np.save(os.path.join(a.out, f"dense_{l}_bias.npy"), lin.bias.detach().numpy().astype(np.float32))
    heat = np.array(heatmaps, dtype=np.float32)
    np.save(os.path.join(a.out, "heatmaps.npy"), heat)
    np.save(os.path.join(a.out, "logits.npy"), np.array(logits_all, dtype=np.float32))
    meta = {
        "weights": "model/resnet/testdata/torchvision_w8_s64/weights.pth",
        "size": a.size,
        "hidden": sizes[1:-1],
        "classes": a.classes,
        "seed": a.seed,
        "grid": list(heat.shape[2:]),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {a.out}: heatmaps {heat.shape}")
    for i in range(len(heat)):
        for c in range(a.classes):
            print(f"image {i} class {c}:\n{np.array2string(heat[i, c], precision=2)}")


if __name__ == "__main__":
    main()
