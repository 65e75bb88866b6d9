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
// out, w*h*3 bytes of RGB, with the library's defaults (accurate integer
// IDCT, smooth chroma upsampling), as PIL and TensorFlow's decode_jpeg do.
// It returns 0, or -1 with the reason in msg (JMSG_LENGTH_MAX bytes).
static int gt_jpeg_decode(const unsigned char *data, unsigned long size, unsigned char *out, int w, int h, char *msg) {
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
	jpeg_start_decompress(&cinfo);
	while (cinfo.output_scanline < cinfo.output_height) {
		JSAMPROW row = out + (size_t)cinfo.output_scanline * (size_t)w * 3;
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
// packed RGB in buf (grown as needed) with libjpeg-turbo: the decoder of
// PIL and of TensorFlow's decode_jpeg, which Keras reads images with, so
// the pixels are theirs to the last bit (Go's image/jpeg upsamples chroma
// differently: up to 14 levels apart on a photo), and 2-3x faster than Go's
// on large photos. CMYK JPEGs go to Go's decoder.
func decodeJPEG(data []byte, w, h int, buf []byte) ([]byte, error) {
	out := grow(buf, w*h*3)
	var msg [C.JMSG_LENGTH_MAX]C.char
	if C.gt_jpeg_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.int(w), C.int(h), &msg[0]) != 0 {
		return out, errors.New(C.GoString(&msg[0]))
	}
	return out, nil
}
