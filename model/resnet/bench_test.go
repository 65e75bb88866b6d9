package resnet

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"
)

// BenchmarkFeatures measures the full-width ResNet50 backbone on 224x224
// inputs: images/s at batch 1 and 16.
func BenchmarkFeatures(b *testing.B) {
	w, err := Random(64, 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	e, err := NewCPU(w)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			data := make([]float32, n*224*224*3)
			for i := range data {
				data[i] = float32(rng.NormFloat64() * 60)
			}
			x := tensor.New(tensor.WithShape(n, 224, 224, 3), tensor.WithBacking(data))
			if _, err := e.Features(x); err != nil { // warm-up: buffers
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.Features(x); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkLoad measures Load on a full-width ResNet50 without its top
// (random weights, 94 MB of float32, as the _notop files) as an .npz and
// as Keras' .h5 (written with h5py: skipped without it). The page cache is
// warm, so this is the parsing, copying and checking, not the disk.
func BenchmarkLoad(b *testing.B) {
	py := python(b, "numpy", "h5py")
	w, err := Random(64, 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	npz, h5 := filepath.Join(dir, "w.npz"), filepath.Join(dir, "w.h5")
	if err := w.Save(npz); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(py, "-c", writeLegacyH5, npz, h5, "new", "").CombinedOutput(); err != nil {
		b.Fatalf("writing the h5: %v\n%s", err, out)
	}
	for _, path := range []string{npz, h5} {
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		if got, err := Load(path); err != nil || got.Digest() != w.Digest() {
			b.Fatalf("%s: %v, or weights differ", path, err)
		}
		b.Run(filepath.Ext(path)[1:], func(b *testing.B) {
			b.SetBytes(fi.Size())
			for b.Loop() {
				if _, err := Load(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
