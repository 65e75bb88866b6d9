package pipeline

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"gotransfer/internal/atomicfile"
	"gotransfer/internal/term"
	"gotransfer/internal/texttable"
	"gotransfer/internal/tfevents"
)

// EpochMetrics is one line of metrics.jsonl.
type EpochMetrics struct {
	Epoch     int     `json:"epoch"` // 1-based
	Step      int64   `json:"step"`  // global optimizer step at the epoch's end
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_accuracy"`
	ValLoss   float64 `json:"val_loss,omitempty"`
	ValAcc    float64 `json:"val_accuracy,omitempty"`
	// ValAUC is the validation ROC AUC, for two classes (nil otherwise).
	ValAUC *float64 `json:"val_auc,omitempty"`
	// ValTop5 is the validation top-5 accuracy (topKAccuracy: Keras'
	// top_k_categorical_accuracy), for more than 5 classes (nil otherwise).
	ValTop5 *float64 `json:"val_top5_accuracy,omitempty"`
	HasVal  bool     `json:"has_validation"`
	// LR is the learning rate the epoch trained with.
	LR float64 `json:"lr"`
	// SamplesPerSec is the head's training throughput over the epoch.
	SamplesPerSec float64 `json:"samples_per_s"`
	Seconds       float64 `json:"seconds"`
}

// writeMetrics rewrites <run>/metrics.jsonl and <run>/metrics.csv (the
// same figures for spreadsheets, like Keras' CSVLogger but with the epochs
// numbered from 1 as everywhere here) from the whole
// history, so that a resumed run's files hold each epoch once.
func writeMetrics(runDir string, history []EpochMetrics) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, m := range history {
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(runDir, "metrics.jsonl"), b.Bytes()); err != nil {
		return err
	}
	b.Reset()
	w := csv.NewWriter(&b)
	// The top-5 accuracy's column only where some epoch has one (more than
	// 5 classes), as Keras' CSVLogger has a column for a compiled metric.
	top5 := slices.ContainsFunc(history, func(m EpochMetrics) bool { return m.ValTop5 != nil })
	header := []string{"epoch", "step", "loss", "accuracy", "val_loss", "val_accuracy", "val_auc"}
	if top5 {
		header = append(header, "val_top5_accuracy")
	}
	w.Write(append(header, "learning_rate", "samples_per_s", "seconds"))
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, m := range history {
		valLoss, valAcc, valAUC, valTop5 := "", "", "", "" // empty without them, as Keras leaves them
		if m.HasVal {
			valLoss, valAcc = g(m.ValLoss), g(m.ValAcc)
		}
		if m.ValAUC != nil {
			valAUC = g(*m.ValAUC)
		}
		if m.ValTop5 != nil {
			valTop5 = g(*m.ValTop5)
		}
		row := []string{strconv.Itoa(m.Epoch), strconv.FormatInt(m.Step, 10), g(m.TrainLoss), g(m.TrainAcc), valLoss, valAcc, valAUC}
		if top5 {
			row = append(row, valTop5)
		}
		w.Write(append(row, g(m.LR), g(m.SamplesPerSec), g(m.Seconds)))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(runDir, "metrics.csv"), b.Bytes())
}

// board writes the run's TensorBoard logs as Keras' TensorBoard callback
// lays them out: <dir>/train and <dir>/validation with the same tags
// (epoch_loss, epoch_accuracy, epoch_auc, epoch_top5_accuracy;
// epoch_learning_rate in train), so
// that TensorBoard overlays the two, and the 0-based epoch as the step.
// Each process writes new files, removes the older ones and logs the whole
// history again (Trainer.report), so epochs a killed run logged or missed
// never count; the files start with a START event at step 0, which makes
// a TensorBoard still holding older events drop them. The logs are a view of
// metrics.jsonl: a failure to write them is a warning, once, and training
// goes on.
type board struct {
	dir        string
	train, val *tfevents.Writer
	failed     bool
}

func openBoard(dir string) *board { return &board{dir: dir} }

// log appends one epoch's metrics.
func (b *board) log(m EpochMetrics) {
	if b.failed {
		return
	}
	now, step := time.Now(), int64(m.Epoch-1)
	open := func(w **tfevents.Writer, split string) error {
		if *w != nil {
			return nil
		}
		nw, err := tfevents.Create(filepath.Join(b.dir, split), now)
		if err != nil {
			return err
		}
		*w = nw
		// The new file gets the whole history: older ones (an earlier
		// process's) go, whatever order TensorBoard would read them in.
		old, _ := filepath.Glob(filepath.Join(b.dir, split, "events.out.tfevents.*"))
		for _, f := range old {
			if f != nw.Path() {
				os.Remove(f)
			}
		}
		return nw.Start(0, now)
	}
	err := open(&b.train, "train")
	if err == nil {
		err = b.train.Scalars(step, now, tfevents.Scalar{Tag: "epoch_loss", Value: m.TrainLoss},
			tfevents.Scalar{Tag: "epoch_accuracy", Value: m.TrainAcc}, tfevents.Scalar{Tag: "epoch_learning_rate", Value: m.LR})
	}
	if err == nil && m.HasVal {
		if err = open(&b.val, "validation"); err == nil {
			vals := []tfevents.Scalar{{Tag: "epoch_loss", Value: m.ValLoss}, {Tag: "epoch_accuracy", Value: m.ValAcc}}
			if m.ValAUC != nil {
				vals = append(vals, tfevents.Scalar{Tag: "epoch_auc", Value: *m.ValAUC})
			}
			if m.ValTop5 != nil {
				vals = append(vals, tfevents.Scalar{Tag: "epoch_top5_accuracy", Value: *m.ValTop5})
			}
			err = b.val.Scalars(step, now, vals...)
		}
	}
	if err != nil {
		b.failed = true
		slog.Warn("could not write the TensorBoard logs; metrics.jsonl has the same figures", "err", err)
	}
}

func (b *board) close() {
	if b == nil {
		return
	}
	for _, w := range []*tfevents.Writer{b.train, b.val} {
		if w != nil {
			w.Close()
		}
	}
}

// plotMetrics draws the loss and accuracy curves, train and validation,
// into a PNG.
func plotMetrics(path string, history []EpochMetrics) error {
	if len(history) == 0 {
		return nil
	}
	series := func(f func(EpochMetrics) (float64, bool)) plotter.XYs {
		var xy plotter.XYs
		for _, m := range history {
			if v, ok := f(m); ok {
				xy = append(xy, plotter.XY{X: float64(m.Epoch), Y: v})
			}
		}
		return xy
	}
	panel := func(title, ylabel string, train, val plotter.XYs) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "epoch"
		p.Y.Label.Text = ylabel
		p.Add(plotter.NewGrid())
		for i, s := range []struct {
			name string
			xy   plotter.XYs
		}{{"train", train}, {"validation", val}} {
			if len(s.xy) == 0 {
				continue
			}
			l, pts, err := plotter.NewLinePoints(s.xy)
			if err != nil {
				return nil, err
			}
			c := []color.RGBA{{R: 31, G: 119, B: 180, A: 255}, {R: 255, G: 127, B: 14, A: 255}}[i]
			l.Color, pts.Color = c, c
			p.Add(l, pts)
			p.Legend.Add(s.name, l, pts)
		}
		p.Legend.Top = true
		return p, nil
	}
	loss, err := panel("Loss", "cross-entropy",
		series(func(m EpochMetrics) (float64, bool) { return m.TrainLoss, true }),
		series(func(m EpochMetrics) (float64, bool) { return m.ValLoss, m.HasVal }))
	if err != nil {
		return err
	}
	acc, err := panel("Accuracy", "accuracy",
		series(func(m EpochMetrics) (float64, bool) { return m.TrainAcc, true }),
		series(func(m EpochMetrics) (float64, bool) { return m.ValAcc, m.HasVal }))
	if err != nil {
		return err
	}
	// Accuracy rises to the top right, where the loss's legend sits: its
	// own goes to the bottom right, which a rising curve leaves free.
	acc.Legend.Top = false
	panels := []*plot.Plot{loss, acc}
	// A third panel when a schedule changed the learning rate.
	if slices.ContainsFunc(history, func(m EpochMetrics) bool { return m.LR > 0 && m.LR != history[0].LR }) {
		lr, err := panel("Learning rate", "learning rate (log scale)",
			series(func(m EpochMetrics) (float64, bool) { return m.LR, m.LR > 0 }), nil)
		if err != nil {
			return err
		}
		lr.Y.Scale, lr.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: 1}
		lr.Legend = plot.NewLegend() // one series: no legend
		panels = append(panels, lr)
	}
	img := vg.Length(5) * vg.Inch
	canvas := vgimg.New(vg.Length(len(panels))*img, img)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{panels}, tiles, draw.New(canvas))
	for i, p := range panels {
		p.Draw(canvases[0][i])
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: canvas}).WriteTo(&buf); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}

// Confusion counts validation predictions: Counts[true][predicted].
type Confusion struct {
	Classes []string `json:"classes"`
	Counts  [][]int  `json:"counts"`
}

// NewConfusion returns an empty matrix over classes.
func NewConfusion(classes []string) *Confusion {
	c := &Confusion{Classes: classes, Counts: make([][]int, len(classes))}
	for i := range c.Counts {
		c.Counts[i] = make([]int, len(classes))
	}
	return c
}

// Add records one prediction.
func (c *Confusion) Add(truth, pred int) { c.Counts[truth][pred]++ }

// WriteTo prints the matrix as a table, rows the true classes.
func (c *Confusion) WriteTo(w io.Writer) (int64, error) {
	rows := [][]string{append([]string{`true \ predicted`}, c.Classes...)}
	for i, counts := range c.Counts {
		row := []string{c.Classes[i]}
		for _, n := range counts {
			row = append(row, strconv.Itoa(n))
		}
		rows = append(rows, row)
	}
	var b strings.Builder
	texttable.Write(&b, 2, rows)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// maxMatrixClasses is the most classes whose confusion matrix WriteShown
// prints as a table: more make lines too wide to read (120 classes, 1,600
// columns), and their most frequent confusions are printed instead.
const maxMatrixClasses = 20

// maxConfusionsShown is how many confusions WriteShown lists.
const maxConfusionsShown = 20

// WriteShown prints the matrix for a terminal: as WriteTo does, or, for
// more than maxMatrixClasses classes, the most frequent confusions (the
// cells off the diagonal with the most images), each with its share of
// the true class's images.
func (c *Confusion) WriteShown(w io.Writer) error {
	if len(c.Classes) <= maxMatrixClasses {
		_, err := c.WriteTo(w)
		return err
	}
	type cell struct{ truth, pred, n, row int }
	var cells []cell
	for i, counts := range c.Counts {
		row := 0
		for _, n := range counts {
			row += n
		}
		for j, n := range counts {
			if i != j && n > 0 {
				cells = append(cells, cell{i, j, n, row})
			}
		}
	}
	if len(cells) == 0 {
		_, err := fmt.Fprintf(w, "%d classes, too many to print the matrix: no confusions\n", len(c.Classes))
		return err
	}
	slices.SortStableFunc(cells, func(a, b cell) int { return b.n - a.n })
	shown := cells[:min(len(cells), maxConfusionsShown)]
	fmt.Fprintf(w, "%d classes, too many to print the matrix: the %d most frequent confusions (of %d)\n", len(c.Classes), len(shown), len(cells))
	rows := [][]string{{"true", "predicted", "images", "of true"}}
	for _, e := range shown {
		rows = append(rows, []string{c.Classes[e.truth], c.Classes[e.pred], strconv.Itoa(e.n), fmt.Sprintf("%.4f", float64(e.n)/float64(e.row))})
	}
	return texttable.Write(w, 2, rows)
}

// ClassScores are one class's precision (of the images predicted as the
// class, the share that are), recall (of the class's images, the share
// predicted as it), their harmonic mean F1, and the class's image count.
type ClassScores struct {
	Class                 string
	Precision, Recall, F1 float64
	Support               int
}

// Scores returns every class's precision, recall and F1, as scikit-learn's
// classification_report computes them (0 where a ratio has no denominator).
func (c *Confusion) Scores() []ClassScores {
	out := make([]ClassScores, len(c.Classes))
	for k, name := range c.Classes {
		tp, predicted, support := c.Counts[k][k], 0, 0
		for i := range c.Counts {
			predicted += c.Counts[i][k]
			support += c.Counts[k][i]
		}
		s := ClassScores{Class: name, Support: support}
		if predicted > 0 {
			s.Precision = float64(tp) / float64(predicted)
		}
		if support > 0 {
			s.Recall = float64(tp) / float64(support)
		}
		if s.Precision+s.Recall > 0 {
			s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
		}
		out[k] = s
	}
	return out
}

// Averages returns the accuracy, and the macro (unweighted) and weighted
// (by images) means of the classes' scores, as scikit-learn's
// classification_report prints them: over the classes that have images or
// predictions (a class with neither is not scored), the Support the
// images'.
func (c *Confusion) Averages() (accuracy float64, macro, weighted ClassScores) {
	macro, weighted = ClassScores{Class: "macro avg"}, ClassScores{Class: "weighted avg"}
	scored, correct := 0, 0
	for k, s := range c.Scores() {
		predicted := 0
		for i := range c.Counts {
			predicted += c.Counts[i][k]
		}
		if s.Support == 0 && predicted == 0 {
			continue
		}
		scored++
		correct += c.Counts[k][k]
		macro.Precision, macro.Recall, macro.F1 = macro.Precision+s.Precision, macro.Recall+s.Recall, macro.F1+s.F1
		n := float64(s.Support)
		weighted.Precision, weighted.Recall, weighted.F1 = weighted.Precision+n*s.Precision, weighted.Recall+n*s.Recall, weighted.F1+n*s.F1
		weighted.Support += s.Support
	}
	macro.Support = weighted.Support
	if scored > 0 {
		m := float64(scored)
		macro.Precision, macro.Recall, macro.F1 = macro.Precision/m, macro.Recall/m, macro.F1/m
	}
	if n := float64(weighted.Support); n > 0 {
		accuracy = float64(correct) / n
		weighted.Precision, weighted.Recall, weighted.F1 = weighted.Precision/n, weighted.Recall/n, weighted.F1/n
	}
	return accuracy, macro, weighted
}

// WriteScores prints Scores as a table, followed by the accuracy and the
// macro and weighted averages (Averages).
func (c *Confusion) WriteScores(w io.Writer) error {
	rows := [][]string{{"class", "precision", "recall", "f1", "images"}}
	score := func(s ClassScores) []string {
		return []string{s.Class, fmt.Sprintf("%.4f", s.Precision), fmt.Sprintf("%.4f", s.Recall), fmt.Sprintf("%.4f", s.F1), strconv.Itoa(s.Support)}
	}
	for _, s := range c.Scores() {
		rows = append(rows, score(s))
	}
	accuracy, macro, weighted := c.Averages()
	rows = append(rows, nil, // a blank line
		[]string{"accuracy", "", "", fmt.Sprintf("%.4f", accuracy), strconv.Itoa(weighted.Support)},
		score(macro), score(weighted))
	return texttable.Write(w, 2, rows)
}

// Progress reports training as it goes: a live bar redrawn in place on a
// terminal; elsewhere (a log file, CI) the bar's state as a plain line now
// and then, and the per-epoch lines.
type Progress struct {
	w        io.Writer
	terminal bool
	last     time.Time
	// plainEvery spaces the plain lines off a terminal.
	plainEvery time.Duration
}

// NewProgress writes to w, live when w is a terminal.
func NewProgress(w io.Writer) *Progress {
	return &Progress{w: w, last: time.Now(), plainEvery: 30 * time.Second, terminal: term.IsTerminal(w)}
}

// Bar redraws the live bar, at most ten times a second. Off a terminal it
// prints the same as a line every 30 seconds (never at the end, which the
// caller reports), so that a long extraction in a log is not silent.
func (p *Progress) Bar(label string, done, total int, extra string) {
	if total <= 0 {
		return
	}
	now := time.Now()
	if !p.terminal {
		if done < total && now.Sub(p.last) >= p.plainEvery {
			p.last = now
			fmt.Fprintf(p.w, "%s %d/%d %s\n", label, done, total, extra)
		}
		return
	}
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	filled := width * done / total
	fmt.Fprintf(p.w, "\r\033[K%s [%s%s] %d/%d %s", label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total, extra)
}

// Clear removes the live bar, so that what is printed next starts on a
// clean line.
func (p *Progress) Clear() {
	if p.terminal {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// Line prints a permanent line, clearing the live bar first.
func (p *Progress) Line(format string, args ...any) {
	if p.terminal {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}
