#!/usr/bin/env python3
"""PyTorch's figure for the same work as BenchmarkGPUFeatures: torchvision's
ResNet50 without its top (global average pool output, 2048 features),
224x224, FP32 with TF32 off (as the project's kernels), eval mode, no
gradients; images/s end to end (a host batch copied in each pass, as
Features does) and resident (the batch already on the GPU). cuDNN picks its
fastest algorithms (benchmark mode); NCHW and channels_last are both timed.

    python3 scripts/gpu_peer_torch.py [--batches 64 256] [--reps 10]

Prints one PEER line per figure. gpu-check's run.sh runs it when the
machine's python3 has torch and torchvision, so that the GPU figures come
with a peer's measured in the same sitting.
"""
import argparse
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    try:
        import torch
        import torchvision
    except ImportError as e:
        print(f"PEER SKIP torch: {e}")
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print("PEER SKIP torch: no CUDA device")
        return 0
    dev = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    model = torchvision.models.resnet50()
    model.fc = torch.nn.Identity()
    model.eval().to(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    for layout in ("nchw", "channels_last"):
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        m = model.to(memory_format=fmt)
        for n in args.batches:
            host = torch.randn(n, 3, 224, 224).contiguous(memory_format=fmt)
            if dev.type == "cuda":
                host = host.pin_memory()
            resident = host.to(dev)
            for mode in ("end to end", "resident"):
                with torch.inference_mode():
                    def step():
                        x = host.to(dev, non_blocking=True) if mode == "end to end" else resident
                        y = m(x)
                        if mode == "end to end":
                            y.cpu()
                    for _ in range(3):
                        step()
                    sync()
                    t0 = time.perf_counter()
                    for _ in range(args.reps):
                        step()
                    sync()
                    dt = time.perf_counter() - t0
                print(f"PEER torch {torch.__version__} {layout} FP32 (no TF32) batch {n} {mode}: "
                      f"{n * args.reps / dt:.0f} images/s on {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
