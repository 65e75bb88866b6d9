package head

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func TestAdamConfigValidate(t *testing.T) {
	d := DefaultAdamConfig()
	for _, tc := range []struct {
		name string
		cfg  AdamConfig
		want string // "" for valid
	}{
		{"zero means default", AdamConfig{}, ""},
		{"default", d, ""},
		{"beta1 zero", AdamConfig{LR: 1e-3, Beta1: 0, Beta2: 0.999, Epsilon: 1e-7}, ""},
		{"lr zero", AdamConfig{LR: 0, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7}, "learning rate 0"},
		{"lr inf", AdamConfig{LR: math.Inf(1), Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7}, "learning rate +Inf"},
		{"beta1 one", AdamConfig{LR: 1e-3, Beta1: 1, Beta2: 0.999, Epsilon: 1e-7}, "beta1 1 must be in [0, 1)"},
		{"beta2 negative", AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: -0.5, Epsilon: 1e-7}, "beta2 -0.5"},
		{"epsilon NaN", AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: math.NaN()}, "epsilon NaN"},
		{"weight decay", AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7, WeightDecay: 0.01}, ""},
		{"weight decay negative", AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7, WeightDecay: -0.01}, "weight decay -0.01 must be finite and ≥ 0"},
		{"weight decay inf", AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7, WeightDecay: math.Inf(1)}, "weight decay +Inf"},
		{"weight decay NaN", AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7, WeightDecay: math.NaN()}, "weight decay NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAdam(tc.cfg, nil)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	a, _ := NewAdam(AdamConfig{}, nil)
	if a.Config() != d {
		t.Errorf("zero config became %+v, want %+v", a.Config(), d)
	}
}

// TestAdamFormula checks a few steps on one tensor against the Keras formula
// evaluated in float64, with gradients of very different scales, without
// and with decoupled weight decay, and a learning rate changed in between
// (as ReduceLROnPlateau does; the decay follows it).
func TestAdamFormula(t *testing.T) {
	for _, wd := range []float64{0, 0.5} {
		t.Run(fmt.Sprintf("weight decay %v", wd), func(t *testing.T) {
			cfg := AdamConfig{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Epsilon: 1e-6, WeightDecay: wd}
			w := tensor.New(tensor.WithShape(4), tensor.WithBacking([]float32{1, -2, 0.5, 0}))
			a, err := NewAdam(cfg, []Param{{Name: "w", Value: w}})
			if err != nil {
				t.Fatal(err)
			}
			ref := []float64{1, -2, 0.5, 0}
			m, v := make([]float64, 4), make([]float64, 4)
			grads := [][]float32{{0.1, -3, 1e-4, 0}, {0.2, 2, -1e-4, 0}, {-0.1, 1, 5e-5, 1e-8}}
			lrs := []float64{0.01, 0.01, 0.004}
			for s, g := range grads {
				if err := a.SetLR(lrs[s]); err != nil {
					t.Fatal(err)
				}
				if err := a.Update([]*tensor.Dense{tensor.New(tensor.WithShape(4), tensor.WithBacking(slices.Clone(g)))}); err != nil {
					t.Fatal(err)
				}
				tt := float64(s + 1)
				alpha := lrs[s] * math.Sqrt(1-math.Pow(cfg.Beta2, tt)) / (1 - math.Pow(cfg.Beta1, tt))
				for i := range ref {
					ref[i] -= lrs[s] * wd * ref[i]
					gi := float64(g[i])
					m[i] += (gi - m[i]) * (1 - cfg.Beta1)
					v[i] += (gi*gi - v[i]) * (1 - cfg.Beta2)
					ref[i] -= alpha * m[i] / (math.Sqrt(v[i]) + cfg.Epsilon)
				}
			}
			if a.Step() != 3 {
				t.Errorf("step %d, want 3", a.Step())
			}
			mm, vv := a.Moments()
			for i := range ref {
				for _, c := range []struct {
					what      string
					got, want float64
				}{
					{"w", float64(w.Float32s()[i]), ref[i]},
					{"m", float64(mm[0].Value.Float32s()[i]), m[i]},
					{"v", float64(vv[0].Value.Float32s()[i]), v[i]},
				} {
					if d := math.Abs(c.got - c.want); d > 1e-6*math.Max(math.Abs(c.want), 1e-3) {
						t.Errorf("%s[%d] = %.9g, want %.9g", c.what, i, c.got, c.want)
					}
				}
			}
		})
	}
}

// TestAdamWorkersDoNotChangeResults checks that the split of the update
// across goroutines leaves the result bit for bit the same.
func TestAdamWorkersDoNotChangeResults(t *testing.T) {
	const n = 3<<16 + 7
	rng := rand.New(rand.NewPCG(1, 2))
	mk := func() ([]Param, []*tensor.Dense) {
		var ps []Param
		var gs []*tensor.Dense
		for i, size := range []int{n, 5, 2 * n} {
			w, g := newF32(size), newF32(size)
			for j := range w.Float32s() {
				w.Float32s()[j] = float32(rng.NormFloat64())
				g.Float32s()[j] = float32(rng.NormFloat64())
			}
			ps = append(ps, Param{Name: string(rune('a' + i)), Value: w})
			gs = append(gs, g)
		}
		return ps, gs
	}
	run := func(procs int, ps []Param, gs []*tensor.Dense) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		a, err := NewAdam(AdamConfig{}, ps)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := a.Update(gs); err != nil {
				t.Fatal(err)
			}
		}
	}
	rng = rand.New(rand.NewPCG(1, 2))
	p1, g1 := mk()
	rng = rand.New(rand.NewPCG(1, 2))
	p2, g2 := mk()
	run(1, p1, g1)
	run(3, p2, g2)
	for i := range p1 {
		if !slices.Equal(p1[i].Value.Float32s(), p2[i].Value.Float32s()) {
			t.Errorf("param %d differs between 1 and 3 workers", i)
		}
	}
}

// TestOptimizerResumeIsExact checks what checkpoints rely on: a head and
// optimizer rebuilt from Params, State and Step continue bit for bit, for
// Adam and for SGD with and without momentum.
func TestOptimizerResumeIsExact(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(ps []Param) (Optimizer, error)
	}{
		{"adam", func(ps []Param) (Optimizer, error) { return NewAdam(AdamConfig{}, ps) }},
		{"sgd momentum", func(ps []Param) (Optimizer, error) {
			return NewSGD(SGDConfig{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3}, ps)
		}},
		{"sgd", func(ps []Param) (Optimizer, error) { return NewSGD(SGDConfig{LR: 0.1}, ps) }},
	} {
		t.Run(tc.name, func(t *testing.T) { testResumeIsExact(t, tc.make) })
	}
}

func testResumeIsExact(t *testing.T, newOpt func(ps []Param) (Optimizer, error)) {
	cfg := Config{InputDim: 9, Hidden: []int{8, 6}, Classes: 3, Seed: 5, Dropout: 0.25}
	batches := func() ([]*tensor.Dense, [][]int) {
		rng := rand.New(rand.NewPCG(9, 9))
		var xs []*tensor.Dense
		var ys [][]int
		for _, n := range []int{4, 4, 4, 2, 4, 4, 2} {
			x, y := randBatch(rng, n, 9, 3)
			xs, ys = append(xs, x), append(ys, y)
		}
		return xs, ys
	}
	xs, ys := batches()

	straight, _ := New(cfg)
	opt, _ := newOpt(straight.Params())
	for i := range xs {
		if _, _, err := straight.TrainStep(xs[i], ys[i], opt); err != nil {
			t.Fatal(err)
		}
	}

	first, _ := New(cfg)
	opt1, _ := newOpt(first.Params())
	for i := range 4 {
		if _, _, err := first.TrainStep(xs[i], ys[i], opt1); err != nil {
			t.Fatal(err)
		}
	}
	clone := func(ps []Param) []Param {
		out := make([]Param, len(ps))
		for i, p := range ps {
			out[i] = Param{Name: p.Name, Value: p.Value.Clone().(*tensor.Dense)}
		}
		return out
	}
	savedParams, savedState, savedStep := clone(first.Params()), clone(opt1.State()), opt1.Step()

	resumed, _ := New(cfg)
	if err := resumed.SetParams(savedParams); err != nil {
		t.Fatal(err)
	}
	opt2, _ := newOpt(resumed.Params())
	if err := opt2.SetState(savedStep, savedState); err != nil {
		t.Fatal(err)
	}
	for i := 4; i < len(xs); i++ {
		if _, _, err := resumed.TrainStep(xs[i], ys[i], opt2); err != nil {
			t.Fatal(err)
		}
	}
	if opt2.Step() != opt.Step() {
		t.Errorf("resumed step %d, straight %d", opt2.Step(), opt.Step())
	}
	for i, p := range straight.Params() {
		if !slices.Equal(p.Value.Float32s(), resumed.Params()[i].Value.Float32s()) {
			t.Errorf("%s differs after resume", p.Name)
		}
	}
	for i, p := range opt.State() {
		if !slices.Equal(p.Value.Float32s(), opt2.State()[i].Value.Float32s()) {
			t.Errorf("%s differs after resume", p.Name)
		}
	}
}

func TestAdamStateErrors(t *testing.T) {
	w := newF32(2, 3)
	a, err := NewAdam(AdamConfig{}, []Param{{Name: "w", Value: w}})
	if err != nil {
		t.Fatal(err)
	}
	good := func() []Param {
		return []Param{{Name: "adam_m/w", Value: newF32(2, 3)}, {Name: "adam_v/w", Value: newF32(2, 3)}}
	}
	for _, tc := range []struct {
		name  string
		step  int64
		state []Param
		want  string
	}{
		{"negative step", -1, good(), "step -1 is negative"},
		{"missing v", 1, good()[:1], `tensor "adam_v/w" missing`},
		{"bad shape", 1, []Param{{Name: "adam_m/w", Value: newF32(3, 2)}, good()[1]}, `"adam_m/w": want shape (2, 3), got (3, 2)`},
		{"unprefixed", 1, []Param{{Name: "w", Value: newF32(2, 3)}, good()[1]}, `unknown tensor "w"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.SetState(tc.step, tc.state); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if err := a.Update(nil); err == nil || !strings.Contains(err.Error(), "want 1 gradients, got 0") {
		t.Errorf("Update(nil): %v", err)
	}
	if err := a.Update([]*tensor.Dense{newF32(6)}); err == nil || !strings.Contains(err.Error(), `gradient of "w": want float32 (2, 3)`) {
		t.Errorf("Update with a (6) gradient: %v", err)
	}
	if _, err := NewAdam(AdamConfig{}, []Param{{Name: "w", Value: w}, {Name: "w", Value: newF32(1)}}); err == nil {
		t.Errorf("NewAdam accepted a duplicate name")
	}
	st := good()
	st[0].Value.Float32s()[4] = 3
	if err := a.SetState(7, st); err != nil {
		t.Fatal(err)
	}
	if a.Step() != 7 || a.State()[0].Value.Float32s()[4] != 3 {
		t.Errorf("SetState not applied: step %d, m %v", a.Step(), a.State()[0].Value.Float32s())
	}
}

// kernelValues returns a source of float32 test values for the update
// kernels: ordinary ones across magnitudes and, one in eight, special ones
// (signed zeros, subnormals, huge, infinite, NaN).
func kernelValues(rng *rand.Rand) func() float32 {
	special := []float32{0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -1e-40, 3e38, -3e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1, -1}
	return func() float32 {
		if rng.IntN(8) == 0 {
			return special[rng.IntN(len(special))]
		}
		return float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(9)-6)))
	}
}

// TestAdamKernelBits holds the vectorized kernel against the formula in
// Go (applyGo), bit for bit: ordinary and special values (signed zeros, subnormals,
// huge, infinite, NaN), lengths that end in a partial vector, with and
// without weight decay.
func TestAdamKernelBits(t *testing.T) {
	value := kernelValues(rand.New(rand.NewPCG(5, 5)))
	for _, n := range []int{1, 7, 8, 9, 31, 1000, 4099} {
		for _, k := range []adamKernel{
			{alpha: 1e-3, omb1: 0.1, omb2: 0.001, eps: 1e-7},
			{alpha: 3.7e-4, omb1: 0.1, omb2: 0.001, eps: 1e-7, decay: 1e-5},
			{alpha: 0.5, omb1: 1, omb2: 1, eps: 1e-3, decay: 0.25},
		} {
			w, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range n {
				w[i], g[i], m[i] = value(), value(), value()
				v[i] = float32(math.Abs(float64(value()))) // a second moment is never negative
			}
			rw, rm, rv := slices.Clone(w), slices.Clone(m), slices.Clone(v)
			k.applyGo(rw, g, rm, rv)
			k.apply(w, g, m, v)
			for i := range n {
				if math.Float32bits(w[i]) != math.Float32bits(rw[i]) || math.Float32bits(m[i]) != math.Float32bits(rm[i]) || math.Float32bits(v[i]) != math.Float32bits(rv[i]) {
					t.Fatalf("n %d, %+v, element %d (g %v): got w %v m %v v %v, want %v %v %v", n, k, i, g[i], w[i], m[i], v[i], rw[i], rm[i], rv[i])
				}
			}
		}
	}
}
