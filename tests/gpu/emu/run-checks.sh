#!/bin/sh
# run-checks.sh BUILD — the CUDA backend's GPU tests on the CPU, in BUILD, a build tree
# configured with the emulator's toolkit (tests/gpu/emu/README.md): the smoke and NCCL tests,
# the op tests in bf16, fp32 and gradient mode (and the FFMA attention kernels, the GEMMs
# without cuBLASLt and without its bias epilogue), the norm/loss/optimizer kernel check, the POA
# loss and step against the PyTorch references, and whole poa-train runs against the CPU
# backend (tiny configuration, two emulated GPUs); then the op tests and the kernel check once
# more in the other schedule (POA_EMU_SCHEDULE=reverse).  Two at a time (the emulator is one
# thread).
# Logs in BUILD/tests/out/emu/; exit status 0 when all pass, 1 when one fails, 2 on bad usage.
set -u
if [ $# -ne 1 ] || [ ! -f "$1/Makefile" ]; then
    echo "usage: $0 BUILD (a configured build tree)" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../../.." && pwd)
nvcc=$(sed -n 's/^NVCC = //p' "$build/Makefile")
"$nvcc" --version 2>/dev/null | grep -q "poa CPU emulator" ||
    { echo "run-checks: $build was not configured with the emulator's toolkit (NVCC = $nvcc)" >&2; exit 2; }
lib=$(cd "$(dirname "$nvcc")/../lib64" && pwd)
out=$build/tests/out/emu
mkdir -p "$out"
t0=$(date +%s)

echo "run-checks: building the test programs, cuda_norm_loss_check and schedule_check"
make -C "$build" -j2 check TESTS= >"$out/make.log" 2>&1 || { tail -30 "$out/make.log"; echo "run-checks: make failed"; exit 1; }
# compile_cu PROGRAM SOURCE...: a standalone program from .cu files, with the emulator's nvcc
compile_cu() {
    prog=$1
    shift
    objs=
    for f in "$@"; do
        o=$out/$(basename "$f" .cu).o
        "$nvcc" -std=c++17 -O2 -I"$src/src" -I"$build" -c -o "$o" "$src/$f" >>"$out/make.log" 2>&1 ||
            { tail -30 "$out/make.log"; echo "run-checks: cannot compile $f"; exit 1; }
        objs="$objs $o"
    done
    # shellcheck disable=SC2086 # a list of object files
    ${CXX:-g++} -o "$out/$prog" $objs -L"$lib" -Wl,-rpath,"$lib" -lpoaemu -lm >>"$out/make.log" 2>&1 ||
        { tail -30 "$out/make.log"; echo "run-checks: cannot link $prog"; exit 1; }
}
compile_cu cuda_norm_loss_check tests/gpu/cuda_norm_loss_check.cu src/backend/cuda/cuda_norm.cu \
    src/backend/cuda/cuda_loss.cu src/backend/cuda/cuda_optim.cu
compile_cu schedule_check tests/gpu/emu/schedule_check.cu

fail=0
# check NAME COMMAND...: run it, log to $out/NAME.log, print one line (exit 77 is a failure
# here: the emulator always has a device)
check() {
    name=$1
    shift
    s=$(date +%s)
    "$@" >"$out/$name.log" 2>&1
    crc=$?
    dt=$(($(date +%s) - s))
    if [ $crc -eq 0 ]; then echo "ok   $name (${dt}s)"; else echo "FAIL $name: exit $crc (${dt}s; log $out/$name.log)"; fi
    return $crc
}
ops=$build/tests/ops/test_backend_ops
# run_test NAME SCRIPT-OR-PROGRAM [VAR=VALUE...]: through the harness, as make check runs it
run_test() {
    name=$1 prog=$2
    shift 2
    check "$name" env POA_TOP_SRCDIR="$src" POA_TOP_BUILDDIR="$build" "$@" \
        sh "$src/tests/scripts/run-test.sh" "$prog"
}
# two lanes of about equal length, side by side
(
    lane_rc=0
    # whole poa-train runs: tiny only (a demo bf16 step takes about 24 s here), with two emulated
    # GPUs so that 2 ranks over NCCL meet 1 rank with 2 rank groups
    run_test train-parity "$src/tests/train/test_gpu_train_parity.sh" POA_GPU_PARITY_CONFIGS=tiny \
        POA_EMU_GPUS=2 || lane_rc=1
    exit $lane_rc
) &
lane=$!
# the schedule that the race-finding below rests on, in both orders
check schedule-forward "$out/schedule_check" || fail=1
check schedule-reverse env POA_EMU_SCHEDULE=reverse "$out/schedule_check" || fail=1
check smoke "$build/tests/gpu/test_gpu_smoke" || fail=1
run_test nccl "$build/tests/comm/test_gpu_nccl" || fail=1
check ops-bf16 "$ops" --backend cuda --dtype bf16 || fail=1
check ops-fp32 "$ops" --backend cuda --dtype fp32 || fail=1
check ops-grad "$ops" --backend cuda --dtype all --grad || fail=1
check ops-attention-simple env POA_CUDA_ATTN=simple "$ops" --backend cuda --dtype bf16 --op attention || fail=1
check ops-gemm-no-lt env POA_EMU_LT=none "$ops" --backend cuda --dtype all --op gemm || fail=1
check ops-gemm-no-bias-epilogue env POA_EMU_LT=nobias "$ops" --backend cuda --dtype all --op gemm || fail=1
run_test step-parity "$src/tests/step/test_gpu_step_parity.sh" || fail=1
check norm-loss-check "$out/cuda_norm_loss_check" || fail=1
# the kernels again with the warps of a block run last to first (a missing __syncthreads shows
# in one of the two orders: README.md, "Races")
check ops-bf16-reverse env POA_EMU_SCHEDULE=reverse "$ops" --backend cuda --dtype bf16 || fail=1
check ops-fp32-reverse env POA_EMU_SCHEDULE=reverse "$ops" --backend cuda --dtype fp32 || fail=1
check ops-grad-reverse env POA_EMU_SCHEDULE=reverse "$ops" --backend cuda --dtype all --grad || fail=1
check ops-attention-simple-reverse env POA_EMU_SCHEDULE=reverse POA_CUDA_ATTN=simple "$ops" --backend cuda --dtype bf16 --op attention || fail=1
check norm-loss-check-reverse env POA_EMU_SCHEDULE=reverse "$out/cuda_norm_loss_check" || fail=1
wait $lane || fail=1
if [ $fail -ne 0 ]; then
    for f in "$out"/*.log; do
        case $f in */make.log) continue ;; esac
        grep -q -E '^(FAIL|RESULT FAIL)' "$f" && { echo "---- $f"; grep -E '^FAIL' "$f" | head -20; }
    done
fi
echo "run-checks: $([ $fail -eq 0 ] && echo "all passed" || echo "FAILED") in $(($(date +%s) - t0))s"
exit $fail
