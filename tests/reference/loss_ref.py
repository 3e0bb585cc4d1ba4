#!/usr/bin/env python3
"""loss_ref.py -- PyTorch reference of the POA loss for tests/step/test_loss_parity.sh.

Writes random head logits and backbone features for a few cases into an HDF5 file, then computes
the loss of one POA iteration exactly as the official training code composes it (alipay/POA,
poa/train/ssl_meta_arch.py forward_backward and poa/loss/*.py, re-stated here from
docs/algorithm.md §6 and §13), with autograd, and stores:

  * every loss term (unweighted, mean over the rank groups) in the C "slot" layout of
    src/model/loss.h: per head [dino_is, dino_es1, distill_global, distill_local, ibot_is,
    ibot_es], then [koleo_is, koleo_es]; and the back-propagated total;
  * the Sinkhorn-Knopp targets (per group, natural crop order);
  * the gradient of the total w.r.t. every student logits matrix and feature matrix;
  * the same gradients for every term alone (its weighted contribution), so that a wrong
    backward of any single term is caught.

Rank groups: G groups of B images; Sinkhorn-Knopp runs over the union of all groups (what the
official code computes with one group per GPU and all-reduced sums); every group's loss is
computed on its own rows and the back-propagated loss is the mean over the groups (FSDP's
gradient averaging).

Row layout of a student logits matrix (src/model/loss.h): [2B global cls (crop 0 of every image,
then crop 1) | V_l*B local cls (local 0 of every image, ...) | n_m masked patches].

usage: loss_ref.py OUT.h5
"""
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

TERMS = ["dino_is", "dino_es1", "distill_global", "distill_local", "ibot_is", "ibot_es",
         "koleo_is", "koleo_es"]
N_HEAD_TERMS = 6

CASES = [
    # name, B, V_l, K per head, G, D (intact), d (elastic), iBOT, teacher temp, λ, w_dino, γ, w_ibot
    dict(name="ibot_off", B=4, V=2, K=[64, 128], G=1, D=32, d=16, ibot=False, tt=0.04,
         lam=0.8, wd=1.0, kw=0.1, iw=1.0),
    dict(name="ibot_on_two_groups", B=4, V=2, K=[64, 128], G=2, D=32, d=16, ibot=True, tt=0.07,
         lam=0.8, wd=1.0, kw=0.1, iw=1.0),
    dict(name="no_local_crops", B=5, V=0, K=[48], G=1, D=24, d=24, ibot=True, tt=0.055,
         lam=0.7, wd=1.0, kw=0.1, iw=1.0),
    dict(name="dino_weight_zero", B=3, V=3, K=[32, 40], G=2, D=16, d=8, ibot=True, tt=0.04,
         lam=0.8, wd=0.0, kw=0.1, iw=0.5),
]

STUDENT_TEMP = 0.1
DISTILL_TEMP = 0.1


# ------------------------------------------------------------------- the official pieces


def sinkhorn_knopp(teacher_output, teacher_temp, n_iterations=3, dtype=torch.float32):
    """DINOLoss.sinkhorn_knopp_teacher on one process holding every row (= all-reduced sums);
    the official code computes in float32, step_ref.py uses float64."""
    teacher_output = teacher_output.to(dtype)
    Q = torch.exp(teacher_output / teacher_temp).t()
    B = Q.shape[1]
    K = Q.shape[0]
    Q /= torch.sum(Q)
    for _ in range(n_iterations):
        Q /= torch.sum(Q, dim=1, keepdim=True)
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.t()


def dino_loss(student_list, teacher_list):
    """DINOLoss.forward: -sum over (student, teacher) pairs of mean_rows sum_k t*log_softmax."""
    total = 0
    for s in student_list:
        lsm = F.log_softmax(s / STUDENT_TEMP, dim=-1)
        for t in teacher_list:
            total = total - torch.sum(t * lsm, dim=-1).mean()
    return total


def koleo(x, eps=1e-8):
    """KoLeoLoss.forward."""
    x = F.normalize(x, eps=eps, p=2, dim=-1)
    dots = torch.mm(x, x.t())
    n = x.shape[0]
    dots.view(-1)[:: (n + 1)].fill_(-1)
    _, idx = torch.max(dots, dim=1)
    dist = torch.nn.PairwiseDistance(2, eps=1e-8)(x, x[idx])
    return -torch.log(dist + eps).mean()


def ibot_forward_masked(s, t, n_crops, masks_weight):
    """iBOTPatchLoss.forward_masked (the rows are exactly the masked patches)."""
    loss = torch.sum(t * F.log_softmax(s / STUDENT_TEMP, dim=-1), dim=-1)
    loss = loss * masks_weight
    return -loss.sum() / n_crops


# ------------------------------------------------------------------- one rank group


def group_terms(c, g_in, targets, ptargets, report=True):
    """The weighted contributions (term -> scalar tensor) of one rank group to the official
    loss accumulator, and the unweighted term values (term -> per-head list / scalar).
    report=False leaves the values at 0: no .item(), so that a GPU step is not synchronised
    by every term (benchmarks)."""

    def val(t):
        return t.item() if report else 0.0

    B, V, H, lam = c["B"], c["V"], len(c["K"]), c["lam"]
    P = 2 + max(2 * V, 1)
    contrib = {t: 0 for t in TERMS}
    value = {t: [0.0] * H for t in TERMS[:N_HEAD_TERMS]}
    for h in range(H):
        s1, s2 = g_in["s_is"][h], g_in["s_es"][h]
        # teacher rows [crop 1; crop 0] so that row r pairs with the student's global row r
        T = targets[h]
        T_swapped = torch.cat((T[B:], T[:B])).view(2, B, -1)
        s1_glob, s2_glob = s1[: 2 * B], s2[: 2 * B]
        s1_loc, s2_loc = s1[2 * B: (2 + V) * B], s2[2 * B: (2 + V) * B]
        if V > 0:
            is_loc = dino_loss(s1_loc.chunk(V), T_swapped) / P
            es_loc = dino_loss(s2_loc.chunk(V), T_swapped) / P
            contrib["dino_is"] = contrib["dino_is"] + c["wd"] * lam * is_loc / H
            contrib["dino_es1"] = contrib["dino_es1"] + c["wd"] * (1 - lam) * es_loc / H
            if c["wd"] > 0:  # poa computes (and reports) them only with dino.loss_weight > 0
                value["dino_is"][h] += val(is_loc)
                value["dino_es1"][h] += val(es_loc)
            vt = F.softmax(s1_loc.detach() / DISTILL_TEMP, dim=-1)
            dl = dino_loss([s2_loc], [vt])
            contrib["distill_local"] = contrib["distill_local"] + (1 - lam) * dl / H
            value["distill_local"][h] += val(dl)
        if c["wd"] > 0:
            is_glob = dino_loss([s1_glob], [T_swapped.flatten(0, 1)]) * 2 / P
            es_glob = dino_loss([s2_glob], [T_swapped.flatten(0, 1)]) * 2 / P
            contrib["dino_is"] = contrib["dino_is"] + c["wd"] * lam * is_glob / H
            contrib["dino_es1"] = contrib["dino_es1"] + c["wd"] * (1 - lam) * es_glob / H
            value["dino_is"][h] += val(is_glob)
            value["dino_es1"][h] += val(es_glob)
            vt = F.softmax(s1_glob.detach() / DISTILL_TEMP, dim=-1)
            dg = dino_loss([s2_glob], [vt])
            contrib["distill_global"] = contrib["distill_global"] + (1 - lam) * dg / H
            value["distill_global"][h] += val(dg)
        if c["ibot"] and c["iw"] > 0:
            r0 = (2 + V) * B
            for name, s, w in (("ibot_is", s1, lam), ("ibot_es", s2, 1 - lam)):
                ib = ibot_forward_masked(s[r0:], ptargets[h], 2 * B, g_in["mask_w"]) * 2 * (1 / 2)
                contrib[name] = contrib[name] + c["iw"] * w * ib / H
                value[name][h] += val(ib)
    if c["wd"] > 0 and c["kw"] > 0:
        k1 = sum(koleo(p) for p in g_in["z_is"].chunk(2))
        k2 = sum(koleo(p) for p in g_in["z_es"].chunk(2))
        contrib["koleo_is"] = c["kw"] * k1 / 2
        contrib["koleo_es"] = c["kw"] * k2 / 2
        value["koleo_is"] = val(k1)
        value["koleo_es"] = val(k2)
    else:
        value["koleo_is"] = value["koleo_es"] = 0.0
    return contrib, value


def make_inputs(c, gen):
    B, V, G = c["B"], c["V"], c["G"]
    groups = []
    for g in range(G):
        n_m = 0
        mask_w = torch.zeros(0)
        if c["ibot"]:
            # half of the 2B crops masked, with 1..4 masked patches each (weights 1/n_c)
            counts = [0] * (2 * B)
            for i in torch.randperm(2 * B, generator=gen)[:B].tolist():
                counts[i] = int(torch.randint(1, 5, (1,), generator=gen))
            n_m = sum(counts)
            mask_w = torch.cat([torch.full((n,), 1.0 / n) for n in counts if n > 0])
        rows = (2 + V) * B + n_m
        gi = {
            "n_m": n_m,
            "mask_w": mask_w.float(),
            "t_logits": [torch.rand(2 * B, K, generator=gen) * 2 - 1 for K in c["K"]],
            "tp_logits": [torch.rand(n_m, K, generator=gen) * 2 - 1 for K in c["K"]],
            "s_is": [torch.rand(rows, K, generator=gen) * 2 - 1 for K in c["K"]],
            "s_es": [torch.rand(rows, K, generator=gen) * 2 - 1 for K in c["K"]],
            "z_is": torch.randn(2 * B, c["D"], generator=gen),
            "z_es": torch.randn(2 * B, c["d"], generator=gen),
        }
        groups.append(gi)
    return groups


def leaves(groups):
    out = []
    for gi in groups:
        out += gi["s_is"] + gi["s_es"] + [gi["z_is"], gi["z_es"]]
    return out


def run_case(c, f, gen):
    G, H = c["G"], len(c["K"])
    groups = make_inputs(c, gen)
    grp = f.create_group(c["name"])
    for key in ("B", "V", "G", "D", "d"):
        grp.attrs[key] = c[key]
    grp.attrs["K"] = np.array(c["K"], dtype=np.int32)
    grp.attrs["ibot"] = int(c["ibot"])
    for key in ("tt", "lam", "wd", "kw", "iw"):
        grp.attrs[key] = c[key]

    # Sinkhorn-Knopp over the union of the groups (teacher rows in the official [crop1; crop0]
    # order per group; SK is row-permutation equivariant, the C code uses the natural order)
    B = c["B"]
    targets = [[None] * H for _ in range(G)]
    ptargets = [[None] * H for _ in range(G)]
    with torch.no_grad():
        for h in range(H):
            rows = torch.cat([torch.cat((gi["t_logits"][h][B:], gi["t_logits"][h][:B]))
                              for gi in groups])
            T = sinkhorn_knopp(rows, c["tt"])
            for g in range(G):
                Tg = T[2 * B * g: 2 * B * (g + 1)]
                targets[g][h] = torch.cat((Tg[B:], Tg[:B]))  # back to natural crop order
            if c["ibot"]:
                Tp = sinkhorn_knopp(torch.cat([gi["tp_logits"][h] for gi in groups]), c["tt"])
                at = 0
                for g, gi in enumerate(groups):
                    ptargets[g][h] = Tp[at: at + gi["n_m"]]
                    at += gi["n_m"]

    for t in leaves(groups):
        t.requires_grad_(True)

    def total_of(term_filter):
        total = 0
        values = None
        for g, gi in enumerate(groups):
            contrib, value = group_terms(c, gi, targets[g], ptargets[g])
            total = total + sum(v for k, v in contrib.items() if term_filter(k)) / G
            if values is None:
                values = {k: (np.array(v, dtype=np.float64) if isinstance(v, list) else v) / G
                          for k, v in value.items()}
            else:
                for k, v in value.items():
                    values[k] = values[k] + (np.array(v) if isinstance(v, list) else v) / G
        return total, values

    def store_grads(dst, total):
        for t in leaves(groups):
            t.grad = None
        if torch.is_tensor(total) and total.requires_grad:
            total.backward()
        for g, gi in enumerate(groups):
            gg = dst.require_group(f"g{g}")
            for h in range(H):
                for br in ("s_is", "s_es"):
                    grad = gi[br][h].grad
                    grad = torch.zeros_like(gi[br][h]) if grad is None else grad
                    gg.create_dataset(f"d{br}_h{h}", data=grad.detach().numpy())
            for br in ("z_is", "z_es"):
                grad = gi[br].grad
                grad = torch.zeros_like(gi[br]) if grad is None else grad
                gg.create_dataset(f"d{br}", data=grad.detach().numpy())

    total, values = total_of(lambda k: True)
    slots = []
    for h in range(H):
        slots += [values[t][h] for t in TERMS[:N_HEAD_TERMS]]
    slots += [values["koleo_is"], values["koleo_es"]]
    grp.create_dataset("slots", data=np.array(slots, dtype=np.float64))
    grp.attrs["total"] = float(total)
    store_grads(grp, total)
    for term in TERMS:
        t_total, _ = total_of(lambda k, term=term: k == term)
        store_grads(grp.create_group("term_" + term), t_total)

    for g, gi in enumerate(groups):
        gg = grp.require_group(f"g{g}")
        gg.attrs["n_m"] = gi["n_m"]
        gg.create_dataset("mask_w", data=gi["mask_w"].numpy())
        gg.create_dataset("z_is", data=gi["z_is"].detach().numpy())
        gg.create_dataset("z_es", data=gi["z_es"].detach().numpy())
        for h in range(H):
            gg.create_dataset(f"t_logits_h{h}", data=gi["t_logits"][h].numpy())
            gg.create_dataset(f"tp_logits_h{h}", data=gi["tp_logits"][h].numpy().reshape(-1, c["K"][h]))
            gg.create_dataset(f"s_is_h{h}", data=gi["s_is"][h].detach().numpy())
            gg.create_dataset(f"s_es_h{h}", data=gi["s_es"][h].detach().numpy())
            gg.create_dataset(f"targets_h{h}", data=targets[g][h].numpy())
            if c["ibot"]:
                gg.create_dataset(f"ptargets_h{h}", data=ptargets[g][h].numpy().reshape(-1, c["K"][h]))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1234)
    with h5py.File(sys.argv[1], "w") as f:
        f.attrs["cases"] = np.array([c["name"] for c in CASES], dtype="S")
        for c in CASES:
            run_case(c, f, gen)


if __name__ == "__main__":
    main()
