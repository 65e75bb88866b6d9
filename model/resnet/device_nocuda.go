//go:build !gotransfer_cuda && !cudaemu

package resnet

import "errors"

// ErrNoCUDA is returned for device "cuda" by a build without CUDA support.
// The tag is gotransfer_cuda, not cuda: gorgonia also reads the tag cuda, and
// its CUDA build needs cuDNN (see the README's CUDA section).
var ErrNoCUDA = errors.New("device cuda: built without CUDA support: rebuild with -tags gotransfer_cuda")

func newCUDA(*Weights) (Backbone, error) { return nil, ErrNoCUDA }
