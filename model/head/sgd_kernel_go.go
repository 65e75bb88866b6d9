//go:build !cgo || !amd64

package head

type sgdKernel struct {
	lr, mu, wd float32
	nesterov   bool
}

// apply is sgd_kernel.go's update in Go, where that C is not built (no cgo,
// or not amd64): the same formula, one float at a time.
func (k sgdKernel) apply(w, g, b []float32) {
	g = g[:len(w)]
	if b != nil {
		b = b[:len(w)]
	}
	for i := range w {
		gi := g[i]
		if k.wd != 0 { // skipped rather than 0·w, as Adam's decay
			gi += k.wd * w[i]
		}
		if b != nil {
			bi := k.mu*b[i] + gi
			b[i] = bi
			if k.nesterov {
				gi += k.mu * bi
			} else {
				gi = bi
			}
		}
		w[i] -= k.lr * gi
	}
}
