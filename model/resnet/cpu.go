package resnet

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"gorgonia.org/tensor"

	"gotransfer/internal/openblas"
)

// foldedConv is a convolution with its BatchNorm folded in: kernel rows in
// (ky, kx, cin) order, one column per output channel, and one bias. Where
// the CPU engine runs the convolution with Winograd, u holds the kernel's
// transform (see winogradFilter) instead, and w is nil; else u is nil.
type foldedConv struct {
	spec ConvSpec
	w, b []float32
	u    []float32
}

type foldedBlock struct {
	name     string
	shortcut *foldedConv
	convs    [3]foldedConv
}

// CPU runs the frozen ResNet50 on the CPU in NHWC layout. 1x1
// convolutions are one OpenBLAS sgemm on the activations, 3x3 ones with
// stride 1 use Winograd's F(2x2, 3x3) (16 smaller sgemms on transformed
// tiles, see convWinograd), the others (the stem, torchvision's strided
// 3x3) one sgemm after im2col. Bias, the shortcut on a block's last
// convolution and ReLU are applied in one pass over the output.
// Buffers grow to the largest batch seen and are reused, so nothing is
// allocated per batch after the first.
//
// A CPU is safe for concurrent use; forward passes are serialized.
type CPU struct {
	weights *Weights
	stem    foldedConv
	blocks  []foldedBlock

	mu   sync.Mutex
	bufs [4][]float32
	col  []float32

	// Winograd scratch, one per worker, and a row of zeros.
	wino     [][]float32
	winoZero []float32
	// winogradConvs counts the convolutions run with Winograd, so that
	// tests can tell the fast path is taken.
	winogradConvs int
}

// NewCPU folds the weights' BatchNorms into their convolutions and returns
// an engine ready to run.
func NewCPU(w *Weights) (*CPU, error) {
	if w == nil || w.Arch == nil {
		return nil, errors.New("resnet: no weights")
	}
	e := &CPU{weights: w, stem: fold(w, w.Arch.Stem), blocks: make([]foldedBlock, len(w.Arch.Blocks))}
	// The blocks are folded in parallel: it is most of a predict command's
	// start-up.
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i, b := range w.Arch.Blocks {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			e.blocks[i] = foldBlock(w, b)
		})
	}
	wg.Wait()
	return e, nil
}

func foldBlock(w *Weights, b Block) foldedBlock {
	fb := foldedBlock{name: b.Name}
	if b.Shortcut != nil {
		c := fold(w, *b.Shortcut)
		fb.shortcut = &c
	}
	for i, c := range b.Convs {
		fb.convs[i] = fold(w, c)
		if winograd(c) {
			// Only the transform is used from here on; dropping the
			// kernel keeps 16 floats per channel pair instead of 25.
			fb.convs[i].u = winogradFilter(&fb.convs[i])
			fb.convs[i].w = nil
		}
	}
	return fb
}

// fold computes W' = W*s and b' = (b-mean)*s + beta with
// s = gamma/sqrt(var+eps), in float64, with the variant's epsilon; a
// convolution without a bias (torchvision) has b = 0.
func fold(w *Weights, c ConvSpec) foldedConv {
	k := w.data(c.Name + "_conv/kernel")
	bias := w.data(c.Name + "_conv/bias") // nil without a bias
	gamma := w.data(c.Name + "_bn/gamma")
	beta := w.data(c.Name + "_bn/beta")
	mean := w.data(c.Name + "_bn/moving_mean")
	variance := w.data(c.Name + "_bn/moving_variance")
	f := foldedConv{spec: c, w: make([]float32, len(k)), b: make([]float32, c.Out)}
	scale := make([]float64, c.Out)
	for o := range c.Out {
		scale[o] = float64(gamma[o]) / math.Sqrt(float64(variance[o])+w.Arch.Epsilon)
		var b float64
		if bias != nil {
			b = float64(bias[o])
		}
		f.b[o] = float32((b-float64(mean[o]))*scale[o] + float64(beta[o]))
	}
	// HWIO flattened row-major is already (ky, kx, cin) x cout.
	for i := 0; i < len(k); i += c.Out {
		dst := f.w[i : i+c.Out]
		for o, v := range k[i : i+c.Out] {
			dst[o] = float32(float64(v) * scale[o])
		}
	}
	return f
}

// Weights returns the weights the engine was built from.
func (e *CPU) Weights() *Weights { return e.weights }

// FeatureDim is the length of each image's feature vector.
func (e *CPU) FeatureDim() int { return e.weights.Arch.FeatureDim() }

// Close releases the buffers.
func (e *CPU) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.bufs = [4][]float32{}
	e.col = nil
	e.wino, e.winoZero = nil, nil
	return nil
}

// Features runs the backbone on a batch of preprocessed images, (N, H, W, 3)
// float32 NHWC, and returns the globally average-pooled features (N, F).
func (e *CPU) Features(x *tensor.Dense) (*tensor.Dense, error) {
	return e.forward(x, nil)
}

// Tap receives a named intermediate activation (NHWC) during a forward
// pass: conv1_relu, pool1_pool and every block's output, e.g.
// conv2_block1_out. The tensor is a copy the callee may keep.
type Tap func(name string, activation *tensor.Dense)

// FeaturesWithTaps is Features that also reports intermediate activations,
// for parity tests and Grad-CAM.
func (e *CPU) FeaturesWithTaps(x *tensor.Dense, tap Tap) (*tensor.Dense, error) {
	return e.forward(x, tap)
}

func checkInput(x *tensor.Dense) (n, h, w int, data []float32, err error) {
	if x == nil {
		return 0, 0, 0, nil, errors.New("resnet: nil input")
	}
	s := x.Shape()
	if len(s) != 4 || s[3] != 3 {
		return 0, 0, 0, nil, fmt.Errorf("resnet: input shape %v: want (N, H, W, 3) NHWC", s)
	}
	if x.Dtype() != tensor.Float32 {
		return 0, 0, 0, nil, fmt.Errorf("resnet: input dtype %v: want float32", x.Dtype())
	}
	n, h, w = s[0], s[1], s[2]
	if h < 32 || w < 32 {
		return 0, 0, 0, nil, fmt.Errorf("resnet: input %dx%d: ResNet50 needs at least 32x32", h, w)
	}
	if x.RequiresIterator() {
		x = x.Materialize().(*tensor.Dense)
	}
	return n, h, w, x.Data().([]float32), nil
}

func (e *CPU) forward(x *tensor.Dense, tap Tap) (*tensor.Dense, error) {
	n, h, w, in, err := checkInput(x)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reserve(n, h, w)
	// The workers of conv each run a single-threaded sgemm.
	defer openblas.SetThreads(openblas.Threads())
	openblas.SetThreads(1)

	emit := func(name string, act []float32, h, w, c int) {
		if tap != nil {
			d := append([]float32(nil), act[:n*h*w*c]...)
			tap(name, tensor.New(tensor.WithShape(n, h, w, c), tensor.WithBacking(d)))
		}
	}

	// Stem: 7x7/2 convolution, ReLU, 3x3/2 max pool.
	h, w = e.conv(&e.stem, in, n, h, w, e.bufs[0], nil, true)
	emit("conv1_relu", e.bufs[0], h, w, e.stem.spec.Out)
	h, w = maxPool3x3s2(e.bufs[0], n, h, w, e.stem.spec.Out, e.bufs[1])
	emit("pool1_pool", e.bufs[1], h, w, e.stem.spec.Out)

	// cur holds the block input; the other buffers take the shortcut and the
	// two inner activations. The block output lands in the first inner
	// buffer, free again once the 3x3 convolution has read it.
	cur := 1
	for i := range e.blocks {
		b := &e.blocks[i]
		short, t1, t2 := blockBuffers(cur, b.shortcut != nil)
		if b.shortcut != nil {
			e.conv(b.shortcut, e.bufs[cur], n, h, w, e.bufs[short], nil, false)
		}
		// The stride sits on the first convolution (Keras) or on the
		// second (torchvision), so sizes are chained through all three.
		h1, w1 := e.conv(&b.convs[0], e.bufs[cur], n, h, w, e.bufs[t1], nil, true)
		h2, w2 := e.conv(&b.convs[1], e.bufs[t1], n, h1, w1, e.bufs[t2], nil, true)
		h, w = e.conv(&b.convs[2], e.bufs[t2], n, h2, w2, e.bufs[t1], e.bufs[short], true)
		cur = t1
		emit(b.name+"_out", e.bufs[cur], h, w, b.convs[2].spec.Out)
	}

	f := e.FeatureDim()
	feats := make([]float32, n*f)
	globalAvgPool(e.bufs[cur], n, h*w, f, feats)
	return tensor.New(tensor.WithShape(n, f), tensor.WithBacking(feats)), nil
}

// reserve grows the buffers to what a batch of n images of h x w needs.
func (e *CPU) reserve(n, h, w int) {
	act, col, wino, zero := 0, 0, 0, 0
	need := func(c *foldedConv, h, w int) (int, int) {
		s := c.spec
		oh, ow := outSize(h, s.K, s.Stride, s.Pad), outSize(w, s.K, s.Stride, s.Pad)
		act = max(act, n*h*w*s.In, n*oh*ow*s.Out)
		// im2col room is kept for the Winograd convolutions too:
		// Calibrate runs them with raw kernels, which have no Winograd
		// transform, through this engine's buffers.
		if s.K != 1 || s.Stride != 1 || s.Pad != 0 {
			col = max(col, n*oh*ow*s.K*s.K*s.In)
		}
		if c.u != nil {
			wino, zero = max(wino, winogradScratch(s)), max(zero, s.In, s.Out)
		}
		return oh, ow
	}
	h, w = need(&e.stem, h, w)
	h, w = outSize(h, 3, 2, 1), outSize(w, 3, 2, 1)
	for i := range e.blocks {
		b := &e.blocks[i]
		if b.shortcut != nil {
			need(b.shortcut, h, w)
		}
		h1, w1 := need(&b.convs[0], h, w)
		h2, w2 := need(&b.convs[1], h1, w1)
		h, w = need(&b.convs[2], h2, w2)
	}
	for i := range e.bufs {
		if len(e.bufs[i]) < act {
			e.bufs[i] = make([]float32, act)
		}
	}
	if len(e.col) < col {
		e.col = make([]float32, col)
	}
	if wino > 0 {
		e.growWinograd(runtime.GOMAXPROCS(0), wino, zero)
	}
}

// conv computes out = act(conv(in) + bias [+ residual]) and returns the
// output's spatial size. The output rows (pixels) are split among the
// CPUs; each worker lays out its own rows' receptive fields, runs a
// single-threaded sgemm on them and adds bias and residual and applies ReLU
// in one vectorized pass while they are still in cache.
func (e *CPU) conv(c *foldedConv, in []float32, n, h, w int, out, residual []float32, relu bool) (oh, ow int) {
	if c.u != nil {
		return e.convWinograd(c, in, n, h, w, out, residual, relu)
	}
	s := c.spec
	oh, ow = outSize(h, s.K, s.Stride, s.Pad), outSize(w, s.K, s.Stride, s.Pad)
	rows := n * oh * ow
	kdim := s.K * s.K * s.In
	direct := s.K == 1 && s.Stride == 1 && s.Pad == 0
	parallelFor(rows, func(lo, hi int) {
		o := out[lo*s.Out : hi*s.Out]
		var a []float32
		if direct {
			a = in[lo*kdim : hi*kdim]
		} else {
			a = e.col[lo*kdim : hi*kdim]
			im2col(in, n, h, w, s, oh, ow, lo, hi, a)
		}
		openblas.Sgemm(hi-lo, s.Out, kdim, 1, a, c.w, 0, o)
		var res []float32
		if residual != nil {
			res = residual[lo*s.Out : hi*s.Out]
		}
		epilogue(o, c.b, res, relu)
	})
	return oh, ow
}

// im2col lays out, for each output pixel, its receptive field as one row in
// (ky, kx, cin) order, with zeros where the window leaves the image.
// Only output rows [lo, hi) are laid out, into col from its start. The
// pixels of one kernel row that lie inside the image are adjacent in NHWC,
// so each kernel row is one copy (the stem's 7 pixels of 3 channels would
// otherwise be 7 copies of 12 bytes).
func im2col(in []float32, n, h, w int, s ConvSpec, oh, ow, lo, hi int, col []float32) {
	kdim := s.K * s.K * s.In
	for r := lo; r < hi; r++ {
		b, rem := r/(oh*ow), r%(oh*ow)
		oy, ox := rem/ow, rem%ow
		dst := col[(r-lo)*kdim : (r-lo+1)*kdim]
		// Kernel columns [kx0, kx1) fall inside the image.
		x0 := ox*s.Stride - s.Pad
		kx0, kx1 := max(0, -x0), min(s.K, w-x0)
		for ky := range s.K {
			iy := oy*s.Stride - s.Pad + ky
			row := dst[ky*s.K*s.In : (ky+1)*s.K*s.In]
			if iy < 0 || iy >= h || kx0 >= kx1 {
				clear(row)
				continue
			}
			clear(row[:kx0*s.In])
			base := ((b*h+iy)*w + x0) * s.In
			copy(row[kx0*s.In:kx1*s.In], in[base+kx0*s.In:base+kx1*s.In])
			clear(row[kx1*s.In:])
		}
	}
}

// globalAvgPool averages each image's hw pixels per channel, in float64.
func globalAvgPool(in []float32, n, hw, c int, out []float32) {
	acc := make([]float64, c)
	for b := range n {
		clear(acc)
		for p := range hw {
			row := in[(b*hw+p)*c : (b*hw+p+1)*c]
			for j, v := range row {
				acc[j] += float64(v)
			}
		}
		for j := range acc {
			out[b*c+j] = float32(acc[j] / float64(hw))
		}
	}
}

// parallelFor splits [0, n) into one contiguous range per CPU.
func parallelFor(n int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers == 1 || n < 64 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, min(lo+chunk, n))
	}
	wg.Wait()
}
