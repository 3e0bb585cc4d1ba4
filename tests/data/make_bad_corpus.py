#!/usr/bin/env python3
"""make_bad_corpus.py ROOT — an ImageNet-layout folder with every kind of bad input poa-pack
must handle (see test_data_badinput.sh for what is expected of each file)."""
import io, os, random, sys

import numpy as np
from PIL import Image

root = sys.argv[1]
rng = np.random.default_rng(5)


def picture(w, h):
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 3 % 256], -1)
    a = a + rng.integers(-10, 10, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def jpeg(im, **kw):
    b = io.BytesIO()
    im.save(b, "JPEG", **kw)
    return b.getvalue()


def write(rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    return p


def twelve_bit(data):
    """An 8-bit baseline JPEG whose frame header claims 12-bit samples (SOF1, P = 12)."""
    d = bytearray(data)
    i = d.index(b"\xff\xc0")
    d[i + 1] = 0xC1
    d[i + 4] = 12
    return bytes(d)


os.makedirs(root, exist_ok=True)
with open(os.path.join(root, "labels.txt"), "w") as f:
    f.write('n001,"goldfish, Carassius auratus"\nn002,tabby\nn004,empty class\n')

base = picture(64, 48)
write("train/n001/n001_1.JPEG", jpeg(base, quality=90))
write("train/n001/n001_2.JPEG", jpeg(picture(40, 30).convert("L"), quality=90))
write("train/n001/n001_3.JPEG", jpeg(picture(33, 21).convert("CMYK"), quality=90))
write("train/n001/n001_4.JPEG", jpeg(picture(50, 70), quality=85, progressive=True))
write("train/n001/n001_5.JPEG", jpeg(picture(31, 17), quality=100, subsampling=0))
write("train/n001/n001_6.JPEG", twelve_bit(jpeg(base, quality=90)))
good = jpeg(picture(80, 60), quality=90)
write("train/n001/n001_7.JPEG", good[: len(good) * 6 // 10])            # truncated
write("train/n001/n001_8.JPEG", b"")                                    # zero bytes
png = io.BytesIO()
picture(20, 20).save(png, "PNG")
write("train/n001/n001_9.JPEG", png.getvalue())                         # PNG named .JPEG
write("train/n001/n001_10.JPEG", bytes(rng.integers(0, 256, 500, dtype=np.uint8)))  # noise
os.symlink("does-not-exist.JPEG", os.path.join(root, "train/n001/n001_11.JPEG"))   # dangling
os.mkfifo(os.path.join(root, "train/n001/n001_12.JPEG"))                           # FIFO
p = write("train/n001/n001_13.JPEG", jpeg(picture(24, 24), quality=90))
os.chmod(p, 0)                      # unreadable for users; root reads it anyway
write("train/n001/README.txt", b"not an image\n")
write("train/n001/n001_14.jpg", jpeg(picture(16, 16), quality=75))
write("train/n001/n001_15.JPEG", jpeg(picture(30, 20), quality=90) + b"trailing junk")
write("train/n001/sub/n001_16.JPEG", jpeg(picture(20, 30), quality=90))
# Markers, then bytes libjpeg reads as the end of a tables-only stream: the header parses, with
# no frame (the fuzzer's find, tests/fuzz/README.md "Findings").
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "regressions",
                       "jpeg", "tables-only-stream.jpg"), "rb") as f:
    write("train/n001/n001_17.JPEG", f.read())
write("train/n002/n002_1.JPEG", jpeg(picture(45, 45), quality=95))
write("train/n002/n002_2.png", png.getvalue())                          # a real PNG
write("train/n003/n003_1.JPEG", jpeg(picture(22, 33), quality=90))      # no labels.txt row
os.makedirs(os.path.join(root, "train/n004"), exist_ok=True)            # empty class folder
write("train/stray.JPEG", jpeg(picture(10, 10), quality=90))            # outside class folders
write("val/n001/ILSVRC2012_val_00000001.JPEG", jpeg(picture(64, 64), quality=90))
write("val/n002/ILSVRC2012_val_00000002.JPEG", jpeg(picture(48, 64).convert("L"), quality=90))
