package resnet

/*
#cgo CFLAGS: -O3

// Winograd F(2x2, 3x3) transforms over NHWC activations. A tile is the 4x4
// input window, anchored at (2ty-1, 2tx-1) of the unpadded image, that
// yields outputs (2ty..2ty+1, 2tx..2tx+1). Tiles are numbered image by
// image, row by row. The transformed tiles of a chunk are stored as 16
// matrices of nt rows, one per element of the 4x4 transform, so that each
// is one operand of an sgemm. Both transforms run over the contiguous
// channel dimension, which the compiler vectorizes; window elements
// outside the image read from a zero row, and clipped outputs of a partial
// last tile go to a sink row, which keeps the inner loops branch-free.

// gt_wino_input computes V = Bᵀ d B for tiles [t0, t0+nt) into v, laid out
// [16][nt][c].
__attribute__((target_clones("avx2", "default")))
static void gt_wino_input(const float *in, const float *zero, float *v,
		long h, long w, long c, long th, long tw, long t0, long nt) {
	const long per = th * tw, ks = nt * c;
	for (long t = 0; t < nt; t++) {
		const long g = t0 + t, b = g / per, r = g % per;
		const long y0 = 2 * (r / tw) - 1, x0 = 2 * (r % tw) - 1;
		const float *p[16];
		for (int i = 0; i < 4; i++) {
			for (int j = 0; j < 4; j++) {
				const long y = y0 + i, x = x0 + j;
				p[4 * i + j] = (y >= 0 && y < h && x >= 0 && x < w) ? in + ((b * h + y) * w + x) * c : zero;
			}
		}
		float *o = v + t * c;
#pragma GCC ivdep
		for (long j = 0; j < c; j++) {
			float d[16], e[16];
			for (int k = 0; k < 16; k++) d[k] = p[k][j];
			// Bᵀ d: rows d0-d2, d1+d2, d2-d1, d1-d3.
			for (int q = 0; q < 4; q++) {
				e[q] = d[q] - d[8 + q];
				e[4 + q] = d[4 + q] + d[8 + q];
				e[8 + q] = d[8 + q] - d[4 + q];
				e[12 + q] = d[4 + q] - d[12 + q];
			}
			// (Bᵀ d) B: the same on the columns.
			for (int i = 0; i < 4; i++) {
				o[(4 * i + 0) * ks + j] = e[4 * i] - e[4 * i + 2];
				o[(4 * i + 1) * ks + j] = e[4 * i + 1] + e[4 * i + 2];
				o[(4 * i + 2) * ks + j] = e[4 * i + 2] - e[4 * i + 1];
				o[(4 * i + 3) * ks + j] = e[4 * i + 1] - e[4 * i + 3];
			}
		}
	}
}

// GT_WINO_OUT transforms channel j of a tile's 16 products, m laid out
// [16][nt][c] from mt, and stores ACT(v) for v = Y + (bias + res) through
// the output row pointers o, reading the residual through s. Aᵀ m has
// rows m0+m1+m2 and m1-m2-m3; A applies the same to the columns.
#define GT_WINO_OUT(ACT) do { \
	float a[16], u[8], y[4]; \
	for (int k = 0; k < 16; k++) a[k] = mt[k * ks + j]; \
	for (int q = 0; q < 4; q++) { \
		u[q] = a[q] + a[4 + q] + a[8 + q]; \
		u[4 + q] = a[4 + q] - a[8 + q] - a[12 + q]; \
	} \
	for (int i = 0; i < 2; i++) { \
		y[2 * i] = u[4 * i] + u[4 * i + 1] + u[4 * i + 2]; \
		y[2 * i + 1] = u[4 * i + 1] - u[4 * i + 2] - u[4 * i + 3]; \
	} \
	for (int k = 0; k < 4; k++) { \
		float v = y[k] + (bias[j] + s[k][j]); \
		o[k][j] = ACT; \
	} \
} while (0)

// gt_wino_output computes Y = Aᵀ m A for tiles [t0, t0+nt) from m, laid
// out [16][nt][c], and stores relu?(Y + (bias + res)) to the tiles' output
// pixels, the same arithmetic as gt_epilogue. res may be null.
__attribute__((target_clones("avx2", "default")))
static void gt_wino_output(const float *m, const float *bias, const float *res,
		const float *zero, float *sink, float *out,
		long oh, long ow, long c, long th, long tw, long t0, long nt, int relu) {
	const long per = th * tw, ks = nt * c;
	for (long t = 0; t < nt; t++) {
		const long g = t0 + t, b = g / per, r = g % per;
		const long y0 = 2 * (r / tw), x0 = 2 * (r % tw);
		float *o[4];
		const float *s[4];
		for (int i = 0; i < 2; i++) {
			for (int j = 0; j < 2; j++) {
				const long y = y0 + i, x = x0 + j;
				if (y < oh && x < ow) {
					const long off = ((b * oh + y) * ow + x) * c;
					o[2 * i + j] = out + off;
					s[2 * i + j] = res ? res + off : zero;
				} else {
					o[2 * i + j] = sink;
					s[2 * i + j] = zero;
				}
			}
		}
		const float *mt = m + t * c;
		// Two copies of the loop, so that neither branches on relu and
		// both vectorize.
		if (relu) {
#pragma GCC ivdep
			for (long j = 0; j < c; j++) GT_WINO_OUT(v > 0 ? v : 0);
		} else {
#pragma GCC ivdep
			for (long j = 0; j < c; j++) GT_WINO_OUT(v);
		}
	}
}
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"

	"gotransfer/internal/openblas"
)

// Winograd's F(2x2, 3x3) computes a 2x2 block of a 3x3 convolution's
// output from a 4x4 input tile with 16 multiplications per input and output
// channel pair instead of 36: 2.25x fewer flops on the 3x3 convolutions,
// about half of ResNet50's. The price is a transform of the input tiles and
// of the products, both linear in the activations, and a slightly different
// rounding (the transforms only add, subtract and halve, so F(2x2, 3x3)
// stays within float32 noise of the direct convolution).

// winograd reports whether a convolution takes the Winograd path: 3x3,
// stride 1, padding 1 (every 3x3 of Keras' ResNet50; torchvision's strided
// ones stay on im2col).
func winograd(s ConvSpec) bool { return s.K == 3 && s.Stride == 1 && s.Pad == 1 }

// winogradFilter returns U = G g Gᵀ for every (cin, cout) pair of a folded
// 3x3 kernel, as 16 matrices cin x cout, one per element of the 4x4
// transform, so that each is an sgemm operand. It is computed in float64.
func winogradFilter(c *foldedConv) []float32 {
	s := c.spec
	g := [4][3]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	u := make([]float32, 16*s.In*s.Out)
	for i := range s.In {
		for o := range s.Out {
			var k, gk [4][3]float64
			for ky := range 3 {
				for kx := range 3 {
					k[ky][kx] = float64(c.w[((ky*3+kx)*s.In+i)*s.Out+o])
				}
			}
			for a := range 4 {
				for q := range 3 {
					gk[a][q] = g[a][0]*k[0][q] + g[a][1]*k[1][q] + g[a][2]*k[2][q]
				}
			}
			for a := range 4 {
				for b := range 4 {
					v := gk[a][0]*g[b][0] + gk[a][1]*g[b][1] + gk[a][2]*g[b][2]
					u[((a*4+b)*s.In+i)*s.Out+o] = float32(v)
				}
			}
		}
	}
	return u
}

// winogradChunkBytes bounds a worker's transformed tiles and products per
// chunk, so that they stay in the last-level cache between the transforms
// and the 16 sgemms instead of making a round trip to memory. Larger
// chunks repack each U_k less often; 4 MiB measured best, give or take
// noise, on a 2-core EPYC with 32 MiB of L3.
const winogradChunkBytes = 4 << 20

// winogradChunk is the number of tiles a worker transforms at a time. It is
// at least 32 so that the sgemms keep enough rows to run near full speed.
func winogradChunk(s ConvSpec) int {
	return max(32, winogradChunkBytes/(16*4*(s.In+s.Out)))
}

// winogradScratch is the per-worker scratch of a Winograd convolution: the
// transformed tiles, the products and a sink row for clipped outputs.
func winogradScratch(s ConvSpec) int { return 16*winogradChunk(s)*(s.In+s.Out) + s.Out }

// growWinograd makes sure there is scratch of size floats for each of
// workers workers and a zero row of zero floats.
func (e *CPU) growWinograd(workers, size, zero int) {
	for len(e.wino) < workers {
		e.wino = append(e.wino, nil)
	}
	for i := range e.wino[:workers] {
		if len(e.wino[i]) < size {
			e.wino[i] = make([]float32, size)
		}
	}
	if len(e.winoZero) < zero {
		e.winoZero = make([]float32, zero)
	}
}

// convWinograd is conv for a 3x3, stride 1, padding 1 convolution with
// Winograd filters c.u. The tiles are split among the CPUs; each worker
// goes through its tiles a chunk at a time: input transform, 16
// single-threaded sgemms M_k = V_k U_k, output transform with the epilogue.
func (e *CPU) convWinograd(c *foldedConv, in []float32, n, h, w int, out, residual []float32, relu bool) (oh, ow int) {
	s := c.spec
	if !winograd(s) || len(c.u) != 16*s.In*s.Out {
		panic("resnet: convWinograd: not a Winograd convolution") // a bug, never input
	}
	oh, ow = h, w
	th, tw := (oh+1)/2, (ow+1)/2
	tiles := n * th * tw
	if tiles == 0 {
		return oh, ow
	}
	if len(in) < n*h*w*s.In || len(out) < n*oh*ow*s.Out || (residual != nil && len(residual) < n*oh*ow*s.Out) {
		panic("resnet: convWinograd: buffer too small") // a bug, never input
	}
	chunk := winogradChunk(s)
	workers := min(runtime.GOMAXPROCS(0), tiles)
	e.growWinograd(workers, winogradScratch(s), max(s.In, s.Out))
	e.winogradConvs++

	var res *C.float
	if residual != nil {
		res = (*C.float)(unsafe.Pointer(&residual[0]))
	}
	rl := C.int(0)
	if relu {
		rl = 1
	}
	zero := (*C.float)(unsafe.Pointer(&e.winoZero[0]))
	work := func(wk, lo, hi int) {
		scratch := e.wino[wk]
		for t := lo; t < hi; t += chunk {
			nt := min(chunk, hi-t)
			v := scratch[:16*nt*s.In]
			m := scratch[16*nt*s.In : 16*nt*(s.In+s.Out)]
			sink := scratch[16*nt*(s.In+s.Out):]
			C.gt_wino_input((*C.float)(unsafe.Pointer(&in[0])), zero, (*C.float)(unsafe.Pointer(&v[0])),
				C.long(h), C.long(w), C.long(s.In), C.long(th), C.long(tw), C.long(t), C.long(nt))
			for k := range 16 {
				openblas.Sgemm(nt, s.Out, s.In, 1,
					v[k*nt*s.In:(k+1)*nt*s.In], c.u[k*s.In*s.Out:(k+1)*s.In*s.Out],
					0, m[k*nt*s.Out:(k+1)*nt*s.Out])
			}
			C.gt_wino_output((*C.float)(unsafe.Pointer(&m[0])), (*C.float)(unsafe.Pointer(&c.b[0])), res,
				zero, (*C.float)(unsafe.Pointer(&sink[0])), (*C.float)(unsafe.Pointer(&out[0])),
				C.long(oh), C.long(ow), C.long(s.Out), C.long(th), C.long(tw), C.long(t), C.long(nt), rl)
		}
	}
	if workers == 1 {
		work(0, 0, tiles)
		return oh, ow
	}
	var wg sync.WaitGroup
	per := (tiles + workers - 1) / workers
	for wk := range workers {
		lo, hi := wk*per, min((wk+1)*per, tiles)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(wk, lo, hi)
		}()
	}
	wg.Wait()
	return oh, ow
}
