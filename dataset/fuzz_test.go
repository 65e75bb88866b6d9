package dataset

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// FuzzEXIFOrientation feeds arbitrary bytes to the EXIF orientation parser,
// which reads offsets and counts from the file.
func FuzzEXIFOrientation(f *testing.F) {
	plain := encodeJPEG(f, solid(16, 8, color.NRGBA{200, 10, 10, 255}), 90)
	for o := uint16(1); o <= 9; o++ {
		f.Add(withEXIF(plain, o, "II"))
		f.Add(withEXIF(plain, o, "MM"))
	}
	f.Add([]byte("\xFF\xD8\xFF\xE1\x00\x08Exif\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := exifOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		tiffOrientation(b)
	})
}

// fuzzMaxPixels keeps the fuzzed images small: the limit is what bounds the
// memory a file can ask for.
const fuzzMaxPixels = 1 << 16

// FuzzDecode runs the decoder on arbitrary bytes: it must return an image
// or ErrBadImage, never panic (its recover is for the image decoders;
// "decoder panic" is reported here so that none is hidden), and never
// return an image over the pixel limit.
func FuzzDecode(f *testing.F) {
	m := solid(12, 9, color.NRGBA{10, 200, 30, 255})
	f.Add(encodePNG(f, m))
	f.Add(withEXIF(encodeJPEG(f, m, 90), 6, "II"))
	f.Add(withEXIF(encodeJPEG(f, image.NewGray(image.Rect(0, 0, 9, 12)), 90), 8, "MM"))
	cmyk := image.NewCMYK(image.Rect(0, 0, 8, 8))
	f.Add(encodeJPEG(f, cmyk, 90))
	var b bytes.Buffer
	if err := gif.Encode(&b, m, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	b.Reset()
	if err := bmp.Encode(&b, m); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	for _, c := range []tiff.CompressionType{tiff.Uncompressed, tiff.Deflate} {
		b.Reset()
		if err := tiff.Encode(&b, m, &tiff.Options{Compression: c}); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	for _, name := range []string{"blue-purple-pink.lossy.webp", "gopher-doc.8bpp.lossless.webp", "small_gradient.png"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	d := decoder{maxPixels: fuzzMaxPixels, exif: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := d.decode(data)
		if err != nil {
			if strings.HasPrefix(err.Error(), "decoder panic") {
				t.Fatal(err)
			}
			return
		}
		if img.w <= 0 || img.h <= 0 || img.w*img.h > fuzzMaxPixels || len(img.pix) != 3*img.w*img.h {
			t.Fatalf("%dx%d image of %d bytes, limit %d pixels", img.w, img.h, len(img.pix), fuzzMaxPixels)
		}
	})
}
