package checkpoints

import (
	"os"
	"path/filepath"
)

// replaceDirRenames replaces dir by tmp with two renames: dir to a temporary
// name, tmp to dir. A crash between them leaves no folder at dir (and the old
// one under a temporary name, which a Manager cleans up), never a partial one.
func replaceDirRenames(tmp, dir string) error {
	old := filepath.Join(filepath.Dir(dir), tmpPrefix+"old-"+filepath.Base(dir))
	os.RemoveAll(old)
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(old, dir)
		return err
	}
	return os.RemoveAll(old)
}
