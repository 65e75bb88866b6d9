// Package cli holds what the project's commands share: one way to report a
// failure (a single line on stderr and a non-zero exit, never a stack
// trace) and the set-up every command needs before it computes anything.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"gorgonia.org/gorgonia"

	"gotransfer/internal/openblas"
)

// Init routes gorgonia's matrix products to OpenBLAS and sets up log/slog
// on stderr.
func Init(stderr io.Writer, verbose bool) {
	gorgonia.Use(openblas.Implementation{})
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
}

// Main runs a command's body and turns its outcome into an exit status: 0
// on success, 2 for a usage error (flag.ErrHelp included, after the usage
// text), 1 otherwise with "name: error" on stderr. A panic is reported the
// same way, as a bug, instead of a stack trace.
func Main(name string, run func(args []string, stdout, stderr io.Writer) error) {
	os.Exit(Run(name, os.Args[1:], os.Stdout, os.Stderr, run))
}

// Run is Main without the exit, for tests.
func Run(name string, args []string, stdout, stderr io.Writer, run func(args []string, stdout, stderr io.Writer) error) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "%s: internal error (a bug, please report it): %v\n", name, r)
			code = 1
		}
	}()
	err := run(args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(UsageError)):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}

// Parse parses args with fs. A mistake becomes a one-line UsageError
// (without the flag package's usage dump); -h or --help prints the usage
// to stderr and returns flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	case err != nil:
		return Usagef("%v (see -help)", err)
	}
	return nil
}

// UsageError is a mistake in the command line.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error { return UsageError{fmt.Sprintf(format, args...)} }
