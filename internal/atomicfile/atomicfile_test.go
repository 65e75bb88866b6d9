package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.json")
	for _, content := range []string{"first", "second, longer"} {
		if err := WriteFile(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != content {
			t.Fatalf("read %q, want %q", got, content)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d files left in the folder, want 1", len(entries))
	}
}

func TestWriteFileFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a")
	WriteFile(p, []byte("old"))
	// A path whose folder is a regular file cannot be written.
	bad := filepath.Join(p, "b")
	if err := WriteFile(bad, []byte("new")); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("got %v, want an error naming %s", err, bad)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Fatalf("old content lost: %q", got)
	}
}

// A fill that fails halfway leaves the old file whole and no temporary file.
func TestWriteFillFails(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.onnx")
	WriteFile(p, []byte("old"))
	err := Write(p, func(w io.Writer) error {
		w.Write(make([]byte, 1<<20))
		return errors.New("disk on fire")
	})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), p) {
		t.Fatalf("got %v, want the fill's error naming %s", err, p)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Fatalf("old content lost: %q", got[:min(len(got), 10)])
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d files in the folder, want 1", len(entries))
	}
}

// TestWriteErrorNamesThePath: a failure writing the temporary file (a full
// disk) is reported against the file being written, once: the temporary
// file's name says nothing to the user.
func TestWriteErrorNamesThePath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "metrics.jsonl")
	for _, tc := range []struct {
		op   string
		want string
	}{
		{"write", "write " + p + ": no space left on device"},
		{"sync", "write " + p + ": sync: no space left on device"},
	} {
		err := Write(p, func(io.Writer) error {
			tmps, _ := filepath.Glob(filepath.Join(dir, TempPrefix+"metrics.jsonl-*"))
			if len(tmps) != 1 {
				t.Fatalf("temporary files %q", tmps)
			}
			return &fs.PathError{Op: tc.op, Path: tmps[0], Err: syscall.ENOSPC}
		})
		if err == nil || err.Error() != tc.want || !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%s failing: error %q, want %q wrapping ENOSPC", tc.op, err, tc.want)
		}
	}
}
