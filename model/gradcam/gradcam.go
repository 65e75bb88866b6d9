package gradcam

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
)

// Heatmap returns the Grad-CAM map of one image's feature maps act (rows x
// cols x depth, row-major, channels last: an NHWC activation of batch 1)
// for a class whose score has gradient grad (depth values) with respect to
// the globally average-pooled act. The map has rows x cols values in [0,
// 1]: ReLU(Σ_k α_k·act_k) with α_k = grad_k / (rows·cols), divided by its
// maximum, or all zero when no value is positive.
func Heatmap(act []float32, rows, cols, depth int, grad []float32) ([]float32, error) {
	switch {
	case rows < 1 || cols < 1 || depth < 1:
		return nil, fmt.Errorf("gradcam: feature maps %dx%dx%d: want positive sizes", rows, cols, depth)
	case len(act) != rows*cols*depth:
		return nil, fmt.Errorf("gradcam: %d activation values, want %dx%dx%d = %d", len(act), rows, cols, depth, rows*cols*depth)
	case len(grad) != depth:
		return nil, fmt.Errorf("gradcam: %d gradient values, want one per channel (%d)", len(grad), depth)
	}
	sums := make([]float64, rows*cols)
	largest := 0.0
	for p := range sums {
		s := 0.0
		for k, a := range act[p*depth : (p+1)*depth] {
			s += float64(a) * float64(grad[k])
		}
		sums[p] = s / float64(rows*cols)
		largest = max(largest, sums[p])
	}
	heat := make([]float32, rows*cols)
	if largest > 0 {
		for p, s := range sums {
			heat[p] = float32(max(s, 0) / largest)
		}
	}
	return heat, nil
}

// Jet is the jet colour map (matplotlib's, to within a few percent) at t in
// [0, 1]: dark blue, blue, cyan, yellow, red, dark red. t is clamped.
func Jet(t float64) color.RGBA {
	t = min(max(t, 0), 1)
	c := func(v float64) uint8 { return uint8(math.Round(255 * min(max(v, 0), 1))) }
	return color.RGBA{
		R: c(1.5 - math.Abs(4*t-3)),
		G: c(1.5 - math.Abs(4*t-2)),
		B: c(1.5 - math.Abs(4*t-1)),
		A: 255,
	}
}

// Overlay returns a copy of img with heat (rows x cols, values in [0, 1],
// as Heatmap returns it) drawn over box, the region of img the network was
// shown: resized bilinearly to the box, coloured with Jet and blended as
// (1-alpha)·image + alpha·colour. With mirrored the network was shown the
// box's mirror image, so the map is mirrored back. Pixels outside box are
// dimmed to half their brightness. box is clipped to img's bounds.
func Overlay(img image.Image, box image.Rectangle, mirrored bool, heat []float32, rows, cols int, alpha float64) (*image.RGBA, error) {
	if rows < 1 || cols < 1 || len(heat) != rows*cols {
		return nil, fmt.Errorf("gradcam: overlay: %d heat values for a %dx%d map", len(heat), rows, cols)
	}
	if !(alpha >= 0 && alpha <= 1) {
		return nil, fmt.Errorf("gradcam: overlay: alpha %v, want [0, 1]", alpha)
	}
	b := img.Bounds()
	box = box.Intersect(b)
	if box.Empty() {
		return nil, fmt.Errorf("gradcam: overlay: box %v outside the image %v", box, b)
	}
	xs := taps(box.Dx(), cols, mirrored)
	ys := taps(box.Dy(), rows, false)
	out := image.NewRGBA(b)
	draw.Draw(out, b, img, b.Min, draw.Src)
	mix := func(v uint8, c uint8) uint8 { return uint8(math.Round((1-alpha)*float64(v) + alpha*float64(c))) }
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := out.Pix[out.PixOffset(b.Min.X, y):][:4*b.Dx()]
		for x := b.Min.X; x < b.Max.X; x++ {
			px := row[4*(x-b.Min.X):][:4]
			px[3] = 255
			if !(image.Point{x, y}).In(box) {
				px[0], px[1], px[2] = px[0]/2, px[1]/2, px[2]/2
				continue
			}
			tx, ty := xs[x-box.Min.X], ys[y-box.Min.Y]
			h := (1-ty.w)*((1-tx.w)*float64(heat[ty.i0*cols+tx.i0])+tx.w*float64(heat[ty.i0*cols+tx.i1])) +
				ty.w*((1-tx.w)*float64(heat[ty.i1*cols+tx.i0])+tx.w*float64(heat[ty.i1*cols+tx.i1]))
			j := Jet(h)
			px[0], px[1], px[2] = mix(px[0], j.R), mix(px[1], j.G), mix(px[2], j.B)
		}
	}
	return out, nil
}

// tap is one output coordinate's two source cells and the second's weight.
type tap struct {
	i0, i1 int
	w      float64
}

// taps maps each of n pixels to the cells of a map of m cells, with
// half-pixel centres and clamped edges; mirrored reverses the map.
func taps(n, m int, mirrored bool) []tap {
	out := make([]tap, n)
	for i := range out {
		s := (float64(i)+0.5)*float64(m)/float64(n) - 0.5
		s = min(max(s, 0), float64(m-1))
		i0 := int(s)
		i1 := min(i0+1, m-1)
		t := tap{i0, i1, s - float64(i0)}
		if mirrored {
			t = tap{m - 1 - i0, m - 1 - i1, t.w}
		}
		out[i] = t
	}
	return out
}
