package onnx

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"gotransfer/internal/ortrun"
	"gotransfer/internal/tensorio"
	"gotransfer/model/resnet"
)

// within fails unless got and want agree to tol of want's largest
// magnitude.
func within(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var peak, worst float64
	for i := range want {
		peak = max(peak, math.Abs(float64(want[i])))
		worst = max(worst, math.Abs(float64(got[i]-want[i])))
	}
	if !(worst <= tol*peak) {
		t.Fatalf("%s: largest difference %g, %g of the largest value %g (bound %g)", what, worst, worst/peak, peak, tol)
	}
}

// TestGoldens exports the narrow golden networks, Keras' (v1) and
// torchvision's (v1.5: the stride elsewhere, no convolution biases), with
// their predictions layers and no preprocessing, runs them with ONNX
// Runtime on the goldens' inputs, and holds their features and
// probabilities against the float64 references, at the bound the CPU
// engine meets.
func TestGoldens(t *testing.T) {
	ortrun.Require(t)
	for _, tc := range []struct{ dir, weights string }{
		{"resnet50_w8_s64", "weights.npz"},
		{"torchvision_w8_s64", "weights.pth"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			testGolden(t, filepath.Join("..", "resnet", "testdata", tc.dir), tc.weights)
		})
	}
}

func testGolden(t *testing.T, golden, weights string) {
	w, err := resnet.Load(filepath.Join(golden, weights))
	if err != nil {
		t.Fatal(err)
	}
	in, err := tensorio.ReadNPYFile(filepath.Join(golden, "inputs.npy"))
	if err != nil {
		t.Fatal(err)
	}
	s := in.Shape()
	path := filepath.Join(t.TempDir(), "golden.onnx")
	none := Preprocess{Perm: [3]int{0, 1, 2}, Mul: [3]float32{1, 1, 1}}
	if err := WriteFile(path, Model{Backbone: w, Preprocess: none, Height: s[1], Width: s[2]}); err != nil {
		t.Fatal(err)
	}
	out, err := ortrun.Run(path, in.Float32s(), s[0], s[1], s[2])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"features", "probs"} {
		want, err := tensorio.ReadNPYFile(filepath.Join(golden, name+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		got := out[name]
		if name == "probs" {
			got = out["probabilities"]
		}
		within(t, name, got, want.Float32s(), 1e-4)
	}
}

// TestPreprocessing exports with each preprocessing and feeds raw pixels:
// the features must be those of the preprocessed pixels without it.
func TestPreprocessing(t *testing.T) {
	ortrun.Require(t)
	w, err := resnet.Random(8, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	const n, h, wd = 2, 40, 48
	raw := make([]float32, n*h*wd*3)
	for i := range raw {
		raw[i] = float32((i * 37) % 256)
	}
	for name, p := range map[string]Preprocess{
		"caffe": {Perm: [3]int{2, 1, 0}, Mul: [3]float32{1, 1, 1}, Add: [3]float32{-123.68, -116.779, -103.939}},
		"torch": {Perm: [3]int{0, 1, 2}, Mul: [3]float32{0.017, 0.0175, 0.0174}, Add: [3]float32{-2.1, -2.03, -1.8}},
	} {
		pre := make([]float32, len(raw))
		for px := 0; px < len(raw); px += 3 {
			for c := range 3 {
				pre[px+p.Perm[c]] = raw[px+c]*p.Mul[c] + p.Add[c]
			}
		}
		none := Preprocess{Perm: [3]int{0, 1, 2}, Mul: [3]float32{1, 1, 1}}
		dir := t.TempDir()
		with, without := filepath.Join(dir, "with.onnx"), filepath.Join(dir, "without.onnx")
		if err := WriteFile(with, Model{Backbone: w, Preprocess: p}); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(without, Model{Backbone: w, Preprocess: none}); err != nil {
			t.Fatal(err)
		}
		a, err := ortrun.Run(with, raw, n, h, wd)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ortrun.Run(without, pre, n, h, wd)
		if err != nil {
			t.Fatal(err)
		}
		within(t, name, a["features"], b["features"], 1e-6)
		if _, ok := a["probabilities"]; ok {
			t.Errorf("%s: probabilities from weights without a predictions layer", name)
		}
	}
}

// TestRefusesABadHead: a head that does not fit the backbone, or itself,
// is an error, not a model ONNX Runtime refuses later.
func TestRefusesABadHead(t *testing.T) {
	w, err := resnet.Random(8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	dim := w.Arch.FeatureDim()
	dense := func(in, out int) Dense {
		return Dense{Kernel: tensor.New(tensor.WithShape(in, out), tensor.WithBacking(make([]float32, in*out))),
			Bias: tensor.New(tensor.WithShape(out), tensor.WithBacking(make([]float32, out)))}
	}
	for _, tc := range []struct {
		name    string
		head    []Dense
		classes []string
		want    string
	}{
		{"fits", []Dense{dense(dim, 4), dense(4, 2)}, []string{"a", "b"}, ""},
		{"input width", []Dense{dense(dim+1, 2)}, nil, "do not take"},
		{"broken chain", []Dense{dense(dim, 4), dense(3, 2)}, nil, "dense layer 1"},
		{"no bias", []Dense{{Kernel: dense(dim, 2).Kernel}}, nil, "bias missing"},
		{"class names", []Dense{dense(dim, 2)}, []string{"a", "b", "c"}, "3 class names for 2 outputs"},
	} {
		_, err := Marshal(Model{Backbone: w, Head: tc.head, Classes: tc.classes})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
