#!/usr/bin/env python3
"""bench_step.py — the complete POA training step in PyTorch next to poa's C step.

The PyTorch step is tests/reference/step_torch.py's on the CPU in float32 (poa_model.py's
official module tree, loss_ref.py's official loss composition, batch-subset drop path 0.2,
iBOT on), with the official optimizer set-up: AdamW over fused parameter groups (foreach),
clip_grad_norm_ per module, foreach EMA.  For each config it runs --reps interleaved rounds, so
that the load of a shared machine hits every setting alike; a round times one step of
  * PyTorch at every combination of its intra-op threads (torch.set_num_threads) and OpenBLAS's
    threads (OPENBLAS_NUM_THREADS), each 1 or 2.  torch.set_num_threads does not reach
    OpenBLAS's own pool and OPENBLAS_NUM_THREADS is read when OpenBLAS loads, so each
    combination runs in a process of its own (this script with --torch-worker: set-up, one
    warm-up step, one timed step);
  * poa with 1 and 2 threads: two bench_step processes in --serve mode (OMP_NUM_THREADS 1 and
    2), warmed up once, each timing OpenBLAS's sgemm on as many threads (wall clock) before
    every step: frac_sgemm = the step's GFLOP/s over that sgemm's, same thread count, same run.
A setting's figure is the median over the rounds; each side's best setting (highest median
img/s) is compared with the other's best, and the output says which settings won.
"median_round_ratio" is the median over rounds of (best PyTorch time / best poa time), the
figure least sensitive to a changing load.  The last lines are the C benchmark's RESULT lines for
its best thread count (threads=…) next to the best PyTorch figure, with torch_best=intraI_blasB.

usage: bench_step.py --c-bench PATH [--reps 3] [--configs demo,vit_base]
"""

import argparse
import ctypes
import json
import math
import os
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
from step_torch import CONFIGS, TorchStep, middle_subnet  # noqa: E402

# config → (images per step, local crops); the elastic sub-network is the middle of the ranges
SETUPS = {"demo": (32, 8), "vit_base": (2, 8)}


def torch_worker(arch, intra, steps):
    """Runs in its own process with OPENBLAS_NUM_THREADS already set: one warm-up step, then
    `steps` timed steps; prints one JSON line (wall and process CPU seconds per step)."""
    torch.set_num_threads(intra)
    B, V = SETUPS[arch]
    st = TorchStep(arch, B, V)
    walls, cpus = [], []
    for k in range(steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = st.step()
        assert math.isfinite(loss)
        if k > 0:
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    print(json.dumps({"wall_s": walls, "cpu_s": cpus, "intra": torch.get_num_threads(),
                      "blas": blas_threads()}))


def blas_threads():
    """OpenBLAS's thread count in this process (None without OpenBLAS)."""
    try:
        return int(ctypes.CDLL("libopenblas.so.0").openblas_get_num_threads())
    except (OSError, AttributeError):
        return None


def torch_step(arch, intra, blas):
    """(wall s, process CPU s) of one timed PyTorch step in a fresh process."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(blas), OMP_NUM_THREADS=str(intra))
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", arch,
                          "--intra", str(intra)], env=env, check=True, capture_output=True,
                         text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    if res["intra"] != intra or res["blas"] not in (None, blas):
        sys.exit(f"bench_step.py: PyTorch worker ran with intra {res['intra']} / OpenBLAS "
                 f"{res['blas']} threads instead of {intra} / {blas}")
    return res["wall_s"][0], res["cpu_s"][0]


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def start_c(args, arch, threads):
    B, V = SETUPS[arch]
    w, d = middle_subnet(CONFIGS[arch])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return subprocess.Popen([args.c_bench, "--config", arch, "--batch", str(B), "--local", str(V),
                             "--width", str(w), "--depth", str(d), "--warmup", "1", "--serve"],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def c_step(proc):
    """(wall s, process CPU s, sgemm GFLOP/s) of one poa step."""
    proc.stdin.write("step\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line.startswith("STEP"):
        sys.exit(f"bench_step: unexpected output {line!r}")
    return tuple(float(x) for x in line.split()[1:4])


def name(key):
    side, s = key
    return f"intra{s[0]}_blas{s[1]}" if side == "torch" else f"threads{s}"


def run_config(arch, args):
    """Interleaved rounds (every PyTorch combination, poa with 1 and 2 threads) so that the load
    of a shared machine hits all of them alike; the C processes stay up between their steps
    (--serve)."""
    B, V = SETUPS[arch]
    w, d = middle_subnet(CONFIGS[arch])
    settings = sorted({1, args.threads})
    combos = [(i, b) for i in settings for b in settings]
    keys = [("torch", c) for c in combos] + [("poa", n) for n in settings]
    procs = {n: start_c(args, arch, n) for n in settings}
    print(f"BLAS: OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}", flush=True)
    rows = []
    for r in range(args.reps):
        row = {}
        for c in combos:
            row[("torch", c)] = torch_step(arch, *c)
        for n in reversed(settings):
            row[("poa", n)] = c_step(procs[n])
        rows.append(row)
        print(f"  {arch} round {r}: "
              + " ".join(f"{name(k)} {v[0]:.3f}s (cpu {v[1]:.3f}s)" for k, v in row.items())
              + f" | load {os.getloadavg()[0]:.2f}", flush=True)
    img_s = {k: B / median([row[k][0] for row in rows]) for k in keys}
    cpu_s = {k: median([row[k][1] for row in rows]) for k in keys}
    best_torch = max((k for k in keys if k[0] == "torch"), key=lambda k: img_s[k])
    best_poa = max((k for k in keys if k[0] == "poa"), key=lambda k: img_s[k])
    round_ratio = median([min(x[k][0] for k in keys if k[0] == "torch") /
                          min(x[k][0] for k in keys if k[0] == "poa") for x in rows])
    print(f"{arch}: batch {B}, local {V}, elastic {w}x{d}, torch {torch.__version__}, medians of "
          f"{args.reps} rounds")
    print(f"  {'side':6s} {'setting':13s} {'img/s':>8s} {'CPU s/step':>11s} {'CPU/wall':>9s}")
    for k in keys:
        wall = B / img_s[k]
        mark = " <- best" if k in (best_torch, best_poa) else ""
        print(f"  {k[0]:6s} {name(k):13s} {img_s[k]:8.3f} {cpu_s[k]:11.3f} "
              f"{cpu_s[k] / wall:9.2f}{mark}")
    print(f"  best against best: poa {name(best_poa)} / torch {name(best_torch)} = "
          f"{img_s[best_poa] / img_s[best_torch]:.3f}; median_round_ratio={round_ratio:.3f}")
    # process CPU time per step of the single-threaded settings: the work each side does, the
    # least load-sensitive figure on a shared machine
    one_t, one_p = ("torch", (1, 1)), ("poa", 1)
    print(f"cpu_s_per_step config={arch} torch_1t={cpu_s[one_t]:.3f} poa_1t={cpu_s[one_p]:.3f} "
          f"cpu_ratio_1t={cpu_s[one_t] / cpu_s[one_p]:.3f}", flush=True)
    result = None
    for n in settings:
        out, _ = procs[n].communicate(f"result {img_s[best_torch]:.6f}\n")
        for line in out.splitlines():
            if line.startswith("RESULT"):
                if ("poa", n) == best_poa:
                    result = line + f" torch_best={name(best_torch)}"
            elif not line.startswith("STEP"):
                print(f"[poa threads{n}] {line}", flush=True)
        if procs[n].returncode != 0:
            sys.exit(f"bench_step failed for {arch} with {n} threads")
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c-bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--configs", default="demo,vit_base")
    ap.add_argument("--torch-worker", metavar="ARCH", help=argparse.SUPPRESS)
    ap.add_argument("--intra", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        torch_worker(args.torch_worker, args.intra, args.steps)
        return
    if not args.c_bench:
        ap.error("--c-bench is required")
    print(f"machine: {os.cpu_count()} cpus, load average (1, 5, 15 min) "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    results = [run_config(arch, args) for arch in args.configs.split(",")]
    print(f"load average at the end (1, 5, 15 min) "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
