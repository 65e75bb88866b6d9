//go:build !cgo || !amd64

package head

// apply is applyGo where adam_kernel.go's C is not built (no cgo, or not
// amd64).
func (k adamKernel) apply(w, g, m, v []float32) { k.applyGo(w, g, m, v) }
