#!/bin/sh
# test_fault_rank_kill.sh — one rank of a 2-rank run killed with SIGKILL in the middle of a step:
# the job ends within a bounded time (KILL_BOUND_S) with a message naming the rank, no process is
# left behind, no checkpoint file is half-written, and the job resumed from the last checkpoint
# ends bit-identical to an uninterrupted run.
# shellcheck source=tests/train/lib.sh
. "$POA_TOP_SRCDIR/tests/train/lib.sh"
fault_test
setup_out rank_kill
need_python
make_data "$out" 64
bound=${KILL_BOUND_S:-60}
common="--config $tiny --data $out/packed train.batch_size_per_gpu=4 train.log_period_iterations=1
        train.checkpoint_period_iterations=4 evaluation.eval_period_iterations=0"
mpid=
trap '[ -n "$mpid" ] && kill -KILL $mpid 2>/dev/null' EXIT
"$mpiexec" -n 2 --oversubscribe -x OMP_NUM_THREADS=1 -x POA_PROGRESS "$train" $common \
    --output "$out/run" >"$out/run.log" 2>&1 &
mpid=$!
i=0
while [ $i -lt 3000 ]; do # until iteration 5 is logged: the checkpoint of 3 is written
    n=$(cat "$out/run/training_metrics.json" 2>/dev/null | wc -l)
    [ "$n" -ge 6 ] && break
    kill -0 $mpid 2>/dev/null || break
    sleep 0.05
    i=$((i + 1))
done
victim=$(pgrep -P $mpid | tail -1)
[ -n "$victim" ] || { tail -20 "$out/run.log"; bad "the run did not start"; finish; }
t0=$(date +%s)
kill -KILL "$victim"
waited=0
while kill -0 $mpid 2>/dev/null && [ $waited -lt $((bound * 10)) ]; do
    sleep 0.1
    waited=$((waited + 1))
done
if kill -0 $mpid 2>/dev/null; then
    bad "the job still runs ${bound}s after the kill (hang)"
    kill -KILL $mpid
fi
wait $mpid
rc=$?
mpid=
took=$(($(date +%s) - t0))
[ $rc -ne 0 ] && [ $took -le "$bound" ] && ok "the job ended ${took}s after the kill (exit $rc, bound ${bound}s)" ||
    bad "the job ended after ${took}s with exit $rc"
grep -q -E "exited on signal 9|killed|Killed" "$out/run.log" && ok "the message names the killed rank" ||
    { tail -10 "$out/run.log"; bad "no message about the killed rank"; }
sleep 1
left=$(pgrep -f "$out/run" | tr '\n' ' ')
[ -z "$left" ] && ok "no process left behind" || bad "processes left: $left"
find "$out/run" -mindepth 1 -maxdepth 1 -name '*.tmp.*' | grep -q . && bad "a temporary checkpoint file was left" || ok "no half-written checkpoint"
last=$(ls "$out/run"/checkpoint_*.h5 | tail -1)
it=$(check iteration "$last")
run_ranks 2 $common --output "$out/run" --max-steps $((11 - it)) >"$out/resume.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "resuming from .*checkpoint_000000$it.h5" "$out/resume.log" &&
    ok "resumed from iteration $it" || { tail -10 "$out/resume.log"; bad "resume: exit $rc"; }
run_ranks 2 $common --output "$out/ref" --max-steps 12 >"$out/ref.log" 2>&1 || bad "reference run failed"
check identical "$out/ref/checkpoint_0000011.h5" "$out/run/checkpoint_0000011.h5" &&
    ok "the resumed job is exact" || bad "the resumed job differs from an uninterrupted run"
finish
