//go:build linux && !openblas_shared && !jpeg_shared

package main

import (
	"debug/elf"
	"os"
	"strings"
	"testing"
)

// TestLinkedStatically checks that the command needs no OpenBLAS, Fortran
// or libjpeg shared library (see internal/openblas and dataset): this test
// binary is the command, linked as it is.
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
		for _, name := range []string{"blas", "gfortran", "jpeg"} {
			if strings.Contains(l, name) {
				t.Errorf("the binary needs %s (all: %q): it should be linked in", l, libs)
			}
		}
	}
}
