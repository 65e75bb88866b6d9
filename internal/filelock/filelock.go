// Package filelock is an advisory lock on a file, shared by processes: an
// exclusive flock where the platform has it, nothing elsewhere. A lock
// belongs to one open of the file, so two calls exclude each other within a
// process too, and a holder's lock goes with its process when it dies.
//
// The lock file is never removed: removing a locked file would let the next
// process lock a new file of the same name while the old one is still held.
package filelock

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

// poll is how often Lock tries again while another holder has the lock.
// flock cannot be interrupted, so Lock polls to honour its context.
const poll = 50 * time.Millisecond

// TryLock takes the lock on the file at path (created if missing) if no
// one holds it: ok is false (and unlock nil) if another process, or another
// call in this one, holds it. unlock releases it; calling it again does
// nothing. On platforms without flock it always succeeds at once.
func TryLock(path string) (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("lock: %w", err)
	}
	ok, err = tryLockFile(f)
	if err != nil || !ok {
		f.Close()
		if err != nil {
			err = fmt.Errorf("lock %s: %w", path, err)
		}
		return nil, false, err
	}
	// Closing the file releases the lock, also when the process dies.
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }, true, nil
}

// Lock takes the lock on the file at path, waiting while another holder
// has it, until ctx is done (then it returns ctx.Err()).
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		if err := ctx.Err(); err != nil { // select picks at random when both are ready
			return nil, err
		}
		unlock, ok, err := TryLock(path)
		if err != nil || ok {
			return unlock, err
		}
		t.Reset(poll)
	}
}
