#!/bin/sh
# test_backend_ops.sh — make check's runs of tests/ops/test_backend_ops: every op on every
# backend the build can use here (CUDA where a device is visible), results then gradients; and
# the CPU backend again, both passes, with its fallback kernels forced (OpenBLAS GEMMs and
# attention, libm GELU), which CPUs without AVX-512 run.
set -u
prog="${POA_TOP_BUILDDIR:-.}/tests/ops/test_backend_ops"
status=0
run() {
    echo "---- test_backend_ops $*"
    "$prog" "$@"
    rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then status=1; fi
}
run --backend all
run --backend all --grad
POA_CPU_GEMM=blas POA_CPU_ATTN=blas POA_CPU_GELU=libm run --backend cpu
POA_CPU_GEMM=blas POA_CPU_ATTN=blas POA_CPU_GELU=libm run --backend cpu --grad
exit $status
