// Package configs reads the YAML configuration of a training run, strictly,
// and says what changed between two of them.
//
// # The file
//
// A configuration has six sections; cats_dogs.yaml in this folder shows
// every setting with its default and what it does, smoke.yaml a tiny run:
//
//	data:      dir (required), classes, image_size [h, w], validation_split
//	           or validation_dir, seed, workers, max_pixels, follow_symlinks, exif_orientation,
//	           crop_to_aspect_ratio, fast_jpeg, preprocess, flip_augmentation,
//	           crop_augmentation {copies, scale, ratio}
//	backbone:  weights, random_width, variant, device, batch
//	head:      layers, activation, dropout
//	train:     epochs, batch, optimizer (adam or sgd),
//	           adam {lr, beta1, beta2, epsilon, weight_decay},
//	           sgd {lr, momentum, nesterov, weight_decay},
//	           early_stopping {patience, min_delta},
//	           reduce_lr_on_plateau {patience, factor, min_delta, min_lr},
//	           lr_schedule {kind, step_epochs, gamma, min_lr, warmup_epochs},
//	           class_weight (none, balanced or [w0, w1, ...]), label_smoothing
//	run:       dir, checkpoint_every, keep
//	cache:     dir, shard_size
//
// Every setting but data.dir has a default (Default): a missing key takes
// it, an explicit value (0 and false included) is kept, and a null value
// (`key:` with nothing after it) means the default. Two defaults depend on
// other settings: data.preprocess follows backbone.variant (caffe for keras,
// torch for torchvision) and cache.dir is feature-cache next to the run
// folder. run.dir defaults to runs/<name of the file>.
//
// Relative paths (data.dir, data.validation_dir, backbone.weights, run.dir, cache.dir) are
// resolved against the folder of the configuration file, not the working
// directory, so a configuration means the same wherever it is run from.
//
// # Strictness
//
// Parse walks the YAML node tree itself rather than using yaml.v3's
// Decoder.KnownFields, because that reports lines but not columns, accepts a
// key given twice, and silently truncates 1.5 into an integer. Every
// problem is an *Error with the file, line and column of the offending key or
// value and the dotted path of the setting:
//
//	configs/x.yaml:14:3: train.batchsize: unknown key "batchsize" in train (known keys: epochs, batch, optimizer, adam, sgd, early_stopping, reduce_lr_on_plateau, lr_schedule, class_weight, label_smoothing)
//	configs/x.yaml:15:10: train.epochs: want a whole number, got str "ten"
//	configs/x.yaml:21:11: train.adam.lr: -0.001 must be positive (and below 1000)
//
// Values are checked for range after decoding, at the positions the walk
// recorded. All problems of a file are reported at once (errors.Join), and
// nothing is returned unless there are none, so a command can check its
// configuration before it starts any work.
//
// # Resuming
//
// Hash is a stable sha256 over the settings a resumed run must share with
// the run that wrote the checkpoints: classes, the data settings (but the
// number of workers), the backbone (but device and batch size) and the head.
// Training settings may change (more epochs, say), and so may locations:
// paths enter the hash by their last element only, and a weights file or
// data folder moved under another name, and the classes listed or the
// pixel limit changed, are left to the pipeline to compare by content
// (Change.CheckedByContent). Settings added since
// (data.flip_augmentation, data.crop_augmentation, head.dropout, ...) enter
// it only when on, so that runs begun before they existed still resume. Diff lists every setting
// that differs between two configurations, in words ("head.layers changed
// from [64 32] to [64 16]") and whether it is part of the hash, so that a
// refused resume can say why. Marshal writes a configuration with its paths
// relative to a folder, to keep a copy in the run folder that loads back to
// the same settings.
package configs
