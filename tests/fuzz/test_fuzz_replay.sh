#!/bin/sh
# test_fuzz_replay.sh — every fuzz target runs once on each input of its seed corpus
# (tests/fuzz/corpus/<target>/) and of its regressions (tests/fuzz/regressions/<target>/: the
# inputs that once crashed or hung it); a crash, a sanitizer report or the harness's time limit
# fails the test.  In a --enable-fuzzing tree the same programs are libFuzzer's, which also run
# the files they are given once each.
set -u
top_src=${POA_TOP_SRCDIR:?run through make check}
top_build=${POA_TOP_BUILDDIR:?run through make check}
fail=0
total=0
for t in config cli jpeg labels shard metadata checkpoint extracted_h5 extracted_st; do
    prog=$top_build/tests/fuzz/fuzz_$t
    [ -x "$prog" ] || { echo "FAIL: $prog not built"; fail=1; continue; }
    files=$(find "$top_src/tests/fuzz/corpus/$t" "$top_src/tests/fuzz/regressions/$t" \
        -type f ! -name 'README*' 2>/dev/null | sort)
    n=$(printf '%s\n' $files | grep -c . || true)
    if [ "$n" -eq 0 ]; then
        echo "FAIL: fuzz_$t: no seed or regression input"
        fail=1
        continue
    fi
    # shellcheck disable=SC2086
    if "$prog" $files >"$top_build/tests/fuzz/replay-$t.log" 2>&1; then
        echo "ok: fuzz_$t: $n inputs replayed"
        total=$((total + n))
    else
        tail -30 "$top_build/tests/fuzz/replay-$t.log"
        echo "FAIL: fuzz_$t failed on one of its $n inputs (log: tests/fuzz/replay-$t.log)"
        fail=1
    fi
done
echo "replayed $total inputs"
[ $fail -eq 0 ] && echo "all checks passed" || echo "some checks FAILED"
exit $fail
