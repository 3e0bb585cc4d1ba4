#!/usr/bin/python3
"""check_train.py — checks of poa-train outputs for the rank-loop tests (tests/train/*.sh).

  identical A.h5 B.h5                 every tensor of every group bit-identical, same iteration
                                      and AdamW step
  close A.h5 B.h5 --params T --moments M
                                      norm-wise relative difference of teacher/student <= T and
                                      of the AdamW moments <= M (fp32 reduction-order tolerance)
  losses MA.json MB.json [--rtol R] [--from IT] [--to IT]
                                      total_loss and every term equal (R = 0: exactly) on the
                                      iterations both files have in [from, to]: |a - b| <=
                                      R * max(|b|, s), s = 1 for the KoLeo terms, else 0 (see
                                      LOSS_SCALE)
  metrics M.json [--min-records N]
                                      every line is a JSON object with the documented keys,
                                      finite values, increasing iterations
  schema CKPT.h5 [--teacher-only]     documented groups, attributes, names and shapes
                                      (hdf5-schemas/checkpoint.md) for the model in /model
  iteration CKPT.h5                   print the checkpoint's iteration
Exit status 0 when the check passes, 1 otherwise (the differences are printed).
"""
import argparse
import json
import math
import sys

import h5py
import numpy as np

GROUPS = ["teacher", "student", "optimizer/exp_avg", "optimizer/exp_avg_sq"]
TERMS = ["dino_is", "dino_es1", "distill_global", "distill_local", "ibot_is", "ibot_es",
         "koleo_is", "koleo_es"]
# The scale below which a term's difference is measured absolutely rather than relatively.
# KoLeo is −mean log(d) over nearest-neighbour distances d of O(1) (normalised class tokens), so
# its value passes through 0 (d ≈ 1: −0.24, 0.43, 0.011 in three steps of the tiny model) while
# its fp32 error stays that of the logs' arguments, ~1e-7 relative to d ≈ 1; a difference relative
# to a value of 0.01 would measure the cancellation, not the training.  The other terms are
# cross-entropies of O(1–10).
LOSS_SCALE = {"koleo_is": 1.0, "koleo_es": 1.0}
RECORD_KEYS = ["iteration", "epoch", "total_loss"] + TERMS + [
    "lr", "last_layer_lr", "wd", "mom", "teacher_temp", "elastic_width", "elastic_depth",
    "elastic_widths", "elastic_depths", "current_batch_size", "img_s", "iter_time", "data_time",
    "compute_time", "comm_time", "comm_exposed_time"]


def fail(msg):
    print("check_train: " + msg)
    return 1


def cmd_identical(a, b):
    fa, fb = h5py.File(a, "r"), h5py.File(b, "r")
    bad = n = 0
    for attr in ["iteration", "epoch"]:
        if fa.attrs[attr] != fb.attrs[attr]:
            bad += 1
            print("attribute %s: %s vs %s" % (attr, fa.attrs[attr], fb.attrs[attr]))
    if fa["optimizer"].attrs["step"] != fb["optimizer"].attrs["step"]:
        bad += 1
        print("AdamW step differs")
    for g in GROUPS:
        if sorted(fa[g].keys()) != sorted(fb[g].keys()):
            return fail("%s: tensor names differ" % g)
        for k in fa[g]:
            n += 1
            x, y = fa[g][k][()], fb[g][k][()]
            if x.shape != y.shape or not np.array_equal(x.view(np.uint32), y.view(np.uint32)):
                bad += 1
                if bad <= 10:
                    print("%s/%s differs: max |diff| %g" % (g, k, np.abs(x - y).max()))
    print("compared %d tensors of %s and %s: %d differ" % (n, a, b, bad))
    return 1 if bad else 0


def rel_diff(fa, fb, g):
    num = den = 0.0
    worst = (0.0, "")
    for k in fa[g]:
        x = fa[g][k][()].astype(np.float64)
        y = fb[g][k][()].astype(np.float64)
        d = x - y
        num += float((d * d).sum())
        den += float((y * y).sum())
        m = float(np.abs(d).max()) if d.size else 0.0
        if m > worst[0]:
            worst = (m, k)
    return math.sqrt(num / den) if den > 0 else math.sqrt(num), worst


def cmd_close(a, b, tol_params, tol_moments):
    fa, fb = h5py.File(a, "r"), h5py.File(b, "r")
    bad = 0
    for g in GROUPS:
        tol = tol_params if g in ("teacher", "student") else tol_moments
        r, (m, k) = rel_diff(fa, fb, g)
        verdict = "ok" if r <= tol else "TOO LARGE"
        print("%-22s relative difference %.3e (tolerance %.1e; largest |diff| %.3e in %s) %s"
              % (g, r, tol, m, k, verdict))
        bad += r > tol
    return 1 if bad else 0


def records(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                out[rec["iteration"]] = rec
    return out


def cmd_losses(a, b, rtol, first, last):
    ra, rb = records(a), records(b)
    its = sorted(i for i in ra if i in rb and first <= i <= last)
    if not its:
        return fail("no common iterations in %s and %s" % (a, b))
    bad = 0
    worst = 0.0
    for it in its:
        for key in ["total_loss"] + TERMS:
            x, y = ra[it][key], rb[it][key]
            d = abs(x - y) / max(abs(y), LOSS_SCALE.get(key, 0.0), 1e-30)
            worst = max(worst, d)
            if (rtol == 0 and x != y) or d > rtol:
                bad += 1
                if bad <= 10:
                    print("iteration %d %s: %.9g vs %.9g (rel %.2e)" % (it, key, x, y, d))
    print("losses of %d iterations (%d..%d) compared: worst relative difference %.3e (tolerance "
          "%s), %d differ" % (len(its), its[0], its[-1], worst, rtol if rtol else "exact", bad))
    return 1 if bad else 0


def cmd_metrics(path, min_records):
    prev = -1
    n = 0
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            rec = json.loads(line)
            missing = [k for k in RECORD_KEYS if k not in rec]
            if missing:
                return fail("%s:%d: missing keys %s" % (path, lineno, missing))
            for k in RECORD_KEYS:
                v = rec[k]
                vals = v if isinstance(v, list) else [v]
                if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in vals):
                    return fail("%s:%d: %s = %r is not finite" % (path, lineno, k, v))
            if rec["iteration"] <= prev:
                return fail("%s:%d: iteration %d after %d" % (path, lineno, rec["iteration"], prev))
            prev = rec["iteration"]
            n += 1
    if n < min_records:
        return fail("%s: %d records, expected at least %d" % (path, n, min_records))
    print("%s: %d records, keys and values ok" % (path, n))
    return 0


def expected_shapes(f):
    m = f["model"].attrs
    D, L, P, img = int(m["embed_dim"]), int(m["depth"]), int(m["patch_size"]), int(m["img_size"])
    C, r = int(m["in_chans"]), int(m["mlp_ratio"])
    hid, bn = int(m["head_hidden_dim"]), int(m["head_bottleneck_dim"])
    grid = (img // P) ** 2
    s = {"backbone.cls_token": (1, 1, D), "backbone.pos_embed": (1, 1 + grid, D),
         "backbone.mask_token": (1, D), "backbone.patch_embed.proj.weight": (D, C, P, P),
         "backbone.patch_embed.proj.bias": (D,),
         "backbone.norm.norm.weight": (D,), "backbone.norm.norm.bias": (D,)}
    for i in range(L):
        b = "backbone.blocks.%d." % i
        s.update({b + "norm1.norm.weight": (D,), b + "norm1.norm.bias": (D,),
                  b + "attn.qkv.linear.weight": (3 * D, D), b + "attn.qkv.linear.bias": (3 * D,),
                  b + "attn.proj.linear.weight": (D, D), b + "attn.proj.linear.bias": (D,),
                  b + "ls1.gamma": (D,), b + "norm2.norm.weight": (D,),
                  b + "norm2.norm.bias": (D,), b + "mlp.fc1.linear.weight": (r * D, D),
                  b + "mlp.fc1.linear.bias": (r * D,), b + "mlp.fc2.linear.weight": (D, r * D),
                  b + "mlp.fc2.linear.bias": (D,), b + "ls2.gamma": (D,)})
    for h, K in enumerate(m["head_prototypes"]):
        K = int(K)
        s.update({"dino_head.mlp%d.0.linear.weight" % h: (hid, D),
                  "dino_head.mlp%d.0.linear.bias" % h: (hid,),
                  "dino_head.mlp%d.2.weight" % h: (hid, hid), "dino_head.mlp%d.2.bias" % h: (hid,),
                  "dino_head.mlp%d.4.weight" % h: (bn, hid), "dino_head.mlp%d.4.bias" % h: (bn,),
                  "dino_head.last_layer%d.weight_g" % h: (K, 1),
                  "dino_head.last_layer%d.weight_v" % h: (K, bn)})
    return s


def cmd_schema(path, teacher_only):
    f = h5py.File(path, "r")
    if f.attrs["format"] != "poa-checkpoint" or f.attrs["format_version"] != 1:
        return fail("%s: format %r version %r" % (path, f.attrs["format"], f.attrs["format_version"]))
    want = "teacher" if teacher_only else "full"
    if f.attrs["content"] != want:
        return fail("%s: content %r, expected %r" % (path, f.attrs["content"], want))
    for a in ["program_version", "iteration", "epoch", "world_size", "rank_groups_per_rank"]:
        if a not in f.attrs:
            return fail("%s: root attribute %s missing" % (path, a))
    for a in ["arch", "embed_dim", "depth", "head_dim", "patch_size", "img_size",
              "elastic_widths", "elastic_depths", "head_prototypes"]:
        if a not in f["model"].attrs:
            return fail("%s: /model attribute %s missing" % (path, a))
    if "config" not in f or "train:" not in f["config"].asstr()[()]:
        return fail("%s: /config missing or not the YAML configuration" % path)
    shapes = expected_shapes(f)
    groups = ["teacher"] if teacher_only else GROUPS
    for g in groups:
        names = set(f[g].keys())
        if names != set(shapes):
            return fail("%s/%s: names differ from the documented ones: extra %s, missing %s"
                        % (path, g, sorted(names - set(shapes))[:5], sorted(set(shapes) - names)[:5]))
        for k, shp in shapes.items():
            ds = f[g][k]
            if ds.shape != shp or ds.dtype != np.float32:
                return fail("%s/%s/%s: %s %s, expected %s float32" % (path, g, k, ds.shape, ds.dtype, shp))
            if not np.all(np.isfinite(ds[()])):
                return fail("%s/%s/%s holds non-finite values" % (path, g, k))
    if not teacher_only:
        if f["optimizer"].attrs["algorithm"] != "adamw":
            return fail("%s: optimizer algorithm" % path)
        if f["rank_state"].attrs["n_ranks"] != f.attrs["world_size"]:
            return fail("%s: /rank_state holds %d states for world size %d"
                        % (path, f["rank_state"].attrs["n_ranks"], f.attrs["world_size"]))
    print("%s: %s checkpoint of iteration %d, %d tensors per group with the documented names and "
          "shapes" % (path, want, f.attrs["iteration"], len(shapes)))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("identical")
    p.add_argument("a")
    p.add_argument("b")
    p = sub.add_parser("close")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--params", type=float, required=True)
    p.add_argument("--moments", type=float, required=True)
    p = sub.add_parser("losses")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--rtol", type=float, default=0.0)
    p.add_argument("--from", dest="first", type=int, default=0)
    p.add_argument("--to", dest="last", type=int, default=1 << 62)
    p = sub.add_parser("metrics")
    p.add_argument("path")
    p.add_argument("--min-records", type=int, default=1)
    p = sub.add_parser("schema")
    p.add_argument("path")
    p.add_argument("--teacher-only", action="store_true")
    p = sub.add_parser("iteration")
    p.add_argument("path")
    a = ap.parse_args()
    if a.cmd == "identical":
        return cmd_identical(a.a, a.b)
    if a.cmd == "close":
        return cmd_close(a.a, a.b, a.params, a.moments)
    if a.cmd == "losses":
        return cmd_losses(a.a, a.b, a.rtol, a.first, a.last)
    if a.cmd == "metrics":
        return cmd_metrics(a.path, a.min_records)
    if a.cmd == "schema":
        return cmd_schema(a.path, a.teacher_only)
    if a.cmd == "iteration":
        print(int(h5py.File(a.path, "r").attrs["iteration"]))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
