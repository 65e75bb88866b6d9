package head

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func TestSGDConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  SGDConfig
		want string // "" for valid
	}{
		{"zero means default", SGDConfig{}, ""},
		{"momentum", SGDConfig{LR: 0.001, Momentum: 0.9}, ""},
		{"nesterov and decay", SGDConfig{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4}, ""},
		{"lr zero", SGDConfig{Momentum: 0.9}, "learning rate 0 must be positive"},
		{"lr NaN", SGDConfig{LR: math.NaN()}, "learning rate NaN"},
		{"lr inf", SGDConfig{LR: math.Inf(1)}, "learning rate +Inf"},
		{"momentum one", SGDConfig{LR: 0.1, Momentum: 1}, "momentum 1 must be in [0, 1)"},
		{"momentum negative", SGDConfig{LR: 0.1, Momentum: -0.1}, "momentum -0.1"},
		{"nesterov without momentum", SGDConfig{LR: 0.1, Nesterov: true}, "Nesterov momentum needs a momentum > 0, got 0"},
		{"decay negative", SGDConfig{LR: 0.1, WeightDecay: -1}, "weight decay -1 must be finite and ≥ 0"},
		{"decay inf", SGDConfig{LR: 0.1, WeightDecay: math.Inf(1)}, "weight decay +Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSGD(tc.cfg, nil)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	o, _ := NewSGD(SGDConfig{}, nil)
	if want := (SGDConfig{LR: 0.01}); o.Config() != want {
		t.Errorf("zero config became %+v, want Keras' default %+v", o.Config(), want)
	}
}

// sgdRef is testdata/sgd_ref.json, written by sgd_ref.py.
type sgdRef struct {
	Dim, Classes, N, Batch, Steps int
	Hidden                        []int
	LRDrop                        int `json:"lr_drop"`
	Cases                         []struct {
		Name           string
		LR, Momentum   float64
		Nesterov       bool
		WeightDecay    float64   `json:"weight_decay"`
		LabelSmoothing float64   `json:"label_smoothing"`
		ClassWeight    []float32 `json:"class_weight"`
	}
}

// TestSGDMatchesPyTorch trains the head of sgd_ref.py with SGD (momentum,
// Nesterov momentum with weight decay, plain SGD with weight decay) and
// label smoothing, with and without class weights, and compares each
// step's loss, the first step's gradients, and the final weights and
// momentum buffers with torch.optim.SGD and F.cross_entropy(label_smoothing)
// computed in float64. The learning rate drops tenfold at step lr_drop, as
// a StepLR schedule would set it.
func TestSGDMatchesPyTorch(t *testing.T) {
	const (
		relLoss = 1e-6 // of each loss
		rel     = 1e-5 // of each tensor's max|ref| (about 3e-7 seen)
	)
	b, err := os.ReadFile(filepath.Join("testdata", "sgd_ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m sgdRef
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("sgd_ref.json: %v", err)
	}
	ref := readNPZ(t, filepath.Join("testdata", "sgd_ref.npz"))
	x := ref["x"]
	var y []int
	for _, v := range ref["y"].Float32s() {
		y = append(y, int(v))
	}
	if len(m.Cases) != 3 || x == nil || len(y) != m.N {
		t.Fatalf("sgd_ref inconsistent: %d cases, x %v, %d labels", len(m.Cases), x, len(y))
	}
	for _, c := range m.Cases {
		t.Run(c.Name, func(t *testing.T) {
			h, err := New(Config{InputDim: m.Dim, Hidden: m.Hidden, Classes: m.Classes})
			if err != nil {
				t.Fatal(err)
			}
			var init []Param
			for _, p := range h.Params() {
				init = append(init, Param{Name: p.Name, Value: ref["init/"+p.Name]})
			}
			if err := h.SetParams(init); err != nil {
				t.Fatal(err)
			}
			if err := h.SetLabelSmoothing(c.LabelSmoothing); err != nil {
				t.Fatal(err)
			}
			if err := h.SetClassWeights(c.ClassWeight); err != nil {
				t.Fatal(err)
			}
			opt, err := NewSGD(SGDConfig{LR: c.LR, Momentum: c.Momentum, Nesterov: c.Nesterov, WeightDecay: c.WeightDecay}, h.Params())
			if err != nil {
				t.Fatal(err)
			}
			losses := ref[c.Name+"/losses"].Float32s()
			for step := range m.Steps {
				if step == m.LRDrop {
					if err := opt.SetLR(c.LR * 0.1); err != nil {
						t.Fatal(err)
					}
				}
				lo := (step * m.Batch) % m.N
				loss, _, err := h.TrainStep(rows(x, lo, lo+m.Batch), y[lo:lo+m.Batch], opt)
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				if want := float64(losses[step]); !(math.Abs(float64(loss)-want) <= relLoss*want) {
					t.Errorf("step %d: loss %.7g, want %.7g", step, loss, want)
				}
				if step == 0 {
					compareTensors(t, "first step's gradient of", h.Grads(), ref, c.Name+"/grad0/", rel)
				}
			}
			compareTensors(t, "final", h.Params(), ref, c.Name+"/", rel)
			compareTensors(t, "final", opt.State(), ref, c.Name+"/", rel)
			if want := 2 * (len(m.Hidden) + 1); c.Momentum > 0 && len(opt.State()) != want {
				t.Errorf("%d momentum buffers, want %d", len(opt.State()), want)
			}
			if c.Momentum == 0 && len(opt.State()) != 0 {
				t.Errorf("SGD without momentum has state %v", opt.State())
			}
			if opt.Step() != int64(m.Steps) {
				t.Errorf("step %d, want %d", opt.Step(), m.Steps)
			}
		})
	}
}

// compareTensors compares each of ps with ref[prefix+name], within rel of
// the reference's largest magnitude.
func compareTensors(t *testing.T, what string, ps []Param, ref map[string]*tensor.Dense, prefix string, rel float64) {
	t.Helper()
	for _, p := range ps {
		want, ok := ref[prefix+p.Name]
		if !ok {
			t.Errorf("the reference has no %q", prefix+p.Name)
			continue
		}
		if d, ok := closeTensor(p.Value.Float32s(), want.Float32s(), rel); !ok {
			t.Errorf("%s %s: max |diff| %.3g > %.0e · max|ref| (%.3g)", what, p.Name, d, rel, maxAbs(want.Float32s()))
		}
	}
}

// TestSGDFormula checks three steps on one tensor against PyTorch's rule
// evaluated in float64, with a learning rate changed in between.
func TestSGDFormula(t *testing.T) {
	for _, cfg := range []SGDConfig{
		{LR: 0.1},
		{LR: 0.1, WeightDecay: 0.5},
		{LR: 0.1, Momentum: 0.9},
		{LR: 0.1, Momentum: 0.9, Nesterov: true},
		{LR: 0.1, Momentum: 0.5, Nesterov: true, WeightDecay: 0.25},
	} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			w := newF32(3)
			copy(w.Float32s(), []float32{1, -2, 0.5})
			o, err := NewSGD(cfg, []Param{{Name: "w", Value: w}})
			if err != nil {
				t.Fatal(err)
			}
			want, buf := []float64{1, -2, 0.5}, make([]float64, 3)
			lr := cfg.LR
			for step, g := range [][]float32{{0.5, 1, -3}, {-0.25, 2, 1}, {1, 1, 1}} {
				if step == 2 {
					lr = 0.03
					if err := o.SetLR(lr); err != nil {
						t.Fatal(err)
					}
				}
				gt := newF32(3)
				copy(gt.Float32s(), g)
				if err := o.Update([]*tensor.Dense{gt}); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					d := float64(g[i]) + cfg.WeightDecay*want[i]
					if cfg.Momentum > 0 {
						buf[i] = cfg.Momentum*buf[i] + d
						if cfg.Nesterov {
							d += cfg.Momentum * buf[i]
						} else {
							d = buf[i]
						}
					}
					want[i] -= lr * d
				}
				for i, v := range w.Float32s() {
					if math.Abs(float64(v)-want[i]) > 1e-6*math.Max(1, math.Abs(want[i])) {
						t.Errorf("step %d: w[%d] = %.8g, want %.8g", step, i, v, want[i])
					}
				}
			}
		})
	}
}

func TestSGDStateErrors(t *testing.T) {
	w := newF32(2, 3)
	o, err := NewSGD(SGDConfig{LR: 0.1, Momentum: 0.9}, []Param{{Name: "w", Value: w}})
	if err != nil {
		t.Fatal(err)
	}
	if s := o.State(); len(s) != 1 || s[0].Name != "sgd_momentum/w" {
		t.Fatalf("state %v, want one tensor sgd_momentum/w", s)
	}
	for _, tc := range []struct {
		name  string
		step  int64
		state []Param
		want  string
	}{
		{"negative step", -1, []Param{{Name: "sgd_momentum/w", Value: newF32(2, 3)}}, "step -1 is negative"},
		{"missing", 1, nil, `tensor "sgd_momentum/w" missing`},
		{"adam's", 1, []Param{{Name: "adam_m/w", Value: newF32(2, 3)}}, `unknown tensor "adam_m/w"`},
		{"bad shape", 1, []Param{{Name: "sgd_momentum/w", Value: newF32(3, 2)}}, "want shape (2, 3), got (3, 2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := o.SetState(tc.step, tc.state); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if err := o.Update([]*tensor.Dense{newF32(6)}); err == nil || !strings.Contains(err.Error(), `sgd: update: gradient of "w": want float32 (2, 3)`) {
		t.Errorf("Update with a (6) gradient: %v", err)
	}
	plain, _ := NewSGD(SGDConfig{LR: 0.1}, []Param{{Name: "w", Value: w}})
	if err := plain.SetState(4, nil); err != nil || plain.Step() != 4 {
		t.Errorf("SetState(4, nil) without momentum: %v, step %d", err, plain.Step())
	}
	if err := plain.SetState(4, []Param{{Name: "sgd_momentum/w", Value: newF32(2, 3)}}); err == nil {
		t.Errorf("SGD without momentum accepted momentum buffers")
	}
}

// TestSGDKernelBits holds the vectorized kernel against the formula in Go
// (applyGo), bit for bit, as TestAdamKernelBits does for Adam's.
func TestSGDKernelBits(t *testing.T) {
	value := kernelValues(rand.New(rand.NewPCG(6, 6)))
	for _, n := range []int{1, 7, 8, 9, 31, 1000, 4099} {
		for _, k := range []sgdKernel{
			{lr: 0.01},
			{lr: 1e-3, mu: 0.9},
			{lr: 1e-3, mu: 0.9, nesterov: true, wd: 1e-4},
			{lr: 0.37, wd: 0.25},
		} {
			w, g, b := make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range n {
				w[i], g[i], b[i] = value(), value(), value()
			}
			if k.mu == 0 {
				b = nil
			}
			rw, rb := slices.Clone(w), slices.Clone(b)
			k.applyGo(rw, g, rb)
			k.apply(w, g, b)
			for i := range n {
				same := math.Float32bits(w[i]) == math.Float32bits(rw[i])
				if b != nil {
					same = same && math.Float32bits(b[i]) == math.Float32bits(rb[i])
				}
				if !same {
					t.Fatalf("n %d, %+v, element %d: got w %v, want %v", n, k, i, w[i], rw[i])
				}
			}
		}
	}
}
