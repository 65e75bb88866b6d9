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
}

// Hash names the key's folder.
func (k Key) Hash() string {
	raw, _ := json.Marshal(k) // a struct of strings, ints and bools always marshals
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

type location struct {
	shard, row int
}

// shardIndex is a shard's .json file.
type shardIndex struct {
	Digests []string `json:"sha256"`
	Paths   []string `json:"paths"`
}

// Cache is one key's folder of feature shards. It is safe for concurrent
// use.
type Cache struct {
	dir string
	dim int

	mu     sync.Mutex
	index  map[[32]byte]location
	shards int
}

// Open opens (creating if needed) the cache for key under root, for
// features of dimension dim. Leftovers of unfinished shards are removed; a
// finished shard that is unreadable or inconsistent is an error naming it.
func Open(root string, key Key, dim int) (*Cache, error) {
	dir := filepath.Join(root, key.Hash())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("feature cache: %w", err)
	}
	keyJSON, _ := json.MarshalIndent(struct {
		Key
		Dim int `json:"feature_dim"`
	}{key, dim}, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(dir, "key.json"), keyJSON); err != nil {
		return nil, fmt.Errorf("feature cache: %w", err)
	}
	c := &Cache{dir: dir, dim: dim, index: map[[32]byte]location{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("feature cache: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, atomicfile.TempPrefix) {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		var n int
		if _, err := fmt.Sscanf(name, "shard-%06d.json", &n); err != nil || name != shardName(n, ".json") {
			continue
		}
		if err := c.loadIndex(n); err != nil {
			return nil, err
		}
		c.shards = max(c.shards, n+1)
	}
	// An .npy without its .json is an unfinished shard.
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "shard-%06d.npy", &n); err == nil && e.Name() == shardName(n, ".npy") {
			if _, err := os.Stat(filepath.Join(dir, shardName(n, ".json"))); errors.Is(err, os.ErrNotExist) {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	return c, nil
}

func shardName(n int, ext string) string { return fmt.Sprintf("shard-%06d%s", n, ext) }

func (c *Cache) loadIndex(n int) error {
	path := filepath.Join(c.dir, shardName(n, ".json"))
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("feature cache: %w", err)
	}
	var si shardIndex
	if err := json.Unmarshal(raw, &si); err != nil {
		return fmt.Errorf("feature cache: %s: %w (delete the file to recompute that shard)", path, err)
	}
	for row, h := range si.Digests {
		var d [32]byte
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return fmt.Errorf("feature cache: %s: row %d: bad sha256 %q", path, row, h)
		} else {
			copy(d[:], b)
		}
		if _, ok := c.index[d]; !ok {
			c.index[d] = location{n, row}
		}
	}
	return nil
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
func (c *Cache) Add(digests [][32]byte, paths []string, feats *tensor.Dense) error {
	if s := feats.Shape(); len(s) != 2 || s[0] != len(digests) || s[1] != c.dim || len(paths) != len(digests) {
		return fmt.Errorf("feature cache: add: features %v for %d images (%d paths), want (%d, %d)", s, len(digests), len(paths), len(digests), c.dim)
	}
	c.mu.Lock()
	n := c.shards
	c.shards++
	c.mu.Unlock()

	si := shardIndex{Paths: paths}
	for _, d := range digests {
		si.Digests = append(si.Digests, hex.EncodeToString(d[:]))
	}
	raw, err := json.Marshal(si)
	if err != nil {
		return err
	}
	// The .npy first, the .json last: the .json is what makes a shard exist.
	var npy bytes.Buffer
	err = tensorio.WriteNPY(&npy, feats)
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(c.dir, shardName(n, ".npy")), npy.Bytes())
	}
	if err == nil {
		err = atomicfile.WriteFile(filepath.Join(c.dir, shardName(n, ".json")), raw)
	}
	if err != nil {
		return fmt.Errorf("feature cache: write shard %d: %w", n, err)
	}
	c.mu.Lock()
	for row, d := range digests {
		if _, ok := c.index[d]; !ok {
			c.index[d] = location{n, row}
		}
	}
	c.mu.Unlock()
	return nil
}

// Get returns the cached features of the given images as one (N, dim)
// tensor, in their order. Every image must be in the cache.
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
	c.mu.Unlock()
	order := make([]int, len(locs))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return locs[order[a]].shard < locs[order[b]].shard })
	out := make([]float32, len(digests)*c.dim)
	loaded := -1
	var data []float32
	for _, i := range order {
		l := locs[i]
		if l.shard != loaded {
			path := filepath.Join(c.dir, shardName(l.shard, ".npy"))
			t, err := tensorio.ReadNPYFile(path)
			if err != nil {
				return nil, fmt.Errorf("feature cache: %w (delete the shard's .json to recompute it)", err)
			}
			if s := t.Shape(); len(s) != 2 || s[1] != c.dim {
				return nil, fmt.Errorf("feature cache: %s: shape %v, want (n, %d)", path, s, c.dim)
			}
			data, loaded = t.Data().([]float32), l.shard
		}
		if (l.row+1)*c.dim > len(data) {
			return nil, fmt.Errorf("feature cache: %s: row %d missing", shardName(l.shard, ".npy"), l.row)
		}
		copy(out[i*c.dim:(i+1)*c.dim], data[l.row*c.dim:(l.row+1)*c.dim])
	}
	return tensor.New(tensor.WithShape(len(digests), c.dim), tensor.WithBacking(out)), nil
}
