// Package ortrun runs ONNX models with ONNX Runtime, for the tests that
// hold the project's ONNX export against it. ONNX Runtime is the
// onnxruntime-node package of the npm registry (its CPU binary ships in the
// package), run by node; the folder it is installed in is named by
// $GOTRANSFER_ORT_NODE (npm install --prefix DIR onnxruntime-node).
package ortrun

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"gotransfer/internal/tensorio"
)

//go:embed run_ort.js
var script []byte

// EnvDir names the folder holding node_modules/onnxruntime-node.
const EnvDir = "GOTRANSFER_ORT_NODE"

// ErrUnavailable says that node or onnxruntime-node is not there.
var ErrUnavailable = errors.New("ONNX Runtime unavailable: set " + EnvDir + " to a folder where `npm install --prefix DIR onnxruntime-node` ran, with node on the PATH")

// Available reports whether Run can run.
func Available() error {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		return ErrUnavailable
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "onnxruntime-node")); err != nil {
		return fmt.Errorf("%w (%v)", ErrUnavailable, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("%w (%v)", ErrUnavailable, err)
	}
	return nil
}

// EnvRequire, set to anything, makes Require fail a test where ONNX
// Runtime is unavailable instead of skipping it (CI sets it).
const EnvRequire = "GOTRANSFER_REQUIRE_ORT"

// Require skips t where ONNX Runtime is unavailable, or fails it if
// $GOTRANSFER_REQUIRE_ORT is set.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv(EnvRequire) != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// Run runs the model at path on pixels, a float32 (n, h, w, 3) batch fed
// to its input "images", and returns every output's values by name.
func Run(path string, pixels []float32, n, h, w int) (map[string][]float32, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "ortrun-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	js, in := filepath.Join(tmp, "run_ort.js"), filepath.Join(tmp, "pixels.f32")
	if err := os.WriteFile(js, script, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(in, tensorio.Float32Bytes(pixels), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("node", js, path, in, strconv.Itoa(n), strconv.Itoa(h), strconv.Itoa(w))
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		return nil, fmt.Errorf("onnxruntime on %s: %v: %s", path, err, stderr)
	}
	var res map[string]struct {
		Dims []int     `json:"dims"`
		Data []float64 `json:"data"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("onnxruntime on %s: %w", path, err)
	}
	vals := map[string][]float32{}
	for k, v := range res {
		f := make([]float32, len(v.Data))
		for i, x := range v.Data {
			f[i] = float32(x)
		}
		vals[k] = f
	}
	return vals, nil
}
