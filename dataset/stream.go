package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"gorgonia.org/tensor"
)

// ErrNoUsableImages is wrapped by the error that ends a Stream (and Check)
// when every file of some class was skipped.
var ErrNoUsableImages = errors.New("no usable image")

// Batch is a batch of preprocessed images, in the order of the samples given
// to Stream, skipped files left out.
type Batch struct {
	// Images is (N, Height, Width, 3) float32, preprocessed per Config.Preprocess.
	Images *tensor.Dense
	// Labels, Paths (relative to Config.Root) and Digests (sha256 of each
	// file's bytes) describe image i of Images.
	Labels  []int
	Paths   []string
	Digests [][32]byte

	release *release // hands the images' memory back to the Stream
}

type release struct {
	done atomic.Bool
	to   chan<- []float32
	data []float32
}

// Len returns the number of images in the batch.
func (b Batch) Len() int { return len(b.Labels) }

// Release hands the memory of b.Images back to the Stream that made it, for
// a later batch. It is optional (without it the garbage collector reclaims
// the memory) and saves a large allocation per batch, which keeps the peak
// RSS flat; call it only once nothing uses b.Images or its data any more.
// Calls after the first (on b or a copy of it) do nothing.
func (b Batch) Release() {
	if b.release == nil || b.release.done.Swap(true) {
		return
	}
	select {
	case b.release.to <- b.release.data:
	default:
	}
}

// bigBuffer is the capacity above which a worker frees a buffer after use,
// so that one huge image does not pin its memory for the rest of the run.
const bigBuffer = 64 << 20

// worker turns one file into preprocessed pixels; its buffers are reused.
type worker struct {
	cfg  Config
	pp   preprocessor
	dec  decoder
	rz   resizer
	file bytes.Buffer
}

func newWorker(cfg Config) (*worker, error) {
	pp, err := newPreprocessor(cfg.Preprocess)
	if err != nil {
		return nil, err
	}
	dec := decoder{maxPixels: cfg.MaxPixels, exif: !cfg.IgnoreEXIF}
	if cfg.FastJPEG {
		dec.draftW, dec.draftH = cfg.Width, cfg.Height
	}
	return &worker{cfg: cfg, pp: pp, dec: dec}, nil
}

// process reads the file at path, decodes it and writes Height*Width*3
// preprocessed values into out. All its errors wrap ErrBadImage.
func (w *worker) process(path string, out []float32) (digest [32]byte, err error) {
	defer w.trim()
	data, err := w.read(path)
	if err != nil {
		return digest, err
	}
	return w.processBytes(data, out)
}

// read returns the content of the file at path, in a buffer of w's.
func (w *worker) read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &badImage{reason: err.Error(), err: err} // "open x.jpg: ..."
	}
	defer f.Close()
	w.file.Reset()
	if _, err = w.file.ReadFrom(f); err != nil {
		return nil, &badImage{reason: err.Error(), err: err} // "read x.jpg: ..."
	}
	return w.file.Bytes(), nil
}

// processBytes is process for a file's content.
func (w *worker) processBytes(data []byte, out []float32) (digest [32]byte, err error) {
	digest, _, _, _, err = w.view(data, out)
	return digest, err
}

// view is processBytes that also returns the decoded image (aliasing the
// decoder's buffers), the region of it that out was resized from, and
// whether out was then mirrored.
func (w *worker) view(data []byte, out []float32) (digest [32]byte, img rgb8, r image.Rectangle, flip bool, err error) {
	digest = sha256.Sum256(data)
	img, err = w.dec.decode(data)
	if err != nil {
		return digest, img, r, false, err
	}
	r = image.Rect(0, 0, img.w, img.h)
	if w.cfg.CropToAspectRatio {
		r = cropBox(img.w, img.h, w.cfg.Width, w.cfg.Height)
	}
	flip = w.cfg.HorizontalFlip
	if w.cfg.RandomCrop != nil {
		r, flip = w.cfg.RandomCrop.box(r, digest)
	}
	w.rz.resize(img, r, w.cfg.Width, w.cfg.Height, &w.pp, out)
	if flip {
		Mirror(out, w.cfg.Height, w.cfg.Width)
	}
	return digest, img, r, flip, nil
}

// Mirror reverses the pixels of every row of an h x w HWC image (3
// channels) in place: the image as HorizontalFlip reads it.
func Mirror(pix []float32, h, w int) {
	for y := range h {
		row := pix[y*w*3 : (y+1)*w*3]
		for l, r := 0, w-1; l < r; l, r = l+1, r-1 {
			a, b := row[l*3:l*3+3], row[r*3:r*3+3]
			a[0], a[1], a[2], b[0], b[1], b[2] = b[0], b[1], b[2], a[0], a[1], a[2]
		}
	}
}

func (w *worker) trim() {
	if w.file.Cap() > bigBuffer {
		w.file = bytes.Buffer{}
	}
	if cap(w.dec.rgb) > bigBuffer {
		w.dec.rgb = nil
	}
	if cap(w.dec.tmp) > bigBuffer {
		w.dec.tmp = nil
	}
}

// Load reads and preprocesses one image file (path as on disk, not relative
// to Root), returning Height*Width*3 float32 values in HWC order and the
// sha256 of the file's bytes. An unusable file gives an error wrapping
// ErrBadImage (and the cause, such as fs.ErrNotExist).
func Load(cfg Config, path string) ([]float32, [32]byte, error) {
	w, out, err := oneImage(cfg)
	if err != nil {
		return nil, [32]byte{}, err
	}
	digest, err := w.process(path, out)
	if err != nil {
		return nil, digest, fmt.Errorf("dataset: load %s: %w", path, err)
	}
	return out, digest, nil
}

// Decode is Load for an image file's content, data (an upload, say).
func Decode(cfg Config, data []byte) ([]float32, error) {
	w, out, err := oneImage(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := w.processBytes(data, out); err != nil {
		return nil, fmt.Errorf("dataset: decode: %w", err)
	}
	return out, nil
}

// View is one image both as the network sees it and as a person does, for
// drawing what a network computed from it over the picture.
type View struct {
	// Pixels are the preprocessed values Load returns.
	Pixels []float32
	// Image is the decoded image (EXIF orientation applied, unless
	// IgnoreEXIF), before any crop or resize, at full size (with FastJPEG
	// too).
	Image *image.RGBA
	// Box is the region of Image that Pixels were resized from: all of it,
	// the centred crop of CropToAspectRatio, or a RandomCrop's box.
	Box image.Rectangle
	// Mirrored says Pixels are the mirror image of Box (HorizontalFlip, or a
	// RandomCrop's coin).
	Mirrored bool
}

// LoadView is Load that also returns the decoded image and where the
// network's input came from in it.
func LoadView(cfg Config, path string) (*View, error) {
	w, out, err := oneImage(cfg)
	if err != nil {
		return nil, err
	}
	data, err := w.read(path)
	if err == nil {
		var v *View
		if v, err = w.decodeView(data, out); err == nil {
			return v, nil
		}
	}
	return nil, fmt.Errorf("dataset: load %s: %w", path, err)
}

// DecodeView is LoadView for an image file's content, data (an upload,
// say).
func DecodeView(cfg Config, data []byte) (*View, error) {
	w, out, err := oneImage(cfg)
	if err != nil {
		return nil, err
	}
	v, err := w.decodeView(data, out)
	if err != nil {
		return nil, fmt.Errorf("dataset: decode: %w", err)
	}
	return v, nil
}

// decodeView decodes data into out and keeps the picture as an RGBA image.
// With FastJPEG the picture is decoded again in full: the network's input
// comes from the reduced decode, the picture a person sees should not.
func (w *worker) decodeView(data []byte, out []float32) (*View, error) {
	_, img, box, flip, err := w.view(data, out)
	if err != nil {
		return nil, err
	}
	if w.cfg.FastJPEG {
		full := w.cfg
		full.FastJPEG = false
		fw, err := newWorker(full)
		if err != nil {
			return nil, err
		}
		if _, img, box, flip, err = fw.view(data, make([]float32, len(out))); err != nil {
			return nil, err
		}
	}
	rgba := image.NewRGBA(image.Rect(0, 0, img.w, img.h))
	for i := range img.w * img.h {
		copy(rgba.Pix[4*i:4*i+3], img.pix[3*i:3*i+3])
		rgba.Pix[4*i+3] = 255
	}
	return &View{Pixels: out, Image: rgba, Box: box, Mirrored: flip}, nil
}

// oneImage returns a worker for cfg and room for one image's values.
func oneImage(cfg Config) (*worker, []float32, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	w, err := newWorker(cfg)
	if err != nil {
		return nil, nil, err
	}
	return w, make([]float32, cfg.Height*cfg.Width*3), nil
}

type job struct {
	i   int
	res chan<- result
}

type result struct {
	pix    []float32
	digest [32]byte
	err    error
}

// Stream decodes samples with cfg.Workers goroutines and yields them in
// batches of batchSize (the last may be shorter), in the order of samples
// whatever the number of workers. Unusable files are left out and recorded
// in skips (a nil skips uses a private SkipLog, which still logs). Memory is
// bounded however long samples is: the batch being filled plus at most
// 2*Workers+2 decoded images waiting; [Batch.Release] also recycles the
// batches' memory.
//
// The sequence yields a non-nil error once, as its last element, when cfg or
// batchSize is invalid, when ctx is cancelled, or (wrapping ErrNoUsableImages)
// when every sample of some label was skipped. Stopping the iteration early
// stops the workers; Stream leaves no goroutine behind.
func Stream(ctx context.Context, cfg Config, samples []Sample, batchSize int, skips *SkipLog) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		cfg = cfg.WithDefaults()
		if err := cfg.validate(); err != nil {
			yield(Batch{}, err)
			return
		}
		if batchSize <= 0 {
			yield(Batch{}, fmt.Errorf("dataset: batch size %d, want > 0", batchSize))
			return
		}
		if skips == nil {
			skips = &SkipLog{}
		}
		workers := make([]*worker, cfg.Workers)
		for k := range workers {
			var err error
			if workers[k], err = newWorker(cfg); err != nil {
				yield(Batch{}, err)
				return
			}
		}
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() {
			cancel()
			wg.Wait()
		}()

		size := cfg.Height * cfg.Width * 3
		window := 2*cfg.Workers + 2
		pending := make(chan chan result, window)
		jobs := make(chan job)
		free := make(chan []float32, window+cfg.Workers)

		wg.Add(1)
		go func() { // producer: one result channel per sample, in order
			defer wg.Done()
			defer close(jobs)
			defer close(pending)
			for i := range samples {
				ch := make(chan result, 1)
				select {
				case pending <- ch:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- job{i, ch}:
				case <-ctx.Done():
					return
				}
			}
		}()
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					var pix []float32
					select {
					case pix = <-free:
					default:
						pix = make([]float32, size)
					}
					path := filepath.Join(cfg.Root, filepath.FromSlash(samples[j.i].Path))
					digest, err := w.process(path, pix)
					j.res <- result{pix, digest, err}
				}
			}()
		}

		recycled := make(chan []float32, 2)
		var b Batch
		var data []float32
		total, usable := map[int]int{}, map[int]int{}
		flush := func() bool {
			if len(b.Labels) == 0 {
				return true
			}
			b.Images = tensor.New(tensor.WithShape(len(b.Labels), cfg.Height, cfg.Width, 3), tensor.WithBacking(data[:len(b.Labels)*size]))
			b.release = &release{to: recycled, data: data}
			ok := yield(b, nil)
			b, data = Batch{}, nil
			return ok
		}
		i := 0
		for ch := range pending {
			var r result
			select {
			case r = <-ch:
			case <-ctx.Done():
				yield(Batch{}, fmt.Errorf("dataset: stream stopped at sample %d of %d: %w", i, len(samples), ctx.Err()))
				return
			}
			s := samples[i]
			i++
			total[s.Label]++
			if r.err != nil {
				skips.Add(s.Path, r.err.Error())
			} else {
				usable[s.Label]++
				if data == nil {
					select {
					case data = <-recycled:
					default:
						data = make([]float32, batchSize*size)
					}
				}
				copy(data[len(b.Labels)*size:], r.pix)
				b.Labels = append(b.Labels, s.Label)
				b.Paths = append(b.Paths, s.Path)
				b.Digests = append(b.Digests, r.digest)
			}
			select {
			case free <- r.pix:
			default:
			}
			if len(b.Labels) == batchSize && !flush() {
				return
			}
		}
		if i < len(samples) { // the producer stopped: ctx was cancelled
			yield(Batch{}, fmt.Errorf("dataset: stream stopped at sample %d of %d: %w", i, len(samples), ctx.Err()))
			return
		}
		if !flush() {
			return
		}
		dead := -1
		for label := range total {
			if usable[label] == 0 && (dead < 0 || label < dead) {
				dead = label
			}
		}
		if dead >= 0 {
			yield(Batch{}, fmt.Errorf("dataset: %s: all %d files skipped: %w", labelName(cfg, dead), total[dead], ErrNoUsableImages))
		}
	}
}

func labelName(cfg Config, label int) string {
	if label >= 0 && label < len(cfg.Classes) {
		return fmt.Sprintf("class %q (label %d)", cfg.Classes[label], label)
	}
	return fmt.Sprintf("label %d", label)
}
