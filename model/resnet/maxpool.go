package resnet

/*
#cgo CFLAGS: -O3

// gt_maxpool3x3s2 computes output pixels [lo, hi) of a 3x3, stride 2,
// padding 1 max pool over NHWC rows of c channels, starting from 0 (the
// zero padding: the input comes out of a ReLU). In C so that the compiler
// vectorizes the channel loop; a NaN never wins, as in the comparison
// v > d.
__attribute__((target_clones("avx2", "default")))
static void gt_maxpool3x3s2(const float *in, float *out, long h, long w, long c,
		long oh, long ow, long lo, long hi) {
	for (long r = lo; r < hi; r++) {
		const long b = r / (oh * ow), rem = r % (oh * ow);
		const long oy = rem / ow, ox = rem % ow;
		float *d = out + r * c;
		for (long j = 0; j < c; j++) d[j] = 0;
		for (long iy = 2 * oy - 1; iy <= 2 * oy + 1; iy++) {
			if (iy < 0 || iy >= h) continue;
			for (long ix = 2 * ox - 1; ix <= 2 * ox + 1; ix++) {
				if (ix < 0 || ix >= w) continue;
				const float *s = in + ((b * h + iy) * w + ix) * c;
				for (long j = 0; j < c; j++) d[j] = s[j] > d[j] ? s[j] : d[j];
			}
		}
	}
}
*/
import "C"

import "unsafe"

// maxPool3x3s2 is Keras' ZeroPadding2D(1) + MaxPooling2D(3, 2). Its input
// comes out of a ReLU, so zero padding never wins a max and the window can
// simply skip the border.
func maxPool3x3s2(in []float32, n, h, w, c int, out []float32) (oh, ow int) {
	oh, ow = outSize(h, 3, 2, 1), outSize(w, 3, 2, 1)
	if n*oh*ow*c == 0 {
		return oh, ow
	}
	if len(in) < n*h*w*c || len(out) < n*oh*ow*c {
		panic("resnet: maxPool3x3s2: buffer too small") // a bug in the caller, never input
	}
	parallelFor(n*oh*ow, func(lo, hi int) {
		C.gt_maxpool3x3s2((*C.float)(unsafe.Pointer(&in[0])), (*C.float)(unsafe.Pointer(&out[0])),
			C.long(h), C.long(w), C.long(c), C.long(oh), C.long(ow), C.long(lo), C.long(hi))
	})
	return oh, ow
}
