package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"gotransfer/checkpoints"
	"gotransfer/configs"
	"gotransfer/dataset"
	"gotransfer/features"
	"gotransfer/internal/atomicfile"
	"gotransfer/internal/filelock"
	"gotransfer/internal/tensorio"
	"gotransfer/internal/texttable"
	"gotransfer/model/head"
	"gotransfer/model/pretrained"
	"gotransfer/model/resnet"
)

// Options are the choices of one invocation, beside the configuration.
type Options struct {
	// Resume continues from the run folder's last checkpoint.
	Resume bool
	// FindLR, if set, runs the learning-rate range test instead of
	// training: the features as training has them, a fresh head, and
	// lr_find.csv and lr_find.png in the run folder; nothing else in it
	// changes (a run's checkpoints and configuration are left alone).
	FindLR *LRFinder
	// Out receives the progress and per-epoch lines (a live bar when it is
	// a terminal).
	Out io.Writer
}

// RunInfo is what a checkpoint records of its run beyond the head, so that
// `predict --checkpoint` can rebuild the whole classifier.
type RunInfo struct {
	Config *configs.Config `json:"config"`
	// Weights is the backbone weights file: the configured one, or the
	// run folder's backbone.npz for calibrated random weights.
	Weights       string `json:"weights"`
	WeightsSHA256 string `json:"weights_sha256"`
	FeatureDim    int    `json:"feature_dim"`
	// Data is a digest of the examples the head trains and validates on
	// (each one's label and image sha256, in order), with the counts: a
	// resume on other images could not go on as the run would have, and is
	// refused. Features digests their feature values: they differ when the
	// cache was computed again (batches of another size round otherwise),
	// which a resume warns of.
	Data          string `json:"images_sha256,omitempty"`
	Features      string `json:"features_sha256,omitempty"`
	TrainExamples int    `json:"train_examples,omitempty"`
	ValExamples   int    `json:"validation_examples,omitempty"`
	// Extensions are those of the files read as images; absent in runs
	// begun before TIFF was read, whose resume reads
	// dataset.LegacyExtensions, so that it finds the images it trained on.
	Extensions []string `json:"extensions,omitempty"`
}

// RunLockFile is the file in a run folder that a training holds locked
// (an advisory flock, where the platform has it) while it runs.
const RunLockFile = "train.lock"

// Result sums up a finished run.
type Result struct {
	// LRFinding is the range test's outcome, with Options.FindLR.
	LRFinding *LRFinding
	History   []EpochMetrics
	Confusion *Confusion // nil without a validation split
	Skipped   int
	RunDir    string
}

// Train runs the whole pipeline for cfg: scan the data, extract (or read)
// the features, train the head, checkpoint, report.
func Train(ctx context.Context, cfg *configs.Config, opts Options) (*Result, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	// A configuration built in code gets the checks Load makes.
	if cfg == nil {
		return nil, errors.New("train: no configuration")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	progress := NewProgress(opts.Out)
	defer progress.Clear() // an error, printed next, does not land after a live bar
	runDir := cfg.Run.Dir
	ckDir := filepath.Join(runDir, "checkpoints")
	finding := opts.FindLR != nil
	if finding && opts.Resume {
		return nil, errors.New("the learning-rate finder starts a fresh head: it does not resume")
	}
	// One training at a time in a run folder: two would overwrite each
	// other's checkpoints and metrics.
	if err := os.MkdirAll(runDir, 0o777); err != nil {
		return nil, fmt.Errorf("run folder: %w", err)
	}
	if !finding { // the finder writes its own two files only, atomically
		unlock, ok, err := filelock.TryLock(filepath.Join(runDir, RunLockFile))
		if err != nil {
			return nil, fmt.Errorf("run folder %s: %w", runDir, err)
		}
		if !ok {
			return nil, fmt.Errorf("run folder %s is in use by another train (it holds %s): wait for it to end, or set run.dir to another folder", runDir, RunLockFile)
		}
		defer unlock()
		removeLeftovers(runDir)
	}
	var applied []configs.Change
	var mgr *checkpoints.Manager
	var last checkpoints.Info
	lastErr := checkpoints.ErrNoCheckpoint
	if !finding {
		var err error
		// The manager first: it removes what a save killed part-way left,
		// which is no checkpoint to prepareRunDir.
		if mgr, err = checkpoints.NewManager(ckDir, checkpoints.Options{Keep: cfg.Run.Keep}); err != nil {
			return nil, err
		}
		if applied, err = prepareRunDir(cfg, opts.Resume); err != nil {
			return nil, err
		}
		// Resuming from a checkpoint: nothing in the run folder may change
		// until the resume is accepted (but for the leftovers of killed
		// writes, removed above: they hold nothing).
		last, lastErr = mgr.Latest()
		if opts.Resume && lastErr != nil && !errors.Is(lastErr, checkpoints.ErrNoCheckpoint) {
			// Damaged checkpoints are no reason to start again from nothing.
			return nil, fmt.Errorf("resume: %w", lastErr)
		}
	}
	resuming := opts.Resume && lastErr == nil
	// The run as its newest checkpoint describes it; a resume that cannot
	// go on is refused before the work of preparing the data.
	var was RunInfo
	var resumeFrom *checkpoints.Checkpoint
	var damaged []checkpoints.Damaged // newer than resumeFrom, set aside once the resume is accepted
	if resuming {
		ck, dmg, err := mgr.LatestIntact()
		for _, d := range dmg {
			slog.Warn("resume: a damaged checkpoint, passed over", "path", d.Dir, "err", d.Err)
		}
		if err != nil {
			return nil, fmt.Errorf("resume: no checkpoint in %s loads (%d damaged; move them away to train again from the start); the newest: %w", ckDir, len(dmg), err)
		}
		if len(dmg) > 0 {
			progress.Line("resume: %d newer checkpoint(s) damaged (corrupt or truncated files): resuming from %s, the newest intact one; the steps since are trained again, to the same result", len(dmg), ck.Dir)
		}
		resumeFrom, damaged, last = ck, dmg, checkpoints.Info{Dir: ck.Dir, Manifest: ck.Manifest}
		if err := optimizerCanResume(last.Dir, ck.Manifest, cfg.Train.Optimizer, cfg.Train.Optimizer == "sgd" && cfg.Train.SGD.Momentum > 0); err != nil {
			return nil, err
		}
		_ = json.Unmarshal(ck.Manifest.Run, &was) // a run described otherwise is checked by its config hash alone
		if was.Config != nil {
			// Whether the learning rate changed is the checkpoint's to say:
			// config.yaml may hold a rate no checkpoint trained with (a
			// resume with nothing to train, or killed before its first
			// checkpoint, wrote it), or be gone.
			_, path := cfg.Train.LR()
			isLR := func(c configs.Change) bool { return c.Path == path }
			changed := slices.DeleteFunc(configs.Diff(was.Config, cfg), func(c configs.Change) bool { return !isLR(c) })
			if i := slices.IndexFunc(applied, isLR); i >= 0 { // in its place among the others
				applied = slices.Replace(applied, i, i+1, changed...)
			} else {
				applied = append(applied, changed...)
			}
			if was.Data == "" {
				// Data settings changed are accepted on the images'
				// digest, which checkpoints from before it was recorded
				// lack.
				var changed []string
				for _, c := range configs.Diff(was.Config, cfg) {
					if c.CheckedByContent() && strings.HasPrefix(c.Path, "data.") {
						changed = append(changed, c.String())
					}
				}
				if len(changed) > 0 {
					return nil, fmt.Errorf("resume: checkpoint %s does not record its images' sha256, so its data settings cannot change: %s (put them back: data.dir was %s)", last.Dir, strings.Join(changed, "; "), was.Config.Data.Dir)
				}
			}
		}
	}
	if len(applied) > 0 {
		var lines []string
		for _, c := range applied {
			lines = append(lines, c.String())
		}
		progress.Line("resuming with changed settings: %s", strings.Join(lines, "; "))
	}

	dcfg := DataConfig(cfg)
	if resuming && was.Config != nil {
		dcfg.Extensions = was.Extensions
		if dcfg.Extensions == nil {
			dcfg.Extensions = dataset.LegacyExtensions
		}
	}
	idx, err := dataset.Scan(dcfg)
	if err != nil {
		return nil, err
	}
	// Known now, before the weights load and the features are extracted.
	if resuming && !slices.Equal(resumeFrom.Manifest.Classes, idx.Classes) {
		// The images' digest knows labels by number: names renamed or
		// listed in another order would pass it.
		return nil, fmt.Errorf("resume: the classes are %q, checkpoint %s's are %q: put the class folders (or data.classes) back as they were, or train a new run (another run.dir)", idx.Classes, last.Dir, resumeFrom.Manifest.Classes)
	}
	if n := len(cfg.Train.ClassWeight.Weights); n > 0 && n != len(idx.Classes) {
		return nil, fmt.Errorf("%s: train.class_weight: %d weights for the %d classes %q: want one per class, in this order", cfg.File, n, len(idx.Classes), idx.Classes)
	}
	trainFiles := make([]int, len(idx.Classes))
	for _, s := range idx.Train {
		trainFiles[s.Label]++
	}
	if c := slices.Index(trainFiles, 0); c >= 0 {
		return nil, fmt.Errorf("%w: class %q has no training image: the split put all its files in validation (add images, or change data.seed or data.validation_split)", dataset.ErrNoUsableImages, idx.Classes[c])
	}
	// Random weights are calibrated on the training images once and saved,
	// so that predict can rebuild this exact backbone; a resume reads them
	// back rather than calibrating on what may be other images now (and
	// overwriting what the checkpoints need).
	weightsPath := cfg.Backbone.Weights
	var weights *resnet.Weights
	_, calibrated := os.Stat(filepath.Join(runDir, "backbone.npz"))
	switch {
	case weightsPath == "" && (resuming || finding && calibrated == nil):
		// The finder uses a run's calibrated weights as they are.
		weightsPath = filepath.Join(runDir, "backbone.npz")
		if weights, err = resnet.Load(weightsPath); err != nil {
			return nil, fmt.Errorf("the run's calibrated random weights: %w", err)
		}
	case weightsPath == "":
		weightsPath = filepath.Join(runDir, "backbone.npz")
		if weights, err = LoadWeights(ctx, cfg); err == nil {
			weights, err = calibrate(ctx, weights, dcfg, idx.Train)
		}
		if err != nil {
			return nil, err
		}
		// The finder saves nothing: training calibrates the same again.
		if !finding {
			if err := weights.Save(weightsPath); err != nil {
				return nil, fmt.Errorf("save calibrated random weights: %w", err)
			}
		}
	default:
		if weightsPath, err = WeightsFile(ctx, cfg); err == nil {
			weights, err = loadWeightsFile(cfg, weightsPath)
		}
		if err != nil {
			return nil, err
		}
	}
	if weightsPath, err = filepath.Abs(weightsPath); err != nil {
		return nil, err
	}
	// Weights are known by their content, wherever they are now: checked
	// before the extraction they would otherwise run.
	if resuming && was.WeightsSHA256 != "" && was.WeightsSHA256 != weights.Digest() {
		return nil, fmt.Errorf("resume: the backbone weights %s are not those of checkpoint %s (sha256 %.12s, trained with %.12s)", weightsPath, last.Dir, weights.Digest(), was.WeightsSHA256)
	}
	bb, err := resnet.New(weights, cfg.Backbone.Device)
	if err != nil {
		return nil, err
	}
	defer bb.Close()
	progress.Line("backbone: ResNet50 (%s, width %d, %d features) on %s, from %s",
		weights.Arch.Variant, weights.Arch.Width, bb.FeatureDim(), cmp.Or(cfg.Backbone.Device, "cpu"), weights.Source)

	skips := &dataset.SkipLog{}
	cache, err := features.Open(cfg.Cache.Dir, CacheKey(cfg, weights), bb.FeatureDim())
	if err != nil {
		return nil, err
	}
	all := append(append([]dataset.Sample(nil), idx.Train...), idx.Validation...)
	progress.Line("data: %d classes %s, %d training and %d validation images; feature cache %s (%d images cached)",
		len(idx.Classes), texttable.List(idx.Classes, MaxClassesNamed), len(idx.Train), len(idx.Validation), cache.Dir(), cache.Len())
	if ign := idx.IgnoredString(); ign != "" {
		progress.Line("not read, as not images by their extension: %s", ign)
	}
	extractStart := time.Now()
	kept, digests, feats, err := extract(ctx, cfg, dcfg, bb, cache, all, nil, skips, "features", progress)
	if !resuming && !finding { // a resume's once it is accepted
		writeSkips(runDir, skips)
	}
	if err != nil {
		return nil, err
	}
	if n := skips.Len(); n > 0 {
		if finding {
			progress.Line("skipped %d unusable files (train --check-data lists them)", n)
		} else {
			progress.Line("skipped %d unusable files (listed in %s)", n, filepath.Join(runDir, "skipped.jsonl"))
		}
	}
	progress.Line("features ready in %s", time.Since(extractStart).Round(time.Millisecond))
	isValidation := make(map[string]bool, len(idx.Validation))
	for _, s := range idx.Validation {
		isValidation[s.Path] = true
	}
	if ds := dataset.FindDuplicates(kept, digests, func(i int) bool { return isValidation[kept[i].Path] }); len(ds) > 0 {
		cross, relabelled := dataset.CountDuplicates(ds)
		progress.Line("%d files are copies of others (the same bytes): %d in another class, %d across training and validation; train --check-data lists them", len(ds), relabelled, cross)
	}
	sums := make(map[string][32]byte, len(kept)) // the files' digests, for the views and the resume check
	for i, s := range kept {
		sums[s.Path] = digests[i]
	}
	train, val, err := splitFeatures(idx, kept, feats)
	if err != nil {
		return nil, err
	}
	if val.Len() == 0 {
		// As Keras warns: these callbacks watch val_loss.
		if cfg.Train.EarlyStopping.Patience > 0 {
			slog.Warn("train.early_stopping needs validation images (data.validation_split > 0 or data.validation_dir): it is off")
		}
		if cfg.Train.ReduceLR.Patience > 0 {
			slog.Warn("train.reduce_lr_on_plateau needs validation images (data.validation_split > 0 or data.validation_dir): it is off")
		}
	}
	variants, err := augmentedFeatures(ctx, cfg, dcfg, weights, bb, train, sums, progress)
	if err != nil {
		return nil, err
	}

	h, err := NewHead(cfg, bb.FeatureDim(), len(idx.Classes))
	if err != nil {
		return nil, err
	}
	if err := setClassWeights(h, cfg.Train.ClassWeight, train, idx.Classes, progress); err != nil {
		return nil, err
	}
	opt, err := NewOptimizer(cfg, h.Params())
	if err != nil {
		return nil, err
	}
	if finding {
		return findLR(ctx, &Trainer{Head: h, Opt: opt, Train: train, TrainVariants: variants, Batch: cfg.Train.Batch, Seed: cfg.Data.Seed, Progress: progress},
			*opts.FindLR, runDir, progress)
	}
	run := RunInfo{Config: cfg, Weights: weightsPath, WeightsSHA256: weights.Digest(), FeatureDim: bb.FeatureDim(),
		Data: imagesDigest(sums, train, val), Features: featuresDigest(train, val), TrainExamples: train.Len(), ValExamples: val.Len(),
		Extensions: dcfg.Extensions}
	if run.Extensions == nil {
		run.Extensions = dataset.Extensions()
	}
	info, err := json.Marshal(run)
	if err != nil {
		return nil, err
	}
	t := &Trainer{
		Head: h, Opt: opt, Train: train, TrainVariants: variants, Val: val, Classes: idx.Classes,
		Epochs: cfg.Train.Epochs, Batch: cfg.Train.Batch, Seed: cfg.Data.Seed,
		Every: cfg.Run.CheckpointEvery, Patience: cfg.Train.EarlyStopping.Patience, MinDelta: cfg.Train.EarlyStopping.MinDelta,
		LRPatience: cfg.Train.ReduceLR.Patience, LRFactor: cfg.Train.ReduceLR.Factor,
		LRMinDelta: cfg.Train.ReduceLR.MinDelta, MinLR: cfg.Train.ReduceLR.MinLR,
		Checkpoints: mgr, ConfigHash: cfg.Hash(), Run: info, RunDir: runDir, Progress: progress,
	}
	if s := cfg.Train.LRSchedule; s.Active() {
		base, _ := cfg.Train.LR()
		t.LRSchedule = func(epoch int) float64 { return s.Rate(base, epoch, cfg.Train.Epochs) }
	}
	if opts.Resume {
		switch {
		case errors.Is(lastErr, checkpoints.ErrNoCheckpoint):
			progress.Line("resume: no checkpoint in %s yet, starting from the beginning", ckDir)
		default: // any other error of Latest's was returned above
			ck := resumeFrom
			if ck.Manifest.ConfigHash != cfg.Hash() {
				if refused, ok := hashRefusals(was.Config, cfg); !ok {
					return nil, fmt.Errorf("resume: checkpoint %s was written with another configuration%s (start a new run folder for a new configuration)", last.Dir, refused)
				}
			}
			if was.Data != "" && was.Data != run.Data {
				readNow := ""
				if skipped := readNowSkippedBefore(runDir, kept); len(skipped) > 0 {
					drop := make(map[string]bool, len(skipped))
					names := make([]string, len(skipped))
					for i, sk := range skipped {
						drop[sk.Path], names[i] = true, fmt.Sprintf("%s (%s)", sk.Path, sk.Reason)
					}
					readNow = fmt.Sprintf("; %d file(s) the run skipped are read now (this build decodes what an older one could not, or they were replaced): %s",
						len(names), texttable.List(names, MaxClassesNamed))
					if imagesDigest(sums, train.without(drop), val.without(drop)) == was.Data {
						readNow += "; with them moved out of the data folder, it resumes"
					}
				}
				if was.Config != nil && was.Config.Data.MaxPixels != cfg.Data.MaxPixels {
					readNow += fmt.Sprintf("; data.max_pixels changed from %d to %d, which lets other files in or out: set it back", was.Config.Data.MaxPixels, cfg.Data.MaxPixels)
				}
				return nil, fmt.Errorf("resume: the images changed since checkpoint %s (%d training and %d validation images then, %d and %d now, or some differ): "+
					"the run could not go on as it would have; put the images back as they were, or train a new run (another run.dir)%s",
					last.Dir, was.TrainExamples, was.ValExamples, run.TrainExamples, run.ValExamples, readNow)
			}
			if was.Features != "" && was.Features != run.Features {
				slog.Warn("resume: the same images, but their cached features are not the bits the checkpoint trained on (the feature cache was computed again, e.g. with another backbone.batch): the run goes on, but will not end byte for byte as an uninterrupted one", "checkpoint", last.Dir)
			}
			if err := t.Resume(ck); err != nil {
				return nil, err
			}
			// The checkpoint's learning rate (the schedule's) goes on,
			// unless the configuration sets a new one.
			if lr, path := cfg.Train.LR(); slices.ContainsFunc(applied, func(c configs.Change) bool { return c.Path == path }) {
				if err := opt.SetLR(lr); err != nil {
					return nil, err
				}
			}
			if e := ck.Manifest.Epoch; e >= cfg.Train.Epochs {
				// Also part-way through an epoch train.epochs, lowered since, no longer reaches.
				trained := fmt.Sprintf("%d epoch(s)", e)
				if s := ck.Manifest.StepInEpoch; s > 0 {
					trained += fmt.Sprintf(" and %d step(s) of the next,", s)
				}
				progress.Line("resumed from %s: the run has trained %s and train.epochs is %d, so there is nothing to train; to train on, raise train.epochs (e.g. --set train.epochs=%d)", last.Dir, trained, cfg.Train.Epochs, e+10)
			} else {
				progress.Line("resumed from %s: epoch %d, step %d of the epoch (global step %d)", last.Dir, ck.Manifest.Epoch+1, ck.Manifest.StepInEpoch, ck.Manifest.Step)
			}
		}
	}
	// Only now, with the resume accepted: a refused one changes nothing.
	if resuming {
		writeSkips(runDir, skips)
		for _, d := range damaged {
			if _, err := mgr.SetAside(d.Info); err != nil {
				return nil, err
			}
		}
	}
	if err := writeRunConfig(cfg); err != nil {
		return nil, err
	}
	history, err := t.Fit(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{History: history, Skipped: skips.Len(), RunDir: runDir}
	var plots []string // written beside the metrics
	if val.Len() > 0 {
		// The confusion matrix of the best checkpoint's head is what a user
		// will deploy; that of the last epoch is what Keras shows. Show the
		// last, saved next to the metrics.
		conf, probs, err := t.ValidationPredictions()
		if err != nil {
			return nil, err
		}
		if plots, err = WriteEvaluationPlots(runDir, conf, probs, val.Y); err != nil {
			return nil, fmt.Errorf("plots: %w", err)
		}
		var mistakes []Mistake
		for i, p := range probs {
			if pred := head.Argmax(p); pred != val.Y[i] {
				mistakes = append(mistakes, Mistake{Path: val.Samples[i].Path, True: val.Y[i], Pred: pred, Probability: p[pred]})
			}
		}
		sortMistakes(mistakes)
		if drawn, err := writeMistakes(runDir, dcfg, idx.Classes, mistakes, "validation images"); err != nil {
			return nil, fmt.Errorf("plots: %w", err)
		} else if drawn {
			plots = append(plots, MistakesFile)
		}
		for _, f := range []string{"roc.png", MistakesFile} {
			if !slices.Contains(plots, f) { // not an earlier run's
				if err := os.Remove(filepath.Join(runDir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, err
				}
			}
		}
		// The file gets the whole matrix, the terminal what it can show of
		// it; both the same scores.
		var matrix, shown, scores strings.Builder
		conf.WriteTo(&matrix)
		conf.WriteShown(&shown)
		conf.WriteScores(&scores)
		if err := atomicfile.WriteFile(filepath.Join(runDir, "confusion.txt"), []byte(matrix.String()+"\n"+scores.String())); err != nil {
			return nil, err
		}
		progress.Line("validation confusion matrix (rows: true class) and scores:\n%s\n%s", shown.String(), strings.TrimRight(scores.String(), "\n"))
		res.Confusion = conf
	}
	if best, err := mgr.Best(); err == nil {
		// predict --checkpoint <run> uses this one.
		if e := best.Manifest.Epoch; e >= 1 && e <= len(history) && history[e-1].HasVal {
			progress.Line("best checkpoint: epoch %d (val_loss %.4f, val_accuracy %.4f), checkpoints/best", e, history[e-1].ValLoss, history[e-1].ValAcc)
		}
	}
	files := []string{"checkpoints/last"}
	if _, err := os.Stat(filepath.Join(ckDir, checkpoints.BestLink)); err == nil { // none without validation
		files = append(files, "checkpoints/best")
	}
	files = append(files, "metrics.jsonl", "metrics.csv", "metrics.png")
	if res.Confusion != nil {
		files = append(files, "confusion.txt")
	}
	files = append(files, plots...)
	progress.Line("run folder %s: %s, tensorboard/", runDir, strings.Join(files, ", "))
	progress.Line("next: predict --checkpoint %s IMAGE... (--explain DIR to see where it looks; or --evaluate FOLDER, or --serve :8080)", shellQuote(runDir))
	return res, nil
}

// findLR runs the range test on t and reports it into runDir.
func findLR(ctx context.Context, t *Trainer, f LRFinder, runDir string, progress *Progress) (*Result, error) {
	r, err := t.FindLR(ctx, f)
	if err != nil {
		return nil, err
	}
	if err := writeLRFinding(runDir, r); err != nil {
		return nil, err
	}
	if len(r.Points) == 0 {
		return nil, fmt.Errorf("learning-rate finder: the loss was not finite at the first step (lr %g)", cmp.Or(f.Start, LRFinder{}.withDefaults().Start))
	}
	last := r.Points[len(r.Points)-1]
	if r.Diverged {
		progress.Line("learning-rate finder: the loss diverged at lr %.2g after %d steps", last.LR, len(r.Points))
	} else {
		progress.Line("learning-rate finder: %d steps up to lr %.2g, no divergence (the rate can go higher)", len(r.Points), last.LR)
	}
	if r.Suggested > 0 {
		progress.Line("suggested learning rate: %.2g (fastai's valley: half-way down the longest fall of the loss); steepest fall at %.2g, lowest loss at %.2g (a tenth: %.2g)",
			r.Suggested, r.Steepest, r.MinLoss, r.MinLoss/10)
	} else {
		progress.Line("no suggestion: too few steps (lowest loss at lr %.2g)", r.MinLoss)
	}
	progress.Line("plot: %s, values: %s", filepath.Join(runDir, "lr_find.png"), filepath.Join(runDir, "lr_find.csv"))
	return &Result{LRFinding: r, RunDir: runDir}, nil
}

// extract runs an Extraction of samples, its progress bar labelled label.
// sums, if not nil, holds the samples' file digests (see Extraction.Sums).
func extract(ctx context.Context, cfg *configs.Config, dcfg dataset.Config, bb resnet.Backbone, cache *features.Cache,
	samples []dataset.Sample, sums map[string][32]byte, skips *dataset.SkipLog, label string, progress *Progress) ([]dataset.Sample, [][32]byte, *tensor.Dense, error) {
	start := time.Now()
	ex := &Extraction{
		Data: dcfg, Backbone: bb, Cache: cache, Batch: cfg.Backbone.Batch, Shard: cfg.Cache.ShardSize, Skips: skips, Sums: sums,
		Progress: func(done, total int) {
			elapsed := time.Since(start)
			eta := time.Duration(float64(elapsed) / float64(done) * float64(total-done))
			progress.Bar(label, done, total, fmt.Sprintf("%.1f images/s, ETA %s", float64(done)/elapsed.Seconds(), eta.Round(time.Second)))
		},
	}
	return ex.Features(ctx, samples)
}

// augmentation is an augmented view of the training images whose features
// are cached: its name in progress lines, its cache key and how its images
// are read.
type augmentation struct {
	name string
	key  features.Key
	data dataset.Config
}

// augmentations lists the views cfg asks for: the mirrored images (flip
// augmentation), then each random crop (crop augmentation, mirrored at
// random too with flip augmentation).
func augmentations(cfg *configs.Config, dcfg dataset.Config, key features.Key) []augmentation {
	var as []augmentation
	if cfg.Data.FlipAugmentation {
		a := augmentation{name: "mirrored", key: key, data: dcfg}
		a.key.Flip, a.data.HorizontalFlip = true, true
		as = append(as, a)
	}
	ca := cfg.Data.CropAugmentation
	for k := range ca.Copies {
		crop := &dataset.RandomCrop{Seed: cfg.Data.Seed, Copy: k, Scale: [2]float64(ca.Scale), Ratio: [2]float64(ca.Ratio), Flip: cfg.Data.FlipAugmentation}
		a := augmentation{name: fmt.Sprintf("crop %d/%d", k+1, ca.Copies), key: key, data: dcfg}
		a.key.RandomCrop, a.data.RandomCrop = crop.String(), crop
		// A crop needs the full image's resolution.
		a.key.FastJPEG, a.data.FastJPEG = false, false
		as = append(as, a)
	}
	return as
}

// augmentedFeatures extracts (or reads from their own caches) the features
// of each augmented view of the training images, row for row with train.
// Validation images are never augmented.
func augmentedFeatures(ctx context.Context, cfg *configs.Config, dcfg dataset.Config, w *resnet.Weights, bb resnet.Backbone,
	train Split, sums map[string][32]byte, progress *Progress) ([]Split, error) {
	var out []Split
	for _, a := range augmentations(cfg, dcfg, CacheKey(cfg, w)) {
		cache, err := features.Open(cfg.Cache.Dir, a.key, bb.FeatureDim())
		if err != nil {
			return nil, err
		}
		start := time.Now()
		got, _, feats, err := extract(ctx, cfg, a.data, bb, cache, train.Samples, sums, &dataset.SkipLog{}, a.name+" features", progress)
		if err != nil {
			return nil, fmt.Errorf("%s features: %w", a.name, err)
		}
		if len(got) != len(train.Samples) {
			// The same files decoded a moment ago: only a file changed on
			// disk in between gets here.
			return nil, fmt.Errorf("%s features: %d of the %d training images could not be read again", a.name, len(train.Samples)-len(got), len(train.Samples))
		}
		progress.Line("%s features ready in %s (cache %s)", a.name, time.Since(start).Round(time.Millisecond), cache.Dir())
		out = append(out, Split{X: feats, Y: train.Y, Samples: train.Samples})
	}
	return out, nil
}

// setClassWeights gives the head the configured class weights, computed
// from the training examples of each class, and prints them.
func setClassWeights(h *head.Head, cw configs.ClassWeight, train Split, classes []string, progress *Progress) error {
	counts := make([]int, len(classes))
	for _, y := range train.Y {
		counts[y]++
	}
	ws, err := cw.For(counts)
	if err != nil || ws == nil {
		return err
	}
	if err := h.SetClassWeights(ws); err != nil {
		return fmt.Errorf("train.class_weight: %w", err)
	}
	weight := func(k int) string { return fmt.Sprintf("%s %.4g (%d examples)", classes[k], ws[k], counts[k]) }
	if len(ws) > MaxClassesNamed {
		lo := slices.Index(ws, slices.Min(ws))
		hi := slices.Index(ws, slices.Max(ws))
		progress.Line("class weights (%s) of %d classes: from %s to %s", cw, len(ws), weight(lo), weight(hi))
		return nil
	}
	parts := make([]string, len(ws))
	for k := range ws {
		parts[k] = weight(k)
	}
	progress.Line("class weights (%s): %s", cw, strings.Join(parts, ", "))
	return nil
}

// MaxClassesNamed is the most classes a line of output names one by one
// (texttable.List).
const MaxClassesNamed = 12

// removeLeftovers removes the temporary files that writes into the run
// folder killed part-way left (backbone.npz's: tens of MB at full width),
// but those of the files --find-lr writes: it takes no lock, and may be
// writing them. Only the folder itself: the checkpoint manager cleans its
// own, and a feature cache (or predict's plots) may live in a sub-folder,
// written by others meanwhile.
func removeLeftovers(runDir string) {
	entries, err := os.ReadDir(runDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if name := e.Name(); e.Type().IsRegular() && strings.HasPrefix(name, atomicfile.TempPrefix) && !strings.HasPrefix(name, atomicfile.TempPrefix+"lr_find.") {
			slog.Info("removing leftover of an interrupted write", "path", filepath.Join(runDir, name))
			os.Remove(filepath.Join(runDir, name))
		}
	}
}

// prepareRunDir creates the run folder and saves the configuration in it.
// A fresh run refuses a folder that already has checkpoints; a resumed run
// refuses a configuration whose data, backbone or head changed, and returns
// the other changes (epochs, learning rate, ...), which apply from here on.
func prepareRunDir(cfg *configs.Config, resume bool) (applied []configs.Change, err error) {
	runDir := cfg.Run.Dir
	saved := filepath.Join(runDir, "config.yaml")
	if entries, _ := os.ReadDir(filepath.Join(runDir, "checkpoints")); len(entries) > 0 && !resume {
		return nil, fmt.Errorf("run folder %s already has checkpoints: add --resume (Options.Resume) to continue it, or set run.dir to a new folder", runDir)
	}
	if resume {
		if old, err := configs.Load(saved); err == nil {
			var refused []string
			for _, c := range configs.Diff(old, cfg) {
				// Weights or images whose place changed may be the same:
				// their sha256s, checked against the checkpoint's once
				// read, decide.
				if c.Resume && !c.CheckedByContent() {
					refused = append(refused, c.String())
				} else {
					applied = append(applied, c)
				}
			}
			if len(refused) > 0 {
				return nil, fmt.Errorf("cannot resume %s: %s (start a new run folder for a new configuration)", runDir, strings.Join(refused, "; "))
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("resume: %w", err)
		}
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("run folder: %w", err)
	}
	if _, err := os.Stat(saved); !resume || errors.Is(err, os.ErrNotExist) {
		// A new run says at once what it is (replacing what a start that
		// failed before its first checkpoint said), so that a resume after
		// a kill during extraction is checked against it; an existing
		// one is rewritten only once a resume is accepted.
		return applied, writeRunConfig(cfg)
	}
	return applied, nil
}

// hashRefusals judges a resume whose configuration hash differs from its
// checkpoint's: ok where was (the configuration the checkpoint recorded)
// differs from cfg in settings checked by content alone (the places of
// the weights and images), else the settings that differ, as ": data.image_size changed
// from ...; ..." (nothing where the checkpoint recorded none).
func hashRefusals(was, cfg *configs.Config) (refused string, ok bool) {
	if was == nil {
		return "", false
	}
	changes := configs.HashDiff(was, cfg)
	var lines []string
	for _, c := range changes {
		if !c.CheckedByContent() {
			lines = append(lines, c.String())
		}
	}
	if len(lines) == 0 {
		return "", len(changes) > 0
	}
	return ": " + strings.Join(lines, "; "), false
}

// shellQuote returns s as a POSIX shell word: as it is when it has only
// characters no shell treats specially, else in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./+,:@%=", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeRunConfig saves the configuration in the run folder, where the next
// --resume compares against it.
func writeRunConfig(cfg *configs.Config) error {
	raw, err := cfg.Marshal(cfg.Run.Dir)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(cfg.Run.Dir, "config.yaml"), raw)
}

// DataConfig is the dataset's view of a configuration.
func DataConfig(cfg *configs.Config) dataset.Config {
	d := cfg.Data
	return dataset.Config{
		Root: d.Dir, Classes: d.Classes, Height: d.ImageSize[0], Width: d.ImageSize[1],
		ValidationSplit: d.ValidationSplit, ValidationRoot: d.ValidationDir, Seed: d.Seed, Workers: d.Workers, MaxPixels: d.MaxPixels,
		FollowSymlinks: d.FollowSymlinks, IgnoreEXIF: !d.EXIFOrientation, CropToAspectRatio: d.CropToAspectRatio,
		Preprocess: d.Preprocess, FastJPEG: d.FastJPEG,
	}
}

// HeadConfig is the head's view of a configuration, for features of
// inputDim values and the given number of classes. The seed is data.seed,
// which also fixes the dropout masks.
func HeadConfig(cfg *configs.Config, inputDim, classes int) head.Config {
	return head.Config{InputDim: inputDim, Hidden: cfg.Head.Layers, Classes: classes, Seed: uint64(cfg.Data.Seed), Dropout: cfg.Head.Dropout}
}

// NewHead makes the head of a configuration, for features of inputDim
// values and the given number of classes, with its loss: label-smoothed
// as train.label_smoothing says (class weights, which need the training
// examples, are set apart).
func NewHead(cfg *configs.Config, inputDim, classes int) (*head.Head, error) {
	h, err := head.New(HeadConfig(cfg, inputDim, classes))
	if err != nil {
		return nil, err
	}
	if err := h.SetLabelSmoothing(cfg.Train.LabelSmoothing); err != nil {
		return nil, fmt.Errorf("train.label_smoothing: %w", err)
	}
	return h, nil
}

// NewOptimizer makes the optimizer train.optimizer names, with its
// settings, for params. On resume all of them apply as configured, changed
// or not, but the learning rate, which the checkpoint's replaces unless the
// optimizer's lr differs from the one the checkpoint's run configured (see
// Train).
func NewOptimizer(cfg *configs.Config, params []head.Param) (head.Optimizer, error) {
	switch t := cfg.Train; t.Optimizer {
	case "adam":
		a := t.Adam
		return head.NewAdam(head.AdamConfig{LR: a.LR, Beta1: a.Beta1, Beta2: a.Beta2, Epsilon: a.Epsilon, WeightDecay: a.WeightDecay}, params)
	case "sgd":
		s := t.SGD
		return head.NewSGD(head.SGDConfig{LR: s.LR, Momentum: s.Momentum, Nesterov: s.Nesterov, WeightDecay: s.WeightDecay}, params)
	default:
		return nil, fmt.Errorf("train.optimizer: %q: want adam or sgd", t.Optimizer)
	}
}

// WeightsFile returns the configured backbone weights file: backbone.weights,
// or the file of the published weights it names (model/pretrained), found
// on this machine or downloaded once.
func WeightsFile(ctx context.Context, cfg *configs.Config) (string, error) {
	if !pretrained.IsName(cfg.Backbone.Weights) {
		return cfg.Backbone.Weights, nil
	}
	return pretrained.Path(ctx, cfg.Backbone.Weights, cfg.Backbone.Variant, false)
}

// LoadWeights loads the configured backbone weights (see WeightsFile), or
// makes the deterministic random ones of a smoke run.
func LoadWeights(ctx context.Context, cfg *configs.Config) (*resnet.Weights, error) {
	if cfg.Backbone.Weights != "" {
		path, err := WeightsFile(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return loadWeightsFile(cfg, path)
	}
	slog.Warn("backbone.weights is empty: using deterministic RANDOM weights (a smoke run; features from random weights separate classes only weakly)",
		"width", cfg.Backbone.RandomWidth, "seed", cfg.Data.Seed)
	return resnet.Random(cfg.Backbone.RandomWidth, 0, uint64(cfg.Data.Seed))
}

// loadWeightsFile loads the weights file at path, which must be of the
// configured variant.
func loadWeightsFile(cfg *configs.Config, path string) (*resnet.Weights, error) {
	w, err := resnet.Load(path)
	if err != nil {
		return nil, err
	}
	if string(w.Arch.Variant) != cfg.Backbone.Variant {
		return nil, fmt.Errorf("backbone.variant is %s, but %s holds %s weights: set backbone.variant: %s (and check data.preprocess)", cfg.Backbone.Variant, path, w.Arch.Variant, w.Arch.Variant)
	}
	return w, nil
}

// calibrationImages is how many training images set the BatchNorm
// statistics of random weights.
const calibrationImages = 32

// calibrate sets random weights' BatchNorm statistics from the first
// training images (in the index's fixed order, so every run of a
// configuration gets the same weights). See resnet.Calibrate.
func calibrate(ctx context.Context, w *resnet.Weights, dcfg dataset.Config, train []dataset.Sample) (*resnet.Weights, error) {
	// Spread the picks over the classes: the index lists them class by class.
	step := max(1, len(train)/calibrationImages)
	var picks []dataset.Sample
	for i := 0; i < len(train) && len(picks) < calibrationImages; i += step {
		picks = append(picks, train[i])
	}
	for b, err := range dataset.Stream(ctx, dcfg, picks, len(picks), &dataset.SkipLog{Logger: slog.New(slog.DiscardHandler)}) {
		if err != nil && !errors.Is(err, dataset.ErrNoUsableImages) {
			return nil, fmt.Errorf("calibrate random weights: %w", err)
		}
		if err == nil {
			defer b.Release()
			return resnet.Calibrate(w, b.Images)
		}
	}
	return nil, errors.New("calibrate random weights: no usable training image")
}

// CacheKey is what the configuration's features depend on besides images.
func CacheKey(cfg *configs.Config, w *resnet.Weights) features.Key {
	d := cfg.Data
	return features.Key{Weights: w.Digest(), Preprocess: d.Preprocess, Height: d.ImageSize[0], Width: d.ImageSize[1], Crop: d.CropToAspectRatio, EXIF: d.EXIFOrientation,
		FastJPEG: d.FastJPEG}
}

// imagesDigest is the sha256 of the examples of each split, in order: the
// split's size, then each example's label and image sha256 (from sums, by
// sample path).
func imagesDigest(sums map[string][32]byte, splits ...Split) string {
	h := sha256.New()
	var b []byte
	for _, s := range splits {
		b = binary.LittleEndian.AppendUint64(b[:0], uint64(s.Len()))
		for i, smp := range s.Samples {
			d := sums[smp.Path]
			b = binary.LittleEndian.AppendUint32(b, uint32(s.Y[i]))
			b = append(b, d[:]...)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// featuresDigest is the sha256 of each split's size and feature values
// (little-endian float32), in order.
func featuresDigest(splits ...Split) string {
	h := sha256.New()
	for _, s := range splits {
		h.Write(binary.LittleEndian.AppendUint64(nil, uint64(s.Len())))
		if s.Len() > 0 {
			h.Write(tensorio.Float32Bytes(s.X.Float32s()))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// splitFeatures separates the kept samples' feature rows into the training
// and validation splits, and checks that every class kept a training image.
func splitFeatures(idx *dataset.Index, kept []dataset.Sample, feats *tensor.Dense) (train, val Split, err error) {
	inVal := make(map[string]bool, len(idx.Validation))
	for _, s := range idx.Validation {
		inVal[s.Path] = true
	}
	data := feats.Data().([]float32)
	dim := len(data) / len(kept)
	var tx, vx []float32
	perClass := make([]int, len(idx.Classes))
	for i, s := range kept {
		row := data[i*dim : (i+1)*dim]
		if inVal[s.Path] {
			vx = append(vx, row...)
			val.Y = append(val.Y, s.Label)
			val.Samples = append(val.Samples, s)
		} else {
			tx = append(tx, row...)
			train.Y = append(train.Y, s.Label)
			train.Samples = append(train.Samples, s)
			perClass[s.Label]++
		}
	}
	for c, n := range perClass {
		if n == 0 {
			return Split{}, Split{}, fmt.Errorf("%w: class %q has no usable training image", dataset.ErrNoUsableImages, idx.Classes[c])
		}
	}
	train.X = denseRows(tx, dim)
	if len(vx) > 0 {
		val.X = denseRows(vx, dim)
	}
	return train, val, nil
}

// readNowSkippedBefore returns the usable files kept that the run folder's
// skipped.jsonl, written by the start the checkpoints come from, lists as
// skipped, each with the reason then.
func readNowSkippedBefore(runDir string, kept []dataset.Sample) []dataset.Skip {
	raw, err := os.ReadFile(filepath.Join(runDir, "skipped.jsonl"))
	if err != nil {
		return nil
	}
	usable := make(map[string]bool, len(kept))
	for _, s := range kept {
		usable[s.Path] = true
	}
	var skipped []dataset.Skip
	for line := range bytes.Lines(raw) {
		var s dataset.Skip
		if json.Unmarshal(line, &s) == nil && usable[s.Path] {
			skipped = append(skipped, s)
		}
	}
	return skipped
}

// writeSkips saves the skipped files' report in the run folder.
func writeSkips(runDir string, skips *dataset.SkipLog) {
	path := filepath.Join(runDir, "skipped.jsonl")
	if skips.Len() == 0 {
		// An earlier start's list is not this one's.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			slog.Warn("could not remove the skipped-files report of an earlier start", "err", err)
		}
		return
	}
	if err := skips.WriteReport(path); err != nil {
		slog.Warn("could not write the skipped-files report", "err", err)
	}
}
