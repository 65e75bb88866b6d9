package resnet

import (
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"gotransfer/internal/openblas"
)

// Calibrate returns a copy of w whose BatchNorm moving statistics are the
// mean and variance of each convolution's output on the batch x, layer by
// layer, as a network in training mode would compute them. It is what makes
// random weights usable: without it their activations drift in scale and
// offset through the sixteen blocks and the pooled features of different
// images become nearly equal. (The reference goldens calibrate the same
// way.) Pretrained weights need no calibration.
func Calibrate(w *Weights, x *tensor.Dense) (*Weights, error) {
	n, h, wd, in, err := checkInput(x)
	if err != nil {
		return nil, err
	}
	e, err := NewCPU(w)
	if err != nil {
		return nil, err
	}
	e.reserve(n, h, wd)
	defer openblas.SetThreads(openblas.Threads())
	openblas.SetThreads(1)

	// A copy, with the variant's marker: FromTensors reads it back.
	m := make(map[string]*tensor.Dense, len(w.tensors)+1)
	for k, v := range w.arrays() {
		m[k] = v
	}
	// convBN runs one convolution with its raw kernel and bias, sets its
	// BatchNorm statistics from the output, and normalizes the output.
	convBN := func(c ConvSpec, src []float32, h, wd int, dst []float32) (int, int) {
		raw := foldedConv{spec: c, w: w.data(c.Name + "_conv/kernel"), b: make([]float32, c.Out)}
		if b := w.data(c.Name + "_conv/bias"); b != nil {
			raw.b = b
		}
		oh, ow := e.conv(&raw, src, n, h, wd, dst, nil, false)
		rows := n * oh * ow
		out := dst[:rows*c.Out]
		mean, variance := make([]float64, c.Out), make([]float64, c.Out)
		for r := range rows {
			for j, v := range out[r*c.Out : (r+1)*c.Out] {
				mean[j] += float64(v)
			}
		}
		for j := range mean {
			mean[j] /= float64(rows)
		}
		for r := range rows {
			for j, v := range out[r*c.Out : (r+1)*c.Out] {
				d := float64(v) - mean[j]
				variance[j] += d * d
			}
		}
		gamma, beta := w.data(c.Name+"_bn/gamma"), w.data(c.Name+"_bn/beta")
		mm, mv := make([]float32, c.Out), make([]float32, c.Out)
		scale := make([]float64, c.Out)
		for j := range variance {
			variance[j] /= float64(rows)
			mm[j], mv[j] = float32(mean[j]), float32(variance[j])
			scale[j] = float64(gamma[j]) / math.Sqrt(variance[j]+w.Arch.Epsilon)
		}
		m[c.Name+"_bn/moving_mean"] = tensor.New(tensor.WithShape(c.Out), tensor.WithBacking(mm))
		m[c.Name+"_bn/moving_variance"] = tensor.New(tensor.WithShape(c.Out), tensor.WithBacking(mv))
		for r := range rows {
			row := out[r*c.Out : (r+1)*c.Out]
			for j, v := range row {
				row[j] = float32((float64(v)-mean[j])*scale[j] + float64(beta[j]))
			}
		}
		return oh, ow
	}
	relu := func(s []float32) {
		for i, v := range s {
			s[i] = max(v, 0)
		}
	}
	a := w.Arch
	b := &e.bufs
	h, wd = convBN(a.Stem, in, h, wd, b[0])
	relu(b[0][:n*h*wd*a.Stem.Out])
	h, wd = maxPool3x3s2(b[0], n, h, wd, a.Stem.Out, b[1])
	cur := 1
	for _, blk := range a.Blocks {
		short, t1, t2 := blockBuffers(cur, blk.Shortcut != nil)
		if blk.Shortcut != nil {
			convBN(*blk.Shortcut, b[cur], h, wd, b[short])
		}
		h1, w1 := convBN(blk.Convs[0], b[cur], h, wd, b[t1])
		relu(b[t1][:n*h1*w1*blk.Convs[0].Out])
		h2, w2 := convBN(blk.Convs[1], b[t1], h1, w1, b[t2])
		relu(b[t2][:n*h2*w2*blk.Convs[1].Out])
		h, wd = convBN(blk.Convs[2], b[t2], h2, w2, b[t1])
		out := b[t1][:n*h*wd*blk.Convs[2].Out]
		for i := range out {
			out[i] = max(out[i]+b[short][i], 0)
		}
		cur = t1
	}
	return FromTensors(fmt.Sprintf("%s, BatchNorm calibrated on %d images", w.Source, n), m)
}
