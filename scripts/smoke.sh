#!/usr/bin/env bash
# The smoke training, end to end in seconds: synthetic cats and dogs
# (generated, nothing downloaded), a narrow ResNet50 with deterministic
# random weights, 3 epochs of the dense head, then `predict` with the best
# checkpoint (text, then JSON with Grad-CAM pictures), the learning-rate
# range test and the HTTP service. It fails unless the training loss at
# least halves, the pictures and the range test's plot are written and the
# service answers.
#
#   scripts/smoke.sh          the demo
#   scripts/smoke.sh --kill   as CI runs it: the first attempt is killed with
#                             SIGKILL after its first checkpoint and resumed
#
# The synthetic classes are made easy on purpose (edgeless blobs against
# high-contrast checkerboards), so even random features separate them; on
# real photos random features are weak, and real use needs pretrained
# weights (README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
go build -o bin/train ./cmd/train
go build -o bin/predict ./cmd/predict

config=configs/smoke.yaml
data=runs/smoke-data
run=runs/smoke
images=${SMOKE_IMAGES:-60}
[ -d "$data" ] || go run ./scripts/synthdata -out "$data" -n "$images" -seed 1
rm -rf "$run"

start=$(date +%s)
if [ "${1:-}" = "--kill" ]; then
  bin/train --config "$config" &
  pid=$!
  until [ -e "$run/checkpoints/last" ] || ! kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" || true
    echo "smoke: killed training (pid $pid) after checkpoint $(readlink "$run/checkpoints/last"); resuming"
  else
    echo "smoke: training finished before it could be killed" >&2
    exit 1
  fi
  bin/train --config "$config" --resume
else
  bin/train --config "$config"
fi
echo "smoke: trained in $(( $(date +%s) - start )) s"

# The training loss of the first and the last epoch.
losses=$(grep -o '"train_loss":[0-9.e+-]*' "$run/metrics.jsonl" | cut -d: -f2)
first=$(echo "$losses" | head -1)
last=$(echo "$losses" | tail -1)
if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b <= a / 2) }'; then
  echo "smoke: training loss $first -> $last: at least halved"
else
  echo "smoke: training loss $first -> $last: not halved" >&2
  exit 1
fi

bin/predict --checkpoint "$run/checkpoints/best" "$data"/cats/cat_00000.* "$data"/dogs/dog_00000.*

# Where it looks, and JSON for scripts: Grad-CAM pictures of the same two
# images (JPEGs of the images' sizes), their predictions as JSON Lines.
bin/predict --checkpoint "$run" --json --explain "$run/explained" "$data"/cats/cat_00000.* "$data"/dogs/dog_00000.* > "$run/explained.jsonl"
pictures=$(grep -c '"gradcam":' "$run/explained.jsonl")
[ "$pictures" = 2 ] && [ "$(ls "$run/explained" | wc -l)" = 2 ] || { echo "smoke: --explain wrote $pictures pictures" >&2; exit 1; }
echo "smoke: Grad-CAM pictures in $run/explained"

# The learning-rate range test on the cached features, into a folder of
# its own (it leaves a run folder as it was anyway).
bin/train --config "$config" --set run.dir="$run-lr" --find-lr | tail -2
[ -s "$run-lr/lr_find.png" ] || { echo "smoke: no lr_find.png" >&2; exit 1; }

# The HTTP service from the built binary: the page, a prediction and a
# Grad-CAM picture, then SIGTERM lets it finish. (curl is needed here.)
if command -v curl >/dev/null; then
  port=$(( 20000 + RANDOM % 20000 ))
  bin/predict --checkpoint "$run" --serve "127.0.0.1:$port" > "$run/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  image=$(ls "$data"/cats/cat_00000.*)
  curl -sf "127.0.0.1:$port/" | grep -q 'fetch("explain"' || { echo "smoke: GET / is not the page" >&2; kill "$pid"; exit 1; }
  curl -sf --data-binary "@$image" "127.0.0.1:$port/predict" | grep -q '"predicted":' || { echo "smoke: /predict" >&2; kill "$pid"; exit 1; }
  [ "$(curl -sf --data-binary "@$image" "127.0.0.1:$port/explain" | head -c 3 | od -An -tx1 | tr -d ' ')" = ffd8ff ] || { echo "smoke: /explain is not a JPEG" >&2; kill "$pid"; exit 1; }
  kill -TERM "$pid"
  wait "$pid"
  echo "smoke: --serve answered /, /predict and /explain, and stopped on SIGTERM"
fi
