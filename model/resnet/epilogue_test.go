package resnet

import (
	"math/rand/v2"
	"testing"
)

func TestEpilogue(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	rnd := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return s
	}
	for _, tc := range []struct {
		rows, cols     int
		residual, relu bool
	}{{1, 1, false, false}, {3, 7, true, true}, {5, 64, false, true}, {17, 33, true, false}} {
		out, bias := rnd(tc.rows*tc.cols), rnd(tc.cols)
		var res []float32
		if tc.residual {
			res = rnd(tc.rows * tc.cols)
		}
		want := make([]float32, len(out))
		for i := range want {
			v := out[i] + bias[i%tc.cols]
			if res != nil {
				v = out[i] + (bias[i%tc.cols] + res[i])
			}
			if tc.relu && v < 0 {
				v = 0
			}
			want[i] = v
		}
		epilogue(out, bias, res, tc.relu)
		for i := range want {
			if out[i] != want[i] {
				t.Fatalf("%+v: element %d: got %v, want %v", tc, i, out[i], want[i])
			}
		}
	}
}
