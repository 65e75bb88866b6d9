package dataset

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// collected is everything a Stream produced, concatenated.
type collected struct {
	labels  []int
	paths   []string
	digests [][32]byte
	pixels  []float32
	sizes   []int
}

// collect runs Stream and concatenates what it yields; the batches are
// released after use when cfg.Seed is odd (so both paths are exercised).
func collect(t *testing.T, cfg Config, samples []Sample, batch int, skips *SkipLog) (collected, error) {
	t.Helper()
	var c collected
	for b, err := range Stream(context.Background(), cfg, samples, batch, skips) {
		if err != nil {
			return c, err
		}
		shape := b.Images.Shape()
		if want := []int{b.Len(), cfg.Height, cfg.Width, 3}; !reflect.DeepEqual([]int(shape), want) {
			t.Fatalf("batch shape %v, want %v", shape, want)
		}
		if len(b.Paths) != b.Len() || len(b.Digests) != b.Len() {
			t.Fatalf("batch of %d labels, %d paths, %d digests", b.Len(), len(b.Paths), len(b.Digests))
		}
		c.labels = append(c.labels, b.Labels...)
		c.paths = append(c.paths, b.Paths...)
		c.digests = append(c.digests, b.Digests...)
		c.pixels = append(c.pixels, b.Images.Data().([]float32)...)
		c.sizes = append(c.sizes, b.Len())
		if cfg.Seed%2 != 0 {
			b.Release()
		}
	}
	return c, nil
}

// messyTree writes a synthetic dataset plus one file of each kind of trouble.
func messyTree(t *testing.T) (root string, bad map[string]string) {
	t.Helper()
	root = t.TempDir()
	if err := Synthesize(root, 9, 3); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(root, "cats", "cat_00000.jpg"))
	if err != nil {
		good, err = os.ReadFile(filepath.Join(root, "cats", "cat_00000.png"))
	}
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, root, map[string][]byte{
		"cats/empty.jpg":        nil,
		"cats/truncated.jpg":    good[:len(good)/2],
		"dogs/readme.jpg":       []byte("this is not an image\n"),
		"dogs/huge.png":         encodePNG(t, solid(700, 600, color.NRGBA{A: 255})),
		"dogs/sub/heic.gif":     []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
		"dogs/png_named.JPG":    tinyPNG(t, 1), // decoded by content: usable
		"cats/notes.txt":        []byte("not listed at all"),
		"cats/.hidden/x.jpg":    nil,
		"dogs/.DS_Store":        []byte{0},
		"cats/sub/deep/ok.jpeg": encodeJPEG(t, solid(30, 20, color.NRGBA{9, 9, 9, 255}), 90),
	})
	return root, map[string]string{
		"cats/empty.jpg":     "empty file",
		"cats/truncated.jpg": "corrupt or truncated",
		"dogs/readme.jpg":    "not a supported image format",
		"dogs/huge.png":      "too large: 700x600 = 420000 pixels > limit 400000",
		"dogs/sub/heic.gif":  "not a supported image format",
	}
}

func TestStreamDeterministicOrder(t *testing.T) {
	root, bad := messyTree(t)
	base := Config{Root: root, Height: 24, Width: 32, MaxPixels: 400_000, ValidationSplit: 0.3, Seed: 11}
	idx, err := Scan(base)
	if err != nil {
		t.Fatal(err)
	}
	samples := Shuffle(append(idx.Train, idx.Validation...), 4, 0)
	var want []string // the samples in order, bad files left out
	for _, s := range samples {
		if _, ok := bad[s.Path]; !ok {
			want = append(want, s.Path)
		}
	}
	var ref collected
	for i, run := range []struct{ workers, batch int }{{1, 5}, {2, 5}, {7, 5}, {3, 1}, {4, 64}, {2, 3}} {
		cfg := base
		cfg.Workers = run.workers
		cfg.Seed += int64(i) // odd: batches released (see collect); the split is fixed by Scan above
		got, err := collect(t, cfg, samples, run.batch, &SkipLog{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("workers %d: %v", run.workers, err)
		}
		if !reflect.DeepEqual(got.paths, want) {
			t.Fatalf("workers %d batch %d: paths\n%q\nwant\n%q", run.workers, run.batch, got.paths, want)
		}
		for j, size := range got.sizes {
			if size != run.batch && j != len(got.sizes)-1 {
				t.Fatalf("batch %d of %d has %d images, want %d", j, len(got.sizes), size, run.batch)
			}
		}
		if i == 0 {
			ref = got
			continue
		}
		if !reflect.DeepEqual(got.labels, ref.labels) || !reflect.DeepEqual(got.digests, ref.digests) || !reflect.DeepEqual(got.pixels, ref.pixels) {
			t.Fatalf("workers %d batch %d: labels, digests or pixels differ from workers 1", run.workers, run.batch)
		}
	}
	for i, p := range ref.paths {
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if ref.digests[i] != sha256.Sum256(data) {
			t.Errorf("%s: digest is not the sha256 of the file", p)
		}
	}
}

func TestBatchRelease(t *testing.T) {
	root := t.TempDir()
	if err := Synthesize(root, 6, 1); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Root: root, Height: 4, Width: 4, Workers: 2}
	idx, err := Scan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var backing []*float32
	for b, err := range Stream(context.Background(), cfg, idx.Train, 3, nil) {
		if err != nil {
			t.Fatal(err)
		}
		backing = append(backing, &b.Images.Data().([]float32)[0])
		b.Release()
		b.Release() // no effect
	}
	if len(backing) != 4 || backing[1] != backing[0] || backing[3] != backing[0] || backing[2] != backing[0] {
		t.Errorf("released batches' memory not reused: %d batches at %v", len(backing), backing)
	}
	Batch{}.Release() // a zero Batch is fine
}

func TestSkipsReported(t *testing.T) {
	root, bad := messyTree(t)
	var logs bytes.Buffer
	skips := &SkipLog{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	cfg := Config{Root: root, Height: 16, Width: 16, MaxPixels: 400_000, Workers: 2}
	idx, err := Scan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for epoch := range 2 { // a second epoch meets the same files: no new entries
		if _, err := collect(t, cfg, Shuffle(idx.Train, 1, epoch), 4, skips); err != nil {
			t.Fatal(err)
		}
	}
	if skips.Len() != len(bad) {
		t.Errorf("%d skipped files, want %d: %v", skips.Len(), len(bad), skips.Entries())
	}
	for _, s := range skips.Entries() {
		reason, ok := bad[s.Path]
		if !ok || !strings.HasPrefix(s.Reason, reason) {
			t.Errorf("skipped %s (%s), want reason %q", s.Path, s.Reason, reason)
		}
		if n := strings.Count(logs.String(), "path="+s.Path+" "); n != 1 {
			t.Errorf("%s logged %d times, want once", s.Path, n)
		}
	}

	report := filepath.Join(t.TempDir(), "skipped.jsonl")
	if err := skips.WriteReport(report); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(report)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []Skip
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s Skip
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("report line %q: %v", sc.Text(), err)
		}
		lines = append(lines, s)
	}
	if !reflect.DeepEqual(lines, skips.Entries()) {
		t.Errorf("report %v, want %v", lines, skips.Entries())
	}
	if err := skips.WriteReport(filepath.Join(t.TempDir(), "missing", "x.jsonl")); err == nil {
		t.Error("WriteReport into a missing folder did not fail")
	}
}

func TestNoUsableImages(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string][]byte{
		"cats/a.png": tinyPNG(t, 1), "cats/b.png": tinyPNG(t, 2),
		"dogs/a.jpg": nil, "dogs/b.jpg": []byte("GIF89a garbage"),
	})
	cfg := Config{Root: root, Classes: []string{"cats", "dogs"}, Height: 8, Width: 8}
	idx, err := Scan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	quiet := &SkipLog{Logger: slog.New(slog.DiscardHandler)}
	_, err = collect(t, cfg, idx.Train, 2, quiet)
	if !errors.Is(err, ErrNoUsableImages) || !strings.Contains(err.Error(), `class "dogs"`) {
		t.Errorf("Stream error = %v, want ErrNoUsableImages naming dogs", err)
	}
	var last [2]int
	sum, err := Check(context.Background(), cfg, quiet, func(done, total int) { last = [2]int{done, total} })
	if !errors.Is(err, ErrNoUsableImages) || !strings.Contains(err.Error(), `"dogs"`) {
		t.Errorf("Check error = %v, want ErrNoUsableImages naming dogs", err)
	}
	if last[0] != last[1] || last[1] == 0 {
		t.Errorf("progress ended at %d of %d", last[0], last[1])
	}
	if sum == nil || !reflect.DeepEqual(sum.Train, []int{2, 0}) || len(sum.Skipped) != 2 {
		t.Errorf("Check summary = %+v, want train counts [2 0] and 2 skipped", sum)
	}
}

func TestCheck(t *testing.T) {
	root, bad := messyTree(t)
	cfg := Config{Root: root, Height: 16, Width: 16, MaxPixels: 400_000, ValidationSplit: 0.4, Seed: 2}
	var calls [][2]int
	sum, err := Check(context.Background(), cfg, &SkipLog{Logger: slog.New(slog.DiscardHandler)}, func(done, total int) { calls = append(calls, [2]int{done, total}) })
	if err != nil {
		t.Fatal(err)
	}
	idx, err := Scan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Progress counts every file, the skipped ones too, up to all of them.
	total := len(idx.Train) + len(idx.Validation)
	for i, c := range calls {
		if c[1] != total || c[0] > total || i > 0 && c[0] < calls[i-1][0] {
			t.Fatalf("progress calls %v, want a rising count up to %d", calls, total)
		}
	}
	if len(calls) == 0 || calls[len(calls)-1][0] != total {
		t.Errorf("progress calls %v, want the last at %d of %d", calls, total, total)
	}
	count := func(samples []Sample) []int {
		n := make([]int, len(idx.Classes))
		for _, s := range samples {
			if _, isBad := bad[s.Path]; !isBad {
				n[s.Label]++
			}
		}
		return n
	}
	if !reflect.DeepEqual(sum.Classes, []string{"cats", "dogs"}) || !reflect.DeepEqual(sum.Train, count(idx.Train)) ||
		!reflect.DeepEqual(sum.Validation, count(idx.Validation)) || len(sum.Skipped) != len(bad) {
		t.Errorf("summary %+v; want train %v, validation %v, %d skipped", sum, count(idx.Train), count(idx.Validation), len(bad))
	}
	text := sum.String()
	for _, want := range []string{"cats", "dogs", "total", fmt.Sprintf("%d file(s) skipped", len(bad)), "dogs/huge.png: too large"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary text lacks %q:\n%s", want, text)
		}
	}
}

func TestStreamStop(t *testing.T) {
	root := t.TempDir()
	if err := Synthesize(root, 20, 5); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Root: root, Height: 8, Width: 8, Workers: 3}
	idx, err := Scan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()

	// Breaking out of the loop stops the workers.
	for range Stream(context.Background(), cfg, idx.Train, 2, nil) {
		break
	}
	// Cancelling the context ends the sequence with ctx's error.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n int
	var last error
	for b, err := range Stream(ctx, cfg, idx.Train, 2, nil) {
		if err != nil {
			last = err
			break
		}
		n += b.Len()
		cancel()
	}
	if !errors.Is(last, context.Canceled) || n >= len(idx.Train) {
		t.Errorf("after cancel: error %v, %d of %d images; want context.Canceled early", last, n, len(idx.Train))
	}
	for _, bad := range []struct {
		cfg   Config
		batch int
	}{{cfg, 0}, {Config{Root: root, Preprocess: "tf"}, 4}, {Config{Root: root, ValidationSplit: 1}, 4}} {
		for _, err := range Stream(context.Background(), bad.cfg, idx.Train, bad.batch, nil) {
			if err == nil {
				t.Errorf("Stream(%+v, batch %d) yielded a batch, want an error", bad.cfg, bad.batch)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines before, %d after: Stream leaked", before, after)
	}
}

func TestLoad(t *testing.T) {
	root := t.TempDir()
	if err := Synthesize(root, 3, 9); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Root: root, Height: 20, Width: 30, Preprocess: PreprocessTorch, CropToAspectRatio: true}
	idx, err := Scan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, cfg, idx.Train, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	size := 20 * 30 * 3
	for i, p := range got.paths {
		pix, digest, err := Load(cfg, filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		if digest != got.digests[i] || !reflect.DeepEqual(pix, got.pixels[i*size:(i+1)*size]) {
			t.Errorf("%s: Load differs from Stream", p)
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		if dec, err := Decode(cfg, data); err != nil || !reflect.DeepEqual(dec, pix) {
			t.Errorf("%s: Decode differs from Load (error %v)", p, err)
		}
	}
	if _, err := Decode(cfg, []byte("GIF89a, or not")); !errors.Is(err, ErrBadImage) {
		t.Errorf("Decode(garbage) error = %v, want ErrBadImage", err)
	}
	_, _, err = Load(cfg, filepath.Join(root, "missing.jpg"))
	if !errors.Is(err, ErrBadImage) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.jpg") {
		t.Errorf("Load(missing) error = %v, want ErrBadImage and ErrNotExist naming the file", err)
	}
}

// TestStreamRSS streams images under $DATASET_RSS_ROOT (the first
// $DATASET_RSS_N of a shuffle, or all), releasing each batch unless
// DATASET_RSS_RELEASE=0, and prints the count and the peak resident set
// size; scripts/dataset_rss.sh compares two counts with it. Skipped unless
// DATASET_RSS_ROOT is set.
func TestStreamRSS(t *testing.T) {
	root := os.Getenv("DATASET_RSS_ROOT")
	if root == "" {
		t.Skip("DATASET_RSS_ROOT not set")
	}
	cfg := Config{Root: root}
	idx, err := Scan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	samples := Shuffle(idx.Train, 1, 0)
	if s := os.Getenv("DATASET_RSS_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n > len(samples) {
			t.Fatalf("DATASET_RSS_N=%q: want a number up to %d", s, len(samples))
		}
		samples = samples[:n]
	}
	n := 0
	start := time.Now()
	for b, err := range Stream(context.Background(), cfg, samples, 32, nil) {
		if err != nil {
			t.Fatal(err)
		}
		n += b.Len()
		if os.Getenv("DATASET_RSS_RELEASE") != "0" {
			b.Release()
		}
	}
	status, _ := os.ReadFile("/proc/self/status")
	var hwm string
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			hwm = strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	el := time.Since(start)
	fmt.Printf("streamed %d images in %v (%.0f images/s), VmHWM %s\n", n, el.Round(time.Millisecond), float64(n)/el.Seconds(), hwm)
}

// TestCheckDuplicates finds files with the same bytes, within a class,
// across classes and across the split.
func TestCheckDuplicates(t *testing.T) {
	root := t.TempDir()
	a, b := tinyPNG(t, 1), tinyPNG(t, 2)
	files := map[string][]byte{"cats/a.png": a, "cats/a2.png": a, "dogs/a3.png": a, "dogs/b.png": b}
	for i := range 12 {
		files[fmt.Sprintf("cats/u%02d.png", i)] = tinyPNG(t, 100+i)
		files[fmt.Sprintf("dogs/u%02d.png", i)] = tinyPNG(t, 200+i)
	}
	writeFiles(t, root, files)
	cfg := Config{Root: root, Height: 8, Width: 8, ValidationSplit: 0.5, Seed: 4}
	sum, err := Check(context.Background(), cfg, &SkipLog{Logger: slog.New(slog.DiscardHandler)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := Scan(cfg)
	inVal := map[string]bool{}
	for _, s := range idx.Validation {
		inVal[s.Path] = true
	}
	// The first of the three copies seen (training before validation, path
	// order) is the original; the other two are its duplicates.
	copies := []string{"cats/a.png", "cats/a2.png", "dogs/a3.png"}
	slices.SortStableFunc(copies, func(x, y string) int {
		if inVal[x] != inVal[y] {
			if inVal[x] {
				return 1
			}
			return -1
		}
		return strings.Compare(x, y)
	})
	var want []Duplicate
	for _, p := range copies[1:] {
		want = append(want, Duplicate{Path: p, Of: copies[0], CrossSplit: inVal[p] != inVal[copies[0]], Relabelled: p[:4] != copies[0][:4]})
	}
	if !reflect.DeepEqual(sum.Duplicates, want) {
		t.Errorf("duplicates %+v, want %+v", sum.Duplicates, want)
	}
	if text := sum.String(); !strings.Contains(text, "2 duplicate file(s)") || !strings.Contains(text, copies[0]+" = "+copies[1]) {
		t.Errorf("summary text:\n%s", text)
	}
}

// TestWriteDuplicates: a line per file copied, the copies in another class
// first, a few copies named on each, and a bounded number of lines.
func TestWriteDuplicates(t *testing.T) {
	var ds []Duplicate
	for i := range 7 {
		ds = append(ds, Duplicate{Path: fmt.Sprintf("cats/copy%d.jpg", i), Of: "cats/one.jpg"})
	}
	ds = append(ds, Duplicate{Path: "dogs/cat.jpg", Of: "cats/two.jpg", Relabelled: true}, Duplicate{Path: "cats/v.jpg", Of: "cats/three.jpg", CrossSplit: true})
	var b strings.Builder
	writeDuplicates(&b, ds)
	want := "  cats/two.jpg = dogs/cat.jpg (another class)\n" +
		"  cats/three.jpg = cats/v.jpg (across the split)\n" +
		"  cats/one.jpg = cats/copy0.jpg, cats/copy1.jpg, cats/copy2.jpg, cats/copy3.jpg, cats/copy4.jpg, and 2 more\n"
	if b.String() != want {
		t.Errorf("writeDuplicates:\n%s\nwant\n%s", b.String(), want)
	}
	ds = ds[:0]
	for i := range 2 * maxDuplicateGroups {
		ds = append(ds, Duplicate{Path: fmt.Sprintf("b/%d.jpg", i), Of: fmt.Sprintf("a/%d.jpg", i)})
	}
	b.Reset()
	writeDuplicates(&b, ds)
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != maxDuplicateGroups+1 || lines[maxDuplicateGroups] != fmt.Sprintf("  ... and %d more files with copies", maxDuplicateGroups) {
		t.Errorf("%d files with copies: %d lines, the last %q", 2*maxDuplicateGroups, len(lines), lines[len(lines)-1])
	}
}

// TestLoadView: the view's pixels are Load's, its image the decoded one
// (EXIF-rotated), its box the crop the pixels came from, mirrored as the
// pixels are.
func TestLoadView(t *testing.T) {
	// 48x32, quadrants red, green / blue, white; orientation 6 (rotated 90°
	// clockwise) makes it 32x48 with blue at the top left.
	cols := []color.NRGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {255, 255, 255, 255}}
	src := image.NewNRGBA(image.Rect(0, 0, 48, 32))
	for y := range 32 {
		for x := range 48 {
			src.SetNRGBA(x, y, cols[x/24+2*(y/16)])
		}
	}
	path := filepath.Join(t.TempDir(), "rotated.jpg")
	if err := os.WriteFile(path, withEXIF(encodeJPEG(t, src, 100), 6, "II"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		box  image.Rectangle
	}{
		{"whole", Config{Height: 20, Width: 30}, image.Rect(0, 0, 32, 48)},
		{"cropped", Config{Height: 20, Width: 30, CropToAspectRatio: true}, image.Rect(0, 13, 32, 34)},
		{"mirrored", Config{Height: 16, Width: 16, HorizontalFlip: true, CropToAspectRatio: true}, image.Rect(0, 8, 32, 40)},
		{"as Keras (no EXIF)", Config{Height: 16, Width: 16, IgnoreEXIF: true}, image.Rect(0, 0, 48, 32)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := LoadView(tc.cfg, path)
			if err != nil {
				t.Fatal(err)
			}
			pix, _, err := Load(tc.cfg, path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v.Pixels, pix) {
				t.Error("pixels differ from Load's")
			}
			if v.Box != tc.box || v.Mirrored != tc.cfg.HorizontalFlip {
				t.Errorf("box %v mirrored %v, want %v %v", v.Box, v.Mirrored, tc.box, tc.cfg.HorizontalFlip)
			}
			b := v.Image.Bounds()
			topLeft := cols[2] // blue, once rotated
			if tc.cfg.IgnoreEXIF {
				topLeft = cols[0]
			}
			if want := image.Rect(0, 0, 32, 48); !tc.cfg.IgnoreEXIF && b != want || tc.cfg.IgnoreEXIF && b != image.Rect(0, 0, 48, 32) {
				t.Errorf("image bounds %v", b)
			}
			c := v.Image.RGBAAt(4, 4)
			for j, pair := range [][2]uint8{{c.R, topLeft.R}, {c.G, topLeft.G}, {c.B, topLeft.B}} {
				if d := int(pair[0]) - int(pair[1]); d < -8 || d > 8 || c.A != 255 {
					t.Fatalf("top-left pixel %v, want %v (channel %d)", c, topLeft, j)
				}
			}
		})
	}
	if _, err := LoadView(Config{}, filepath.Join(t.TempDir(), "missing.png")); !errors.Is(err, ErrBadImage) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadView(missing): %v, want ErrBadImage and ErrNotExist", err)
	}
}

// TestSkipLogLogsAFew: the first MaxLogged skipped files are logged, then
// one record says the others are not; the report keeps every one.
func TestSkipLogLogsAFew(t *testing.T) {
	var b strings.Builder
	l := &SkipLog{Logger: slog.New(slog.NewTextHandler(&b, nil))}
	for i := range 3 * MaxLogged {
		l.Add(fmt.Sprintf("f%d.jpg", i), "empty file")
	}
	l.Add("f0.jpg", "empty file") // again: nothing
	if got := strings.Count(b.String(), "\n"); got != MaxLogged+1 || !strings.Contains(b.String(), "the others are not logged one by one") {
		t.Errorf("%d log records:\n%s", got, b.String())
	}
	if l.Len() != 3*MaxLogged {
		t.Errorf("the report holds %d files, want %d", l.Len(), 3*MaxLogged)
	}
}

func TestFindDuplicates(t *testing.T) {
	d := func(b byte) [32]byte { return [32]byte{b} }
	samples := []Sample{{Path: "cats/a", Label: 0}, {Path: "cats/b", Label: 0}, {Path: "dogs/a", Label: 1}, {Path: "cats/c", Label: 0}, {Path: "cats/v", Label: 0}}
	digests := [][32]byte{d(1), d(1), d(1), d(2), d(2)}
	ds := FindDuplicates(samples, digests, func(i int) bool { return samples[i].Path == "cats/v" })
	cross, relabelled := CountDuplicates(ds)
	if n := len(ds); n != 3 || relabelled != 1 || cross != 1 {
		t.Errorf("FindDuplicates: %d, %d, %d; want 3 copies, 1 in another class, 1 across the split", n, relabelled, cross)
	}
}

// A class whose usable images are all validation images cannot train:
// Check, the dry run of training, says so as training does.
func TestCheckClassWithoutTrainingImage(t *testing.T) {
	// A file name that the split puts in validation, for seed 1 at 0.5.
	solo := ""
	for i := 0; solo == ""; i++ {
		if name := fmt.Sprintf("solo/%d.png", i); inValidation(1, name, 0.5) {
			solo = name
		}
	}
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		vals  map[string][]byte // the validation folder's, if any
	}{
		{"its one image in the validation split", map[string][]byte{
			"cats/a.png": tinyPNG(t, 1), "cats/b.png": tinyPNG(t, 2), "cats/c.png": tinyPNG(t, 3), "cats/d.png": tinyPNG(t, 4),
			solo: tinyPNG(t, 5),
		}, nil},
		{"its training images unusable", map[string][]byte{
			"cats/a.png": tinyPNG(t, 1), "solo/a.jpg": []byte("not an image"),
		}, map[string][]byte{"cats/v.png": tinyPNG(t, 6), "solo/v.png": tinyPNG(t, 7)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Root: filepath.Join(dir, "train"), Height: 8, Width: 8, Seed: 1, ValidationSplit: 0.5}
			writeFiles(t, cfg.Root, tc.files)
			if tc.vals != nil {
				cfg.ValidationRoot, cfg.ValidationSplit = filepath.Join(dir, "validation"), 0
				writeFiles(t, cfg.ValidationRoot, tc.vals)
			}
			sum, err := Check(context.Background(), cfg, &SkipLog{Logger: slog.New(slog.DiscardHandler)}, nil)
			if !errors.Is(err, ErrNoUsableImages) || !strings.Contains(err.Error(), `"solo"`) || !strings.Contains(err.Error(), "training") {
				t.Errorf("Check error = %v, want ErrNoUsableImages naming solo and training", err)
			}
			if sum == nil || sum.Train[1] != 0 || sum.Validation[1] != 1 {
				t.Errorf("Check summary = %+v, want solo with 0 training and 1 validation image", sum)
			}
		})
	}
}
