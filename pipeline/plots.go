package pipeline

import (
	"bytes"
	"cmp"
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
	"gonum.org/v1/plot/vg/vgimg"

	"gotransfer/internal/atomicfile"
)

// ROCPoint is a point of a ROC curve: the false and true positive rates
// of the rule "positive when the score is at least Threshold".
type ROCPoint struct {
	FPR, TPR, Threshold float64
}

// rocCurve returns the ROC curve of scores for the examples whose label is
// 1 against those whose label is 0, from (0, 0) (threshold +Inf) to (1, 1),
// a point per distinct score, so that its trapezoid area is rocAUC's; nil
// without both labels.
func rocCurve(scores []float32, labels []int) []ROCPoint {
	order := make([]int, len(scores))
	pos := 0
	for i := range order {
		order[i] = i
		if labels[i] == 1 {
			pos++
		}
	}
	neg := len(scores) - pos
	if pos == 0 || neg == 0 {
		return nil
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	curve := []ROCPoint{{0, 0, math.Inf(1)}}
	tp, fp := 0, 0
	for lo := 0; lo < len(order); {
		hi := lo
		for hi < len(order) && cmp.Compare(scores[order[hi]], scores[order[lo]]) == 0 { // NaN too
			if labels[order[hi]] == 1 {
				tp++
			} else {
				fp++
			}
			hi++
		}
		curve = append(curve, ROCPoint{FPR: float64(fp) / float64(neg), TPR: float64(tp) / float64(pos), Threshold: float64(scores[order[lo]])})
		lo = hi
	}
	return curve
}

// confusionGrid is a confusion matrix as a heat map's grid: column c is
// the predicted class, row r (from the bottom) the true class k-1-r, the
// value each true class's fraction (its recall along the diagonal).
type confusionGrid struct{ c *Confusion }

func (g confusionGrid) Dims() (int, int)   { return len(g.c.Classes), len(g.c.Classes) }
func (g confusionGrid) X(c int) float64    { return float64(c) }
func (g confusionGrid) Y(r int) float64    { return float64(r) }
func (g confusionGrid) Min() float64       { return 0 }
func (g confusionGrid) Max() float64       { return 1 }
func (g confusionGrid) Z(c, r int) float64 { return g.fraction(len(g.c.Classes)-1-r, c) }

func (g confusionGrid) fraction(truth, pred int) float64 {
	n := 0
	for _, v := range g.c.Counts[truth] {
		n += v
	}
	if n == 0 {
		return 0
	}
	return float64(g.c.Counts[truth][pred]) / float64(n)
}

// whiteToBlue is the confusion matrix's colours: white for none of a row,
// a blue light enough for black text for all of it.
type whiteToBlue struct{}

func (whiteToBlue) Colors() []color.Color {
	cs := make([]color.Color, 64)
	for i := range cs {
		t := float64(i) / float64(len(cs)-1)
		mix := func(a, b float64) uint8 { return uint8(math.Round(a + t*(b-a))) }
		cs[i] = color.RGBA{R: mix(255, 90), G: mix(255, 150), B: mix(255, 230), A: 255}
	}
	return cs
}

// Beyond these many classes the confusion matrix's cells lose their text
// (it no longer fits) and its axes name every few classes by number.
const (
	maxCellText   = 20
	maxClassNames = 40
)

// WriteEvaluationPlots draws an evaluation into dir and returns the names
// of the files written: confusion.png, the confusion matrix (rows the true
// classes, columns the predicted, coloured by each cell's share of its
// row, with its count and share written in it for up to 20 classes), and,
// for two classes both present, roc.png, the ROC curve of class 1's
// probability with its area.
// probs are the examples' probabilities (in label order) and labels their
// classes; they may be nil for the matrix alone.
func WriteEvaluationPlots(dir string, conf *Confusion, probs [][]float32, labels []int) ([]string, error) {
	k := len(conf.Classes)
	p := plot.New()
	p.Title.Text = "Confusion matrix"
	p.X.Label.Text = "predicted class"
	p.Y.Label.Text = "true class"
	heat := plotter.NewHeatMap(confusionGrid{conf}, whiteToBlue{})
	heat.Rasterized = k > 300 // one (smoothed) image, not k² rectangles: 0.7 s at 300
	p.Add(heat)
	var xTicks, yTicks []plot.Tick
	var cells plotter.XYLabels
	every := max(1, (k+maxClassNames/2-1)/(maxClassNames/2))
	for i, name := range conf.Classes {
		if k > maxClassNames {
			name = ""
			if i%every == 0 {
				name = strconv.Itoa(i)
			}
		}
		xTicks = append(xTicks, plot.Tick{Value: float64(i), Label: name})
		yTicks = append(yTicks, plot.Tick{Value: float64(k - 1 - i), Label: name})
		if k > maxCellText {
			continue
		}
		for j := range conf.Classes {
			cells.XYs = append(cells.XYs, plotter.XY{X: float64(j), Y: float64(k - 1 - i)})
			cells.Labels = append(cells.Labels, fmt.Sprintf("%d\n%.1f%%", conf.Counts[i][j], 100*confusionGrid{conf}.fraction(i, j)))
		}
	}
	if k > maxClassNames {
		p.X.Label.Text, p.Y.Label.Text = "predicted class (label index)", "true class (label index)"
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.ConstantTicks(xTicks), plot.ConstantTicks(yTicks)
	if k > 6 && k <= maxClassNames { // names side by side would overlap
		p.X.Tick.Label.Rotation = math.Pi / 2
		p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	}
	if len(cells.XYs) > 0 {
		text, err := plotter.NewLabels(cells)
		if err != nil {
			return nil, err
		}
		for i := range text.TextStyle {
			text.TextStyle[i].XAlign, text.TextStyle[i].YAlign = draw.XCenter, draw.YCenter
		}
		p.Add(text)
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = -0.5, float64(k)-0.5, -0.5, float64(k)-0.5
	side := vg.Length(max(4, min(12, 1+k))) * vg.Inch
	if err := savePlot(p, side, side, filepath.Join(dir, "confusion.png")); err != nil {
		return nil, err
	}
	written := []string{"confusion.png"}
	rocPath := filepath.Join(dir, "roc.png")
	var curve []ROCPoint
	var scores []float32
	if k == 2 && probs != nil {
		scores = make([]float32, len(probs))
		for i, pr := range probs {
			scores[i] = pr[1]
		}
		curve = rocCurve(scores, labels)
	}
	if curve == nil {
		return written, nil
	}
	auc, _ := rocAUC(scores, labels)
	r := plot.New()
	r.Title.Text = fmt.Sprintf("ROC curve of %s (AUC %.4f)", conf.Classes[1], auc)
	r.X.Label.Text = "false positive rate"
	r.Y.Label.Text = "true positive rate"
	r.X.Min, r.X.Max, r.Y.Min, r.Y.Max = 0, 1, 0, 1
	r.Add(plotter.NewGrid())
	xy := make(plotter.XYs, len(curve))
	for i, pt := range curve {
		xy[i] = plotter.XY{X: pt.FPR, Y: pt.TPR}
	}
	line, err := plotter.NewLine(xy)
	if err != nil {
		return nil, err
	}
	line.Color, line.Width = color.RGBA{R: 31, G: 119, B: 180, A: 255}, vg.Points(2)
	chance, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return nil, err
	}
	chance.Color, chance.Dashes = color.Gray{Y: 128}, []vg.Length{vg.Points(4), vg.Points(4)}
	r.Add(chance, line)
	if err := savePlot(r, 5*vg.Inch, 5*vg.Inch, rocPath); err != nil {
		return nil, err
	}
	return append(written, "roc.png"), nil
}

// savePlot draws p at w x h into a PNG at path, atomically.
func savePlot(p *plot.Plot, w, h vg.Length, path string) error {
	c := vgimg.New(w, h)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&b); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes())
}
