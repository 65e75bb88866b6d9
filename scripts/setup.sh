#!/usr/bin/env bash
# Installs what building the project needs beyond Go and gcc: the OpenBLAS
# and libjpeg-turbo headers and the static libraries the commands link in
# (Debian/Ubuntu: libopenblas-dev, libjpeg-dev). Does nothing when they are
# already there. Sourced by the other scripts.
set -euo pipefail
if ! printf '#include <stdio.h>\n#include <cblas.h>\n#include <jpeglib.h>\nint main(void){return 0;}\n' |
  cc -x c - -l:libopenblas.a -l:libjpeg.a -lm -lpthread -o /dev/null 2>/dev/null; then
  echo "setup: installing libopenblas-dev and libjpeg-dev" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev libjpeg-dev >/dev/null
fi
