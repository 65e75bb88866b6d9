package configs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestShippedConfigsParse(t *testing.T) {
	c, err := Load("cats_dogs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// cats_dogs.yaml spells out every default: apart from the paths it sets
	// and its classes, it must equal the defaults.
	def := Default()
	def.File = "cats_dogs.yaml"
	def.Data.Dir, def.Backbone.Weights = "../data/PetImages", "imagenet"
	def.Run.Dir, def.Cache.Dir = "../runs/cats_dogs", "../runs/feature-cache"
	def.Data.Classes = []string{"Cat", "Dog"}
	def.finish(".")
	if cs := Diff(&def, c); len(cs) != 0 {
		t.Errorf("cats_dogs.yaml differs from the defaults: %v", cs)
	}
	if c.Data.Dir != filepath.Join("..", "data", "PetImages") || c.Data.Preprocess != "caffe" {
		t.Errorf("cats_dogs.yaml: data.dir %q, preprocess %q", c.Data.Dir, c.Data.Preprocess)
	}

	s, err := Load("smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what      string
		got, want any
	}{
		{"data.dir", s.Data.Dir, filepath.Join("..", "runs", "smoke-data")},
		{"data.image_size", s.Data.ImageSize, []int{64, 64}},
		{"backbone.weights", s.Backbone.Weights, ""},
		{"backbone.random_width", s.Backbone.RandomWidth, 32},
		{"head.layers", s.Head.Layers, []int{64, 32}},
		{"train.epochs", s.Train.Epochs, 3},
		{"run.dir", s.Run.Dir, filepath.Join("..", "runs", "smoke")},
		{"cache.dir", s.Cache.Dir, filepath.Join("..", "runs", "feature-cache")},
		{"train.adam.lr (default)", s.Train.Adam.LR, 1e-3},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("smoke.yaml: %s = %v, want %v", tc.what, tc.got, tc.want)
		}
	}
}

func TestDefaultsAndPaths(t *testing.T) {
	base := filepath.Join("somewhere", "cfg")
	for _, tc := range []struct {
		name, yaml string
		check      func(c *Config) string
	}{
		{"defaults", "data: {dir: imgs}\n", func(c *Config) string {
			want := Default()
			want.File = c.File
			want.Data.Dir = "imgs"
			want.finish(base)
			if !reflect.DeepEqual(*c, want) {
				return "not the defaults"
			}
			if c.Run.Dir != filepath.Join(base, "runs", "exp1") || c.Cache.Dir != filepath.Join(base, "runs", "feature-cache") {
				return "run " + c.Run.Dir + ", cache " + c.Cache.Dir
			}
			return ""
		}},
		{"relative paths", "data: {dir: ../data/train}\nbackbone: {weights: w/r50.npz}\nrun: {dir: out}\ncache: {dir: /abs/cache}\n", func(c *Config) string {
			if c.Data.Dir != filepath.Join("somewhere", "data", "train") || c.Backbone.Weights != filepath.Join(base, "w", "r50.npz") ||
				c.Run.Dir != filepath.Join(base, "out") || c.Cache.Dir != "/abs/cache" {
				return "got " + c.Data.Dir + ", " + c.Backbone.Weights + ", " + c.Run.Dir + ", " + c.Cache.Dir
			}
			return ""
		}},
		{"published weights by name", "data: {dir: d}\nbackbone: {weights: imagenet}\n", func(c *Config) string {
			if c.Backbone.Weights != "imagenet" {
				return "weights " + c.Backbone.Weights + ", want the name kept"
			}
			return ""
		}},
		{"a file named like them", "data: {dir: d}\nbackbone: {weights: ./imagenet}\n", func(c *Config) string {
			if c.Backbone.Weights != filepath.Join(base, "imagenet") {
				return "weights " + c.Backbone.Weights
			}
			return ""
		}},
		{"torchvision's by name", "data: {dir: d}\nbackbone: {weights: IMAGENET1K_V1, variant: torchvision}\n", func(c *Config) string {
			if c.Backbone.Weights != "IMAGENET1K_V1" {
				return "weights " + c.Backbone.Weights
			}
			return ""
		}},
		{"variant picks preprocessing", "data: {dir: d}\nbackbone: {variant: torchvision}\n", func(c *Config) string {
			if c.Data.Preprocess != "torch" {
				return "preprocess " + c.Data.Preprocess
			}
			return ""
		}},
		{"explicit zero and false kept", "data: {dir: d, validation_split: 0, exif_orientation: false}\ntrain: {early_stopping: {patience: 0}}\n", func(c *Config) string {
			if c.Data.ValidationSplit != 0 || c.Data.EXIFOrientation {
				return "zero values replaced by defaults"
			}
			return ""
		}},
		{"validation folder: no default split", "data: {dir: data/train, validation_dir: data/validation}\n", func(c *Config) string {
			if c.Data.ValidationSplit != 0 || c.Data.ValidationDir != filepath.Join(base, "data", "validation") {
				return fmt.Sprintf("validation_split %v, validation_dir %q", c.Data.ValidationSplit, c.Data.ValidationDir)
			}
			return ""
		}},
		{"validation folder with an explicit zero split", "data: {dir: t, validation_dir: v, validation_split: 0}\n", func(c *Config) string {
			if c.Data.ValidationSplit != 0 {
				return "split not zero"
			}
			return ""
		}},
		{"null means default", "data:\n  dir: d\n  image_size:\nhead:\n", func(c *Config) string {
			if !slices.Equal(c.Data.ImageSize, []int{224, 224}) || len(c.Head.Layers) != 4 {
				return "null did not keep the defaults"
			}
			return ""
		}},
		{"empty head", "data: {dir: d}\nhead: {layers: []}\n", func(c *Config) string {
			if c.Head.Layers == nil || len(c.Head.Layers) != 0 {
				return "layers: [] not kept"
			}
			return ""
		}},
		{"sgd, as PyTorch's transfer-learning tutorial", "data: {dir: d}\ntrain:\n  optimizer: sgd\n  sgd: {lr: 0.001, momentum: 0.9}\n  lr_schedule: {kind: step}\n  label_smoothing: 0.1\n", func(c *Config) string {
			want := SGD{LR: 0.001, Momentum: 0.9}
			if lr, path := c.Train.LR(); c.Train.SGD != want || c.Train.Optimizer != "sgd" || lr != 0.001 || path != "train.sgd.lr" || c.Train.LabelSmoothing != 0.1 {
				return fmt.Sprintf("train %+v, lr %v from %s", c.Train, lr, path)
			}
			return ""
		}},
		{"adam's lr by default", "data: {dir: d}\ntrain: {sgd: {lr: 0.01}}\n", func(c *Config) string {
			if lr, path := c.Train.LR(); c.Train.Optimizer != "adam" || lr != 1e-3 || path != "train.adam.lr" {
				return fmt.Sprintf("optimizer %q, lr %v from %s", c.Train.Optimizer, lr, path)
			}
			return ""
		}},
		{"anchors", "data: {dir: d, image_size: &s [96, 128]}\nbackbone: {batch: 4}\n", func(c *Config) string {
			if !slices.Equal(c.Data.ImageSize, []int{96, 128}) {
				return "anchored list lost"
			}
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), filepath.Join(base, "exp1.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestErrorsNameFileLineColumn(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error, each reported
	}{
		{"unknown top-level key", "data: {dir: d}\nmodel: {}\n",
			[]string{`x.yaml:2:1: model: unknown key "model" at the top level (known keys: data, backbone, head, train, run, cache)`}},
		{"unknown nested key", "data:\n  dir: d\ntrain:\n  adam:\n    learning_rate: 0.1\n",
			[]string{`x.yaml:5:5: train.adam.learning_rate: unknown key "learning_rate" in train.adam (known keys: lr, beta1, beta2, epsilon, weight_decay)`}},
		{"string for int", "data: {dir: d}\ntrain:\n  epochs: ten\n",
			[]string{`x.yaml:3:11: train.epochs: want a whole number, got str "ten"`}},
		{"fraction for int", "data: {dir: d}\ntrain: {batch: 1.5}\n",
			[]string{`x.yaml:2:16: train.batch: want a whole number, got float "1.5"`}},
		{"bool for number", "data: {dir: d, validation_split: yes}\n",
			[]string{`x.yaml:1:34: data.validation_split: want a number, got str "yes"`}},
		{"list for scalar", "data: {dir: [a, b]}\n",
			[]string{`x.yaml:1:13: data.dir: want a string, got a list`}},
		{"scalar for section", "data: d\n",
			[]string{`x.yaml:1:7: data: want a mapping with keys dir, classes,`}},
		{"scalar for list", "data: {dir: d, image_size: 224}\n",
			[]string{`x.yaml:1:28: data.image_size: want a list, got int "224"`}},
		{"bad list element", "data: {dir: d, image_size: [224, big]}\n",
			[]string{`x.yaml:1:34: data.image_size[1]: want a whole number, got str "big"`}},
		{"duplicate key", "data:\n  dir: a\n  dir: b\n",
			[]string{`x.yaml:3:3: data.dir: key "dir" given twice (first at line 2)`}},
		{"published weights of the other variant", "data: {dir: d}\nbackbone:\n  weights: IMAGENET1K_V2\n",
			[]string{`x.yaml:3:12: backbone.weights: pretrained weights "IMAGENET1K_V2": none for the keras variant (it has imagenet) (or set backbone.variant)`}},
		{"missing data.dir", "train: {epochs: 2}\n",
			[]string{`x.yaml: data.dir: required`}},
		{"null data.dir", "data:\n  dir:\n",
			[]string{`x.yaml:2:7: data.dir: required`}},
		{"out of range", "data: {dir: d, validation_split: 1.5}\ntrain:\n  epochs: 0\n  adam: {lr: -0.001}\nbackbone: {variant: tf}\n",
			[]string{
				`x.yaml:1:34: data.validation_split: 1.5 is outside [0, 1)`,
				`x.yaml:3:11: train.epochs: 0 must be at least 1`,
				`x.yaml:4:14: train.adam.lr: -0.001 must be positive`,
				`x.yaml:5:21: backbone.variant: "tf": want keras or torchvision`,
			}},
		{"split and validation folder", "data: {dir: d, validation_dir: v, validation_split: 0.1}\n",
			[]string{`x.yaml:1:53: data.validation_split: 0.1 with data.validation_dir: the validation images are those of validation_dir, so the split must be 0 (or unset)`}},
		{"learning-rate schedule", "data: {dir: d}\ntrain:\n  reduce_lr_on_plateau: {patience: 2}\n  lr_schedule: {kind: cosine, gamma: 0, warmup_epochs: 10}\n",
			[]string{
				`x.yaml:4:23: train.lr_schedule.kind: "cosine" (warm-up 10 epochs) with train.reduce_lr_on_plateau: both set the learning rate, use one`,
				`x.yaml:4:38: train.lr_schedule.gamma: 0 is outside (0, 1]`,
				`x.yaml:4:56: train.lr_schedule.warmup_epochs: 10 is outside [0, train.epochs)`,
			}},
		{"schedule kind", "data: {dir: d}\ntrain:\n  lr_schedule: {kind: linear}\n",
			[]string{`x.yaml:3:23: train.lr_schedule.kind: "linear": want constant, step or cosine`}},
		{"cosine floor", "data: {dir: d}\ntrain:\n  lr_schedule: {kind: cosine, min_lr: 0.01}\n",
			[]string{`x.yaml:3:39: train.lr_schedule.min_lr: 0.01: a cosine schedule goes down from train.adam.lr (0.001) to it`}},
		{"bad image size element", "data: {dir: d, image_size: [16, 224]}\n",
			[]string{`x.yaml:1:29: data.image_size[0]: 16 is outside [32, 8192]`}},
		{"image size length", "data: {dir: d, image_size: [224]}\n",
			[]string{`x.yaml:1:28: data.image_size: want [height, width], got 1 values`}},
		{"classes", "data: {dir: d, classes: [cat, dog, cat, ../x]}\n",
			[]string{`x.yaml:1:36: data.classes[2]: class "cat" listed twice`, `x.yaml:1:41: data.classes[3]: "../x" is not a folder name`}},
		{"negative seed is fine but NaN is not", "data: {dir: d, seed: -1}\ntrain: {adam: {beta1: .nan}}\n",
			[]string{`x.yaml:2:23: train.adam.beta1: want a finite number, got .nan`}},
		{"negative keep", "data: {dir: d}\nrun: {keep: 0, checkpoint_every: -5}\n",
			[]string{`x.yaml:2:13: run.keep: 0 must be at least 1`, `x.yaml:2:34: run.checkpoint_every: -5 is negative`}},
		{"type and range errors together", "data: {dir: d}\ntrain: {epochs: ten, batch: 0}\n",
			[]string{`x.yaml:2:17: train.epochs: want a whole number, got str "ten"`, `x.yaml:2:29: train.batch: 0 is outside [1, 65536]`}},
		{"syntax", "data:\n  dir: [a\n  b: c\n",
			[]string{`x.yaml:1: YAML syntax: did not find expected ',' or ']'`}}, // yaml.v3 gives the line where the list starts, counted from 0
		{"two documents", "data: {dir: d}\n---\ndata: {dir: e}\n",
			[]string{`x.yaml:2:1: a second YAML document`}},
		{"crop augmentation", "data:\n  dir: d\n  crop_augmentation: {copies: 17, scale: [0, 1], ratio: [2, 1]}\n",
			[]string{
				`x.yaml:3:31: data.crop_augmentation.copies: 17 is outside [0, 16] (0 turns it off)`,
				`x.yaml:3:42: data.crop_augmentation.scale: [0 1]: want 0 < min ≤ max ≤ 1 (fractions of the image's area)`,
				`x.yaml:3:57: data.crop_augmentation.ratio: [2 1]: want 0 < min ≤ max (aspect ratios, width/height)`,
			}},
		{"crop augmentation lists", "data:\n  dir: d\n  crop_augmentation:\n    copies: -1\n    scale: [0.5]\n    ratio: [1, 2, 3]\n",
			[]string{
				`x.yaml:4:13: data.crop_augmentation.copies: -1 is outside [0, 16]`,
				`x.yaml:5:12: data.crop_augmentation.scale: want [min, max], got 1 values`,
				`x.yaml:6:12: data.crop_augmentation.ratio: want [min, max], got 3 values`,
			}},
		{"crop scale above 1", "data: {dir: d, crop_augmentation: {scale: [0.5, 1.5]}}\n",
			[]string{`x.yaml:1:43: data.crop_augmentation.scale: [0.5 1.5]: want 0 < min ≤ max ≤ 1`}},
		{"dropout", "data: {dir: d}\nhead: {dropout: 1}\n",
			[]string{`x.yaml:2:17: head.dropout: 1 is outside [0, 1)`}},
		{"negative dropout", "data: {dir: d}\nhead:\n  dropout: -0.5\n",
			[]string{`x.yaml:3:12: head.dropout: -0.5 is outside [0, 1)`}},
		{"weight decay", "data: {dir: d}\ntrain:\n  adam: {weight_decay: -0.01}\n",
			[]string{`x.yaml:3:24: train.adam.weight_decay: -0.01 must be a finite number ≥ 0`}},
		{"weight decay type", "data: {dir: d}\ntrain: {adam: {weight_decay: none}}\n",
			[]string{`x.yaml:2:30: train.adam.weight_decay: want a number, got str "none"`}},
		{"optimizer", "data: {dir: d}\ntrain: {optimizer: rmsprop}\n",
			[]string{`x.yaml:2:20: train.optimizer: "rmsprop": want adam or sgd`}},
		{"sgd settings", "data: {dir: d}\ntrain:\n  optimizer: sgd\n  sgd: {lr: 0, momentum: 1, weight_decay: -1}\n",
			[]string{
				`x.yaml:4:13: train.sgd.lr: 0 must be positive`,
				`x.yaml:4:26: train.sgd.momentum: 1 is outside [0, 1)`,
				`x.yaml:4:43: train.sgd.weight_decay: -1 must be a finite number ≥ 0`,
			}},
		{"nesterov without momentum", "data: {dir: d}\ntrain:\n  optimizer: sgd\n  sgd: {nesterov: true}\n",
			[]string{`x.yaml:4:19: train.sgd.nesterov: true with train.sgd.momentum 0: Nesterov momentum needs a momentum`}},
		{"sgd settings with adam", "data: {dir: d}\ntrain:\n  sgd:\n    momentum: 0.9\n",
			[]string{`x.yaml:4:5: train.sgd: set, but train.optimizer is adam: SGD's settings would be ignored`}},
		{"adam settings with sgd", "data: {dir: d}\ntrain:\n  optimizer: sgd\n  adam: {lr: 0.0003}\n",
			[]string{`x.yaml:4:9: train.adam: set, but train.optimizer is sgd: Adam's settings would be ignored`}},
		{"cosine floor, sgd", "data: {dir: d}\ntrain:\n  optimizer: sgd\n  lr_schedule: {kind: cosine, min_lr: 0.01}\n",
			[]string{`x.yaml:4:39: train.lr_schedule.min_lr: 0.01: a cosine schedule goes down from train.sgd.lr (0.01) to it`}},
		{"label smoothing", "data: {dir: d}\ntrain: {label_smoothing: 1}\n",
			[]string{`x.yaml:2:26: train.label_smoothing: 1 is outside [0, 1)`}},
		{"class weight word", "data: {dir: d}\ntrain: {class_weight: auto}\n",
			[]string{`x.yaml:2:23: train.class_weight: want none, balanced or a list of one weight per class, got str "auto"`}},
		{"class weight values", "data: {dir: d, classes: [a, b, c]}\ntrain: {class_weight: [1, 0, x]}\n",
			[]string{`x.yaml:2:30: train.class_weight[2]: want a number, got str "x"`, `x.yaml:2:27: train.class_weight[1]: 0 is outside (0, 1e6)`}},
		{"class weight range and count", "data: {dir: d, classes: [a, b, c]}\ntrain: {class_weight: [1, -2]}\n",
			[]string{`x.yaml:2:27: train.class_weight[1]: -2 is outside (0, 1e6)`, `x.yaml:2:23: train.class_weight: 2 weights for the 3 classes of data.classes`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), filepath.Join("cfg", "x.yaml"))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			for _, w := range tc.want {
				w = strings.Replace(w, "x.yaml", filepath.Join("cfg", "x.yaml"), 1)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) {
				t.Errorf("%d errors reported, want %d:\n%v", n, len(tc.want), err)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != filepath.Join("cfg", "x.yaml") {
				t.Errorf("error is not an *Error naming the file: %#v", err)
			}
		})
	}
}

// smokeCanonical is what smoke.yaml's Hash hashes: a change to what is
// hashed, or how, must be deliberate (and breaks resuming old runs).
const smokeCanonical = `gotransfer config v1
data.dir="smoke-data"
data.classes=[]
data.image_size=[64 64]
data.validation_split=0.25
data.seed=1
data.max_pixels=50000000
data.follow_symlinks=false
data.exif_orientation=true
data.crop_to_aspect_ratio=false
data.preprocess="caffe"
backbone.weights=""
backbone.random_width=32
backbone.variant="keras"
head.layers=[64 32]
head.activation="relu"
`

func TestHashCoversWhatResumingNeeds(t *testing.T) {
	base, err := Load("smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Load("smoke.yaml")
	if base.Hash() != again.Hash() {
		t.Fatal("the same file hashes differently")
	}
	sum := sha256.Sum256([]byte(smokeCanonical))
	if got := base.Hash(); got != hex.EncodeToString(sum[:]) {
		t.Errorf("Hash() = %s, want the sha256 of\n%s", got, smokeCanonical)
	}
	for _, tc := range []struct {
		name       string
		edit       func(c *Config)
		sameHash   bool
		wantChange string
		resume     bool // the change is in a setting that Hash covers
	}{
		{"head layers", func(c *Config) { c.Head.Layers = []int{64, 16} }, false, "head.layers changed from [64 32] to [64 16]", true},
		{"classes", func(c *Config) { c.Data.Classes = []string{"dogs", "cats"} }, false, `data.classes changed from [] to ["dogs" "cats"]`, true},
		{"image size", func(c *Config) { c.Data.ImageSize = []int{64, 96} }, false, "data.image_size changed from [64 64] to [64 96]", true},
		{"weights", func(c *Config) { c.Backbone.Weights = "/w/r50.npz" }, false, `backbone.weights changed from "" to "/w/r50.npz"`, true},
		{"variant", func(c *Config) { c.Backbone.Variant = "torchvision" }, false, `backbone.variant changed from "keras" to "torchvision"`, true},
		{"flip augmentation", func(c *Config) { c.Data.FlipAugmentation = true }, false, "data.flip_augmentation changed from false to true", true},
		{"validation folder", func(c *Config) { c.Data.ValidationDir = "val" }, false, `data.validation_dir changed from "" to `, true},
		{"crop augmentation", func(c *Config) { c.Data.CropAugmentation.Copies = 2 }, false, "data.crop_augmentation.copies changed from 0 to 2", true},
		{"crop scale, crop augmentation off", func(c *Config) { c.Data.CropAugmentation.Scale = []float64{0.25, 1} }, true,
			"data.crop_augmentation.scale changed from [0.08 1] to [0.25 1]", false},
		{"dropout", func(c *Config) { c.Head.Dropout = 0.5 }, false, "head.dropout changed from 0 to 0.5", true},
		{"weight decay", func(c *Config) { c.Train.Adam.WeightDecay = 0.01 }, true, "train.adam.weight_decay changed from 0 to 0.01", false},
		{"epochs", func(c *Config) { c.Train.Epochs = 30 }, true, "train.epochs changed from 3 to 30", false},
		// Training settings are not hashed; the pipeline refuses a change of
		// optimizer on resume itself (its state would be lost).
		{"optimizer", func(c *Config) { c.Train.Optimizer = "sgd" }, true, `train.optimizer changed from "adam" to "sgd"`, false},
		{"sgd momentum", func(c *Config) { c.Train.SGD.Momentum = 0.9 }, true, "train.sgd.momentum changed from 0 to 0.9", false},
		// But label smoothing defines the loss that val_loss, the best
		// checkpoint and the callbacks compare across epochs: Diff refuses
		// its change, outside Hash so that runs begun before keep theirs.
		{"label smoothing", func(c *Config) { c.Train.LabelSmoothing = 0.1 }, true, "train.label_smoothing changed from 0 to 0.1", true},
		{"learning rate", func(c *Config) { c.Train.Adam.LR = 1e-4 }, true, "train.adam.lr changed from 0.001 to 0.0001", false},
		{"workers", func(c *Config) { c.Data.Workers = 2 }, true, "data.workers changed from 0 to 2", false},
		{"device", func(c *Config) { c.Backbone.Device = "cuda" }, true, `backbone.device changed from "cpu" to "cuda"`, false},
		{"data moved", func(c *Config) { c.Data.Dir = filepath.Join("elsewhere", "smoke-data") }, true, "data.dir changed from ", true},
		{"data renamed", func(c *Config) { c.Data.Dir = filepath.Join("..", "runs", "other-data") }, false, "data.dir changed from ", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := Load("smoke.yaml")
			tc.edit(c)
			if same := c.Hash() == base.Hash(); same != tc.sameHash {
				t.Errorf("hash unchanged: %v, want %v", same, tc.sameHash)
			}
			// HashDiff names the setting exactly when the hash changes.
			if hd := HashDiff(base, c); len(hd) != 0 == tc.sameHash || len(hd) > 1 || len(hd) == 1 && !strings.HasPrefix(hd[0].String(), tc.wantChange) {
				t.Errorf("HashDiff = %+v, want %q (the hash changes: %v)", hd, tc.wantChange, !tc.sameHash)
			}
			cs := Diff(base, c)
			if len(cs) != 1 || !strings.HasPrefix(cs[0].String(), tc.wantChange) || cs[0].Resume != tc.resume {
				t.Errorf("Diff = %+v, want one change %q (resume %v)", cs, tc.wantChange, tc.resume)
			}
		})
	}
}

// TestCropAugmentationHash: with copies > 0 every crop_augmentation
// setting is hashed (so changing one on resume is refused); with copies 0
// none is, which keeps the hashes of runs begun before it existed.
func TestCropAugmentationHash(t *testing.T) {
	on, err := Parse([]byte("data:\n  dir: smoke-data\n  image_size: [64, 64]\n  validation_split: 0.25\n  seed: 1\n"+
		"  crop_augmentation: {copies: 2}\nbackbone: {random_width: 32}\nhead: {layers: [64, 32]}\n"), "smoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	canonical := strings.Replace(smokeCanonical, "data.preprocess=\"caffe\"\n", "data.preprocess=\"caffe\"\n"+
		"data.crop_augmentation.copies=2\ndata.crop_augmentation.scale=[0.08 1]\ndata.crop_augmentation.ratio=[0.75 1.3333333333333333]\n", 1)
	sum := sha256.Sum256([]byte(canonical))
	if got := on.Hash(); got != hex.EncodeToString(sum[:]) {
		t.Errorf("Hash() = %s, want the sha256 of\n%s", got, canonical)
	}
	other := *on
	other.Data.CropAugmentation = CropAugmentation{Copies: 2, Scale: []float64{0.08, 1}, Ratio: []float64{0.5, 2}}
	if other.Hash() == on.Hash() {
		t.Error("another crop ratio hashes the same")
	}
	if cs := Diff(on, &other); len(cs) != 1 || cs[0].String() != "data.crop_augmentation.ratio changed from [0.75 1.3333333333333333] to [0.5 2]" || !cs[0].Resume {
		t.Errorf("Diff = %+v, want the ratio, refused on resume", cs)
	}
	b, err := on.Marshal(".")
	if err != nil {
		t.Fatal(err)
	}
	if back, err := Parse(b, "smoke.yaml"); err != nil || back.Hash() != on.Hash() {
		t.Errorf("the marshalled copy does not load back the same: %v\n%s", err, b)
	}
}

func TestMarshalLoadsBackTheSame(t *testing.T) {
	// Every path setting, relative to a folder that is not the run's.
	every := filepath.Join(t.TempDir(), "configs", "every_path.yaml")
	if err := os.MkdirAll(filepath.Dir(every), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := "data:\n  dir: ../data/train\n  validation_dir: ../data/validation\nbackbone:\n  weights: ../w/resnet.h5\nrun:\n  dir: ../runs/x\ncache:\n  dir: ../cache\n"
	if err := os.WriteFile(every, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// Named relative to the working folder, as on a command line.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if every, err = filepath.Rel(wd, every); err != nil {
		t.Fatal(err)
	}
	// Published weights by name, and a file named like them.
	named := filepath.Join(filepath.Dir(every), "named.yaml")
	if err := os.WriteFile(named, []byte("data: {dir: d}\nbackbone: {weights: imagenet}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"cats_dogs.yaml", "smoke.yaml", every, named} {
		c, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		runDir := filepath.Join(t.TempDir(), "run")
		if err := os.MkdirAll(runDir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := c.Marshal(runDir)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join(runDir, "config.yaml")
		if err := os.WriteFile(copyPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
		back, err := Load(copyPath)
		if err != nil {
			t.Fatalf("%s: the marshalled copy does not load: %v\n%s", file, err, b)
		}
		if cs := Diff(c, back); len(cs) != 0 {
			t.Errorf("%s: the copy differs: %v", file, cs)
		}
		if c.Hash() != back.Hash() {
			t.Errorf("%s: the copy hashes differently", file)
		}
	}
}

// TestMarshalFileNamedLikeAName: a weights file called "imagenet" in the
// folder a configuration is saved to is written ./imagenet, so that it
// loads back as that file, not as the published weights.
func TestMarshalFileNamedLikeAName(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse([]byte("data: {dir: d}\nbackbone: {weights: run/imagenet}\n"), filepath.Join(dir, "x.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Marshal(filepath.Join(dir, "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "weights: ./imagenet\n") {
		t.Fatalf("marshalled:\n%s", b)
	}
	back, err := Parse(b, filepath.Join(dir, "run", "config.yaml"))
	if err != nil || back.Backbone.Weights != filepath.Join(dir, "run", "imagenet") {
		t.Fatalf("loaded back: %v, %v", back, err)
	}
}

// TestClassWeight reads each form of train.class_weight, writes it back
// and computes the weights it gives.
func TestClassWeight(t *testing.T) {
	counts := []int{30, 10}
	for _, tc := range []struct {
		yaml string
		want []float32 // For(counts)
	}{
		{"", nil},
		{"class_weight: none", nil},
		{"class_weight: balanced", []float32{40.0 / 60, 40.0 / 20}},
		{"class_weight: [1, 2.5]", []float32{1, 2.5}},
	} {
		c, err := Parse([]byte("data: {dir: d}\ntrain:\n  "+tc.yaml+"\n"), "x.yaml")
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		got, err := c.Train.ClassWeight.For(counts)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: weights %v, %v; want %v", tc.yaml, got, err, tc.want)
		}
		b, err := c.Marshal(".")
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(b, "x.yaml")
		if err != nil {
			t.Fatalf("%q: the marshalled copy does not load: %v\n%s", tc.yaml, err, b)
		}
		if back.Train.ClassWeight.String() != c.Train.ClassWeight.String() {
			t.Errorf("%q: marshalled as %s, read back as %s", tc.yaml, c.Train.ClassWeight, back.Train.ClassWeight)
		}
	}
	c, _ := Parse([]byte("data: {dir: d}\ntrain: {class_weight: balanced}\n"), "x.yaml")
	if _, err := c.Train.ClassWeight.For([]int{5, 0}); err == nil {
		t.Error("balanced weights for a class without examples")
	}
	other, _ := Parse([]byte("data: {dir: d}\n"), "x.yaml")
	if cs := Diff(other, c); len(cs) != 1 || cs[0].String() != "train.class_weight changed from none to balanced" || cs[0].Resume {
		t.Errorf("Diff = %v", cs)
	}
}

func TestValidateCodeBuiltConfig(t *testing.T) {
	c := Default()
	c.Data.Dir = "d"
	// The folders Load fills in must be given.
	err := c.Validate()
	for _, w := range []string{"config: run.dir: required", "config: cache.dir: required", "config: data.preprocess: required"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate without run.dir and cache.dir: %v, want %q", err, w)
		}
	}
	c.Run.Dir, c.Cache.Dir, c.Data.Preprocess = "runs/r", "runs/feature-cache", "caffe"
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults with a data dir: %v", err)
	}
	c.Train.Batch = 0
	c.Head.Layers = []int{64, 0}
	c.Head.Dropout = math.NaN()
	c.Train.Adam.WeightDecay = math.Inf(1)
	err = c.Validate()
	for _, w := range []string{"config: train.batch: 0 is outside [1, 65536]", "config: head.layers[1]: width 0 is outside [1, 65536]",
		"config: head.dropout: NaN is outside [0, 1)", "config: train.adam.weight_decay: +Inf must be a finite number ≥ 0"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate: %v, want %q", err, w)
		}
	}
}

// TestLRSchedule pins the rates: PyTorch's StepLR and CosineAnnealingLR
// (T_max the epochs after warm-up) stepped once per epoch, after a linear
// warm-up.
func TestLRSchedule(t *testing.T) {
	cos := func(e, n float64) float64 { return 0.1 + (1-0.1)*(1+math.Cos(math.Pi*e/n))/2 }
	for _, tc := range []struct {
		name   string
		s      LRSchedule
		epochs int
		want   []float64
	}{
		{"constant", LRSchedule{Kind: "constant"}, 3, []float64{1, 1, 1}},
		{"step", LRSchedule{Kind: "step", StepEpochs: 2, Gamma: 0.5}, 5, []float64{1, 1, 0.5, 0.5, 0.25}},
		{"cosine", LRSchedule{Kind: "cosine", MinLR: 0.1}, 4, []float64{1, cos(1, 4), cos(2, 4), cos(3, 4)}},
		{"warm-up, then cosine", LRSchedule{Kind: "cosine", MinLR: 0.1, WarmupEpochs: 2}, 5, []float64{1.0 / 3, 2.0 / 3, 1, cos(1, 3), cos(2, 3)}},
		{"warm-up, then constant", LRSchedule{Kind: "constant", WarmupEpochs: 1}, 3, []float64{0.5, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for e, want := range tc.want {
				if got := tc.s.Rate(1, e, tc.epochs); math.Abs(got-want) > 1e-15 {
					t.Errorf("epoch %d: rate %v, want %v", e, got, want)
				}
			}
			if active := tc.name != "constant"; tc.s.Active() != active {
				t.Errorf("Active() = %v, want %v", tc.s.Active(), active)
			}
		})
	}
}

// TestSet overrides settings as train --set does: present or absent from
// the file, any YAML value, paths relative to the working folder, and
// errors that name the set.
func TestSet(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sub", "x.yaml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := "data:\n  dir: d\n  image_size: [64, 64]\ntrain:\n  epochs: 3\nhead:\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		sets  []string
		check func(c *Config) bool
	}{
		{"none", nil, func(c *Config) bool {
			return c.Train.Epochs == 3 && c.Data.Dir == filepath.Join(filepath.Dir(file), "d")
		}},
		{"present", []string{"train.epochs=7"}, func(c *Config) bool { return c.Train.Epochs == 7 }},
		{"absent, in a present section", []string{"train.batch=8"}, func(c *Config) bool { return c.Train.Batch == 8 && c.Train.Epochs == 3 }},
		{"absent section", []string{"train.adam.lr=3e-4", "train.adam.beta1=0.8"}, func(c *Config) bool {
			return c.Train.Adam.LR == 3e-4 && c.Train.Adam.Beta1 == 0.8 && c.Train.Adam.Beta2 == 0.999
		}},
		{"empty section", []string{"head.dropout=0.5"}, func(c *Config) bool { return c.Head.Dropout == 0.5 }},
		{"list", []string{"data.image_size=[32, 48]"}, func(c *Config) bool { return slices.Equal(c.Data.ImageSize, []int{32, 48}) }},
		{"bool and string", []string{"data.flip_augmentation=true", "train.lr_schedule.kind=cosine"}, func(c *Config) bool {
			return c.Data.FlipAugmentation && c.Train.LRSchedule.Kind == "cosine"
		}},
		{"the last one wins", []string{"train.epochs=7", "train.epochs=9"}, func(c *Config) bool { return c.Train.Epochs == 9 }},
		{"paths from the working folder", []string{"run.dir=runs/lr3", "data.dir=other"}, func(c *Config) bool {
			return c.Run.Dir == filepath.Join(wd, "runs/lr3") && c.Data.Dir == filepath.Join(wd, "other") &&
				c.Cache.Dir == filepath.Join(wd, "runs", "feature-cache")
		}},
		{"a name", []string{"backbone.weights=imagenet"}, func(c *Config) bool { return c.Backbone.Weights == "imagenet" }},
		{"an empty path", []string{"backbone.weights="}, func(c *Config) bool { return c.Backbone.Weights == "" }},
		{"a null path", []string{"data.validation_dir=null", "backbone.weights=~"}, func(c *Config) bool {
			return c.Data.ValidationDir == "" && c.Backbone.Weights == ""
		}},
		{"paths in a section set whole", []string{"run={dir: myrun, keep: 2}", "data={dir: other, validation_dir: val}"}, func(c *Config) bool {
			return c.Run.Dir == filepath.Join(wd, "myrun") && c.Run.Keep == 2 && c.Data.Dir == filepath.Join(wd, "other") &&
				c.Data.ValidationDir == filepath.Join(wd, "val") && slices.Equal(c.Data.ImageSize, []int{224, 224})
		}},
		{"an absolute path", []string{"run.dir=" + filepath.Join(dir, "abs")}, func(c *Config) bool { return c.Run.Dir == filepath.Join(dir, "abs") }},
	} {
		c, err := Load(file, tc.sets...)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !tc.check(c) {
			t.Errorf("%s: %+v", tc.name, c)
		}
	}

	for _, tc := range []struct {
		set  string
		want string
	}{
		{"train.epochs", "--set train.epochs: want key=value"},
		{"=3", "--set =3: want key=value"},
		{"train..epochs=3", "--set train..epochs=3: want key=value"},
		{"train.epochs=ten", `--set train.epochs=ten: train.epochs: want a whole number, got str "ten"`},
		{"train.epochs=0", "--set train.epochs=0: train.epochs: 0 must be at least 1"},
		{"train.epoch=3", `--set train.epoch=3: train.epoch: unknown key "epoch" in train`},
		{"model.layers=[1]", `--set model.layers=[1]: model: unknown key "model" at the top level`},
		{"data.image_size.x=1", "--set data.image_size.x=1: data.image_size: is a list, not a section with a key \"x\""},
		{"data.image_size=[32, 48", "--set data.image_size=[32, 48: data.image_size: YAML syntax"},
		{"train.adam=0.1", "--set train.adam=0.1: train.adam: want a mapping"},
	} {
		_, err := Load(file, tc.set)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %s: error %v, want one containing %q", tc.set, err, tc.want)
		}
	}
	// An error in the file still names its line.
	if err := os.WriteFile(file, []byte(yaml+"  layers: [a]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(file, "train.epochs=2"); err == nil || !strings.Contains(err.Error(), "x.yaml:7:12: head.layers[0]") {
		t.Errorf("error %v, want one naming x.yaml:7:12", err)
	}
}

func TestCheckedByContent(t *testing.T) {
	for _, tc := range []struct {
		c    Change
		want bool
	}{
		{Change{Path: "backbone.weights", From: `"/a/w.h5"`, To: `"/b/w2.h5"`}, true},
		{Change{Path: "backbone.weights", From: `"/a/w.h5"`, To: `"imagenet"`}, true},
		{Change{Path: "backbone.weights", From: `""`, To: `"/a/w.h5"`}, false}, // random weights for a file
		{Change{Path: "backbone.weights", From: `"/a/w.h5"`, To: `""`}, false},
		{Change{Path: "data.dir", From: `"/a"`, To: `"/b"`}, true},
		{Change{Path: "data.validation_dir", From: `"/a/v"`, To: `"/b/v"`}, true},
		{Change{Path: "data.validation_dir", From: `""`, To: `"/b/v"`}, false}, // a split for a folder
		{Change{Path: "data.image_size", From: `[224 224]`, To: `[160 160]`}, false},
		{Change{Path: "data.classes", From: `[]`, To: `["cats" "dogs"]`}, true},
		{Change{Path: "data.max_pixels", From: `50000000`, To: `80000000`}, true},
	} {
		if got := tc.c.CheckedByContent(); got != tc.want {
			t.Errorf("%v: CheckedByContent = %v, want %v", tc.c, got, tc.want)
		}
	}
}
