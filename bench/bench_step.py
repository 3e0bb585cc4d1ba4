#!/usr/bin/env python3
"""bench_step.py — the complete POA training step in PyTorch next to poa's C step.

The PyTorch step is tests/reference/step_torch.py's on the CPU in float32 (poa_model.py's
official module tree, loss_ref.py's official loss composition, batch-subset drop path 0.2,
iBOT on), with the official optimizer set-up: AdamW over fused parameter groups (foreach),
clip_grad_norm_ per module, foreach EMA.  For each config it runs --reps rounds of
(PyTorch step, C step) with 1 and with 2 threads (the C benchmark runs as two processes in
--serve mode, OMP_NUM_THREADS 1 and 2), so that the load of a shared machine hits all of them
alike, after one warm-up step of each.  It prints both sides per thread count and their ratio;
the last line is the C benchmark's RESULT for its best thread count next to the best PyTorch
figure.  Figures are medians over the rounds; "median_round_ratio" is the median over rounds of
(best PyTorch time / best C time), the figure least sensitive to a changing load.

usage: bench_step.py --c-bench PATH [--reps 3] [--configs demo,vit_base]
"""

import argparse
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


def timed_torch_step(st, threads):
    """(wall s, process CPU s) of one step."""
    torch.set_num_threads(threads)
    t0, c0 = time.perf_counter(), time.process_time()
    loss = st.step()
    assert math.isfinite(loss)
    return time.perf_counter() - t0, time.process_time() - c0


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
    proc.stdin.write("step\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line.startswith("STEP"):
        sys.exit(f"bench_step: unexpected output {line!r}")
    return float(line.split()[1]), float(line.split()[2])


def run_config(arch, args):
    """Interleaved rounds (PyTorch and C, each with 1 and 2 threads) so that the load of a
    shared machine hits all four alike; the C processes stay up between their steps (--serve)."""
    B, V = SETUPS[arch]
    w, d = middle_subnet(CONFIGS[arch])
    threads = (1, 2)
    procs = {n: start_c(args, arch, n) for n in threads}
    st = TorchStep(arch, B, V)
    for n in threads:  # warm-up (the C processes warm up by themselves)
        timed_torch_step(st, n)
    print(f"BLAS: OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}", flush=True)
    rows = []
    for r in range(args.reps):
        row = {}
        for n in threads:
            row[("torch", n)] = timed_torch_step(st, n)
            row[("poa", n)] = c_step(procs[n])
        rows.append(row)
        print(f"  {arch} round {r}: "
              + " ".join(f"{k[0]}@{k[1]}t {v[0]:.3f}s (cpu {v[1]:.3f}s)" for k, v in row.items()),
              flush=True)
    img_s = {k: B / median([row[k][0] for row in rows]) for k in rows[0]}
    cpu_s = {k: median([row[k][1] for row in rows]) for k in rows[0]}
    best_torch = max(img_s[("torch", n)] for n in threads)
    best_poa_n = max(threads, key=lambda n: img_s[("poa", n)])
    round_ratio = median([min(x[("torch", n)][0] for n in threads) /
                          min(x[("poa", n)][0] for n in threads) for x in rows])
    print(f"torch {torch.__version__} config={arch} batch={B} local={V} elastic={w}x{d} "
          + " ".join(f"{k[0]}_img_s@{k[1]}t={v:.3f}" for k, v in img_s.items()) + " "
          + " ".join(f"ratio@{n}t={img_s[('poa', n)] / img_s[('torch', n)]:.3f}" for n in threads)
          + f" median_round_ratio={round_ratio:.3f}", flush=True)
    # process CPU time per step: the work each side does, the least load-sensitive figure on a
    # shared machine (with 2 threads it also counts OpenMP/BLAS spin-waiting)
    print(f"cpu_s_per_step config={arch} "
          + " ".join(f"{k[0]}@{k[1]}t={v:.3f}" for k, v in cpu_s.items()) + " "
          + " ".join(f"cpu_ratio@{n}t={cpu_s[('torch', n)] / cpu_s[('poa', n)]:.3f}"
                     for n in threads), flush=True)
    result = None
    for n in threads:
        out, _ = procs[n].communicate(f"result {best_torch:.6f}\n")
        for line in out.splitlines():
            if line.startswith("RESULT"):
                if n == best_poa_n:
                    result = line + f" threads={n}"
            elif not line.startswith("STEP"):
                print(f"[poa@{n}t] {line}", flush=True)
        if procs[n].returncode != 0:
            sys.exit(f"bench_step failed for {arch} with {n} threads")
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c-bench", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--configs", default="demo,vit_base")
    args = ap.parse_args()
    results = [run_config(arch, args) for arch in args.configs.split(",")]
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
