package pipeline

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"gotransfer/dataset"
	"gotransfer/features"
	"gotransfer/model/resnet"
)

// meet is a backbone whose first batch waits, a second at most, for its
// partner's first batch: two extractions that can run at once then do.
// It counts the images it computes.
type meet struct {
	resnet.Backbone
	once         sync.Once
	mine, theirs chan struct{}
	images       *atomic.Int64
}

func (m *meet) Features(x *tensor.Dense) (*tensor.Dense, error) {
	m.once.Do(func() {
		close(m.mine)
		select {
		case <-m.theirs:
		case <-time.After(time.Second):
		}
	})
	m.images.Add(int64(x.Shape()[0]))
	return m.Backbone.Features(x)
}

// TestConcurrentExtractions: two extractions into one cache folder at once
// (separate Caches, as two processes have) over overlapping images compute
// each image once, store it in one shard, and give both callers its same
// bytes.
func TestConcurrentExtractions(t *testing.T) {
	dcfg, samples := smallData(t, 12)
	w, err := resnet.Random(8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := resnet.NewCPU(w)
	key := features.Key{Weights: w.Digest(), Preprocess: "caffe", Height: 48, Width: 48}
	root := t.TempDir()
	// The shared images sit at other places in the two lists, so in other
	// batches: computed twice, their last bits would differ.
	lists := [2][]dataset.Sample{samples[:14], samples[5:]}
	chans := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	var images atomic.Int64
	type result struct {
		digests [][32]byte
		feats   *tensor.Dense
		err     error
	}
	var res [2]result
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cache, err := features.Open(root, key, bb.FeatureDim())
			if err != nil {
				res[p].err = err
				return
			}
			b := &meet{Backbone: bb, mine: chans[p], theirs: chans[1-p], images: &images}
			x := &Extraction{Data: dcfg, Backbone: b, Cache: cache, Batch: 3, Shard: 5, Skips: &dataset.SkipLog{}}
			_, res[p].digests, res[p].feats, res[p].err = x.Features(context.Background(), lists[p])
		}()
	}
	wg.Wait()
	rows := map[[32]byte][]float32{}
	for p, r := range res {
		if r.err != nil {
			t.Fatalf("extraction %d: %v", p, r.err)
		}
		if len(r.digests) != len(lists[p]) {
			t.Fatalf("extraction %d: %d digests for %d images", p, len(r.digests), len(lists[p]))
		}
		data, dim := r.feats.Data().([]float32), bb.FeatureDim()
		for i, d := range r.digests {
			row := data[i*dim : (i+1)*dim]
			if prev, ok := rows[d]; ok {
				for j := range row {
					if row[j] != prev[j] {
						t.Fatalf("image %s: feature %d is %v for one extraction, %v for the other", lists[p][i].Path, j, prev[j], row[j])
					}
				}
			}
			rows[d] = row
		}
	}
	if n := images.Load(); n != int64(len(samples)) {
		t.Errorf("the backbone computed %d images, want each of the %d once", n, len(samples))
	}
	shards, err := filepath.Glob(filepath.Join(root, key.Hash(), "shard-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]string{}
	for _, s := range shards {
		raw, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		var si struct {
			Digests []string `json:"sha256"`
		}
		if err := json.Unmarshal(raw, &si); err != nil {
			t.Fatal(err)
		}
		for _, d := range si.Digests {
			if other, ok := in[d]; ok {
				t.Errorf("image sha256 %s is in two shards, %s and %s", d, filepath.Base(other), filepath.Base(s))
			}
			in[d] = s
		}
	}
	if len(in) != len(samples) {
		t.Errorf("%d images in the shards, want %d", len(in), len(samples))
	}
	for d := range rows {
		if _, ok := in[hex.EncodeToString(d[:])]; !ok {
			t.Errorf("image sha256 %x is in no shard", d)
		}
	}
}

// TestExtractionKnownSums: files whose digests the caller passes in Sums
// are not read again (here one is gone from disk and still has its
// features), and the others are hashed as usual.
func TestExtractionKnownSums(t *testing.T) {
	dcfg, samples := smallData(t, 3)
	x := smallExtraction(t, dcfg)
	kept, digests, want, err := x.Features(context.Background(), samples)
	if err != nil || len(kept) != len(samples) {
		t.Fatalf("first extraction: %d of %d kept, %v", len(kept), len(samples), err)
	}
	gone := samples[0].Path
	if err := os.Remove(filepath.Join(dcfg.Root, filepath.FromSlash(gone))); err != nil {
		t.Fatal(err)
	}
	x.Sums, x.Skips = map[string][32]byte{gone: digests[0]}, &dataset.SkipLog{}
	kept, _, got, err := x.Features(context.Background(), samples)
	if err != nil || len(kept) != len(samples) || x.Skips.Len() != 0 {
		t.Fatalf("with the removed file's digest known: %d of %d kept, %d skipped, %v", len(kept), len(samples), x.Skips.Len(), err)
	}
	if !slices.Equal(got.Float32s(), want.Float32s()) {
		t.Error("the features differ from the first extraction's")
	}
}

// TestExtractionListsUnusableCopies: an image is decoded once however many
// files hold its bytes; when it is unusable, every copy is listed as
// skipped, not only the one decoded.
func TestExtractionListsUnusableCopies(t *testing.T) {
	dcfg, samples := smallData(t, 2)
	label := samples[0].Label
	dir := path.Dir(samples[0].Path)
	for _, f := range []struct{ name, content string }{{"x1.jpg", "hello"}, {"x2.jpg", "hello"}, {"x3.jpg", "other"}} {
		name, content := f.name, f.content
		if err := os.WriteFile(filepath.Join(dcfg.Root, filepath.FromSlash(dir), name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		samples = append(samples, dataset.Sample{Path: path.Join(dir, name), Label: label})
	}
	x := smallExtraction(t, dcfg)
	kept, _, _, err := x.Features(context.Background(), samples)
	if err != nil || len(kept) != len(samples)-3 {
		t.Fatalf("%d of %d kept, %v", len(kept), len(samples), err)
	}
	var skipped []string
	for _, s := range x.Skips.Entries() {
		skipped = append(skipped, path.Base(s.Path))
	}
	slices.Sort(skipped)
	if !slices.Equal(skipped, []string{"x1.jpg", "x2.jpg", "x3.jpg"}) {
		t.Errorf("skipped %q, want the three unusable files", skipped)
	}
	if why, _ := x.Skips.Reason(path.Join(dir, "x2.jpg")); !strings.HasPrefix(why, "the same bytes as "+path.Join(dir, "x1.jpg")+": ") {
		t.Errorf("the copy's reason: %q", why)
	}
}

// smallExtraction extracts dcfg's 48x48 images with a narrow random
// backbone (width 8) into a fresh cache, in batches of 2 and shards of 4.
func smallExtraction(t *testing.T, dcfg dataset.Config) *Extraction {
	t.Helper()
	w, err := resnet.Random(8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := resnet.NewCPU(w)
	cache, err := features.Open(t.TempDir(), features.Key{Weights: w.Digest(), Preprocess: "caffe", Height: 48, Width: 48}, bb.FeatureDim())
	if err != nil {
		t.Fatal(err)
	}
	return &Extraction{Data: dcfg, Backbone: bb, Cache: cache, Batch: 2, Shard: 4, Skips: &dataset.SkipLog{}}
}
