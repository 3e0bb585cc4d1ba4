#!/usr/bin/env python3
"""linear_ref.py — the linear-probe protocol of POA written independently of poa in PyTorch, run on
what poa-eval-linear wrote with --save-features (cached mode), and compared with its
results_eval_linear.json.

    linear_ref.py RESULTS_DIR [--acc-tol PERCENT] [--param-tol REL] [--extracted VIT.h5 ...]

For every network (line i of results_eval_linear.json, file DIR/linear_<i>_<network>.h5,
hdf5-schemas/linear-features.md):

* the kept blocks are numpy's round(L/4 * i), i = 1, 2, 3, and L - 1 (the official
  get_intermediate_layers), and the classifier inputs are the documented slices of the feature row
  (n = 1: the last class token, n = 4: all four, avgpool: the mean patch token appended);
* the order of the training images is one permutation of the train split per pass;
* the initial weights look like N(0, 0.01^2) and the biases are 0;
* one torch.nn.Linear per classifier built from poa's initial parameters (the documented
  input-major layout), the lr of each classifier = its rate * batch_size / 256, all trained at
  once on poa's features in poa's batch order with the official recipe: loss = sum of the plain
  cross-entropies, torch.optim.SGD(momentum 0.9, weight decay 0), CosineAnnealingLR(T, 0) stepped
  every iteration;
* then every classifier on the val features: top-1 / top-5 (class ties to the lower index, as poa
  documents) and the best (first of the highest top-1, the official choice).

poa and PyTorch compute the same fp32 SGD in different summation orders (sgemm against torch's
matmul, a double softmax against torch's fp32 log-softmax), so the final parameters agree to a
relative tolerance (--param-tol, default 1e-4) and an accuracy may move by the few val images whose
top logits are that close (--acc-tol, default 0.5 % of the val split, at least one image).
With --extracted vit_<W>x<D>.h5 (poa-extract) of a network of the run, that network's val features
are computed again by the plain PyTorch ViT of vit_ref.py from the val images of the run's pixels
network (after each kept block the final norm; class tokens in block order, the last one's mean
patch token) and must equal poa's to 1e-5 (relative, per image).
Exit 0 when all agree, 1 otherwise."""
import argparse
import json
import os
import sys

import h5py
import numpy as np
import torch


def block_positions(L):
    return [int(np.round(L / 4 * i)) for i in (1, 2, 3)] + [L - 1]


def expected_inputs(width, n_in):
    """(n_blocks, avgpool, offset, dim) of the inputs in the official order."""
    if n_in == 1:
        return None  # raw pixels: the whole row
    d = width
    return [(1, 0, 3 * d, d), (1, 1, 3 * d, 2 * d), (4, 0, 0, 4 * d), (4, 1, 0, 5 * d)]


def accuracy(logits, labels):
    z = logits.double().numpy()
    y = labels.numpy()
    zy = z[np.arange(len(y)), y][:, None]
    ahead = (z > zy) | ((z == zy) & (np.arange(z.shape[1])[None, :] < y[:, None]))
    rank = ahead.sum(1)
    return int((rank < 1).sum()), int((rank < 5).sum())


def check_network(path, rec, acc_tol, param_tol):
    bad = []
    f = h5py.File(path, "r")
    if f.attrs["format"] != "poa-linear-features" or f.attrs["format_version"] != 1:
        return ["%s: format %s version %s" % (path, f.attrs["format"], f.attrs["format_version"])], path
    C = int(f.attrs["n_classes"])
    T = int(f.attrs["iterations"])
    B = int(f.attrs["batch_size"])
    row = int(f.attrs["row"])
    if f.attrs["mode"] != "cached":
        return ["%s: not a cached-mode file" % path], path
    xtr = torch.from_numpy(f["train/features"][...])
    ytr = torch.from_numpy(f["train/labels"][...].astype(np.int64))
    xva = torch.from_numpy(f["val/features"][...])
    yva = torch.from_numpy(f["val/labels"][...].astype(np.int64))
    order = f["train/order"][...].astype(np.int64).reshape(T, B)
    cl = f["classifiers"]
    init = cl["init"][...]
    final_poa = cl["final"][...]
    settings = rec["classifiers"]
    K = len(settings)
    n_in = 4 if rec["network"] != "pixels" else 1
    n_lr = K // n_in
    assert xtr.shape[1] == row and xva.shape[1] == row

    # the kept blocks and the inputs
    if rec["depth"] is not None:
        if rec["blocks"] != block_positions(rec["depth"]):
            bad.append("blocks %s, numpy's rule gives %s" % (rec["blocks"], block_positions(rec["depth"])))
        if row != 5 * rec["width"]:
            bad.append("feature row of %d floats for width %d" % (row, rec["width"]))
    inputs = expected_inputs(rec["width"], n_in) or [(0, 0, 0, row)]
    for k in range(K):
        want = inputs[k // n_lr]
        got = (int(cl["n_blocks"][k]), int(cl["avgpool"][k]), int(cl["offset"][k]), int(cl["dim"][k]))
        if got != want or (settings[k]["n_blocks"], int(settings[k]["avgpool"])) != want[:2]:
            bad.append("classifier %d reads %s, the protocol %s" % (k, got, want))
    # the order: one permutation per pass
    flat = order.reshape(-1)
    n = len(ytr)
    for p in range(len(flat) // n):
        if not np.array_equal(np.sort(flat[p * n:(p + 1) * n]), np.arange(n)):
            bad.append("pass %d of the training order is not a permutation" % p)
            break

    # the classifiers from poa's initial parameters (input-major layout)
    params, lin = 0, []
    for g, (_, _, off, dim) in enumerate(inputs):
        W = init[params:params + n_lr * C * dim].reshape(n_lr, C, dim)
        b = init[params + n_lr * C * dim:params + n_lr * C * (dim + 1)].reshape(n_lr, C)
        params += n_lr * C * (dim + 1)
        for l in range(n_lr):
            m = torch.nn.Linear(dim, C)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(W[l].copy()))
                m.bias.copy_(torch.from_numpy(b[l].copy()))
            lin.append((m, off, dim))
    if params != init.size:
        bad.append("%d parameters, the layout gives %d" % (init.size, params))
    w_all = np.concatenate([m.weight.detach().numpy().ravel() for m, _, _ in lin])
    b_all = np.concatenate([m.bias.detach().numpy().ravel() for m, _, _ in lin])
    if not (abs(w_all.std() - 0.01) < 0.001 and abs(w_all.mean()) < 0.001 and not b_all.any()):
        bad.append("initial weights: mean %.3g std %.3g, biases %s" % (w_all.mean(), w_all.std(), "0" if not b_all.any() else "not 0"))

    lrs = [s["rate"] * B / 256.0 for s in settings]
    for k in range(K):
        if abs(lrs[k] - settings[k]["lr"]) > 1e-12 * lrs[k]:
            bad.append("classifier %d: lr %g, rate * B / 256 = %g" % (k, settings[k]["lr"], lrs[k]))
    opt = torch.optim.SGD([{"params": m.parameters(), "lr": lrs[k]} for k, (m, _, _) in enumerate(lin)],
                          momentum=0.9, weight_decay=0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T, eta_min=0)
    ce = torch.nn.CrossEntropyLoss()
    for t in range(T):
        idx = torch.from_numpy(order[t])
        x, y = xtr[idx], ytr[idx]
        losses = [ce(m(x[:, off:off + dim]), y) for m, off, dim in lin]
        loss = sum(losses)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    # parameters and accuracies
    final_ref = np.concatenate([np.concatenate([m.weight.detach().numpy().ravel() for m, _, _ in lin[g * n_lr:(g + 1) * n_lr]] +
                                               [m.bias.detach().numpy().ravel() for m, _, _ in lin[g * n_lr:(g + 1) * n_lr]])
                                for g in range(len(inputs))])
    worst_p = 0.0
    with torch.no_grad():
        n_va = len(yva)
        tol_img = max(1, int(np.floor(acc_tol / 100.0 * n_va + 1e-9)))
        ref1, worst_a = [], 0
        for k, (m, off, dim) in enumerate(lin):
            c1, c5 = accuracy(m(xva[:, off:off + dim]), yva)
            ref1.append(c1)
            p1 = round(settings[k]["top1"] * n_va / 100.0)
            p5 = round(settings[k]["top5"] * n_va / 100.0)
            worst_a = max(worst_a, abs(p1 - c1), abs(p5 - c5))
            if abs(p1 - c1) > tol_img or abs(p5 - c5) > tol_img:
                bad.append("classifier %d (n %d, avgpool %s, lr %g): poa %d / %d correct, PyTorch %d / %d"
                           % (k, settings[k]["n_blocks"], settings[k]["avgpool"], lrs[k], p1, p5, c1, c5))
        offs = 0
        for g, (_, _, _, dim) in enumerate(inputs):
            size = n_lr * C * (dim + 1)
            for l in range(n_lr):
                k = g * n_lr + l
                wp = final_poa[offs + l * C * dim:offs + (l + 1) * C * dim]
                wr = final_ref[offs + l * C * dim:offs + (l + 1) * C * dim]
                bp = final_poa[offs + n_lr * C * dim + l * C:offs + n_lr * C * dim + (l + 1) * C]
                br = final_ref[offs + n_lr * C * dim + l * C:offs + n_lr * C * dim + (l + 1) * C]
                p = np.concatenate([wp, bp]).astype(np.float64)
                r = np.concatenate([wr, br]).astype(np.float64)
                rel = np.linalg.norm(p - r) / max(np.linalg.norm(r), 1e-30)
                worst_p = max(worst_p, rel)
                if not rel <= param_tol:
                    bad.append("classifier %d: final parameters differ by %.3g (relative)" % (k, rel))
            offs += size
    best_ref = int(np.argmax(ref1))  # the first of the highest
    best_poa = next(k for k, s in enumerate(settings)
                    if (s["n_blocks"], s["avgpool"], s["lr"]) == (rec["n_blocks"], rec["avgpool"], rec["lr"]))
    if abs(ref1[best_poa] - ref1[best_ref]) > tol_img or abs(rec["top1"] - 100.0 * ref1[best_ref] / n_va) > 100.0 * tol_img / n_va:
        bad.append("best: poa classifier %d (%.2f %%), PyTorch classifier %d (%.2f %%)"
                   % (best_poa, rec["top1"], best_ref, 100.0 * ref1[best_ref] / n_va))
    summary = ("%s: %d classifiers, %d iterations: parameters within %.2g, accuracies within %d image(s); "
               "best poa %d (n %d, avgpool %s, lr %g, %.2f %%), PyTorch %d (%.2f %%)"
               % (rec["network"], K, T, worst_p, worst_a, best_poa, rec["n_blocks"], rec["avgpool"], rec["lr"],
                  rec["top1"], best_ref, 100.0 * ref1[best_ref] / n_va))
    return bad, summary


def check_features(extracted, recs, directory, vit_ref_dir):
    """The val features poa wrote for the network of an extracted file (vit_<W>x<D>.h5 of
    poa-extract) against the plain PyTorch ViT of vit_ref.py loaded with that file, run on the val
    pixels of the same run (the pixels network's features are the normalised images): after each
    kept block the final norm, the class tokens in block order, the mean patch token of the last
    (the official get_intermediate_layers and create_linear_input)."""
    sys.path.insert(0, vit_ref_dir)
    import vit_ref
    names = [r["network"] for r in recs]
    if "pixels" not in names:
        return ["--extracted needs a run with --pixels (the val images)"], ""
    with h5py.File(os.path.join(directory, "linear_%d_pixels.h5" % names.index("pixels")), "r") as f:
        crop = recs[names.index("pixels")]["crop"]
        images = torch.from_numpy(f["val/features"][...].reshape(-1, 3, crop, crop))
    with h5py.File(extracted, "r") as f:
        meta = {k: f.attrs[k] for k in f.attrs}
        state = {k: torch.from_numpy(f["state_dict"][k][...]) for k in f["state_dict"]}
    d, L = int(meta["embed_dim"]), int(meta["depth"])
    key = "%dx%d" % (d, L)
    rec = next((r for r in recs if r["network"] == key or
                (r["width"], r["depth"]) == (d, L) and r["network"] in ("teacher", "student")), None)
    if rec is None:
        return ["no network %s in the run" % key], ""
    model = vit_ref.VisionTransformer.from_metadata(meta)
    model.load_state_dict(state, strict=True)
    blocks = block_positions(L)
    with torch.no_grad():
        x = model.patch_embed(images)
        x = torch.cat([model.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + model.pos_embed
        outs = []
        for i, blk in enumerate(model.blocks):
            x = blk(x)
            outs += [model.norm(x)] * blocks.count(i)  # a repeated position is used again
        ref = torch.cat([o[:, 0] for o in outs] + [outs[-1][:, 1:].mean(1)], dim=1).numpy()
    with h5py.File(os.path.join(directory, "linear_%d_%s.h5" % (recs.index(rec), rec["network"])), "r") as f:
        got = f["val/features"][...]
    rel = (np.abs(got - ref).max(1) / np.abs(ref).max(1)).max()
    bad = [] if rel <= 1e-5 else ["%s: val features differ from PyTorch's by %.3g (relative)" % (key, rel)]
    return bad, ("%s: val features [cls after blocks %s | mean patch token] = PyTorch ViT of %s within %.2g"
                 % (rec["network"], blocks, os.path.basename(extracted), rel))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--acc-tol", type=float, default=0.5)
    ap.add_argument("--param-tol", type=float, default=1e-4)
    ap.add_argument("--extracted", action="append", default=[],
                    help="an extracted vit_<W>x<D>.h5 of a network of the run: check its features")
    a = ap.parse_args()
    torch.set_num_threads(1)
    recs = [json.loads(line) for line in open(os.path.join(a.dir, "results_eval_linear.json"))]
    fails, checked = 0, 0
    for i, rec in enumerate(recs):
        path = os.path.join(a.dir, "linear_%d_%s.h5" % (i, rec["network"]))
        bad, summary = check_network(path, rec, a.acc_tol, a.param_tol)
        print(summary)
        for b in bad:
            print("  DIFFERS:", b)
        fails += len(bad) > 0
        checked += 1
    for x in a.extracted:
        bad, summary = check_features(x, recs, a.dir, os.path.dirname(os.path.abspath(__file__)))
        print(summary)
        for b in bad:
            print("  DIFFERS:", b)
        fails += len(bad) > 0
        checked += 1
    print("%d check(s) against the PyTorch reference, %d differ" % (checked, fails))
    return 1 if fails or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
