#!/bin/sh
# test_fault_signals.sh — SIGTERM or SIGUSR1 at a random time during each of POA_SIGNAL_RUNS
# short runs (default 20; tiny config, one rank, 4 iterations): from the moment the rank catches the
# signal (its handlers are installed first thing in main, before MPI starts) to its exit, i.e.
# during MPI start-up, data and model set-up, a step, a checkpoint write or the teardown.  Every
# run must either finish (exit 0) or exit 75 with a loadable checkpoint, and the run resumed from
# that checkpoint must end bit-identical to an undisturbed run.  The random delays come from
# SEED (printed; rerun with SEED=... to replay a failure).
. "$POA_TOP_SRCDIR/tests/train/lib.sh"
setup_out signals_random
need_python
make_data "$out" 64
runs=${POA_SIGNAL_RUNS:-20}
seed=${SEED:-$(($(date +%s) % 100000))}
echo "seed $seed, $runs runs"
common="--config $tiny --data $out/packed train.batch_size_per_gpu=4 train.log_period_iterations=1
        train.checkpoint_period_iterations=1000 evaluation.eval_period_iterations=0"
last=3 # iterations 0..3
t0=$(date +%s%N)
run_ranks 1 $common --output "$out/ref" --max-steps $((last + 1)) >"$out/ref.log" 2>&1 ||
    { tail -20 "$out/ref.log"; bad "undisturbed run failed"; finish; }
ref_ms=$((($(date +%s%N) - t0) / 1000000))
ref=$(printf '%s/ref/checkpoint_%07d.h5' "$out" $last)
echo "undisturbed run: ${ref_ms} ms"

# catching PID SIG: whether process PID has a handler for signal SIG (SigCgt in /proc)
catching() {
    mask=$(sed -n 's/^SigCgt:\t*//p' "/proc/$1/status" 2>/dev/null)
    [ -n "$mask" ] && [ $((0x$mask >> ($2 - 1) & 1)) -eq 1 ]
}

finished=0 stopped=0
i=0
while [ $i -lt "$runs" ]; do
    i=$((i + 1))
    dir=$out/r$i
    sig=TERM
    [ $((i % 2)) -eq 0 ] && sig=USR1
    signo=15
    [ $sig = USR1 ] && signo=10
    # a delay in [0, the undisturbed run's time) in ms, from SEED and the run number
    delay=$(awk -v s="$seed" -v i="$i" -v m="$ref_ms" 'BEGIN { srand(s * 100 + i); printf "%d", rand() * m }')
    "$mpiexec" -n 1 --oversubscribe -x OMP_NUM_THREADS=1 -x POA_PROGRESS "$train" $common \
        --output "$dir" --max-steps $((last + 1)) >"$dir.log" 2>&1 &
    mpid=$!
    rank= w=0
    while [ $w -lt 2000 ] && kill -0 $mpid 2>/dev/null; do # the rank, once it catches the signal
        rank=$(pgrep -P $mpid | head -1)
        [ -n "$rank" ] && catching "$rank" $signo && break
        rank=
        sleep 0.005
        w=$((w + 1))
    done
    [ -n "$rank" ] && sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')" &&
        kill -$sig "$rank" 2>/dev/null
    wait $mpid
    rc=$?
    case $rc in
    0)
        finished=$((finished + 1))
        check identical "$ref" "$(printf '%s/checkpoint_%07d.h5' "$dir" $last)" >/dev/null ||
            bad "run $i (SIG$sig after ${delay} ms): finished but differs from the undisturbed run"
        ;;
    75)
        stopped=$((stopped + 1))
        ck=$(ls "$dir"/checkpoint_*.h5 2>/dev/null | tail -1)
        k=$([ -n "$ck" ] && check iteration "$ck")
        if [ -z "$k" ]; then
            bad "run $i (SIG$sig after ${delay} ms): exit 75 without a loadable checkpoint"
        else
            [ "$k" -lt $last ] && { run_ranks 1 $common --output "$dir" --max-steps $((last - k)) \
                >"$dir-resume.log" 2>&1 || bad "run $i: resume from $k failed"; }
            check identical "$ref" "$(printf '%s/checkpoint_%07d.h5' "$dir" $last)" >/dev/null ||
                bad "run $i (SIG$sig after ${delay} ms): stopped at $k, the resumed run differs"
        fi
        ;;
    *)
        tail -15 "$dir.log"
        bad "run $i (SIG$sig after ${delay} ms): exit $rc (want 0 or 75)"
        ;;
    esac
    echo "run $i: SIG$sig after ${delay} ms -> exit $rc${k:+, checkpoint $k}"
    k=
done
[ $fail -eq 0 ] && ok "$runs runs: $finished finished, $stopped stopped with a checkpoint and resumed exactly"
[ $stopped -gt 0 ] || echo "note: no run was stopped (delays all past the end?)"
finish
