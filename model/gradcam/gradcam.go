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

// Overlay returns a copy of img with heat drawn over it as Draw does.
func Overlay(img image.Image, box image.Rectangle, mirrored bool, heat []float32, rows, cols int, alpha float64) (*image.RGBA, error) {
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), img, out.Bounds().Min, draw.Src)
	if err := Draw(out, box, mirrored, heat, rows, cols, alpha); err != nil {
		return nil, err
	}
	return out, nil
}

// jetSteps is the resolution of Draw's colour table: heat values are
// rounded to multiples of 1/jetSteps.
const jetSteps = 1024

// Draw draws heat (rows x cols, values in [0, 1], as Heatmap returns it)
// over img in place: over box, the region of img the network was shown,
// resized bilinearly (half-pixel centres) to the box, coloured with Jet and
// blended as (1-alpha)·image + alpha·colour; with mirrored the network was
// shown the box's mirror image, so the map is mirrored back. Pixels outside
// box are dimmed to half their brightness and every pixel is made opaque.
// box is clipped to img's bounds.
func Draw(img *image.RGBA, box image.Rectangle, mirrored bool, heat []float32, rows, cols int, alpha float64) error {
	if rows < 1 || cols < 1 || len(heat) != rows*cols {
		return fmt.Errorf("gradcam: overlay: %d heat values for a %dx%d map", len(heat), rows, cols)
	}
	if !(alpha >= 0 && alpha <= 1) {
		return fmt.Errorf("gradcam: overlay: alpha %v, want [0, 1]", alpha)
	}
	b := img.Bounds()
	box = box.Intersect(b)
	if box.Empty() {
		return fmt.Errorf("gradcam: overlay: box %v outside the image %v", box, b)
	}
	// The blend of a pixel is keep[v] + tint[h][c]: one table for the
	// image's share, one for the colour's.
	var keep [256]float32
	for v := range keep {
		keep[v] = float32((1 - alpha) * float64(v))
	}
	tint := make([][3]float32, jetSteps+1)
	for k := range tint {
		c := Jet(float64(k) / jetSteps)
		tint[k] = [3]float32{float32(alpha * float64(c.R)), float32(alpha * float64(c.G)), float32(alpha * float64(c.B))}
	}
	xs := taps(box.Dx(), cols, mirrored)
	ys := taps(box.Dy(), rows, false)
	line := make([]float64, cols) // the map interpolated to this row
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := img.Pix[img.PixOffset(b.Min.X, y):][:4*b.Dx()]
		if y < box.Min.Y || y >= box.Max.Y {
			dim(row)
			continue
		}
		ty := ys[y-box.Min.Y]
		for j := range line {
			line[j] = (1-ty.w)*float64(heat[ty.i0*cols+j]) + ty.w*float64(heat[ty.i1*cols+j])
		}
		left, inside := 4*(box.Min.X-b.Min.X), 4*box.Dx()
		dim(row[:left])
		dim(row[left+inside:])
		px := row[left : left+inside]
		for i, tx := range xs {
			h := (1-tx.w)*line[tx.i0] + tx.w*line[tx.i1]
			t := &tint[int(min(max(h, 0), 1)*jetSteps+0.5)]
			p := px[4*i : 4*i+4]
			p[0] = uint8(keep[p[0]] + t[0] + 0.5)
			p[1] = uint8(keep[p[1]] + t[1] + 0.5)
			p[2] = uint8(keep[p[2]] + t[2] + 0.5)
			p[3] = 255
		}
	}
	return nil
}

// dim halves the brightness of RGBA pixels and makes them opaque.
func dim(pix []byte) {
	for i := 0; i+3 < len(pix); i += 4 {
		pix[i], pix[i+1], pix[i+2], pix[i+3] = pix[i]/2, pix[i+1]/2, pix[i+2]/2, 255
	}
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
