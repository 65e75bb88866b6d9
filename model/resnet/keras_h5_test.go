package resnet

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gotransfer/internal/tensorio"
)

// writeLegacyH5 writes the weights of an .npz as Keras' legacy HDF5
// weights file does: root attribute layer_names (split into chunks
// layer_names0..2, as Keras splits attributes too big for an HDF5 header),
// weightless layers among them, per-layer weight_names (chunked for one
// layer), and datasets at the weight names. style "old" uses the Caffe-style
// layer names and Keras 1 weight names of the older release. drop leaves
// out a weight ("layer/role") or all of a layer's ("layer").
const writeLegacyH5 = `
import re, sys
import h5py, numpy as np

src, out, style, drop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
w = dict(np.load(src))
layers = {}
for k, v in w.items():
    layer, var = k.split("/")
    layers.setdefault(layer, {})[var] = v
order = ["input_1", "conv1_pad"]
for layer in layers:
    order.append(layer)
    if layer.endswith("_bn"):
        order.append(layer[:-3] + "_relu")
order.append("avg_pool")

def old_name(layer):
    if layer == "conv1_conv": return "conv1"
    if layer == "conv1_bn": return "bn_conv1"
    if layer == "predictions": return "fc1000"
    m = re.fullmatch(r"conv(\d)_block(\d)_(\d)_(conv|bn)", layer)
    if m:
        s, b, k, kind = m.groups()
        branch = "1" if k == "0" else "2" + "abc"[int(k) - 1]
        return ("res" if kind == "conv" else "bn") + s + "abcdef"[int(b) - 1] + "_branch" + branch
    return layer

KERAS1 = {"kernel": "W", "bias": "b", "gamma": "gamma", "beta": "beta",
          "moving_mean": "running_mean", "moving_variance": "running_std"}
ROLE_ORDER = ["kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"]

def chunked(group, name, values, chunks):
    values = np.array([v.encode("utf8") for v in values])
    if chunks == 1:
        group.attrs[name] = values
        return
    for i, part in enumerate(np.array_split(values, chunks)):
        group.attrs["%s%d" % (name, i)] = part

with h5py.File(out, "w") as f:
    names = [old_name(l) if style == "old" else l for l in order]
    chunked(f, "layer_names", names, 3)
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = b"2.2.4"
    for layer, name in zip(order, names):
        g = f.create_group(name)
        vars = layers.get(layer, {})
        wn = []
        for var in sorted(vars, key=ROLE_ORDER.index):
            if drop in (layer, layer + "/" + var):
                continue
            n = (name + "_" + KERAS1[var] if style == "old" else name + "/" + var) + ":0"
            g.create_dataset(n, data=vars[var])
            wn.append(n)
        chunked(g, "weight_names", wn, 2 if layer == "conv2_block1_2_bn" else 1)
`

func TestKerasH5Export(t *testing.T) {
	py := python(t, "numpy", "h5py")
	src := filepath.Join("testdata", "resnet50_w8_s64", "weights.npz")
	want, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join("..", "..", "scripts", "export_keras_resnet50.py")
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		b, err := exec.Command(py, args...).CombinedOutput()
		return string(b), err
	}
	for _, tc := range []struct {
		name, style, drop string
		notop             bool
		fail              []string // what the script's error says, if it must fail
	}{
		{name: "tf.keras names", style: "new"},
		{name: "old release names", style: "old"},
		{name: "notop", style: "new", notop: true},
		{name: "missing weight", style: "new", drop: "conv3_block2_2_bn/moving_mean", fail: []string{"conv3_block2_2_bn", "weights"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h5 := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".h5")
			if out, err := run("-c", writeLegacyH5, src, h5, tc.style, tc.drop); err != nil {
				t.Fatalf("writing the h5: %v\n%s", err, out)
			}
			npz := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".npz")
			args := []string{script, h5, npz}
			if tc.notop {
				args = append(args, "--notop")
			}
			out, err := run(args...)
			if tc.fail != nil {
				if err == nil {
					t.Fatalf("export succeeded:\n%s", out)
				}
				for _, s := range tc.fail {
					if !strings.Contains(out, s) {
						t.Errorf("output does not mention %q:\n%s", s, out)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("export: %v\n%s", err, out)
			}
			if !strings.Contains(out, "not one of the official") {
				t.Errorf("no warning about an unknown md5:\n%s", out)
			}
			if tc.style == "old" && !strings.Contains(out, "Caffe-style") {
				t.Errorf("old names not reported:\n%s", out)
			}
			got, err := Load(npz)
			if err != nil {
				t.Fatal(err)
			}
			if tc.notop {
				if got.Classes != 0 || got.Tensor("predictions/kernel") != nil {
					t.Fatalf("notop export has %d classes", got.Classes)
				}
				return
			}
			sameTensors(t, want, got)
			if got.Digest() != want.Digest() {
				t.Fatal("digests differ")
			}
		})
	}
	// Not an h5 at all.
	bad := filepath.Join(dir, "bad.h5")
	os.WriteFile(bad, []byte("not hdf5"), 0o644)
	if out, err := run(script, bad, filepath.Join(dir, "bad.npz")); err == nil {
		t.Fatalf("exported a non-h5 file:\n%s", out)
	}
}

// TestKerasH5Load reads the .h5 files of TestKerasH5Export directly: the
// same weights as the .npz they were written from, by digest.
func TestKerasH5Load(t *testing.T) {
	py := python(t, "numpy", "h5py")
	src := filepath.Join("testdata", "resnet50_w8_s64", "weights.npz")
	want, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name, style, drop string
		fail              []string // what Load's error says, if it must fail
	}{
		{name: "tf.keras names", style: "new"},
		{name: "old release names", style: "old"},
		{name: "missing weight", style: "new", drop: "conv3_block2_2_bn/moving_mean", fail: []string{"missing_weight.h5", `layer "conv3_block2_2_bn" has 3 weights`, "want 4 (gamma, beta, moving_mean, moving_variance)"}},
		{name: "missing old weight", style: "old", drop: "conv1_conv/bias", fail: []string{`layer "conv1" has 1 weights ["conv1_W:0"], want 2 (kernel, bias)`}},
		{name: "half a top", style: "new", drop: "predictions/bias", fail: []string{`layer "predictions" has 1 weights`}},
		{name: "no top", style: "new", drop: "predictions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h5 := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".h5")
			if out, err := exec.Command(py, "-c", writeLegacyH5, src, h5, tc.style, tc.drop).CombinedOutput(); err != nil {
				t.Fatalf("writing the h5: %v\n%s", err, out)
			}
			got, err := Load(h5)
			if tc.fail != nil {
				if err == nil {
					t.Fatal("loaded")
				}
				for _, s := range tc.fail {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error does not mention %q: %v", s, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.drop == "predictions" {
				if got.Classes != 0 || len(got.Names()) != len(want.Names())-2 {
					t.Fatalf("%d classes, %d tensors", got.Classes, len(got.Names()))
				}
				for _, n := range got.Names() {
					if !reflect.DeepEqual(got.Tensor(n).Data(), want.Tensor(n).Data()) {
						t.Fatalf("%s differs", n)
					}
				}
				return
			}
			sameTensors(t, want, got)
			if got.Digest() != want.Digest() || got.Classes != want.Classes || got.Source != h5 {
				t.Fatalf("digest %s, %d classes, source %s; want %s, %d, %s", got.Digest(), got.Classes, got.Source, want.Digest(), want.Classes, h5)
			}
		})
	}
}

// TestKerasH5Layout checks the name mapping on small Keras-layout files
// (testdata/make_keras_layout.py says what each layer tests), without
// Python; with it, against the Python exporter's mapping too.
func TestKerasH5Layout(t *testing.T) {
	type tensor struct {
		shape []int
		data  []float32
	}
	want := map[string]tensor{
		"conv1_conv/kernel":          {[]int{1, 1, 1, 2}, []float32{1, 2}},
		"conv1_conv/bias":            {[]int{2}, []float32{3, 4}},
		"conv1_bn/gamma":             {[]int{1}, []float32{1}},
		"conv1_bn/beta":              {[]int{1}, []float32{2}},
		"conv1_bn/moving_mean":       {[]int{1}, []float32{3}},
		"conv1_bn/moving_variance":   {[]int{1}, []float32{4}},
		"conv2_block1_0_conv/kernel": {[]int{1, 1, 1, 1}, []float32{5}},
		"conv2_block1_0_conv/bias":   {[]int{1}, []float32{6}},
		"conv2_block1_1_conv/kernel": {[]int{1, 1, 1, 1}, []float32{7}},
		"conv2_block1_1_conv/bias":   {[]int{1}, []float32{8}},
		"predictions/kernel":         {[]int{1, 2}, []float32{9, 10}},
		"predictions/bias":           {[]int{2}, []float32{11, 12}},
	}
	for _, file := range []string{"keras_layout.h5", "keras_model.h5"} {
		path := filepath.Join("testdata", file)
		m, old, err := kerasH5Tensors(path)
		if err != nil {
			t.Fatal(err)
		}
		if !old {
			t.Errorf("%s: Caffe-style names not reported", file)
		}
		if len(m) != len(want) {
			t.Errorf("%s: %d tensors, want %d", file, len(m), len(want))
		}
		for name, w := range want {
			got, ok := m[name]
			if !ok {
				t.Errorf("%s: no tensor %s", file, name)
				continue
			}
			if !reflect.DeepEqual([]int(got.Shape()), w.shape) || !reflect.DeepEqual(got.Data(), w.data) {
				t.Errorf("%s: %s: %v %v, want %v %v", file, name, got.Shape(), got.Data(), w.shape, w.data)
			}
		}
		// Load goes on to check a ResNet50: this is none.
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "load weights: "+path+`: tensor "conv1_conv/kernel": want shape (7, 7, 3, width)`) {
			t.Errorf("%s: Load: %v", file, err)
		}
	}

	for _, tc := range []struct{ path, err string }{
		{filepath.Join("testdata", "keras_dense.h5"), `layer "dense_1" has weights but is not a ResNet50 convolution, BatchNorm or 'predictions' layer`},
		{filepath.Join("..", "..", "internal", "hdf5", "testdata", "small.h5"), "no 'layer_names' attribute: not Keras' legacy HDF5 weights layout"},
		{filepath.Join("..", "..", "internal", "hdf5", "testdata", "latest.h5"), "no 'layer_names' attribute"},
		{filepath.Join("testdata", "keras_gzip.h5"), "hdf5: testdata/keras_gzip.h5: dataset conv1_conv/conv1_conv/kernel:0: chunked layout is not supported (only contiguous and compact); scripts/export_keras_resnet50.py (h5py) converts such a file to an .npz"},
	} {
		want := "load weights: " + tc.path + ": " + tc.err
		if strings.HasPrefix(tc.err, "hdf5: ") {
			want = "load weights: " + tc.err // the reader's errors name the file
		}
		if _, err := Load(tc.path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", tc.path, err, tc.err)
		}
	}

	// Truncated, the file gives errors (from the HDF5 reader), not panics.
	b, err := os.ReadFile(filepath.Join("testdata", "keras_layout.h5"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.h5")
	for n := 8; n < len(b); n += 101 {
		os.WriteFile(cut, b[:n], 0o644)
		if _, err := Load(cut); err == nil {
			t.Fatalf("truncated to %d bytes: loaded", n)
		}
	}

	// The Python exporter maps the same file to the same tensors.
	py := python(t, "numpy", "h5py")
	npz := filepath.Join(t.TempDir(), "layout.npz")
	code := "import sys; sys.path.insert(0, sys.argv[1]); import numpy as np, export_keras_resnet50 as e; a, old = e.from_h5(sys.argv[2]); assert old; np.savez(sys.argv[3], **a)"
	if out, err := exec.Command(py, "-c", code, filepath.Join("..", "..", "scripts"), filepath.Join("testdata", "keras_layout.h5"), npz).CombinedOutput(); err != nil {
		t.Fatalf("export_keras_resnet50.from_h5: %v\n%s", err, out)
	}
	a, err := tensorio.OpenNPZ(npz)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if len(a.Names()) != len(want) {
		t.Errorf("Python: %d tensors %v, want %d", len(a.Names()), a.Names(), len(want))
	}
	for name, w := range want {
		got, err := a.Read(name)
		if err != nil {
			t.Error(err)
			continue
		}
		if !reflect.DeepEqual([]int(got.Shape()), w.shape) || !reflect.DeepEqual(got.Data(), w.data) {
			t.Errorf("Python: %s: %v %v, want %v %v", name, got.Shape(), got.Data(), w.shape, w.data)
		}
	}
}

func TestKerasLayerName(t *testing.T) {
	for old, want := range map[string]string{
		"conv1":          "conv1_conv",
		"bn_conv1":       "conv1_bn",
		"fc1000":         "predictions",
		"res2a_branch1":  "conv2_block1_0_conv",
		"bn2a_branch1":   "conv2_block1_0_bn",
		"res2a_branch2a": "conv2_block1_1_conv",
		"bn3d_branch2b":  "conv3_block4_2_bn",
		"res4f_branch2c": "conv4_block6_3_conv",
		"bn5c_branch2c":  "conv5_block3_3_bn",
		"conv5_block3_3": "conv5_block3_3", // neither release's: kept
		"res2a_branch2d": "res2a_branch2d",
		"activation_49":  "activation_49",
	} {
		if got := kerasLayerName(old); got != want {
			t.Errorf("kerasLayerName(%q) = %q, want %q", old, got, want)
		}
	}
	for _, tc := range []struct{ name, kind, role string }{
		{"conv1_conv/kernel:0", "conv", "kernel"},
		{"res2a_branch2a_W:0", "conv", "kernel"},
		{"res2a_branch2a_b:0", "conv", "bias"},
		{"bias", "dense", "bias"},
		{"bn_conv1_running_std:0", "bn", "moving_variance"},
		{"conv1_bn/moving_variance:0", "bn", "moving_variance"},
		{"bn2a_branch1_running_mean:0", "bn", "moving_mean"},
		{"conv1_bn/gamma:0", "bn", "gamma"},
		{"conv1_bn/kernel:0", "bn", ""},
		{"w_a:0", "conv", ""},
	} {
		if got := kerasWeightRole(tc.name, tc.kind); got != tc.role {
			t.Errorf("kerasWeightRole(%q, %q) = %q, want %q", tc.name, tc.kind, got, tc.role)
		}
	}
}

// TestH5WithUserBlockIsHDF5: a file whose HDF5 signature follows a user
// block is read as HDF5 (here: refused for its layout), not as a zip.
func TestH5WithUserBlockIsHDF5(t *testing.T) {
	_, err := Load(filepath.Join("..", "..", "internal", "hdf5", "testdata", "userblock.h5"))
	if err == nil || !strings.Contains(err.Error(), "layer_names") {
		t.Fatalf("Load of an HDF5 file with a user block: %v", err)
	}
}
