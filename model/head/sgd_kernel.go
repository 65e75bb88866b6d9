//go:build cgo && amd64

package head

/*
#cgo CFLAGS: -O3
// No fused multiply-add, whatever CGO_CFLAGS enable: Go rounds every
// product and sum on its own (see adam_kernel.go).
#pragma GCC optimize ("fp-contract=off")
#pragma STDC FP_CONTRACT OFF

// SGD's update over n parameters, as sgdKernel.apply spells it: b is NULL
// without momentum. In C so that the compiler vectorizes it (the AVX2
// clone is picked at run time where the CPU has it); the same bits as the
// Go loop.
__attribute__((target_clones("avx2", "default")))
static void gt_sgd(float *restrict w, const float *restrict g, float *restrict b, long n,
		float lr, float mu, float wd, int nesterov) {
	for (long i = 0; i < n; i++) {
		float gi = g[i];
		if (wd != 0) gi += wd * w[i];
		if (b) {
			float bi = mu * b[i] + gi;
			b[i] = bi;
			if (nesterov) gi += mu * bi;
			else gi = bi;
		}
		w[i] -= lr * gi;
	}
}
*/
import "C"

import "unsafe"

// apply is applyGo in C, vectorized: the same bits (TestSGDKernelBits).
func (k sgdKernel) apply(w, g, b []float32) {
	if len(w) == 0 {
		return
	}
	if len(g) < len(w) || (b != nil && len(b) < len(w)) {
		panic("head: sgd: length mismatch") // a bug in the caller, never input
	}
	var bp *C.float
	if b != nil {
		bp = (*C.float)(unsafe.Pointer(&b[0]))
	}
	nesterov := C.int(0)
	if k.nesterov {
		nesterov = 1
	}
	C.gt_sgd((*C.float)(unsafe.Pointer(&w[0])), (*C.float)(unsafe.Pointer(&g[0])), bp, C.long(len(w)),
		C.float(k.lr), C.float(k.mu), C.float(k.wd), nesterov)
}
