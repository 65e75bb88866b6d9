#!/usr/bin/env bash
# The project's checks, as CI runs them: set-up, gofmt, go vet, staticcheck
# (a pinned version, fetched through the Go module proxy on first use), go
# test, and the concurrent code under the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
go test ./...
# The code that runs goroutines against shared state, again under the race
# detector (the whole suite under it would take too long).
go test -race -run 'TestServer|TestClassifierConcurrentPredict|Lock' ./cmd/predict ./pipeline ./features ./internal/filelock
