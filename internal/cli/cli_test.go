package cli

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   func(args []string, stdout, stderr io.Writer) error
		code   int
		stderr string
	}{
		{"ok", func([]string, io.Writer, io.Writer) error { return nil }, 0, ""},
		{"error", func([]string, io.Writer, io.Writer) error { return errors.New("open x.npz: no such file") }, 1, "tool: open x.npz: no such file\n"},
		{"usage", func([]string, io.Writer, io.Writer) error { return Usagef("no images given") }, 2, "tool: no images given\n"},
		{"panic", func([]string, io.Writer, io.Writer) error { panic("index out of range") }, 1, "tool: internal error (a bug, please report it): index out of range\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errb strings.Builder
			code := Run("tool", nil, io.Discard, &errb, tc.body)
			if code != tc.code || errb.String() != tc.stderr {
				t.Fatalf("code %d stderr %q, want %d %q", code, errb.String(), tc.code, tc.stderr)
			}
		})
	}
}
