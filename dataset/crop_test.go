package dataset

import (
	"crypto/sha256"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// torchDefaults is a RandomCrop with torchvision's scale and ratio.
func torchDefaults(copy int) RandomCrop {
	return RandomCrop{Seed: 7, Copy: copy, Scale: [2]float64{0.08, 1}, Ratio: [2]float64{3.0 / 4, 4.0 / 3}}
}

func testDigest(i int) [32]byte { return sha256.Sum256([]byte{byte(i), byte(i >> 8), 'x'}) }

// fallbackBox is torchvision's fallback, written out: the central box of r,
// its aspect ratio clamped to c.Ratio.
func fallbackBox(c RandomCrop, r image.Rectangle) image.Rectangle {
	w, h := r.Dx(), r.Dy()
	if in := float64(w) / float64(h); in < c.Ratio[0] {
		h = max(int(math.RoundToEven(float64(w)/c.Ratio[0])), 1)
	} else if in > c.Ratio[1] {
		w = max(int(math.RoundToEven(float64(h)*c.Ratio[1])), 1)
	}
	x, y := r.Min.X+(r.Dx()-w)/2, r.Min.Y+(r.Dy()-h)/2
	return image.Rect(x, y, x+w, y+h)
}

// TestRandomCropBox checks the boxes against torchvision's get_params: in
// the region, and either the fallback or of a size that some area in Scale
// and aspect ratio in Ratio round to.
func TestRandomCropBox(t *testing.T) {
	for _, tc := range []struct {
		name     string
		c        RandomCrop
		r        image.Rectangle
		fallback image.Rectangle // the only possible box, where set
	}{
		{"kaggle photo", torchDefaults(0), image.Rect(0, 0, 500, 375), image.Rectangle{}},
		{"offset region", torchDefaults(1), image.Rect(62, 0, 437, 375), image.Rectangle{}},
		{"narrow scale and ratio", RandomCrop{Scale: [2]float64{0.5, 0.6}, Ratio: [2]float64{1.5, 2}}, image.Rect(3, 4, 203, 104), image.Rectangle{}},
		{"fixed scale and ratio", RandomCrop{Scale: [2]float64{0.25, 0.25}, Ratio: [2]float64{1, 1}}, image.Rect(0, 0, 300, 200), image.Rectangle{}},
		{"too wide: fallback", torchDefaults(0), image.Rect(0, 0, 1000, 3), image.Rect(498, 0, 502, 3)},
		{"too tall: fallback", torchDefaults(0), image.Rect(0, 0, 3, 1000), image.Rect(0, 498, 3, 502)},
		{"one pixel", torchDefaults(0), image.Rect(5, 5, 6, 6), image.Rect(5, 5, 6, 6)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 2000
			area := float64(tc.r.Dx() * tc.r.Dy())
			fallbacks := 0
			for i := range n {
				b, _ := tc.c.box(tc.r, testDigest(i))
				if b.Empty() || !b.In(tc.r) {
					t.Fatalf("digest %d: box %v outside the region %v", i, b, tc.r)
				}
				if tc.fallback != (image.Rectangle{}) {
					if b != tc.fallback {
						t.Fatalf("digest %d: box %v, want the fallback %v", i, b, tc.fallback)
					}
					continue
				}
				if b == fallbackBox(tc.c, tc.r) {
					fallbacks++
					continue
				}
				// round(sqrt(area·ratio)) = w and round(sqrt(area/ratio)) = h
				// bound the area and the ratio drawn.
				w, h := float64(b.Dx()), float64(b.Dy())
				aLo, aHi := (w-0.5)*(h-0.5), (w+0.5)*(h+0.5)
				rLo, rHi := (w-0.5)/(h+0.5), (w+0.5)/max(h-0.5, 1e-9)
				const eps = 1e-9
				if aHi < tc.c.Scale[0]*area-eps || aLo > tc.c.Scale[1]*area+eps || rHi < tc.c.Ratio[0]-eps || rLo > tc.c.Ratio[1]+eps {
					t.Fatalf("digest %d: box %v: area %v..%v of %v, ratio %v..%v: outside scale %v, ratio %v", i, b, aLo, aHi, area, rLo, rHi, tc.c.Scale, tc.c.Ratio)
				}
			}
			// With room for every draw, ten misses in a row are rare.
			if fallbacks > n/100 {
				t.Errorf("%d of %d boxes are the fallback", fallbacks, n)
			}
		})
	}
}

// TestRandomCropDraws: a crop is a pure function of (seed, digest, copy);
// other copies, seeds and files get other crops; Flip mirrors about half of
// them and leaves the boxes alone.
func TestRandomCropDraws(t *testing.T) {
	r := image.Rect(0, 0, 500, 375)
	flipped := 0
	const n = 1000
	for i := range n {
		c := torchDefaults(0)
		d := testDigest(i)
		b, f := c.box(r, d)
		if b2, f2 := torchDefaults(0).box(r, d); b2 != b || f2 != f || f {
			t.Fatalf("digest %d: %v %v, then %v %v (Flip off)", i, b, f, b2, f2)
		}
		c.Flip = true
		bf, f := c.box(r, d)
		if bf != b {
			t.Fatalf("digest %d: Flip moved the box from %v to %v", i, b, bf)
		}
		if f {
			flipped++
		}
		if i >= 100 {
			continue
		}
		other := []RandomCrop{torchDefaults(1), torchDefaults(2), {Seed: 8, Scale: c.Scale, Ratio: c.Ratio}}
		for _, o := range other {
			if ob, _ := o.box(r, d); ob == b {
				t.Errorf("digest %d: %v gives the box of %v: %v", i, o, torchDefaults(0), b)
			}
		}
		if ob, _ := c.box(r, testDigest(i+n)); ob == b {
			t.Errorf("digests %d and %d give the same box %v", i, i+n, b)
		}
	}
	if flipped < 400 || flipped > 600 { // 500 ± 6.3 standard deviations
		t.Errorf("%d of %d crops mirrored, want about half", flipped, n)
	}
	if a := testing.AllocsPerRun(100, func() { torchDefaults(0).box(r, testDigest(1)) }); a != 0 {
		t.Errorf("box allocates %v times", a)
	}
}

// TestRandomCropString pins the names the feature cache keys crops by.
func TestRandomCropString(t *testing.T) {
	c := RandomCrop{Seed: 1337, Copy: 2, Scale: [2]float64{0.08, 1}, Ratio: [2]float64{3.0 / 4, 4.0 / 3}, Flip: true}
	if got, want := c.String(), "seed=1337 copy=2 scale=[0.08,1] ratio=[0.75,1.3333333333333333] flip=true"; got != want {
		t.Errorf("String() = %q, want %q (a change orphans the cached crops)", got, want)
	}
}

// TestRandomCropPixels: a loaded crop is, bit for bit, the box cut by hand
// from the decoded and oriented image, then resized by the resizer (and
// mirrored where the coin says), whatever the file's name.
func TestRandomCropPixels(t *testing.T) {
	dir := t.TempDir()
	jpg, err := os.ReadFile(filepath.Join("testdata", "jpeg", "420.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	rotated := filepath.Join(dir, "rotated.jpg") // 97x65, shown 65x97
	writeFiles(t, dir, map[string][]byte{"rotated.jpg": withEXIF(jpg, 6, "II")})
	const height, width = 40, 56
	cut, mirrored := 0, 0
	for _, path := range []string{filepath.Join("testdata", "chelsea.png"), rotated} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256(data)
		d := decoder{maxPixels: DefaultMaxPixels, exif: true}
		img, err := d.decode(data)
		if err != nil {
			t.Fatal(err)
		}
		pp, _ := newPreprocessor(PreprocessCaffe)
		for _, aspect := range []bool{false, true} {
			for _, flip := range []bool{false, true} {
				for k := range 4 {
					c := torchDefaults(k)
					c.Flip = flip
					cfg := Config{Height: height, Width: width, CropToAspectRatio: aspect, RandomCrop: &c}
					got, _, err := Load(cfg, path)
					if err != nil {
						t.Fatal(err)
					}
					region := image.Rect(0, 0, img.w, img.h)
					if aspect {
						region = cropBox(img.w, img.h, width, height)
					}
					b, mirror := c.box(region, digest)
					if b != region {
						cut++
					}
					if mirror {
						mirrored++
					}
					sub := rgb8{pix: make([]byte, 0, b.Dx()*b.Dy()*3), w: b.Dx(), h: b.Dy()}
					for y := b.Min.Y; y < b.Max.Y; y++ {
						sub.pix = append(sub.pix, img.pix[3*(y*img.w+b.Min.X):3*(y*img.w+b.Max.X)]...)
					}
					want := make([]float32, height*width*3)
					var z resizer
					z.resize(sub, image.Rect(0, 0, sub.w, sub.h), width, height, &pp, want)
					for y := range height {
						for x := range width {
							wx := x
							if mirror {
								wx = width - 1 - x
							}
							for ch := range 3 {
								if g, w := got[(y*width+x)*3+ch], want[(y*width+wx)*3+ch]; g != w {
									t.Fatalf("%s (aspect %v, %v): pixel (%d, %d, %d) = %v, cut by hand %v", path, aspect, c, y, x, ch, g, w)
								}
							}
						}
					}
					// The same bytes elsewhere, under another name: the same crop.
					moved := filepath.Join(dir, "elsewhere", strings.ReplaceAll(filepath.Base(path), ".", "-moved."))
					writeFiles(t, filepath.Dir(moved), map[string][]byte{filepath.Base(moved): data})
					again, _, err := Load(cfg, moved)
					if err != nil {
						t.Fatal(err)
					}
					for i := range got {
						if again[i] != got[i] {
							t.Fatalf("%s moved to %s: value %d is %v, was %v", path, moved, i, again[i], got[i])
						}
					}
				}
			}
		}
	}
	if cut == 0 || mirrored == 0 {
		t.Errorf("%d crops smaller than their region, %d mirrored: the test misses a case", cut, mirrored)
	}
}

func TestRandomCropConfig(t *testing.T) {
	ok := torchDefaults(0)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{RandomCrop: &RandomCrop{Copy: -1, Scale: ok.Scale, Ratio: ok.Ratio}}, "dataset: random crop copy -1, want >= 0"},
		{Config{RandomCrop: &RandomCrop{Scale: [2]float64{0, 1}, Ratio: ok.Ratio}}, "dataset: random crop scale [0 1], want 0 < min <= max <= 1"},
		{Config{RandomCrop: &RandomCrop{Scale: [2]float64{0.5, 0.4}, Ratio: ok.Ratio}}, "dataset: random crop scale [0.5 0.4]"},
		{Config{RandomCrop: &RandomCrop{Scale: ok.Scale, Ratio: [2]float64{2, 1}}}, "dataset: random crop ratio [2 1], want 0 < min <= max"},
		{Config{RandomCrop: &ok, HorizontalFlip: true}, "dataset: HorizontalFlip with a random crop (seed=7 copy=0"},
	} {
		if _, _, err := Load(tc.cfg, filepath.Join("testdata", "chelsea.png")); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", *tc.cfg.RandomCrop, err, tc.want)
		}
	}
}
