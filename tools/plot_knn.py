#!/usr/bin/env python3
"""plot_knn.py CSV PNG — the k-NN top-1 accuracy of every sub-network as a heatmap over
widths x depths, from the knn_subnets.csv that poa-eval-knn --all-subnets writes (columns
checkpoint, iteration, width, depth, k, top1, top5).  One panel per checkpoint, at k = 20 when
the CSV has it (the DINO/iBOT headline k), else its smallest k.

Exit codes: 0 written, 2 bad arguments or CSV, 3 matplotlib (or numpy) is not installed,
4 the PNG cannot be written.  poa-eval-knn runs it and reports 3 as "no matplotlib"."""
import csv
import sys


def main():
    if len(sys.argv) != 3:
        print("usage: plot_knn.py KNN_SUBNETS_CSV OUTPUT_PNG", file=sys.stderr)
        return 2
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError as e:
        print(f"plot_knn.py: {e}", file=sys.stderr)
        return 3
    try:
        with open(sys.argv[1], newline="") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            r["width"], r["depth"], r["k"] = int(r["width"]), int(r["depth"]), int(r["k"])
            r["top1"] = float(r["top1"])
    except (OSError, KeyError, ValueError) as e:
        print(f"plot_knn.py: {sys.argv[1]}: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"plot_knn.py: {sys.argv[1]} has no rows", file=sys.stderr)
        return 2
    ks = sorted({r["k"] for r in rows})
    k = 20 if 20 in ks else ks[0]
    ckpts = list(dict.fromkeys(r["checkpoint"] for r in rows))
    fig, axes = plt.subplots(1, len(ckpts), figsize=(4.5 * len(ckpts) + 1, 4), squeeze=False)
    for ax, ck in zip(axes[0], ckpts):
        sel = [r for r in rows if r["checkpoint"] == ck and r["k"] == k]
        widths = sorted({r["width"] for r in sel})
        depths = sorted({r["depth"] for r in sel})
        grid = np.full((len(depths), len(widths)), np.nan)
        for r in sel:
            grid[depths.index(r["depth"]), widths.index(r["width"])] = r["top1"]
        im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(widths)), [str(w) for w in widths])
        ax.set_yticks(range(len(depths)), [str(d) for d in depths])
        ax.set_xlabel("width")
        ax.set_ylabel("depth")
        it = sel[0]["iteration"] if sel else "?"
        ax.set_title(f"k-NN top-1 (%), k={k}\n{ck.split('/')[-1]} (it {it})", fontsize=9)
        for i in range(len(depths)):
            for j in range(len(widths)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=7,
                            color="white" if grid[i, j] < np.nanmean(grid) else "black")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    try:
        fig.savefig(sys.argv[2], dpi=100)
    except OSError as e:
        print(f"plot_knn.py: {sys.argv[2]}: {e}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
