package head

import "fmt"

// LogitGradient returns the logits z (the output layer's values before the
// softmax) of one feature vector x, and the gradient of z[class] with
// respect to x: how much each input feature raises that class's score. It
// is what Grad-CAM weighs a backbone's last feature maps with (the score
// before the softmax, as the Grad-CAM paper and Keras' example take it).
//
// The head runs as Forward does (no dropout), in float64 from the float32
// parameters, with the backward pass written out rather than built as a
// gorgonia graph: the training graphs never compute the input's gradient,
// and one vector through a few dense layers needs no graph. ReLU's
// derivative at 0 is taken as 0.
func (h *Head) LogitGradient(x []float32, class int) (logits, grad []float32, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(x) != h.sizes[0] {
		return nil, nil, fmt.Errorf("head: logit gradient: %d features, want %d", len(x), h.sizes[0])
	}
	classes := h.sizes[len(h.sizes)-1]
	if class < 0 || class >= classes {
		return nil, nil, fmt.Errorf("head: logit gradient: class %d, want [0, %d)", class, classes)
	}
	// Forward, keeping each layer's input for the backward pass.
	acts := make([][]float64, h.layers()+1)
	acts[0] = make([]float64, len(x))
	for i, v := range x {
		acts[0][i] = float64(v)
	}
	for l := range h.layers() {
		out := h.sizes[l+1]
		kernel, bias := h.params[2*l].Value.Float32s(), h.params[2*l+1].Value.Float32s()
		y := make([]float64, out)
		for j := range y {
			y[j] = float64(bias[j])
		}
		for i, a := range acts[l] {
			if a == 0 {
				continue // ReLU zeros: most of a hidden layer's inputs
			}
			row := kernel[i*out : (i+1)*out]
			for j, k := range row {
				y[j] += a * float64(k)
			}
		}
		if l+1 < h.layers() {
			for j, v := range y {
				y[j] = max(v, 0)
			}
		}
		acts[l+1] = y
	}
	// Backward from dz[class]/dz = e_class.
	g := make([]float64, classes)
	g[class] = 1
	for l := h.layers() - 1; l >= 0; l-- {
		in, out := h.sizes[l], h.sizes[l+1]
		kernel := h.params[2*l].Value.Float32s()
		gin := make([]float64, in)
		for i := range gin {
			if l > 0 && acts[l][i] <= 0 {
				continue // through the ReLU that made this input
			}
			row := kernel[i*out : (i+1)*out]
			s := 0.0
			for j, k := range row {
				s += float64(k) * g[j]
			}
			gin[i] = s
		}
		g = gin
	}
	return toFloat32(acts[h.layers()]), toFloat32(g), nil
}

func toFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
