#!/bin/sh
# test_fatal_path.sh — the fatal-error path (poa_error.h) and the harness time limit.
set -u
probe=${POA_TOP_BUILDDIR:-.}/tests/unit/fatal_probe
fail=0
expect() { # description, condition-result
    if [ "$2" -ne 0 ]; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi
}
out=$("$probe" check 2>&1); rc=$?
echo "$out"
expect "POA_CHECK exits 70" "$([ $rc -eq 70 ]; echo $?)"
echo "$out" | grep -q '^\[rank 0/1 [^]]*\] .*fatal_probe.c:[0-9]* main: answer == 42 -> answer is 41$'
expect "message names rank, host, file:line, function, expression, message" $?
echo "$out" | grep -q 'abort hook ran: comm'
expect "abort hooks run" $?

out=$("$probe" die 2>&1); rc=$?
expect "poa_die exits with the given code (3)" "$([ $rc -eq 3 ]; echo $?)"
echo "$out" | grep -q 'error: shard x.h5 is truncated'
expect "poa_die prints the message" $?

# Under MPI: one failing rank must take the whole job down (MPI_Abort), not hang.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(timeout 60 ${POA_MPIEXEC:-mpiexec} -n 2 --oversubscribe "$probe" rank1 2>&1); rc=$?
echo "$out" | tail -5
expect "MPI job aborted (not hung, not success)" "$([ $rc -ne 0 ] && [ $rc -ne 124 ]; echo $?)"
echo "$out" | grep -q '^\[rank 1/2 .*rank one fails'
expect "failing rank identified" $?

# Harness time limit: a hung test is killed and its stack printed.
out=$(POA_TEST_TIMEOUT=2 sh "$POA_TOP_SRCDIR/tests/scripts/run-test.sh" "$probe" hang 2>&1); rc=$?
echo "$out" | head -8
expect "harness exits 124 on a hung test" "$([ $rc -eq 124 ]; echo $?)"
echo "$out" | grep -q 'exceeded 2s'
expect "harness reports the time limit" $?
if command -v gdb >/dev/null 2>&1; then
    echo "$out" | grep -q -E '^#[0-9]+ .*(sleep|nanosleep|main)'
    expect "harness prints where it hung" $?
fi
exit $fail
