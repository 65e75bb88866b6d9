// Command predict classifies images with a ResNet50 or a trained run,
// serves a run over HTTP, exports it to ONNX, writes image embeddings, or
// runs the network on an already-preprocessed batch for parity checks
// against Keras.
//
//	predict --weights resnet50.npz [--top 5] cat.jpg photos/ [more images or folders]
//	predict --weights imagenet cat.jpg   (Keras' published weights, fetched once)
//	predict --checkpoint runs/cats_dogs/checkpoints/best cat.jpg dog.png photos/
//	predict --checkpoint runs/cats_dogs [--tta] [--json] cat.jpg photos/
//	predict --checkpoint runs/cats_dogs --evaluate data/test [--csv scored.csv] [--plots DIR]
//	predict --checkpoint runs/cats_dogs --explain explained/ cat.jpg photos/
//	predict --weights imagenet --explain explained/ cat.jpg   (ImageNet's classes)
//	predict --checkpoint runs/cats_dogs --serve :8080
//	predict --checkpoint runs/cats_dogs --onnx cats_dogs.onnx
//	predict --weights W.npz --features-out f.npy photos/   (embeddings; paths in f.txt)
//	predict --weights W.npz --npy inputs.npy --features-out f.npy [--probs-out p.npy]
//	predict [--weights W.npz] --summary
//	predict --checkpoint runs/cats_dogs --summary
//
// With ImageNet weights (a file with the 'predictions' layer), each image's
// top classes are printed as Keras' decode_predictions gives them: rank,
// WordNet id, class name, probability. Images are decoded (JPEG, PNG, GIF,
// BMP, WebP, TIFF), resized to --size and preprocessed as the weights' variant
// expects ('caffe' for Keras, 'torch' for torchvision).
//
// With a checkpoint of a trained run, each image's probability of each of
// the run's classes is printed (with more classes than --top, the --top
// most probable); a folder argument classifies every image in it
// (recursively) and writes CSV (path, predicted class, one probability per
// class, error) to stdout; --csv writes that CSV to a file instead (or, as
// --csv -, to stdout), for
// files and folders alike; --json writes JSON Lines instead, for
// files and folders alike (an object per image: path, predicted,
// probabilities, as --serve answers; or path and error); --tta averages
// each image's probabilities with its mirror image's. Ctrl-C (SIGTERM,
// SIGHUP) stops between batches, a CSV ending with its last whole row.
// The backbone weights are those the run was trained with, found where
// training read them or beside the checkpoints, or given with --weights
// (checked by their sha256). --evaluate scores the run on a labelled
// folder laid out as for training (a class without a folder there is
// named and scored with no images): loss, accuracy (and, for more than 5
// classes, the top-5 accuracy), per-class precision, recall and F1 with
// their macro and weighted averages, the confusion matrix (for more than
// 20 classes, its 20 most frequent confusions), the most confident
// mistakes and, with --csv, every image's label, prediction and
// probabilities, with --plots the confusion matrix, ROC curve and most
// confident mistakes drawn.
// --explain prints each image's probabilities as for single
// files (folders included) and draws its Grad-CAM heatmap over it, into
// that folder as <image name>.gradcam.jpg: where the network found the
// evidence for the predicted class (or --explain-class); a picture wider
// or taller than a JPEG can be (65535 pixels, a panorama) is scaled down
// to fit. --onnx writes the
// run (or, with --weights alone, the network) as an ONNX model (see package
// gotransfer/model/onnx). --summary prints the run's backbone and head
// as train --summary prints them.
//
// --serve answers HTTP requests instead: POST an image file (as the body,
// or as a multipart form's one file) to /predict for its class
// probabilities as JSON,
//
//	{"predicted":"cats","probabilities":[{"class":"cats","probability":0.97},{"class":"dogs","probability":0.03}]}
//
// (in label order; /predict?top=K gives the K most probable, first),
// or an error as {"error": "..."} with status 400 (not an image), 408 (the
// body did not arrive within a minute), 413 (over 64 MiB), 503 (no memory
// for the upload in time) or 500; another method gets 405 (with Allow),
// another path 404, as JSON too. POST /explain (?class=NAME) answers the
// image's Grad-CAM picture as a JPEG, the prediction in the X-Prediction
// header. GET /info describes the run, GET /healthz answers "ok" and GET /
// is a page to try the classifier in a browser. Requests arriving
// together share a backbone pass (up to --batch images); Ctrl-C, SIGTERM
// or SIGHUP lets those in flight finish (for 30 s at most: then they are cut off and
// the command exits 1).
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/jpeg"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"gotransfer/dataset"
	"gotransfer/internal/atomicfile"
	"gotransfer/internal/cli"
	"gotransfer/internal/tensorio"
	"gotransfer/internal/term"
	"gotransfer/model"
	"gotransfer/model/imagenet"
	"gotransfer/model/onnx"
	"gotransfer/model/pretrained"
	"gotransfer/model/resnet"
	"gotransfer/pipeline"
)

func main() { os.Exit(command(os.Args[1:], os.Stdout, os.Stderr)) }

// command runs predict with args and returns its exit status, as cli.Main
// does; with no arguments at all it prints the usage and returns 2, as Go's
// tools do.
func command(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		newFlagSet(&options{}, stderr).Usage()
		return 2
	}
	return cli.Run("predict", args, stdout, stderr, run)
}

type options struct {
	weights, device, preprocess  string
	checkpoint, csvOut, evaluate string
	serve, onnxOut               string
	explain, explainClass        string
	jsonOut, topSet, tta         bool
	// progress shows how far a long run over images is, on stderr, where
	// the results are not what the user watches (see run).
	progress                     *pipeline.Progress
	plots                        string
	npyIn, featuresOut, probsOut string
	top, size, batch             int
	summary, ignoreEXIF, verbose bool
	images                       []string
}

// newFlagSet returns predict's flags, set into o, with its usage text,
// which goes to stderr.
func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("predict", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.weights, "weights", "", "ResNet50 weights `file`: the project's .npz, Keras' .h5 or a torchvision .pth (see README), or published weights by name, downloaded once: imagenet (Keras'), IMAGENET1K_V1 or IMAGENET1K_V2 (torchvision's); with --checkpoint, the very file the run was trained with, for a run moved to another machine (default: where training read it, or a file of its name in the run folder)")
	fs.StringVar(&o.checkpoint, "checkpoint", "", "a trained run's checkpoint `folder` (e.g. runs/cats_dogs/checkpoints/best; a run folder means its best checkpoint): classify with its classes")
	fs.StringVar(&o.evaluate, "evaluate", "", "with --checkpoint: score the run on this labelled `folder` (one sub-folder per class, as for training; a class without one is scored with no images) and print loss, accuracy (and, for more than 5 classes, top-5 accuracy), per-class scores and their averages, the confusion matrix (for more than 20 classes, its 20 most frequent confusions) and the --top most confident mistakes")
	fs.StringVar(&o.serve, "serve", "", "with --checkpoint: answer HTTP requests on this `address` (e.g. :8080): POST an image to /predict for JSON probabilities, to /explain for its Grad-CAM picture; GET /info, /healthz")
	fs.StringVar(&o.onnxOut, "onnx", "", "export the classifier (with --checkpoint) or the network (with --weights) to this ONNX `file` and exit: decoded RGB images (N, H, W, 3), 0-255, any size, in; probabilities and features out")
	fs.StringVar(&o.explain, "explain", "", "write a Grad-CAM heatmap of each image, drawn over it, into this `folder` (<image name>.gradcam.jpg): where the network found the evidence for the class (with --checkpoint, the run's; with --weights, ImageNet's)")
	fs.StringVar(&o.explainClass, "explain-class", "", "with --explain: the `class` whose evidence to draw (default: each image's most probable class)")
	fs.BoolVar(&o.tta, "tta", false, "with --checkpoint: test-time augmentation: each image's probabilities are the mean of its own and its mirror image's (classifying, --evaluate, --serve, --explain's predictions), at twice the backbone's work")
	fs.BoolVar(&o.jsonOut, "json", false, "with --checkpoint (or --explain): write JSON Lines instead of text or CSV, an object per image: {\"path\", \"predicted\", \"probabilities\": [{\"class\", \"probability\"}, ...]} as --serve answers (every class in label order, or with --top the most probable first; with --explain also \"gradcam\" and \"gradcam_class\"), or {\"path\", \"error\"}")
	fs.StringVar(&o.plots, "plots", "", "with --evaluate: draw the confusion matrix (confusion.png), for two classes the ROC curve (roc.png), and the most confident mistakes (mistakes.png) into this `folder`")
	fs.StringVar(&o.csvOut, "csv", "", "with --checkpoint: write the predictions as CSV to this `file` (- for stdout; a row per image, files and folders alike) instead of printing them; with --evaluate: write every image's label, prediction and probabilities to it (a file: not -)")
	fs.StringVar(&o.device, "device", "", "where the backbone runs: cpu or cuda (default cpu, or the checkpoint's)")
	fs.StringVar(&o.preprocess, "preprocess", "", "image preprocessing: caffe or torch (default: what the weights' variant was trained with, caffe for Keras, torch for torchvision)")
	fs.StringVar(&o.npyIn, "npy", "", "run on this preprocessed NHWC float32 batch (`.npy`) instead of image files")
	fs.StringVar(&o.featuresOut, "features-out", "", "write the pooled features (N, F) to this `.npy`: of the --npy batch, or of the images (then their paths go to the .txt of the same name, one per line in row order)")
	fs.StringVar(&o.probsOut, "probs-out", "", "with --npy: write the class probabilities (N, classes) to this `.npy`")
	fs.IntVar(&o.top, "top", 5, "how many classes to print per image, the most probable first (with --checkpoint: all, in label order, when the run has no more)")
	fs.IntVar(&o.size, "size", 224, "input size: images are resized to size x size")
	fs.IntVar(&o.batch, "batch", 16, "images per forward pass")
	fs.BoolVar(&o.summary, "summary", false, "print the network's layers and parameter counts, like Keras' model.summary(): with --checkpoint, the run's backbone and head, as train --summary prints them")
	fs.BoolVar(&o.ignoreEXIF, "ignore-exif", false, "do not apply JPEG EXIF orientation (Keras ignores it)")
	fs.BoolVar(&o.verbose, "v", false, "verbose logging")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: predict --weights W.npz [flags] image...\n       predict --checkpoint RUN [--weights W] [--csv out.csv | --json] [--tta] image-or-folder...\n       predict (--checkpoint RUN | --weights W) --explain out/ [--explain-class NAME] image-or-folder...\n       predict --checkpoint RUN --evaluate labelled-folder [--csv scored.csv] [--plots DIR]\n       predict --checkpoint RUN --serve :8080\n       predict --weights W.npz --npy inputs.npy --features-out f.npy [--probs-out p.npy]\n       predict --weights W.npz --features-out f.npy image-or-folder...\n       predict --checkpoint RUN --onnx model.onnx   (or --weights W --onnx model.onnx)\n       predict [--weights W.npz | --checkpoint RUN] --summary\n\nflags:\n")
		fs.PrintDefaults()
	}
	return fs
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := newFlagSet(o, stderr)
	images, err := cli.Parse(fs, args, stderr)
	if err != nil {
		return nil, err
	}
	o.images = images
	fs.Visit(func(f *flag.Flag) { o.topSet = o.topSet || f.Name == "top" })
	if o.checkpoint != "" {
		// A run reads images as it was trained to: flags that say otherwise
		// would be ignored.
		var ignored []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "size", "preprocess", "ignore-exif", "npy", "features-out", "probs-out":
				ignored = append(ignored, "--"+f.Name)
			}
		})
		if len(ignored) > 0 {
			return nil, cli.Usagef("--checkpoint reads images as the run was trained to: %s would be ignored", strings.Join(ignored, ", "))
		}
	}
	switch {
	case o.top < 1:
		return nil, cli.Usagef("--top %d: want at least 1", o.top)
	case o.size < 32:
		return nil, cli.Usagef("--size %d: want at least 32", o.size)
	case o.batch < 1:
		return nil, cli.Usagef("--batch %d: want at least 1", o.batch)
	case o.summary && (o.explain != "" || o.explainClass != "" || o.jsonOut):
		return nil, cli.Usagef("--summary prints the layers and exits: give no --explain or --json with it")
	case o.summary:
		return o, nil
	case o.checkpoint != "":
		if o.onnxOut != "" && (o.serve != "" || o.evaluate != "" || len(o.images) > 0 || o.csvOut != "" || o.explain != "") {
			return nil, cli.Usagef("--onnx exports and exits: give no images, --serve, --evaluate, --csv or --explain with it")
		}
		if o.serve != "" && (o.evaluate != "" || len(o.images) > 0 || o.csvOut != "") {
			return nil, cli.Usagef("--serve classifies what it is sent: give no images, --evaluate or --csv with it")
		}
		if o.explain != "" && (o.serve != "" || o.evaluate != "" || o.csvOut != "") {
			return nil, cli.Usagef("--explain draws over the images given: give no --serve, --evaluate or --csv with it")
		}
		if o.jsonOut && (o.csvOut != "" || o.evaluate != "" || o.serve != "" || o.onnxOut != "") {
			return nil, cli.Usagef("--json is for the images' predictions: not with --csv, --evaluate, --serve or --onnx")
		}
		if o.tta && o.onnxOut != "" {
			return nil, cli.Usagef("--tta is for predictions: not with --onnx")
		}
		if o.plots != "" && o.evaluate == "" {
			return nil, cli.Usagef("--plots goes with --evaluate")
		}
		if o.explainClass != "" && o.explain == "" {
			return nil, cli.Usagef("--explain-class goes with --explain")
		}
		if o.evaluate != "" && o.csvOut == "-" {
			return nil, cli.Usagef("--csv - with --evaluate: the scores print on stdout; give the CSV a file name")
		}
		if o.evaluate != "" && len(o.images) > 0 {
			return nil, cli.Usagef("--evaluate scores one labelled folder: give no images with it")
		}
		if o.evaluate == "" && o.serve == "" && o.onnxOut == "" && len(o.images) == 0 {
			return nil, cli.Usagef("no images given (try --help)")
		}
		return o, nil
	case o.evaluate != "":
		return nil, cli.Usagef("--evaluate needs --checkpoint (a trained run)")
	case o.csvOut != "":
		return nil, cli.Usagef("--csv needs --checkpoint (a trained run's classes)")
	case o.explainClass != "" && o.explain == "":
		return nil, cli.Usagef("--explain-class goes with --explain")
	case o.explain != "" && o.weights == "":
		return nil, cli.Usagef("--explain needs --checkpoint (a trained run's classes) or --weights (ImageNet's)")
	case o.explain != "" && (o.npyIn != "" || o.featuresOut != "" || o.probsOut != "" || o.onnxOut != ""):
		return nil, cli.Usagef("--explain draws over the images given: give no --npy, --features-out, --probs-out or --onnx with it")
	case o.explain != "" && len(o.images) == 0:
		return nil, cli.Usagef("no images given (try --help)")
	case o.explain != "" && o.tta:
		return nil, cli.Usagef("--tta needs --checkpoint (a trained run): ImageNet's explanations are of the image as it is")
	case o.explain != "":
		return o, nil
	case o.jsonOut:
		return nil, cli.Usagef("--json needs --checkpoint (a trained run)")
	case o.tta:
		return nil, cli.Usagef("--tta needs --checkpoint (a trained run)")
	case o.plots != "":
		return nil, cli.Usagef("--plots goes with --evaluate, which needs --checkpoint (a trained run)")
	case o.serve != "":
		return nil, cli.Usagef("--serve needs --checkpoint (a trained run)")
	case o.weights == "" && (o.npyIn != "" || o.featuresOut != "" || o.probsOut != ""):
		return nil, cli.Usagef("--npy, --features-out and --probs-out need --weights W (a ResNet50 .npz, .h5 or .pth, or imagenet; see README)")
	case o.weights == "":
		return nil, cli.Usagef("give --checkpoint RUN (a trained run) or --weights W (ImageNet predictions)")
	case o.onnxOut != "" && (o.npyIn != "" || o.featuresOut != "" || len(o.images) > 0):
		return nil, cli.Usagef("--onnx exports and exits: give no images, --npy or --features-out with it")
	case o.onnxOut != "":
		return o, nil
	case o.npyIn != "" && len(o.images) > 0:
		return nil, cli.Usagef("give either --npy or image files, not both")
	case o.npyIn != "" && o.featuresOut == "" && o.probsOut == "":
		return nil, cli.Usagef("--npy needs --features-out and/or --probs-out")
	case o.npyIn == "" && o.probsOut != "":
		return nil, cli.Usagef("--probs-out goes with --npy")
	case o.npyIn == "" && o.featuresOut != "" && !strings.HasSuffix(o.featuresOut, ".npy"):
		return nil, cli.Usagef("--features-out %s: want a .npy file name (the image paths go beside it, in .txt)", o.featuresOut)
	case o.npyIn == "" && len(o.images) == 0:
		return nil, cli.Usagef("no images given (try --help)")
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	cli.Init(stderr, o.verbose)
	if !o.summary {
		if err := checkPaths(o); err != nil {
			return err
		}
	}
	// Ctrl-C stops between batches and lets the deferred clean-ups run (a
	// temporary feature cache is removed); a second one kills at once.
	ctx, stop := cli.StopContext()
	defer stop()
	if pretrained.IsName(o.weights) && o.checkpoint == "" && !o.summary {
		// Published weights by name (with --checkpoint, LoadClassifier
		// looks them up for the run's variant): the full file where
		// ImageNet's classes are wanted, else the one without them.
		top := o.featuresOut == "" || o.probsOut != "" || o.onnxOut != ""
		if o.weights, err = pretrained.Path(ctx, o.weights, "", top); err != nil {
			return err
		}
	}
	if o.evaluate != "" || o.featuresOut != "" || o.csvOut != "" || !term.IsTerminal(stdout) {
		o.progress = pipeline.NewProgress(stderr)
	}
	err = dispatch(ctx, o, stdout)
	if errors.Is(err, pretrained.ErrInterrupted) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted")
	}
	return err
}

// checkPaths finds out, before any work, what would otherwise fail at its
// end: an output file whose name is a folder's, an output folder that
// cannot be made (missing ones are made, output files' folders as --plots'
// and --explain's), an --evaluate that is not a folder.
func checkPaths(o *options) error {
	type output struct{ flag, path string }
	outputs := []output{{"--csv", o.csvOut}, {"--onnx", o.onnxOut}, {"--features-out", o.featuresOut}, {"--probs-out", o.probsOut}}
	if o.featuresOut != "" && o.npyIn == "" {
		outputs = append(outputs, output{"--features-out", pathsFile(o.featuresOut)})
	}
	for _, out := range outputs {
		if out.path == "" || out.flag == "--csv" && out.path == "-" {
			continue
		}
		if st, err := os.Stat(out.path); err == nil && st.IsDir() || os.IsPathSeparator(out.path[len(out.path)-1]) {
			if out.flag == "--features-out" && out.path != o.featuresOut {
				return cli.Usagef("--features-out %s: the images' paths go to %s, a folder", o.featuresOut, out.path)
			}
			return cli.Usagef("%s %s: is a folder (want a file name)", out.flag, out.path)
		}
		if err := os.MkdirAll(filepath.Dir(out.path), 0o777); err != nil {
			return fmt.Errorf("%s %s: %w", out.flag, out.path, err)
		}
	}
	if o.plots != "" {
		if err := os.MkdirAll(o.plots, 0o777); err != nil {
			return fmt.Errorf("--plots %s: %w", o.plots, err)
		}
	}
	if o.evaluate != "" {
		st, err := os.Stat(o.evaluate)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("--evaluate %s: %w", o.evaluate, err)
		}
		if !st.IsDir() {
			return cli.Usagef("--evaluate %s: not a folder (want a folder with one sub-folder per class)", o.evaluate)
		}
	}
	return nil
}

// pathsFile is where --features-out's images' paths go: the .txt beside
// the .npy.
func pathsFile(featuresOut string) string { return strings.TrimSuffix(featuresOut, ".npy") + ".txt" }

func dispatch(ctx context.Context, o *options, stdout io.Writer) error {
	if o.summary {
		return summary(o, stdout)
	}
	if o.onnxOut != "" {
		return exportONNX(o)
	}
	if o.serve != "" {
		return serve(ctx, o, stdout)
	}
	if o.checkpoint != "" && o.evaluate != "" {
		return evaluate(ctx, o, stdout)
	}
	if o.explain != "" {
		return explain(ctx, o, stdout)
	}
	if o.checkpoint != "" {
		return classifyWithCheckpoint(ctx, o, stdout)
	}
	w, err := resnet.Load(o.weights)
	if err != nil {
		return err
	}
	bb, err := resnet.New(w, o.device)
	if err != nil {
		return err
	}
	defer bb.Close()
	if o.npyIn != "" {
		return parity(o, w, bb)
	}
	if o.featuresOut != "" {
		return extract(ctx, o, w, bb)
	}
	return classify(ctx, o, w, bb, stdout)
}

// summary prints the layers of --checkpoint's run (its backbone and head,
// as train --summary prints them), or of the weights' network, or of the
// full ImageNet ResNet50 when neither is given.
func summary(o *options, stdout io.Writer) error {
	if o.checkpoint != "" {
		return pipeline.WriteRunSummary(stdout, o.checkpoint)
	}
	arch, classes := (*resnet.Arch)(nil), 1000
	if pretrained.IsName(o.weights) { // its layers need no download
		file, err := pretrained.Lookup(o.weights, "", true)
		if err != nil {
			return err
		}
		if arch, err = resnet.NewArch(resnet.Variant(file.Variant), 64); err != nil {
			return err
		}
	} else if o.weights != "" {
		w, err := resnet.Load(o.weights)
		if err != nil {
			return err
		}
		arch, classes = w.Arch, w.Classes
	} else {
		var err error
		if arch, err = resnet.NewArch(resnet.Keras, 64); err != nil {
			return err
		}
	}
	return model.WriteSummary(stdout, "resnet50", arch.Layers(o.size, o.size, classes))
}

// parity runs the backbone on a preprocessed batch and writes its outputs.
func parity(o *options, w *resnet.Weights, bb resnet.Backbone) error {
	x, err := tensorio.ReadNPYFile(o.npyIn)
	if err != nil {
		return err
	}
	start := time.Now()
	feats, err := bb.Features(x)
	if err != nil {
		return fmt.Errorf("%s: %w", o.npyIn, err)
	}
	slog.Info("features computed", "images", x.Shape()[0], "seconds", time.Since(start).Seconds())
	if o.featuresOut != "" {
		if err := tensorio.WriteNPYFile(o.featuresOut, feats); err != nil {
			return err
		}
	}
	if o.probsOut != "" {
		probs, err := w.Classify(feats)
		if err != nil {
			return err
		}
		if err := tensorio.WriteNPYFile(o.probsOut, probs); err != nil {
			return err
		}
	}
	return nil
}

// classify prints the top classes of each image, in batches of o.batch. A
// folder stands for the images under it. An unusable image is reported in
// place of its classes and the others go on; the command then fails,
// naming the first.
func classify(ctx context.Context, o *options, w *resnet.Weights, bb resnet.Backbone, stdout io.Writer) error {
	if w.Classes == 0 {
		return fmt.Errorf("weights %s have no predictions layer (a 'notop' file): they cannot classify ImageNet classes", o.weights)
	}
	images, err := expandFolders(o.images)
	if err != nil {
		return err
	}
	cfg := imageConfig(o, w)
	var failures failures
	err = pipeline.ClassifyFiles(ctx, cfg, bb, w.Classify, images, o.batch, o.progress, func(path string, probs []float32, err error) error {
		if err != nil {
			failures.add(path, err)
			_, werr := fmt.Fprintf(stdout, "%s\n  error: %v\n", path, err)
			return werr
		}
		return printTop(stdout, path, probs, o.top)
	})
	if err != nil {
		return err
	}
	return failures.err(len(images))
}

// exportONNX writes --checkpoint's classifier, or --weights' network, to
// --onnx.
func exportONNX(o *options) error {
	if o.checkpoint != "" {
		if err := pipeline.ExportONNX(o.checkpoint, pipeline.ClassifierOptions{Weights: o.weights}, o.onnxOut); err != nil {
			return err
		}
		slog.Info("exported", "onnx", o.onnxOut)
		return nil
	}
	w, err := resnet.Load(o.weights)
	if err != nil {
		return err
	}
	perm, mul, add, err := dataset.Affine(imageConfig(o, w).Preprocess)
	if err != nil {
		return err
	}
	var classes []string
	if all, err := imagenet.Classes(); err == nil && w.Classes == len(all) {
		for _, c := range all {
			classes = append(classes, c.WNID+" "+c.Name)
		}
	}
	m := onnx.Model{Backbone: w, Preprocess: onnx.Preprocess{Perm: perm, Mul: mul, Add: add}, Height: o.size, Width: o.size, Classes: classes}
	if err := onnx.WriteFile(o.onnxOut, m); err != nil {
		return err
	}
	slog.Info("exported", "onnx", o.onnxOut)
	return nil
}

// imageConfig is how --weights modes read images: resized to --size,
// preprocessed as --preprocess says or as the weights' variant expects.
func imageConfig(o *options, w *resnet.Weights) dataset.Config {
	return dataset.Config{Height: o.size, Width: o.size, Preprocess: cmp.Or(o.preprocess, w.Arch.Variant.Preprocess()), IgnoreEXIF: o.ignoreEXIF}
}

// extract writes the backbone's features of the images (folders expanded)
// to --features-out, one row per usable image, and the images' paths, in
// the same order, one per line, to the .txt beside it.
func extract(ctx context.Context, o *options, w *resnet.Weights, bb resnet.Backbone) error {
	images, err := expandFolders(o.images)
	if err != nil {
		return err
	}
	cfg := imageConfig(o, w)
	var (
		failures failures
		rows     []float32
		paths    bytes.Buffer
	)
	identity := func(f *tensor.Dense) (*tensor.Dense, error) { return f, nil }
	err = pipeline.ClassifyFiles(ctx, cfg, bb, identity, images, o.batch, o.progress, func(path string, feats []float32, err error) error {
		if err == nil && strings.ContainsAny(path, "\r\n") {
			err = errors.New("its name has a line break, which the list of paths cannot hold")
		}
		if err != nil {
			failures.add(path, err)
			slog.Warn("unusable image: left out", "path", path, "err", err)
			return nil
		}
		rows = append(rows, feats...)
		fmt.Fprintln(&paths, path)
		return nil
	})
	if err != nil {
		return err
	}
	n, dim := len(images)-failures.n, bb.FeatureDim()
	if n == 0 {
		return failures.err(len(images))
	}
	if err := tensorio.WriteNPYFile(o.featuresOut, tensor.New(tensor.WithShape(n, dim), tensor.WithBacking(rows))); err != nil {
		return err
	}
	pathsOut := pathsFile(o.featuresOut)
	if err := atomicfile.WriteFile(pathsOut, paths.Bytes()); err != nil {
		return err
	}
	slog.Info("features written", "images", n, "features", dim, "npy", o.featuresOut, "paths", pathsOut)
	return failures.err(len(images))
}

// failures counts the images that could not be used, keeping the first
// reason.
type failures struct {
	n     int
	first error
}

func (f *failures) add(path string, err error) {
	if f.n++; f.first == nil {
		f.first = fmt.Errorf("%s: %w", path, err)
	}
}

// err is the command's error for total images: nil if all were used.
func (f *failures) err(total int) error {
	if f.n == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d images could not be used; the first: %w", f.n, total, f.first)
}

// expandFolders replaces each folder among args by the image files under
// it (dataset.ImageFiles); files stay as they are, in order.
func expandFolders(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil || !st.IsDir() {
			out = append(out, a) // a missing file is reported with the images
			continue
		}
		files, err := dataset.ImageFiles(a)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("folder %s holds no image file", a)
		}
		for _, f := range files {
			out = append(out, filepath.Join(a, filepath.FromSlash(f)))
		}
	}
	return out, nil
}

// printTop prints one image's ranked classes: named ImageNet classes for a
// 1000-class top, class indices otherwise.
func printTop(out io.Writer, path string, probs []float32, k int) error {
	fmt.Fprintf(out, "%s\n", path)
	if len(probs) == 1000 {
		top, err := imagenet.Top(probs, k)
		if err != nil {
			return err
		}
		for _, p := range top {
			fmt.Fprintf(out, "%4d  %s  %-30s %.4f\n", p.Rank, p.Class.WNID, p.Class.Name, p.Probability)
		}
		return nil
	}
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	// Selection of the k best; the list is short.
	for r := 0; r < min(k, len(idx)); r++ {
		best := r
		for j := r + 1; j < len(idx); j++ {
			if probs[idx[j]] > probs[idx[best]] {
				best = j
			}
		}
		idx[r], idx[best] = idx[best], idx[r]
		fmt.Fprintf(out, "%4d  class %-4d %.4f\n", r+1, idx[r], probs[idx[r]])
	}
	return nil
}

// loadClassifier loads --checkpoint's run, with --weights in place of the
// backbone file it was trained with if given.
func loadClassifier(o *options) (*pipeline.Classifier, error) {
	c, err := pipeline.LoadClassifier(o.checkpoint, pipeline.ClassifierOptions{Device: o.device, Weights: o.weights, TTA: o.tta})
	if errors.Is(err, pipeline.ErrWeightsNotFound) {
		return nil, fmt.Errorf("%w (a run moved to another machine: give its backbone weights file with --weights)", err)
	}
	if err == nil {
		c.Progress = o.progress
	}
	return c, err
}

// evaluate scores a checkpoint on a labelled folder.
func evaluate(ctx context.Context, o *options, stdout io.Writer) error {
	c, err := loadClassifier(o)
	if err != nil {
		return err
	}
	defer c.Close()
	ev, err := c.Evaluate(ctx, o.evaluate, o.batch)
	if err != nil {
		return err
	}
	if len(ev.Ignored) > 0 {
		slog.Warn("folders that are not among the run's classes were not evaluated", "folders", ev.Ignored, "classes", c.Classes)
	}
	if len(ev.Missing) > 0 {
		slog.Warn("classes without a folder there, scored with no images", "classes", ev.Missing)
	}
	fmt.Fprintf(stdout, "evaluated %d images of %d classes in %s", ev.Images, len(c.Classes), o.evaluate)
	if ev.Unusable > 0 {
		fmt.Fprintf(stdout, " (%d unusable, skipped)", ev.Unusable)
	}
	fmt.Fprintf(stdout, "\nloss %.4f  accuracy %.4f", ev.Loss, ev.Accuracy)
	if ev.AUC != nil {
		fmt.Fprintf(stdout, "  auc %.4f", *ev.AUC)
	}
	if ev.Top5Accuracy != nil {
		fmt.Fprintf(stdout, "  top-5 accuracy %.4f", *ev.Top5Accuracy)
	}
	fmt.Fprint(stdout, "\n\n")
	if err := ev.Confusion.WriteScores(stdout); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nconfusion matrix (rows: true class):")
	if err := ev.Confusion.WriteShown(stdout); err != nil {
		return err
	}
	if o.plots != "" {
		probs := make([][]float32, len(ev.Scored))
		labels := make([]int, len(ev.Scored))
		for i, sc := range ev.Scored {
			probs[i], labels[i] = sc.Probabilities, sc.True
		}
		written, err := pipeline.WriteEvaluationPlots(o.plots, ev.Confusion, probs, labels)
		if err != nil {
			return fmt.Errorf("--plots: %w", err)
		}
		if drawn, err := c.WriteMistakes(o.plots, ev); err != nil {
			return fmt.Errorf("--plots: %w", err)
		} else if drawn {
			written = append(written, pipeline.MistakesFile)
		}
		slog.Info("plots", "folder", o.plots, "files", written)
	}
	if o.csvOut != "" {
		if err := writeScored(o.csvOut, o.evaluate, c.Classes, ev.Scored); err != nil {
			return err
		}
	}
	if len(ev.Mistakes) > 0 {
		n := min(len(ev.Mistakes), o.top)
		fmt.Fprintf(stdout, "\nthe %d most confident of %d mistakes (--top sets how many):\n", n, len(ev.Mistakes))
		for _, m := range ev.Mistakes[:n] {
			fmt.Fprintf(stdout, "  %s: labelled %s, predicted %s (%.4f)\n", filepath.Join(o.evaluate, filepath.FromSlash(m.Path)), c.Classes[m.True], c.Classes[m.Pred], m.Probability)
		}
	}
	return nil
}

// writeScored writes an evaluation's images as CSV to path: each image's
// path, label, predicted class and probabilities.
func writeScored(path, root string, classes []string, scored []pipeline.Scored) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(append([]string{"path", "label", "predicted"}, classes...))
	for _, s := range scored {
		r := []string{filepath.Join(root, filepath.FromSlash(s.Path)), classes[s.True], classes[s.Pred]}
		for _, v := range s.Probabilities {
			r = append(r, strconv.FormatFloat(float64(v), 'f', 6, 32))
		}
		w.Write(r)
	}
	w.Flush()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--csv: %w", err)
	}
	return nil
}

// explain classifies each image as classifyWithCheckpoint does and draws
// its Grad-CAM heatmap over it into the --explain folder, one JPEG per
// image named after it (name.gradcam.jpg; name-2.gradcam.jpg for the
// second image of that name).
func explain(ctx context.Context, o *options, stdout io.Writer) error {
	var c *pipeline.Classifier
	var wnids []string
	var err error
	if o.checkpoint != "" {
		c, err = loadClassifier(o)
	} else {
		c, wnids, err = imagenetClassifier(o)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	class := -1
	if o.explainClass != "" {
		if class, err = findClass(c.Classes, wnids, o.explainClass); err != nil {
			return fmt.Errorf("--explain-class %q: %w", o.explainClass, err)
		}
	}
	images, err := expandFolders(o.images)
	if err != nil {
		return err
	}
	// The pictures of an earlier --explain into a folder given again are
	// not images to explain.
	images = slices.DeleteFunc(images, func(p string) bool { return strings.HasSuffix(strings.ToLower(p), heatmapSuffix) })
	if err := os.MkdirAll(o.explain, 0o777); err != nil {
		return err
	}
	// A folder that cannot take the pictures is found out before any work.
	probe, err := os.CreateTemp(o.explain, ".write-test-")
	if err != nil {
		return fmt.Errorf("--explain %s: %w", o.explain, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	report := newReport(o, c.Classes, stdout)
	taken := map[string]bool{}
	var failures failures
	for _, path := range images {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := c.Explain(path, class)
		if err != nil {
			failures.add(path, err)
			if err := report.failure(path, err); err != nil {
				return err
			}
			continue
		}
		// A picture that cannot be written is the command's failure, not
		// the image's.
		out := heatmapName(o.explain, path, taken)
		if err := writeExplanation(e, out); err != nil {
			return err
		}
		if err := report.image(path, e.Probabilities, e.Class, out); err != nil {
			return err
		}
	}
	return failures.err(len(images))
}

// newReport returns the text report, or the JSON one with --json.
func newReport(o *options, classes []string, w io.Writer) imageReport {
	if o.jsonOut {
		// As --serve answers: every class in label order, or the --top
		// most probable first when --top is given.
		top := 0
		if o.topSet {
			top = o.top
		}
		return &jsonReport{enc: json.NewEncoder(w), classes: classes, top: top}
	}
	return &textReport{w: w, classes: classes, top: o.top}
}

// findClass returns the label of the class named q: its name, or the
// WordNet id of an ImageNet class (wnids, in label order, nil for a run),
// or a name two ImageNet classes share, if q says which.
func findClass(classes, wnids []string, q string) (int, error) {
	if i := slices.Index(classes, q); i >= 0 {
		return i, nil
	}
	if i := slices.Index(wnids, q); i >= 0 {
		return i, nil
	}
	var shared []string // "crane (n02012849)", "crane (n03126707)"
	for _, c := range classes {
		if strings.HasPrefix(c, q+" (") {
			shared = append(shared, strconv.Quote(c))
		}
	}
	switch {
	case len(shared) > 0:
		return 0, fmt.Errorf("%d classes have that name: say which, %s", len(shared), strings.Join(shared, " or "))
	case len(classes) > 20 && wnids != nil:
		return 0, fmt.Errorf("not one of the %d classes (a name or a WordNet id, as predict --weights prints them)", len(classes))
	case len(classes) > 20:
		return 0, fmt.Errorf("not one of the run's %d classes (names as the class folders spell them)", len(classes))
	}
	return 0, fmt.Errorf("the classes are %s", strings.Join(classes, ", "))
}

// imagenetClassifier is --weights' own classifier (ImageNet's classes, by
// their short names; a name two classes share gets its WordNet id), for
// --explain, and the classes' WordNet ids (nil for other weights).
func imagenetClassifier(o *options) (*pipeline.Classifier, []string, error) {
	w, err := resnet.Load(o.weights)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, w.Classes)
	for i := range names {
		names[i] = fmt.Sprintf("class_%d", i)
	}
	var wnids []string
	if w.Classes == 1000 {
		classes, err := imagenet.Classes()
		if err != nil {
			return nil, nil, err
		}
		seen := map[string]int{}
		for _, c := range classes {
			seen[c.Name]++
		}
		for i, c := range classes {
			names[i] = c.Name
			if seen[c.Name] > 1 {
				names[i] = c.Name + " (" + c.WNID + ")"
			}
			wnids = append(wnids, c.WNID)
		}
	}
	c, err := pipeline.NewWeightsClassifier(w, o.device, imageConfig(o, w), names)
	return c, wnids, err
}

// heatmapSuffix ends the name of every --explain picture.
const heatmapSuffix = ".gradcam.jpg"

// writeExplanation draws e's heatmap over its image and writes it to out
// as a JPEG (scaled down where a JPEG cannot be that large).
func writeExplanation(e *pipeline.Explanation, out string) error {
	m, err := e.Overlay()
	if err != nil {
		return err
	}
	return atomicfile.Write(out, func(w io.Writer) error { return jpeg.Encode(w, pipeline.FitJPEG(m), &jpeg.Options{Quality: 90}) })
}

// heatmapName returns the file in dir for the heatmap of the image at path:
// its name without extension, then .gradcam.jpg; -2, -3, ... before that
// for names taken already (regardless of case, for the file systems that
// disregard it).
func heatmapName(dir, path string, taken map[string]bool) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	name := base + heatmapSuffix
	for i := 2; taken[strings.ToLower(name)]; i++ {
		name = fmt.Sprintf("%s-%d%s", base, i, heatmapSuffix)
	}
	taken[strings.ToLower(name)] = true
	return filepath.Join(dir, name)
}

// classifyWithCheckpoint prints each image's probabilities by class name,
// or, when any argument is a folder, CSV for every image found; with
// --csv, it writes the CSV to that file, for files and folders alike. An
// unusable image is reported in its place and the others go on; with
// files alone, the command then fails, naming the first.
func classifyWithCheckpoint(ctx context.Context, o *options, stdout io.Writer) error {
	c, err := loadClassifier(o)
	if err != nil {
		return err
	}
	defer c.Close()
	anyFolder := false
	named := map[string]bool{} // the files given as arguments, not found in a folder
	for _, arg := range o.images {
		if st, err := os.Stat(arg); err == nil && st.IsDir() {
			anyFolder = true
		} else {
			named[arg] = true
		}
	}
	images, err := expandFolders(o.images)
	if err != nil {
		return err
	}
	var failures, namedFailures failures
	var report imageReport
	switch {
	case o.csvOut == "-":
		report = newCSVReport(stdout, c.Classes)
	case o.csvOut != "":
		f, err := os.Create(o.csvOut)
		if err != nil {
			return fmt.Errorf("--csv: %w", err)
		}
		defer f.Close()
		report = newCSVReport(f, c.Classes)
	case !anyFolder || o.jsonOut:
		report = newReport(o, c.Classes, stdout)
	default:
		report = newCSVReport(stdout, c.Classes)
	}
	err = c.PredictFiles(ctx, images, o.batch, func(path string, probs []float32, err error) error {
		if err != nil {
			failures.add(path, err)
			if named[path] {
				namedFailures.add(path, err)
				named[path] = false // once, though it is also in a folder given
			}
			return report.failure(path, err)
		}
		return report.image(path, probs, 0, "")
	})
	// Interrupted too: the rows written so far go out whole.
	if ferr := report.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if !anyFolder {
		return failures.err(len(images))
	}
	// A folder's unusable images are reported in their rows, not fatal;
	// a file named on the command line that cannot be used is.
	slog.Info("classified", "images", len(images)-failures.n, "unusable", failures.n)
	if namedFailures.n > 0 {
		return fmt.Errorf("%d of the %d files named could not be used; the first: %w", namedFailures.n, len(named), namedFailures.first)
	}
	return nil
}
