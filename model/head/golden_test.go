package head

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"codeberg.org/sbinet/npyio/npz"
	"gorgonia.org/tensor"

	"gotransfer/internal/tensorio"
)

// goldenMeta is head_ref.py's meta.json.
type goldenMeta struct {
	Dim     int     `json:"dim"`
	Hidden  []int   `json:"hidden"`
	Classes int     `json:"classes"`
	N       int     `json:"n"`
	Batch   int     `json:"batch"`
	Steps   int     `json:"steps"`
	LR      float64 `json:"lr"`
	Beta1   float64 `json:"beta1"`
	Beta2   float64 `json:"beta2"`
	Eps     float64 `json:"eps"`
}

type golden struct {
	meta   goldenMeta
	x      *tensor.Dense // (N, D)
	y      []int
	init   map[string]*tensor.Dense
	final  map[string]*tensor.Dense
	losses []float32
}

func readNPZ(t *testing.T, path string) map[string]*tensor.Dense {
	t.Helper()
	a, err := tensorio.OpenNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	m := make(map[string]*tensor.Dense)
	for _, n := range a.Names() {
		if m[n], err = a.Read(n); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// loadGolden reads testdata/head_d64, copied from /work/shared/golden/head_d64
// (made by /work/shared/golden/head_ref.py with its defaults).
func loadGolden(t *testing.T) *golden {
	t.Helper()
	dir := filepath.Join("testdata", "head_d64")
	g := &golden{}
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g.meta); err != nil {
		t.Fatalf("meta.json: %v", err)
	}
	da, err := tensorio.OpenNPZ(filepath.Join(dir, "data.npz"))
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	if g.x, err = da.Read("x"); err != nil {
		t.Fatal(err)
	}
	// The labels are int64, which tensorio (float only) does not read.
	zr, err := npz.Open(filepath.Join(dir, "data.npz"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var y64 []int64
	if err := zr.Read("y.npy", &y64); err != nil {
		t.Fatal(err)
	}
	for _, v := range y64 {
		g.y = append(g.y, int(v))
	}
	g.init = readNPZ(t, filepath.Join(dir, "init.npz"))
	g.final = readNPZ(t, filepath.Join(dir, "final.npz"))
	l, err := tensorio.ReadNPYFile(filepath.Join(dir, "losses.npy"))
	if err != nil {
		t.Fatal(err)
	}
	g.losses = l.Float32s()
	if g.x == nil || len(g.y) != g.meta.N || len(g.losses) != g.meta.Steps {
		t.Fatalf("golden data inconsistent: x %v, %d labels, %d losses, meta %+v", g.x, len(g.y), len(g.losses), g.meta)
	}
	return g
}

// rows returns a copy of rows [lo, hi) of the matrix x.
func rows(x *tensor.Dense, lo, hi int) *tensor.Dense {
	d := x.Shape()[1]
	return tensor.New(tensor.WithShape(hi-lo, d), tensor.WithBacking(slices.Clone(x.Float32s()[lo*d:hi*d])))
}

// maxAbs returns max |v|.
func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

// closeTensor reports the largest |got−want| and whether it is within
// rel·max|want| (the per-tensor relative measure of the shared README).
func closeTensor(got, want []float32, rel float64) (float64, bool) {
	if len(got) != len(want) {
		return math.Inf(1), false
	}
	worst := 0.0
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			return d, false
		}
		worst = math.Max(worst, d)
	}
	return worst, worst <= rel*maxAbs(want)
}

func TestGoldenAdamTrajectory(t *testing.T) {
	const rel = 1e-4
	g := loadGolden(t)
	m := g.meta
	h, err := New(Config{InputDim: m.Dim, Hidden: m.Hidden, Classes: m.Classes, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var init []Param
	var names []string
	for n, v := range g.init {
		init = append(init, Param{Name: n, Value: v})
		names = append(names, n)
	}
	slices.Sort(names)
	var ours []string
	for _, p := range h.Params() {
		ours = append(ours, p.Name)
	}
	slices.Sort(ours)
	if !slices.Equal(ours, names) {
		t.Fatalf("parameter names: head has %v, init.npz has %v", ours, names)
	}
	if err := h.SetParams(init); err != nil {
		t.Fatal(err)
	}
	opt, err := NewAdam(AdamConfig{LR: m.LR, Beta1: m.Beta1, Beta2: m.Beta2, Epsilon: m.Eps}, h.Params())
	if err != nil {
		t.Fatal(err)
	}
	worstLoss := 0.0
	for step := 0; step < m.Steps; step++ {
		lo := (step * m.Batch) % m.N
		loss, _, err := h.TrainStep(rows(g.x, lo, lo+m.Batch), g.y[lo:lo+m.Batch], opt)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		want := float64(g.losses[step])
		d := math.Abs(float64(loss) - want)
		worstLoss = max(worstLoss, d/math.Abs(want))
		if !(d <= rel*math.Abs(want)) {
			t.Errorf("step %d: loss %.7g, want %.7g (|diff| %.3g > %.0e relative)", step, loss, want, d, rel)
		}
	}
	if opt.Step() != int64(m.Steps) {
		t.Errorf("adam step %d, want %d", opt.Step(), m.Steps)
	}
	worst := 0.0
	check := func(ps []Param) {
		for _, p := range ps {
			want, ok := g.final[p.Name]
			if !ok {
				t.Errorf("final.npz has no %q", p.Name)
				continue
			}
			if !want.Shape().Eq(p.Value.Shape()) {
				t.Errorf("%s: shape %v, want %v", p.Name, p.Value.Shape(), want.Shape())
				continue
			}
			d, ok := closeTensor(p.Value.Float32s(), want.Float32s(), rel)
			if !ok {
				t.Errorf("%s: max |diff| %.3g > %.0e · max|ref| (%.3g)", p.Name, d, rel, maxAbs(want.Float32s()))
			}
			worst = max(worst, d/maxAbs(want.Float32s()))
		}
	}
	check(h.Params())
	check(opt.State())
	t.Logf("worst loss error %.3g, worst tensor error %.3g (relative to max|ref|)", worstLoss, worst)
	if n := len(h.Params()) + len(opt.State()); n != len(g.final) {
		t.Errorf("compared %d tensors, final.npz has %d", n, len(g.final))
	}
}
