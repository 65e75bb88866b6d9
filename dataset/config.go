package dataset

import (
	"fmt"
	"runtime"
	"strings"
)

// Default values filled in by [Config.WithDefaults].
const (
	DefaultSize      = 224
	DefaultMaxPixels = 50_000_000
	// Preprocessing modes accepted in Config.Preprocess.
	PreprocessCaffe = "caffe" // Keras ResNet50: RGB->BGR, minus the ImageNet BGR means
	PreprocessTorch = "torch" // /255, minus the ImageNet mean, divided by its std
	PreprocessNone  = "none"  // RGB values in 0..255, unchanged
)

// Config says where the images are and how they become network inputs.
// The zero value of every field except Root is usable: call
// [Config.WithDefaults] (every function of this package does) to fill them.
type Config struct {
	// Root holds one sub-folder per class: Root/<class>/**/<image>.
	Root string
	// Classes, if not empty, lists the class folders to use and fixes their
	// order (label i is Classes[i]); other folders are ignored. Empty means
	// every non-hidden sub-folder of Root, sorted (Keras' order).
	Classes []string
	// MinClasses is the fewest classes Scan accepts: 2 when zero, as
	// training needs; 1 to score a test folder holding one of them.
	MinClasses int
	// Height and Width of the network input, 224 when zero.
	Height, Width int
	// ValidationSplit is the fraction of each class held out for
	// validation, in [0, 1), on average: each file is chosen by a hash of
	// (Seed, path) alone, so a small class may get more, fewer or none.
	ValidationSplit float64
	// ValidationRoot, if set, holds the validation images in the same
	// layout as Root (ValidationRoot/<class>/**/<image>), as in the common
	// train/ and validation/ folders; every image of Root is then a
	// training image and ValidationSplit must be 0.
	ValidationRoot string
	// Seed for the validation split and the per-epoch shuffles.
	Seed int64
	// Workers is the number of decode goroutines; 0 means runtime.NumCPU().
	Workers int
	// MaxPixels is the largest width*height decoded; larger images are
	// skipped after reading only their header. 0 means 50 megapixels.
	MaxPixels int
	// FollowSymlinks makes Scan follow symbolic links to files and folders
	// (with loop protection); otherwise they are ignored.
	FollowSymlinks bool
	// IgnoreEXIF turns off the JPEG EXIF orientation (Keras ignores it).
	IgnoreEXIF bool
	// CropToAspectRatio centre-crops each image to the target aspect
	// ratio before resizing, as Keras' crop_to_aspect_ratio does.
	CropToAspectRatio bool
	// Preprocess is "caffe" (default), "torch" or "none".
	Preprocess string
	// FastJPEG decodes a large JPEG at 1/2, 1/4 or 1/8 of its size, in
	// the DCT domain (PIL's Image.draft, decode_jpeg's ratio), the
	// smallest that still leaves it Height x Width (after its EXIF
	// rotation), before the crop to the aspect ratio and the resize: about
	// twice as fast on photos of many megapixels, and a smoother downscale,
	// but not Keras' pixels. Not with RandomCrop (a crop needs the full
	// image's resolution).
	FastJPEG bool
	// HorizontalFlip mirrors every image left to right after resizing: the
	// augmented copy whose features the pipeline caches beside the
	// originals' (Keras' RandomFlip("horizontal")).
	HorizontalFlip bool
	// RandomCrop, if set, replaces each image by a random crop of it before
	// resizing (one copy of PyTorch's RandomResizedCrop), after the EXIF
	// orientation. With CropToAspectRatio the crop is drawn inside the
	// centred box, as an augmentation layer after Keras' loading would: the
	// crops zoom into what the plain image shows. It mirrors the crops
	// itself (RandomCrop.Flip), so it excludes HorizontalFlip.
	RandomCrop *RandomCrop
	// Extensions, if set, are the only file name extensions Scan reads as
	// images (lower case, with the dot), a subset of Extensions(): a run
	// begun by an older version resumes on the files it read.
	Extensions []string
}

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Height == 0 {
		c.Height = DefaultSize
	}
	if c.Width == 0 {
		c.Width = DefaultSize
	}
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = DefaultMaxPixels
	}
	if c.Preprocess == "" {
		c.Preprocess = PreprocessCaffe
	}
	if c.MinClasses <= 0 {
		c.MinClasses = 2
	}
	return c
}

// validate reports the first invalid field of a defaulted Config.
func (c Config) validate() error {
	switch {
	case c.Height <= 0 || c.Width <= 0:
		return fmt.Errorf("dataset: invalid target size %dx%d", c.Width, c.Height)
	case !(c.ValidationSplit >= 0 && c.ValidationSplit < 1):
		return fmt.Errorf("dataset: validation split %v not in [0, 1)", c.ValidationSplit)
	case c.FastJPEG && c.RandomCrop != nil:
		return fmt.Errorf("dataset: FastJPEG with RandomCrop: a crop needs the full image's resolution")
	case c.ValidationRoot != "" && c.ValidationSplit != 0:
		return fmt.Errorf("dataset: validation split %v with a validation folder (%s): use one or the other", c.ValidationSplit, c.ValidationRoot)
	}
	for _, e := range c.Extensions {
		if !extensions[e] {
			return fmt.Errorf("dataset: extension %q is not one of the images read (%s)", e, strings.Join(Extensions(), " "))
		}
	}
	if _, err := newPreprocessor(c.Preprocess); err != nil {
		return err
	}
	if c.RandomCrop != nil {
		if c.HorizontalFlip {
			return fmt.Errorf("dataset: HorizontalFlip with a random crop (%v): mirror the crops with RandomCrop.Flip", c.RandomCrop)
		}
		return c.RandomCrop.validate()
	}
	return nil
}
