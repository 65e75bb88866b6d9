package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func samplePaths(s []Sample) []string {
	var out []string
	for _, x := range s {
		out = append(out, fmt.Sprintf("%d:%s", x.Label, x.Path))
	}
	return out
}

func TestScan(t *testing.T) {
	img := []byte("contents are not read by Scan")
	tests := []struct {
		name    string
		files   []string
		classes []string // Config.Classes
		want    []string // classes found
		samples []string // "label:path", all in Train (no split)
		err     string   // substring of the expected error
		root    string   // a sub-folder of the files' folder to scan; "" scans it
		ignored string   // Index.IgnoredString
	}{
		{
			name:    "sorted classes and paths",
			files:   []string{"dogs/b.jpg", "dogs/a.png", "cats/z.jpeg", "Birds/x.gif"},
			want:    []string{"Birds", "cats", "dogs"},
			samples: []string{"0:Birds/x.gif", "1:cats/z.jpeg", "2:dogs/a.png", "2:dogs/b.jpg"},
		},
		{
			name:    "extensions any case, others ignored",
			files:   []string{"a/1.JPG", "a/2.JpEg", "a/3.PNG", "a/4.Bmp", "a/5.webp", "a/6.GIF", "a/7.tiff", "a/7b.TIF", "a/8.txt", "a/9jpg", "a/x.heic", "b/1.jpg"},
			want:    []string{"a", "b"},
			samples: []string{"0:a/1.JPG", "0:a/2.JpEg", "0:a/3.PNG", "0:a/4.Bmp", "0:a/5.webp", "0:a/6.GIF", "0:a/7.tiff", "0:a/7b.TIF", "1:b/1.jpg"},
			ignored: "1 .heic file, 1 .txt file, 1 file without an extension",
		},
		{
			name:    "hidden files and folders ignored",
			files:   []string{"a/.x.jpg", "a/.thumbs/1.jpg", "a/ok.jpg", ".git/c.jpg", "b/sub/.h/2.jpg", "b/sub/deep/3.png"},
			want:    []string{"a", "b"},
			samples: []string{"0:a/ok.jpg", "1:b/sub/deep/3.png"},
		},
		{
			name:    "configured classes fix the order and filter",
			files:   []string{"a/1.jpg", "b/1.jpg", "c/1.jpg"},
			classes: []string{"c", "a"},
			want:    []string{"c", "a"},
			samples: []string{"0:c/1.jpg", "1:a/1.jpg"},
		},
		{name: "one class", files: []string{"a/1.jpg", "b/readme.txt"}, err: "class \"b\" has no image file"},
		{name: "single folder", files: []string{"a/1.jpg"}, err: "need at least 2 classes, found 1"},
		{name: "a class of phone photos not read", files: []string{"a/1.jpg", "b/1.HEIC", "b/2.heic", "b/notes", "b/Thumbs.db"},
			err: `class "b" has no image file under ` /* the folder */},
		{name: "which files, and that they are not read", files: []string{"a/1.jpg", "b/1.HEIC", "b/2.heic", "b/notes", "b/Thumbs.db"},
			err: "(it has 2 .heic files, 1 file without an extension, which are not read: the images read are .bmp .gif .jpeg .jpg .png .tif .tiff .webp; convert the others to JPEG or PNG)"},
		{name: "images, no class folders", files: []string{"1.jpg", "2.png", "notes.txt"}, err: "it holds 2 image(s) itself"},
		{name: "one class's folder given", files: []string{"cats/1.jpg", "cats/2.png", "cats/notes.txt"}, root: "cats",
			err: "it holds 2 image(s) itself: the images go in one sub-folder per class"},
		{name: "missing configured class", files: []string{"a/1.jpg", "b/1.jpg"}, classes: []string{"a", "x"}, err: `class "x": no folder`},
		{name: "misspelt class lists the folders", files: []string{"cats/1.jpg", "dogs/1.jpg", ".git/x"}, classes: []string{"Cat", "Dog"}, err: `are ["cats" "dogs"]`},
		{name: "no image folder", classes: []string{"a", "b"}, root: "missing", err: "the image folder: open "},
		{name: "no image folder, classes unlisted", root: "missing", err: "the image folder: open "},
		{name: "repeated configured class", files: []string{"a/1.jpg", "b/1.jpg"}, classes: []string{"a", "a"}, err: "repeated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string][]byte{}
			for _, f := range tc.files {
				files[f] = img
			}
			writeFiles(t, root, files)
			idx, err := Scan(Config{Root: filepath.Join(root, tc.root), Classes: tc.classes})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Scan error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(idx.Classes, tc.want) {
				t.Errorf("classes = %q, want %q", idx.Classes, tc.want)
			}
			if got := samplePaths(idx.Train); !reflect.DeepEqual(got, tc.samples) {
				t.Errorf("samples = %q, want %q", got, tc.samples)
			}
			if len(idx.Validation) != 0 {
				t.Errorf("validation = %q with no split", samplePaths(idx.Validation))
			}
			if got := idx.IgnoredString(); got != tc.ignored {
				t.Errorf("ignored %q, want %q", got, tc.ignored)
			}
		})
	}
}

func TestScanValidationFolder(t *testing.T) {
	tests := []struct {
		name       string
		files      []string // under a folder with train/ and validation/
		classes    []string // Config.Classes
		root, vals string   // Root and ValidationRoot, under that folder
		split      float64
		train, val []string // "label:path"
		err        string
	}{
		{
			name:  "train and validation folders",
			files: []string{"train/cats/1.jpg", "train/dogs/1.jpg", "train/dogs/2.jpg", "validation/cats/9.jpg", "validation/dogs/sub/8.png", "validation/.hidden/x.jpg"},
			root:  "train", vals: "validation",
			train: []string{"0:cats/1.jpg", "1:dogs/1.jpg", "1:dogs/2.jpg"},
			val:   []string{"0:../validation/cats/9.jpg", "1:../validation/dogs/sub/8.png"},
		},
		{
			name:  "a class without validation images",
			files: []string{"train/a/1.jpg", "train/b/1.jpg", "val/a/1.jpg", "val/b/notes.txt"},
			root:  "train", vals: "val",
			train: []string{"0:a/1.jpg", "1:b/1.jpg"},
			val:   []string{"0:../val/a/1.jpg"},
		},
		{
			name:    "listed classes ignore other folders in both",
			files:   []string{"train/a/1.jpg", "train/b/1.jpg", "train/c/1.jpg", "val/a/1.jpg", "val/b/1.jpg", "val/z/1.jpg"},
			classes: []string{"b", "a"}, root: "train", vals: "val",
			train: []string{"0:b/1.jpg", "1:a/1.jpg"},
			val:   []string{"0:../val/b/1.jpg", "1:../val/a/1.jpg"},
		},
		{
			name:  "nested folders",
			files: []string{"d/train/a/1.jpg", "d/train/b/1.jpg", "v/2024/a/1.jpg", "v/2024/b/1.jpg"},
			root:  "d/train", vals: "v/2024",
			train: []string{"0:a/1.jpg", "1:b/1.jpg"},
			val:   []string{"0:../../v/2024/a/1.jpg", "1:../../v/2024/b/1.jpg"},
		},
		{name: "missing class folder", files: []string{"train/a/1.jpg", "train/b/1.jpg", "val/a/1.jpg"}, root: "train", vals: "val", err: `class "b": no folder`},
		{name: "extra class folder", files: []string{"train/a/1.jpg", "train/b/1.jpg", "val/a/1.jpg", "val/b/1.jpg", "val/c/1.jpg"}, root: "train", vals: "val", err: `class folders ["c"] that the image folder`},
		{name: "misspelt class folder", files: []string{"train/cats/1.jpg", "train/dogs/1.jpg", "val/Cats/1.jpg", "val/Dogs/1.jpg"}, classes: []string{"cats", "dogs"}, root: "train", vals: "val", err: `its class folders are ["Cats" "Dogs"]`},
		{name: "no validation folder", files: []string{"train/a/1.jpg", "train/b/1.jpg"}, root: "train", vals: "val", err: "the validation folder: stat "},
		{name: "the same folder", files: []string{"train/a/1.jpg", "train/b/1.jpg"}, root: "train", vals: "train/", err: "overlap"},
		{name: "validation inside the image folder", files: []string{"data/a/1.jpg", "data/b/1.jpg", "data/val/a/1.jpg"}, classes: []string{"a", "b"}, root: "data", vals: "data/val", err: "overlap"},
		{name: "image folder inside validation", files: []string{"data/train/a/1.jpg", "data/train/b/1.jpg"}, root: "data/train", vals: "data", err: "overlap"},
		{name: "with a split too", files: []string{"train/a/1.jpg", "train/b/1.jpg", "val/a/1.jpg", "val/b/1.jpg"}, root: "train", vals: "val", split: 0.2, err: "use one or the other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string][]byte{}
			for _, f := range tc.files {
				files[f] = nil
			}
			writeFiles(t, dir, files)
			idx, err := Scan(Config{Root: filepath.Join(dir, tc.root), ValidationRoot: filepath.Join(dir, tc.vals), Classes: tc.classes, ValidationSplit: tc.split})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Scan error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := samplePaths(idx.Train); !reflect.DeepEqual(got, tc.train) {
				t.Errorf("train = %q, want %q", got, tc.train)
			}
			if got := samplePaths(idx.Validation); !reflect.DeepEqual(got, tc.val) {
				t.Errorf("validation = %q, want %q", got, tc.val)
			}
			// The paths open from Root, as Stream opens them.
			for _, s := range idx.Validation {
				if _, err := os.Stat(filepath.Join(dir, tc.root, filepath.FromSlash(s.Path))); err != nil {
					t.Errorf("validation sample %q does not open from Root: %v", s.Path, err)
				}
			}
		})
	}
}

func TestScanSymlinks(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	writeFiles(t, root, map[string][]byte{"a/1.jpg": nil, "a/sub/2.jpg": nil, "b/1.jpg": nil})
	writeFiles(t, outside, map[string][]byte{"ext/e.jpg": nil, "f.png": nil})
	links := map[string]string{
		"a/sub/loop":   filepath.Join(root, "a"),          // a loop back to the class folder
		"a/self":       ".",                               // a loop onto its own folder
		"a/ext":        filepath.Join(outside, "ext"),     // a folder elsewhere
		"b/f.png":      filepath.Join(outside, "f.png"),   // a file elsewhere
		"b/broken.jpg": filepath.Join(outside, "missing"), // ignored either way
		"c":            filepath.Join(outside, "ext"),     // a class folder that is a link
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Skipf("symbolic links unavailable: %v", err)
		}
	}
	tests := []struct {
		follow  bool
		classes []string
		samples []string
	}{
		{false, []string{"a", "b"}, []string{"0:a/1.jpg", "0:a/sub/2.jpg", "1:b/1.jpg"}},
		{true, []string{"a", "b", "c"}, []string{"0:a/1.jpg", "0:a/ext/e.jpg", "0:a/sub/2.jpg", "1:b/1.jpg", "1:b/f.png", "2:c/e.jpg"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("follow=", tc.follow), func(t *testing.T) {
			idx, err := Scan(Config{Root: root, FollowSymlinks: tc.follow})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(idx.Classes, tc.classes) {
				t.Errorf("classes = %q, want %q", idx.Classes, tc.classes)
			}
			if got := samplePaths(idx.Train); !reflect.DeepEqual(got, tc.samples) {
				t.Errorf("samples = %q, want %q", got, tc.samples)
			}
		})
	}
}

func TestSplitStable(t *testing.T) {
	root := t.TempDir()
	add := func(from, to int) {
		files := map[string][]byte{}
		for _, c := range []string{"cats", "dogs", "owls"} {
			for i := from; i < to; i++ {
				files[fmt.Sprintf("%s/%04d.jpg", c, i)] = nil
			}
		}
		writeFiles(t, root, files)
	}
	split := func(seed int64) (map[string]bool, *Index) {
		idx, err := Scan(Config{Root: root, ValidationSplit: 0.25, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		val := map[string]bool{}
		for _, s := range idx.Validation {
			val[s.Path] = true
		}
		return val, idx
	}
	add(0, 400)
	before, idx := split(7)
	// Each class gets about 25% (binomial, n = 400: sd 2.2%).
	perClass := make([]int, len(idx.Classes))
	for _, s := range idx.Validation {
		perClass[s.Label]++
	}
	for i, n := range perClass {
		if f := float64(n) / 400; f < 0.18 || f > 0.32 {
			t.Errorf("class %s: validation fraction %.3f, want about 0.25", idx.Classes[i], f)
		}
	}
	if len(idx.Train)+len(idx.Validation) != 1200 {
		t.Fatalf("%d + %d samples, want 1200", len(idx.Train), len(idx.Validation))
	}

	add(400, 700)
	after, _ := split(7)
	for _, c := range []string{"cats", "dogs", "owls"} {
		for i := range 400 {
			p := fmt.Sprintf("%s/%04d.jpg", c, i)
			if before[p] != after[p] {
				t.Fatalf("%s moved (validation %v -> %v) when files were added", p, before[p], after[p])
			}
		}
	}
	other, _ := split(8)
	same := 0
	for p := range other {
		if after[p] {
			same++
		}
	}
	if same == len(after) {
		t.Errorf("seeds 7 and 8 give the same split")
	}
}

func TestShuffle(t *testing.T) {
	var in []Sample
	for i := range 200 {
		in = append(in, Sample{Path: fmt.Sprint(i), Label: i % 3})
	}
	orig := slices.Clone(in)
	a := Shuffle(in, 5, 3)
	if !reflect.DeepEqual(in, orig) {
		t.Fatal("Shuffle modified its input")
	}
	if b := Shuffle(slices.Clone(in), 5, 3); !reflect.DeepEqual(a, b) {
		t.Error("Shuffle(seed 5, epoch 3) differs between calls")
	}
	if reflect.DeepEqual(a, in) {
		t.Error("Shuffle returned the input order")
	}
	for _, other := range [][2]int64{{5, 4}, {6, 3}} {
		if reflect.DeepEqual(a, Shuffle(in, other[0], int(other[1]))) {
			t.Errorf("seed/epoch %v gives the same order as (5, 3)", other)
		}
	}
	sorted := slices.Clone(a)
	slices.SortFunc(sorted, func(x, y Sample) int { return strings.Compare(x.Path, y.Path) })
	want := slices.Clone(in)
	slices.SortFunc(want, func(x, y Sample) int { return strings.Compare(x.Path, y.Path) })
	if !reflect.DeepEqual(sorted, want) {
		t.Error("Shuffle is not a permutation")
	}
	if got := Shuffle[Sample](nil, 1, 1); len(got) != 0 {
		t.Errorf("Shuffle(nil) = %v", got)
	}
}

// TestImageFiles lists a folder of unlabelled images: nested, sorted,
// hidden files and folders and other files left out.
func TestImageFiles(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string][]byte{
		"b.jpg": nil, "a/z.PNG": nil, "a/b/c.webp": nil, ".hidden.jpg": nil,
		".cache/x.jpg": nil, "notes.txt": nil, "a/.d/y.png": nil,
	})
	got, err := ImageFiles(root)
	if want := []string{"a/b/c.webp", "a/z.PNG", "b.jpg"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ImageFiles = %q, %v; want %q", got, err, want)
	}
	if _, err := ImageFiles(filepath.Join(root, "missing")); err == nil {
		t.Error("no error for a missing folder")
	}
}

// TestScanHintCountsLinkedImages: symbolic links to images, alone in the
// data folder, get the hint too.
func TestScanHintCountsLinkedImages(t *testing.T) {
	root, elsewhere := t.TempDir(), t.TempDir()
	writeFiles(t, elsewhere, map[string][]byte{"a.jpg": []byte("not read")})
	if err := os.Symlink(filepath.Join(elsewhere, "a.jpg"), filepath.Join(root, "a.jpg")); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	if _, err := Scan(Config{Root: root}); err == nil || !strings.Contains(err.Error(), "it holds 1 image(s) itself") {
		t.Errorf("Scan: %v", err)
	}
}

// TestScanExtensions: Config.Extensions narrows the files read (a run
// begun before TIFF was read), and must name extensions that are read.
func TestScanExtensions(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string][]byte{"a/1.jpg": nil, "a/2.tif": nil, "b/1.png": nil})
	idx, err := Scan(Config{Root: root, Extensions: LegacyExtensions})
	if err != nil {
		t.Fatal(err)
	}
	if got := samplePaths(idx.Train); !slices.Equal(got, []string{"0:a/1.jpg", "1:b/1.png"}) || idx.IgnoredString() != "1 .tif file" {
		t.Errorf("samples %q, ignored %q", got, idx.IgnoredString())
	}
	if _, err := Scan(Config{Root: root, Extensions: []string{".heic"}}); err == nil || !strings.Contains(err.Error(), `extension ".heic" is not one of the images read`) {
		t.Errorf("Scan with .heic: %v", err)
	}
}
