package resnet

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nlpodyssey/gopickle/types"
	"gorgonia.org/tensor"
)

// pk writes pickles opcode by opcode, to make .pth files good and bad.
type pk struct{ bytes.Buffer }

func (p *pk) ops(b ...byte) *pk { p.Write(b); return p }

func (p *pk) str(s string) *pk {
	p.WriteByte('X')
	binary.Write(p, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}

func (p *pk) int(n int) *pk {
	switch {
	case n >= 0 && n < 256:
		p.ops('K', byte(n))
	case n >= 0 && n < 65536:
		p.ops('M', byte(n), byte(n>>8))
	case n >= math.MinInt32 && n <= math.MaxInt32:
		p.WriteByte('J')
		binary.Write(p, binary.LittleEndian, int32(n))
	default:
		p.ops(0x8a, 8)
		binary.Write(p, binary.LittleEndian, int64(n))
	}
	return p
}

func (p *pk) global(module, name string) *pk {
	fmt.Fprintf(p, "c%s\n%s\n", module, name)
	return p
}

func (p *pk) ints(ns []int) *pk {
	p.WriteByte('(')
	for _, n := range ns {
		p.int(n)
	}
	return p.ops('t')
}

// ptTensor is a tensor to write; zero fields take the obvious defaults.
type ptTensor struct {
	shape []int
	data  []float32
	kind  string // storage class, "FloatStorage" by default
	numel int    // elements the pickle claims for the storage, len(data) by default
	raw   []byte // the storage's bytes, data little-endian by default
}

func (x ptTensor) storage() []byte {
	if x.raw != nil {
		return x.raw
	}
	b := make([]byte, 4*len(x.data))
	for i, v := range x.data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// stateDictPickle is what torch.save pickles for an OrderedDict of
// tensors, storage i holding tensor names[i].
func stateDictPickle(names []string, ts map[string]ptTensor) []byte {
	p := &pk{}
	p.ops(0x80, 2).global("collections", "OrderedDict").ops(')', 'R', '(')
	for i, n := range names {
		x := ts[n]
		kind, numel := x.kind, x.numel
		if kind == "" {
			kind = "FloatStorage"
		}
		if numel == 0 {
			numel = len(x.data)
		}
		stride := make([]int, len(x.shape))
		s := 1
		for d := len(x.shape) - 1; d >= 0; d-- {
			stride[d] = s
			s *= x.shape[d]
		}
		p.str(n).global("torch._utils", "_rebuild_tensor_v2").ops('(', '(')
		p.str("storage").global("torch", kind).str(strconv.Itoa(i)).str("cpu").int(numel).ops('t', 'Q')
		p.int(0).ints(x.shape).ints(stride).ops(0x89).global("collections", "OrderedDict").ops(')', 'R', 't', 'R')
	}
	return p.ops('u', '.').Bytes()
}

// writeZipPTH writes a .pth in torch.save's zip layout.
func writeZipPTH(t testing.TB, path string, pkl []byte, storages [][]byte, extra map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	put := func(name string, b []byte) {
		w, err := z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	put("archive/data.pkl", pkl)
	for i, s := range storages {
		put("archive/data/"+strconv.Itoa(i), s)
	}
	put("archive/version", []byte("3\n"))
	for n, b := range extra {
		put(n, b)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeStateDict(t testing.TB, path string, names []string, ts map[string]ptTensor) {
	t.Helper()
	var storages [][]byte
	for _, n := range names {
		storages = append(storages, ts[n].storage())
	}
	writeZipPTH(t, path, stateDictPickle(names, ts), storages, nil)
}

// goldenStateDict reads the torchvision golden's tensors by their
// torchvision names (num_batches_tracked left out).
func goldenStateDict(t *testing.T) ([]string, map[string]ptTensor) {
	t.Helper()
	p, err := openPTH(filepath.Join(torchGolden, "weights.pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	var names []string
	ts := map[string]ptTensor{}
	for _, n := range p.names {
		if strings.HasSuffix(n, "num_batches_tracked") {
			continue
		}
		r := p.tensors[n].(*tensorRef)
		d, err := p.read(n, r)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
		ts[n] = ptTensor{shape: r.shape, data: d}
	}
	return names, ts
}

// resnet18Names lists a torchvision ResNet18's state dict of width w.
func resnet18StateDict(w int) ([]string, map[string]ptTensor) {
	var names []string
	ts := map[string]ptTensor{}
	add := func(n string, shape ...int) {
		size := 1
		for _, s := range shape {
			size *= s
		}
		names = append(names, n)
		ts[n] = ptTensor{shape: shape, data: make([]float32, size)}
	}
	convbn := func(conv, bn string, out, in, k int) {
		add(conv+".weight", out, in, k, k)
		for _, p := range []string{"weight", "bias", "running_mean", "running_var"} {
			add(bn+"."+p, out)
		}
	}
	convbn("conv1", "bn1", w, 3, 7)
	in := w
	for l := 1; l <= 4; l++ {
		out := w << (l - 1)
		for b := 0; b < 2; b++ {
			p := fmt.Sprintf("layer%d.%d.", l, b)
			convbn(p+"conv1", p+"bn1", out, in, 3)
			convbn(p+"conv2", p+"bn2", out, out, 3)
			if b == 0 && l > 1 {
				convbn(p+"downsample.0", p+"downsample.1", out, in, 1)
			}
			in = out
		}
	}
	add("fc.weight", 10, in)
	add("fc.bias", 10)
	return names, ts
}

func TestLoadPTHErrors(t *testing.T) {
	dir := t.TempDir()
	golden := filepath.Join(torchGolden, "weights.pth")
	names, ts := goldenStateDict(t)
	// edited writes the golden state dict changed by edit.
	edited := func(file string, edit func(names []string, ts map[string]ptTensor) []string) string {
		m := make(map[string]ptTensor, len(ts))
		for k, v := range ts {
			m[k] = v
		}
		ns := edit(append([]string(nil), names...), m)
		p := filepath.Join(dir, file)
		writeStateDict(t, p, ns, m)
		return p
	}
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pickled := func(name string, pkl []byte) string {
		p := filepath.Join(dir, name)
		writeZipPTH(t, p, pkl, nil, nil)
		return p
	}
	raw, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "pwned")

	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"missing file", filepath.Join(dir, "nope.pth"), []string{"nope.pth", "no such file"}},
		{"not torch", file("cat.pth", []byte("this is not a checkpoint")), []string{"cat.pth", "not a readable PyTorch file"}},
		{"truncated zip", file("trunc.pth", raw[:len(raw)*2/3]), []string{"trunc.pth", "truncated"}},
		{"truncated storage", func() string {
			return edited("short.pth", func(ns []string, m map[string]ptTensor) []string {
				x := m["layer2.0.conv2.weight"]
				x.raw = x.storage()[:100]
				m["layer2.0.conv2.weight"] = x
				return ns
			})
		}(), []string{"short.pth", `"layer2.0.conv2.weight"`, "truncated"}},
		{"huge storage claim", func() string {
			return edited("huge.pth", func(ns []string, m map[string]ptTensor) []string {
				x := m["bn1.weight"]
				x.numel = 1 << 50
				m["bn1.weight"] = x
				return ns
			})
		}(), []string{"huge.pth", `"bn1.weight"`, "truncated"}},
		{"view past storage", func() string {
			return edited("view.pth", func(ns []string, m map[string]ptTensor) []string {
				x := m["bn1.bias"]
				x.numel = 3
				m["bn1.bias"] = x
				return ns
			})
		}(), []string{"view.pth", `"bn1.bias"`, "storage"}},
		{"missing tensor", func() string {
			return edited("missing.pth", func(ns []string, m map[string]ptTensor) []string {
				delete(m, "layer2.1.bn2.running_var")
				out := ns[:0]
				for _, n := range ns {
					if n != "layer2.1.bn2.running_var" {
						out = append(out, n)
					}
				}
				return out
			})
		}(), []string{"missing.pth", `"layer2.1.bn2.running_var"`, "missing"}},
		{"misshapen tensor", func() string {
			return edited("shape.pth", func(ns []string, m map[string]ptTensor) []string {
				m["layer3.0.conv2.weight"] = ptTensor{shape: []int{32, 32, 1, 1}, data: make([]float32, 32*32)}
				return ns
			})
		}(), []string{"shape.pth", `"layer3.0.conv2.weight"`, "(32, 32, 3, 3)", "(32, 32, 1, 1)"}},
		{"not finite", func() string {
			return edited("nan.pth", func(ns []string, m map[string]ptTensor) []string {
				x := m["layer4.2.bn3.bias"]
				x.data = append([]float32(nil), x.data...)
				x.data[5] = float32(math.Inf(1))
				m["layer4.2.bn3.bias"] = x
				return ns
			})
		}(), []string{"nan.pth", `"layer4.2.bn3.bias"`, "finite"}},
		{"integer tensor", func() string {
			return edited("long.pth", func(ns []string, m map[string]ptTensor) []string {
				x := m["fc.bias"]
				x.kind, x.raw = "LongStorage", make([]byte, 8*len(x.data))
				m["fc.bias"] = x
				return ns
			})
		}(), []string{"long.pth", `"fc.bias"`, "LongStorage"}},
		{"extra tensor", func() string {
			return edited("extra.pth", func(ns []string, m map[string]ptTensor) []string {
				m["layer1.0.se.weight"] = ptTensor{shape: []int{4}, data: make([]float32, 4)}
				return append(ns, "layer1.0.se.weight")
			})
		}(), []string{"extra.pth", `"layer1.0.se.weight"`, "unexpected"}},
		{"width out of range", func() string {
			return edited("wide.pth", func(ns []string, m map[string]ptTensor) []string {
				m["conv1.weight"] = ptTensor{shape: []int{1 << 40, 3, 7, 7}, data: make([]float32, 1)}
				return ns
			})
		}(), []string{"wide.pth", `"conv1.weight"`, "width"}},
		{"resnet18", func() string {
			p := filepath.Join(dir, "r18.pth")
			n, m := resnet18StateDict(8)
			writeStateDict(t, p, n, m)
			return p
		}(), []string{"r18.pth", "not a ResNet50", "ResNet18"}},
		{"not a state dict", pickled("list.pth", (&pk{}).ops(0x80, 2, ']', '.').Bytes()), []string{"list.pth", "want a state dict"}},
		{"no conv1", pickled("empty.pth", (&pk{}).ops(0x80, 2, '}', '.').Bytes()), []string{"empty.pth", `"conv1.weight"`}},
		{"os.system", pickled("evil.pth", (&pk{}).ops(0x80, 2).global("posix", "system").ops('(').str("touch "+marker).ops('t', 'R', '.').Bytes()),
			[]string{"evil.pth", "posix.system", "refused"}},
		{"os.system by STACK_GLOBAL", pickled("evil4.pth", (&pk{}).ops(0x80, 4).str("os").str("system").ops(0x93, '(').str("touch "+marker).ops('t', 'R', '.').Bytes()),
			[]string{"evil4.pth", "os.system", "refused"}},
		{"builtins.eval", pickled("eval.pth", (&pk{}).ops(0x80, 2).global("builtins", "eval").ops('(').str("1").ops('t', 'R', '.').Bytes()),
			[]string{"eval.pth", "builtins.eval", "refused"}},
		{"pickled module", pickled("model.pth", (&pk{}).ops(0x80, 2).global("torchvision.models.resnet", "ResNet").ops(')', 0x81, '.').Bytes()),
			[]string{"model.pth", "torchvision.models.resnet.ResNet", "state_dict()"}},
		{"INST opcode", pickled("inst.pth", []byte("\x80\x02(ios\nsystem\n.")), []string{"inst.pth", "opcode 0x69"}},
		{"huge string", pickled("str.pth", []byte("\x80\x02X\xff\xff\xff\xff.")), []string{"str.pth", "truncated"}},
		{"deep nesting", pickled("deep.pth", append(append([]byte{0x80, 2}, bytes.Repeat([]byte{'('}, 1000)...), '.')), []string{"deep.pth", "MARK"}},
		{"odd dict", pickled("odd.pth", (&pk{}).ops(0x80, 2, '(').str("a").ops('d', '.').Bytes()), []string{"odd.pth", "malformed pickle"}},
		{"unhashable key", pickled("key.pth", []byte("\x80\x03ccollections\nOrderedDict\n)RC\x01a\x88s.")), []string{"key.pth", "malformed pickle"}},
		{"dict keyed by itself", pickled("cycle.pth", []byte("\x80\x02}2}s.")), []string{"cycle.pth", "key a *types.Dict"}},
		{"no pickle", func() string {
			p := filepath.Join(dir, "nopkl.pth")
			writeZipPTH(t, p, nil, nil, nil)
			// Rename data.pkl away: an archive of storages alone.
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.ReplaceAll(b, []byte("archive/data.pkl"), []byte("archive/data.xyz")), 0o644)
			return p
		}(), []string{"nopkl.pth", "data.pkl"}},
		{"torchscript", func() string {
			p := filepath.Join(dir, "script.pth")
			writeZipPTH(t, p, stateDictPickle(nil, nil), nil, map[string][]byte{"archive/constants.pkl": {0x80, 2, ')', '.'}})
			return p
		}(), []string{"script.pth", "TorchScript"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Load(tc.path)
			if err == nil {
				t.Fatalf("loaded %v", w.Source)
			}
			t.Log(err)
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a pickle ran a command")
	}
}

// TestPTHVariants checks state dicts written other ways than torch.save
// of model.state_dict(): a checkpoint dict, DataParallel names, float64
// and float16 storages, and a transposed (strided) view.
func TestPTHVariants(t *testing.T) {
	want, err := Load(filepath.Join(torchGolden, "weights.pth"))
	if err != nil {
		t.Fatal(err)
	}
	names, ts := goldenStateDict(t)
	dir := t.TempDir()

	t.Run("checkpoint with module prefix", func(t *testing.T) {
		var pre []string
		m := map[string]ptTensor{}
		for _, n := range names {
			pre = append(pre, "module."+n)
			m["module."+n] = ts[n]
		}
		inner := stateDictPickle(pre, m)
		// {"epoch": 3, "state_dict": <inner>}
		p := &pk{}
		p.ops(0x80, 2, '}', '(').str("epoch").int(3).str("state_dict")
		p.Write(inner[2 : len(inner)-1]) // without PROTO and STOP
		p.ops('u', '.')
		var storages [][]byte
		for _, n := range pre {
			storages = append(storages, m[n].storage())
		}
		path := filepath.Join(dir, "ckpt.pth")
		writeZipPTH(t, path, p.Bytes(), storages, nil)
		got, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest() != want.Digest() {
			t.Fatal("digest differs")
		}
	})

	t.Run("float64", func(t *testing.T) {
		m := map[string]ptTensor{}
		for _, n := range names {
			x := ts[n]
			raw := make([]byte, 8*len(x.data))
			for i, v := range x.data {
				binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(float64(v)))
			}
			m[n] = ptTensor{shape: x.shape, data: x.data, kind: "DoubleStorage", raw: raw}
		}
		path := filepath.Join(dir, "f64.pth")
		writeStateDict(t, path, names, m)
		got, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest() != want.Digest() {
			t.Fatal("digest differs")
		}
	})

	t.Run("float16", func(t *testing.T) {
		for _, c := range []struct {
			h uint16
			f float32
		}{{0x3c00, 1}, {0xc000, -2}, {0x0001, 1.0 / (1 << 24)}, {0x7bff, 65504}, {0x3555, 0.333251953125}, {0x8000, float32(math.Copysign(0, -1))}} {
			if got := halfToFloat32(c.h); got != c.f || math.Signbit(float64(got)) != math.Signbit(float64(c.f)) {
				t.Errorf("half %#04x: %v, want %v", c.h, got, c.f)
			}
		}
		if !math.IsInf(float64(halfToFloat32(0x7c00)), 1) || !math.IsNaN(float64(halfToFloat32(0x7e00))) {
			t.Error("half Inf/NaN")
		}
	})

	t.Run("strided view", func(t *testing.T) {
		// fc.weight stored as the transpose of a (F, classes) storage:
		// shape (classes, F), stride (1, classes).
		m := map[string]ptTensor{}
		for k, v := range ts {
			m[k] = v
		}
		fc := ts["fc.weight"]
		classes, f := fc.shape[0], fc.shape[1]
		tr := make([]float32, len(fc.data))
		for i := range classes {
			for j := range f {
				tr[j*classes+i] = fc.data[i*f+j]
			}
		}
		m["fc.weight"] = ptTensor{shape: fc.shape, data: tr}
		pkl := stateDictPickle(names, m)
		// Swap the stride tuple of fc.weight, (f, 1), for (1, classes).
		old := (&pk{}).ints([]int{f, 1}).Bytes()
		i := bytes.LastIndex(pkl, old)
		if i < 0 {
			t.Fatal("stride not found")
		}
		pkl = append(pkl[:i:i], append((&pk{}).ints([]int{1, classes}).Bytes(), pkl[i+len(old):]...)...)
		var storages [][]byte
		for _, n := range names {
			storages = append(storages, m[n].storage())
		}
		path := filepath.Join(dir, "strided.pth")
		writeZipPTH(t, path, pkl, storages, nil)
		got, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest() != want.Digest() {
			t.Fatal("digest differs")
		}
	})
}

// TestTorchvisionNPZBias checks the rule for convolution biases in a
// torchvision .npz: absent, or zero and then dropped; never non-zero.
func TestTorchvisionNPZBias(t *testing.T) {
	w, err := Load(filepath.Join(torchGolden, "weights.pth"))
	if err != nil {
		t.Fatal(err)
	}
	m := w.arrays()
	with := func(v float32) map[string]*tensor.Dense {
		out := map[string]*tensor.Dense{}
		for k, t := range m {
			out[k] = t
		}
		b := make([]float32, w.Arch.Stem.Out)
		b[1] = v
		out["conv1_conv/bias"] = tensor.New(tensor.WithShape(len(b)), tensor.WithBacking(b))
		return out
	}
	if z, err := FromTensors("zero", with(0)); err != nil {
		t.Fatalf("zero bias refused: %v", err)
	} else if z.Digest() != w.Digest() || z.Tensor("conv1_conv/bias") != nil {
		t.Fatal("zero bias kept")
	}
	if _, err := FromTensors("nonzero", with(0.5)); err == nil || !strings.Contains(err.Error(), `"conv1_conv/bias"`) {
		t.Fatalf("non-zero bias: %v", err)
	}
	// And a Keras file must keep its biases.
	k, _ := Load(filepath.Join("testdata", "resnet50_w8_s64", "weights.npz"))
	if k.Tensor("conv1_conv/bias") == nil {
		t.Fatal("Keras bias dropped")
	}
}

// FuzzStateDictPickle feeds arbitrary pickles to the restricted reader:
// it may refuse them, never panic or hang.
func FuzzStateDictPickle(f *testing.F) {
	names, ts := resnet18StateDict(2)
	f.Add(stateDictPickle(names[:6], ts))
	f.Add((&pk{}).ops(0x80, 2).global("posix", "system").ops('(').str("true").ops('t', 'R', '.').Bytes())
	f.Add([]byte("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94\x8c\x01b\x94\x93)R."))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := scanPickle(data)
		if err != nil {
			return
		}
		storages := map[string]*storageRef{}
		v, err := unpickle(data[:n], func(id any) (any, error) {
			tu, ok := id.(*types.Tuple)
			if !ok || tu.Len() != 5 {
				return nil, fmt.Errorf("bad id")
			}
			return storage(storages, tu)
		})
		if err != nil {
			return
		}
		newPTHFile(v)
	})
}
