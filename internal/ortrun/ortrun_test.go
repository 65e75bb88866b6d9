package ortrun

import (
	"errors"
	"testing"
)

func TestAvailable(t *testing.T) {
	t.Setenv(EnvDir, "")
	if err := Available(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("without %s: %v, want ErrUnavailable", EnvDir, err)
	}
	t.Setenv(EnvDir, t.TempDir())
	if err := Available(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("with an empty folder: %v, want ErrUnavailable", err)
	}
	if _, err := Run("model.onnx", nil, 0, 0, 0); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Run without ONNX Runtime: %v, want ErrUnavailable", err)
	}
}
