package head

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// randomize gives every parameter of h values in [-scale, scale], biases
// included, so that some ReLUs are off.
func randomize(t *testing.T, h *Head, rng *rand.Rand, scale float32) {
	t.Helper()
	var ps []Param
	for _, p := range h.Params() {
		v := make([]float32, p.Value.Shape().TotalSize())
		for i := range v {
			v[i] = scale * float32(2*rng.Float64()-1)
		}
		ps = append(ps, Param{Name: p.Name, Value: tensor.New(tensor.WithShape(p.Value.Shape()...), tensor.WithBacking(v))})
	}
	if err := h.SetParams(ps); err != nil {
		t.Fatal(err)
	}
}

// logProbs is Forward's log-probabilities of one feature vector.
func logProbs(t *testing.T, h *Head, x []float32) []float64 {
	t.Helper()
	p, err := h.Forward(tensor.New(tensor.WithShape(1, len(x)), tensor.WithBacking(append([]float32(nil), x...))))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, p.Shape()[1])
	for j, v := range p.Float32s() {
		out[j] = math.Log(float64(v))
	}
	return out
}

// TestLogitGradientMatchesForward checks the logits against Forward's
// probabilities and the gradient against central differences of Forward
// (the gorgonia graph): differences of logits are differences of
// log-probabilities, whatever the softmax's shift.
func TestLogitGradientMatchesForward(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hidden []int
	}{
		{"hidden layers", []int{12, 9, 7}},
		{"softmax regression", []int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const dim, classes = 10, 3
			h, err := New(Config{InputDim: dim, Hidden: tc.hidden, Classes: classes, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(7, 8))
			randomize(t, h, rng, 0.6)
			x := make([]float32, dim)
			for i := range x {
				x[i] = float32(2*rng.Float64() - 1)
			}
			lp := logProbs(t, h, x)
			const eps = 1e-2
			for c := range classes {
				logits, grad, err := h.LogitGradient(x, c)
				if err != nil {
					t.Fatal(err)
				}
				other := (c + 1) % classes
				if d, want := float64(logits[c]-logits[other]), lp[c]-lp[other]; math.Abs(d-want) > 1e-5 {
					t.Errorf("class %d: logit difference %v, log-probability difference %v", c, d, want)
				}
				_, gradOther, err := h.LogitGradient(x, other)
				if err != nil {
					t.Fatal(err)
				}
				largest := 0.0
				for i := range grad {
					largest = max(largest, math.Abs(float64(grad[i]-gradOther[i])))
				}
				if largest == 0 {
					t.Fatalf("class %d: zero gradient difference: the test cannot fail", c)
				}
				for i := range x {
					xp, xm := append([]float32(nil), x...), append([]float32(nil), x...)
					xp[i] += eps
					xm[i] -= eps
					p, m := logProbs(t, h, xp), logProbs(t, h, xm)
					fd := ((p[c] - p[other]) - (m[c] - m[other])) / (2 * eps)
					if got := float64(grad[i] - gradOther[i]); math.Abs(got-fd) > 2e-3*largest {
						t.Errorf("class %d vs %d, feature %d: gradient %v, central difference %v", c, other, i, got, fd)
					}
				}
			}
		})
	}
}

// TestLogitGradientOfSoftmaxRegression: without hidden layers the gradient
// of logit c is the kernel's column c, exactly.
func TestLogitGradientOfSoftmaxRegression(t *testing.T) {
	h, err := New(Config{InputDim: 5, Hidden: []int{}, Classes: 4, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	kernel := h.Params()[0].Value.Float32s()
	_, grad, err := h.LogitGradient([]float32{1, -2, 3, 0, 0.5}, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range grad {
		if g != kernel[i*4+2] {
			t.Errorf("feature %d: gradient %v, kernel %v", i, g, kernel[i*4+2])
		}
	}
}

func TestLogitGradientErrors(t *testing.T) {
	h, err := New(Config{InputDim: 4, Hidden: []int{3}, Classes: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		x     []float32
		class int
		want  string
	}{
		{make([]float32, 3), 0, "3 features, want 4"},
		{make([]float32, 4), 2, "class 2, want [0, 2)"},
		{make([]float32, 4), -1, "class -1, want [0, 2)"},
	} {
		if _, _, err := h.LogitGradient(tc.x, tc.class); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LogitGradient(%d features, class %d): %v, want an error with %q", len(tc.x), tc.class, err, tc.want)
		}
	}
}
