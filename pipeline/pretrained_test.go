package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"gotransfer/model/pretrained/pretrainedtest"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMovedRunRefetchesNamedWeights: a run that named published weights
// (backbone.weights: imagenet) and finds no copy of them fetches them again,
// here from an unreachable mirror, which the error names.
func TestMovedRunRefetchesNamedWeights(t *testing.T) {
	dir := t.TempDir()
	tinyRun(t, dir, 4, tinyYAML)
	// As if the run had named Keras' weights, and the file it read were
	// gone: rewrite the run description and its digest in the manifest.
	ck, err := filepath.EvalSymlinks(filepath.Join(dir, "run", "checkpoints", "best"))
	if err != nil {
		t.Fatal(err)
	}
	rewriteRunInfo(t, ck, func(run map[string]any) {
		run["config"].(map[string]any)["Backbone"].(map[string]any)["Weights"] = "imagenet"
		run["weights"] = filepath.Join(dir, "elsewhere", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
	})

	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	pretrainedtest.Isolate(t, srv.URL)
	_, err = LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{})
	if want := srv.URL + "/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5: 404 Not Found"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("LoadClassifier: %v, want an error with %q", err, want)
	}
	// Named on the command line, the name stands for the run's variant's
	// file.
	_, err = LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{Weights: "imagenet"})
	if want := srv.URL + "/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5: 404 Not Found"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("LoadClassifier with --weights imagenet: %v, want an error with %q", err, want)
	}
	// Given the file, nothing is fetched.
	c, err := LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{Weights: filepath.Join(dir, "run", "backbone.npz")})
	if err != nil {
		t.Fatalf("LoadClassifier with the weights given: %v", err)
	}
	c.Close()
}

// rewriteRunInfo edits the run description of checkpoint ck (as an older
// version, or another machine, would have written it) and its digest in
// the manifest.
func rewriteRunInfo(t *testing.T, ck string, edit func(run map[string]any)) {
	t.Helper()
	var run map[string]any
	raw, err := os.ReadFile(filepath.Join(ck, "run.yaml"))
	if err != nil || json.Unmarshal(raw, &run) != nil {
		t.Fatalf("run.yaml: %v", err)
	}
	edit(run)
	raw, _ = json.Marshal(run)
	var manifest map[string]any
	mraw, err := os.ReadFile(filepath.Join(ck, "manifest.json"))
	if err != nil || json.Unmarshal(mraw, &manifest) != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	sum := sha256.Sum256(raw)
	manifest["run_sha256"] = hex.EncodeToString(sum[:])
	mraw, _ = json.Marshal(manifest)
	if os.WriteFile(filepath.Join(ck, "run.yaml"), raw, 0o644) != nil || os.WriteFile(filepath.Join(ck, "manifest.json"), mraw, 0o644) != nil {
		t.Fatal("rewrite the checkpoint")
	}
}
