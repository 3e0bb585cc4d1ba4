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
#   evaluation_errors BAD_OPTION ARGS...   the errors every evaluation program (poa-eval-knn,
#                           poa-eval-linear) reports alike, with their exit codes; ARGS make a
#                           short run for the unwritable-output case
# shellcheck shell=sh
set -u
top_src=$(cd "${POA_TOP_SRCDIR:?run through make check}" && pwd)
top_build=${POA_TOP_BUILDDIR:?run through make check}
# shellcheck disable=SC2034 # for the tests that source this file
py=${POA_PYTHON_REF:-/usr/bin/python3}
# shellcheck disable=SC2034 # for the tests that source this file
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
    # shellcheck disable=SC2034 # for the tests that source this file
    eval_ck=$out/run/eval/training_399/teacher_checkpoint.h5
}

# The command-line and input errors the evaluation programs share (src/tool/eval_args.h parses
# their common options, src/tool/networks.h opens the models and the data), each with README.md's
# exit code: usage (2), input (3), output (4).  Needs $ck, $data and $out/root (the unpacked
# data set).
# shellcheck disable=SC2154 # $data is set by the test that calls it
evaluation_errors() {
    bad_option=$1
    shift
    expect no-data 2 "--data DIR is required" --checkpoint "$ck" --output "$out/e"
    expect no-output 2 "--output DIR is required" --checkpoint "$ck" --data "$data"
    expect no-ckpt 2 "--checkpoint PATH is required" --data "$data" --output "$out/e"
    expect pixels-no-crop 2 "--pixels without a checkpoint needs --crop N" --pixels \
        --data "$data" --output "$out/e"
    expect resize-below-crop 2 "--resize 16 is smaller than --crop 32" --checkpoint "$ck" \
        --data "$data" --output "$out/e" --crop 32 --resize 16
    expect bad-dtype 2 "--dtype 'f16': expected f32 or bf16" --checkpoint "$ck" --data "$data" \
        --output "$out/e" --dtype f16
    expect bad-backend 2 "--backend 'tpu': expected cpu or cuda" --checkpoint "$ck" \
        --data "$data" --output "$out/e" --backend tpu
    expect bad-from 2 "--from" --checkpoint "$ck" --data "$data" --output "$out/e" --from nobody
    expect bad-subnet 2 "--subnet '64y3'" --checkpoint "$ck" --data "$data" --output "$out/e" \
        --subnet 64y3
    expect no-size 2 "--subnet .*80" --checkpoint "$ck" --data "$data" --output "$out/e" \
        --subnet 80x3
    expect bad-crop 2 "not a multiple of the patch size 4" --checkpoint "$ck" --data "$data" \
        --output "$out/e" --crop 30
    expect bad-option 2 "unknown option" --checkpoint "$ck" --data "$data" --output "$out/e" \
        "$bad_option" 5
    expect missing-ckpt 3 "nothere.h5" --checkpoint "$out/nothere.h5" --data "$data" \
        --output "$out/e"
    head -c 20000 "$ck" >"$out/trunc.h5"
    expect truncated-ckpt 3 "trunc.h5" --checkpoint "$out/trunc.h5" --data "$data" --output "$out/e"
    echo "not a checkpoint" >"$out/text.h5"
    expect text-ckpt 3 "text.h5" --checkpoint "$out/text.h5" --data "$data" --output "$out/e"
    mkdir -p "$out/noval" && cp "$data"/* "$out/noval/" 2>/dev/null
    rm -f "$out"/noval/*val*
    expect no-val 3 "val" --checkpoint "$ck" --data "$out/noval" --output "$out/e"
    expect missing-data 3 "nodata" --checkpoint "$ck" --data "$out/nodata" --output "$out/e"
    # a data set whose val split lacks two of the classes
    [ -d "$out/packed8" ] || { cp -r "$out/root" "$out/root8" &&
        rm -rf "$out/root8/val/fm8_bag" "$out/root8/val/fm9_ankle_boot" &&
        "$top_build/poa-pack" --root "$out/root8" --output "$out/packed8" -j 1 \
            >"$out/pack8.log" 2>&1; } || bad "cannot pack the mismatched data set"
    expect mismatched-data 3 "train has 10 classes, val 8" --checkpoint "$ck" \
        --data "$out/packed8" --output "$out/e"
    touch "$out/file"
    expect unwritable 4 "$out/file/sub" --checkpoint "$ck" --data "$data" \
        --output "$out/file/sub" "$@"
}
