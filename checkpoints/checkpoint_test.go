package checkpoints

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func f32(shape []int, data ...float32) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

// sample returns tensors named as the trainer names them, with random values
// and the float32 values that are easiest to mangle: −0, ±Inf, NaN with a
// payload, the smallest subnormal.
func sample(seed uint64) []Tensor {
	rng := rand.New(rand.NewPCG(seed, 1))
	rnd := func(shape ...int) *tensor.Dense {
		n := 1
		for _, s := range shape {
			n *= s
		}
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
		return f32(shape, d...)
	}
	special := f32([]int{6}, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7fc00123), math.Float32frombits(1), 3.5)
	return []Tensor{
		{"dense_0/kernel", rnd(5, 4)},
		{"dense_0/bias", special},
		{"dense_1/kernel", rnd(4, 2)},
		{"dense_1/bias", rnd(2)},
		{"adam_m/dense_0/kernel", rnd(5, 4)},
		{"adam_v/dense_0/kernel", rnd(5, 4)},
	}
}

func sampleManifest(step int64, valLoss float64) Manifest {
	return Manifest{
		Epoch: int(step / 10), Step: step, StepInEpoch: int(step % 10), OptimizerStep: step,
		Seed: 1337, Classes: []string{"cat", "dog"}, ConfigHash: "c0ffee",
		Metrics: map[string]float64{"val_loss": valLoss, "val_accuracy": 0.5},
		Run:     []byte("data:\n  dir: ../data\n"),
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// readTree returns every file under dir, by slash-separated relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRoundTripIsByteIdentical(t *testing.T) {
	root := t.TempDir()
	a := filepath.Join(root, "a")
	ts := sample(1)
	m := sampleManifest(42, 0.25)
	if err := Save(a, m, ts); err != nil {
		t.Fatal(err)
	}
	c, err := Load(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tensors) != len(ts) {
		t.Fatalf("loaded %d tensors, saved %d", len(c.Tensors), len(ts))
	}
	for i, want := range ts {
		got := c.Tensors[i]
		if got.Name != want.Name || !slices.Equal([]int(got.Value.Shape()), []int(want.Value.Shape())) ||
			!sameBits(got.Value.Float32s(), want.Value.Float32s()) {
			t.Errorf("tensor %d: got %s %v %v, want %s %v %v", i, got.Name, got.Value.Shape(), got.Value.Float32s(),
				want.Name, want.Value.Shape(), want.Value.Float32s())
		}
	}
	if v, ok := c.Tensor("dense_1/bias"); !ok || !sameBits(v.Float32s(), ts[3].Value.Float32s()) {
		t.Errorf("Tensor(dense_1/bias) = %v, %v", v, ok)
	}
	got := c.Manifest
	if len(got.Files) != len(ts) || got.Format != FormatVersion {
		t.Errorf("manifest lists %d files, format %d", len(got.Files), got.Format)
	}
	if len(got.RunSHA256) != 64 {
		t.Errorf("manifest run_sha256 %q", got.RunSHA256)
	}
	got.Files, got.Format, got.RunSHA256 = nil, 0, ""
	if !reflect.DeepEqual(got, m) {
		t.Errorf("manifest round trip:\n got %+v\nwant %+v", got, m)
	}
	// Saving what was loaded gives the same bytes.
	b := filepath.Join(root, "b")
	if err := Save(b, c.Manifest, c.Tensors); err != nil {
		t.Fatal(err)
	}
	fa, fb := readTree(t, a), readTree(t, b)
	if len(fa) != len(ts)+2 {
		t.Errorf("checkpoint has %d files, want %d (tensors, manifest, run.yaml)", len(fa), len(ts)+2)
	}
	for name, data := range fa {
		if !bytes.Equal(data, fb[name]) {
			t.Errorf("%s differs after a load and save", name)
		}
	}
	if err := Save(a, m, ts); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("saving over a checkpoint: %v", err)
	}
	if es, _ := os.ReadDir(root); len(es) != 2 {
		t.Errorf("%d entries in the parent folder, want 2 (no temporary folder left)", len(es))
	}
}

// TestNPYFormat checks the files byte by byte against the .npy format
// specification (version 1.0): magic, version, little-endian header length,
// a Python dict literal padded with spaces and a newline so that the data
// starts at a multiple of 64, then C-ordered little-endian float32 data.
func TestNPYFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	ts := []Tensor{
		{"k", f32([]int{2, 3}, 1, 2, 3, 4, 5, -6.5)},
		{"b", f32([]int{3}, 0.25, -1, 7)},
		{"t", f32([]int{1, 2, 1}, 9, 8)},
	}
	if err := Save(dir, Manifest{}, ts); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, shape string
		data        []float32
	}{
		{"k.npy", "(2, 3)", ts[0].Value.Float32s()},
		{"b.npy", "(3,)", ts[1].Value.Float32s()},
		{"t.npy", "(1, 2, 1)", ts[2].Value.Float32s()},
	} {
		b, err := os.ReadFile(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x93NUMPY\x01\x00")) {
			t.Fatalf("%s: magic and version %q", tc.file, b[:8])
		}
		hlen := int(binary.LittleEndian.Uint16(b[8:10]))
		if (10+hlen)%64 != 0 {
			t.Errorf("%s: data starts at %d, not a multiple of 64", tc.file, 10+hlen)
		}
		hdr := string(b[10 : 10+hlen])
		want := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", tc.shape)
		if strings.TrimRight(hdr, " \n") != want || !strings.HasSuffix(hdr, "\n") {
			t.Errorf("%s: header %q, want %q padded with spaces and a newline", tc.file, hdr, want)
		}
		data := b[10+hlen:]
		if len(data) != 4*len(tc.data) {
			t.Fatalf("%s: %d data bytes, want %d", tc.file, len(data), 4*len(tc.data))
		}
		for i, v := range tc.data {
			if got := math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:])); got != v {
				t.Errorf("%s: element %d = %v, want %v", tc.file, i, got, v)
			}
		}
	}
}

// TestNumpyLoads loads a checkpoint with numpy.load, when python3 has numpy.
func TestNumpyLoads(t *testing.T) {
	// Debian's python3-numpy lives with /usr/bin/python3, which may not be
	// the python3 first on PATH.
	py := ""
	for _, c := range []string{"/usr/bin/python3", "python3"} {
		if p, err := exec.LookPath(c); err == nil && exec.Command(p, "-c", "import numpy").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("no python3 with numpy (apt-get install python3-numpy)")
	}
	dir := filepath.Join(t.TempDir(), "np")
	ts := sample(3)[2:4]
	if err := Save(dir, sampleManifest(1, 1), ts); err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys, numpy as np
d = sys.argv[1]
m = json.load(open(d + "/manifest.json"))
for f in m["files"]:
    a = np.load(d + "/" + f["path"])
    assert a.dtype == np.float32 and list(a.shape) == f["shape"], (f, a.dtype, a.shape)
    print(f["tensor"], a.shape, " ".join(repr(float(v)) for v in a.ravel()))
`
	out, err := exec.Command(py, "-c", script, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	var want strings.Builder
	for _, tn := range ts {
		s := tn.Value.Shape()
		shape := fmt.Sprintf("(%d,)", s[0])
		if len(s) == 2 {
			shape = fmt.Sprintf("(%d, %d)", s[0], s[1])
		}
		vals := make([]string, 0)
		for _, v := range tn.Value.Float32s() {
			vals = append(vals, fmt.Sprintf("%v", float64(v)))
		}
		fmt.Fprintf(&want, "%s %s %s\n", tn.Name, shape, strings.Join(vals, " "))
	}
	// Python's repr and Go's %v print float64 values the same way (shortest
	// round trip), except for the exponent form, which these values avoid.
	if string(out) != want.String() {
		t.Errorf("numpy read:\n%s\nwant:\n%s", out, want.String())
	}
}

func TestLoadDetectsDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(dir string) error
		want   string
	}{
		{"flipped byte", func(dir string) error {
			p := filepath.Join(dir, "dense_0", "kernel.npy")
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)-3] ^= 0x10
			return os.WriteFile(p, b, 0o644)
		}, "file dense_0/kernel.npy: sha256"},
		{"truncated", func(dir string) error {
			p := filepath.Join(dir, "adam_v", "dense_0", "kernel.npy")
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, st.Size()-4)
		}, "file adam_v/dense_0/kernel.npy: sha256"},
		{"run.yaml edited", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, RunFile), []byte("data:\n  dir: ../other\n"), 0o644)
		}, "file run.yaml: sha256"},
		{"missing", func(dir string) error {
			return os.Remove(filepath.Join(dir, "dense_1", "bias.npy"))
		}, "file dense_1/bias.npy: open"},
		{"extra file", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "dense_1", "extra.npy"), []byte("x"), 0o644)
		}, "file dense_1/extra.npy is not listed in the manifest"},
		{"manifest edited", func(dir string) error {
			p := filepath.Join(dir, ManifestFile)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, bytes.Replace(b, []byte(`"step": 7`), []byte(`"step": "7"`), 1), 0o644)
		}, "file manifest.json: json: cannot unmarshal string"},
		{"manifest unknown field", func(dir string) error {
			p := filepath.Join(dir, ManifestFile)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, bytes.Replace(b, []byte(`"epoch"`), []byte(`"epoc"`), 1), 0o644)
		}, `file manifest.json: json: unknown field "epoc"`},
		{"manifest truncated", func(dir string) error {
			p := filepath.Join(dir, ManifestFile)
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, st.Size()/2)
		}, "file manifest.json: unexpected EOF"},
		{"manifest path escapes", func(dir string) error {
			p := filepath.Join(dir, ManifestFile)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, bytes.Replace(b, []byte(`"path": "dense_1/bias.npy"`), []byte(`"path": "../bias.npy"`), 1), 0o644)
		}, `tensor "dense_1/bias" stored in "../bias.npy", want "dense_1/bias.npy"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ck")
			if err := Save(dir, sampleManifest(7, 1), sample(2)); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(dir); err != nil {
				t.Fatalf("before damage: %v", err)
			}
			if err := tc.damage(dir); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Errorf("error %v, want one naming %s and containing %q", err, dir, tc.want)
			}
		})
	}
}

func TestSaveRejectsBadInput(t *testing.T) {
	ok := f32([]int{2}, 1, 2)
	for _, tc := range []struct {
		name string
		m    Manifest
		ts   []Tensor
		want string
	}{
		{"dot-dot name", Manifest{}, []Tensor{{"../x", ok}}, `tensor name "../x"`},
		{"absolute name", Manifest{}, []Tensor{{"/x", ok}}, `tensor name "/x"`},
		{"space in name", Manifest{}, []Tensor{{"a b", ok}}, `character ' ' not allowed`},
		{"duplicate", Manifest{}, []Tensor{{"a", ok}, {"a", ok}}, `tensor "a" given twice`},
		{"nil tensor", Manifest{}, []Tensor{{"a", nil}}, `tensor "a": want a float32 tensor`},
		{"float64", Manifest{}, []Tensor{{"a", tensor.New(tensor.WithShape(2), tensor.Of(tensor.Float64))}}, `tensor "a": want a float32 tensor`},
		{"NaN metric", Manifest{Metrics: map[string]float64{"val_loss": math.NaN()}}, []Tensor{{"a", ok}}, `metric "val_loss" is NaN`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			err := Save(filepath.Join(root, "ck"), tc.m, tc.ts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if es, _ := os.ReadDir(root); len(es) != 0 {
				t.Errorf("a failed save left %d entries", len(es))
			}
		})
	}
}

// LoadTensors reads and verifies the tensors it keeps, skips the others
// (damage to them goes unnoticed: they are not read), and still refuses
// files the manifest does not list.
func TestLoadTensors(t *testing.T) {
	params := func(name string) bool { return strings.HasPrefix(name, "dense_") }
	for _, tc := range []struct {
		name    string
		damage  string // file to flip a byte of, "" for none
		extra   bool
		wantErr string
	}{
		{name: "intact"},
		{name: "skipped tensor damaged", damage: "adam_v/dense_0/kernel.npy"},
		{name: "kept tensor damaged", damage: "dense_1/kernel.npy", wantErr: "file dense_1/kernel.npy: sha256"},
		{name: "extra file", extra: true, wantErr: "file extra.npy is not listed in the manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ck")
			want := sample(3)
			if err := Save(dir, sampleManifest(7, 1), want); err != nil {
				t.Fatal(err)
			}
			if tc.damage != "" {
				p := filepath.Join(dir, filepath.FromSlash(tc.damage))
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)-1] ^= 1
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.extra {
				if err := os.WriteFile(filepath.Join(dir, "extra.npy"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c, err := LoadTensors(dir, params)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(c.Manifest.Run) != string(sampleManifest(7, 1).Run) {
				t.Errorf("run description %q not read", c.Manifest.Run)
			}
			var names []string
			for _, tn := range c.Tensors {
				names = append(names, tn.Name)
			}
			if wantNames := []string{"dense_0/kernel", "dense_0/bias", "dense_1/kernel", "dense_1/bias"}; !slices.Equal(names, wantNames) {
				t.Fatalf("tensors %v, want %v", names, wantNames)
			}
			for _, w := range want[:4] {
				got, _ := c.Tensor(w.Name)
				if !sameBits(got.Data().([]float32), w.Value.Data().([]float32)) {
					t.Errorf("%s: values differ", w.Name)
				}
			}
		})
	}
}
