package checkpoints

import (
	"fmt"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"
)

// BenchmarkSaveLoad saves and loads (verifying every sha256) a checkpoint of
// the Keras original head: its 4,723,202 parameters and Adam's two moments,
// 57 MB of float32.
func BenchmarkSaveLoad(b *testing.B) {
	sizes := [][]int{{2048, 1024}, {1024}, {1024, 1024}, {1024}, {1024, 1024}, {1024}, {1024, 512}, {512}, {512, 2}, {2}}
	var ts []Tensor
	var bytes int64
	for _, prefix := range []string{"", "adam_m/", "adam_v/"} {
		for i, s := range sizes {
			t := tensor.New(tensor.WithShape(s...), tensor.Of(tensor.Float32))
			for j := range t.Float32s() {
				t.Float32s()[j] = float32(j%1000) * 1e-3
			}
			name := fmt.Sprintf("%sdense_%d/kernel", prefix, i/2)
			if i%2 == 1 {
				name = fmt.Sprintf("%sdense_%d/bias", prefix, i/2)
			}
			ts = append(ts, Tensor{Name: name, Value: t})
			bytes += int64(4 * t.Shape().TotalSize())
		}
	}
	root := b.TempDir()
	b.SetBytes(bytes)
	i := 0
	for b.Loop() {
		dir := filepath.Join(root, fmt.Sprint(i))
		i++
		if err := Save(dir, Manifest{Step: int64(i)}, ts); err != nil {
			b.Fatal(err)
		}
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
