#!/usr/bin/env python3
"""bench_model.py — the ViT backbone's forward+backward in PyTorch next to poa's C engine.

For each config (demo at its global crop size, then ViT-S/16 at 224 px) it times, in --rounds
interleaved rounds (so that every setting sees the same machine load):
  * the PyTorch reference model of tests/reference/poa_model.py (the official module tree; at
    the intact width it uses the weights unsliced, like the official code) at every combination
    of PyTorch's intra-op threads (torch.set_num_threads) and OpenBLAS's threads
    (OPENBLAS_NUM_THREADS), each 1 or --threads.  torch.set_num_threads does not reach OpenBLAS's
    own thread pool, and OPENBLAS_NUM_THREADS is read when OpenBLAS loads, so every combination
    runs in its own process (this script with --torch-worker);
  * the C engine (bench_model) with 1 and --threads threads (OMP_NUM_THREADS); each run also
    times OpenBLAS's sgemm on as many threads, wall clock, next to its steps (frac_sgemm =
    poa's GFLOP/s over that sgemm's, both at the same thread count; bench/bench_sgemm.h).
Each measurement is the median of --reps timed iterations after one warm-up iteration. A
setting's figure is the median over the rounds; each side's best setting (highest median img/s)
is compared with the other's, and the table and the RESULT line say which settings won. The
median over rounds of the per-round best/best ratio is printed too (the figure a changing load
disturbs least). Because wall-clock figures depend on what else runs on the machine, the
CPUTIME lines compare the process CPU time per step of the single-threaded settings (PyTorch
intra1_blas1, poa 1 thread): the work each side does. Both sides use the same OpenBLAS
library, so the OPENBLAS_CORETYPE of the environment (see bench/local.mk) applies to both.

usage: bench_model.py --c-bench PATH [--threads 2] [--reps 3] [--rounds 3]
                      [--configs demo,vit_small]
The last lines are `RESULT config=… threads=… img_s=… gflops=… sgemm_gflops=… frac_sgemm=…
torch_img_s=… torch_best=intraI_blasB ratio_torch=…`, one per config, ViT-S/16 last
(threads: poa's best thread count; torch_best: PyTorch's best combination).
"""

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# config → (image size, batch)
SETUPS = {"demo": (32, 64), "vit_small": (224, 8)}
RESULT_NAME = {"demo": "demo", "vit_small": "vit_small_224"}


# ------------------------------------------------------------------ PyTorch, one combination
def torch_worker(arch, intra, reps):
    """Runs in its own process with OPENBLAS_NUM_THREADS already set; prints one JSON line."""
    import torch

    sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
    sys.dont_write_bytecode = True  # never write into a (possibly read-only) source tree
    import poa_model

    torch.set_num_threads(intra)
    size, batch = SETUPS[arch]
    torch.manual_seed(0)
    model = poa_model.DynamicViT(**poa_model.CONFIGS[arch]).train()
    x = torch.randn(batch, 3, size, size)
    walls, cpus = [], []
    for r in range(reps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        model.zero_grad(set_to_none=True)
        out = model(x)
        out.backward(torch.ones_like(out))
        if r > 0:
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    print(json.dumps({"img_s": batch / statistics.median(walls), "cpu_s": statistics.median(cpus),
                      "wall_s": statistics.median(walls), "intra": torch.get_num_threads(),
                      "blas": blas_threads(), "torch": torch.__version__}))


def blas_threads():
    """OpenBLAS's thread count in this process (None without OpenBLAS)."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        return int(lib.openblas_get_num_threads())
    except (OSError, AttributeError):
        return None


def torch_run(arch, intra, blas, reps):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(blas), OMP_NUM_THREADS=str(intra))
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", arch,
                          "--intra", str(intra), "--reps", str(reps)], env=env, check=True,
                         capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    if res["intra"] != intra or res["blas"] not in (None, blas):
        sys.exit(f"bench_model.py: PyTorch worker ran with intra {res['intra']} / OpenBLAS "
                 f"{res['blas']} threads instead of {intra} / {blas}")
    return res


# ------------------------------------------------------------------ poa
def c_run(c_bench, arch, size, batch, threads, reps):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([c_bench, "--config", arch, "--size", str(size), "--batch", str(batch),
                          "--reps", str(reps)], env=env, check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if line.startswith("C "):
            return {k: (float(v) if k not in ("config", "gemm", "subnet") else v)
                    for k, v in (kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)}
    raise RuntimeError("bench_model printed no C line:\n" + out)


def machine(torch_version=None):
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
    except (OSError, AttributeError):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {cpu}, {os.cpu_count()} cpus, {platform.system()} {platform.release()}, "
            + (f"torch {torch_version}, " if torch_version else "")
            + f"OpenBLAS core {core} "
            f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')}), "
            f"load average (1, 5, 15 min) {load}")


def median(v):
    return statistics.median(v)


def run_config(arch, args, settings, torch_version):
    size, batch = SETUPS[arch]
    combos = [(i, b) for i in settings for b in settings]
    torch_rows = {c: [] for c in combos}
    poa_rows = {n: [] for n in settings}
    round_ratios = []
    for r in range(args.rounds):
        for c in combos:
            res = torch_run(arch, c[0], c[1], args.reps)
            torch_version[0] = res["torch"]
            torch_rows[c].append(res)
        for n in reversed(settings):
            poa_rows[n].append(c_run(args.c_bench, arch, size, batch, n, args.reps))
        best_t = max(torch_rows[c][-1]["img_s"] for c in combos)
        best_p = max(poa_rows[n][-1]["img_s"] for n in settings)
        round_ratios.append(best_p / best_t)
        print(f"round {r}: {arch} size={size} batch={batch} img/s | torch "
              + " ".join(f"{combo_name(c)}={torch_rows[c][-1]['img_s']:.2f}" for c in combos)
              + " | poa " + " ".join(f"threads{n}={poa_rows[n][-1]['img_s']:.2f} (frac_sgemm "
                                     f"{poa_rows[n][-1]['frac_sgemm']:.2f})" for n in settings)
              + f" | load {os.getloadavg()[0]:.2f}", flush=True)

    t_img = {c: median([x["img_s"] for x in torch_rows[c]]) for c in combos}
    t_cpu = {c: median([x["cpu_s"] for x in torch_rows[c]]) for c in combos}
    t_wall = {c: median([x["wall_s"] for x in torch_rows[c]]) for c in combos}
    p = {n: {k: median([x[k] for x in poa_rows[n]])
             for k in ("img_s", "gflops", "sgemm_gflops", "sgemm_split_gflops",
                       "sgemm_pool_gflops", "frac_sgemm", "cpu_ms", "step_ms")}
         for n in settings}
    best_t = max(combos, key=lambda c: t_img[c])
    best_p = max(settings, key=lambda n: p[n]["img_s"])

    print(f"{arch}: size {size}, batch {batch}, medians of {args.rounds} rounds of {args.reps} "
          f"timed steps")
    print(f"  {'side':6s} {'setting':13s} {'img/s':>8s} {'CPU s/step':>11s} {'CPU/wall':>9s} "
          f"{'GFLOP/s':>8s} {'sgemm GFLOP/s (split / pool)':>30s} {'frac_sgemm':>10s}")
    for c in combos:
        mark = " <- best" if c == best_t else ""
        print(f"  {'torch':6s} {combo_name(c):13s} {t_img[c]:8.2f} {t_cpu[c]:11.3f} "
              f"{t_cpu[c] / t_wall[c]:9.2f}{mark}")
    for n in settings:
        q = p[n]
        mark = " <- best" if n == best_p else ""
        sg = f"{q['sgemm_gflops']:.1f} ({q['sgemm_split_gflops']:.1f} / {q['sgemm_pool_gflops']:.1f})"
        print(f"  {'poa':6s} {f'threads{n}':13s} {q['img_s']:8.2f} {q['cpu_ms'] * 1e-3:11.3f} "
              f"{q['cpu_ms'] / q['step_ms']:9.2f} {q['gflops']:8.1f} {sg:>30s} "
              f"{q['frac_sgemm']:10.2f}{mark}")
    ratio = p[best_p]["img_s"] / t_img[best_t]
    print(f"  best against best: poa threads{best_p} / torch {combo_name(best_t)} = {ratio:.2f}; "
          f"median of the per-round ratios {median(round_ratios):.2f}", flush=True)

    one = (settings[0], settings[0])
    cputime = (f"CPUTIME config={RESULT_NAME[arch]} torch_1t_cpu_s={t_cpu[one]:.3f} "
               f"c_1t_cpu_s={p[1]['cpu_ms'] * 1e-3:.3f} "
               f"ratio={t_cpu[one] / (p[1]['cpu_ms'] * 1e-3):.2f}")
    q = p[best_p]
    result = (f"RESULT config={RESULT_NAME[arch]} threads={best_p} img_s={q['img_s']:.2f} "
              f"gflops={q['gflops']:.2f} sgemm_gflops={q['sgemm_gflops']:.2f} "
              f"frac_sgemm={q['frac_sgemm']:.2f} torch_img_s={t_img[best_t]:.2f} "
              f"torch_best={combo_name(best_t)} ratio_torch={ratio:.2f}")
    return cputime, result


def combo_name(c):
    return f"intra{c[0]}_blas{c[1]}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c-bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--configs", default="demo,vit_small")
    ap.add_argument("--torch-worker", metavar="ARCH", help=argparse.SUPPRESS)
    ap.add_argument("--intra", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        torch_worker(args.torch_worker, args.intra, args.reps)
        return
    if not args.c_bench:
        ap.error("--c-bench is required")
    settings = sorted({1, args.threads})
    torch_version = ["?"]
    print(machine(), flush=True)
    lines = [run_config(arch, args, settings, torch_version) for arch in args.configs.split(",")]
    print(machine(torch_version[0]), flush=True)
    # CPU time of single-threaded runs: robust to other processes on a shared machine.
    for cputime, _ in lines:
        print(cputime)
    for _, result in lines:
        print(result)


if __name__ == "__main__":
    main()
