package dataset

import (
	"fmt"
	"image"
)

// preprocessor maps an RGB value v (0..255) of channel c to
// out[dst[c]] = v*mul[c] + add[c].
type preprocessor struct {
	dst      [3]int
	mul, add [3]float32
}

func newPreprocessor(mode string) (preprocessor, error) {
	switch mode {
	case PreprocessCaffe: // RGB->BGR, minus the BGR means 103.939, 116.779, 123.68
		return preprocessor{dst: [3]int{2, 1, 0}, mul: [3]float32{1, 1, 1}, add: [3]float32{-123.68, -116.779, -103.939}}, nil
	case PreprocessTorch:
		mean, std := [3]float64{0.485, 0.456, 0.406}, [3]float64{0.229, 0.224, 0.225}
		p := preprocessor{dst: [3]int{0, 1, 2}}
		for c := range 3 {
			p.mul[c] = float32(1 / (255 * std[c]))
			p.add[c] = float32(-mean[c] / std[c])
		}
		return p, nil
	case PreprocessNone:
		return preprocessor{dst: [3]int{0, 1, 2}, mul: [3]float32{1, 1, 1}}, nil
	}
	return preprocessor{}, fmt.Errorf("dataset: unknown preprocessing %q (want %q, %q or %q)", mode, PreprocessCaffe, PreprocessTorch, PreprocessNone)
}

// Affine returns the preprocessing mode as the affine map it is: the value
// v (0..255) of RGB channel c of a resized pixel becomes channel perm[c] of
// the network's input, v·mul[c] + add[c] (each rounded to float32), as an
// exported model must redo it.
func Affine(mode string) (perm [3]int, mul, add [3]float32, err error) {
	p, err := newPreprocessor(mode)
	return p.dst, p.mul, p.add, err
}

// cropBox returns the centred region of a w x h image with the aspect ratio
// tw:th, computed exactly as Keras' smart_resize (crop_to_aspect_ratio).
func cropBox(w, h, tw, th int) image.Rectangle {
	ch := max(min(h, w*th/tw), 1)
	cw := max(min(w, h*tw/th), 1)
	y0, x0 := (h-ch)/2, (w-cw)/2
	return image.Rect(x0, y0, x0+cw, y0+ch)
}

// tap is one output coordinate's pair of source offsets and the weight of
// the second.
type tap struct {
	i0, i1 int
	w      float32
}

// taps computes bilinear taps with half-pixel centres and no antialiasing, as
// tf.image.resize and PyTorch's interpolate(align_corners=False):
// src = (dst + 0.5) * in/out - 0.5, clamped at 0. Offsets are start + index
// times stride. Coordinates are computed in float64 so that large images
// keep 1e-3 accuracy.
func taps(t []tap, in, out, start, stride int) []tap {
	if cap(t) < out {
		t = make([]tap, out)
	}
	t = t[:out]
	scale := float64(in) / float64(out)
	for i := range t {
		s := max((float64(i)+0.5)*scale-0.5, 0)
		i0 := min(int(s), in-1)
		i1 := min(i0+1, in-1)
		t[i] = tap{(start + i0) * stride, (start + i1) * stride, float32(s - float64(i0))}
	}
	return t
}

// resizer holds the tap tables, reused from one image to the next.
type resizer struct{ xs, ys []tap }

// resize resamples the region r of src to outW x outH and writes the
// preprocessed values, HWC, into out (len outW*outH*3).
func (z *resizer) resize(src rgb8, r image.Rectangle, outW, outH int, p *preprocessor, out []float32) {
	z.xs = taps(z.xs, r.Dx(), outW, r.Min.X, 3)
	z.ys = taps(z.ys, r.Dy(), outH, r.Min.Y, 3*src.w)
	d0, d1, d2 := p.dst[0], p.dst[1], p.dst[2]
	m0, m1, m2 := p.mul[0], p.mul[1], p.mul[2]
	a0, a1, a2 := p.add[0], p.add[1], p.add[2]
	pix := src.pix
	o := 0
	for _, ty := range z.ys {
		row0, row1, wy := pix[ty.i0:], pix[ty.i1:], ty.w
		dst := out[o : o+3*outW : o+3*outW]
		for j, tx := range z.xs {
			p00, p01 := row0[tx.i0:tx.i0+3:tx.i0+3], row0[tx.i1:tx.i1+3:tx.i1+3]
			p10, p11 := row1[tx.i0:tx.i0+3:tx.i0+3], row1[tx.i1:tx.i1+3:tx.i1+3]
			wx := tx.w
			px := dst[3*j : 3*j+3 : 3*j+3]
			px[d0] = lerp2(p00[0], p01[0], p10[0], p11[0], wx, wy)*m0 + a0
			px[d1] = lerp2(p00[1], p01[1], p10[1], p11[1], wx, wy)*m1 + a1
			px[d2] = lerp2(p00[2], p01[2], p10[2], p11[2], wx, wy)*m2 + a2
		}
		o += 3 * outW
	}
}

func lerp2(a, b, c, d uint8, wx, wy float32) float32 {
	top := float32(a) + (float32(b)-float32(a))*wx
	bot := float32(c) + (float32(d)-float32(c))*wx
	return top + (bot-top)*wy
}
