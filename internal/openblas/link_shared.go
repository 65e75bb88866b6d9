//go:build !linux || openblas_shared

package openblas

// #cgo LDFLAGS: -lopenblas
import "C"
