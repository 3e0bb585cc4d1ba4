#!/usr/bin/env python3
"""bench_ops_gpu.py — poa's attention and MLP-entry kernels next to PyTorch's alternatives.

Two choices of the CUDA backend that only a GPU can settle (src/backend/cuda/README.md,
"Attention" and "GEMMs"):

  attention  poa's fused attention (cuda_attention.cu: `tc`, the tensor-core version bf16 uses,
             and `simple`, the FFMA one) against PyTorch's F.scaled_dot_product_attention with
             each backend it has: cuDNN's fused attention, FlashAttention-2, memory-efficient,
             math, and the explicit softmax(q kᵀ/√d) v of a ViT without fused attention.
             Forward (with what the backward needs saved) and backward (dq, dk, dv from dout),
             at the shapes of the ViT-S/16 and ViT-L/16 POA step: global crops (B × 197 tokens)
             and local crops (4·B × 37), heads of 64; q, k and v are strided views of one
             [B, T, 3, H, 64] tensor, as in poa and in timm's ViT.
  fc1+GELU   the MLP's first layer and its GELU at the same rows: poa's act_gemm_bias +
             act_gelu_fwd against PyTorch's F.linear + F.gelu (the exact erf GELU the model
             uses) and torch._addmm_activation(..., use_gelu=True), cuBLASLt's GELU_BIAS
             epilogue on CUDA, one kernel but the tanh approximation (on the CPU it is the erf GELU
             after the GEMM): what a fused epilogue would save.

poa's times come from tests/ops/test_backend_ops --perf (--op attention, act_gemm_bias,
act_gelu_fwd; the backend's events, median of --reps runs after one untimed run); PyTorch's
from CUDA events, median of --reps runs after one untimed run, in this process.  The last line:

  RESULT bench=ops_gpu gpu=… attn_poa_ms=… attn_poa_simple_ms=… attn_torch_best=… attn_torch_ms=…
         ratio_attn=… attn_cudnn_ms=… attn_flash_ms=… cudnn_deterministic=… flash_deterministic=…
         fc1_gelu_poa_us=… fc1_gelu_torch_us=… fc1_gelu_fused_tanh_us=…

attn_*_ms: the sum over the four shapes of forward and backward (nan where a backend cannot run
a shape); ratio_attn = the fastest PyTorch backend's sum over poa's (> 1: poa is faster);
*_deterministic: yes when that backend's backward gave the same bits in 3 runs at every shape
(poa's kernels are deterministic by construction, which resuming a run bit-identically needs);
fc1_gelu_*_us: ViT-L/16.  Exit status 0; 1 when poa's op test failed or gave no figure, or no
PyTorch attention ran; 2 usage.

usage: bench_ops_gpu.py --c-ops "CMD" [--images 64] [--reps 20] [--budget 60] [--device cuda|cpu]
--c-ops is the test_backend_ops command (it may start with a wrapper that sets its environment).
--device cpu (float32) runs both sides on the CPU: a check that the script works on a machine
without a GPU (tests/gpu/test_bench_step_gpu_cpu.sh), not a benchmark.
"""

import argparse
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

TORCH_BACKENDS = ("cudnn", "flash", "efficient", "math")  # torch.nn.attention.SDPBackend names
PERF_LINE = re.compile(r"^perf (\S+)/(\S+) (\S+)\s+(.*?)\s+([0-9.]+) us")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--c-ops", required=True, help="the test_backend_ops command")
    ap.add_argument("--images", type=int, default=None,
                    help="images of the global-crop shapes (64 on cuda, 1 on cpu)")
    ap.add_argument("--reps", type=int, default=None, help="timed runs per figure (20; 2 on cpu)")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds for everything (60)")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    a = ap.parse_args(argv)
    if a.images is None:
        a.images = 64 if a.device == "cuda" else 1
    if a.reps is None:
        a.reps = 20 if a.device == "cuda" else 2
    if a.images < 1 or a.reps < 1:
        ap.error("--images and --reps must be at least 1")
    return a


# ------------------------------------------------------------------ poa's side


def poa_perf(a, op, deadline, env_extra=None):
    """{(op, shape): microseconds} from one test_backend_ops --perf run, and its exit status."""
    be, dt = ("cuda", "bf16") if a.device == "cuda" else ("cpu", "fp32")
    cmd = shlex.split(a.c_ops) + ["--backend", be, "--dtype", dt, "--perf", "--op", op,
                                  "--images", str(a.images), "--reps", str(a.reps)]
    env = dict(os.environ, **(env_extra or {}))
    left = deadline - time.monotonic()
    if left < 2:
        print(f"poa {op}: not run, no time left", flush=True)
        return {}, 124
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=left, env=env)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        print(f"poa {op}: timed out after {left:.0f}s: {shlex.join(cmd)}", flush=True)
        return {}, 124
    times = {}
    for line in out.splitlines():
        m = PERF_LINE.match(line)
        if m:
            times[(m.group(3), m.group(4))] = float(m.group(5))
    if rc != 0 or not times:
        print(f"poa {op}: exit {rc}, {len(times)} figures: {shlex.join(cmd)}", flush=True)
        print("\n".join("  | " + ln for ln in out.splitlines()[-8:]), flush=True)
    return times, rc


def attention_shapes(times):
    """The (label, B, T, H, Dh) of poa's attention_fwd lines, in their order."""
    shapes = []
    for (op, shape) in times:
        m = re.match(r"(\S+) B=(\d+) T=(\d+) H=(\d+) Dh=(\d+)$", shape)
        if op == "attention_fwd" and m:
            shapes.append((shape, *(int(m.group(i)) for i in range(2, 6))))
    return shapes


# ------------------------------------------------------------------ PyTorch's side


def timer(torch, device, reps):
    """median microseconds of fn() over reps runs after one untimed run."""
    def run(fn):
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        ts = []
        for _ in range(reps):
            if device == "cuda":
                e0 = torch.cuda.Event(enable_timing=True)
                e1 = torch.cuda.Event(enable_timing=True)
                e0.record()
                fn()
                e1.record()
                e1.synchronize()
                ts.append(e0.elapsed_time(e1) * 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                ts.append((time.perf_counter() - t0) * 1e6)
        return statistics.median(ts)
    return run


def attention_fns(torch, backend):
    """attention(q, k, v) for one PyTorch backend name, or raise with the reason it has none."""
    F = torch.nn.functional
    if backend == "explicit":
        def explicit(q, k, v):
            s = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
            return s.softmax(dim=-1) @ v
        return explicit
    if not hasattr(F, "scaled_dot_product_attention"):
        raise RuntimeError(f"PyTorch {torch.__version__} has no scaled_dot_product_attention")
    from torch.nn.attention import SDPBackend, sdpa_kernel
    which = {"cudnn": "CUDNN_ATTENTION", "flash": "FLASH_ATTENTION",
             "efficient": "EFFICIENT_ATTENTION", "math": "MATH"}[backend]
    sdp = getattr(SDPBackend, which, None)
    if sdp is None:
        raise RuntimeError(f"PyTorch {torch.__version__} has no SDPBackend.{which}")

    def sdpa(q, k, v):
        with sdpa_kernel([sdp]):
            return F.scaled_dot_product_attention(q, k, v)
    return sdpa


def torch_attention(torch, a, shape, backend, run):
    """(forward µs, backward µs, backward bit-identical over 3 runs) of one backend at one
    shape; raises where it cannot run."""
    _, B, T, H, Dh = shape
    dev, dt = a.device, torch.bfloat16 if a.device == "cuda" else torch.float32
    qkv = torch.empty(B, T, 3, H, Dh, device=dev, dtype=dt).uniform_(-1, 1)
    # leaves that are strided views of the one qkv buffer (no copy), as poa's q, k, v
    q, k, v = (qkv[:, :, i].transpose(1, 2).detach().requires_grad_() for i in range(3))
    dout = torch.empty(B, H, T, Dh, device=dev, dtype=dt).uniform_(-1, 1)
    attn = attention_fns(torch, backend)
    fwd = run(lambda: attn(q, k, v))
    out = attn(q, k, v)
    bwd = run(lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True))
    # poa's kernels give the same bits run after run (no atomics); whether this backend does
    grads = [torch.autograd.grad(out, (q, k, v), dout, retain_graph=True) for _ in range(3)]
    same = all(torch.equal(g, h) for other in grads[1:] for g, h in zip(grads[0], other))
    return fwd, bwd, same


def torch_fc1_gelu(torch, a, rows, n, k, run):
    """{name: µs} of the MLP's first layer and GELU in PyTorch at [rows, k] × [n, k]ᵀ."""
    F = torch.nn.functional
    dev, dt = a.device, torch.bfloat16 if a.device == "cuda" else torch.float32
    x = torch.empty(rows, k, device=dev, dtype=dt).uniform_(-1, 1)
    w = torch.empty(n, k, device=dev, dtype=dt).uniform_(-0.05, 0.05)
    b = torch.empty(n, device=dev, dtype=dt).uniform_(-0.5, 0.5)
    res = {"linear": run(lambda: F.linear(x, w, b)),
           "linear+gelu": run(lambda: F.gelu(F.linear(x, w, b)))}
    try:  # cuBLASLt's GELU_BIAS epilogue on CUDA (tanh approximation)
        res["fused_tanh"] = run(lambda: torch._addmm_activation(b, x, w.t(), use_gelu=True))
    except Exception as e:  # noqa: BLE001 — reported, not fatal
        print(f"torch._addmm_activation: {str(e).splitlines()[0]}", flush=True)
        res["fused_tanh"] = float("nan")
    return res


# ------------------------------------------------------------------ report


def fmt(x):
    return "n/a" if x is None or math.isnan(x) else f"{x:.1f}"


def sum_or_nan(xs):
    return float("nan") if not xs or any(x is None or math.isnan(x) for x in xs) else sum(xs)


def main(argv):
    a = parse_args(argv)
    deadline = time.monotonic() + a.budget
    t_all = time.monotonic()
    gpu = "cpu"
    if a.device == "cuda":
        try:
            gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20
                                 ).stdout.strip().splitlines()[0].strip()
        except (OSError, subprocess.SubprocessError, IndexError):
            gpu = "unknown"
    print(f"bench_ops_gpu: device {a.device} ({gpu}), images {a.images}, reps {a.reps}",
          flush=True)

    # poa first, before this process holds a CUDA context
    tc, rc_tc = poa_perf(a, "attention", deadline)
    simple, rc_simple = ({}, 0)
    if a.device == "cuda":
        simple, rc_simple = poa_perf(a, "attention", deadline, {"POA_CUDA_ATTN": "simple"})
    gemm, rc_gemm = poa_perf(a, "act_gemm_bias", deadline)
    gelu, rc_gelu = poa_perf(a, "act_gelu_fwd", deadline)
    shapes = attention_shapes(tc)
    failed = rc_tc != 0 or not shapes

    import torch
    run = timer(torch, a.device, a.reps)
    backends = ("explicit",) + TORCH_BACKENDS
    torch_t = {}  # (backend, shape label) -> (fwd, bwd)
    for shape in shapes:
        for be in backends:
            if time.monotonic() > deadline - 2:
                print(f"PyTorch {be} at {shape[0]}: not run, no time left", flush=True)
                torch_t[(be, shape[0])] = (float("nan"), float("nan"), None)
                continue
            try:
                torch_t[(be, shape[0])] = torch_attention(torch, a, shape, be, run)
            except Exception as e:  # noqa: BLE001 — a backend that cannot run is reported, not fatal
                if (be, "why") not in torch_t:
                    print(f"PyTorch {be}: {str(e).strip().splitlines()[0][:200]}", flush=True)
                    torch_t[(be, "why")] = ()
                torch_t[(be, shape[0])] = (float("nan"), float("nan"), None)
            if a.device == "cuda":
                torch.cuda.empty_cache()

    print("\nattention, microseconds (forward / backward); poa: test_backend_ops --perf")
    poa_names = ("poa tc", "poa simple") if a.device == "cuda" else ("poa", "-")
    head = f"{'shape':32s} {poa_names[0]:>21s} {poa_names[1]:>21s}" + "".join(
        f" {be:>21s}" for be in backends)
    print(head)
    cols = {"poa": [], "poa_simple": []}
    cols.update({be: [] for be in backends})
    for shape in shapes:
        lbl = shape[0]
        row = {"poa": (tc.get(("attention_fwd", lbl)), tc.get(("attention_bwd", lbl))),
               "poa_simple": (simple.get(("attention_fwd", lbl)),
                              simple.get(("attention_bwd", lbl)))}
        row.update({be: torch_t.get((be, lbl), (float("nan"),) * 2)[:2] for be in backends})
        line = f"{lbl:32s}"
        for key in cols:
            f, b = row[key]
            cols[key] += [f, b]
            line += f" {fmt(f) + ' / ' + fmt(b):>21s}"
        print(line)
    sums = {key: sum_or_nan(v) for key, v in cols.items()}
    det = {}
    for be in backends:
        flags = [torch_t[(be, sh[0])][2] for sh in shapes if (be, sh[0]) in torch_t]
        det[be] = ("n/a" if not flags or None in flags else "yes" if all(flags) else "no")
    print("PyTorch backward bit-identical over 3 runs at every shape: "
          + ", ".join(f"{be} {det[be]}" for be in backends)
          + "; poa's always (no atomics; test_backend_ops checks repeat runs)")
    torch_sums = {be: sums[be] for be in backends if not math.isnan(sums[be])}
    best = min(torch_sums, key=torch_sums.get) if torch_sums else "none"
    best_ms = torch_sums[best] / 1e3 if torch_sums else float("nan")
    poa_ms = sums["poa"] / 1e3
    print(f"sum of forward + backward over the shapes, ms: {poa_names[0]} {poa_ms:.3f}, "
          f"poa simple {sums['poa_simple'] / 1e3:.3f}, "
          + ", ".join(f"{be} {sums[be] / 1e3:.3f}" for be in backends))

    # fc1 + GELU at ViT-L/16's rows
    fc1 = next(((s, t) for (op, s), t in gemm.items() if op == "act_gemm_bias"
                and s.startswith("ViT-L/16 fc1")), None)
    gl = next((t for (op, s), t in gelu.items() if op == "act_gelu_fwd"
               and s.startswith("ViT-L/16")), None)
    poa_fc1 = float("nan") if fc1 is None or gl is None else fc1[1] + gl
    tf = {"linear": float("nan"), "linear+gelu": float("nan"), "fused_tanh": float("nan")}
    if fc1 is not None and time.monotonic() < deadline - 2:
        m = re.search(r"M=(\d+) N=(\d+) K=(\d+)", fc1[0])
        try:
            tf = torch_fc1_gelu(torch, a, int(m.group(1)), int(m.group(2)), int(m.group(3)), run)
        except Exception as e:  # noqa: BLE001 — reported, not fatal
            print(f"PyTorch fc1 + GELU: {str(e).strip().splitlines()[0][:200]}", flush=True)
    print(f"\nfc1 + GELU, ViT-L/16 ({fc1[0] if fc1 else 'no poa figure'}), microseconds: "
          f"poa act_gemm_bias {fmt(fc1[1] if fc1 else None)} + act_gelu_fwd {fmt(gl)} = "
          f"{fmt(poa_fc1)}; PyTorch F.linear {fmt(tf['linear'])}, F.linear + F.gelu "
          f"{fmt(tf['linear+gelu'])}, _addmm_activation (fused, tanh) {fmt(tf['fused_tanh'])}")
    failed = (failed or rc_gemm != 0 or rc_gelu != 0 or not torch_sums
              or (a.device == "cuda" and rc_simple != 0))
    ratio = best_ms / poa_ms if poa_ms > 0 else float("nan")
    print(f"bench_ops_gpu: done in {time.monotonic() - t_all:.0f}s", flush=True)
    print(f"RESULT bench=ops_gpu gpu={gpu.replace(' ', '_')} attn_poa_ms={poa_ms:.3f} "
          f"attn_poa_simple_ms={sums['poa_simple'] / 1e3:.3f} attn_torch_best={best} "
          f"attn_torch_ms={best_ms:.3f} ratio_attn={ratio:.3f} "
          f"attn_cudnn_ms={sums['cudnn'] / 1e3:.3f} attn_flash_ms={sums['flash'] / 1e3:.3f} "
          f"cudnn_deterministic={det['cudnn']} flash_deterministic={det['flash']} "
          f"fc1_gelu_poa_us={poa_fc1:.1f} fc1_gelu_torch_us={tf['linear+gelu']:.1f} "
          f"fc1_gelu_fused_tanh_us={tf['fused_tanh']:.1f} torch={torch.__version__}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
