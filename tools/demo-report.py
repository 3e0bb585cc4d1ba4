#!/usr/bin/env python3
"""demo-report.py — the demo's report: plots and a summary of one pretraining run.

    python3 tools/demo-report.py --run TRAIN_DIR --knn KNN_DIR --extracted EXTRACT_DIR \
        --output REPORT_DIR [--over-time OVER_TIME_DIR]

Reads what the poa programs wrote (nothing is recomputed here):
  TRAIN_DIR/training_metrics.json       poa-train, one JSON object per logged iteration
  KNN_DIR/results_eval_knn.json         poa-eval-knn --all-subnets --pixels on the final
                                        teacher, one JSON object per network and k
  OVER_TIME_DIR/results_eval_knn.json   poa-eval-knn on the teacher of the evaluation
                                        checkpoints before the final one (TRAIN_DIR/eval/
                                        training_N), optional; the final teacher's point
                                        comes from KNN_DIR
  KNN_DIR/knn_subnets.png (or .csv)     the heatmap poa-eval-knn drew (tools/plot_knn.py)
  EXTRACT_DIR/vit_<W>x<D>.h5            poa-extract --all (parameter counts)
and writes REPORT_DIR/loss.png (every loss term over the iterations), knn_heatmap.png (k-NN
top-1 of every sub-network, widths x depths), knn_over_time.png (teacher top-1 at each
evaluation checkpoint, the raw-pixel baseline as a line) and summary.md (links to the three
and the table of every sub-network).  The table is also printed.  The k-NN protocol is
docs/algorithm.md, 'Evaluation'; the k shown is --k (default 20).
Exit status: 0, 1 when an input is missing or malformed (the message names it).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

LOSS_TERMS = ["total_loss", "dino_is", "dino_es1", "dino_es2", "distill_global", "distill_local",
              "ibot_is", "ibot_es", "koleo_is", "koleo_es"]


def fail(msg):
    print("demo-report: " + msg, file=sys.stderr)
    sys.exit(1)


def read_jsonl(path):
    if not os.path.isfile(path):
        fail("%s: no such file" % path)
    recs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError as e:
                fail("%s:%d: not JSON (%s)" % (path, n, e))
    if not recs:
        fail("%s: empty" % path)
    return recs


def knn_rows(recs, k, path):
    """{network: record} for one k; the network names are teacher, student, pixels or WxD."""
    rows = {}
    for r in recs:
        for key in ("network", "k", "top1"):
            if key not in r:
                fail("%s: a record without '%s': %s" % (path, key, r))
        if int(r["k"]) == k:
            rows[r["network"]] = r
    if not rows:
        fail("%s: no result for k = %d" % (path, k))
    return rows


def subnet_shape(name):
    """(width, depth) of a 'WxD' network name, None for teacher/student/pixels."""
    w, sep, d = name.partition("x")
    return (int(w), int(d)) if sep and w.isdigit() and d.isdigit() else None


def param_count(extracted, w, d):
    """Values stored in poa-extract's vit_WxD.h5 (None without h5py or the file)."""
    path = os.path.join(extracted, "vit_%dx%d.h5" % (w, d))
    try:
        import h5py
    except ImportError:
        return None
    if not os.path.isfile(path):
        return None
    total = [0]

    def visit(_, obj):
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f":
            total[0] += obj.size
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return total[0]


def plot_losses(plt, metrics, path):
    its = [r["iteration"] for r in metrics]
    fig, ax = plt.subplots(figsize=(8, 5))
    for term in LOSS_TERMS:
        if term in metrics[0]:
            ax.plot(its, [r[term] for r in metrics], label=term,
                    linewidth=2.0 if term == "total_loss" else 1.0)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title("POA pretraining losses")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def heatmap(knn_dir, path):
    """poa-eval-knn --all-subnets draws the heatmap itself (tools/plot_knn.py): knn_subnets.png,
    or, when it could not, its CSV is drawn here with the same script."""
    png, csv = os.path.join(knn_dir, "knn_subnets.png"), os.path.join(knn_dir, "knn_subnets.csv")
    if os.path.isfile(png):
        shutil.copyfile(png, path)
        return True
    if os.path.isfile(csv):
        plot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot_knn.py")
        return subprocess.run([sys.executable, plot, csv, path]).returncode == 0
    return False


def plot_over_time(plt, points, pixels, k, path):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if points:
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label="teacher")
    if pixels is not None:
        ax.axhline(pixels, color="gray", linestyle="--", label="raw pixels")
    ax.set_xlabel("iteration")
    ax.set_ylabel("k-NN top-1 (%)")
    ax.set_title("teacher k-NN top-1 over training (k = %d)" % k)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def over_time_points(path, k):
    """(iteration, top1) of the teacher at each evaluated checkpoint, by iteration."""
    if not path:
        return []
    pts = {}
    for r in read_jsonl(path):
        if int(r.get("k", -1)) == k and r.get("network") == "teacher":
            if "iteration" not in r:
                fail("%s: a teacher record without 'iteration'" % path)
            pts[int(r["iteration"])] = float(r["top1"])
    return sorted(pts.items())


def final_teacher(rows):
    """The intact teacher's record: 'teacher', or with --all-subnets the widest, deepest WxD."""
    if "teacher" in rows:
        return rows["teacher"]
    shaped = [n for n in rows if subnet_shape(n)]
    return rows[max(shaped, key=subnet_shape)] if shaped else None


def summary_table(rows, extracted):
    """Markdown lines: the teacher, every sub-network (largest first), the pixel baseline."""
    lines = ["| network | width | depth | parameters | top-1 (%) | top-5 (%) |",
             "|---|---|---|---|---|---|"]
    order = sorted((n for n in rows if subnet_shape(n)),
                   key=lambda n: subnet_shape(n), reverse=True)
    for name in [n for n in ("teacher", "student") if n in rows] + order + \
            [n for n in ("pixels",) if n in rows]:
        r = rows[name]
        shape = subnet_shape(name)
        params = param_count(extracted, *shape) if shape and extracted else None
        lines.append("| %s | %s | %s | %s | %.2f | %s |" % (
            name, r.get("width", shape[0] if shape else "–") if name != "pixels" else "–",
            r.get("depth", shape[1] if shape else "–") if name != "pixels" else "–",
            "{:,}".format(params) if params else "–", float(r["top1"]),
            "%.2f" % float(r["top5"]) if "top5" in r else "–"))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="poa-train output directory")
    ap.add_argument("--knn", required=True, help="poa-eval-knn output directory (final teacher)")
    ap.add_argument("--over-time", help="poa-eval-knn output directory (evaluation checkpoints)")
    ap.add_argument("--extracted", help="poa-extract output directory (parameter counts)")
    ap.add_argument("--output", required=True, help="report directory")
    ap.add_argument("--k", type=int, default=20, help="the k shown (default 20)")
    a = ap.parse_args()

    metrics = read_jsonl(os.path.join(a.run, "training_metrics.json"))
    knn_path = os.path.join(a.knn, "results_eval_knn.json")
    rows = knn_rows(read_jsonl(knn_path), a.k, knn_path)
    subnets = {subnet_shape(n): float(r["top1"]) for n, r in rows.items() if subnet_shape(n)}
    pixels = float(rows["pixels"]["top1"]) if "pixels" in rows else None
    ot = os.path.join(a.over_time, "results_eval_knn.json") if a.over_time else None
    points = dict(over_time_points(ot if ot and os.path.isfile(ot) else None, a.k))
    final = final_teacher(rows)
    if final and "iteration" in final:  # the final teacher, measured with the sub-networks
        points[int(final["iteration"])] = float(final["top1"])
    points = sorted(points.items())
    os.makedirs(a.output, exist_ok=True)

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
        print("demo-report: matplotlib is not installed (Debian: python3-matplotlib): "
              "no plots, only summary.md", file=sys.stderr)
    pngs = []
    if plt:
        plot_losses(plt, metrics, os.path.join(a.output, "loss.png"))
        pngs.append(("loss.png", "every loss term over the iterations"))
        if subnets and heatmap(a.knn, os.path.join(a.output, "knn_heatmap.png")):
            pngs.append(("knn_heatmap.png", "k-NN top-1 of every sub-network, widths x depths"))
        plot_over_time(plt, points, pixels, a.k, os.path.join(a.output, "knn_over_time.png"))
        pngs.append(("knn_over_time.png",
                     "teacher k-NN top-1 at each evaluation checkpoint, raw pixels as a line"))

    table = summary_table(rows, a.extracted)
    last = metrics[-1]
    md = ["# poa demo report", "",
          "Run: `%s`, %d iterations logged, final total loss %.4f (first %.4f)." % (
              a.run, int(last["iteration"]) + 1, last["total_loss"], metrics[0]["total_loss"]),
          "",
          "k-NN (docs/algorithm.md, 'Evaluation'): cosine similarity of the cls features after "
          "the final norm against the whole train split, k = %d, votes exp(sim / 0.07); "
          "`pixels` is the same protocol on the resized, normalised input pixels." % a.k, ""]
    md += ["- [%s](%s): %s" % (p, p, what) for p, what in pngs] + [""]
    md += table
    if pixels is not None and subnets:
        above = sum(1 for v in subnets.values() if v > pixels)
        md += ["", "%d of %d sub-networks above the raw-pixel baseline (%.2f %%)." % (
            above, len(subnets), pixels)]
    if points:
        md += ["", "Teacher top-1 over training: " + ", ".join(
            "%.2f %% at iteration %d" % (t, it) for it, t in points) + "."]
    with open(os.path.join(a.output, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(table))
    print("report: %s" % os.path.abspath(os.path.join(a.output, "summary.md")))


if __name__ == "__main__":
    main()
