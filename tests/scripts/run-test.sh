#!/bin/sh
# run-test.sh — the automake LOG_COMPILER of every poa test.
#   run-test.sh PROGRAM [ARGS...]
# - test_mpi_* programs run under `mpiexec -n 2` (root-safe, oversubscribed);
# - *.sh tests run with sh;
# - every test has a time limit (POA_TEST_TIMEOUT seconds, default 900); when it is exceeded the
#   harness prints the stacks of the hung processes (gdb) before killing them, then fails (exit 124).
# Exit 77 from a test means "skipped" (e.g. GPU tests without a device).
set -u
# test-env.sh lives in the build tree (configure output); fall back to the source tree copy.
for f in "${POA_TOP_BUILDDIR:-.}/tests/scripts/test-env.sh" "./tests/scripts/test-env.sh"; do
    # shellcheck source=tests/scripts/test-env.sh.in
    if [ -f "$f" ]; then . "$f"; break; fi
done
prog=$1
shift
limit=${POA_TEST_TIMEOUT:-900}
name=$(basename "$prog")

# OpenMPI inside containers, as root, with 2 cores: allow all of it.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_btl="self,vader"
# A session directory of its own for each test: Open MPI 4 creates the shared
# /tmp/ompi.<host>.<uid> when a job starts and removes it when the last one ends, and two tests
# starting MPI at that moment can collide there ("A call to mkdir was unable to create the
# desired directory ... File exists", then MPI_Init fails), failing a test that did nothing wrong.
ompi_tmp=$(mktemp -d "${TMPDIR:-/tmp}/poa-ompi.XXXXXX") || exit 99
export OMPI_MCA_orte_tmpdir_base="$ompi_tmp"
# Keep BLAS/OpenMP to the machine: each MPI rank one thread unless the test says otherwise.
: "${OMP_NUM_THREADS:=2}"
export OMP_NUM_THREADS
# Sanitizer runs: MPI and HDF5 keep global allocations alive until exit.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# ThreadSanitizer tree (--enable-tsan): stop at the first report; LLVM's OpenMP runtime with
# archer, and the one suppression of tests/scripts/tsan.supp; OpenBLAS (not instrumented) on
# one thread.
if [ "${POA_TSAN:-no}" = yes ]; then
    export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$POA_TOP_SRCDIR/tests/scripts/tsan.supp}"
    [ -n "${POA_ARCHER_LIB:-}" ] && export OMP_TOOL_LIBRARIES="$POA_ARCHER_LIB"
    export OPENBLAS_NUM_THREADS=1
fi

case "$name" in
test_mpi_*) set -- ${POA_MPIEXEC:-mpiexec} -n 2 --oversubscribe --allow-run-as-root \
                   -x OMP_NUM_THREADS=1 "$prog" "$@" ;;
*.sh)       set -- sh "$prog" "$@" ;;
*)          set -- "$prog" "$@" ;;
esac

t0=$(date +%s.%N)
"$@" &
pid=$!
# The watchdog sleeps until the limit instead of polling every second, so a test costs no
# more than its own run time; a finished test stops it (and its sleep) at once.
expired=${TMPDIR:-/tmp}/run-test.$$.expired
(
    sleep "$limit" &
    nap=$!
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    wait "$nap"
    trap '' TERM # from here on the watchdog finishes its work even when the test ends
    kill -0 "$pid" 2>/dev/null || exit 0
    : >"$expired"
    echo "run-test: $name exceeded ${limit}s; stacks of the hung processes follow" >&2
    pids="$pid $(pgrep -P "$pid" 2>/dev/null) $(for c in $(pgrep -P "$pid" 2>/dev/null); do pgrep -P "$c"; done)"
    for p in $pids; do
        echo "---- pid $p: $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" >&2
        if command -v gdb >/dev/null 2>&1; then
            gdb -batch -p "$p" -ex "thread apply all bt" 2>/dev/null | grep -E '^(#|Thread)' >&2
        else
            cat /proc/$p/stack 2>/dev/null >&2 || echo "(no gdb: cannot print stack)" >&2
        fi
    done
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
) &
watchdog=$!
wait "$pid"
rc=$?
kill "$watchdog" 2>/dev/null
wait "$watchdog" 2>/dev/null
if [ -e "$expired" ]; then
    rm -f "$expired"
    rc=124
fi
rm -rf "$ompi_tmp"
# The run time closes every log, so that the slow tests can be found (grep '^run-test:' *.log).
echo "run-test: $name: exit $rc after $(echo "$t0 $(date +%s.%N)" | awk '{printf "%.1f", $2 - $1}') s" >&2
exit "$rc"
