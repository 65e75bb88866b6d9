package configs

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gotransfer/model/pretrained"
)

// Config is a training run's configuration. Load returns it with defaults
// applied, values checked and relative paths resolved against the folder of
// the configuration file.
type Config struct {
	Data     Data     `yaml:"data"`
	Backbone Backbone `yaml:"backbone"`
	Head     Head     `yaml:"head"`
	Train    Train    `yaml:"train" resume:"no"`
	Run      Run      `yaml:"run" resume:"no"`
	Cache    Cache    `yaml:"cache" resume:"no"`

	// File is the configuration file the Config was loaded from ("" if none).
	File string `yaml:"-"`
}

// Data says where the images are and how to read them.
type Data struct {
	// Dir holds one sub-folder of images per class. Required.
	Dir string `yaml:"dir" path:"yes"`
	// Classes lists the class folders to use, in label order; empty means
	// all sub-folders of Dir, sorted.
	Classes []string `yaml:"classes"`
	// ImageSize is [height, width] of the images fed to the backbone.
	ImageSize []int `yaml:"image_size"`
	// ValidationSplit is the fraction of the images held out, in [0, 1).
	ValidationSplit float64 `yaml:"validation_split"`
	// ValidationDir, if set, holds the validation images in the layout of
	// Dir (train/ and validation/ folders); then every image of Dir trains
	// and ValidationSplit is 0 (Load sets it when the YAML does not).
	ValidationDir string `yaml:"validation_dir" path:"yes" hash:"omitzero"`
	// Seed fixes the validation split and the order of every epoch.
	Seed int64 `yaml:"seed"`
	// Workers decode images in parallel; 0 means one per CPU.
	Workers int `yaml:"workers" resume:"no"`
	// MaxPixels skips images with more pixels, after reading only their
	// header (decompression bombs).
	MaxPixels int `yaml:"max_pixels"`
	// FollowSymlinks follows symbolic links to files and folders in Dir.
	FollowSymlinks bool `yaml:"follow_symlinks"`
	// EXIFOrientation rotates JPEGs as their EXIF orientation says.
	EXIFOrientation bool `yaml:"exif_orientation"`
	// CropToAspectRatio center-crops to ImageSize's aspect ratio before
	// resizing instead of stretching (Keras' crop_to_aspect_ratio).
	CropToAspectRatio bool `yaml:"crop_to_aspect_ratio"`
	// FastJPEG decodes large JPEGs at 1/2, 1/4 or 1/8 scale in the DCT
	// domain, the smallest that keeps ImageSize (dataset.Config.FastJPEG):
	// phone photos read about twice as fast, not Keras' pixels. The random crops of
	// CropAugmentation are decoded in full.
	FastJPEG bool `yaml:"fast_jpeg" hash:"omitzero"`
	// Preprocess is "caffe" (BGR, ImageNet means subtracted), "torch" (RGB
	// scaled to [0,1] and standardized) or "none" (RGB in 0..255); empty
	// means the backbone variant's own: caffe for keras, torch for
	// torchvision.
	Preprocess string `yaml:"preprocess"`
	// FlipAugmentation trains on each image or its mirror image (left to
	// right), picked at random for every example and epoch, as Keras'
	// RandomFlip("horizontal"). Both images' features are extracted once
	// and cached, so the first extraction takes twice as long and the
	// epochs no longer.
	FlipAugmentation bool `yaml:"flip_augmentation" hash:"omitzero"`
	// CropAugmentation trains on random crops of each image too.
	CropAugmentation CropAugmentation `yaml:"crop_augmentation" hash:"omitzero"`
}

// CropAugmentation is PyTorch's RandomResizedCrop, computed once: Copies
// crops of every training image, each covering a fraction of its area drawn
// uniformly from Scale, with an aspect ratio (width/height) drawn
// log-uniformly from Ratio, at a random place, resized to image_size. Each
// epoch trains every example on the image, its mirror image (with
// FlipAugmentation) or one of the crops, picked at random; each crop's
// features are extracted once and cached. Copies 0 turns it off.
type CropAugmentation struct {
	Copies int       `yaml:"copies"`
	Scale  []float64 `yaml:"scale"`
	Ratio  []float64 `yaml:"ratio"`
}

// IsZero reports whether crop augmentation is off, whatever its Scale and
// Ratio: the configuration hash leaves it out then (hash:"omitzero").
func (a CropAugmentation) IsZero() bool { return a.Copies == 0 }

// Backbone is the frozen ResNet50 feature extractor.
type Backbone struct {
	// Weights is the weights file, or the name of published weights
	// ("imagenet"; torchvision's "IMAGENET1K_V1", "IMAGENET1K_V2"), fetched
	// once (model/pretrained); empty means deterministic random weights of
	// a narrow network (RandomWidth), for smoke runs.
	Weights string `yaml:"weights" path:"yes"`
	// RandomWidth is the base width of the random network (64 is ResNet50's).
	RandomWidth int `yaml:"random_width"`
	// Variant is the weights' layout: "keras" or "torchvision".
	Variant string `yaml:"variant"`
	// Device runs the backbone: "cpu" or "cuda".
	Device string `yaml:"device" resume:"no"`
	// Batch is the number of images per backbone forward pass.
	Batch int `yaml:"batch" resume:"no"`
}

// Head is the trained classifier on top of the features.
type Head struct {
	// Layers are the widths of the hidden dense layers.
	Layers []int `yaml:"layers"`
	// Activation of the hidden layers; only "relu".
	Activation string `yaml:"activation"`
	// Dropout is the rate of the dropout after each hidden layer in
	// training, as Keras' Dropout(rate) after each hidden Dense, in [0, 1);
	// 0 turns it off.
	Dropout float64 `yaml:"dropout" hash:"omitzero"`
}

// Train holds the optimization settings.
type Train struct {
	Epochs int `yaml:"epochs"`
	Batch  int `yaml:"batch"`
	// Optimizer trains the head: "adam" (the default, with Adam's
	// settings) or "sgd" (with SGD's). The learning-rate schedule,
	// reduce_lr_on_plateau and the checkpoints' learning rate act on its
	// rate. It cannot change when a run resumes.
	Optimizer     string        `yaml:"optimizer"`
	Adam          Adam          `yaml:"adam"`
	SGD           SGD           `yaml:"sgd"`
	EarlyStopping EarlyStopping `yaml:"early_stopping"`
	ReduceLR      ReduceLR      `yaml:"reduce_lr_on_plateau"`
	LRSchedule    LRSchedule    `yaml:"lr_schedule"`
	ClassWeight   ClassWeight   `yaml:"class_weight"`
	// LabelSmoothing ε replaces the one-hot targets y by y·(1−ε) + ε/K
	// (K classes), as Keras' CategoricalCrossentropy(label_smoothing) and
	// PyTorch's CrossEntropyLoss(label_smoothing); in [0, 1), 0 turns it
	// off. As in Keras, val_loss is the smoothed loss too, which is why it
	// cannot change on resume (the best val_loss and the callbacks would
	// compare two different losses).
	LabelSmoothing float64 `yaml:"label_smoothing" hash:"omitzero" resume:"yes"`
}

// LR returns the configured learning rate of the optimizer in use, and the
// setting that holds it ("train.adam.lr" or "train.sgd.lr").
func (t Train) LR() (lr float64, path string) {
	if t.Optimizer == "sgd" {
		return t.SGD.LR, "train.sgd.lr"
	}
	return t.Adam.LR, "train.adam.lr"
}

// ReduceLR multiplies the learning rate by Factor, down to MinLR, whenever
// the validation loss has not improved by more than MinDelta for Patience
// epochs (Keras' ReduceLROnPlateau callback); Patience 0 turns it off.
type ReduceLR struct {
	Patience int     `yaml:"patience"`
	Factor   float64 `yaml:"factor"`
	MinDelta float64 `yaml:"min_delta"`
	MinLR    float64 `yaml:"min_lr"`
}

// LRSchedule sets the learning rate of each epoch from the optimizer's
// (train.adam.lr or train.sgd.lr), as PyTorch's epoch schedulers and Keras'
// LearningRateScheduler do: Kind "constant" (the default), "step"
// (PyTorch's StepLR: times Gamma every StepEpochs epochs) or "cosine"
// (PyTorch's CosineAnnealingLR over the run's epochs, down towards MinLR),
// after WarmupEpochs epochs of linear warm-up.
type LRSchedule struct {
	Kind         string  `yaml:"kind"`
	StepEpochs   int     `yaml:"step_epochs"`
	Gamma        float64 `yaml:"gamma"`
	MinLR        float64 `yaml:"min_lr"`
	WarmupEpochs int     `yaml:"warmup_epochs"`
}

// Rate is the learning rate of epoch (0-based) of a run of epochs epochs
// starting from base. Warm-up epoch e trains at base·(e+1)/(WarmupEpochs+1);
// the schedule then runs over the remaining epochs.
func (s LRSchedule) Rate(base float64, epoch, epochs int) float64 {
	if epoch < s.WarmupEpochs {
		return base * float64(epoch+1) / float64(s.WarmupEpochs+1)
	}
	e, n := epoch-s.WarmupEpochs, epochs-s.WarmupEpochs
	switch s.Kind {
	case "step":
		return base * math.Pow(s.Gamma, float64(e/s.StepEpochs))
	case "cosine":
		return s.MinLR + (base-s.MinLR)*(1+math.Cos(math.Pi*float64(e)/float64(max(n, 1))))/2
	}
	return base
}

// Active reports whether the schedule changes the rate at all.
func (s LRSchedule) Active() bool { return s.Kind != "constant" || s.WarmupEpochs > 0 }

// ClassWeight weighs each class's examples in the training loss, as Keras'
// class_weight does. In YAML it is "none" (the default), "balanced" (class
// k weighs n / (classes · n_k) over the n training examples, n_k of them of
// class k: scikit-learn's compute_class_weight), or a list of one positive
// weight per class, in label order.
type ClassWeight struct {
	Balanced bool      // "balanced"
	Weights  []float64 // the list; nil with "none" and "balanced"
}

// String returns the YAML form: none, balanced or the list.
func (w ClassWeight) String() string {
	switch {
	case w.Balanced:
		return "balanced"
	case w.Weights != nil:
		return fmt.Sprint(w.Weights)
	}
	return "none"
}

// MarshalYAML writes the YAML form.
func (w ClassWeight) MarshalYAML() (any, error) {
	if w.Weights != nil && !w.Balanced {
		return w.Weights, nil
	}
	return w.String(), nil
}

// For returns the weight of each class given the number of training
// examples of each (needed by "balanced"), or nil for "none".
func (w ClassWeight) For(counts []int) ([]float32, error) {
	switch {
	case w.Balanced:
		n := 0
		for _, c := range counts {
			n += c
		}
		ws := make([]float32, len(counts))
		for k, c := range counts {
			if c == 0 {
				return nil, fmt.Errorf("train.class_weight: balanced: class %d has no training example", k)
			}
			ws[k] = float32(float64(n) / (float64(len(counts)) * float64(c)))
		}
		return ws, nil
	case w.Weights != nil:
		if len(w.Weights) != len(counts) {
			return nil, fmt.Errorf("train.class_weight: %d weights for %d classes", len(w.Weights), len(counts))
		}
		ws := make([]float32, len(w.Weights))
		for k, v := range w.Weights {
			ws[k] = float32(v)
		}
		return ws, nil
	}
	return nil, nil
}

// Adam holds Adam's hyper-parameters (Keras' defaults).
type Adam struct {
	LR      float64 `yaml:"lr"`
	Beta1   float64 `yaml:"beta1"`
	Beta2   float64 `yaml:"beta2"`
	Epsilon float64 `yaml:"epsilon"`
	// WeightDecay is the decoupled weight decay of Keras 3's
	// Adam(weight_decay) and PyTorch's AdamW: before each update every
	// weight w becomes w − lr·weight_decay·w; 0 turns it off.
	WeightDecay float64 `yaml:"weight_decay" hash:"omitzero"`
}

// SGD holds the hyper-parameters of SGD with PyTorch's update rule
// (torch.optim.SGD): the defaults are Keras' (lr 0.01, no momentum);
// PyTorch's transfer-learning tutorial uses lr 0.001 and momentum 0.9.
type SGD struct {
	LR float64 `yaml:"lr"`
	// Momentum μ in [0, 1): each step the buffer b = μ·b + g replaces the
	// gradient g; 0 turns momentum off.
	Momentum float64 `yaml:"momentum" hash:"omitzero"`
	// Nesterov uses g + μ·b instead (it needs momentum > 0).
	Nesterov bool `yaml:"nesterov" hash:"omitzero"`
	// WeightDecay is PyTorch SGD's weight_decay, coupled to the gradient:
	// g + weight_decay·w replaces g before the momentum (an L2 penalty of
	// weight_decay/2·|w|²); 0 turns it off.
	WeightDecay float64 `yaml:"weight_decay" hash:"omitzero"`
}

// EarlyStopping stops training when the validation loss has not improved by
// more than MinDelta for Patience epochs; Patience 0 turns it off.
type EarlyStopping struct {
	Patience int     `yaml:"patience"`
	MinDelta float64 `yaml:"min_delta"`
}

// Run says where a run keeps its state.
type Run struct {
	// Dir holds the run's checkpoints and logs.
	Dir string `yaml:"dir" path:"yes"`
	// CheckpointEvery saves a checkpoint every so many steps; 0 saves only
	// at the end of each epoch.
	CheckpointEvery int `yaml:"checkpoint_every"`
	// Keep is how many of the newest checkpoints to keep (besides the best).
	Keep int `yaml:"keep"`
}

// Cache is the feature cache.
type Cache struct {
	// Dir holds the cached backbone features; empty means feature-cache
	// next to the run folder (<run.dir>/../feature-cache), so runs on the
	// same data and backbone share it.
	Dir string `yaml:"dir" path:"yes"`
	// ShardSize is the number of images per cache file: the most work a
	// killed extraction loses.
	ShardSize int `yaml:"shard_size"`
}

// Default returns the defaults of every setting. Data.Dir has none, and
// Run.Dir's default, runs/<name of the configuration file>, and Cache.Dir's
// are filled in by Load.
func Default() Config {
	return Config{
		Data: Data{
			ImageSize:       []int{224, 224},
			ValidationSplit: 0.2,
			Seed:            1337,
			MaxPixels:       50_000_000,
			EXIFOrientation: true,
			// torchvision's RandomResizedCrop defaults
			CropAugmentation: CropAugmentation{Scale: []float64{0.08, 1}, Ratio: []float64{3.0 / 4, 4.0 / 3}},
		},
		Backbone: Backbone{RandomWidth: 8, Variant: "keras", Device: "cpu", Batch: 16},
		Head:     Head{Layers: []int{1024, 1024, 1024, 512}, Activation: "relu"},
		Train: Train{
			Epochs:     10,
			Batch:      32,
			Optimizer:  "adam",
			Adam:       Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7},
			SGD:        SGD{LR: 0.01},
			ReduceLR:   ReduceLR{Factor: 0.1, MinDelta: 1e-4},
			LRSchedule: LRSchedule{Kind: "constant", StepEpochs: 7, Gamma: 0.1},
		},
		Run:   Run{Keep: 3},
		Cache: Cache{ShardSize: 512},
	}
}

// Preprocessing that each backbone variant was trained with.
var variantPreprocess = map[string]string{"keras": "caffe", "torchvision": "torch"}

// finish fills the defaults that depend on other settings and resolves the
// relative paths against base (the configuration file's folder).
func (c *Config) finish(base string) {
	if c.Data.Preprocess == "" {
		c.Data.Preprocess = variantPreprocess[c.Backbone.Variant]
	}
	if c.Run.Dir == "" {
		name := strings.TrimSuffix(filepath.Base(c.File), filepath.Ext(c.File))
		if name == "" || name == "." {
			name = "run"
		}
		c.Run.Dir = filepath.Join("runs", name)
	}
	for _, s := range c.paths() {
		if s.isPath(*s.value) {
			*s.value = filepath.Join(base, *s.value)
		}
	}
	if c.Cache.Dir == "" {
		c.Cache.Dir = filepath.Join(filepath.Dir(c.Run.Dir), "feature-cache")
	}
}

// pathSetting is a setting that is a path, which a file gives relative to
// its folder.
type pathSetting struct {
	key   string // dotted path, e.g. "data.dir"
	value *string
	// name, if set, tells values that are names rather than paths
	// (backbone.weights: imagenet).
	name func(string) bool
}

// isPath reports whether v is a path to resolve: not empty, not absolute,
// not a name.
func (s pathSetting) isPath(v string) bool {
	return v != "" && !filepath.IsAbs(v) && (s.name == nil || !s.name(v))
}

func (c *Config) paths() []pathSetting {
	return []pathSetting{{key: "data.dir", value: &c.Data.Dir}, {key: "data.validation_dir", value: &c.Data.ValidationDir},
		{key: "backbone.weights", value: &c.Backbone.Weights, name: pretrained.IsName}, {key: "run.dir", value: &c.Run.Dir}, {key: "cache.dir", value: &c.Cache.Dir}}
}

// check reports every out-of-range value to at, with the dotted path of the
// setting.
func (c *Config) check(at func(path, format string, args ...any)) {
	d := c.Data
	if strings.TrimSpace(d.Dir) == "" {
		at("data.dir", "required: the folder with one sub-folder of images per class")
	}
	if len(d.Classes) == 1 {
		at("data.classes", "lists 1 class, want at least 2 (or none, for all sub-folders)")
	}
	for i, name := range d.Classes {
		p := fmt.Sprintf("data.classes[%d]", i)
		switch {
		case name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`):
			at(p, "%q is not a folder name", name)
		case slices.Index(d.Classes, name) < i:
			at(p, "class %q listed twice", name)
		}
	}
	if len(d.ImageSize) != 2 {
		at("data.image_size", "want [height, width], got %d values", len(d.ImageSize))
	}
	for i, s := range d.ImageSize {
		if s < 32 || s > 8192 {
			at(fmt.Sprintf("data.image_size[%d]", i), "%d is outside [32, 8192]", s)
		}
	}
	if !(d.ValidationSplit >= 0 && d.ValidationSplit < 1) {
		at("data.validation_split", "%v is outside [0, 1)", d.ValidationSplit)
	} else if d.ValidationSplit != 0 && d.ValidationDir != "" {
		at("data.validation_split", "%v with data.validation_dir: the validation images are those of validation_dir, so the split must be 0 (or unset)", d.ValidationSplit)
	}
	if d.Workers < 0 || d.Workers > 1024 {
		at("data.workers", "%d is outside [0, 1024] (0 means one per CPU)", d.Workers)
	}
	if d.MaxPixels < 1 {
		at("data.max_pixels", "%d must be positive", d.MaxPixels)
	}
	if d.Preprocess != "" && d.Preprocess != "caffe" && d.Preprocess != "torch" && d.Preprocess != "none" {
		at("data.preprocess", "%q: want caffe, torch or none", d.Preprocess)
	}
	if ca := d.CropAugmentation; ca.Copies < 0 || ca.Copies > 16 {
		at("data.crop_augmentation.copies", "%d is outside [0, 16] (0 turns it off)", ca.Copies)
	}
	if s := d.CropAugmentation.Scale; len(s) != 2 {
		at("data.crop_augmentation.scale", "want [min, max], got %d values", len(s))
	} else if !(0 < s[0] && s[0] <= s[1] && s[1] <= 1) {
		at("data.crop_augmentation.scale", "%v: want 0 < min ≤ max ≤ 1 (fractions of the image's area)", s)
	}
	if r := d.CropAugmentation.Ratio; len(r) != 2 {
		at("data.crop_augmentation.ratio", "want [min, max], got %d values", len(r))
	} else if !(0 < r[0] && r[0] <= r[1] && r[1] < 1e6) {
		at("data.crop_augmentation.ratio", "%v: want 0 < min ≤ max (aspect ratios, width/height)", r)
	}

	b := c.Backbone
	if _, ok := variantPreprocess[b.Variant]; !ok {
		at("backbone.variant", "%q: want keras or torchvision", b.Variant)
	} else if pretrained.IsName(b.Weights) {
		if _, err := pretrained.Lookup(b.Weights, b.Variant, false); err != nil {
			at("backbone.weights", "%v (or set backbone.variant)", err)
		}
	}
	if b.Device != "cpu" && b.Device != "cuda" {
		at("backbone.device", "%q: want cpu or cuda", b.Device)
	}
	if b.RandomWidth < 1 || b.RandomWidth > 64 {
		at("backbone.random_width", "%d is outside [1, 64]", b.RandomWidth)
	}
	if b.Batch < 1 || b.Batch > 4096 {
		at("backbone.batch", "%d is outside [1, 4096]", b.Batch)
	}

	for i, w := range c.Head.Layers {
		if w < 1 || w > 1<<16 {
			at(fmt.Sprintf("head.layers[%d]", i), "width %d is outside [1, 65536]", w)
		}
	}
	if c.Head.Activation != "relu" {
		at("head.activation", "%q: only relu is supported", c.Head.Activation)
	}
	if !(c.Head.Dropout >= 0 && c.Head.Dropout < 1) {
		at("head.dropout", "%v is outside [0, 1)", c.Head.Dropout)
	}

	t := c.Train
	if t.Epochs < 1 {
		at("train.epochs", "%d must be at least 1", t.Epochs)
	}
	if t.Batch < 1 || t.Batch > 1<<16 {
		at("train.batch", "%d is outside [1, 65536]", t.Batch)
	}
	if t.Optimizer != "adam" && t.Optimizer != "sgd" {
		at("train.optimizer", "%q: want adam or sgd", t.Optimizer)
	}
	// The settings of the optimizer not in use would be ignored: changed
	// from their defaults, they are a mistake (they stay valid at them, so
	// that a file can show both).
	def := Default().Train
	if t.Optimizer == "sgd" && t.Adam != def.Adam {
		at("train.adam", "set, but train.optimizer is sgd: Adam's settings would be ignored (leave them at their defaults, or set train.optimizer: adam)")
	}
	if t.Optimizer == "adam" && t.SGD != def.SGD {
		at("train.sgd", "set, but train.optimizer is adam: SGD's settings would be ignored (leave them at their defaults, or set train.optimizer: sgd)")
	}
	if !(t.SGD.LR > 0 && t.SGD.LR < 1e3) {
		at("train.sgd.lr", "%v must be positive (and below 1000)", t.SGD.LR)
	}
	if !(t.SGD.Momentum >= 0 && t.SGD.Momentum < 1) {
		at("train.sgd.momentum", "%v is outside [0, 1)", t.SGD.Momentum)
	}
	if t.SGD.Nesterov && t.SGD.Momentum == 0 {
		at("train.sgd.nesterov", "true with train.sgd.momentum 0: Nesterov momentum needs a momentum")
	}
	if !(t.SGD.WeightDecay >= 0 && t.SGD.WeightDecay < 1e9) {
		at("train.sgd.weight_decay", "%v must be a finite number ≥ 0", t.SGD.WeightDecay)
	}
	if !(t.LabelSmoothing >= 0 && t.LabelSmoothing < 1) {
		at("train.label_smoothing", "%v is outside [0, 1)", t.LabelSmoothing)
	}
	if !(t.Adam.LR > 0 && t.Adam.LR < 1e3) {
		at("train.adam.lr", "%v must be positive (and below 1000)", t.Adam.LR)
	}
	if !(t.Adam.Beta1 >= 0 && t.Adam.Beta1 < 1) {
		at("train.adam.beta1", "%v is outside [0, 1)", t.Adam.Beta1)
	}
	if !(t.Adam.Beta2 >= 0 && t.Adam.Beta2 < 1) {
		at("train.adam.beta2", "%v is outside [0, 1)", t.Adam.Beta2)
	}
	if !(t.Adam.Epsilon > 0 && t.Adam.Epsilon < 1) {
		at("train.adam.epsilon", "%v is outside (0, 1)", t.Adam.Epsilon)
	}
	if !(t.Adam.WeightDecay >= 0 && t.Adam.WeightDecay < 1e9) {
		at("train.adam.weight_decay", "%v must be a finite number ≥ 0", t.Adam.WeightDecay)
	}
	if t.EarlyStopping.Patience < 0 {
		at("train.early_stopping.patience", "%d is negative (0 turns early stopping off)", t.EarlyStopping.Patience)
	}
	if !(t.EarlyStopping.MinDelta >= 0 && t.EarlyStopping.MinDelta < 1e9) {
		at("train.early_stopping.min_delta", "%v must be a finite number ≥ 0", t.EarlyStopping.MinDelta)
	}

	if r := t.ReduceLR; r.Patience < 0 {
		at("train.reduce_lr_on_plateau.patience", "%d is negative (0 turns it off)", r.Patience)
	}
	if r := t.ReduceLR; !(r.Factor > 0 && r.Factor < 1) {
		at("train.reduce_lr_on_plateau.factor", "%v is outside (0, 1)", r.Factor)
	}
	if r := t.ReduceLR; !(r.MinDelta >= 0 && r.MinDelta < 1e9) {
		at("train.reduce_lr_on_plateau.min_delta", "%v must be a finite number ≥ 0", r.MinDelta)
	}
	if r := t.ReduceLR; !(r.MinLR >= 0 && r.MinLR < 1e3) {
		at("train.reduce_lr_on_plateau.min_lr", "%v must be a finite number ≥ 0", r.MinLR)
	}
	switch ls := t.LRSchedule; {
	case ls.Kind != "constant" && ls.Kind != "step" && ls.Kind != "cosine":
		at("train.lr_schedule.kind", "%q: want constant, step or cosine", ls.Kind)
	case ls.Active() && t.ReduceLR.Patience > 0:
		at("train.lr_schedule.kind", "%q (warm-up %d epochs) with train.reduce_lr_on_plateau: both set the learning rate, use one", ls.Kind, ls.WarmupEpochs)
	}
	if ls := t.LRSchedule; ls.StepEpochs < 1 {
		at("train.lr_schedule.step_epochs", "%d must be at least 1", ls.StepEpochs)
	}
	if ls := t.LRSchedule; !(ls.Gamma > 0 && ls.Gamma <= 1) {
		at("train.lr_schedule.gamma", "%v is outside (0, 1]", ls.Gamma)
	}
	if ls := t.LRSchedule; !(ls.MinLR >= 0 && ls.MinLR < 1e3) {
		at("train.lr_schedule.min_lr", "%v must be a finite number ≥ 0", ls.MinLR)
	} else if lr, path := t.LR(); ls.Kind == "cosine" && lr > 0 && ls.MinLR >= lr {
		at("train.lr_schedule.min_lr", "%v: a cosine schedule goes down from %s (%v) to it", ls.MinLR, path, lr)
	}
	if ls := t.LRSchedule; ls.WarmupEpochs < 0 || ls.WarmupEpochs >= t.Epochs && ls.WarmupEpochs > 0 {
		at("train.lr_schedule.warmup_epochs", "%d is outside [0, train.epochs)", ls.WarmupEpochs)
	}
	for i, w := range t.ClassWeight.Weights {
		if !(w > 0 && w < 1e6) {
			at(fmt.Sprintf("train.class_weight[%d]", i), "%v is outside (0, 1e6)", w)
		}
	}
	if n := len(t.ClassWeight.Weights); n > 0 && len(d.Classes) > 0 && n != len(d.Classes) {
		at("train.class_weight", "%d weights for the %d classes of data.classes", n, len(d.Classes))
	}

	if c.Run.CheckpointEvery < 0 {
		at("run.checkpoint_every", "%d is negative (0 saves at epoch ends only)", c.Run.CheckpointEvery)
	}
	if c.Run.Keep < 1 {
		at("run.keep", "%d must be at least 1", c.Run.Keep)
	}
	if c.Cache.ShardSize < 1 {
		at("cache.shard_size", "%d must be at least 1", c.Cache.ShardSize)
	}
}
