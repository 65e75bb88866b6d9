//go:build linux && !openblas_shared

package openblas

import (
	"debug/elf"
	"os"
	"strings"
	"testing"
)

// TestLinkedStatically checks that a default build needs no OpenBLAS (or
// Fortran runtime) shared library: this test binary links the package as
// the commands do.
func TestLinkedStatically(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if strings.Contains(l, "blas") || strings.Contains(l, "gfortran") {
			t.Errorf("the binary needs %s (all: %q); OpenBLAS should be linked in", l, libs)
		}
	}
	if Threads() < 1 {
		t.Errorf("OpenBLAS reports %d threads", Threads())
	}
}
