package resnet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// directConv is the textbook convolution in float64: out = act(conv(in) +
// bias [+ residual]), NHWC, for checking the engine's lowerings.
func directConv(c *foldedConv, in []float32, n, h, w int, residual []float32, relu bool) (out []float64, oh, ow int) {
	s := c.spec
	oh, ow = outSize(h, s.K, s.Stride, s.Pad), outSize(w, s.K, s.Stride, s.Pad)
	out = make([]float64, n*oh*ow*s.Out)
	for b := range n {
		for oy := range oh {
			for ox := range ow {
				o := out[((b*oh+oy)*ow+ox)*s.Out:][:s.Out]
				for j := range o {
					o[j] = float64(c.b[j])
				}
				for ky := range s.K {
					for kx := range s.K {
						iy, ix := oy*s.Stride-s.Pad+ky, ox*s.Stride-s.Pad+kx
						if iy < 0 || iy >= h || ix < 0 || ix >= w {
							continue
						}
						for ci := range s.In {
							v := float64(in[((b*h+iy)*w+ix)*s.In+ci])
							k := c.w[((ky*s.K+kx)*s.In+ci)*s.Out:][:s.Out]
							for j := range o {
								o[j] += v * float64(k[j])
							}
						}
					}
				}
				for j := range o {
					if residual != nil {
						o[j] += float64(residual[((b*oh+oy)*ow+ox)*s.Out+j])
					}
					if relu {
						o[j] = max(o[j], 0)
					}
				}
			}
		}
	}
	return out, oh, ow
}

// TestConvMatchesDirect checks the sgemm lowerings (direct 1x1, im2col)
// against the textbook convolution: the stem's 7x7/2 with padding 3,
// strided 3x3 and 1x1, windows clipped on every side, odd sizes.
func TestConvMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, tc := range []struct {
		n, h, w, k, stride, pad, in, out int
		residual, relu                   bool
	}{
		{2, 17, 13, 7, 2, 3, 3, 8, false, true}, // the stem
		{1, 5, 4, 7, 2, 3, 3, 4, false, false},  // windows wider than the image
		{2, 9, 10, 3, 2, 1, 5, 6, true, true},   // torchvision's strided 3x3
		{1, 6, 7, 3, 1, 1, 4, 3, false, false},  // 3x3 through im2col
		{3, 8, 7, 1, 2, 0, 16, 8, false, false}, // Keras' strided 1x1
		{2, 5, 5, 1, 1, 0, 32, 64, true, true},  // 1x1 on the activations
	} {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			c := foldedConv{
				spec: ConvSpec{Name: "test", K: tc.k, Stride: tc.stride, Pad: tc.pad, In: tc.in, Out: tc.out},
				w:    make([]float32, tc.k*tc.k*tc.in*tc.out),
				b:    make([]float32, tc.out),
			}
			rnd := func(s []float32) []float32 {
				for i := range s {
					s[i] = float32(rng.NormFloat64())
				}
				return s
			}
			rnd(c.w)
			rnd(c.b)
			in := rnd(make([]float32, tc.n*tc.h*tc.w*tc.in))
			oh, ow := outSize(tc.h, tc.k, tc.stride, tc.pad), outSize(tc.w, tc.k, tc.stride, tc.pad)
			var res []float32
			if tc.residual {
				res = rnd(make([]float32, tc.n*oh*ow*tc.out))
			}
			want, _, _ := directConv(&c, in, tc.n, tc.h, tc.w, res, tc.relu)
			got := make([]float32, len(want))
			for i := range got {
				got[i] = float32(math.NaN()) // every element must be written
			}
			// Poisoned col: clipped windows must be zeroed, not left over.
			e := &CPU{col: make([]float32, tc.n*oh*ow*tc.k*tc.k*tc.in)}
			for i := range e.col {
				e.col[i] = float32(math.NaN())
			}
			if gh, gw := e.conv(&c, in, tc.n, tc.h, tc.w, got, res, tc.relu); gh != oh || gw != ow {
				t.Fatalf("output %dx%d, want %dx%d", gh, gw, oh, ow)
			}
			for i := range want {
				if d := math.Abs(float64(got[i]) - want[i]); !(d <= 1e-4*(1+math.Abs(want[i]))) {
					t.Fatalf("element %d: got %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}
