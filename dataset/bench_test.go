package dataset

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// kaggleJPEGs writes n 500x375 JPEGs (quality 90; the typical Kaggle Dogs vs
// Cats size) cut from a real photo at different offsets, under root/photos.
func kaggleJPEGs(b *testing.B, root string, n int) []Sample {
	b.Helper()
	f, err := os.Open(filepath.Join("testdata", "coffee.png")) // 600x400
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	src, err := png.Decode(f)
	if err != nil {
		b.Fatal(err)
	}
	files := map[string][]byte{}
	var samples []Sample
	for i := range n {
		x, y := i*97%100, i*13%25
		sub := src.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(image.Rect(x, y, x+500, y+375))
		name := fmt.Sprintf("photos/%03d.jpg", i)
		files[name] = encodeJPEG(b, sub, 90)
		samples = append(samples, Sample{Path: name})
	}
	writeFiles(b, root, files)
	return samples
}

// BenchmarkDecodeResize measures one worker: read, sha256, decode, resize to
// 224x224 and 'caffe' preprocessing of 500x375 JPEGs.
func BenchmarkDecodeResize(b *testing.B) {
	root := b.TempDir()
	samples := kaggleJPEGs(b, root, 16)
	w, err := newWorker(Config{Root: root}.WithDefaults())
	if err != nil {
		b.Fatal(err)
	}
	out := make([]float32, 224*224*3)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := w.process(filepath.Join(root, samples[i%len(samples)].Path), out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkDecodeResizePhoto is BenchmarkDecodeResize on a 12-megapixel
// photo (4000x3000, quality 90, the coffee cup scaled up), as phones take
// them, decoded in full (Keras' pixels) or at 1/8 scale (FastJPEG).
func BenchmarkDecodeResizePhoto(b *testing.B) {
	data := encodeJPEG(b, coffee(b, 4000, 3000), 90)
	for _, fast := range []bool{false, true} {
		b.Run(fmt.Sprintf("fast_jpeg=%v", fast), func(b *testing.B) {
			w, err := newWorker(Config{FastJPEG: fast}.WithDefaults())
			if err != nil {
				b.Fatal(err)
			}
			out := make([]float32, 224*224*3)
			for b.Loop() {
				if _, err := w.processBytes(data, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkStream measures the whole pipeline with the default number of
// workers (runtime.NumCPU()), batches of 32.
func BenchmarkStream(b *testing.B) { benchStream(b, Config{}) }

// BenchmarkStreamRandomCrop is BenchmarkStream on random crops (torchvision's
// defaults, mirrored at random): as many allocations, and resizing a
// smaller box costs no more.
func BenchmarkStreamRandomCrop(b *testing.B) {
	benchStream(b, Config{RandomCrop: &RandomCrop{Seed: 1, Scale: [2]float64{0.08, 1}, Ratio: [2]float64{3.0 / 4, 4.0 / 3}, Flip: true}})
}

func benchStream(b *testing.B, cfg Config) {
	root := b.TempDir()
	cfg.Root = root
	files := kaggleJPEGs(b, root, 16)
	samples := make([]Sample, b.N)
	for i := range samples {
		samples[i] = files[i%len(files)]
	}
	b.ResetTimer()
	n := 0
	for batch, err := range Stream(context.Background(), cfg, samples, 32, nil) {
		if err != nil {
			b.Fatal(err)
		}
		n += batch.Len()
	}
	if n != b.N {
		b.Fatalf("%d images, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}
