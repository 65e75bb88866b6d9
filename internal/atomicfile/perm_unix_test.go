//go:build unix

package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The files and folders get the umask's permissions, as os.WriteFile and
// os.Mkdir give them, not os.CreateTemp's owner-only ones.
func TestPermissions(t *testing.T) {
	umask := syscall.Umask(0o022)
	defer syscall.Umask(umask)
	dir := t.TempDir()
	p := filepath.Join(dir, "metrics.json")
	if err := WriteFile(p, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("file mode %v (%v), want 0644", st.Mode(), err)
	}
	// A replaced file keeps its permissions, as with os.WriteFile.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("replaced file mode %v (%v), want 0600", st.Mode(), err)
	}
	// Through a link, as os.WriteFile: the link stays, its file changes.
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink("metrics.json", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, []byte("[]")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v (%v)", st.Mode(), err)
	}
	if got, _ := os.ReadFile(p); string(got) != "[]" {
		t.Errorf("the linked file holds %q, want []", got)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("linked file mode %v (%v), want 0600", st.Mode(), err)
	}
	// A dangling link: its target is created, the link stays. A loop: an
	// error, and nothing replaced.
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink("sub/../later.json", dangling); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	if err := WriteFile(dangling, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "later.json")); err != nil || string(got) != "x" {
		t.Errorf("through a dangling link: %q (%v)", got, err)
	}
	if st, err := os.Lstat(dangling); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the dangling link was replaced: %v (%v)", st.Mode(), err)
	}
	loopA, loopB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.Symlink("b", loopA)
	os.Symlink("a", loopB)
	if err := WriteFile(loopA, []byte("x")); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("a loop of links: %v, want an error", err)
	}
	if st, err := os.Lstat(loopA); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("a link of the loop was replaced: %v (%v)", st.Mode(), err)
	}
	d, err := MkdirTemp(dir, ".tmp-x-")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o755 || !strings.HasPrefix(filepath.Base(d), ".tmp-x-") {
		t.Errorf("folder %s mode %v (%v), want 0755", d, st.Mode(), err)
	}
}
