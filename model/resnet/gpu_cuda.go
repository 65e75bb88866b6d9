//go:build gotransfer_cuda

package resnet

//go:generate nvcc -ptx -arch=compute_80 -o kernels/resnet_sm80.ptx kernels/resnet.cu

/*
#cgo LDFLAGS: -lcuda -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <cuda.h>

// gorgonia.org/cu calls cuInit in its package initializer and exits the
// process when it fails, as it does on a machine with the driver but no GPU.
// This cuInit, defined in the executable, takes precedence over libcuda's:
// it calls the real one, keeps its result for newCUDA to report, and returns
// success so that the process lives on (and can still run on the CPU).
static CUresult gt_init_result = CUDA_ERROR_NOT_INITIALIZED;

CUresult cuInit(unsigned int flags) {
	CUresult (*real)(unsigned int) = (CUresult (*)(unsigned int))dlsym(RTLD_NEXT, "cuInit");
	gt_init_result = real ? real(flags) : CUDA_ERROR_NOT_FOUND;
	return CUDA_SUCCESS;
}

static CUresult gt_init_status(void) { return gt_init_result; }

// gorgonia.org/cu has no binding for page-locked host allocations.
static CUresult gt_mem_alloc_host(void** p, size_t n) { return cuMemAllocHost(p, n); }

static const char* gt_error_name(CUresult r) {
	const char* s = NULL;
	return cuGetErrorName(r, &s) == CUDA_SUCCESS ? s : NULL;
}

static const char* gt_error_string(CUresult r) {
	const char* s = NULL;
	return cuGetErrorString(r, &s) == CUDA_SUCCESS ? s : NULL;
}
*/
import "C"

import (
	_ "embed"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"gorgonia.org/cu"
)

// embeddedPTX holds the kernels of kernels/resnet.cu compiled for
// compute_80 (Ampere); the driver JIT-compiles it for the GPU at hand,
// Hopper included, and caches the result (~/.nv/ComputeCache).
//
//go:embed kernels/resnet_sm80.ptx
var embeddedPTX string

// gpuEmulated tells the tests that this is a real GPU.
const gpuEmulated = false

// newCUDA opens the first GPU (CUDA_VISIBLE_DEVICES selects another) and
// uploads the weights to it.
func newCUDA(w *Weights) (_ Backbone, err error) {
	defer recoverDevice(&err)
	d, err := openCUDA()
	if err != nil {
		return nil, err
	}
	e, err := newGPU(d, w)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// cuError describes a driver error code.
func cuError(r C.CUresult) string {
	name, desc := C.gt_error_name(r), C.gt_error_string(r)
	s := fmt.Sprintf("CUDA error %d", int(r))
	if name != nil {
		s = C.GoString(name)
	}
	if desc != nil {
		s += ": " + C.GoString(desc)
	}
	// The stub library cannot name its own error.
	switch r {
	case C.CUDA_ERROR_STUB_LIBRARY:
		s += " (CUDA_ERROR_STUB_LIBRARY: the CUDA stub library was loaded instead of the driver's libcuda.so.1)"
	case C.CUDA_ERROR_NOT_FOUND:
		s += " (cuInit not found in libcuda.so.1)"
	}
	return s
}

type cuDevice struct {
	dev      cu.Device
	ctx      cu.CUContext
	retained bool
	mod      cu.Module
	fns      [numKernels]cu.Function
	streams  [numStreams]cu.Stream
	events   [numEvents]cu.Event
	desc     string
}

func openCUDA() (_ *cuDevice, err error) {
	if r := C.gt_init_status(); r != C.CUDA_SUCCESS {
		return nil, fmt.Errorf("device cuda: %w: cuInit: %s", ErrNoGPU, cuError(r))
	}
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("device cuda: %w: %w", ErrNoGPU, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("device cuda: %w: the driver sees no GPU", ErrNoGPU)
	}
	dev := cu.Device(0)
	name, err := dev.Name()
	if err != nil {
		return nil, fmt.Errorf("device cuda: GPU 0: %w", err)
	}
	major, minor, err := dev.ComputeCapability()
	if err != nil {
		return nil, fmt.Errorf("device cuda: %s: %w", name, err)
	}
	v := cu.Version()
	d := &cuDevice{dev: dev, desc: fmt.Sprintf("%s (compute capability %d.%d, CUDA driver %d.%d)",
		name, major, minor, v/1000, v%1000/10)}
	if major < 8 {
		return nil, fmt.Errorf("device cuda: %s: the kernels are built for compute capability 8.0 (Ampere) or newer", d.desc)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Waits for the GPU block the thread instead of spinning on a core:
	// the cores are wanted for decoding the next batch meanwhile. This
	// fails harmlessly when the primary context is already active.
	_ = dev.SetPrimaryCtxFlags(cu.SchedBlockingSync)
	if d.ctx, err = dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("device cuda: %s: creating a context: %w", d.desc, err)
	}
	d.retained = true
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return nil, fmt.Errorf("device cuda: %s: %w", d.desc, err)
	}
	if d.mod, err = cu.LoadData(embeddedPTX); err != nil {
		return nil, fmt.Errorf("device cuda: %s: loading the kernels (PTX for compute_80, compiled by the driver): %w", d.desc, err)
	}
	for k, kern := range gpuKernels {
		if d.fns[k], err = d.mod.Function(kern.name); err != nil {
			return nil, fmt.Errorf("device cuda: kernel %s: %w", kern.name, err)
		}
	}
	for s := range d.streams {
		if d.streams[s], err = cu.MakeStream(cu.NonBlocking); err != nil {
			return nil, fmt.Errorf("device cuda: creating a stream: %w", err)
		}
	}
	for ev := range d.events {
		if d.events[ev], err = cu.MakeEvent(cu.DisableTiming | cu.BlockingSyncEvent); err != nil {
			return nil, fmt.Errorf("device cuda: creating an event: %w", err)
		}
	}
	return d, nil
}

func (d *cuDevice) enter() (func(), error) {
	// A CUDA context is current per OS thread, and goroutines move.
	runtime.LockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("device cuda: making the context current: %w", err)
	}
	return runtime.UnlockOSThread, nil
}

func (d *cuDevice) describe() string { return d.desc }

func (d *cuDevice) alloc(bytes int) (devPtr, error) {
	p, err := cu.MemAlloc(int64(bytes))
	return devPtr(p), err
}

func (d *cuDevice) free(p devPtr) error { return cu.MemFree(cu.DevicePtr(p)) }

func (d *cuDevice) allocHost(n int) ([]float32, error) {
	var p unsafe.Pointer
	if r := C.gt_mem_alloc_host(&p, C.size_t(4*n)); r != C.CUDA_SUCCESS {
		return nil, errors.New(cuError(r))
	}
	return unsafe.Slice((*float32)(p), n), nil
}

func (d *cuDevice) freeHost(b []float32) error {
	return cu.MemFreeHost(unsafe.Pointer(unsafe.SliceData(b)))
}

func (d *cuDevice) upload(dst devPtr, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	if err := cu.MemcpyHtoD(cu.DevicePtr(dst), unsafe.Pointer(&src[0]), int64(4*len(src))); err != nil {
		return err
	}
	// A copy from pageable memory may return before its DMA is done, and
	// the engine's non-blocking streams do not wait for the NULL stream
	// that copy runs on: wait here.
	return cu.Synchronize()
}

func (d *cuDevice) download(dst []float32, src devPtr) error {
	if len(dst) == 0 {
		return nil
	}
	return cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), cu.DevicePtr(src), int64(4*len(dst)))
}

func (d *cuDevice) h2d(stream int, dst devPtr, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	return cu.MemcpyHtoDAsync(cu.DevicePtr(dst), unsafe.Pointer(&src[0]), int64(4*len(src)), d.streams[stream])
}

func (d *cuDevice) d2h(stream int, dst []float32, src devPtr) error {
	if len(dst) == 0 {
		return nil
	}
	return cu.MemcpyDtoHAsync(unsafe.Pointer(&dst[0]), cu.DevicePtr(src), int64(4*len(dst)), d.streams[stream])
}

func (d *cuDevice) record(event, stream int) error { return d.events[event].Record(d.streams[stream]) }
func (d *cuDevice) wait(stream, event int) error   { return d.streams[stream].Wait(d.events[event], 0) }
func (d *cuDevice) syncEvent(event int) error      { return d.events[event].Synchronize() }
func (d *cuDevice) syncStream(stream int) error    { return d.streams[stream].Synchronize() }

func (d *cuDevice) launch(stream int, k gpuKernel, grid, block [3]int, args ...uint64) error {
	if err := checkLaunch(k, args); err != nil {
		return err
	}
	// cu.Function.Launch copies 8 bytes from each pointer: every argument
	// sits in a 64-bit slot, and an int kernel parameter reads the low half.
	params := make([]unsafe.Pointer, len(args))
	for i := range args {
		params[i] = unsafe.Pointer(&args[i])
	}
	return d.fns[k].Launch(grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, d.streams[stream], params)
}

// close releases what openCUDA acquired; the context's release frees any
// memory left.
func (d *cuDevice) close() error {
	if !d.retained {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var errs []error
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		errs = append(errs, err)
	} else {
		for i := range d.events {
			if d.events[i] != (cu.Event{}) {
				errs = append(errs, cu.DestroyEvent(&d.events[i]))
			}
		}
		for i := range d.streams {
			if d.streams[i] != (cu.Stream{}) {
				errs = append(errs, d.streams[i].Destroy())
			}
		}
		if d.mod != (cu.Module{}) {
			errs = append(errs, d.mod.Unload())
			d.mod = cu.Module{}
		}
	}
	errs = append(errs, d.dev.ReleasePrimaryCtx())
	d.retained = false
	return errors.Join(errs...)
}
