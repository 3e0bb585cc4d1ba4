#!/usr/bin/env python3
"""step_ref.py -- PyTorch reference of complete POA training steps for tests/step/test_step_parity.sh.

The TINY model (docs/algorithm.md §12.1) of poa_model.py, a student with "trained-like" random
parameters (LayerScale ~1, so that every block's gradient matters) and a teacher near it, trained
for one or more iterations exactly as the official train.py / ssl_meta_arch.py do (re-stated from
docs/algorithm.md §7 and §8), in float64:

  schedules (official CosineScheduler, TINY lengths) -> teacher forward (no drop path) -> SK
  targets over the union of the rank groups -> per group intact and elastic student forward
  with the given sub-network, masks and drop-path decisions -> heads -> loss (loss_ref.py) ->
  mean over groups -> backward -> clip_grad_norm_ per module (backbone, dino_head) -> AdamW with
  the official parameter groups (layer decay 0.9, patch-embed x0.2, no wd on bias/norm/gamma,
  last-layer lr 0 in the first epoch) -> EMA of the teacher.

HDF5 layout (keys are the official checkpoint keys, backbone./dino_head.):
  /init/student/<key>, /init/teacher/<key>            float32 initial values (both sides start
                                                       from exactly these numbers)
  /hparams (attrs)                                     schedule hyper-parameters
  /cases/<name> (attrs G, B, V, it0, n_steps)
     step<k>/global_crops [G,2B,3,32,32], local_crops [G,VB,3,16,16], masks u8 [G,2B,16],
             subnets i32 [G,2], droppath_g<g>_c<c> f32 [L,2,n] (c: intact-global, intact-local,
             elastic-global, elastic-local; batch subsets or per-sample Bernoulli scales; absent =
             no drop path)
             slots f64 (src/model/loss.h layout, mean over groups), attrs total, lr, last_layer_lr,
             wd, momentum, teacher_temp, grad_norm_backbone, grad_norm_head
             grads/<key> f64 (before clipping)
     final/params/<key>, final/exp_avg/<key>, final/exp_avg_sq/<key>, final/teacher/<key> f64

usage: step_ref.py OUT.h5
"""
import math
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loss_ref  # noqa: E402
import poa_model  # noqa: E402

DT = torch.float64
ARCH = "tiny"
B, V = 4, 2
LAM, W_DINO, W_KOLEO, W_IBOT = 0.8, 1.0, 0.1, 1.0
CLIP = 1.5
LAYER_DECAY, PATCH_EMBED_LR_MULT = 0.9, 0.2
# TINY schedules (docs/algorithm.md §12.1): 4 epochs of 4 iterations; iBOT from epoch 1 here so that
# one short run crosses both the last-layer freeze and the iBOT start.
HP = dict(epoch_length=4, epochs=4, lr=0.01, min_lr=2e-5, warmup_epochs=1, weight_decay=0.04,
          weight_decay_end=0.4, momentum_teacher=0.992, final_momentum_teacher=0.9999,
          warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_teacher_temp_epochs=2,
          freeze_last_layer_epochs=1, ibot_activate_epochs=1, iter_num_scale=0.78)

# name, G, first iteration, steps, sub-networks per step and group, drop path
CASES = [
    ("freeze_epoch_ibot_off", 1, 1, 1, [[(48, 3)]], True),
    ("ibot_on_smallest", 1, 9, 1, [[(32, 2)]], False),
    ("intact_as_elastic", 1, 6, 1, [[(64, 4)]], True),
    ("two_groups", 2, 10, 1, [[(48, 2), (32, 4)]], True),
    ("five_steps", 1, 2, 5, [[(48, 3)], [(32, 2)], [(64, 2)], [(32, 4)], [(48, 4)]], True),
    # per-sample (Bernoulli) drop path (rate 0.4; see droppath_bernoulli)
    ("bernoulli_droppath", 2, 5, 2, [[(48, 3), (32, 2)], [(64, 4), (48, 2)]], "bernoulli"),
]


class CosineScheduler:
    """The official poa/utils/utils.py CosineScheduler (numpy float64)."""

    def __init__(self, base_value, final_value, total_iters, warmup_iters=0, start_warmup_value=0,
                 iter_num_scale=1.0):
        self.final_value, self.total_iters = final_value, total_iters
        warmup = np.linspace(start_warmup_value, base_value, warmup_iters)
        iters = np.arange(int(total_iters / iter_num_scale) - warmup_iters)
        sched = final_value + 0.5 * (base_value - final_value) * (
            1 + np.cos(np.pi * iters / len(iters)))
        self.schedule = np.concatenate((warmup, sched[: total_iters - warmup_iters]))

    def __getitem__(self, it):
        return self.final_value if it >= self.total_iters else self.schedule[it]


def schedules():
    I, T, s = HP["epoch_length"], HP["epochs"] * HP["epoch_length"], HP["iter_num_scale"]
    lr = CosineScheduler(HP["lr"], HP["min_lr"], T, HP["warmup_epochs"] * I, 0, s)
    last = CosineScheduler(HP["lr"], HP["min_lr"], T, HP["warmup_epochs"] * I, 0, s)
    last.schedule[: HP["freeze_last_layer_epochs"] * I] = 0
    wd = CosineScheduler(HP["weight_decay"], HP["weight_decay_end"], T, 0, 0, s)
    mom = CosineScheduler(HP["momentum_teacher"], HP["final_momentum_teacher"], T, 0, 0, s)
    tw = HP["warmup_teacher_temp_epochs"] * I
    tt = CosineScheduler(HP["teacher_temp"], HP["teacher_temp"], tw, tw, HP["warmup_teacher_temp"], s)
    return lr, last, wd, mom, tt


def randomize(vit, head, gen, scale=1.0):
    with torch.no_grad():
        for name, p in list(vit.named_parameters()) + list(head.named_parameters()):
            r = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if name.endswith("gamma") or name.endswith("weight_g"):
                p.copy_(torch.rand(p.shape, generator=gen, dtype=torch.float64) + 0.5)
            elif name == "mask_token":
                p.zero_()  # zero until iBOT starts (docs/algorithm.md §8.1)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * r)
            elif name.endswith("bias"):
                p.copy_(0.2 * r)
            elif name in ("cls_token", "pos_embed"):
                p.copy_(0.5 * r)
            elif name.endswith("weight_v"):
                p.copy_(r)
            else:
                p.copy_(r * p[0].numel() ** -0.5 * scale)


def official_groups(vit, head):
    """get_params_groups_with_decay for the backbone (n_blocks = L_max) and the heads."""
    n_blocks = vit.max_depth
    groups = []
    for module, is_backbone in ((vit, True), (head, False)):
        for name, p in module.named_parameters():
            layer_id = n_blocks + 1
            if is_backbone:
                if any(k in name for k in ("pos_embed", "patch_embed", "mask_token", "cls_token")):
                    layer_id = 0
                elif "blocks." in name:
                    layer_id = int(name[name.find("blocks."):].split(".")[1]) + 1
                lr_mult = LAYER_DECAY ** (n_blocks + 1 - layer_id)
            else:
                lr_mult = 1.0  # dino_head: no blocks, layer id n_blocks + 1 of a 0-block model
            wd_mult = 0.0 if (name.endswith(".bias") or "norm" in name or "gamma" in name) else 1.0
            if "patch_embed" in name:
                lr_mult *= PATCH_EMBED_LR_MULT
            groups.append(dict(params=[p], lr_multiplier=lr_mult, wd_multiplier=wd_mult,
                               is_last_layer="last_layer" in name))
    return groups


def clone(cfg, vit, head, dtype):
    """Fresh modules with the values of vit/head (weight-normalised layers cannot deepcopy)."""
    v = poa_model.DynamicViT(**cfg).to(dtype)
    h = poa_model.MDINOHead(cfg["max_embed_dim"], **cfg).to(dtype)
    v.load_state_dict(vit.state_dict())
    h.load_state_dict(head.state_dict())
    return v, h


def keys_of(vit, head):
    return [("backbone." + n, p) for n, p in vit.named_parameters()] + \
           [("dino_head." + n, p) for n, p in head.named_parameters()]


def droppath_keep(gen, n_blocks, n, rate=0.2):
    k = max(int(n * (1 - rate)), 1)
    keeps, scale = [], np.zeros((n_blocks, 2, n), dtype=np.float32)
    for blk in range(n_blocks):
        pair = []
        for br in range(2):
            keep = sorted(torch.randperm(n, generator=gen)[:k].tolist())
            scale[blk, br, keep] = n / k
            pair.append(keep)
        keeps.append(tuple(pair))
    return keeps, scale


def droppath_bernoulli(gen, n_blocks, n, rate=0.4):
    """The official per-sample DropPath: per block, branch and image a Bernoulli(1 - rate) keep,
    divided by 1 - rate; the scales in float32 as the C step receives them."""
    keep_p = 1 - rate
    scale = (torch.rand((n_blocks, 2, n), generator=gen, dtype=DT) < keep_p).to(DT) / keep_p
    # the rare outcomes, made certain: the last block's attention branch keeps every image, its
    # MLP branch none
    scale[-1, 0] = 1 / keep_p
    scale[-1, 1] = 0
    scale = scale.float()
    return [(scale[b, 0], scale[b, 1]) for b in range(n_blocks)], scale.numpy()


def random_masks(gen, n_crops, N):
    masks = torch.zeros(n_crops, N, dtype=torch.bool)
    for c in torch.randperm(n_crops, generator=gen)[: n_crops // 2].tolist():
        n = int(torch.randint(1, N // 2 + 1, (1,), generator=gen))
        masks[c, torch.randperm(N, generator=gen)[:n]] = True
    return masks


def one_step(st, cfg, it, G, subnets, use_dp, gen, out):
    vit, head, t_vit, t_head, opt, groups = st
    lr_s, last_s, wd_s, mom_s, tt_s = schedules()
    lr, llr, wd, mom, tt = lr_s[it], last_s[it], wd_s[it], mom_s[it], tt_s[it]
    ibot = it >= HP["ibot_activate_epochs"] * HP["epoch_length"]
    for g in groups:
        g["lr"] = (llr if g["is_last_layer"] else lr) * g["lr_multiplier"]
        g["weight_decay"] = wd * g["wd_multiplier"]
    Sg, Sl, P = cfg["global_crops_size"], cfg["local_crops_size"], cfg["patch_size"]
    N = (Sg // P) ** 2
    H = len(cfg["n_prototypes"])
    L = vit.max_depth

    glob = torch.randn((G, 2 * B, 3, Sg, Sg), generator=gen, dtype=DT).float()
    loc = torch.randn((G, V * B, 3, Sl, Sl), generator=gen, dtype=DT).float()
    masks = torch.stack([random_masks(gen, 2 * B, N) for _ in range(G)])
    out.create_dataset("global_crops", data=glob.numpy())
    out.create_dataset("local_crops", data=loc.numpy())
    out.create_dataset("masks", data=masks.numpy().astype(np.uint8))
    out.create_dataset("subnets", data=np.array(subnets, dtype=np.int32))
    glob, loc = glob.to(DT), loc.to(DT)

    # teacher (docs/algorithm.md §7, step 4): cls rows of every group, masked patch rows, SK over
    # the union
    with torch.no_grad():
        t_vit.set_subnet(t_vit.max_embed_dim, t_vit.max_depth)
        t_cls, t_patch = [], []
        for g in range(G):
            tok = t_vit(glob[g])
            t_cls.append(tok[:, 0])
            if ibot:
                t_patch.append(tok[:, 1:].flatten(0, 1)[masks[g].flatten()])
        targets = [[None] * H for _ in range(G)]
        ptargets = [[None] * H for _ in range(G)]
        for h in range(H):
            T = loss_ref.sinkhorn_knopp(t_head.forward_one(h, torch.cat(t_cls)), tt, dtype=DT)
            for g in range(G):
                targets[g][h] = T[2 * B * g: 2 * B * (g + 1)]
            if ibot:
                rows = torch.cat(t_patch)
                Tp = loss_ref.sinkhorn_knopp(t_head.forward_one(h, rows), tt, dtype=DT)
                at = 0
                for g in range(G):
                    n = t_patch[g].shape[0]
                    ptargets[g][h] = Tp[at: at + n]
                    at += n

    opt.zero_grad(set_to_none=False)
    c = dict(B=B, V=V, K=list(cfg["n_prototypes"]), lam=LAM, wd=W_DINO, kw=W_KOLEO, iw=W_IBOT,
             ibot=ibot)
    total = 0
    slots = np.zeros(H * 6 + 2)
    for g in range(G):
        branch = {}
        for br, (w, d) in (("is", (vit.max_embed_dim, L)), ("es", subnets[g])):
            vit.set_subnet(w, d)
            calls = {}
            for kind, x, m_ in (("global", glob[g], masks[g] if ibot else None),
                                ("local", loc[g], None)):
                c_idx = {"is": 0, "es": 2}[br] + (kind == "local")
                keeps = None
                if use_dp == "bernoulli":
                    keeps, scale = droppath_bernoulli(gen, d, x.shape[0])
                    out.create_dataset(f"droppath_g{g}_c{c_idx}", data=scale)
                elif use_dp:
                    keeps, scale = droppath_keep(gen, d, x.shape[0])
                    out.create_dataset(f"droppath_g{g}_c{c_idx}", data=scale)
                calls[kind] = vit(x, m_, keeps)
            rows = [calls["global"][:, 0], calls["local"][:, 0]]
            if ibot:
                rows.append(calls["global"][:, 1:].flatten(0, 1)[masks[g].flatten()])
            z = torch.cat(rows)
            branch[br] = (z, [head.forward_one(h, z) for h in range(H)])
        n_m = int(masks[g].sum()) if ibot else 0
        counts = masks[g].sum(dim=1)
        mask_w = (1.0 / counts.clamp(min=1).to(DT)).unsqueeze(-1).expand_as(masks[g])[masks[g]]
        g_in = dict(s_is=branch["is"][1], s_es=branch["es"][1], z_is=branch["is"][0][: 2 * B],
                    z_es=branch["es"][0][: 2 * B], mask_w=mask_w if ibot else None, n_m=n_m)
        contrib, value = loss_ref.group_terms(c, g_in, targets[g], ptargets[g])
        total = total + sum(contrib.values()) / G
        for h in range(H):
            for t, name in enumerate(loss_ref.TERMS[:6]):
                slots[h * 6 + t] += value[name][h] / G
        slots[H * 6] += value["koleo_is"] / G
        slots[H * 6 + 1] += value["koleo_es"] / G
    total.backward()
    # FSDP: every tensor gets a (zero) gradient (docs/algorithm.md §8.1)
    for _, p in keys_of(vit, head):
        if p.grad is None:
            p.grad = torch.zeros_like(p)

    gg = out.create_group("grads")
    for key, p in keys_of(vit, head):
        gg.create_dataset(key, data=p.grad.detach().numpy())
    norms = [float(torch.nn.utils.clip_grad_norm_(list(m.parameters()), CLIP))
             for m in (vit, head)]
    opt.step()
    with torch.no_grad():
        tp = list(t_vit.parameters()) + list(t_head.parameters())
        sp = list(vit.parameters()) + list(head.parameters())
        torch._foreach_mul_(tp, mom)
        torch._foreach_add_(tp, sp, alpha=1 - mom)
    out.create_dataset("slots", data=slots)
    out.attrs.update(total=float(total), lr=lr, last_layer_lr=llr, wd=wd, momentum=mom,
                     teacher_temp=tt, grad_norm_backbone=norms[0], grad_norm_head=norms[1],
                     ibot=int(ibot), it=it)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    torch.set_num_threads(1)
    cfg = poa_model.CONFIGS[ARCH]
    gen = torch.Generator().manual_seed(4242)
    vit0 = poa_model.DynamicViT(**cfg)
    head0 = poa_model.MDINOHead(cfg["max_embed_dim"], **cfg)
    randomize(vit0, head0, gen)
    t_vit0, t_head0 = clone(cfg, vit0, head0, torch.float32)
    with torch.no_grad():  # the teacher near the student, as after some EMA steps
        for p in list(t_vit0.parameters()) + list(t_head0.parameters()):
            p.add_(0.05 * p.abs().mean() * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    for m in (vit0, head0, t_vit0, t_head0):  # both sides start from the same float32 values
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(p.float().double())

    tmp = sys.argv[1] + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["arch"] = ARCH
        for key, p in keys_of(vit0, head0):
            f.create_dataset("init/student/" + key, data=p.detach().float().numpy())
        for key, p in keys_of(t_vit0, t_head0):
            f.create_dataset("init/teacher/" + key, data=p.detach().float().numpy())
        hp = f.create_group("hparams")
        hp.attrs.update(HP)
        hp.attrs.update(B=B, V=V, lambda_ie=LAM, dino_weight=W_DINO, koleo_weight=W_KOLEO,
                        ibot_weight=W_IBOT, clip_grad=CLIP)
        for name, G, it0, n_steps, subnets, use_dp in CASES:
            vit, head = clone(cfg, vit0, head0, DT)
            t_vit, t_head = clone(cfg, t_vit0, t_head0, DT)
            groups = official_groups(vit, head)
            opt = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)
            st = (vit, head, t_vit, t_head, opt, groups)
            grp = f.create_group("cases/" + name)
            grp.attrs.update(G=G, B=B, V=V, it0=it0, n_steps=n_steps, droppath=int(bool(use_dp)))
            for k in range(n_steps):
                one_step(st, cfg, it0 + k, G, subnets[k], use_dp, gen,
                         grp.create_group(f"step{k}"))
            fin = grp.create_group("final")
            for key, p in keys_of(vit, head):
                fin.create_dataset("params/" + key, data=p.detach().numpy())
                state = opt.state[p]
                fin.create_dataset("exp_avg/" + key, data=state["exp_avg"].numpy())
                fin.create_dataset("exp_avg_sq/" + key, data=state["exp_avg_sq"].numpy())
            for key, p in keys_of(t_vit, t_head):
                fin.create_dataset("teacher/" + key, data=p.detach().numpy())
    os.replace(tmp, sys.argv[1])


if __name__ == "__main__":
    main()
