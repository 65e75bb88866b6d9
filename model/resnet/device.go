package resnet

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"gotransfer/internal/openblas"
)

// Backbone is a frozen feature extractor: the CPU engine, or the CUDA one
// in builds with the cuda tag.
type Backbone interface {
	// Features maps a batch of preprocessed NHWC images (N, H, W, 3) to
	// pooled features (N, FeatureDim()).
	Features(x *tensor.Dense) (*tensor.Dense, error)
	// FeaturesWithTaps is Features that also hands tap the intermediate
	// activations (see Tap), for parity tests and Grad-CAM.
	FeaturesWithTaps(x *tensor.Dense, tap Tap) (*tensor.Dense, error)
	FeatureDim() int
	Weights() *Weights
	Close() error
}

// New returns the backbone for a device: "cpu" (or "") or "cuda".
func New(w *Weights, device string) (Backbone, error) {
	switch device {
	case "", "cpu":
		return NewCPU(w)
	case "cuda":
		return newCUDA(w)
	default:
		return nil, fmt.Errorf("resnet: unknown device %q: want cpu or cuda", device)
	}
}

// Classify applies the weights' predictions layer (the ImageNet top) to
// pooled features (N, FeatureDim) and returns class probabilities
// (N, Classes). It fails when the weights have no predictions layer.
func (w *Weights) Classify(features *tensor.Dense) (*tensor.Dense, error) {
	if w.Classes == 0 {
		return nil, fmt.Errorf("weights %s have no predictions layer (a 'notop' file): only features can be computed", w.Source)
	}
	f := w.Arch.FeatureDim()
	if s := features.Shape(); len(s) != 2 || s[1] != f {
		return nil, fmt.Errorf("resnet: features shape %v: want (N, %d)", s, f)
	}
	n, c := features.Shape()[0], w.Classes
	probs := make([]float32, n*c)
	for i := range n {
		copy(probs[i*c:(i+1)*c], w.data("predictions/bias"))
	}
	x := features.Data().([]float32)
	openblas.Sgemm(n, c, f, 1, x, w.data("predictions/kernel"), 1, probs)
	for r := 0; r < len(probs); r += c {
		softmax(probs[r : r+c])
	}
	return tensor.New(tensor.WithShape(n, c), tensor.WithBacking(probs)), nil
}

// softmax replaces logits by probabilities, in float64.
func softmax(row []float32) {
	m := row[0]
	for _, v := range row {
		m = max(m, v)
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v - m))
	}
	for j, v := range row {
		row[j] = float32(math.Exp(float64(v-m)) / sum)
	}
}
