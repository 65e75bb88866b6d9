package head

import (
	"errors"
	"fmt"
	"math"

	"gorgonia.org/tensor"
)

// MomentumPrefix begins the names of SGD's momentum buffers in State.
const MomentumPrefix = "sgd_momentum/"

// SGDConfig holds the hyper-parameters of SGD. The zero SGDConfig means
// DefaultSGDConfig(); any other value is taken as it is.
type SGDConfig struct {
	// LR is the learning rate.
	LR float64
	// Momentum is μ of the momentum buffers, in [0, 1); 0 turns momentum
	// off (and the optimizer keeps no state beside its step).
	Momentum float64
	// Nesterov uses Nesterov momentum (it needs Momentum > 0).
	Nesterov bool
	// WeightDecay is PyTorch SGD's weight_decay, an L2 penalty coupled to
	// the gradient: every gradient g becomes g + WeightDecay·w before the
	// momentum. 0 turns it off.
	WeightDecay float64
}

// DefaultSGDConfig returns Keras' SGD defaults: learning rate 0.01, no
// momentum, no Nesterov momentum, no weight decay.
func DefaultSGDConfig() SGDConfig { return SGDConfig{LR: 0.01} }

// Validate reports whether the hyper-parameters are usable.
func (c SGDConfig) Validate() error {
	if c == (SGDConfig{}) {
		return nil
	}
	var errs []error
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		errs = append(errs, fmt.Errorf("sgd: learning rate %v must be positive and finite", c.LR))
	}
	if !(c.Momentum >= 0 && c.Momentum < 1) {
		errs = append(errs, fmt.Errorf("sgd: momentum %v must be in [0, 1)", c.Momentum))
	}
	if c.Nesterov && !(c.Momentum > 0) {
		errs = append(errs, fmt.Errorf("sgd: Nesterov momentum needs a momentum > 0, got %v", c.Momentum))
	}
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		errs = append(errs, fmt.Errorf("sgd: weight decay %v must be finite and ≥ 0", c.WeightDecay))
	}
	return errors.Join(errs...)
}

// SGD is stochastic gradient descent with PyTorch's update rule
// (torch.optim.SGD without dampening). Each parameter w with gradient g and
// momentum buffer b (zero at first) becomes
//
//	g ← g + wd·w              (coupled weight decay, if wd > 0)
//	b ← μ·b + g               (if μ > 0)
//	g ← g + μ·b (Nesterov) or b (if μ > 0)
//	w ← w − lr·g
//
// in float32. For μ > 0 its state is the buffers, named
// "sgd_momentum/<param>"; without momentum it has none. It counts its
// steps as Adam does (they pick the dropout masks).
type SGD struct {
	optParams
	cfg  SGDConfig
	buf  []*tensor.Dense // nil without momentum
	step int64
}

// NewSGD returns an optimizer for params (usually Head.Params()), with zero
// momentum buffers and step 0.
func NewSGD(cfg SGDConfig, params []Param) (*SGD, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg == (SGDConfig{}) {
		cfg = DefaultSGDConfig()
	}
	ps, err := newOptParams("sgd", params)
	if err != nil {
		return nil, err
	}
	o := &SGD{optParams: ps, cfg: cfg}
	if cfg.Momentum != 0 {
		for _, p := range params {
			o.buf = append(o.buf, newF32(p.Value.Shape()...))
		}
	}
	return o, nil
}

// Config returns the hyper-parameters in use.
func (o *SGD) Config() SGDConfig { return o.cfg }

// Name returns "sgd".
func (o *SGD) Name() string { return "sgd" }

// LR returns the learning rate of the next Update.
func (o *SGD) LR() float64 { return o.cfg.LR }

// SetLR changes the learning rate from the next Update on, as a
// learning-rate schedule does; the momentum buffers and the step are kept.
func (o *SGD) SetLR(lr float64) error {
	if !(lr > 0) || math.IsInf(lr, 0) {
		return fmt.Errorf("sgd: learning rate %v must be positive and finite", lr)
	}
	o.cfg.LR = lr
	return nil
}

// Step returns the number of updates applied so far.
func (o *SGD) Step() int64 { return o.step }

// State returns the momentum buffers named "sgd_momentum/<param>", in
// parameter order, or nothing without momentum. The tensors are the
// optimizer's own.
func (o *SGD) State() []Param {
	s := make([]Param, 0, len(o.buf))
	for i, b := range o.buf {
		s = append(s, Param{Name: MomentumPrefix + o.params[i].Name, Value: b})
	}
	return s
}

// SetState restores the step and the momentum buffers, which must be named
// as State names them, each exactly once, with the parameters' shapes.
func (o *SGD) SetState(step int64, state []Param) error {
	if step < 0 {
		return fmt.Errorf("sgd: set state: step %d is negative", step)
	}
	want := o.State()
	src, err := matchParams("sgd: set state", want, state)
	if err != nil {
		return err
	}
	for i, p := range want {
		copy(p.Value.Float32s(), src[i])
	}
	o.step = step
	return nil
}

// Update applies one SGD step with grads, given in the order of the
// parameters passed to NewSGD. The gradients are not changed.
func (o *SGD) Update(grads []*tensor.Dense) error {
	if err := o.checkGrads(grads); err != nil {
		return err
	}
	k := sgdKernel{lr: float32(o.cfg.LR), mu: float32(o.cfg.Momentum), wd: float32(o.cfg.WeightDecay), nesterov: o.cfg.Nesterov}
	o.forEachRange(func(i, s, e int) {
		var b []float32
		if o.buf != nil {
			b = o.buf[i].Float32s()[s:e]
		}
		k.apply(o.params[i].Value.Float32s()[s:e], grads[i].Float32s()[s:e], b)
	})
	o.step++
	return nil
}

type sgdKernel struct {
	lr, mu, wd float32
	nesterov   bool
}

// applyGo is SGD's update of w and the momentum buffer b (nil without
// momentum) from g, one float at a time:
//
//	g ← g + wd·w        (only where wd ≠ 0, as Adam's decay)
//	b ← μ·b + g         (with momentum)
//	g ← g + μ·b (Nesterov) or b
//	w ← w − lr·g
//
// each operation rounded to float32. apply runs it, or C that gives the
// same bits (sgd_kernel.go).
func (k sgdKernel) applyGo(w, g, b []float32) {
	g = g[:len(w)]
	if b != nil {
		b = b[:len(w)]
	}
	for i := range w {
		gi := g[i]
		if k.wd != 0 {
			gi += k.wd * w[i]
		}
		if b != nil {
			bi := k.mu*b[i] + gi
			b[i] = bi
			if k.nesterov {
				gi += k.mu * bi
			} else {
				gi = bi
			}
		}
		w[i] -= k.lr * gi
	}
}
