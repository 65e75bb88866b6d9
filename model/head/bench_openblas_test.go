//go:build cgo

package head

import (
	"fmt"
	"testing"

	"gorgonia.org/gorgonia"

	"gotransfer/internal/openblas"
)

// BenchmarkTrainStepOpenBLAS is BenchmarkTrainStep with gorgonia's BLAS set
// to OpenBLAS, as the commands set it.
func BenchmarkTrainStepOpenBLAS(b *testing.B) {
	prev := gorgonia.WhichBLAS()
	gorgonia.Use(openblas.Implementation{})
	defer gorgonia.Use(prev)
	for _, n := range []int{32, 256} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchTrainStep(b, n, nil) })
	}
	// PyTorch's transfer-learning tutorial's optimizer.
	sgd := func(ps []Param) (Optimizer, error) { return NewSGD(SGDConfig{LR: 0.001, Momentum: 0.9}, ps) }
	b.Run("sgd/batch=32", func(b *testing.B) { benchTrainStep(b, 32, sgd) })
}
