package features

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func digest(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func rows(n, dim int, base float32) *tensor.Dense {
	d := make([]float32, n*dim)
	for i := range d {
		d[i] = base + float32(i)
	}
	return tensor.New(tensor.WithShape(n, dim), tensor.WithBacking(d))
}

var key = Key{Weights: "abc", Preprocess: "caffe", Height: 64, Width: 64, EXIF: true}

func TestAddGetReopen(t *testing.T) {
	root := t.TempDir()
	c, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	a := [][32]byte{digest("a"), digest("b")}
	b := [][32]byte{digest("c")}
	if err := c.Add(a, []string{"cats/a.jpg", "cats/b.jpg"}, rows(2, 3, 0)); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(b, []string{"dogs/c.jpg"}, rows(1, 3, 100)); err != nil {
		t.Fatal(err)
	}
	// Reopen: everything is found again, in any order asked.
	c2, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Len() != 3 || !c2.Has(digest("c")) || c2.Has(digest("z")) {
		t.Fatalf("reopened cache: len %d", c2.Len())
	}
	got, err := c2.Get([][32]byte{digest("c"), digest("a"), digest("b")})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{100, 101, 102, 0, 1, 2, 3, 4, 5}
	for i, v := range got.Data().([]float32) {
		if v != want[i] {
			t.Fatalf("element %d: got %v, want %v", i, v, want[i])
		}
	}
	if _, err := c2.Get([][32]byte{digest("z")}); err == nil {
		t.Fatal("Get of an unknown image succeeded")
	}
	// Another key is another folder.
	other := key
	other.Preprocess = "torch"
	c3, err := Open(root, other, 3)
	if err != nil {
		t.Fatal(err)
	}
	if c3.Len() != 0 || c3.Dir() == c.Dir() {
		t.Fatal("a different key shares the cache")
	}
}

// TestUnfinishedShardIgnored: a shard whose .json never landed (a run
// killed mid-write) is ignored, its images count as missing, and its
// leftovers are removed once they are old enough not to be a live writer's.
func TestUnfinishedShardIgnored(t *testing.T) {
	root := t.TempDir()
	c, _ := Open(root, key, 2)
	if err := c.Add([][32]byte{digest("a")}, []string{"a"}, rows(1, 2, 0)); err != nil {
		t.Fatal(err)
	}
	first := shardFiles(t, c.Dir())
	if err := c.Add([][32]byte{digest("b")}, []string{"b"}, rows(1, 2, 0)); err != nil {
		t.Fatal(err)
	}
	var second string
	for _, s := range shardFiles(t, c.Dir()) {
		if s != first[0] {
			second = s
		}
	}
	os.Remove(filepath.Join(c.Dir(), second+".json"))
	os.WriteFile(filepath.Join(c.Dir(), ".tmp-123"), []byte("partial"), 0o644)
	leftovers := []string{second + ".npy", ".tmp-123"}
	age(t, c.Dir(), leftovers...)
	c2, err := Open(root, key, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Has(digest("a")) || c2.Has(digest("b")) {
		t.Fatal("unfinished shard counted as cached")
	}
	for _, f := range leftovers {
		if _, err := os.Stat(filepath.Join(c.Dir(), f)); !os.IsNotExist(err) {
			t.Errorf("%s left behind", f)
		}
	}
	// Adding the shard again, with other rows, replaces any leftovers.
	if err := c2.Add([][32]byte{digest("b")}, []string{"b"}, rows(1, 2, 7)); err != nil {
		t.Fatal(err)
	}
	got, err := c2.Get([][32]byte{digest("b")})
	if err != nil || got.Data().([]float32)[0] != 7 {
		t.Fatalf("re-added shard: %v %v", got, err)
	}
}

func TestCorruptShard(t *testing.T) {
	root := t.TempDir()
	c, _ := Open(root, key, 2)
	c.Add([][32]byte{digest("a")}, []string{"a"}, rows(1, 2, 0))
	a := shardFiles(t, c.Dir())[0]
	os.WriteFile(filepath.Join(c.Dir(), a+".json"), []byte("{not json"), 0o644)
	if _, err := Open(root, key, 2); err == nil || !strings.Contains(err.Error(), a+".json") {
		t.Fatalf("corrupt index: got %v", err)
	}
	os.Remove(filepath.Join(c.Dir(), a+".json"))
	c.Add([][32]byte{digest("b")}, []string{"b"}, rows(1, 2, 0))
	b := shardFiles(t, c.Dir())[0]
	os.WriteFile(filepath.Join(c.Dir(), b+".npy"), []byte("garbage"), 0o644)
	if _, err := c.Get([][32]byte{digest("b")}); err == nil || !strings.Contains(err.Error(), b+".npy") {
		t.Fatalf("corrupt shard: got %v", err)
	}
}

func TestAddRejectsMismatch(t *testing.T) {
	c, _ := Open(t.TempDir(), key, 4)
	if err := c.Add([][32]byte{digest("a")}, []string{"a"}, rows(1, 3, 0)); err == nil {
		t.Fatal("features of the wrong width accepted")
	}
	if err := c.Add([][32]byte{digest("a"), digest("b")}, []string{"a", "b"}, rows(1, 4, 0)); err == nil {
		t.Fatal("fewer rows than images accepted")
	}
}

// TestKeyHashStable pins keys' hashes: caches made by earlier versions stay
// valid (a field added with omitempty leaves old keys' hashes alone), and
// the mirrored images' features and each random crop's get a cache of
// their own.
func TestKeyHashStable(t *testing.T) {
	k := Key{Weights: "abc", Preprocess: "caffe", Height: 224, Width: 224, EXIF: true}
	flip, crop := k, k
	flip.Flip = true
	crop.RandomCrop = "seed=1337 copy=0 scale=[0.08,1] ratio=[0.75,1.3333333333333333] flip=false"
	crop2 := crop
	crop2.RandomCrop = strings.Replace(crop.RandomCrop, "copy=0", "copy=1", 1)
	for _, tc := range []struct {
		what string
		key  Key
		want string
	}{
		{"plain", k, "787186860bbf6120"},
		{"mirrored", flip, "0192fd9707266d84"},
		{"random crop 0", crop, "073d4d283bce5980"},
		{"random crop 1", crop2, "abcf8137fc5957ff"},
	} {
		if got := tc.key.Hash(); got != tc.want {
			t.Errorf("%s: hash %s, want %s (a change orphans every existing cache)", tc.what, got, tc.want)
		}
	}
}

// TestOpenReadOnly: reading a cache writes nothing (a missing one is not
// made), finds what Open stored, and refuses to add.
func TestOpenReadOnly(t *testing.T) {
	root := t.TempDir()
	key := Key{Weights: "w", Preprocess: "caffe", Height: 8, Width: 8}
	if _, err := OpenReadOnly(root, key, 3); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReadOnly of a missing cache: %v", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("OpenReadOnly made %v", entries)
	}
	c, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	d := [32]byte{1}
	if err := c.Add([][32]byte{d}, []string{"a.jpg"}, tensor.New(tensor.WithShape(1, 3), tensor.WithBacking([]float32{1, 2, 3}))); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := r.Get([][32]byte{d}); err != nil || !slices.Equal(f.Float32s(), []float32{1, 2, 3}) {
		t.Errorf("Get: %v, %v", f, err)
	}
	if err := r.Add([][32]byte{{2}}, []string{"b.jpg"}, tensor.New(tensor.WithShape(1, 3), tensor.WithBacking([]float32{4, 5, 6}))); err == nil {
		t.Error("a read-only cache took an Add")
	}
}

// TestOpenWritesNothingTwice: opening a complete cache again for training
// writes nothing (key.json stays the file it was), so that a cache on a
// read-only disk, shared by a team, is used as it is; a key.json that
// does not hold the key is written again.
func TestOpenWritesNothingTwice(t *testing.T) {
	root := t.TempDir()
	key := Key{Weights: "w", Preprocess: "caffe", Height: 8, Width: 8}
	c, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(c.Dir(), "key.json")
	before, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root, key, 3); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(keyFile); err != nil || !os.SameFile(before, after) {
		t.Errorf("a second Open replaced key.json (%v)", err)
	}
	if err := os.WriteFile(keyFile, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root, key, 3); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(keyFile); !strings.Contains(string(raw), `"caffe"`) {
		t.Errorf("a damaged key.json was kept: %s", raw)
	}
}

// TestDamagedShardRefused: features damaged on disk since their shard was
// written (same size, other bytes) are refused, naming the shard, not
// handed to training as they are; shards written before shards carried
// their sha256 still read.
func TestDamagedShardRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		legacy bool // the .json without the .npy's sha256
	}{{"checked", false}, {"written before the check", true}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			c, _ := Open(root, key, 2)
			if err := c.Add([][32]byte{digest("a")}, []string{"a"}, rows(1, 2, 1)); err != nil {
				t.Fatal(err)
			}
			name := shardFiles(t, c.Dir())[0]
			if tc.legacy {
				index := filepath.Join(c.Dir(), name+".json")
				raw, _ := os.ReadFile(index)
				var si shardIndex
				if err := json.Unmarshal(raw, &si); err != nil {
					t.Fatal(err)
				}
				si.NPY = ""
				raw, _ = json.Marshal(si)
				os.WriteFile(index, raw, 0o644)
				if _, err := reopen(t, root).Get([][32]byte{digest("a")}); err != nil {
					t.Fatalf("a legacy shard: %v", err)
				}
				return
			}
			npy := filepath.Join(c.Dir(), name+".npy")
			raw, _ := os.ReadFile(npy)
			raw[len(raw)-1] ^= 0x40 // the last feature's top bits
			os.WriteFile(npy, raw, 0o644)
			if _, err := reopen(t, root).Get([][32]byte{digest("a")}); err == nil || !strings.Contains(err.Error(), name+".npy") || !strings.Contains(err.Error(), "sha256") {
				t.Fatalf("a damaged shard: got %v", err)
			}
		})
	}
}

func reopen(t *testing.T, root string) *Cache {
	t.Helper()
	c, err := Open(root, key, 2)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
