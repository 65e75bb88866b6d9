package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
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
}

// Features returns the cached features of samples, computing first those
// missing from the cache. Unusable files are recorded in x.Skips and left
// out: kept lists the samples that have features, in their order, and
// feats holds their rows.
//
// Shards are cut from the missing images in a fixed order, with fixed
// batches inside each, so a run killed during extraction and started
// again computes every shard exactly as an uninterrupted run does.
func (x *Extraction) Features(ctx context.Context, samples []dataset.Sample) (kept []dataset.Sample, feats *tensor.Dense, err error) {
	digests, err := hashFiles(ctx, x.Data, samples, x.Skips)
	if err != nil {
		return nil, nil, err
	}
	var missing []dataset.Sample
	seen := map[[32]byte]bool{}
	for i, s := range samples {
		d, ok := digests[i]
		if !ok || x.Cache.Has(d) || seen[d] {
			continue
		}
		seen[d] = true
		missing = append(missing, s)
	}
	if len(missing) > 0 {
		if err := x.extract(ctx, missing); err != nil {
			return nil, nil, err
		}
	}
	var keep [][32]byte
	for i, s := range samples {
		if d, ok := digests[i]; ok && x.Cache.Has(d) {
			kept = append(kept, s)
			keep = append(keep, d)
		}
	}
	if len(keep) == 0 {
		return nil, nil, fmt.Errorf("%w: none of %d images could be used", dataset.ErrNoUsableImages, len(samples))
	}
	feats, err = x.Cache.Get(keep)
	return kept, feats, err
}

// extract runs the backbone over missing, shard by shard.
func (x *Extraction) extract(ctx context.Context, missing []dataset.Sample) error {
	done := 0
	dim := x.Backbone.FeatureDim()
	for lo := 0; lo < len(missing); lo += x.Shard {
		chunk := missing[lo:min(lo+x.Shard, len(missing))]
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
				x.Progress(done, len(missing))
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

// hashFiles computes the sha256 of every sample's file, in parallel.
// Unreadable files are recorded in skips and have no entry.
func hashFiles(ctx context.Context, cfg dataset.Config, samples []dataset.Sample, skips *dataset.SkipLog) (map[int][32]byte, error) {
	cfg = cfg.WithDefaults()
	out := make(map[int][32]byte, len(samples))
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
	for i := range samples {
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
