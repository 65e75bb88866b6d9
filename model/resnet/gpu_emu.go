//go:build cudaemu && !gotransfer_cuda

package resnet

// #cgo CXXFLAGS: -std=c++17 -O2 -fno-strict-aliasing
// #include <stdint.h>
// #include <stdlib.h>
// int gt_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
//                   unsigned bz, const uint64_t* a, int n, char* err, int errlen);
import "C"

import (
	"embed"
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// With the cudaemu tag, device "cuda" runs the GPU engine on a CPU
// emulation of the device: the kernels of kernels/resnet.cu compiled as C++
// (see kernels/emu.h), memory in host RAM, every operation synchronous. It
// is slow and exists so that tests exercise the kernels and the code that
// drives them on machines without a GPU; never ship a build with it.

// emuSources is never read: embedding the C++ sources that gpu_emu.cc
// includes from kernels/ makes the build cache see their changes, which it
// does not track for headers outside the package directory.
//
//go:embed kernels/resnet.cu kernels/emu.h
var emuSources embed.FS

// gpuEmulated tells the tests to use small inputs.
const gpuEmulated = true

// embeddedPTX is empty: the emulator runs the C++ build of the kernels, and
// the tests read the committed PTX from kernels/.
const embeddedPTX = ""

func newCUDA(w *Weights) (_ Backbone, err error) {
	defer recoverDevice(&err)
	e, err := newGPU(&emuDevice{mem: map[devPtr]unsafe.Pointer{}}, w)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// emuDevice keeps its allocations by address, so that device pointers stay
// plain integers (as on a GPU) yet never go back to unsafe.Pointer by
// arithmetic. The engine only ever hands back whole allocations.
type emuDevice struct {
	mu  sync.Mutex
	mem map[devPtr]unsafe.Pointer
}

func (*emuDevice) enter() (func(), error) { return func() {}, nil }

func (d *emuDevice) alloc(bytes int) (devPtr, error) {
	// Device allocations are 256-byte aligned; so are these, and of the
	// exact size, so that go test -asan catches a kernel reading past one.
	var p unsafe.Pointer
	if C.posix_memalign(&p, 256, C.size_t(max(bytes, 1))) != 0 {
		return 0, fmt.Errorf("out of memory allocating %d bytes", bytes)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mem[devPtr(uintptr(p))] = p
	return devPtr(uintptr(p)), nil
}

func (d *emuDevice) ptr(p devPtr) (unsafe.Pointer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	q, ok := d.mem[p]
	if !ok {
		return nil, fmt.Errorf("%#x is not an allocation", uintptr(p))
	}
	return q, nil
}

func (d *emuDevice) free(p devPtr) error {
	q, err := d.ptr(p)
	if err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.mem, p)
	d.mu.Unlock()
	C.free(q)
	return nil
}

func (d *emuDevice) allocHost(n int) ([]float32, error) {
	p, err := d.alloc(4 * n)
	if err != nil {
		return nil, err
	}
	q, _ := d.ptr(p)
	return unsafe.Slice((*float32)(q), n), nil
}

func (d *emuDevice) freeHost(b []float32) error {
	return d.free(devPtr(uintptr(unsafe.Pointer(unsafe.SliceData(b)))))
}

func (d *emuDevice) slice(p devPtr, n int) ([]float32, error) {
	q, err := d.ptr(p)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*float32)(q), n), nil
}

func (d *emuDevice) upload(dst devPtr, src []float32) error {
	s, err := d.slice(dst, len(src))
	copy(s, src)
	return err
}

func (d *emuDevice) download(dst []float32, src devPtr) error {
	s, err := d.slice(src, len(dst))
	copy(dst, s)
	return err
}

func (d *emuDevice) h2d(_ int, dst devPtr, src []float32) error { return d.upload(dst, src) }
func (d *emuDevice) d2h(_ int, dst []float32, src devPtr) error { return d.download(dst, src) }
func (*emuDevice) record(int, int) error                        { return nil }
func (*emuDevice) wait(int, int) error                          { return nil }
func (*emuDevice) syncEvent(int) error                          { return nil }
func (*emuDevice) syncStream(int) error                         { return nil }
func (*emuDevice) describe() string                             { return "CPU emulator (build tag cudaemu)" }
func (*emuDevice) close() error                                 { return nil }

func (*emuDevice) launch(_ int, k gpuKernel, grid, block [3]int, args ...uint64) error {
	if err := checkLaunch(k, args); err != nil {
		return err
	}
	name := C.CString(gpuKernels[k].name)
	defer C.free(unsafe.Pointer(name))
	var msg [512]C.char
	if C.gt_emu_launch(name, C.unsigned(grid[0]), C.unsigned(grid[1]), C.unsigned(grid[2]),
		C.unsigned(block[0]), C.unsigned(block[1]), C.unsigned(block[2]),
		(*C.uint64_t)(unsafe.Pointer(&args[0])), C.int(len(args)), &msg[0], C.int(len(msg))) != 0 {
		return errors.New(C.GoString(&msg[0]))
	}
	return nil
}
