#!/bin/sh
# run-checks.sh BUILD — the CUDA backend's GPU tests on the CPU, in BUILD, a build tree
# configured with the emulator's toolkit (tests/gpu/emu/README.md): the smoke test, the op tests
# in fp32, bf16 (--small) and gradient mode, the norm/loss/optimizer kernel check and the POA
# loss and step against the PyTorch references.  Two at a time (the emulator is one thread).
# Logs in BUILD/tests/out/emu/; exit status 0 when all pass, 1 when one fails, 2 on bad usage.
set -u
[ $# -eq 1 ] && [ -f "$1/Makefile" ] || { echo "usage: $0 BUILD (a configured build tree)" >&2; exit 2; }
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../../.." && pwd)
nvcc=$(sed -n 's/^NVCC = //p' "$build/Makefile")
"$nvcc" --version 2>/dev/null | grep -q "poa CPU emulator" ||
    { echo "run-checks: $build was not configured with the emulator's toolkit (NVCC = $nvcc)" >&2; exit 2; }
lib=$(cd "$(dirname "$nvcc")/../lib64" && pwd)
out=$build/tests/out/emu
mkdir -p "$out"
t0=$(date +%s)

echo "run-checks: building the test programs and cuda_norm_loss_check"
make -C "$build" -j2 check TESTS= >"$out/make.log" 2>&1 || { tail -30 "$out/make.log"; echo "run-checks: make failed"; exit 1; }
objs=
for f in tests/gpu/cuda_norm_loss_check.cu src/backend/cuda/cuda_norm.cu \
    src/backend/cuda/cuda_loss.cu src/backend/cuda/cuda_optim.cu; do
    o=$out/$(basename "$f" .cu).o
    "$nvcc" -std=c++17 -O2 -I"$src/src" -I"$build" -c -o "$o" "$src/$f" >>"$out/make.log" 2>&1 ||
        { tail -30 "$out/make.log"; echo "run-checks: cannot compile $f"; exit 1; }
    objs="$objs $o"
done
# shellcheck disable=SC2086 # a list of object files
${CXX:-g++} -o "$out/cuda_norm_loss_check" $objs -L"$lib" -Wl,-rpath,"$lib" -lpoaemu -lm \
    >>"$out/make.log" 2>&1 || { tail -30 "$out/make.log"; echo "run-checks: cannot link cuda_norm_loss_check"; exit 1; }

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
# two lanes of about equal length, side by side
(
    lane_rc=0
    check step-parity env POA_TOP_SRCDIR="$src" POA_TOP_BUILDDIR="$build" \
        sh "$src/tests/scripts/run-test.sh" "$src/tests/step/test_gpu_step_parity.sh" || lane_rc=1
    check norm-loss-check "$out/cuda_norm_loss_check" || lane_rc=1
    exit $lane_rc
) &
lane=$!
check smoke "$build/tests/gpu/test_gpu_smoke" || fail=1
check ops-bf16-small "$ops" --backend cuda --dtype bf16 --small || fail=1
check ops-fp32 "$ops" --backend cuda --dtype fp32 || fail=1
check ops-grad "$ops" --backend cuda --dtype all --grad || fail=1
wait $lane || fail=1
if [ $fail -ne 0 ]; then
    for f in "$out"/*.log; do
        case $f in */make.log) continue ;; esac
        grep -q -E '^(FAIL|RESULT FAIL)' "$f" && { echo "---- $f"; grep -E '^FAIL' "$f" | head -20; }
    done
fi
echo "run-checks: $([ $fail -eq 0 ] && echo "all passed" || echo "FAILED") in $(($(date +%s) - t0))s"
exit $fail
