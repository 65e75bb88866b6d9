package resnet

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// torchGolden is a narrow torchvision ResNet50 with float64 references
// made by scripts/make_torchvision_golden.py.
var torchGolden = filepath.Join("testdata", "torchvision_w8_s64")

func TestTorchvisionParity(t *testing.T) {
	var meta struct {
		Width        int     `json:"width"`
		Classes      int     `json:"classes"`
		BNEpsilon    float64 `json:"bn_epsilon"`
		Preprocess   string  `json:"preprocess"`
		Total        int     `json:"params_total"`
		Trainable    int     `json:"params_trainable"`
		NonTrainable int     `json:"params_non_trainable"`
	}
	raw, err := os.ReadFile(filepath.Join(torchGolden, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}

	w, err := Load(filepath.Join(torchGolden, "weights.pth"))
	if err != nil {
		t.Fatal(err)
	}
	if w.Arch.Variant != Torchvision || w.Arch.Width != meta.Width || w.Classes != meta.Classes {
		t.Fatalf("variant %s width %d classes %d, want torchvision %d %d", w.Arch.Variant, w.Arch.Width, w.Classes, meta.Width, meta.Classes)
	}
	if w.Arch.Epsilon != meta.BNEpsilon || w.Arch.Variant.Preprocess() != meta.Preprocess {
		t.Errorf("epsilon %v preprocess %q, want %v %q", w.Arch.Epsilon, w.Arch.Variant.Preprocess(), meta.BNEpsilon, meta.Preprocess)
	}
	if total, tr, non := w.ParamCounts(); total != meta.Total || tr != meta.Trainable || non != meta.NonTrainable {
		t.Errorf("counts %d/%d/%d, want torch's %d/%d/%d", total, tr, non, meta.Total, meta.Trainable, meta.NonTrainable)
	}
	for _, n := range w.Names() {
		if strings.HasSuffix(n, "_conv/bias") {
			t.Errorf("torchvision weights hold %s", n)
		}
	}

	e, err := NewCPU(w)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, torchGolden, w, e)
}

// TestTorchvisionNPZ checks that the .npz Save writes of .pth weights
// loads as the same network: same variant, same digest, same tensors.
func TestTorchvisionNPZ(t *testing.T) {
	w, err := Load(filepath.Join(torchGolden, "weights.pth"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tv.npz")
	if err := w.Save(p); err != nil {
		t.Fatal(err)
	}
	v, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if v.Arch.Variant != Torchvision {
		t.Fatalf("npz loads as %s", v.Arch.Variant)
	}
	if v.Digest() != w.Digest() {
		t.Fatal("npz and pth digests differ")
	}
	sameTensors(t, w, v)
	// The marker is what makes it torchvision: without it the tensors are
	// not a valid Keras set (no convolution biases).
	k, _ := Random(8, 0, 1)
	if k.Digest() == w.Digest() {
		t.Fatal("digests collide")
	}
}

func sameTensors(t *testing.T, a, b *Weights) {
	t.Helper()
	an, bn := a.Names(), b.Names()
	if strings.Join(an, ",") != strings.Join(bn, ",") {
		t.Fatalf("names differ:\n%v\n%v", an, bn)
	}
	for _, n := range an {
		x, y := a.Tensor(n), b.Tensor(n)
		if !x.Shape().Eq(y.Shape()) {
			t.Fatalf("%s: shape %v vs %v", n, x.Shape(), y.Shape())
		}
		xd, yd := x.Data().([]float32), y.Data().([]float32)
		for i := range xd {
			if xd[i] != yd[i] {
				t.Fatalf("%s[%d]: %v vs %v", n, i, xd[i], yd[i])
			}
		}
	}
}

// python returns /usr/bin/python3 (or python3 on the PATH) if it imports
// the modules, else skips the test saying what is missing.
func python(t testing.TB, modules ...string) string {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if py, err = exec.LookPath("python3"); err != nil {
			t.Skip("python3 not found: skipping a test of the Python scripts")
		}
	}
	code := "import " + strings.Join(modules, ", ")
	if out, err := exec.Command(py, "-c", code).CombinedOutput(); err != nil {
		t.Skipf("python3 cannot %q (%v: %s): skipping; on Debian, apt-get install python3-numpy python3-h5py python3-torch", code, err, strings.TrimSpace(string(out)))
	}
	return py
}

// TestTorchvisionExportScript checks the fallback exporter against the Go
// reader: the .npz it writes loads as the same weights.
func TestTorchvisionExportScript(t *testing.T) {
	py := python(t, "numpy", "torch")
	out := filepath.Join(t.TempDir(), "tv.npz")
	cmd := exec.Command(py, filepath.Join("..", "..", "scripts", "export_torchvision.py"), filepath.Join(torchGolden, "weights.pth"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export_torchvision.py: %v\n%s", err, b)
	}
	if b := sameAsGolden(t, out); b.Arch.Variant != Torchvision {
		t.Fatalf("exported npz: variant %s", b.Arch.Variant)
	}
}

// sameAsGolden loads path and requires the golden .pth's weights, by digest.
func sameAsGolden(t *testing.T, path string) *Weights {
	t.Helper()
	a, err := Load(filepath.Join(torchGolden, "weights.pth"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest() != b.Digest() {
		t.Fatalf("%s loads as other weights than the golden .pth", path)
	}
	return b
}

// TestTorchvisionLegacyFormat re-saves the golden state dict in the
// format of PyTorch < 1.6 and checks it reads identically.
func TestTorchvisionLegacyFormat(t *testing.T) {
	py := python(t, "torch")
	out := filepath.Join(t.TempDir(), "legacy.pth")
	code := `import sys, torch
sd = torch.load(sys.argv[1], map_location="cpu")
torch.save(sd, sys.argv[2], _use_new_zipfile_serialization=False)`
	if b, err := exec.Command(py, "-c", code, filepath.Join(torchGolden, "weights.pth"), out).CombinedOutput(); err != nil {
		t.Fatalf("writing a legacy .pth: %v\n%s", err, b)
	}
	sameAsGolden(t, out)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(t.TempDir(), "legacy_trunc.pth")
	os.WriteFile(trunc, raw[:len(raw)*2/3], 0o644)
	if _, err := Load(trunc); err == nil || !strings.Contains(err.Error(), "legacy_trunc.pth") || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated legacy file: %v", err)
	}
}

func TestTorchvisionArch(t *testing.T) {
	a, err := NewArch(Torchvision, 64)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := NewArch(Keras, 64)
	for i, b := range a.Blocks {
		kb := k.Blocks[i]
		// v1.5 moves a stage's stride from the first 1x1 to the 3x3; the
		// shortcut keeps it.
		if b.Convs[0].Stride != 1 || b.Convs[1].Stride != kb.Convs[0].Stride || kb.Convs[1].Stride != 1 {
			t.Errorf("%s: strides %d %d, Keras %d %d", b.Name, b.Convs[0].Stride, b.Convs[1].Stride, kb.Convs[0].Stride, kb.Convs[1].Stride)
		}
		if (b.Shortcut == nil) != (kb.Shortcut == nil) || b.Shortcut != nil && b.Shortcut.Stride != kb.Shortcut.Stride {
			t.Errorf("%s: shortcut differs from Keras'", b.Name)
		}
	}
	if a.Epsilon != 1e-5 || a.ConvBias || k.Epsilon != 1.001e-5 || !k.ConvBias {
		t.Errorf("epsilon/bias: torchvision %v %v, Keras %v %v", a.Epsilon, a.ConvBias, k.Epsilon, k.ConvBias)
	}
	if Torchvision.Preprocess() != "torch" || Keras.Preprocess() != "caffe" || Variant("x").Preprocess() != "" {
		t.Error("Preprocess")
	}
	if _, err := NewArch("caffe2", 64); err == nil || !strings.Contains(err.Error(), `"caffe2"`) {
		t.Errorf("unknown variant: %v", err)
	}

	// torchvision's own counts for resnet50(): 25,557,032 parameters and
	// 53,120 running statistics; Keras' layer table lists the same.
	total, tr, non := (&Weights{Arch: a, Classes: 1000}).ParamCounts()
	if tr != 25_557_032 || non != 53_120 || total != tr+non {
		t.Errorf("counts %d/%d/%d, want 25610152/25557032/53120", total, tr, non)
	}
	ls := a.Layers(224, 224, 1000)
	var sum int
	for _, l := range ls {
		sum += l.Params
	}
	if len(ls) != 177 || sum != total {
		t.Errorf("%d layers, %d params; want 177, %d", len(ls), sum, total)
	}
	for _, l := range ls {
		// v1.5 halves the size at a stage's 3x3, not at its first 1x1.
		if l.Name == "conv3_block1_1_conv" && l.Shape[0] != 56 || l.Name == "conv3_block1_2_conv" && l.Shape[0] != 28 {
			t.Errorf("%s: %v", l.Name, l.Shape)
		}
	}
	if last := ls[len(ls)-3]; last.Name != "conv5_block3_out" || !tensor.Shape(last.Shape).Eq(tensor.Shape{7, 7, 2048}) {
		t.Errorf("last block %s %v", last.Name, last.Shape)
	}
}

func TestVariantMarker(t *testing.T) {
	w, err := Load(filepath.Join(torchGolden, "weights.pth"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(m map[string]*tensor.Dense)
		want string
	}{
		{"unknown variant", func(m map[string]*tensor.Dense) {
			delete(m, "variant/torchvision")
			m["variant/caffe2"] = m["conv1_bn/gamma"]
		}, `"caffe2"`},
		{"two markers", func(m map[string]*tensor.Dense) { m["variant/keras"] = m["conv1_bn/gamma"] }, "two variant markers"},
		{"marker lost", func(m map[string]*tensor.Dense) { delete(m, "variant/torchvision") }, `"conv1_conv/bias" missing`},
	} {
		m := map[string]*tensor.Dense{}
		for k, v := range w.arrays() {
			m[k] = v
		}
		tc.edit(m)
		if _, err := FromTensors(tc.name, m); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %s", tc.name, err, tc.want)
		}
	}
}
