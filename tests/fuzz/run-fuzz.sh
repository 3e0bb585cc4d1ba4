#!/bin/sh
# run-fuzz.sh — fuzz every target for a bounded time (make fuzz FUZZ_SECONDS=N; the fuzz phase of
# tests/scripts/ci-tests.sh).  Run from a build tree configured with CC=clang --enable-fuzzing.
#   run-fuzz.sh --seconds N --src SRCDIR TARGET...
# Each target starts from its committed seeds and regressions; what it adds goes to
# tests/fuzz/work/<target>/ in the build tree (kept between runs, never committed).  A crash,
# a sanitizer report, a leak, a timeout (FUZZ_TIMEOUT s per input) or running out of memory
# (FUZZ_RSS_MB) stops that target; the input is saved as tests/fuzz/artifacts/<target>-* and the
# script fails after the summary (fix the bug, then commit the input under
# tests/fuzz/regressions/<target>/).  Fuzzers run under `nice -n ${FUZZ_NICE:-15}`, FUZZ_JOBS
# of them at a time (default: the number of cores; each fuzzer uses one), in lanes that each take
# every FUZZ_JOBS-th target.
set -u
seconds=30
src=.
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --src) src=$2; shift 2 ;;
    *) break ;;
    esac
done
timeout_s=${FUZZ_TIMEOUT:-10}
rss=${FUZZ_RSS_MB:-2048}
nice_n=${FUZZ_NICE:-15}
mkdir -p tests/fuzz/work tests/fuzz/artifacts
summary=tests/fuzz/summary.txt
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
rm -f tests/fuzz/summary-*.line

# fuzz_one PROG: fuzz one target; its summary line goes to tests/fuzz/summary-<target>.line.
fuzz_one() {
    name=$(basename "$1")
    t=${name#fuzz_}
    case $t in
    cli) max_len=4096 ;;
    labels | config) max_len=16384 ;;
    jpeg) max_len=32768 ;;
    *) max_len=262144 ;;
    esac
    work=tests/fuzz/work/$t
    mkdir -p "$work"
    dirs="$work"
    for d in "$src/tests/fuzz/corpus/$t" "$src/tests/fuzz/regressions/$t"; do
        [ -d "$d" ] && dirs="$dirs $d"
    done
    log=tests/fuzz/fuzz-$t.log
    start=$(date +%s)
    # shellcheck disable=SC2086
    nice -n "$nice_n" "$1" -max_total_time="$seconds" -timeout="$timeout_s" \
        -rss_limit_mb="$rss" -max_len="$max_len" -print_final_stats=1 -close_fd_mask=1 \
        -artifact_prefix="tests/fuzz/artifacts/$t-" $dirs >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(find "$work" -type f | wc -l)
    if [ $rc -eq 0 ]; then
        result=ok
    else
        result="FOUND (exit $rc): $(grep -m1 -E 'ERROR: |SUMMARY: |==[0-9]+==' "$log" | cut -c1-100)"
    fi
    printf '%-18s %8s %12s %10s %8s  %s\n' "$name" "$took" "${execs:-?}" "${rate:-?}" "$corpus" \
        "$result" >"tests/fuzz/summary-$t.line"
}

lane=0
while [ $lane -lt "$jobs" ]; do
    (
        i=0
        for prog in "$@"; do
            [ $((i % jobs)) -eq $lane ] && fuzz_one "$prog"
            i=$((i + 1))
        done
    ) &
    lane=$((lane + 1))
done
wait

printf '%-18s %8s %12s %10s %8s  %s\n' target seconds executions exec/s corpus result >"$summary"
fail=0
for prog in "$@"; do
    t=$(basename "$prog")
    t=${t#fuzz_}
    line=tests/fuzz/summary-$t.line
    if [ ! -s "$line" ]; then
        printf '%-18s %8s %12s %10s %8s  %s\n' "fuzz_$t" ? ? ? ? "NO RESULT (the lane stopped)" >>"$summary"
        fail=1
        continue
    fi
    cat "$line" >>"$summary"
    if grep -q '  FOUND (exit' "$line"; then
        fail=1
        echo "---- fuzz_$t: the end of tests/fuzz/fuzz-$t.log"
        grep -v '^#[0-9]' "tests/fuzz/fuzz-$t.log" | tail -40
        ls -l tests/fuzz/artifacts/"$t"-* 2>/dev/null
    fi
    rm -f "$line"
done
cat "$summary"
[ $fail -eq 0 ] && echo "fuzz: nothing found" || echo "fuzz: FINDINGS (artifacts in tests/fuzz/artifacts/)"
exit $fail
