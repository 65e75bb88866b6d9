#!/usr/bin/env bash
# Sourced by cuda-check.sh and gpu-check.sh: makes the CUDA 11.8 headers and
# stub libraries available for compiling the gotransfer_cuda build, without
# installing anything system-wide, and exports CGO_CFLAGS / CGO_LDFLAGS.
#
# They come from Debian's non-free nvidia-cuda-dev package, fetched with
# `apt-get download` through a private sources list (the system's sources
# stay untouched) and unpacked into a cache that later runs reuse:
#   ${GOTRANSFER_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gotransfer/cuda-11.8}/{include,stubs}
# The .deb is large (~770 MB) but only ./usr/include and the stubs (~16 MB)
# are kept. The mirror is the system's Debian mirror, or CUDA_DEB_MIRROR.

cuda_cache=${GOTRANSFER_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gotransfer/cuda-11.8}

# debian_mirror prints the Debian mirror the system already uses.
debian_mirror() {
  if [ -n "${CUDA_DEB_MIRROR:-}" ]; then
    echo "$CUDA_DEB_MIRROR"
    return
  fi
  local m=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

fetch_cuda_headers() {
  if [ -f "$cuda_cache/include/cuda.h" ] && [ -f "$cuda_cache/stubs/libcuda.so" ]; then
    return 0
  fi
  local tmp mirror
  tmp=$(mktemp -d)
  mirror=$(debian_mirror)
  echo "cuda-env: fetching nvidia-cuda-dev (non-free) from $mirror into $cuda_cache" >&2
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main contrib non-free" >"$tmp/sources.list"
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
  local apt_opts=(-q -o "Dir::Etc::sourcelist=$tmp/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o Dir::State::status=/var/lib/dpkg/status
    -o APT::Sandbox::User=root -o Debug::NoLocking=1)
  if ! apt-get "${apt_opts[@]}" update >"$tmp/apt.log" 2>&1 ||
    ! (cd "$tmp" && apt-get "${apt_opts[@]}" download nvidia-cuda-dev >>"$tmp/apt.log" 2>&1); then
    cat "$tmp/apt.log" >&2
    echo "cuda-env: could not download nvidia-cuda-dev from $mirror (set CUDA_DEB_MIRROR?)" >&2
    rm -rf "$tmp"
    return 1
  fi
  local deb version
  deb=$(ls "$tmp"/nvidia-cuda-dev_*.deb)
  version=$(dpkg-deb -f "$deb" Version)
  case "$version" in
  11.8.*) ;;
  *) echo "cuda-env: warning: nvidia-cuda-dev $version, the build was checked with 11.8" >&2 ;;
  esac
  mkdir -p "$tmp/x"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" --wildcards './usr/include/*' './usr/lib/x86_64-linux-gnu/stubs/*'
  rm -f "$deb"
  local staged="$cuda_cache.partial.$$"
  rm -rf "$staged"
  mkdir -p "$staged"
  mv "$tmp/x/usr/include" "$staged/include"
  mv "$tmp/x/usr/lib/x86_64-linux-gnu/stubs" "$staged/stubs"
  echo "$version" >"$staged/VERSION"
  rm -rf "$cuda_cache"
  mv "$staged" "$cuda_cache"
  rm -rf "$tmp"
}

# use_cuda_headers fetches if needed and points cgo at the cache.
use_cuda_headers() {
  fetch_cuda_headers || return 1
  # cgo's defaults are "-g -O2"; keep them.
  export CGO_CFLAGS="${CGO_CFLAGS:--g -O2} -I$cuda_cache/include"
  export CGO_LDFLAGS="${CGO_LDFLAGS:--g -O2} -L$cuda_cache/stubs"
}
