# testlib.sh — sourced by the shell tests run by make check (tests/train/lib.sh builds on it):
#   . "$POA_TOP_SRCDIR/tests/lib/testlib.sh"
# Gives:
#   $top_src $top_build     the source tree (absolute) and the build tree
#   $py $mpiexec            Python with the reference packages, the MPI launcher
#   ok/bad/finish           a check's result ("ok: ...", "FAIL: ..."); finish ends the test
#   MPI's environment for tests (root allowed, oversubscription, shared-memory transport)
# and for the tests of the programs that read models (poa-extract, poa-eval-knn, ...):
#   program_test PROG DIR   $prog (the program src/PROG), $out (tests/out/DIR, emptied)
#   expect NAME CODE PATTERN ARGS...   $prog ARGS exits with CODE and prints PATTERN (its output
#                           in $out/NAME.log, printed when it does not)
#   files DIR               the names in DIR, sorted, on one line
#   seeded_demo_checkpoint  $ck, $eval_ck: a checkpoint of the 'demo' architecture preset with
#                           seeded, trained-like weights (tests/modelio/ckpt_write_seeded) and its
#                           evaluation checkpoint, under $out/run
set -u
top_src=$(cd "${POA_TOP_SRCDIR:?run through make check}" && pwd)
top_build=${POA_TOP_BUILDDIR:?run through make check}
py=${POA_PYTHON_REF:-/usr/bin/python3}
mpiexec=${POA_MPIEXEC:-mpiexec}
export PYTHONDONTWRITEBYTECODE=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_btl="self,vader"

fail=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }
finish() {
    [ $fail -eq 0 ] && echo "all checks passed" || echo "some checks FAILED"
    exit $fail
}

program_test() {
    prog=$top_build/src/$1
    out=$top_build/tests/out/$2
    rm -rf "$out" && mkdir -p "$out"
}

expect() {
    name=$1 code=$2 pat=$3
    shift 3
    "$prog" "$@" >"$out/$name.log" 2>&1
    rc=$?
    if [ $rc -eq "$code" ] && grep -q -- "$pat" "$out/$name.log"; then
        ok "$name: exit $code ($(grep -m1 -- "$pat" "$out/$name.log" | cut -c1-160))"
    else
        cat "$out/$name.log"
        bad "$name: exit $rc (want $code), pattern '$pat'"
    fi
}

files() { (cd "$1" 2>/dev/null && ls -A | sort | tr '\n' ' '); }

# The model of the 'demo' architecture preset (patch 4): configs/demo.yaml itself trains with
# patch 8 (docs/demo-learning-study.md), and the tests need a run whose model is a named size.
seeded_demo_checkpoint() {
    sed 's/^\(  patch_size:\) *8 .*/\1 4/' "$top_src/configs/demo.yaml" >"$out/demo-preset.yaml"
    grep -q '^  patch_size: 4$' "$out/demo-preset.yaml" ||
        { echo "FAIL: no patch_size 8 line in configs/demo.yaml"; exit 1; }
    "$top_build/tests/modelio/ckpt_write_seeded" "$out/run" "$out/demo-preset.yaml" 21 399 \
        >"$out/seeded.log" 2>&1 || { cat "$out/seeded.log"; echo "FAIL: cannot write the test checkpoint"; exit 1; }
    ck=$out/run/checkpoint_0000399.h5
    eval_ck=$out/run/eval/training_399/teacher_checkpoint.h5
}
