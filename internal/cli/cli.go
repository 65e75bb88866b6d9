// Package cli holds what the project's commands share: one way to report a
// failure (a single line on stderr and a non-zero exit, never a stack
// trace) and the set-up every command needs before it computes anything.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"gorgonia.org/gorgonia"

	"gotransfer/internal/openblas"
	"gotransfer/internal/term"
)

// Init routes gorgonia's matrix products to OpenBLAS and sets up log/slog
// on stderr. On a terminal each record starts by clearing the line, so
// that it does not land after a progress bar drawn there.
func Init(stderr io.Writer, verbose bool) {
	gorgonia.Use(openblas.Implementation{})
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	if term.IsTerminal(stderr) {
		stderr = lineClearer{stderr}
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
}

// lineClearer clears the terminal's current line before each write (one
// log record): a live progress bar there is erased, and redrawn below by
// its next update.
type lineClearer struct{ w io.Writer }

func (c lineClearer) Write(p []byte) (int, error) {
	if _, err := io.WriteString(c.w, "\r\033[K"); err != nil {
		return 0, err
	}
	return c.w.Write(p)
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
	case errors.Is(err, errVersion):
		fmt.Fprintf(stdout, "%s %s\n", name, Version())
		return 0
	case errors.As(err, new(UsageError)):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}

// Parse parses args with fs and returns the arguments that are not flags.
// Flags may follow them (predict photos/ --csv out.csv), as GNU tools
// allow, where the flag package stops at the first; after "--" every
// argument is taken as it is (a file named -x.jpg). A mistake becomes a
// one-line UsageError (without the flag package's usage dump); -h or
// --help prints the usage to stderr and returns flag.ErrHelp; --version (a
// flag Parse adds) makes Run print the command's Version and exit 0.
func Parse(fs *flag.FlagSet, args []string, stderr io.Writer) (positional []string, err error) {
	version := fs.Bool("version", false, "print the version (module, VCS revision, Go, build tags) and exit")
	fs.SetOutput(io.Discard)
	for {
		if err = fs.Parse(args); err != nil {
			break
		}
		rest := fs.Args()
		// The flag package consumes a "--" that ends the flags; it is
		// then no longer in rest.
		if len(rest) == 0 || len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	fs.SetOutput(stderr)
	switch {
	case err == nil && *version:
		return nil, errVersion
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return nil, err
	case err != nil:
		return nil, Usagef("%v (see -help)", err)
	}
	return positional, nil
}

// errVersion is Parse's answer to --version.
var errVersion = errors.New("version asked for")

// Version describes the build: the module's version ("devel" for a build
// from a checkout), the VCS revision and its time (and "modified" for
// uncommitted changes), the Go release, the platform and the build tags
// (gotransfer_cuda for the CUDA backbone).
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(no build information) " + runtime.Version()
	}
	v := strings.Trim(info.Main.Version, "()")
	if v == "" {
		v = "devel"
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	// Go 1.24 makes a pseudo-version of the revision; older releases, and
	// builds with -buildvcs=false, leave "(devel)".
	if rev := settings["vcs.revision"]; rev != "" && !strings.Contains(v, rev[:min(len(rev), 12)]) {
		v += " " + rev[:min(len(rev), 12)]
		if t := settings["vcs.time"]; t != "" {
			v += " " + t
		}
		if settings["vcs.modified"] == "true" {
			v += " (modified)"
		}
	}
	v += ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	if tags := settings["-tags"]; tags != "" {
		v += ", tags " + tags
	}
	return v
}

// UsageError is a mistake in the command line.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error { return UsageError{fmt.Sprintf(format, args...)} }

// stopSignals are the signals that stop a command cleanly (StopContext):
// Ctrl-C, SIGTERM (docker stop, kill), and SIGHUP (the terminal or ssh
// session closed) unless the command was started with it ignored (nohup),
// which it then keeps ignoring.
func stopSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// StopContext returns a context done at the first of Ctrl-C, SIGTERM and
// SIGHUP (stopSignals), so that the command stops at its next safe point
// (a training saves a checkpoint). After it Ctrl-C and SIGTERM act as
// without a handler, so a second Ctrl-C kills at once; SIGHUP is ignored
// from then on, as a closed terminal sends it twice (the shell forwards
// one, the kernel sends another as the shell exits), and the second must
// not kill the save the first began. stop releases the signals.
func StopContext() (ctx context.Context, stop context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, stopSignals()...)
	go func() {
		select {
		case <-sigs:
			if ctx.Err() != nil { // stopped already: released, a signal left queued
				return
			}
			// Only after a signal: a process started from this one (a
			// test's) would inherit the ignored SIGHUP.
			signal.Ignore(syscall.SIGHUP) // before Stop, which would restore its default
			signal.Stop(sigs)
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs) // released when stop returns
		cancel()
	}
}
