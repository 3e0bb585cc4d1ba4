#!/usr/bin/env python3
"""bench_eval.py — feature extraction speed of the evaluation programs: poa's inference forward
(bench_eval: poa_features_run, what poa-eval-knn runs per batch) next to a PyTorch forward of the
same extracted ViT (tests/reference/vit_ref.py, the weights loaded from the extracted .h5 with
h5py), images per second, both at their best thread setting.

For each model (the demo's 128x6 at 32 px, batch 128; ViT-S/16 at 224 px, batch 16, both from
seeded checkpoints written by tests/modelio/ckpt_write_seeded and cut by poa-extract), --rounds
interleaved rounds, each timing poa with 1 and 2 OpenMP threads and PyTorch at every
combination of its intra-op threads (torch.set_num_threads) and OpenBLAS's own threads
(OPENBLAS_NUM_THREADS) in {1, 2}, each PyTorch combination in its own process (OpenBLAS reads
its thread count when it loads, and set_num_threads does not reach it).  Each timing is the
median of --reps batches after a warm-up; per round the best setting of each side is kept; the
figures printed are medians over the rounds, and the PyTorch setting that won most rounds is
named.  The last line of each model is `RESULT model=… poa_img_s=… torch_img_s=…
torch_best=intraI_blasB ratio_torch=…` (ratio = poa / PyTorch, best against best).

usage: bench_eval.py --build BUILD_DIR --src SRC_DIR [--out DIR] [--reps 5] [--rounds 3]
"""
import argparse
import collections
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

import h5py

# model → (configuration overrides of configs/demo.yaml, batch, what poa-extract cuts out)
SEEDED = {
    "demo": ([], 128, ["--subnet", "128x6"]),
    "vit_small": (["student.arch=vit_small", "student.min_embed_dim=192",
                   "student.max_embed_dim=384", "student.min_depth=6", "student.max_depth=12",
                   "student.head_dim=64", "student.patch_size=16", "crops.global_crops_size=224",
                   "crops.local_crops_size=96"], 16, ["--arch", "vit_small"]),
}


def make_model(args, name):
    """The intact network of a seeded checkpoint of the configuration, extracted (.h5)."""
    overrides, _, cut = SEEDED[name]
    run, xdir = os.path.join(args.out, name, "run"), os.path.join(args.out, name, "x")
    if not os.path.exists(os.path.join(run, "checkpoint_0000001.h5")):
        subprocess.run([os.path.join(args.build, "tests/modelio/ckpt_write_seeded"), run,
                        os.path.join(args.src, "configs/demo.yaml"), "7", "1"] + overrides,
                       check=True, stdout=subprocess.DEVNULL)
    files = [f for f in os.listdir(xdir)] if os.path.isdir(xdir) else []
    if not any(f.endswith(".h5") for f in files):
        subprocess.run([os.path.join(args.build, "src/poa-extract"), "--checkpoint", run,
                        "--output", xdir, "--format", "h5"] + cut, check=True,
                       stdout=subprocess.DEVNULL)
        files = os.listdir(xdir)
    return os.path.join(xdir, [f for f in files if f.endswith(".h5")][0])


def poa_img_s(args, path, batch, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([os.path.join(args.build, "bench/bench_eval"), "--model", path,
                          "--batch", str(batch), "--reps", str(args.reps)],
                         check=True, capture_output=True, text=True, env=env).stdout
    line = [l for l in out.splitlines() if l.startswith("C ")][-1]
    return float(line.split("img_s=")[1]), line


def torch_model(path):
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                    "reference"))
    sys.dont_write_bytecode = True  # never write into a (possibly read-only) source tree
    import vit_ref
    with h5py.File(path, "r") as f:
        meta = {k: f.attrs[k] for k in f.attrs}
        sd = {k: torch.from_numpy(f["state_dict"][k][...]) for k in f["state_dict"]}
    model = vit_ref.VisionTransformer.from_metadata(meta)
    model.load_state_dict(sd, strict=True)
    return model.eval(), int(meta["img_size"])


def blas_threads():
    """OpenBLAS's thread count in this process (None without OpenBLAS)."""
    try:
        return int(ctypes.CDLL("libopenblas.so.0").openblas_get_num_threads())
    except (OSError, AttributeError):
        return None


def torch_worker(path, batch, intra, reps):
    """Runs in its own process with OPENBLAS_NUM_THREADS already set; prints one JSON line."""
    import torch
    torch.set_num_threads(intra)
    model, size = torch_model(path)
    x = torch.rand(batch, 3, size, size) * 4 - 2
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(reps):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    print(json.dumps({"img_s": batch / statistics.median(times), "intra": torch.get_num_threads(),
                      "blas": blas_threads(), "torch": torch.__version__, "size": size}))


def torch_img_s(path, batch, intra, blas, reps):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(blas), OMP_NUM_THREADS=str(intra))
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", path,
                          "--batch", str(batch), "--intra", str(intra), "--reps", str(reps)],
                         env=env, check=True, capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    if res["intra"] != intra or res["blas"] not in (None, blas):
        sys.exit(f"bench_eval.py: PyTorch worker ran with intra {res['intra']} / OpenBLAS "
                 f"{res['blas']} threads instead of {intra} / {blas}")
    return res


def combo_name(c):
    return f"intra{c[0]}_blas{c[1]}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build")
    ap.add_argument("--src")
    ap.add_argument("--out", default="bench/out-eval")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="demo,vit_small")
    ap.add_argument("--torch-worker", metavar="MODEL_H5", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--intra", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        torch_worker(args.torch_worker, args.batch, args.intra, args.reps)
        return
    if not args.build or not args.src:
        ap.error("--build and --src are required")
    os.makedirs(args.out, exist_ok=True)
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    combos = [(i, b) for i in (1, 2) for b in (1, 2)]
    for name in args.models.split(","):
        path = make_model(args, name)
        _, batch, _ = SEEDED[name]
        poa, ref, wins, size, version = [], [], collections.Counter(), None, None
        for r in range(args.rounds):
            p = {t: poa_img_s(args, path, batch, t) for t in (1, 2)}
            q = {c: torch_img_s(path, batch, c[0], c[1], args.reps) for c in combos}
            size, version = q[combos[0]]["size"], q[combos[0]]["torch"]
            bp, bq = max(p, key=lambda t: p[t][0]), max(q, key=lambda c: q[c]["img_s"])
            poa.append(p[bp][0])
            ref.append(q[bq]["img_s"])
            wins[bq] += 1
            print(f"round {r + 1} {name}: poa {p[1][0]:.1f} / {p[2][0]:.1f} img/s (1 / 2 threads), "
                  "torch " + " ".join(f"{combo_name(c)}={q[c]['img_s']:.1f}" for c in combos)
                  + f" img/s (torch {version}); load {os.getloadavg()[0]:.2f}", flush=True)
        a, b = statistics.median(poa), statistics.median(ref)
        best = combo_name(wins.most_common(1)[0][0])
        print(f"RESULT model={name} size={size} batch={batch} poa_img_s={a:.2f} "
              f"torch_img_s={b:.2f} torch_best={best} ratio_torch={a / b:.3f}", flush=True)


if __name__ == "__main__":
    main()
