#!/bin/sh
# make-toolkit.sh DIR — lays out the CPU emulator of CUDA as a CUDA toolkit in DIR
# (tests/gpu/emu/README.md): DIR/bin/nvcc, DIR/include (the emulator's cuda_runtime.h,
# cuda_runtime_api.h, cuda_bf16.h, mma.h, cublas_v2.h, cublasLt.h, nccl.h) and DIR/lib64 with
# libpoaemu.so (the runtime, cuBLAS/cuBLASLt and NCCL) under the names configure links
# (libcudart, libcublas, libcublasLt, libnccl).  Then:
#   configure --with-cuda=DIR --with-nccl=DIR --with-cuda-arch=90 && make && make check
# builds poa's CUDA backend unchanged and runs every GPU test on the CPU.
# Needs a C++17 compiler ($CXX, default g++), python3 and Open MPI's mpicxx wrapper flags.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
dir=$1
mkdir -p "$dir/bin" "$dir/include" "$dir/lib64"
dir=$(cd "$dir" && pwd)
cp "$here"/include/*.h "$dir/include/"
cp "$here/nvcc" "$dir/bin/nvcc"
chmod +x "$dir/bin/nvcc"
cxx=${CXX:-g++}
mpi_cflags=$(mpicxx --showme:compile 2>/dev/null || mpicc --showme:compile)
mpi_libs=$(mpicxx --showme:link 2>/dev/null || mpicc --showme:link)
# -mfma where the CPU has it (as bin/nvcc does): fmaf() inline, the same exact results
fma=
grep -q '^flags.* fma' /proc/cpuinfo 2>/dev/null && fma=-mfma
# shellcheck disable=SC2086 # the MPI flags are word lists
$cxx -std=c++17 -O2 -g -fPIC -shared -ffp-contract=off -U_FORTIFY_SOURCE $fma -I "$dir/include" \
    $mpi_cflags -Wl,-soname,libpoaemu.so -o "$dir/lib64/libpoaemu.so" \
    "$here/emu_runtime.cpp" "$here/emu_blas.cpp" "$here/emu_nccl.cpp" $mpi_libs
for lib in cudart cublas cublasLt nccl; do ln -sf libpoaemu.so "$dir/lib64/lib$lib.so"; done
echo "CUDA emulator toolkit in $dir (configure --with-cuda=$dir --with-nccl=$dir)"
