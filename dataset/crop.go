package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"image"
	"math"
	"strconv"
)

// RandomCrop is one copy of PyTorch's RandomResizedCrop: a box covering a
// fraction of the image's area drawn uniformly from Scale, with an aspect
// ratio (width/height) drawn log-uniformly from Ratio, at a random place,
// resized to the target size. The draws are a pure function of (Seed, the
// file's sha256, Copy), so a file gets the same crop wherever it lives and
// whenever it is read, and the crop's features can be cached.
type RandomCrop struct {
	Seed int64
	// Copy numbers the crops of one file: each is an independent draw.
	Copy int
	// Scale bounds the crop's area as a fraction of the image's:
	// 0 < Scale[0] <= Scale[1] <= 1.
	Scale [2]float64
	// Ratio bounds the crop's width/height: 0 < Ratio[0] <= Ratio[1].
	Ratio [2]float64
	// Flip mirrors the crop left to right when a coin of the same draw says
	// so (torchvision's RandomHorizontalFlip after the crop).
	Flip bool
}

// String names the crop's parameters; the feature cache keys a copy's
// features by it, so its form must not change.
func (c RandomCrop) String() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return fmt.Sprintf("seed=%d copy=%d scale=[%s,%s] ratio=[%s,%s] flip=%t",
		c.Seed, c.Copy, f(c.Scale[0]), f(c.Scale[1]), f(c.Ratio[0]), f(c.Ratio[1]), c.Flip)
}

func (c RandomCrop) validate() error {
	s, r := c.Scale, c.Ratio
	switch {
	case c.Copy < 0:
		return fmt.Errorf("dataset: random crop copy %d, want >= 0", c.Copy)
	case !(0 < s[0] && s[0] <= s[1] && s[1] <= 1):
		return fmt.Errorf("dataset: random crop scale %v, want 0 < min <= max <= 1", s)
	case !(0 < r[0] && r[0] <= r[1] && r[1] < math.Inf(1)):
		return fmt.Errorf("dataset: random crop ratio %v, want 0 < min <= max", r)
	}
	return nil
}

// box returns the crop of the region r of the file with this sha256, and
// whether to mirror it. It is torchvision's RandomResizedCrop.get_params
// with r as the image: up to 10 draws of an area and an aspect ratio, the
// first whose box fits placed at random; else the central box of r, its
// aspect ratio clamped to Ratio. Rounding is Python's round (half to even).
func (c RandomCrop) box(r image.Rectangle, digest [32]byte) (image.Rectangle, bool) {
	var seed [16 + 32]byte
	binary.LittleEndian.PutUint64(seed[:8], uint64(c.Seed))
	binary.LittleEndian.PutUint64(seed[8:16], uint64(c.Copy))
	copy(seed[16:], digest[:])
	sum := sha256.Sum256(seed[:])
	g := splitmix{state: binary.LittleEndian.Uint64(sum[:8])}

	width, height := r.Dx(), r.Dy()
	area := float64(width) * float64(height)
	logLo, logHi := math.Log(c.Ratio[0]), math.Log(c.Ratio[1])
	for range 10 {
		target := area * g.uniform(c.Scale[0], c.Scale[1])
		aspect := math.Exp(g.uniform(logLo, logHi))
		w := int(math.RoundToEven(math.Sqrt(target * aspect)))
		h := int(math.RoundToEven(math.Sqrt(target / aspect)))
		if 0 < w && w <= width && 0 < h && h <= height {
			y := int(g.below(uint64(height - h + 1)))
			x := int(g.below(uint64(width - w + 1)))
			return image.Rect(r.Min.X+x, r.Min.Y+y, r.Min.X+x+w, r.Min.Y+y+h), c.Flip && g.next()>>63 == 1
		}
	}
	w, h := width, height
	switch in := float64(width) / float64(height); {
	case in < c.Ratio[0]:
		h = max(int(math.RoundToEven(float64(w)/c.Ratio[0])), 1)
	case in > c.Ratio[1]:
		w = max(int(math.RoundToEven(float64(h)*c.Ratio[1])), 1)
	}
	x, y := r.Min.X+(width-w)/2, r.Min.Y+(height-h)/2
	return image.Rect(x, y, x+w, y+h), c.Flip && g.next()>>63 == 1
}
