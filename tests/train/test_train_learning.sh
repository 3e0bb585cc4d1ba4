#!/bin/sh
# test_train_learning.sh — does pretraining learn?  A short POA run on real Fashion-MNIST images
# must move the teacher's features well beyond the same model at its random initialisation, as
# measured by the k-NN probe of bench_train_knn (teacher cls features after the final norm,
# cosine k-NN, k = 20, votes exp(sim / 0.07); docs/demo-learning-study.md, "Protocol").
#
# Setup: the first LEARN_IMAGES (2,000) training and test images of Fashion-MNIST, packed by
# poa-pack; configs/demo.yaml (the demo model, its sub-network sampling and losses) with the
# demo's learning settings, shortened to LEARN_ITERS (300) iterations of 2 ranks x 32 images; the
# probe uses the 2,000 training images as the memory bank and classifies the 2,000 test images.
# Pass: k-NN top-1 of the final teacher >= the initialisation's + LEARN_MIN_GAIN (7) points.
# How the threshold was chosen: docs/demo-learning-study.md, "The learning test".  The gain
# must come from training: with lr 0 (LEARN_EXTRA='optim.base_lr=0 optim.min_lr=0') the teacher
# stays the initialisation and the test fails.
# Skips (exit 77) without Debian's dataset-fashion-mnist, and in a sanitizer build: it measures
# learning, not memory safety, and its 300 iterations under ASan + UBSan took over the 15-minute
# test limit on a loaded 2-core machine; the same training code runs under the sanitizers in the
# other tests of tests/train.  Skips too when POA_LEARNING_TEST=skip: tests/scripts/ci-tests.sh
# sets it in the trees where it would only repeat the cpu tree's run (the CUDA configuration
# without a GPU trains on the same CPU backend; distcheck).
if [ "${POA_LEARNING_TEST:-run}" = skip ]; then
    echo "skip: POA_LEARNING_TEST=skip"
    exit 77
fi
if [ -n "${POA_SANITIZER_FLAGS:-}" ]; then
    echo "skip: a measurement of learning, not run in a sanitizer build ($POA_SANITIZER_FLAGS)"
    exit 77
fi
# shellcheck source=tests/train/lib.sh
. "$POA_TOP_SRCDIR/tests/train/lib.sh"
setup_out learning
images=${LEARN_IMAGES:-2000}
iters=${LEARN_ITERS:-300}
min_gain=${LEARN_MIN_GAIN:-7.0}
knn=$top_build/bench/bench_train_knn
[ -x "$knn" ] || { echo "FAIL: $knn was not built"; exit 1; }

src=/usr/share/datasets/fashion-mnist
[ -d "$src" ] || { echo "skip: Fashion-MNIST not installed ($src, Debian dataset-fashion-mnist)"; exit 77; }
for p in "$top_build/data-prep/poa-prep-fmnist" "$top_build/poa-prep-fmnist"; do
    [ -x "$p" ] && prep=$p
done
for p in "$top_build/data-prep/poa-pack" "$top_build/poa-pack"; do
    [ -x "$p" ] && pack=$p
done
"$prep" --output "$out/root" --limit "$images" >"$out/prep.log" 2>&1 &&
    "$pack" --root "$out/root" --output "$out/packed" -j 1 >"$out/pack.log" 2>&1 ||
    { cat "$out/prep.log" "$out/pack.log"; echo "FAIL: cannot prepare the test data"; exit 1; }

# The demo run, shortened: the epoch length sets the schedules (lr warm-up, cosine decays), so
# the short run has the demo's schedule shapes over its iters iterations (10 epochs).
t0=$(date +%s)
run_ranks 2 --config "$top_src/configs/demo.yaml" --data "$out/packed" --output "$out/run" \
    train.OFFICIAL_EPOCH_LENGTH=$((iters / 10)) train.checkpoint_period_iterations=$iters \
    evaluation.eval_period_iterations=0 ${LEARN_EXTRA:-} >"$out/train.log" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "poa-train: $iters iterations in $(($(date +%s) - t0)) s" ||
    { tail -20 "$out/train.log"; bad "poa-train exited $rc"; finish; }
ckpt=$(ls "$out"/run/checkpoint_*.h5 | sort | tail -n 1)

OMP_NUM_THREADS=2 "$knn" --config "$top_src/configs/demo.yaml" ${LEARN_EXTRA:-} \
    --data "$out/packed" --train "$images" --val "$images" --k 20 --no-pixels "$ckpt" \
    >"$out/knn.log" 2>&1 || { cat "$out/knn.log"; bad "bench_train_knn failed"; finish; }
line=$(grep '^KNN ' "$out/knn.log" | tail -n 1)
init=$(echo "$line" | sed -n 's/.* init=\([0-9.]*\).*/\1/p')
trained=$(echo "$line" | sed -n 's/.* trained=\([0-9.]*\).*/\1/p')
[ -n "$init" ] && [ -n "$trained" ] || { cat "$out/knn.log"; bad "no KNN result line"; finish; }
echo "k-NN top-1 on $images/$images images: initialisation $init, after $iters iterations $trained"
awk -v i="$init" -v t="$trained" -v g="$min_gain" 'BEGIN { exit !((t - i) * 100 >= g) }' &&
    ok "teacher k-NN gain >= $min_gain points over the initialisation" ||
    bad "teacher k-NN gain below $min_gain points: training did not learn"
finish
