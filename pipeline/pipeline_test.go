package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/image/tiff"
	"gorgonia.org/tensor"

	"gotransfer/checkpoints"
	"gotransfer/configs"
	"gotransfer/dataset"
	"gotransfer/features"
	"gotransfer/internal/atomicfile"
	"gotransfer/internal/filelock"
	"gotransfer/internal/tfevents"
	"gotransfer/model/head"
	"gotransfer/model/resnet"
)

// stopAfter is a backbone that stops the work after n batches, as a kill
// during extraction would: it cancels the context and fails the next
// batch. (Cancelling alone left it to timing whether the batches decoded
// ahead were still computed and cached, which made the number of batches
// left for a later stop vary: the test failed now and then under load.)
type stopAfter struct {
	resnet.Backbone
	n      int
	cancel context.CancelFunc
}

func (s *stopAfter) Features(x *tensor.Dense) (*tensor.Dense, error) {
	if s.n--; s.n < 0 {
		s.cancel()
		return nil, context.Canceled
	}
	return s.Backbone.Features(x)
}

// counting is a backbone that counts the images it computes.
type counting struct {
	resnet.Backbone
	images int
}

func (c *counting) Features(x *tensor.Dense) (*tensor.Dense, error) {
	c.images += x.Shape()[0]
	return c.Backbone.Features(x)
}

func smallData(t *testing.T, perClass int) (dataset.Config, []dataset.Sample) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "data")
	if err := dataset.Synthesize(root, perClass, 5); err != nil {
		t.Fatal(err)
	}
	cfg := dataset.Config{Root: root, Height: 48, Width: 48, Seed: 1, Workers: 2}
	idx, err := dataset.Scan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, idx.Train
}

// TestExtractionResumesExactly: an extraction stopped part-way (once or
// more) and started again yields the same features, bit for bit, as one
// never stopped. An undecodable file early in the list, never cached, must
// not shift the shards and batches after it on resume.
func TestExtractionResumesExactly(t *testing.T) {
	dcfg, samples := smallData(t, 12)
	bad := path.Join(path.Dir(samples[0].Path), "zz-garbage.jpg")
	if err := os.WriteFile(filepath.Join(dcfg.Root, filepath.FromSlash(bad)), []byte("not a JPEG at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	samples = slices.Insert(slices.Clone(samples), 1, dataset.Sample{Path: bad, Label: samples[0].Label})
	usable := len(samples) - 1
	w, err := resnet.Random(8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := resnet.NewCPU(w)
	key := features.Key{Weights: w.Digest(), Preprocess: "caffe", Height: 48, Width: 48}
	computed := &counting{Backbone: bb}
	run := func(root string, stopAfterBatches int) (*tensor.Dense, error) {
		cache, err := features.Open(root, key, bb.FeatureDim())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var b resnet.Backbone = computed
		if stopAfterBatches >= 0 {
			b = &stopAfter{Backbone: bb, n: stopAfterBatches, cancel: cancel}
		}
		x := &Extraction{Data: dcfg, Backbone: b, Cache: cache, Batch: 3, Shard: 5, Skips: &dataset.SkipLog{}}
		kept, digests, f, err := x.Features(ctx, samples)
		if err == nil && (len(kept) != usable || len(digests) != usable) {
			t.Fatalf("kept %d samples and %d digests of %d usable", len(kept), len(digests), usable)
		}
		return f, err
	}
	want, err := run(filepath.Join(t.TempDir(), "a"), -1)
	if err != nil {
		t.Fatal(err)
	}
	// Each case stops after these numbers of batches, in turn, then
	// finishes. A stop loses the shard in progress: the first shard (4
	// usable images) takes 2 batches of 3, the others (5) 2 each.
	for _, stops := range [][]int{{2}, {3}, {5}, {2, 1}, {2, 0, 3}, {4, 2}} {
		root := filepath.Join(t.TempDir(), fmt.Sprint(stops))
		for _, n := range stops {
			if _, err := run(root, n); !errors.Is(err, context.Canceled) {
				t.Fatalf("stops %v: stopped extraction: got %v, want context.Canceled", stops, err)
			}
		}
		partial, _ := features.Open(root, key, bb.FeatureDim())
		if n := partial.Len(); n == 0 || n >= usable {
			t.Fatalf("stops %v: after the stops %d of %d images are cached, want some", stops, n, usable)
		}
		computed.images = 0
		got, err := run(root, -1)
		if err != nil {
			t.Fatal(err)
		}
		// The resume computed what was missing, no more: the cached rows
		// were read, not computed again.
		if want := usable - partial.Len(); computed.images != want {
			t.Errorf("stops %v: the resume computed %d images, want the %d missing", stops, computed.images, want)
		}
		g, wnt := got.Data().([]float32), want.Data().([]float32)
		for i := range wnt {
			if g[i] != wnt[i] {
				t.Fatalf("stops %v: feature %d: %v after the stops, %v without", stops, i, g[i], wnt[i])
			}
		}
	}
}

func randomSplit(rng *rand.Rand, n, dim, classes int) Split {
	x := make([]float32, n*dim)
	y := make([]int, n)
	for i := range y {
		y[i] = i % classes
		for j := range dim {
			x[i*dim+j] = float32(rng.NormFloat64()) + float32(y[i])*0.5
		}
	}
	return Split{X: denseRows(x, dim), Y: y}
}

// tinyRun trains the run yaml configures (relative paths from dir) on
// perClass synthetic images a class in dir/data, and returns its
// configuration.
func tinyRun(t *testing.T, dir string, perClass int, yaml string) *configs.Config {
	t.Helper()
	cfg := tinyConfig(t, dir, perClass, yaml)
	if _, err := Train(context.Background(), cfg, Options{Out: &strings.Builder{}}); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tinyConfig synthesizes perClass images of each class in dir/data and
// parses yaml as dir/c.yaml.
func tinyConfig(t *testing.T, dir string, perClass int, yaml string) *configs.Config {
	t.Helper()
	if err := dataset.Synthesize(filepath.Join(dir, "data"), perClass, 1); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Parse([]byte(yaml), filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tinyYAML configures a tiny run of data/ in run/.
const tinyYAML = "data: {dir: data, image_size: [48, 48], validation_split: 0.25}\nbackbone: {random_width: 4}\nhead: {layers: [8]}\ntrain: {epochs: 1, batch: 4}\nrun: {dir: run}\n"

// latestCheckpoint loads the newest checkpoint of tr's run.
func latestCheckpoint(t *testing.T, tr *Trainer) *checkpoints.Checkpoint {
	t.Helper()
	last, err := tr.Checkpoints.Latest()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoints.Load(last.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// resumeLatest resumes tr from the newest checkpoint in its folder.
func resumeLatest(t *testing.T, tr *Trainer) {
	t.Helper()
	if err := tr.Resume(latestCheckpoint(t, tr)); err != nil {
		t.Fatal(err)
	}
}

func newTrainer(t *testing.T, dir string, train, val Split) *Trainer {
	t.Helper()
	return newTrainerOf(t, dir, train, val, 2)
}

// newTrainerOf is newTrainer for classes classes (at most 7), named a, b, ...
func newTrainerOf(t *testing.T, dir string, train, val Split, classes int) *Trainer {
	t.Helper()
	h, err := head.New(head.Config{InputDim: 6, Hidden: []int{8}, Classes: classes, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := head.NewAdam(head.AdamConfig{}, h.Params())
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := checkpoints.NewManager(filepath.Join(dir, "checkpoints"), checkpoints.Options{Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	return &Trainer{Head: h, Opt: opt, Train: train, Val: val, Classes: []string{"a", "b", "c", "d", "e", "f", "g"}[:classes], Epochs: 4, Batch: 5, Seed: 9,
		Every: 3, Checkpoints: mgr, RunDir: dir, Progress: NewProgress(&bytes.Buffer{})}
}

// TestTrainerResumesExactly stops training at several steps, resumes
// from the last checkpoint and requires the uninterrupted run's bytes.
func TestTrainerResumesExactly(t *testing.T) {
	// A learning-rate schedule that halves the rate after every epoch but
	// the first (whose val_loss is the first best; none improves by 10
	// after it): its state must survive the stops too.
	// Augmentation too, flip alone and flip with two crops: which examples
	// train on which view must not change.
	// And dropout (two hidden layers) and weight decay: the masks must not
	// change either. And SGD with Nesterov momentum: its buffers must
	// survive the stops.
	// And seven classes: the validation top-5 accuracy each epoch must
	// come back from the checkpoints as the uninterrupted run wrote it.
	type data struct{ train, val Split }
	splits := func(classes int) data {
		rng := rand.New(rand.NewPCG(1, 1))
		return data{randomSplit(rng, 23, 6, classes), randomSplit(rng, 8, 6, classes)}
	}
	variant := func(train Split, f func(float32) float32) Split {
		x := slices.Clone(train.X.Float32s())
		for i, v := range x {
			x[i] = f(v)
		}
		return Split{X: denseRows(x, 6), Y: train.Y}
	}
	mirror := func(v float32) float32 { return -v }
	crops := []func(float32) float32{func(v float32) float32 { return v/2 + 1 }, func(v float32) float32 { return 2*v - 1 }}
	var refs [][]float32
	for _, tc := range []struct {
		name    string
		classes int
		augs    []func(float32) float32
		sgd     bool
	}{
		{"flip", 2, []func(float32) float32{mirror}, false},
		{"flip and two crops", 2, append([]func(float32) float32{mirror}, crops...), false},
		{"flip, sgd with momentum", 2, []func(float32) float32{mirror}, true},
		{"flip, seven classes", 7, []func(float32) float32{mirror}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := splits(tc.classes)
			train, val := d.train, d.val
			var variants []Split
			for _, f := range tc.augs {
				variants = append(variants, variant(train, f))
			}
			schedule := func(tr *Trainer) *Trainer {
				tr.LRPatience, tr.LRFactor, tr.LRMinDelta = 1, 0.5, 10
				tr.TrainVariants = variants
				h, err := head.New(head.Config{InputDim: 6, Hidden: []int{8, 8}, Classes: tc.classes, Seed: 3, Dropout: 0.3})
				if err != nil {
					t.Fatal(err)
				}
				adam := head.DefaultAdamConfig()
				adam.WeightDecay = 0.05
				if tc.sgd {
					tr.Opt, err = head.NewSGD(head.SGDConfig{LR: 1e-3, Momentum: 0.9, Nesterov: true, WeightDecay: 0.05}, h.Params())
				} else {
					tr.Opt, err = head.NewAdam(adam, h.Params())
				}
				if err != nil {
					t.Fatal(err)
				}
				tr.Head = h
				return tr
			}
			refDir := t.TempDir()
			ref := schedule(newTrainerOf(t, refDir, train, val, tc.classes))
			history, err := ref.Fit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(history) != 4 || !history[0].HasVal {
				t.Fatalf("history %+v", history)
			}
			for i, e := range history {
				if want := 1e-3 / float64(int(1)<<max(0, i-1)); math.Abs(e.LR-want) > 1e-15 {
					t.Fatalf("epoch %d trained with learning rate %v, want %v", e.Epoch, e.LR, want)
				}
			}
			if tc.classes == 2 {
				refs = append(refs, slices.Clone(ref.Head.Params()[0].Value.Data().([]float32)))
			}
			wantJSONL := readMetricsJSONL(t, refDir)
			for _, line := range wantJSONL {
				if _, ok := line["val_top5_accuracy"]; ok != (tc.classes > 5) {
					t.Fatalf("%d classes: metrics.jsonl line %v has val_top5_accuracy: %v", tc.classes, line, ok)
				}
			}
			for stop := 1; stop < 4*5; stop += 4 {
				dir := t.TempDir()
				first := schedule(newTrainerOf(t, dir, train, val, tc.classes))
				ctx, cancel := context.WithCancel(context.Background())
				n := 0
				first.Progress = NewProgress(writerFunc(func(p []byte) (int, error) { return len(p), nil }))
				stopper := &stepCounter{limit: stop, cancel: cancel, n: &n}
				first.onStep = stopper.step
				if _, err := first.Fit(ctx); err != nil && !errors.Is(err, context.Canceled) {
					t.Fatal(err)
				}
				second := schedule(newTrainerOf(t, dir, train, val, tc.classes))
				last, err := second.Checkpoints.Latest()
				// An interrupted run saves the steps it made since its last
				// checkpoint: nothing is lost.
				if stop < 4*5 && (err != nil || last.Manifest.Step != int64(stop)) {
					t.Fatalf("stopped after step %d: the newest checkpoint is at step %d (%v)", stop, last.Manifest.Step, err)
				}
				if err == nil {
					ck, err := checkpoints.Load(last.Dir)
					if err != nil {
						t.Fatal(err)
					}
					if err := second.Resume(ck); err != nil {
						t.Fatal(err)
					}
				}
				resumed, err := second.Fit(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if len(second.Opt.State()) == 0 {
					t.Fatal("no optimizer state to compare")
				}
				for i, p := range append(second.Head.Params(), second.Opt.State()...) {
					want := append(ref.Head.Params(), ref.Opt.State()...)[i]
					a, b := p.Value.Data().([]float32), want.Value.Data().([]float32)
					for j := range a {
						if a[j] != b[j] {
							t.Fatalf("stopped after step %d: %s[%d] = %v, uninterrupted %v", stop, p.Name, j, a[j], b[j])
						}
					}
				}
				if len(resumed) != len(history) || resumed[3].TrainLoss != history[3].TrainLoss || resumed[3].ValLoss != history[3].ValLoss {
					t.Fatalf("stopped after step %d: history %+v, want %+v", stop, resumed, history)
				}
				if got := readMetricsJSONL(t, dir); !reflect.DeepEqual(got, wantJSONL) {
					t.Fatalf("stopped after step %d: metrics.jsonl (timings left out)\n%v\nuninterrupted\n%v", stop, got, wantJSONL)
				}
				checkTensorBoard(t, dir, resumed)
			}
		})
	}
	if len(refs) >= 2 && slices.Equal(refs[0], refs[1]) {
		t.Error("the crops changed nothing: the variants after the first are not trained on")
	}
}

// TestHeadAndOptimizerConfig: every head, Adam and SGD setting reaches the
// head and the optimizer that train.optimizer names.
func TestHeadAndOptimizerConfig(t *testing.T) {
	cfg := configs.Default()
	cfg.Data.Seed = 42
	cfg.Head.Layers, cfg.Head.Dropout = []int{16, 8}, 0.3
	cfg.Train.Adam = configs.Adam{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Epsilon: 1e-6, WeightDecay: 0.02}
	cfg.Train.SGD = configs.SGD{LR: 0.5, Momentum: 0.7, Nesterov: true, WeightDecay: 0.03}
	hc := HeadConfig(&cfg, 64, 3)
	if want := (head.Config{InputDim: 64, Hidden: []int{16, 8}, Classes: 3, Seed: 42, Dropout: 0.3}); !reflect.DeepEqual(hc, want) {
		t.Errorf("HeadConfig = %+v, want %+v", hc, want)
	}
	h, err := head.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := NewOptimizer(&cfg, h.Params())
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := opt.(*head.Adam); !ok || a.Config() != (head.AdamConfig{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Epsilon: 1e-6, WeightDecay: 0.02}) {
		t.Errorf("train.optimizer adam: %T %+v", opt, opt)
	}
	cfg.Train.Optimizer = "sgd"
	if opt, err = NewOptimizer(&cfg, h.Params()); err != nil {
		t.Fatal(err)
	}
	if s, ok := opt.(*head.SGD); !ok || s.Config() != (head.SGDConfig{LR: 0.5, Momentum: 0.7, Nesterov: true, WeightDecay: 0.03}) {
		t.Errorf("train.optimizer sgd: %T %+v", opt, opt)
	}
	cfg.Train.Optimizer = "lion"
	if _, err := NewOptimizer(&cfg, h.Params()); err == nil || !strings.Contains(err.Error(), `train.optimizer: "lion"`) {
		t.Errorf("train.optimizer lion: %v", err)
	}
}

// TestResumeRefusesAnotherOptimizer: a checkpoint holds one optimizer's
// state; resuming it with another optimizer, or with SGD momentum where
// the run had none, is refused with an error that says so. A checkpoint
// from before the choice (no optimizer in its manifest) is Adam's.
func TestResumeRefusesAnotherOptimizer(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	train := randomSplit(rng, 10, 6, 2)
	withOpt := func(dir string, make func(ps []head.Param) (head.Optimizer, error)) *Trainer {
		tr := newTrainer(t, dir, train, Split{})
		tr.Epochs = 1
		var err error
		if tr.Opt, err = make(tr.Head.Params()); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	adam := func(ps []head.Param) (head.Optimizer, error) { return head.NewAdam(head.AdamConfig{}, ps) }
	sgd := func(ps []head.Param) (head.Optimizer, error) { return head.NewSGD(head.SGDConfig{LR: 0.1}, ps) }
	momentum := func(ps []head.Param) (head.Optimizer, error) {
		return head.NewSGD(head.SGDConfig{LR: 0.1, Momentum: 0.9}, ps)
	}
	for _, tc := range []struct {
		name      string
		trained   func(ps []head.Param) (head.Optimizer, error)
		resumed   func(ps []head.Param) (head.Optimizer, error)
		oldFormat bool // the manifest does not name the optimizer
		want      string
	}{
		{"adam to sgd", adam, sgd, false, "the run trained with train.optimizer adam, the configuration says sgd"},
		{"adam, old checkpoint, to sgd", adam, sgd, true, "the run trained with train.optimizer adam, the configuration says sgd"},
		{"sgd to adam", momentum, adam, false, "the run trained with train.optimizer sgd, the configuration says adam"},
		{"sgd momentum from none", sgd, momentum, false, "train.sgd.momentum cannot become non-zero"},
		{"adam, old checkpoint", adam, adam, true, ""},
		{"sgd momentum", momentum, momentum, false, ""},
		{"sgd momentum dropped", momentum, sgd, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := withOpt(dir, tc.trained).Fit(context.Background()); err != nil {
				t.Fatal(err)
			}
			tr := withOpt(dir, tc.resumed)
			ck := latestCheckpoint(t, tr)
			if tc.oldFormat {
				ck.Manifest.Optimizer = ""
			} else if want, _ := tc.trained(nil); ck.Manifest.Optimizer != want.Name() {
				t.Errorf("the manifest names optimizer %q, want %q", ck.Manifest.Optimizer, want.Name())
			}
			err := tr.Resume(ck)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("resume refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("resume: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestTrainerResumesWithAnotherBatch stops a run in the middle of an epoch
// and resumes it with another batch size: every epoch must still train on
// each example exactly once.
func TestTrainerResumesWithAnotherBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	train, val := randomSplit(rng, 23, 6, 2), randomSplit(rng, 8, 6, 2)
	for _, tc := range []struct{ before, after, stop int }{{5, 4, 2}, {4, 8, 3}, {3, 16, 1}, {8, 2, 2}} {
		dir := t.TempDir()
		seen := map[int][]int{} // epoch -> rows
		epoch := func(tr *Trainer) func([]int) {
			return func(rows []int) { seen[tr.epoch] = append(seen[tr.epoch], rows...) }
		}
		first := newTrainer(t, dir, train, val)
		first.Batch, first.Every, first.Epochs = tc.before, 1, 2
		ctx, cancel := context.WithCancel(context.Background())
		steps := 0
		record := epoch(first)
		first.onStep = func(rows []int) {
			record(rows)
			if steps++; steps == tc.stop {
				cancel()
			}
		}
		if _, err := first.Fit(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("%+v: first run: %v", tc, err)
		}
		second := newTrainer(t, dir, train, val)
		second.Batch, second.Epochs = tc.after, 2
		resumeLatest(t, second)
		second.onStep = epoch(second)
		if _, err := second.Fit(context.Background()); err != nil {
			t.Fatal(err)
		}
		for e := range 2 {
			rows := slices.Sorted(slices.Values(seen[e]))
			for i, r := range rows {
				if i != r || len(rows) != train.Len() {
					t.Fatalf("%+v: epoch %d trained on rows %v, want each of the %d once", tc, e+1, rows, train.Len())
				}
			}
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

type stepCounter struct {
	limit  int
	cancel context.CancelFunc
	n      *int
}

func (s *stepCounter) step([]int) {
	if *s.n++; *s.n >= s.limit {
		s.cancel()
	}
}

// readMetricsJSONL reads a run's metrics.jsonl, each line's fields but
// the timings (samples_per_s, seconds), which no two runs share.
func readMetricsJSONL(t *testing.T, dir string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for line := range strings.Lines(string(raw)) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("metrics.jsonl: %q: %v", line, err)
		}
		delete(m, "samples_per_s")
		delete(m, "seconds")
		lines = append(lines, m)
	}
	return lines
}

func TestEarlyStopping(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	// Labels independent of the features: validation cannot improve for long.
	train, val := randomSplit(rng, 20, 6, 2), randomSplit(rng, 20, 6, 2)
	for i := range val.Y {
		val.Y[i] = rng.IntN(2)
	}
	dir := t.TempDir()
	tr := newTrainer(t, dir, train, val)
	tr.Epochs, tr.Patience, tr.MinDelta = 50, 2, 0.01
	var first bytes.Buffer
	tr.Progress = NewProgress(&first)
	h, err := tr.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(h) >= 50 {
		t.Fatalf("ran all %d epochs: early stopping never triggered", len(h))
	}
	// The stop names the epoch whose val_loss the later ones did not
	// improve on by more than min_delta (not the best checkpoint's, which
	// may be lower by less).
	ref := h[len(h)-1-tr.Patience]
	if want := fmt.Sprintf("for 2 epochs, since epoch %d's %.4f", ref.Epoch, ref.ValLoss); !strings.Contains(first.String(), want) {
		t.Errorf("early stopping's line does not say %q:\n%s", want, &first)
	}
	// A resume with the same patience trains nothing, and says how to.
	again := newTrainer(t, dir, train, val)
	again.Epochs, again.Patience, again.MinDelta = 50, 2, 0.01
	var out bytes.Buffer
	again.Progress = NewProgress(&out)
	last, err := again.Checkpoints.Latest()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoints.Load(last.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Resume(ck); err != nil {
		t.Fatal(err)
	}
	if h2, err := again.Fit(context.Background()); err != nil || len(h2) != len(h) {
		t.Fatalf("resumed an early-stopped run: %d epochs (%v), want the %d it had", len(h2), err, len(h))
	}
	if want := fmt.Sprintf("--set train.early_stopping.patience=%d", 2+2); !strings.Contains(out.String(), want) {
		t.Errorf("resumed an early-stopped run: %q does not say %q", out.String(), want)
	}
}

func TestReports(t *testing.T) {
	dir := t.TempDir()
	h := []EpochMetrics{
		{Epoch: 1, Step: 10, TrainLoss: 0.7, TrainAcc: 0.5, ValLoss: 0.69, ValAcc: 0.55, HasVal: true},
		{Epoch: 2, Step: 20, TrainLoss: 0.4, TrainAcc: 0.8, ValLoss: 0.5, ValAcc: 0.75, HasVal: true},
	}
	if err := writeMetrics(dir, h); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if lines := strings.Split(strings.TrimSpace(string(raw)), "\n"); len(lines) != 2 || !strings.Contains(lines[1], `"val_accuracy":0.75`) {
		t.Fatalf("metrics.jsonl:\n%s", raw)
	}
	auc := 0.875
	h[1].ValAUC = &auc
	h = append(h, EpochMetrics{Epoch: 3, Step: 30, TrainLoss: 0.25, TrainAcc: 1, LR: 1e-4}) // no validation
	if err := writeMetrics(dir, h); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(filepath.Join(dir, "metrics.csv"))
	wantCSV := "epoch,step,loss,accuracy,val_loss,val_accuracy,val_auc,learning_rate,samples_per_s,seconds\n" +
		"1,10,0.7,0.5,0.69,0.55,,0,0,0\n2,20,0.4,0.8,0.5,0.75,0.875,0,0,0\n3,30,0.25,1,,,,0.0001,0,0\n"
	if string(raw) != wantCSV {
		t.Errorf("metrics.csv:\n%s\nwant\n%s", raw, wantCSV)
	}
	// A top-5 accuracy (more than 5 classes) gets its column.
	top5 := 0.9375
	h[0].ValAUC, h[1].ValAUC, h[1].ValTop5 = nil, nil, &top5
	if err := writeMetrics(dir, h); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(filepath.Join(dir, "metrics.csv"))
	wantCSV = "epoch,step,loss,accuracy,val_loss,val_accuracy,val_auc,val_top5_accuracy,learning_rate,samples_per_s,seconds\n" +
		"1,10,0.7,0.5,0.69,0.55,,,0,0,0\n2,20,0.4,0.8,0.5,0.75,,0.9375,0,0,0\n3,30,0.25,1,,,,,0.0001,0,0\n"
	if string(raw) != wantCSV {
		t.Errorf("metrics.csv:\n%s\nwant\n%s", raw, wantCSV)
	}
	h = h[:2]
	png := filepath.Join(dir, "metrics.png")
	if err := plotMetrics(png, h); err != nil {
		t.Fatal(err)
	}
	width := func() int { return readPNG(t, png).Bounds().Dx() }
	two := width()
	// A learning-rate schedule's changes get a third panel.
	h[0].LR, h[1].LR = 1e-3, 1e-4
	if err := plotMetrics(png, h); err != nil {
		t.Fatal(err)
	}
	if three := width(); 2*three != 3*two {
		t.Errorf("metrics.png is %d pixels wide with a changing learning rate, %d without: want a third panel", three, two)
	}
	c := NewConfusion([]string{"cats", "dogs"})
	c.Add(0, 0)
	c.Add(0, 1)
	c.Add(1, 1)
	var b strings.Builder
	c.WriteTo(&b)
	if !strings.Contains(b.String(), "cats     1     1") || !strings.Contains(b.String(), "dogs     0     1") {
		t.Fatalf("confusion matrix:\n%s", b.String())
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	auc, top5 := 0.75, 0.875
	for _, tc := range []struct {
		name string
		h    []EpochMetrics
	}{
		{"losses and accuracies", []EpochMetrics{{Epoch: 1, Step: 3, TrainLoss: 0.1234567890123, TrainAcc: 0.5, SamplesPerSec: 12, Seconds: 1}, {Epoch: 2, Step: 6, TrainLoss: 0.2, ValLoss: 0.3, ValAcc: 0.4, HasVal: true}}},
		{"two classes' AUC", []EpochMetrics{{Epoch: 1, Step: 3, TrainLoss: 0.2, ValLoss: 0.3, ValAcc: 0.4, ValAUC: &auc, HasVal: true}}},
		{"top-5 accuracy", []EpochMetrics{{Epoch: 1, Step: 3, TrainLoss: 0.2, ValLoss: 0.3, ValAcc: 0.4, ValTop5: &top5, HasVal: true}}},
	} {
		m := map[string]float64{}
		historyToMetrics(tc.h, m)
		if got := historyFromMetrics(m, len(tc.h)); !reflect.DeepEqual(got, tc.h) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.h)
		}
	}
}

// TestValidationTop5Accuracy: with more than 5 classes every epoch's
// val_top5_accuracy is the top-5 accuracy of the head's validation
// probabilities at the epoch's end, in the history, the progress line,
// metrics.jsonl, metrics.csv and TensorBoard; with fewer, none of them has it.
func TestValidationTop5Accuracy(t *testing.T) {
	for _, tc := range []struct {
		classes int
		top5    bool
	}{{7, true}, {2, false}} {
		t.Run(fmt.Sprint(tc.classes, " classes"), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8, 8))
			train, val := randomSplit(rng, 28, 6, tc.classes), randomSplit(rng, 21, 6, tc.classes)
			dir := t.TempDir()
			var out bytes.Buffer
			tr := newTrainerOf(t, dir, train, val, tc.classes)
			tr.Progress = NewProgress(&out)
			if err := tr.Opt.SetLR(0.03); err != nil { // each epoch's accuracy differs
				t.Fatal(err)
			}
			var want []float64 // each epoch's, recomputed from the head
			for epoch := 1; epoch <= 3; epoch++ {
				tr.Epochs = epoch
				if _, err := tr.Fit(context.Background()); err != nil {
					t.Fatal(err)
				}
				_, _, _, probs, err := tr.Head.EvaluateWithProbs(val.X, val.Y)
				if err != nil {
					t.Fatal(err)
				}
				var scored []Scored
				for i, y := range val.Y {
					scored = append(scored, Scored{True: y, Probabilities: probs.Float32s()[i*tc.classes : (i+1)*tc.classes]})
				}
				want = append(want, topKAccuracy(scored, 5))
			}
			history := tr.history
			if len(history) != 3 {
				t.Fatalf("%d epochs, want 3", len(history))
			}
			if tc.top5 && (slices.Contains(want, 1) || len(slices.Compact(slices.Clone(want))) < 2) {
				t.Fatalf("top-5 accuracies %v: 1 or the same every epoch, the test tells little", want)
			}
			lines := readMetricsJSONL(t, dir)
			rawCSV, err := os.ReadFile(filepath.Join(dir, "metrics.csv"))
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(bytes.NewReader(rawCSV)).ReadAll()
			if err != nil || len(rows) != 1+3 || len(lines) != 3 {
				t.Fatalf("metrics.csv (%v):\n%s\nmetrics.jsonl: %v", err, rawCSV, lines)
			}
			col := slices.Index(rows[0], "val_top5_accuracy")
			if (col >= 0) != tc.top5 {
				t.Errorf("metrics.csv's header %q", rows[0])
			}
			if got := strings.Contains(out.String(), "val_top5 "); got != tc.top5 {
				t.Errorf("progress says val_top5: %v, want %v:\n%s", got, tc.top5, out.String())
			}
			for i, m := range history {
				if !tc.top5 {
					if _, ok := lines[i]["val_top5_accuracy"]; m.ValTop5 != nil || ok {
						t.Errorf("epoch %d: val_top5_accuracy %v, in metrics.jsonl %v; want none", m.Epoch, m.ValTop5, ok)
					}
					continue
				}
				if m.ValTop5 == nil || *m.ValTop5 != want[i] {
					t.Errorf("epoch %d: val_top5_accuracy %v, want %v", m.Epoch, m.ValTop5, want[i])
				}
				if v, ok := lines[i]["val_top5_accuracy"].(float64); !ok || v != want[i] {
					t.Errorf("epoch %d: metrics.jsonl's val_top5_accuracy %v, want %v", m.Epoch, lines[i]["val_top5_accuracy"], want[i])
				}
				if col >= 0 {
					if v, err := strconv.ParseFloat(rows[1+i][col], 64); err != nil || v != want[i] {
						t.Errorf("epoch %d: metrics.csv's val_top5_accuracy %q, want %v", m.Epoch, rows[1+i][col], want[i])
					}
				}
			}
			checkTensorBoard(t, dir, history)
		})
	}
}

func TestSplitFeaturesNeedsEveryClass(t *testing.T) {
	idx := &dataset.Index{Classes: []string{"a", "b"}, Train: []dataset.Sample{{Path: "a/1", Label: 0}, {Path: "b/1", Label: 1}}}
	feats := denseRows([]float32{1, 2}, 1)
	if _, _, err := splitFeatures(idx, []dataset.Sample{{Path: "a/1", Label: 0}, {Path: "a/2", Label: 0}}, feats); !errors.Is(err, dataset.ErrNoUsableImages) || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("got %v", err)
	}
}

// TestFlipAugmentation checks which rows train on their mirror image: about
// half of them in each epoch, other ones from one epoch to the next, the
// same ones for the same (seed, epoch).
func TestFlipAugmentation(t *testing.T) {
	const n, dim = 1000, 2
	plain, flipped := make([]float32, n*dim), make([]float32, n*dim)
	y := make([]int, n)
	for i := range plain {
		plain[i], flipped[i] = float32(i), -float32(i)-1
	}
	tr := &Trainer{Seed: 3, Train: Split{X: denseRows(plain, dim), Y: y}, TrainVariants: []Split{{X: denseRows(flipped, dim), Y: y}}}
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	picks := func(epoch int) []bool {
		tr.epoch = epoch
		x, _ := tr.gatherTrain(rows, dim)
		m := make([]bool, n)
		for i := range n {
			m[i] = x.Float32s()[i*dim] < 0
			if want := mirroredBefore(3, epoch, i); m[i] != want {
				t.Fatalf("epoch %d row %d: mirrored %v, want %v", epoch, i, m[i], want)
			}
		}
		return m
	}
	e0, e1 := picks(0), picks(1)
	count, same := 0, 0
	for i := range n {
		if e0[i] {
			count++
		}
		if e0[i] == e1[i] {
			same++
		}
	}
	if count < 430 || count > 570 {
		t.Errorf("%d of %d rows mirrored in epoch 0, want about half", count, n)
	}
	if same < 430 || same > 570 {
		t.Errorf("%d of %d rows made the same choice in epochs 0 and 1, want about half", same, n)
	}
	if !slices.Equal(picks(0), e0) {
		t.Error("epoch 0's choices changed")
	}
}

// mirroredBefore is the coin of flip augmentation before crop augmentation
// (Trainer.TrainMirrored), kept as it was: runs begun then must resume with
// the same choices.
func mirroredBefore(seed int64, epoch, row int) bool {
	z := uint64(seed) ^ uint64(epoch)<<32 ^ uint64(row)*0x9e3779b97f4a7c15
	// splitmix64's finalizer
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return (z^z>>31)&1 == 1
}

// TestPickWithFlipAloneIsTheOldCoin: with one variant (flip augmentation)
// pick chooses it exactly where the old coin mirrored, for any seed, epoch
// and row.
func TestPickWithFlipAloneIsTheOldCoin(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, seed := range []int64{0, 1, 1337, -1, math.MaxInt64, math.MinInt64, rng.Int64(), -rng.Int64()} {
		for epoch := range 50 {
			for row := range 2000 {
				if got, want := pick(seed, epoch, row, 2) == 1, mirroredBefore(seed, epoch, row); got != want {
					t.Fatalf("seed %d epoch %d row %d: pick chose the variant %v, the old coin %v", seed, epoch, row, got, want)
				}
			}
		}
	}
}

// TestPickIsUniform counts the choices of pick over 200 epochs of 1000
// rows: each of n is within 6% of 1/n of them, and a row makes the same
// choice in two consecutive epochs about 1/n of the time. 6% is at least
// 6.7 standard deviations (n = 17), so a fair pick fails with a
// probability below 1e-9.
func TestPickIsUniform(t *testing.T) {
	const epochs, rows = 200, 1000
	for _, n := range []int{2, 3, 4, 5, 17} {
		counts := make([]int, n)
		same := 0
		for e := range epochs {
			for r := range rows {
				k := pick(1337, e, r, n)
				if k < 0 || k >= n {
					t.Fatalf("n %d: pick %d", n, k)
				}
				counts[k]++
				if e > 0 && pick(1337, e-1, r, n) == k {
					same++
				}
			}
		}
		want := float64(epochs*rows) / float64(n)
		for k, c := range counts {
			if math.Abs(float64(c)-want) > 0.06*want {
				t.Errorf("n %d: choice %d picked %d times, want about %.0f", n, k, c, want)
			}
		}
		if w := float64((epochs-1)*rows) / float64(n); math.Abs(float64(same)-w) > 0.06*w {
			t.Errorf("n %d: the same choice in consecutive epochs %d times, want about %.0f", n, same, w)
		}
	}
}

// TestAugmentations: flip and crop augmentation give the mirrored images,
// then each crop copy (mirrored at random with flip), each with a key and
// a reading of its own; neither gives none.
func TestAugmentations(t *testing.T) {
	cfg := configs.Default()
	cfg.Data.Dir = "d"
	key := features.Key{Weights: "w", Preprocess: "caffe", Height: 224, Width: 224, EXIF: true}
	dcfg := DataConfig(&cfg)
	if as := augmentations(&cfg, dcfg, key); len(as) != 0 {
		t.Fatalf("%d augmentations by default", len(as))
	}
	cfg.Data.FlipAugmentation = true
	cfg.Data.CropAugmentation.Copies = 2
	as := augmentations(&cfg, dcfg, key)
	var names []string
	hashes := map[string]bool{key.Hash(): true}
	for _, a := range as {
		names = append(names, a.name)
		hashes[a.key.Hash()] = true
	}
	if want := []string{"mirrored", "crop 1/2", "crop 2/2"}; !slices.Equal(names, want) {
		t.Fatalf("augmentations %q, want %q", names, want)
	}
	if len(hashes) != 4 {
		t.Errorf("the plain images and 3 augmentations have %d cache keys, want 4", len(hashes))
	}
	if m := as[0]; !m.key.Flip || m.key.RandomCrop != "" || !m.data.HorizontalFlip || m.data.RandomCrop != nil {
		t.Errorf("mirrored: key %+v, data %+v", m.key, m.data)
	}
	for k, a := range as[1:] {
		want := dataset.RandomCrop{Seed: cfg.Data.Seed, Copy: k, Scale: [2]float64{0.08, 1}, Ratio: [2]float64{0.75, 4.0 / 3}, Flip: true}
		if a.data.RandomCrop == nil || *a.data.RandomCrop != want || a.key.RandomCrop != want.String() || a.key.Flip || a.data.HorizontalFlip {
			t.Errorf("%s: key %+v, crop %+v, want %+v", a.name, a.key, a.data.RandomCrop, want)
		}
		if a.data.Root != dcfg.Root || a.data.Height != dcfg.Height || a.key.Weights != key.Weights {
			t.Errorf("%s reads %+v, key %+v: not the plain images' settings", a.name, a.data, a.key)
		}
	}

	// With fast JPEG decoding: the plain and mirrored images use it (and
	// say so in their keys), the crops never do, and so share their
	// caches with runs without it.
	w, err := resnet.Random(1, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data.FastJPEG = true
	fast := augmentations(&cfg, DataConfig(&cfg), CacheKey(&cfg, w))
	if !fast[0].data.FastJPEG || !fast[0].key.FastJPEG || !DataConfig(&cfg).FastJPEG {
		t.Errorf("fast_jpeg: the mirrored images read %+v, key %+v", fast[0].data, fast[0].key)
	}
	cfg.Data.FastJPEG = false
	slow := augmentations(&cfg, DataConfig(&cfg), CacheKey(&cfg, w))
	for k, a := range fast[1:] {
		if a.data.FastJPEG || a.key.FastJPEG || a.key.Hash() != slow[k+1].key.Hash() {
			t.Errorf("fast_jpeg: %s reads %+v, key %+v (without fast_jpeg %+v)", a.name, a.data, a.key, slow[k+1].key)
		}
	}
	if fast[0].key.Hash() == slow[0].key.Hash() {
		t.Error("fast_jpeg: the mirrored images' cache key is the same as without")
	}
}

// TestReduceLR follows the learning rate through a sequence of validation
// losses, as Keras' ReduceLROnPlateau(patience=2, factor=0.1,
// min_delta=0.01, min_lr=1e-5) would set it.
// TestStarMarksTheBestCheckpoint checks that an epoch's line carries the
// " *" of a new best val_loss exactly when its checkpoint becomes the best
// one, whatever early_stopping.min_delta (which decides only what counts as
// an improvement for early stopping, as in Keras, where ModelCheckpoint's
// save_best_only has no min_delta).
func TestStarMarksTheBestCheckpoint(t *testing.T) {
	for _, minDelta := range []float64{0, 10} {
		t.Run(fmt.Sprint("min_delta ", minDelta), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, 4))
			train, val := randomSplit(rng, 30, 6, 2), randomSplit(rng, 20, 6, 2)
			var out bytes.Buffer
			tr := newTrainer(t, t.TempDir(), train, val)
			tr.Epochs, tr.Patience, tr.MinDelta, tr.Progress = 6, 100, minDelta, NewProgress(&out)
			hist, err := tr.Fit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			lines := slices.DeleteFunc(strings.Split(out.String(), "\n"), func(l string) bool { return !strings.HasPrefix(l, "epoch ") || !strings.Contains(l, "val_loss") })
			if len(lines) != len(hist) {
				t.Fatalf("%d epoch lines for %d epochs:\n%s", len(lines), len(hist), out.String())
			}
			lowest, starred := math.Inf(1), 0
			for i, m := range hist {
				best := m.ValLoss < lowest
				if got := strings.Contains(lines[i], " *"); got != best {
					t.Errorf("epoch %d (val_loss %.6f, lowest before %.6f): starred %v, want %v: %s", m.Epoch, m.ValLoss, lowest, got, best, lines[i])
				}
				if best {
					lowest = m.ValLoss
					starred++
				}
			}
			if starred < 2 {
				t.Fatalf("val_loss fell only %d times in %d epochs: the test needs more", starred, len(hist))
			}
			b, err := tr.Checkpoints.Best()
			if err != nil {
				t.Fatal(err)
			}
			if i := slices.IndexFunc(hist, func(m EpochMetrics) bool { return m.ValLoss == lowest }); b.Manifest.Step != hist[i].Step {
				t.Errorf("best checkpoint at step %d, want the lowest val_loss's, step %d", b.Manifest.Step, hist[i].Step)
			}
		})
	}
}

func TestReduceLR(t *testing.T) {
	h, err := head.New(head.Config{InputDim: 2, Hidden: []int{}, Classes: 2})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := head.NewAdam(head.AdamConfig{}, h.Params())
	if err != nil {
		t.Fatal(err)
	}
	tr := &Trainer{Opt: opt, LRPatience: 2, LRFactor: 0.1, LRMinDelta: 0.01, MinLR: 1e-5, lrBest: math.Inf(1), Progress: NewProgress(io.Discard)}
	for i, step := range []struct{ val, lr float64 }{
		{1.0, 1e-3},   // best
		{0.995, 1e-3}, // not better by 0.01: 1 epoch
		{0.99, 1e-4},  // 2 epochs: reduced, count restarts
		{0.5, 1e-4},   // best
		{0.6, 1e-4},
		{0.7, 1e-5},
		{0.8, 1e-5},
		{0.9, 1e-5}, // at min_lr: stays
		{0.1, 1e-5},
	} {
		if err := tr.reduceLR(step.val); err != nil {
			t.Fatal(err)
		}
		if got := opt.Config().LR; math.Abs(got-step.lr) > 1e-12 {
			t.Fatalf("epoch %d (val_loss %v): learning rate %v, want %v", i+1, step.val, got, step.lr)
		}
	}
}

// TestConfusionScores checks precision, recall and F1 on a matrix worked
// by hand, a class that is never predicted included.
func TestConfusionScores(t *testing.T) {
	c := &Confusion{Classes: []string{"a", "b", "c"}, Counts: [][]int{{5, 1, 0}, {2, 2, 0}, {1, 0, 0}}}
	want := []ClassScores{
		{"a", 5.0 / 8, 5.0 / 6, 2 * (5.0 / 8) * (5.0 / 6) / (5.0/8 + 5.0/6), 6},
		{"b", 2.0 / 3, 0.5, 2 * (2.0 / 3) * 0.5 / (2.0/3 + 0.5), 4},
		{"c", 0, 0, 0, 1},
	}
	got := c.Scores()
	for i := range want {
		g, w := got[i], want[i]
		if g.Class != w.Class || g.Support != w.Support || math.Abs(g.Precision-w.Precision) > 1e-12 ||
			math.Abs(g.Recall-w.Recall) > 1e-12 || math.Abs(g.F1-w.F1) > 1e-12 {
			t.Errorf("class %s: got %+v, want %+v", w.Class, g, w)
		}
	}
	var b strings.Builder
	if err := c.WriteScores(&b); err != nil || !strings.Contains(b.String(), "0.6250") {
		t.Errorf("WriteScores: %v\n%s", err, b.String())
	}
}

// TestTrainWithValidationFolder: with data.validation_dir every image of
// data.dir trains and the validation scores are those of the other folder:
// the best checkpoint scores exactly its epoch's val_loss on it.
func TestTrainWithValidationFolder(t *testing.T) {
	dir := t.TempDir()
	if err := dataset.Synthesize(filepath.Join(dir, "train"), 6, 1); err != nil {
		t.Fatal(err)
	}
	if err := dataset.Synthesize(filepath.Join(dir, "validation"), 4, 2); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Parse([]byte(`
data: {dir: train, validation_dir: validation, image_size: [48, 48], workers: 2}
backbone: {random_width: 8}
head: {layers: [16]}
train: {epochs: 3, batch: 4, lr_schedule: {kind: step, step_epochs: 1, gamma: 0.5}}
run: {dir: run}
`), filepath.Join(dir, "v.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	ctx := context.Background()
	res, err := Train(ctx, cfg, Options{Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range res.History { // the configured schedule reaches the trainer
		if want := 1e-3 / float64(int(1)<<i); m.LR != want {
			t.Errorf("epoch %d: learning rate %v, want %v", m.Epoch, m.LR, want)
		}
	}
	if !strings.Contains(out.String(), "12 training and 8 validation images") {
		t.Errorf("progress does not count 12 training and 8 validation images:\n%s", out.String())
	}
	n := 0
	for _, row := range res.Confusion.Counts {
		for _, c := range row {
			n += c
		}
	}
	if n != 8 {
		t.Errorf("the confusion matrix counts %d validation images, want 8", n)
	}
	for _, plot := range []string{"confusion.png", "roc.png", "metrics.png"} {
		if _, err := os.Stat(filepath.Join(dir, "run", plot)); err != nil {
			t.Error(err)
		}
	}
	best := slices.MinFunc(res.History, func(a, b EpochMetrics) int { return cmp.Compare(a.ValLoss, b.ValLoss) })
	c, err := LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ev, err := c.Evaluate(ctx, filepath.Join(dir, "validation"), 8)
	if err != nil {
		t.Fatal(err)
	}
	if best.ValAUC == nil || ev.AUC == nil || math.Abs(*ev.AUC-*best.ValAUC) > 1e-12 {
		t.Errorf("the best checkpoint's AUC on the validation folder %v, epoch %d's val_auc %v", ev.AUC, best.Epoch, best.ValAUC)
	}
	if ev.Images != 8 || math.Abs(ev.Loss-best.ValLoss) > 1e-5*max(1, best.ValLoss) || ev.Accuracy != best.ValAcc {
		t.Errorf("the best checkpoint scores %d images, loss %v, accuracy %v on the validation folder; epoch %d's val_loss %v, val_accuracy %v",
			ev.Images, ev.Loss, ev.Accuracy, best.Epoch, best.ValLoss, best.ValAcc)
	}
	// The training folder alone (the classifier must not add the
	// validation folder to what it evaluates).
	if ev, err = c.Evaluate(ctx, filepath.Join(dir, "train"), 8); err != nil || ev.Images != 12 {
		t.Errorf("evaluate the training folder: %d images, %v; want 12", ev.Images, err)
	}
	// Both folders' features came from the run's cache: no shard was added.
	shards := func() int {
		m, _ := filepath.Glob(filepath.Join(cfg.Cache.Dir, "*", "shard-*.json"))
		return len(m)
	}
	if n := shards(); n != 1 {
		t.Errorf("the feature cache has %d shards after evaluating the run's own images, want training's 1", n)
	}
	// A new folder's features are added to it.
	if err := dataset.Synthesize(filepath.Join(dir, "test"), 2, 3); err != nil {
		t.Fatal(err)
	}
	if ev, err = c.Evaluate(ctx, filepath.Join(dir, "test"), 8); err != nil || ev.Images != 4 || shards() != 2 {
		t.Errorf("evaluate a new folder: %d images, %v, %d shards; want 4 images in a second shard", ev.Images, err, shards())
	}
	// A test folder without one class's folder (a long-tailed test set)
	// is scored on the classes it has, the missing one named.
	onlyDogs := filepath.Join(dir, "only-dogs")
	if err := os.CopyFS(filepath.Join(onlyDogs, "dogs"), os.DirFS(filepath.Join(dir, "test", "dogs"))); err != nil {
		t.Fatal(err)
	}
	if ev, err := c.Evaluate(ctx, onlyDogs, 8); err != nil {
		t.Errorf("evaluate a folder of dogs alone: %v", err)
	} else if !slices.Equal(ev.Missing, []string{"cats"}) || ev.Images != 2 || slices.ContainsFunc(ev.Scored, func(s Scored) bool { return s.True != 1 }) ||
		ev.Confusion.Counts[1][0]+ev.Confusion.Counts[1][1] != 2 {
		t.Errorf("evaluate a folder of dogs alone: missing %q, %d images, %+v, confusion %v", ev.Missing, ev.Images, ev.Scored, ev.Confusion.Counts)
	}

	// Without the run's cache on this machine, a temporary one, removed by
	// Close, gives the same scores.
	if err := os.Rename(cfg.Cache.Dir, cfg.Cache.Dir+"-moved"); err != nil {
		t.Fatal(err)
	}
	c2, err := LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev2, err := c2.Evaluate(ctx, filepath.Join(dir, "test"), 8)
	if err != nil || ev2.Loss != ev.Loss || ev2.Accuracy != ev.Accuracy {
		t.Errorf("without the run's cache: %+v, %v; with it %+v", ev2, err, ev)
	}
	tmp := c2.tmpCache
	if tmp == "" {
		t.Fatal("no temporary feature cache")
	}
	// Interrupted (predict's Ctrl-C cancels the context): an error, and
	// Close still removes the temporary cache.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c2.Evaluate(cancelled, filepath.Join(dir, "train"), 8); !errors.Is(err, context.Canceled) {
		t.Errorf("evaluate with a cancelled context: %v", err)
	}
	c2.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) || shards() != 0 {
		t.Errorf("temporary cache %s left behind (%v), or the run's cache recreated", tmp, err)
	}
}

// checkTensorBoard reads the run's TensorBoard logs as TensorBoard does
// (files in name order; a START event drops the values logged at its step
// and later) and requires the history, each epoch once.
func checkTensorBoard(t *testing.T, runDir string, history []EpochMetrics) {
	t.Helper()
	type point struct {
		step  int64
		value float64
	}
	view := func(split string) map[string][]point {
		files, err := filepath.Glob(filepath.Join(runDir, "tensorboard", split, "events.out.tfevents.*"))
		if err != nil || len(files) != 1 {
			// The last process's file holds the whole history; older go.
			t.Fatalf("TensorBoard files for %s: %q (%v), want one", split, files, err)
		}
		slices.Sort(files)
		tags := map[string][]point{}
		for _, f := range files {
			evs, err := tfevents.Read(f)
			if err != nil {
				t.Fatal(err)
			}
			if evs[0].FileVersion != tfevents.FileVersion {
				t.Fatalf("%s: first event %+v", f, evs[0])
			}
			for _, ev := range evs {
				if ev.Start {
					for tag, ps := range tags {
						tags[tag] = slices.DeleteFunc(ps, func(p point) bool { return p.step >= ev.Step })
					}
				}
				for _, s := range ev.Scalars {
					tags[s.Tag] = append(tags[s.Tag], point{ev.Step, s.Value})
				}
			}
		}
		return tags
	}
	train, val := view("train"), view("validation")
	// The AUC (two classes) and the top-5 accuracy (more than 5) are
	// logged every epoch or never.
	optional := func(v *float64) float64 {
		if v == nil { // lost on resume
			return math.NaN()
		}
		return *v
	}
	for _, c := range []struct {
		tags map[string][]point
		tag  string
		want func(EpochMetrics) float64
		has  func(EpochMetrics) bool // nil: every epoch
	}{
		{train, "epoch_loss", func(m EpochMetrics) float64 { return m.TrainLoss }, nil},
		{train, "epoch_accuracy", func(m EpochMetrics) float64 { return m.TrainAcc }, nil},
		{train, "epoch_learning_rate", func(m EpochMetrics) float64 { return m.LR }, nil},
		{val, "epoch_loss", func(m EpochMetrics) float64 { return m.ValLoss }, nil},
		{val, "epoch_accuracy", func(m EpochMetrics) float64 { return m.ValAcc }, nil},
		{val, "epoch_auc", func(m EpochMetrics) float64 { return optional(m.ValAUC) }, func(m EpochMetrics) bool { return m.ValAUC != nil }},
		{val, "epoch_top5_accuracy", func(m EpochMetrics) float64 { return optional(m.ValTop5) }, func(m EpochMetrics) bool { return m.ValTop5 != nil }},
	} {
		var want []point
		for _, m := range history {
			if c.has == nil || slices.ContainsFunc(history, c.has) {
				want = append(want, point{int64(m.Epoch - 1), float64(float32(c.want(m)))})
			}
		}
		if !slices.Equal(c.tags[c.tag], want) {
			t.Errorf("TensorBoard %s: %v, want %v", c.tag, c.tags[c.tag], want)
		}
	}
}

// TestProgressOffTerminal: off a terminal the bar is a plain line now and
// then (a long extraction in a log is not silent), never at the end, and
// never an escape sequence.
func TestProgressOffTerminal(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b)
	p.Bar("features", 16, 100, "8.0 images/s")
	if b.Len() != 0 {
		t.Fatalf("a line at once: %q", b.String())
	}
	p.plainEvery = 0
	p.Bar("features", 32, 100, "8.0 images/s")
	p.Bar("features", 100, 100, "8.0 images/s")
	if got := b.String(); got != "features 32/100 8.0 images/s\n" {
		t.Fatalf("off a terminal: %q", got)
	}
}

// TestLRScheduleResumes: a schedule sets each epoch's rate, and a run
// stopped anywhere and resumed ends byte for byte as an uninterrupted one.
func TestLRScheduleResumes(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	train, val := randomSplit(rng, 23, 6, 2), randomSplit(rng, 8, 6, 2)
	step := configs.LRSchedule{Kind: "step", StepEpochs: 1, Gamma: 0.5}
	scheduled := func(tr *Trainer) *Trainer {
		tr.LRSchedule = func(e int) float64 { return step.Rate(1e-3, e, tr.Epochs) }
		return tr
	}
	ref := scheduled(newTrainer(t, t.TempDir(), train, val))
	history, err := ref.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range history {
		if want := 1e-3 / float64(int(1)<<i); e.LR != want {
			t.Fatalf("epoch %d trained with learning rate %v, want %v", e.Epoch, e.LR, want)
		}
	}
	for _, stop := range []int{2, 7, 13} {
		dir := t.TempDir()
		first := scheduled(newTrainer(t, dir, train, val))
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		first.onStep = (&stepCounter{limit: stop, cancel: cancel, n: &n}).step
		if _, err := first.Fit(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("stop after step %d: %v", stop, err)
		}
		second := scheduled(newTrainer(t, dir, train, val))
		resumeLatest(t, second)
		if _, err := second.Fit(context.Background()); err != nil {
			t.Fatal(err)
		}
		for i, p := range second.Head.Params() {
			if !slices.Equal(p.Value.Float32s(), ref.Head.Params()[i].Value.Float32s()) {
				t.Fatalf("stopped after step %d: %s differs from the uninterrupted run", stop, p.Name)
			}
		}
	}
}

// TestTrainChecksCodeBuiltConfig: a configuration built in code, with no
// Load to check it, gets one clear error, not a panic.
func TestTrainChecksCodeBuiltConfig(t *testing.T) {
	cfg := configs.Default()
	cfg.Data.Dir = t.TempDir()
	cfg.Data.CropAugmentation.Copies = 2
	cfg.Data.CropAugmentation.Scale = []float64{0.5} // not [min, max]
	_, err := Train(context.Background(), &cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "data.crop_augmentation.scale") || !strings.Contains(err.Error(), "run.dir: required") {
		t.Fatalf("Train with a one-value scale and no run folder: %v", err)
	}
	if _, err := Train(context.Background(), nil, Options{}); err == nil {
		t.Fatal("Train with no configuration")
	}
}

// TestResumeRefusesChangedImages: images added after a checkpoint would
// change every later epoch's order, so --resume says so instead of going
// on as a different run; with the images back as they were it resumes.
func TestResumeRefusesChangedImages(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := dataset.Synthesize(data, 6, 1); err != nil {
		t.Fatal(err)
	}
	parse := func(epochs int) *configs.Config {
		cfg, err := configs.Parse([]byte(fmt.Sprintf(`
data: {dir: data, image_size: [48, 48], validation_split: 0.25, workers: 2}
head: {layers: [8]}
train: {epochs: %d, batch: 4}
run: {dir: run}
`, epochs)), filepath.Join(dir, "c.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ctx := context.Background()
	if _, err := Train(ctx, parse(1), Options{}); err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(data, "cats", "extra.png")
	raw, err := os.ReadFile(filepath.Join(data, "dogs", "dog_00001.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(extra, raw, 0o644); err != nil { // a dog among the cats
		t.Fatal(err)
	}
	broken := filepath.Join(data, "dogs", "broken.jpg") // and a file to skip
	if err := os.WriteFile(broken, []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	before := map[string][]byte{}
	for _, f := range []string{"backbone.npz", "config.yaml", "skipped.jsonl"} {
		before[f], _ = os.ReadFile(filepath.Join(run, f))
	}
	_, err = Train(ctx, parse(2), Options{Resume: true})
	if err == nil || !strings.Contains(err.Error(), "the images changed since checkpoint") {
		t.Fatalf("resume with an image added: %v", err)
	}
	// The refused resume changed nothing: predict still loads the run.
	for f, b := range before {
		if now, _ := os.ReadFile(filepath.Join(run, f)); !bytes.Equal(now, b) {
			t.Errorf("the refused resume rewrote %s", f)
		}
	}
	c, err := LoadClassifier(run, ClassifierOptions{})
	if err != nil {
		t.Fatalf("predict after a refused resume: %v", err)
	}
	c.Close()
	os.Remove(extra)
	os.Remove(broken)
	if res, err := Train(ctx, parse(2), Options{Resume: true}); err != nil || len(res.History) != 2 {
		t.Fatalf("resume with the images back: %v", err)
	}
	// The same images with their features computed again, in batches of
	// another size (other rounding): a warning, not "the images changed".
	if err := os.RemoveAll(cfgCacheDir(t, parse(3))); err != nil {
		t.Fatal(err)
	}
	cfg := parse(3)
	cfg.Backbone.Batch = 3
	if res, err := Train(ctx, cfg, Options{Resume: true}); err != nil || len(res.History) != 3 {
		t.Fatalf("resume with the feature cache recomputed: %v", err)
	}
}

// TestResumeNamesImagesReadNow: a file the run skipped (skipped.jsonl)
// that is read now changes the images, and the refusal names it: after an
// upgrade that decodes files the earlier build could not (a CMYK 4:2:0
// JPEG), the user changed nothing, and "put the images back as they were"
// alone left them guessing.
func TestResumeNamesImagesReadNow(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 6, tinyYAML)
	late := filepath.Join(dir, "data", "dogs", "late.jpg")
	if err := os.WriteFile(late, []byte("not a jpeg yet"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := Train(ctx, cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	jpegs, _ := filepath.Glob(filepath.Join(dir, "data", "dogs", "*.jpg"))
	var raw []byte
	for _, f := range jpegs {
		if f != late {
			raw, _ = os.ReadFile(f)
			break
		}
	}
	if err := os.WriteFile(late, raw, 0o644); err != nil { // read now
		t.Fatal(err)
	}
	cfg.Train.Epochs = 2
	_, err := Train(ctx, cfg, Options{Resume: true})
	if err == nil || !strings.Contains(err.Error(), "the images changed since checkpoint") || !strings.Contains(err.Error(), "dogs/late.jpg") ||
		!strings.Contains(err.Error(), "skipped") || !strings.Contains(err.Error(), "with them moved out of the data folder, it resumes") {
		t.Fatalf("resume with a skipped file read now: %v, want the refusal naming dogs/late.jpg as skipped before", err)
	}
	// With another image added too, moving the file out would not do:
	// the refusal does not say it would.
	if err := os.WriteFile(filepath.Join(dir, "data", "cats", "added.jpg"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(ctx, cfg, Options{Resume: true}); err == nil || !strings.Contains(err.Error(), "dogs/late.jpg") || strings.Contains(err.Error(), "it resumes") {
		t.Fatalf("resume with a skipped file read now and an image added: %v", err)
	}
	// The skipped files' report is the checkpoint's still: refused
	// resumes do not rewrite it.
	if report, _ := os.ReadFile(filepath.Join(cfg.Run.Dir, "skipped.jsonl")); !strings.Contains(string(report), "dogs/late.jpg") {
		t.Errorf("skipped.jsonl after refused resumes: %q", report)
	}
	// Both out of the way, the resume goes on, and the report of what it
	// skipped (nothing) replaces the old one.
	for _, f := range []string{late, filepath.Join(dir, "data", "cats", "added.jpg")} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Train(ctx, cfg, Options{Resume: true, Out: io.Discard}); err != nil {
		t.Fatalf("resume with the files moved out: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Run.Dir, "skipped.jsonl")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("skipped.jsonl of an earlier start left beside a resume that skipped nothing (%v)", err)
	}
}

// TestResumeNamesMaxPixels: a resume refused because a raised pixel limit
// lets files in says so.
func TestResumeNamesMaxPixels(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 6, tinyYAML)
	cfg.Data.MaxPixels = 250 * 250 // the synthetic images are 96 to 512 pixels a side
	ctx := context.Background()
	if _, err := Train(ctx, cfg, Options{Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	cfg.Data.MaxPixels, cfg.Train.Epochs = 1<<30, 2
	if _, err := Train(ctx, cfg, Options{Resume: true, Out: io.Discard}); err == nil || !strings.Contains(err.Error(), "data.max_pixels changed from 62500 to 1073741824") {
		t.Fatalf("resume with max_pixels raised: %v", err)
	}
}

// TestROCAUC holds rocAUC against counting every (positive, negative) pair,
// ties counting half.
func TestROCAUC(t *testing.T) {
	pairs := func(scores []float32, labels []int) float64 {
		var sum, n float64
		for i := range scores {
			for j := range scores {
				if labels[i] == 1 && labels[j] == 0 {
					n++
					switch {
					case scores[i] > scores[j]:
						sum++
					case scores[i] == scores[j]:
						sum += 0.5
					}
				}
			}
		}
		return sum / n
	}
	rng := rand.New(rand.NewPCG(5, 5))
	random := make([]float32, 200)
	randomLabels := make([]int, 200)
	for i := range random {
		random[i] = float32(rng.IntN(20)) / 20 // many ties
		randomLabels[i] = rng.IntN(2)
	}
	for _, tc := range []struct {
		name   string
		scores []float32
		labels []int
		want   float64 // -1: count the pairs
	}{
		{"perfect", []float32{0.1, 0.2, 0.8, 0.9}, []int{0, 0, 1, 1}, 1},
		{"inverted", []float32{0.1, 0.2, 0.8, 0.9}, []int{1, 1, 0, 0}, 0},
		{"all tied", []float32{0.5, 0.5, 0.5}, []int{0, 1, 1}, 0.5},
		{"one swap", []float32{0.1, 0.3, 0.2, 0.9}, []int{0, 0, 1, 1}, 0.75},
		{"random with ties", random, randomLabels, -1},
	} {
		got, ok := rocAUC(tc.scores, tc.labels)
		want := tc.want
		if want < 0 {
			want = pairs(tc.scores, tc.labels)
		}
		if !ok || math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: AUC %v (ok %v), want %v", tc.name, got, ok, want)
		}
	}
	if _, ok := rocAUC([]float32{0.2, 0.7}, []int{1, 1}); ok {
		t.Error("AUC of positives alone")
	}
}

// TestResumeRewritesReports: a run killed after an epoch's checkpoint but
// before its reports were written (here: reports deleted) gets them back
// on resume: TensorBoard and metrics.csv show every epoch once.
func TestResumeRewritesReports(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	train, val := randomSplit(rng, 20, 6, 2), randomSplit(rng, 8, 6, 2)
	dir := t.TempDir()
	first := newTrainer(t, dir, train, val)
	first.Epochs = 2
	if _, err := first.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tensorboard", "metrics.csv", "metrics.jsonl"} {
		if err := os.RemoveAll(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	second := newTrainer(t, dir, train, val)
	second.Epochs = 3
	resumeLatest(t, second)
	history, err := second.Fit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkTensorBoard(t, dir, history)
	raw, _ := os.ReadFile(filepath.Join(dir, "metrics.csv"))
	if rows := strings.Count(string(raw), "\n"); rows != 1+3 {
		t.Errorf("metrics.csv has %d lines after the resume, want a header and 3 epochs:\n%s", rows, raw)
	}
}

// cfgCacheDir is the feature cache folder of cfg, which must exist.
func cfgCacheDir(t *testing.T, cfg *configs.Config) string {
	t.Helper()
	if _, err := os.Stat(cfg.Cache.Dir); err != nil {
		t.Fatalf("feature cache: %v", err)
	}
	return cfg.Cache.Dir
}

// TestResumeBeforeTrainingChecksConfig: a run stopped before its first
// checkpoint (here: during calibration) has said what it is, so a resume
// with another backbone is refused, not trained on the old one.
func TestResumeBeforeTrainingChecksConfig(t *testing.T) {
	dir := t.TempDir()
	if err := dataset.Synthesize(filepath.Join(dir, "data"), 6, 1); err != nil {
		t.Fatal(err)
	}
	parse := func(width int) *configs.Config {
		cfg, err := configs.Parse([]byte(fmt.Sprintf(`
data: {dir: data, image_size: [48, 48], workers: 2}
backbone: {random_width: %d}
head: {layers: [8]}
train: {epochs: 1, batch: 4}
run: {dir: run}
`, width)), filepath.Join(dir, "c.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(stopped, parse(8), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a run stopped at once: %v", err)
	}
	_, err := Train(context.Background(), parse(16), Options{Resume: true})
	if err == nil || !strings.Contains(err.Error(), "backbone.random_width changed from 8 to 16") {
		t.Fatalf("resume with another backbone before any checkpoint: %v", err)
	}
}

// TestTrainWithSGDAndLabelSmoothing runs the pipeline with SGD (momentum)
// under a step schedule and label smoothing: the schedule starts from
// train.sgd.lr, checkpoints hold the momentum buffers and name the
// optimizer, a resume with more epochs goes on with the schedule's rates,
// one with Adam is refused at once, and the run's classifier smooths its
// loss as the training did.
func TestTrainWithSGDAndLabelSmoothing(t *testing.T) {
	dir := t.TempDir()
	if err := dataset.Synthesize(filepath.Join(dir, "data"), 6, 1); err != nil {
		t.Fatal(err)
	}
	parse := func(epochs int, optimizer string) *configs.Config {
		sgd := "sgd: {lr: 0.1, momentum: 0.9}"
		if optimizer == "adam" {
			sgd = ""
		}
		cfg, err := configs.Parse([]byte(fmt.Sprintf(`
data: {dir: data, image_size: [48, 48], validation_split: 0.25, workers: 2}
head: {layers: [8]}
train:
  epochs: %d
  batch: 4
  optimizer: %s
  %s
  lr_schedule: {kind: step, step_epochs: 1, gamma: 0.5}
  label_smoothing: 0.2
run: {dir: run}
`, epochs, optimizer, sgd)), filepath.Join(dir, "c.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ctx := context.Background()
	res, err := Train(ctx, parse(2, "sgd"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkLRs := func(h []EpochMetrics, want ...float64) {
		t.Helper()
		for i, w := range want {
			if i >= len(h) || h[i].LR != w {
				t.Fatalf("history %+v: want learning rates %v", h, want)
			}
		}
	}
	checkLRs(res.History, 0.1, 0.05)
	run := filepath.Join(dir, "run")
	mgr, err := checkpoints.NewManager(filepath.Join(run, "checkpoints"), checkpoints.Options{Keep: 3})
	if err != nil {
		t.Fatal(err)
	}
	last, err := mgr.Latest()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoints.Load(last.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ck.Tensor(head.MomentumPrefix + "dense_0/kernel"); !ok || ck.Manifest.Optimizer != "sgd" || ck.Manifest.Metrics[metricLR] != 0.05 {
		t.Errorf("checkpoint: optimizer %q, momentum buffer saved %v, lr %v", ck.Manifest.Optimizer, ok, ck.Manifest.Metrics[metricLR])
	}
	c, err := LoadClassifier(run, ClassifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.head.LabelSmoothing(); got != 0.2 {
		t.Errorf("the classifier's head smooths labels by %v, want the run's 0.2", got)
	}
	c.Close()
	// Refused before the data is even looked at (it is away).
	away := filepath.Join(dir, "away")
	if err := os.Rename(filepath.Join(dir, "data"), away); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(ctx, parse(3, "adam"), Options{Resume: true}); err == nil || !strings.Contains(err.Error(), "the run trained with train.optimizer sgd, the configuration says adam") {
		t.Fatalf("resume with adam: %v", err)
	}
	if err := os.Rename(away, filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
	if res, err = Train(ctx, parse(3, "sgd"), Options{Resume: true}); err != nil {
		t.Fatal(err)
	}
	checkLRs(res.History, 0.1, 0.05, 0.025)
}

// TestResumeWithMovedWeights: the backbone weights are known by their
// content. A run resumes with its weights file moved (backbone.weights
// changed, listed as applied), and one whose file holds other weights is
// refused before the extraction it would otherwise run.
// TestResumeWithMovedData: the images are known by their content, so a
// data folder moved elsewhere resumes; an image edited in the move does not.
func TestResumeWithMovedData(t *testing.T) {
	dir := t.TempDir()
	if err := dataset.Synthesize(filepath.Join(dir, "data"), 6, 1); err != nil {
		t.Fatal(err)
	}
	parse := func(data string, epochs int) *configs.Config {
		cfg, err := configs.Parse([]byte(fmt.Sprintf("data: {dir: %q, image_size: [48, 48], validation_split: 0.25}\n"+
			"head: {layers: [8]}\ntrain: {epochs: %d, batch: 4}\nrun: {dir: run}\n", data, epochs)), filepath.Join(dir, "c.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ctx := context.Background()
	if _, err := Train(ctx, parse("data", 1), Options{}); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(dir, "elsewhere", "images")
	if err := os.MkdirAll(filepath.Dir(moved), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "data"), moved); err != nil {
		t.Fatal(err)
	}
	cats, err := filepath.Glob(filepath.Join(moved, "cats", "cat_*"))
	if err != nil || len(cats) == 0 {
		t.Fatalf("cats %q: %v", cats, err)
	}
	edited := cats[0]
	raw, err := os.ReadFile(edited)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(edited, append(raw, 0), 0o644); err != nil { // other bytes, the same picture
		t.Fatal(err)
	}
	if _, err := Train(ctx, parse(moved, 2), Options{Resume: true}); err == nil || !strings.Contains(err.Error(), "the images changed since checkpoint") {
		t.Fatalf("resume with the data moved and an image edited: %v", err)
	}
	if err := os.WriteFile(edited, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res, err := Train(ctx, parse(moved, 2), Options{Resume: true, Out: &out})
	if err != nil || len(res.History) != 2 {
		t.Fatalf("resume with the data moved: %v\n%s", err, &out)
	}
	if !strings.Contains(out.String(), "data.dir changed from") {
		t.Errorf("the resume did not list the data's new place:\n%s", &out)
	}
}

// TestResumeWithClassesListed: listing the classes the folders give, in
// their order, or raising the pixel limit where no image is over it,
// changes no image the run trains on, and resumes; listing them in
// another order changes the labels, and is refused.
func TestResumeWithClassesListed(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyRun(t, dir, 4, tinyYAML)
	cfg.Train.Epochs = 2
	cfg.Data.Classes = []string{"dogs", "cats"}
	if _, err := Train(context.Background(), cfg, Options{Resume: true, Out: io.Discard}); err == nil || !strings.Contains(err.Error(), `the classes are ["dogs" "cats"]`) {
		t.Errorf("resume with the classes in another order: %v", err)
	}
	// A class folder renamed: the same images, labels and split, but the
	// checkpoints would name the class two ways.
	if err := os.Rename(filepath.Join(dir, "data", "cats"), filepath.Join(dir, "data", "kittens")); err != nil {
		t.Fatal(err)
	}
	cfg.Data.Classes = nil
	if _, err := Train(context.Background(), cfg, Options{Resume: true, Out: io.Discard}); err == nil || !strings.Contains(err.Error(), `the classes are ["dogs" "kittens"]`) {
		t.Errorf("resume with a class folder renamed: %v", err)
	}
	if err := os.Rename(filepath.Join(dir, "data", "kittens"), filepath.Join(dir, "data", "cats")); err != nil {
		t.Fatal(err)
	}
	cfg.Data.Classes, cfg.Data.MaxPixels = []string{"cats", "dogs"}, 2*cfg.Data.MaxPixels
	if res, err := Train(context.Background(), cfg, Options{Resume: true, Out: io.Discard}); err != nil || len(res.History) != 2 {
		t.Errorf("resume with the classes listed as found: %v", err)
	}
}

// TestResumeWithMovedDataBeforeImageDigests: a checkpoint from before runs
// recorded their images' sha256 cannot vouch for a moved data folder: the
// resume is refused, saying where the data was.
func TestResumeWithMovedDataBeforeImageDigests(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyRun(t, dir, 4, tinyYAML)
	steps, err := filepath.Glob(filepath.Join(dir, "run", "checkpoints", "step-*"))
	if err != nil || len(steps) == 0 {
		t.Fatalf("checkpoints %q: %v", steps, err)
	}
	for _, step := range steps { // as such a checkpoint was written
		var run, man map[string]any
		rewrite := func(name string, v *map[string]any, edit func()) []byte {
			raw, err := os.ReadFile(filepath.Join(step, name))
			if err == nil {
				err = json.Unmarshal(raw, v)
			}
			if err != nil {
				t.Fatal(err)
			}
			edit()
			if raw, err = json.Marshal(*v); err == nil {
				err = os.WriteFile(filepath.Join(step, name), raw, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}
		raw := rewrite(checkpoints.RunFile, &run, func() { delete(run, "images_sha256") })
		sum := sha256.Sum256(raw)
		rewrite("manifest.json", &man, func() { man["run_sha256"] = hex.EncodeToString(sum[:]) })
	}
	if err := os.Rename(filepath.Join(dir, "data"), filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	cfg.Data.Dir, cfg.Train.Epochs = filepath.Join(dir, "moved"), 2
	_, err = Train(context.Background(), cfg, Options{Resume: true, Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "data.dir was "+filepath.Join(dir, "data")) {
		t.Fatalf("resume of a checkpoint without image digests, data moved: %v", err)
	}
	// Nor may its classes be listed.
	if err := os.Rename(filepath.Join(dir, "moved"), filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
	cfg.Data.Dir, cfg.Data.Classes = filepath.Join(dir, "data"), []string{"cats", "dogs"}
	_, err = Train(context.Background(), cfg, Options{Resume: true, Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "data.classes changed") {
		t.Fatalf("resume of a checkpoint without image digests, classes listed: %v", err)
	}
}

func TestResumeWithMovedWeights(t *testing.T) {
	dir := t.TempDir()
	tinyRun(t, dir, 4, tinyYAML) // calibrated random weights in run/backbone.npz
	raw, err := os.ReadFile(filepath.Join(dir, "run", "backbone.npz"))
	if err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, "w.npz")
	if err := os.WriteFile(weights, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	parse := func(weights string, epochs int) *configs.Config {
		cfg, err := configs.Parse([]byte(fmt.Sprintf("data: {dir: data, image_size: [48, 48], validation_split: 0.25}\n"+
			"backbone: {weights: %q}\nhead: {layers: [8]}\ntrain: {epochs: %d, batch: 4}\nrun: {dir: run2}\n", weights, epochs)), filepath.Join(dir, "c.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ctx := context.Background()
	if _, err := Train(ctx, parse("w.npz", 1), Options{}); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(dir, "moved", "renamed.npz")
	if err := os.MkdirAll(filepath.Dir(moved), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(weights, moved); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res, err := Train(ctx, parse(moved, 2), Options{Resume: true, Out: &out})
	if err != nil || len(res.History) != 2 {
		t.Fatalf("resume with the weights moved: %v\n%s", err, &out)
	}
	if !strings.Contains(out.String(), "backbone.weights changed from") {
		t.Errorf("the resume did not list the weights' new place:\n%s", &out)
	}
	// A checkpoint from before the move finds them where the newest one
	// read them.
	steps, err := filepath.Glob(filepath.Join(dir, "run2", "checkpoints", "step-*"))
	if err != nil || len(steps) < 2 {
		t.Fatalf("checkpoints %q: %v", steps, err)
	}
	c, err := LoadClassifier(steps[0], ClassifierOptions{})
	if err != nil {
		t.Fatalf("predict with the checkpoint from before the move: %v", err)
	}
	c.Close()

	w, err := resnet.Load(moved)
	if err != nil {
		t.Fatal(err)
	}
	w.Tensor(w.Names()[0]).Data().([]float32)[0] += 1
	other := filepath.Join(dir, "other.npz")
	if err := w.Save(other); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	_, err = Train(ctx, parse(other, 3), Options{Resume: true, Out: &out})
	if err == nil || !strings.Contains(err.Error(), "are not those of checkpoint") {
		t.Fatalf("resume with other weights: %v, want them refused", err)
	}
	if strings.Contains(out.String(), "features ready") {
		t.Errorf("other weights were refused after the extraction:\n%s", &out)
	}
}

// TestRunFolderLock: a training holds its run folder; a second one there
// is refused at once, saying why, and runs once the first is done.
func TestRunFolderLock(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 4, tinyYAML)
	if err := os.MkdirAll(cfg.Run.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, ok, err := filelock.TryLock(filepath.Join(cfg.Run.Dir, RunLockFile)) // as another train would
	if err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	for _, opts := range []Options{{}, {Resume: true}} {
		if _, err := Train(context.Background(), cfg, opts); err == nil || !strings.Contains(err.Error(), "is in use by another train") {
			t.Errorf("Train(%+v) with the run folder held: %v", opts, err)
		}
	}
	// The range test writes only its own files: it may run beside.
	if _, err := Train(context.Background(), cfg, Options{FindLR: &LRFinder{}}); err != nil {
		t.Errorf("the learning-rate finder beside a training: %v", err)
	}
	os.Remove(filepath.Join(cfg.Run.Dir, "lr_find.csv"))
	os.Remove(filepath.Join(cfg.Run.Dir, "lr_find.png"))
	if _, err := os.Stat(filepath.Join(cfg.Run.Dir, "config.yaml")); err == nil {
		t.Error("the refused training wrote config.yaml")
	}
	unlock()
	if _, err := Train(context.Background(), cfg, Options{}); err != nil {
		t.Fatalf("Train once the folder is free: %v", err)
	}
}

// TestResumePassesOverDamagedCheckpoints: a run whose newest checkpoint
// was damaged after it was written resumes from the newest intact one,
// sets the damaged one aside, and ends as an uninterrupted run does; with
// none intact the resume is refused, saying so.
func TestResumePassesOverDamagedCheckpoints(t *testing.T) {
	dir := t.TempDir()
	if err := dataset.Synthesize(filepath.Join(dir, "data"), 4, 1); err != nil {
		t.Fatal(err)
	}
	parse := func(run string, epochs int) *configs.Config {
		cfg, err := configs.Parse([]byte(fmt.Sprintf("data: {dir: data, image_size: [48, 48], validation_split: 0.25}\nbackbone: {random_width: 4}\n"+
			"head: {layers: [8]}\ntrain: {epochs: %d, batch: 2}\nrun: {dir: %s, checkpoint_every: 1}\n", epochs, run)), filepath.Join(dir, "c.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ctx := context.Background()
	if _, err := Train(ctx, parse("whole", 2), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(ctx, parse("damaged", 1), Options{}); err != nil {
		t.Fatal(err)
	}
	ckDir := filepath.Join(dir, "damaged", "checkpoints")
	newest, err := filepath.EvalSymlinks(filepath.Join(ckDir, "last"))
	if err != nil {
		t.Fatal(err)
	}
	kernel := filepath.Join(newest, "dense_0", "kernel.npy")
	raw, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 0xff
	if err := os.WriteFile(kernel, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := Train(ctx, parse("damaged", 2), Options{Resume: true, Out: &out}); err != nil {
		t.Fatalf("resume: %v\n%s", err, &out)
	}
	if !strings.Contains(out.String(), "damaged") {
		t.Errorf("the resume did not say it passed over a damaged checkpoint:\n%s", &out)
	}
	if _, err := os.Stat(filepath.Join(ckDir, "corrupt-"+filepath.Base(newest))); err != nil {
		t.Errorf("the damaged checkpoint was not set aside: %v", err)
	}
	for _, f := range []string{"dense_0/kernel.npy", "dense_1/kernel.npy", "adam_m/dense_0/kernel.npy"} {
		want, err := os.ReadFile(filepath.Join(dir, "whole", "checkpoints", "last", f))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(ckDir, "last", f)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from the uninterrupted run's (%v)", f, err)
		}
	}

	// Every checkpoint damaged: refused.
	entries, _ := os.ReadDir(ckDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "step-") {
			os.Remove(filepath.Join(ckDir, e.Name(), "dense_0", "kernel.npy"))
		}
	}
	_, err = Train(ctx, parse("damaged", 3), Options{Resume: true})
	if err == nil || !strings.Contains(err.Error(), "no checkpoint in") {
		t.Errorf("resume with every checkpoint damaged: %v", err)
	}
}

// TestResumeFinishedRun: resuming a run that trained all its epochs says
// so, and how to train on, rather than "resumed from epoch N+1"; so does
// one whose newest checkpoint is part-way through an epoch that
// train.epochs, lowered since, no longer reaches.
func TestResumeFinishedRun(t *testing.T) {
	for _, tc := range []struct {
		name     string
		yaml     string
		midEpoch bool // the newest checkpoint removed: the one before is mid-epoch 2
		want     string
	}{
		{"finished", tinyYAML, false, "the run has trained 1 epoch(s) and train.epochs is 1, so there is nothing to train; to train on, raise train.epochs"},
		{"mid-epoch past train.epochs", strings.Replace(tinyYAML, "run: {dir: run}", "run: {dir: run, checkpoint_every: 1}", 1), true,
			"the run has trained 1 epoch(s) and 2 step(s) of the next, and train.epochs is 1, so there is nothing to train; to train on, raise train.epochs (e.g. --set train.epochs=11)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			yaml := tc.yaml
			if tc.midEpoch {
				yaml = strings.Replace(yaml, "epochs: 1", "epochs: 2", 1)
			}
			perClass := 4
			if tc.midEpoch {
				perClass = 8 // 3 steps an epoch
			}
			cfg := tinyRun(t, dir, perClass, yaml)
			if tc.midEpoch {
				cks, _ := filepath.Glob(filepath.Join(dir, "run", "checkpoints", "step-*"))
				slices.Sort(cks)
				if err := os.RemoveAll(cks[len(cks)-1]); err != nil {
					t.Fatal(err)
				}
				cfg.Train.Epochs = 1
			}
			var out strings.Builder
			res, err := Train(context.Background(), cfg, Options{Resume: true, Out: &out})
			if err != nil || len(res.History) != 1 {
				t.Fatalf("resume: %v", err)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("the resume says:\n%s", &out)
			}
		})
	}
}

func TestByMoreThan(t *testing.T) {
	for _, tc := range []struct {
		minDelta float64
		want     string
	}{{0, ""}, {0.01, " by more than 0.01"}, {1e-4, " by more than 0.0001"}} {
		if got := byMoreThan(tc.minDelta); got != tc.want {
			t.Errorf("byMoreThan(%g) = %q, want %q", tc.minDelta, got, tc.want)
		}
	}
}

// TestResumeNamesChangedSettings: checkpoints whose run folder lost its
// config.yaml (copied alone) still say which setting a refused resume
// changed, from the configuration they recorded.
func TestResumeNamesChangedSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyRun(t, dir, 4, tinyYAML)
	if err := os.Remove(filepath.Join(dir, "run", "config.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg.Head.Layers = []int{16}
	_, err := Train(context.Background(), cfg, Options{Resume: true})
	if err == nil || !strings.Contains(err.Error(), "was written with another configuration: head.layers changed from [8] to [16]") {
		t.Fatalf("resume with other head layers: %v", err)
	}
}

// TestClassWeightCountCheckedFirst: a class_weight list of the wrong length
// is refused once the classes are known, before any extraction.
func TestClassWeightCountCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 4, tinyYAML+"cache: {dir: cache}\n")
	cfg.Train.ClassWeight = configs.ClassWeight{Weights: []float64{1, 2, 3}}
	_, err := Train(context.Background(), cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), `train.class_weight: 3 weights for the 2 classes ["cats" "dogs"]`) {
		t.Fatalf("Train: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cache")); err == nil {
		t.Error("the feature cache was opened before the class weights were checked")
	}
}

func TestShellQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"runs/cats_dogs", "runs/cats_dogs"},
		{"/tmp/sp ace/rün dir", "'/tmp/sp ace/rün dir'"},
		{"it's", `'it'\''s'`},
		{"$HOME/x", "'$HOME/x'"},
		{"", "''"},
	} {
		if got := shellQuote(tc.in); got != tc.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestSummaryListsWhatIsThere: without validation there is no best
// checkpoint, and the closing summary does not name one.
func TestSummaryListsWhatIsThere(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 4, strings.Replace(tinyYAML, "validation_split: 0.25", "validation_split: 0", 1))
	var out strings.Builder
	if _, err := Train(context.Background(), cfg, Options{Out: &out}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "checkpoints/last, metrics.jsonl") || strings.Contains(s, "checkpoints/best") {
		t.Errorf("summary of a run without validation:\n%s", s)
	}
}

// TestTrainSaysWhatItDoesNotRead: files that are not images by their
// extension (an iPhone's .heic photos) are counted where training starts.
func TestTrainSaysWhatItDoesNotRead(t *testing.T) {
	dir := t.TempDir()
	if err := dataset.Synthesize(filepath.Join(dir, "data"), 4, 1); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cats/IMG_0001.HEIC", "dogs/IMG_0002.heic"} {
		if err := os.WriteFile(filepath.Join(dir, "data", f), []byte("not read"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := configs.Parse([]byte(tinyYAML), filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := Train(context.Background(), cfg, Options{Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "not read, as not images by their extension: 2 .heic files") {
		t.Errorf("output:\n%s", &out)
	}
}

// TestResumeReadsTheRunsExtensions: a run begun before TIFF was read
// resumes on the files it trained on, its folders' TIFF files not read;
// a run of today reads them, and refuses to resume with one added.
func TestResumeReadsTheRunsExtensions(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyRun(t, dir, 4, tinyYAML)
	ck, err := filepath.EvalSymlinks(filepath.Join(dir, "run", "checkpoints", "last"))
	if err != nil {
		t.Fatal(err)
	}
	tif := filepath.Join(dir, "data", "cats", "scan.tif")
	var b bytes.Buffer
	if err := tiff.Encode(&b, image.NewGray(image.Rect(0, 0, 40, 40)), nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tif, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Train.Epochs = 2
	if _, err := Train(context.Background(), cfg, Options{Resume: true}); err == nil || !strings.Contains(err.Error(), "the images changed") {
		t.Fatalf("resume of today's run with a TIFF added: %v", err)
	}

	rewriteRunInfo(t, ck, func(run map[string]any) { delete(run, "extensions") }) // as written before TIFF was read
	var out strings.Builder
	if _, err := Train(context.Background(), cfg, Options{Resume: true, Out: &out}); err != nil {
		t.Fatalf("resume of a run begun before TIFF was read: %v", err)
	}
	if !strings.Contains(out.String(), "not read, as not images by their extension: 1 .tif file") {
		t.Errorf("output:\n%s", &out)
	}
}

// TestNewStartReplacesAFailedStartsConfig: a start that failed before its
// first checkpoint leaves config.yaml; the next, corrected start replaces
// it, so that its own --resume is checked against what it is.
func TestNewStartReplacesAFailedStartsConfig(t *testing.T) {
	dir := t.TempDir()
	if err := dataset.Synthesize(filepath.Join(dir, "data"), 4, 1); err != nil {
		t.Fatal(err)
	}
	parse := func(yaml string) *configs.Config {
		cfg, err := configs.Parse([]byte(yaml), filepath.Join(dir, "c.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	failing := parse(strings.Replace(tinyYAML, "backbone: {random_width: 4}", "backbone: {weights: missing.npz}", 1))
	if _, err := Train(context.Background(), failing, Options{}); err == nil {
		t.Fatal("trained with missing weights")
	}
	good := parse(strings.Replace(tinyYAML, "layers: [8]", "layers: [16]", 1))
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(stopped, good, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a start stopped at once: %v", err)
	}
	if _, err := Train(context.Background(), good, Options{Resume: true}); err != nil {
		t.Fatalf("its resume: %v", err)
	}
}

// TestResumeAppliesTheLRTheCheckpointDidNotTrainWith: a learning rate
// changed on resume applies until a checkpoint has trained with it, even
// where config.yaml already holds it (a resume that had nothing to train,
// or one killed before its first checkpoint, wrote it) or is gone; and a
// rate config.yaml holds but no checkpoint trained with does not replace
// the checkpoint's when the configuration goes back to the run's.
func TestResumeAppliesTheLRTheCheckpointDidNotTrainWith(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first float64 // lr of the resume with nothing to train (0: none)
		lr    float64 // lr of the resume that trains epoch 2
		lose  bool    // config.yaml removed before that resume
		want  float64 // epoch 2's learning rate
	}{
		{"changed by a resume with nothing to train", 5e-4, 5e-4, false, 5e-4},
		{"changed, config.yaml lost", 0, 5e-4, true, 5e-4},
		{"changed back to the checkpoint's", 5e-4, 1e-3, false, 1e-3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := tinyRun(t, dir, 4, tinyYAML)
			if tc.first != 0 {
				cfg.Train.Adam.LR = tc.first
				if _, err := Train(context.Background(), cfg, Options{Resume: true, Out: io.Discard}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.lose {
				if err := os.Remove(filepath.Join(dir, "run", "config.yaml")); err != nil {
					t.Fatal(err)
				}
			}
			cfg.Train.Adam.LR, cfg.Train.Epochs = tc.lr, 2
			var out strings.Builder
			res, err := Train(context.Background(), cfg, Options{Resume: true, Out: &out})
			if err != nil {
				t.Fatal(err)
			}
			if h := res.History; len(h) != 2 || h[0].LR != 1e-3 || h[1].LR != tc.want {
				t.Fatalf("learning rates %+v, want 0.001 then %v", h, tc.want)
			}
			if said := strings.Contains(out.String(), "train.adam.lr changed from 0.001 to 0.0005"); said != (tc.want != 1e-3) {
				t.Errorf("the resume says (lr change listed: %v):\n%s", said, &out)
			}
		})
	}
}

// TestNewStartAfterAKilledFirstSave: a run killed while it wrote its first
// checkpoint leaves only the save's temporary folder (or link) in
// checkpoints/; starting the run afresh must not be refused as a folder
// that "already has checkpoints". A real checkpoint still refuses it.
func TestNewStartAfterAKilledFirstSave(t *testing.T) {
	for _, tc := range []struct {
		leftover string
		link     bool
		refused  bool
	}{
		{leftover: ".tmp-step-000002-1jhg6n9kurezi"},
		{leftover: ".tmp-last", link: true},
		{leftover: "step-000002", refused: true},
	} {
		t.Run(tc.leftover, func(t *testing.T) {
			dir := t.TempDir()
			if err := dataset.Synthesize(filepath.Join(dir, "data"), 4, 1); err != nil {
				t.Fatal(err)
			}
			cfg, err := configs.Parse([]byte(tinyYAML), filepath.Join(dir, "c.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			ckDir := filepath.Join(cfg.Run.Dir, "checkpoints")
			if err := os.MkdirAll(ckDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.link {
				err = os.Symlink("step-000002", filepath.Join(ckDir, tc.leftover))
			} else {
				err = os.MkdirAll(filepath.Join(ckDir, tc.leftover, "dense_0"), 0o755)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = Train(context.Background(), cfg, Options{})
			if refused := err != nil && strings.Contains(err.Error(), "already has checkpoints"); refused != tc.refused || !tc.refused && err != nil {
				t.Errorf("a new start beside %s: %v, want refused %v", tc.leftover, err, tc.refused)
			}
		})
	}
}

// TestResumeRefusesWhenNoManifestReads: a resume whose checkpoints all have
// a damaged manifest.json (truncated since they were written) is refused,
// saying so, and changes nothing: it must not start again from nothing,
// saving new checkpoints over the damaged ones and calibrating (saving) the
// random backbone anew.
func TestResumeRefusesWhenNoManifestReads(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 4, strings.Replace(tinyYAML, "run: {dir: run}", "run: {dir: run, checkpoint_every: 1}", 1))
	if _, err := Train(context.Background(), cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	ckDir := filepath.Join(cfg.Run.Dir, "checkpoints")
	steps, _ := filepath.Glob(filepath.Join(ckDir, "step-*"))
	if len(steps) == 0 {
		t.Fatal("no checkpoint")
	}
	for _, s := range steps {
		if err := os.Truncate(filepath.Join(s, checkpoints.ManifestFile), 10); err != nil {
			t.Fatal(err)
		}
	}
	weights := filepath.Join(cfg.Run.Dir, "backbone.npz")
	before, err := os.Stat(weights)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Train(context.Background(), cfg, Options{Resume: true})
	if err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Errorf("resume with every manifest damaged: %v, want refused", err)
	}
	for _, s := range steps {
		if raw, err := os.ReadFile(filepath.Join(s, checkpoints.ManifestFile)); err != nil || len(raw) != 10 {
			t.Errorf("%s was replaced (%v)", s, err)
		}
	}
	if after, err := os.Stat(weights); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the refused resume rewrote %s (%v)", weights, err)
	}
}

// TestResumeRemovesLeftovers: a run killed while it wrote a file of its
// folder (backbone.npz: tens of MB) leaves the temporary file; the next
// training there removes it, but not what --find-lr, which runs beside a
// training, or others in its sub-folders may be writing.
func TestResumeRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyRun(t, dir, 4, tinyYAML)
	run := filepath.Join(dir, "run")
	leftovers := map[string]bool{ // name: removed
		atomicfile.TempPrefix + "backbone.npz-3k2j1": true,
		atomicfile.TempPrefix + "metrics.jsonl-x9":   true,
		atomicfile.TempPrefix + "lr_find.png-a1":     false,
		// A feature cache (or predict's plots) inside the run folder is
		// written by others meanwhile.
		filepath.Join("cache", atomicfile.TempPrefix+"shard-1.npy-a2"): false,
	}
	if err := os.MkdirAll(filepath.Join(run, "cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name := range leftovers {
		if err := os.WriteFile(filepath.Join(run, name), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Train.Epochs = 2
	if _, err := Train(context.Background(), cfg, Options{Resume: true, Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	for name, removed := range leftovers {
		if _, err := os.Stat(filepath.Join(run, name)); (err != nil) != removed {
			t.Errorf("%s: removed %v, want %v", name, err != nil, removed)
		}
	}
}

// TestConfusionAverages checks the accuracy and the macro and weighted
// averages under the per-class scores, as scikit-learn's
// classification_report prints them: the averages over the classes that
// have images or predictions (a class with neither is not scored).
func TestConfusionAverages(t *testing.T) {
	pa, ra, pb, rb := 5.0/8, 5.0/6, 2.0/3, 0.5
	fa, fb := 2*pa*ra/(pa+ra), 2*pb*rb/(pb+rb)
	for _, tc := range []struct {
		name            string
		c               *Confusion
		accuracy        float64
		macro, weighted ClassScores
		lines           []string
	}{
		{"three classes", &Confusion{Classes: []string{"a", "b", "c"}, Counts: [][]int{{5, 1, 0}, {2, 2, 0}, {1, 0, 0}}},
			7.0 / 11,
			ClassScores{"macro avg", (pa + pb) / 3, (ra + rb) / 3, (fa + fb) / 3, 11},
			ClassScores{"weighted avg", (6*pa + 4*pb) / 11, (6*ra + 4*rb) / 11, (6*fa + 4*fb) / 11, 11},
			[]string{"accuracy", "0.6364", "macro avg", "weighted avg"}},
		{"a class without images or predictions", &Confusion{Classes: []string{"a", "b", "c", "d"}, Counts: [][]int{{5, 1, 0, 0}, {2, 2, 0, 0}, {1, 0, 0, 0}, {0, 0, 0, 0}}},
			7.0 / 11,
			ClassScores{"macro avg", (pa + pb) / 3, (ra + rb) / 3, (fa + fb) / 3, 11},
			ClassScores{"weighted avg", (6*pa + 4*pb) / 11, (6*ra + 4*rb) / 11, (6*fa + 4*fb) / 11, 11},
			nil},
		{"predicted but without images", &Confusion{Classes: []string{"a", "b"}, Counts: [][]int{{3, 1}, {0, 0}}},
			3.0 / 4,
			ClassScores{"macro avg", 0.5, 0.375, (2 * 0.75 / 1.75) / 2, 4},
			ClassScores{"weighted avg", 1, 0.75, 2 * 0.75 / 1.75, 4},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc, macro, weighted := tc.c.Averages()
			if math.Abs(acc-tc.accuracy) > 1e-12 {
				t.Errorf("accuracy %v, want %v", acc, tc.accuracy)
			}
			for _, p := range [][2]ClassScores{{macro, tc.macro}, {weighted, tc.weighted}} {
				g, w := p[0], p[1]
				if g.Class != w.Class || g.Support != w.Support || math.Abs(g.Precision-w.Precision) > 1e-12 ||
					math.Abs(g.Recall-w.Recall) > 1e-12 || math.Abs(g.F1-w.F1) > 1e-12 {
					t.Errorf("got %+v, want %+v", g, w)
				}
			}
			var b strings.Builder
			if err := tc.c.WriteScores(&b); err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.lines {
				if !strings.Contains(b.String(), want) {
					t.Errorf("WriteScores lacks %q:\n%s", want, b.String())
				}
			}
		})
	}
}

// TestConfusionShown: a matrix of many classes, unreadable as text, is
// shown as its most frequent confusions instead; a few classes' matrix as
// it is.
func TestConfusionShown(t *testing.T) {
	many := NewConfusion(nil)
	for i := range maxMatrixClasses + 1 {
		many.Classes = append(many.Classes, fmt.Sprintf("class %02d", i))
	}
	many = NewConfusion(many.Classes)
	for k := range many.Classes {
		many.Counts[k][k] = 5
	}
	many.Counts[3][7], many.Counts[2][1], many.Counts[2][9] = 4, 1, 2
	for _, tc := range []struct {
		name      string
		c         *Confusion
		want, not []string
	}{
		{"two classes", &Confusion{Classes: []string{"cats", "dogs"}, Counts: [][]int{{5, 1}, {0, 4}}},
			[]string{`true \ predicted`, "cats", "dogs"}, []string{"most frequent"}},
		{"many classes", many,
			[]string{"the 3 most frequent confusions", "class 03 class 07 4 0.4444\n class 02 class 09 2 0.2500\n class 02 class 01 1 0.1250"},
			[]string{`true \ predicted`}},
		{"many classes, no mistake", NewConfusion(many.Classes),
			[]string{"no confusions"}, []string{`true \ predicted`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := tc.c.WriteShown(&b); err != nil {
				t.Fatal(err)
			}
			var lines []string // spaces collapsed
			for l := range strings.Lines(b.String()) {
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			}
			text := strings.Join(lines, "\n ")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("lacks %q:\n%s", w, b.String())
				}
			}
			for _, w := range tc.not {
				if strings.Contains(b.String(), w) {
					t.Errorf("has %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// TestTopKAccuracy: an image counts if fewer than k classes are more
// probable than its own (tied classes count for it, as TensorFlow's
// in_top_k, which Keras' top_k_categorical_accuracy uses).
func TestTopKAccuracy(t *testing.T) {
	p := []float32{0.05, 0.4, 0.3, 0.15, 0.1}
	for _, tc := range []struct {
		name   string
		scored []Scored
		k      int
		want   float64
	}{
		{"none", nil, 2, 0},
		{"first", []Scored{{True: 1, Probabilities: p}}, 1, 1},
		{"second", []Scored{{True: 2, Probabilities: p}}, 1, 0},
		{"within k", []Scored{{True: 2, Probabilities: p}, {True: 4, Probabilities: p}, {True: 3, Probabilities: p}, {True: 0, Probabilities: p}}, 3, 0.5},
		{"tied at the boundary", []Scored{{True: 2, Probabilities: []float32{0.3, 0.3, 0.3, 0.1}}}, 1, 1},
	} {
		if got := topKAccuracy(tc.scored, tc.k); got != tc.want {
			t.Errorf("%s: top-%d accuracy %v, want %v", tc.name, tc.k, got, tc.want)
		}
	}
}

// TestSplitScoresTop5: evaluateSplit (training's validation, predict
// --evaluate) and scoreProbabilities (--evaluate with TTA) give the top-5
// accuracy of the probabilities they hand to each row, for more than 5
// classes only, batch boundaries or not.
func TestSplitScoresTop5(t *testing.T) {
	for _, classes := range []int{7, 6, 5, 2} {
		rng := rand.New(rand.NewPCG(4, uint64(classes)))
		s := randomSplit(rng, 19, 6, classes)
		h, err := head.New(head.Config{InputDim: 6, Hidden: []int{8}, Classes: classes, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		names := []string{"a", "b", "c", "d", "e", "f", "g"}[:classes]
		var scored []Scored
		var all []float32
		record := func(row, pred int, probs []float32) {
			scored = append(scored, Scored{True: s.Y[row], Pred: pred, Probabilities: probs})
			all = append(all, probs...)
		}
		sc, err := evaluateSplit(h, s, names, 4, record)
		if err != nil {
			t.Fatal(err)
		}
		want := topKAccuracy(scored, 5)
		if sc.HasTop5 != (classes > 5) || sc.HasTop5 && sc.Top5 != want {
			t.Errorf("%d classes: evaluateSplit's top-5 accuracy %v (%v), want %v", classes, sc.Top5, sc.HasTop5, want)
		}
		sc = scoreProbabilities(tensor.New(tensor.WithShape(s.Len(), classes), tensor.WithBacking(all)), s.Y, names, 0, nil)
		if sc.HasTop5 != (classes > 5) || sc.HasTop5 && sc.Top5 != want {
			t.Errorf("%d classes: scoreProbabilities' top-5 accuracy %v (%v), want %v", classes, sc.Top5, sc.HasTop5, want)
		}
		if classes > 5 && want == 1 {
			t.Errorf("%d classes: top-5 accuracy 1, the test tells little", classes)
		}
	}
}

// TestClassWithoutTrainingFilesRefusedEarly: a class whose files all fall
// to validation could never be learnt; training says so before the
// backbone's pass over the images (minutes or hours), not after it.
func TestClassWithoutTrainingFilesRefusedEarly(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := dataset.Synthesize(data, 6, 1); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(data, "solo"), 0o755); err != nil {
		t.Fatal(err)
	}
	cats, _ := filepath.Glob(filepath.Join(data, "cats", "*"))
	if err := os.Rename(cats[0], filepath.Join(data, "solo", filepath.Base(cats[0]))); err != nil {
		t.Fatal(err)
	}
	for seed := range 100 {
		cfg, err := configs.Parse([]byte(fmt.Sprintf("data: {dir: data, image_size: [48, 48], validation_split: 0.5, seed: %d}\n"+
			"backbone: {random_width: 4}\nhead: {layers: [8]}\ntrain: {epochs: 1, batch: 4}\nrun: {dir: run%d}\ncache: {dir: cache%d}\n", seed, seed, seed)), filepath.Join(dir, "c.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		idx, err := dataset.Scan(DataConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(idx.Train, func(s dataset.Sample) bool { return idx.Classes[s.Label] == "solo" }) {
			continue
		}
		_, err = Train(context.Background(), cfg, Options{Out: io.Discard})
		if !errors.Is(err, dataset.ErrNoUsableImages) || !strings.Contains(err.Error(), `"solo"`) {
			t.Fatalf("seed %d, solo's one file in validation: %v", seed, err)
		}
		if _, err := os.Stat(cfg.Cache.Dir); err == nil {
			t.Errorf("the refusal came after the extraction (%s was made)", cfg.Cache.Dir)
		}
		return
	}
	t.Fatal("no seed of 100 put solo's file in validation")
}

// TestManyClassesLines: with many classes, the lines that name them or
// their weights stay lines (120 names made one line of thousands of
// characters).
func TestManyClassesLines(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := dataset.Synthesize(src, 4, 1); err != nil {
		t.Fatal(err)
	}
	images, _ := filepath.Glob(filepath.Join(src, "*", "*"))
	for c := range 30 {
		class := filepath.Join(dir, "data", fmt.Sprintf("class number %02d", c))
		if err := os.MkdirAll(class, 0o755); err != nil {
			t.Fatal(err)
		}
		for k := range 2 {
			img := images[(2*c+k)%len(images)]
			if err := os.Link(img, filepath.Join(class, fmt.Sprintf("%d%s", k, filepath.Ext(img)))); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg, err := configs.Parse([]byte("data: {dir: data, image_size: [32, 32], validation_split: 0}\nbackbone: {random_width: 4}\n"+
		"head: {layers: [8]}\ntrain: {epochs: 1, batch: 16, class_weight: balanced}\nrun: {dir: run}\n"), filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := Train(context.Background(), cfg, Options{Out: &out}); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"data: 30 classes", "class weights (balanced)"} {
		i := strings.Index(out.String(), prefix)
		if i < 0 {
			t.Fatalf("no line %q in\n%s", prefix, &out)
		}
		if line, _, _ := strings.Cut(out.String()[i:], "\n"); len(line) > 400 {
			t.Errorf("a line of %d characters: %s", len(line), line)
		}
	}
}

func TestLowestValLoss(t *testing.T) {
	h := []EpochMetrics{{Epoch: 1, ValLoss: 0.5, HasVal: true}, {Epoch: 2, HasVal: false}, {Epoch: 3, ValLoss: 0.4, HasVal: true}}
	for _, tc := range []struct {
		history []EpochMetrics
		loss    float64
		want    bool
	}{
		{nil, 0.7, true},
		{h, 0.3, true},
		{h, 0.4, false}, // a tie: the earlier epoch stays the best
		{h, 0.45, false},
		{h, math.NaN(), false},
		{nil, math.NaN(), false},
		{h, math.Inf(-1), true},
	} {
		if got := lowestValLoss(tc.history, tc.loss); got != tc.want {
			t.Errorf("lowestValLoss(%d epochs, %v) = %v, want %v", len(tc.history), tc.loss, got, tc.want)
		}
	}
}
