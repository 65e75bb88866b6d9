//go:build linux && !jpeg_shared

package dataset

// On Linux libjpeg-turbo is linked statically (libjpeg.a of Debian's
// libjpeg-dev), as OpenBLAS is (see internal/openblas): the commands need
// nothing at run time beyond glibc. -tags jpeg_shared links libjpeg.so.

// #cgo LDFLAGS: -l:libjpeg.a
import "C"
