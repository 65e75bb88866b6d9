package pipeline

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"gotransfer/dataset"
	"gotransfer/internal/atomicfile"
)

// LRFinder is the learning-rate range test of Leslie Smith ("Cyclical
// Learning Rates for Training Neural Networks", 2017), as fastai's lr_find
// and torch-lr-finder run it: a fresh head trains for Steps batches while
// the learning rate grows geometrically from Start to End, and the loss at
// each rate says which rates learn and where training diverges. The zero
// value of a field means its default.
type LRFinder struct {
	Start, End float64 // 1e-7 and 10
	Steps      int     // 100
}

func (f LRFinder) withDefaults() LRFinder {
	if f.Start == 0 {
		f.Start = 1e-7
	}
	if f.End == 0 {
		f.End = 10
	}
	if f.Steps == 0 {
		f.Steps = 100
	}
	return f
}

// LRPoint is one step of a range test: the rate, the batch's loss, and the
// loss smoothed by an exponential moving average (β 0.98, bias-corrected,
// as fastai's), which the suggestion reads.
type LRPoint struct {
	LR, Loss, Smoothed float64
}

// LRFinding is a range test's outcome.
type LRFinding struct {
	Points []LRPoint
	// Suggested is fastai's "valley" suggestion (its default since fastai
	// 2.5): the rate halfway into the longest stretch over which the
	// smoothed loss keeps falling (the longest decreasing subsequence),
	// looked for as fastai does, past the first tenth of the steps and
	// before the last 5 points; 0 when fewer than 2 points remain there.
	// Steepest is the rate where the smoothed loss falls fastest (per step, so per factor of rate) before its
	// lowest point, torch-lr-finder's suggestion, which noise early in the
	// test can mislead; 0 when the test was too short to say. MinLoss is the rate of
	// the lowest smoothed loss: a tenth of it is the older rule of thumb.
	Suggested, Steepest, MinLoss float64
	// Diverged says the test stopped early: the smoothed loss passed 4
	// times its minimum, or a loss was not finite.
	Diverged bool
}

// smoothing is the β of the range test's moving average.
const smoothing = 0.98

// FindLR runs the range test on t's head and optimizer, which it trains
// (use fresh ones): batches of t.Batch in the epochs' order, augmented
// views picked as in training, the rate set before each step. It saves
// nothing.
func (t *Trainer) FindLR(ctx context.Context, f LRFinder) (*LRFinding, error) {
	f = f.withDefaults()
	if !(f.Start > 0 && f.End > f.Start) || f.Steps < 2 {
		return nil, fmt.Errorf("learning-rate finder: rates %g to %g in %d steps: want 0 < start < end and at least 2 steps", f.Start, f.End, f.Steps)
	}
	if t.Batch < 1 || t.Train.Len() == 0 {
		return nil, fmt.Errorf("learning-rate finder: %d training examples, batch %d", t.Train.Len(), t.Batch)
	}
	dim := t.Train.X.Shape()[1]
	rows := make([]int, t.Train.Len())
	for i := range rows {
		rows[i] = i
	}
	res := &LRFinding{}
	avg, best := 0.0, math.Inf(1)
	var order []int
	t.epoch = 0
	for i := range f.Steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(order) == 0 {
			order = dataset.Shuffle(rows, t.Seed, t.epoch)
		}
		idx := order[:min(t.Batch, len(order))]
		x, y := t.gatherTrain(idx, dim)
		if order = order[len(idx):]; len(order) == 0 {
			t.epoch++
		}
		lr := f.Start * math.Pow(f.End/f.Start, float64(i)/float64(f.Steps-1))
		if err := t.Opt.SetLR(lr); err != nil {
			return nil, fmt.Errorf("learning-rate finder: %w", err)
		}
		loss, _, err := t.Head.TrainStep(x, y, t.Opt)
		if err != nil {
			return nil, fmt.Errorf("learning-rate finder: step %d: %w", i+1, err)
		}
		l := float64(loss)
		if math.IsNaN(l) || math.IsInf(l, 0) {
			res.Diverged = true
			break
		}
		avg = smoothing*avg + (1-smoothing)*l
		smoothed := avg / (1 - math.Pow(smoothing, float64(i+1)))
		res.Points = append(res.Points, LRPoint{LR: lr, Loss: l, Smoothed: smoothed})
		t.Progress.Bar("learning-rate finder", i+1, f.Steps, fmt.Sprintf("lr %.2e  loss %.4f", lr, smoothed))
		if smoothed < best {
			best, res.MinLoss = smoothed, lr
		}
		if smoothed > 4*best {
			res.Diverged = true
			break
		}
	}
	res.Suggested = suggestValley(res.Points, f.Steps)
	// Past the lowest loss the curve is divergence, whatever its slope.
	lowest := slices.IndexFunc(res.Points, func(p LRPoint) bool { return p.LR == res.MinLoss })
	res.Steepest = steepest(res.Points[:lowest+1], f.Steps/10, 0)
	return res, nil
}

// suggestValley is fastai's lr_find suggestion from the points of a range
// test of steps steps: valley over the points but the first tenth of the
// steps, where the rate is too low to learn anything, and the last 5,
// where the loss blows up (fastai's lrs[num_it//10:-5]); 0 when fewer than
// 2 remain.
func suggestValley(points []LRPoint, steps int) float64 {
	lo, hi := steps/10, len(points)-5
	if hi-lo < 2 {
		return 0
	}
	return valley(points[lo:hi])
}

// valley is fastai's valley suggestion: with lds[i] the length of the
// longest strictly decreasing subsequence of smoothed losses ending at
// point i, the valley ends at the first point of the longest and starts
// lds points before it; the rate suggested is half-way in (a third plus a
// sixth of its length from its start, as fastai computes it).
func valley(points []LRPoint) float64 {
	n := len(points)
	if n < 2 {
		return 0
	}
	lds := make([]int, n)
	end := 0
	for i := range points {
		lds[i] = 1
		for j := range i {
			if points[i].Smoothed < points[j].Smoothed && lds[i] < lds[j]+1 {
				lds[i] = lds[j] + 1
			}
		}
		if lds[i] > lds[end] {
			end = i
		}
	}
	start := end - lds[end]
	sections := float64(end-start) / 3
	idx := start + int(sections) + int(sections/2)
	return points[min(max(idx, 0), n-1)].LR
}

// steepest returns the rate where the smoothed loss has its most negative
// slope (central differences, the points being evenly spaced in log rate),
// leaving out skipStart points at the start and skipEnd at the end, as
// torch-lr-finder does; 0 when too few points remain or the loss never
// falls.
func steepest(points []LRPoint, skipStart, skipEnd int) float64 {
	lo, hi := skipStart, len(points)-skipEnd
	if hi-lo < 3 {
		return 0
	}
	best, at := 0.0, 0.0
	for i := lo; i < hi; i++ {
		var d float64
		switch {
		case i == lo:
			d = points[i+1].Smoothed - points[i].Smoothed
		case i == hi-1:
			d = points[i].Smoothed - points[i-1].Smoothed
		default:
			d = (points[i+1].Smoothed - points[i-1].Smoothed) / 2
		}
		if d < best {
			best, at = d, points[i].LR
		}
	}
	return at
}

// lrFindPlot draws r's points (lrPlotRange's part of them) as lr_find.png
// shows them.
func lrFindPlot(r *LRFinding) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Learning-rate range test"
	p.X.Label.Text = "learning rate (log scale)"
	p.Y.Label.Text = "training loss (smoothed)"
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: 1}
	p.Add(plotter.NewGrid())
	shown, yMax := lrPlotRange(r.Points)
	xy := make(plotter.XYs, len(shown))
	for i, pt := range shown {
		xy[i] = plotter.XY{X: pt.LR, Y: pt.Smoothed}
	}
	line, err := plotter.NewLine(xy)
	if err != nil {
		return nil, err
	}
	line.Color = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	p.Add(line)
	if r.Suggested > 0 {
		p.Title.Text += fmt.Sprintf(" (suggested: %.2g)", r.Suggested)
	}
	for _, pt := range shown {
		if r.Suggested > 0 && pt.LR == r.Suggested {
			mark, err := plotter.NewScatter(plotter.XYs{{X: pt.LR, Y: pt.Smoothed}})
			if err != nil {
				return nil, err
			}
			mark.Color, mark.Radius, mark.Shape = color.RGBA{R: 214, G: 39, B: 40, A: 255}, vg.Points(5), draw.CircleGlyph{}
			p.Add(mark)
		}
	}
	if yMax > 0 { // after Add, which widens the axis to the data
		p.Y.Max = yMax
	}
	return p, nil
}

// lrPlotRange is what lr_find.png shows of a range test, as fastai and
// torch-lr-finder plot it: the points but the last 5 (where the loss has
// blown up; all of them when there are 20 or fewer), and a top for the
// loss axis (0: the data's own) of twice the highest loss of the first
// tenth, where the blow-up would otherwise flatten the fall that matters.
func lrPlotRange(points []LRPoint) (shown []LRPoint, yMax float64) {
	shown = points
	if len(shown) > 20 {
		shown = shown[:len(shown)-5]
	}
	top, start := math.Inf(-1), math.Inf(-1)
	for i, pt := range shown {
		top = max(top, pt.Smoothed)
		if i < max(1, len(shown)/10) {
			start = max(start, pt.Smoothed)
		}
	}
	if start > 0 && top > 2*start {
		return shown, 2 * start
	}
	return shown, 0
}

// writeLRFinding writes the range test into dir: lr_find.csv (step, lr,
// loss, smoothed loss) and lr_find.png (the smoothed loss against the rate,
// log scale, the suggestion marked; the last 5 points left out, as fastai
// does).
func writeLRFinding(dir string, r *LRFinding) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"step", "lr", "loss", "smoothed_loss"})
	for i, p := range r.Points {
		w.Write([]string{strconv.Itoa(i + 1), strconv.FormatFloat(p.LR, 'g', 6, 64), strconv.FormatFloat(p.Loss, 'g', 6, 64), strconv.FormatFloat(p.Smoothed, 'g', 6, 64)})
	}
	w.Flush()
	if err := atomicfile.WriteFile(filepath.Join(dir, "lr_find.csv"), b.Bytes()); err != nil {
		return err
	}
	if len(r.Points) == 0 {
		return nil
	}
	p, err := lrFindPlot(r)
	if err != nil {
		return err
	}
	return savePlot(p, 6*vg.Inch, 4*vg.Inch, filepath.Join(dir, "lr_find.png"))
}
