package head

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gorgonia.org/tensor"

	"gotransfer/internal/splitmix"
	"gotransfer/model"
)

// DefaultInputDim is the width of ResNet50's pooled features.
const DefaultInputDim = 2048

// DefaultHidden returns the hidden layer widths of the Keras original:
// 1024, 1024, 1024, 512.
func DefaultHidden() []int { return []int{1024, 1024, 1024, 512} }

// glorotStream is the PCG stream (second seed word) of the Glorot initializer.
const glorotStream = 0x676f7472616e7366 // "gotransf"

// dropoutStream is the constant that, mixed with the step and the layer,
// makes the second seed word of a dropout mask's PCG.
const dropoutStream = 0x64726f706f757421 // "dropout!"

// maxGraphs bounds the number of cached graphs (one per batch size and mode).
const maxGraphs = 8

// Config describes a head. The zero value of a field means its default.
type Config struct {
	// InputDim is the width of the input features; 0 means DefaultInputDim.
	InputDim int
	// Hidden lists the widths of the ReLU layers; nil means DefaultHidden().
	// A non-nil empty slice gives a head without hidden layers (softmax
	// regression).
	Hidden []int
	// Classes is the number of output classes, at least 2. It has no default.
	Classes int
	// Seed seeds the Glorot-uniform initialization of the kernels and the
	// dropout masks.
	Seed uint64
	// Dropout is the rate of the inverted dropout after each hidden layer's
	// ReLU during training, in [0, 1), as Keras' Dropout(rate) after each
	// hidden Dense; 0 turns it off.
	Dropout float64
}

// withDefaults returns c with its zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.InputDim == 0 {
		c.InputDim = DefaultInputDim
	}
	if c.Hidden == nil {
		c.Hidden = DefaultHidden()
	} else {
		c.Hidden = slices.Clone(c.Hidden)
	}
	return c
}

// Validate reports whether the configuration, with defaults applied, describes
// a valid head.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.InputDim < 1 {
		return fmt.Errorf("head config: input dim %d must be positive", c.InputDim)
	}
	for i, h := range c.Hidden {
		if h < 1 {
			return fmt.Errorf("head config: hidden layer %d has width %d, want a positive width", i, h)
		}
	}
	if c.Classes < 2 {
		return fmt.Errorf("head config: classes %d, want at least 2", c.Classes)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return fmt.Errorf("head config: dropout %v, want [0, 1)", c.Dropout)
	}
	return nil
}

// Param is a named parameter tensor. Value is the live tensor of the head or
// the optimizer: writing to it changes the model.
type Param struct {
	Name  string
	Value *tensor.Dense
}

// Head is a dense classification head trained with softmax cross-entropy.
// Its methods may be called from several goroutines; they run one at a time.
type Head struct {
	mu     sync.Mutex
	cfg    Config
	sizes  []int // InputDim, Hidden..., Classes
	params []Param
	grads  []*tensor.Dense // allocated with the first training graph
	graphs map[graphKey]*graph
	clock  uint64 // for evicting the least recently used graph
	// classWeights scales each example's training loss by its class's
	// weight (nil: all 1); see SetClassWeights.
	classWeights []float32
	// labelSmoothing is ε of the smoothed targets; see SetLabelSmoothing.
	labelSmoothing float64
}

// New returns a head with Glorot-uniform kernels and zero biases drawn from
// cfg.Seed (see the package documentation for the exact order).
func New(cfg Config) (*Head, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	h := &Head{
		cfg:    cfg,
		sizes:  append(append([]int{cfg.InputDim}, cfg.Hidden...), cfg.Classes),
		graphs: make(map[graphKey]*graph),
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, glorotStream))
	for l := 0; l < h.layers(); l++ {
		in, out := h.sizes[l], h.sizes[l+1]
		k := newF32(in, out)
		GlorotUniform(k.Float32s(), in, out, rng)
		h.params = append(h.params,
			Param{Name: KernelName(l), Value: k},
			Param{Name: BiasName(l), Value: newF32(out)})
	}
	return h, nil
}

// KernelName returns the name of layer l's kernel, "dense_<l>/kernel".
func KernelName(l int) string { return fmt.Sprintf("dense_%d/kernel", l) }

// BiasName returns the name of layer l's bias, "dense_<l>/bias".
func BiasName(l int) string { return fmt.Sprintf("dense_%d/bias", l) }

// IsParamName reports whether name is the name of a layer's kernel or bias
// (KernelName, BiasName), as opposed to, say, an optimizer's state.
func IsParamName(name string) bool {
	layer, _, ok := strings.Cut(strings.TrimPrefix(name, "dense_"), "/")
	l, err := strconv.Atoi(layer)
	return ok && err == nil && l >= 0 && (name == KernelName(l) || name == BiasName(l))
}

// GlorotUniform fills w, the row-major (fanIn, fanOut) kernel, with draws from
// U(−limit, limit), limit = sqrt(6/(fanIn+fanOut)): each element takes one
// rng.Float64() u and becomes float32((2u−1)·limit).
func GlorotUniform(w []float32, fanIn, fanOut int, rng *rand.Rand) {
	limit := math.Sqrt(6 / float64(fanIn+fanOut))
	for i := range w {
		w[i] = float32((2*rng.Float64() - 1) * limit)
	}
}

// dropoutMask fills mask, a hidden layer's (N, width) mask in row-major
// order, for the training step taken when the optimizer is at step: each
// element is 0 (dropped, with probability rate) or 1/(1−rate) (kept and
// scaled: inverted dropout, as Keras). It is a pure function of its
// arguments, so that a run resumed from a checkpoint (which holds the
// step) draws the same masks. Element i takes the i-th draw of PCG(seed,
// dropoutStream ^ mix(step, layer)) as u in [0, 1) (53 bits, as
// rand.Float64) and is kept when u ≥ rate, Keras' test.
func dropoutMask(mask []float32, seed uint64, step int64, layer int, rate float64) {
	src := rand.NewPCG(seed, dropoutStream^splitmix.Mix(splitmix.Mix(uint64(step))+uint64(layer)))
	keep := float32(1 / (1 - rate))
	for i := range mask {
		if float64(src.Uint64()>>11)/(1<<53) >= rate {
			mask[i] = keep
		} else {
			mask[i] = 0
		}
	}
}

func (h *Head) layers() int { return len(h.sizes) - 1 }

// Config returns the head's configuration with defaults applied.
func (h *Head) Config() Config {
	c := h.cfg
	c.Hidden = slices.Clone(c.Hidden)
	return c
}

// Params returns the parameters in their fixed order: dense_0/kernel,
// dense_0/bias, dense_1/kernel, ..., the output layer last. The tensors are the
// head's own.
func (h *Head) Params() []Param {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.params)
}

// NumParams returns the number of trainable parameters.
func (h *Head) NumParams() int {
	n := 0
	for l := 0; l < h.layers(); l++ {
		n += (h.sizes[l] + 1) * h.sizes[l+1]
	}
	return n
}

// Grads returns the gradients of the last TrainStep, named like Params.
// They are nil before the first TrainStep.
func (h *Head) Grads() []Param {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.grads == nil {
		return nil
	}
	ps := make([]Param, len(h.params))
	for i, p := range h.params {
		ps[i] = Param{Name: p.Name, Value: h.grads[i]}
	}
	return ps
}

// SetParams copies values into the head's parameters. ps must name every
// parameter exactly once, in any order, with the right shape.
func (h *Head) SetParams(ps []Param) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	src, err := matchParams("set params", h.params, ps)
	if err != nil {
		return err
	}
	for i, p := range h.params {
		copy(p.Value.Float32s(), src[i])
	}
	return nil
}

// matchParams checks that got names every parameter of want exactly once with
// the same shape, and returns got's float32 data in want's order.
func matchParams(what string, want, got []Param) ([][]float32, error) {
	index := make(map[string]int, len(want))
	for i, p := range want {
		index[p.Name] = i
	}
	out := make([][]float32, len(want))
	seen := make([]bool, len(want))
	var errs []error
	for _, p := range got {
		i, ok := index[p.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown tensor %q (want one of %s)", what, p.Name, names(want)))
			continue
		}
		if seen[i] {
			errs = append(errs, fmt.Errorf("%s: tensor %q given twice", what, p.Name))
			continue
		}
		seen[i] = true
		if p.Value == nil {
			errs = append(errs, fmt.Errorf("%s: tensor %q is nil", what, p.Name))
			continue
		}
		if p.Value.Dtype() != tensor.Float32 {
			errs = append(errs, fmt.Errorf("%s: tensor %q: want float32, got %v", what, p.Name, p.Value.Dtype()))
			continue
		}
		if ws, gs := want[i].Value.Shape(), p.Value.Shape(); !sameShape(ws, gs) {
			errs = append(errs, fmt.Errorf("%s: tensor %q: want shape %v, got %v", what, p.Name, ws, gs))
			continue
		}
		v := p.Value
		if v.IsView() {
			v = v.Materialize().(*tensor.Dense)
		}
		out[i] = v.Float32s()[:v.Shape().TotalSize()]
	}
	for i, p := range want {
		if !seen[i] {
			errs = append(errs, fmt.Errorf("%s: tensor %q missing", what, p.Name))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func names(ps []Param) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Name
	}
	return strings.Join(s, ", ")
}

// Forward returns the softmax probabilities (N,C) for the features x (N,D).
// The result is a new tensor owned by the caller.
func (h *Head) Forward(x *tensor.Dense) (probs *tensor.Dense, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer recoverInto(&err, "head: forward")
	g, err := h.run(x, nil, false, 0)
	if err != nil {
		return nil, fmt.Errorf("head: forward: %w", err)
	}
	return g.xent.probs.Clone().(*tensor.Dense), nil
}

// SetClassWeights makes TrainStep weigh each example's loss by the weight
// of its class, as Keras' class_weight does: the batch loss is
// (1/N) Σ_i w[y_i]·loss_i. nil turns weighting off. Evaluate and Forward
// are not affected (Keras' validation loss is unweighted too).
func (h *Head) SetClassWeights(w []float32) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w == nil {
		h.classWeights = nil
		return nil
	}
	if len(w) != h.cfg.Classes {
		return fmt.Errorf("head: class weights: want %d (one per class), got %d", h.cfg.Classes, len(w))
	}
	for i, v := range w {
		if !(v > 0) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("head: class weights: weight %v of class %d: want a positive finite number", v, i)
		}
	}
	h.classWeights = slices.Clone(w)
	return nil
}

// SetLabelSmoothing makes the loss of TrainStep, Evaluate and
// EvaluateWithProbs that of the smoothed targets y·(1−ε) + ε/C (y one-hot,
// C classes), as Keras' CategoricalCrossentropy(label_smoothing=ε) and
// PyTorch's CrossEntropyLoss(label_smoothing=ε) define it; 0 turns it off.
// Evaluate reports the smoothed loss too, as Keras does for validation
// (its compiled loss is the same object). With class weights, an example's
// smoothed loss is multiplied by the weight of its label, as Keras applies
// class_weight (see the package documentation for PyTorch's weight).
// Accuracies, predictions and probabilities do not change.
func (h *Head) SetLabelSmoothing(eps float64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !(eps >= 0 && eps < 1) {
		return fmt.Errorf("head: label smoothing %v, want [0, 1)", eps)
	}
	h.labelSmoothing = eps
	return nil
}

// LabelSmoothing returns ε of SetLabelSmoothing (0: off).
func (h *Head) LabelSmoothing() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.labelSmoothing
}

// TrainStep runs one optimizer step on the batch x (N,D) with integer
// labels in [0,C). It returns the batch's mean loss and the number of rows
// whose most probable class was the label, both before the update and with
// the step's dropout masks applied (what Keras reports as a batch's loss and
// accuracy). opt must have been made for h.Params(); its step picks the
// dropout masks.
func (h *Head) TrainStep(x *tensor.Dense, labels []int, opt Optimizer) (loss float32, correct int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer recoverInto(&err, "head: train step")
	if opt == nil {
		return 0, 0, errors.New("head: train step: nil optimizer")
	}
	if err := opt.checkParams(h.params); err != nil {
		return 0, 0, fmt.Errorf("head: train step: %w", err)
	}
	if labels == nil {
		return 0, 0, errors.New("head: train step: nil labels")
	}
	g, err := h.run(x, labels, true, opt.Step())
	if err != nil {
		return 0, 0, fmt.Errorf("head: train step: %w", err)
	}
	loss = float32(g.xent.loss)
	correct = g.correct(labels, nil)
	if err := opt.Update(h.grads); err != nil {
		return 0, 0, fmt.Errorf("head: train step: %w", err)
	}
	return loss, correct, nil
}

// Evaluate returns the mean loss of the batch, the number of rows whose most
// probable class (the first one on ties) equals the label, and those classes.
func (h *Head) Evaluate(x *tensor.Dense, labels []int) (loss float32, correct int, preds []int, err error) {
	loss, correct, preds, _, err = h.evaluate(x, labels, false)
	return loss, correct, preds, err
}

// EvaluateWithProbs is Evaluate that also returns the softmax
// probabilities (N,C), a new tensor: Forward's result without a second pass.
func (h *Head) EvaluateWithProbs(x *tensor.Dense, labels []int) (loss float32, correct int, preds []int, probs *tensor.Dense, err error) {
	return h.evaluate(x, labels, true)
}

func (h *Head) evaluate(x *tensor.Dense, labels []int, withProbs bool) (loss float32, correct int, preds []int, probs *tensor.Dense, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer recoverInto(&err, "head: evaluate")
	if labels == nil {
		return 0, 0, nil, nil, errors.New("head: evaluate: nil labels")
	}
	g, err := h.run(x, labels, false, 0)
	if err != nil {
		return 0, 0, nil, nil, fmt.Errorf("head: evaluate: %w", err)
	}
	preds = make([]int, g.n)
	correct = g.correct(labels, preds)
	if withProbs {
		probs = g.xent.probs.Clone().(*tensor.Dense)
	}
	return float32(g.xent.loss), correct, preds, probs, nil
}

// correct counts the rows of the last run whose most probable class (the
// first one on ties) is the label, and stores the classes in preds unless
// it is nil.
func (g *graph) correct(labels, preds []int) int {
	c := g.xent.c
	p := g.xent.probs.Float32s()
	n := 0
	for i, l := range labels {
		k := Argmax(p[i*c : (i+1)*c])
		if preds != nil {
			preds[i] = k
		}
		if k == l {
			n++
		}
	}
	return n
}

// Argmax is the index of the largest value of v, the first of ties: the
// class a row of probabilities (or logits) predicts.
func Argmax(v []float32) int {
	best := 0
	for j, x := range v {
		if x > v[best] {
			best = j
		}
	}
	return best
}

// recoverInto turns a panic (gorgonia panics on some misuse) into an error.
func recoverInto(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: panic: %v", what, r)
	}
}

// Layers describes the head's layers for model.WriteSummary: dense_0 …
// dense_K, each a Keras Dense layer (ReLU, then softmax for the last), with
// dropout, dropout_l (Keras' Dropout, no parameters) after each hidden
// dense_l.
func (h *Head) Layers() []model.Layer {
	var ls []model.Layer
	for l := range h.layers() {
		ls = append(ls, model.Layer{
			Name:   fmt.Sprintf("dense_%d", l),
			Type:   "Dense",
			Shape:  []int{h.sizes[l+1]},
			Params: (h.sizes[l] + 1) * h.sizes[l+1],
		})
		if h.cfg.Dropout > 0 && l < h.layers()-1 {
			ls = append(ls, model.Layer{Name: fmt.Sprintf("dropout_%d", l), Type: "Dropout", Shape: []int{h.sizes[l+1]}})
		}
	}
	return ls
}

// Summary writes a Keras-like table of the layers and parameter counts
// (model.WriteSummary of Layers).
func (h *Head) Summary(w io.Writer) error {
	return model.WriteSummary(w, "head", h.Layers())
}
