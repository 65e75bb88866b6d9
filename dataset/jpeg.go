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

// gt_jpeg_decode decodes a JPEG of w x h pixels and 1 or 3 components into
// out, ow*oh*3 bytes of RGB, with the library's defaults (accurate integer
// IDCT, smooth chroma upsampling), as PIL does (TensorFlow's decode_jpeg
// defaults to the fast integer IDCT),
// scaled by 1/denom in the DCT domain (denom 1, 2, 4 or 8) to ow x oh.
// It returns 0, or -1 with the reason in msg (JMSG_LENGTH_MAX bytes).
static int gt_jpeg_decode(const unsigned char *data, unsigned long size, unsigned char *out, int w, int h, int denom, int ow, int oh, char *msg) {
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
	if ((int)cinfo.image_width != w || (int)cinfo.image_height != h ||
			(cinfo.num_components != 1 && cinfo.num_components != 3)) {
		snprintf(msg, JMSG_LENGTH_MAX, "%ux%u with %d components, want %dx%d with 1 or 3",
			cinfo.image_width, cinfo.image_height, cinfo.num_components, w, h);
		jpeg_destroy_decompress(&cinfo);
		return -1;
	}
	cinfo.out_color_space = JCS_RGB;
	cinfo.scale_num = 1;
	cinfo.scale_denom = denom;
	jpeg_calc_output_dimensions(&cinfo);
	if ((int)cinfo.output_width != ow || (int)cinfo.output_height != oh) {
		snprintf(msg, JMSG_LENGTH_MAX, "scaled by 1/%d to %ux%u, want %dx%d", denom, cinfo.output_width, cinfo.output_height, ow, oh);
		jpeg_destroy_decompress(&cinfo);
		return -1;
	}
	jpeg_start_decompress(&cinfo);
	while (cinfo.output_scanline < cinfo.output_height) {
		JSAMPROW row = out + (size_t)cinfo.output_scanline * (size_t)ow * 3;
		jpeg_read_scanlines(&cinfo, &row, 1);
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	return 0;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// decodeJPEG decodes a w x h JPEG of 1 (grey) or 3 (YCbCr) components to
// packed RGB in buf (grown as needed) with libjpeg-turbo and its default
// (accurate) IDCT: PIL's decoder and settings, so the pixels are PIL's to
// the last bit. TensorFlow's decode_jpeg, which Keras'
// image_dataset_from_directory reads images with, uses the same library
// with its fast IDCT: a level or so apart. Go's image/jpeg upsamples chroma
// differently (up to 14 levels apart on a photo) and is 2-3x slower on
// large photos. CMYK JPEGs go to Go's decoder.
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
