package checkpoints

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad loads a checkpoint folder made of an arbitrary manifest and an
// arbitrary dense_0/kernel.npy. "SHA" in the manifest is replaced by the
// .npy's sha256, so that the fuzzer gets past the check to the .npy reader.
func FuzzLoad(f *testing.F) {
	for _, m := range []string{
		`{"format": 1, "files": [{"tensor": "dense_0/kernel", "path": "dense_0/kernel.npy", "shape": [5, 4], "sha256": "SHA"}]}`,
		`{"format": 1, "epoch": 2, "step": 20, "optimizer": "adam", "seed": 1, "classes": ["a", "b"], "metrics": {"val_loss": 0.5},
		  "files": [{"tensor": "dense_0/kernel", "path": "dense_0/kernel.npy", "shape": [5, 4], "sha256": "SHA"}], "run_sha256": "SHA"}`,
		`{"format": 1, "files": [{"tensor": "a/../b", "path": "a/../b.npy", "shape": [], "sha256": "SHA"}]}`,
	} {
		f.Add([]byte(m), npy(f, sample(1)[0]))
	}
	f.Fuzz(func(t *testing.T, manifest, data []byte) {
		dir := t.TempDir()
		sum := sha256.Sum256(data)
		manifest = bytes.ReplaceAll(manifest, []byte("SHA"), []byte(hex.EncodeToString(sum[:])))
		if err := os.WriteFile(filepath.Join(dir, ManifestFile), manifest, 0o644); err != nil {
			t.Fatal(err)
		}
		names := []string{"dense_0/kernel.npy"}
		if bytes.Contains(manifest, []byte("run_sha256")) {
			names = append(names, RunFile)
		}
		for _, name := range names {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c, err := Load(dir)
		if err != nil {
			return
		}
		for i, ft := range c.Manifest.Files {
			if got := c.Tensors[i].Value.Shape(); len(got) != len(ft.Shape) {
				t.Fatalf("tensor %q: shape %v, manifest says %v", ft.Tensor, got, ft.Shape)
			}
		}
	})
}

// npy returns the .npy bytes Save writes for t.
func npy(f *testing.F, t Tensor) []byte {
	dir := filepath.Join(f.TempDir(), "ckpt")
	if err := Save(dir, Manifest{}, []Tensor{t}); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(t.Name)+".npy"))
	if err != nil {
		f.Fatal(err)
	}
	return b
}
