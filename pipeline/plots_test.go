package pipeline

import (
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestROCCurve: the curve runs from (0, 0) to (1, 1) without stepping
// back, and its trapezoid area is rocAUC's, ties included.
func TestROCCurve(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{2, 7, 100} {
		scores := make([]float32, n)
		labels := make([]int, n)
		for i := range scores {
			labels[i] = i % 2
			scores[i] = float32(math.Round(rng.Float64()*10+float64(labels[i])*3) / 10) // ties
		}
		curve := rocCurve(scores, labels)
		if first, last := curve[0], curve[len(curve)-1]; first.FPR != 0 || first.TPR != 0 || last.FPR != 1 || last.TPR != 1 {
			t.Fatalf("n %d: curve from %+v to %+v", n, first, last)
		}
		area := 0.0
		for i := 1; i < len(curve); i++ {
			a, b := curve[i-1], curve[i]
			if b.FPR < a.FPR || b.TPR < a.TPR || b.Threshold >= a.Threshold {
				t.Fatalf("n %d: steps back from %+v to %+v", n, a, b)
			}
			area += (b.FPR - a.FPR) * (a.TPR + b.TPR) / 2
		}
		auc, ok := rocAUC(scores, labels)
		if !ok || math.Abs(area-auc) > 1e-12 {
			t.Errorf("n %d: area %v, rocAUC %v", n, area, auc)
		}
	}
	if rocCurve([]float32{0.1, 0.2}, []int{1, 1}) != nil {
		t.Error("a curve without negatives")
	}
}

// TestWriteEvaluationPlots: a confusion matrix always, a ROC curve for two
// classes, as PNGs.
func TestWriteEvaluationPlots(t *testing.T) {
	for _, tc := range []struct {
		classes []string
		roc     bool
	}{{[]string{"cats", "dogs"}, true}, {[]string{"a", "b", "c"}, false}} {
		dir := t.TempDir()
		conf := NewConfusion(tc.classes)
		var probs [][]float32
		var labels []int
		for i := range 12 {
			y, p := i%len(tc.classes), make([]float32, len(tc.classes))
			p[y], p[(y+1)%len(tc.classes)] = 0.7, 0.3
			conf.Add(y, y)
			probs, labels = append(probs, p), append(labels, y)
		}
		written, err := WriteEvaluationPlots(dir, conf, probs, labels)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 2, false: 1}[tc.roc]; len(written) != want {
			t.Errorf("%d classes: wrote %q", len(tc.classes), written)
		}
		for name, want := range map[string]bool{"confusion.png": true, "roc.png": tc.roc} {
			f, err := os.Open(filepath.Join(dir, name))
			if !want {
				if err == nil {
					f.Close()
					t.Errorf("%d classes: %s written", len(tc.classes), name)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			m, err := png.Decode(f)
			f.Close()
			if err != nil || m.Bounds().Dx() < 200 {
				t.Errorf("%s: %v, %v", name, m.Bounds(), err)
			}
		}
	}
}

// TestEvaluationPlotsScale: hundreds of classes draw in well under a
// second (no text in the cells, numbered axes), a roc.png of the user's
// in the folder is left alone, and NaN scores (a diverged head) do not
// hang the ROC curve.
func TestEvaluationPlotsScale(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "roc.png"), []byte("stale"), 0o644)
	classes := make([]string, 300)
	for i := range classes {
		classes[i] = fmt.Sprintf("class_name_%03d", i)
	}
	conf := NewConfusion(classes)
	for i := range classes {
		conf.Add(i, (i*7)%len(classes))
	}
	start := time.Now()
	written, err := WriteEvaluationPlots(dir, conf, nil, nil)
	if err != nil || len(written) != 1 {
		t.Fatalf("wrote %q: %v", written, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("300 classes took %v", d)
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "roc.png")); string(raw) != "stale" {
		t.Errorf("a roc.png not drawn was touched (%v)", err)
	}
	done := make(chan []ROCPoint, 1)
	go func() {
		done <- rocCurve([]float32{0.9, float32(math.NaN()), 0.2, float32(math.NaN())}, []int{1, 0, 0, 1})
	}()
	select {
	case c := <-done:
		if last := c[len(c)-1]; last.FPR != 1 || last.TPR != 1 {
			t.Errorf("with NaN scores the curve ends at %+v", last)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("rocCurve does not end with NaN scores")
	}
}
