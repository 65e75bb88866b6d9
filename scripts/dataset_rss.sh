#!/usr/bin/env bash
# Checks that dataset.Stream's memory stays flat: the peak RSS (/usr/bin/time -v) of
# streaming BIG images must be within 10% of that for SMALL images. Each size runs
# RUNS times and the medians are compared (the peak of a garbage-collected heap is
# noisy). The consumer calls Batch.Release; set DATASET_RSS_RELEASE=0 to see a
# consumer that does not (about 15% more memory, and noisier).
# Usage: scripts/dataset_rss.sh [SMALL [BIG [RUNS]]]   (defaults 1000 10000 3)
# Writes a synthetic dataset of BIG images into a temporary folder (removed at exit);
# takes a few minutes on 2 cores.
set -euo pipefail
small=${1:-1000}
big=${2:-10000}
runs=${3:-3}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/synthdata" ./scripts/synthdata
go test -c -o "$tmp/dataset.test" ./dataset
"$tmp/synthdata" -out "$tmp/data" -n $(((big + 1) / 2)) -seed 1

peak() { # median over $runs runs of the peak RSS in kB of streaming the first $1 images
  for _ in $(seq "$runs"); do
    DATASET_RSS_ROOT="$tmp/data" DATASET_RSS_N="$1" /usr/bin/time -v -o "$tmp/time" \
      "$tmp/dataset.test" -test.run '^TestStreamRSS$' -test.count 1 | grep '^streamed' >&2
    awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time"
  done | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
a=$(peak "$small")
b=$(peak "$big")
awk -v a="$a" -v b="$b" -v s="$small" -v l="$big" 'BEGIN {
  r = b / a
  printf "median peak RSS: %d images %d kB, %d images %d kB, ratio %.3f\n", s, a, l, b, r
  if (r > 1.10) { print "FAIL: memory grows with the dataset (ratio > 1.10)"; exit 1 }
  print "ok: within 10%"
}'
