package checkpoints

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// replaceDir puts the folder tmp in place of the existing folder dir and
// removes the old one. On Linux the two are swapped with one
// renameat2(RENAME_EXCHANGE), so dir always names a complete checkpoint; on
// file systems without it, replaceDirRenames is used.
func replaceDir(tmp, dir string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return replaceDirRenames(tmp, dir)
	}
	if err != nil {
		return &os.LinkError{Op: "renameat2 exchange", Old: tmp, New: dir, Err: err}
	}
	return os.RemoveAll(tmp) // now the old checkpoint
}
