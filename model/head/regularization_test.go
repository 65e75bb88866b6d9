package head

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestRegularizationMatchesReference trains with dropout, weight decay and
// both against the float64 reference, which applies the masks of the
// head's dropoutMask and the decay in its own code.
func TestRegularizationMatchesReference(t *testing.T) {
	const rel = 1e-4
	// A large lr·wd (5e-3 a step) makes the decay visible at this tolerance.
	adam := AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7}
	for _, tc := range []struct {
		name        string
		dropout, wd float64
	}{
		{"dropout", 0.3, 0},
		{"weight decay", 0, 0.5},
		{"both", 0.5, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(Config{InputDim: 12, Hidden: []int{10, 7}, Classes: 3, Seed: 8, Dropout: tc.dropout})
			if err != nil {
				t.Fatal(err)
			}
			cfg := adam
			cfg.WeightDecay = tc.wd
			opt, err := NewAdam(cfg, h.Params())
			if err != nil {
				t.Fatal(err)
			}
			ref := newRefNet(h, cfg)
			rng := rand.New(rand.NewPCG(7, 8))
			for step, n := range []int{8, 5, 8, 1, 8, 3} {
				x, y := randBatch(rng, n, 12, 3)
				loss, _, err := h.TrainStep(x, y, opt)
				if err != nil {
					t.Fatal(err)
				}
				if want := ref.trainStep(x.Float32s(), y); math.Abs(float64(loss)-want) > rel*want {
					t.Errorf("step %d (batch %d): loss %.7g, want %.7g", step, n, loss, want)
				}
			}
			ref.checkParams(t, h, rel, "after 6 steps")
		})
	}
}

// TestDropoutMask checks the masks' values, that they are a pure function
// of (seed, step, layer), differ between steps and layers, and keep about
// 1−rate of the units.
func TestDropoutMask(t *testing.T) {
	const n = 1 << 20
	mask := func(seed uint64, step int64, layer int, rate float64) []float32 {
		m := make([]float32, n)
		dropoutMask(m, seed, step, layer, rate)
		return m
	}
	for _, rate := range []float64{0.1, 0.5, 0.9} {
		keep := float32(1 / (1 - rate))
		for _, at := range []struct {
			step  int64
			layer int
		}{{0, 0}, {1, 0}, {0, 1}, {1 << 40, 3}} {
			m := mask(3, at.step, at.layer, rate)
			kept := 0
			for i, v := range m {
				switch v {
				case keep:
					kept++
				case 0:
				default:
					t.Fatalf("rate %v, step %d, layer %d: mask[%d] = %v, want 0 or %v", rate, at.step, at.layer, i, v, keep)
				}
			}
			// Kept units are Binomial(n, 1−rate): 6 standard deviations
			// (at most 3,072 here) bound them; a correct generator fails
			// with probability about 1e-9, and these draws are fixed.
			if d, sd := math.Abs(float64(kept)-n*(1-rate)), math.Sqrt(n*rate*(1-rate)); d > 6*sd {
				t.Errorf("rate %v, step %d, layer %d: kept %d of %d units, %.1f standard deviations from %v", rate, at.step, at.layer, kept, n, d/sd, n*(1-rate))
			}
			if !slices.Equal(m, mask(3, at.step, at.layer, rate)) {
				t.Errorf("rate %v, step %d, layer %d: two calls gave different masks", rate, at.step, at.layer)
			}
		}
	}
	// Masks of other steps, layers or seeds agree on a unit as independent
	// fair coins would, about half the time (6 standard deviations: 3,072).
	base := mask(3, 5, 1, 0.5)
	for _, other := range []struct {
		what string
		m    []float32
	}{
		{"the next step", mask(3, 6, 1, 0.5)},
		{"the previous step", mask(3, 4, 1, 0.5)},
		{"another layer", mask(3, 5, 0, 0.5)},
		{"another seed", mask(4, 5, 1, 0.5)},
	} {
		same := 0
		for i, v := range base {
			if other.m[i] == v {
				same++
			}
		}
		if d := math.Abs(float64(same) - n/2); d > 6*math.Sqrt(n/4) {
			t.Errorf("the mask of %s agrees with step 5's on %d of %d units, want about half", other.what, same, n)
		}
	}
}

// TestDropoutOnlyInTraining: Forward, Evaluate and EvaluateWithProbs of a
// head with dropout equal those of the same weights without it, before and
// after training.
func TestDropoutOnlyInTraining(t *testing.T) {
	cfg := Config{InputDim: 12, Hidden: []int{10, 7}, Classes: 3, Seed: 4}
	plain, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dropout = 0.5
	dropped, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 9))
	x, y := randBatch(rng, 9, 12, 3)
	same := func(when string) {
		t.Helper()
		p0, err := plain.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		p1, err := dropped.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p0.Float32s(), p1.Float32s()) {
			t.Errorf("%s: Forward with dropout %v, without %v", when, p1.Float32s(), p0.Float32s())
		}
		l0, c0, preds0, probs0, err := plain.EvaluateWithProbs(x, y)
		if err != nil {
			t.Fatal(err)
		}
		l1, c1, preds1, probs1, err := dropped.EvaluateWithProbs(x, y)
		if err != nil {
			t.Fatal(err)
		}
		if l0 != l1 || c0 != c1 || !slices.Equal(preds0, preds1) || !slices.Equal(probs0.Float32s(), probs1.Float32s()) {
			t.Errorf("%s: EvaluateWithProbs with dropout (%v, %d, %v), without (%v, %d, %v)", when, l1, c1, preds1, l0, c0, preds0)
		}
		if l, c, _, err := dropped.Evaluate(x, y); err != nil || l != l0 || c != c0 {
			t.Errorf("%s: Evaluate with dropout %v, %d, %v; without %v, %d", when, l, c, err, l0, c0)
		}
	}
	same("at initialization")
	opt, _ := NewAdam(AdamConfig{}, dropped.Params())
	for range 3 {
		xb, yb := randBatch(rng, 9, 12, 3)
		if _, _, err := dropped.TrainStep(xb, yb, opt); err != nil {
			t.Fatal(err)
		}
	}
	if err := plain.SetParams(dropped.Params()); err != nil {
		t.Fatal(err)
	}
	same("after 3 training steps")
}

// TestDropoutIsDeterministic: two heads with the same seed and dropout,
// trained on the same batches, end with the same bytes; without dropout,
// or with another seed, the weights differ (the masks are applied, and
// follow the seed).
func TestDropoutIsDeterministic(t *testing.T) {
	// train runs four steps from cfg's head, started from the weights of
	// init's seed when init is not nil.
	train := func(cfg Config, init *Config) []Param {
		h, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if init != nil {
			from, _ := New(*init)
			if err := h.SetParams(from.Params()); err != nil {
				t.Fatal(err)
			}
		}
		opt, _ := NewAdam(AdamConfig{}, h.Params())
		rng := rand.New(rand.NewPCG(2, 3))
		for _, n := range []int{6, 6, 2, 6} {
			x, y := randBatch(rng, n, 12, 3)
			if _, _, err := h.TrainStep(x, y, opt); err != nil {
				t.Fatal(err)
			}
		}
		return h.Params()
	}
	cfg := Config{InputDim: 12, Hidden: []int{10, 7}, Classes: 3, Seed: 6, Dropout: 0.4}
	a, b := train(cfg, nil), train(cfg, nil)
	for i, p := range a {
		if !slices.Equal(p.Value.Float32s(), b[i].Value.Float32s()) {
			t.Errorf("%s differs between two identical runs with dropout", p.Name)
		}
	}
	differs := func(other []Param) bool {
		for i, p := range a {
			if !slices.Equal(p.Value.Float32s(), other[i].Value.Float32s()) {
				return true
			}
		}
		return false
	}
	noDropout := cfg
	noDropout.Dropout = 0
	if !differs(train(noDropout, nil)) {
		t.Error("training with dropout 0.4 gave the weights of training without it")
	}
	// The initial weights come from the seed too: start the other seed's
	// head from seed 6's weights, so that only the masks differ.
	otherSeed := cfg
	otherSeed.Seed = 7
	if !differs(train(otherSeed, &cfg)) {
		t.Error("seeds 6 and 7 drew the same dropout masks")
	}
}

// TestDropoutSummary: with dropout, the summary lists a Keras Dropout layer
// (no parameters) after each hidden Dense, and the same parameters.
func TestDropoutSummary(t *testing.T) {
	h, err := New(Config{Classes: 2, Dropout: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range h.Layers() {
		names = append(names, l.Name+" ("+l.Type+")")
	}
	want := []string{"dense_0 (Dense)", "dropout_0 (Dropout)", "dense_1 (Dense)", "dropout_1 (Dropout)",
		"dense_2 (Dense)", "dropout_2 (Dropout)", "dense_3 (Dense)", "dropout_3 (Dropout)", "dense_4 (Dense)"}
	if !slices.Equal(names, want) {
		t.Errorf("layers %v, want %v", names, want)
	}
	var b bytes.Buffer
	if err := h.Summary(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"dropout_3 (Dropout)   (None, 512)", "Total params: 4,723,202", "Layers: 9"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, b.String())
		}
	}
	plain, _ := New(Config{Classes: 2})
	if n := len(plain.Layers()); n != 5 {
		t.Errorf("without dropout %d layers, want 5 (no Dropout layers)", n)
	}
}
