# lib.sh — sourced by the tests that run jobs on the private test cluster (make check-slurm:
# tests/slurm/slurm-up.sh starts it, slurm-down.sh stops it).  Gives:
#   $top_src $top_build $out (this test's folder, emptied) $bin (the built poa programs, linked
#   into one directory as POA_BIN) $tiny (configs/tiny.yaml) $cluster (the cluster's folder)
#   ok/bad/finish   results; finish prints the job logs and the daemons' log tails on failure
#   make_root DIR N          N Fashion-MNIST images per split in ImageNet layout (poa-prep-fmnist)
#   job_field JOB FIELD      a field of `scontrol show job` (first array task for an array job)
#   wait_state JOB SECS STATE...   wait until the job is in one of the states (a requeued job
#                            passes through PENDING again); 1 on timeout
#   wait_done JOB SECS       wait until the job (every task of an array) has ended
#   release JOB              a requeued job is held by Slurm for two minutes (BeginTime): start
#                            it now (the test's time budget; nothing else changes), but not in the
#                            second its previous run was killed (see release below)
#   dump JOB...              print `scontrol show job` and the job's log
# shellcheck shell=sh
set -u
top_src=$(cd "${POA_TOP_SRCDIR:?run through make check-slurm}" && pwd)
top_build=${POA_TOP_BUILDDIR:?run through make check-slurm}
cluster=${POA_SLURM_CLUSTER:-$top_build/tests/out/slurm-cluster}
# shellcheck disable=SC2034 # for the tests that source this file
tiny=$top_src/configs/tiny.yaml
# shellcheck disable=SC2034 # for the tests that source this file
py=${POA_PYTHON_REF:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1 POA_PROGRESS=0

fail=0
ok() { echo "ok: $1 ($(date -u +%T))"; }
failures=
bad() {
    echo "FAIL: $1 ($(date -u +%T))"
    fail=1
    failures="$failures  FAIL: $1
"
}

# The cluster must be up (make check-slurm starts it); otherwise the test is skipped.
if [ ! -f "$cluster/env.sh" ] || ! kill -0 "$(cat "$cluster/run/slurmctld.pid" 2>/dev/null || echo none)" 2>/dev/null; then
    echo "skip: the test cluster is not running (run: make check-slurm)"
    exit 77
fi
# shellcheck source=/dev/null # written by tests/slurm/slurm-up.sh when it starts the cluster
. "$cluster/env.sh"

# setup_out NAME: this test's scratch folder and POA_BIN (links to the programs of the build tree)
setup_out() {
    out=$top_build/tests/out/slurm/$1
    rm -rf "$out"
    mkdir -p "$out/bin" "$out/logs"
    for p in poa-pack poa-prep-fmnist poa-train poa-config poa-extract poa-eval-knn poa-eval-linear; do
        for d in "$top_build" "$top_build/src" "$top_build/tools" "$top_build/data-prep"; do
            if [ -x "$d/$p" ] && [ ! -d "$d/$p" ]; then
                ln -sf "$d/$p" "$out/bin/$p"
                break
            fi
        done
    done
    bin=$out/bin
    POA_BIN=$bin
    export POA_BIN
    for p in poa-pack poa-prep-fmnist poa-train; do
        [ -x "$bin/$p" ] || { echo "FAIL: $p not built in $top_build"; exit 1; }
    done
}

make_root() {
    [ -d /usr/share/datasets/fashion-mnist ] || { echo "skip: Fashion-MNIST not installed"; exit 77; }
    "$bin/poa-prep-fmnist" --output "$1" --limit "$2" >"$1.log" 2>&1 ||
        { cat "$1.log"; echo "FAIL: cannot prepare the test images"; exit 1; }
}

job_field() {
    scontrol show job -o "$1" 2>/dev/null | head -1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# terminal STATE: 0 when a job in STATE has ended for good
terminal() {
    case "$1" in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) return 0 ;;
    esac
    return 1
}

wait_state() {
    # shellcheck disable=SC3043 # local: dash and bash, the shells that run the tests, have it
    local job=$1 limit=$2 i=0 s
    shift 2
    while [ $i -lt $((limit * 4)) ]; do
        s=$(job_field "$job" JobState)
        for want in "$@"; do [ "$s" = "$want" ] && return 0; done
        sleep 0.25
        i=$((i + 1))
    done
    echo "job $job: still $s after ${limit}s (waiting for $*)"
    return 1
}

wait_done() {
    # shellcheck disable=SC3043 # local: dash and bash, the shells that run the tests, have it
    local job=$1 limit=$2 i=0 states s all
    while [ $i -lt $((limit * 2)) ]; do
        states=$(scontrol show job -o "$job" 2>/dev/null | tr ' ' '\n' | sed -n 's/^JobState=//p')
        all=yes
        for s in $states; do terminal "$s" || all=no; done
        [ -n "$states" ] && [ $all = yes ] && return 0
        sleep 0.5
        i=$((i + 1))
    done
    echo "job $job: not finished after ${limit}s (states: $(echo $states))"
    return 1
}

# Slurm holds a requeued job because slurmd revokes the credential of a killed job: a launch
# whose credential was created in the same second as the revocation (whole seconds) is refused
# ("Job N already killed, do not launch batch job") and the job is requeued held.  On a fast
# machine the test could release the job within that second, so it waits 2 s after the job came
# back PENDING (the revocation happened before that) before it asks for the start.
release() {
    sleep 2
    scontrol update JobId="$1" StartTime=now
}

dump() {
    for j in "$@"; do
        echo "---- scontrol show job $j"
        scontrol show job "$j" 2>&1
        for f in $(scontrol show job "$j" 2>/dev/null | sed -n 's/^ *StdOut=//p' | sort -u); do
            echo "---- job log $f (last 40 lines)"
            tail -40 "$f" 2>/dev/null
        done
    done
}

finish() {
    if [ $fail -ne 0 ]; then
        for f in "$out"/logs/*; do
            [ -f "$f" ] && { echo "---- job log $f (last 40 lines)"; tail -40 "$f"; }
        done
        for f in slurmctld slurmd; do
            echo "---- last lines of $cluster/log/$f.log"
            tail -15 "$cluster/log/$f.log" 2>/dev/null
        done
        echo "some checks FAILED:"
        printf '%s\n' "$failures"
    else
        echo "all checks passed"
    fi
    exit $fail
}
