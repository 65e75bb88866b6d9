package gradcam_test

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"

	"gotransfer/internal/tensorio"
	"gotransfer/model/gradcam"
	"gotransfer/model/head"
	"gotransfer/model/resnet"
)

// TestMatchesPyTorch computes Grad-CAM the project's way (the CPU engine's
// last block output, head.LogitGradient, Heatmap) on the narrow torchvision
// ResNet50 of the resnet tests with a dense head, and compares it with
// testdata/torch_w8_s160, which scripts/make_gradcam_golden.py computes
// with PyTorch's autograd through the pooling and the head, in float64.
func TestMatchesPyTorch(t *testing.T) {
	dir := filepath.Join("testdata", "torch_w8_s160")
	w, err := resnet.Load(filepath.Join("..", "resnet", "testdata", "torchvision_w8_s64", "weights.pth"))
	if err != nil {
		t.Fatal(err)
	}
	bb, err := resnet.New(w, "cpu")
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	h, err := head.New(head.Config{InputDim: bb.FeatureDim(), Hidden: []int{32, 16}, Classes: 3})
	if err != nil {
		t.Fatal(err)
	}
	var params []head.Param
	for l := range 3 {
		for _, p := range []struct{ name, file string }{{head.KernelName(l), "kernel"}, {head.BiasName(l), "bias"}} {
			v, err := tensorio.ReadNPYFile(filepath.Join(dir, fmt.Sprintf("dense_%d_%s.npy", l, p.file)))
			if err != nil {
				t.Fatal(err)
			}
			params = append(params, head.Param{Name: p.name, Value: v})
		}
	}
	if err := h.SetParams(params); err != nil {
		t.Fatal(err)
	}
	x, err := tensorio.ReadNPYFile(filepath.Join(dir, "inputs.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := tensorio.ReadNPYFile(filepath.Join(dir, "heatmaps.npy"))
	if err != nil {
		t.Fatal(err)
	}
	wantLogits, err := tensorio.ReadNPYFile(filepath.Join(dir, "logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	ws := want.Shape() // (images, classes, rows, cols)
	rows, cols := ws[2], ws[3]
	size := x.Shape()[1] * x.Shape()[2] * 3
	for i := range ws[0] {
		img := tensor.New(tensor.WithShape(1, x.Shape()[1], x.Shape()[2], 3), tensor.WithBacking(x.Float32s()[i*size:(i+1)*size]))
		var maps *tensor.Dense
		f, err := bb.FeaturesWithTaps(img, func(name string, a *tensor.Dense) {
			if name == w.Arch.FeatureMapName() {
				maps = a
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if s := maps.Shape(); s[1] != rows || s[2] != cols {
			t.Fatalf("image %d: feature maps %v, PyTorch's grid %dx%d", i, s, rows, cols)
		}
		for c := range ws[1] {
			logits, grad, err := h.LogitGradient(f.Float32s(), c)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(float64(logits[c] - wantLogits.Float32s()[i*ws[1]+c])); d > 1e-4 {
				t.Errorf("image %d: logit %d is %v, PyTorch's %v", i, c, logits[c], wantLogits.Float32s()[i*ws[1]+c])
			}
			heat, err := gradcam.Heatmap(maps.Float32s(), rows, cols, maps.Shape()[3], grad)
			if err != nil {
				t.Fatal(err)
			}
			ref := want.Float32s()[(i*ws[1]+c)*rows*cols:][:rows*cols]
			for p := range heat {
				if d := math.Abs(float64(heat[p] - ref[p])); d > 1e-4 {
					t.Errorf("image %d class %d, cell (%d, %d): %.6f, PyTorch's %.6f", i, c, p/cols, p%cols, heat[p], ref[p])
				}
			}
		}
	}
}
