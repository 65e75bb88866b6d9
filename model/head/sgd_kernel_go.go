//go:build !cgo || !amd64

package head

// apply is applyGo where sgd_kernel.go's C is not built (no cgo, or not
// amd64).
func (k sgdKernel) apply(w, g, b []float32) { k.applyGo(w, g, b) }
