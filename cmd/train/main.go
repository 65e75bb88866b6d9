// Command train trains an image classifier from a labelled folder: a
// frozen ResNet50 computes (and caches) features, and a dense head learns
// from them with Adam or SGD.
//
//	train --config configs/cats_dogs.yaml            a new run
//	train --config configs/cats_dogs.yaml --resume   continue from the last checkpoint
//	train --config C --check-data                    decode every image once and report
//	train --config C --summary                       the backbone and head, like Keras
//	train --config C --find-lr                       the learning-rate range test
//	train --config C --set train.adam.lr=3e-4 --set run.dir=runs/lr3e-4
//
// --set overrides a setting of the file (a sweep without a file per run);
// the run's config.yaml records the result, so such a run resumes with
// train --config runs/lr3e-4/config.yaml --resume.
//
// Ctrl-C, SIGTERM or SIGHUP (a closed terminal or ssh session; ignored
// under nohup) stops a training at its next step and saves a checkpoint
// to --resume from; a second one kills at once.
//
// --check-data exits non-zero when a class has no usable image, or none
// for training (the split put them all in validation), which training
// refuses; interrupted, it prints no report.
//
// --find-lr extracts (or reads) the features as training would, then trains
// a fresh head for 100 steps while the learning rate grows from 1e-7 to 10,
// and writes the loss against the rate to lr_find.png and lr_find.csv in
// the run folder, with a suggested rate (fastai's lr_find valley, looked
// for as fastai does, past the first tenth of the steps and before the
// last 5; torch-lr-finder's steepest fall); it changes nothing else there.
//
// See configs/cats_dogs.yaml for every setting.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"gotransfer/configs"
	"gotransfer/dataset"
	"gotransfer/internal/cli"
	"gotransfer/model/head"
	"gotransfer/model/pretrained"
	"gotransfer/model/resnet"
	"gotransfer/pipeline"
)

func main() { cli.Main("train", run) }

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "the run's YAML configuration (see configs/cats_dogs.yaml)")
	resume := fs.Bool("resume", false, "continue the run from its newest intact checkpoint")
	checkData := fs.Bool("check-data", false, "decode every image once, print classes, counts, unusable files, files not read for their extension and duplicate files, and exit")
	summary := fs.Bool("summary", false, "print the backbone and head layers and parameter counts, and exit")
	findLR := fs.Bool("find-lr", false, "run the learning-rate range test (100 steps of a fresh head, lr 1e-7 to 10), write lr_find.png and lr_find.csv to the run folder, suggest a rate, and exit")
	verbose := fs.Bool("v", false, "verbose logging")
	var sets []string
	fs.Func("set", "override one setting of the configuration, `key=value` (value in YAML: train.adam.lr=0.0003, data.image_size=[160,160]); paths relative to the working folder; repeat for more", func(s string) error {
		sets = append(sets, s)
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: train --config FILE [--set key=value ...] [--resume | --check-data | --summary | --find-lr]\n\nflags:\n")
		fs.PrintDefaults()
	}
	rest, err := cli.Parse(fs, args, stderr)
	if err != nil {
		return err
	}
	switch {
	case *config == "":
		return cli.Usagef("--config is required (e.g. --config configs/cats_dogs.yaml)")
	case len(rest) > 0:
		return cli.Usagef("unexpected arguments %q", rest)
	case *findLR && (*resume || *checkData || *summary):
		return cli.Usagef("--find-lr runs alone: not with --resume, --check-data or --summary")
	case *checkData && (*resume || *summary):
		return cli.Usagef("--check-data runs alone: not with --resume or --summary")
	case *summary && *resume:
		return cli.Usagef("--summary runs alone: not with --resume")
	}
	cli.Init(stderr, *verbose)
	cfg, err := configs.Load(*config, sets...)
	if err != nil {
		return err
	}
	// The first Ctrl-C (SIGTERM, SIGHUP) stops at the next step and saves;
	// a second one kills at once.
	ctx, stop := cli.StopContext()
	defer stop()
	switch {
	case *checkData:
		return checkDataset(ctx, cfg, stdout, stderr)
	case *summary:
		return printSummary(cfg, stdout)
	}
	opts := pipeline.Options{Resume: *resume, Out: stdout}
	if *findLR {
		opts.FindLR = &pipeline.LRFinder{}
	}
	_, err = pipeline.Train(ctx, cfg, opts)
	if errors.Is(err, pretrained.ErrInterrupted) {
		return err
	}
	if errors.Is(err, context.Canceled) && *findLR {
		return errors.New("interrupted: the features extracted so far are cached")
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted: the features extracted and the training steps made so far are saved: continue with --resume")
	}
	return err
}

// checkDataset decodes every image once and prints what training would see.
func checkDataset(ctx context.Context, cfg *configs.Config, stdout, stderr io.Writer) error {
	progress := pipeline.NewProgress(stderr) // the report alone on stdout
	start := time.Now()
	checked := 0
	sum, err := dataset.Check(ctx, pipeline.DataConfig(cfg), nil, func(done, total int) {
		checked = done
		progress.Bar("checking", done, total, fmt.Sprintf("%.0f images/s", float64(done)/time.Since(start).Seconds()))
	})
	progress.Clear()
	if errors.Is(err, context.Canceled) {
		// A report of the images checked so far would read as the data's.
		return fmt.Errorf("interrupted after checking %d images: no report (it needs them all)", checked)
	}
	if sum != nil {
		sum.WriteTo(stdout)
	}
	return err
}

// printSummary prints the backbone's and the head's layers, and the
// combined model's, as Keras' model.summary() would for the Keras original
// (ResNet50 without its top, global average pooling, the dense head).
func printSummary(cfg *configs.Config, stdout io.Writer) error {
	var arch *resnet.Arch
	var err error
	switch {
	case pretrained.IsName(cfg.Backbone.Weights): // no need to fetch them for their layers
		if arch, err = resnet.NewArch(resnet.Variant(cfg.Backbone.Variant), 64); err != nil {
			return err
		}
	case cfg.Backbone.Weights != "":
		w, err := resnet.Load(cfg.Backbone.Weights)
		if err != nil {
			return err
		}
		arch = w.Arch
	default:
		if arch, err = resnet.NewArch(resnet.Keras, cfg.Backbone.RandomWidth); err != nil {
			return err
		}
	}
	classes := len(cfg.Data.Classes)
	if classes == 0 {
		idx, err := dataset.Scan(pipeline.DataConfig(cfg))
		if err != nil {
			return err
		}
		classes = len(idx.Classes)
	}
	h, err := head.New(pipeline.HeadConfig(cfg, arch.FeatureDim(), classes))
	if err != nil {
		return err
	}
	return pipeline.WriteTransferSummary(stdout, arch, cfg.Data.ImageSize[0], cfg.Data.ImageSize[1], h)
}
