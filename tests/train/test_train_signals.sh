#!/bin/sh
# test_train_signals.sh — Slurm-friendly stops: a 2-rank run that receives
#   1. SIGUSR1 on mpiexec (Open MPI forwards it to every rank; what `sbatch --signal=USR1@T`
#      does under srun),
#   2. SIGTERM on both rank processes (Slurm's time limit / preemption / scancel under srun),
#   3. SIGINT on rank 1 only (the ranks agree to stop after the same step),
# finishes the step, writes a checkpoint of that iteration and exits 75 on every rank; the run
# resumed from it is bit-identical to an uninterrupted run.
# shellcheck source=tests/train/lib.sh
. "$POA_TOP_SRCDIR/tests/train/lib.sh"
setup_out signals
need_python
make_data "$out" 128
common="--config $tiny --data $out/packed train.batch_size_per_gpu=4 train.log_period_iterations=1
        optim.epochs=50 train.checkpoint_period_iterations=1000 evaluation.eval_period_iterations=0"

# start NAME: the 2-rank run in the background ($mpid = mpiexec, $ranks = its rank processes),
# returns once 3 iterations are logged
start() {
    "$mpiexec" -n 2 --oversubscribe -x OMP_NUM_THREADS=1 -x POA_PROGRESS "$train" $common \
        --output "$out/$1" >"$out/$1.log" 2>&1 &
    mpid=$!
    i=0
    while [ $i -lt 3000 ]; do
        n=$(cat "$out/$1/training_metrics.json" 2>/dev/null | wc -l)
        [ "$n" -ge 3 ] && break
        kill -0 $mpid 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    ranks=$(pgrep -P $mpid | tr '\n' ' ')
}

# stopped NAME RC: exit 75, a checkpoint of the last logged iteration, the message
stopped() {
    if [ "$2" -ne 75 ]; then
        tail -20 "$out/$1.log"
        bad "$1: exit $2, expected 75"
        return
    fi
    ok "$1: exit 75"
    ck=$(ls "$out/$1"/checkpoint_*.h5 2>/dev/null | tail -1)
    last=$(tail -1 "$out/$1/training_metrics.json" | sed 's/.*"iteration": \([0-9]*\),.*/\1/')
    [ -n "$ck" ] && [ "$(check iteration "$ck")" = "$last" ] &&
        ok "$1: checkpoint of the last iteration ($last) written" || bad "$1: no checkpoint of iteration $last ($ck)"
    grep -q "stopped after iteration $last with a checkpoint; exit 75" "$out/$1.log" &&
        ok "$1: stop reported" || bad "$1: no stop message"
}

mpid=
trap '[ -n "$mpid" ] && kill -KILL $mpid 2>/dev/null' EXIT
start usr1
kill -USR1 $mpid
wait $mpid
rc=$?
mpid=
stopped usr1 $rc
k=$(tail -1 "$out/usr1/training_metrics.json" | sed 's/.*"iteration": \([0-9]*\),.*/\1/')

start term
kill -TERM $ranks
wait $mpid
rc=$?
mpid=
stopped term $rc

start int
kill -INT "$(echo $ranks | cut -d' ' -f2)"
wait $mpid
rc=$?
mpid=
stopped int $rc

# resume after the SIGUSR1 stop for 2 iterations; compare with an uninterrupted run
run_ranks 2 $common --output "$out/usr1" --max-steps 2 >"$out/usr1-resume.log" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "resumed run: exit 0" || { tail -20 "$out/usr1-resume.log"; bad "resumed run exited $rc"; }
run_ranks 2 $common --output "$out/ref" --max-steps $((k + 3)) >"$out/ref.log" 2>&1
end=$(printf 'checkpoint_%07d.h5' $((k + 2)))
check identical "$out/ref/$end" "$out/usr1/$end" && ok "resume after the signal is exact" ||
    bad "resumed run differs from the uninterrupted one"
finish
