#!/usr/bin/env python3
"""model_ref.py — PyTorch parity data for the C model engine (tests/model/test_model_parity).

Writes one HDF5 file with a random ("trained-like": LayerScale ~1, non-trivial norms and biases,
so that every op's gradient matters) parameter set of the tiny config and, per case, the inputs,
the forward outputs and the gradient of every parameter, computed in float64 by the reference
model of poa_model.py:

    /params/<key>                     float32, official checkpoint keys (backbone./dino_head.)
    /cases/<name>            attrs:   kind ("vit" | "head"), width, depth, B, H, W | head, rows
      vit:   images f32 [B,3,H,W], masks u8 [B,N] (optional), droppath f32 [L,2,B] (optional),
             dout f32 [B,T,d] (upstream gradient), out f64 [B,T,d], grads/<key> f64
      head:  z f32 [R,d], dlogits f32 [R,K], logits f64 [R,K], dz f64 [R,d], grads/<key> f64

The loss of a case is Σ out·dout (resp. Σ logits·dlogits), so grads are vector-Jacobian
products with a random cotangent.

usage: model_ref.py --out FILE [--arch tiny] [--seed N]
"""

import argparse
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # never write into a (possibly read-only) source tree
import poa_model  # noqa: E402

# (name, width, depth, B, H, W, masked, drop-path rate or None)
VIT_CASES = [
    ("intact_global", 64, 4, 2, 32, 32, False, None),
    ("intact_local", 64, 4, 3, 16, 16, False, None),
    ("elastic_48_3_global_masked", 48, 3, 2, 32, 32, True, None),
    ("elastic_32_2_local", 32, 2, 3, 16, 16, False, None),
    ("elastic_32_4_global", 32, 4, 2, 32, 32, False, None),
    ("elastic_64_2_global_masked", 64, 2, 2, 32, 32, True, None),
    ("elastic_48_2_rect_24x16", 48, 2, 2, 24, 16, False, None),
    ("intact_global_masked_droppath", 64, 4, 4, 32, 32, True, 0.5),
    ("elastic_48_3_local_droppath", 48, 3, 5, 16, 16, False, 0.2),
]
HEAD_ROWS = 5


def randomize_(vit, head, gen):
    """Values away from the initialisation so that no branch is negligible."""
    def normal_(p, mean, std):
        p.copy_(torch.randn(p.shape, generator=gen) * std + mean)

    with torch.no_grad():
        for name, p in list(vit.named_parameters()) + list(head.named_parameters()):
            if name.endswith("gamma"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            elif name.endswith("weight_g"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            elif name.endswith("weight_v"):
                normal_(p, 0.0, 1.0)
            elif "norm" in name and name.endswith("weight"):
                normal_(p, 1.0, 0.2)
            elif name.endswith("bias"):
                normal_(p, 0.0, 0.2)
            elif name in ("cls_token", "pos_embed", "mask_token"):
                normal_(p, 0.0, 0.5)
            else:  # linear / conv weights
                fan_in = p[0].numel()
                normal_(p, 0.0, fan_in ** -0.5)


def droppath_decisions(rng, depth, n, rate):
    """Per executed block (keep_attn, keep_mlp) index lists and the matching scale array."""
    k = max(int(n * (1 - rate)), 1)
    scale = np.zeros((depth, 2, n), dtype=np.float32)
    keeps = []
    for blk in range(depth):
        pair = []
        for br in range(2):
            keep = sorted(rng.permutation(n)[:k].tolist())
            scale[blk, br, keep] = n / k
            pair.append(keep)
        keeps.append(tuple(pair))
    return keeps, scale


def write_grads(group, prefix, module):
    g = group.create_group("grads") if "grads" not in group else group["grads"]
    for name, p in module.named_parameters():
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        g.create_dataset(prefix + name, data=grad.detach().numpy().astype(np.float64))


def vit_case(f, vit, head, cfg, case, gen, rng):
    name, width, depth, B, H, W, masked, rate = case
    P = cfg["patch_size"]
    N = (H // P) * (W // P)
    T = 1 + N
    grp = f.create_group(f"cases/{name}")
    grp.attrs.update(kind="vit", width=width, depth=depth, B=B, H=H, W=W)
    images = torch.randn((B, 3, H, W), generator=gen)
    grp.create_dataset("images", data=images.numpy())
    masks = None
    if masked:
        masks = torch.rand((B, N), generator=gen) < 0.4
        masks[0, 0] = True
        grp.create_dataset("masks", data=masks.numpy().astype(np.uint8))
    keeps = None
    if rate is not None:
        keeps, scale = droppath_decisions(rng, depth, B, rate)
        grp.create_dataset("droppath", data=scale)
    dout = torch.randn((B, T, width), generator=gen)
    grp.create_dataset("dout", data=dout.numpy())

    vit.zero_grad(set_to_none=True)
    vit.set_subnet(width, depth)
    out = vit(images.double(), masks, keeps)
    (out * dout.double()).sum().backward()
    grp.create_dataset("out", data=out.detach().numpy())
    write_grads(grp, "backbone.", vit)


def head_case(f, head, cfg, h, width, gen):
    name = f"head{h}_width{width}"
    K = cfg["n_prototypes"][h]
    grp = f.create_group(f"cases/{name}")
    grp.attrs.update(kind="head", head=h, width=width, rows=HEAD_ROWS)
    z = torch.randn((HEAD_ROWS, width), generator=gen)
    dlogits = torch.randn((HEAD_ROWS, K), generator=gen)
    grp.create_dataset("z", data=z.numpy())
    grp.create_dataset("dlogits", data=dlogits.numpy())
    head.zero_grad(set_to_none=True)
    zd = z.double().requires_grad_(True)
    logits = head.forward_one(h, zd)
    (logits * dlogits.double()).sum().backward()
    grp.create_dataset("logits", data=logits.detach().numpy())
    grp.create_dataset("dz", data=zd.grad.numpy())
    write_grads(grp, "dino_head.", head)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", default="tiny")
    ap.add_argument("--seed", type=int, default=20240808)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = poa_model.CONFIGS[args.arch]
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    vit = poa_model.DynamicViT(**cfg)
    head = poa_model.MDINOHead(cfg["max_embed_dim"], **cfg)
    randomize_(vit, head, gen)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["arch"] = args.arch
        for prefix, module in (("backbone.", vit), ("dino_head.", head)):
            for name, t in module.state_dict().items():
                f.create_dataset("params/" + prefix + name, data=t.numpy().astype(np.float32))
        vit.double()
        head.double()
        for case in VIT_CASES:
            vit_case(f, vit, head, cfg, case, gen, rng)
        widths = sorted({c[1] for c in VIT_CASES}, reverse=True)
        for h in range(len(cfg["n_prototypes"])):
            for width in widths:
                head_case(f, head, cfg, h, width, gen)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
