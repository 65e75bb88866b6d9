package dataset

/*
#cgo CFLAGS: -O2
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <string.h>
#include <jpeglib.h>

struct gt_jerr {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
};

static void gt_jerr_exit(j_common_ptr c) {
	struct gt_jerr *e = (struct gt_jerr *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jb, 1);
}

// A warning (corrupt data, a premature end) stops the decoding too: the Go
// decoder then decides about the file.
static void gt_jerr_emit(j_common_ptr c, int level) {
	if (level < 0) {
		gt_jerr_exit(c);
	}
}

// gt_jpeg_header reads the header of a JPEG: its size and number of
// components. It returns 0, or -1 with the reason in msg.
static int gt_jpeg_header(const unsigned char *data, unsigned long size, int *w, int *h, int *nc, char *msg) {
	struct jpeg_decompress_struct cinfo;
	struct gt_jerr jerr;
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = gt_jerr_exit;
	jerr.pub.emit_message = gt_jerr_emit;
	if (setjmp(jerr.jb)) {
		jpeg_destroy_decompress(&cinfo);
		memcpy(msg, jerr.msg, JMSG_LENGTH_MAX);
		return -1;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, data, size);
	jpeg_read_header(&cinfo, TRUE);
	*w = (int)cinfo.image_width;
	*h = (int)cinfo.image_height;
	*nc = cinfo.num_components;
	jpeg_destroy_decompress(&cinfo);
	return 0;
}

// gt_muldiv255 is PIL's MULDIV255: a*b/255, rounded, for a, b in 0..255.
static inline int gt_muldiv255(int a, int b) {
	int t = a * b + 128;
	return ((t >> 8) + t) >> 8;
}

// gt_cmyk_to_rgb converts n pixels of CMYK as libjpeg gives them (Adobe's
// inverted convention: 255 is no ink; a YCCK file converted by libjpeg
// alike) to RGB as PIL does: its JPEG plugin takes every CMYK JPEG as
// inverted ("CMYK;I"), and convert("RGB") computes, on ink values,
// r = nk - MULDIV255(c, nk) with nk = 255 - k. Here nk is the stored K.
static void gt_cmyk_to_rgb(const unsigned char *in, unsigned char *out, int n) {
	for (int i = 0; i < n; i++, in += 4, out += 3) {
		int nk = in[3];
		out[0] = (unsigned char)(nk - gt_muldiv255(255 - in[0], nk));
		out[1] = (unsigned char)(nk - gt_muldiv255(255 - in[1], nk));
		out[2] = (unsigned char)(nk - gt_muldiv255(255 - in[2], nk));
	}
}

// gt_jpeg_decode decodes a JPEG of w x h pixels and 1, 3 or 4 components into
// out, ow*oh*3 bytes of RGB, with the library's defaults (accurate integer
// IDCT, smooth chroma upsampling), as PIL does (TensorFlow's decode_jpeg
// defaults to the fast integer IDCT),
// scaled by 1/denom in the DCT domain (denom 1, 2, 4 or 8) to ow x oh.
// A 4-component JPEG (CMYK, or YCCK, which libjpeg converts to CMYK) is
// decoded to CMYK, as PIL asks libjpeg to, and converted to RGB as PIL does
// (gt_cmyk_to_rgb).
// It returns 0, or -1 with the reason in msg (JMSG_LENGTH_MAX bytes).
static int gt_jpeg_decode(const unsigned char *data, unsigned long size, unsigned char *out, int w, int h, int denom, int ow, int oh, char *msg) {
	struct jpeg_decompress_struct cinfo;
	struct gt_jerr jerr;
	// volatile: set after setjmp, read after a longjmp.
	unsigned char *volatile cmyk = NULL;
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = gt_jerr_exit;
	jerr.pub.emit_message = gt_jerr_emit;
	if (setjmp(jerr.jb)) {
		jpeg_destroy_decompress(&cinfo);
		free(cmyk);
		memcpy(msg, jerr.msg, JMSG_LENGTH_MAX);
		return -1;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, data, size);
	jpeg_read_header(&cinfo, TRUE);
	int nc = cinfo.num_components;
	if ((int)cinfo.image_width != w || (int)cinfo.image_height != h ||
			(nc != 1 && nc != 3 && nc != 4)) {
		snprintf(msg, JMSG_LENGTH_MAX, "%ux%u with %d components, want %dx%d with 1, 3 or 4",
			cinfo.image_width, cinfo.image_height, nc, w, h);
		jpeg_destroy_decompress(&cinfo);
		return -1;
	}
	if (nc == 4) {
		if (cinfo.jpeg_color_space != JCS_CMYK && cinfo.jpeg_color_space != JCS_YCCK) {
			snprintf(msg, JMSG_LENGTH_MAX, "4 components in colour space %d, want CMYK or YCCK", (int)cinfo.jpeg_color_space);
			jpeg_destroy_decompress(&cinfo);
			return -1;
		}
		cinfo.out_color_space = JCS_CMYK;
	} else {
		cinfo.out_color_space = JCS_RGB;
	}
	cinfo.scale_num = 1;
	cinfo.scale_denom = denom;
	jpeg_calc_output_dimensions(&cinfo);
	if ((int)cinfo.output_width != ow || (int)cinfo.output_height != oh) {
		snprintf(msg, JMSG_LENGTH_MAX, "scaled by 1/%d to %ux%u, want %dx%d", denom, cinfo.output_width, cinfo.output_height, ow, oh);
		jpeg_destroy_decompress(&cinfo);
		return -1;
	}
	if (nc == 4 && (cmyk = malloc((size_t)ow * 4)) == NULL) {
		snprintf(msg, JMSG_LENGTH_MAX, "out of memory");
		jpeg_destroy_decompress(&cinfo);
		return -1;
	}
	jpeg_start_decompress(&cinfo);
	while (cinfo.output_scanline < cinfo.output_height) {
		JSAMPROW row = out + (size_t)cinfo.output_scanline * (size_t)ow * 3;
		if (cmyk != NULL) {
			JSAMPROW in = cmyk;
			jpeg_read_scanlines(&cinfo, &in, 1);
			gt_cmyk_to_rgb(cmyk, row, ow);
		} else {
			jpeg_read_scanlines(&cinfo, &row, 1);
		}
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	free(cmyk);
	return 0;
}
*/
import "C"

import (
	"errors"
	"image"
	"image/color"
	"unsafe"
)

// decodeJPEG decodes a w x h JPEG of 1 (grey), 3 (YCbCr) or 4 (CMYK, YCCK)
// components to packed RGB in buf (grown as needed) with libjpeg-turbo and
// its default (accurate) IDCT: PIL's decoder and settings, so the pixels are
// PIL's to the last bit. TensorFlow's decode_jpeg, which Keras'
// image_dataset_from_directory reads images with, uses the same library
// with its fast IDCT: a level or so apart. Go's image/jpeg upsamples chroma
// differently (up to 14 levels apart on a photo) and is 2-3x slower on
// large photos. 4-component JPEGs decode to CMYK, libjpeg converting YCCK,
// and are taken as Adobe's inverted CMYK and converted to RGB with PIL's
// arithmetic, as PIL's JPEG plugin and convert("RGB") do (Go's decoder was
// up to 33 levels off on a YCCK 4:2:0 photo, 2 on a plain CMYK one, and
// refuses CMYK files without an Adobe marker or with subsampled M, Y and K,
// which PIL reads).
//
// denom > 1 scales the image by 1/denom (2, 4 or 8) while decoding, in the
// DCT domain, as PIL's Image.draft and decode_jpeg's ratio do: the image
// comes out ceil(w/denom) x ceil(h/denom), at a fraction of the cost.
func decodeJPEG(data []byte, w, h, denom int, buf []byte) (out []byte, ow, oh int, err error) {
	ow, oh = scaledSize(w, denom), scaledSize(h, denom)
	out = grow(buf, ow*oh*3)
	var msg [C.JMSG_LENGTH_MAX]C.char
	if C.gt_jpeg_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.int(w), C.int(h), C.int(denom), C.int(ow), C.int(oh), &msg[0]) != 0 {
		return out, ow, oh, errors.New(C.GoString(&msg[0]))
	}
	return out, ow, oh, nil
}

// jpegConfig reads a JPEG's header with libjpeg-turbo, for the layouts
// Go's image/jpeg refuses and libjpeg-turbo (so PIL) reads: PIL's CMYK
// with subsampling=2 (C full size; M, Y and K at half) is one. The colour
// model stands for the number of components (1, 3, 4), as image/jpeg's.
func jpegConfig(data []byte) (image.Config, error) {
	var w, h, nc C.int
	var msg [C.JMSG_LENGTH_MAX]C.char
	if C.gt_jpeg_header((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), &w, &h, &nc, &msg[0]) != 0 {
		return image.Config{}, errors.New(C.GoString(&msg[0]))
	}
	cfg := image.Config{Width: int(w), Height: int(h)}
	switch nc {
	case 1:
		cfg.ColorModel = color.GrayModel
	case 3:
		cfg.ColorModel = color.YCbCrModel
	case 4:
		cfg.ColorModel = color.CMYKModel
	default:
		return image.Config{}, errors.New("unsupported number of components")
	}
	return cfg, nil
}

// scaledSize is libjpeg's output size of n pixels scaled by 1/denom.
func scaledSize(n, denom int) int { return (n + denom - 1) / denom }

// draftDenom is the largest of 8, 4 and 2 that scales a w x h image to at
// least minW x minH, or 1.
func draftDenom(w, h, minW, minH int) int {
	for _, d := range []int{8, 4, 2} {
		if scaledSize(w, d) >= minW && scaledSize(h, d) >= minH {
			return d
		}
	}
	return 1
}
