package openblas

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestAgainstGonum checks every routed routine against gonum's reference
// implementation on random operands, for each transpose combination and
// for padded leading dimensions.
func TestAgainstGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rnd32 := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return s
	}
	var ob Implementation
	var ref gonum.Implementation
	ts := []blas.Transpose{blas.NoTrans, blas.Trans}
	for _, tc := range []struct{ m, n, k, pad int }{{1, 1, 1, 0}, {7, 5, 3, 0}, {33, 17, 65, 2}, {64, 128, 9, 1}} {
		for _, tA := range ts {
			for _, tB := range ts {
				rowsA, colsA := tc.m, tc.k
				if tA == blas.Trans {
					rowsA, colsA = tc.k, tc.m
				}
				rowsB, colsB := tc.k, tc.n
				if tB == blas.Trans {
					rowsB, colsB = tc.n, tc.k
				}
				lda, ldb, ldc := colsA+tc.pad, colsB+tc.pad, tc.n+tc.pad
				a, b := rnd32(rowsA*lda), rnd32(rowsB*ldb)
				c1 := rnd32(tc.m * ldc)
				c2 := append([]float32(nil), c1...)
				ob.Sgemm(tA, tB, tc.m, tc.n, tc.k, 1.5, a, lda, b, ldb, 0.5, c1, ldc)
				ref.Sgemm(tA, tB, tc.m, tc.n, tc.k, 1.5, a, lda, b, ldb, 0.5, c2, ldc)
				assertClose(t, "Sgemm", c1, c2, 1e-4)

				a64, b64, c64 := to64(a), to64(b), to64(c2)
				d1 := append([]float64(nil), c64...)
				ob.Dgemm(tA, tB, tc.m, tc.n, tc.k, 1, a64, lda, b64, ldb, 1, d1, ldc)
				ref.Dgemm(tA, tB, tc.m, tc.n, tc.k, 1, a64, lda, b64, ldb, 1, c64, ldc)
				assertClose(t, "Dgemm", to32(d1), to32(c64), 1e-9)
			}
			lenX, lenY := tc.n, tc.m
			if tA == blas.Trans {
				lenX, lenY = tc.m, tc.n
			}
			a, x := rnd32(tc.m*(tc.n+tc.pad)), rnd32(lenX*2)
			y1 := rnd32(lenY * 3)
			y2 := append([]float32(nil), y1...)
			ob.Sgemv(tA, tc.m, tc.n, 2, a, tc.n+tc.pad, x, 2, -1, y1, 3)
			ref.Sgemv(tA, tc.m, tc.n, 2, a, tc.n+tc.pad, x, 2, -1, y2, 3)
			assertClose(t, "Sgemv", y1, y2, 1e-4)
			y3, y4 := to64(y1), to64(y1)
			ob.Dgemv(tA, tc.m, tc.n, 2, to64(a), tc.n+tc.pad, to64(x), 2, -1, y3, 3)
			ref.Dgemv(tA, tc.m, tc.n, 2, to64(a), tc.n+tc.pad, to64(x), 2, -1, y4, 3)
			assertClose(t, "Dgemv", to32(y3), to32(y4), 1e-9)
		}
	}
}

func TestSgemmPanicsOnShortOperand(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Sgemm with a too-short C did not panic")
		}
	}()
	Sgemm(2, 2, 2, 1, make([]float32, 4), make([]float32, 4), 0, make([]float32, 3))
}

func BenchmarkSgemm(b *testing.B) {
	for _, n := range []int{256, 1024} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			x, y, z := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
			for b.Loop() {
				Sgemm(n, n, n, 1, x, y, 0, z)
			}
			b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func assertClose(t *testing.T, op string, got, want []float32, tol float64) {
	t.Helper()
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s: element %d: got %v, want %v", op, i, got[i], want[i])
		}
	}
}

func to64(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

func to32(s []float64) []float32 {
	d := make([]float32, len(s))
	for i, v := range s {
		d[i] = float32(v)
	}
	return d
}
