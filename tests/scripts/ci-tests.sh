#!/bin/sh
# ci-tests.sh — THE test command (README "Tests"; .ci/run calls exactly this).
#   sh tests/scripts/ci-tests.sh [--quick]
# Installs the Debian packages, then in separate build trees under ./_ci/:
#   cpu    ./configure --without-cuda                 make (the programs the slurm phase runs)
#   dist   make distcheck in the cpu tree: the release tarball configured the same way (PyTorch
#          parity required), built out of its read-only tree, every test of make check passing
#          there, installed and uninstalled: the cpu configuration's tests and the tarball's
#          completeness in one run
#   slurm  make check-slurm in the cpu tree: a private single-node Slurm cluster (slurmctld,
#          slurmd, munged under _ci/cpu/tests/out), the job chain, a job array and preemption /
#          requeue / time limit with exact resume; needs root and installs slurm-wlm and munge
#          (tools/install-deps.sh slurm), reported SKIPPED with the reason otherwise
#   cuda   ./configure --with-cuda --with-nccl        make && make check of the tests that depend on
#          the configuration (tests/scripts/cuda-tree-tests.txt; GPU tests skip w/o GPU)
#   emu    the CUDA configuration against the CPU emulator of CUDA (tests/gpu/emu/README.md):
#          tests/gpu/emu/run-checks.sh (the GPU tests: smoke, NCCL, op tests and kernel check in
#          both warp schedules, POA step, poa-train parity of the tiny model with two emulated
#          GPUs), then
#          tests/gpu/emu/rehearse-device-check.sh (the device check's env, ops and train stages
#          from a bundle of that tree)
#   asan   ./configure --without-cuda --enable-sanitizers   make check under ASan + UBSan: the
#          unit tests, the MPI tests (test_mpi_*, mpiexec -n 2), the end-to-end and fault tests
#   fuzz   CC=clang ./configure --enable-fuzzing      every fuzz target for FUZZ_SECONDS (default
#          15) seconds (tests/fuzz/README.md); skipped, with the reason, without clang/libFuzzer
#   tsan   CC=clang ./configure --enable-tsan         the loader's threads and the OpenMP regions
#          under ThreadSanitizer (README.md, "Reliability"); skipped like fuzz
#   style  make format-check (the C/CUDA sources against .clang-format) and make shellcheck
#          (every shell script clean under shellcheck -x -S warning)
# --quick builds the cpu tree and runs its make check there (no tarball), nothing else.
# POA_SKIP_SLURM=1 skips the slurm phase.  Exit status is non-zero if any phase fails.
# The fault tests (tests/fault/) run in distcheck and, with 5 random-signal runs instead of 20,
# in the asan tree; the cuda tree (the CPU backend without a GPU) skips them
# (POA_FAULT_TESTS=skip), and the learning test (POA_LEARNING_TEST=skip; the sanitizer trees
# skip it by themselves): there they would only repeat distcheck's runs.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
quick=no
[ "${1:-}" = "--quick" ] && quick=yes
jobs=${POA_JOBS:-2}

# Every phase's wall time and how busy the CPUs were during it (from /proc/stat: 100 % = every
# core busy) are printed when it ends, and all of them at the end (or at a failure).
t_start=$(date +%s)
cur='' cur_t0=$t_start phase_times='' cur_cpu=''
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat 2>/dev/null; }
phase_end() {
    [ -n "$cur" ] || return 0
    dt=$(($(date +%s) - cur_t0))
    busy=$(cpu_ticks | awk -v was="$cur_cpu" 'BEGIN { split(was, w, " ") }
        { b = $1 - w[1]; i = $2 - w[2]; if (b + i > 0) printf "%d%%", 100 * b / (b + i); else printf "?" }')
    echo "=== ci: $cur: ${dt}s (CPUs busy ${busy:-?})"
    phase_times="$phase_times$(printf '%6ss %5s  %s' "$dt" "${busy:-?}" "$cur")
"
    cur=''
}
phase() {
    phase_end
    cur=$* cur_t0=$(date +%s) cur_cpu=$(cpu_ticks)
    echo
    echo "=== ci: $* ($(date -u +%H:%M:%S))"
}
phase_summary() {
    phase_end
    printf '\nci: phase times, CPUs busy (load average at the end: %s)\n%s%6ss        total\n' \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$phase_times" "$(($(date +%s) - t_start))"
}
trap phase_summary EXIT

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

# failed_logs DIR: the end of the log of every test under DIR that failed
failed_logs() {
    find "$1" -name '*.log' 2>/dev/null | while read -r f; do
        if grep -q -E '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null; then echo "---- $f"; tail -60 "$f"; fi
    done
}

check() { # name [make variables...]
    if ! make -C "_ci/$1" -j"$jobs" check ${2:+"$2"}; then
        failed_logs "_ci/$1/tests"
        echo "ci: make check ($1) failed"; exit 1
    fi
}

phase "cpu configuration: build"
build cpu --without-cuda --with-cmocka --enable-parity-tests
if [ "$quick" = yes ]; then
    check cpu
    echo "ci: quick run done"
    exit 0
fi

# The cpu configuration's make check runs here, from the release tarball (the cpu tree's
# programs serve the slurm phase): a test whose files the tarball lacks fails here.
phase "distcheck: the cpu configuration's make check from the release tarball"
if ! make -C _ci/cpu -j"$jobs" distcheck \
    DISTCHECK_CONFIGURE_FLAGS="--without-cuda --with-cmocka --enable-parity-tests" >_ci/distcheck.out 2>&1; then
    tail -80 _ci/distcheck.out
    failed_logs _ci/cpu
    echo "ci: distcheck failed"; exit 1
fi
grep -E 'archives ready|^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR)' _ci/distcheck.out || true

phase "slurm: make check-slurm (real slurmctld/slurmd, single node)"
if [ "${POA_SKIP_SLURM:-0}" = 1 ]; then
    echo "ci: check-slurm SKIPPED: POA_SKIP_SLURM=1"
elif [ "$(id -u)" -ne 0 ]; then
    echo "ci: check-slurm SKIPPED: not root (the test cluster's munged and slurmd need root)"
elif ! sh tools/install-deps.sh slurm; then
    echo "ci: check-slurm SKIPPED: cannot install slurm-wlm and munge (tools/install-deps.sh slurm failed above)"
elif ! make -C _ci/cpu check-slurm; then
    for f in _ci/cpu/tests/slurm/*.log; do
        if grep -q -E '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null; then
            echo "---- $f: its checks"; grep -E '^(ok|FAIL|skip):' "$f"
            echo "---- $f: its last lines"; tail -150 "$f"
        fi
    done
    echo "ci: make check-slurm failed"; exit 1
fi

if [ -x /usr/local/cuda/bin/nvcc ] || [ -n "${CUDA_HOME:-}" ]; then
    phase "cuda configuration: build + the tests that depend on it"
    build cuda --with-cuda${CUDA_HOME:+=$CUDA_HOME} --with-nccl --with-cmocka --enable-parity-tests
    # Without a GPU the CUDA configuration runs the cpu tree's code except where POA_HAVE_CUDA
    # is tested: today only the backend registry (src/backend/backend.c). Its tests are those
    # of tests/scripts/cuda-tree-tests.txt (the registry, the planners, the GPU tests' skips,
    # poa-train choosing and refusing backends); every program and test program is built. Once
    # the switch appears anywhere else, the tree runs every test again.
    cuda_dep=$(grep -rl --include='*.c' --include='*.h' POA_HAVE_CUDA src | sort | tr '\n' ' ')
    cuda_tests=
    if [ "$cuda_dep" = "src/backend/backend.c " ]; then
        cuda_tests="TESTS=$(tr '\n' ' ' <tests/scripts/cuda-tree-tests.txt)"
    else
        echo "ci: POA_HAVE_CUDA is tested in $cuda_dep: the cuda tree runs every test"
    fi
    (export POA_FAULT_TESTS=skip POA_LEARNING_TEST=skip; check cuda "$cuda_tests")
else
    echo "ci: WARNING: no CUDA toolkit in /usr/local/cuda: the CUDA configuration was NOT built"
fi

# The CUDA configuration again, built against the CPU emulator of CUDA (tests/gpu/emu): the
# backend's kernels and host code run their GPU tests here, where there is no GPU.
phase "cuda emulator: the CUDA backend's GPU tests on the CPU (tests/gpu/emu)"
sh tests/gpu/emu/make-toolkit.sh _ci/emu-toolkit
build emu --with-cuda="$top/_ci/emu-toolkit" --with-nccl="$top/_ci/emu-toolkit" --with-cuda-arch=90 \
    --with-cmocka --enable-parity-tests
sh tests/gpu/emu/run-checks.sh _ci/emu || { echo "ci: the CUDA emulator's checks failed"; exit 1; }
# the GPU machine's one command, from a bundle of that tree, with the emulator as its device
# (the parity stage's tests have just run above: here the other stages' logic and summary)
sh tests/gpu/emu/rehearse-device-check.sh _ci/emu --stages env,ops,train --quick ||
    { echo "ci: the device check's rehearsal on the CUDA emulator failed"; exit 1; }

phase "sanitizers (ASan + UBSan): build + make check"
build asan --without-cuda --with-cmocka --enable-sanitizers --disable-parity-tests
(export POA_SIGNAL_RUNS=5; check asan)

# clang for the fuzzing and ThreadSanitizer trees: installed here (an optional package group);
# without it, or when clang cannot link libFuzzer / ThreadSanitizer programs, the phase is
# skipped with the reason.
clang_reason='' fuzz_reason='' tsan_reason=
sh tools/install-deps.sh fuzz || clang_reason="tools/install-deps.sh fuzz failed"
if [ -z "$clang_reason" ] && ! command -v clang >/dev/null 2>&1; then clang_reason="no clang"; fi
# probe NAME FLAGS SOURCE: whether clang compiles and links SOURCE with FLAGS
probe() {
    mkdir -p _ci/probe
    printf '%s\n' "$3" >"_ci/probe/$1.c"
    clang $2 "_ci/probe/$1.c" -o "_ci/probe/$1" >"_ci/probe/$1.out" 2>&1
}
if [ -n "$clang_reason" ]; then
    fuzz_reason=$clang_reason tsan_reason=$clang_reason
else
    probe fuzz "-fsanitize=fuzzer,address,undefined" \
        'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return (void) d, (void) n, 0; }' ||
        fuzz_reason="clang cannot link libFuzzer with ASan + UBSan (-fsanitize=fuzzer,address,undefined: $(head -1 _ci/probe/fuzz.out); tools/install-deps.sh fuzz installs libclang-rt-14-dev)"
    probe tsan "-fsanitize=thread -fopenmp" 'int main(void) { int s = 0;
#pragma omp parallel for reduction(+ : s)
for (int i = 0; i < 4; i++) s += i;
return s != 6; }' ||
        tsan_reason="clang cannot link ThreadSanitizer with OpenMP (-fsanitize=thread -fopenmp: $(head -1 _ci/probe/tsan.out); tools/install-deps.sh fuzz installs libclang-rt-14-dev and libomp-14-dev)"
fi

phase "fuzz: every reader, ${FUZZ_SECONDS:-15} s each (libFuzzer, ASan + UBSan)"
if [ -n "$fuzz_reason" ]; then
    echo "ci: fuzz phase SKIPPED: $fuzz_reason"
else
    mkdir -p _ci/fuzz
    (cd _ci/fuzz && CC=clang "$top/configure" --without-cuda --enable-fuzzing \
        --disable-parity-tests >configure.out 2>&1) || {
        tail -30 _ci/fuzz/configure.out; echo "ci: configure (fuzz) failed"; exit 1; }
    make -C _ci/fuzz -j"$jobs" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-15}" FUZZ_NICE=0 >_ci/fuzz/fuzz.out 2>&1 || {
        tail -80 _ci/fuzz/fuzz.out; echo "ci: fuzzing found something (or failed to build)"; exit 1; }
    sed -n '/^target /,$p' _ci/fuzz/fuzz.out
fi

phase "ThreadSanitizer: the loader's threads, the OpenMP regions"
if [ -n "$tsan_reason" ]; then
    echo "ci: tsan phase SKIPPED: $tsan_reason"
else
    mkdir -p _ci/tsan
    (cd _ci/tsan && CC=clang "$top/configure" --without-cuda --with-cmocka --enable-tsan \
        --disable-parity-tests >configure.out 2>&1) || {
        tail -30 _ci/tsan/configure.out; echo "ci: configure (tsan) failed"; exit 1; }
    # only the listed test programs are built (not the programs nor the other tests), and run
    # through the harness as make check would (run-test.sh sets TSAN_OPTIONS and archer)
    tsan_tests=$(cat tests/scripts/tsan-tests.txt)
    make -C _ci/tsan -j"$jobs" $tsan_tests >_ci/tsan/make.out 2>&1 || {
        tail -50 _ci/tsan/make.out; echo "ci: build (tsan) failed"; exit 1; }
    for t in $tsan_tests; do
        if (cd _ci/tsan && POA_TOP_BUILDDIR="$PWD" sh "$top/tests/scripts/run-test.sh" "./$t" \
            >"$t.tsan.log" 2>&1); then
            echo "PASS: $t (ThreadSanitizer)"
        else
            tail -60 "_ci/tsan/$t.tsan.log"
            echo "ci: ThreadSanitizer found a race in $t"; exit 1
        fi
    done
fi

phase "format-check and shellcheck"
style=ok
make -C _ci/cpu format-check || style=failed
make -C _ci/cpu shellcheck || style=failed
[ $style = ok ] || { echo "ci: format-check or shellcheck failed (above)"; exit 1; }

echo "ci: all phases passed"
