#!/usr/bin/env bash
# CI's CUDA check, for machines without a GPU: the gotransfer_cuda build
# compiles, vets and links against only libcuda.so.1, the committed PTX is
# what `go generate` makes and ptxas accepts it, and the kernels with the Go
# code driving them pass the GPU tests on the CPU emulator (tag cudaemu).
# Nothing built with gotransfer_cuda is run here.
#
# Needs network access to the Debian mirror on its first run (see
# cuda-env.sh); later runs use the cache. nvcc and ptxas (Debian non-free
# nvidia-cuda-toolkit) are optional: their checks are skipped without them.
# CUDA_CHECK_EMU=0 skips the emulator tests (about a minute on 2 cores).
# Needs gcc's AddressSanitizer runtime (libasan, installed with Debian's gcc).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/cuda-env.sh

tags=gotransfer_cuda
t0=$SECONDS
step() { echo "cuda-check: $* ($((SECONDS - t0))s)" >&2; }

step "CUDA headers and stubs"
use_cuda_headers

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "go vet -tags $tags ./..."
go vet -tags "$tags" ./...
step "go build -tags $tags ./..."
go build -tags "$tags" ./...
step "go test -c -tags $tags ./model/resnet"
go test -c -tags "$tags" -o "$tmp/resnet.test" ./model/resnet
go build -tags "$tags" -o "$tmp/predict" ./cmd/predict

# The binaries may need the driver's libcuda.so.1 and nothing else from
# CUDA: no runtime, cuBLAS or cuDNN, whose versions a GPU machine's driver
# need not match. And they must carry the cuInit that keeps gorgonia.org/cu
# from exiting the process on a machine without a GPU (gpu_cuda.go).
for bin in "$tmp/resnet.test" "$tmp/predict"; do
  needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  cuda=$(echo "$needed" | grep -Ei 'cu|nv' || true)
  if [ "$cuda" != "libcuda.so.1" ]; then
    echo "cuda-check: $(basename "$bin") needs CUDA libraries [$(echo $cuda)], want exactly libcuda.so.1" >&2
    exit 1
  fi
  go tool nm "$bin" >"$tmp/nm"
  if ! grep -q ' T cuInit$' "$tmp/nm"; then
    echo "cuda-check: $(basename "$bin") does not define cuInit (see gpu_cuda.go)" >&2
    exit 1
  fi
  step "$(basename "$bin") needs: $(echo $needed)"
done

ptx=model/resnet/kernels/resnet_sm80.ptx
if command -v nvcc >/dev/null; then
  release=$(nvcc --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
  if [ "$release" = "11.8" ]; then
    step "regenerating the PTX with nvcc $release"
    # The go:generate line, run on a copy of the kernels.
    gen=$(sed -n 's|^//go:generate ||p' model/resnet/gpu_cuda.go)
    mkdir -p "$tmp/gen" && cp -r model/resnet/kernels "$tmp/gen/"
    (cd "$tmp/gen" && eval "$gen")
    if ! cmp -s "$tmp/gen/$(basename "$(dirname "$ptx")")/$(basename "$ptx")" "$ptx"; then
      echo "cuda-check: $ptx is stale: run 'go generate -tags $tags ./model/resnet' and commit it" >&2
      exit 1
    fi
  else
    step "skipping the PTX comparison: nvcc $release, the PTX is committed from 11.8"
  fi
else
  step "skipping the PTX comparison: no nvcc"
fi
if command -v ptxas >/dev/null; then
  for arch in sm_80 sm_90; do
    step "ptxas -arch=$arch"
    ptxas -arch=$arch -o "$tmp/resnet_$arch.cubin" "$ptx"
  done
else
  step "skipping ptxas: not installed"
fi

if [ "${CUDA_CHECK_EMU:-1}" != 0 ]; then
  # Under AddressSanitizer, with the kernels' C++ instrumented too (go's
  # -asan does not add it to CXXFLAGS), so that a kernel reading or writing
  # past a buffer fails here instead of faulting on a GPU.
  step "GPU tests on the CPU emulator, with AddressSanitizer (go test -asan -tags cudaemu)"
  CGO_CXXFLAGS="-g -O1 -fsanitize=address" go test -asan -count=1 -tags cudaemu -run 'GPU' ./model/resnet
fi
step "ok"
