#!/usr/bin/env python3
"""The PyTorch peer of `predict --checkpoint RUN IMAGE`, for BENCHMARKS.md.

  predict_peer_torch.py save MODEL.pt          # once: ResNet50 + the Keras head, random weights
  predict_peer_torch.py predict MODEL.pt IMAGE # what is timed: start, load, classify one image

The model is torchvision's ResNet50 with the dense head of this project
(2048-1024-1024-1024-512-2, ReLU, softmax) in place of fc, saved as one
state dict: what a PyTorch user's single-image script loads. Time the
second form end to end (`time`), as `predict` is timed.
"""
import sys

import torch
import torchvision
from PIL import Image


def model():
    m = torchvision.models.resnet50()
    layers, width = [], 2048
    for h in (1024, 1024, 1024, 512):
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    m.fc = torch.nn.Sequential(*layers, torch.nn.Linear(width, 2), torch.nn.Softmax(dim=1))
    return m.eval()


def main():
    torch.set_num_threads(2)
    if sys.argv[1] == "save":
        torch.save(model().state_dict(), sys.argv[2])
        return
    m = model()
    m.load_state_dict(torch.load(sys.argv[2]))
    t = torchvision.transforms.Compose([
        torchvision.transforms.Resize((224, 224)),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    x = t(Image.open(sys.argv[3]).convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        p = m(x)[0]
    print(sys.argv[3], " ".join(f"{v:.4f}" for v in p.tolist()))


if __name__ == "__main__":
    main()
