package dataset

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	sm "gotransfer/internal/splitmix"
)

// Sample is one image file of the dataset.
type Sample struct {
	// Path is relative to Config.Root and slash-separated, e.g. "cats/001.jpg".
	Path string
	// Label is the index of the class in Index.Classes.
	Label int
}

// Index lists a dataset's files without decoding them.
type Index struct {
	// Classes are the class names; a sample's Label indexes this slice.
	Classes []string
	// Train and Validation hold the samples of each split, class by class,
	// each class in lexical order of its paths.
	Train, Validation []Sample
	// Ignored counts the other files in the class folders by extension
	// (".heic", "" for none): not read, as not images by their name.
	Ignored map[string]int
}

// IgnoredString describes Ignored, the most frequent extension first:
// "120 .heic files, 1 .txt file", or "" when none.
func (idx *Index) IgnoredString() string {
	return ignoredString(idx.Ignored)
}

func ignoredString(m map[string]int) string {
	exts := slices.Collect(maps.Keys(m))
	slices.SortFunc(exts, func(a, b string) int {
		return cmp.Or(m[b]-m[a], noExtensionLast(a)-noExtensionLast(b), strings.Compare(a, b))
	})
	parts := make([]string, len(exts))
	for i, e := range exts {
		files := "files"
		if m[e] == 1 {
			files = "file"
		}
		if e == "" {
			parts[i] = fmt.Sprintf("%d %s without an extension", m[e], files)
		} else {
			parts[i] = fmt.Sprintf("%d %s %s", m[e], e, files)
		}
	}
	return strings.Join(parts, ", ")
}

func noExtensionLast(ext string) int {
	if ext == "" {
		return 1
	}
	return 0
}

// extensions are the file name extensions Scan accepts, compared in lower case:
// those of Keras' image_dataset_from_directory, and WebP and TIFF as
// torchvision's ImageFolder.
var extensions = map[string]bool{
	".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".bmp": true, ".webp": true, ".tif": true, ".tiff": true,
}

// Extensions lists the extensions of the files read as images, sorted.
func Extensions() []string {
	return slices.Sorted(maps.Keys(extensions))
}

// LegacyExtensions are the extensions read before TIFF was: the images of
// runs begun then.
var LegacyExtensions = []string{".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp"}

// isImage reports whether Scan reads name as an image: IsImageName, within
// cfg.Extensions where set.
func (c Config) isImage(name string) bool {
	return IsImageName(name) && (c.Extensions == nil || slices.Contains(c.Extensions, strings.ToLower(path.Ext(name))))
}

// junk names files that systems leave in folders of pictures, not worth
// reporting as ignored.
var junk = map[string]bool{"thumbs.db": true, "desktop.ini": true}

// IsImageName reports whether a file name has one of the extensions Scan
// accepts (any case) and is not hidden.
func IsImageName(name string) bool {
	return !hidden(name) && extensions[strings.ToLower(path.Ext(name))]
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// ImageFiles lists the image files under root, recursively, as paths
// relative to root with forward slashes, sorted; hidden files and folders
// are left out and symbolic links are not followed. It is how a folder of
// unlabelled images is read (predict).
func ImageFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && hidden(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && IsImageName(d.Name()) {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dataset: list images: %w", err)
	}
	sort.Strings(files)
	return files, nil
}

// looseImages says, for an error, how many images sit in root itself (not
// in a class folder), as where data.dir names one class's folder.
func looseImages(root string) string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return ""
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() && IsImageName(e.Name()) && !hidden(e.Name()) { // symbolic links to images too
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (it holds %d image(s) itself: the images go in one sub-folder per class, e.g. %s/cats/*.jpg and %s/dogs/*.jpg)", n, root, root)
}

// Scan lists the images under cfg.Root, labels them by class folder and splits
// them into training and validation sets. It reads folders only, never image
// contents, so unusable files are found later by Stream or Check.
//
// Scan fails if Root cannot be read, if fewer than cfg.MinClasses classes (two
// by default) are found, if a class listed in cfg.Classes is missing, or if a
// class has no image file.
func Scan(cfg Config) (*Index, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	classes, err := listClasses(cfg)
	if err != nil {
		return nil, err
	}
	if len(classes) < cfg.MinClasses {
		return nil, fmt.Errorf("dataset: need at least %d classes, found %d in %s%s", cfg.MinClasses, len(classes), cfg.Root, looseImages(cfg.Root))
	}
	idx := &Index{Classes: classes, Ignored: map[string]int{}}
	for label, class := range classes {
		files, ignored, err := classFiles(cfg, cfg.Root, class)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("dataset: class %q has no image file under %s%s", class, filepath.Join(cfg.Root, class), ignoredHint(ignored))
		}
		for e, n := range ignored {
			idx.Ignored[e] += n
		}
		for _, rel := range files {
			s := Sample{Path: rel, Label: label}
			if inValidation(cfg.Seed, rel, cfg.ValidationSplit) {
				idx.Validation = append(idx.Validation, s)
			} else {
				idx.Train = append(idx.Train, s)
			}
		}
	}
	if cfg.ValidationRoot != "" {
		if idx.Validation, err = scanValidation(cfg, classes, idx.Ignored); err != nil {
			return nil, err
		}
	}
	return idx, nil
}

// ignoredHint says, for an error, which files a folder without images
// has, and that they are not read.
func ignoredHint(ignored map[string]int) string {
	if len(ignored) == 0 {
		return ""
	}
	return fmt.Sprintf(" (it has %s, which are not read: the images read are %s; convert the others to JPEG or PNG)", ignoredString(ignored), strings.Join(Extensions(), " "))
}

// classFiles lists the image files of root/class as paths relative to root,
// and counts the other files by extension.
func classFiles(cfg Config, root, class string) (files []string, ignored map[string]int, err error) {
	w := walker{follow: cfg.FollowSymlinks, visited: map[string]bool{}, ignored: map[string]int{}, isImage: cfg.isImage}
	if err := w.walk(filepath.Join(root, filepath.FromSlash(class)), class); err != nil {
		return nil, nil, err
	}
	return w.files, w.ignored, nil
}

// scanValidation lists the images of cfg.ValidationRoot, which must have a
// folder for each class and no other. Their paths are made relative to Root
// ("../validation/cats/1.jpg") so that every sample of an Index is opened
// the same way.
func scanValidation(cfg Config, classes []string, ignored map[string]int) ([]Sample, error) {
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("dataset: the image folder: %w", err)
	}
	vroot, err := filepath.Abs(cfg.ValidationRoot)
	if err != nil {
		return nil, fmt.Errorf("dataset: the validation folder: %w", err)
	}
	if within(vroot, root) || within(root, vroot) {
		return nil, fmt.Errorf("dataset: the validation folder %s and the image folder %s overlap: want two separate folders (e.g. train and validation)", vroot, root)
	}
	up, err := filepath.Rel(root, vroot)
	if err != nil {
		return nil, fmt.Errorf("dataset: the validation folder %s: %w", vroot, err)
	}
	if _, err := os.Stat(vroot); err != nil {
		return nil, fmt.Errorf("dataset: the validation folder: %w", err)
	}
	folders, err := ClassFolders(vroot, cfg.FollowSymlinks)
	if err != nil {
		return nil, err
	}
	var extra []string
	for _, f := range folders {
		if !slices.Contains(classes, f) && len(cfg.Classes) == 0 {
			extra = append(extra, f)
		}
	}
	if len(extra) > 0 {
		return nil, fmt.Errorf("dataset: the validation folder %s has class folders %q that the image folder %s has not", vroot, extra, root)
	}
	var samples []Sample
	for label, class := range classes {
		if !slices.Contains(folders, class) {
			return nil, fmt.Errorf("dataset: class %q: no folder %s in the validation folder (its class folders are %q)", class, filepath.Join(vroot, class), folders)
		}
		files, ign, err := classFiles(cfg, vroot, class)
		if err != nil {
			return nil, err
		}
		for e, n := range ign {
			ignored[e] += n
		}
		for _, rel := range files {
			samples = append(samples, Sample{Path: path.Join(filepath.ToSlash(up), rel), Label: label})
		}
	}
	return samples, nil
}

// within reports whether p is dir or inside it (both absolute).
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// listClasses returns the configured classes, checked, or the sorted
// non-hidden sub-folders of Root.
func listClasses(cfg Config) ([]string, error) {
	if len(cfg.Classes) == 0 {
		return ClassFolders(cfg.Root, cfg.FollowSymlinks)
	}
	seen := map[string]bool{}
	for _, c := range cfg.Classes {
		if c == "" || seen[c] {
			return nil, fmt.Errorf("dataset: class list %q: empty or repeated name %q", cfg.Classes, c)
		}
		seen[c] = true
		dir := filepath.Join(cfg.Root, filepath.FromSlash(c))
		ok, err := isDir(dir, cfg.FollowSymlinks)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// The usual slip is the name (Cat for cats): say what is there.
			have, lerr := ClassFolders(cfg.Root, cfg.FollowSymlinks)
			if lerr != nil {
				return nil, lerr
			}
			return nil, fmt.Errorf("dataset: class %q: no folder %s (the class folders in %s are %q)", c, dir, cfg.Root, have)
		case err != nil:
			return nil, fmt.Errorf("dataset: class %q: %w", c, err)
		case !ok:
			return nil, fmt.Errorf("dataset: class %q: %s is not a folder", c, dir)
		}
	}
	return append([]string(nil), cfg.Classes...), nil
}

// ClassFolders returns the sorted non-hidden sub-folders of root: the
// classes Scan finds when none are configured. Symbolic links to folders
// count only if followSymlinks.
func ClassFolders(root string, followSymlinks bool) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("dataset: the image folder: %w", err)
	}
	var classes []string // os.ReadDir sorts by name, as Python's sorted() does
	for _, e := range entries {
		if hidden(e.Name()) {
			continue
		}
		if ok, err := isDir(filepath.Join(root, e.Name()), followSymlinks); err == nil && ok {
			classes = append(classes, e.Name())
		}
	}
	return classes, nil
}

// isDir reports whether p is a folder; a symbolic link counts only if follow.
func isDir(p string, follow bool) (bool, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return false, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if !follow {
			return false, nil
		}
		if fi, err = os.Stat(p); err != nil {
			return false, err
		}
	}
	return fi.IsDir(), nil
}

// walker collects the image files of one class folder.
type walker struct {
	follow  bool
	visited map[string]bool // real paths of the folders walked (symlink loops)
	files   []string
	ignored map[string]int // other files by extension
	isImage func(name string) bool
}

func (w *walker) walk(dir, rel string) error {
	if w.follow {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return fmt.Errorf("dataset: resolve %s: %w", dir, err)
		}
		if w.visited[real] {
			slog.Warn("dataset: folder already walked (symbolic link loop?), not entered again", "path", dir, "target", real)
			return nil
		}
		w.visited[real] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("dataset: list %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if hidden(name) {
			continue
		}
		p, r := filepath.Join(dir, name), path.Join(rel, name)
		typ := e.Type()
		if typ&fs.ModeSymlink != 0 {
			if !w.follow {
				continue
			}
			fi, err := os.Stat(p)
			if err != nil {
				slog.Warn("dataset: broken symbolic link ignored", "path", p, "err", err)
				continue
			}
			typ = fi.Mode().Type()
		}
		switch {
		case typ.IsDir():
			if err := w.walk(p, r); err != nil {
				return err
			}
		case typ.IsRegular() && w.isImage(name):
			w.files = append(w.files, r)
		case typ.IsRegular() && w.ignored != nil && !junk[strings.ToLower(name)]:
			w.ignored[strings.ToLower(path.Ext(name))]++
		}
	}
	return nil
}

// splitValue maps (seed, relative path) to a number uniform in [0, 1): the
// first 53 bits of sha256(seed as 8 little-endian bytes || path).
func splitValue(seed int64, rel string) float64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h := sha256.New()
	h.Write(b[:])
	h.Write([]byte(rel))
	var sum [sha256.Size]byte
	return float64(binary.BigEndian.Uint64(h.Sum(sum[:0]))>>11) / (1 << 53)
}

// inValidation reports whether the file rel belongs to the validation split.
func inValidation(seed int64, rel string, fraction float64) bool {
	return fraction > 0 && splitValue(seed, rel) < fraction
}

// Shuffle returns a permutation of items (samples, or indices of cached
// features) that depends only on (seed, epoch) and the input order: calling
// it again, in this run or a resumed one, gives the same order. items is not
// modified.
func Shuffle[T any](items []T, seed int64, epoch int) []T {
	out := append([]T(nil), items...)
	r := splitmix{state: uint64(seed)*0x9e3779b97f4a7c15 ^ uint64(epoch)*0xd1b54a32d192ed03}
	for i := len(out) - 1; i > 0; i-- {
		j := r.below(uint64(i + 1))
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// splitmix is the SplitMix64 generator: fixed here so that shuffles do not
// change with the Go release.
type splitmix struct{ state uint64 }

func (s *splitmix) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	return sm.Mix(s.state)
}

// uniform returns a number uniform in [lo, hi), from the top 53 bits.
func (s *splitmix) uniform(lo, hi float64) float64 {
	return lo + (hi-lo)*float64(s.next()>>11)/(1<<53)
}

// below returns a uniform integer in [0, n) by rejection sampling.
func (s *splitmix) below(n uint64) uint64 {
	limit := -n % n // (2^64 - n) mod n: values below it are rejected
	for {
		if v := s.next(); v >= limit {
			return v % n
		}
	}
}
