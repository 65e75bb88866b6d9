package features

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// lockName is the file in a key's folder that extraction locks. It is never
// removed: removing a locked file would let the next process lock a new
// file of the same name while the old one is still held.
const lockName = "extract.lock"

// lockPoll is how often Lock tries again while another process holds the
// lock. flock cannot be interrupted, so Lock polls to honour its context.
const lockPoll = 50 * time.Millisecond

// TryLock takes the folder's extraction lock if no one holds it: ok is
// false (and unlock nil) if another process, or another open of the folder
// in this process, holds it. See Lock.
func (c *Cache) TryLock() (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(filepath.Join(c.dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("feature cache: lock: %w", err)
	}
	ok, err = tryLockFile(f)
	if err != nil || !ok {
		f.Close()
		if err != nil {
			err = fmt.Errorf("feature cache: lock %s: %w", f.Name(), err)
		}
		return nil, false, err
	}
	// Closing the file releases the lock, also when the process dies.
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }, true, nil
}

// Lock takes the folder's extraction lock, an advisory lock on a file in
// it, waiting while another holder has it, until ctx is done (then it
// returns ctx.Err()). Processes that extract into one folder hold it while
// they extract, so that each image is computed once: its features differ
// in their last bits with the batch it is computed in, and two rows of one
// image in the folder would let a reopened cache read other bits than the
// run that computed them used. Each call opens the lock file anew, so calls
// exclude one another within a process as well. Readers (Get) need no
// lock. unlock releases the lock; calling it again does nothing.
//
// On platforms without flock the lock is not taken and Lock always
// succeeds at once.
func (c *Cache) Lock(ctx context.Context) (unlock func(), err error) {
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
		unlock, ok, err := c.TryLock()
		if err != nil || ok {
			return unlock, err
		}
		t.Reset(lockPoll)
	}
}
