#!/usr/bin/env python3
"""bench_step.py — the complete POA training step in PyTorch next to poa's C step.

The PyTorch step is the reference of tests/reference/step_ref.py in float32 (poa_model.py's
official module tree, loss_ref.py's official loss composition, batch-subset drop path 0.2,
iBOT on), with the official optimizer set-up: AdamW over fused parameter groups (foreach),
clip_grad_norm_ per module, foreach EMA.  For each config it times it with 1 and 2 threads,
keeps the best, then runs the C benchmark (bench_step, OMP_NUM_THREADS=--threads) on the same
batch shape, elastic sub-network and masks, which prints the side-by-side RESULT line.  Figures
are medians of --reps timed steps after one warm-up step.

usage: bench_step.py --c-bench PATH [--threads 2] [--reps 3] [--configs demo,vit_base]
"""

import argparse
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


def torch_img_s(arch, B, V, threads, reps):
    torch.set_num_threads(threads)
    st = TorchStep(arch, B, V)
    times = []
    for r in range(reps + 1):
        t0 = time.perf_counter()
        loss = st.step()
        dt = time.perf_counter() - t0
        assert math.isfinite(loss)
        if r > 0:
            times.append(dt)
    times.sort()
    return B / times[len(times) // 2], times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c-bench", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--configs", default="demo,vit_base")
    args = ap.parse_args()
    results = []
    for arch in args.configs.split(","):
        B, V = SETUPS[arch]
        w, d = middle_subnet(CONFIGS[arch])
        per = {n: torch_img_s(arch, B, V, n, args.reps) for n in (1, 2)}
        best = max(v[0] for v in per.values())
        print(f"torch {torch.__version__} config={arch} batch={B} local={V} elastic={w}x{d} "
              + " ".join(f"img_s@{n}t={v[0]:.3f} (step {v[1]:.3f}s)" for n, v in per.items()),
              flush=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        out = subprocess.run([args.c_bench, "--config", arch, "--batch", str(B), "--local", str(V),
                              "--width", str(w), "--depth", str(d), "--reps", str(args.reps),
                              "--torch-img-s", f"{best:.4f}"], env=env, check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("RESULT"):
                results.append(line)
            else:
                print(line, flush=True)
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
