package main

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"gotransfer/internal/texttable"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ClassProbability is one class's probability in a prediction.
type ClassProbability struct {
	Class       string  `json:"class"`
	Probability float32 `json:"probability"`
}

// Prediction is one image's classification, as POST /predict and
// --json give it.
type Prediction struct {
	Predicted     string             `json:"predicted"`
	Probabilities []ClassProbability `json:"probabilities"` // in label order, or the top most probable first
}

// newPrediction names the most probable class and lists every class's
// probability in label order or, with top > 0, the top most probable.
func newPrediction(classes []string, probs []float32, top int) Prediction {
	p := Prediction{Probabilities: make([]ClassProbability, len(probs))}
	best := 0
	for i, v := range probs {
		p.Probabilities[i] = ClassProbability{Class: classes[i], Probability: v}
		if v > probs[best] {
			best = i
		}
	}
	p.Predicted = classes[best]
	if top > 0 {
		slices.SortStableFunc(p.Probabilities, func(a, b ClassProbability) int { return cmp.Compare(b.Probability, a.Probability) })
		p.Probabilities = p.Probabilities[:min(top, len(p.Probabilities))]
	}
	return p
}

// imageReport writes what predict --checkpoint says of each image, in one
// of its formats.
type imageReport interface {
	// image reports an image's probabilities (in label order), and the
	// Grad-CAM picture drawn of class, if any ("" for none).
	image(path string, probs []float32, class int, picture string) error
	// failure reports an image that could not be used.
	failure(path string, err error) error
	flush() error
}

// textReport prints each image's path, then a line per class (every class
// in label order or, with more than top classes, the top most probable),
// then where its Grad-CAM picture went.
type textReport struct {
	w       io.Writer
	classes []string
	top     int
}

func (r *textReport) image(path string, probs []float32, class int, picture string) error {
	fmt.Fprintf(r.w, "%s\n", path)
	k := 0
	if len(r.classes) > r.top {
		k = r.top
	}
	for _, p := range newPrediction(r.classes, probs, k).Probabilities {
		// Padded by terminal columns: %-20s counts runes, and 猫 takes two.
		pad := strings.Repeat(" ", max(0, 20-texttable.Width(p.Class)))
		if _, err := fmt.Fprintf(r.w, "  %s%s %.4f\n", p.Class, pad, p.Probability); err != nil {
			return err
		}
	}
	if picture != "" {
		_, err := fmt.Fprintf(r.w, "  grad-cam of %s: %s\n", r.classes[class], picture)
		return err
	}
	return nil
}

func (r *textReport) failure(path string, err error) error {
	_, werr := fmt.Fprintf(r.w, "%s\n  error: %v\n", path, err)
	return werr
}

func (r *textReport) flush() error { return nil }

// csvReport writes a header, then a row per image: path, predicted class,
// one probability per class, error.
type csvReport struct {
	w       *csv.Writer
	classes []string
}

func newCSVReport(w io.Writer, classes []string) *csvReport {
	r := &csvReport{w: csv.NewWriter(w), classes: classes}
	r.w.Write(append(append([]string{"path", "predicted"}, classes...), "error"))
	return r
}

func (r *csvReport) image(path string, probs []float32, _ int, _ string) error {
	row := []string{path, newPrediction(r.classes, probs, 0).Predicted}
	for _, v := range probs {
		row = append(row, strconv.FormatFloat(float64(v), 'f', 6, 32))
	}
	return r.w.Write(append(row, ""))
}

func (r *csvReport) failure(path string, err error) error {
	return r.w.Write(append(append([]string{path, ""}, make([]string, len(r.classes))...), err.Error()))
}

func (r *csvReport) flush() error {
	r.w.Flush()
	return r.w.Error()
}

// jsonReport writes JSON Lines: an object per image, its path and
// Prediction (every class in label order, or with top > 0 the top most
// probable first, as /predict?top= answers), and gradcam where a picture
// was drawn, or its path and error.
type jsonReport struct {
	enc     *json.Encoder
	classes []string
	top     int
}

// fileResult is one line of jsonReport.
type fileResult struct {
	Path string `json:"path"`
	*Prediction
	GradCAM      string `json:"gradcam,omitempty"`
	GradCAMClass string `json:"gradcam_class,omitempty"`
	Error        string `json:"error,omitempty"`
}

func (r *jsonReport) image(path string, probs []float32, class int, picture string) error {
	p := newPrediction(r.classes, probs, r.top)
	res := fileResult{Path: path, Prediction: &p, GradCAM: picture}
	if picture != "" {
		res.GradCAMClass = r.classes[class]
	}
	return r.enc.Encode(res)
}

func (r *jsonReport) failure(path string, err error) error {
	return r.enc.Encode(fileResult{Path: path, Error: err.Error()})
}

func (r *jsonReport) flush() error { return nil }
