package head

import (
	"errors"
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// graphKey identifies a cached graph: gorgonia graphs have fixed shapes, so
// there is one per batch size, with or without the backward pass.
type graphKey struct {
	n     int
	train bool
}

// graph is the expression graph of the head for one batch size, compiled
// into a tape machine. Its parameter nodes are bound to the head's parameter
// tensors, so every graph sees the same weights.
type graph struct {
	n       int
	g       *gorgonia.ExprGraph
	vm      gorgonia.VM
	x       *tensor.Dense // (n, InputDim), bound to the input node
	targets *tensor.Dense // (n, Classes) target distributions (one-hot, smoothed, class-weighted), bound to the target node
	xent    *xentOp       // holds the loss and the probabilities of the last run
	used    uint64        // h.clock at the last use
	// masks[l] is hidden layer l's dropout mask (n, width), filled before
	// each training run; nil without dropout, and in inference graphs.
	masks []*tensor.Dense
}

// graphFor returns the cached graph for key, building it (and evicting the
// least recently used graph beyond maxGraphs) if needed.
func (h *Head) graphFor(key graphKey) (*graph, error) {
	h.clock++
	if g, ok := h.graphs[key]; ok {
		g.used = h.clock
		return g, nil
	}
	g, err := h.build(key)
	if err != nil {
		return nil, err
	}
	if len(h.graphs) >= maxGraphs {
		var oldest graphKey
		var t uint64 = ^uint64(0)
		for k, v := range h.graphs {
			if v.used < t {
				oldest, t = k, v.used
			}
		}
		h.graphs[oldest].vm.Close()
		delete(h.graphs, oldest)
	}
	g.used = h.clock
	h.graphs[key] = g
	return g, nil
}

// build makes the graph
//
//	x → dense_0 (ReLU) → … → dense_K → xent(·, targets) → loss
//
// and, for training, its backward pass with gorgonia.Grad; with dropout,
// the training graph's hidden layers multiply their ReLU outputs by masks.
func (h *Head) build(key graphKey) (gr *graph, err error) {
	defer recoverInto(&err, fmt.Sprintf("build graph for batch %d", key.n))
	n := key.n
	if key.train && h.grads == nil {
		h.grads = make([]*tensor.Dense, len(h.params))
		for i, p := range h.params {
			h.grads[i] = newF32(p.Value.Shape()...)
		}
	}
	g := gorgonia.NewGraph()
	gr = &graph{n: n, g: g, x: newF32(n, h.sizes[0]), targets: newF32(n, h.cfg.Classes)}
	act := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(n, h.sizes[0]), gorgonia.WithName("x"), gorgonia.WithValue(gr.x))
	var wrt gorgonia.Nodes
	for l := 0; l < h.layers(); l++ {
		in, out := h.sizes[l], h.sizes[l+1]
		k, b := h.params[2*l], h.params[2*l+1]
		kn := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(in, out), gorgonia.WithName(k.Name), gorgonia.WithValue(k.Value))
		bn := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(out), gorgonia.WithName(b.Name), gorgonia.WithValue(b.Value))
		hidden := l < h.layers()-1
		var gk, gb, mask *tensor.Dense
		if key.train {
			gk, gb = h.grads[2*l], h.grads[2*l+1]
			if hidden && h.cfg.Dropout > 0 {
				mask = newF32(n, out)
				gr.masks = append(gr.masks, mask)
			}
		}
		op := newDenseOp(fmt.Sprintf("dense_%d", l), n, in, out, hidden, l > 0, mask, gk, gb)
		if act, err = gorgonia.ApplyOp(op, act, kn, bn); err != nil {
			return nil, fmt.Errorf("build graph for batch %d: layer %d: %w", n, l, err)
		}
		wrt = append(wrt, kn, bn)
	}
	tn := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(n, h.cfg.Classes), gorgonia.WithName("targets"), gorgonia.WithValue(gr.targets))
	gr.xent = newXentOp(n, h.cfg.Classes)
	loss, err := gorgonia.ApplyOp(gr.xent, act, tn)
	if err != nil {
		return nil, fmt.Errorf("build graph for batch %d: loss: %w", n, err)
	}
	if key.train {
		if _, err := gorgonia.Grad(loss, wrt...); err != nil {
			return nil, fmt.Errorf("build graph for batch %d: gradients: %w", n, err)
		}
	}
	gr.vm = gorgonia.NewTapeMachine(g)
	return gr, nil
}

// run checks the batch, loads it into the graph for its size and runs the
// graph. labels may be nil when train is false (Forward). step, the
// optimizer's step before the update, picks the dropout masks of a training
// run.
func (h *Head) run(x *tensor.Dense, labels []int, train bool, step int64) (*graph, error) {
	if x == nil {
		return nil, errors.New("nil input")
	}
	if x.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("input: want float32, got %v", x.Dtype())
	}
	s := x.Shape()
	if s.Dims() != 2 || s[0] < 1 || s[1] != h.sizes[0] {
		return nil, fmt.Errorf("input: want shape (N, %d) with N ≥ 1, got %v", h.sizes[0], s)
	}
	n := s[0]
	if labels != nil {
		if len(labels) != n {
			return nil, fmt.Errorf("labels: want %d (one per input row), got %d", n, len(labels))
		}
		for i, l := range labels {
			if l < 0 || l >= h.cfg.Classes {
				return nil, fmt.Errorf("labels: label %d of row %d is outside [0, %d)", l, i, h.cfg.Classes)
			}
		}
	}
	g, err := h.graphFor(graphKey{n: n, train: train})
	if err != nil {
		return nil, err
	}
	if x.IsView() {
		x = x.Materialize().(*tensor.Dense)
	}
	copy(g.x.Float32s(), x.Float32s()[:s.TotalSize()])
	t := g.targets.Float32s()
	clear(t)
	c := h.cfg.Classes
	// The smoothed one-hot target of a label: on for it, off for the
	// other classes (on = 1, off = 0 without smoothing).
	off := h.labelSmoothing / float64(c)
	on := 1 - h.labelSmoothing + off
	for i, l := range labels {
		w := 1.0
		if train && h.classWeights != nil {
			// A weighted target weighs the example's loss and, through
			// xentGradOp, its gradient.
			w = float64(h.classWeights[l])
		}
		if off != 0 {
			for j := range t[i*c : (i+1)*c] {
				t[i*c+j] = float32(w * off)
			}
		}
		t[i*c+l] = float32(w * on)
	}
	for l, m := range g.masks {
		dropoutMask(m.Float32s(), h.cfg.Seed, step, l, h.cfg.Dropout)
	}
	g.vm.Reset()
	if err := g.vm.RunAll(); err != nil {
		return nil, fmt.Errorf("run graph for batch %d: %w", n, err)
	}
	return g, nil
}
