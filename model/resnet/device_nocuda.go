//go:build !cuda

package resnet

import "errors"

// ErrNoCUDA is returned for device "cuda" by a build without CUDA support.
var ErrNoCUDA = errors.New("device cuda: built without CUDA support: rebuild with -tags cuda")

func newCUDA(*Weights) (Backbone, error) { return nil, ErrNoCUDA }
