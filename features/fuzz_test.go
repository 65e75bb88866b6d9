package features

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzShard opens a cache holding one shard made of arbitrary .json and
// .npy bytes and gets the features of every image it indexes: an error is
// fine, a panic is not.
func FuzzShard(f *testing.F) {
	legacy := filepath.Join("testdata", "legacy", "c0228cc594b7f44c")
	for _, shard := range []string{"shard-000000", "shard-000001"} {
		js, err := os.ReadFile(filepath.Join(legacy, shard+".json"))
		if err != nil {
			f.Fatal(err)
		}
		npy, err := os.ReadFile(filepath.Join(legacy, shard+".npy"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js, npy)
	}
	key := Key{Weights: "fuzz", Preprocess: "caffe", Height: 64, Width: 64}
	const dim = 3
	f.Fuzz(func(t *testing.T, js, npy []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, key.Hash())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "shard-000000.npy"), npy, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "shard-000000.json"), js, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Open(root, key, dim)
		if err != nil {
			return
		}
		var digests [][32]byte
		for d := range c.index {
			digests = append(digests, d)
		}
		if len(digests) == 0 {
			return
		}
		x, err := c.Get(digests)
		if err != nil {
			return
		}
		if s := x.Shape(); len(s) != 2 || s[0] != len(digests) || s[1] != dim {
			t.Fatalf("shape %v for %d images", s, len(digests))
		}
	})
}
