#!/bin/sh
# ci-tests.sh — THE test command (README "Tests"; .ci/run calls exactly this).
#   sh tests/scripts/ci-tests.sh [--quick]
# Installs the Debian packages, then in separate build trees under ./_ci/:
#   cpu    ./configure --without-cuda                 make && make check (PyTorch parity required)
#   slurm  make check-slurm in the cpu tree: a private single-node Slurm cluster (slurmctld,
#          slurmd, munged under _ci/cpu/tests/out), the job chain, a job array and preemption /
#          requeue / time limit with exact resume; needs root and installs slurm-wlm and munge
#          (tools/install-deps.sh slurm), reported SKIPPED with the reason otherwise
#   cuda   ./configure --with-cuda --with-nccl        make && make check (GPU tests skip w/o GPU)
#   asan   ./configure --without-cuda --enable-sanitizers   make check under ASan + UBSan: the
#          unit tests, the MPI tests (test_mpi_*, mpiexec -n 2), the end-to-end and fault tests
#   fuzz   CC=clang ./configure --enable-fuzzing      every fuzz target for FUZZ_SECONDS (default
#          20) seconds (tests/fuzz/README.md); skipped, with the reason, without clang/libFuzzer
#   tsan   CC=clang ./configure --enable-tsan         the loader's threads and the OpenMP regions
#          under ThreadSanitizer (README.md, "Reliability"); skipped like fuzz
#   dist   make distcheck (from the cpu tree)
#   style  make format-check
# --quick runs only the cpu phase.  POA_SKIP_SLURM=1 skips the slurm phase.  Exit status is non-zero if any phase fails.
# The fault tests (tests/fault/) run in the cpu tree and, with 5 random-signal runs instead of
# 20, in the asan tree; the cuda tree (the CPU backend without a GPU) and distcheck skip them
# (POA_FAULT_TESTS=skip): there they would only repeat the cpu tree's runs.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
quick=no
[ "${1:-}" = "--quick" ] && quick=yes
jobs=${POA_JOBS:-2}

phase() { echo; echo "=== ci: $* ($(date -u +%H:%M:%S))"; }
t_start=$(date +%s)

phase "install Debian packages"
sh tools/install-deps.sh

phase "autoreconf"
autoreconf -fi

build() { # name, configure flags...
    name=$1; shift
    mkdir -p "_ci/$name"
    (cd "_ci/$name" && "$top/configure" "$@" >configure.out 2>&1) || {
        cat "_ci/$name/configure.out"; echo "ci: configure ($name) failed"; exit 1; }
    sed -n '/feature summary/,$p' "_ci/$name/configure.out"
    make -C "_ci/$name" -j"$jobs" >"_ci/$name/make.out" 2>&1 || {
        tail -50 "_ci/$name/make.out"; echo "ci: build ($name) failed"; exit 1; }
}

check() { # name
    if ! make -C "_ci/$1" -j"$jobs" check; then
        for f in $(find "_ci/$1/tests" -name '*.log' 2>/dev/null); do
            if grep -q -E '^(FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null; then echo "---- $f"; tail -60 "$f"; fi
        done
        echo "ci: make check ($1) failed"; exit 1
    fi
}

phase "cpu configuration: build + check"
build cpu --without-cuda --with-cmocka --enable-parity-tests
check cpu
[ "$quick" = yes ] && { echo "ci: quick run done in $(( $(date +%s) - t_start ))s"; exit 0; }

phase "slurm: make check-slurm (real slurmctld/slurmd, single node)"
if [ "${POA_SKIP_SLURM:-0}" = 1 ]; then
    echo "ci: check-slurm SKIPPED: POA_SKIP_SLURM=1"
elif [ "$(id -u)" -ne 0 ]; then
    echo "ci: check-slurm SKIPPED: not root (the test cluster's munged and slurmd need root)"
elif ! sh tools/install-deps.sh slurm; then
    echo "ci: check-slurm SKIPPED: cannot install slurm-wlm and munge (tools/install-deps.sh slurm failed above)"
elif ! make -C _ci/cpu check-slurm; then
    for f in _ci/cpu/tests/slurm/*.log; do
        if grep -q -E '^(FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null; then echo "---- $f"; tail -150 "$f"; fi
    done
    echo "ci: make check-slurm failed"; exit 1
fi

if [ -x /usr/local/cuda/bin/nvcc ] || [ -n "${CUDA_HOME:-}" ]; then
    phase "cuda configuration: build + check"
    build cuda --with-cuda${CUDA_HOME:+=$CUDA_HOME} --with-nccl --with-cmocka --enable-parity-tests
    (export POA_FAULT_TESTS=skip; check cuda)
else
    echo "ci: WARNING: no CUDA toolkit in /usr/local/cuda: the CUDA configuration was NOT built"
fi

phase "sanitizers (ASan + UBSan): build + make check"
build asan --without-cuda --with-cmocka --enable-sanitizers --disable-parity-tests
(export POA_SIGNAL_RUNS=5; check asan)

# clang for the fuzzing and ThreadSanitizer trees: installed here (an optional package group);
# without it both phases are skipped with the reason.
clang_reason=
sh tools/install-deps.sh fuzz || clang_reason="tools/install-deps.sh fuzz failed"
if [ -z "$clang_reason" ] && ! command -v clang >/dev/null 2>&1; then clang_reason="no clang"; fi

phase "fuzz: every reader, ${FUZZ_SECONDS:-20} s each (libFuzzer, ASan + UBSan)"
if [ -n "$clang_reason" ]; then
    echo "ci: fuzz phase SKIPPED: $clang_reason"
else
    mkdir -p _ci/fuzz
    (cd _ci/fuzz && CC=clang "$top/configure" --without-cuda --enable-fuzzing \
        --disable-parity-tests >configure.out 2>&1) || {
        tail -30 _ci/fuzz/configure.out; echo "ci: configure (fuzz) failed"; exit 1; }
    make -C _ci/fuzz -j"$jobs" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}" FUZZ_NICE=0 >_ci/fuzz/fuzz.out 2>&1 || {
        tail -80 _ci/fuzz/fuzz.out; echo "ci: fuzzing found something (or failed to build)"; exit 1; }
    sed -n '/^target /,$p' _ci/fuzz/fuzz.out
fi

phase "ThreadSanitizer: the loader's threads, the OpenMP regions"
if [ -n "$clang_reason" ]; then
    echo "ci: tsan phase SKIPPED: $clang_reason"
else
    mkdir -p _ci/tsan
    (cd _ci/tsan && CC=clang "$top/configure" --without-cuda --with-cmocka --enable-tsan \
        --disable-parity-tests >configure.out 2>&1) || {
        tail -30 _ci/tsan/configure.out; echo "ci: configure (tsan) failed"; exit 1; }
    if ! make -C _ci/tsan -j"$jobs" check TESTS="$(cat tests/scripts/tsan-tests.txt)" \
        >_ci/tsan/check.out 2>&1; then
        tail -60 _ci/tsan/check.out
        for f in $(find _ci/tsan/tests -name '*.log'); do tail -40 "$f"; done
        echo "ci: ThreadSanitizer found a race (or the tree failed to build)"; exit 1
    fi
    grep -E '^(PASS|FAIL|# )' _ci/tsan/check.out
fi

phase "distcheck"
POA_FAULT_TESTS=skip make -C _ci/cpu -j"$jobs" distcheck \
    DISTCHECK_CONFIGURE_FLAGS="--without-cuda --with-cmocka --enable-parity-tests" >_ci/distcheck.out 2>&1 || {
    tail -80 _ci/distcheck.out; echo "ci: distcheck failed"; exit 1; }
grep -E 'archives ready|^# (TOTAL|PASS|FAIL)' _ci/distcheck.out || true

phase "format-check"
make -C _ci/cpu format-check

echo "ci: all phases passed in $(( $(date +%s) - t_start ))s"
