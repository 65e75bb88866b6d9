//go:build linux && !jpeg_shared

package dataset

import (
	"debug/elf"
	"os"
	"strings"
	"testing"
)

// TestLinkedStatically checks that a default build needs no libjpeg shared
// library: this test binary links the package as the commands do.
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
		if strings.Contains(l, "jpeg") {
			t.Errorf("the binary needs %s (all: %q); libjpeg-turbo should be linked in", l, libs)
		}
	}
}
