package head_test

import (
	"fmt"
	"log"

	"gorgonia.org/tensor"

	"gotransfer/model/head"
)

// Train a small head on a toy problem whose class is the larger of the first
// two features, then evaluate it.
func Example() {
	h, err := head.New(head.Config{InputDim: 4, Hidden: []int{16, 8}, Classes: 2, Seed: 42})
	if err != nil {
		log.Fatal(err)
	}
	opt, err := head.NewAdam(head.AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7}, h.Params())
	if err != nil {
		log.Fatal(err)
	}
	x := tensor.New(tensor.WithShape(8, 4), tensor.WithBacking([]float32{
		1, 0, 0.5, 0.1, 0, 1, 0.2, 0.3, 2, 1, 0.1, 0.9, 1, 2, 0.7, 0.2,
		0.9, 0.1, 0.3, 0.3, 0.2, 0.8, 0.8, 0.1, 3, 0.5, 0.4, 0.4, 0.4, 3, 0.6, 0.5,
	}))
	labels := []int{0, 1, 0, 1, 0, 1, 0, 1}
	first, _, _ := h.TrainStep(x, labels, opt)
	var last float32
	for range 199 {
		if last, _, err = h.TrainStep(x, labels, opt); err != nil {
			log.Fatal(err)
		}
	}
	_, correct, preds, err := h.Evaluate(x, labels)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("loss went down:", last < first/10)
	fmt.Println("correct:", correct, "of", len(labels), preds)
	fmt.Println("adam step:", opt.Step())
	for _, p := range h.Params() {
		fmt.Println(p.Name, p.Value.Shape())
	}
	// Output:
	// loss went down: true
	// correct: 8 of 8 [0 1 0 1 0 1 0 1]
	// adam step: 200
	// dense_0/kernel (4, 16)
	// dense_0/bias (16)
	// dense_1/kernel (16, 8)
	// dense_1/bias (8)
	// dense_2/kernel (8, 2)
	// dense_2/bias (2)
}
