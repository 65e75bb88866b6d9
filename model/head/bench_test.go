package head

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// benchTrainStep measures TrainStep of the Keras original head (2048 inputs,
// 1024-1024-1024-512 ReLU, 2 classes) at the given batch size, with the
// optimizer newOpt makes (Adam's defaults when nil), after a warm-up step
// that builds the graph.
func benchTrainStep(b *testing.B, batch int, newOpt func([]Param) (Optimizer, error)) {
	h, err := New(Config{InputDim: 2048, Classes: 2, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	if newOpt == nil {
		newOpt = func(ps []Param) (Optimizer, error) { return NewAdam(AdamConfig{}, ps) }
	}
	opt, err := newOpt(h.Params())
	if err != nil {
		b.Fatal(err)
	}
	x, y := randBatch(rand.New(rand.NewPCG(1, 2)), batch, 2048, 2)
	if _, _, err := h.TrainStep(x, y, opt); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := h.TrainStep(x, y, opt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkTrainStep uses whatever BLAS gorgonia has (gonum's pure Go one
// unless something called gorgonia.Use); see BenchmarkTrainStepOpenBLAS.
func BenchmarkTrainStep(b *testing.B) {
	for _, n := range []int{32, 256} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchTrainStep(b, n, nil) })
	}
}

// TestTrainStepAllocatesLittle checks that after warm-up a step allocates no
// tensor-sized memory: the graphs own their buffers (the dropout masks
// included) and the gradients are shared.
func TestTrainStepAllocatesLittle(t *testing.T) {
	for _, dropout := range []float64{0, 0.5} {
		h, err := New(Config{InputDim: 512, Hidden: []int{256, 128}, Classes: 2, Seed: 1, Dropout: dropout})
		if err != nil {
			t.Fatal(err)
		}
		opt, _ := NewAdam(AdamConfig{}, h.Params())
		x, y := randBatch(rand.New(rand.NewPCG(1, 2)), 256, 512, 2)
		for range 2 {
			if _, _, err := h.TrainStep(x, y, opt); err != nil {
				t.Fatal(err)
			}
		}
		var before, after runtime.MemStats
		const steps = 5
		runtime.ReadMemStats(&before)
		for range steps {
			if _, _, err := h.TrainStep(x, y, opt); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		perStep := (after.TotalAlloc - before.TotalAlloc) / steps
		// The smallest tensor-sized buffer here, the (256, 128) activation, is
		// 128 KiB; the kernels are 512 KiB and 128 KiB.
		if perStep > 64<<10 {
			t.Errorf("dropout %v: a warm TrainStep allocates %d bytes", dropout, perStep)
		}
		t.Logf("dropout %v: a warm TrainStep allocates %d bytes", dropout, perStep)
	}
}
