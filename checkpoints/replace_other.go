//go:build !linux

package checkpoints

// replaceDir puts the folder tmp in place of the existing folder dir and
// removes the old one, with two renames.
func replaceDir(tmp, dir string) error { return replaceDirRenames(tmp, dir) }
