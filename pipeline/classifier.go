package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"gorgonia.org/tensor"

	"gotransfer/checkpoints"
	"gotransfer/configs"
	"gotransfer/dataset"
	"gotransfer/features"
	"gotransfer/model/head"
	"gotransfer/model/onnx"
	"gotransfer/model/pretrained"
	"gotransfer/model/resnet"
)

// Classifier is a trained run put back together from a checkpoint: the
// backbone it was trained on, its preprocessing, and the head. Its methods
// may be called from several goroutines (the backbone's and the head's
// passes take turns); after Close they return an error.
type Classifier struct {
	// Checkpoint is the folder of the checkpoint loaded.
	Checkpoint string
	Classes    []string
	Config     *configs.Config
	// Progress, if set, shows how far Evaluate and PredictFiles are.
	Progress *Progress
	backbone resnet.Backbone
	head     *head.Head
	data     dataset.Config
	cacheKey features.Key
	// cache holds the features Evaluate computes: the run's feature cache,
	// or a temporary one (tmpCache, removed by Close) where the run's is
	// not on this machine; flipCache those of the mirror images (TTA), and
	// tmpFlipCache its temporary folder.
	cache, flipCache       *features.Cache
	tmpCache, tmpFlipCache string
	cacheMu                sync.Mutex // the caches are opened on first use
	tta                    bool       // see ClassifierOptions.TTA
	// Calls in flight (begin, end), which Close waits for; after Close
	// begin refuses.
	lifeMu sync.Mutex
	closed bool
	calls  sync.WaitGroup
}

// begin counts a call that uses the backbone or the caches, unless the
// classifier is closed; end (deferred) ends it.
func (c *Classifier) begin() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.closed {
		return errClosed
	}
	c.calls.Add(1)
	return nil
}

func (c *Classifier) end() { c.calls.Done() }

// errClosed is what a Classifier's methods return after Close.
var errClosed = errors.New("pipeline: the classifier is closed")

// ClassifierOptions are LoadClassifier's settings; the zero value takes
// everything from the checkpoint.
type ClassifierOptions struct {
	// Device is where the backbone runs; "" keeps the run's.
	Device string
	// TTA averages each image's probabilities with its mirror image's
	// (test-time augmentation with a horizontal flip), in every prediction
	// and evaluation, at twice the backbone's work.
	TTA bool
	// Weights is the backbone weights file, for a run moved to another
	// machine, or published weights by name (model/pretrained), found or
	// fetched for the run's variant; "" means the file training read, else
	// a file of the same name in the checkpoint's parent or grandparent
	// folder (the run folder), where a run copied with its weights finds
	// them: the first of them that holds the weights trained with (by their
	// sha256); else, for a run that named published weights, those, found
	// or fetched again.
	Weights string
}

// LoadClassifier rebuilds the classifier a checkpoint was trained as.
// path is a checkpoint folder, or a run (or its checkpoints/) folder, whose
// best checkpoint, else its last, is used (checkpoints.Find). The backbone
// weights must be the very ones used in training (checked by their
// sha256). Only the head's parameters are read from the checkpoint, not
// the optimizer's state.
func LoadClassifier(path string, opts ClassifierOptions) (*Classifier, error) {
	checkpointDir, ck, info, w, err := loadRun(path, opts)
	if err != nil {
		return nil, err
	}
	device := opts.Device
	if device == "" {
		device = info.Config.Backbone.Device
	}
	bb, err := resnet.New(w, device)
	if err != nil {
		return nil, err
	}
	h, err := runHead(ck, info, bb.FeatureDim())
	if err != nil {
		bb.Close()
		return nil, err
	}
	// How the run read images, not how it split them: a classifier reads
	// the folders it is given whole.
	data := DataConfig(info.Config)
	data.ValidationSplit, data.ValidationRoot = 0, ""
	return &Classifier{Checkpoint: checkpointDir, Classes: ck.Manifest.Classes, Config: info.Config, backbone: bb, head: h, data: data, tta: opts.TTA,
		cacheKey: CacheKey(info.Config, w)}, nil
}

// loadRun reads what a classifier is made of: the checkpoint's head
// parameters and run description (readRun), and the backbone weights
// trained with.
func loadRun(path string, opts ClassifierOptions) (checkpointDir string, ck *checkpoints.Checkpoint, info RunInfo, w *resnet.Weights, err error) {
	if checkpointDir, ck, info, err = readRun(path); err != nil {
		return
	}
	candidates := []string{opts.Weights}
	if pretrained.IsName(opts.Weights) {
		// Published weights by name: the file the run's variant trains on.
		var p string
		if p, err = pretrained.Path(context.Background(), opts.Weights, info.Config.Backbone.Variant, false); err != nil {
			return
		}
		candidates = []string{p}
	}
	if opts.Weights == "" {
		up := filepath.Dir(checkpointDir)
		candidates = []string{info.Weights, filepath.Join(up, filepath.Base(info.Weights)), filepath.Join(filepath.Dir(up), filepath.Base(info.Weights))}
		// Where the run's newest checkpoint read them: a resume may have
		// found them moved since this one was written.
		if last, err := checkpoints.LoadTensors(filepath.Join(up, checkpoints.LastLink), func(string) bool { return false }); err == nil {
			var lastInfo RunInfo
			if json.Unmarshal(last.Manifest.Run, &lastInfo) == nil && lastInfo.WeightsSHA256 == info.WeightsSHA256 && lastInfo.Weights != "" {
				candidates = append(candidates, lastInfo.Weights)
			}
		}
	}
	w, err = trainedWeights(candidates, info.WeightsSHA256)
	if name := info.Config.Backbone.Weights; errors.Is(err, ErrWeightsNotFound) && opts.Weights == "" && pretrained.IsName(name) {
		// Published weights: fetch them again, as training did. (No
		// context reaches here; a second Ctrl-C ends predict.)
		var p string
		if p, err = pretrained.Path(context.Background(), name, info.Config.Backbone.Variant, false); err == nil {
			w, err = trainedWeights([]string{p}, info.WeightsSHA256)
		}
	}
	if err != nil {
		err = fmt.Errorf("checkpoint %s: %w", checkpointDir, err)
	}
	return
}

// readRun reads the checkpoint at path (see LoadClassifier): its head
// parameters and its run's description.
func readRun(path string) (checkpointDir string, ck *checkpoints.Checkpoint, info RunInfo, err error) {
	if checkpointDir, err = checkpoints.Find(path); err != nil {
		return
	}
	if checkpointDir != path {
		slog.Info("using checkpoint", "dir", checkpointDir)
	}
	if ck, err = checkpoints.LoadTensors(checkpointDir, head.IsParamName); err != nil {
		return
	}
	if jerr := json.Unmarshal(ck.Manifest.Run, &info); jerr != nil || info.Config == nil {
		err = fmt.Errorf("checkpoint %s: no usable run description (%v): was it written by train?", checkpointDir, jerr)
	}
	return
}

// runHead rebuilds the run's head from the checkpoint ck, for features of
// dim values, checking every parameter's presence and shape;
// label-smoothed as the run was, so that its loss is the run's val_loss.
func runHead(ck *checkpoints.Checkpoint, info RunInfo, dim int) (*head.Head, error) {
	h, err := NewHead(info.Config, dim, len(ck.Manifest.Classes))
	if err != nil {
		return nil, err
	}
	var params []head.Param
	for _, p := range h.Params() {
		v, ok := ck.Tensor(p.Name)
		if !ok {
			return nil, fmt.Errorf("checkpoint %s: tensor %q missing", ck.Dir, p.Name)
		}
		params = append(params, head.Param{Name: p.Name, Value: v})
	}
	if err := h.SetParams(params); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", ck.Dir, err)
	}
	return h, nil
}

// ExportONNX writes the classifier a checkpoint was trained as (path as
// for LoadClassifier) to out as an ONNX model (model/onnx): resized RGB
// pixels in, the run's preprocessing, backbone and head, probabilities
// and features out.
func ExportONNX(path string, opts ClassifierOptions, out string) error {
	_, ck, info, w, err := loadRun(path, opts)
	if err != nil {
		return err
	}
	h, err := runHead(ck, info, w.Arch.FeatureDim())
	if err != nil {
		return err
	}
	var layers []onnx.Dense
	params := h.Params() // kernel, bias of each layer in turn
	for i := 0; i+1 < len(params); i += 2 {
		layers = append(layers, onnx.Dense{Kernel: params[i].Value, Bias: params[i+1].Value})
	}
	d := DataConfig(info.Config)
	if d.FastJPEG {
		slog.Warn("the run decoded large JPEGs at a reduced scale (data.fast_jpeg); the ONNX model resizes the pixels it is given: give it JPEGs decoded the same way, or expect slightly other probabilities")
	}
	perm, mul, add, err := dataset.Affine(d.Preprocess)
	if err != nil {
		return err
	}
	return onnx.WriteFile(out, onnx.Model{Backbone: w, Preprocess: onnx.Preprocess{Perm: perm, Mul: mul, Add: add},
		Height: d.Height, Width: d.Width, CropToAspectRatio: d.CropToAspectRatio, Head: layers, Classes: ck.Manifest.Classes})
}

// ErrWeightsNotFound is LoadClassifier's error when no file holds the
// backbone weights a run was trained with: the run was moved without them,
// or they were moved.
var ErrWeightsNotFound = errors.New("backbone weights not found")

// trainedWeights loads the first of the files at paths that holds the
// weights of the given digest (files that do not exist are passed over).
// The error says why each existing file would not do, or wraps
// ErrWeightsNotFound when none exists.
func trainedWeights(paths []string, digest string) (*resnet.Weights, error) {
	var problems []error
	tried := map[string]bool{}
	for i, p := range paths {
		if tried[filepath.Clean(p)] {
			continue
		}
		tried[filepath.Clean(p)] = true
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) && len(paths) > 1 {
			continue // only a candidate
		}
		w, err := resnet.Load(p)
		switch {
		case err != nil:
			problems = append(problems, err)
		case w.Digest() != digest:
			problems = append(problems, fmt.Errorf("backbone weights %s are not those it was trained with (sha256 %.12s, trained with %.12s)", p, w.Digest(), digest))
		default:
			if i > 0 {
				slog.Info("backbone weights not where this checkpoint's training read them: using the same weights found elsewhere", "trained_with", paths[0], "using", p)
			}
			return w, nil
		}
	}
	if len(problems) == 0 {
		return nil, fmt.Errorf("%w: %s (sha256 %.12s), nor a file of its name beside the checkpoint", ErrWeightsNotFound, paths[0], digest)
	}
	return nil, errors.Join(problems...)
}

// featureCache opens the run's feature cache if its folder exists here (so
// that evaluating the run's own images, or another checkpoint of the run on
// the same folder, costs no backbone pass), else a temporary one.
func (c *Classifier) featureCache() (*features.Cache, error) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	if c.cache == nil {
		cache, err := c.openCache(c.cacheKey, "the run's", &c.tmpCache)
		if err != nil {
			return nil, err
		}
		c.cache = cache
	}
	return c.cache, nil
}

// openCache opens the cache of key in the run's feature-cache folder if it
// is on this machine and usable (what names it in the warning when not),
// else in a temporary folder, which it records in *tmp for Close to remove.
func (c *Classifier) openCache(key features.Key, what string, tmp *string) (*features.Cache, error) {
	dim := c.backbone.FeatureDim()
	if fi, err := os.Stat(c.Config.Cache.Dir); err == nil && fi.IsDir() {
		cache, err := features.Open(c.Config.Cache.Dir, key, dim)
		if err == nil {
			return cache, nil
		}
		slog.Warn(what+" feature cache is unusable: features are computed again", "err", err)
	}
	dir, err := os.MkdirTemp("", "gotransfer-features-")
	if err != nil {
		return nil, err
	}
	cache, err := features.Open(dir, key, dim)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	*tmp = dir
	return cache, nil
}

// mirroredFeatureCache opens the cache of the mirror images' features
// (the one flip augmentation trains from) as featureCache opens the plain
// images'.
func (c *Classifier) mirroredFeatureCache() (*features.Cache, error) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	if c.flipCache == nil {
		key := c.cacheKey
		key.Flip = true
		cache, err := c.openCache(key, "the mirror images'", &c.tmpFlipCache)
		if err != nil {
			return nil, err
		}
		c.flipCache = cache
	}
	return c.flipCache, nil
}

// Predict returns the class probabilities of one image file.
func (c *Classifier) Predict(path string) ([]float32, error) {
	pix, _, err := dataset.Load(c.data, path)
	if err != nil {
		return nil, err
	}
	probs, err := c.PredictPixels([][]float32{pix})
	if err != nil {
		return nil, err
	}
	return probs[0], nil
}

// Decode reads an image file's content (an upload, say) as the run reads
// images, for PredictPixels. It is safe for concurrent use.
func (c *Classifier) Decode(data []byte) ([]float32, error) {
	return dataset.Decode(c.data, data)
}

// PredictPixels classifies images as Decode returns them in one backbone
// pass, returning the class probabilities of each.
func (c *Classifier) PredictPixels(images [][]float32) ([][]float32, error) {
	if err := c.begin(); err != nil {
		return nil, err
	}
	defer c.end()
	if len(images) == 0 {
		return nil, nil
	}
	size := c.data.Height * c.data.Width * 3
	x := make([]float32, 0, len(images)*size)
	for i, pix := range images {
		if len(pix) != size {
			return nil, fmt.Errorf("image %d: %d values, want %dx%dx3", i, len(pix), c.data.Height, c.data.Width)
		}
		x = append(x, pix...)
	}
	bb, classify := c.classifier()
	f, err := bb.Features(tensor.New(tensor.WithShape(len(images), c.data.Height, c.data.Width, 3), tensor.WithBacking(x)))
	if err != nil {
		return nil, err
	}
	probs, err := classify(f)
	if err != nil {
		return nil, err
	}
	k := len(c.Classes)
	all := probs.Data().([]float32)
	out := make([][]float32, len(images))
	for i := range out {
		out[i] = all[i*k : (i+1)*k : (i+1)*k]
	}
	return out, nil
}

// evaluateTTA scores split (the plain images' features, from ex) on the
// mean probabilities of each image and its mirror image, whose features it
// extracts (or reads) as ex did the plain ones', into the mirror images'
// cache.
func (c *Classifier) evaluateTTA(ctx context.Context, ex *Extraction, split Split, batch int, each func(row, pred int, probs []float32)) (splitScores, error) {
	cache, err := c.mirroredFeatureCache()
	if err != nil {
		return splitScores{}, err
	}
	mirrored := *ex
	mirrored.Data.HorizontalFlip, mirrored.Cache, mirrored.Skips = true, cache, &dataset.SkipLog{}
	kept, _, flipped, err := mirrored.Features(ctx, split.Samples)
	if err != nil {
		return splitScores{}, fmt.Errorf("mirror images: %w", err)
	}
	if len(kept) != split.Len() { // the same files, read a moment ago
		return splitScores{}, fmt.Errorf("mirror images: %d of the %d images could not be read again", split.Len()-len(kept), split.Len())
	}
	dim, k := c.backbone.FeatureDim(), len(c.Classes)
	a, b := split.X.Float32s(), flipped.Float32s()
	probs := make([]float32, 0, split.Len()*k)
	for lo := 0; lo < split.Len(); lo += batch { // as evaluateSplit, batch by batch
		hi := min(lo+batch, split.Len())
		p, err := c.ttaForward(sideBySide(a[lo*dim:hi*dim], b[lo*dim:hi*dim], hi-lo, dim))
		if err != nil {
			return splitScores{}, err
		}
		probs = append(probs, p.Float32s()...)
	}
	all := tensor.New(tensor.WithShape(split.Len(), k), tensor.WithBacking(probs))
	return scoreProbabilities(all, split.Y, c.Classes, c.head.LabelSmoothing(), each), nil
}

// scoreProbabilities scores probabilities (N, C) against labels as
// evaluateSplit scores a head: the mean cross-entropy (of targets smoothed
// by smoothing, as training's val_loss; probabilities clipped at 1e-7, as
// Keras clips them), the accuracy, the confusion matrix, for two classes
// the ROC AUC and for more than 5 the top-5 accuracy; each, if not nil, is
// called for every row.
func scoreProbabilities(probs *tensor.Dense, labels []int, classes []string, smoothing float64, each func(row, pred int, probs []float32)) splitScores {
	k := len(classes)
	p := probs.Float32s()
	sc := splitScores{Confusion: NewConfusion(classes)}
	var loss float64
	correct := 0
	var p1 []float32
	var top []Scored
	for i, y := range labels {
		row := p[i*k : (i+1)*k : (i+1)*k]
		pred := head.Argmax(row)
		for j, v := range row {
			t := smoothing / float64(k)
			if j == y {
				t += 1 - smoothing
			}
			if t != 0 {
				loss -= t * math.Log(max(float64(v), 1e-7))
			}
		}
		if pred == y {
			correct++
		}
		sc.Confusion.Add(y, pred)
		if k == 2 {
			p1 = append(p1, row[1])
		}
		if k > 5 {
			top = append(top, Scored{True: y, Probabilities: row})
		}
		if each != nil {
			each(i, pred, row)
		}
	}
	sc.Loss, sc.Accuracy = loss/float64(len(labels)), float64(correct)/float64(len(labels))
	if k == 2 {
		sc.AUC, sc.HasAUC = rocAUC(p1, labels)
	}
	if k > 5 {
		sc.Top5, sc.HasTop5 = topKAccuracy(top, 5), true
	}
	return sc
}

// classifier returns the backbone and the features-to-probabilities step
// of a prediction: the plain ones, or with TTA those that see each image
// and its mirror image and average their probabilities.
func (c *Classifier) classifier() (resnet.Backbone, func(*tensor.Dense) (*tensor.Dense, error)) {
	if !c.tta {
		return c.backbone, c.head.Forward
	}
	return ttaBackbone{c.backbone}, c.ttaForward
}

// ttaBackbone computes each image's features and its mirror image's, and
// returns them side by side: (N, 2F), a row per image, as ClassifyFiles
// wants.
type ttaBackbone struct{ resnet.Backbone }

func (b ttaBackbone) Features(x *tensor.Dense) (*tensor.Dense, error) {
	s := x.Shape()
	n, h, w := s[0], s[1], s[2]
	size := h * w * 3
	f, err := b.Backbone.Features(x)
	if err != nil {
		return nil, err
	}
	// A second pass of n, not one of 2n: a batch size chosen to fit the
	// device's memory still fits.
	mirrored := append([]float32(nil), x.Float32s()...)
	for i := range n {
		dataset.Mirror(mirrored[i*size:(i+1)*size], h, w)
	}
	fm, err := b.Backbone.Features(tensor.New(tensor.WithShape(n, h, w, 3), tensor.WithBacking(mirrored)))
	if err != nil {
		return nil, err
	}
	return sideBySide(f.Float32s(), fm.Float32s(), n, b.FeatureDim()), nil
}

// sideBySide puts the rows of a and b (n x dim each) side by side: (n, 2dim).
func sideBySide(a, b []float32, n, dim int) *tensor.Dense {
	out := make([]float32, 2*n*dim)
	for i := range n {
		copy(out[2*i*dim:], a[i*dim:(i+1)*dim])
		copy(out[(2*i+1)*dim:], b[i*dim:(i+1)*dim])
	}
	return tensor.New(tensor.WithShape(n, 2*dim), tensor.WithBacking(out))
}

// ttaForward maps side-by-side features (N, 2F) of the images and their
// mirror images to the mean of the two probabilities (N, C).
func (c *Classifier) ttaForward(f *tensor.Dense) (*tensor.Dense, error) {
	n, dim := f.Shape()[0], f.Shape()[1]/2
	rows := f.Float32s()
	stacked := make([]float32, 2*n*dim) // the images, then their mirror images
	for i := range n {
		copy(stacked[i*dim:], rows[2*i*dim:(2*i+1)*dim])
		copy(stacked[(n+i)*dim:], rows[(2*i+1)*dim:(2*i+2)*dim])
	}
	probs, err := c.head.Forward(tensor.New(tensor.WithShape(2*n, dim), tensor.WithBacking(stacked)))
	if err != nil {
		return nil, err
	}
	k := probs.Shape()[1]
	p := probs.Float32s()
	mean := make([]float32, n*k)
	for i := range mean {
		mean[i] = (p[i] + p[n*k+i]) / 2
	}
	return tensor.New(tensor.WithShape(n, k), tensor.WithBacking(mean)), nil
}

// ImageSize returns the height and width images are resized to.
func (c *Classifier) ImageSize() (height, width int) { return c.data.Height, c.data.Width }

// TTA says whether predictions average each image with its mirror image
// (ClassifierOptions.TTA).
func (c *Classifier) TTA() bool { return c.tta }

// PredictFolder classifies every image under root (recursively, hidden
// files and folders left out) as PredictFiles does, in path order.
func (c *Classifier) PredictFolder(ctx context.Context, root string, batch int, fn func(path string, probs []float32, err error) error) error {
	files, err := dataset.ImageFiles(root)
	if err != nil {
		return err
	}
	for i, f := range files {
		files[i] = filepath.Join(root, filepath.FromSlash(f))
	}
	return c.PredictFiles(ctx, files, batch, fn)
}

// PredictFiles classifies the image files at paths in batches, decoding
// ahead of the backbone, and calls fn for each in their order: with its
// probabilities, or with the reason it could not be used.
//
// Images whose features the run's feature cache holds (its own training
// and validation images, a folder evaluated before), where that cache is on
// this machine, take them from it rather than from the backbone: a batch
// all of whose images are cached costs only its decoding. (Not with TTA,
// whose mirror images the cache may not hold.)
func (c *Classifier) PredictFiles(ctx context.Context, paths []string, batch int, fn func(path string, probs []float32, err error) error) error {
	if err := c.begin(); err != nil {
		return err
	}
	defer c.end()
	bb, classify := c.classifier()
	var cache *features.Cache
	if c.Config != nil && !c.tta {
		// Read only: no cache folder made, none written to; none there (or
		// an unreadable one): the backbone computes them all.
		if r, err := features.OpenReadOnly(c.Config.Cache.Dir, c.cacheKey, c.backbone.FeatureDim()); err == nil {
			cache = r
		}
	}
	return classifyFiles(ctx, c.data, bb, cache, classify, paths, batch, c.Progress, fn)
}

// ClassifyFiles runs the images at paths through the backbone and then
// classify (features to probabilities, one row per image) in batches,
// decoding ahead of the backbone with data's workers and preprocessing,
// and calls fn for each image in the order of paths: with its row of
// probabilities, or with the reason it could not be used (an unusable
// image does not stop the others). An error of fn stops it. progress, if
// not nil, shows how many images are done.
func ClassifyFiles(ctx context.Context, data dataset.Config, bb resnet.Backbone, classify func(*tensor.Dense) (*tensor.Dense, error),
	paths []string, batch int, progress *Progress, fn func(path string, probs []float32, err error) error) error {
	return classifyFiles(ctx, data, bb, nil, classify, paths, batch, progress, fn)
}

// batchFeatures returns the features of b's images: those *cache holds
// from it, the others from bb (as a batch of their own). A cache that
// fails to read is warned of and set to nil, for the backbone to compute
// what it held.
func batchFeatures(bb resnet.Backbone, cache **features.Cache, b dataset.Batch) (*tensor.Dense, error) {
	var cached, missing []int
	if *cache != nil {
		for i, d := range b.Digests {
			if (*cache).Has(d) {
				cached = append(cached, i)
			} else {
				missing = append(missing, i)
			}
		}
	}
	if len(cached) == 0 {
		return bb.Features(b.Images)
	}
	digests := make([][32]byte, len(cached))
	for j, i := range cached {
		digests[j] = b.Digests[i]
	}
	fc, err := (*cache).Get(digests)
	if err != nil {
		slog.Warn("the run's feature cache is unreadable: the backbone computes the features it holds", "err", err)
		*cache = nil
		return bb.Features(b.Images)
	}
	if len(missing) == 0 {
		return fc, nil
	}
	s := b.Images.Shape()
	size, px := s[1]*s[2]*s[3], b.Images.Float32s()
	sub := make([]float32, 0, len(missing)*size)
	for _, i := range missing {
		sub = append(sub, px[i*size:(i+1)*size]...)
	}
	fm, err := bb.Features(tensor.New(tensor.WithShape(len(missing), s[1], s[2], s[3]), tensor.WithBacking(sub)))
	if err != nil {
		return nil, err
	}
	dim := fc.Shape()[1]
	out := make([]float32, len(b.Digests)*dim)
	for j, i := range cached {
		copy(out[i*dim:(i+1)*dim], fc.Float32s()[j*dim:])
	}
	for j, i := range missing {
		copy(out[i*dim:(i+1)*dim], fm.Float32s()[j*dim:])
	}
	return tensor.New(tensor.WithShape(len(b.Digests), dim), tensor.WithBacking(out)), nil
}

// classifyFiles is ClassifyFiles taking a batch's features from cache,
// when not nil and holding all of them, instead of bb.
func classifyFiles(ctx context.Context, data dataset.Config, bb resnet.Backbone, cache *features.Cache, classify func(*tensor.Dense) (*tensor.Dense, error),
	paths []string, batch int, progress *Progress, fn func(path string, probs []float32, err error) error) error {
	if progress != nil {
		defer progress.Clear()
	}
	start, streamed := time.Now(), 0
	samples := make([]dataset.Sample, len(paths))
	for i, p := range paths {
		samples[i] = dataset.Sample{Path: filepath.ToSlash(p)}
	}
	data.Root = "" // the paths are the files'
	skips := &dataset.SkipLog{}
	next := 0 // samples before next have been reported
	// flushSkipped reports the samples before the one at path (all, for
	// ""): those not yet reported were skipped, with their reasons.
	flushSkipped := func(until string) error {
		if next == len(samples) || samples[next].Path == until {
			return nil // the usual case: nothing skipped in between
		}
		why := map[string]string{}
		for _, s := range skips.Entries() {
			why[s.Path] = s.Reason
		}
		for ; next < len(samples) && samples[next].Path != until; next++ {
			if err := fn(paths[next], nil, errors.New(why[samples[next].Path])); err != nil {
				return err
			}
		}
		return nil
	}
	for b, err := range dataset.Stream(ctx, data, samples, batch, skips) {
		if err != nil {
			if errors.Is(err, dataset.ErrNoUsableImages) {
				break // every image was unusable: each is reported below
			}
			return err
		}
		f, err := batchFeatures(bb, &cache, b)
		b.Release()
		if err != nil {
			return err
		}
		probs, err := classify(f)
		if err != nil {
			return err
		}
		k := probs.Shape()[1]
		if progress != nil { // every sample so far was streamed or skipped
			streamed += len(b.Paths)
			done := streamed + skips.Len()
			progress.Bar("images", done, len(paths), fmt.Sprintf("%.1f images/s", float64(done)/time.Since(start).Seconds()))
		}
		for i, p := range b.Paths {
			if err := flushSkipped(p); err != nil {
				return err
			}
			if err := fn(paths[next], probs.Float32s()[i*k:(i+1)*k], nil); err != nil {
				return err
			}
			next++
		}
	}
	return flushSkipped("")
}

// WriteMistakes draws the 16 most confident of ev's mistakes into
// dir/mistakes.png (MistakesFile), the pictures with their true and
// predicted classes; without mistakes it writes nothing. It reports
// whether it wrote.
func (c *Classifier) WriteMistakes(dir string, ev *Evaluation) (bool, error) {
	data := c.data
	data.Root = ev.Root
	return writeMistakes(dir, data, c.Classes, ev.Mistakes, "test images")
}

// Evaluation is how a classifier did on a labelled folder.
type Evaluation struct {
	Root     string  // the folder evaluated
	Images   int     // images classified
	Unusable int     // images skipped (unreadable, too large, ...)
	Loss     float64 // mean categorical cross-entropy, as the training's val_loss (label-smoothed as it was)
	Accuracy float64
	// AUC is the ROC AUC of class 1's probability, for two classes both
	// present (nil otherwise), as the training's val_auc.
	AUC *float64
	// Top5Accuracy is the share of images whose class is among the 5 most
	// probable (Keras' top_k_categorical_accuracy), for more than 5
	// classes (nil otherwise).
	Top5Accuracy *float64
	// Confusion counts the predictions, rows the true classes.
	Confusion *Confusion
	// Ignored lists the sub-folders of the folder that are not among the
	// classifier's classes: their images were not classified.
	Ignored []string
	// Missing lists the classifier's classes that have no folder there:
	// scored with no images (a long-tailed test set lacks rare ones).
	Missing []string
	// Mistakes lists the misclassified images, the most confident first:
	// where to look for mislabelled files, or for what the model gets wrong.
	Mistakes []Mistake
	// Scored holds every image classified, class by class in label order,
	// then in the order of their paths.
	Scored []Scored
}

// Scored is one classified image of an Evaluation.
type Scored struct {
	Path          string // relative to the evaluated folder
	True, Pred    int    // class indices
	Probabilities []float32
}

// Mistake is one misclassified image of an Evaluation.
type Mistake struct {
	Path        string // relative to the evaluated folder
	True, Pred  int    // class indices
	Probability float32
}

// Evaluate classifies every image of a labelled folder laid out as for
// training (one sub-folder per class, named as the classifier's classes;
// a class without one is listed in Evaluation.Missing and scored with no
// images, a folder without an image is an error, and so is a folder with
// none of the classes) and scores the predictions against the folders'
// labels: what Keras' model.evaluate gives (and, for more than 5 classes,
// the top-5 accuracy), plus the confusion matrix and the mistakes.
// Features go through the run's feature cache when it is on this machine,
// so the run's own images, and a folder evaluated before with any
// checkpoint of the run, cost no backbone pass (the cache gains the new
// images' features). Unusable images are counted and skipped, as in
// training.
func (c *Classifier) Evaluate(ctx context.Context, root string, batch int) (*Evaluation, error) {
	if err := c.begin(); err != nil {
		return nil, err
	}
	defer c.end()
	if c.Config == nil {
		return nil, fmt.Errorf("evaluate %s: a classifier of pretrained weights alone has no run to evaluate", root)
	}
	ev := &Evaluation{Root: root, Confusion: NewConfusion(c.Classes)}
	folders, err := dataset.ClassFolders(root, c.data.FollowSymlinks)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", root, err)
	}
	for _, f := range folders {
		if !slices.Contains(c.Classes, f) {
			ev.Ignored = append(ev.Ignored, f)
		}
	}
	// The classes that have a folder are scanned; label holds their
	// indices among the classifier's.
	cfg := c.data
	cfg.Root, cfg.MinClasses = root, 1
	var label []int
	for i, class := range c.Classes {
		if slices.Contains(folders, class) {
			cfg.Classes, label = append(cfg.Classes, class), append(label, i)
		} else {
			ev.Missing = append(ev.Missing, class)
		}
	}
	if len(cfg.Classes) == 0 {
		return nil, fmt.Errorf("evaluate %s: no folder of the run's classes %q: the folder holds one sub-folder of images per class", root, c.Classes)
	}
	idx, err := dataset.Scan(cfg)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", root, err)
	}
	samples := append(idx.Train, idx.Validation...)
	for i := range samples {
		samples[i].Label = label[samples[i].Label]
	}
	skips := &dataset.SkipLog{}
	cache, err := c.featureCache()
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", root, err)
	}
	ex := &Extraction{Data: cfg, Backbone: c.backbone, Cache: cache, Batch: batch, Shard: c.Config.Cache.ShardSize, Skips: skips}
	if c.Progress != nil {
		start := time.Now()
		ex.Progress = func(done, total int) {
			c.Progress.Bar("features", done, total, fmt.Sprintf("%.1f images/s", float64(done)/time.Since(start).Seconds()))
		}
		defer c.Progress.Clear()
	}
	kept, _, feats, err := ex.Features(ctx, samples)
	ev.Unusable = len(skips.Entries())
	if errors.Is(err, dataset.ErrNoUsableImages) {
		return ev, fmt.Errorf("evaluate %s: none of its %d images could be used", root, len(samples))
	}
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", root, err)
	}
	split := Split{X: feats, Samples: kept}
	for _, s := range kept {
		split.Y = append(split.Y, s.Label)
	}
	ev.Images = split.Len()
	record := func(row, pred int, probs []float32) {
		s := kept[row]
		ev.Scored = append(ev.Scored, Scored{Path: s.Path, True: s.Label, Pred: pred, Probabilities: probs})
		if pred != s.Label {
			ev.Mistakes = append(ev.Mistakes, Mistake{Path: s.Path, True: s.Label, Pred: pred, Probability: probs[pred]})
		}
	}
	var sc splitScores
	if c.tta {
		sc, err = c.evaluateTTA(ctx, ex, split, batch, record)
	} else {
		sc, err = evaluateSplit(c.head, split, c.Classes, batch, record)
	}
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", root, err)
	}
	ev.Loss, ev.Accuracy, ev.Confusion = sc.Loss, sc.Accuracy, sc.Confusion
	if sc.HasAUC {
		ev.AUC = &sc.AUC
	}
	if sc.HasTop5 {
		ev.Top5Accuracy = &sc.Top5
	}
	sortMistakes(ev.Mistakes)
	return ev, nil
}

// topKAccuracy is the share of the images whose class has fewer than k
// more probable classes (ties count for it, as TensorFlow's in_top_k).
func topKAccuracy(scored []Scored, k int) float64 {
	if len(scored) == 0 {
		return 0
	}
	hits := 0
	for _, s := range scored {
		above := 0
		for _, p := range s.Probabilities {
			if p > s.Probabilities[s.True] {
				above++
			}
		}
		if above < k {
			hits++
		}
	}
	return float64(hits) / float64(len(scored))
}

// Close waits for the calls in progress, then releases the backbone and
// removes a temporary feature cache; calls after it return an error.
func (c *Classifier) Close() error {
	c.lifeMu.Lock()
	was := c.closed
	c.closed = true
	c.lifeMu.Unlock()
	if was {
		return nil
	}
	c.calls.Wait() // the calls in flight end first
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	for _, tmp := range []string{c.tmpCache, c.tmpFlipCache} {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}
	return c.backbone.Close()
}
