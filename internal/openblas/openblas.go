package openblas

// #include <cblas.h>
import "C"

import (
	"fmt"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is a gonum BLAS whose matrix products run on OpenBLAS.
// The zero value is ready to use.
type Implementation struct {
	gonum.Implementation
}

func trans(t blas.Transpose) C.enum_CBLAS_TRANSPOSE {
	if t == blas.NoTrans {
		return C.CblasNoTrans
	}
	return C.CblasTrans
}

// Sgemm computes C = alpha*op(A)*op(B) + beta*C in row-major order, where
// op(A) is m×k, op(B) is k×n and C is m×n.
func (Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkGemm("Sgemm", tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	C.cblas_sgemm(C.CblasRowMajor, trans(tA), trans(tB), C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(ptr32(a)), C.blasint(lda), (*C.float)(ptr32(b)), C.blasint(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}

// Dgemm is Sgemm in double precision.
func (Implementation) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkGemm("Dgemm", tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	C.cblas_dgemm(C.CblasRowMajor, trans(tA), trans(tB), C.blasint(m), C.blasint(n), C.blasint(k),
		C.double(alpha), (*C.double)(ptr64(a)), C.blasint(lda), (*C.double)(ptr64(b)), C.blasint(ldb),
		C.double(beta), (*C.double)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}

// Sgemv computes y = alpha*op(A)*x + beta*y with A m×n in row-major order.
func (Implementation) Sgemv(tA blas.Transpose, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int) {
	if m == 0 || n == 0 {
		return
	}
	checkGemv("Sgemv", tA, m, n, len(a), lda, len(x), incX, len(y), incY)
	C.cblas_sgemv(C.CblasRowMajor, trans(tA), C.blasint(m), C.blasint(n), C.float(alpha),
		(*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda), (*C.float)(unsafe.Pointer(&x[0])), C.blasint(incX),
		C.float(beta), (*C.float)(unsafe.Pointer(&y[0])), C.blasint(incY))
}

// Dgemv is Sgemv in double precision.
func (Implementation) Dgemv(tA blas.Transpose, m, n int, alpha float64, a []float64, lda int, x []float64, incX int, beta float64, y []float64, incY int) {
	if m == 0 || n == 0 {
		return
	}
	checkGemv("Dgemv", tA, m, n, len(a), lda, len(x), incX, len(y), incY)
	C.cblas_dgemv(C.CblasRowMajor, trans(tA), C.blasint(m), C.blasint(n), C.double(alpha),
		(*C.double)(unsafe.Pointer(&a[0])), C.blasint(lda), (*C.double)(unsafe.Pointer(&x[0])), C.blasint(incX),
		C.double(beta), (*C.double)(unsafe.Pointer(&y[0])), C.blasint(incY))
}

// Sgemm is the package-level row-major single-precision product used by the
// backbone: C (m×n) = alpha*A (m×k) * B (k×n) + beta*C, all densely packed.
func Sgemm(m, n, k int, alpha float32, a, b []float32, beta float32, c []float32) {
	Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, alpha, a, k, b, n, beta, c, n)
}

// Threads returns the number of threads OpenBLAS uses for one call.
func Threads() int { return int(C.openblas_get_num_threads()) }

// SetThreads sets the number of threads OpenBLAS uses for one call. Callers
// that split work across goroutines themselves set it to 1, so that no
// idle OpenBLAS thread spins beside them.
func SetThreads(n int) { C.openblas_set_num_threads(C.int(max(1, n))) }

// ptr32 returns the address of a's first element, or nil for an empty slice
// (valid when k == 0, where BLAS never reads it).
func ptr32(a []float32) unsafe.Pointer {
	if len(a) == 0 {
		return nil
	}
	return unsafe.Pointer(&a[0])
}

func ptr64(a []float64) unsafe.Pointer {
	if len(a) == 0 {
		return nil
	}
	return unsafe.Pointer(&a[0])
}

// checkGemm guards the C call: OpenBLAS reads and writes out of bounds
// instead of failing, so a wrong size must stop here. Like gonum's own
// BLAS it panics, since a size mismatch is a programming error.
func checkGemm(op string, tA, tB blas.Transpose, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	rowsA, colsA := m, k
	if tA != blas.NoTrans {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if tB != blas.NoTrans {
		rowsB, colsB = n, k
	}
	switch {
	case m < 0 || n < 0 || k < 0:
		panic(fmt.Sprintf("openblas: %s: negative size m=%d n=%d k=%d", op, m, n, k))
	case lda < max(1, colsA) || ldb < max(1, colsB) || ldc < max(1, n):
		panic(fmt.Sprintf("openblas: %s: bad leading dimension lda=%d ldb=%d ldc=%d", op, lda, ldb, ldc))
	case rowsA > 0 && colsA > 0 && la < (rowsA-1)*lda+colsA:
		panic(fmt.Sprintf("openblas: %s: A has %d elements, needs %d", op, la, (rowsA-1)*lda+colsA))
	case rowsB > 0 && colsB > 0 && lb < (rowsB-1)*ldb+colsB:
		panic(fmt.Sprintf("openblas: %s: B has %d elements, needs %d", op, lb, (rowsB-1)*ldb+colsB))
	case lc < (m-1)*ldc+n:
		panic(fmt.Sprintf("openblas: %s: C has %d elements, needs %d", op, lc, (m-1)*ldc+n))
	}
}

func checkGemv(op string, tA blas.Transpose, m, n, la, lda, lx, incX, ly, incY int) {
	lenX, lenY := n, m
	if tA != blas.NoTrans {
		lenX, lenY = m, n
	}
	switch {
	case m < 0 || n < 0 || incX <= 0 || incY <= 0:
		panic(fmt.Sprintf("openblas: %s: bad size m=%d n=%d incX=%d incY=%d", op, m, n, incX, incY))
	case lda < max(1, n) || la < (m-1)*lda+n:
		panic(fmt.Sprintf("openblas: %s: A has %d elements with lda=%d, needs %d", op, la, lda, (m-1)*lda+n))
	case lx < 1+(lenX-1)*incX || ly < 1+(lenY-1)*incY:
		panic(fmt.Sprintf("openblas: %s: x or y too short (%d, %d)", op, lx, ly))
	}
}
