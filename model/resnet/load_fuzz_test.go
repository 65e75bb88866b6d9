package resnet

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad writes arbitrary bytes to a file and loads it as weights: Load
// tells .h5, .pth and .npz apart by content, and each reader must answer
// a damaged file with an error, not a panic.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	w, err := Random(1, 0, 1)
	if err != nil {
		f.Fatal(err)
	}
	npz := filepath.Join(dir, "w1.npz")
	if err := w.Save(npz); err != nil {
		f.Fatal(err)
	}
	pth := filepath.Join(dir, "r18.pth")
	names, ts := resnet18StateDict(2)
	writeStateDict(f, pth, names[:6], ts)
	for _, p := range []string{npz, pth, filepath.Join("testdata", "keras_dense.h5")} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(stateDictPickle(names[:6], ts)) // the legacy format starts with a pickle
	f.Fuzz(func(t *testing.T, b []byte) {
		// No .pth extension: the content alone picks the reader.
		path := filepath.Join(dir, "fuzz.bin")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		Load(path)
	})
}
