package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/tensor"

	"gotransfer/configs"
	"gotransfer/dataset"
	"gotransfer/internal/ortrun"
	"gotransfer/internal/tensorio"
	"gotransfer/model"
	"gotransfer/model/pretrained/pretrainedtest"
	"gotransfer/model/resnet"
	"gotransfer/pipeline"
)

// The narrow Keras-layout golden of the backbone's tests, and the cat
// photo of the dataset's tests.
var (
	golden  = filepath.Join("..", "..", "model", "resnet", "testdata", "resnet50_w8_s64")
	weights = filepath.Join(golden, "weights.npz")
	cat     = filepath.Join("..", "..", "dataset", "testdata", "chelsea.png")
)

// goldenBackbone loads the golden's weights and their CPU backbone,
// closed when the test ends.
func goldenBackbone(t *testing.T) (*resnet.Weights, resnet.Backbone) {
	t.Helper()
	w, err := resnet.Load(weights)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := resnet.New(w, "cpu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bb.Close() })
	return w, bb
}

func predict(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e strings.Builder
	code = command(args, &o, &e)
	return code, o.String(), e.String()
}

func TestParityMode(t *testing.T) {
	dir := t.TempDir()
	f, p := filepath.Join(dir, "f.npy"), filepath.Join(dir, "p.npy")
	code, _, stderr := predict(t, "--weights", weights, "--npy", filepath.Join(golden, "inputs.npy"), "--features-out", f, "--probs-out", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, pair := range [][2]string{{f, "features.npy"}, {p, "probs.npy"}} {
		got, err := tensorio.ReadNPYFile(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		want, err := tensorio.ReadNPYFile(filepath.Join(golden, pair[1]))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Shape().Eq(want.Shape()) {
			t.Fatalf("%s: shape %v, want %v", pair[1], got.Shape(), want.Shape())
		}
		g, w := got.Data().([]float32), want.Data().([]float32)
		var scale float64
		for _, v := range w {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := range w {
			if math.Abs(float64(g[i]-w[i])) > 1e-4*scale {
				t.Fatalf("%s[%d] = %v, want %v", pair[1], i, g[i], w[i])
			}
		}
	}
}

// TestKerasH5 classifies with the golden's weights written as a Keras .h5
// (h5py; skipped without it): the same output as from the .npz.
func TestKerasH5(t *testing.T) {
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import h5py, numpy").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import h5py and numpy (%v: %s); on Debian, apt-get install python3-h5py", py, err, bytes.TrimSpace(out))
	}
	// Keras 2's layout: layer_names, and per layer weight_names naming
	// datasets "layer/role:0" inside the layer's group.
	const write = `
import sys, h5py, numpy as np
w = np.load(sys.argv[1])
layers = sorted({k.split("/")[0] for k in w.files})
with h5py.File(sys.argv[2], "w") as f:
    f.attrs["layer_names"] = np.array([l.encode() for l in ["input_1"] + layers])
    f.create_group("input_1").attrs["weight_names"] = np.asarray([])
    for l in layers:
        names = [k + ":0" for k in w.files if k.startswith(l + "/")]
        g = f.create_group(l)
        for n in names:
            g.create_dataset(n, data=w[n[:-2]])
        g.attrs["weight_names"] = np.array([n.encode() for n in names])
`
	h5 := filepath.Join(t.TempDir(), "weights.h5")
	if out, err := exec.Command(py, "-c", write, weights, h5).CombinedOutput(); err != nil {
		t.Fatalf("writing the .h5: %v\n%s", err, out)
	}
	var outs []string
	for _, w := range []string{weights, h5} {
		code, out, stderr := predict(t, "--weights", w, "--size", "64", "--top", "3", cat)
		if code != 0 {
			t.Fatalf("--weights %s: exit %d: %s", w, code, stderr)
		}
		outs = append(outs, out)
	}
	if outs[0] != outs[1] {
		t.Fatalf("from the .npz:\n%s\nfrom the .h5:\n%s", outs[0], outs[1])
	}
}

func TestClassifyImages(t *testing.T) {
	code, out, stderr := predict(t, "--weights", weights, "--size", "64", "--top", "3", cat, cat)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Two images, each a path line and three ranked classes.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 8 || lines[0] != cat || !strings.HasPrefix(strings.TrimSpace(lines[1]), "1  class ") {
		t.Fatalf("unexpected output:\n%s", out)
	}
	if strings.Join(lines[:4], "\n") != strings.Join(lines[4:], "\n") {
		t.Fatalf("the same image classified twice differs:\n%s", out)
	}

	// A folder: every image under it, sorted; a broken one is reported in
	// its place, the others classified, and the command fails naming it.
	dir := t.TempDir()
	raw, _ := os.ReadFile(cat)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.png"), raw, 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "c.png"), raw, 0o644)
	os.WriteFile(filepath.Join(dir, "b.jpg"), []byte("not a jpeg"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not an image name"), 0o644)
	code, out, stderr = predict(t, "--weights", weights, "--size", "64", "--top", "1", "--batch", "2", dir)
	want := []string{filepath.Join(dir, "a.png"), "   1  class", filepath.Join(dir, "b.jpg"), "  error: ", filepath.Join(dir, "sub", "c.png"), "   1  class"}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || len(lines) != len(want) || !strings.Contains(stderr, "1 of 3 images could not be used") || !strings.Contains(stderr, "b.jpg") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want it to start with %q", i, lines[i], w)
		}
	}
}

// TestFeaturesOfImages writes the backbone's features of a folder's images
// to a .npy, the paths of its rows beside it, leaving an unusable image out.
func TestFeaturesOfImages(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "photos")
	if err := dataset.Synthesize(data, 3, 5); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(data, "cats", "broken.jpg"), []byte("not a jpeg"), 0o644)
	if raw, err := os.ReadFile(filepath.Join(data, "cats", "cat_00000.png")); err == nil {
		os.WriteFile(filepath.Join(data, "cats", "two\nlines.png"), raw, 0o644) // a row the .txt could not name
	}
	out := filepath.Join(dir, "f.npy")
	code, _, stderr := predict(t, "--weights", weights, "--size", "64", "--batch", "4", "--features-out", out, data)
	if code != 1 || !strings.Contains(stderr, "2 of 8 images could not be used") {
		t.Fatalf("exit %d, want 1 for the broken image: %s", code, stderr)
	}
	feats, err := tensorio.ReadNPYFile(out)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "f.txt"))
	if err != nil {
		t.Fatal(err)
	}
	paths := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	_, bb := goldenBackbone(t)
	dim := bb.FeatureDim()
	if len(paths) != 6 || !slices.Equal(feats.Shape(), []int{6, dim}) || slices.Contains(paths, filepath.Join(data, "cats", "broken.jpg")) {
		t.Fatalf("features %v for paths %q", feats.Shape(), paths)
	}
	cfg := dataset.Config{Height: 64, Width: 64, Preprocess: "caffe"}
	for i, p := range paths {
		pix, _, err := dataset.Load(cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := bb.Features(tensor.New(tensor.WithShape(1, 64, 64, 3), tensor.WithBacking(pix)))
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range f.Float32s() {
			// Another batch may change the last bits.
			if got := feats.Float32s()[i*dim+j]; math.Abs(float64(got-v)) > 1e-4*(1+math.Abs(float64(v))) {
				t.Fatalf("%s: feature %d is %v, alone %v", p, j, got, v)
			}
		}
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"--weights", weights, "--features-out", filepath.Join(dir, "f.bin"), data}},
		{[]string{"--weights", weights, "--probs-out", filepath.Join(dir, "p.npy"), data}},
	} {
		if code, _, _ := predict(t, tc.args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", tc.args, code)
		}
	}
}

// decodePNG returns the RGB values (0-255) of a PNG file, its height and
// width.
func decodePNG(t *testing.T, path string) ([]float32, int, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Bounds()
	pix := make([]float32, 0, b.Dx()*b.Dy()*3)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := m.At(x, y).RGBA()
			pix = append(pix, float32(r>>8), float32(g>>8), float32(bl>>8))
		}
	}
	return pix, b.Dy(), b.Dx()
}

// TestONNX exports trained runs (one cropping to a non-square aspect
// ratio) and the ImageNet-style golden network, runs them with ONNX
// Runtime on decoded images at their own sizes, and holds their
// probabilities against predict's own.
func TestONNX(t *testing.T) {
	ortrun.Require(t)
	dir := t.TempDir()
	data := trainTinyRun(t, dir)
	trainRun(t, dir, "data:\n  dir: data\n  image_size: [40, 56]\n  crop_to_aspect_ratio: true\n  preprocess: torch\nhead:\n  layers: []\ntrain:\n  epochs: 1\n  batch: 4\nrun:\n  dir: cropped\n")
	images, _ := filepath.Glob(filepath.Join(data, "*", "*.png"))
	for _, run := range []string{filepath.Join(dir, "run"), filepath.Join(dir, "cropped")} {
		model := run + ".onnx"
		if code, _, stderr := predict(t, "--checkpoint", run, "--onnx", model); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		c, err := pipeline.LoadClassifier(run, pipeline.ClassifierOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sizes := map[[2]int]bool{}
		for _, img := range images {
			pix, h, w := decodePNG(t, img)
			sizes[[2]int{h, w}] = true
			out, err := ortrun.Run(model, pix, 1, h, w)
			if err != nil {
				t.Fatal(err)
			}
			want, err := c.Predict(img)
			if err != nil {
				t.Fatal(err)
			}
			got := out["probabilities"]
			if len(got) != len(want) || math.Abs(float64(got[0]-want[0])) > 1e-4 || math.Abs(float64(got[1]-want[1])) > 1e-4 {
				t.Errorf("%s (%dx%d), %s: ONNX Runtime gives %v, predict %v", img, w, h, filepath.Base(run), got, want)
			}
		}
		if len(sizes) < 2 {
			t.Fatalf("the images have %d sizes: the test needs several", len(sizes))
		}
	}
	raw := dataset.Config{Height: 64, Width: 64, Preprocess: dataset.PreprocessNone}
	run := filepath.Join(dir, "run")

	// The network alone, with its predictions layer and 'caffe' preprocessing.
	model := filepath.Join(dir, "golden.onnx")
	if code, _, stderr := predict(t, "--weights", weights, "--size", "64", "--onnx", model); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	w, bb := goldenBackbone(t)
	pix, _, err := dataset.Load(raw, cat)
	if err != nil {
		t.Fatal(err)
	}
	pre, _, err := dataset.Load(dataset.Config{Height: 64, Width: 64, Preprocess: dataset.PreprocessCaffe}, cat)
	if err != nil {
		t.Fatal(err)
	}
	f, err := bb.Features(tensor.New(tensor.WithShape(1, 64, 64, 3), tensor.WithBacking(pre)))
	if err != nil {
		t.Fatal(err)
	}
	want, err := w.Classify(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ortrun.Run(model, pix, 1, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range want.Float32s() {
		if got := out["probabilities"][i]; math.Abs(float64(got-v)) > 1e-5 {
			t.Fatalf("class %d: ONNX Runtime %v, predict %v", i, got, v)
		}
	}

	for _, args := range [][]string{
		{"--checkpoint", run, "--onnx", model, "x.jpg"},
		{"--weights", weights, "--onnx", model, "--features-out", "f.npy"},
	} {
		if code, _, _ := predict(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

func TestSummary(t *testing.T) {
	code, out, stderr := predict(t, "--summary")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Total params: 25,636,712", "Trainable params: 25,583,592", "Non-trainable params: 53,120", "predictions (Dense)"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	code, out, _ = predict(t, "--summary", "--weights", weights, "--size", "64")
	if code != 0 || !strings.Contains(out, "Total params: 386,682") {
		t.Errorf("narrow summary: exit %d:\n%s", code, out)
	}
}

// TestBadInput: every mistake exits non-zero with one clear line on stderr.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notImage := filepath.Join(dir, "cat.jpg")
	os.WriteFile(notImage, []byte("not a jpeg at all"), 0o644)
	raw, _ := os.ReadFile(weights)
	trunc := filepath.Join(dir, "trunc.npz")
	os.WriteFile(trunc, raw[:len(raw)/3], 0o644)
	gone := filepath.Join(dir, "gone.png")
	folderNPY := filepath.Join(dir, "folder.npy")
	os.Mkdir(folderNPY, 0o755)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no weights", []string{cat}, 2, "give --checkpoint RUN (a trained run) or --weights W (ImageNet predictions)"},
		{"features without weights", []string{"--features-out", filepath.Join(dir, "f.npy"), cat}, 2, "--features-out and --probs-out need --weights W"},
		{"tta with imagenet explanations", []string{"--weights", weights, "--explain", filepath.Join(dir, "x"), "--tta", cat}, 2, "--tta needs --checkpoint"},
		{"csv without a run", []string{"--weights", weights, "--csv", filepath.Join(dir, "x.csv"), cat}, 2, "--csv needs --checkpoint"},
		{"explain with csv and weights", []string{"--weights", weights, "--explain", filepath.Join(dir, "x"), "--csv", filepath.Join(dir, "x.csv"), cat}, 2, "--csv needs --checkpoint"},
		{"no images", []string{"--weights", weights}, 2, "no images given"},
		{"missing weights", []string{"--weights", filepath.Join(dir, "none.npz"), cat}, 1, "none.npz"},
		{"truncated weights", []string{"--weights", trunc, cat}, 1, "trunc.npz"},
		// The os error as it is: "open" once.
		{"missing image", []string{"--weights", weights, "--size", "64", gone}, 1, "the first: " + gone + ": open " + gone + ": no such file or directory"},
		{"onnx into a folder", []string{"--weights", weights, "--onnx", dir}, 2, "--onnx " + dir + ": is a folder (want a file name)"},
		{"onnx named as a folder", []string{"--weights", weights, "--onnx", filepath.Join(dir, "new") + string(filepath.Separator)}, 2, ": is a folder (want a file name)"},
		{"features into a folder", []string{"--weights", weights, "--features-out", folderNPY, cat}, 2, "--features-out " + folderNPY + ": is a folder"},
		{"output under a file", []string{"--weights", weights, "--features-out", filepath.Join(notImage, "f.npy"), cat}, 1, "--features-out " + filepath.Join(notImage, "f.npy") + ": mkdir " + notImage + ": not a directory"},
		{"not an image", []string{"--weights", weights, "--size", "64", notImage}, 1, "cat.jpg"},
		{"bad flag", []string{"--frobnicate"}, 2, "frobnicate"},
		{"bad device", []string{"--weights", weights, "--device", "tpu", cat}, 1, `"tpu"`},
		{"cuda not built", []string{"--weights", weights, "--device", "cuda", cat}, 1, "rebuild with -tags gotransfer_cuda"},
		{"npy without outputs", []string{"--weights", weights, "--npy", "x.npy"}, 2, "--features-out"},
		{"checkpoint and size", []string{"--checkpoint", "run", "--size", "128", cat}, 2, "--size would be ignored"},
		{"checkpoint and features", []string{"--checkpoint", "run", "--features-out", "f.npy", "--preprocess", "torch", cat}, 2, "--features-out, --preprocess would be ignored"},
		{"checkpoint and npy", []string{"--checkpoint", "run", "--npy", "x.npy"}, 2, "--npy would be ignored"},
		{"explain without a classifier", []string{"--explain", "out", cat}, 2, "--explain needs --checkpoint (a trained run's classes) or --weights"},
		{"explain and features", []string{"--weights", weights, "--explain", "out", "--features-out", "f.npy", cat}, 2, "give no --npy, --features-out"},
		{"explain class alone with weights", []string{"--weights", weights, "--explain-class", "tabby", cat}, 2, "--explain-class goes with --explain"},
		{"explain with csv", []string{"--checkpoint", "run", "--explain", "out", "--csv", "x.csv", cat}, 2, "give no --serve, --evaluate or --csv"},
		{"explain class alone", []string{"--checkpoint", "run", "--explain-class", "cats", cat}, 2, "--explain-class goes with --explain"},
		{"explain and onnx", []string{"--checkpoint", "run", "--explain", "out", "--onnx", "m.onnx"}, 2, "give no images, --serve, --evaluate, --csv or --explain"},
		{"explain and summary", []string{"--checkpoint", "run", "--explain", "out", "--summary"}, 2, "give no --explain or --json with it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := predict(t, tc.args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if code != tc.code || !strings.Contains(last, tc.want) || strings.Contains(stderr, "goroutine") {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and a line mentioning %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}

// TestUsage: with no arguments at all, the usage, as Go's tools print it,
// and exit status 2.
func TestUsage(t *testing.T) {
	code, out, stderr := predict(t)
	if code != 2 || out != "" || !strings.HasPrefix(stderr, "usage: predict ") || !strings.Contains(stderr, "-checkpoint folder") || strings.Contains(stderr, "predict: ") {
		t.Fatalf("no arguments: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and the usage alone", code, out, stderr)
	}
}

// TestRunOutputs: with --checkpoint, --csv writes CSV for image files as
// for folders; output files are written wherever --csv, --onnx,
// --features-out or --probs-out name them, missing folders made, and a
// name that is a folder is refused at once, as are --plots under a file
// and an --evaluate that is not a folder; a missing image's error says
// "open" once; --summary prints the run's own model, as train --summary
// does.
func TestRunOutputs(t *testing.T) {
	dir, data, run, img, broken := tinyRunAndImages(t)
	gone := filepath.Join(dir, "gone.png")
	folder := filepath.Join(dir, "folder")
	os.Mkdir(folder, 0o755)
	out := func(name string) string { return filepath.Join(dir, "out", name) }
	// rows checks the CSV file at path: its header and row count, and
	// returns the rows after the header.
	rows := func(t *testing.T, path, header string, n int) [][]string {
		t.Helper()
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rs, err := csv.NewReader(f).ReadAll()
		if err != nil || len(rs) != 1+n || strings.Join(rs[0], ",") != header {
			t.Fatalf("%s: %d rows (%v), want a header %q and %d rows:\n%q", path, len(rs), err, header, n, rs)
		}
		return rs[1:]
	}
	exists := func(paths ...string) func(t *testing.T, stdout, stderr string) {
		return func(t *testing.T, _, _ string) {
			for _, p := range paths {
				if st, err := os.Stat(p); err != nil || st.Size() == 0 {
					t.Errorf("%s: %v", p, err)
				}
			}
		}
	}
	// early checks that the mistake was found before the checkpoint was
	// read.
	early := func(t *testing.T, _, stderr string) {
		if strings.Contains(stderr, "using checkpoint") {
			t.Errorf("the checkpoint was read before the error:\n%s", stderr)
		}
	}
	const predicted = "path,predicted,cats,dogs,error"
	// The narrow random backbone (width 8, without its top, all frozen)
	// and the head: 256 features, 16 hidden, 2 classes.
	const backbone, head = 384_112, 256*16 + 16 + 16*2 + 2
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string // in its last line
		check  func(t *testing.T, stdout, stderr string)
	}{
		{"csv of a file", []string{"--csv", out("one.csv"), img}, 0, "", func(t *testing.T, stdout, _ string) {
			if r := rows(t, out("one.csv"), predicted, 1); r[0][0] != img || r[0][1] != "cats" && r[0][1] != "dogs" || r[0][4] != "" || stdout != "" {
				t.Errorf("rows %q, stdout %q", r, stdout)
			}
		}},
		{"csv of files, one broken", []string{"--csv", out("three.csv"), img, broken, img}, 1, "1 of 3 images could not be used; the first: " + broken, func(t *testing.T, _, _ string) {
			if r := rows(t, out("three.csv"), predicted, 3); r[1][0] != broken || r[1][4] != "not a supported image format" || r[2][0] != img {
				t.Errorf("rows %q", r)
			}
		}},
		{"csv of a folder, in new folders", []string{"--csv", filepath.Join(dir, "new", "sub", "all.csv"), data}, 0, "", func(t *testing.T, _, _ string) {
			rows(t, filepath.Join(dir, "new", "sub", "all.csv"), predicted, 16)
		}},
		{"csv after the folder", []string{data, "--csv", out("after.csv")}, 0, "", func(t *testing.T, stdout, _ string) {
			if rows(t, out("after.csv"), predicted, 16); stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
		}},
		{"csv of evaluate, in a new folder", []string{"--evaluate", data, "--csv", filepath.Join(dir, "scored", "s.csv")}, 0, "", func(t *testing.T, _, _ string) {
			rows(t, filepath.Join(dir, "scored", "s.csv"), "path,label,predicted,cats,dogs", 16)
		}},
		{"csv into a folder", []string{"--csv", folder, img}, 2, "--csv " + folder + ": is a folder (want a file name)", early},
		{"onnx into a folder", []string{"--onnx", folder}, 2, "--onnx " + folder + ": is a folder (want a file name)", early},
		{"onnx in a new folder", []string{"--onnx", filepath.Join(dir, "models", "m.onnx")}, 0, "", exists(filepath.Join(dir, "models", "m.onnx"))},
		{"evaluate a file", []string{"--evaluate", img}, 2, "--evaluate " + img + ": not a folder (want a folder with one sub-folder per class)", early},
		{"plots into a file", []string{"--evaluate", data, "--plots", img}, 1, "--plots " + img + ": mkdir " + img + ": not a directory", early},
		{"evaluate nothing", []string{"--evaluate", gone}, 1, "--evaluate " + gone + ": no such file or directory", early},
		{"a missing image", []string{img, gone}, 1, "1 of 2 images could not be used; the first: " + gone + ": open " + gone + ": no such file or directory", func(t *testing.T, stdout, _ string) {
			if want := gone + "\n  error: open " + gone + ": no such file or directory\n"; !strings.HasSuffix(stdout, want) {
				t.Errorf("stdout %q, want it to end with %q", stdout, want)
			}
		}},
		{"a folder and a missing image", []string{data, gone}, 1, "1 of the 1 files named could not be used; the first: " + gone + ": open " + gone + ": no such file or directory", func(t *testing.T, stdout, _ string) {
			if want := gone + ",,,,open " + gone + ": no such file or directory\n"; !strings.HasSuffix(stdout, want) || strings.Count(stdout, "\n") != 18 {
				t.Errorf("stdout %q, want 17 rows ending with %q", stdout, want)
			}
		}},
		{"a broken file named and in a folder named", []string{dir, broken}, 1, "1 of the 1 files named could not be used; the first: " + broken, nil},
		{"summary", []string{"--summary"}, 0, "", func(t *testing.T, stdout, _ string) {
			for _, want := range []string{`Model: "resnet50_transfer"`, "conv1_conv (Conv2D)", "(None, 32, 32, 8)", "conv5_block3_out (Activation)", "(None, 2, 2, 256)", "avg_pool (GlobalAveragePooling2D)",
				"dense_0 (Dense)", "dense_1 (Dense)", "(None, 2)", "Total params: " + model.Thousands(backbone+head), "Trainable params: " + model.Thousands(head)} {
				if !strings.Contains(stdout, want) {
					t.Errorf("the run's summary lacks %q:\n%s", want, stdout)
				}
			}
			if strings.Contains(stdout, "predictions") || strings.Contains(stdout, "2048") {
				t.Errorf("the run's summary shows ImageNet's ResNet50:\n%s", stdout)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := predict(t, append([]string{"--checkpoint", run}, tc.args...)...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != tc.code || !strings.Contains(lines[len(lines)-1], tc.stderr) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and a last line with %q", code, stderr, tc.code, tc.stderr)
			}
			if tc.check != nil {
				tc.check(t, stdout, stderr)
			}
		})
	}

	// --features-out and --probs-out (with --weights) make their folders too.
	npy := filepath.Join(dir, "embeddings", "f.npy")
	probs := filepath.Join(dir, "parity", "p.npy")
	for _, args := range [][]string{
		{"--features-out", npy, img},
		{"--npy", filepath.Join(golden, "inputs.npy"), "--probs-out", probs},
	} {
		if code, _, stderr := predict(t, append([]string{"--weights", weights, "--size", "64"}, args...)...); code != 0 {
			t.Errorf("%q: exit %d: %s", args, code, stderr)
		}
	}
	exists(npy, strings.TrimSuffix(npy, ".npy")+".txt", probs)(t, "", "")
}

// trainTinyRun trains a run of one epoch on 8 synthetic images a class, in
// dir/run from dir/data.
func trainTinyRun(t *testing.T, dir string) (data string) {
	t.Helper()
	data = filepath.Join(dir, "data")
	if err := dataset.Synthesize(data, 8, 2); err != nil {
		t.Fatal(err)
	}
	trainRun(t, dir, "data:\n  dir: data\n  image_size: [64, 64]\nhead:\n  layers: [16]\ntrain:\n  epochs: 1\n  batch: 4\nrun:\n  dir: run\n")
	return data
}

// tinyRunAndImages trains a tiny run (trainTinyRun) in a new folder dir,
// and returns its data and run folders, one of its images, and a file
// beside them that is not the JPEG its name says.
func tinyRunAndImages(t *testing.T) (dir, data, run, img, broken string) {
	t.Helper()
	dir = t.TempDir()
	data = trainTinyRun(t, dir)
	broken = filepath.Join(dir, "broken.jpg")
	if err := os.WriteFile(broken, []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, data, filepath.Join(dir, "run"), filepath.Join(data, "cats", "cat_00000.png"), broken
}

// trainRun trains the run configured by yaml, a configuration file in dir.
func trainRun(t *testing.T, dir, yaml string) {
	t.Helper()
	cfgPath := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Train(context.Background(), cfg, pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpoint trains a tiny run and classifies with its checkpoint:
// single images by class name, folders as CSV.
func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	data := trainTinyRun(t, dir)
	ck := filepath.Join(dir, "run", "checkpoints", "last")
	img := filepath.Join(data, "cats", "cat_00000.png")

	code, out, stderr := predict(t, "--checkpoint", ck, img)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != img || !strings.Contains(lines[1], "cats") || !strings.Contains(lines[2], "dogs") {
		t.Fatalf("unexpected output:\n%s", out)
	}
	// The run folder will do: its best checkpoint (the only epoch's).
	if code, runOut, stderr := predict(t, "--checkpoint", filepath.Join(dir, "run"), img); code != 0 || runOut != out {
		t.Fatalf("--checkpoint with the run folder: exit %d, output %q, want %q: %s", code, runOut, out, stderr)
	}

	// Several files, one unusable: reported in its place, the others
	// classified as alone, and the command fails naming it.
	broken := filepath.Join(data, "dogs", "broken.jpg")
	os.WriteFile(broken, []byte("not a jpeg"), 0o644)
	code, out3, stderr := predict(t, "--checkpoint", ck, img, broken, img)
	want := out + broken + "\n  error: not a supported image format\n" + out
	if code != 1 || out3 != want || !strings.Contains(stderr, "1 of 3 images could not be used; the first: "+broken) {
		t.Fatalf("three files, the second broken: exit %d, output\n%s\nwant\n%s\nstderr %s", code, out3, want, stderr)
	}

	// A folder: CSV with a header and one row per image, a broken file
	// reported in its row without stopping the rest.
	csvPath := filepath.Join(dir, "out.csv")
	if code, _, stderr := predict(t, "--checkpoint", ck, "--csv", csvPath, data); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	raw, _ := os.ReadFile(csvPath)
	rows := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if rows[0] != "path,predicted,cats,dogs,error" || len(rows) != 1+17 {
		t.Fatalf("CSV has %d rows, header %q", len(rows), rows[0])
	}
	if !strings.Contains(string(raw), "broken.jpg,,,,") {
		t.Errorf("the broken file has no error row:\n%s", raw)
	}

	// The backbone must be the one trained with.
	os.WriteFile(filepath.Join(dir, "run", "backbone.npz"), raw, 0o644)
	if code, _, stderr := predict(t, "--checkpoint", ck, img); code != 1 || !strings.Contains(stderr, "backbone") {
		t.Fatalf("changed backbone: exit %d: %s", code, stderr)
	}
}

// TestMovedRun classifies with a run moved to another folder, as when it
// is copied to another machine: its backbone file is found beside the
// checkpoints, or given with --weights, and must still be the one trained
// with.
func TestMovedRun(t *testing.T) {
	dir := t.TempDir()
	data := trainTinyRun(t, dir)
	img := filepath.Join(data, "cats", "cat_00000.png")
	code, want, stderr := predict(t, "--checkpoint", filepath.Join(dir, "run"), img)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}

	moved := filepath.Join(dir, "elsewhere", "run")
	if err := os.MkdirAll(filepath.Dir(moved), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "run"), moved); err != nil {
		t.Fatal(err)
	}
	// The optimizer's state is not needed: a copy may leave it out.
	states, _ := filepath.Glob(filepath.Join(moved, "checkpoints", "step-*", "adam_*"))
	if len(states) == 0 {
		t.Fatal("no adam_* folders in the checkpoints")
	}
	for _, s := range states {
		if err := os.RemoveAll(s); err != nil {
			t.Fatal(err)
		}
	}
	// The run's calibrated random backbone is its backbone.npz, recorded
	// by its old path: found in the moved run folder.
	for _, ck := range []string{moved, filepath.Join(moved, "checkpoints", "best")} {
		if code, out, stderr := predict(t, "--checkpoint", ck, img); code != 0 || out != want {
			t.Fatalf("--checkpoint %s: exit %d, output %q, want %q: %s", ck, code, out, want, stderr)
		}
	}

	weights := filepath.Join(dir, "weights.npz")
	if err := os.Rename(filepath.Join(moved, "backbone.npz"), weights); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := predict(t, "--checkpoint", moved, img); code != 1 || !strings.Contains(stderr, "backbone.npz") || !strings.Contains(stderr, "--weights") {
		t.Fatalf("weights nowhere to be found: exit %d, want 1 and an error naming the file and --weights: %s", code, stderr)
	}
	if code, out, stderr := predict(t, "--checkpoint", moved, "--weights", weights, img); code != 0 || out != want {
		t.Fatalf("--weights: exit %d, output %q, want %q: %s", code, out, want, stderr)
	}

	// A wrong --checkpoint is not a matter of --weights.
	if code, _, stderr := predict(t, "--checkpoint", filepath.Join(dir, "nowhere"), img); code != 1 || strings.Contains(stderr, "--weights") {
		t.Fatalf("a checkpoint that does not exist: exit %d: %s", code, stderr)
	}

	// The file at the recorded path is now another run's (the run folder
	// renamed and a new run trained under the old name): the copy beside
	// the checkpoints, the one trained with, is used.
	if err := os.Rename(weights, filepath.Join(moved, "backbone.npz")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, filepath.Join(dir, "run_v1")); err != nil {
		t.Fatal(err)
	}
	trainRun(t, dir, "data:\n  dir: data\n  image_size: [64, 64]\n  seed: 9\nhead:\n  layers: [16]\ntrain:\n  epochs: 1\n  batch: 4\nrun:\n  dir: run\n")
	if code, out, stderr := predict(t, "--checkpoint", filepath.Join(dir, "run_v1"), img); code != 0 || out != want {
		t.Fatalf("run_v1 with a new run in its old folder: exit %d, output %q, want %q: %s", code, out, want, stderr)
	}
	if err := os.Rename(filepath.Join(dir, "run_v1", "backbone.npz"), weights); err != nil {
		t.Fatal(err)
	}
	moved = filepath.Join(dir, "run_v1")
	if code, _, stderr := predict(t, "--checkpoint", moved, img); code != 1 || !strings.Contains(stderr, "are not those it was trained with") {
		t.Fatalf("only another run's weights at the recorded path: exit %d: %s", code, stderr)
	}

	other := filepath.Join(dir, "other.npz")
	w, err := resnet.Random(8, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Save(other); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := predict(t, "--checkpoint", moved, "--weights", other, img); code != 1 || !strings.Contains(stderr, "not those it was trained with") {
		t.Fatalf("--weights of another backbone: exit %d: %s", code, stderr)
	}
}

// TestEvaluate scores a tiny run on a labelled folder and holds the scores
// against the images' own predictions.
func TestEvaluate(t *testing.T) {
	dir := t.TempDir()
	data := trainTinyRun(t, dir)
	run := filepath.Join(dir, "run")
	os.WriteFile(filepath.Join(data, "dogs", "broken.jpg"), []byte("not a jpeg"), 0o644)

	c, err := pipeline.LoadClassifier(run, pipeline.ClassifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ev, err := c.Evaluate(context.Background(), data, 3)
	if err != nil {
		t.Fatal(err)
	}
	var loss float64
	images, correct := 0, 0
	for label, class := range c.Classes {
		files, _ := filepath.Glob(filepath.Join(data, class, "*"))
		for _, f := range files {
			probs, err := c.Predict(f)
			if err != nil {
				continue // the broken file
			}
			images++
			loss -= math.Log(float64(probs[label]))
			best := 0
			for k, p := range probs {
				if p > probs[best] {
					best = k
				}
			}
			if best == label {
				correct++
			}
		}
	}
	if ev.Images != images || ev.Unusable != 1 || images != 16 {
		t.Fatalf("evaluated %d images (%d unusable), want %d (1)", ev.Images, ev.Unusable, images)
	}
	if want := float64(correct) / float64(images); ev.Accuracy != want {
		t.Errorf("accuracy %v, want %v", ev.Accuracy, want)
	}
	if want := loss / float64(images); math.Abs(ev.Loss-want) > 1e-4*(1+want) {
		t.Errorf("loss %v, want %v", ev.Loss, want)
	}
	n := 0
	for _, row := range ev.Confusion.Counts {
		for _, v := range row {
			n += v
		}
	}
	if n != images {
		t.Errorf("confusion matrix counts %d images, want %d", n, images)
	}

	// The mistakes, on a folder with the labels swapped: every image the
	// run gets right there is a mistake, listed most confident first with
	// the probability Predict gives its predicted class.
	swapped := filepath.Join(dir, "swapped")
	for from, to := range map[string]string{"cats": "dogs", "dogs": "cats"} {
		os.MkdirAll(filepath.Join(swapped, to), 0o755)
		files, _ := filepath.Glob(filepath.Join(data, from, "*"))
		for _, f := range files {
			os.Link(f, filepath.Join(swapped, to, filepath.Base(f)))
		}
	}
	sw, err := c.Evaluate(context.Background(), swapped, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(sw.Mistakes) != correct || len(sw.Mistakes) == 0 {
		t.Fatalf("%d mistakes with swapped labels, want %d (the images the run gets right)", len(sw.Mistakes), correct)
	}
	for i, m := range sw.Mistakes {
		if i > 0 && m.Probability > sw.Mistakes[i-1].Probability {
			t.Fatalf("mistake %d (%v) is more confident than mistake %d (%v)", i, m.Probability, i-1, sw.Mistakes[i-1].Probability)
		}
		probs, err := c.Predict(filepath.Join(swapped, filepath.FromSlash(m.Path)))
		if err != nil {
			t.Fatal(err)
		}
		if m.Pred == m.True || c.Classes[m.True] != strings.Split(m.Path, "/")[0] || math.Abs(float64(probs[m.Pred]-m.Probability)) > 1e-5 {
			t.Fatalf("mistake %+v: Predict gives %v", m, probs)
		}
	}

	// The command: the scores, and a warning for a folder of another class.
	birds := filepath.Join(data, "birds")
	os.Mkdir(birds, 0o755)
	os.WriteFile(filepath.Join(birds, "b.png"), nil, 0o644)
	code, out, stderr := predict(t, "--checkpoint", run, "--evaluate", data)
	if code != 0 || !strings.Contains(out, "evaluated 16 images of 2 classes") || !strings.Contains(out, "(1 unusable, skipped)") ||
		!strings.Contains(out, "precision") || !strings.Contains(out, "confusion matrix") || !strings.Contains(stderr, "birds") ||
		(correct < images) != strings.Contains(out, "most confident of") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}

	// --csv: every image, with the probabilities Predict gives it.
	csvPath := filepath.Join(dir, "scored.csv")
	plots := filepath.Join(dir, "plots")
	if code, _, stderr := predict(t, "--checkpoint", run, "--evaluate", data, "--plots", plots); code != 0 {
		t.Fatalf("--plots: exit %d: %s", code, stderr)
	}
	for _, f := range []string{"confusion.png", "roc.png"} {
		if st, err := os.Stat(filepath.Join(plots, f)); err != nil || st.Size() == 0 {
			t.Errorf("--plots: %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(plots, "mistakes.png")); (err == nil) != (correct < images) {
		t.Errorf("--plots: %d of %d images right, mistakes.png: %v", correct, images, err)
	}
	if code, _, stderr := predict(t, "--checkpoint", run, "--plots", plots, data); code != 2 || !strings.Contains(stderr, "--plots goes with --evaluate") {
		t.Errorf("--plots without --evaluate: exit %d: %s", code, stderr)
	}
	if code, _, stderr := predict(t, "--checkpoint", run, "--evaluate", data, "--csv", csvPath); code != 0 {
		t.Fatalf("--evaluate --csv: exit %d: %s", code, stderr)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 1+images || strings.Join(rows[0], ",") != "path,label,predicted,cats,dogs" {
		t.Fatalf("%s: %d rows (%v), header %v", csvPath, len(rows), err, rows[0])
	}
	wrong := 0
	for _, r := range rows[1:] {
		probs, err := c.Predict(r[0])
		if err != nil {
			t.Fatalf("row %v: %v", r, err)
		}
		if r[1] != filepath.Base(filepath.Dir(r[0])) {
			t.Errorf("row %v: label is not the folder's", r)
		}
		best := 0
		for k := range probs {
			if v, _ := strconv.ParseFloat(r[3+k], 64); math.Abs(v-float64(probs[k])) > 2e-6 {
				t.Errorf("row %v: probabilities, want %v", r, probs)
			}
			if probs[k] > probs[best] {
				best = k
			}
		}
		if r[2] != c.Classes[best] {
			t.Errorf("row %v: predicted, want %s", r, c.Classes[best])
		}
		if r[1] != r[2] {
			wrong++
		}
	}
	if wrong != images-correct {
		t.Errorf("%d rows wrongly predicted, want %d", wrong, images-correct)
	}

	// A labelled folder without one of the run's classes (scored on the
	// other, the missing one named), and misuse.
	partial := filepath.Join(dir, "partial")
	os.MkdirAll(filepath.Join(partial, "cats"), 0o755)
	cats, _ := filepath.Glob(filepath.Join(data, "cats", "cat_*"))
	if err := os.Link(cats[0], filepath.Join(partial, "cats", filepath.Base(cats[0]))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--checkpoint", run, "--evaluate", partial}, 0, `classes without a folder there, scored with no images" classes=[dogs]`},
		{[]string{"--evaluate", data}, 2, "--evaluate needs --checkpoint"},
		{[]string{"--checkpoint", run, "--evaluate", data, "x.jpg"}, 2, "give no images"},
	} {
		if code, _, stderr := predict(t, tc.args...); code != tc.code || !strings.Contains(stderr, tc.err) {
			t.Errorf("%q: exit %d, want %d: %s", tc.args, code, tc.code, stderr)
		}
	}
}

// TestCheckpointTop: with more classes than --top, an image's most probable
// classes, in order; with no more, every class in label order.
func TestCheckpointTop(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := dataset.Synthesize(data, 4, 3); err != nil {
		t.Fatal(err)
	}
	// Seven classes: copies of the two under other names.
	for i, from := range []string{"cats", "dogs", "cats", "dogs", "cats"} {
		if err := os.CopyFS(filepath.Join(data, fmt.Sprintf("class%d", i)), os.DirFS(filepath.Join(data, from))); err != nil {
			t.Fatal(err)
		}
	}
	// A roc.png of an earlier run in the folder: seven classes draw none,
	// so it must go.
	os.MkdirAll(filepath.Join(dir, "run"), 0o755)
	os.WriteFile(filepath.Join(dir, "run", "roc.png"), []byte("stale"), 0o644)
	trainRun(t, dir, "data: {dir: data, image_size: [48, 48]}\nhead: {layers: [8]}\ntrain: {epochs: 1, batch: 4}\nrun: {dir: run}\n")
	if _, err := os.Stat(filepath.Join(dir, "run", "roc.png")); !os.IsNotExist(err) {
		t.Errorf("a stale roc.png is left in the run folder (%v)", err)
	}
	img := filepath.Join(data, "cats", "cat_00000.png")
	probs := func(out string) (names []string, ps []float64) {
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			f := strings.Fields(l)
			p, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			names, ps = append(names, f[0]), append(ps, p)
		}
		return names, ps
	}
	code, out, stderr := predict(t, "--checkpoint", filepath.Join(dir, "run"), img)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	top, ps := probs(out)
	if len(top) != 5 || !slices.IsSortedFunc(ps, func(a, b float64) int { return cmp.Compare(b, a) }) {
		t.Errorf("default --top 5 of 7 classes:\n%s", out)
	}
	code, out, stderr = predict(t, "--checkpoint", filepath.Join(dir, "run"), "--top", "7", img)
	all, allPs := probs(out)
	if code != 0 || !slices.Equal(all, []string{"cats", "class0", "class1", "class2", "class3", "class4", "dogs"}) {
		t.Fatalf("--top 7 of 7 classes: exit %d, classes %q (want label order): %s", code, all, stderr)
	}
	// The five shown are the five most probable of all seven.
	sorted := slices.Clone(allPs)
	slices.SortFunc(sorted, func(a, b float64) int { return cmp.Compare(b, a) })
	if !slices.Equal(ps, sorted[:5]) {
		t.Errorf("top 5 %v, the five largest of %v are %v", ps, allPs, sorted[:5])
	}
	// JSON answers as --serve does: every class in label order, or with
	// --top the most probable first.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, all},
		{[]string{"--top", "3"}, top[:3]},
	} {
		code, out, stderr := predict(t, append(append([]string{"--checkpoint", filepath.Join(dir, "run"), "--json"}, tc.args...), img)...)
		var res struct{ Probabilities []ClassProbability }
		if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil {
			t.Fatalf("--json %v: exit %d, %v: %s", tc.args, code, err, stderr)
		}
		var names []string
		for _, p := range res.Probabilities {
			names = append(names, p.Class)
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("--json %v: classes %q, want %q", tc.args, names, tc.want)
		}
	}
}

// TestExplain: --explain prints what classifying prints, plus where each
// image's Grad-CAM picture went; the pictures are JPEGs of the images'
// sizes, named after them (two of one name apart), and one per class
// asked for differ.
func TestExplain(t *testing.T) {
	dir := t.TempDir()
	data := trainTinyRun(t, dir)
	run := filepath.Join(dir, "run")
	cat := filepath.Join(data, "cats", "cat_00000.png")
	dog := filepath.Join(data, "dogs", "dog_00001.jpg")
	if _, err := os.Stat(dog); err != nil {
		t.Fatal(err)
	}
	same := filepath.Join(dir, "cat_00000.png") // another image of the same name
	if raw, err := os.ReadFile(cat); err != nil || os.WriteFile(same, raw, 0o644) != nil {
		t.Fatal(err)
	}
	_, plain, _ := predict(t, "--checkpoint", run, cat, dog, same)
	out := filepath.Join(dir, "explained")
	code, got, stderr := predict(t, "--checkpoint", run, "--explain", out, cat, dog, same)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var want, names []string
	lines := strings.Split(strings.TrimSpace(got), "\n")
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "  grad-cam of "); ok {
			class, file, _ := strings.Cut(rest, ": ")
			names = append(names, filepath.Base(file)+" "+class)
			continue
		}
		want = append(want, l)
	}
	if strings.Join(want, "\n") != strings.TrimSpace(plain) {
		t.Errorf("output without the grad-cam lines:\n%s\nwant what classifying prints:\n%s", strings.Join(want, "\n"), plain)
	}
	// The tiny run's predictions decide the classes drawn: read them back
	// from the plain output (cats and dogs lines, in that order).
	predicted := func(img string) string {
		_, o, _ := predict(t, "--checkpoint", run, img)
		var p [2]float64
		for i, l := range strings.Split(strings.TrimSpace(o), "\n")[1:] {
			p[i], _ = strconv.ParseFloat(strings.Fields(l)[1], 64)
		}
		if p[1] > p[0] {
			return "dogs"
		}
		return "cats"
	}
	wantNames := []string{"cat_00000.gradcam.jpg " + predicted(cat), "dog_00001.gradcam.jpg " + predicted(dog), "cat_00000-2.gradcam.jpg " + predicted(same)}
	if !slices.Equal(names, wantNames) {
		t.Errorf("grad-cam lines %q, want %q", names, wantNames)
	}
	for _, img := range []string{cat, dog} {
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		src, _, err := image.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(img), filepath.Ext(img)) + ".gradcam.jpg"
		f, err = os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		m, format, err := image.DecodeConfig(f)
		f.Close()
		if err != nil || format != "jpeg" || m.Width != src.Width || m.Height != src.Height {
			t.Errorf("%s: %s %dx%d (%v), want a JPEG of the image's %dx%d", name, format, m.Width, m.Height, err, src.Width, src.Height)
		}
	}
	// Each class's evidence is drawn on request, and differs.
	var pictures [][]byte
	for _, class := range []string{"cats", "dogs"} {
		code, got, stderr := predict(t, "--checkpoint", run, "--explain", out, "--explain-class", class, cat)
		if code != 0 || !strings.Contains(got, "grad-cam of "+class+": ") {
			t.Fatalf("--explain-class %s: exit %d, output %s: %s", class, code, got, stderr)
		}
		raw, err := os.ReadFile(filepath.Join(out, "cat_00000.gradcam.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		pictures = append(pictures, raw)
	}
	if bytes.Equal(pictures[0], pictures[1]) {
		t.Error("the pictures of the two classes' evidence are the same")
	}
	// An unknown class, and an unusable image among good ones.
	if code, _, stderr := predict(t, "--checkpoint", run, "--explain", out, "--explain-class", "birds", cat); code != 1 || !strings.Contains(stderr, `"birds": the classes are cats, dogs`) {
		t.Errorf("--explain-class birds: exit %d: %s", code, stderr)
	}
	// Where the pictures cannot go: one error before any work.
	code, got, stderr = predict(t, "--checkpoint", run, "--explain", filepath.Join(cat, "sub"), cat)
	if code != 1 || got != "" || !strings.Contains(stderr, "not a directory") {
		t.Errorf("--explain under a file: exit %d, output %q, stderr %s", code, got, stderr)
	}
	// A folder explained into itself, twice: its pictures are not explained
	// again; names that differ only in case do not overwrite each other.
	photos := filepath.Join(dir, "photos")
	os.MkdirAll(photos, 0o755)
	raw, _ := os.ReadFile(cat)
	os.WriteFile(filepath.Join(photos, "Cat.png"), raw, 0o644)
	os.WriteFile(filepath.Join(photos, "cat.PNG"), raw, 0o644)
	for range 2 {
		if code, got, stderr := predict(t, "--checkpoint", run, "--explain", filepath.Join(photos, "explained"), photos); code != 0 || strings.Count(got, "grad-cam of") != 2 {
			t.Fatalf("a folder explained into itself: exit %d\n%s\n%s", code, got, stderr)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(photos, "explained")); len(entries) != 2 || !strings.EqualFold(entries[0].Name(), "cat-2.gradcam.jpg") && !strings.EqualFold(entries[1].Name(), "cat-2.gradcam.jpg") {
		t.Errorf("pictures %v, want Cat.gradcam.jpg and cat-2.gradcam.jpg", entries)
	}
	broken := filepath.Join(dir, "broken.jpg")
	os.WriteFile(broken, []byte("not a jpeg"), 0o644)
	code, got, stderr = predict(t, "--checkpoint", run, "--explain", out, broken, cat)
	if code != 1 || !strings.Contains(got, broken+"\n  error: ") || !strings.Contains(got, "not a supported image format\n") || !strings.Contains(got, "cat_00000.gradcam.jpg") ||
		!strings.Contains(stderr, "1 of 2 images could not be used") {
		t.Errorf("a broken image first: exit %d, output\n%s\nstderr %s", code, got, stderr)
	}
}

// TestPublishedWeightsUnreachable: --weights imagenet asks for Keras' full
// file (with ImageNet's classes) to classify, the one without them for
// embeddings, from the mirror when one is set, and an unreachable one is
// one clear error; --summary and a missing checkpoint ask for nothing.
func TestPublishedWeightsUnreachable(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Path)
		mu.Unlock()
		http.NotFound(w, r)
	}))
	defer srv.Close()
	home := pretrainedtest.Isolate(t, srv.URL)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--weights", "imagenet", cat}, "/resnet50_weights_tf_dim_ordering_tf_kernels.h5: 404 Not Found"},
		{[]string{"--weights", "imagenet", "--features-out", filepath.Join(home, "f.npy"), cat}, "/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5: 404 Not Found"},
		{[]string{"--weights", "IMAGENET1K_V1", cat}, "/resnet50-0676ba61.pth: 404 Not Found"},
	} {
		code, _, stderr := predict(t, tc.args...)
		if code != 1 || !strings.Contains(stderr, srv.URL+tc.want) || strings.Contains(stderr, "goroutine") {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit 1 and %q", tc.args, code, stderr, tc.want)
		}
	}
	mu.Lock()
	n := len(asked)
	mu.Unlock()
	if code, out, stderr := predict(t, "--weights", "imagenet", "--summary"); code != 0 || !strings.Contains(out, "Total params: 25,636,712") {
		t.Errorf("--summary: exit %d: %s\n%s", code, out, stderr)
	}
	if code, _, stderr := predict(t, "--checkpoint", filepath.Join(home, "no-run"), "--weights", "imagenet", cat); code != 1 || !strings.Contains(stderr, "no-run") {
		t.Errorf("missing checkpoint: exit %d: %s", code, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != n {
		t.Errorf("--summary or a missing checkpoint asked the mirror for %q", asked[n:])
	}
}

// TestJSON: --json writes a JSON object per image, files or folders,
// errors included, with the probabilities the text shows (and what
// --serve answers), and with --explain where the picture went.
func TestJSON(t *testing.T) {
	dir, data, run, img, broken := tinyRunAndImages(t)
	decode := func(out string) []map[string]any {
		var res []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			res = append(res, m)
		}
		return res
	}
	code, out, stderr := predict(t, "--checkpoint", run, "--json", img, broken)
	if code != 1 || !strings.Contains(stderr, "1 of 2 images could not be used") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	res := decode(out)
	_, text, _ := predict(t, "--checkpoint", run, img)
	var probs []any
	for _, l := range strings.Split(strings.TrimSpace(text), "\n")[1:] {
		f := strings.Fields(l)
		p, _ := strconv.ParseFloat(f[1], 64)
		probs = append(probs, map[string]any{"class": f[0], "probability": p})
	}
	if len(res) != 2 || res[0]["path"] != img || res[1]["path"] != broken || res[1]["error"] == nil || res[0]["error"] != nil {
		t.Fatalf("JSON lines %v", res)
	}
	got := res[0]["probabilities"].([]any)
	for i, p := range got {
		pm, want := p.(map[string]any), probs[i].(map[string]any)
		if pm["class"] != want["class"] || math.Abs(pm["probability"].(float64)-want["probability"].(float64)) > 5e-5 {
			t.Errorf("class %d: %v, the text says %v", i, pm, want)
		}
	}
	if pred := res[0]["predicted"]; pred != "cats" && pred != "dogs" {
		t.Errorf("predicted %v", pred)
	}
	// A folder: JSON Lines too (not CSV), every image.
	code, out, stderr = predict(t, "--checkpoint", run, "--json", data)
	if res := decode(out); code != 0 || len(res) != 16 {
		t.Errorf("a folder: exit %d, %d lines: %s", code, len(res), stderr)
	}
	// With --explain, where each picture went.
	code, out, stderr = predict(t, "--checkpoint", run, "--json", "--explain", filepath.Join(dir, "x"), img)
	if res := decode(out); code != 0 || len(res) != 1 || res[0]["gradcam"] != filepath.Join(dir, "x", "cat_00000.gradcam.jpg") || res[0]["gradcam_class"] != res[0]["predicted"] {
		t.Errorf("--explain: exit %d, %v: %s", code, res, stderr)
	}
	if code, _, stderr := predict(t, "--checkpoint", run, "--json", "--csv", "x.csv", data); code != 2 || !strings.Contains(stderr, "not with --csv") {
		t.Errorf("--json --csv: exit %d: %s", code, stderr)
	}
}

// TestExplainWeights: --weights with --explain draws the weights' own
// classes (ImageNet's for ImageNet weights; here the golden's 10), the
// most probable first in the text.
func TestExplainWeights(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x")
	code, got, stderr := predict(t, "--weights", weights, "--size", "64", "--explain", out, cat)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 7 || lines[0] != cat || !strings.HasPrefix(lines[6], "  grad-cam of ") {
		t.Fatalf("output:\n%s", got)
	}
	top := strings.Fields(lines[1])[0]
	if !strings.HasSuffix(lines[6], top+": "+filepath.Join(out, "chelsea.gradcam.jpg")) {
		t.Errorf("the picture is not of the most probable class %s: %q", top, lines[6])
	}
	if _, err := os.Stat(filepath.Join(out, "chelsea.gradcam.jpg")); err != nil {
		t.Error(err)
	}
	if code, _, stderr := predict(t, "--weights", weights, "--size", "64", "--explain", out, "--explain-class", "tabby", cat); code != 1 || !strings.Contains(stderr, `"tabby": the classes are class_0`) {
		t.Errorf("--explain-class tabby: exit %d: %s", code, stderr)
	}
}

func TestFindClass(t *testing.T) {
	classes := []string{"tabby", "crane (n02012849)", "crane (n03126707)", "wallet"}
	wnids := []string{"n02123045", "n02012849", "n03126707", "n04548362"}
	for _, tc := range []struct {
		q    string
		want int
		err  string
	}{
		{"tabby", 0, ""},
		{"n04548362", 3, ""},
		{"crane (n03126707)", 2, ""},
		{"crane", 0, `2 classes have that name: say which, "crane (n02012849)" or "crane (n03126707)"`},
		{"birds", 0, "the classes are tabby, crane (n02012849), crane (n03126707), wallet"},
	} {
		got, err := findClass(classes, wnids, tc.q)
		if tc.err == "" && (err != nil || got != tc.want) || tc.err != "" && (err == nil || err.Error() != tc.err) {
			t.Errorf("findClass(%q) = %d, %v; want %d, %q", tc.q, got, err, tc.want, tc.err)
		}
	}
	many := make([]string, 25)
	for i := range many {
		many[i] = fmt.Sprintf("species_%d", i)
	}
	if _, err := findClass(many, nil, "Species_3"); err == nil || !strings.Contains(err.Error(), "not one of the run's 25 classes") || strings.Contains(err.Error(), "WordNet") {
		t.Errorf("a run's 25 classes: %v", err)
	}
}

// TestTTA: --tta changes the probabilities (the mirror images count), in
// every prediction mode, and goes with --checkpoint alone.
func TestTTA(t *testing.T) {
	dir := t.TempDir()
	data := trainTinyRun(t, dir)
	run := filepath.Join(dir, "run")
	img := filepath.Join(data, "cats", "cat_00000.png")
	for _, args := range [][]string{{img}, {"--json", img}, {"--evaluate", data}, {"--explain", filepath.Join(dir, "x"), img}} {
		_, plain, _ := predict(t, append([]string{"--checkpoint", run}, args...)...)
		code, tta, stderr := predict(t, append([]string{"--checkpoint", run, "--tta"}, args...)...)
		if code != 0 || tta == plain {
			t.Errorf("%v: exit %d, the same output with --tta:\n%s%s", args, code, tta, stderr)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--weights", weights, "--tta", cat}, "--tta needs --checkpoint"},
		{[]string{"--checkpoint", run, "--tta", "--onnx", filepath.Join(dir, "m.onnx")}, "--tta is for predictions"},
	} {
		if code, _, stderr := predict(t, tc.args...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d: %s", tc.args, code, stderr)
		}
	}
}

// cancelOnWrite is a writer that cancels a context at its first write.
type cancelOnWrite struct {
	w      io.Writer
	cancel context.CancelFunc
}

func (c cancelOnWrite) Write(p []byte) (int, error) {
	c.cancel()
	return c.w.Write(p)
}

// TestInterruptedCSV: a classification interrupted (Ctrl-C) after part of
// its CSV went out ends the CSV with the last whole row, not in the middle
// of one.
func TestInterruptedCSV(t *testing.T) {
	dir, data, run, _, _ := tinyRunAndImages(t)
	// Enough rows to fill the CSV writer's buffer (its first write
	// interrupts the run), and a folder among them for CSV on stdout.
	args := []string{"--checkpoint", run, "--batch", "4", dir}
	for range 8 {
		args = append(args, data)
	}
	o, err := parse(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	if err := classifyWithCheckpoint(ctx, o, cancelOnWrite{&out, cancel}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want it interrupted", err)
	}
	rows, err := csv.NewReader(bytes.NewReader(out.Bytes())).ReadAll()
	if err != nil || len(rows) < 2 || !strings.HasSuffix(out.String(), "\n") {
		t.Fatalf("the interrupted CSV does not end with a whole row (%v):\n%s", err, out.String())
	}
	for _, r := range rows[1:] {
		if r[1] != "cats" && r[1] != "dogs" && r[4] == "" {
			t.Errorf("row %q: a class cut short", r)
		}
	}
}

// TestCSVOnStdout: --csv - writes the CSV on stdout (it wrote a file named
// "-"), for files as for folders; --evaluate, whose scores print there,
// refuses it.
func TestCSVOnStdout(t *testing.T) {
	dir, data, run, img, _ := tinyRunAndImages(t)
	t.Chdir(dir)
	for _, args := range [][]string{{img}, {data}} {
		code, stdout, stderr := predict(t, append([]string{"--checkpoint", run, "--csv", "-"}, args...)...)
		rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if code != 0 || err != nil || len(rows) < 2 || strings.Join(rows[0], ",") != "path,predicted,cats,dogs,error" {
			t.Errorf("%q: exit %d, stdout %q (%v): %s", args, code, stdout, err, stderr)
		}
	}
	if _, err := os.Stat("-"); err == nil {
		t.Error("--csv - wrote a file named -")
	}
	if code, _, stderr := predict(t, "--checkpoint", run, "--evaluate", data, "--csv", "-"); code != 2 || !strings.Contains(stderr, "--csv - with --evaluate") {
		t.Errorf("--evaluate --csv -: exit %d: %s", code, stderr)
	}
}
