#!/usr/bin/env python3
"""bench_eval.py — feature extraction speed of the evaluation programs: poa's inference forward
(bench_eval: poa_features_run, what poa-eval-knn runs per batch) next to a PyTorch forward of the
same extracted ViT (tests/reference/vit_ref.py, the weights loaded from the extracted .h5 with
h5py), images per second, both at their best thread setting.

For each model (the demo's 128x6 at 32 px, batch 128; ViT-S/16 at 224 px, batch 16, both from
seeded checkpoints written by tests/modelio/ckpt_write_seeded and cut by poa-extract), --rounds
interleaved rounds, each timing poa with 1 and 2 OpenMP threads and PyTorch with 1 and 2
threads (median of --reps batches after a warm-up, best thread setting kept per round); the
figures printed are medians over the rounds.  The last line of each model is
`RESULT model=… poa_img_s=… torch_img_s=… ratio_torch=…` (ratio = poa / PyTorch).

usage: bench_eval.py --build BUILD_DIR --src SRC_DIR [--out DIR] [--reps 5] [--rounds 3]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import h5py
import numpy as np
import torch

SEEDED = {
    "demo": ([], 128),
    "vit_small": (["student.arch=vit_small", "student.min_embed_dim=192",
                   "student.max_embed_dim=384", "student.min_depth=6", "student.max_depth=12",
                   "student.head_dim=64", "student.patch_size=16", "crops.global_crops_size=224",
                   "crops.local_crops_size=96"], 16),
}


def make_model(args, name):
    """The intact network of a seeded checkpoint of the configuration, extracted (.h5)."""
    overrides, _ = SEEDED[name]
    run, xdir = os.path.join(args.out, name, "run"), os.path.join(args.out, name, "x")
    if not os.path.exists(os.path.join(run, "checkpoint_0000001.h5")):
        subprocess.run([os.path.join(args.build, "tests/modelio/ckpt_write_seeded"), run,
                        os.path.join(args.src, "configs/demo.yaml"), "7", "1"] + overrides,
                       check=True, stdout=subprocess.DEVNULL)
    files = [f for f in os.listdir(xdir)] if os.path.isdir(xdir) else []
    if not any(f.endswith(".h5") for f in files):
        subprocess.run([os.path.join(args.build, "src/poa-extract"), "--checkpoint", run,
                        "--output", xdir, "--arch", name, "--format", "h5"], check=True,
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
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                    "reference"))
    import vit_ref
    with h5py.File(path, "r") as f:
        meta = {k: f.attrs[k] for k in f.attrs}
        sd = {k: torch.from_numpy(f["state_dict"][k][...]) for k in f["state_dict"]}
    model = vit_ref.VisionTransformer.from_metadata(meta)
    model.load_state_dict(sd, strict=True)
    return model.eval(), int(meta["img_size"])


def torch_img_s(model, size, batch, threads, reps):
    torch.set_num_threads(threads)
    x = torch.rand(batch, 3, size, size) * 4 - 2
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(reps):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--out", default="bench/out-eval")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="demo,vit_small")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs); "
          f"torch {torch.__version__}")
    for name in args.models.split(","):
        path = make_model(args, name)
        _, batch = SEEDED[name]
        model, size = torch_model(path)
        poa, ref = [], []
        for r in range(args.rounds):
            p = {t: poa_img_s(args, path, batch, t) for t in (1, 2)}
            q = {t: torch_img_s(model, size, batch, t, args.reps) for t in (1, 2)}
            bp, bq = max(p, key=lambda t: p[t][0]), max(q, key=q.get)
            poa.append(p[bp][0])
            ref.append(q[bq])
            print(f"round {r + 1} {name}: poa {p[1][0]:.1f} / {p[2][0]:.1f} img/s (1 / 2 threads), "
                  f"torch {q[1]:.1f} / {q[2]:.1f} img/s; load {os.getloadavg()[0]:.2f}", flush=True)
        a, b = statistics.median(poa), statistics.median(ref)
        print(f"RESULT model={name} size={size} batch={batch} poa_img_s={a:.2f} "
              f"torch_img_s={b:.2f} ratio_torch={a / b:.3f}", flush=True)


if __name__ == "__main__":
    main()
