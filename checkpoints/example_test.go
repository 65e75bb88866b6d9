package checkpoints_test

import (
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"gorgonia.org/tensor"

	"gotransfer/checkpoints"
)

// A Manager over <run>/checkpoints saves, keeps the newest and the best, and
// finds the checkpoint to resume from.
func Example() {
	run, err := os.MkdirTemp("", "run-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(run)

	m, err := checkpoints.NewManager(filepath.Join(run, "checkpoints"), checkpoints.Options{
		Keep:   2,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	kernel := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{1, 2, 3, 4}))
	for _, s := range []struct {
		step int64
		loss float64
	}{{100, 0.7}, {200, 0.4}, {300, 0.5}, {400, 0.6}} {
		man := checkpoints.Manifest{
			Epoch: int(s.step / 100), Step: s.step, OptimizerStep: s.step, Seed: 1337,
			Classes: []string{"cat", "dog"}, ConfigHash: "0123abcd",
			Metrics: map[string]float64{"val_loss": s.loss},
		}
		if _, err := m.Save(man, []checkpoints.Tensor{{Name: "dense_0/kernel", Value: kernel}}); err != nil {
			log.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(m.Dir())
	for _, e := range entries {
		fmt.Println(e.Name())
	}

	latest, err := m.Latest()
	if err != nil {
		log.Fatal(err)
	}
	c, err := checkpoints.Load(latest.Dir) // verifies every sha256
	if err != nil {
		log.Fatal(err)
	}
	k, _ := c.Tensor("dense_0/kernel")
	fmt.Println("resume from step", c.Manifest.Step, "epoch", c.Manifest.Epoch, k.Shape(), k.Float32s())
	best, _ := m.Best()
	fmt.Println("best:", filepath.Base(best.Dir), best.Manifest.Metrics["val_loss"])
	// Output:
	// best
	// last
	// step-000200
	// step-000300
	// step-000400
	// resume from step 400 epoch 4 (2, 2) [1 2 3 4]
	// best: step-000200 0.4
}
