#!/usr/bin/env bash
# The demo on a fresh machine: the full ResNet50's summary, then the
# narrow test network on the bundled cat photo.
#
# The narrow weights are RANDOM (a width-8 ResNet50 with 10 made-up
# classes, from the parity tests): the ranking shows the pipeline runs end
# to end, not what the photo shows. For real ImageNet predictions, export
# Keras' weights (scripts/export_keras_weights.py) and run
#   go run ./cmd/predict --weights resnet50.npz cat.jpg
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
go build -o bin/predict ./cmd/predict
bin/predict --summary
echo
echo "Narrow ResNet50 with random weights (not a trained classifier) on dataset/testdata/chelsea.png:"
bin/predict --weights model/resnet/testdata/resnet50_w8_s64/weights.npz --size 64 --top 3 dataset/testdata/chelsea.png
