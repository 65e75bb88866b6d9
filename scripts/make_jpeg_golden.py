#!/usr/bin/python3
"""JPEG decoding references for dataset/testdata/jpeg: a small crop of the
cat photo saved as JPEG in the layouts that matter (4:2:0, 4:2:2, 4:4:4,
progressive, greyscale, odd sizes), and each file decoded by PIL, with
libjpeg-turbo's defaults as dataset/jpeg.go (TensorFlow's decode_jpeg
defaults to the fast IDCT instead): RGB pixels as float32 .npy, HWC.

    /usr/bin/python3 scripts/make_jpeg_golden.py   (Debian: python3-pil python3-numpy)
"""
import os

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "..", "dataset", "testdata", "chelsea.png")
out = os.path.join(here, "..", "dataset", "testdata", "jpeg")
os.makedirs(out, exist_ok=True)

img = Image.open(src).convert("RGB").crop((120, 20, 380, 200)).resize((97, 65), Image.LANCZOS)
variants = {
    "420": dict(quality=90, subsampling=2),
    "422": dict(quality=90, subsampling=1),
    "444": dict(quality=95, subsampling=0),
    "progressive": dict(quality=85, subsampling=2, progressive=True),
    "grey": dict(quality=90),
}
for name, opts in variants.items():
    im = img.convert("L") if name == "grey" else img
    path = os.path.join(out, name + ".jpg")
    im.save(path, **opts)
    decoded = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    np.save(os.path.join(out, name + ".npy"), decoded)
    print(path, decoded.shape)
