package dataset

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// Skip is one file that could not be used, and why.
type Skip struct {
	Path   string `json:"path"`   // relative to Config.Root, as in Sample.Path
	Reason string `json:"reason"` // e.g. "empty file", "corrupt or truncated png: ..."
}

// SkipLog collects the files skipped by Stream and Check. Each file is
// recorded once, however many epochs meet it, and the first MaxLogged are
// logged (slog, level Warn; then one record says the others are not): a
// folder of thousands of unusable files does not flood the log, and the
// report (Entries, WriteTo) still lists them all. The zero value is ready
// to use and logs to slog.Default(); a SkipLog is safe for concurrent use.
type SkipLog struct {
	// Logger receives one Warn record per skipped file logged; nil means
	// slog.Default().
	Logger *slog.Logger

	mu      sync.Mutex
	seen    map[string]int // path -> index in entries
	entries []Skip
}

// Reason returns why path was skipped, if it was.
func (l *SkipLog) Reason(path string) (reason string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.seen[path]; ok {
		return l.entries[i].Reason, true
	}
	return "", false
}

// Add records that path was skipped for reason, unless it already was.
func (l *SkipLog) Add(path, reason string) {
	l.mu.Lock()
	if _, ok := l.seen[path]; ok {
		l.mu.Unlock()
		return
	}
	if l.seen == nil {
		l.seen = map[string]int{}
	}
	l.seen[path] = len(l.entries)
	l.entries = append(l.entries, Skip{Path: path, Reason: reason})
	n := len(l.entries)
	logger := l.Logger
	l.mu.Unlock()
	if logger == nil {
		logger = slog.Default()
	}
	switch {
	case n <= MaxLogged:
		logger.Warn("dataset: skipped file", "path", path, "reason", reason)
	case n == MaxLogged+1:
		logger.Warn(fmt.Sprintf("dataset: more than %d files skipped: the others are not logged one by one (the skip report lists them all)", MaxLogged))
	}
}

// MaxLogged is how many skipped files a SkipLog logs one by one.
const MaxLogged = 20

// Len returns the number of distinct files skipped.
func (l *SkipLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Entries returns a copy of the skipped files, in the order they were met.
func (l *SkipLog) Entries() []Skip {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Skip(nil), l.entries...)
}

// WriteTo writes the report as JSON lines, one {"path": ..., "reason": ...}
// object per skipped file.
func (l *SkipLog) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	enc := json.NewEncoder(cw)
	for _, s := range l.Entries() {
		if err := enc.Encode(s); err != nil {
			return cw.n, fmt.Errorf("dataset: write skip report: %w", err)
		}
	}
	return cw.n, nil
}

// WriteReport writes the report (see WriteTo) to the file at path, replacing it.
func (l *SkipLog) WriteReport(path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("dataset: skip report: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("dataset: skip report %s: %w", path, cerr)
		}
	}()
	bw := bufio.NewWriter(f)
	if _, err := l.WriteTo(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("dataset: skip report %s: %w", path, err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
