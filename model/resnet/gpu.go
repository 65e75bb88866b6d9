//go:build gotransfer_cuda || cudaemu

package resnet

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"gorgonia.org/tensor"
)

// The GPU engine. Its arithmetic is in kernels/resnet.cu; this file plans
// the forward pass, owns the buffers and drives a gpuDevice: the CUDA
// driver (gpu_cuda.go, tag gotransfer_cuda) or, for tests on machines with
// no GPU, the same kernels compiled as C++ and run on the CPU (gpu_emu.go,
// tag cudaemu).

// ErrNoGPU is wrapped by the error New(w, "cuda") returns when the build has
// CUDA support but the machine has no usable NVIDIA driver or GPU.
var ErrNoGPU = errors.New("no CUDA driver or GPU found")

// devPtr is a device address.
type devPtr uintptr

// The engine uses two streams: one for host-to-device copies of the input,
// one for the network, so that a chunk's input is copied while the previous
// chunk is computed.
const (
	streamCopy = iota
	streamCompute
	numStreams
)

// Events: per input slot, "its host-to-device copy is done" and "the chunk
// that read it is done, features copied back".
const (
	evCopied0 = iota
	evCopied1
	evDone0
	evDone1
	numEvents
)

// gpuKernel names a kernel of kernels/resnet.cu.
type gpuKernel int

const (
	kConvN128Vec gpuKernel = iota
	kConvN64Vec
	kConvN64Stem
	kConvN64Any
	kMaxPool
	kAvgPool
	numKernels
)

// gpuKernels gives each kernel's name in the PTX and its parameters, 'p' for
// a pointer and 'i' for an int, in order. The launches below pass exactly
// these, the emulator checks the count against the C++ signatures, and
// TestGPUKernelSignatures checks both against the committed PTX.
var gpuKernels = [numKernels]struct{ name, params string }{
	kConvN128Vec: {"conv_n128_vec", convParamSig},
	kConvN64Vec:  {"conv_n64_vec", convParamSig},
	kConvN64Stem: {"conv_n64_stem", convParamSig},
	kConvN64Any:  {"conv_n64_any", convParamSig},
	kMaxPool:     {"maxpool3x3s2", "ppiiiiii"},
	kAvgPool:     {"global_avg_pool", "ppiii"},
}

// x, w, bias, res, y, nb, h, w, cin, oh, ow, cout, ks, stride, pad, relu
const convParamSig = "pppppiiiiiiiiiii"

// convTileM is the conv kernels' block tile height (output pixels).
const convTileM = 128

// gpuDevice is what the engine needs from a GPU. Every method is called
// between enter and the function it returns, from one goroutine at a time.
type gpuDevice interface {
	// enter makes the device current for the calling goroutine (the CUDA
	// context is per OS thread) and returns the function that undoes it.
	enter() (exit func(), err error)
	alloc(bytes int) (devPtr, error)
	free(p devPtr) error
	// allocHost returns page-locked host memory, which copies can read and
	// write asynchronously.
	allocHost(n int) ([]float32, error)
	freeHost(b []float32) error
	// upload and download copy synchronously.
	upload(dst devPtr, src []float32) error
	download(dst []float32, src devPtr) error
	// h2d and d2h copy asynchronously on a stream, from and to allocHost
	// memory.
	h2d(stream int, dst devPtr, src []float32) error
	d2h(stream int, dst []float32, src devPtr) error
	record(event, stream int) error
	wait(stream, event int) error
	syncEvent(event int) error
	syncStream(stream int) error
	launch(stream int, k gpuKernel, grid, block [3]int, args ...uint64) error
	// describe says which GPU and driver this is.
	describe() string
	close() error
}

type gpuConv struct {
	spec ConvSpec
	w, b devPtr
	kern gpuKernel
	tn   int // the kernel's block tile width (output channels)
}

type gpuBlock struct {
	name     string
	shortcut *gpuConv
	convs    [3]gpuConv
}

// defaultChunk is the most images one pass of the network takes: larger
// batches are split, and a chunk's input is copied to the device while the
// previous chunk is computed. Chunks of 128 to 256 images keep even the
// last stage's GEMMs (M = 49 pixels x images) large enough for a big GPU.
const defaultChunk = 256

// GPU runs the frozen ResNet50 on an NVIDIA GPU, with the same numerics as
// the CPU engine: BatchNorm folded into the convolutions (by the same fold),
// FP32 products (no TF32), NHWC activations. Weights are uploaded once;
// buffers grow to the largest chunk and image size seen and are reused.
// Batches go through pinned host memory; Features blocks its goroutine
// without spinning a core while the GPU works, so the goroutines decoding
// the next batch (dataset.Stream's workers) run meanwhile.
//
// A GPU is safe for concurrent use; forward passes are serialized.
type GPU struct {
	dev     gpuDevice
	weights *Weights
	stem    gpuConv
	blocks  []gpuBlock

	mu     sync.Mutex
	closed bool
	chunk  int
	// Device buffers: activations (4, rotated as in the CPU engine), the
	// two input slots, the pooled features of a chunk; capacities in
	// float32s.
	bufs    [4]devPtr
	actCap  int
	in      [2]devPtr
	inCap   int
	feat    devPtr
	featCap int
	// Pinned host staging for the two input slots and their features.
	pinIn  [2][]float32
	pinOut [2][]float32
}

// newGPU uploads the folded weights through dev. On failure it closes dev.
func newGPU(dev gpuDevice, w *Weights) (_ *GPU, err error) {
	if w == nil || w.Arch == nil {
		dev.close()
		return nil, errors.New("resnet: no weights")
	}
	e := &GPU{dev: dev, weights: w, chunk: defaultChunk}
	exit, err := dev.enter()
	if err != nil {
		dev.close()
		return nil, err
	}
	defer func() {
		exit()
		if err != nil {
			e.Close()
		}
	}()
	up := func(s ConvSpec) (gpuConv, error) {
		f := fold(w, s)
		c := gpuConv{spec: s}
		c.kern, c.tn = convKernel(s)
		var err error
		if c.w, err = e.upload(f.w); err != nil {
			return gpuConv{}, fmt.Errorf("device cuda: uploading %s: %w", s.Name, err)
		}
		if c.b, err = e.upload(f.b); err != nil {
			e.dev.free(c.w)
			return gpuConv{}, fmt.Errorf("device cuda: uploading %s: %w", s.Name, err)
		}
		return c, nil
	}
	if e.stem, err = up(w.Arch.Stem); err != nil {
		return nil, err
	}
	for _, b := range w.Arch.Blocks {
		gb := gpuBlock{name: b.Name}
		if b.Shortcut != nil {
			c, err := up(*b.Shortcut)
			if err != nil {
				return nil, err
			}
			gb.shortcut = &c
		}
		for i, s := range b.Convs {
			if gb.convs[i], err = up(s); err != nil {
				return nil, err
			}
		}
		e.blocks = append(e.blocks, gb)
	}
	return e, nil
}

// convKernel picks the kernel variant for a convolution: float4 gathers when
// the channel counts allow them, and 128-wide tiles when the output channels
// fill them.
func convKernel(s ConvSpec) (gpuKernel, int) {
	switch {
	case s.Out%4 != 0:
		return kConvN64Any, 64
	case s.In%4 != 0:
		return kConvN64Stem, 64
	case s.Out%128 == 0:
		return kConvN128Vec, 128
	default:
		return kConvN64Vec, 64
	}
}

func (e *GPU) upload(v []float32) (devPtr, error) {
	p, err := e.dev.alloc(4 * len(v))
	if err != nil {
		return 0, err
	}
	if err := e.dev.upload(p, v); err != nil {
		e.dev.free(p)
		return 0, err
	}
	return p, nil
}

// Weights returns the weights the engine was built from.
func (e *GPU) Weights() *Weights { return e.weights }

// FeatureDim is the length of each image's feature vector.
func (e *GPU) FeatureDim() int { return e.weights.Arch.FeatureDim() }

// Device says which GPU and driver the engine runs on.
func (e *GPU) Device() string { return e.dev.describe() }

// Close frees the device and pinned memory and releases the GPU. It is safe
// to call more than once.
func (e *GPU) Close() (err error) {
	defer recoverDevice(&err)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	exit, err := e.dev.enter()
	if err != nil {
		// Without the context nothing can be freed one by one; releasing
		// the device below frees it all.
		errs = append(errs, err)
		keep(e.dev.close())
		return fmt.Errorf("device cuda: close: %w", errors.Join(errs...))
	}
	// Nothing may still be running on buffers about to be freed.
	for s := range numStreams {
		keep(e.dev.syncStream(s))
	}
	freeConv := func(c *gpuConv) {
		for _, p := range []devPtr{c.w, c.b} {
			if p != 0 {
				keep(e.dev.free(p))
			}
		}
	}
	freeConv(&e.stem)
	for i := range e.blocks {
		if b := &e.blocks[i]; b.shortcut != nil {
			freeConv(b.shortcut)
		}
		for j := range e.blocks[i].convs {
			freeConv(&e.blocks[i].convs[j])
		}
	}
	keep(e.freeBuffers())
	exit()
	keep(e.dev.close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("device cuda: close: %w", err)
	}
	return nil
}

func (e *GPU) freeBuffers() error {
	var errs []error
	for _, p := range append(append(e.bufs[:], e.in[:]...), e.feat) {
		if p != 0 {
			errs = append(errs, e.dev.free(p))
		}
	}
	for _, b := range append(e.pinIn[:], e.pinOut[:]...) {
		if b != nil {
			errs = append(errs, e.dev.freeHost(b))
		}
	}
	e.bufs, e.in, e.feat = [4]devPtr{}, [2]devPtr{}, 0
	e.pinIn, e.pinOut = [2][]float32{}, [2][]float32{}
	e.actCap, e.inCap, e.featCap = 0, 0, 0
	return errors.Join(errs...)
}

// Features runs the backbone on a batch of preprocessed images, (N, H, W, 3)
// float32 NHWC, and returns the globally average-pooled features (N, F).
func (e *GPU) Features(x *tensor.Dense) (*tensor.Dense, error) {
	return e.forward(x, nil)
}

// FeaturesWithTaps is Features that also reports intermediate activations
// (see Tap), for parity tests and debugging. The batch then runs as one
// chunk, and each tapped activation is copied back synchronously.
func (e *GPU) FeaturesWithTaps(x *tensor.Dense, tap Tap) (*tensor.Dense, error) {
	return e.forward(x, tap)
}

// recoverDevice turns a panic in the device layer (cgo, the driver
// bindings) into an error, so that none crosses the package boundary.
func recoverDevice(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("device cuda: internal error: %v", r)
	}
}

// actPerImage is the largest activation of one h x w image, in float32s.
func (e *GPU) actPerImage(h, w int) int {
	act := 0
	need := func(s ConvSpec, h, w int) (int, int) {
		oh, ow := outSize(h, s.K, s.Stride, s.Pad), outSize(w, s.K, s.Stride, s.Pad)
		act = max(act, h*w*s.In, oh*ow*s.Out)
		return oh, ow
	}
	h, w = need(e.stem.spec, h, w)
	h, w = outSize(h, 3, 2, 1), outSize(w, 3, 2, 1)
	for i := range e.blocks {
		b := &e.blocks[i]
		if b.shortcut != nil {
			need(b.shortcut.spec, h, w)
		}
		h1, w1 := need(b.convs[0].spec, h, w)
		h2, w2 := need(b.convs[1].spec, h1, w1)
		h, w = need(b.convs[2].spec, h2, w2)
	}
	return act
}

// reserve grows the buffers to what chunks of up to n images of h x w need.
func (e *GPU) reserve(n, h, w int) error {
	act, in, feat := n*e.actPerImage(h, w), n*h*w*3, n*e.FeatureDim()
	if e.actCap >= act && e.inCap >= in && e.featCap >= feat {
		return nil
	}
	// Buffers about to be freed may still be in use after a failed pass.
	for s := range numStreams {
		if err := e.dev.syncStream(s); err != nil {
			return fmt.Errorf("device cuda: %w", err)
		}
	}
	grow := func(p *devPtr, capacity *int, want int) error {
		if *capacity >= want {
			return nil
		}
		if *p != 0 {
			if err := e.dev.free(*p); err != nil {
				return err
			}
			*p, *capacity = 0, 0
		}
		q, err := e.dev.alloc(4 * want)
		if err != nil {
			return fmt.Errorf("device cuda: allocating %d MiB: %w", want*4>>20, err)
		}
		*p, *capacity = q, want
		return nil
	}
	if e.actCap < act {
		for i := range e.bufs {
			c := e.actCap
			if err := grow(&e.bufs[i], &c, act); err != nil {
				return err
			}
		}
		e.actCap = act
	}
	if e.inCap < in {
		for i := range e.in {
			c := e.inCap
			if err := grow(&e.in[i], &c, in); err != nil {
				return err
			}
			if err := e.growHost(&e.pinIn[i], in); err != nil {
				return err
			}
		}
		e.inCap = in
	}
	if e.featCap < feat {
		c := e.featCap
		if err := grow(&e.feat, &c, feat); err != nil {
			return err
		}
		for i := range e.pinOut {
			if err := e.growHost(&e.pinOut[i], feat); err != nil {
				return err
			}
		}
		e.featCap = feat
	}
	return nil
}

func (e *GPU) growHost(b *[]float32, n int) error {
	if len(*b) >= n {
		return nil
	}
	if *b != nil {
		if err := e.dev.freeHost(*b); err != nil {
			return err
		}
		*b = nil
	}
	nb, err := e.dev.allocHost(n)
	if err != nil {
		return fmt.Errorf("device cuda: allocating %d MiB of pinned host memory: %w", n*4>>20, err)
	}
	*b = nb
	return nil
}

func (e *GPU) forward(x *tensor.Dense, tap Tap) (_ *tensor.Dense, err error) {
	defer recoverDevice(&err)
	n, h, w, in, err := checkInput(x)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("device cuda: engine is closed")
	}
	exit, err := e.dev.enter()
	if err != nil {
		return nil, err
	}
	defer exit()

	// The kernels index with 32-bit ints: a chunk's largest activation must
	// stay below 2^31 elements.
	per := e.actPerImage(h, w)
	chunk := min(e.chunk, math.MaxInt32/per)
	if n >= 128 {
		// At least two chunks: the second one's copy to the device (and
		// into pinned memory) hides behind the first one's compute, and
		// 64 images still make large GEMMs.
		chunk = min(chunk, (n+1)/2)
	}
	if tap != nil {
		chunk = n
	}
	if chunk < 1 || n > 0 && per*min(chunk, n) > math.MaxInt32 {
		return nil, fmt.Errorf("device cuda: input %dx%d too large for one pass", h, w)
	}
	if n == 0 {
		return tensor.New(tensor.WithShape(0, e.FeatureDim()), tensor.WithBacking([]float32{})), nil
	}
	if err := e.reserve(min(chunk, n), h, w); err != nil {
		return nil, err
	}

	f := e.FeatureDim()
	feats := make([]float32, n*f)
	img := h * w * 3
	// pending[slot] is the chunk [lo, hi) whose features are on their way
	// back through pinOut[slot].
	type span struct{ lo, hi int }
	var pending [2]*span
	collect := func(slot int) error {
		p := pending[slot]
		if p == nil {
			return nil
		}
		if err := e.dev.syncEvent(evDone0 + slot); err != nil {
			return fmt.Errorf("device cuda: forward pass: %w", err)
		}
		copy(feats[p.lo*f:p.hi*f], e.pinOut[slot][:(p.hi-p.lo)*f])
		pending[slot] = nil
		return nil
	}
	for c, lo := 0, 0; lo < n; c, lo = c+1, lo+chunk {
		hi := min(n, lo+chunk)
		slot := c & 1
		// The chunk before last used this slot: once it is done, its input
		// buffers are free and its features can be collected.
		if err := collect(slot); err != nil {
			return nil, err
		}
		copy(e.pinIn[slot], in[lo*img:hi*img])
		if err := e.dev.h2d(streamCopy, e.in[slot], e.pinIn[slot][:(hi-lo)*img]); err != nil {
			return nil, fmt.Errorf("device cuda: copying the input: %w", err)
		}
		if err := e.dev.record(evCopied0+slot, streamCopy); err != nil {
			return nil, fmt.Errorf("device cuda: %w", err)
		}
		if err := e.dev.wait(streamCompute, evCopied0+slot); err != nil {
			return nil, fmt.Errorf("device cuda: %w", err)
		}
		if err := e.network(e.in[slot], hi-lo, h, w, tap); err != nil {
			return nil, err
		}
		if err := e.dev.d2h(streamCompute, e.pinOut[slot][:(hi-lo)*f], e.feat); err != nil {
			return nil, fmt.Errorf("device cuda: copying the features: %w", err)
		}
		if err := e.dev.record(evDone0+slot, streamCompute); err != nil {
			return nil, fmt.Errorf("device cuda: %w", err)
		}
		pending[slot] = &span{lo, hi}
	}
	// Collect in submission order; the later chunk's event implies the
	// earlier one's, but each slot's features must be copied out.
	for c := range 2 {
		if err := collect(c); err != nil {
			return nil, err
		}
	}
	return tensor.New(tensor.WithShape(n, f), tensor.WithBacking(feats)), nil
}

// network queues the whole backbone for n images at in on the compute
// stream, leaving the pooled features in e.feat. The buffer rotation is the
// CPU engine's.
func (e *GPU) network(in devPtr, n, h, w int, tap Tap) error {
	emit := func(name string, act devPtr, h, w, c int) error {
		if tap == nil {
			return nil
		}
		if err := e.dev.syncStream(streamCompute); err != nil {
			return fmt.Errorf("device cuda: forward pass: %w", err)
		}
		d := make([]float32, n*h*w*c)
		if err := e.dev.download(d, act); err != nil {
			return fmt.Errorf("device cuda: copying %s: %w", name, err)
		}
		tap(name, tensor.New(tensor.WithShape(n, h, w, c), tensor.WithBacking(d)))
		return nil
	}

	h, w, err := e.conv(&e.stem, in, n, h, w, e.bufs[0], 0, true)
	if err != nil {
		return err
	}
	if err := emit("conv1_relu", e.bufs[0], h, w, e.stem.spec.Out); err != nil {
		return err
	}
	c := e.stem.spec.Out
	oh, ow := outSize(h, 3, 2, 1), outSize(w, 3, 2, 1)
	if err := e.launchElementwise(kMaxPool, n*oh*ow*c,
		uint64(e.bufs[0]), uint64(e.bufs[1]), iarg(n), iarg(h), iarg(w), iarg(c), iarg(oh), iarg(ow)); err != nil {
		return err
	}
	h, w = oh, ow
	if err := emit("pool1_pool", e.bufs[1], h, w, c); err != nil {
		return err
	}

	cur := 1
	for i := range e.blocks {
		b := &e.blocks[i]
		short, t1, t2 := blockBuffers(cur, b.shortcut != nil)
		if b.shortcut != nil {
			if _, _, err := e.conv(b.shortcut, e.bufs[cur], n, h, w, e.bufs[short], 0, false); err != nil {
				return err
			}
		}
		// The stride sits on the first convolution (Keras) or on the
		// second (torchvision): sizes are chained through all three.
		h1, w1, err := e.conv(&b.convs[0], e.bufs[cur], n, h, w, e.bufs[t1], 0, true)
		if err != nil {
			return err
		}
		h2, w2, err := e.conv(&b.convs[1], e.bufs[t1], n, h1, w1, e.bufs[t2], 0, true)
		if err != nil {
			return err
		}
		if h, w, err = e.conv(&b.convs[2], e.bufs[t2], n, h2, w2, e.bufs[t1], e.bufs[short], true); err != nil {
			return err
		}
		cur = t1
		if err := emit(b.name+"_out", e.bufs[cur], h, w, b.convs[2].spec.Out); err != nil {
			return err
		}
	}
	f := e.FeatureDim()
	return e.launchElementwise(kAvgPool, n*f, uint64(e.bufs[cur]), uint64(e.feat), iarg(n), iarg(h*w), iarg(f))
}

// iarg passes an int kernel argument: the kernel reads the low 32 bits of
// its 64-bit slot (little-endian).
func iarg(v int) uint64 { return uint64(uint32(int32(v))) }

// conv queues out = act(conv(in) + bias [+ residual]) and returns the
// output's spatial size.
func (e *GPU) conv(c *gpuConv, in devPtr, n, h, w int, out, residual devPtr, relu bool) (oh, ow int, err error) {
	s := c.spec
	oh, ow = outSize(h, s.K, s.Stride, s.Pad), outSize(w, s.K, s.Stride, s.Pad)
	m := n * oh * ow
	grid := [3]int{(m + convTileM - 1) / convTileM, (s.Out + c.tn - 1) / c.tn, 1}
	r := 0
	if relu {
		r = 1
	}
	err = e.dev.launch(streamCompute, c.kern, grid, [3]int{256, 1, 1},
		uint64(in), uint64(c.w), uint64(c.b), uint64(residual), uint64(out),
		iarg(n), iarg(h), iarg(w), iarg(s.In), iarg(oh), iarg(ow), iarg(s.Out),
		iarg(s.K), iarg(s.Stride), iarg(s.Pad), iarg(r))
	if err != nil {
		return 0, 0, fmt.Errorf("device cuda: %s: %w", s.Name, err)
	}
	return oh, ow, nil
}

// launchElementwise launches a grid-stride kernel with enough blocks of 256
// threads to cover total elements, capped since each thread loops.
func (e *GPU) launchElementwise(k gpuKernel, total int, args ...uint64) error {
	blocks := min((total+255)/256, 65535)
	if err := e.dev.launch(streamCompute, k, [3]int{max(blocks, 1), 1, 1}, [3]int{256, 1, 1}, args...); err != nil {
		return fmt.Errorf("device cuda: %s: %w", gpuKernels[k].name, err)
	}
	return nil
}

// checkLaunch checks a launch's arguments against the kernel's parameter
// list: a mismatch would otherwise reach the GPU as garbage.
func checkLaunch(k gpuKernel, args []uint64) error {
	if k < 0 || k >= numKernels {
		return fmt.Errorf("no kernel %d", k)
	}
	if want := len(gpuKernels[k].params); len(args) != want {
		return fmt.Errorf("%s: %d arguments, want %d", gpuKernels[k].name, len(args), want)
	}
	return nil
}
