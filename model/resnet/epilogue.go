package resnet

/*
#cgo CFLAGS: -O3

// The convolutions' epilogue: out = relu?(out + bias [+ res]) over rows of
// cols channels. In C so that the compiler vectorizes it; the AVX2 clone is
// picked at run time where the CPU has it.
__attribute__((target_clones("avx2", "default")))
static void gt_epilogue(float *out, const float *bias, const float *res, long rows, long cols, int relu) {
	for (long r = 0; r < rows; r++) {
		float *o = out + r * cols;
		const float *s = res ? res + r * cols : 0;
		if (s) {
			for (long j = 0; j < cols; j++) o[j] += bias[j] + s[j];
		} else {
			for (long j = 0; j < cols; j++) o[j] += bias[j];
		}
		if (relu) {
			for (long j = 0; j < cols; j++) o[j] = o[j] > 0 ? o[j] : 0;
		}
	}
}
*/
import "C"

import "unsafe"

// epilogue adds the bias (and the residual, if any) to rows of out and
// applies ReLU if asked. out and res hold rows x len(bias) values.
func epilogue(out, bias, res []float32, relu bool) {
	cols := len(bias)
	rows := len(out) / cols
	if rows == 0 {
		return
	}
	if len(out) != rows*cols || (res != nil && len(res) < len(out)) {
		panic("resnet: epilogue: size mismatch") // a bug in the caller, never input
	}
	var r *C.float
	if res != nil {
		r = (*C.float)(unsafe.Pointer(&res[0]))
	}
	rl := C.int(0)
	if relu {
		rl = 1
	}
	C.gt_epilogue((*C.float)(unsafe.Pointer(&out[0])), (*C.float)(unsafe.Pointer(&bias[0])), r, C.long(rows), C.long(cols), rl)
}
