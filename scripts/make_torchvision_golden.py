#!/usr/bin/env python3
"""Make the torchvision ResNet50 parity data in model/resnet/testdata/.

A narrow torchvision ResNet50 -- torchvision's own Bottleneck blocks and
_make_layer, so the state-dict names and the v1.5 layout (stride on the 3x3
convolution) are torchvision's, with `width` channels in the stem instead of
64 -- gets fixed-seed weights, random BatchNorm affine parameters and
BatchNorm statistics calibrated on a batch (so activations keep a sane scale
through all sixteen blocks), and a 10-class fc. The script writes:

    weights.pth      torch.save(model.state_dict()), PyTorch's zip format
    inputs.npy       (N, S, S, 3) float32 NHWC, 'torch'-preprocessed
    features.npy     (N, 4*8*width) pooled features
    logits.npy       (N, classes) fc outputs
    probs.npy        (N, classes) softmax of the logits
    act_<layer>.npy  NHWC activations: conv1_relu, pool1_pool, the first
                     block of each stage and the last block, Keras-named
    meta.json        what was made and with which versions

References are computed in float64 from the float32 weights, so they are
the exact network and the Go engine's float32 error is all that is measured.

Needs Debian's python3-torch, python3-torchvision, python3-numpy and
python3-pil. Usage:

    python3 scripts/make_torchvision_golden.py [--width 8] [--size 64] \\
        model/resnet/testdata/torchvision_w8_s64
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import Bottleneck, ResNet

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float64)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float64)


class NarrowResNet50(nn.Module):
    """torchvision's ResNet50 with `width` stem channels instead of 64.

    Only the channel counts differ from ResNet.__init__; the layers are
    built by torchvision's own _make_layer and run by its _forward_impl, so
    names, strides and padding are the real thing.
    """

    def __init__(self, width=64, num_classes=1000):
        super().__init__()
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = ResNet._make_layer(self, Bottleneck, width, 3)
        self.layer2 = ResNet._make_layer(self, Bottleneck, 2 * width, 4, stride=2)
        self.layer3 = ResNet._make_layer(self, Bottleneck, 4 * width, 6, stride=2)
        self.layer4 = ResNet._make_layer(self, Bottleneck, 8 * width, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * Bottleneck.expansion, num_classes)

    def forward(self, x):
        return ResNet._forward_impl(self, x)


def check_layout():
    """At width 64 the narrow model must be torchvision's resnet50."""
    ref = {k: tuple(v.shape) for k, v in torchvision.models.resnet50().state_dict().items()}
    got = {k: tuple(v.shape) for k, v in NarrowResNet50(64).state_dict().items()}
    if ref != got:
        raise SystemExit("NarrowResNet50(64) does not match torchvision.models.resnet50()")


def load_image(path, size):
    from PIL import Image

    img = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output directory")
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--image", default=os.path.join(os.path.dirname(__file__), "..", "dataset", "testdata", "chelsea.png"))
    a = ap.parse_args()

    check_layout()
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    model = NarrowResNet50(a.width, a.classes)

    # Non-trivial BatchNorm affine parameters, so that folding them is tested.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)

    # Inputs: the cat, flipped, shifted in colour, and noise; then the
    # calibration batch is more of the same with other noise.
    cat = load_image(a.image, a.size)

    def batch(n, noise):
        imgs = [cat, cat[:, ::-1], np.clip(cat * 0.7 + 40, 0, 255)]
        while len(imgs) < n:
            imgs.append(rng.uniform(0, 255, cat.shape))
        x = np.stack(imgs[:n]) + rng.normal(0, noise, (n,) + cat.shape)
        x = np.clip(x, 0, 255)
        return ((x / 255 - MEAN) / STD).astype(np.float32)  # NHWC, 'torch'

    # Calibrate: in training mode with momentum None, BatchNorm's running
    # statistics become the calibration batch's averages.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(batch(16, 20.0)).permute(0, 3, 1, 2))
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1

    os.makedirs(a.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(a.out, "weights.pth"))

    x = batch(a.batch, 5.0)
    np.save(os.path.join(a.out, "inputs.npy"), x)

    # float64 references, tapped with Keras' layer names.
    ref = NarrowResNet50(a.width, a.classes).double()
    ref.load_state_dict(model.state_dict())
    ref.eval()
    acts = {}

    def tap(name):
        def hook(_m, _inp, out):
            acts[name] = out.detach().permute(0, 2, 3, 1).numpy().astype(np.float32)

        return hook

    ref.relu.register_forward_hook(tap("conv1_relu"))  # the stem's; blocks have their own
    ref.maxpool.register_forward_hook(tap("pool1_pool"))
    for s, layer in enumerate([ref.layer1, ref.layer2, ref.layer3, ref.layer4]):
        layer[0].register_forward_hook(tap(f"conv{s + 2}_block1_out"))
    ref.layer4[2].register_forward_hook(tap("conv5_block3_out"))
    pooled = {}
    ref.avgpool.register_forward_hook(lambda _m, _i, out: pooled.setdefault("f", torch.flatten(out, 1)))

    with torch.no_grad():
        logits = ref(torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2))
        feats = pooled["f"]
        probs = torch.softmax(logits, dim=1)

    np.save(os.path.join(a.out, "features.npy"), feats.numpy().astype(np.float32))
    np.save(os.path.join(a.out, "logits.npy"), logits.numpy().astype(np.float32))
    np.save(os.path.join(a.out, "probs.npy"), probs.numpy().astype(np.float32))
    for name, v in acts.items():
        np.save(os.path.join(a.out, f"act_{name}.npy"), v)

    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
    meta = {
        "variant": "torchvision",
        "width": a.width,
        "size": a.size,
        "batch": a.batch,
        "classes": a.classes,
        "seed": a.seed,
        "preprocess": "torch",
        "bn_epsilon": 1e-5,
        "params_trainable": params,
        "params_non_trainable": buffers,
        "params_total": params + buffers,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "taps": sorted(acts),
    }
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {a.out}: features peak {np.abs(feats.numpy()).max():.3g}, probs max {probs.numpy().max():.3g}")


if __name__ == "__main__":
    main()
