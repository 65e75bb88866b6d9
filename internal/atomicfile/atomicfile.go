// Package atomicfile replaces files so that readers, and a process killed
// at any moment, see either the old content or all of the new one.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// TempPrefix starts the names of the temporary files WriteFile leaves
// behind when it is killed; owners of a folder may remove such files.
const TempPrefix = ".tmp-"

// WriteFile writes data to a temporary file in path's folder, syncs it,
// renames it over path (over the file a link at path points to) and syncs
// the folder. The file gets the permissions os.WriteFile(path, data,
// 0o666) would give it: those of the file it replaces, else 0o666 less the
// umask (not os.CreateTemp's owner-only ones: runs and caches are shared).
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write is WriteFile for content that fill writes (buffered), for files
// too large to hold twice in memory.
func Write(path string, fill func(io.Writer) error) error {
	path, err := followLinks(path) // as os.WriteFile, write through a link
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := createTemp(dir, TempPrefix+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if st, serr := os.Stat(path); serr == nil {
		tmp.Chmod(st.Mode().Perm()) // a replaced file keeps its permissions where the file system can
	}
	bw := bufio.NewWriter(tmp)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, withoutPath(err, tmp.Name()))
	}
	// The rename is durable once the folder is synced; a failure here loses
	// nothing that was there before, so it is not reported.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// withoutPath returns err without the name of the temporary file it is
// about (a full disk: "write .tmp-metrics.jsonl-x1y2: no space left on
// device"), which Write reports against the file it writes instead.
func withoutPath(err error, tmp string) error {
	pe, ok := err.(*fs.PathError) // wrapped, it is told with more than its path
	if !ok || pe.Path != tmp {
		return err
	}
	if pe.Op == "write" {
		return pe.Err
	}
	return fmt.Errorf("%s: %w", pe.Op, pe.Err)
}

// followLinks returns the path a chain of symbolic links at path ends at,
// which need not exist (a dangling link is written through, as
// os.WriteFile does), or path itself if it is not a link.
func followLinks(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return path, err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return path, errors.New("too many levels of symbolic links")
}

// createTemp is os.CreateTemp with the mode 0o666 (before the umask).
func createTemp(dir, prefix string) (*os.File, error) {
	for range 10000 {
		f, err := os.OpenFile(filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64(), 36)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("create a temporary file in %s: too many names taken", dir)
}

// MkdirTemp is os.MkdirTemp with the mode 0o777 (before the umask), so that
// a folder renamed into place is as readable as one os.Mkdir makes.
func MkdirTemp(dir, prefix string) (string, error) {
	for range 10000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64(), 36))
		err := os.Mkdir(name, 0o777)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("create a temporary folder in %s: too many names taken", dir)
}
