# lib.sh — sourced by the tests of the rank loop (tests/train/test_train_*.sh) and the fault
# tests (tests/fault/).  Gives what tests/lib/testlib.sh gives ($top_src, $top_build, $py,
# $mpiexec, ok/bad/finish, MPI's test environment) and: $train (poa-train), $tiny, $out (this
# test's scratch folder under the build tree: setup_out), run_ranks N ARGS... (poa-train under
# mpiexec -n N), make_data DIR [N] (N Fashion-MNIST images packed by poa-pack into DIR/packed),
# check (check_train.py), checkpoint_names DIR (the checkpoint files in DIR, temporary ones too).
# shellcheck shell=sh source=tests/lib/testlib.sh
. "$POA_TOP_SRCDIR/tests/lib/testlib.sh"
train=$top_build/src/poa-train
# shellcheck disable=SC2034 # for the tests that source this file
tiny=$top_src/configs/tiny.yaml
export POA_PROGRESS=0

# scratch folder of this test: tests/out/train/<name>
setup_out() {
    out=$top_build/tests/out/train/$1
    rm -rf "$out"
    mkdir -p "$out"
}

# The fault tests (tests/fault/) skip when POA_FAULT_TESTS=skip: tests/scripts/ci-tests.sh sets it
# in the trees where they would only repeat the cpu tree's runs (cuda without a GPU, distcheck).
fault_test() {
    [ "${POA_FAULT_TESTS:-run}" = skip ] && { echo "skip: POA_FAULT_TESTS=skip"; exit 77; }
    return 0
}

need_python() {
    "$py" -c 'import h5py, numpy' 2>/dev/null || { echo "skip: $py lacks h5py/numpy"; exit 77; }
}

check() { "$py" "$top_src/tests/train/check_train.py" "$@"; }

# checkpoint_names DIR: the names in DIR that begin with checkpoint or .checkpoint (a temporary
# checkpoint file), sorted, on one line
checkpoint_names() {
    (cd "$1" && find . -mindepth 1 -maxdepth 1 \( -name 'checkpoint*' -o -name '.checkpoint*' \) |
        sed 's|^\./||' | sort | tr '\n' ' ')
}

# run_ranks N [poa-train args...]: one rank per core, output kept by the caller
run_ranks() {
    n=$1
    shift
    "$mpiexec" -n "$n" --oversubscribe -x OMP_NUM_THREADS=1 -x POA_PROGRESS "$train" "$@"
}

# make_data DIR [N]: N (default 128) Fashion-MNIST training images, packed into DIR/packed
make_data() {
    src=/usr/share/datasets/fashion-mnist
    [ -d "$src" ] || { echo "skip: Fashion-MNIST not installed ($src)"; exit 77; }
    for p in "$top_build/data-prep/poa-prep-fmnist" "$top_build/poa-prep-fmnist"; do
        [ -x "$p" ] && prep=$p
    done
    for p in "$top_build/data-prep/poa-pack" "$top_build/poa-pack"; do
        [ -x "$p" ] && pack=$p
    done
    "$prep" --output "$1/root" --limit "${2:-128}" >"$1/prep.log" 2>&1 &&
        "$pack" --root "$1/root" --output "$1/packed" --splits train -j 1 >"$1/pack.log" 2>&1 ||
        { cat "$1/prep.log" "$1/pack.log"; echo "cannot prepare the test data"; exit 1; }
}
