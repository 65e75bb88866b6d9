#!/usr/bin/python3
"""WebP decoding references for dataset/testdata/webp: a small crop of the
cat photo saved as lossy WebP (odd and even sizes, with and without alpha)
and each file decoded by PIL (libwebp, which torchvision's ImageFolder reads
with): RGB pixels as float32 .npy, HWC.

    /usr/bin/python3 scripts/make_webp_golden.py   (Debian: python3-pil python3-numpy)
"""
import os

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "..", "dataset", "testdata", "chelsea.png")
out = os.path.join(here, "..", "dataset", "testdata", "webp")
os.makedirs(out, exist_ok=True)

img = Image.open(src).convert("RGB").crop((120, 20, 380, 200))
alpha = img.copy()
alpha.putalpha(Image.linear_gradient("L").resize(img.size))
variants = {
    "odd": img.resize((37, 23), Image.LANCZOS),
    "even": img.resize((36, 22), Image.LANCZOS),
    "alpha": alpha.resize((37, 23), Image.LANCZOS),
}
for name, im in variants.items():
    path = os.path.join(out, name + ".webp")
    im.save(path, quality=80)
    decoded = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    np.save(os.path.join(out, name + ".npy"), decoded)
    print(path, decoded.shape)
