package features

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"gorgonia.org/tensor"

	"gotransfer/internal/atomicfile"
	"gotransfer/internal/tensorio"
)

// Key is what features depend on besides the image: the weights and the
// preprocessing. Two runs with equal keys share cached features.
type Key struct {
	Weights    string `json:"weights_sha256"` // resnet.Weights.Digest()
	Preprocess string `json:"preprocess"`
	Height     int    `json:"height"`
	Width      int    `json:"width"`
	Crop       bool   `json:"crop_to_aspect_ratio"`
	EXIF       bool   `json:"exif_orientation"`
	// Flip keys the features of the mirrored images (flip augmentation).
	// omitempty keeps the hashes, and so the caches, of plain keys as they
	// were before it existed.
	Flip bool `json:"horizontal_flip,omitempty"`
	// RandomCrop keys the features of one random-crop copy of the images
	// (crop augmentation) by its parameters, seed and copy number
	// (dataset.RandomCrop.String): each copy has a folder of its own.
	// omitempty, as Flip.
	RandomCrop string `json:"random_resized_crop,omitempty"`
	// FastJPEG keys features of JPEGs decoded at a reduced DCT scale
	// (dataset.Config.FastJPEG). omitempty, as Flip.
	FastJPEG bool `json:"fast_jpeg,omitempty"`
}

// Hash names the key's folder.
func (k Key) Hash() string {
	raw, _ := json.Marshal(k) // a struct of strings, ints and bools always marshals
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

type location struct {
	shard, row int // shard indexes Cache.shards
}

// shardIndex is a shard's .json file.
type shardIndex struct {
	Digests []string `json:"sha256"`
	Paths   []string `json:"paths"`
	// NPY is the sha256 of the shard's .npy, checked when it is read;
	// shards written before it have none.
	NPY string `json:"npy_sha256,omitempty"`
}

// staleAge is how old the leftovers of an unfinished shard (temporary
// files, an .npy without its .json) must be before Open removes them.
// Writing a shard takes well under a second, so a younger leftover may be
// another process's shard in progress, and is left alone.
const staleAge = 10 * time.Minute

// Cache is one key's folder of feature shards. It is safe for concurrent
// use, and several processes may use one folder at once; those that
// extract into it take turns with Lock.
type Cache struct {
	dir      string
	dim      int
	readOnly bool // OpenReadOnly's

	mu    sync.Mutex
	index map[[32]byte]location
	// The shard Get read last, kept for the next Get (batch after batch
	// of one shard: predict's): shards never change once written.
	lastShard int
	lastData  []float32
	shards    []string          // shard names (no extension), append-only
	sums      map[string]string // shard name -> its .npy's sha256, if recorded
	known     map[string]bool   // every shard name read or written, used or not
}

// Shard names. Shards are named by their content, shard-<16 hex digits>,
// so processes sharing a folder cannot pick one name for different shards;
// caches written before that numbered them, shard-<6 digits>, and still
// read.
func isLegacyShard(name string) bool  { return shardID(name, 6, "0123456789") }
func isContentShard(name string) bool { return shardID(name, 16, "0123456789abcdef") }

func shardID(name string, n int, digits string) bool {
	id, ok := strings.CutPrefix(name, "shard-")
	if !ok || len(id) != n {
		return false
	}
	for _, r := range id {
		if !strings.ContainsRune(digits, r) {
			return false
		}
	}
	return true
}

// shardBefore is the order shards are read in, so an image in several
// shards takes its row from the first: numbered shards (in number order,
// which their fixed width makes name order) before content-named ones (in
// name order).
func shardBefore(a, b string) bool {
	if la, lb := isLegacyShard(a), isLegacyShard(b); la != lb {
		return la
	}
	return a < b
}

// Open opens (creating if needed) the cache for key under root, for
// features of dimension dim. Leftovers of unfinished shards older than
// staleAge are removed, younger ones ignored; a finished shard that is
// unreadable or inconsistent is an error naming it. key.json is written
// only when missing or different, so a complete cache on a read-only
// folder opens.
func Open(root string, key Key, dim int) (*Cache, error) {
	return open(root, key, dim, true)
}

// OpenReadOnly opens the cache for key under root to read what it holds,
// writing nothing: no folder is made (one that is missing is an error
// wrapping fs.ErrNotExist) and no leftover removed. A cache opened so must
// not be added to.
func OpenReadOnly(root string, key Key, dim int) (*Cache, error) {
	return open(root, key, dim, false)
}

func open(root string, key Key, dim int, write bool) (*Cache, error) {
	dir := filepath.Join(root, key.Hash())
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("feature cache: %w", err)
		}
		keyJSON, _ := json.MarshalIndent(struct {
			Key
			Dim int `json:"feature_dim"`
		}{key, dim}, "", "  ")
		// Written once: a complete cache on a read-only disk (a team's
		// shared copy) is read without writing anything.
		if old, err := os.ReadFile(filepath.Join(dir, "key.json")); err != nil || !bytes.Equal(old, keyJSON) {
			if err := atomicfile.WriteFile(filepath.Join(dir, "key.json"), keyJSON); err != nil {
				return nil, fmt.Errorf("feature cache: %w", err)
			}
		}
	}
	c := &Cache{dir: dir, dim: dim, index: map[[32]byte]location{}, known: map[string]bool{}, sums: map[string]string{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("feature cache: %w", err)
	}
	if !write {
		c.readOnly = true
		if err := c.load(entries); err != nil {
			return nil, err
		}
		return c, nil
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), atomicfile.TempPrefix) {
			removeStale(dir, e)
		}
	}
	if err := c.load(entries); err != nil {
		return nil, err
	}
	// An .npy without its .json is an unfinished shard: its .json is
	// looked for again now, as it may have landed since the listing.
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".npy")
		if !ok || !(isLegacyShard(base) || isContentShard(base)) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, base+".json")); errors.Is(err, os.ErrNotExist) {
			removeStale(dir, e)
		}
	}
	return c, nil
}

// removeStale removes the directory entry e if it is older than staleAge.
// It is best effort: another process may be removing it too.
func removeStale(dir string, e os.DirEntry) {
	if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleAge {
		os.Remove(filepath.Join(dir, e.Name()))
	}
}

// Refresh adds to the index the shards other processes (or other Caches of
// the folder) finished since Open or the last Refresh, in the order Open
// reads shards in, after those already read: an image indexed already keeps
// its row. An extraction calls it once it holds the lock (see Lock), so
// that it computes none of the images another process stored meanwhile.
func (c *Cache) Refresh() error {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("feature cache: refresh: %w", err)
	}
	return c.load(entries)
}

// load indexes the finished shards among the folder's entries that are not
// known yet, in shardBefore order, after those indexed already.
func (c *Cache) load(entries []os.DirEntry) error {
	c.mu.Lock()
	var names []string
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), ".json"); ok && (isLegacyShard(base) || isContentShard(base)) && !c.known[base] {
			names = append(names, base)
		}
	}
	c.mu.Unlock()
	sort.Slice(names, func(i, j int) bool { return shardBefore(names[i], names[j]) })
	for _, name := range names {
		digests, sum, err := c.readIndex(name)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.insert(name, digests, sum)
		c.mu.Unlock()
	}
	return nil
}

// readIndex reads the image digests of the shard name, row by row, and
// the sha256 of its .npy ("" if not recorded).
func (c *Cache) readIndex(name string) ([][32]byte, string, error) {
	path := filepath.Join(c.dir, name+".json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("feature cache: %w", err)
	}
	var si shardIndex
	if err := json.Unmarshal(raw, &si); err != nil {
		return nil, "", fmt.Errorf("feature cache: %s: %w (delete the file to recompute that shard)", path, err)
	}
	digests := make([][32]byte, len(si.Digests))
	for row, h := range si.Digests {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return nil, "", fmt.Errorf("feature cache: %s: row %d: bad sha256 %q", path, row, h)
		} else {
			copy(digests[row][:], b)
		}
	}
	return digests, si.NPY, nil
}

// insert indexes the rows of shard name for the images not indexed yet.
// The name is kept only if some row is used, so it is never kept twice: a
// shard seen again has all its images indexed already. Call with c.mu held
// (or before c is shared).
func (c *Cache) insert(name string, digests [][32]byte, sum string) {
	if c.known[name] {
		return
	}
	c.known[name] = true
	if sum != "" {
		c.sums[name] = sum
	}
	n := len(c.shards)
	used := false
	for row, d := range digests {
		if _, ok := c.index[d]; !ok {
			c.index[d] = location{n, row}
			used = true
		}
	}
	if used {
		c.shards = append(c.shards, name)
	}
}

// Dir is the cache's folder.
func (c *Cache) Dir() string { return c.dir }

// Len is the number of images with cached features.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.index)
}

// Has reports whether the image with this sha256 has cached features.
func (c *Cache) Has(digest [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.index[digest]
	return ok
}

// Add stores the features (len(digests), dim) of a group of images as a new
// shard, atomically. paths are recorded for people reading the cache.
// Images already cached keep the row they have.
func (c *Cache) Add(digests [][32]byte, paths []string, feats *tensor.Dense) error {
	if c.readOnly {
		return fmt.Errorf("feature cache %s: add: opened read-only", c.dir)
	}
	if s := feats.Shape(); len(s) != 2 || s[0] != len(digests) || s[1] != c.dim || len(paths) != len(digests) {
		return fmt.Errorf("feature cache: add: features %v for %d images (%d paths), want (%d, %d)", s, len(digests), len(paths), len(digests), c.dim)
	}
	var npy bytes.Buffer
	if err := tensorio.WriteNPY(&npy, feats); err != nil {
		return fmt.Errorf("feature cache: %w", err)
	}
	npySum := sha256.Sum256(npy.Bytes())
	si := shardIndex{Paths: paths, NPY: hex.EncodeToString(npySum[:])}
	for _, d := range digests {
		si.Digests = append(si.Digests, hex.EncodeToString(d[:]))
	}
	raw, err := json.Marshal(si)
	if err != nil {
		return err
	}
	// Named by its .json: different shards get different names, and
	// processes that write the same shard write equivalent files.
	sum := sha256.Sum256(raw)
	name := "shard-" + hex.EncodeToString(sum[:8])
	// The .npy first, the .json last: the .json is what makes a shard exist.
	err = atomicfile.WriteFile(filepath.Join(c.dir, name+".npy"), npy.Bytes())
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(c.dir, name+".json"), raw)
	}
	if err != nil {
		return fmt.Errorf("feature cache: %w", err)
	}
	c.mu.Lock()
	c.insert(name, digests, si.NPY)
	c.mu.Unlock()
	return nil
}

// Get returns the cached features of the given images as one (N, dim)
// tensor, in their order. Every image must be in the cache. A shard's .npy
// whose sha256 is not the one its .json recorded (damaged since written)
// is an error.
func (c *Cache) Get(digests [][32]byte) (*tensor.Dense, error) {
	if len(digests) == 0 {
		return nil, errors.New("feature cache: get: no images")
	}
	c.mu.Lock()
	locs := make([]location, len(digests))
	for i, d := range digests {
		l, ok := c.index[d]
		if !ok {
			c.mu.Unlock()
			return nil, fmt.Errorf("feature cache: no features for image sha256 %x", d)
		}
		locs[i] = l
	}
	shards := c.shards // append-only: the names it holds stay as they are
	c.mu.Unlock()
	// In shard order, to read each shard once.
	order := make([]int, len(locs))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return locs[order[a]].shard < locs[order[b]].shard })
	out := make([]float32, len(digests)*c.dim)
	loaded := -1
	var data []float32
	var path string
	for _, i := range order {
		l := locs[i]
		if l.shard != loaded {
			path = filepath.Join(c.dir, shards[l.shard]+".npy")
			c.mu.Lock()
			data, loaded = c.lastData, c.lastShard
			sum := c.sums[shards[l.shard]]
			c.mu.Unlock()
			if loaded != l.shard || data == nil {
				raw, err := os.ReadFile(path)
				if got := sha256.Sum256(raw); err == nil && sum != "" && hex.EncodeToString(got[:]) != sum {
					return nil, fmt.Errorf("feature cache: %s: the features do not match the sha256 their shard recorded (damaged since written; delete the shard's .json to recompute it)", path)
				}
				var t *tensor.Dense
				if err == nil {
					t, err = tensorio.ReadNPY(bytes.NewReader(raw), int64(len(raw)))
				}
				if err != nil {
					return nil, fmt.Errorf("feature cache: %w (delete the shard's .json to recompute it)", err)
				}
				if s := t.Shape(); len(s) != 2 || s[1] != c.dim {
					return nil, fmt.Errorf("feature cache: %s: shape %v, want (n, %d)", path, s, c.dim)
				}
				data, loaded = t.Data().([]float32), l.shard
				c.mu.Lock()
				c.lastShard, c.lastData = loaded, data
				c.mu.Unlock()
			}
		}
		if (l.row+1)*c.dim > len(data) {
			return nil, fmt.Errorf("feature cache: %s: row %d missing", path, l.row)
		}
		copy(out[i*c.dim:(i+1)*c.dim], data[l.row*c.dim:(l.row+1)*c.dim])
	}
	return tensor.New(tensor.WithShape(len(digests), c.dim), tensor.WithBacking(out)), nil
}
