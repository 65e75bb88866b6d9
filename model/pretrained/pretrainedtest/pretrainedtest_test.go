package pretrainedtest

import (
	"strings"
	"testing"

	"gotransfer/model/pretrained"
)

// TestIsolate: every folder DefaultFetcher reads or writes is in the fresh
// home, and the mirror is the one given.
func TestIsolate(t *testing.T) {
	home := Isolate(t, "http://127.0.0.1:1/m")
	f := pretrained.DefaultFetcher()
	for _, dir := range append([]string{f.Dir}, f.Search...) {
		if !strings.HasPrefix(dir, home) {
			t.Errorf("folder %s is not in %s", dir, home)
		}
	}
	if f.Mirror != "http://127.0.0.1:1/m" {
		t.Errorf("mirror %q", f.Mirror)
	}
}
