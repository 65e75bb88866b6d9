package pipeline_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"gotransfer/configs"
	"gotransfer/dataset"
	"gotransfer/pipeline"
)

// Example trains a classifier on a labelled folder, puts it back together
// from the run folder and scores it on a labelled folder.
func Example() {
	dir, err := os.MkdirTemp("", "pipeline-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := dataset.Synthesize(filepath.Join(dir, "data"), 8, 1); err != nil {
		log.Fatal(err)
	}
	// Relative paths are relative to the configuration file's folder. No
	// backbone.weights: deterministic random weights, for a demonstration.
	cfg, err := configs.Parse([]byte(`
data: {dir: data, image_size: [64, 64], validation_split: 0.25}
head: {layers: [16]}
train: {epochs: 2, batch: 4}
run: {dir: run}
`), filepath.Join(dir, "example.yaml"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	res, err := pipeline.Train(ctx, cfg, pipeline.Options{}) // Options.Out: the progress
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(res.History), "epochs, validation:", res.History[1].HasVal)

	c, err := pipeline.LoadClassifier(filepath.Join(dir, "run"), pipeline.ClassifierOptions{}) // its best checkpoint
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ev, err := c.Evaluate(ctx, filepath.Join(dir, "data"), 8)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Classes, ev.Images, "images evaluated")
	// Output:
	// 2 epochs, validation: true
	// [cats dogs] 16 images evaluated
}

// ExampleLoadClassifier classifies images with a trained run from a Go
// program, as predict does: the run folder (its best checkpoint) or a
// checkpoint folder, then files, or images decoded from bytes (uploads) and
// classified together in one backbone pass.
func ExampleLoadClassifier() {
	c, err := pipeline.LoadClassifier("runs/cats_dogs", pipeline.ClassifierOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	probs, err := c.Predict("cat.jpg") // in the order of c.Classes
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Classes, probs)

	var images [][]float32
	for _, f := range []string{"a.jpg", "b.png"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			log.Fatal(err)
		}
		pix, err := c.Decode(raw) // decoded and resized as in training
		if err != nil {
			log.Fatal(err)
		}
		images = append(images, pix)
	}
	batch, err := c.PredictPixels(images)
	if err != nil {
		log.Fatal(err)
	}
	for i, p := range batch {
		fmt.Println(i, p)
	}
}
