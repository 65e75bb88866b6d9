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
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchTrainStep(b, n) })
	}
}
