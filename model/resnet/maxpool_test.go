package resnet

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestMaxPool3x3s2 checks the pool against a direct reading of Keras'
// ZeroPadding2D(1) + MaxPooling2D(3, 2) on non-negative input, odd and
// even sizes.
func TestMaxPool3x3s2(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, tc := range []struct{ n, h, w, c int }{{1, 1, 1, 3}, {2, 7, 8, 5}, {3, 112, 112, 16}, {1, 9, 4, 64}} {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			in := make([]float32, tc.n*tc.h*tc.w*tc.c)
			for i := range in {
				in[i] = max(0, float32(rng.NormFloat64()))
			}
			oh, ow := outSize(tc.h, 3, 2, 1), outSize(tc.w, 3, 2, 1)
			out := make([]float32, tc.n*oh*ow*tc.c)
			if gh, gw := maxPool3x3s2(in, tc.n, tc.h, tc.w, tc.c, out); gh != oh || gw != ow {
				t.Fatalf("output %dx%d, want %dx%d", gh, gw, oh, ow)
			}
			for b := range tc.n {
				for oy := range oh {
					for ox := range ow {
						for j := range tc.c {
							var want float32 // the zero padding
							for y := 2*oy - 1; y <= 2*oy+1; y++ {
								for x := 2*ox - 1; x <= 2*ox+1; x++ {
									if y >= 0 && y < tc.h && x >= 0 && x < tc.w {
										want = max(want, in[((b*tc.h+y)*tc.w+x)*tc.c+j])
									}
								}
							}
							if got := out[((b*oh+oy)*ow+ox)*tc.c+j]; got != want {
								t.Fatalf("image %d (%d, %d) channel %d: got %v, want %v", b, oy, ox, j, got, want)
							}
						}
					}
				}
			}
		})
	}
}
