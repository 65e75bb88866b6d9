// Package openblas routes the matrix products of this project to OpenBLAS.
//
// The frozen backbone spends nearly all of its time in single-precision
// matrix products (every convolution is lowered to them), and the dense head
// trained by gorgonia does too. Both go through this package so that one
// library, OpenBLAS, does the heavy arithmetic with all cores.
//
// Sgemm is the entry point for the backbone: row-major C = alpha*A*B + beta*C
// on plain []float32 slices. Implementation satisfies gonum's blas.Float32,
// Float64, Complex64 and Complex128 interfaces (and so gorgonia's BLAS
// interface): the level-3 and matrix-vector products that matter for speed
// (Sgemm, Dgemm, Sgemv, Dgemv) call OpenBLAS and everything else falls back
// to gonum's pure-Go implementation. Hand it to gorgonia with
//
//	gorgonia.Use(openblas.Implementation{})
//
// Building needs the OpenBLAS headers and library: on Debian and Ubuntu,
// `apt-get install libopenblas-dev`. The library's thread count follows
// OPENBLAS_NUM_THREADS, as usual.
package openblas
