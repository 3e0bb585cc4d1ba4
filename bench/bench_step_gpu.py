#!/usr/bin/env python3
"""bench_step_gpu.py — the complete POA training step on one GPU: poa next to PyTorch.

poa's side is bench/bench_step (--backend cuda --dtype bf16: the step poa-train runs);
PyTorch's is the same step in tests/reference/step_torch.py, timed at a few settings (bf16
autocast with explicit attention or F.scaled_dot_product_attention, TF32 on or off,
torch.compile) of which the fastest counts.  For each model (ViT-L/16 first, then ViT-S/16)
at the official crops (2 x 224 + 8 x 96 per image) and the same fixed elastic sub-network (the
middle of the elastic ranges), each side runs in its own process after a warm-up, one after
the other; a side that runs out of GPU memory is retried with a smaller batch.  Figures:

  img/s    images per second, median step time over the timed steps;
  mfu      model FLOP utilisation: FLOPs of one step (the analytic count of
           tests/reference/step_torch.py's step_flops, the same formula as bench_step.c,
           drop path not subtracted) per second, over the GPU's dense bf16 peak (PEAKS below,
           by the name nvidia-smi reports; which entry was used is printed);
  mem_gb   peak device memory in use while that side ran (nvidia-smi, CUDA context included).

The last lines are one RESULT line per model, ViT-L last:
  RESULT model=vit_large batch=50 img_s=… torch_img_s=… torch_setting=… ratio_torch=…
         mfu=… torch_mfu=… mem_gb=… torch_mem_gb=… tflop_per_img=… peak_tflops=… gpu=…
(ratio_torch = poa img/s over the best PyTorch img/s).  Before them, per model, poa's
--profile table (bench_step --profile 1 after its timed steps): device time per step of each
backend op and of the 20 longest GEMM shapes, with their TFLOP/s.  Where poa's CUDA backend cannot run
the step yet (bench_step exits 2), poa's figures are nan, the line ends in poa=unavailable and
the reason is printed.  Exit status 1 when a model has no PyTorch figure or poa's run failed
otherwise (poa=failed), else 0.

usage: bench_step_gpu.py --c-bench "CMD" [--models vit_large,vit_small] [--batch M=B,...]
                         [--local 8] [--steps 8] [--warmup 2] [--profile 1] [--settings S,...]
                         [--budget SECONDS] [--quick] [--device cuda|cpu]
--c-bench is the bench_step command (it may start with a wrapper that sets its environment).
--device cpu (float32, no autocast) runs both sides on the CPU: a check that the script works
on a machine without a GPU (tests/gpu/test_bench_step_gpu_cpu.sh), not a benchmark.
"""

import argparse
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from NVIDIA's data sheets; the first
# entry whose key is in the GPU's name applies (order matters: H100 NVL/PCIe before H100).
PEAKS = [
    ("GH200", 989.0, "GH200 (H100 SXM rate)"),
    ("H200", 989.0, "H200 SXM"),
    ("H100 NVL", 835.0, "H100 NVL"),
    ("H100 PCIe", 756.0, "H100 PCIe"),
    ("H100", 989.0, "H100 SXM"),
    ("H800", 989.0, "H800 SXM"),
    ("A100", 312.0, "A100"),
    ("L40S", 362.0, "L40S"),
    ("B200", 2250.0, "B200"),
]

# name → (autocast dtype name or None, SDPA, torch.compile, TF32)
SETTINGS = {
    "fp32": (None, False, False, False),
    "bf16": ("bfloat16", False, False, True),
    "bf16-sdpa": ("bfloat16", True, False, True),
    "bf16-sdpa-notf32": ("bfloat16", True, False, False),
    "bf16-sdpa-compile": ("bfloat16", True, True, True),
}
DEFAULT_BATCH = {"vit_large": 50, "vit_small": 128, "vit_base": 64, "demo": 8, "tiny": 2}
# rough seconds one PyTorch setting needs (process start, model, warm-up, timed steps): a
# setting is not started with less time left than this
EST_SECONDS = {"vit_large": 40, "vit_small": 20}
EST_COMPILE = {"vit_large": 240, "vit_small": 120}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--c-bench", help="the bench_step command (with a wrapper if needed)")
    ap.add_argument("--models", default=None, help="comma-separated (default vit_large,vit_small)")
    ap.add_argument("--batch", default="", help="per-model batch, e.g. vit_large=50,vit_small=128")
    ap.add_argument("--local", type=int, default=8, help="local crops per image (8)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (8; 5 with --quick)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up steps (2)")
    ap.add_argument("--profile", type=int, default=1,
                    help="poa's steps with every op timed after the timed ones (1; 0: none)")
    ap.add_argument("--settings", default=None, help="PyTorch settings, in order: "
                    + ", ".join(SETTINGS))
    ap.add_argument("--budget", type=float, default=600.0, help="seconds for everything (600)")
    ap.add_argument("--quick", action="store_true",
                    help="ViT-L only, PyTorch bf16-sdpa only, 5 timed steps")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--setting", help=argparse.SUPPRESS)
    ap.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.steps is None:
        a.steps = 5 if a.quick else 8
    if a.models is None:
        a.models = "vit_large" if a.quick else "vit_large,vit_small"
    if a.settings is None:
        if a.device == "cpu":
            a.settings = "fp32"
        elif a.quick:
            a.settings = "bf16-sdpa"
        else:
            a.settings = "bf16-sdpa,bf16,bf16-sdpa-notf32,bf16-sdpa-compile"
    for s in a.settings.split(","):
        if s not in SETTINGS:
            ap.error(f"unknown setting {s!r} (settings: {', '.join(SETTINGS)})")
    if not a.worker and not a.c_bench:
        ap.error("--c-bench is required")
    return a


# ------------------------------------------------------------------ worker (PyTorch side)


def worker(a):
    """One PyTorch setting in this process: prints TORCH ... or TORCH_OOM."""
    import torch

    from step_torch import TorchStep, step_flops, middle_subnet, CONFIGS  # noqa: F401

    ac, sdpa, comp, tf32 = SETTINGS[a.setting]
    autocast = getattr(torch, ac) if ac else None
    dev = a.device
    try:
        st = TorchStep(a.model, a.batch_size, a.local, device=dev, autocast=autocast, sdpa=sdpa,
                       compile=comp, tf32=tf32)
        t0 = time.perf_counter()
        for _ in range(a.warmup):
            st.step()
        warm = time.perf_counter() - t0
        times = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            loss = st.step()  # reads the loss back: the step is complete when it returns
            times.append(time.perf_counter() - t0)
    except RuntimeError as e:  # torch.cuda.OutOfMemoryError is a RuntimeError
        if "out of memory" in str(e).lower():
            print("TORCH_OOM", flush=True)
            sys.exit(3)
        raise
    med = statistics.median(times)
    alloc = torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else float("nan")
    print(f"TORCH setting={a.setting} batch={a.batch_size} img_s={a.batch_size / med:.3f} "
          f"step_s={med:.4f} warmup_s={warm:.1f} max_alloc_gb={alloc:.2f} loss={loss:.4f} "
          f"torch={torch.__version__}", flush=True)


# ------------------------------------------------------------------ driver


class MemSampler:
    """Peak GPU memory in use (MiB, whole device) while active, from nvidia-smi."""

    def __init__(self, enabled):
        self.peak = float("nan")
        self.proc = None
        if not enabled:
            return
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                 "-lms", "200"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            return
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                v = float(line.split()[0])
            except (ValueError, IndexError):
                continue
            self.peak = v if math.isnan(self.peak) else max(self.peak, v)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
        return self.peak / 1024  # GiB


def gpu_name(device):
    if device == "cpu":
        return "cpu"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout
        return out.strip().splitlines()[0].strip() or "unknown"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def peak_for(name):
    for key, tflops, what in PEAKS:
        if key in name:
            return tflops, what
    return float("nan"), "unknown GPU: no peak"


def batches(b):
    out = []
    for x in (b, b * 4 // 5, b * 16 // 25, b // 2, b // 4):
        if x >= 1 and x not in out:
            out.append(x)
    return out


def run_timed(cmd, timeout, device):
    """(returncode or None on timeout, output, peak GiB) of a command."""
    sampler = MemSampler(device == "cuda")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 1))
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        rc, out = None, out.decode(errors="replace") if isinstance(out, bytes) else out
    return rc, out, sampler.stop()


def field(line, key):
    m = re.search(rf"(?:^| ){key}=(\S+)", line)
    return m.group(1) if m else None


def print_profile(out):
    """bench_step's per-op table (--profile), indented: from its "profile:" lines to the next
    line that is not part of it."""
    lines = out.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("profile:")), None)
    if start is None:
        return
    end = start
    while end < len(lines) and (lines[end].startswith("profile:") or lines[end].startswith("  ")):
        end += 1
    for ln in lines[start:end]:
        print("  " + ln, flush=True)


def poa_side(a, model, B, w, d, deadline):
    """dict(img_s, batch, gflop, mem, note) of poa's step, smaller batches on out-of-memory."""
    dtype = "bf16" if a.device == "cuda" else "fp32"
    for b in batches(B):
        left = deadline - time.time()
        cmd = shlex.split(a.c_bench) + [
            "--backend", a.device, "--dtype", dtype, "--tf32", "1", "--config", model,
            "--batch", str(b), "--local", str(a.local), "--width", str(w), "--depth", str(d),
            "--reps", str(a.steps), "--warmup", str(a.warmup), "--profile", str(a.profile)]
        print("  $ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
        rc, out, mem = run_timed(cmd, left, a.device)
        res = [ln for ln in out.splitlines() if ln.startswith("RESULT")]
        if rc == 0 and res:
            info = next((ln for ln in out.splitlines() if ln.startswith("config=")), "")
            print_profile(out)
            return dict(img_s=float(field(res[-1], "img_s")), batch=b, mem=mem,
                        gflop=float(field(info, "gflop") or "nan"), note="", line=info)
        tail = " | ".join(out.strip().splitlines()[-3:])
        if rc is None:
            return dict(img_s=float("nan"), batch=b, mem=mem, gflop=float("nan"),
                        note=f"timed out ({left:.0f}s left)", failed=True)
        if "out of memory" not in out.lower():
            # exit 2: bad option or backend unavailable (not built for CUDA, no GPU, ops
            # missing, dtype not supported): poa cannot run the step yet, nothing broke
            return dict(img_s=float("nan"), batch=b, mem=mem, gflop=float("nan"),
                        note=f"exit {rc}: {tail}", failed=rc != 2)
        print(f"  poa: out of memory at batch {b}", flush=True)
    return dict(img_s=float("nan"), batch=0, mem=float("nan"), gflop=float("nan"),
                note="out of memory at every batch")


def torch_side(a, model, B, deadline):
    """{setting: dict(img_s, batch, mem, note)} for the settings that fit in the time."""
    res = {}
    for s in a.settings.split(","):
        est = (EST_COMPILE if SETTINGS[s][2] else EST_SECONDS).get(model, 10)
        if a.device == "cpu":
            est = 1
        if deadline - time.time() < est:
            res[s] = dict(img_s=float("nan"), batch=0, mem=float("nan"),
                          note=f"not run: under {est}s left")
            print(f"  torch {s}: {res[s]['note']}", flush=True)
            continue
        for b in batches(B):
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--model", model,
                   "--batch-size", str(b), "--local", str(a.local), "--setting", s,
                   "--steps", str(a.steps), "--warmup", str(a.warmup), "--device", a.device]
            rc, out, mem = run_timed(cmd, deadline - time.time(), a.device)
            line = next((ln for ln in out.splitlines() if ln.startswith("TORCH ")), None)
            if rc == 0 and line:
                res[s] = dict(img_s=float(field(line, "img_s")), batch=b, mem=mem, note="",
                              line=line)
                break
            if "TORCH_OOM" in out:
                print(f"  torch {s}: out of memory at batch {b}", flush=True)
                continue
            tail = " | ".join(out.strip().splitlines()[-3:])
            res[s] = dict(img_s=float("nan"), batch=b, mem=mem,
                          note="timed out" if rc is None else f"exit {rc}: {tail}")
            break
        else:
            res[s] = dict(img_s=float("nan"), batch=0, mem=float("nan"),
                          note="out of memory at every batch")
        r = res[s]
        print(f"  torch {s}: " + (f"img/s {r['img_s']:.2f} at batch {r['batch']}, "
                                  f"peak memory {r['mem']:.1f} GiB; {r.get('line', '')}"
                                  if not r["note"] else r["note"]), flush=True)
    return res


def fmt(x, spec=".3f"):
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def main(argv):
    a = parse_args(argv)
    if a.worker:
        return worker(a)
    from step_torch import CONFIGS, masks_like_c, middle_subnet, step_flops

    t_start = time.time()
    name = gpu_name(a.device)
    peak, peak_what = peak_for(name) if a.device == "cuda" else (float("nan"), "cpu: no peak")
    print(f"bench_step_gpu: GPU {name}; bf16 dense peak {fmt(peak, '.0f')} TFLOP/s "
          f"({peak_what}); budget {a.budget:.0f}s; settings {a.settings}", flush=True)
    user_batch = dict(kv.split("=") for kv in a.batch.split(",") if kv)
    models = a.models.split(",")
    weights = {"vit_large": 3.0}
    results = []
    ok = True
    for i, model in enumerate(models):
        cfg = CONFIGS[model]
        B = int(user_batch.get(model, DEFAULT_BATCH.get(model, 32)))
        w, d = middle_subnet(cfg)
        left = a.budget - (time.time() - t_start)
        share = weights.get(model, 2.0) / sum(weights.get(m, 2.0) for m in models[i:])
        deadline = time.time() + left * share
        N = (cfg["global_crops_size"] // cfg["patch_size"]) ** 2
        print(f"\nmodel={model} batch={B} local={a.local} elastic={w}x{d} "
              f"({left * share:.0f}s)", flush=True)
        poa = poa_side(a, model, B, w, d, deadline)
        if poa["note"]:
            print(f"  poa: not measured: {poa['note']}", flush=True)
        else:
            print(f"  poa: img/s {poa['img_s']:.2f} at batch {poa['batch']}, peak memory "
                  f"{poa['mem']:.1f} GiB; {poa['line']}", flush=True)
        tor = torch_side(a, model, B, deadline)
        best = max((s for s in tor if not math.isnan(tor[s]["img_s"])),
                   key=lambda s: tor[s]["img_s"], default=None)
        bt = tor[best] if best else dict(img_s=float("nan"), batch=0, mem=float("nan"))

        def flops_per_img(b):
            n_masked = int(masks_like_c(2 * b, N).sum()) if b else 0
            return step_flops(cfg, b, a.local, n_masked, w, d) / b if b else float("nan")

        f_poa = flops_per_img(poa["batch"])
        if poa["batch"] and not math.isnan(poa["gflop"]):
            c_per_img = poa["gflop"] * 1e9 / poa["batch"]
            if abs(c_per_img - f_poa) > 2e-3 * f_poa:
                print(f"  warning: FLOPs per image: bench_step.c {c_per_img:.4g}, "
                      f"step_torch.py {f_poa:.4g}: the two formulas disagree", flush=True)
        mfu = poa["img_s"] * f_poa / (peak * 1e12)
        t_mfu = bt["img_s"] * flops_per_img(bt["batch"]) / (peak * 1e12)
        gpu = re.sub(r"\s+", "_", name)
        ok = ok and best is not None and not poa.get("failed")
        results.append(
            f"RESULT model={model} batch={poa['batch']} img_s={fmt(poa['img_s'])} "
            f"torch_img_s={fmt(bt['img_s'])} torch_setting={best or 'none'} "
            f"torch_batch={bt['batch']} ratio_torch={fmt(poa['img_s'] / bt['img_s'])} "
            f"mfu={fmt(mfu)} torch_mfu={fmt(t_mfu)} mem_gb={fmt(poa['mem'], '.1f')} "
            f"torch_mem_gb={fmt(bt['mem'], '.1f')} "
            f"tflop_per_img={fmt(flops_per_img(B) / 1e12, '.4f')} "
            f"peak_tflops={fmt(peak, '.0f')} gpu={gpu}"
            + ((" poa=failed" if poa.get("failed") else " poa=unavailable") if poa["note"] else ""))
    print(f"\nbench_step_gpu: done in {time.time() - t_start:.0f}s", flush=True)
    for line in sorted(results, key=lambda r: "model=vit_large" in r):
        print(line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
