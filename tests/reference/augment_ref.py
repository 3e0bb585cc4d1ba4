#!/usr/bin/env python3
"""augment_ref.py --out DIR — torchvision/PIL reference outputs for the C augmentation.

Writes test JPEGs, PIL's decoding of each, and for every augmentation op (docs/algorithm.md §9.1)
the torchvision 0.14 / Pillow result on explicit parameters, plus DIR/manifest.txt: one line per
case, "op key=value ...", naming the input and output files (raw uint8 HWC RGB, or float32 CHW
for normalised outputs).  tests/data/test_data_augment applies the same ops with the same
parameters in C and compares.  The random-crop geometry is checked by running torchvision's own
RandomResizedCrop.get_params with its random draws replaced by given values.
"""
import argparse, io, math, os, random, types

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--seed", type=int, default=1234)
args = ap.parse_args()
out = args.out
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(args.seed)
lines = []


def emit(op, **kw):
    lines.append(op + " " + " ".join(f"{k}={v}" for k, v in kw.items()))


def save_raw(name, arr):
    arr = np.ascontiguousarray(arr)
    arr.tofile(os.path.join(out, name))
    return name


def photo(w, h):
    """Photo-like content: smooth colour fields, edges, fine texture, saturated and dark areas."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0)
    g = 128 + 90 * np.cos((x + 2 * y) / 31.0)
    b = 60 + 190 * ((x // 13 + y // 11) % 2)
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    img[h // 3: h // 2, :, :] *= 0.15  # dark band
    img[:, w // 5: w // 4, 0] = 255     # saturated stripe
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(im, **kw):
    b = io.BytesIO()
    im.save(b, "JPEG", **kw)
    return b.getvalue()


# ------------------------------------------------------------------ decoding
sources = {
    "rgb420": (photo(173, 131), dict(quality=90)),
    "rgb444": (photo(64, 80), dict(quality=95, subsampling=0)),
    "rgb422": (photo(90, 50), dict(quality=85, subsampling=1)),
    "progressive": (photo(120, 97), dict(quality=90, progressive=True)),
    "gray": (photo(77, 55).convert("L"), dict(quality=90)),
    "cmyk": (photo(45, 39).convert("CMYK"), dict(quality=90)),
    "fmnist": (photo(28, 28).convert("L"), dict(quality=95)),
}
decoded = {}
for name, (im, kw) in sources.items():
    data = jpeg_bytes(im, **kw)
    with open(os.path.join(out, f"{name}.jpg"), "wb") as f:
        f.write(data)
    rgb = Image.open(io.BytesIO(data)).convert("RGB")
    decoded[name] = rgb
    save_raw(f"{name}.rgb", np.asarray(rgb))
    emit("decode", jpg=f"{name}.jpg", w=rgb.width, h=rgb.height, ref=f"{name}.rgb")

base = decoded["rgb420"]
BW, BH = base.size


def u8(im):
    return np.asarray(im.convert("RGB"))


# ------------------------------------------------------------------ resize (crop + bicubic)
cases = [(0, 0, BW, BH, 224, 224), (10, 7, 150, 110, 96, 96), (0, 0, BW, BH, 32, 32),
         (5, 5, 20, 15, 224, 224), (3, 2, 30, 30, 30, 30), (40, 20, 97, 61, 64, 48),
         (0, 0, 1, 9, 16, 16), (100, 60, 73, 71, 16, 16), (12, 3, 150, 128, 224, 224),
         (1, 1, 130, 43, 96, 96)]
for k, (x, y, w, h, ow, oh) in enumerate(cases):
    res = F.resized_crop(base, y, x, h, w, [oh, ow], InterpolationMode.BICUBIC)
    emit("resize", src="rgb420.rgb", sw=BW, sh=BH, x=x, y=y, w=w, h=h, ow=ow, oh=oh,
         ref=save_raw(f"resize{k}.rgb", u8(res)))
fm = decoded["fmnist"]
for k, (x, y, w, h, ow) in enumerate([(0, 0, 28, 28, 32), (3, 5, 20, 17, 16), (0, 2, 9, 7, 32)]):
    res = F.resized_crop(fm, y, x, h, w, [ow, ow], InterpolationMode.BICUBIC)
    emit("resize", src="fmnist.rgb", sw=28, sh=28, x=x, y=y, w=w, h=h, ow=ow, oh=ow,
         ref=save_raw(f"resize_fm{k}.rgb", u8(res)))

# ------------------------------------------------------------------ per-op cases on a 96 px crop
crop = F.resized_crop(base, 10, 7, 110, 150, [96, 96], InterpolationMode.BICUBIC)
save_raw("crop96.rgb", u8(crop))
emit("hflip", src="crop96.rgb", sw=96, sh=96, ref=save_raw("hflip.rgb", u8(F.hflip(crop))))
for f in [0.6, 0.7371, 1.0, 1.2, 1.4, float(np.float32(0.93))]:
    emit("brightness", src="crop96.rgb", sw=96, sh=96, f=repr(f),
         ref=save_raw(f"bright_{f}.rgb", u8(F.adjust_brightness(crop, f))))
    emit("contrast", src="crop96.rgb", sw=96, sh=96, f=repr(f),
         ref=save_raw(f"contrast_{f}.rgb", u8(F.adjust_contrast(crop, f))))
for f in [0.8, 0.95, 1.0, 1.13, 1.2]:
    emit("saturation", src="crop96.rgb", sw=96, sh=96, f=repr(f),
         ref=save_raw(f"sat_{f}.rgb", u8(F.adjust_saturation(crop, f))))
for f in [-0.1, -0.0999, -0.05, -0.001, 0.0, 0.0031, 0.05, 0.0999, 0.1]:
    emit("hue", src="crop96.rgb", sw=96, sh=96, f=repr(f),
         ref=save_raw(f"hue_{f}.rgb", u8(F.adjust_hue(crop, f))))
emit("grayscale", src="crop96.rgb", sw=96, sh=96,
     ref=save_raw("grayscale_op.rgb", u8(F.rgb_to_grayscale(crop, num_output_channels=3))))
emit("solarize", src="crop96.rgb", sw=96, sh=96, ref=save_raw("solar.rgb", u8(F.solarize(crop, 128))))
for s in [0.1, 0.5, 1.0, 1.3, 2.0, float(np.float32(1.7123))]:
    emit("blur", src="crop96.rgb", sw=96, sh=96, sigma=repr(s),
         ref=save_raw(f"blur_{s}.rgb", u8(F.gaussian_blur(crop, [9, 9], [s, s]))))
norm = F.normalize(F.to_tensor(crop), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
emit("normalize", src="crop96.rgb", sw=96, sh=96, ref=save_raw("norm.f32", norm.numpy().astype(np.float32)))

# ------------------------------------------------------------------ RandomResizedCrop geometry
class Draws:
    """Stands in for torch in torchvision.transforms.transforms while get_params runs: the
    uniform_ and randint calls return the given values, everything else is torch."""

    def __init__(self, uniforms, ints):
        self.u, self.i = list(uniforms), list(ints)

    def __getattr__(self, name):
        return getattr(torch, name)

    def empty(self, *a, **k):
        owner = self

        class _T:
            def uniform_(self, lo, hi):
                return torch.tensor([owner.u.pop(0)], dtype=torch.float32)

        return _T()

    def randint(self, lo, hi, size):
        return torch.tensor([lo + int(math.floor(self.i.pop(0) * (hi - lo)))])


tt = torchvision.transforms.transforms
for k in range(60):
    W, H = [(500, 375), (173, 131), (28, 28), (40, 400), (400, 40), (96, 96)][k % 6]
    scale = [(0.32, 1.0), (0.05, 0.32), (0.9, 1.0)][k % 3]
    lr = np.log(np.array([3 / 4, 4 / 3], np.float32))
    area = rng.uniform(scale[0], scale[1], 10).astype(np.float32)
    logr = rng.uniform(lr[0], lr[1], 10).astype(np.float32)
    if k % 10 == 9:  # force the fallback: a very tall/wide image, every attempt too large
        W, H = [(40, 400), (400, 40)][(k // 10) % 2]
        area[:] = np.float32(1.0)
    ut, ul = rng.random(), rng.random()
    uniforms = [float(v) for pair in zip(area, logr) for v in pair]
    saved = tt.torch
    tt.torch = Draws(uniforms, [ut, ul])
    try:
        i, j, h, w = T.RandomResizedCrop.get_params(Image.new("RGB", (W, H)), list(scale), [3 / 4, 4 / 3])
    finally:
        tt.torch = saved
    emit("rrc", W=W, H=H, area=",".join(repr(float(v)) for v in area),
         logr=",".join(repr(float(v)) for v in logr), ut=repr(ut), ul=repr(ul),
         top=i, left=j, height=h, width=w)

# ------------------------------------------------------------------ whole crops
def pipeline(img, p):
    out = F.resized_crop(img, p["top"], p["left"], p["height"], p["width"], [p["size"], p["size"]],
                         InterpolationMode.BICUBIC)
    if p["flip"]:
        out = F.hflip(out)
    if p["jitter"]:
        for op in p["order"]:
            if op == 0:
                out = F.adjust_brightness(out, p["b"])
            elif op == 1:
                out = F.adjust_contrast(out, p["c"])
            elif op == 2:
                out = F.adjust_saturation(out, p["s"])
            else:
                out = F.adjust_hue(out, p["h"])
    if p["gray"]:
        out = F.rgb_to_grayscale(out, num_output_channels=3)
    if p["blur"]:
        out = F.gaussian_blur(out, [9, 9], [p["sigma"], p["sigma"]])
    if p["solarize"]:
        out = F.solarize(out, 128)
    return F.normalize(F.to_tensor(out), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def f32(lo, hi):
    return float(np.float32(rng.uniform(lo, hi)))


for k in range(48):
    name = ["rgb420", "progressive", "gray", "cmyk", "fmnist", "rgb444"][k % 6]
    img = decoded[name]
    W, H = img.size
    size = [224, 96, 32, 16][k % 4]
    w = int(rng.integers(max(1, W // 4), W + 1))
    h = int(rng.integers(max(1, H // 4), H + 1))
    p = dict(top=int(rng.integers(0, H - h + 1)), left=int(rng.integers(0, W - w + 1)), height=h,
             width=w, size=size, flip=int(rng.random() < 0.5), jitter=int(rng.random() < 0.8),
             order=[int(v) for v in rng.permutation(4)], b=f32(0.6, 1.4), c=f32(0.6, 1.4),
             s=f32(0.8, 1.2), h=f32(-0.1, 0.1), gray=int(rng.random() < 0.2),
             blur=int(rng.random() < 0.5), sigma=f32(0.1, 2.0), solarize=int(rng.random() < 0.3))
    ref = pipeline(img, p).numpy().astype(np.float32)
    kv = {key: (",".join(map(str, v)) if isinstance(v, list) else repr(v)) for key, v in p.items()}
    emit("pipeline", src=f"{name}.rgb", sw=W, sh=H, **kv, ref=save_raw(f"pipe{k}.f32", ref))

# ------------------------------------------------------------------ iBOT mask counts (float32)
for n_masked in [1, 2, 7, 25, 32, 50, 100, 128]:
    probs = torch.linspace(0.1, 0.5, n_masked + 1)
    emit("linspace", steps=n_masked + 1, values=",".join(repr(float(v)) for v in probs))
    for k in range(min(n_masked, 6)):
        for u in [0.0, 0.25, 0.5, 0.999999, float(rng.random()), float(rng.random())]:
            for N in [196, 16, 256]:
                lo, hi = probs[k], probs[k + 1]
                val = lo + (hi - lo) * u          # random.uniform(lo, hi) with tensors
                emit("masktarget", N=N, steps=n_masked + 1, k=k, u=repr(u), target=int(N * val))

with open(os.path.join(out, "manifest.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"augment_ref.py: {len(lines)} cases in {out}/manifest.txt (torch {torch.__version__}, "
      f"torchvision {torchvision.__version__}, Pillow {Image.__version__})")
