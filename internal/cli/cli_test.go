package cli

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"runtime"
	"slices"
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

func TestParse(t *testing.T) {
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("tool", flag.ContinueOnError)
		fs.Int("n", 1, "a number")
		return fs
	}
	var errb strings.Builder
	if _, err := Parse(newFS(), []string{"-n", "3"}, &errb); err != nil || errb.Len() != 0 {
		t.Fatalf("good flags: %v, stderr %q", err, errb.String())
	}
	// Flags may follow the other arguments; after "--" nothing is a flag.
	for _, tc := range []struct {
		args []string
		n    int
		rest []string
	}{
		{[]string{"a.jpg", "b/"}, 1, []string{"a.jpg", "b/"}},
		{[]string{"a.jpg", "-n", "3", "b/"}, 3, []string{"a.jpg", "b/"}},
		{[]string{"photos/", "--n=4"}, 4, []string{"photos/"}},
		{[]string{"-n", "2", "--", "-x.jpg", "-n", "5"}, 2, []string{"-x.jpg", "-n", "5"}},
		{[]string{"a.jpg", "--", "-n"}, 1, []string{"a.jpg", "-n"}},
		{[]string{"a.jpg", "-", "b.jpg"}, 1, []string{"a.jpg", "-", "b.jpg"}}, // "-" is an argument (stdin)
	} {
		fs := newFS()
		rest, err := Parse(fs, tc.args, &errb)
		if n := fs.Lookup("n").Value.(flag.Getter).Get().(int); err != nil || n != tc.n || !slices.Equal(rest, tc.rest) {
			t.Errorf("Parse(%q): n %d, rest %q, %v; want %d, %q", tc.args, n, rest, err, tc.n, tc.rest)
		}
	}
	_, err := Parse(newFS(), []string{"-frobnicate"}, &errb)
	if !errors.As(err, new(UsageError)) || !strings.Contains(err.Error(), "frobnicate") || errb.Len() != 0 {
		t.Fatalf("bad flag: %v, stderr %q (want one error, no usage dump)", err, errb.String())
	}
	if _, err := Parse(newFS(), []string{"a.jpg", "--frobnicate"}, &errb); !errors.As(err, new(UsageError)) {
		t.Errorf("a bad flag after an argument: %v", err)
	}
	if _, err := Parse(newFS(), []string{"-help"}, &errb); !errors.Is(err, flag.ErrHelp) || !strings.Contains(errb.String(), "a number") {
		t.Fatalf("-help: %v, stderr %q", err, errb.String())
	}
}

// TestVersion: --version, on any command that parses with Parse, prints
// the command's name and Version on stdout and exits 0.
func TestVersion(t *testing.T) {
	var out, errb strings.Builder
	code := Run("tool", []string{"--version"}, &out, &errb, func(args []string, stdout, stderr io.Writer) error {
		fs := flag.NewFlagSet("tool", flag.ContinueOnError)
		fs.Int("n", 1, "a number")
		if _, err := Parse(fs, args, stderr); err != nil {
			return err
		}
		return errors.New("ran on")
	})
	if code != 0 || out.String() != "tool "+Version()+"\n" || errb.Len() != 0 || !strings.Contains(Version(), runtime.Version()) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// TestLineClearer: each log record on a terminal first clears the line a
// progress bar may hold.
func TestLineClearer(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewTextHandler(lineClearer{&b}, nil))
	log.Info("one")
	log.Warn("two")
	if got := b.String(); strings.Count(got, "\r\033[K") != 2 || !strings.HasPrefix(got, "\r\033[Ktime=") {
		t.Errorf("%q", got)
	}
}
