package dataset

import (
	"image"
	"image/color"
	"math"
	"path/filepath"
	"testing"
)

// TestResizeGolden compares Load with PyTorch's bilinear resize (half-pixel
// centres, no antialiasing) of lossless PNGs, made by
// /work/shared/golden/resize_ref.py: downscales (chelsea 451x300, coffee
// 600x400) and an upscale (small_gradient 37x53), raw and 'caffe'.
func TestResizeGolden(t *testing.T) {
	for _, name := range []string{"chelsea", "coffee", "small_gradient"} {
		for _, mode := range []struct{ preprocess, suffix string }{{PreprocessNone, ""}, {PreprocessCaffe, "_caffe"}} {
			t.Run(name+"/"+mode.preprocess, func(t *testing.T) {
				want, shape := readNpy(t, filepath.Join("testdata", name+"_224x224"+mode.suffix+".npy"))
				if len(shape) != 3 || shape[2] != 3 {
					t.Fatalf("golden shape %v", shape)
				}
				cfg := Config{Height: shape[0], Width: shape[1], Preprocess: mode.preprocess}
				got, _, err := Load(cfg, filepath.Join("testdata", name+".png"))
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%d values, want %d", len(got), len(want))
				}
				worst, at := 0.0, 0
				for i := range got {
					if d := math.Abs(float64(got[i] - want[i])); d > worst {
						worst, at = d, i
					}
				}
				t.Logf("max diff %g", worst)
				if worst > 1e-3 {
					t.Errorf("max |diff| = %g at %d (got %g, want %g), want <= 1e-3", worst, at, got[at], want[at])
				}
			})
		}
	}
}

func TestPreprocessModes(t *testing.T) {
	// A solid image resizes to itself, so each mode's formula is seen exactly.
	c := color.NRGBA{R: 200, G: 100, B: 30, A: 255}
	src := rgb8{pix: toRGB(solid(5, 3, c), nil), w: 5, h: 3}
	r, g, b := 200.0, 100.0, 30.0
	tests := []struct {
		mode string
		want [3]float64
	}{
		{PreprocessNone, [3]float64{r, g, b}},
		{PreprocessCaffe, [3]float64{b - 103.939, g - 116.779, r - 123.68}},
		{PreprocessTorch, [3]float64{(r/255 - 0.485) / 0.229, (g/255 - 0.456) / 0.224, (b/255 - 0.406) / 0.225}},
	}
	for _, tc := range tests {
		p, err := newPreprocessor(tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float32, 4*2*3)
		var z resizer
		z.resize(src, image.Rect(0, 0, 5, 3), 4, 2, &p, out)
		for i, v := range out {
			if math.Abs(float64(v)-tc.want[i%3]) > 1e-5 {
				t.Errorf("%s: value %d = %g, want %g", tc.mode, i, v, tc.want[i%3])
				break
			}
		}
	}
	if _, err := newPreprocessor("tf"); err == nil {
		t.Error(`newPreprocessor("tf") did not fail`)
	}
}

func TestCropBox(t *testing.T) {
	// Expected boxes worked by hand from Keras' smart_resize.
	tests := []struct {
		w, h, tw, th int
		want         image.Rectangle
	}{
		{500, 375, 224, 224, image.Rect(62, 0, 437, 375)},
		{375, 500, 224, 224, image.Rect(0, 62, 375, 437)},
		{300, 300, 224, 224, image.Rect(0, 0, 300, 300)},
		{640, 480, 160, 90, image.Rect(0, 60, 640, 420)},
		{101, 50, 50, 50, image.Rect(25, 0, 75, 50)},
		{1, 1000, 224, 224, image.Rect(0, 499, 1, 500)},
	}
	for _, tc := range tests {
		if got := cropBox(tc.w, tc.h, tc.tw, tc.th); got != tc.want {
			t.Errorf("cropBox(%d, %d, %d, %d) = %v, want %v", tc.w, tc.h, tc.tw, tc.th, got, tc.want)
		}
	}
}

// TestCropToAspectRatio checks that the crop happens before the resize: a
// wide image with red side bands and a blue square centre becomes all blue.
func TestCropToAspectRatio(t *testing.T) {
	m := solid(90, 30, color.NRGBA{255, 0, 0, 255})
	for y := range 30 {
		for x := 30; x < 60; x++ {
			m.SetNRGBA(x, y, color.NRGBA{0, 0, 255, 255})
		}
	}
	p := filepath.Join(t.TempDir(), "wide.png")
	writeFiles(t, filepath.Dir(p), map[string][]byte{"wide.png": encodePNG(t, m)})
	for _, crop := range []bool{false, true} {
		out, _, err := Load(Config{Width: 8, Height: 8, Preprocess: PreprocessNone, CropToAspectRatio: crop}, p)
		if err != nil {
			t.Fatal(err)
		}
		corner := out[0] // red of the top-left pixel
		if want := map[bool]float32{false: 255, true: 0}[crop]; corner != want {
			t.Errorf("crop %v: top-left red = %g, want %g", crop, corner, want)
		}
	}
}
