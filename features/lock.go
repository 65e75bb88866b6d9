package features

import (
	"context"
	"fmt"
	"path/filepath"

	"gotransfer/internal/filelock"
)

// lockName is the file in a key's folder that extraction locks (never
// removed; see internal/filelock).
const lockName = "extract.lock"

// TryLock takes the folder's extraction lock if no one holds it: ok is
// false (and unlock nil) if another process, or another open of the folder
// in this process, holds it. See Lock.
func (c *Cache) TryLock() (unlock func(), ok bool, err error) {
	unlock, ok, err = filelock.TryLock(filepath.Join(c.dir, lockName))
	if err != nil {
		err = fmt.Errorf("feature cache: %w", err)
	}
	return unlock, ok, err
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
// succeeds at once: processes extracting into one folder at once may then
// both store an image, and a reopened cache reads the row of the first
// shard (see the package doc).
func (c *Cache) Lock(ctx context.Context) (unlock func(), err error) {
	unlock, err = filelock.Lock(ctx, filepath.Join(c.dir, lockName))
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("feature cache: %w", err)
	}
	return unlock, err
}
