#!/bin/sh
# openblas-coretype.sh — print the OPENBLAS_CORETYPE a run on this machine should use, or nothing.
#   export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$(sh tools/openblas-coretype.sh)}
# OpenBLAS's DYNAMIC_ARCH picks its kernels from the CPU model name; where a hypervisor hides it
# (many VMs) it falls back to its generic "Prescott" (SSE3) kernels, 3-5x slower GEMMs.  The CPU
# flags are still visible, so choose from them: SkylakeX for AVX-512, Haswell for AVX2.  Prints
# nothing on other CPUs (OpenBLAS's own choice stands).  Used by run-demo.sh and the benchmarks;
# poa-train warns at start when the fallback is in use (README.md, Performance).
if [ "${1:-}" = "--help" ]; then sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
    echo SkylakeX
elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
    echo Haswell
fi
exit 0
