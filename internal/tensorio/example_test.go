package tensorio_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"gorgonia.org/tensor"

	"gotransfer/internal/tensorio"
)

func Example() {
	dir, err := os.MkdirTemp("", "npz")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "weights.npz")
	bias := tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{0.5, -1, 2}))
	if err := tensorio.WriteNPZ(path, map[string]*tensor.Dense{"conv1_conv/bias": bias}); err != nil {
		log.Fatal(err)
	}

	a, err := tensorio.OpenNPZ(path) // numpy.load reads the same file
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := a.Read("conv1_conv/bias")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Names(), b.Shape(), b.Data())
	// Output: [conv1_conv/bias] (3) [0.5 -1 2]
}
