#!/usr/bin/env python3
"""bench_model.py — the ViT backbone's forward+backward in PyTorch next to poa's C engine.

For each config (demo at its global crop size, then ViT-S/16 at 224 px) it times, in --rounds
interleaved rounds (so that both sides see the same machine load):
  * the PyTorch reference model of tests/reference/poa_model.py (the official module tree; at
    the intact width it uses the weights unsliced, like the official code) with 1 and 2 threads,
    keeping the better of the two per round;
  * the C engine (bench_model) with 1 and --threads threads (OMP_NUM_THREADS), keeping the
    better of the two per round; it also measures the backend's sgemm GFLOP/s (the best of its
    two runs is the reference for frac_sgemm).
Each measurement is the median of --reps timed iterations after one warm-up iteration; the
figures printed are medians over the rounds.  Because wall-clock figures depend on what else
runs on the machine, every round also measures the process CPU time of a single-threaded step
on both sides (CPUTIME lines: the work each side does, independent of waiting for a core).  Both sides use the same BLAS library, so the
OPENBLAS_CORETYPE of the environment (see bench/local.mk) applies to both.

usage: bench_model.py --c-bench PATH [--threads 2] [--reps 3] [--rounds 3]
                      [--configs demo,vit_small]
The last lines are `RESULT config=… img_s=… gflops=… sgemm_gflops=… torch_img_s=…
ratio_torch=… frac_sgemm=…`, one per config, ViT-S/16 last.
"""

import argparse
import ctypes
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
sys.dont_write_bytecode = True  # never write into a (possibly read-only) source tree
import poa_model  # noqa: E402

# config → (image size, batch)
SETUPS = {"demo": (32, 64), "vit_small": (224, 8)}
RESULT_NAME = {"demo": "demo", "vit_small": "vit_small_224"}


def torch_run(model, x, threads, reps):
    """(images/s wall, CPU seconds per step), medians of reps after one warm-up step."""
    torch.set_num_threads(threads)
    walls, cpus = [], []
    for r in range(reps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        model.zero_grad(set_to_none=True)
        out = model(x)
        out.backward(torch.ones_like(out))
        if r > 0:
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    return x.shape[0] / statistics.median(walls), statistics.median(cpus)


def c_run(c_bench, arch, size, batch, threads, reps):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([c_bench, "--config", arch, "--size", str(size), "--batch", str(batch),
                          "--reps", str(reps)], env=env, check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if line.startswith("C "):
            return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    raise RuntimeError("bench_model printed no C line:\n" + out)


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    core = "?"
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        core = lib.openblas_get_corename().decode()
    except OSError:
        pass
    return (f"machine: {cpu}, {os.cpu_count()} cpus, {platform.system()} {platform.release()}, "
            f"torch {torch.__version__}, OpenBLAS core {core} "
            f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}), "
            f"load average {os.getloadavg()[0]:.1f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c-bench", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--configs", default="demo,vit_small")
    args = ap.parse_args()
    print(machine(), flush=True)
    results, cputime = [], []
    for arch in args.configs.split(","):
        size, batch = SETUPS[arch]
        torch.manual_seed(0)
        model = poa_model.DynamicViT(**poa_model.CONFIGS[arch]).train()
        x = torch.randn(batch, 3, size, size)
        rounds = []
        for r in range(args.rounds):
            t1, t1_cpu = torch_run(model, x, 1, args.reps)
            t2, _ = torch_run(model, x, 2, args.reps)
            c = c_run(args.c_bench, arch, size, batch, args.threads, args.reps)
            c1 = c_run(args.c_bench, arch, size, batch, 1, args.reps)
            c1_cpu = float(c1["cpu_ms"]) * 1e-3
            best = max((c, c1), key=lambda v: float(v["img_s"]))
            rounds.append((max(t1, t2), float(best["img_s"]), float(best["gflops"]),
                           max(float(c["sgemm_gflops"]), float(c1["sgemm_gflops"])), t1_cpu,
                           c1_cpu))
            print(f"round {r}: {arch} size={size} batch={batch} img/s torch 1t={t1:.2f} "
                  f"2t={t2:.2f} | C 1t={c1['img_s']} {args.threads}t={c['img_s']} "
                  f"(gflops {c1['gflops']} / {c['gflops']}, sgemm {c1['sgemm_gflops']} / "
                  f"{c['sgemm_gflops']} GFLOP/s) | 1-thread CPU s/step torch={t1_cpu:.3f} "
                  f"C={c1_cpu:.3f}", flush=True)
        t_img, c_img, c_gf, sg, t_cpu, c_cpu = (statistics.median(v) for v in zip(*rounds))
        cputime.append(f"CPUTIME config={RESULT_NAME[arch]} torch_1t_cpu_s={t_cpu:.3f} "
                       f"c_1t_cpu_s={c_cpu:.3f} ratio={t_cpu / c_cpu:.2f}")
        results.append(f"RESULT config={RESULT_NAME[arch]} img_s={c_img:.2f} gflops={c_gf:.2f} "
                       f"sgemm_gflops={sg:.2f} torch_img_s={t_img:.2f} "
                       f"ratio_torch={c_img / t_img:.2f} frac_sgemm={c_gf / sg:.2f}")
    print(machine(), flush=True)
    # CPU time of single-threaded runs: robust to other processes on a shared machine.
    for line in cputime:
        print(line)
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
