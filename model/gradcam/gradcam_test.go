package gradcam

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"
)

// maps builds rows x cols x depth activations from one function per channel.
func maps(rows, cols int, channels ...func(i, j int) float32) []float32 {
	depth := len(channels)
	act := make([]float32, rows*cols*depth)
	for i := range rows {
		for j := range cols {
			for k, f := range channels {
				act[(i*cols+j)*depth+k] = f(i, j)
			}
		}
	}
	return act
}

func bump(ci, cj int) func(i, j int) float32 {
	return func(i, j int) float32 {
		d := float64((i-ci)*(i-ci) + (j-cj)*(j-cj))
		return float32(math.Exp(-d / 2))
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func TestHeatmap(t *testing.T) {
	const rows, cols = 7, 7
	cat, dog := bump(1, 2), bump(5, 5)
	for _, tc := range []struct {
		name string
		grad []float32
		peak int // row-major index of the maximum, -1 for an all-zero map
	}{
		{"the first channel counts", []float32{1, 0}, 1*cols + 2},
		{"the second channel counts", []float32{0, 2}, 5*cols + 5},
		{"the larger weight wins", []float32{1, 3}, 5*cols + 5},
		{"a negative weight is no evidence", []float32{1, -1}, 1*cols + 2},
		{"nothing supports the class", []float32{-1, -1}, -1},
		{"zero gradient", []float32{0, 0}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heat, err := Heatmap(maps(rows, cols, cat, dog), rows, cols, 2, tc.grad)
			if err != nil {
				t.Fatal(err)
			}
			if len(heat) != rows*cols {
				t.Fatalf("%d values, want %d", len(heat), rows*cols)
			}
			lo, hi := heat[0], heat[0]
			for _, v := range heat {
				lo, hi = min(lo, v), max(hi, v)
			}
			if tc.peak < 0 {
				if lo != 0 || hi != 0 {
					t.Fatalf("map in [%v, %v], want all zero", lo, hi)
				}
				return
			}
			if lo < 0 || hi != 1 {
				t.Errorf("map in [%v, %v], want [0, 1] with a maximum of 1", lo, hi)
			}
			if got := argmax(heat); got != tc.peak {
				t.Errorf("peak at (%d, %d), want (%d, %d)", got/cols, got%cols, tc.peak/cols, tc.peak%cols)
			}
		})
	}
}

// TestHeatmapIsWeightedSum pins the formula on one location: the ReLU of
// the gradient-weighted sum, relative to the largest.
func TestHeatmapIsWeightedSum(t *testing.T) {
	act := []float32{ // 1 x 3 locations, 2 channels
		1, 2,
		3, -1,
		-4, 0,
	}
	heat, err := Heatmap(act, 1, 3, 2, []float32{0.5, 1})
	if err != nil {
		t.Fatal(err)
	}
	// Sums 2.5, 0.5, -2: ReLU, then divided by 2.5. The 1/(rows*cols) of α
	// cancels.
	want := []float32{1, 0.2, 0}
	for i := range want {
		if math.Abs(float64(heat[i]-want[i])) > 1e-6 {
			t.Errorf("location %d: %v, want %v", i, heat[i], want[i])
		}
	}
}

func TestHeatmapErrors(t *testing.T) {
	for _, tc := range []struct {
		act               []float32
		rows, cols, depth int
		grad              []float32
		want              string
	}{
		{make([]float32, 8), 2, 2, 2, make([]float32, 3), "3 gradient values, want one per channel (2)"},
		{make([]float32, 7), 2, 2, 2, make([]float32, 2), "7 activation values, want 2x2x2 = 8"},
		{nil, 0, 2, 2, make([]float32, 2), "want positive sizes"},
	} {
		if _, err := Heatmap(tc.act, tc.rows, tc.cols, tc.depth, tc.grad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Heatmap(%d values, %dx%dx%d, %d gradients): %v, want %q", len(tc.act), tc.rows, tc.cols, tc.depth, len(tc.grad), err, tc.want)
		}
	}
}

func TestJet(t *testing.T) {
	for _, tc := range []struct {
		t    float64
		want color.RGBA
	}{
		{-1, color.RGBA{0, 0, 128, 255}},
		{0, color.RGBA{0, 0, 128, 255}},
		{0.125, color.RGBA{0, 0, 255, 255}},
		{0.5, color.RGBA{128, 255, 128, 255}},
		{0.875, color.RGBA{255, 0, 0, 255}},
		{1, color.RGBA{128, 0, 0, 255}},
		{2, color.RGBA{128, 0, 0, 255}},
	} {
		if got := Jet(tc.t); got != tc.want {
			t.Errorf("Jet(%v) = %v, want %v", tc.t, got, tc.want)
		}
	}
}

func grey(w, h int, v uint8) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = v
	}
	return m
}

// TestOverlay: a 2x2 map hot in its top-left cell over the middle 20x20 box
// of a 40x20 image lands on the box's top-left corner (its top-right
// mirrored), cold elsewhere in the box, and the image outside is dimmed.
func TestOverlay(t *testing.T) {
	img := grey(40, 20, 200)
	box := image.Rect(10, 0, 30, 20)
	heat := []float32{1, 0, 0, 0}
	rgb := func(m *image.RGBA, x, y int) [3]uint8 {
		c := m.RGBAAt(x, y)
		return [3]uint8{c.R, c.G, c.B}
	}
	// Blend 0.5: (200 + jet)/2.
	hot, cold := [3]uint8{164, 100, 100}, [3]uint8{100, 100, 164}
	for _, tc := range []struct {
		mirrored  bool
		hot, cold image.Point
	}{
		{false, image.Pt(10, 0), image.Pt(29, 19)},
		{true, image.Pt(29, 0), image.Pt(10, 19)},
	} {
		out, err := Overlay(img, box, tc.mirrored, heat, 2, 2, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if got := rgb(out, tc.hot.X, tc.hot.Y); got != hot {
			t.Errorf("mirrored %v: hot corner %v: %v, want %v", tc.mirrored, tc.hot, got, hot)
		}
		if got := rgb(out, tc.cold.X, tc.cold.Y); got != cold {
			t.Errorf("mirrored %v: cold corner %v: %v, want %v", tc.mirrored, tc.cold, got, cold)
		}
		for _, p := range []image.Point{{0, 0}, {9, 19}, {30, 5}, {39, 19}} {
			if got := rgb(out, p.X, p.Y); got != [3]uint8{100, 100, 100} {
				t.Errorf("mirrored %v: outside the box at %v: %v, want dimmed (100, 100, 100)", tc.mirrored, p, got)
			}
		}
		if img.RGBAAt(10, 0) != (color.RGBA{200, 200, 200, 200}) {
			t.Fatal("Overlay changed its input")
		}
	}
}

// TestOverlayInterpolates: along a row of a 1x2 map going 0 -> 1, the
// blend's red rises monotonically, its blue falls, from edge to edge.
func TestOverlayInterpolates(t *testing.T) {
	out, err := Overlay(grey(16, 4, 0), image.Rect(0, 0, 16, 4), false, []float32{0, 1}, 1, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.RGBAAt(0, 0), Jet(0); got != want {
		t.Errorf("left edge %v, want Jet(0) %v", got, want)
	}
	if got, want := out.RGBAAt(15, 3), Jet(1); got != want {
		t.Errorf("right edge %v, want Jet(1) %v", got, want)
	}
	mid := out.RGBAAt(8, 2) // the map's value there: (8.5·2/16 − 0.5) = 0.5625
	if want := Jet(0.5625); mid != want {
		t.Errorf("middle %v, want Jet(0.5625) %v", mid, want)
	}
}

func TestOverlayErrors(t *testing.T) {
	img := grey(8, 8, 0)
	for _, tc := range []struct {
		box   image.Rectangle
		heat  []float32
		alpha float64
		want  string
	}{
		{img.Bounds(), make([]float32, 3), 0.4, "3 heat values for a 2x2 map"},
		{img.Bounds(), make([]float32, 4), 1.5, "alpha 1.5"},
		{image.Rect(20, 20, 30, 30), make([]float32, 4), 0.4, "outside the image"},
	} {
		if _, err := Overlay(img, tc.box, false, tc.heat, 2, 2, tc.alpha); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Overlay(box %v, %d values, alpha %v): %v, want %q", tc.box, len(tc.heat), tc.alpha, err, tc.want)
		}
	}
}

// BenchmarkDraw draws a 7x7 map over a 12-megapixel photo (4000x3000).
func BenchmarkDraw(b *testing.B) {
	img := grey(4000, 3000, 120)
	heat := make([]float32, 49)
	for i := range heat {
		heat[i] = float32(i) / 48
	}
	for b.Loop() {
		if err := Draw(img, image.Rect(500, 0, 3500, 3000), false, heat, 7, 7, 0.4); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(12/(b.Elapsed().Seconds()/float64(b.N)), "megapixels/s")
}
