#!/bin/sh
# test_eval_linear.sh — poa-eval-linear end to end on a small packed Fashion-MNIST (300 train /
# 300 val images) and a demo-preset checkpoint with seeded weights (ckpt_write_seeded):
#   --help; the teacher (128x6, kept blocks 2, 3, 4, 5), the sub-network 64x3 (blocks 1, 2, 2, 2)
#   and the raw pixels in the cached mode: every classifier's accuracy, the best one and the final
#   parameters equal to the protocol written in PyTorch on poa's features, order and initial
#   weights, and the features of 64x3 equal to a PyTorch ViT loaded with its extracted file
#   (tests/reference/linear_ref.py); 1 and 2 MPI ranks give the same bits (results, features,
#   order, initial and final classifiers; --train-blocks 7: blocks of 48 images, 3 on one rank and
#   4 on the other), in the cached and the augmented mode; an extracted model as input; --pixels
#   alone; rejected with a message and the README exit code: missing options, bad --subnet /
#   --mode / --lr / --batch-size, --iterations with --epochs, a size the run does not have, a crop
#   that is not a multiple of the patch size (2), a missing, truncated or non-poa checkpoint, a
#   data set without a val split, or whose splits have different classes (3), an output that
#   cannot be written (4).
#
# poa and PyTorch compute the same fp32 SGD with different summation orders (sgemm against torch's
# matmul, fixed-point batch sums, a double softmax against torch's fp32 log-softmax): the final
# parameters must agree to 1e-4 (relative, per classifier; measured about 1e-6) and an accuracy
# may move only by the val images whose top logits are that close, at most 0.5 % of the val split
# (linear_ref.py's defaults; measured: none moved).
# shellcheck source=tests/lib/testlib.sh
. "$POA_TOP_SRCDIR/tests/lib/testlib.sh"
program_test poa-eval-linear eval/linear
lin=$prog
export OMP_NUM_THREADS=1
have_torch=yes

# same_run A B: A and B (two result directories of the same run) hold the same bits: the
# results, and every dataset of the --save-features files (features, order, initial and final
# classifiers).
same_run() {
    cmp -s "$1/results_eval_linear.json" "$2/results_eval_linear.json" || { echo "results_eval_linear.json differ"; return 1; }
    "$py" - "$1" "$2" <<'EOF'
import glob, os, sys
import h5py, numpy as np
a, b = sys.argv[1], sys.argv[2]
files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(a, "linear_*.h5")))
bad, n = [], 0
for name in files:
    fa, fb = h5py.File(os.path.join(a, name), "r"), h5py.File(os.path.join(b, name), "r")
    keys = []
    fa.visit(lambda k: keys.append(k) if isinstance(fa[k], h5py.Dataset) else None)
    for k in keys:
        n += 1
        if k not in fb or not np.array_equal(fa[k][...], fb[k][...]):
            bad.append("%s: %s differs" % (name, k))
for m in bad:
    print("  DIFFERS:", m)
print("results_eval_linear.json and %d datasets of %d files identical" % (n, len(files)) if not bad else "differ")
sys.exit(1 if bad or not files else 0)
EOF
}

[ -d /usr/share/datasets/fashion-mnist ] || { echo "skip: Fashion-MNIST not installed"; exit 77; }
"$top_build/poa-prep-fmnist" --output "$out/root" --limit 300 >"$out/prep.log" 2>&1 &&
    "$top_build/poa-pack" --root "$out/root" --output "$out/packed" -j 1 >"$out/pack.log" 2>&1 ||
    { cat "$out/prep.log" "$out/pack.log"; echo "FAIL: cannot prepare the data set"; exit 1; }
seeded_demo_checkpoint
data=$out/packed
"$py" -c "import h5py, numpy, torch" 2>/dev/null || have_torch=no

# ------------------------------------------------------------------ help
expect help 0 "--checkpoint PATH" --help
grep -q -- "--mode MODE" "$out/help.log" && grep -q "cached (default)" "$out/help.log" &&
    grep -q -- "--pixels" "$out/help.log" && grep -q "Exit codes: 0 ok" "$out/help.log" &&
    ok "--help lists the options, the default mode and the exit codes" || bad "--help incomplete"

# ------------------------------------------------------------------ cached mode vs the reference
common="--data $data --batch-size 64 --epochs 10 --batch 24 --train-blocks 7 --save-features"
expect one 0 "wrote .*results_eval_linear.json" --checkpoint "$ck" --output "$out/r1" \
    --arch demo --subnet 64x3 --pixels $common
grep -q "^teacher *128 *6 " "$out/one.log" && grep -q "^64x3 *64 *3 " "$out/one.log" &&
    grep -q "^pixels *- *- " "$out/one.log" && ok "table: teacher (128x6), 64x3, pixels" ||
    bad "table lines"
grep -q "teacher: blocks 2, 3, 4, 5 of 6" "$out/one.log" && grep -q "64x3: blocks 1, 2, 2, 2 of 3" "$out/one.log" &&
    ok "kept blocks: 2, 3, 4, 5 of depth 6; 1, 2, 2, 2 of depth 3" || bad "kept blocks"
[ "$(wc -l <"$out/r1/results_eval_linear.json")" -eq 3 ] &&
    ok "results_eval_linear.json: one line per network" || bad "json lines: $(wc -l <"$out/r1/results_eval_linear.json")"
grep -q '"checkpoint": ".*checkpoint_0000399.h5", "iteration": 399, "network": "teacher", "width": 128, "depth": 6, "blocks": \[2, 3, 4, 5\], "top1": ' \
    "$out/r1/results_eval_linear.json" &&
    grep -q '"checkpoint": null, "iteration": null, "network": "pixels", "width": null' "$out/r1/results_eval_linear.json" &&
    grep -q '"iterations": 40, "batch_size": 64, "mode": "cached", "seed": 0, "n_train": 300, "n_val": 300' "$out/r1/results_eval_linear.json" &&
    [ "$(grep -o '"n_blocks"' "$out/r1/results_eval_linear.json" | wc -l)" -eq $((3 + 52 + 52 + 13)) ] &&
    ok "json fields; 52 classifiers per backbone, 13 for the pixels" || bad "json fields"
"$top_build/src/poa-extract" --checkpoint "$ck" --output "$out/ext" --subnet 64x3 >"$out/extract.log" 2>&1 ||
    { cat "$out/extract.log"; bad "poa-extract failed"; }
if [ $have_torch = no ]; then
    echo "note: $py has no h5py/numpy/torch: the reference comparisons are left out"
elif "$py" "$top_src/tests/reference/linear_ref.py" "$out/r1" --extracted "$out/ext/vit_64x3.h5" >"$out/ref.log" 2>&1; then
    ok "every classifier and the features of 64x3 equal the PyTorch reference ($(tail -1 "$out/ref.log"))"
    sed 's/^/    /' "$out/ref.log" | head -4
else
    cat "$out/ref.log"
    bad "classifiers differ from the PyTorch reference"
fi

# ------------------------------------------------------------------ 2 ranks
if command -v mpiexec >/dev/null; then
    mpiexec -n 2 "$lin" --checkpoint "$ck" --output "$out/r2" --arch demo --subnet 64x3 --pixels \
        $common >"$out/two.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        cat "$out/two.log"
        bad "2 ranks: exit $rc"
    elif [ $have_torch = yes ]; then
        same_run "$out/r1" "$out/r2" >"$out/same.log" 2>&1 &&
            ok "2 ranks = 1 rank: $(tail -1 "$out/same.log")" || { cat "$out/same.log"; bad "2 ranks differ from 1"; }
    fi
fi

# ------------------------------------------------------------------ augmented mode
aug="--data $data --batch-size 48 --iterations 6 --batch 16 --mode augmented --save-features"
expect aug1 0 "wrote .*results_eval_linear.json" --checkpoint "$ck" --output "$out/a1" \
    --subnet 64x3 --pixels $aug
grep -q "training (augmented)" "$out/aug1.log" && grep -q '"mode": "augmented"' "$out/a1/results_eval_linear.json" &&
    ok "augmented mode: trained on RandomResizedCrop + flip batches" || bad "augmented mode"
if command -v mpiexec >/dev/null && [ $have_torch = yes ]; then
    mpiexec -n 2 "$lin" --checkpoint "$ck" --output "$out/a2" --subnet 64x3 --pixels $aug >"$out/aug2.log" 2>&1 &&
        same_run "$out/a1" "$out/a2" >"$out/asame.log" 2>&1 &&
        ok "augmented, 2 ranks = 1 rank: $(tail -1 "$out/asame.log")" || { cat "$out/aug2.log" "$out/asame.log"; bad "augmented: 2 ranks differ from 1"; }
fi

# ------------------------------------------------------------------ extracted model
if [ -f "$out/ext/vit_64x3.safetensors" ]; then
    expect extracted 0 "wrote" --checkpoint "$out/ext/vit_64x3.safetensors" --output "$out/rx" \
        --data "$data" --batch-size 64 --epochs 10 --batch 24
    a=$(grep '"network": "64x3"' "$out/r1/results_eval_linear.json" | sed 's/.*"top1": \([0-9.]*\),.*/\1/')
    b=$(grep '"network": "64x3"' "$out/rx/results_eval_linear.json" | sed 's/.*"top1": \([0-9.]*\),.*/\1/')
    # the extracted file's features equal the elastic view's up to fp32 rounding
    [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; exit !(d <= 0.5 && d >= -0.5) }' &&
        ok "extracted vit_64x3.safetensors: top-1 $b %, 64x3 from the checkpoint $a %" ||
        bad "extracted 64x3: top-1 '$b' vs '$a'"
fi

# ------------------------------------------------------------------ pixels alone
expect pixels 0 "pixels" --pixels --crop 28 --data "$data" --output "$out/px" --iterations 5 --val 50
grep -q '"network": "pixels", "width": null, "depth": null, "blocks": null' "$out/px/results_eval_linear.json" &&
    grep -q '"crop": 28, "resize": 28' "$out/px/results_eval_linear.json" &&
    ok "--pixels --crop 28: the raw-pixel baseline alone" || bad "--pixels alone"

# ------------------------------------------------------------------ errors
expect bad-mode 2 "--mode 'fast'" --checkpoint "$ck" --data "$data" --output "$out/e" --mode fast
expect bad-lr 2 "--lr '-1'" --checkpoint "$ck" --data "$data" --output "$out/e" --lr 0.1,-1
expect bad-iters 2 "--iterations replaces --epochs" --checkpoint "$ck" --data "$data" \
    --output "$out/e" --iterations 5 --epochs 2
expect bad-batch 2 "option --batch-size" --checkpoint "$ck" --data "$data" --output "$out/e" --batch-size 0
evaluation_errors --epoch --iterations 2 --val 20 --train 50

finish
