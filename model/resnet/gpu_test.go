//go:build gotransfer_cuda || cudaemu

package resnet

// Checks of the GPU engine. With tag gotransfer_cuda they need a GPU (and
// skip without one, see TestGPUUnavailable); scripts/gpu-check.sh builds
// them into a self-contained bundle for a GPU machine and runs
//
//	resnet.test -test.run GPU -test.bench GPU -test.v
//
// Each check prints one "GPU-CHECK" summary line. With tag cudaemu the same
// tests run the kernels on the CPU emulator, on smaller inputs, and the
// benchmarks skip.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// parityTol is the bound on |gpu - ref| relative to max|ref|: the CPU
// engine's bound, since the kernels are FP32 throughout (no TF32).
const parityTol = 1e-4

// summary prints the check's one-line result when the test ends.
func summary(t testing.TB, check string, detail *string) {
	status := "PASS"
	switch {
	case t.Skipped():
		status = "SKIP"
	case t.Failed():
		status = "FAIL"
	}
	fmt.Printf("GPU-CHECK %s %s: %s\n", status, check, *detail)
}

// requireGPU (GOTRANSFER_REQUIRE_GPU=1, set by the gpu-check bundle) turns
// "no GPU" from a skip into a failure.
var requireGPU = os.Getenv("GOTRANSFER_REQUIRE_GPU") == "1"

// newGPUOrSkip returns the GPU engine, skipping the test where there is no
// GPU (unless requireGPU): TestGPUUnavailable checks that case.
func newGPUOrSkip(t testing.TB, w *Weights) *GPU {
	t.Helper()
	b, err := New(w, "cuda")
	if err != nil {
		if errors.Is(err, ErrNoGPU) && !requireGPU {
			t.Skipf("no GPU: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b.(*GPU)
}

// checkNear is assertNear at the parity bound.
func checkNear(t testing.TB, what string, got, want *tensor.Dense) float64 {
	t.Helper()
	return assertNear(t, what, got, want, parityTol)
}

func randomImages(n, h, w int, seed uint64) *tensor.Dense {
	rng := rand.New(rand.NewPCG(seed, 1))
	data := make([]float32, n*h*w*3)
	for i := range data {
		data[i] = float32(rng.NormFloat64() * 60) // 'caffe'-like magnitudes
	}
	return tensor.New(tensor.WithShape(n, h, w, 3), tensor.WithBacking(data))
}

// goldenDirs lists the golden folders under testdata: every variant's
// (Keras .npz, torchvision .pth) float64 references.
func goldenDirs(t *testing.T) []string {
	t.Helper()
	feats, _ := filepath.Glob(filepath.Join("testdata", "*", "features.npy"))
	var dirs []string
	for _, f := range feats {
		dirs = append(dirs, filepath.Dir(f))
	}
	if len(dirs) < len(goldens) {
		t.Fatalf("found goldens %v, want at least %v", dirs, goldens)
	}
	return dirs
}

// goldenWeights is a golden folder's weights file.
func goldenWeights(dir string) string {
	for _, name := range []string{"weights.npz", "weights.pth"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	return filepath.Join(dir, "weights.npz")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestGPUGoldenParity runs the goldens (float64 references) through the GPU
// engine and checks every tapped activation, the features and the
// probabilities.
func TestGPUGoldenParity(t *testing.T) {
	for _, dir := range goldenDirs(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			detail := "not run"
			defer summary(t, "golden parity "+name, &detail)
			w, err := Load(goldenWeights(dir))
			if err != nil {
				t.Fatal(err)
			}
			e := newGPUOrSkip(t, w)
			res := checkGolden(t, dir, w, e)
			// Without taps the batch takes the normal (chunked) path.
			plain, err := e.Features(readNPY(t, filepath.Join(dir, "inputs.npy")))
			if err != nil {
				t.Fatal(err)
			}
			checkNear(t, "features without taps", plain, res.feats)
			detail = fmt.Sprintf("max|diff|/max|ref| activations %.2g, features %.2g, probs %.2g (bound %.0e, FP32, no TF32) on %s",
				res.acts, res.features, res.probs, parityTol, e.Device())
		})
	}
}

// gpuVsCPU compares the engines layer by layer on random weights and images.
func gpuVsCPU(t *testing.T, width, n, h, w int, chunk int) (worst float64, dev string) {
	t.Helper()
	wts, err := Random(width, 0, uint64(width))
	if err != nil {
		t.Fatal(err)
	}
	g := newGPUOrSkip(t, wts)
	if chunk > 0 {
		g.chunk = chunk
	}
	c, err := NewCPU(wts)
	if err != nil {
		t.Fatal(err)
	}
	x := randomImages(n, h, w, uint64(n*h*w))
	want := map[string]*tensor.Dense{}
	var order []string
	cf, err := c.FeaturesWithTaps(x, func(name string, a *tensor.Dense) {
		want[name] = a
		order = append(order, name)
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*tensor.Dense{}
	gf, err := g.FeaturesWithTaps(x, func(name string, a *tensor.Dense) { got[name] = a })
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range order {
		if got[name] == nil {
			t.Errorf("no GPU activation %s", name)
			continue
		}
		worst = math.Max(worst, checkNear(t, name, got[name], want[name]))
		if t.Failed() {
			break // the first layer that differs is the one to look at
		}
	}
	worst = math.Max(worst, checkNear(t, "features", gf, cf))
	if gpuEmulated && width >= 64 {
		return worst, g.Device() // the emulator is slow; other tests cover the plain path
	}
	// And through the chunked, overlapped path.
	pf, err := g.Features(x)
	if err != nil {
		t.Fatal(err)
	}
	worst = math.Max(worst, checkNear(t, "features without taps", pf, cf))
	return worst, g.Device()
}

// TestGPUVsCPUFullWidth is the real network's shape: width 64, 224x224
// (64x64 on the emulator, which is slow).
func TestGPUVsCPUFullWidth(t *testing.T) {
	n, size := 8, 224
	if gpuEmulated {
		n, size = 1, 64
	}
	detail := "not run"
	defer summary(t, fmt.Sprintf("CPU parity width 64, %d images %dx%d", n, size, size), &detail)
	worst, dev := gpuVsCPU(t, 64, n, size, size, 0)
	detail = fmt.Sprintf("max|gpu-cpu|/max|cpu| over all tapped layers and features %.2g (bound %.0e) on %s", worst, parityTol, dev)
}

// TestGPUVsCPUOddShapes covers what the real network never shows: channel
// counts that are not multiples of 4 or of a tile, pixel counts that leave
// partial tiles, non-square inputs, and batches split into chunks.
func TestGPUVsCPUOddShapes(t *testing.T) {
	for _, tc := range []struct{ width, n, h, w, chunk int }{
		{6, 3, 37, 45, 2},
		{12, 5, 33, 40, 2},
	} {
		t.Run(fmt.Sprintf("width=%d,%dx%dx%d,chunk=%d", tc.width, tc.n, tc.h, tc.w, tc.chunk), func(t *testing.T) {
			detail := "not run"
			defer summary(t, fmt.Sprintf("CPU parity width %d, %d images %dx%d", tc.width, tc.n, tc.h, tc.w), &detail)
			worst, _ := gpuVsCPU(t, tc.width, tc.n, tc.h, tc.w, tc.chunk)
			detail = fmt.Sprintf("max|gpu-cpu|/max|cpu| %.2g", worst)
		})
	}
}

// TestGPUChunks checks that an image's features do not depend on how the
// batch is split into chunks, nor on buffers left by a larger batch.
func TestGPUChunks(t *testing.T) {
	dir := filepath.Join("testdata", "resnet50_w8_s64")
	w, err := Load(filepath.Join(dir, "weights.npz"))
	if err != nil {
		t.Fatal(err)
	}
	e := newGPUOrSkip(t, w)
	x := readNPY(t, filepath.Join(dir, "inputs.npy"))
	ref := readNPY(t, filepath.Join(dir, "features.npy"))
	for _, chunk := range []int{1, 3, 4, 256} {
		e.chunk = chunk
		got, err := e.Features(x)
		if err != nil {
			t.Fatal(err)
		}
		checkNear(t, fmt.Sprintf("chunk %d", chunk), got, ref)
	}
	// One image after the batch: the buffers are larger than needed.
	per := x.Shape()[1] * x.Shape()[2] * 3
	one := append([]float32(nil), x.Data().([]float32)[2*per:3*per]...)
	got, err := e.Features(tensor.New(tensor.WithShape(1, x.Shape()[1], x.Shape()[2], 3), tensor.WithBacking(one)))
	if err != nil {
		t.Fatal(err)
	}
	f := ref.Shape()[1]
	want := tensor.New(tensor.WithShape(1, f), tensor.WithBacking(ref.Data().([]float32)[2*f:3*f]))
	checkNear(t, "single image", got, want)
}

func TestGPUErrors(t *testing.T) {
	w, _ := Random(8, 0, 1)
	e := newGPUOrSkip(t, w)
	for _, x := range []*tensor.Dense{
		tensor.New(tensor.WithShape(1, 64, 64), tensor.WithBacking(make([]float32, 64*64))),
		tensor.New(tensor.WithShape(1, 16, 16, 3), tensor.WithBacking(make([]float32, 16*16*3))),
		tensor.New(tensor.WithShape(1, 64, 64, 3), tensor.WithBacking(make([]float64, 64*64*3))),
	} {
		if _, err := e.Features(x); err == nil {
			t.Errorf("input %v %v accepted", x.Shape(), x.Dtype())
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e.Features(randomImages(1, 32, 32, 1)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Features after Close: %v", err)
	}
}

// TestGPUUnavailable checks the no-GPU case: New fails with a clear error
// instead of crashing. On a machine with a GPU it just reports the device.
func TestGPUUnavailable(t *testing.T) {
	detail := "not run"
	defer summary(t, "device", &detail)
	w, _ := Random(8, 0, 1)
	b, err := New(w, "cuda")
	if err == nil {
		detail = b.(*GPU).Device()
		b.Close()
		return
	}
	detail = "no GPU: " + err.Error()
	if !errors.Is(err, ErrNoGPU) || !strings.HasPrefix(err.Error(), "device cuda: ") {
		t.Fatalf("no GPU: got %v, want a 'device cuda: ...' error wrapping ErrNoGPU", err)
	}
	if requireGPU {
		t.Fatal("GOTRANSFER_REQUIRE_GPU=1 but there is no GPU")
	}
}

// TestGPUKernelSignatures checks the committed PTX against the Go side's
// kernel table: every kernel present, with the parameters the launches pass
// (a pointer is a .u64, an int a .u32). A mismatch would pass garbage.
func TestGPUKernelSignatures(t *testing.T) {
	ptx := kernelPTX(t)
	for _, k := range gpuKernels {
		i := strings.Index(ptx, ".entry "+k.name+"(")
		if i < 0 {
			t.Errorf("kernel %s not in the PTX", k.name)
			continue
		}
		params := ptx[i:]
		params = params[:strings.Index(params, ")")]
		var sig strings.Builder
		for _, line := range strings.Split(params, "\n") {
			switch {
			case strings.Contains(line, ".param .u64"):
				sig.WriteByte('p')
			case strings.Contains(line, ".param .u32"):
				sig.WriteByte('i')
			case strings.Contains(line, ".param"):
				t.Errorf("%s: unexpected parameter %q", k.name, strings.TrimSpace(line))
			}
		}
		if sig.String() != k.params {
			t.Errorf("%s: PTX parameters %q, the Go side passes %q", k.name, sig.String(), k.params)
		}
	}
	if !strings.Contains(ptx, ".target sm_80") {
		t.Error("PTX is not for compute_80")
	}
}

func kernelPTX(t *testing.T) string {
	t.Helper()
	if embeddedPTX != "" {
		return embeddedPTX
	}
	b, err := os.ReadFile(filepath.Join("kernels", "resnet_sm80.ptx"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkGPUFeatures measures the full-width backbone on 224x224 inputs,
// end to end (host batch in, features out): images/s at batch 64 and 256.
// The "resident" variants time the network alone, input already on the GPU.
func BenchmarkGPUFeatures(b *testing.B) {
	if gpuEmulated {
		b.Skip("the emulator is far too slow for a benchmark")
	}
	w, err := Random(64, 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	e := newGPUOrSkip(b, w)
	for _, n := range []int{64, 256} {
		x := randomImages(n, 224, 224, 1)
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			detail := "not run"
			defer summary(b, fmt.Sprintf("throughput batch %d, 224x224, end to end", n), &detail)
			if _, err := e.Features(x); err != nil { // warm-up: buffers
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := e.Features(x); err != nil {
					b.Fatal(err)
				}
			}
			ips := float64(n*b.N) / b.Elapsed().Seconds()
			b.ReportMetric(ips, "images/s")
			detail = fmt.Sprintf("%.0f images/s (%d passes) on %s", ips, b.N, e.Device())
		})
		b.Run(fmt.Sprintf("batch=%d,resident", n), func(b *testing.B) {
			detail := "not run"
			defer summary(b, fmt.Sprintf("throughput batch %d, 224x224, network only", n), &detail)
			run, err := e.residentRunner(n, 224, 224)
			if err != nil {
				b.Fatal(err)
			}
			if err := run(1); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := run(1); err != nil {
					b.Fatal(err)
				}
			}
			ips := float64(n*b.N) / b.Elapsed().Seconds()
			b.ReportMetric(ips, "images/s")
			detail = fmt.Sprintf("%.0f images/s (%d passes) on %s", ips, b.N, e.Device())
		})
	}
}

// residentRunner returns a function that runs the network passes times on
// whatever is in input slot 0 and waits for it: the GPU's own speed, without
// host copies.
func (e *GPU) residentRunner(n, h, w int) (func(passes int) error, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	exit, err := e.dev.enter()
	if err != nil {
		return nil, err
	}
	defer exit()
	if err := e.reserve(n, h, w); err != nil {
		return nil, err
	}
	return func(passes int) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		exit, err := e.dev.enter()
		if err != nil {
			return err
		}
		defer exit()
		for range passes {
			if err := e.network(e.in[0], n, h, w, nil); err != nil {
				return err
			}
		}
		return e.dev.syncStream(streamCompute)
	}, nil
}
