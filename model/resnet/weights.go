package resnet

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"

	"gorgonia.org/tensor"

	"gotransfer/internal/tensorio"
)

// Weights are the parameters of a ResNet50 keyed by Keras weight names
// ("conv1_conv/kernel", "conv1_bn/gamma", ..., "predictions/bias"), checked
// against the architecture their variant and stem's width imply. Both
// variants use these names: torchvision's are mapped to them on import.
type Weights struct {
	// Source says where the weights came from: a file path, or a
	// description of generated weights.
	Source string
	Arch   *Arch
	// Classes is the size of the optional 'predictions' layer (the ImageNet
	// top), 0 when the file has none.
	Classes int

	tensors map[string]*tensor.Dense
	digest  string
}

// variantKey prefixes the array that records a non-Keras variant in an
// .npz: "variant/torchvision", a float32 array holding 1. A name rather
// than a string array, because the project's npz files hold float arrays
// only; in Python, the variant of an np.load'ed file f is
// next((k[8:] for k in f.files if k.startswith("variant/")), "keras").
const variantKey = "variant/"

type param struct {
	name  string
	shape []int
}

// convParams lists the tensors of one convolution and its BatchNorm, with
// their expected shapes; the bias only where the variant has one.
func convParams(c ConvSpec, bias bool) []param {
	conv, bn := c.Name+"_conv/", c.Name+"_bn/"
	ps := []param{{conv + "kernel", []int{c.K, c.K, c.In, c.Out}}}
	if bias {
		ps = append(ps, param{conv + "bias", []int{c.Out}})
	}
	return append(ps,
		param{bn + "gamma", []int{c.Out}},
		param{bn + "beta", []int{c.Out}},
		param{bn + "moving_mean", []int{c.Out}},
		param{bn + "moving_variance", []int{c.Out}},
	)
}

// Load reads ResNet50 weights and checks every tensor: present, of the
// expected shape, finite. It reads
//
//   - the project's .npz (see the package documentation for its layout),
//     of either variant; float64 arrays are converted to float32;
//   - a torchvision ResNet50 state dict as torch.save writes it (.pth, the
//     zip format of PyTorch >= 1.6 or the older single-pickle format), such
//     as torchvision's resnet50-11ad3fa6.pth. Nothing in the file is
//     executed: the pickle may only build dicts and tensors;
//   - Keras' ResNet50 .h5 weights (the legacy HDF5 layout of save_weights,
//     as keras.applications downloads them: either official release, with
//     or without the top), the same tensors scripts/export_keras_resnet50.py
//     writes to an .npz.
//
// The format is told from the content, not the name.
func Load(path string) (*Weights, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load weights: %w", err)
	} else if fi.IsDir() {
		return nil, fmt.Errorf("load weights %s: a folder, want a weights file (%s)", path, weightFormats)
	}
	h5, err := isHDF5File(path)
	if err != nil {
		return nil, fmt.Errorf("load weights: %w", err)
	}
	if h5 {
		w, err := loadKerasH5(path)
		if err != nil {
			return nil, fmt.Errorf("load weights: %w", err)
		}
		return w, nil
	}
	torch, err := isTorchFile(path)
	if err != nil {
		return nil, fmt.Errorf("load weights: %w", err)
	}
	if torch {
		w, err := loadPTH(path)
		if err != nil {
			return nil, fmt.Errorf("load weights %s: %w", path, err)
		}
		return w, nil
	}
	if head, err := fileHead(path, 4); err != nil {
		return nil, fmt.Errorf("load weights: %w", err)
	} else if !bytes.HasPrefix(head, []byte("PK")) { // every zip (.npz) starts with a "PK" record
		return nil, fmt.Errorf("load weights %s: not a weights file (%s): it starts with %q", path, weightFormats, head)
	}
	a, err := tensorio.OpenNPZ(path)
	if err != nil {
		return nil, fmt.Errorf("load weights: %w", err)
	}
	defer a.Close()
	if !a.Has("conv1_conv/kernel") {
		return nil, fmt.Errorf("load weights %s: no tensor %q: not a ResNet50 weights file in the project's layout (it holds %d arrays)", path, "conv1_conv/kernel", len(a.Names()))
	}
	m := make(map[string]*tensor.Dense, len(a.Names()))
	for _, name := range a.Names() {
		t, err := a.Read(name)
		if err != nil {
			return nil, fmt.Errorf("load weights: %w", err)
		}
		m[name] = t
	}
	w, err := FromTensors(path, m)
	if err != nil {
		return nil, fmt.Errorf("load weights %s: %w", path, err)
	}
	return w, nil
}

// weightFormats names the files Load reads, for its errors.
const weightFormats = "Keras .h5, PyTorch .pth or the project's .npz"

// fileHead returns the first n bytes of the file at path (fewer if it is
// shorter).
func fileHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:k], nil
}

// FromTensors checks a set of named tensors as ResNet50 weights. The
// variant is Keras unless the set holds a marker "variant/<name>" (as an
// .npz written by Save does); the width is read from conv1_conv/kernel;
// every other tensor must then match. A torchvision set has no convolution
// biases; all-zero ones are accepted and dropped. The map is not modified.
func FromTensors(source string, m map[string]*tensor.Dense) (*Weights, error) {
	variant, marker := Keras, ""
	params := make(map[string]*tensor.Dense, len(m))
	for name, t := range m {
		if v, ok := strings.CutPrefix(name, variantKey); ok {
			if marker != "" {
				return nil, fmt.Errorf("two variant markers, %q and %q", marker, name)
			}
			variant, marker = Variant(v), name
			continue
		}
		params[name] = t
	}
	stem, ok := params["conv1_conv/kernel"]
	if !ok {
		return nil, fmt.Errorf("tensor %q missing", "conv1_conv/kernel")
	}
	if s := stem.Shape(); len(s) != 4 || s[0] != 7 || s[1] != 7 || s[2] != 3 {
		return nil, fmt.Errorf("tensor %q: want shape (7, 7, 3, width), got %v", "conv1_conv/kernel", s)
	}
	arch, err := NewArch(variant, stem.Shape()[3])
	if err != nil {
		return nil, err
	}
	w := &Weights{Source: source, Arch: arch, tensors: params}
	known := map[string]bool{"predictions/kernel": true, "predictions/bias": true}
	for _, c := range arch.Convs() {
		for _, p := range convParams(c, arch.ConvBias) {
			if err := w.check(p.name, p.shape); err != nil {
				return nil, err
			}
			known[p.name] = true
		}
		if !arch.ConvBias {
			if err := w.dropZeroBias(c); err != nil {
				return nil, err
			}
		}
	}
	// A tensor the network does not use means the file is not what it
	// says: the blocks of a deeper ResNet, say, would otherwise be dropped
	// without a word.
	var unknown []string
	for name := range w.tensors {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("%d tensors a ResNet50 does not have, e.g. %q: not ResNet50 weights (a deeper ResNet has more blocks)", len(unknown), unknown[:min(3, len(unknown))])
	}
	k, hasK := params["predictions/kernel"]
	_, hasB := params["predictions/bias"]
	switch {
	case hasK != hasB:
		return nil, errors.New("predictions layer incomplete: want both predictions/kernel and predictions/bias")
	case hasK:
		if s := k.Shape(); len(s) != 2 || s[0] != arch.FeatureDim() || s[1] < 1 {
			return nil, fmt.Errorf("tensor %q: want shape (%d, classes), got %v", "predictions/kernel", arch.FeatureDim(), s)
		}
		w.Classes = k.Shape()[1]
		if err := w.check("predictions/kernel", []int{arch.FeatureDim(), w.Classes}); err != nil {
			return nil, err
		}
		if err := w.check("predictions/bias", []int{w.Classes}); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// dropZeroBias removes a bias that a variant without convolution biases
// does not use, provided it is zero: a non-zero one would change the
// features, so it means the file is not what it says it is.
func (w *Weights) dropZeroBias(c ConvSpec) error {
	name := c.Name + "_conv/bias"
	t, ok := w.tensors[name]
	if !ok {
		return nil
	}
	if err := w.check(name, []int{c.Out}); err != nil {
		return err
	}
	for i, v := range t.Data().([]float32) {
		if v != 0 {
			return fmt.Errorf("tensor %q: element %d is %v: %s convolutions have no bias", name, i, v, w.Arch.Variant)
		}
	}
	delete(w.tensors, name)
	return nil
}

func (w *Weights) check(name string, shape []int) error {
	t, ok := w.tensors[name]
	if !ok {
		return fmt.Errorf("tensor %q missing", name)
	}
	if !t.Shape().Eq(tensor.Shape(shape)) {
		return fmt.Errorf("tensor %q: want shape %v, got %v", name, tensor.Shape(shape), t.Shape())
	}
	if t.Dtype() != tensor.Float32 {
		return fmt.Errorf("tensor %q: want float32, got %v", name, t.Dtype())
	}
	for i, v := range t.Data().([]float32) {
		// All exponent bits set: an infinity or a NaN. One test per weight
		// instead of two float64 ones: this loop is much of a load.
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
			return fmt.Errorf("tensor %q: element %d is %v: weights must be finite", name, i, v)
		}
	}
	if strings.HasSuffix(name, "moving_variance") {
		for i, v := range t.Data().([]float32) {
			if v < 0 {
				return fmt.Errorf("tensor %q: element %d is %v: a variance cannot be negative", name, i, v)
			}
		}
	}
	return nil
}

// data returns the backing slice of a checked tensor, nil for one the
// variant does not have (a torchvision convolution's bias).
func (w *Weights) data(name string) []float32 {
	t, ok := w.tensors[name]
	if !ok {
		return nil
	}
	return t.Data().([]float32)
}

// Names lists the tensors, sorted; the variant marker of an .npz is not
// one of them.
func (w *Weights) Names() []string {
	names := make([]string, 0, len(w.tensors))
	for n := range w.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Tensor returns the named tensor, or nil.
func (w *Weights) Tensor(name string) *tensor.Dense { return w.tensors[name] }

// arrays returns what an .npz of the weights holds: the tensors and, for a
// variant other than Keras, its marker.
func (w *Weights) arrays() map[string]*tensor.Dense {
	if w.Arch.Variant == Keras {
		return w.tensors
	}
	m := make(map[string]*tensor.Dense, len(w.tensors)+1)
	for n, t := range w.tensors {
		m[n] = t
	}
	m[variantKey+string(w.Arch.Variant)] = tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{1}))
	return m
}

// Save writes the weights as an .npz file that Load (and numpy.load) reads.
func (w *Weights) Save(path string) error { return tensorio.WriteNPZ(path, w.arrays()) }

// Digest is a sha256 over every array's name, shape and values, the
// variant marker included: two weight sets with the same digest compute
// the same features. Weights read from a .pth and from the .npz Save
// writes of them have the same digest.
func (w *Weights) Digest() string {
	if w.digest != "" {
		return w.digest
	}
	m := w.arrays()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	var buf []byte
	for _, n := range names {
		t := m[n]
		buf = append(buf[:0], n...)
		buf = append(buf, 0)
		for _, s := range t.Shape() {
			buf = binary.LittleEndian.AppendUint64(buf, uint64(s))
		}
		h.Write(buf)
		h.Write(tensorio.Float32Bytes(t.Data().([]float32)))
	}
	w.digest = hex.EncodeToString(h.Sum(nil))
	return w.digest
}

// Random returns deterministic random weights of the given width, for
// smoke runs and tests where no pretrained file is at hand: He-normal
// kernels and BatchNorm statistics chosen so that activations keep a sane
// scale through all sixteen blocks. classes > 0 adds a predictions layer.
// Features from random weights separate classes only weakly; real use needs
// pretrained weights.
func Random(width, classes int, seed uint64) (*Weights, error) {
	arch, err := NewArch(Keras, width)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed_0f_4e5e7))
	m := map[string]*tensor.Dense{}
	vec := func(n int, f func() float64) *tensor.Dense {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(f())
		}
		return tensor.New(tensor.WithShape(n), tensor.WithBacking(d))
	}
	for _, c := range arch.Convs() {
		fanIn := float64(c.K * c.K * c.In)
		std := math.Sqrt(2 / fanIn)
		k := vec(c.K*c.K*c.In*c.Out, func() float64 { return rng.NormFloat64() * std })
		k.Reshape(c.K, c.K, c.In, c.Out)
		m[c.Name+"_conv/kernel"] = k
		m[c.Name+"_conv/bias"] = vec(c.Out, func() float64 { return 0 })
		// He-normal kernels keep a ReLU network's scale from layer to layer;
		// a small gamma on the residual branch's last BatchNorm stops the
		// sum from growing block by block.
		gamma := 1.0
		if strings.HasSuffix(c.Name, "_3") {
			gamma = 0.3
		}
		m[c.Name+"_bn/gamma"] = vec(c.Out, func() float64 { return gamma * (0.8 + 0.4*rng.Float64()) })
		m[c.Name+"_bn/beta"] = vec(c.Out, func() float64 { return 0.05 * rng.NormFloat64() })
		m[c.Name+"_bn/moving_mean"] = vec(c.Out, func() float64 { return 0 })
		// The stem sees 'caffe' pixels (a spread of about 60 around zero);
		// later layers see activations near unit scale.
		variance := 1.0
		if c.Name == "conv1" {
			variance = 2 * 60 * 60
		}
		m[c.Name+"_bn/moving_variance"] = vec(c.Out, func() float64 { return variance })
	}
	if classes > 0 {
		f := arch.FeatureDim()
		lim := math.Sqrt(6 / float64(f+classes))
		k := vec(f*classes, func() float64 { return (2*rng.Float64() - 1) * lim })
		k.Reshape(f, classes)
		m["predictions/kernel"] = k
		m["predictions/bias"] = vec(classes, func() float64 { return 0 })
	}
	return FromTensors(fmt.Sprintf("random(width=%d, classes=%d, seed=%d)", width, classes, seed), m)
}

// ParamCounts returns Keras' parameter counts for these weights: every
// kernel and bias is trainable, as are BatchNorm's gamma and beta; the
// moving statistics are not. For torchvision, trainable is what
// sum(p.numel() for p in model.parameters()) reports (25,557,032 for
// ResNet50) and non-trainable counts the running statistics.
func (w *Weights) ParamCounts() (total, trainable, nonTrainable int) {
	for _, c := range w.Arch.Convs() {
		trainable += c.K*c.K*c.In*c.Out + 2*c.Out
		if w.Arch.ConvBias {
			trainable += c.Out
		}
		nonTrainable += 2 * c.Out
	}
	if w.Classes > 0 {
		trainable += w.Arch.FeatureDim()*w.Classes + w.Classes
	}
	return trainable + nonTrainable, trainable, nonTrainable
}
