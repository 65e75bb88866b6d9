#!/usr/bin/python3
"""4-component JPEG decoding references for dataset/testdata/jpeg: the crop
of the cat photo of make_jpeg_golden.py in CMYK (black taken out of the
three inks, as print separations do), saved

  cmyk.jpg  by PIL: Adobe CMYK (APP14 transform 0, inverted, as Photoshop
            writes), no subsampling;
  cmyk420.jpg  the same with PIL's subsampling=2, which for CMYK halves
            the resolution of M, Y and K (C is the first component);
  ycck.jpg  by libjpeg through a small C program (Pillow cannot write YCCK):
            Adobe YCCK (APP14 transform 2), Y and K full size, chroma
            4:2:0, libjpeg's default sampling for YCCK;

and each file decoded by PIL (libjpeg with CMYK output, the Adobe
inversion undone, then its own CMYK->RGB): RGB pixels as float32 .npy, HWC;
NAME_half.npy the same decoded at 1/2 scale in the DCT domain (PIL's
Image.draft, what Config.FastJPEG does).

    /usr/bin/python3 scripts/make_cmyk_golden.py
    (Debian: python3-pil python3-numpy libjpeg-dev, a C compiler)
"""
import os
import subprocess
import tempfile

import numpy as np
from PIL import Image

# Reads "W H\n" and W*H*4 bytes of CMYK as stored in an Adobe JPEG (inverted:
# 255 is no ink) from stdin, writes a YCCK JPEG to stdout.
YCCK_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>

int main(void) {
	int w, h;
	if (scanf("%d %d", &w, &h) != 2 || getchar() != '\n') return 1;
	unsigned char *pix = malloc((size_t)w * h * 4);
	if (fread(pix, 4, (size_t)w * h, stdin) != (size_t)w * h) return 1;
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	jpeg_stdio_dest(&c, stdout);
	c.image_width = w;
	c.image_height = h;
	c.input_components = 4;
	c.in_color_space = JCS_CMYK;
	jpeg_set_defaults(&c);
	jpeg_set_colorspace(&c, JCS_YCCK); /* Adobe marker, transform 2; 2x2 Y and K */
	jpeg_set_quality(&c, 90, TRUE);
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = pix + (size_t)c.next_scanline * w * 4;
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	return 0;
}
"""

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "..", "dataset", "testdata", "chelsea.png")
out = os.path.join(here, "..", "dataset", "testdata", "jpeg")
os.makedirs(out, exist_ok=True)

img = Image.open(src).convert("RGB").crop((120, 20, 380, 200)).resize((97, 65), Image.LANCZOS)
ink = 255 - np.asarray(img, dtype=np.int32)  # naive C, M, Y
k = ink.min(axis=2, keepdims=True)
cmyk = np.concatenate([ink - k, k], axis=2).astype(np.uint8)  # ink, 255 = full
h, w = cmyk.shape[:2]

with tempfile.TemporaryDirectory() as tmp:
    csrc, exe = os.path.join(tmp, "ycck.c"), os.path.join(tmp, "ycck")
    with open(csrc, "w") as f:
        f.write(YCCK_C)
    subprocess.run(["cc", "-O2", "-o", exe, csrc, "-ljpeg"], check=True)
    stored = (255 - cmyk).tobytes()  # Adobe's inverted convention
    ycck = subprocess.run([exe], input=b"%d %d\n" % (w, h) + stored, stdout=subprocess.PIPE, check=True).stdout
with open(os.path.join(out, "ycck.jpg"), "wb") as f:
    f.write(ycck)
pil = Image.frombytes("CMYK", (w, h), cmyk.tobytes())
pil.save(os.path.join(out, "cmyk.jpg"), quality=90)
pil.save(os.path.join(out, "cmyk420.jpg"), quality=90, subsampling=2)

for name in ["cmyk", "cmyk420", "ycck"]:
    path = os.path.join(out, name + ".jpg")
    im = Image.open(path)
    assert im.mode == "CMYK", im.mode
    decoded = np.asarray(im.convert("RGB"), dtype=np.float32)
    np.save(os.path.join(out, name + ".npy"), decoded)
    print(path, decoded.shape, "adobe_transform", im.info.get("adobe_transform"))
    im = Image.open(path)
    im.draft(None, (w // 2, h // 2))  # scale 2; libjpeg rounds the size up
    half = np.asarray(im.convert("RGB"), dtype=np.float32)
    assert half.shape == ((h + 1) // 2, (w + 1) // 2, 3), half.shape
    np.save(os.path.join(out, name + "_half.npy"), half)
