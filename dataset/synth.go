package dataset

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// SynthClasses are the class folders written by Synthesize, in label order.
var SynthClasses = []string{"cats", "dogs"}

// Synthesize writes perClass images into root/cats and root/dogs (creating
// them) so that tests, smoke runs and demos need no download. The two classes
// are visually separable whatever the colours, by texture and shape: "cats"
// images show soft oval blobs that fade into a smooth gradient background,
// with no edge anywhere; "dogs" images show large rectangles of coarse,
// high-contrast checks on the same kind of background. Colours, positions,
// sizes, image sizes (96 to 512 pixels a side, any aspect ratio) and formats
// (about half JPEG, half PNG) are random. Shapes and checks are drawn in
// coordinates relative to the image's width and height, so that they keep
// their look after resizing to any square network input (the checks stay a
// few pixels wide even at 64x64): texture, not colour, is the strongest cue,
// which even the features of a random, untrained backbone pick up. Image i of
// a class depends only on (seed, class, i), so the output is byte-identical
// for a given seed (and Go release), and a larger perClass only adds files.
func Synthesize(root string, perClass int, seed int64) error {
	if perClass < 0 {
		return fmt.Errorf("dataset: synthesize: negative count %d", perClass)
	}
	for _, c := range SynthClasses {
		if err := os.MkdirAll(filepath.Join(root, c), 0o755); err != nil {
			return fmt.Errorf("dataset: synthesize: %w", err)
		}
	}
	type item struct{ class, i int }
	items := make(chan item)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(runtime.GOMAXPROCS(0), 4) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range items {
				name, data, err := synthImage(it.class, it.i, seed)
				if err == nil {
					err = os.WriteFile(filepath.Join(root, SynthClasses[it.class], name), data, 0o644)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("dataset: synthesize %s image %d: %w", SynthClasses[it.class], it.i, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range perClass {
		for c := range SynthClasses {
			items <- item{c, i}
		}
	}
	close(items)
	wg.Wait()
	return firstErr
}

// synthImage draws image i of class (0 = blobs, 1 = checks) and returns its
// file name and encoded bytes.
func synthImage(class, i int, seed int64) (string, []byte, error) {
	r := splitmix{state: uint64(seed)*0x9e3779b97f4a7c15 ^ uint64(class)<<40 ^ uint64(i)}
	r.next()
	unit := func() float64 { return float64(r.next()>>11) / (1 << 53) }
	between := func(lo, hi int) int { return lo + int(r.below(uint64(hi-lo+1))) }
	colour := func() [3]float64 { return [3]float64{unit() * 255, unit() * 255, unit() * 255} }

	w, h := between(96, 512), between(96, 512)
	fw, fh := float64(w), float64(h)
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	// Background: a linear gradient between two colours, in a random direction.
	c0, c1 := colour(), colour()
	angle := unit() * 2 * math.Pi
	dx, dy := math.Cos(angle), math.Sin(angle)
	norm := math.Abs(dx)*fw + math.Abs(dy)*fh
	for y := range h {
		for x := range w {
			t := ((float64(x)-fw/2)*dx+(float64(y)-fh/2)*dy)/norm + 0.5
			set(m, x, y, mix(c0, c1, t))
		}
	}
	if class == 0 {
		// One to three soft blobs: the colour fades from the centre to the
		// background along a raised cosine, so no edge shows anywhere.
		for range between(1, 3) {
			cx, cy := (0.2+0.6*unit())*fw, (0.2+0.6*unit())*fh
			rx, ry := fw*(0.2+0.3*unit()), fh*(0.2+0.3*unit())
			fg := colour()
			for y := max(0, int(cy-ry)); y < min(h, int(cy+ry)+1); y++ {
				for x := max(0, int(cx-rx)); x < min(w, int(cx+rx)+1); x++ {
					u, v := (float64(x)-cx)/rx, (float64(y)-cy)/ry
					if d := math.Sqrt(u*u + v*v); d < 1 {
						blend(m, x, y, fg, 0.5+0.5*math.Cos(math.Pi*d))
					}
				}
			}
		}
	} else {
		// One or two rectangles spanning 60% to 90% of the image's width
		// and height (less where the border clips them), filled with a
		// checkerboard of two strongly different colours turned by a random
		// angle; a check is 5% to 7% of the image's width and height.
		for range between(1, 2) {
			cx, cy := (0.3+0.4*unit())*fw, (0.3+0.4*unit())*fh
			rx, ry := fw*(0.3+0.15*unit()), fh*(0.3+0.15*unit())
			fg, fg2 := colour(), colour()
			// The checks must show. A colour near mid-grey has none 400
			// away (the farthest is 383 to 400), so after many tries draw
			// another first colour; until then the draws are those of
			// earlier releases, which keeps their files.
			for tries := 0; dist(fg, fg2) < 400; tries++ {
				if tries == 1000 {
					fg, tries = colour(), 0
				}
				fg2 = colour()
			}
			period := 0.1 + 0.04*unit()
			sa := unit() * math.Pi
			sx, sy := math.Cos(sa), math.Sin(sa)
			for y := max(0, int(cy-ry)); y < min(h, int(cy+ry)+1); y++ {
				for x := max(0, int(cx-rx)); x < min(w, int(cx+rx)+1); x++ {
					u, v := float64(x)/fw, float64(y)/fh
					a := math.Floor((u*sx + v*sy) / (period / 2))
					b := math.Floor((v*sx - u*sy) / (period / 2))
					if int64(a+b)&1 == 0 {
						set(m, x, y, fg)
					} else {
						set(m, x, y, fg2)
					}
				}
			}
		}
	}
	var buf bytes.Buffer
	base := fmt.Sprintf("%s_%05d", SynthClasses[class][:3], i)
	if r.next()&1 == 0 {
		err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: between(75, 95)})
		return base + ".jpg", buf.Bytes(), err
	}
	err := png.Encode(&buf, m)
	return base + ".png", buf.Bytes(), err
}

func dist(a, b [3]float64) float64 {
	return math.Abs(a[0]-b[0]) + math.Abs(a[1]-b[1]) + math.Abs(a[2]-b[2])
}

func mix(a, b [3]float64, t float64) [3]float64 {
	t = min(max(t, 0), 1)
	return [3]float64{a[0] + (b[0]-a[0])*t, a[1] + (b[1]-a[1])*t, a[2] + (b[2]-a[2])*t}
}

// blend sets pixel (x, y) to mix(its colour, c, a).
func blend(m *image.RGBA, x, y int, c [3]float64, a float64) {
	p := m.Pix[m.PixOffset(x, y):]
	set(m, x, y, mix([3]float64{float64(p[0]), float64(p[1]), float64(p[2])}, c, a))
}

func set(m *image.RGBA, x, y int, c [3]float64) {
	o := m.PixOffset(x, y)
	m.Pix[o], m.Pix[o+1], m.Pix[o+2], m.Pix[o+3] = uint8(c[0]+0.5), uint8(c[1]+0.5), uint8(c[2]+0.5), 255
}
