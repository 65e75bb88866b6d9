package pipeline

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gotransfer/model/head"
)

func finderTrainer(t *testing.T) *Trainer {
	t.Helper()
	h, err := head.New(head.Config{InputDim: 6, Hidden: []int{16}, Classes: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := head.NewAdam(head.AdamConfig{}, h.Params())
	if err != nil {
		t.Fatal(err)
	}
	return &Trainer{Head: h, Opt: opt, Train: randomSplit(rand.New(rand.NewPCG(1, 2)), 40, 6, 2), Batch: 8, Seed: 5, Progress: NewProgress(&bytes.Buffer{})}
}

// TestFindLR: the rate grows geometrically from Start, the first smoothed
// loss is the first loss, a test up to a rate of 10 diverges before its
// end, the suggestion lies where the loss fell, and the test repeats
// exactly.
func TestFindLR(t *testing.T) {
	f := LRFinder{Start: 1e-5, End: 1e4, Steps: 100}
	r, err := finderTrainer(t).FindLR(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	n := len(r.Points)
	if !r.Diverged || n >= f.Steps || n < 20 {
		t.Fatalf("%d of %d steps, diverged %v: want a divergence late in the test", n, f.Steps, r.Diverged)
	}
	ratio := math.Pow(f.End/f.Start, 1/float64(f.Steps-1))
	for i, p := range r.Points {
		if want := f.Start * math.Pow(ratio, float64(i)); math.Abs(p.LR-want) > 1e-12*want {
			t.Fatalf("step %d: lr %g, want %g", i+1, p.LR, want)
		}
	}
	if p := r.Points[0]; math.Abs(p.Smoothed-p.Loss) > 1e-12 {
		t.Errorf("first smoothed loss %v, want the first loss %v", r.Points[0].Smoothed, r.Points[0].Loss)
	}
	last := r.Points[n-1]
	if min := slicesMinSmoothed(r.Points); last.Smoothed <= 4*min {
		t.Errorf("stopped at smoothed loss %v, not past 4 times the minimum %v", last.Smoothed, min)
	}
	if r.Steepest <= f.Start || r.Steepest >= last.LR || r.MinLoss < r.Steepest {
		t.Errorf("steepest descent at %g, lowest loss at %g, divergence at %g: want start < steepest <= lowest < divergence", r.Steepest, r.MinLoss, last.LR)
	}
	if r.Suggested <= f.Start || r.Suggested > r.MinLoss {
		t.Errorf("suggested %g, lowest loss at %g: want start < suggested <= lowest", r.Suggested, r.MinLoss)
	}
	again, err := finderTrainer(t).FindLR(context.Background(), f)
	if err != nil || len(again.Points) != n || again.Points[n-1] != last || again.Steepest != r.Steepest {
		t.Errorf("a second test differs: %d points, %v", len(again.Points), err)
	}
	for _, bad := range []LRFinder{{Start: 1, End: 0.1}, {Start: -1}, {Steps: 1}} {
		if _, err := finderTrainer(t).FindLR(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "want 0 < start < end") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func slicesMinSmoothed(ps []LRPoint) float64 {
	m := math.Inf(1)
	for _, p := range ps {
		m = min(m, p.Smoothed)
	}
	return m
}

// pts makes a range test's points of smoothed losses, at rates 1, 2, ...
func pts(losses ...float64) []LRPoint {
	var ps []LRPoint
	for i, l := range losses {
		ps = append(ps, LRPoint{LR: float64(i + 1), Smoothed: l})
	}
	return ps
}

// TestValley follows fastai's valley on small curves: the longest
// decreasing stretch, and the point a third plus a sixth into it.
func TestValley(t *testing.T) {
	for _, tc := range []struct {
		name   string
		points []LRPoint
		want   float64
	}{
		// lds: 1 2 3 4 5 6 7 1 ...: the valley ends at index 6, starts at
		// 6-7 = -1, sections 7/3 = 2.33: index -1 + 2 + 1 = 2, lr 3.
		{"all down then up", pts(9, 8, 7, 6, 5, 4, 3, 8, 9), 3},
		// A bump early: the longest fall is still found past it.
		{"noise early", pts(5, 6, 4, 5, 3.9, 3.8, 3, 2, 1, 0.5, 7), 5},
		{"one point", pts(1), 0},
	} {
		if got := valley(tc.points); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSuggestValley checks that the valley is looked for where fastai's
// lr_find looks for it, lrs[num_it//10:-5]: the wants are fastai's valley
// on those points.
func TestSuggestValley(t *testing.T) {
	var fall, early []float64
	for i := range 40 {
		fall = append(fall, 10-0.1*float64(i))
		switch {
		case i < 4: // the first tenth falls into the valley: left out
			early = append(early, 10-float64(i))
		case i < 20:
			early = append(early, 6-0.1*float64(i-4))
		default:
			early = append(early, 6+float64(i-19))
		}
	}
	for _, tc := range []struct {
		name   string
		points []LRPoint
		steps  int
		want   float64
	}{
		{"first tenth left out", pts(early...), 40, 11}, // valley over all points: 9
		{"still falling at the end", pts(fall...), 40, 19},
		{"diverged early", pts(fall[:10]...), 40, 0},
	} {
		if got := suggestValley(tc.points, tc.steps); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSteepest(t *testing.T) {
	for _, tc := range []struct {
		name       string
		points     []LRPoint
		start, end int
		want       float64
	}{
		{"the fastest fall", pts(5, 5, 4.9, 4, 2, 1.8, 1.7, 3, 9), 0, 0, 4}, // (2-4.9)/2 at lr 4
		{"skipped ends", pts(9, 1, 1, 0.9, 0.8, 0.7, 0.65, 0.1, 0.1), 2, 2, 5},
		{"never falls", pts(1, 1, 2, 3, 4), 0, 0, 0},
		{"too short", pts(3, 2, 1), 1, 1, 0},
	} {
		if got := steepest(tc.points, tc.start, tc.end); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTrainFindsLR: Options.FindLR on a trained run writes lr_find.csv and
// lr_find.png and changes nothing else in the run folder (its
// configuration, checkpoints and calibrated weights).
func TestTrainFindsLR(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyRun(t, dir, 6, tinyYAML)
	before := snapshot(t, filepath.Join(dir, "run"))
	var out strings.Builder
	// Another data setting than the run's: the finder must not mind, nor
	// touch the run.
	cfg.Train.Batch = 2
	res, err := Train(context.Background(), cfg, Options{FindLR: &LRFinder{Steps: 30}, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if res.LRFinding == nil || len(res.LRFinding.Points) == 0 || !strings.Contains(out.String(), "learning-rate finder") {
		t.Fatalf("result %+v, output:\n%s", res, out.String())
	}
	after := snapshot(t, filepath.Join(dir, "run"))
	for name, b := range before {
		if after[name] != b {
			t.Errorf("%s changed", name)
		}
		delete(after, name)
	}
	for name := range after {
		if name != "lr_find.csv" && name != "lr_find.png" {
			t.Errorf("%s appeared", name)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "run", "lr_find.csv"))
	if lines := strings.Count(string(raw), "\n"); err != nil || lines != 1+len(res.LRFinding.Points) || !strings.HasPrefix(string(raw), "step,lr,loss,smoothed_loss\n") {
		t.Errorf("lr_find.csv: %d lines (%v), want a header and %d points", lines, err, len(res.LRFinding.Points))
	}
	if _, err := Train(context.Background(), cfg, Options{FindLR: &LRFinder{}, Resume: true}); err == nil || !strings.Contains(err.Error(), "does not resume") {
		t.Errorf("FindLR with Resume: %v", err)
	}
}

// snapshot maps every file under dir (relative path) to its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type()&os.ModeSymlink != 0 { // last, best
			target, err := os.Readlink(p)
			files[rel] = "-> " + target
			return err
		}
		raw, err := os.ReadFile(p)
		files[rel] = string(raw)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestLRPlotRange(t *testing.T) {
	curve := func(losses ...float64) []LRPoint {
		ps := make([]LRPoint, len(losses))
		for i, l := range losses {
			ps[i] = LRPoint{LR: math.Pow(10, float64(i)/10-7), Smoothed: l}
		}
		return ps
	}
	flat := slices.Repeat([]float64{0.7}, 30)
	for _, tc := range []struct {
		name   string
		points []LRPoint
		shown  int
		yMax   float64
	}{
		{"few points: all, the data's range", curve(0.7, 0.6, 1.0), 3, 0},
		{"few points, capped", curve(0.7, 0.6, 5), 3, 1.4},
		{"the last 5 left out", curve(flat...), 25, 0},
		{"a blow-up before them capped at twice the start", curve(append(slices.Repeat([]float64{0.7}, 25), 9, 20, 30, 40, 50, 60)...), 26, 1.4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shown, yMax := lrPlotRange(tc.points)
			if len(shown) != tc.shown || math.Abs(yMax-tc.yMax) > 1e-12 {
				t.Errorf("lrPlotRange: %d points, top %v; want %d, %v", len(shown), yMax, tc.shown, tc.yMax)
			}
			// The plot keeps the top (adding data widens the axis).
			p, err := lrFindPlot(&LRFinding{Points: tc.points, Suggested: tc.points[1].LR})
			if err != nil {
				t.Fatal(err)
			}
			if tc.yMax > 0 && math.Abs(p.Y.Max-tc.yMax) > 1e-12 {
				t.Errorf("lr_find.png's loss axis ends at %v, want %v", p.Y.Max, tc.yMax)
			}
		})
	}
}
