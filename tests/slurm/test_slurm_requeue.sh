#!/bin/sh
# test_slurm_requeue.sh — slurm/pretrain.sbatch stopped three ways on the real test cluster, each
# time writing a checkpoint, exiting 75 and coming back as the same (requeued) job that resumes:
#   1. preemption-like SIGTERM to the ranks:      scancel --signal=TERM JOB
#   2. requeue by the operator or by preemption:  scontrol requeue JOB (Slurm sends SIGTERM to
#      the whole job, then SIGKILL after KillWait)
#   3. the time limit: a job submitted with --signal=B:USR1@50; once it runs, its time limit is
#      lowered to 1 minute (scontrol update TimeLimit=1), so slurmctld sends SIGUSR1 to the batch
#      script at its next time-limit check (every 30 s), and the script forwards it to srun.
# Cases 1 and 2 stop one job, which then runs to the end, while a job submitted with
# --dependency=afterok on it waits for the real end (requeues neither release nor cancel it).
# Its losses of every iteration and its final checkpoint must equal an uninterrupted run's
# (mpiexec, same configuration) bit for bit, and its metrics file must hold each iteration once.
# Case 3 uses a second job whose run is far longer than the test, so that the time-limit signal
# (up to 30 s late) always finds it running whatever the machine's speed; after its requeue and
# resumption, a plain scancel ends it for good (checkpoint written, not requeued).  Jobs that fail
# for other reasons (missing data, bad configuration) end FAILED, are not requeued, and their
# logs say why.
# Nothing here depends on how fast the machine is: before a stop is asked, the ranks are paused
# (SIGSTOP) so that the run cannot end before the stop reaches it, and continued once it was
# sent (an earlier version sized the run from a timed calibration, and failed when the load
# changed between the calibration and the job).  Slurm holds a requeued job for two minutes
# (BeginTime); the test starts it at once (scontrol update StartTime=now).
# shellcheck source=tests/slurm/lib.sh
. "$POA_TOP_SRCDIR/tests/slurm/lib.sh"
setup_out requeue
mpiexec=${POA_MPIEXEC:-mpiexec}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
make_root "$out/root" 128
"$bin/poa-pack" --root "$out/root" --output "$out/packed" --splits train -j 1 >"$out/pack.log" 2>&1 ||
    { cat "$out/pack.log"; echo "FAIL: poa-pack"; exit 1; }
# Iterations are logged one by one; no periodic checkpoints (only the stop checkpoints).
common="train.batch_size_per_gpu=4 train.log_period_iterations=1 train.checkpoint_period_iterations=100000
        evaluation.eval_period_iterations=0 train.checkpoint_keep=2"
metrics() { cat "$1/training_metrics.json" 2>/dev/null | wc -l; }
last_it() { tail -1 "$1/training_metrics.json" | sed 's/.*"iteration": \([0-9]*\),.*/\1/'; }
ck_it() { "$py" "$top_src/tests/train/check_train.py" iteration "$1"; }

# ------------------------------------------------------------------ reference
# 600 iterations (tiny's epoch is 4): long enough for the two stops and their resumptions even on
# a fast machine (the ranks are paused while a stop is asked), short on a slow one.
epochs=150
common="$common optim.epochs=$epochs"
t0=$(date +%s)
# shellcheck disable=SC2086
"$mpiexec" -n 2 --oversubscribe -x OMP_NUM_THREADS=1 -x POA_PROGRESS "$bin/poa-train" --config "$tiny" \
    --data "$out/packed" --output "$out/ref" $common >"$out/ref.log" 2>&1 ||
    { tail -20 "$out/ref.log"; echo "FAIL: uninterrupted reference run"; exit 1; }
echo "uninterrupted reference run (mpiexec -n 2): $(($(date +%s) - t0)) s"
final=$(cd "$out/ref" && ls checkpoint_*.h5 | tail -1)

# ------------------------------------------------------------------ the job
sbatch_common="--nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1 --gpus-per-node=0"
t0=$(date +%s)
# shellcheck disable=SC2086
job=$(PACKED=$out/packed OUTPUT=$out/run CONFIG=$tiny sbatch --parsable $sbatch_common --time=UNLIMITED \
    --signal=B:USR1@50 --output="$out/logs/pretrain-%j.out" "$top_src/slurm/pretrain.sbatch" $common)
case "$job" in '' | *[!0-9]*) echo "FAIL: sbatch: $job"; exit 1 ;; esac
# A job of the next stage: it must wait through the requeues and start when the run is done.
after=$(sbatch --parsable --dependency=afterok:$job --ntasks=1 --output="$out/logs/next-%j.out" --wrap true)
echo "submitted pretrain.sbatch as job $job, and job $after with --dependency=afterok:$job"
trap 'scancel $job $after 2>/dev/null' EXIT

# progress N SECS [DIR]: wait until the run in DIR (default: the first job's) has logged N
# iterations in all
progress() {
    d=${3:-$out/run}
    i=0
    while [ "$(metrics "$d")" -lt "$1" ] && [ $i -lt $(($2 * 4)) ]; do
        sleep 0.25
        i=$((i + 1))
    done
    [ "$(metrics "$d")" -ge "$1" ]
}

# pause_ranks DIR / continue_ranks DIR: SIGSTOP / SIGCONT the poa-train ranks writing to DIR
# (the test cluster runs on this host), so that a run cannot end while its stop is on the way.
ranks_of() { # the poa-train processes themselves, not srun's or the script's command lines
    for r in $(pgrep -x poa-train); do
        tr '\0' ' ' <"/proc/$r/cmdline" 2>/dev/null | grep -q -e "--output $1 " && echo "$r"
    done
}
pause_ranks() {
    p=$(ranks_of "$1")
    [ -n "$p" ] && kill -STOP $p 2>/dev/null
    true
}
continue_ranks() {
    sleep 2 # the stop signal travels slurmctld → slurmd → slurmstepd → ranks
    p=$(ranks_of "$1")
    [ -n "$p" ] && kill -CONT $p 2>/dev/null
    true
}

# stopped PHASE RESTARTS [JOB DIR]: the job came back PENDING with that restart count, after
# writing a checkpoint of its last logged iteration; then start it
stopped() {
    j=${3:-$job} d=${4:-$out/run}
    i=0
    while [ "$(job_field $j Restarts)" != "$2" ] && [ $i -lt 240 ]; do
        sleep 0.25
        i=$((i + 1))
    done
    if [ "$(job_field $j Restarts)" != "$2" ] || ! wait_state $j 60 PENDING; then
        bad "$1: job $j was not requeued (restarts $(job_field $j Restarts), state $(job_field $j JobState))"
        dump $j
        finish
    fi
    it=$(last_it "$d")
    ck=$(ls "$d"/checkpoint_*.h5 2>/dev/null | tail -1)
    [ -n "$ck" ] && [ "$(ck_it "$ck")" = "$it" ] &&
        ok "$1: stopped after iteration $it with its checkpoint, requeued (restart $2)" ||
        bad "$1: no checkpoint of the last iteration $it ($ck)"
    release $j
}

# 1. scancel --signal=TERM: the ranks get SIGTERM
progress 3 120 || { bad "the job did not start training"; dump $job; finish; }
pause_ranks "$out/run"
scancel --signal=TERM $job
continue_ranks "$out/run"
stopped "scancel --signal=TERM" 1
grep -q "poa-train stopped with a checkpoint (exit 75): requeued job $job" "$out/logs/pretrain-$job.out" &&
    ok "the script requeued the job itself after exit 75" || bad "no requeue message in the log"

# 2. scontrol requeue: Slurm stops the whole job (SIGTERM, SIGKILL after KillWait) and requeues it
n=$(metrics "$out/run")
progress $((n + 3)) 120 || { bad "the requeued job did not resume training"; dump $job; finish; }
pause_ranks "$out/run"
scontrol requeue $job
continue_ranks "$out/run"
stopped "scontrol requeue" 2
grep -q "Slurm is requeueing job $job already" "$out/logs/pretrain-$job.out" &&
    ok "the script saw that Slurm requeues the job itself" || bad "no 'Slurm is requeueing job $job already' in the log"

# the rest of the run
wait_done $job 300 || { bad "job $job did not finish"; dump $job; finish; }
state=$(job_field $job JobState)
[ "$state" = COMPLETED ] && [ "$(job_field $job ExitCode)" = 0:0 ] &&
    ok "job $job completed after 2 requeues ($(($(date +%s) - t0)) s)" ||
    bad "job $job ended $state, exit $(job_field $job ExitCode)"
wait_done $after 60 && [ "$(job_field $after JobState)" = COMPLETED ] &&
    [ "$(date -d "$(job_field $job EndTime)" +%s)" -le "$(date -d "$(job_field $after StartTime)" +%s)" ] &&
    ok "the afterok job $after waited through the 2 requeues and ran after the run ended" ||
    { bad "afterok job $after: $(job_field $after JobState) $(job_field $after Reason)"; dump $after; }
trap - EXIT
n=$(grep -c "resuming from" "$out/logs/pretrain-$job.out")
[ "$n" = 2 ] && ok "the job resumed 2 times from its checkpoints" || bad "$n resumptions in the log (want 2)"
"$py" "$top_src/tests/train/check_train.py" losses "$out/ref/training_metrics.json" "$out/run/training_metrics.json" &&
    ok "losses of every iteration bit-identical to the uninterrupted run" || bad "losses differ"
"$py" "$top_src/tests/train/check_train.py" identical "$out/ref/$final" "$out/run/$final" &&
    ok "final checkpoint $final bit-identical" || bad "final checkpoints differ"
n=$(metrics "$out/run")
[ "$n" = $((epochs * 4)) ] && ok "metrics: $n records, one per iteration" || bad "metrics: $n records (want $((epochs * 4)))"

# ------------------------------------------------------------------ 3. the time limit
# A run far longer than the test (400,000 iterations): the time-limit signal always finds it.
tl=$(PACKED=$out/packed OUTPUT=$out/run-tl CONFIG=$tiny sbatch --parsable $sbatch_common --time=UNLIMITED \
    --signal=B:USR1@50 --output="$out/logs/timelimit-%j.out" "$top_src/slurm/pretrain.sbatch" \
    $common optim.epochs=100000)
case "$tl" in '' | *[!0-9]*) echo "FAIL: sbatch: $tl"; exit 1 ;; esac
trap 'scancel $tl 2>/dev/null' EXIT
out_run=$out/run-tl
progress 3 120 "$out_run" || { bad "the time-limit job did not start training"; dump $tl; finish; }
t3=$(date +%s)
scontrol update JobId=$tl TimeLimit=1
i=0
while [ "$(job_field $tl Restarts)" != 1 ] && [ "$(job_field $tl JobState)" = RUNNING ] && [ $i -lt 400 ]; do
    sleep 0.25
    i=$((i + 1))
done
grep -q "got SIGUSR1" "$out/logs/timelimit-$tl.out" &&
    ok "time limit: SIGUSR1 reached the script $(($(date +%s) - t3)) s after the limit was lowered" ||
    bad "time limit: no SIGUSR1 (state $(job_field $tl JobState))"
scontrol update JobId=$tl TimeLimit=UNLIMITED
stopped "time limit (--signal=B:USR1@50)" 1 $tl "$out_run"
# Resumed, then a plain scancel ends it for good: stopped with a checkpoint, not requeued.
n=$(metrics "$out_run")
progress $((n + 3)) 120 "$out_run" && grep -q "resuming from" "$out/logs/timelimit-$tl.out" &&
    ok "the time-limit job resumed from its checkpoint" || { bad "the time-limit job did not resume"; dump $tl; }
scancel $tl
wait_done $tl 60
ck=$(ls "$out_run"/checkpoint_*.h5 2>/dev/null | tail -1)
if [ "$(job_field $tl JobState)" = CANCELLED ] && [ "$(job_field $tl Restarts)" = 1 ] &&
    [ -n "$ck" ] && [ "$(ck_it "$ck")" = "$(last_it "$out_run")" ] &&
    grep -q "Slurm is ending the job (scancel, .*not requeueing it" "$out/logs/timelimit-$tl.out"; then
    ok "plain scancel: checkpoint written, job CANCELLED and not requeued, the log says so"
else
    bad "plain scancel: state $(job_field $tl JobState), restarts $(job_field $tl Restarts)"
    dump $tl
fi
trap - EXIT

# ------------------------------------------------------------------ failures are not requeued
# failed NAME EXIT TEXT ENV...: the job fails with EXIT, is not requeued, and its log has TEXT
failed() {
    name=$1 code=$2 text=$3
    shift 3
    # shellcheck disable=SC2086
    j=$(env "$@" CONFIG="$tiny" sbatch --parsable $sbatch_common --output="$out/logs/$name-%j.out" \
        "$top_src/slurm/pretrain.sbatch" $common $EXTRA)
    wait_done $j 120 || { bad "$name: job $j did not end"; dump $j; return; }
    st=$(job_field $j JobState) ec=$(job_field $j ExitCode) rs=$(job_field $j Restarts)
    if [ "$st" = FAILED ] && [ "$ec" = "$code:0" ] && [ "$rs" = 0 ] && grep -q "$text" "$out/logs/$name-$j.out" &&
        grep -q "poa-train failed: .*(exit $code.*not requeued" "$out/logs/$name-$j.out"; then
        ok "$name: FAILED with exit $code, not requeued, the log says why"
    else
        bad "$name: state $st, exit $ec, restarts $rs"
        dump $j
    fi
}
EXTRA=
failed missing-data 3 "data directory $out/nothing-here: No such file" PACKED="$out/nothing-here" OUTPUT="$out/run-missing"
EXTRA=optim.epochs=0
failed bad-config 2 "optim.epochs = 0 is out of range" PACKED="$out/packed" OUTPUT="$out/run-badconfig"
finish
