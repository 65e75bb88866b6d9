package pipeline

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gotransfer/configs"
	"gotransfer/dataset"
)

func TestThumbnail(t *testing.T) {
	gray := func(w, h int, v ...uint8) *image.RGBA {
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for i, y := range v {
			m.SetRGBA(i%w, i/w, color.RGBA{y, y, y, 255})
		}
		return m
	}
	for _, tc := range []struct {
		name string
		src  *image.RGBA
		side int
		want *image.RGBA
	}{
		{"2x2 blocks averaged", gray(4, 2, 0, 10, 100, 101, 20, 30, 200, 202), 2, gray(2, 1, 15, 151)},
		{"same size", gray(3, 1, 1, 2, 3), 3, gray(3, 1, 1, 2, 3)},
		{"grown, pixels repeated", gray(2, 1, 7, 9), 4, gray(4, 2, 7, 7, 9, 9, 7, 7, 9, 9)},
		{"aspect kept, rounded", gray(4, 1, 1, 2, 3, 5), 2, gray(2, 1, 2, 4)},
		{"not at the origin", gray(2, 2, 4, 4, 8, 8).SubImage(image.Rect(0, 1, 2, 2)).(*image.RGBA), 1, gray(1, 1, 8)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := thumbnail(tc.src, tc.side)
			if got.Rect != tc.want.Rect || !slices.Equal(got.Pix, tc.want.Pix) {
				t.Errorf("thumbnail = %v %v, want %v %v", got.Rect, got.Pix, tc.want.Rect, tc.want.Pix)
			}
		})
	}
}

// TestWriteMistakes: the pictures go in reading order into a grid of up to
// 4 x 4, each centred in its cell; an image gone since is a grey square;
// no mistakes, no file.
func TestWriteMistakes(t *testing.T) {
	dir := t.TempDir()
	solid := func(rel string, w, h int, c color.RGBA) {
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := 0; i < len(m.Pix); i += 4 {
			m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, 255
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := png.Encode(f, m); err != nil {
			t.Fatal(err)
		}
	}
	red, green := color.RGBA{R: 255, A: 255}, color.RGBA{G: 255, A: 255}
	solid("cats/red.png", 64, 32, red)
	solid("dogs/green.png", 30, 90, green)
	data := dataset.Config{Root: dir}
	classes := []string{"cats", "dogs"}
	ms := []Mistake{{Path: "cats/red.png", True: 0, Pred: 1, Probability: 0.9}, {Path: "dogs/green.png", True: 1, Pred: 0, Probability: 0.8},
		{Path: "dogs/gone.png", True: 1, Pred: 0, Probability: 0.7}}
	out := t.TempDir()
	read := func() image.Image { return readPNG(t, filepath.Join(out, MistakesFile)) }
	if drawn, err := writeMistakes(out, data, classes, ms, "test"); err != nil || !drawn {
		t.Fatalf("writeMistakes: %v, %v", drawn, err)
	}
	m := read()
	cellW, cellH := mistakeSide+2*mistakePad, mistakeSide+mistakeCaption+2*mistakePad
	if want := image.Rect(0, 0, 3*cellW, mistakeTitle+cellH); m.Bounds() != want {
		t.Fatalf("mistakes.png is %v, want %v", m.Bounds(), want)
	}
	centre := func(i int) image.Point {
		return image.Pt((i%mistakeCols)*cellW+mistakePad+mistakeSide/2, mistakeTitle+(i/mistakeCols)*cellH+mistakePad+mistakeSide/2)
	}
	for i, want := range []color.Color{red, green, color.Gray{Y: 200}} {
		r, g, b, _ := m.At(centre(i).X, centre(i).Y+20).RGBA() // below the grey square's text
		wr, wg, wb, _ := want.RGBA()
		if r>>8 != wr>>8 || g>>8 != wg>>8 || b>>8 != wb>>8 {
			t.Errorf("picture %d: centre %v, want %v", i, []uint32{r >> 8, g >> 8, b >> 8}, []uint32{wr >> 8, wg >> 8, wb >> 8})
		}
	}
	// The red picture is 224 x 112, centred: white above it.
	if r, g, b, _ := m.At(centre(0).X, centre(0).Y-60).RGBA(); r>>8 != 255 || g>>8 != 255 || b>>8 != 255 {
		t.Errorf("above the red picture: %v, want white", []uint32{r >> 8, g >> 8, b >> 8})
	}

	var many []Mistake
	for i := range 20 {
		many = append(many, Mistake{Path: fmt.Sprintf("cats/%d.png", i), Pred: 1, Probability: 0.5})
	}
	if _, err := writeMistakes(out, data, classes, many, "test"); err != nil {
		t.Fatal(err)
	}
	if want := image.Rect(0, 0, mistakeCols*cellW, mistakeTitle+mistakeRows*cellH); read().Bounds() != want {
		t.Errorf("20 mistakes: %v, want a 4 x 4 grid %v", read().Bounds(), want)
	}

	if drawn, err := writeMistakes(out, data, classes, nil, "test"); err != nil || drawn {
		t.Errorf("no mistakes: drawn %v, %v", drawn, err)
	}
	if _, err := os.Stat(filepath.Join(out, MistakesFile)); err != nil {
		t.Errorf("no mistakes removed a %s it did not write: %v", MistakesFile, err)
	}
}

// TestTrainAndEvaluateDrawMistakes: validation images labelled the other
// way round are mistakes, which training draws into the run folder and
// Classifier.WriteMistakes into a folder of plots, from the images
// evaluated.
func TestTrainAndEvaluateDrawMistakes(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := dataset.Synthesize(data, 6, 1); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{"cats": "dogs", "dogs": "cats"} {
		if err := os.CopyFS(filepath.Join(dir, "swapped", to), os.DirFS(filepath.Join(data, from))); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := configs.Parse([]byte("data: {dir: data, validation_dir: swapped, image_size: [48, 48]}\nbackbone: {random_width: 4}\n"+
		"head: {layers: [8]}\ntrain: {epochs: 3, batch: 4}\nrun: {dir: run}\n"), filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Train(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wrong := 0
	for i, row := range res.Confusion.Counts {
		for j, n := range row {
			if i != j {
				wrong += n
			}
		}
	}
	if wrong == 0 {
		t.Fatalf("no validation mistakes with the labels swapped: %v", res.Confusion.Counts)
	}
	if _, err := os.Stat(filepath.Join(dir, "run", MistakesFile)); err != nil {
		t.Errorf("%d validation mistakes, but: %v", wrong, err)
	}

	c, err := LoadClassifier(filepath.Join(dir, "run"), ClassifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ev, err := c.Evaluate(context.Background(), filepath.Join(dir, "swapped"), 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Mistakes) == 0 { // the best checkpoint's head, not the last one's
		t.Fatalf("no mistakes evaluating the labels swapped: %v", ev.Confusion.Counts)
	}
	plots := t.TempDir()
	if drawn, err := c.WriteMistakes(plots, ev); err != nil || !drawn {
		t.Fatalf("WriteMistakes: %v, %v", drawn, err)
	}
	m := readPNG(t, filepath.Join(plots, MistakesFile))
	// Each cell shows a picture, not the grey square of an unreadable one:
	// the images were found under the folder evaluated.
	cellW, cellH := mistakeSide+2*mistakePad, mistakeSide+mistakeCaption+2*mistakePad
	cols := min(len(ev.Mistakes), mistakeCols)
	for i := range min(len(ev.Mistakes), mistakeCols*mistakeRows) {
		x, y := (i%cols)*cellW+mistakePad+mistakeSide/2, mistakeTitle+(i/cols)*cellH+mistakePad+mistakeSide/2
		if r, g, b, _ := m.At(x, y).RGBA(); r>>8 == 200 && g>>8 == 200 && b>>8 == 200 {
			t.Errorf("mistake %d (%s) is drawn as unreadable", i, ev.Mistakes[i].Path)
		}
	}
}

// readPNG decodes the PNG file at path.
func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}
