package resnet

import (
	"fmt"
	"math/rand/v2"
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
