#!/usr/bin/env python3
"""bench_loader.py — `make bench-loader`: the poa loader next to torchvision/PIL's DINOv2
multi-crop transform on the same JPEG files, in the same run, plus poa-pack throughput.

Cases: (1) ImageNet-sized JPEGs (about 500x375, quality 90) made from crops and rescales of the
photographs in scikit-image's data folder (Debian python3-skimage), 2 global 224 + 8 local 96 crops;
(2) the demo's Fashion-MNIST images (28x28) with 2 global 32 + 4 local 16 crops.  --rounds
interleaved rounds, each timing poa with 1 and 2 threads and torchvision in one process at every
combination of PyTorch's intra-op threads (torch.set_num_threads) and OpenBLAS's threads
(OPENBLAS_NUM_THREADS), each 1 or 2 -- every combination in a process of its own (this script
with --torchvision-worker), since OPENBLAS_NUM_THREADS is read when OpenBLAS loads and
torch.set_num_threads does not reach OpenBLAS's pool.  A setting's figure is the median over the
rounds.  The headline is per core: images per CPU-second of the process (getrusage /
time.process_time), which depends least on what else runs on a shared machine; each side's best
setting by that figure is compared with the other's, and the output names both.  Wall-clock
rates (best against best) are printed too.  The last line is
RESULT img_s_per_core=... threads=... torchvision_img_s_per_core=... torchvision_best=intraI_blasB
ratio_torchvision=... pack_img_s=...  for the ImageNet-sized case (threads: poa's best setting).
"""
import argparse, json, os, re, statistics, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--build", help="configured build tree (poa-pack, bench/bench_loader)")
ap.add_argument("--out", help="scratch folder")
ap.add_argument("--images", type=int, default=192)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--batches", type=int, default=6)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--tv-images", type=int, default=96, help="images timed through torchvision")
# internal: one torchvision measurement in this process
ap.add_argument("--torchvision-worker", metavar="ROOT", help=argparse.SUPPRESS)
ap.add_argument("--intra", type=int, default=1, help=argparse.SUPPRESS)
ap.add_argument("--crops", default="224,96,8", help=argparse.SUPPRESS)
args = ap.parse_args()


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
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
def torchvision_worker(root, gsize, lsize, nlocal, n, intra):
    """Runs in its own process with OPENBLAS_NUM_THREADS already set; prints one JSON line."""
    import ctypes
    import torch
    from PIL import Image
    from torchvision import transforms as T
    torch.set_num_threads(intra)
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

    files = files_of(root)
    for p in files[:4]:  # warm-up
        one(p)
    t0, c0 = time.perf_counter(), time.process_time()
    crops = [one(files[i % len(files)]) for i in range(n)]
    torch.stack([c[0] for c in crops])  # collate of one view, as a loader would
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    try:
        blas = int(ctypes.CDLL("libopenblas.so.0").openblas_get_num_threads())
    except (OSError, AttributeError):
        blas = None
    print(json.dumps({"img_s": n / wall, "img_per_cpu_s": n / cpu, "intra": torch.get_num_threads(),
                      "blas": blas}))


def torchvision_rate(root, gsize, lsize, nlocal, n, intra, blas):
    """(img/s, img per CPU-s) of torchvision with `intra` torch threads and `blas` OpenBLAS
    threads, in a fresh process."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(blas), OMP_NUM_THREADS=str(intra))
    txt = run([sys.executable, os.path.abspath(__file__), "--torchvision-worker", root,
               "--intra", str(intra), "--crops", f"{gsize},{lsize},{nlocal}",
               "--tv-images", str(n)], env)
    res = json.loads(txt.strip().splitlines()[-1])
    if res["intra"] != intra or res["blas"] not in (None, blas):
        sys.exit(f"bench_loader.py: torchvision worker ran with intra {res['intra']} / OpenBLAS "
                 f"{res['blas']} threads instead of {intra} / {blas}")
    return res["img_s"], res["img_per_cpu_s"]


# ------------------------------------------------------------------ poa
def poa_rate(data, threads, gsize, lsize, nlocal, patch):
    txt = run([bench, "--data", data, "--threads", str(threads), "--batch", str(args.batch),
               "--batches", str(args.batches), "--rounds", "1", "--global", str(gsize),
               "--local", str(lsize), "--nlocal", str(nlocal), "--patch", str(patch)])
    for line in txt.splitlines():
        if not line.startswith("BENCH"):
            print("   ", line)
    return (float(re.search(r"img_s=([0-9.]+)", txt).group(1)),
            float(re.search(r"img_per_cpu_s=([0-9.]+)", txt).group(1)))


def case(name, root, packed, gsize, lsize, nlocal, patch, tv):
    """Interleaved rounds of every setting; (poa's best per core, its setting, torchvision's best
    per core, its setting)."""
    settings = (1, 2)
    combos = [(i, b) for i in settings for b in settings] if tv else []
    keys = [("poa", n) for n in settings] + [("torchvision", c) for c in combos]
    rows = {k: [] for k in keys}
    for r in range(args.rounds):
        for n in settings:
            rows[("poa", n)].append(poa_rate(packed, n, gsize, lsize, nlocal, patch))
        for c in combos:
            rows[("torchvision", c)].append(
                torchvision_rate(root, gsize, lsize, nlocal, args.tv_images, *c))
        print(f"  round {r} done, load {os.getloadavg()[0]:.2f}", flush=True)
    wall = {k: statistics.median(x[0] for x in rows[k]) for k in keys}
    core = {k: statistics.median(x[1] for x in rows[k]) for k in keys}
    nan = float("nan")

    def best(side, figure):
        ks = [k for k in keys if k[0] == side]
        return max(ks, key=lambda k: figure[k]) if ks else None

    bp, bt = best("poa", core), best("torchvision", core)
    print(f"{name}: 2x{gsize} + {nlocal}x{lsize} crops, medians of {args.rounds} rounds")
    print(f"  {'':28s} {'img/s (wall)':>13s} {'img per CPU-s':>14s}")
    for k in keys:
        mark = " <- best per core" if k in (bp, bt) else ""
        print(f"  {k[0] + ' ' + setting_name(k):28s} {wall[k]:13.1f} {core[k]:14.1f}{mark}")
    t_core = core[bt] if bt else nan
    print(f"  per core, best against best: poa {setting_name(bp)} / torchvision "
          f"{setting_name(bt)} = {core[bp] / t_core:.2f}")
    wp, wt = best("poa", wall), best("torchvision", wall)
    if wt:
        print(f"  wall clock, best against best: poa {setting_name(wp)} / torchvision "
              f"{setting_name(wt)} = {wall[wp] / wall[wt]:.2f}")
    return core[bp], bp[1], t_core, setting_name(bt)


def setting_name(k):
    if k is None:
        return "none"
    return f"threads{k[1]}" if k[0] == "poa" else f"intra{k[1][0]}_blas{k[1][1]}"


if args.torchvision_worker:
    g, l, v = (int(x) for x in args.crops.split(","))
    torchvision_worker(args.torchvision_worker, g, l, v, args.tv_images, args.intra)
    sys.exit(0)
if not args.build or not args.out:
    ap.error("--build and --out are required")
os.makedirs(args.out, exist_ok=True)
bench = os.path.join(args.build, "bench", "bench_loader")
pack = os.path.join(args.build, "poa-pack")
prep = os.path.join(args.build, "poa-prep-fmnist")

try:
    import torch, torchvision  # noqa: F401
    have_tv = True
except ImportError:
    have_tv = False
    print("bench_loader.py: torchvision not available, poa figures only")

print(f"machine: {os.cpu_count()} CPUs; {open('/proc/cpuinfo').read().split('model name')[1].split(chr(10))[0].strip(' :' + chr(9))}; "
      f"load average (1, 5, 15 min) {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
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

r_i, n_i, t_i, b_i = case("ImageNet-sized (~500x375, q90)", inet_root, inet_packed, 224, 96, 8, 16,
                         have_tv)
args.batches *= 4
args.tv_images *= 4
case("demo, Fashion-MNIST 28x28", fm_root, fm_packed, 32, 16, 4, 4, have_tv)
print(f"load average at the end (1, 5, 15 min) {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
print(f"RESULT img_s_per_core={r_i:.1f} threads={n_i} torchvision_img_s_per_core={t_i:.1f} "
      f"torchvision_best={b_i} ratio_torchvision={r_i / t_i:.2f} pack_img_s={pack_rate:.1f}")
