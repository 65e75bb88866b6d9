package features_test

import (
	"crypto/sha256"
	"fmt"
	"log"
	"os"

	"gorgonia.org/tensor"

	"gotransfer/features"
)

// Features are stored once per image and found again by the sha256 of the
// image file's bytes, in any later run with the same key.
func Example() {
	root, err := os.MkdirTemp("", "cache")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	key := features.Key{Weights: "sha256 of the weights", Preprocess: "caffe", Height: 224, Width: 224, EXIF: true}

	cache, err := features.Open(root, key, 2)
	if err != nil {
		log.Fatal(err)
	}
	cat, dog := sha256.Sum256([]byte("cat.jpg bytes")), sha256.Sum256([]byte("dog.jpg bytes"))
	rows := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{0.1, 0.2, 0.3, 0.4}))
	if err := cache.Add([][32]byte{cat, dog}, []string{"cats/cat.jpg", "dogs/dog.jpg"}, rows); err != nil {
		log.Fatal(err)
	}

	again, err := features.Open(root, key, 2) // a later run
	if err != nil {
		log.Fatal(err)
	}
	f, err := again.Get([][32]byte{dog})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(again.Len(), f.Data())
	// Output: 2 [0.3 0.4]
}
