package dataset_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"gotransfer/dataset"
)

// Example writes a small synthetic dataset, splits it and streams one epoch
// of shuffled training batches.
func Example() {
	root, err := os.MkdirTemp("", "dataset-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	if err := dataset.Synthesize(root, 10, 1); err != nil {
		log.Fatal(err)
	}

	cfg := dataset.Config{Root: root, Height: 64, Width: 64, ValidationSplit: 0.2, Seed: 1}
	idx, err := dataset.Scan(cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("classes:", idx.Classes, "images:", len(idx.Train)+len(idx.Validation))

	skips := &dataset.SkipLog{}
	epoch := 0
	n := 0
	for batch, err := range dataset.Stream(context.Background(), cfg, dataset.Shuffle(idx.Train, cfg.Seed, epoch), 8, skips) {
		if err != nil {
			log.Fatal(err)
		}
		if n == 0 {
			fmt.Println("first batch:", batch.Images.Shape())
		}
		n += batch.Len()
	}
	fmt.Println("streamed all training images:", n == len(idx.Train), "skipped:", skips.Len())
	// Output:
	// classes: [cats dogs] images: 20
	// first batch: (8, 64, 64, 3)
	// streamed all training images: true skipped: 0
}
