#!/usr/bin/env python3
"""bench_loader.py — `make bench-loader`: the poa loader next to torchvision/PIL's DINOv2
multi-crop transform on the same JPEG files, in the same run, plus poa-pack throughput.

Cases: (1) ImageNet-sized JPEGs (about 500x375, quality 90) made from crops and rescales of the
photographs in scikit-image's data folder (Debian python3-skimage), 2 global 224 + 8 local 96 crops;
(2) the demo's Fashion-MNIST images (28x28) with 2 global 32 + 4 local 16 crops.  poa with 1 and 2
threads; torchvision in one process with one torch thread (per core).  The last line is
RESULT img_s_per_core=... torchvision_img_s_per_core=... ratio_torchvision=... pack_img_s=...
for the ImageNet-sized case.  "Per core" = images per CPU-second of the process (getrusage /
time.process_time), so the figures do not depend on what else runs on a shared machine; wall-clock
rates are printed next to them.
"""
import argparse, os, re, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--build", required=True, help="configured build tree (poa-pack, bench/bench_loader)")
ap.add_argument("--out", required=True, help="scratch folder")
ap.add_argument("--images", type=int, default=192)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--batches", type=int, default=6)
ap.add_argument("--rounds", type=int, default=2)
ap.add_argument("--tv-images", type=int, default=96, help="images timed through torchvision")
args = ap.parse_args()
os.makedirs(args.out, exist_ok=True)
bench = os.path.join(args.build, "bench", "bench_loader")
pack = os.path.join(args.build, "poa-pack")
prep = os.path.join(args.build, "poa-prep-fmnist")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_loader.py: {' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


# ------------------------------------------------------------------ data
def make_imagenet_like(root, n):
    """JPEGs of about 500x375 (some portrait 375x500), quality 90, from scikit-image's photos."""
    import numpy as np
    from PIL import Image
    try:
        import skimage
    except ImportError:
        sys.exit("bench_loader.py: scikit-image is needed for the benchmark photographs "
                 "(apt-get install python3-skimage)")
    names = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
             "retina.jpg", "hubble_deep_field.jpg", "ihc.png", "immunohistochemistry.png"]
    photos = []
    for nm in names:
        p = os.path.join(skimage.data_dir, nm)
        if os.path.exists(p):
            photos.append(Image.open(p).convert("RGB"))
    if not photos:
        sys.exit(f"bench_loader.py: no photographs in {skimage.data_dir}")
    rng = np.random.default_rng(0)
    for c in range(4):
        os.makedirs(os.path.join(root, "train", f"n{c:08d}"), exist_ok=True)
    with open(os.path.join(root, "labels.txt"), "w") as f:
        f.writelines(f"n{c:08d},photo class {c}\n" for c in range(4))
    for i in range(n):
        im = photos[i % len(photos)]
        W, H = (500, 375) if i % 4 else (375, 500)
        s = max(W / im.width, H / im.height) * rng.uniform(1.0, 1.6)
        im2 = im.resize((max(W, round(im.width * s)), max(H, round(im.height * s))), Image.BICUBIC)
        x = int(rng.integers(0, im2.width - W + 1))
        y = int(rng.integers(0, im2.height - H + 1))
        crop = im2.crop((x, y, x + W, y + H))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        crop.save(os.path.join(root, "train", f"n{i % 4:08d}", f"n{i % 4:08d}_{i}.JPEG"), quality=90)


def files_of(root):
    out = []
    for d, _, fs in sorted(os.walk(os.path.join(root, "train"))):
        out += [os.path.join(d, f) for f in sorted(fs) if f.endswith(".JPEG")]
    return out


# ------------------------------------------------------------------ torchvision reference
def torchvision_rate(files, gsize, lsize, nlocal, n):
    import torch
    from PIL import Image
    from torchvision import transforms as T
    torch.set_num_threads(1)
    bic = T.InterpolationMode.BICUBIC
    norm = T.Compose([T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    color = [T.RandomHorizontalFlip(0.5),
             T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8), T.RandomGrayscale(0.2)]
    blur = T.GaussianBlur(9, (0.1, 2.0))
    # docs/algorithm.md §9.1, blur probabilities as executed by the official code: 0.0 / 0.9 / 0.5.
    g1 = T.Compose([T.RandomResizedCrop(gsize, scale=(0.32, 1.0), interpolation=bic), *color, norm])
    g2 = T.Compose([T.RandomResizedCrop(gsize, scale=(0.32, 1.0), interpolation=bic), *color,
                    T.RandomApply([blur], p=0.9), T.RandomSolarize(128, p=0.2), norm])
    lo = T.Compose([T.RandomResizedCrop(lsize, scale=(0.05, 0.32), interpolation=bic), *color,
                    T.RandomApply([blur], p=0.5), norm])

    def one(path):
        img = Image.open(path).convert("RGB")
        return [g1(img), g2(img)] + [lo(img) for _ in range(nlocal)]

    for p in files[:4]:  # warm-up
        one(p)
    best, best_cpu = 0, 0
    for _ in range(args.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        crops = [one(files[i % len(files)]) for i in range(n)]
        torch.stack([c[0] for c in crops])  # collate of one view, as a loader would
        best = max(best, n / (time.perf_counter() - t0))
        best_cpu = max(best_cpu, n / (time.process_time() - c0))
    return best, best_cpu


# ------------------------------------------------------------------ poa
def poa_rate(data, threads, gsize, lsize, nlocal, patch):
    txt = run([bench, "--data", data, "--threads", str(threads), "--batch", str(args.batch),
               "--batches", str(args.batches), "--rounds", str(args.rounds), "--global", str(gsize),
               "--local", str(lsize), "--nlocal", str(nlocal), "--patch", str(patch)])
    for line in txt.splitlines():
        if not line.startswith("BENCH"):
            print("   ", line)
    return (float(re.search(r"img_s=([0-9.]+)", txt).group(1)),
            float(re.search(r"img_per_cpu_s=([0-9.]+)", txt).group(1)))


def case(name, root, packed, gsize, lsize, nlocal, patch, tv):
    (w1, c1), (w2, c2) = (poa_rate(packed, t, gsize, lsize, nlocal, patch) for t in (1, 2))
    nan = float("nan")
    tw, tc = torchvision_rate(files_of(root), gsize, lsize, nlocal, args.tv_images) if tv else (nan, nan)
    print(f"{name}: 2x{gsize} + {nlocal}x{lsize} crops")
    print(f"  {'':28s} {'img/s (wall)':>13s} {'img per CPU-s':>14s}")
    print(f"  {'poa, 1 thread':28s} {w1:13.1f} {c1:14.1f}")
    print(f"  {'poa, 2 threads':28s} {w2:13.1f} {c2:14.1f}")
    print(f"  {'torchvision/PIL, 1 process':28s} {tw:13.1f} {tc:14.1f}")
    print(f"  ratio poa / torchvision per core (img per CPU-s): {c1 / tc:.2f} (1 thread), "
          f"{c2 / tc:.2f} (2 threads); wall clock, 1 thread: {w1 / tw:.2f}")
    return c1, tc


try:
    import torch, torchvision  # noqa: F401
    have_tv = True
except ImportError:
    have_tv = False
    print("bench_loader.py: torchvision not available, poa figures only")

print(f"machine: {os.cpu_count()} CPUs; {open('/proc/cpuinfo').read().split('model name')[1].split(chr(10))[0].strip(': ')}")
inet_root = os.path.join(args.out, "imagenet-like")
have = len(files_of(inet_root)) if os.path.isdir(inet_root) else 0
if have != args.images:
    run(["rm", "-rf", inet_root])
    make_imagenet_like(inet_root, args.images)
inet_packed = os.path.join(args.out, "imagenet-like-packed")
run(["rm", "-rf", inet_packed])
t0 = time.perf_counter()
log = run([pack, "--root", inet_root, "--output", inet_packed, "--splits", "train", "-j", "2"])
pack_s = time.perf_counter() - t0
pack_rate = args.images / pack_s
print(f"poa-pack: {args.images} ImageNet-sized JPEGs in {pack_s:.2f} s = {pack_rate:.1f} img/s "
      "(2 threads, every image decoded to check it, process start included)")

fm_root = os.path.join(args.out, "fmnist")
if not os.path.isdir(fm_root):
    run([prep, "--output", fm_root, "--limit", "2000"])
fm_packed = os.path.join(args.out, "fmnist-packed")
run(["rm", "-rf", fm_packed])
run([pack, "--root", fm_root, "--output", fm_packed, "--splits", "train", "-j", "2"])

r_i, t_i = case("ImageNet-sized (~500x375, q90)", inet_root, inet_packed, 224, 96, 8, 16, have_tv)
args.batches *= 4
args.tv_images *= 4
r_f, t_f = case("demo, Fashion-MNIST 28x28", fm_root, fm_packed, 32, 16, 4, 4, have_tv)
print(f"RESULT img_s_per_core={r_i:.1f} torchvision_img_s_per_core={t_i:.1f} "
      f"ratio_torchvision={r_i / t_i:.2f} pack_img_s={pack_rate:.1f}")
