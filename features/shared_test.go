package features

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// shardFiles lists the finished shards in dir (their names without .json),
// sorted.
func shardFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "shard-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range m {
		out = append(out, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	sort.Strings(out)
	return out
}

// age sets the files' times back an hour, past the cleanup threshold.
func age(t *testing.T, dir string, files ...string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, f := range files {
		if err := os.Chtimes(filepath.Join(dir, f), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRows fails unless c holds, for each image name, the row starting at
// want[name] (rows' layout: base, base+1, ...).
func checkRows(t *testing.T, c *Cache, dim int, want map[string]float32) {
	t.Helper()
	if c.Len() != len(want) {
		t.Errorf("%d images cached, want %d", c.Len(), len(want))
	}
	for name, base := range want {
		got, err := c.Get([][32]byte{digest(name)})
		if err != nil {
			t.Errorf("image %s: %v", name, err)
			continue
		}
		for j, v := range got.Data().([]float32) {
			if v != base+float32(j) {
				t.Errorf("image %s: row %v, want it to start at %v", name, got.Data(), base)
				break
			}
		}
	}
}

// TestSharedFolder: Cache values opened on one folder stand for processes
// sharing the cache; each numbers nothing and knows only its own shards,
// yet a later Open finds every shard any of them added.
func TestSharedFolder(t *testing.T) {
	type add struct {
		proc   int
		images []string
		base   float32
	}
	for _, tc := range []struct {
		name   string
		adds   []add
		want   map[string]float32
		shards int
	}{
		{
			name:   "different images",
			adds:   []add{{0, []string{"a", "b"}, 0}, {1, []string{"c", "d"}, 100}},
			want:   map[string]float32{"a": 0, "b": 3, "c": 100, "d": 103},
			shards: 2,
		},
		{
			name:   "interleaved",
			adds:   []add{{0, []string{"a"}, 0}, {1, []string{"b"}, 10}, {0, []string{"c"}, 20}, {1, []string{"d", "e"}, 30}},
			want:   map[string]float32{"a": 0, "b": 10, "c": 20, "d": 30, "e": 33},
			shards: 4,
		},
		{
			// Both extract the same images (same split): the second writes
			// the same shard again, harmlessly.
			name:   "same shard",
			adds:   []add{{0, []string{"a", "b"}, 0}, {0, []string{"c"}, 50}, {1, []string{"c"}, 50}},
			want:   map[string]float32{"a": 0, "b": 3, "c": 50},
			shards: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var procs [2]*Cache
			for i := range procs {
				c, err := Open(root, key, 3)
				if err != nil {
					t.Fatal(err)
				}
				procs[i] = c
			}
			for _, a := range tc.adds {
				var ds [][32]byte
				var paths []string
				for _, im := range a.images {
					ds = append(ds, digest(im))
					paths = append(paths, im+".jpg")
				}
				if err := procs[a.proc].Add(ds, paths, rows(len(ds), 3, a.base)); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Open(root, key, 3)
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, c, 3, tc.want)
			if got := shardFiles(t, c.Dir()); len(got) != tc.shards {
				t.Errorf("shards %v, want %d", got, tc.shards)
			}
		})
	}
}

// TestDuplicatePrecedence: an image in several shards takes its row from
// the first shard in name order, so the same row whichever shard was
// written first.
func TestDuplicatePrecedence(t *testing.T) {
	// "a" under two paths (a copied file) makes two shards.
	paths := [2]string{"cats/a.jpg", "copies/a.jpg"}
	var winners []float32
	for _, order := range [][2]int{{0, 1}, {1, 0}} {
		root := t.TempDir()
		for _, i := range order {
			c, err := Open(root, key, 3)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Add([][32]byte{digest("a")}, []string{paths[i]}, rows(1, 3, float32(10*i))); err != nil {
				t.Fatal(err)
			}
		}
		dir := filepath.Join(root, key.Hash())
		names := shardFiles(t, dir)
		if len(names) != 2 {
			t.Fatalf("shards %v, want 2", names)
		}
		raw, _ := os.ReadFile(filepath.Join(dir, names[0]+".json"))
		var first shardIndex
		if err := json.Unmarshal(raw, &first); err != nil {
			t.Fatal(err)
		}
		want := float32(0)
		if first.Paths[0] == paths[1] {
			want = 10
		}
		c, err := Open(root, key, 3)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, c, 3, map[string]float32{"a": want})
		winners = append(winners, want)
	}
	if winners[0] != winners[1] {
		t.Errorf("the row used depends on which shard was written first: %v", winners)
	}
}

// TestOpenCleanup: Open removes the leftovers of unfinished shards only
// once they are too old to belong to a process still writing them.
func TestOpenCleanup(t *testing.T) {
	for _, tc := range []struct {
		file string
		old  bool
		kept bool
	}{
		{".tmp-shard-0123456789abcdef.npy-42", false, true},
		{".tmp-shard-0123456789abcdef.npy-43", true, false},
		{".tmp-key.json-44", true, false},
		{"shard-0123456789abcdef.npy", false, true},
		{"shard-fedcba9876543210.npy", true, false},
		{"shard-000007.npy", false, true},
		{"shard-000008.npy", true, false},
		{"notes.txt", true, true}, // not the cache's
	} {
		t.Run(tc.file, func(t *testing.T) {
			root := t.TempDir()
			c, err := Open(root, key, 3)
			if err != nil {
				t.Fatal(err)
			}
			// A finished shard, old: never removed.
			if err := c.Add([][32]byte{digest("a")}, []string{"a"}, rows(1, 3, 0)); err != nil {
				t.Fatal(err)
			}
			done := shardFiles(t, c.Dir())[0]
			age(t, c.Dir(), done+".npy", done+".json")
			if err := os.WriteFile(filepath.Join(c.Dir(), tc.file), []byte("partial"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.old {
				age(t, c.Dir(), tc.file)
			}
			c2, err := Open(root, key, 3)
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, c2, 3, map[string]float32{"a": 0})
			_, err = os.Stat(filepath.Join(c.Dir(), tc.file))
			if kept := err == nil; kept != tc.kept {
				t.Errorf("%s kept: %v, want %v", tc.file, kept, tc.kept)
			}
			for _, f := range []string{done + ".npy", done + ".json"} {
				if _, err := os.Stat(filepath.Join(c.Dir(), f)); err != nil {
					t.Errorf("finished shard: %v", err)
				}
			}
		})
	}
}

// TestLegacyCache: a cache written before shards were named by their
// content (numeric names) opens and reads as it did, and processes sharing
// it add to it without clashing with its names or each other.
//
// testdata/legacy was written by the code of commit a5dfe05:
//
//	c, _ := Open("testdata/legacy", key, 3)
//	c.Add({a, b}, {"cats/a.jpg", "cats/b.jpg"}, rows(2, 3, 0))    // shard-000000
//	c.Add({c, a}, {"dogs/c.jpg", "copies/a.jpg"}, rows(2, 3, 100)) // shard-000001
//
// with digest and rows as in these tests.
func TestLegacyCache(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("testdata/legacy")); err != nil {
		t.Fatal(err)
	}
	c, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	// "a" is in both legacy shards: shard-000000's row, as before.
	legacy := map[string]float32{"a": 0, "b": 3, "c": 100}
	checkRows(t, c, 3, legacy)

	// Two processes add to it; one adds "a" again, with other rows.
	p1, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Add([][32]byte{digest("d")}, []string{"d.jpg"}, rows(1, 3, 200)); err != nil {
		t.Fatal(err)
	}
	if err := p1.Add([][32]byte{digest("e"), digest("a")}, []string{"e.jpg", "a.jpg"}, rows(2, 3, 300)); err != nil {
		t.Fatal(err)
	}
	c2, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	legacy["d"], legacy["e"] = 200, 300 // legacy shards come first: "a" keeps its row
	checkRows(t, c2, 3, legacy)
	if got := shardFiles(t, c2.Dir()); len(got) != 4 || got[0] != "shard-000000" || got[1] != "shard-000001" {
		t.Errorf("shards %v, want the 2 legacy ones and 2 new ones", got)
	}
}

// TestConcurrentProcesses: several Cache values on one folder (processes)
// add shards at once, some of them the same, while others open the folder;
// every row is then found by a fresh Open. Run it with -race.
func TestConcurrentProcesses(t *testing.T) {
	const procs, shards, per, dim = 4, 20, 3, 4
	root := t.TempDir()
	// Image i's row is i*dim, i*dim+1, ...; shard s of proc p holds images
	// (p*shards+s)*per ...; shards with s%5 == 0 are common to all procs.
	image := func(p, s, j int) int {
		if s%5 == 0 {
			p = 0
		}
		return (p*shards+s)*per + j
	}
	var wg sync.WaitGroup
	errs := make(chan error, procs*shards)
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(root, key, dim)
			if err != nil {
				errs <- err
				return
			}
			for s := range shards {
				var ds [][32]byte
				var paths []string
				data := make([]float32, 0, per*dim)
				for j := range per {
					i := image(p, s, j)
					ds = append(ds, digest(fmt.Sprint(i)))
					paths = append(paths, fmt.Sprintf("%d.jpg", i))
					for k := range dim {
						data = append(data, float32(i*dim+k))
					}
				}
				if err := c.Add(ds, paths, tensor.New(tensor.WithShape(per, dim), tensor.WithBacking(data))); err != nil {
					errs <- err
					return
				}
				if got, err := c.Get(ds[:1]); err != nil || got.Data().([]float32)[0] != data[0] {
					errs <- fmt.Errorf("proc %d, shard %d: got %v, %v", p, s, got, err)
					return
				}
				if s%7 == 3 { // another process starting meanwhile
					if _, err := Open(root, key, dim); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c, err := Open(root, key, dim)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float32{}
	for p := range procs {
		for s := range shards {
			for j := range per {
				i := image(p, s, j)
				want[fmt.Sprint(i)] = float32(i * dim)
			}
		}
	}
	checkRows(t, c, dim, want)
}

// TestRefresh: Refresh indexes the shards other Caches of the folder added
// since Open, and never replaces a row already indexed.
func TestRefresh(t *testing.T) {
	root := t.TempDir()
	c1, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Add([][32]byte{digest("a")}, []string{"a.jpg"}, rows(1, 3, 0)); err != nil {
		t.Fatal(err)
	}
	c2, err := Open(root, key, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Both store "x", with other rows; c2 stores "y" too.
	if err := c1.Add([][32]byte{digest("x")}, []string{"x.jpg"}, rows(1, 3, 100)); err != nil {
		t.Fatal(err)
	}
	if err := c2.Add([][32]byte{digest("x"), digest("y")}, []string{"x.jpg", "y.jpg"}, rows(2, 3, 200)); err != nil {
		t.Fatal(err)
	}
	if c1.Has(digest("y")) {
		t.Fatal("c1 has y before Refresh")
	}
	for range 2 { // a second Refresh finds nothing new
		if err := c1.Refresh(); err != nil {
			t.Fatal(err)
		}
		checkRows(t, c1, 3, map[string]float32{"a": 0, "x": 100, "y": 203})
	}
	if err := c2.Refresh(); err != nil {
		t.Fatal(err)
	}
	checkRows(t, c2, 3, map[string]float32{"a": 0, "x": 200, "y": 203})
}
