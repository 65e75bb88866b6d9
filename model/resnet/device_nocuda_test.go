//go:build !gotransfer_cuda && !cudaemu

package resnet

import (
	"errors"
	"strings"
	"testing"
)

func TestCUDAWithoutTag(t *testing.T) {
	w, _ := Random(8, 0, 1)
	_, err := New(w, "cuda")
	if !errors.Is(err, ErrNoCUDA) || !strings.Contains(err.Error(), "rebuild with -tags gotransfer_cuda") {
		t.Fatalf("got %v, want the rebuild-with-cuda error", err)
	}
}
