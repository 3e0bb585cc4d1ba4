#!/bin/sh
# test_backend_ops.sh — make check's runs of tests/ops/test_backend_ops: every op on every
# backend the build can use here (CUDA where a device is visible), results then gradients; the
# CPU backend again, both passes, with its fallback kernels forced (OpenBLAS GEMMs and
# attention, libm GELU), which CPUs without AVX-512 run; then the emu fixture, the CPU backend
# with bf16 activations, which runs the program's bf16 paths on any machine.
set -u
prog="${POA_TOP_BUILDDIR:-.}/tests/ops/test_backend_ops"
fallback="POA_CPU_GEMM=blas POA_CPU_ATTN=blas POA_CPU_GELU=libm"
status=0
run() {
    echo "---- $*"
    "$@"
    rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then status=1; fi
}
run "$prog" --backend all
run "$prog" --backend all --grad
run env $fallback "$prog" --backend cpu
run env $fallback "$prog" --backend cpu --grad
run "$prog" --backend emu
run "$prog" --backend emu --grad
exit $status
