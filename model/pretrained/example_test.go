package pretrained_test

import (
	"fmt"
	"log"

	"gotransfer/model/pretrained"
)

// The files that backbone.weights: imagenet stands for: Keras' without the
// ImageNet classifier for training, with it for predict's ImageNet
// classes, and torchvision's default with variant: torchvision.
func ExampleLookup() {
	for _, q := range []struct {
		variant string
		top     bool
	}{{"keras", false}, {"keras", true}, {"torchvision", false}} {
		f, err := pretrained.Lookup("imagenet", q.variant, q.top)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(f.Name, f.MD5+f.SHA256Prefix)
	}
	// Output:
	// resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 4d473c1dd8becc155b73f8504c6f6626
	// resnet50_weights_tf_dim_ordering_tf_kernels.h5 2cb95161c43110f7111970584f804107
	// resnet50-11ad3fa6.pth 11ad3fa6
}
