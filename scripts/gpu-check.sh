#!/usr/bin/env bash
# Builds, here, a self-contained bundle that checks the CUDA backbone on a
# machine with an NVIDIA GPU and driver but no Go toolchain:
#
#   scripts/gpu-check.sh [OUTDIR]      (default bin/gpu-check)
#   then, on the GPU machine:  OUTDIR/run.sh
#
# OUTDIR holds
#   resnet.test.gz  the model/resnet tests built with -tags gotransfer_cuda,
#                 compressed (OpenBLAS's kernels for every CPU shrink well:
#                 40 to 11 MiB; the bundle travels with the repository to the
#                 GPU machine, 64 MiB in all)
#   testdata/     the golden folders the tests read
#   lib.tar.gz    only if the test binary needs shared libraries besides
#                 glibc, libgcc_s and the driver's libcuda.so.1 (OpenBLAS
#                 when built with -tags openblas_shared; by default it is
#                 linked in statically): run.sh unpacks them and puts them
#                 on LD_LIBRARY_PATH
#   run.sh        runs every GPU check (parity against the goldens, 1e-4 of
#                 the largest reference, FP32; parity against the CPU engine
#                 on a full-width 224x224 batch; images/s at batch 64 and
#                 256) and prints one GPU-CHECK line per check; exits non-zero
#                 if any check fails or is skipped
#   gpu_peer_torch.py  PyTorch's figures for the same work, run after the
#                 checks when the machine's python3 has torch (PEER lines;
#                 they do not change the exit status)
#   BUILD-INFO    the commit and settings it was built from
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/cuda-env.sh
use_cuda_headers

out=${1:-bin/gpu-check}
# The goldens come read-only (from shared/); make the old bundle removable.
[ -d "$out" ] && chmod -R u+w "$out"
rm -rf "$out"
mkdir -p "$out/lib" "$out/testdata"

go test -c -tags gotransfer_cuda -trimpath -ldflags='-s -w' -o "$out/resnet.test" ./model/resnet

cp scripts/gpu_peer_torch.py "$out/"
for f in model/resnet/testdata/*/features.npy; do
  cp -r "$(dirname "$f")" "$out/testdata/"
done
chmod -R u+w "$out/testdata"

# Everything ldd resolves except glibc's own libraries (the machine's glibc
# must be used with its own loader), libgcc_s (everywhere, and Debian's
# wants a newer glibc than the rest) and the CUDA driver.
ldd "$out/resnet.test" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | while read -r name path; do
  case "$name" in
  libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | libresolv.so.* | ld-linux* | libgcc_s.so.* | libcuda.so.*) ;;
  *) cp -L "$path" "$out/lib/$name" ;;
  esac
done
if ldd "$out/resnet.test" | grep -q 'not found'; then
  echo "gpu-check: the test binary needs a library that is not here:" >&2
  ldd "$out/resnet.test" | grep 'not found' >&2
  exit 1
fi

# The newest glibc symbol version anything in the bundle needs.
glibc=$(for f in "$out/resnet.test" "$out"/lib/*; do if [ -f "$f" ]; then objdump -T "$f"; fi; done |
  grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1)
libs=$(cd "$out/lib" && ls)
if [ -n "$libs" ]; then
  tar czf "$out/lib.tar.gz" -C "$out" lib
fi
rm -rf "$out/lib"
gzip -9 "$out/resnet.test"

{
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (plus uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(go version | cut -d' ' -f3), CUDA headers $(cat "$cuda_cache/VERSION" 2>/dev/null || echo '?')"
  echo "needs: glibc >= $glibc, an NVIDIA driver (libcuda.so.1) for CUDA 11.8 or newer, a GPU of compute capability >= 8.0"
  echo "bundled libraries: ${libs:-none (OpenBLAS linked statically)}"
} >"$out/BUILD-INFO"

cat >"$out/run.sh" <<EOF
#!/bin/sh
# Runs the CUDA backbone checks (see BUILD-INFO). Extra arguments go to the
# test binary. The full log goes to \$OUT/gpu-check.log when OUT is set,
# else next to this script.
here=\$(cd "\$(dirname "\$0")" && pwd)
cd "\$here" || exit 1
need=$glibc
have=\$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print \$2 }')
if [ -n "\$have" ] && [ "\$(printf '%s\n%s\n' "\$need" "\$have" | sort -V | head -n 1)" != "\$need" ]; then
  echo "gpu-check: glibc \$have here, the bundle needs \$need" >&2
  exit 1
fi
lib=\$here/lib
if [ -f lib.tar.gz ] && ! [ -d "\$lib" ]; then
  mkdir -p "\$lib" 2>/dev/null || lib=\$(mktemp -d)/lib
  tar xzf lib.tar.gz -C "\$(dirname "\$lib")" || exit 1
fi
bin=\$here/resnet.test
if ! [ -x "\$bin" ]; then
  gzip -dc resnet.test.gz >"\$bin" 2>/dev/null || { bin=\$(mktemp -d)/resnet.test && gzip -dc resnet.test.gz >"\$bin"; } || exit 1
  chmod +x "\$bin"
fi
log=\${OUT:-\$here}/gpu-check.log
mkdir -p "\$(dirname "\$log")"
LD_LIBRARY_PATH="\$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" GOTRANSFER_REQUIRE_GPU=1 \\
  "\$bin" -test.run GPU -test.bench GPU -test.benchtime 3s -test.timeout 8m -test.v "\$@" >"\$log" 2>&1
rc=\$?
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
grep '^GPU-CHECK' "\$log"
# The peer, in the same sitting: PyTorch on the same GPU, if it is there.
if command -v python3 >/dev/null && python3 -c 'import torch, torchvision' 2>/dev/null; then
  timeout 300 python3 gpu_peer_torch.py >"\$log.peer" 2>&1
  grep '^PEER' "\$log.peer" || tail -n 20 "\$log.peer"
fi
if [ \$rc -ne 0 ] || grep -q '^GPU-CHECK \(FAIL\|SKIP\)' "\$log" || ! grep -q '^GPU-CHECK' "\$log"; then
  tail -n 60 "\$log"
  echo "gpu-check: FAILED (exit \$rc); full log in \$log"
  exit 1
fi
echo "gpu-check: all checks passed; full log in \$log"
EOF
chmod +x "$out/run.sh"

size=$(du -sm "$out" | cut -f1)
echo "gpu-check: bundle in $out ($size MiB); on the GPU machine run: $out/run.sh" >&2
cat "$out/BUILD-INFO" >&2
if [ "$size" -gt 60 ]; then # a lent GPU machine takes 64 MiB of ignored files
  echo "gpu-check: warning: the bundle is over 60 MiB" >&2
fi
