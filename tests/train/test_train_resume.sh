#!/bin/sh
# test_train_resume.sh — exact resume on the CPU backend: a 2-rank run stopped
# after iteration 5 (--max-steps 6, checkpoint written) and resumed gives bit-identical losses,
# parameters, teacher and AdamW moments to an uninterrupted run; resuming is the default and the
# metrics file continues without duplicates.  Also: the checkpoints and training_metrics.json
# have the documented names, shapes and keys (h5py), the evaluation checkpoints exist at the
# evaluation period, and only the last train.checkpoint_keep checkpoints are kept.
# shellcheck source=tests/train/lib.sh
. "$POA_TOP_SRCDIR/tests/train/lib.sh"
setup_out resume
need_python
make_data "$out" 128
common="--config $tiny --data $out/packed train.batch_size_per_gpu=4 train.log_period_iterations=1
        train.checkpoint_period_iterations=4 train.checkpoint_keep=2 evaluation.eval_period_iterations=8"

run_ranks 2 $common --output "$out/full" >"$out/full.log" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "uninterrupted run: exit 0" || { cat "$out/full.log"; bad "uninterrupted run exited $rc"; }
run_ranks 2 $common --output "$out/part" --max-steps 6 >"$out/part1.log" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "first part (--max-steps 6): exit 0" || { cat "$out/part1.log"; bad "first part exited $rc"; }
[ -f "$out/part/checkpoint_0000005.h5" ] && ok "stop checkpoint of iteration 5 written" || bad "no checkpoint_0000005.h5"
run_ranks 2 $common --output "$out/part" >"$out/part2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "resumed run: exit 0" || { cat "$out/part2.log"; bad "resumed run exited $rc"; }
grep -q "resuming from .*checkpoint_0000005.h5: iteration 5 done, continuing at 6" "$out/part2.log" &&
    ok "resumed from iteration 5 by default" || bad "did not resume from checkpoint_0000005.h5"

check identical "$out/full/checkpoint_0000015.h5" "$out/part/checkpoint_0000015.h5" &&
    ok "final checkpoints bit-identical" || bad "final checkpoints differ"
check losses "$out/full/training_metrics.json" "$out/part/training_metrics.json" &&
    ok "losses of every iteration bit-identical" || bad "losses differ"
check metrics "$out/part/training_metrics.json" --min-records 16 &&
    ok "metrics: 16 records, documented keys" || bad "metrics file"
n=$(grep -c '"iteration"' "$out/part/training_metrics.json")
[ "$n" = 16 ] && ok "no duplicate records after resume" || bad "$n records after resume (want 16)"

check schema "$out/full/checkpoint_0000015.h5" && ok "checkpoint schema" || bad "checkpoint schema"
check schema --teacher-only "$out/full/eval/training_7/teacher_checkpoint.h5" &&
    ok "evaluation checkpoint schema" || bad "evaluation checkpoint schema"
[ -f "$out/full/eval/training_15/teacher_checkpoint.h5" ] && ok "evaluation checkpoints every 8" || bad "no eval/training_15"
kept=$(cd "$out/full" && ls checkpoint_*.h5 | tr '\n' ' ')
[ "$kept" = "checkpoint_0000011.h5 checkpoint_0000015.h5 " ] && ok "last 2 checkpoints kept" || bad "kept: $kept"
[ -f "$out/full/config.yaml" ] && grep -q "batch_size_per_gpu: 4" "$out/full/config.yaml" &&
    ok "effective config saved" || bad "config.yaml"
finish
