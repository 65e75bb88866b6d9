package head

import (
	"fmt"
	"runtime"
	"sync"

	"gorgonia.org/tensor"
)

// Optimizer updates a head's parameters from the gradients of a TrainStep.
// Adam and SGD implement it; the interface is closed (its unexported method
// checks that the optimizer was made for the head's parameter tensors).
//
// Everything a checkpoint needs to continue bit for bit is exported: Step,
// State (tensors named "<prefix><param>", the prefix saying whose they
// are) and LR, and SetState and SetLR restore them.
type Optimizer interface {
	// Name is the optimizer's name, as train.optimizer spells it: "adam"
	// or "sgd".
	Name() string
	// LR is the learning rate of the next Update.
	LR() float64
	// SetLR changes the learning rate from the next Update on, as a
	// learning-rate schedule does; the state and the step are kept.
	SetLR(lr float64) error
	// Step is the number of updates applied so far.
	Step() int64
	// State returns the optimizer's state tensors (its own, not copies),
	// in a fixed order; an optimizer without state returns none.
	State() []Param
	// SetState restores the step and the state tensors, which must be
	// named as State names them, each exactly once, with their shapes.
	SetState(step int64, state []Param) error
	// Update applies one step with grads, given in the order of the
	// parameters the optimizer was made for.
	Update(grads []*tensor.Dense) error

	checkParams(ps []Param) error
}

var (
	_ Optimizer = (*Adam)(nil)
	_ Optimizer = (*SGD)(nil)
)

// optParams holds the parameter tensors an optimizer was made for.
type optParams struct {
	what   string // the optimizer's name, for errors
	params []Param
}

// newOptParams checks that params are float32 tensors, not views, with
// distinct names.
func newOptParams(what string, params []Param) (optParams, error) {
	o := optParams{what: what, params: make([]Param, len(params))}
	seen := make(map[string]bool, len(params))
	for i, p := range params {
		if p.Value == nil || p.Value.Dtype() != tensor.Float32 || p.Value.IsView() {
			return optParams{}, fmt.Errorf("%s: parameter %q must be a float32 tensor that is not a view", what, p.Name)
		}
		if seen[p.Name] {
			return optParams{}, fmt.Errorf("%s: parameter %q given twice", what, p.Name)
		}
		seen[p.Name] = true
		o.params[i] = p
	}
	return o, nil
}

// checkParams reports whether the optimizer was made for exactly these
// parameter tensors.
func (o *optParams) checkParams(ps []Param) error {
	if len(ps) != len(o.params) {
		return fmt.Errorf("%s: made for %d parameters, used with %d", o.what, len(o.params), len(ps))
	}
	for i, p := range ps {
		if o.params[i].Value != p.Value {
			return fmt.Errorf("%s: parameter %d (%q) is not the tensor the optimizer was made for", o.what, i, p.Name)
		}
	}
	return nil
}

// checkGrads reports whether grads are float32 tensors, not views, with the
// parameters' shapes, one per parameter in their order.
func (o *optParams) checkGrads(grads []*tensor.Dense) error {
	if len(grads) != len(o.params) {
		return fmt.Errorf("%s: update: want %d gradients, got %d", o.what, len(o.params), len(grads))
	}
	for i, g := range grads {
		p := o.params[i]
		if g == nil || g.Dtype() != tensor.Float32 || g.IsView() || !sameShape(g.Shape(), p.Value.Shape()) {
			var s any = "nil"
			if g != nil {
				s = fmt.Sprintf("%v %v", g.Dtype(), g.Shape())
			}
			return fmt.Errorf("%s: update: gradient of %q: want float32 %v, got %v", o.what, p.Name, p.Value.Shape(), s)
		}
	}
	return nil
}

// forEachRange calls f(i, s, e) for parts [s, e) of the parameters i that
// together cover them all, from min(GOMAXPROCS, size/65536) goroutines, each
// given one contiguous range of the concatenated parameters. For element-wise
// updates the result does not depend on the split.
func (o *optParams) forEachRange(f func(i, s, e int)) {
	total := 0
	for _, p := range o.params {
		total += p.Value.Shape().TotalSize()
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, total/(1<<16)))
	do := func(lo, hi int) {
		off := 0
		for i, p := range o.params {
			n := p.Value.Shape().TotalSize()
			if s, e := max(lo-off, 0), min(hi-off, n); s < e {
				f(i, s, e)
			}
			off += n
		}
	}
	if workers == 1 {
		do(0, total)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			do(lo, hi)
		}(w*total/workers, (w+1)*total/workers)
	}
	wg.Wait()
}
