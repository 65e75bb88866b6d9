//go:build !cgo || !amd64

package head

import "math"

type adamKernel struct{ alpha, omb1, omb2, eps, decay float32 }

// apply is adam_kernel.go's update in Go, where that C is not built (no cgo,
// or not amd64): the same formula, one float at a time.
func (k adamKernel) apply(w, g, m, v []float32) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for i := range w {
		gi := g[i]
		mi := m[i] + (gi-m[i])*k.omb1
		vi := v[i] + (gi*gi-v[i])*k.omb2
		m[i], v[i] = mi, vi
		wi := w[i]
		if k.decay != 0 { // skipped rather than 0·w: w − 0·w is not w for −0, ±Inf or NaN
			wi -= k.decay * wi
		}
		w[i] = wi - k.alpha*mi/(float32(math.Sqrt(float64(vi)))+k.eps)
	}
}
