package dataset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/draw"
	"golang.org/x/image/tiff"
)

// decodeFile runs the decoder on data; the image is copied out of its buffers.
func decodeBytes(t *testing.T, data []byte, exif bool) (rgb8, error) {
	t.Helper()
	d := decoder{maxPixels: DefaultMaxPixels, exif: exif}
	m, err := d.decode(data)
	m.pix = bytes.Clone(m.pix)
	return m, err
}

// checkPixels decodes data and requires the pixels want, row by row.
func checkPixels(t *testing.T, data []byte, want [][3]uint8) {
	t.Helper()
	m, err := decodeBytes(t, data, true)
	if err != nil {
		t.Fatal(err)
	}
	if m.w*m.h != len(want) {
		t.Fatalf("%dx%d image, want %d pixels", m.w, m.h, len(want))
	}
	for i, w := range want {
		if got := [3]uint8(m.pix[3*i : 3*i+3]); got != w {
			t.Errorf("pixel %d = %v, want %v", i, got, w)
		}
	}
}

// TestColourModels decodes files of each colour model and checks every pixel
// against the colour written, alpha dropped and colour kept.
func TestColourModels(t *testing.T) {
	type px = [3]uint8
	gray := image.NewGray(image.Rect(0, 0, 3, 1))
	gray.Pix = []uint8{0, 77, 255}

	pal := image.NewPaletted(image.Rect(0, 0, 3, 1), color.Palette{
		color.NRGBA{200, 10, 20, 0},    // fully transparent: colour kept
		color.NRGBA{30, 40, 250, 128},  // half transparent
		color.NRGBA{90, 180, 45, 255}}) // opaque
	pal.Pix = []uint8{2, 0, 1}

	n16 := image.NewNRGBA64(image.Rect(0, 0, 2, 1))
	n16.SetNRGBA64(0, 0, color.NRGBA64{0xABCD, 0x1234, 0xFF00, 0x0000})
	n16.SetNRGBA64(1, 0, color.NRGBA64{0x00FF, 0x8080, 0x7F7F, 0x8000})

	r16 := image.NewRGBA64(image.Rect(0, 0, 2, 1))
	r16.SetRGBA64(0, 0, color.RGBA64{0xABCD, 0x1234, 0xFF00, 0xFFFF})
	r16.SetRGBA64(1, 0, color.RGBA64{0x0101, 0x0202, 0xFEFE, 0xFFFF})

	g16 := image.NewGray16(image.Rect(0, 0, 2, 1))
	g16.SetGray16(0, 0, color.Gray16{0x12FF})
	g16.SetGray16(1, 0, color.Gray16{0xFE01})

	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	nrgba.SetNRGBA(0, 0, color.NRGBA{10, 200, 30, 0})
	nrgba.SetNRGBA(1, 0, color.NRGBA{250, 5, 99, 7})

	gifImg := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{1, 2, 3, 255}, color.RGBA{250, 128, 0, 255}})
	gifImg.Pix = []uint8{1, 0}
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, gifImg, nil); err != nil {
		t.Fatal(err)
	}
	var bmpBuf bytes.Buffer
	if err := bmp.Encode(&bmpBuf, solid(2, 2, color.NRGBA{12, 34, 56, 255})); err != nil {
		t.Fatal(err)
	}

	var tiffBuf, tiff16Buf bytes.Buffer
	if err := tiff.Encode(&tiffBuf, solid(2, 1, color.NRGBA{12, 34, 56, 255}), &tiff.Options{Compression: tiff.Deflate}); err != nil {
		t.Fatal(err)
	}
	if err := tiff.Encode(&tiff16Buf, r16, nil); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		data []byte
		want []px
	}{
		{"tiff", tiffBuf.Bytes(), []px{{12, 34, 56}, {12, 34, 56}}},
		{"16-bit tiff", tiff16Buf.Bytes(), []px{{0xAB, 0x12, 0xFF}, {0x01, 0x02, 0xFE}}},
		{"gray png", encodePNG(t, gray), []px{{0, 0, 0}, {77, 77, 77}, {255, 255, 255}}},
		{"palette png with alpha", encodePNG(t, pal), []px{{90, 180, 45}, {200, 10, 20}, {30, 40, 250}}},
		{"16-bit png with alpha", encodePNG(t, n16), []px{{0xAB, 0x12, 0xFF}, {0x00, 0x80, 0x7F}}},
		{"16-bit png", encodePNG(t, r16), []px{{0xAB, 0x12, 0xFF}, {0x01, 0x02, 0xFE}}},
		{"16-bit gray png", encodePNG(t, g16), []px{{0x12, 0x12, 0x12}, {0xFE, 0xFE, 0xFE}}},
		{"nrgba png, alpha kept out", encodePNG(t, nrgba), []px{{10, 200, 30}, {250, 5, 99}}},
		{"gif", gifBuf.Bytes(), []px{{250, 128, 0}, {1, 2, 3}}},
		{"bmp", bmpBuf.Bytes(), []px{{12, 34, 56}, {12, 34, 56}, {12, 34, 56}, {12, 34, 56}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkPixels(t, tc.data, tc.want)
		})
	}
}

// TestCMYK checks the conversion of CMYK (what Go's JPEG decoder gives for
// CMYK and YCCK files libjpeg-turbo warns about; the standard library
// cannot write one) against PIL's formula: (255-c)(255-k)/255.
func TestCMYK(t *testing.T) {
	m := image.NewCMYK(image.Rect(0, 0, 4, 1))
	in := []color.CMYK{{0, 0, 0, 0}, {255, 0, 0, 0}, {0, 128, 255, 64}, {30, 60, 90, 255}}
	for i, c := range in {
		m.SetCMYK(i, 0, c)
	}
	got := toRGB(m, nil)
	for i, c := range in {
		for j, v := range []uint8{c.C, c.M, c.Y} {
			want := int(255-v) * int(255-c.K) / 255
			if d := int(got[3*i+j]) - want; d < -1 || d > 1 {
				t.Errorf("CMYK %v channel %d = %d, want %d±1", c, j, got[3*i+j], want)
			}
		}
	}
}

// TestFastPathsMatchGeneric checks each specialised conversion against the
// colour of every pixel as image.Image.At reports it, on sub-images (non-zero
// origin) with random contents.
func TestFastPathsMatchGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
	}
	rect := image.Rect(0, 0, 13, 9)
	sub := image.Rect(3, 1, 12, 8)
	var imgs []image.Image
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		y := image.NewYCbCr(rect, ratio)
		fill(y.Y)
		fill(y.Cb)
		fill(y.Cr)
		imgs = append(imgs, y.SubImage(sub))
		a := image.NewNYCbCrA(rect, ratio)
		fill(a.Y)
		fill(a.Cb)
		fill(a.Cr)
		fill(a.A)
		imgs = append(imgs, a.SubImage(sub))
	}
	g, n, n64, c := image.NewGray(rect), image.NewNRGBA(rect), image.NewNRGBA64(rect), image.NewCMYK(rect)
	p := image.NewPaletted(rect, color.Palette{color.NRGBA{1, 2, 3, 0}, color.RGBA{100, 50, 25, 128}, color.Gray{9}})
	fill(g.Pix)
	fill(n.Pix)
	fill(n64.Pix)
	fill(c.Pix)
	for i := range p.Pix {
		p.Pix[i] = uint8(r.IntN(3))
	}
	imgs = append(imgs, g.SubImage(sub), n.SubImage(sub), n64.SubImage(sub), c.SubImage(sub), p.SubImage(sub))
	for _, m := range imgs {
		got := toRGB(m, nil)
		b := m.Bounds()
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				var want [3]uint8
				switch c := m.At(x, y).(type) {
				case color.NYCbCrA:
					want[0], want[1], want[2] = color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				case color.NRGBA:
					want = [3]uint8{c.R, c.G, c.B}
				case color.NRGBA64:
					want = [3]uint8{uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8)}
				default:
					nc := color.NRGBAModel.Convert(c).(color.NRGBA)
					want = [3]uint8{nc.R, nc.G, nc.B}
				}
				if [3]uint8(got[i:i+3]) != want {
					t.Fatalf("%T at (%d,%d): got %v, want %v", m, x, y, got[i:i+3], want)
				}
				i += 3
			}
		}
	}
}

func TestWebP(t *testing.T) {
	for _, name := range []string{"blue-purple-pink.lossy.webp", "gopher-doc.8bpp.lossless.webp"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		m, err := decodeBytes(t, data, true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.w != cfg.Width || m.h != cfg.Height {
			t.Errorf("%s: %dx%d, want %dx%d", name, m.w, m.h, cfg.Width, cfg.Height)
		}
	}
}

// withEXIF inserts an APP1 EXIF segment holding orientation o after the SOI
// marker of a JPEG, in the given TIFF byte order ("II" or "MM").
func withEXIF(jpg []byte, o uint16, order string) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	if order == "MM" {
		bo = binary.BigEndian
	}
	tiff := []byte(order)
	tiff = bo.AppendUint16(tiff, 42)
	tiff = bo.AppendUint32(tiff, 8)      // IFD0 offset
	tiff = bo.AppendUint16(tiff, 2)      // two entries
	tiff = bo.AppendUint16(tiff, 0x010F) // Make, ASCII, 4 bytes inline: not the one
	tiff = bo.AppendUint16(tiff, 2)
	tiff = bo.AppendUint32(tiff, 4)
	tiff = append(tiff, "Go\x00\x00"...)
	tiff = bo.AppendUint16(tiff, 0x0112) // Orientation, SHORT, 1 value
	tiff = bo.AppendUint16(tiff, 3)
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint16(tiff, o)
	tiff = append(tiff, 0, 0)
	tiff = bo.AppendUint32(tiff, 0) // no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := []byte{0xFF, 0xD8, 0xFF, 0xE1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

func TestEXIFOrientation(t *testing.T) {
	// Source 48x32: quadrants A (top left), B (top right), C, D.
	cols := map[byte]color.NRGBA{'A': {255, 0, 0, 255}, 'B': {0, 255, 0, 255}, 'C': {0, 0, 255, 255}, 'D': {255, 255, 255, 255}}
	src := image.NewNRGBA(image.Rect(0, 0, 48, 32))
	for y := range 32 {
		for x := range 48 {
			q := byte('A')
			if x >= 24 {
				q++
			}
			if y >= 16 {
				q += 2
			}
			src.SetNRGBA(x, y, cols[q])
		}
	}
	plain := encodeJPEG(t, src, 100)
	// Corners TL, TR, BL, BR after applying each orientation (EXIF 2.3, 4.6.4 A).
	want := map[uint16]string{1: "ABCD", 2: "BADC", 3: "DCBA", 4: "CDAB", 5: "ACBD", 6: "CADB", 7: "DBCA", 8: "BDAC"}
	for o := uint16(1); o <= 8; o++ {
		for _, order := range []string{"II", "MM"} {
			for _, ignore := range []bool{false, true} {
				data := withEXIF(plain, o, order)
				if got := exifOrientation(data); got != int(o) {
					t.Fatalf("exifOrientation(%d, %s) = %d", o, order, got)
				}
				m, err := decodeBytes(t, data, !ignore)
				if err != nil {
					t.Fatal(err)
				}
				corners, w, h := want[o], 32, 48
				if ignore || o < 5 {
					w, h = 48, 32
				}
				if ignore {
					corners = "ABCD"
				}
				if m.w != w || m.h != h {
					t.Fatalf("orientation %d (ignore %v): %dx%d, want %dx%d", o, ignore, m.w, m.h, w, h)
				}
				at := [4][2]int{{w / 4, h / 4}, {3 * w / 4, h / 4}, {w / 4, 3 * h / 4}, {3 * w / 4, 3 * h / 4}}
				for k, xy := range at {
					c := cols[corners[k]]
					p := m.pix[3*(xy[1]*m.w+xy[0]):]
					for j, v := range []uint8{c.R, c.G, c.B} {
						if d := int(p[j]) - int(v); d < -8 || d > 8 {
							t.Fatalf("orientation %d %s (ignore %v): corner %d = %v, want %c %v", o, order, ignore, k, p[:3], corners[k], c)
						}
					}
				}
			}
		}
	}
	for _, bad := range [][]byte{nil, plain[:10], []byte("\xFF\xD8\xFF\xE1\x00\x08Exif\x00\x00"), withEXIF(plain, 9, "II")} {
		if got := exifOrientation(bad); got != 1 {
			t.Errorf("exifOrientation(%q...) = %d, want 1", bad[:min(len(bad), 12)], got)
		}
	}
}

func TestBadImageErrors(t *testing.T) {
	noise := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(i * 7919 % 251)
	}
	good, pngNoise := encodeJPEG(t, noise, 90), encodePNG(t, noise)
	tests := []struct {
		name   string
		data   []byte
		reason string
	}{
		{"empty", nil, "empty file"},
		{"text", []byte("<html>not an image</html>"), "not a supported image format"},
		{"heic", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), "not a supported image format"},
		{"truncated tiff", []byte("II*\x00\x08\x00\x00\x00"), "bad tiff header"},
		{"truncated header", good[:20], "bad jpeg header: unexpected EOF"},
		{"bad header", append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 30)...), "bad png header"},
		{"truncated jpeg", good[:len(good)/2], "corrupt or truncated jpeg: invalid JPEG format: short Huffman data"},
		{"truncated png", pngNoise[:len(pngNoise)/2], "corrupt or truncated png: png: invalid format: not enough pixel data"},
		{"too large", encodePNG(t, solid(100, 60, color.NRGBA{A: 255})), "too large: 100x60 = 6000 pixels > limit 5000"},
	}
	for _, tc := range tests {
		d := decoder{maxPixels: 5000}
		_, err := d.decode(tc.data)
		if !errors.Is(err, ErrBadImage) || !strings.HasPrefix(err.Error(), tc.reason) {
			t.Errorf("%s: error %v, want ErrBadImage with reason %q", tc.name, err, tc.reason)
		}
	}
}

// TestHorizontalFlip checks that HorizontalFlip mirrors the loaded image:
// pixel (y, x) of the flipped image is pixel (y, W-1-x) of the plain one.
func TestHorizontalFlip(t *testing.T) {
	const path = "testdata/chelsea.png"
	for _, size := range [][2]int{{32, 48}, {33, 47}} { // even and odd widths
		cfg := Config{Height: size[0], Width: size[1]}
		plain, _, err := Load(cfg, path)
		if err != nil {
			t.Fatal(err)
		}
		cfg.HorizontalFlip = true
		flipped, _, err := Load(cfg, path)
		if err != nil {
			t.Fatal(err)
		}
		h, w := size[0], size[1]
		for y := range h {
			for x := range w {
				for c := range 3 {
					if a, b := flipped[(y*w+x)*3+c], plain[(y*w+w-1-x)*3+c]; a != b {
						t.Fatalf("%dx%d: flipped (%d, %d, %d) = %v, plain (%d, %d, %d) = %v", w, h, y, x, c, a, y, w-1-x, c, b)
					}
				}
			}
		}
	}
}

// TestJPEGMatchesPIL decodes JPEGs of every common layout and requires
// PIL's pixels exactly: PIL uses libjpeg-turbo's defaults, as the decoder
// does, and for 4-component JPEGs (CMYK, YCCK) its CMYK output, the Adobe
// inversion undone and PIL's CMYK->RGB. scripts/make_jpeg_golden.py and
// scripts/make_cmyk_golden.py made the files.
func TestJPEGMatchesPIL(t *testing.T) {
	for _, name := range []string{
		"420", "422", "444", "progressive", "grey",
		"cmyk",    // Adobe CMYK by PIL, 4:4:4:4
		"cmyk420", // Adobe CMYK by PIL, M, Y and K at half resolution
		"ycck",    // Adobe YCCK by libjpeg, chroma 4:2:0
	} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "jpeg", name+".jpg"))
			if err != nil {
				t.Fatal(err)
			}
			want, shape := readNpy(t, filepath.Join("testdata", "jpeg", name+".npy"))
			d := decoder{maxPixels: DefaultMaxPixels}
			img, err := d.decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if img.h != shape[0] || img.w != shape[1] {
				t.Fatalf("%dx%d, want %dx%d", img.w, img.h, shape[1], shape[0])
			}
			worst, at, off := 0.0, 0, 0
			for i, v := range want {
				if diff := math.Abs(float64(img.pix[i]) - float64(v)); diff > 0 {
					off++
					if diff > worst {
						worst, at = diff, i
					}
				}
			}
			if off > 0 {
				t.Errorf("%d of %d values differ from PIL's, up to %g levels (pixel %d channel %d: %d, PIL %v)",
					off, len(want), worst, at/3, at%3, img.pix[at], want[at])
			}
		})
	}
}

// TestJPEGWithWarnings decodes a JPEG that libjpeg-turbo warns about (bytes
// after the end of the scan, common in the Kaggle cats and dogs) the way it
// always was: Go's decoder takes it.
func TestJPEGWithWarnings(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "jpeg", "420.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	// Garbage between the last scan and the EOI marker.
	eoi := bytes.LastIndex(data, []byte{0xff, 0xd9})
	odd := append(append(append([]byte(nil), data[:eoi]...), bytes.Repeat([]byte{0x12, 0x34}, 50)...), data[eoi:]...)
	if _, _, _, err := decodeJPEG(odd, 97, 65, 1, nil); err == nil {
		t.Fatal("libjpeg-turbo did not warn about the extraneous bytes")
	}
	d := decoder{maxPixels: DefaultMaxPixels}
	img, err := d.decode(odd)
	if err != nil || img.w != 97 || img.h != 65 {
		t.Fatalf("decode: %dx%d, %v", img.w, img.h, err)
	}
}

// TestCMYKJPEG: 4-component JPEGs scale in the DCT domain (FastJPEG) to
// PIL's Image.draft pixels, follow their EXIF orientation as colour JPEGs
// do, and go to Go's decoder when libjpeg-turbo warns.
func TestCMYKJPEG(t *testing.T) {
	for _, name := range []string{"cmyk", "cmyk420", "ycck"} {
		data, err := os.ReadFile(filepath.Join("testdata", "jpeg", name+".jpg"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			half        bool
			orientation uint16
		}{{false, 1}, {true, 1}, {false, 6}, {true, 6}} {
			t.Run(fmt.Sprintf("%s/half=%v/orientation=%d", name, tc.half, tc.orientation), func(t *testing.T) {
				ref := name
				d := decoder{maxPixels: DefaultMaxPixels, exif: true}
				if tc.half { // the size that 1/2 scale keeps, 97x65 -> 49x33
					ref += "_half"
					d.draftW, d.draftH = 48, 32
					if tc.orientation == 6 {
						d.draftW, d.draftH = 32, 48
					}
				}
				in := data
				if tc.orientation != 1 {
					in = withEXIF(data, tc.orientation, "MM")
				}
				want, shape := readNpy(t, filepath.Join("testdata", "jpeg", ref+".npy"))
				h, w := shape[0], shape[1]
				img, err := d.decode(in)
				if err != nil {
					t.Fatal(err)
				}
				ow, oh := w, h
				if tc.orientation == 6 {
					ow, oh = h, w
				}
				if img.w != ow || img.h != oh {
					t.Fatalf("%dx%d, want %dx%d", img.w, img.h, ow, oh)
				}
				for y := range oh {
					for x := range ow {
						sx, sy := x, y
						if tc.orientation == 6 { // rotated clockwise
							sx, sy = y, h-1-x
						}
						for c := range 3 {
							if got, v := img.pix[3*(y*ow+x)+c], want[3*(sy*w+sx)+c]; float32(got) != v {
								t.Fatalf("(%d, %d) channel %d: %d, PIL %v", x, y, c, got, v)
							}
						}
					}
				}
			})
		}
	}
	t.Run("ycck/warning", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join("testdata", "jpeg", "ycck.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		eoi := bytes.LastIndex(data, []byte{0xff, 0xd9})
		odd := slices.Concat(data[:eoi], bytes.Repeat([]byte{0x12, 0x34}, 50), data[eoi:])
		if _, _, _, err := decodeJPEG(odd, 97, 65, 1, nil); err == nil {
			t.Fatal("libjpeg-turbo did not warn about the extraneous bytes")
		}
		d := decoder{maxPixels: DefaultMaxPixels}
		if img, err := d.decode(odd); err != nil || img.w != 97 || img.h != 65 {
			t.Fatalf("decode: %dx%d, %v", img.w, img.h, err)
		}
	})
}

func TestDraftDenom(t *testing.T) {
	for _, tc := range []struct{ w, h, minW, minH, want int }{
		{4000, 3000, 224, 224, 8}, // 500x375
		{1000, 700, 224, 224, 2},  // 250x175 at 1/4 is too short
		{1792, 1792, 224, 224, 8}, // exactly 224x224
		{1791, 1791, 224, 224, 8}, // ceil(1791/8) = 224: libjpeg rounds up
		{1784, 1784, 224, 224, 4}, // 223 at 1/8
		{300, 300, 224, 224, 1},   // 150 at 1/2
		{500, 375, 224, 224, 1},   // the Kaggle size: as Keras
		{2400, 1000, 300, 100, 8}, // 300x125
		{1000, 2400, 300, 100, 2}, // 500x1200
	} {
		if got := draftDenom(tc.w, tc.h, tc.minW, tc.minH); got != tc.want {
			t.Errorf("draftDenom(%dx%d, at least %dx%d) = %d, want %d", tc.w, tc.h, tc.minW, tc.minH, got, tc.want)
		}
	}
}

// TestFastJPEG: a large JPEG decodes at the smallest DCT scale that keeps
// the target size (its EXIF rotation counted), and the result is at least
// as close to a properly filtered downscale as the full decode's bilinear
// resize (which aliases); PNGs and small JPEGs are as without it.
func TestFastJPEG(t *testing.T) {

	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bigImage := coffee(t, 2400, 1000)
	big := write("big.jpg", encodeJPEG(t, bigImage, 95))
	// Stored 1000x2400, shown 2400x1000 (orientation 6: rotate clockwise).
	rotated := write("rotated.jpg", withEXIF(encodeJPEG(t, coffee(t, 1000, 2400), 95), 6, "II"))
	small := write("small.jpg", encodeJPEG(t, coffee(t, 500, 375), 95))
	var pngData bytes.Buffer
	png.Encode(&pngData, coffee(t, 1200, 500))
	bigPNG := write("big.png", pngData.Bytes())
	// The reference: the big image filtered down (Catmull-Rom) to 300x100.
	ref := image.NewRGBA(image.Rect(0, 0, 300, 100))
	draw.CatmullRom.Scale(ref, ref.Bounds(), bigImage, bigImage.Bounds(), draw.Src, nil)
	distance := func(pix []float32, ref *image.RGBA) float64 {
		sum := 0.0
		for i := range pix {
			sum += math.Abs(float64(pix[i]) - float64(ref.Pix[i/3*4+i%3]))
		}
		return sum / float64(len(pix))
	}
	for _, tc := range []struct {
		path string
		want image.Rectangle // the decoded image's bounds with FastJPEG
	}{
		{big, image.Rect(0, 0, 300, 125)},
		{rotated, image.Rect(0, 0, 300, 125)},
		{small, image.Rect(0, 0, 500, 375)},
		{bigPNG, image.Rect(0, 0, 1200, 500)},
	} {
		name := filepath.Base(tc.path)
		cfg := Config{Height: 100, Width: 300, Preprocess: PreprocessNone}
		full, err := LoadView(cfg, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		cfg.FastJPEG = true
		fast, err := LoadView(cfg, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		d := decoder{maxPixels: DefaultMaxPixels, exif: true, draftW: 300, draftH: 100}
		if img, err := d.decode(data); err != nil || image.Rect(0, 0, img.w, img.h) != tc.want {
			t.Errorf("%s: decoded %dx%d (%v), want %v", name, img.w, img.h, err, tc.want)
		}
		if fast.Image.Bounds() != full.Image.Bounds() || fast.Box != full.Box {
			t.Errorf("%s: the picture %v, box %v; want the full decode's %v, %v", name, fast.Image.Bounds(), fast.Box, full.Image.Bounds(), full.Box)
		}
		same := true
		for i := range full.Pixels {
			same = same && full.Pixels[i] == fast.Pixels[i]
		}
		if scaledDown := tc.want != full.Image.Bounds(); same == scaledDown {
			t.Errorf("%s: scaled down %v, pixels the same %v", name, scaledDown, same)
		}
		if tc.path == big {
			dFull, dFast := distance(full.Pixels, ref), distance(fast.Pixels, ref)
			if dFast > dFull {
				t.Errorf("%s: %.3g levels from a filtered downscale on average, the full decode %.3g", name, dFast, dFull)
			}
			t.Logf("%s: from a filtered downscale: fast %.3g levels, full %.3g", name, dFast, dFull)
		}
	}
	if _, err := LoadView(Config{FastJPEG: true, RandomCrop: &RandomCrop{Scale: [2]float64{0.5, 1}, Ratio: [2]float64{1, 1}}}, big); err == nil || !strings.Contains(err.Error(), "FastJPEG with RandomCrop") {
		t.Errorf("FastJPEG with RandomCrop: %v", err)
	}
}

// TestGIFTransparentColour decodes GIFs whose first frame has a transparent
// index and requires that index's colour from the colour table, as PIL's
// convert("RGB") and TensorFlow's decode_gif give (Go's decoder makes it
// transparent black): with a global table, a local one, and animated.
func TestGIFTransparentColour(t *testing.T) {
	type px = [3]uint8
	global := color.Palette{color.RGBA{200, 10, 20, 255}, color.RGBA{30, 40, 250, 255}, color.RGBA{90, 180, 45, 255}, color.RGBA{1, 2, 3, 255}}
	local := color.Palette{color.RGBA{7, 77, 177, 255}, color.RGBA{250, 128, 0, 255}}
	frame := func(p color.Palette, pix ...uint8) *image.Paletted {
		m := image.NewPaletted(image.Rect(0, 0, 3, 1), p)
		m.Pix = pix
		return m
	}
	tests := []struct {
		name string
		g    gif.GIF
		want []px
	}{
		{"global table", gif.GIF{Image: []*image.Paletted{frame(global, 2, 0, 1)}, Delay: []int{0}, Config: image.Config{ColorModel: global, Width: 3, Height: 1}},
			[]px{{90, 180, 45}, {200, 10, 20}, {30, 40, 250}}},
		{"local table", gif.GIF{Image: []*image.Paletted{frame(local, 0, 1, 0)}, Delay: []int{0}, Config: image.Config{ColorModel: global, Width: 3, Height: 1}},
			[]px{{7, 77, 177}, {250, 128, 0}, {7, 77, 177}}},
		{"animated", gif.GIF{Image: []*image.Paletted{frame(global, 0, 3, 0), frame(global, 1, 1, 1)}, Delay: []int{10, 10}, Config: image.Config{ColorModel: global, Width: 3, Height: 1}},
			[]px{{200, 10, 20}, {1, 2, 3}, {200, 10, 20}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := gif.EncodeAll(&buf, &tc.g); err != nil {
				t.Fatal(err)
			}
			// A graphic control extension making index 0 transparent, after
			// the header and the global colour table.
			data := buf.Bytes()
			at := 13 + 3<<(data[10]&7+1)
			data = slices.Concat(data[:at], []byte{0x21, 0xF9, 4, 0x01, 0, 0, 0, 0}, data[at:])
			checkPixels(t, data, tc.want)
		})
	}
}

// TestWebPMatchesPIL decodes lossy WebPs (odd and even sizes, and with
// alpha) and requires PIL's pixels exactly: libwebp's chroma upsampling and
// VP8's limited-range colours. scripts/make_webp_golden.py made the files.
func TestWebPMatchesPIL(t *testing.T) {
	for _, name := range []string{"odd", "even", "alpha"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "webp", name+".webp"))
			if err != nil {
				t.Fatal(err)
			}
			want, shape := readNpy(t, filepath.Join("testdata", "webp", name+".npy"))
			img, err := decodeBytes(t, data, true)
			if err != nil {
				t.Fatal(err)
			}
			if img.h != shape[0] || img.w != shape[1] {
				t.Fatalf("%dx%d, want %dx%d", img.w, img.h, shape[1], shape[0])
			}
			for i, v := range want {
				if float32(img.pix[i]) != v {
					t.Fatalf("pixel %d channel %d: %d, PIL %v", i/3, i%3, img.pix[i], v)
				}
			}
		})
	}
}
