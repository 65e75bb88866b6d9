package pipeline

import (
	"bytes"
	"context"
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gotransfer/dataset"
	"gotransfer/model/resnet"

	"gorgonia.org/tensor"
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

// TestWeightsClassifier: pretrained weights' own classifier (their
// predictions layer) as a Classifier gives the probabilities the weights
// do, and Explain draws its most probable class; it has no run to
// evaluate, and weights without the layer are refused.
func TestWeightsClassifier(t *testing.T) {
	w, err := resnet.Random(8, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c", "d", "e"}
	c, err := NewWeightsClassifier(w, "cpu", dataset.Config{Height: 64, Width: 64, Preprocess: dataset.PreprocessCaffe}, names)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	if err := dataset.Synthesize(dir, 1, 4); err != nil {
		t.Fatal(err)
	}
	files, _ := dataset.ImageFiles(dir)
	path := filepath.Join(dir, filepath.FromSlash(files[0]))
	pix, _, err := dataset.Load(dataset.Config{Height: 64, Width: 64}, path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.PredictPixels([][]float32{pix})
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := resnet.New(w, "cpu")
	defer bb.Close()
	f, err := bb.Features(tensor.New(tensor.WithShape(1, 64, 64, 3), tensor.WithBacking(pix)))
	if err != nil {
		t.Fatal(err)
	}
	want, err := w.Classify(f)
	if err != nil {
		t.Fatal(err)
	}
	for j, p := range want.Float32s() {
		if math.Abs(float64(p-got[0][j])) > 1e-6 {
			t.Errorf("class %d: %v, the weights' %v", j, got[0][j], p)
		}
	}
	e, err := c.Explain(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	if top := slices.Index(e.Probabilities, slices.Max(e.Probabilities)); e.Class != top || len(e.Heatmap) != e.Rows*e.Cols {
		t.Errorf("explained class %d, most probable %d; map %dx%d of %d", e.Class, top, e.Rows, e.Cols, len(e.Heatmap))
	}
	if _, err := c.Evaluate(context.Background(), dir, 4); err == nil || !strings.Contains(err.Error(), "no run to evaluate") {
		t.Errorf("Evaluate: %v", err)
	}
	notop, _ := resnet.Random(8, 0, 3)
	if _, err := NewWeightsClassifier(notop, "cpu", dataset.Config{}, nil); err == nil || !strings.Contains(err.Error(), "no predictions layer") {
		t.Errorf("weights without the layer: %v", err)
	}
}

// TestClassifyFilesProgress: the bar counts every image streamed or
// skipped, batch by batch, and is not drawn complete (the caller reports
// the end).
func TestClassifyFilesProgress(t *testing.T) {
	dir := t.TempDir()
	if err := dataset.Synthesize(dir, 5, 2); err != nil {
		t.Fatal(err)
	}
	files, _ := dataset.ImageFiles(dir)
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(dir, filepath.FromSlash(f)))
	}
	broken := filepath.Join(dir, "broken.jpg")
	os.WriteFile(broken, []byte("no"), 0o644)
	paths = append(paths[:3], append([]string{broken}, paths[3:]...)...) // 11 paths
	w, err := resnet.Random(4, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := resnet.New(w, "cpu")
	defer bb.Close()
	var out bytes.Buffer
	p := NewProgress(&out)
	p.plainEvery = 0
	identity := func(f *tensor.Dense) (*tensor.Dense, error) { return f, nil }
	n := 0
	err = ClassifyFiles(context.Background(), dataset.Config{Height: 32, Width: 32, Workers: 1}, bb, identity, paths, 4, p, func(string, []float32, error) error {
		n++
		return nil
	})
	if err != nil || n != 11 {
		t.Fatalf("%d images reported, %v", n, err)
	}
	// Batches of 4 usable images, then 2: after the first, 4 done (5 if the
	// broken one, decoded ahead, was skipped already), after the second 9.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "images 4/11 ") && !strings.HasPrefix(lines[0], "images 5/11 ") || !strings.HasPrefix(lines[1], "images 9/11 ") {
		t.Errorf("progress lines %q, want 4/11 (or 5/11) then 9/11", lines)
	}
}
