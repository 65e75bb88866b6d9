package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"gorgonia.org/tensor"

	"gotransfer/dataset"
	"gotransfer/features"
	"gotransfer/model/resnet"
)

// Extraction says how features are computed for the images missing from
// the cache.
type Extraction struct {
	Data     dataset.Config
	Backbone resnet.Backbone
	Cache    *features.Cache
	// Batch is the number of images per backbone pass.
	Batch int
	// Shard is the number of images per cache shard: the unit of work a
	// killed run loses at most.
	Shard int
	Skips *dataset.SkipLog
	// Progress, if set, is called after each backbone batch with the
	// number of images done and to do in this extraction.
	Progress func(done, total int)
	// Sums, if set, holds file digests already computed, by sample path
	// (other views of the same files): those files are not read again.
	Sums map[string][32]byte
}

// Features returns the cached features of samples, computing first those
// missing from the cache. Unusable files are recorded in x.Skips and left
// out: kept lists the samples that have features, in their order, digests
// the sha256 of their files, and feats holds their rows.
//
// Extraction holds the cache folder's lock (features.Cache.Lock), so runs
// sharing the folder wait for one another and then reuse what the other
// stored, instead of storing a second row, with other last bits, for an
// image. Only reading, when nothing is missing, takes no lock.
//
// Shards are cut at fixed windows of the distinct images (Shard of them,
// in order of first occurrence in samples), each holding the window's
// missing images in fixed batches. So a run killed during extraction and
// started again computes every remaining window exactly as an
// uninterrupted run does, even when an unusable image (never cached) sits
// in a window already done.
func (x *Extraction) Features(ctx context.Context, samples []dataset.Sample) (kept []dataset.Sample, digests [][32]byte, feats *tensor.Dense, err error) {
	sums, err := hashFiles(ctx, x.Data, samples, x.Sums, x.Skips)
	if err != nil {
		return nil, nil, nil, err
	}
	// The distinct images, in order of first occurrence.
	var unique []dataset.Sample
	var uniqueSums [][32]byte
	first := map[[32]byte]string{} // digest -> the path decoded for it
	missing := false
	for i, s := range samples {
		d, ok := sums[i]
		if !ok {
			continue
		}
		if _, dup := first[d]; dup {
			continue
		}
		first[d] = s.Path
		unique = append(unique, s)
		uniqueSums = append(uniqueSums, d)
		missing = missing || !x.Cache.Has(d)
	}
	if missing {
		if err := x.extractLocked(ctx, unique, uniqueSums); err != nil {
			return nil, nil, nil, err
		}
	}
	for i, s := range samples {
		d, ok := sums[i]
		switch {
		case !ok:
		case x.Cache.Has(d):
			kept = append(kept, s)
			digests = append(digests, d)
		case s.Path != first[d]:
			// A copy of an unusable file was never decoded: it is skipped
			// for the same reason, and listed too.
			if why, ok := x.Skips.Reason(first[d]); ok {
				x.Skips.Add(s.Path, fmt.Sprintf("the same bytes as %s: %s", first[d], why))
			}
		}
	}
	if len(digests) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: none of %d images could be used", dataset.ErrNoUsableImages, len(samples))
	}
	feats, err = x.Cache.Get(digests)
	if err != nil {
		return nil, nil, nil, err
	}
	return kept, digests, feats, nil
}

// extractLocked takes the cache folder's lock, reads the shards other
// processes stored meanwhile and extracts what is still missing of unique
// (whose file digests are sums).
func (x *Extraction) extractLocked(ctx context.Context, unique []dataset.Sample, sums [][32]byte) error {
	unlock, ok, err := x.Cache.TryLock()
	if err != nil {
		return fmt.Errorf("extract features: %w", err)
	}
	if !ok {
		slog.Info("waiting for another process extracting features into " + x.Cache.Dir())
		if unlock, err = x.Cache.Lock(ctx); err != nil {
			return fmt.Errorf("extract features: waiting for the lock of %s: %w", x.Cache.Dir(), err)
		}
	}
	defer unlock()
	if err := x.Cache.Refresh(); err != nil {
		return fmt.Errorf("extract features: %w", err)
	}
	return x.extract(ctx, unique, sums)
}

// extract runs the backbone over the images of unique missing from the
// cache, window by window of x.Shard images of unique, each window's
// missing images making one shard. Windows with none missing are skipped.
func (x *Extraction) extract(ctx context.Context, unique []dataset.Sample, sums [][32]byte) error {
	var windows [][]dataset.Sample
	total := 0
	for lo := 0; lo < len(unique); lo += x.Shard {
		var w []dataset.Sample
		for i := lo; i < min(lo+x.Shard, len(unique)); i++ {
			if !x.Cache.Has(sums[i]) {
				w = append(w, unique[i])
			}
		}
		if len(w) > 0 {
			windows = append(windows, w)
			total += len(w)
		}
	}
	done := 0
	dim := x.Backbone.FeatureDim()
	for _, chunk := range windows {
		var digests [][32]byte
		var paths []string
		var rows []float32
		for b, err := range dataset.Stream(ctx, x.Data, chunk, x.Batch, x.Skips) {
			if err != nil {
				// A class with no usable image in this shard is judged over
				// the whole dataset by the caller, not here.
				if errors.Is(err, dataset.ErrNoUsableImages) {
					break
				}
				return fmt.Errorf("extract features: %w", err)
			}
			f, err := x.Backbone.Features(b.Images)
			b.Release() // the features are a copy; the pixels can be reused
			if err != nil {
				return fmt.Errorf("extract features: %w", err)
			}
			digests = append(digests, b.Digests...)
			paths = append(paths, b.Paths...)
			rows = append(rows, f.Data().([]float32)...)
			done += b.Len()
			if x.Progress != nil {
				x.Progress(done, total)
			}
		}
		if len(digests) == 0 {
			continue
		}
		t := tensor.New(tensor.WithShape(len(digests), dim), tensor.WithBacking(rows))
		if err := x.Cache.Add(digests, paths, t); err != nil {
			return err
		}
	}
	return nil
}

// hashFiles computes the sha256 of every sample's file not in known (by
// path), in parallel.
// Unreadable files are recorded in skips and have no entry.
func hashFiles(ctx context.Context, cfg dataset.Config, samples []dataset.Sample, known map[string][32]byte, skips *dataset.SkipLog) (map[int][32]byte, error) {
	cfg = cfg.WithDefaults()
	out := make(map[int][32]byte, len(samples))
	var todo []int
	for i, s := range samples {
		if d, ok := known[s.Path]; ok {
			out[i] = d
		} else {
			todo = append(todo, i)
		}
	}
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := sha256.New()
			for i := range next {
				f, err := os.Open(filepath.Join(cfg.Root, filepath.FromSlash(samples[i].Path)))
				if err == nil {
					h.Reset()
					_, err = io.Copy(h, f)
					f.Close()
				}
				if err != nil {
					skips.Add(samples[i].Path, fmt.Sprintf("unreadable: %v", err))
					continue
				}
				var d [32]byte
				h.Sum(d[:0])
				mu.Lock()
				out[i] = d
				mu.Unlock()
			}
		}()
	}
	var err error
	for _, i := range todo {
		select {
		case next <- i:
			continue
		case <-ctx.Done():
			err = ctx.Err()
		}
		break
	}
	close(next)
	wg.Wait()
	return out, err
}
