#!/bin/sh
# test_fault_nonfinite.sh — a NaN in the data (POA_DEBUG_NONFINITE_DATA=IT: the first pixel of
# each rank's batch of iteration IT, as a broken input pipeline would make it) stops a 2-rank run
# at that step on every rank: exit 5, the message names the loss term that went non-finite and
# the last good checkpoint, and nothing is written after it.  (A NaN in the weights,
# --debug-nonfinite-at, is tested by tests/train/test_train_failures.sh.)
# shellcheck source=tests/train/lib.sh
. "$POA_TOP_SRCDIR/tests/train/lib.sh"
fault_test
setup_out nonfinite
need_python
make_data "$out" 64
common="--config $tiny --data $out/packed train.batch_size_per_gpu=4 evaluation.eval_period_iterations=0"
run_ranks 1 $common --output "$out/run" --max-steps 4 >"$out/run1.log" 2>&1 || bad "run before the NaN failed"
cp "$out/run/training_metrics.json" "$out/metrics-before.json"
"$mpiexec" -n 2 --oversubscribe -x OMP_NUM_THREADS=1 -x POA_PROGRESS -x POA_DEBUG_NONFINITE_DATA=6 \
    "$train" $common --output "$out/run" train.log_period_iterations=1 >"$out/run2.log" 2>&1
rc=$?
[ $rc -eq 5 ] && ok "NaN in the data: exit 5" || { tail -10 "$out/run2.log"; bad "NaN in the data: exit $rc (want 5)"; }
grep -q "POA_DEBUG_NONFINITE_DATA: pixel 0 of the batch of iteration 6 set to NaN" "$out/run2.log" ||
    bad "the NaN was not injected"
grep -q "iteration 6: loss term [a-z_0-9]* .*is nan; stopping without writing a checkpoint (the last good one is iteration 3)" "$out/run2.log" &&
    ok "the message names the term and the last good checkpoint" || { grep error "$out/run2.log"; bad "non-finite message"; }
[ "$(grep -c 'error: non-finite step: iteration 6: ' "$out/run2.log")" = 2 ] && ok "both ranks stopped at iteration 6" || bad "the ranks did not stop together"
kept=$(checkpoint_names "$out/run")
[ "$kept" = "checkpoint_0000003.h5 " ] && ok "last good checkpoint kept, nothing written" || bad "checkpoints after the NaN: $kept"
[ "$(check iteration "$out/run/checkpoint_0000003.h5")" = 3 ] && ok "the kept checkpoint loads" || bad "kept checkpoint unreadable"
finish
