#!/usr/bin/env bash
# Backbone speed against PyTorch, in the same sitting on the same machine:
# the Go benchmark of the full-width ResNet50 (224x224, batch 1 and 16) and
# ../shared/bench/torch_baseline.py at the same batch sizes and 2 threads.
# Prints both images/s and their ratio.
#
#   scripts/bench.sh [count]      count: benchmark repetitions (default 3)
#
# Needs libopenblas-dev and, for the baseline, Debian's python3-torch and
# python3-torchvision (run with /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3}
baseline=${TORCH_BASELINE:-../shared/bench/torch_baseline.py}

go_out=$(go test -run '^$' -bench 'BenchmarkFeatures' -benchtime 3x -count "$count" ./model/resnet)
echo "$go_out" | grep -E '^(Benchmark|cpu:)'

for batch in 1 16; do
  # The median of the repetitions' images/s.
  go_ips=$(echo "$go_out" | awk -v b="batch=$batch-" '$1 ~ b { for (i = 1; i <= NF; i++) if ($i == "images/s") print $(i-1) }' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  torch_json=$(/usr/bin/python3 "$baseline" backbone --batch "$batch" --threads 2 --reps 3)
  torch_ips=$(echo "$torch_json" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["images_per_s"])')
  echo "$torch_json"
  awk -v b="$batch" -v g="$go_ips" -v t="$torch_ips" 'BEGIN { printf "batch %2d: go %.2f images/s, torch %.2f images/s, ratio %.2fx\n", b, g, t, g / t }'
done
