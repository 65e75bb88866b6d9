//go:build !linux || jpeg_shared

package dataset

// #cgo LDFLAGS: -ljpeg
import "C"
