#!/usr/bin/env python3
"""knn_ref.py — the k-NN evaluation protocol of DINOv2 written independently of poa, in NumPy
(and, when torch is importable, a second time in PyTorch the way the official KnnModule does it:
mm, topk, softmax(sim / T), one-hot votes summed over the first k), run on the features
poa-eval-knn wrote with --save-features, and compared with its results_eval_knn.json.

    knn_ref.py RESULTS_DIR [--k 10,20] [--temperature 0.07]

For every DIR/features_<i>_<network>.h5 (/train/features, /train/labels, /val/...): the
similarities in float64, the K = max(k) nearest training images ordered by similarity then index,
weights softmax(sim / T) over the K, class scores of the first k, top-1 and top-5 (class ties go
to the lower class index, as poa documents).  The counts of correct images must equal poa's
exactly.  Exit 0 when all agree, 1 otherwise."""
import argparse
import glob
import json
import os
import sys

import h5py
import numpy as np


def knn_numpy(tr, trl, va, val, ks, T, n_classes):
    K = min(max(ks), len(tr))
    sims = va.astype(np.float64) @ tr.astype(np.float64).T
    idx = np.arange(len(tr))
    c1 = {k: 0 for k in ks}
    c5 = {k: 0 for k in ks}
    for q in range(len(va)):
        order = np.lexsort((idx, -sims[q]))[:K]  # similarity descending, then index
        s = sims[q, order]
        w = np.exp((s - s[0]) / T)
        w /= w.sum()
        for k in ks:
            kk = min(k, K)
            score = np.zeros(n_classes)
            for t in range(kk):
                score[trl[order[t]]] += w[t]
            lab = val[q]
            rank = np.sum(score > score[lab]) + np.sum((score == score[lab])[:lab])
            c1[k] += rank < 1
            c5[k] += rank < 5
    return c1, c5


def knn_torch(tr, trl, va, val, ks, T, n_classes):
    import torch
    K = min(max(ks), len(tr))
    trf = torch.from_numpy(tr).double()
    vaf = torch.from_numpy(va).double()
    sims = vaf @ trf.T
    topk_sims, topk_idx = sims.topk(K, largest=True, sorted=True)
    labels = torch.from_numpy(trl.astype(np.int64))[topk_idx]
    weights = torch.softmax(topk_sims / T, dim=1)
    votes = torch.nn.functional.one_hot(labels, n_classes).double() * weights[:, :, None]
    target = torch.from_numpy(val.astype(np.int64))
    c1, c5 = {}, {}
    for k in ks:
        probas = votes[:, : min(k, K), :].sum(1)
        top5 = probas.topk(min(5, n_classes), dim=1).indices
        c1[k] = int((probas.argmax(1) == target).sum())
        c5[k] = int((top5 == target[:, None]).any(1).sum())
    return c1, c5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--k", default="10,20,100,200")
    ap.add_argument("--temperature", type=float, default=0.07)
    args = ap.parse_args()
    ks = [int(x) for x in args.k.split(",")]
    results = [json.loads(line) for line in open(os.path.join(args.dir, "results_eval_knn.json"))]
    files = sorted(glob.glob(os.path.join(args.dir, "features_*.h5")))
    if not files:
        print("FAIL: no features_*.h5 in", args.dir)
        return 1
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    bad = 0
    checked = 0
    for path in files:
        name = os.path.basename(path)[len("features_"):-3].split("_", 1)[1]
        with h5py.File(path, "r") as f:
            tr = f["train/features"][...]
            trl = f["train/labels"][...].astype(np.int64)
            va = f["val/features"][...]
            val = f["val/labels"][...].astype(np.int64)
        n_classes = int(max(trl.max(), val.max()) + 1)
        norms = np.linalg.norm(va.astype(np.float64), axis=1)
        if not np.all(np.abs(norms - 1) < 1e-5):
            print(f"FAIL: {name}: val features are not L2-normalised (norms {norms.min()}..{norms.max()})")
            bad += 1
        c1, c5 = knn_numpy(tr, trl, va, val, ks, args.temperature, n_classes)
        if have_torch:
            t1, t5 = knn_torch(tr, trl, va, val, ks, args.temperature, n_classes)
            for k in ks:
                if (t1[k], t5[k]) != (c1[k], c5[k]):
                    # torch.topk breaks class ties its own way; report, the NumPy rule decides
                    print(f"note: {name} k={k}: torch {t1[k]}/{t5[k]} vs numpy {c1[k]}/{c5[k]}")
        for k in ks:
            mine = [r for r in results if r["network"] == name and r["k"] == k]
            if len(mine) != 1:
                print(f"FAIL: {name} k={k}: {len(mine)} result lines")
                bad += 1
                continue
            r = mine[0]
            n = r["n_val"]
            want1, want5 = 100.0 * c1[k] / n, 100.0 * c5[k] / n
            ok = abs(r["top1"] - want1) < 5e-5 and abs(r["top5"] - want5) < 5e-5
            print(f"{'ok' if ok else 'FAIL'}: {name} k={k}: poa top1 {r['top1']:.4f} top5 "
                  f"{r['top5']:.4f}, reference {want1:.4f} {want5:.4f} ({n} val images)")
            bad += not ok
            checked += 1
    print(f"{checked} results checked against the reference, {bad} differ")
    return 1 if bad or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
