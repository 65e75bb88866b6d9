package resnet

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"gotransfer/internal/tensorio"
)

// goldens are narrow Keras-layout ResNet50s with reference activations
// computed in float64 (see testdata/README.md).
var goldens = []string{"resnet50_w8_s64", "resnet50_w16_s112"}

type goldenMeta struct {
	Width              int `json:"width"`
	Classes            int `json:"classes"`
	ParamsTotal        int `json:"params_total"`
	ParamsTrainable    int `json:"params_trainable"`
	ParamsNonTrainable int `json:"params_non_trainable"`
}

func readMeta(t *testing.T, dir string) goldenMeta {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m goldenMeta
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func readNPY(t *testing.T, path string) *tensor.Dense {
	t.Helper()
	x, err := tensorio.ReadNPYFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// relDiff is max|got-want| / max|want|; a NaN counts as infinitely far.
func relDiff(t testing.TB, what string, got, want *tensor.Dense) float64 {
	t.Helper()
	if !got.Shape().Eq(want.Shape()) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
	}
	g, w := got.Data().([]float32), want.Data().([]float32)
	var scale, worst float64
	for i := range w {
		scale = math.Max(scale, math.Abs(float64(w[i])))
		d := math.Abs(float64(g[i] - w[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		worst = math.Max(worst, d)
	}
	if scale == 0 {
		return worst
	}
	return worst / scale
}

// assertNear fails the test when got is further than tol x max|want| from
// want anywhere, and returns the relative difference.
func assertNear(t testing.TB, what string, got, want *tensor.Dense, tol float64) float64 {
	t.Helper()
	r := relDiff(t, what, got, want)
	if !(r <= tol) {
		t.Errorf("%s: max |diff| / max|ref| = %.3g exceeds %.0e", what, r, tol)
	} else {
		t.Logf("%s: max |diff| / max|ref| = %.2g", what, r)
	}
	return r
}

// tapper is an engine that reports intermediate activations.
type tapper interface {
	FeaturesWithTaps(x *tensor.Dense, tap Tap) (*tensor.Dense, error)
}

// goldenResult is what checkGolden found: the worst relative differences,
// and the engine's features.
type goldenResult struct {
	acts, features, probs float64
	feats                 *tensor.Dense
}

// checkGolden runs a golden folder's inputs through e and checks every
// tapped activation (act_<layer>.npy), the features and the probabilities
// of w's top within 1e-4 of each reference's largest magnitude.
func checkGolden(t *testing.T, dir string, w *Weights, e tapper) goldenResult {
	t.Helper()
	x := readNPY(t, filepath.Join(dir, "inputs.npy"))
	acts := map[string]*tensor.Dense{}
	feats, err := e.FeaturesWithTaps(x, func(name string, a *tensor.Dense) { acts[name] = a })
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "act_*.npy"))
	if len(files) == 0 {
		t.Fatal("no act_*.npy references")
	}
	res := goldenResult{feats: feats}
	for _, f := range files {
		layer := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "act_"), ".npy")
		got, ok := acts[layer]
		if !ok {
			t.Errorf("no activation tapped for %s", layer)
			continue
		}
		res.acts = math.Max(res.acts, assertNear(t, layer, got, readNPY(t, f), 1e-4))
	}
	res.features = assertNear(t, "features", feats, readNPY(t, filepath.Join(dir, "features.npy")), 1e-4)
	probs, err := w.Classify(feats)
	if err != nil {
		t.Fatal(err)
	}
	res.probs = assertNear(t, "probs", probs, readNPY(t, filepath.Join(dir, "probs.npy")), 1e-4)
	return res
}

func TestKerasParity(t *testing.T) {
	for _, name := range goldens {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			meta := readMeta(t, dir)
			w, err := Load(filepath.Join(dir, "weights.npz"))
			if err != nil {
				t.Fatal(err)
			}
			if w.Arch.Width != meta.Width || w.Classes != meta.Classes {
				t.Fatalf("width %d classes %d, want %d %d", w.Arch.Width, w.Classes, meta.Width, meta.Classes)
			}
			e, err := NewCPU(w)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, dir, w, e)
		})
	}
}

func TestParamCounts(t *testing.T) {
	for _, name := range goldens {
		dir := filepath.Join("testdata", name)
		meta := readMeta(t, dir)
		w, err := Load(filepath.Join(dir, "weights.npz"))
		if err != nil {
			t.Fatal(err)
		}
		total, tr, non := w.ParamCounts()
		if total != meta.ParamsTotal || tr != meta.ParamsTrainable || non != meta.ParamsNonTrainable {
			t.Errorf("%s: counts %d/%d/%d, want %d/%d/%d", name, total, tr, non, meta.ParamsTotal, meta.ParamsTrainable, meta.ParamsNonTrainable)
		}
	}
	// The real network, with the ImageNet top, as Keras' model.summary() reports it.
	full, err := Random(64, 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	total, tr, non := full.ParamCounts()
	if total != 25_636_712 || tr != 25_583_592 || non != 53_120 {
		t.Errorf("ResNet50: counts %d/%d/%d, want 25636712/25583592/53120", total, tr, non)
	}
}

// TestBatchIndependence checks that an image's features do not depend on
// the rest of its batch or on buffers left by a larger earlier batch.
func TestBatchIndependence(t *testing.T) {
	dir := filepath.Join("testdata", "resnet50_w8_s64")
	w, err := Load(filepath.Join(dir, "weights.npz"))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := NewCPU(w)
	x := readNPY(t, filepath.Join(dir, "inputs.npy"))
	all, err := e.Features(x)
	if err != nil {
		t.Fatal(err)
	}
	per := x.Shape()[1] * x.Shape()[2] * 3
	one := append([]float32(nil), x.Data().([]float32)[2*per:3*per]...)
	single, err := e.Features(tensor.New(tensor.WithShape(1, x.Shape()[1], x.Shape()[2], 3), tensor.WithBacking(one)))
	if err != nil {
		t.Fatal(err)
	}
	f := all.Shape()[1]
	a, s := all.Data().([]float32)[2*f:3*f], single.Data().([]float32)
	// OpenBLAS blocks a product by its size, so sums run in another order
	// for another batch size: equal to float32 rounding, not bit for bit.
	var scale float64
	for _, v := range a {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for j := range s {
		if math.Abs(float64(a[j]-s[j])) > 1e-4*scale {
			t.Fatalf("feature %d: alone %v, in batch %v", j, s[j], a[j])
		}
	}
}

func TestRandomWeightsDeterministic(t *testing.T) {
	a, err := Random(8, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Random(8, 0, 7)
	c, _ := Random(8, 0, 8)
	if a.Digest() != b.Digest() {
		t.Fatal("same seed gave different weights")
	}
	if a.Digest() == c.Digest() {
		t.Fatal("different seeds gave the same weights")
	}
	// Activations keep a sane scale through all blocks.
	e, _ := NewCPU(a)
	x := readNPY(t, filepath.Join("testdata", "resnet50_w8_s64", "inputs.npy"))
	feats, err := e.Features(x)
	if err != nil {
		t.Fatal(err)
	}
	var m float64
	for _, v := range feats.Data().([]float32) {
		m = math.Max(m, math.Abs(float64(v)))
	}
	if m < 0.01 || m > 100 {
		t.Fatalf("random-weight features peak at %v: want a sane scale", m)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	src, err := Load(filepath.Join("testdata", "resnet50_w8_s64", "weights.npz"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, edit func(m map[string]*tensor.Dense)) string {
		m := map[string]*tensor.Dense{}
		for _, n := range src.Names() {
			m[n] = src.Tensor(n).Clone().(*tensor.Dense)
		}
		edit(m)
		p := filepath.Join(dir, name)
		if err := tensorio.WriteNPZ(p, m); err != nil {
			t.Fatal(err)
		}
		return p
	}
	raw, _ := os.ReadFile(filepath.Join("testdata", "resnet50_w8_s64", "weights.npz"))
	trunc := filepath.Join(dir, "trunc.npz")
	os.WriteFile(trunc, raw[:len(raw)*2/3], 0o644)
	notnpz := filepath.Join(dir, "cat.npz")
	os.WriteFile(notnpz, []byte("this is not a zip"), 0o644)
	empty := filepath.Join(dir, "empty.npz")
	os.WriteFile(empty, nil, 0o644)
	zipped := filepath.Join(dir, "zipped.npz")
	os.WriteFile(zipped, []byte("PK\x03\x04 and then nothing a zip reader can use"), 0o644)

	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"missing file", filepath.Join(dir, "nope.npz"), []string{"nope.npz", "no such file"}},
		{"not a weights file", notnpz, []string{"cat.npz", "not a weights file (Keras .h5, PyTorch .pth or the project's .npz)", `starts with "this"`}},
		{"empty file", empty, []string{"empty.npz", "not a weights file", `starts with ""`}},
		{"a folder", dir, []string{dir, "a folder, want a weights file"}},
		{"a zip, not an npz", zipped, []string{"zipped.npz", "not a valid .npz"}},
		{"truncated", trunc, []string{"trunc.npz"}},
		{"missing tensor", write("missing.npz", func(m map[string]*tensor.Dense) { delete(m, "conv3_block2_2_bn/gamma") }),
			[]string{"missing.npz", `"conv3_block2_2_bn/gamma"`, "missing"}},
		{"wrong shape", write("shape.npz", func(m map[string]*tensor.Dense) {
			m["conv4_block1_1_conv/kernel"] = tensor.New(tensor.WithShape(1, 1, 64, 5), tensor.WithBacking(make([]float32, 320)))
		}), []string{"shape.npz", `"conv4_block1_1_conv/kernel"`, "(1, 1, 64, 32)", "(1, 1, 64, 5)"}},
		{"not finite", write("nan.npz", func(m map[string]*tensor.Dense) {
			m["conv2_block1_3_bn/beta"].Data().([]float32)[3] = float32(math.NaN())
		}), []string{"nan.npz", `"conv2_block1_3_bn/beta"`, "finite"}},
		{"infinite", write("inf.npz", func(m map[string]*tensor.Dense) {
			m["conv4_block1_1_conv/kernel"].Data().([]float32)[7] = float32(math.Inf(-1))
		}), []string{"inf.npz", `"conv4_block1_1_conv/kernel"`, "element 7 is -Inf", "finite"}},
		{"negative NaN with a payload", write("nan2.npz", func(m map[string]*tensor.Dense) {
			m["conv1_conv/kernel"].Data().([]float32)[0] = math.Float32frombits(0xffc00123)
		}), []string{"nan2.npz", `"conv1_conv/kernel"`, "finite"}},
		{"half a top", write("top.npz", func(m map[string]*tensor.Dense) { delete(m, "predictions/bias") }), []string{"top.npz", "predictions"}},
		{"not resnet", write("other.npz", func(m map[string]*tensor.Dense) { delete(m, "conv1_conv/kernel") }), []string{"other.npz", "not a ResNet50"}},
		// A ResNet101's fourth stage has 23 blocks: not silently cut to 6.
		{"deeper resnet", write("deeper.npz", func(m map[string]*tensor.Dense) {
			for _, p := range []string{"1_conv/kernel", "1_conv/bias", "1_bn/gamma"} {
				m["conv4_block7_"+p] = m["conv4_block6_"+p].Clone().(*tensor.Dense)
			}
		}), []string{"deeper.npz", "3 tensors a ResNet50 does not have", `"conv4_block7_1_bn/gamma"`, "not ResNet50 weights"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestInputErrors(t *testing.T) {
	w, _ := Random(8, 0, 1)
	e, _ := NewCPU(w)
	for _, x := range []*tensor.Dense{
		tensor.New(tensor.WithShape(1, 64, 64), tensor.WithBacking(make([]float32, 64*64))),
		tensor.New(tensor.WithShape(1, 64, 64, 1), tensor.WithBacking(make([]float32, 64*64))),
		tensor.New(tensor.WithShape(1, 16, 16, 3), tensor.WithBacking(make([]float32, 16*16*3))),
		tensor.New(tensor.WithShape(1, 64, 64, 3), tensor.WithBacking(make([]float64, 64*64*3))),
	} {
		if _, err := e.Features(x); err == nil {
			t.Errorf("input %v %v accepted", x.Shape(), x.Dtype())
		}
	}
	if _, err := w.Classify(tensor.New(tensor.WithShape(1, 256), tensor.WithBacking(make([]float32, 256)))); err == nil {
		t.Error("Classify without a top succeeded")
	}
}

func TestLayers(t *testing.T) {
	w, err := Random(64, 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	ls := w.Arch.Layers(224, 224, 1000)
	if len(ls) != 177 {
		t.Errorf("%d layers with the top, want Keras' 177", len(ls))
	}
	var total, non int
	for _, l := range ls {
		total += l.Params
		non += l.NonTrainable
	}
	if total != 25_636_712 || non != 53_120 {
		t.Errorf("summary counts %d total / %d non-trainable, want 25,636,712 / 53,120", total, non)
	}
	last := ls[len(ls)-3]
	if last.Name != "conv5_block3_out" || !tensor.Shape(last.Shape).Eq(tensor.Shape{7, 7, 2048}) {
		t.Errorf("last conv layer %s %v, want conv5_block3_out (7, 7, 2048)", last.Name, last.Shape)
	}
	if n := len(w.Arch.Layers(224, 224, 0)); n != 175 {
		t.Errorf("%d layers without the top, want 175", n)
	}
}

func TestNewDevice(t *testing.T) {
	w, _ := Random(8, 0, 1)
	if b, err := New(w, "cpu"); err != nil || b.FeatureDim() != 256 {
		t.Fatalf("cpu: %v, %v", b, err)
	}
	if _, err := New(w, "tpu"); err == nil || !strings.Contains(err.Error(), `"tpu"`) {
		t.Fatalf("unknown device: %v", err)
	}
}

// TestDigestIsPinned: feature caches and checkpoints name weights by their
// digest, so its definition may not change (sha256 over the tensors in name
// order: name, NUL, shape as uint64s, values as "<f4").
func TestDigestIsPinned(t *testing.T) {
	w, err := Random(8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	const want = "5fbe51a2222f253653e32724f979890e849b9b269af2b997bb99b9600dc7986f"
	if got := w.Digest(); got != want {
		t.Fatalf("Digest of Random(8, 0, 1) = %s, want %s", got, want)
	}
}

// TestExtremeFiniteWeightsLoad: the finiteness check passes the largest and
// the smallest (denormal) float32 values, of either sign.
func TestExtremeFiniteWeightsLoad(t *testing.T) {
	w, err := Random(8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*tensor.Dense{}
	for _, n := range w.Names() {
		m[n] = w.Tensor(n)
	}
	k := m["conv1_conv/kernel"].Data().([]float32)
	k[0], k[1], k[2], k[3] = math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32
	if _, err := FromTensors("extreme", m); err != nil {
		t.Fatal(err)
	}
}
