package resnet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"gotransfer/internal/openblas"
)

// randomConv returns a 3x3, stride 1, padding 1 convolution with random
// weights and bias and its Winograd transform.
func randomConv(rng *rand.Rand, in, out int) foldedConv {
	c := foldedConv{
		spec: ConvSpec{Name: "test", K: 3, Stride: 1, Pad: 1, In: in, Out: out},
		w:    make([]float32, 9*in*out),
		b:    make([]float32, out),
	}
	for i := range c.w {
		c.w[i] = float32(rng.NormFloat64() / math.Sqrt(float64(9*in)))
	}
	for i := range c.b {
		c.b[i] = float32(rng.NormFloat64())
	}
	c.u = winogradFilter(&c)
	return c
}

// TestWinogradMatchesIm2col compares the Winograd convolution with the
// im2col one on random data: odd and even sizes (partial last tiles),
// batches, several chunks per worker, with and without residual and ReLU.
func TestWinogradMatchesIm2col(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, tc := range []struct {
		n, h, w, in, out     int
		residual, relu, many bool // many: a worker's tiles span chunks
	}{
		{1, 1, 1, 4, 4, false, false, false},
		{1, 7, 7, 16, 24, false, true, false},
		{2, 14, 14, 32, 32, true, true, false},
		{3, 5, 9, 8, 40, true, false, false},
		{2, 8, 6, 64, 16, false, false, false},
		{4, 3, 2, 5, 3, true, true, false},
		{3, 13, 13, 512, 512, true, true, true},
	} {
		t.Run(fmt.Sprintf("%+v", tc), func(t *testing.T) {
			c := randomConv(rng, tc.in, tc.out)
			if tiles := tc.n * ((tc.h + 1) / 2) * ((tc.w + 1) / 2); tc.many && tiles/2 <= winogradChunk(c.spec) {
				t.Fatalf("%d tiles fit one chunk a worker", tiles)
			}
			ref := c
			ref.u = nil
			rnd := func(n int) []float32 {
				s := make([]float32, n)
				for i := range s {
					s[i] = float32(rng.NormFloat64())
				}
				return s
			}
			in := rnd(tc.n * tc.h * tc.w * tc.in)
			size := tc.n * tc.h * tc.w * tc.out
			var res []float32
			if tc.residual {
				res = rnd(size)
			}
			// Poison the outputs: every element must be written.
			got, want := make([]float32, size), make([]float32, size)
			for i := range got {
				got[i], want[i] = float32(math.NaN()), float32(math.NaN())
			}
			e := &CPU{col: make([]float32, tc.n*tc.h*tc.w*9*tc.in)}
			before := e.winogradConvs
			e.conv(&ref, in, tc.n, tc.h, tc.w, want, res, tc.relu)
			if e.winogradConvs != before {
				t.Fatal("the im2col reference ran Winograd")
			}
			oh, ow := e.conv(&c, in, tc.n, tc.h, tc.w, got, res, tc.relu)
			if oh != tc.h || ow != tc.w {
				t.Fatalf("output %dx%d, want %dx%d", oh, ow, tc.h, tc.w)
			}
			if e.winogradConvs != before+1 {
				t.Fatal("Winograd did not run")
			}
			var worst, scale float64
			for i := range want {
				d := math.Abs(float64(got[i] - want[i]))
				if math.IsNaN(d) {
					t.Fatalf("element %d: got %v, want %v", i, got[i], want[i])
				}
				worst, scale = max(worst, d), max(scale, math.Abs(float64(want[i])))
			}
			if r := worst / scale; r > 1e-5 {
				t.Errorf("max |diff| / max|ref| = %.3g exceeds 1e-5", r)
			} else {
				t.Logf("max |diff| / max|ref| = %.2g", r)
			}
		})
	}
}

// TestWinogradUsed checks that the engine takes the Winograd path for every
// 3x3 convolution with stride 1, and only for those.
func TestWinogradUsed(t *testing.T) {
	for _, v := range []Variant{Keras, Torchvision} {
		t.Run(string(v), func(t *testing.T) {
			a, err := NewArch(v, 8)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, b := range a.Blocks {
				if c := b.Convs[1]; c.K == 3 && c.Stride == 1 {
					want++
				}
			}
			if want == 0 {
				t.Fatal("no 3x3 stride-1 convolution in the plan")
			}
			w, err := Random(8, 0, 3)
			if err != nil {
				t.Fatal(err)
			}
			w.Arch = a // same tensors; only the strides differ
			e, err := NewCPU(w)
			if err != nil {
				t.Fatal(err)
			}
			x := tensor.New(tensor.WithShape(2, 40, 40, 3), tensor.WithBacking(make([]float32, 2*40*40*3)))
			if _, err := e.Features(x); err != nil {
				t.Fatal(err)
			}
			if e.winogradConvs != want {
				t.Errorf("%d convolutions ran Winograd, want %d", e.winogradConvs, want)
			}
		})
	}
}

// BenchmarkConv3x3 times the 3x3 convolutions of ResNet50's stages at batch
// 16, Winograd against im2col.
func BenchmarkConv3x3(b *testing.B) {
	defer openblas.SetThreads(openblas.Threads())
	openblas.SetThreads(1) // as in a forward pass
	rng := rand.New(rand.NewPCG(9, 9))
	for _, st := range []struct{ size, ch int }{{56, 64}, {28, 128}, {14, 256}, {7, 512}} {
		const n = 16
		c := randomConv(rng, st.ch, st.ch)
		in := make([]float32, n*st.size*st.size*st.ch)
		for i := range in {
			in[i] = float32(rng.NormFloat64())
		}
		out := make([]float32, len(in))
		e := &CPU{col: make([]float32, 9*len(in))}
		for _, path := range []string{"winograd", "im2col"} {
			cc := c
			if path == "im2col" {
				cc.u = nil
			}
			b.Run(fmt.Sprintf("%dx%dx%d/%s", st.size, st.size, st.ch, path), func(b *testing.B) {
				e.conv(&cc, in, n, st.size, st.size, out, nil, true)
				for b.Loop() {
					e.conv(&cc, in, n, st.size, st.size, out, nil, true)
				}
			})
		}
	}
}
