package head

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// refNet is an independent float64 implementation of the head (plain loops,
// hand-written backward pass) and of the Keras Adam step, for checking the
// gorgonia graphs on batches of any size. Only which units dropout keeps
// comes from the head's code (dropoutMask).
type refNet struct {
	sizes     []int
	w, b      [][]float64 // w[l] row-major (in,out)
	mw, vw    [][]float64
	mb, vb    [][]float64
	step      int
	adam      AdamConfig
	lastProbs [][]float64
	classW    []float64 // training loss weight of each class; nil: 1
	seed      uint64    // the head's, for the dropout masks
	dropout   float64   // the head's dropout rate
	smoothing float64   // label smoothing ε
}

// target is the smoothed one-hot target of label y for class j:
// (1−ε)·[j = y] + ε/C.
func (r *refNet) target(y, j int) float64 {
	c := float64(r.sizes[len(r.sizes)-1])
	t := r.smoothing / c
	if j == y {
		t += 1 - r.smoothing
	}
	return t
}

// weight is the training loss weight of class k.
func (r *refNet) weight(k int) float64 {
	if r.classW == nil {
		return 1
	}
	return r.classW[k]
}

func newRefNet(h *Head, adam AdamConfig) *refNet {
	r := &refNet{sizes: slices.Clone(h.sizes), adam: adam, seed: h.cfg.Seed, dropout: h.cfg.Dropout}
	for i, p := range h.Params() {
		v := make([]float64, p.Value.Shape().TotalSize())
		for j, f := range p.Value.Float32s() {
			v[j] = float64(f)
		}
		if i%2 == 0 {
			r.w = append(r.w, v)
			r.mw = append(r.mw, make([]float64, len(v)))
			r.vw = append(r.vw, make([]float64, len(v)))
		} else {
			r.b = append(r.b, v)
			r.mb = append(r.mb, make([]float64, len(v)))
			r.vb = append(r.vb, make([]float64, len(v)))
		}
	}
	return r
}

// forward returns the activations of every layer (acts[0] is x) and the
// loss, without dropout (inference).
func (r *refNet) forward(x []float32, y []int) (acts [][]float64, loss float64) {
	return r.forwardMasked(x, y, nil)
}

// masks returns the dropout masks of the hidden layers for a batch of n at
// the reference's current step (nil without dropout): 0 where the head's
// dropoutMask drops a unit, 1/(1−rate) where it keeps it.
func (r *refNet) masks(n int) [][]float64 {
	if r.dropout == 0 {
		return nil
	}
	var ms [][]float64
	for l := 1; l < len(r.sizes)-1; l++ {
		m32 := make([]float32, n*r.sizes[l])
		dropoutMask(m32, r.seed, int64(r.step), l-1, r.dropout)
		m := make([]float64, len(m32))
		for i, v := range m32 {
			if v != 0 {
				m[i] = 1 / (1 - r.dropout)
			}
		}
		ms = append(ms, m)
	}
	return ms
}

// forwardMasked is forward with hidden layer l's ReLU outputs multiplied by
// masks[l] (nil: no dropout).
func (r *refNet) forwardMasked(x []float32, y []int, masks [][]float64) (acts [][]float64, loss float64) {
	n := len(x) / r.sizes[0]
	a := make([]float64, len(x))
	for i, v := range x {
		a[i] = float64(v)
	}
	acts = append(acts, a)
	L := len(r.w)
	for l := 0; l < L; l++ {
		in, out := r.sizes[l], r.sizes[l+1]
		z := make([]float64, n*out)
		for i := 0; i < n; i++ {
			for j := 0; j < out; j++ {
				s := r.b[l][j]
				for k := 0; k < in; k++ {
					s += a[i*in+k] * r.w[l][k*out+j]
				}
				if l < L-1 && s < 0 {
					s = 0
				}
				if l < L-1 && masks != nil {
					s *= masks[l][i*out+j]
				}
				z[i*out+j] = s
			}
		}
		a = z
		acts = append(acts, a)
	}
	c := r.sizes[L]
	r.lastProbs = nil
	for i := 0; i < n; i++ {
		row := a[i*c : (i+1)*c]
		mx := slices.Max(row)
		s := 0.0
		for _, v := range row {
			s += math.Exp(v - mx)
		}
		lse := mx + math.Log(s)
		p := make([]float64, c)
		for j, v := range row {
			p[j] = math.Exp(v - lse)
		}
		r.lastProbs = append(r.lastProbs, p)
		if y != nil {
			for j, v := range row {
				loss += r.target(y[i], j) * (lse - v)
			}
		}
	}
	return acts, loss / float64(n)
}

// trainStep does one Adam step and returns the (class-weighted) loss before
// it, with the step's dropout masks.
func (r *refNet) trainStep(x []float32, y []int) float64 {
	n := len(y)
	masks := r.masks(n)
	acts, _ := r.forwardMasked(x, y, masks)
	L := len(r.w)
	c := r.sizes[L]
	g := make([]float64, n*c)
	loss := 0.0
	for i := 0; i < n; i++ {
		w := r.weight(y[i])
		for j := 0; j < c; j++ {
			tj := r.target(y[i], j)
			loss -= w * tj * math.Log(r.lastProbs[i][j]) / float64(n)
			g[i*c+j] = w * (r.lastProbs[i][j] - tj) / float64(n)
		}
	}
	r.step++
	t := float64(r.step)
	alpha := r.adam.LR * math.Sqrt(1-math.Pow(r.adam.Beta2, t)) / (1 - math.Pow(r.adam.Beta1, t))
	upd := func(w, gw, m, v []float64) {
		for i := range w {
			w[i] -= r.adam.LR * r.adam.WeightDecay * w[i] // decoupled, before the Adam step
			m[i] += (gw[i] - m[i]) * (1 - r.adam.Beta1)
			v[i] += (gw[i]*gw[i] - v[i]) * (1 - r.adam.Beta2)
			w[i] -= alpha * m[i] / (math.Sqrt(v[i]) + r.adam.Epsilon)
		}
	}
	for l := L - 1; l >= 0; l-- {
		in, out := r.sizes[l], r.sizes[l+1]
		a := acts[l]
		gw := make([]float64, in*out)
		gb := make([]float64, out)
		gx := make([]float64, n*in)
		for i := 0; i < n; i++ {
			for j := 0; j < out; j++ {
				gij := g[i*out+j]
				gb[j] += gij
				for k := 0; k < in; k++ {
					gw[k*out+j] += a[i*in+k] * gij
					gx[i*in+k] += gij * r.w[l][k*out+j]
				}
			}
		}
		if l > 0 { // through the ReLU (and dropout) of layer l-1
			for i, v := range a {
				if v <= 0 {
					gx[i] = 0
				} else if masks != nil {
					gx[i] *= masks[l-1][i]
				}
			}
		}
		upd(r.w[l], gw, r.mw[l], r.vw[l])
		upd(r.b[l], gb, r.mb[l], r.vb[l])
		g = gx
	}
	return loss
}

// checkParams compares the head's parameters with the reference's, within
// rel.
func (r *refNet) checkParams(t *testing.T, h *Head, rel float64, when string) {
	t.Helper()
	for i, p := range h.Params() {
		want := r.b[i/2]
		if i%2 == 0 {
			want = r.w[i/2]
		}
		w32 := make([]float32, len(want))
		for j, v := range want {
			w32[j] = float32(v)
		}
		if d, ok := closeTensor(p.Value.Float32s(), w32, rel); !ok {
			t.Errorf("%s %s: max |diff| %.3g", p.Name, when, d)
		}
	}
}

func randBatch(rng *rand.Rand, n, d, c int) (*tensor.Dense, []int) {
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(max(rng.NormFloat64(), 0)) // ReLU-like, as pooled features are
	}
	y := make([]int, n)
	for i := range y {
		y[i] = rng.IntN(c)
	}
	return tensor.New(tensor.WithShape(n, d), tensor.WithBacking(x)), y
}

func TestVariableBatchSizesMatchReference(t *testing.T) {
	const rel = 1e-4
	h, err := New(Config{InputDim: 12, Hidden: []int{10, 7}, Classes: 3, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := NewAdam(AdamConfig{}, h.Params())
	if err != nil {
		t.Fatal(err)
	}
	ref := newRefNet(h, DefaultAdamConfig())
	rng := rand.New(rand.NewPCG(3, 4))
	for step, n := range []int{8, 8, 3, 8, 1, 3, 17, 8} {
		x, y := randBatch(rng, n, 12, 3)
		loss, correct, err := h.TrainStep(x, y, opt)
		if err != nil {
			t.Fatalf("step %d (batch %d): %v", step, n, err)
		}
		want := ref.trainStep(x.Float32s(), y)
		if d := math.Abs(float64(loss) - want); !(d <= rel*want) {
			t.Errorf("step %d (batch %d): loss %.7g, want %.7g", step, n, loss, want)
		}
		wantCorrect := 0
		for i, p := range ref.lastProbs { // the probabilities before the update
			if slices.Index(p, slices.Max(p)) == y[i] {
				wantCorrect++
			}
		}
		if correct != wantCorrect {
			t.Errorf("step %d (batch %d): %d correct, want %d", step, n, correct, wantCorrect)
		}
	}
	ref.checkParams(t, h, rel, "after 8 steps")
	if got := len(h.graphs); got != 4 {
		t.Errorf("%d cached graphs, want 4 (one per training batch size: 8, 3, 1, 17)", got)
	}
}

// TestClassWeightsMatchReference trains with class weights against the
// reference's weighted loss and gradients; Evaluate stays unweighted.
func TestClassWeightsMatchReference(t *testing.T) {
	const rel = 1e-4
	h, err := New(Config{InputDim: 12, Hidden: []int{10}, Classes: 3, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := NewAdam(AdamConfig{}, h.Params())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SetClassWeights([]float32{1, 4, 0.25}); err != nil {
		t.Fatal(err)
	}
	ref := newRefNet(h, DefaultAdamConfig())
	ref.classW = []float64{1, 4, 0.25}
	rng := rand.New(rand.NewPCG(5, 6))
	for step, n := range []int{8, 5, 8, 1} {
		x, y := randBatch(rng, n, 12, 3)
		loss, _, err := h.TrainStep(x, y, opt)
		if err != nil {
			t.Fatal(err)
		}
		if want := ref.trainStep(x.Float32s(), y); math.Abs(float64(loss)-want) > rel*want {
			t.Errorf("step %d: weighted loss %.7g, want %.7g", step, loss, want)
		}
	}
	ref.checkParams(t, h, rel, "after 4 weighted steps")
	x, y := randBatch(rng, 6, 12, 3)
	loss, _, _, err := h.Evaluate(x, y)
	if err != nil {
		t.Fatal(err)
	}
	if _, want := ref.forward(x.Float32s(), y); math.Abs(float64(loss)-want) > rel*want {
		t.Errorf("Evaluate loss %.7g, want the unweighted %.7g", loss, want)
	}
	for _, bad := range [][]float32{{1, 2}, {1, 0, 1}, {1, -1, 1}, {1, float32(math.NaN()), 1}, {1, float32(math.Inf(1)), 1}} {
		if err := h.SetClassWeights(bad); err == nil {
			t.Errorf("SetClassWeights(%v) accepted", bad)
		}
	}
}

// TestLabelSmoothingMatchesReference trains with label smoothing, alone and
// with class weights, against the float64 reference; Evaluate reports the
// smoothed (unweighted) loss, as Keras' validation loss, and the same
// predictions as without smoothing.
func TestLabelSmoothingMatchesReference(t *testing.T) {
	const rel = 1e-4
	for _, tc := range []struct {
		name    string
		eps     float64
		weights []float32
	}{
		{"smoothing", 0.2, nil},
		{"smoothing and class weights", 0.1, []float32{1, 4, 0.25}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(Config{InputDim: 12, Hidden: []int{10}, Classes: 3, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			opt, _ := NewAdam(AdamConfig{}, h.Params())
			if err := h.SetLabelSmoothing(tc.eps); err != nil {
				t.Fatal(err)
			}
			if err := h.SetClassWeights(tc.weights); err != nil {
				t.Fatal(err)
			}
			ref := newRefNet(h, DefaultAdamConfig())
			ref.smoothing = tc.eps
			for _, w := range tc.weights {
				ref.classW = append(ref.classW, float64(w))
			}
			rng := rand.New(rand.NewPCG(5, 6))
			for step, n := range []int{8, 5, 8, 1} {
				x, y := randBatch(rng, n, 12, 3)
				loss, _, err := h.TrainStep(x, y, opt)
				if err != nil {
					t.Fatal(err)
				}
				if want := ref.trainStep(x.Float32s(), y); !(math.Abs(float64(loss)-want) <= rel*want) {
					t.Errorf("step %d: loss %.7g, want %.7g", step, loss, want)
				}
			}
			ref.checkParams(t, h, rel, "after 4 steps")
			x, y := randBatch(rng, 6, 12, 3)
			loss, correct, preds, err := h.Evaluate(x, y)
			if err != nil {
				t.Fatal(err)
			}
			ref.classW = nil // validation is unweighted
			if _, want := ref.forward(x.Float32s(), y); !(math.Abs(float64(loss)-want) <= rel*want) {
				t.Errorf("Evaluate loss %.7g, want the smoothed %.7g", loss, want)
			}
			if err := h.SetLabelSmoothing(0); err != nil {
				t.Fatal(err)
			}
			plain, correct0, preds0, err := h.Evaluate(x, y)
			if err != nil {
				t.Fatal(err)
			}
			if correct != correct0 || fmt.Sprint(preds) != fmt.Sprint(preds0) || plain == loss {
				t.Errorf("without smoothing: loss %v (smoothed %v, want another), %d correct %v (smoothed: %d %v, want the same)", plain, loss, correct0, preds0, correct, preds)
			}
		})
	}
	h, _ := New(Config{InputDim: 2, Hidden: []int{}, Classes: 2})
	for _, bad := range []float64{-0.1, 1, math.NaN(), math.Inf(1)} {
		if err := h.SetLabelSmoothing(bad); err == nil || !strings.Contains(err.Error(), "want [0, 1)") {
			t.Errorf("SetLabelSmoothing(%v): %v", bad, err)
		}
	}
}

func TestForwardAndEvaluate(t *testing.T) {
	h, err := New(Config{InputDim: 6, Hidden: []int{5}, Classes: 4, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	ref := newRefNet(h, DefaultAdamConfig())
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 4, 9} {
		x, y := randBatch(rng, n, 6, 4)
		probs, err := h.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		if !probs.Shape().Eq(tensor.Shape{n, 4}) {
			t.Fatalf("batch %d: probs shape %v", n, probs.Shape())
		}
		_, wantLoss := ref.forward(x.Float32s(), y)
		p := probs.Float32s()
		wantCorrect := 0
		for i := 0; i < n; i++ {
			sum := 0.0
			for j := 0; j < 4; j++ {
				sum += float64(p[i*4+j])
				if d := math.Abs(float64(p[i*4+j]) - ref.lastProbs[i][j]); d > 1e-5 {
					t.Errorf("batch %d row %d class %d: p %.7g, want %.7g", n, i, j, p[i*4+j], ref.lastProbs[i][j])
				}
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Errorf("batch %d row %d: probabilities sum to %v", n, i, sum)
			}
			if Argmax(p[i*4:(i+1)*4]) == y[i] {
				wantCorrect++
			}
		}
		loss, correct, preds, err := h.Evaluate(x, y)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(float64(loss)-wantLoss) > 1e-5*wantLoss {
			t.Errorf("batch %d: evaluate loss %v, want %v", n, loss, wantLoss)
		}
		if correct != wantCorrect || len(preds) != n {
			t.Errorf("batch %d: %d correct of %d predictions, want %d of %d", n, correct, len(preds), wantCorrect, n)
		}
		// The returned probabilities belong to the caller.
		p[0] = 42
		again, _ := h.Forward(x)
		if again.Float32s()[0] == 42 {
			t.Errorf("Forward returned the graph's own buffer")
		}
	}
}

func TestKerasOriginalParamCount(t *testing.T) {
	h, err := New(Config{Classes: 2}) // InputDim 2048, hidden 1024-1024-1024-512
	if err != nil {
		t.Fatal(err)
	}
	const want = 4_723_202
	if got := h.NumParams(); got != want {
		t.Errorf("NumParams = %d, want %d", got, want)
	}
	n := 0
	for _, p := range h.Params() {
		n += p.Value.Shape().TotalSize()
	}
	if n != want {
		t.Errorf("parameter tensors hold %d values, want %d", n, want)
	}
	var b bytes.Buffer
	if err := h.Summary(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"dense_0 (Dense)", "(None, 1024)", "2,098,176", "dense_4 (Dense)", "(None, 2)", "1,026", "Total params: 4,723,202"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, b.String())
		}
	}
}

func TestGlorotInit(t *testing.T) {
	cfg := Config{InputDim: 300, Hidden: []int{200, 50}, Classes: 3, Seed: 11}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(cfg)
	cfg.Seed = 12
	c, _ := New(cfg)
	// The documented order: one PCG(seed, glorotStream) stream, layer by
	// layer, each kernel row-major, biases zero.
	rng := rand.New(rand.NewPCG(11, glorotStream))
	sizes := []int{300, 200, 50, 3}
	for i, p := range a.Params() {
		l := i / 2
		if i%2 == 1 {
			if maxAbs(p.Value.Float32s()) != 0 {
				t.Errorf("%s is not zero", p.Name)
			}
			continue
		}
		fanIn, fanOut := sizes[l], sizes[l+1]
		lim := math.Sqrt(6 / float64(fanIn+fanOut))
		w := p.Value.Float32s()
		var sum, sq float64
		for j, v := range w {
			u := rng.Float64()
			if want := float32((2*u - 1) * lim); v != want {
				t.Fatalf("%s[%d] = %v, want %v from the documented stream", p.Name, j, v, want)
			}
			if math.Abs(float64(v)) > float64(float32(lim)) {
				t.Errorf("%s[%d] = %v outside ±%v", p.Name, j, v, lim)
			}
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		n := float64(len(w))
		// U(−lim, lim) has mean 0 and variance lim²/3.
		if mean := sum / n; math.Abs(mean) > 4*lim/math.Sqrt(3*n) {
			t.Errorf("%s: mean %v too far from 0", p.Name, mean)
		}
		if v := sq / n; math.Abs(v-lim*lim/3) > 0.1*lim*lim/3 {
			t.Errorf("%s: variance %v, want about %v", p.Name, v, lim*lim/3)
		}
		if !slices.Equal(w, b.Params()[i].Value.Float32s()) {
			t.Errorf("%s differs between two heads with seed 11", p.Name)
		}
		if slices.Equal(w, c.Params()[i].Value.Float32s()) {
			t.Errorf("%s is the same for seeds 11 and 12", p.Name)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no classes", Config{InputDim: 4}, "classes 0"},
		{"one class", Config{InputDim: 4, Classes: 1}, "classes 1"},
		{"negative input", Config{InputDim: -1, Classes: 2}, "input dim -1"},
		{"zero width", Config{InputDim: 4, Hidden: []int{3, 0}, Classes: 2}, "hidden layer 1 has width 0"},
		{"dropout one", Config{InputDim: 4, Classes: 2, Dropout: 1}, "dropout 1, want [0, 1)"},
		{"negative dropout", Config{InputDim: 4, Classes: 2, Dropout: -0.1}, "dropout -0.1, want [0, 1)"},
		{"NaN dropout", Config{InputDim: 4, Classes: 2, Dropout: math.NaN()}, "dropout NaN, want [0, 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New(%+v) error %v, want one containing %q", tc.cfg, err, tc.want)
			}
		})
	}
	h, err := New(Config{InputDim: 4, Hidden: []int{}, Classes: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Params()) != 2 || h.NumParams() != 10 {
		t.Errorf("empty hidden list: %d params tensors, %d values; want 2 and 10", len(h.Params()), h.NumParams())
	}
}

func TestSetParamsRejectsBadInput(t *testing.T) {
	h, err := New(Config{InputDim: 4, Hidden: []int{3}, Classes: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	good := func() []Param {
		var ps []Param
		for _, p := range h.Params() {
			ps = append(ps, Param{Name: p.Name, Value: p.Value.Clone().(*tensor.Dense)})
		}
		return ps
	}
	for _, tc := range []struct {
		name   string
		mutate func([]Param) []Param
		want   string
	}{
		{"transposed kernel", func(ps []Param) []Param {
			ps[0].Value = newF32(3, 4)
			return ps
		}, `tensor "dense_0/kernel": want shape (4, 3), got (3, 4)`},
		{"bias as matrix", func(ps []Param) []Param {
			ps[1].Value = newF32(1, 3)
			return ps
		}, `tensor "dense_0/bias": want shape (3), got (1, 3)`},
		{"unknown name", func(ps []Param) []Param {
			ps[2].Name = "dense_9/kernel"
			return ps
		}, `unknown tensor "dense_9/kernel"`},
		{"missing", func(ps []Param) []Param { return ps[:3] }, `tensor "dense_1/bias" missing`},
		{"twice", func(ps []Param) []Param { return append(ps, ps[0]) }, `tensor "dense_0/kernel" given twice`},
		{"nil", func(ps []Param) []Param {
			ps[3].Value = nil
			return ps
		}, `tensor "dense_1/bias" is nil`},
		{"float64", func(ps []Param) []Param {
			ps[3].Value = tensor.New(tensor.WithShape(2), tensor.Of(tensor.Float64))
			return ps
		}, `tensor "dense_1/bias": want float32, got float64`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(h.Params()[0].Value.Float32s())
			err := h.SetParams(tc.mutate(good()))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !slices.Equal(before, h.Params()[0].Value.Float32s()) {
				t.Errorf("a rejected SetParams changed the weights")
			}
		})
	}
	// And a good one is applied.
	ps := good()
	ps[0].Value.Float32s()[0] = 0.5
	slices.Reverse(ps)
	if err := h.SetParams(ps); err != nil {
		t.Fatal(err)
	}
	if got := h.Params()[0].Value.Float32s()[0]; got != 0.5 {
		t.Errorf("after SetParams dense_0/kernel[0] = %v, want 0.5", got)
	}
}

func TestBatchErrors(t *testing.T) {
	h, err := New(Config{InputDim: 4, Hidden: []int{3}, Classes: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := New(Config{InputDim: 4, Hidden: []int{3}, Classes: 2, Seed: 1})
	opt, _ := NewAdam(AdamConfig{}, h.Params())
	otherOpt, _ := NewAdam(AdamConfig{}, other.Params())
	x := newF32(2, 4)
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"wide input", func() error { _, _, err := h.TrainStep(newF32(2, 5), []int{0, 1}, opt); return err }, "want shape (N, 4)"},
		{"vector input", func() error { _, err := h.Forward(newF32(4)); return err }, "want shape (N, 4)"},
		{"float64 input", func() error {
			_, err := h.Forward(tensor.New(tensor.WithShape(2, 4), tensor.Of(tensor.Float64)))
			return err
		}, "want float32"},
		{"nil input", func() error { _, err := h.Forward(nil); return err }, "nil input"},
		{"label out of range", func() error { _, _, err := h.TrainStep(x, []int{0, 2}, opt); return err }, "label 2 of row 1 is outside [0, 2)"},
		{"negative label", func() error { _, _, _, err := h.Evaluate(x, []int{-1, 0}); return err }, "label -1 of row 0"},
		{"label count", func() error { _, _, err := h.TrainStep(x, []int{0}, opt); return err }, "want 2 (one per input row), got 1"},
		{"nil labels", func() error { _, _, err := h.TrainStep(x, nil, opt); return err }, "nil labels"},
		{"nil optimizer", func() error { _, _, err := h.TrainStep(x, []int{0, 1}, nil); return err }, "nil optimizer"},
		{"other head's optimizer", func() error { _, _, err := h.TrainStep(x, []int{0, 1}, otherOpt); return err }, "not the tensor the optimizer was made for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if opt.Step() != 0 {
		t.Errorf("failed steps advanced Adam to step %d", opt.Step())
	}
}

func TestGraphCacheIsBounded(t *testing.T) {
	h, err := New(Config{InputDim: 3, Hidden: []int{2}, Classes: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	var first *tensor.Dense
	for n := 1; n <= maxGraphs+3; n++ {
		x, _ := randBatch(rng, n, 3, 2)
		p, err := h.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			first = p
		}
		if len(h.graphs) > maxGraphs {
			t.Fatalf("%d graphs cached, want at most %d", len(h.graphs), maxGraphs)
		}
	}
	if _, ok := h.graphs[graphKey{n: 1}]; ok {
		t.Errorf("the least recently used graph (batch 1) was kept")
	}
	// Rebuilding an evicted graph gives the same answer.
	x, _ := randBatch(rand.New(rand.NewPCG(1, 1)), 1, 3, 2)
	p, err := h.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Float32s(), first.Float32s()) {
		t.Errorf("batch 1 after eviction: %v, before %v", p.Float32s(), first.Float32s())
	}
}

func TestIsParamName(t *testing.T) {
	for name, want := range map[string]bool{
		"dense_0/kernel": true, "dense_0/bias": true, "dense_12/kernel": true,
		KernelName(3): true, BiasName(4): true,
		"adam_m/dense_0/kernel": false, "adam_v/dense_0/bias": false,
		"dense_0/kernel/x": false, "dense_00/kernel": false, "dense_-1/bias": false, "dense_+1/bias": false,
		"dense_/kernel": false, "dense_0": false, "dense_0/weight": false, "x/dense_0/kernel": false, "": false,
	} {
		if got := IsParamName(name); got != want {
			t.Errorf("IsParamName(%q) = %v, want %v", name, got, want)
		}
	}
}
