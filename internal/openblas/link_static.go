//go:build linux && !openblas_shared

package openblas

// On Linux OpenBLAS is linked statically by default, so that the commands
// need nothing at run time beyond glibc: the binary carries OpenBLAS's kernels
// for every x86-64 generation and picks one on the CPU it finds, as the
// shared library would. Only the BLAS objects the project calls are linked
// in, so the Fortran runtime that LAPACK needs is not. Build with
// -tags openblas_shared to link libopenblas.so instead (a distribution
// without libopenblas.a, or a tuned OpenBLAS installed as a shared library).
// Elsewhere the shared library is linked (-l: is GNU ld's).

// #cgo LDFLAGS: -l:libopenblas.a -lm -lpthread
import "C"
