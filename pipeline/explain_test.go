package pipeline

import (
	"errors"
	"image"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gotransfer/dataset"
)

// TestExplain trains a tiny run and explains its images: the probabilities
// are Predict's, the class explained the most probable unless one is asked
// for, the map one value per cell of the last feature grid, in [0, 1], and
// the overlay covers the picture the network was shown part of.
func TestExplain(t *testing.T) {
	dir := t.TempDir()
	tinyRun(t, dir, 4, `
data: {dir: data, image_size: [64, 96], crop_to_aspect_ratio: true, validation_split: 0.25, workers: 2}
backbone: {random_width: 8}
head: {layers: [16]}
train: {epochs: 2, batch: 4}
run: {dir: run}
`)
	c, err := LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	files, err := dataset.ImageFiles(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		path := filepath.Join(dir, "data", filepath.FromSlash(f))
		want, err := c.Predict(path)
		if err != nil {
			t.Fatal(err)
		}
		top := 0
		if want[1] > want[0] {
			top = 1
		}
		for _, class := range []int{-1, 0, 1} {
			e, err := c.Explain(path, class)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(e.Probabilities, want) {
				t.Errorf("%s: probabilities %v, Predict's %v", f, e.Probabilities, want)
			}
			if wantClass := cmpOr(class, top); e.Class != wantClass {
				t.Errorf("%s: explained class %d, asked %d: want %d", f, e.Class, class, wantClass)
			}
			// 64x96 in: 2x3 cells out of the last block.
			if e.Rows != 2 || e.Cols != 3 || len(e.Heatmap) != 6 {
				t.Fatalf("%s: map %dx%d with %d values, want 2x3", f, e.Rows, e.Cols, len(e.Heatmap))
			}
			if lo, hi := slices.Min(e.Heatmap), slices.Max(e.Heatmap); lo < 0 || !(hi == 1 || hi == 0) {
				t.Errorf("%s: map in [%v, %v], want [0, 1] with a maximum of 1, or all zero", f, lo, hi)
			}
			// Cropped to 96:64, centred, as Keras' smart_resize.
			b := e.View.Image.Bounds()
			ch, cw := min(b.Dy(), b.Dx()*64/96), min(b.Dx(), b.Dy()*96/64)
			if box := image.Rect((b.Dx()-cw)/2, (b.Dy()-ch)/2, (b.Dx()-cw)/2+cw, (b.Dy()-ch)/2+ch); e.View.Box != box || box == b {
				t.Errorf("%s: box %v in %v, want the crop %v", f, e.View.Box, b, box)
			}
			m, err := e.Overlay()
			if err != nil || m.Bounds() != b {
				t.Errorf("%s: overlay %v, %v; want the image's bounds %v", f, m.Bounds(), err, b)
			}
		}
	}
	if _, err := c.Explain(filepath.Join(dir, "data", filepath.FromSlash(files[0])), 2); err == nil || !strings.Contains(err.Error(), "class 2, want -1 (the most probable) or [0, 2)") {
		t.Errorf("Explain(class 2): %v", err)
	}
	if _, err := c.Explain(filepath.Join(dir, "missing.jpg"), -1); !errors.Is(err, dataset.ErrBadImage) {
		t.Errorf("Explain(missing file): %v, want ErrBadImage", err)
	}
}

// cmpOr is class, or top when class is -1.
func cmpOr(class, top int) int {
	if class == -1 {
		return top
	}
	return class
}
