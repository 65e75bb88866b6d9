package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gotransfer/dataset"
	"gotransfer/model/head"
	"gotransfer/model/resnet"

	"gorgonia.org/tensor"
)

// TestTTA: with TTA an image's probabilities are the mean of its own and
// its mirror image's, in Predict, PredictFiles and Evaluate alike, and
// Evaluate scores those means.
func TestTTA(t *testing.T) {
	dir := t.TempDir()
	tinyRun(t, dir, 4, tinyYAML)
	run := filepath.Join(dir, "run")
	plain, err := LoadClassifier(run, ClassifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	tta, err := LoadClassifier(run, ClassifierOptions{TTA: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tta.Close()
	data := filepath.Join(dir, "data")
	files, err := dataset.ImageFiles(data)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	want := map[string][]float32{}
	for _, f := range files {
		path := filepath.Join(data, filepath.FromSlash(f))
		paths = append(paths, path)
		p, err := plain.Predict(path)
		if err != nil {
			t.Fatal(err)
		}
		mcfg := plain.data
		mcfg.HorizontalFlip = true
		mpix, _, err := dataset.Load(mcfg, path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := plain.PredictPixels([][]float32{mpix})
		if err != nil {
			t.Fatal(err)
		}
		mean := make([]float32, len(p))
		for j := range p {
			mean[j] = (p[j] + m[0][j]) / 2
		}
		want[path] = mean
		got, err := tta.Predict(path)
		if err != nil {
			t.Fatal(err)
		}
		agree(t, "Predict "+f, got, mean)
		// An explanation states the prediction as the classifier makes it.
		e, err := tta.Explain(path, -1)
		if err != nil {
			t.Fatal(err)
		}
		agree(t, "Explain "+f, e.Probabilities, mean)
	}
	err = tta.PredictFiles(context.Background(), paths, 3, func(path string, probs []float32, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		agree(t, "PredictFiles "+path, probs, want[path])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := tta.Evaluate(context.Background(), data, 4)
	if err != nil {
		t.Fatal(err)
	}
	loss, correct := 0.0, 0
	for _, s := range ev.Scored {
		w := want[filepath.Join(data, filepath.FromSlash(s.Path))]
		agree(t, "Evaluate "+s.Path, s.Probabilities, w)
		loss -= math.Log(float64(w[s.True]))
		if head.Argmax(w) == s.True {
			correct++
		}
	}
	if n := len(ev.Scored); n != len(paths) || math.Abs(ev.Loss-loss/float64(n)) > 1e-5 || ev.Accuracy != float64(correct)/float64(n) {
		t.Errorf("evaluated %d images: loss %v accuracy %v; from the means %v %v", n, ev.Loss, ev.Accuracy, loss/float64(n), float64(correct)/float64(n))
	}
	plainEv, err := plain.Evaluate(context.Background(), data, 4)
	if err != nil {
		t.Fatal(err)
	}
	if plainEv.Loss == ev.Loss {
		t.Error("the same loss with and without TTA: the mirror images were not seen")
	}
}

// agree fails t unless got and want agree to 1e-5 (features differ in
// their last bits with the batch they are computed in).
func agree(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d probabilities, want %d", what, len(got), len(want))
	}
	for j := range got {
		if math.Abs(float64(got[j]-want[j])) > 1e-5 {
			t.Errorf("%s: class %d: %v, want %v", what, j, got[j], want[j])
		}
	}
}

// TestTTAUnusableMirrorCache: an unusable cache of the mirror images (a
// run trained with flip augmentation, one of its shards damaged) is
// computed again elsewhere, as the plain images' is, not an error.
func TestTTAUnusableMirrorCache(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyRun(t, dir, 4, "data: {dir: data, image_size: [48, 48], validation_split: 0.25, flip_augmentation: true}\nbackbone: {random_width: 4}\nhead: {layers: [8]}\ntrain: {epochs: 1, batch: 4}\nrun: {dir: run}\n")
	keys, _ := filepath.Glob(filepath.Join(cfg.Cache.Dir, "*", "key.json"))
	damaged := 0
	for _, k := range keys {
		raw, _ := os.ReadFile(k)
		if !strings.Contains(string(raw), `"horizontal_flip": true`) && !strings.Contains(string(raw), `"horizontal_flip":true`) {
			continue
		}
		shards, _ := filepath.Glob(filepath.Join(filepath.Dir(k), "shard-*.json"))
		for _, s := range shards {
			os.WriteFile(s, []byte("{"), 0o644)
			damaged++
		}
	}
	if damaged == 0 {
		t.Fatal("no shard of the mirror images' cache to damage")
	}
	c, err := LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{TTA: true})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := c.Evaluate(context.Background(), filepath.Join(dir, "data"), 4)
	if err != nil || ev.Images != 8 {
		t.Fatalf("evaluate with the mirror cache damaged: %v, %v", ev, err)
	}
	tmp := c.tmpFlipCache
	c.Close()
	if _, err := os.Stat(tmp); tmp == "" || !os.IsNotExist(err) {
		t.Errorf("the temporary mirror cache %q is left (%v)", tmp, err)
	}
}

// TestClassifierConcurrentPredict: goroutines sharing a Classifier (an
// HTTP handler's) get the predictions it gives one at a time, with TTA too.
func TestClassifierConcurrentPredict(t *testing.T) {
	dir := t.TempDir()
	tinyRun(t, dir, 4, tinyYAML)
	data := filepath.Join(dir, "data")
	files, err := dataset.ImageFiles(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tta := range []bool{false, true} {
		c, err := LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{TTA: tta})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		want := make([][]float32, len(files))
		for i, f := range files {
			if want[i], err = c.Predict(filepath.Join(data, filepath.FromSlash(f))); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4*len(files))
		for range 4 {
			wg.Go(func() {
				for i, f := range files {
					got, err := c.Predict(filepath.Join(data, filepath.FromSlash(f)))
					if err == nil && !slices.Equal(got, want[i]) {
						err = fmt.Errorf("%s (tta %v): %v concurrently, %v alone", f, tta, got, want[i])
					}
					if err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// TestPredictFilesUsesTheCache: images whose features the run cached (its
// own) cost no backbone pass, and get the probabilities Evaluate gives
// them from the same cache; new ones are computed.
func TestPredictFilesUsesTheCache(t *testing.T) {
	dir := t.TempDir()
	tinyRun(t, dir, 4, tinyYAML)
	c, err := LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	count := &counting{Backbone: c.backbone}
	c.backbone = count
	data := filepath.Join(dir, "data")
	ev, err := c.Evaluate(context.Background(), data, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{}
	for _, s := range ev.Scored {
		want[filepath.Join(data, filepath.FromSlash(s.Path))] = s.Probabilities
	}
	count.images = 0
	err = c.PredictFolder(context.Background(), data, 4, func(path string, probs []float32, err error) error {
		if err != nil || !slices.Equal(probs, want[path]) {
			t.Errorf("%s: %v, %v; Evaluate gave %v", path, probs, err, want[path])
		}
		return nil
	})
	if err != nil || count.images != 0 {
		t.Fatalf("PredictFolder of the run's own images: %v, %d images through the backbone", err, count.images)
	}

	fresh := filepath.Join(t.TempDir(), "new")
	if err := dataset.Synthesize(fresh, 2, 7); err != nil {
		t.Fatal(err)
	}
	if err := c.PredictFolder(context.Background(), fresh, 4, func(string, []float32, error) error { return nil }); err != nil || count.images != 4 {
		t.Errorf("new images: %v, %d through the backbone, want 4", err, count.images)
	}

	// A batch of two cached images and two new ones: only the new ones go
	// through the backbone, the cached keep Evaluate's probabilities.
	old, err := dataset.ImageFiles(data)
	if err != nil {
		t.Fatal(err)
	}
	young, err := dataset.ImageFiles(fresh)
	if err != nil {
		t.Fatal(err)
	}
	mixed := []string{filepath.Join(data, old[0]), filepath.Join(fresh, young[0]), filepath.Join(fresh, young[1]), filepath.Join(data, old[1])}
	count.images = 0
	err = c.PredictFiles(context.Background(), mixed, 4, func(path string, probs []float32, err error) error {
		if w, ok := want[path]; ok && !slices.Equal(probs, w) {
			t.Errorf("%s in a mixed batch: %v, Evaluate gave %v", path, probs, w)
		}
		return err
	})
	if err != nil || count.images != 2 {
		t.Errorf("a mixed batch: %v, %d through the backbone, want 2", err, count.images)
	}

	// A damaged cache: the backbone computes what it held.
	shards, _ := filepath.Glob(filepath.Join(c.Config.Cache.Dir, "*", "shard-*.npy"))
	for _, sh := range shards {
		os.Truncate(sh, 10)
	}
	count.images = 0
	if err := c.PredictFiles(context.Background(), mixed[:1], 4, func(_ string, _ []float32, err error) error { return err }); err != nil || count.images != 1 {
		t.Errorf("a damaged cache: %v, %d through the backbone, want 1", err, count.images)
	}
}

// TestClassifierConcurrentEvaluateAndClose: evaluations may run at once
// (the caches open once, under a lock: run it with -race), and a closed
// classifier says so.
func TestClassifierConcurrentEvaluateAndClose(t *testing.T) {
	dir := t.TempDir()
	tinyRun(t, dir, 4, tinyYAML)
	c, err := LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{TTA: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := c.Evaluate(context.Background(), filepath.Join(dir, "data"), 4); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "data", "cats", "cat_00000.jpg")
	if _, err := os.Stat(img); err != nil {
		img = filepath.Join(dir, "data", "cats", "cat_00000.png")
	}
	if _, err := c.Predict(img); !errors.Is(err, errClosed) {
		t.Errorf("Predict after Close: %v", err)
	}
	if _, err := c.Explain(img, -1); !errors.Is(err, errClosed) {
		t.Errorf("Explain after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// slowBackbone signals its first pass, then takes its time over each.
type slowBackbone struct {
	resnet.Backbone
	started chan struct{}
	once    sync.Once
}

func (s *slowBackbone) Features(x *tensor.Dense) (*tensor.Dense, error) {
	s.once.Do(func() { close(s.started) })
	time.Sleep(50 * time.Millisecond)
	return s.Backbone.Features(x)
}

// TestCloseWaitsForCalls: Close during an evaluation lets it finish (its
// temporary cache is not removed under it), then refuses new calls.
func TestCloseWaitsForCalls(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyRun(t, dir, 4, tinyYAML)
	if err := os.RemoveAll(cfg.Cache.Dir); err != nil { // a temporary cache, as on another machine
		t.Fatal(err)
	}
	c, err := LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slow := &slowBackbone{Backbone: c.backbone, started: make(chan struct{})}
	c.backbone = slow
	done := make(chan error, 1)
	go func() {
		_, err := c.Evaluate(context.Background(), filepath.Join(dir, "data"), 2)
		done <- err
	}()
	<-slow.started
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Evaluate with Close called meanwhile: %v", err)
		}
	default:
		t.Error("Close returned before the evaluation in progress ended")
	}
	if _, err := c.PredictPixels(nil); !errors.Is(err, errClosed) {
		t.Errorf("PredictPixels after Close: %v", err)
	}
}
