package head

import (
	"errors"
	"fmt"
	"math"

	"gorgonia.org/tensor"
)

// Prefixes of the names of Adam's moment tensors in State.
const (
	FirstMomentPrefix  = "adam_m/"
	SecondMomentPrefix = "adam_v/"
)

// AdamConfig holds Adam's hyper-parameters. The zero AdamConfig means
// DefaultAdamConfig(); any other value is taken as it is.
type AdamConfig struct {
	LR, Beta1, Beta2, Epsilon float64
	// WeightDecay is the decoupled weight decay of Keras 3's
	// Adam(weight_decay=...) and PyTorch's AdamW: before each update every
	// parameter becomes w − lr·WeightDecay·w. 0 turns it off.
	WeightDecay float64
}

// DefaultAdamConfig returns the Keras defaults: learning rate 1e-3, beta1 0.9,
// beta2 0.999, epsilon 1e-7, no weight decay.
func DefaultAdamConfig() AdamConfig {
	return AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7}
}

// Validate reports whether the hyper-parameters are usable.
func (c AdamConfig) Validate() error {
	if c == (AdamConfig{}) {
		return nil
	}
	var errs []error
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		errs = append(errs, fmt.Errorf("adam: learning rate %v must be positive and finite", c.LR))
	}
	if !(c.Beta1 >= 0 && c.Beta1 < 1) {
		errs = append(errs, fmt.Errorf("adam: beta1 %v must be in [0, 1)", c.Beta1))
	}
	if !(c.Beta2 >= 0 && c.Beta2 < 1) {
		errs = append(errs, fmt.Errorf("adam: beta2 %v must be in [0, 1)", c.Beta2))
	}
	if !(c.Epsilon > 0) || math.IsInf(c.Epsilon, 0) {
		errs = append(errs, fmt.Errorf("adam: epsilon %v must be positive and finite", c.Epsilon))
	}
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		errs = append(errs, fmt.Errorf("adam: weight decay %v must be finite and ≥ 0", c.WeightDecay))
	}
	return errors.Join(errs...)
}

// Adam is the Adam optimizer with the Keras update rule. At step t = 1, 2, …
// each parameter w with gradient g and moments m, v becomes
//
//	w ← w − lr·wd·w                 (decoupled weight decay, if wd > 0)
//	m ← m + (g − m)·(1 − β1)
//	v ← v + (g² − v)·(1 − β2)
//	w ← w − lr·sqrt(1 − β2^t)/(1 − β1^t) · m/(sqrt(v) + ε)
//
// (the step size and lr·wd are computed in float64, the rest in float32).
// Its whole state (Step and the moments) is exported so that a checkpoint
// can restore it.
type Adam struct {
	optParams
	cfg  AdamConfig
	m, v []*tensor.Dense
	step int64
}

// NewAdam returns an optimizer for params (usually Head.Params()), with zero
// moments and step 0.
func NewAdam(cfg AdamConfig, params []Param) (*Adam, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg == (AdamConfig{}) {
		cfg = DefaultAdamConfig()
	}
	ps, err := newOptParams("adam", params)
	if err != nil {
		return nil, err
	}
	a := &Adam{optParams: ps, cfg: cfg}
	for _, p := range params {
		a.m = append(a.m, newF32(p.Value.Shape()...))
		a.v = append(a.v, newF32(p.Value.Shape()...))
	}
	return a, nil
}

// Config returns the hyper-parameters in use.
func (a *Adam) Config() AdamConfig { return a.cfg }

// Name returns "adam".
func (a *Adam) Name() string { return "adam" }

// LR returns the learning rate of the next Update.
func (a *Adam) LR() float64 { return a.cfg.LR }

// SetLR changes the learning rate from the next Update on, as a
// learning-rate schedule does (the weight decay, lr·wd, follows it); the
// moments and the step are kept.
func (a *Adam) SetLR(lr float64) error {
	if !(lr > 0) || math.IsInf(lr, 0) {
		return fmt.Errorf("adam: learning rate %v must be positive and finite", lr)
	}
	a.cfg.LR = lr
	return nil
}

// Step returns the number of updates applied so far.
func (a *Adam) Step() int64 { return a.step }

// Moments returns the first and second moment tensors, named like the
// parameters. The tensors are the optimizer's own.
func (a *Adam) Moments() (m, v []Param) {
	m = make([]Param, len(a.params))
	v = make([]Param, len(a.params))
	for i, p := range a.params {
		m[i] = Param{Name: p.Name, Value: a.m[i]}
		v[i] = Param{Name: p.Name, Value: a.v[i]}
	}
	return m, v
}

// State returns the moments named "adam_m/<param>" (all of them, in parameter
// order) then "adam_v/<param>", the names /work/shared/golden's final.npz
// uses. The tensors are the optimizer's own.
func (a *Adam) State() []Param {
	m, v := a.Moments()
	s := make([]Param, 0, 2*len(m))
	for _, p := range m {
		s = append(s, Param{Name: FirstMomentPrefix + p.Name, Value: p.Value})
	}
	for _, p := range v {
		s = append(s, Param{Name: SecondMomentPrefix + p.Name, Value: p.Value})
	}
	return s
}

// SetState restores the step and the moments, which must be named as State
// names them, each exactly once, with the parameters' shapes.
func (a *Adam) SetState(step int64, state []Param) error {
	if step < 0 {
		return fmt.Errorf("adam: set state: step %d is negative", step)
	}
	want := a.State()
	src, err := matchParams("adam: set state", want, state)
	if err != nil {
		return err
	}
	for i, p := range want {
		copy(p.Value.Float32s(), src[i])
	}
	a.step = step
	return nil
}

// Update applies one Adam step with grads, given in the order of the
// parameters passed to NewAdam.
func (a *Adam) Update(grads []*tensor.Dense) error {
	if err := a.checkGrads(grads); err != nil {
		return err
	}
	t := float64(a.step + 1)
	c := a.cfg
	k := adamKernel{
		alpha: float32(c.LR * math.Sqrt(1-math.Pow(c.Beta2, t)) / (1 - math.Pow(c.Beta1, t))),
		omb1:  float32(1 - c.Beta1),
		omb2:  float32(1 - c.Beta2),
		eps:   float32(c.Epsilon),
		decay: float32(c.LR * c.WeightDecay),
	}
	a.forEachRange(func(i, s, e int) {
		k.apply(a.params[i].Value.Float32s()[s:e], grads[i].Float32s()[s:e], a.m[i].Float32s()[s:e], a.v[i].Float32s()[s:e])
	})
	a.step++
	return nil
}

type adamKernel struct{ alpha, omb1, omb2, eps, decay float32 }

// applyGo is Adam's update of w, m and v from g, one float at a time:
//
//	m ← m + (g − m)·(1 − β1)
//	v ← v + (g² − v)·(1 − β2)
//	w ← w − decay·w             (only where decay ≠ 0: w − 0·w is not w for −0, ±Inf or NaN)
//	w ← w − α·m/(sqrt(v) + ε)
//
// each operation rounded to float32. apply runs it, or C that gives the
// same bits (adam_kernel.go).
func (k adamKernel) applyGo(w, g, m, v []float32) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for i := range w {
		gi := g[i]
		mi := m[i] + (gi-m[i])*k.omb1
		vi := v[i] + (gi*gi-v[i])*k.omb2
		m[i], v[i] = mi, vi
		wi := w[i]
		if k.decay != 0 {
			wi -= k.decay * wi
		}
		w[i] = wi - k.alpha*mi/(float32(math.Sqrt(float64(vi)))+k.eps)
	}
}
