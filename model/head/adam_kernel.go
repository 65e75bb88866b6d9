//go:build cgo && amd64

package head

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
// No fused multiply-add, whatever CGO_CFLAGS enable (-march=native, -mfma):
// Go rounds every product and sum on its own. (cgo refuses the flag
// -ffp-contract=off, not the pragmas.)
#pragma GCC optimize ("fp-contract=off")
#pragma STDC FP_CONTRACT OFF
#include <immintrin.h>
#include <math.h>

// Adam's update over n parameters, as adamKernel.apply spells it, in C
// because the square root and the division are most of its time and Go
// does not vectorize them: 8 at a time with AVX where the CPU has it. Every
// operation is IEEE-rounded on its own, in Go's order (no fused
// multiply-add; sqrt and division are correctly rounded in both), so the
// results are the same bits.
static void gt_adam_scalar(float *w, const float *g, float *m, float *v, long i, long n,
		float alpha, float omb1, float omb2, float eps, float decay) {
	for (; i < n; i++) {
		float gi = g[i];
		float mi = m[i] + (gi - m[i]) * omb1;
		float vi = v[i] + (gi * gi - v[i]) * omb2;
		m[i] = mi;
		v[i] = vi;
		float wi = w[i];
		if (decay != 0) wi -= decay * wi;
		w[i] = wi - alpha * mi / (sqrtf(vi) + eps);
	}
}

__attribute__((target("avx")))
static void gt_adam_avx(float *w, const float *g, float *m, float *v, long n,
		float alpha, float omb1, float omb2, float eps, float decay) {
	const __m256 a = _mm256_set1_ps(alpha), b1 = _mm256_set1_ps(omb1), b2 = _mm256_set1_ps(omb2),
		e = _mm256_set1_ps(eps), d = _mm256_set1_ps(decay);
	long i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 gi = _mm256_loadu_ps(g + i), m0 = _mm256_loadu_ps(m + i), v0 = _mm256_loadu_ps(v + i);
		__m256 mi = _mm256_add_ps(m0, _mm256_mul_ps(_mm256_sub_ps(gi, m0), b1));
		__m256 vi = _mm256_add_ps(v0, _mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(gi, gi), v0), b2));
		_mm256_storeu_ps(m + i, mi);
		_mm256_storeu_ps(v + i, vi);
		__m256 wi = _mm256_loadu_ps(w + i);
		if (decay != 0) wi = _mm256_sub_ps(wi, _mm256_mul_ps(d, wi));
		wi = _mm256_sub_ps(wi, _mm256_div_ps(_mm256_mul_ps(a, mi), _mm256_add_ps(_mm256_sqrt_ps(vi), e)));
		_mm256_storeu_ps(w + i, wi);
	}
	gt_adam_scalar(w, g, m, v, i, n, alpha, omb1, omb2, eps, decay);
}

static void gt_adam(float *w, const float *g, float *m, float *v, long n,
		float alpha, float omb1, float omb2, float eps, float decay) {
	if (__builtin_cpu_supports("avx")) {
		gt_adam_avx(w, g, m, v, n, alpha, omb1, omb2, eps, decay);
	} else {
		gt_adam_scalar(w, g, m, v, 0, n, alpha, omb1, omb2, eps, decay);
	}
}
*/
import "C"

import "unsafe"

// apply is applyGo in C, 8 floats at a time with AVX: the same bits
// (TestAdamKernelBits).
func (k adamKernel) apply(w, g, m, v []float32) {
	if len(w) == 0 {
		return
	}
	if len(g) < len(w) || len(m) < len(w) || len(v) < len(w) {
		panic("head: adam: length mismatch") // a bug in the caller, never input
	}
	C.gt_adam((*C.float)(unsafe.Pointer(&w[0])), (*C.float)(unsafe.Pointer(&g[0])), (*C.float)(unsafe.Pointer(&m[0])), (*C.float)(unsafe.Pointer(&v[0])),
		C.long(len(w)), C.float(k.alpha), C.float(k.omb1), C.float(k.omb2), C.float(k.eps), C.float(k.decay))
}
