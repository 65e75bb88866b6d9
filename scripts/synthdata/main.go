// Command synthdata writes a small synthetic two-class image folder
// (DIR/cats, DIR/dogs) for tests, smoke runs and demos; see
// dataset.Synthesize. Nothing is downloaded.
//
//	go run ./scripts/synthdata -out DIR -n N -seed S
package main

import (
	"flag"
	"fmt"
	"os"

	"gotransfer/dataset"
)

func main() {
	out := flag.String("out", "", "output folder (created)")
	n := flag.Int("n", 100, "images per class")
	seed := flag.Int64("seed", 1, "random seed; the same seed gives the same files")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: synthdata -out DIR [-n N] [-seed S]")
		os.Exit(2)
	}
	if err := dataset.Synthesize(*out, *n, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "synthdata:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d images per class (%v) to %s\n", *n, dataset.SynthClasses, *out)
}
