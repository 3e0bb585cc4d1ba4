#!/usr/bin/env python3
"""bench_step.py — the complete POA training step in PyTorch next to poa's C step.

The PyTorch step is the reference of tests/reference/step_ref.py in float32 (poa_model.py's
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
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import loss_ref  # noqa: E402
import poa_model  # noqa: E402

CONFIGS = dict(poa_model.CONFIGS)
CONFIGS["vit_base"] = dict(img_size=224, patch_size=16, max_embed_dim=768, min_embed_dim=384,
                           max_depth=12, min_depth=6, head_dim=64,
                           n_prototypes=(8192, 16384, 32768, 65536), hidden_dim=2048,
                           bottleneck_dim=256, global_crops_size=224, local_crops_size=96)
# config → (images per step, local crops); the elastic sub-network is the middle of the ranges
SETUPS = {"demo": (32, 8), "vit_base": (2, 8)}


def middle_subnet(cfg):
    widths = list(range(cfg["min_embed_dim"], cfg["max_embed_dim"] + 1, cfg["head_dim"]))
    depths = list(range(cfg["min_depth"], cfg["max_depth"] + 1))
    return widths[len(widths) // 2], depths[len(depths) // 2]


def masks_like_c(n_crops, N):
    """bench_step.c's masks: every other crop, every third patch starting at crop % 3."""
    m = torch.zeros(n_crops, N, dtype=torch.bool)
    for c in range(0, n_crops, 2):
        m[c, c % 3::3] = True
    return m


def droppath(n_blocks, n, rate=0.2):
    k = max(int(n * (1 - rate)), 1)
    return [tuple(sorted(torch.randperm(n)[:k].tolist()) for _ in range(2)) for _ in range(n_blocks)]


def fused_groups(vit, head):
    """The official parameter groups (layer decay 0.9, patch embed x0.2, no wd on bias/norm/gamma,
    last layer), fused by (lr_mult, wd_mult, last_layer) as get_params_groups does."""
    fused = {}
    n_blocks = vit.max_depth
    for module, backbone in ((vit, True), (head, False)):
        for name, p in module.named_parameters():
            layer = n_blocks + 1
            if backbone and any(k in name for k in ("pos_embed", "patch_embed", "mask_token",
                                                     "cls_token")):
                layer = 0
            elif backbone and "blocks." in name:
                layer = int(name.split(".")[1]) + 1
            lr_mult = 0.9 ** (n_blocks + 1 - layer) if backbone else 1.0
            if "patch_embed" in name:
                lr_mult *= 0.2
            wd_mult = 0.0 if name.endswith(".bias") or "norm" in name or "gamma" in name else 1.0
            key = (lr_mult, wd_mult, "last_layer" in name)
            fused.setdefault(key, []).append(p)
    return [dict(params=ps, lr=1e-3 * k[0], weight_decay=0.04 * k[1], foreach=True)
            for k, ps in fused.items()]


class TorchStep:
    def __init__(self, arch, B, V):
        torch.manual_seed(0)
        self.cfg = cfg = CONFIGS[arch]
        self.B, self.V = B, V
        self.vit = poa_model.DynamicViT(**cfg)
        self.head = poa_model.MDINOHead(cfg["max_embed_dim"], **cfg)
        self.t_vit = poa_model.DynamicViT(**cfg)
        self.t_head = poa_model.MDINOHead(cfg["max_embed_dim"], **cfg)
        self.t_vit.load_state_dict(self.vit.state_dict())
        self.t_head.load_state_dict(self.head.state_dict())
        for p in list(self.t_vit.parameters()) + list(self.t_head.parameters()):
            p.requires_grad_(False)
        self.opt = torch.optim.AdamW(fused_groups(self.vit, self.head), betas=(0.9, 0.999))
        Sg, Sl, P = cfg["global_crops_size"], cfg["local_crops_size"], cfg["patch_size"]
        self.glob = torch.randn(2 * B, 3, Sg, Sg)
        self.loc = torch.randn(V * B, 3, Sl, Sl)
        self.masks = masks_like_c(2 * B, (Sg // P) ** 2)
        self.subnet = middle_subnet(cfg)

    def step(self):
        B, V, H = self.B, self.V, len(self.cfg["n_prototypes"])
        vit, head, masks = self.vit, self.head, self.masks
        with torch.no_grad():
            self.t_vit.set_subnet(vit.max_embed_dim, vit.max_depth)
            tok = self.t_vit(self.glob)
            t_patch = tok[:, 1:].flatten(0, 1)[masks.flatten()]
            targets = [loss_ref.sinkhorn_knopp(self.t_head.forward_one(h, tok[:, 0]), 0.07)
                       for h in range(H)]
            ptargets = [loss_ref.sinkhorn_knopp(self.t_head.forward_one(h, t_patch), 0.07)
                        for h in range(H)]
        self.opt.zero_grad(set_to_none=True)
        branch = {}
        for br, (w, d) in (("is", (vit.max_embed_dim, vit.max_depth)), ("es", self.subnet)):
            vit.set_subnet(w, d)
            g = vit(self.glob, masks, droppath(d, 2 * B))
            l = vit(self.loc, None, droppath(d, V * B))
            z = torch.cat((g[:, 0], l[:, 0], g[:, 1:].flatten(0, 1)[masks.flatten()]))
            branch[br] = (z, [head.forward_one(h, z) for h in range(H)])
        counts = masks.sum(dim=1)
        mask_w = (1.0 / counts.clamp(min=1)).unsqueeze(-1).expand_as(masks)[masks]
        c = dict(B=B, V=V, K=list(self.cfg["n_prototypes"]), lam=0.8, wd=1.0, kw=0.1, iw=1.0,
                 ibot=True)
        g_in = dict(s_is=branch["is"][1], s_es=branch["es"][1], z_is=branch["is"][0][: 2 * B],
                    z_es=branch["es"][0][: 2 * B], mask_w=mask_w, n_m=int(masks.sum()))
        contrib, _ = loss_ref.group_terms(c, g_in, targets, ptargets)
        loss = sum(contrib.values())
        loss.backward()
        for p in list(vit.parameters()) + list(head.parameters()):
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for m in (vit, head):
            torch.nn.utils.clip_grad_norm_(list(m.parameters()), 1.5)
        self.opt.step()
        with torch.no_grad():
            tp = list(self.t_vit.parameters()) + list(self.t_head.parameters())
            sp = list(vit.parameters()) + list(head.parameters())
            torch._foreach_mul_(tp, 0.995)
            torch._foreach_add_(tp, sp, alpha=0.005)
        return float(loss)


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
