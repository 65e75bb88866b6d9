package configs_test

import (
	"fmt"
	"log"

	"gotransfer/configs"
)

func Example() {
	c, err := configs.Load("smoke.yaml")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("data:", c.Data.Dir, c.Data.ImageSize, c.Data.Preprocess)
	fmt.Println("head:", c.Head.Layers, "epochs:", c.Train.Epochs, "lr:", c.Train.Adam.LR)
	fmt.Println("run:", c.Run.Dir, "cache:", c.Cache.Dir)

	// A bad file is refused before anything runs, with positions.
	_, err = configs.Parse([]byte("data: {dir: d}\ntrain:\n  epochs: 0\n  batchsize: 8\n"), "configs/bad.yaml")
	fmt.Println(err)

	// What changed since a run's checkpoints were written.
	changed, _ := configs.Load("smoke.yaml")
	changed.Head.Layers = []int{64, 16}
	changed.Train.Epochs = 5
	for _, ch := range configs.Diff(c, changed) {
		fmt.Printf("%s (hashed: %v)\n", ch, ch.Resume)
	}
	fmt.Println("same hash:", c.Hash() == changed.Hash())
	// Output:
	// data: ../runs/smoke-data [64 64] caffe
	// head: [64 32] epochs: 3 lr: 0.001
	// run: ../runs/smoke cache: ../runs/feature-cache
	// configs/bad.yaml:4:3: train.batchsize: unknown key "batchsize" in train (known keys: epochs, batch, optimizer, adam, sgd, early_stopping, reduce_lr_on_plateau, lr_schedule, class_weight, label_smoothing)
	// configs/bad.yaml:3:11: train.epochs: 0 must be at least 1
	// head.layers changed from [64 32] to [64 16] (hashed: true)
	// train.epochs changed from 3 to 5 (hashed: false)
	// same hash: false
}
