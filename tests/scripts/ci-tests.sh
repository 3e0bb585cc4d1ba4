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
#   asan   ./configure --without-cuda --enable-sanitizers   unit tests under ASan + UBSan
#   dist   make distcheck (from the cpu tree)
#   style  make format-check
# --quick runs only the cpu phase.  POA_SKIP_SLURM=1 skips the slurm phase.  Exit status is non-zero if any phase fails.
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
            if grep -q -E '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null; then echo "---- $f"; tail -60 "$f"; fi
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
        if grep -q -E '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null; then echo "---- $f"; tail -150 "$f"; fi
    done
    echo "ci: make check-slurm failed"; exit 1
fi

if [ -x /usr/local/cuda/bin/nvcc ] || [ -n "${CUDA_HOME:-}" ]; then
    phase "cuda configuration: build + check"
    build cuda --with-cuda${CUDA_HOME:+=$CUDA_HOME} --with-nccl --with-cmocka --enable-parity-tests
    check cuda
else
    echo "ci: WARNING: no CUDA toolkit in /usr/local/cuda: the CUDA configuration was NOT built"
fi

phase "sanitizers (ASan + UBSan): build + unit tests"
build asan --without-cuda --with-cmocka --enable-sanitizers --disable-parity-tests
check asan

phase "distcheck"
make -C _ci/cpu -j"$jobs" distcheck \
    DISTCHECK_CONFIGURE_FLAGS="--without-cuda --with-cmocka --enable-parity-tests" >_ci/distcheck.out 2>&1 || {
    tail -80 _ci/distcheck.out; echo "ci: distcheck failed"; exit 1; }
grep -E 'archives ready|^# (TOTAL|PASS|FAIL)' _ci/distcheck.out || true

phase "format-check"
make -C _ci/cpu format-check

echo "ci: all phases passed in $(( $(date +%s) - t_start ))s"
