#!/bin/sh
# test_eval_knn.sh — poa-eval-knn end to end on a small packed Fashion-MNIST (300 train / 300 val
# images) and a demo-configuration checkpoint with seeded weights (ckpt_write_seeded):
#   --help; the teacher, two sub-networks and the raw pixels from one pass, their k-NN results
#   equal to a NumPy / PyTorch implementation of the protocol on the same features
#   (tests/reference/knn_ref.py), the features files' format attributes; 1 and 2 MPI ranks give identical features and results (train
#   blocks of 48 images: 7 blocks, 3 on one rank and 4 on the other, merged lists);
#   --all-subnets: 12 networks, knn_subnets.csv and the heatmap; an extracted model
#   (poa-extract) gives the results of the same sub-network read from the checkpoint;
#   --pixels alone; rejected with a message and the README exit code: missing options, bad
#   --subnet / --k, a size the run does not have, a crop that is not a multiple of the patch
#   size (2), a missing, truncated or non-poa checkpoint, a data set without a val split or
#   whose splits have different classes (3), an output that cannot be written (4); the errors
#   shared with poa-eval-linear are evaluation_errors (tests/lib/testlib.sh).
# shellcheck source=tests/lib/testlib.sh
. "$POA_TOP_SRCDIR/tests/lib/testlib.sh"
program_test poa-eval-knn eval/knn
knn=$prog
export OMP_NUM_THREADS=1 POA_PYTHON=$py
have_np=yes

[ -d /usr/share/datasets/fashion-mnist ] || { echo "skip: Fashion-MNIST not installed"; exit 77; }
"$top_build/poa-prep-fmnist" --output "$out/root" --limit 300 >"$out/prep.log" 2>&1 &&
    "$top_build/poa-pack" --root "$out/root" --output "$out/packed" -j 1 >"$out/pack.log" 2>&1 ||
    { cat "$out/prep.log" "$out/pack.log"; echo "FAIL: cannot prepare the data set"; exit 1; }
seeded_demo_checkpoint
data=$out/packed

# ------------------------------------------------------------------ help
expect help 0 "--checkpoint PATH" --help
grep -q -- "--all-subnets" "$out/help.log" && grep -q -- "--pixels" "$out/help.log" &&
    grep -q "Exit codes: 0 ok" "$out/help.log" && ok "--help lists the options and exit codes" ||
    bad "--help incomplete"

# ------------------------------------------------------------------ results vs the reference
common="--data $data --k 5,10,20 --batch 24 --bank-block 48 --save-features"
expect one 0 "wrote .*results_eval_knn.json" --checkpoint "$ck" --output "$out/r1" \
    --subnet 64x3 --subnet 96x5 --arch demo --pixels $common
grep -q "^teacher *128 *6 *20 " "$out/one.log" && grep -q "^pixels .* 20 " "$out/one.log" &&
    grep -q "^64x3 *64 *3 *5 " "$out/one.log" && ok "table: teacher (128x6), 64x3, 96x5, pixels" ||
    bad "table lines"
[ "$(wc -l <"$out/r1/results_eval_knn.json")" -eq 12 ] &&
    ok "results_eval_knn.json: 4 networks x 3 k = 12 lines" || bad "json lines: $(wc -l <"$out/r1/results_eval_knn.json")"
grep -q '"checkpoint": ".*checkpoint_0000399.h5", "iteration": 399, "network": "teacher", "width": 128, "depth": 6, "k": 20, "top1": ' \
    "$out/r1/results_eval_knn.json" && grep -q '"checkpoint": null, "iteration": null, "network": "pixels"' \
    "$out/r1/results_eval_knn.json" && ok "json fields" || bad "json fields"
if ! "$py" -c "import h5py, numpy" 2>/dev/null; then
    echo "note: $py has no h5py/numpy: the reference comparison is left out"
    have_np=no
elif "$py" "$top_src/tests/reference/knn_ref.py" "$out/r1" --k 5,10,20 >"$out/ref.log" 2>&1; then
    ok "k-NN equals the NumPy/PyTorch reference ($(tail -1 "$out/ref.log"))"
else
    cat "$out/ref.log"
    bad "k-NN differs from the reference"
fi
if [ $have_np = yes ]; then
    # hdf5-schemas/knn-features.md: the root attributes name the format and describe the rows
    "$py" -c "
import h5py, sys
for path, name, dim in ((sys.argv[1], 'teacher', 128), (sys.argv[2], 'pixels', 3 * 32 * 32)):
    f = h5py.File(path, 'r')
    a = f.attrs
    fmt = a['format'].decode() if isinstance(a['format'], bytes) else a['format']
    net = a['network'].decode() if isinstance(a['network'], bytes) else a['network']
    assert (fmt, int(a['format_version']), net) == ('poa-knn-features', 1, name), (path, fmt, net)
    assert int(a['dim']) == dim == f['train/features'].shape[1] == f['val/features'].shape[1], path
    assert (int(a['crop']), int(a['n_classes'])) == (32, 10), path
" "$out/r1/features_2_teacher.h5" "$out/r1/features_3_pixels.h5" >"$out/attrs.log" 2>&1 &&
        ok "features files: format attributes (hdf5-schemas/knn-features.md)" ||
        { cat "$out/attrs.log"; bad "features files: attributes"; }
fi

# ------------------------------------------------------------------ 2 ranks
if command -v mpiexec >/dev/null; then
    mpiexec -n 2 "$knn" --checkpoint "$ck" --output "$out/r2" --subnet 64x3 --subnet 96x5 \
        --arch demo --pixels $common >"$out/two.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && cmp -s "$out/r1/results_eval_knn.json" "$out/r2/results_eval_knn.json"; then
        ok "2 ranks: results_eval_knn.json identical to 1 rank"
    else
        cat "$out/two.log"
        bad "2 ranks: exit $rc or different results"
    fi
    same=yes
    [ $have_np = yes ] || same=skip
    for f in $([ $have_np = yes ] && echo "$out"/r1/features_*.h5); do
        "$py" -c "
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1], 'r'), h5py.File(sys.argv[2], 'r')
sys.exit(0 if all(np.array_equal(a[k][...], b[k][...]) for k in
   ('train/features', 'train/labels', 'val/features', 'val/labels')) else 1)" \
            "$f" "$out/r2/$(basename "$f")" || same=no
    done
    case $same in
    yes) ok "2 ranks: the features are bit-identical" ;;
    no) bad "2 ranks: features differ" ;;
    esac
fi

# ------------------------------------------------------------------ --all-subnets
expect all 0 "wrote .*knn_subnets.csv" --checkpoint "$ck" --output "$out/all" --data "$data" \
    --all-subnets --k 20 --train 200 --val 100
[ "$(wc -l <"$out/all/knn_subnets.csv")" -eq 13 ] && head -1 "$out/all/knn_subnets.csv" |
    grep -q "^checkpoint,iteration,width,depth,k,top1,top5$" && ok "knn_subnets.csv: header + 12 rows" ||
    bad "knn_subnets.csv"
if "$py" -c "import matplotlib" 2>/dev/null; then
    [ -s "$out/all/knn_subnets.png" ] && ok "knn_subnets.png written" || bad "no knn_subnets.png"
else
    grep -q "no matplotlib" "$out/all.log" && ok "no matplotlib: PNG skipped with a note" || bad "PNG note"
fi
grep -q "100 val" "$out/all.log" && ok "--train/--val: 200 / 100 images" || bad "--train/--val"
POA_PYTHON=/nonexistent/python3 "$knn" --checkpoint "$ck" --output "$out/all2" --data "$data" \
    --all-subnets --k 20 --train 50 --val 20 >"$out/nopy.log" 2>&1 &&
    grep -q "no knn_subnets.png" "$out/nopy.log" && [ -s "$out/all2/knn_subnets.csv" ] &&
    ok "without Python: the CSV, a note, no PNG, exit 0" || { cat "$out/nopy.log"; bad "without Python"; }

# ------------------------------------------------------------------ extracted model
if "$top_build/src/poa-extract" --checkpoint "$ck" --output "$out/ext" --subnet 96x5 \
    --format safetensors >"$out/extract.log" 2>&1; then
    expect extracted 0 "wrote" --checkpoint "$out/ext/vit_96x5.safetensors" --output "$out/rx" \
        --data "$data" --k 5,10,20 --batch 24
    a=$(grep '"network": "96x5"' "$out/r1/results_eval_knn.json" | sed 's/.*"k"/"k"/; s/, "n_train".*//')
    b=$(grep '"network": "96x5"' "$out/rx/results_eval_knn.json" | sed 's/.*"k"/"k"/; s/, "n_train".*//')
    [ -n "$a" ] && [ "$a" = "$b" ] && ok "extracted vit_96x5.safetensors: the results of 96x5 from the checkpoint" ||
        bad "extracted 96x5: '$b' vs '$a'"
else
    cat "$out/extract.log"
    bad "poa-extract failed"
fi

# ------------------------------------------------------------------ pixels alone
expect pixels 0 "pixels" --pixels --crop 28 --data "$data" --output "$out/px" --k 20 --val 50
grep -q '"network": "pixels", "width": null, "depth": null, "k": 20' "$out/px/results_eval_knn.json" &&
    grep -q '"crop": 28, "resize": 28' "$out/px/results_eval_knn.json" &&
    ok "--pixels --crop 28: the raw-pixel baseline alone" || bad "--pixels alone"

# ------------------------------------------------------------------ errors
expect bad-k 2 "--k '0'" --checkpoint "$ck" --data "$data" --output "$out/e" --k 10,0
evaluation_errors --topk --k 20 --val 20 --train 50

finish
