package gradcam_test

import (
	"fmt"
	"image"
	"log"

	"gotransfer/model/gradcam"
)

// A 2x3 grid of two-channel feature maps: channel 0 fires on the left,
// channel 1 on the right. A class whose score grows with channel 1 (and
// shrinks with channel 0) is supported on the right only.
func Example() {
	act := []float32{
		1, 0, 0.5, 0.5, 0, 1,
		1, 0, 0.5, 0.5, 0, 2,
	}
	heat, err := gradcam.Heatmap(act, 2, 3, 2, []float32{-1, 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(heat[:3])
	fmt.Println(heat[3:])

	// Drawn over a 30x20 picture the network saw all of.
	picture := image.NewRGBA(image.Rect(0, 0, 30, 20))
	over, err := gradcam.Overlay(picture, picture.Bounds(), false, heat, 2, 3, 0.4)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(over.Bounds(), over.RGBAAt(0, 0), over.RGBAAt(29, 19))
	// Output:
	// [0 0 0.5]
	// [0 0 1]
	// (0,0)-(30,20) {0 0 51 255} {51 0 0 255}
}
