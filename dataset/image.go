package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // registers GIF with image.Decode
	"image/jpeg"  // registers JPEG with image.Decode
	_ "image/png" // registers PNG with image.Decode

	_ "golang.org/x/image/bmp"  // registers BMP with image.Decode
	_ "golang.org/x/image/tiff" // registers TIFF with image.Decode
	_ "golang.org/x/image/webp" // registers WebP with image.Decode
)

// ErrBadImage is wrapped by the errors of files that are skipped rather than
// fatal: empty, truncated, not an image, unsupported or over Config.MaxPixels.
// Such an error's message is the reason written to the skip report.
var ErrBadImage = errors.New("bad image")

// badImage is a per-file error: reason is the message, err (if any) the cause.
type badImage struct {
	reason string
	err    error
}

func (e *badImage) Error() string        { return e.reason }
func (e *badImage) Unwrap() error        { return e.err }
func (e *badImage) Is(target error) bool { return target == ErrBadImage }

func badf(format string, args ...any) error { return &badImage{reason: fmt.Sprintf(format, args...)} }

// rgb8 is an 8-bit RGB image, 3 bytes per pixel, rows packed.
type rgb8 struct {
	pix  []byte
	w, h int
}

// decoder turns file bytes into an oriented 8-bit RGB image. Its buffers are
// reused from one image to the next; a decoder is not safe for concurrent use.
type decoder struct {
	maxPixels int
	exif      bool
	// draftW x draftH, when set, is the size a JPEG must keep (after its
	// EXIF rotation): it is decoded at the smallest DCT scale that leaves
	// it that large (Config.FastJPEG).
	draftW, draftH int
	rgb, tmp       []byte
}

// decode checks the header, decodes, converts to RGB and applies the EXIF
// orientation. The returned image aliases the decoder's buffers.
func (d *decoder) decode(data []byte) (img rgb8, err error) {
	defer func() { // a decoder bug on hostile input costs one file, not the run
		if r := recover(); r != nil {
			err = badf("decoder panic: %v", r)
		}
	}()
	if len(data) == 0 {
		return rgb8{}, badf("empty file")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if _, unsupported := err.(jpeg.UnsupportedError); unsupported && format == "jpeg" {
		// A layout Go's decoder lacks (CMYK with M, Y and K subsampled,
		// as PIL writes it): libjpeg-turbo may read it, as for PIL.
		if c, herr := jpegConfig(data); herr == nil {
			cfg, err = c, nil
		}
	}
	switch {
	case errors.Is(err, image.ErrFormat):
		return rgb8{}, badf("not a supported image format")
	case err != nil:
		return rgb8{}, badf("bad %s header: %v", orUnknown(format), err)
	case cfg.Width <= 0 || cfg.Height <= 0:
		return rgb8{}, badf("%s has no pixels (%dx%d)", format, cfg.Width, cfg.Height)
	case int64(cfg.Width)*int64(cfg.Height) > int64(d.maxPixels):
		return rgb8{}, badf("too large: %dx%d = %d pixels > limit %d", cfg.Width, cfg.Height, int64(cfg.Width)*int64(cfg.Height), d.maxPixels)
	}
	orientation := 1
	if format == "jpeg" && d.exif {
		orientation = exifOrientation(data)
	}
	// Colour, grey and 4-component (CMYK, YCCK) JPEGs; RGB JPEGs (Adobe
	// transform 0 with 3 components) stay with Go's decoder.
	if format == "jpeg" && (cfg.ColorModel == color.YCbCrModel || cfg.ColorModel == color.GrayModel || cfg.ColorModel == color.CMYKModel) {
		denom := 1
		if d.draftW > 0 {
			minW, minH := d.draftW, d.draftH
			if orientation >= 5 { // rotated a quarter turn: width becomes height
				minW, minH = minH, minW
			}
			denom = draftDenom(cfg.Width, cfg.Height, minW, minH)
		}
		var jerr error
		var w, h int
		if d.rgb, w, h, jerr = decodeJPEG(data, cfg.Width, cfg.Height, denom, d.rgb); jerr == nil {
			img = rgb8{d.rgb, w, h}
		}
		// Else (libjpeg-turbo warned of corrupt data, say) Go's decoder
		// decides below: it accepts what it always accepted.
	}
	if img.pix == nil {
		m, _, err := image.Decode(bytes.NewReader(data))
		if err != nil {
			return rgb8{}, badf("corrupt or truncated %s: %v", format, err)
		}
		if p, ok := m.(*image.Paletted); ok && format == "gif" {
			gifTransparentColour(p.Palette, data)
		}
		if yuv := vp8YCbCr(m); yuv != nil && format == "webp" {
			d.rgb = webpToRGB(yuv, d.rgb)
		} else {
			d.rgb = toRGB(m, d.rgb)
		}
		img = rgb8{d.rgb, m.Bounds().Dx(), m.Bounds().Dy()}
	}
	if orientation > 1 {
		d.tmp = grow(d.tmp, len(img.pix))
		img, d.tmp, d.rgb = orient(img, orientation, d.tmp), d.rgb, d.tmp
	}
	return img, nil
}

func orUnknown(format string) string {
	if format == "" {
		return "image"
	}
	return format
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// toRGB converts m to packed 8-bit RGB in buf (grown as needed). Alpha is
// dropped and colours are kept un-premultiplied, as PIL's convert("RGB");
// 16-bit samples keep their high byte.
func toRGB(m image.Image, buf []byte) []byte {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	out := grow(buf, w*h*3)
	o := 0
	switch m := m.(type) {
	case *image.YCbCr:
		ycbcrToRGB(m, out)
	case *image.NYCbCrA:
		ycbcrToRGB(&m.YCbCr, out)
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for _, v := range m.Pix[m.PixOffset(b.Min.X, y):][:w] {
				out[o], out[o+1], out[o+2] = v, v, v
				o += 3
			}
		}
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][: 4*w : 4*w]
			for i := 0; i < len(row); i += 4 {
				out[o], out[o+1], out[o+2] = row[i], row[i+1], row[i+2]
				o += 3
			}
		}
	case *image.NRGBA64:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][: 8*w : 8*w]
			for i := 0; i < len(row); i += 8 { // big-endian: the high byte comes first
				out[o], out[o+1], out[o+2] = row[i], row[i+2], row[i+4]
				o += 3
			}
		}
	case *image.CMYK:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][: 4*w : 4*w]
			for i := 0; i < len(row); i += 4 {
				out[o], out[o+1], out[o+2] = color.CMYKToRGB(row[i], row[i+1], row[i+2], row[i+3])
				o += 3
			}
		}
	case *image.Paletted:
		var lut [256][3]uint8
		for i, c := range m.Palette {
			if i < len(lut) {
				lut[i][0], lut[i][1], lut[i][2] = nrgb(c)
			}
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for _, v := range m.Pix[m.PixOffset(b.Min.X, y):][:w] {
				out[o], out[o+1], out[o+2] = lut[v][0], lut[v][1], lut[v][2]
				o += 3
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				out[o], out[o+1], out[o+2] = nrgb(m.At(x, y))
				o += 3
			}
		}
	}
	return out
}

// ycbcrToRGB converts with the integer arithmetic of color.YCbCrToRGB,
// inlined, walking the chroma planes row by row.
func ycbcrToRGB(m *image.YCbCr, out []byte) {
	b := m.Rect
	hs, vs := 0, 1 // horizontal shift and vertical divisor of the chroma planes
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 1, 2
	case image.YCbCrSubsampleRatio440:
		vs = 2
	case image.YCbCrSubsampleRatio411:
		hs = 2
	case image.YCbCrSubsampleRatio410:
		hs, vs = 2, 2
	}
	w := b.Dx()
	o := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		yrow := m.Y[m.YOffset(b.Min.X, y):][:w]
		c0 := (y/vs - b.Min.Y/vs) * m.CStride
		cbrow, crrow := m.Cb[c0:], m.Cr[c0:]
		x0 := b.Min.X >> hs
		px := out[o : o+3*w : o+3*w]
		for i, yy := range yrow {
			ci := (b.Min.X+i)>>hs - x0
			yy1 := int32(yy) * 0x10101
			cb1 := int32(cbrow[ci]) - 128
			cr1 := int32(crrow[ci]) - 128
			r := yy1 + 91881*cr1
			g := yy1 - 22554*cb1 - 46802*cr1
			bl := yy1 + 116130*cb1
			px[3*i], px[3*i+1], px[3*i+2] = clamp16(r), clamp16(g), clamp16(bl)
		}
		o += 3 * w
	}
}

// vp8YCbCr returns the 4:2:0 YCbCr planes of m (a lossy WebP, alpha or
// not), or nil.
func vp8YCbCr(m image.Image) *image.YCbCr {
	switch m := m.(type) {
	case *image.YCbCr:
		if m.SubsampleRatio == image.YCbCrSubsampleRatio420 {
			return m
		}
	case *image.NYCbCrA:
		return vp8YCbCr(&m.YCbCr)
	}
	return nil
}

// webpToRGB converts a lossy WebP's 4:2:0 YCbCr to packed RGB in buf (grown
// as needed) as libwebp does for PIL, bit for bit: "fancy" upsampling of the
// chroma and VP8's limited-range BT.601 (Y in 16..235), where image.YCbCr
// assumes JPEG's full range (a washed-out picture, up to 27 levels off).
func webpToRGB(m *image.YCbCr, buf []byte) []byte {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	out := grow(buf, w*h*3)
	cw, ch := (w+1)/2, (h+1)/2
	u, v := make([]uint8, w), make([]uint8, w)
	c0 := m.COffset(b.Min.X, b.Min.Y)
	for y := range h {
		// The chroma rows nearest to luma row y (weight 3) and next nearest.
		near, far := y/2, y/2-1
		if y%2 == 1 {
			near, far = y/2, min(y/2+1, ch-1)
		}
		far = max(far, 0)
		for _, p := range [2]struct {
			plane []uint8
			dst   []uint8
		}{{m.Cb, u}, {m.Cr, v}} {
			upsampleVP8(p.plane[c0+near*m.CStride:][:cw], p.plane[c0+far*m.CStride:][:cw], p.dst)
		}
		yrow := m.Y[m.YOffset(b.Min.X, b.Min.Y+y):][:w]
		px := out[3*w*y : 3*w*(y+1)]
		for x, yy := range yrow {
			yh := int(yy) * 19077 >> 8
			uu, vv := int(u[x]), int(v[x])
			px[3*x] = vp8Clip(yh + vv*26149>>8 - 14234)
			px[3*x+1] = vp8Clip(yh - uu*6419>>8 - vv*13320>>8 + 8708)
			px[3*x+2] = vp8Clip(yh + uu*33050>>8 - 17685)
		}
	}
	return out
}

// upsampleVP8 interpolates a row of chroma, near (weight 3 vertically) and
// far (weight 1) the samples at half the resolution of dst, with libwebp's
// "fancy" upsampler's integer arithmetic (weights 9, 3, 3, 1).
func upsampleVP8(near, far, dst []uint8) {
	w := len(dst)
	dst[0] = uint8((3*int(near[0]) + int(far[0]) + 2) >> 2)
	for x := 1; x <= (w-1)/2; x++ {
		tl, t, l, c := int(near[x-1]), int(near[x]), int(far[x-1]), int(far[x])
		avg := tl + t + l + c + 8
		dst[2*x-1] = uint8(((avg+2*(t+l))>>3 + tl) >> 1)
		dst[2*x] = uint8(((avg+2*(tl+c))>>3 + t) >> 1)
	}
	if w%2 == 0 {
		last := (w - 1) / 2
		dst[w-1] = uint8((3*int(near[last]) + int(far[last]) + 2) >> 2)
	}
}

// vp8Clip is libwebp's VP8Clip8: v, in 1/64ths, clamped to 0..255.
func vp8Clip(v int) uint8 {
	if v&^(256<<6-1) == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// clamp16 returns v>>16 clamped to 0..255, as color.YCbCrToRGB does.
func clamp16(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}

// nrgb returns the non-premultiplied 8-bit colour of c.
func nrgb(c color.Color) (r, g, b uint8) {
	switch c := c.(type) {
	case color.NRGBA:
		return c.R, c.G, c.B
	case color.NRGBA64:
		return uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8)
	case color.Gray:
		return c.Y, c.Y, c.Y
	case color.Gray16:
		return uint8(c.Y >> 8), uint8(c.Y >> 8), uint8(c.Y >> 8)
	case color.YCbCr:
		return color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
	case color.NYCbCrA:
		return color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
	case color.CMYK:
		return color.CMYKToRGB(c.C, c.M, c.Y, c.K)
	}
	n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
	return uint8(n.R >> 8), uint8(n.G >> 8), uint8(n.B >> 8)
}

// gifTransparentColour gives back the colour of the first frame's
// transparent index, which Go's decoder replaces by transparent black: PIL's
// convert("RGB") and TensorFlow's decode_gif keep the colour of the table.
func gifTransparentColour(p color.Palette, data []byte) {
	table := gifColourTable(data)
	for i, c := range p {
		if _, _, _, a := c.RGBA(); a == 0 && 3*i+3 <= len(table) {
			p[i] = color.RGBA{table[3*i], table[3*i+1], table[3*i+2], 255}
		}
	}
}

// gifColourTable returns the colour table (RGB triples) of a GIF's first
// frame: its local table, else the global one; nil if it has none or the
// file ends first.
func gifColourTable(d []byte) []byte {
	const header = 13 // "GIF89a", screen width and height, flags, background, aspect
	if len(d) < header {
		return nil
	}
	var global []byte
	p := header
	if f := d[10]; f&0x80 != 0 {
		n := 3 << (f&7 + 1)
		if p+n > len(d) {
			return nil
		}
		global, p = d[p:p+n], p+n
	}
	for p < len(d) {
		switch d[p] {
		case 0x21: // extension: label, then sub-blocks up to an empty one
			p += 2
			for p < len(d) && d[p] != 0 {
				p += int(d[p]) + 1
			}
			p++
		case 0x2C: // image descriptor: position, size, flags
			if p+10 > len(d) {
				return nil
			}
			if f := d[p+9]; f&0x80 != 0 {
				n := 3 << (f&7 + 1)
				if p+10+n > len(d) {
					return nil
				}
				return d[p+10 : p+10+n]
			}
			return global
		default:
			return nil
		}
	}
	return nil
}

// orient applies EXIF orientation o (2..8) to src, writing into dst.
func orient(src rgb8, o int, dst []byte) rgb8 {
	w, h := src.w, src.h
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	i := 0
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			sx, sy := x, y
			switch o {
			case 2:
				sx = w - 1 - x
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sy = h - 1 - y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			s := 3 * (sy*w + sx)
			dst[i], dst[i+1], dst[i+2] = src.pix[s], src.pix[s+1], src.pix[s+2]
			i += 3
		}
	}
	return rgb8{dst, ow, oh}
}

// exifOrientation returns the orientation tag (1..8) of a JPEG's EXIF APP1
// segment, or 1 if there is none or it cannot be read.
func exifOrientation(data []byte) int {
	if len(data) < 4 || data[0] != 0xFF || data[1] != jpegSOI {
		return 1
	}
	for p := 2; p+4 <= len(data); {
		if data[p] != 0xFF {
			return 1
		}
		marker := data[p+1]
		if marker == 0xFF { // fill byte
			p++
			continue
		}
		if marker == jpegSOS || marker == jpegEOI {
			return 1
		}
		n := int(data[p+2])<<8 | int(data[p+3]) // segment length, including itself
		if n < 2 || p+2+n > len(data) {
			return 1
		}
		seg := data[p+4 : p+2+n]
		if marker == jpegAPP1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			if o := tiffOrientation(seg[6:]); o >= 1 && o <= 8 {
				return o
			}
			return 1
		}
		p += 2 + n
	}
	return 1
}

const (
	jpegSOI  = 0xD8
	jpegEOI  = 0xD9
	jpegSOS  = 0xDA
	jpegAPP1 = 0xE1
)

// tiffOrientation reads tag 0x0112 of IFD0 of a TIFF header; 0 if absent.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var u16 func([]byte) uint16
	var u32 func([]byte) uint32
	switch string(t[:2]) {
	case "II":
		u16 = func(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
		u32 = func(b []byte) uint32 { return uint32(u16(b)) | uint32(u16(b[2:]))<<16 }
	case "MM":
		u16 = func(b []byte) uint16 { return uint16(b[1]) | uint16(b[0])<<8 }
		u32 = func(b []byte) uint32 { return uint32(u16(b))<<16 | uint32(u16(b[2:])) }
	default:
		return 0
	}
	if u16(t[2:]) != 42 {
		return 0
	}
	off := uint64(u32(t[4:]))
	if off+2 > uint64(len(t)) {
		return 0
	}
	n := uint64(u16(t[off:]))
	for i := uint64(0); i < n; i++ {
		e := off + 2 + 12*i
		if e+12 > uint64(len(t)) {
			return 0
		}
		if u16(t[e:]) == 0x0112 && u16(t[e+2:]) == 3 { // orientation, SHORT
			return int(u16(t[e+8:]))
		}
	}
	return 0
}
