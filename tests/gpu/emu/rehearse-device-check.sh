#!/bin/sh
# rehearse-device-check.sh BUILD [device-check options] — the GPU machine's one command
# (tests/gpu/device-check.sh) run here, on the CPU emulator of CUDA, from a bundle of BUILD (a
# build tree configured with the emulator's toolkit, after run-checks.sh has built its test
# programs), so that the stages' logic — finding the programs and libraries in the bundle, the
# harness settings, the Python wrapper, parsing results into the summary — runs with a "device"
# present before a GPU session spends its minutes on it.
#
# Differences from the GPU machine, all set here: nvidia-smi is a stand-in that names the
# emulator (tests/gpu/emu/fake-bin/); POA_EMU_GPUS=2, so the parity stage's two-rank comparison
# runs over the emulated NCCL; POA_GPU_PARITY_CONFIGS=tiny (the demo configuration's runs take
# minutes per step emulated); the train stage trains configs/tiny.yaml (the ViT-L recipe's 41 GiB
# do not fit the emulator's memory) and the op timings are skipped (POA_DEVCHECK_TRAIN_CONFIG,
# POA_DEVCHECK_PERF=no unless set: =yes with --stages env,bench and POA_DEVCHECK_OPS_BENCH_ARGS
# runs the op benchmark); memcheck and bench skip or are not run (no compute-sanitizer, no CUDA
# PyTorch). Default stages: env,ops,parity,train. Output in BUILD/rehearsal/.
# Exit status: device-check.sh's (0 no stage failed), 2 on bad usage.
set -u
[ $# -ge 1 ] && [ -f "$1/Makefile" ] || { echo "usage: $0 BUILD [device-check options]" >&2; exit 2; }
build=$(cd "$1" && pwd)
shift
src=$(cd "$(dirname "$0")/../../.." && pwd)
here=$src/tests/gpu/emu
nvcc=$(sed -n 's/^NVCC = //p' "$build/Makefile")
"$nvcc" --version 2>/dev/null | grep -q "poa CPU emulator" ||
    { echo "rehearse: $build was not configured with the emulator's toolkit (NVCC = $nvcc)" >&2; exit 2; }
out=$build/rehearsal # outside the folders gpu-bundle.sh searches for programs
mkdir -p "$out"
[ -x "$build/tests/out/emu/cuda_norm_loss_check" ] && [ -x "$build/tests/ops/test_backend_ops" ] ||
    { echo "rehearse: run tests/gpu/emu/run-checks.sh $build first (it builds the test programs)" >&2; exit 2; }
# the bundle takes the kernel check from where gpu-bundle.sh's nvcc would have put it
cp "$build/tests/out/emu/cuda_norm_loss_check" "$build/tests/gpu/cuda_norm_loss_check"
echo "rehearse: bundling $build"
sh "$src/tools/gpu-bundle.sh" --no-build --build-dir "$build" --out "$out/bundle" --no-pack \
    >"$out/bundle.log" 2>&1 || { tail -20 "$out/bundle.log"; echo "rehearse: gpu-bundle.sh failed" >&2; exit 1; }
# (its size warnings are about a device call's 64 MiB, which a rehearsal does not make)
grep -m 1 'programs,' "$out/bundle.log"
[ $# -gt 0 ] || set -- --stages env,ops,parity,train
# Python with numpy and h5py for the parity references (the GPU machine's python3 has them)
py_dir=
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import numpy, h5py' 2>/dev/null; then
        py_dir=$(dirname "$(command -v "$p")")
        break
    fi
done
rm -rf "$out/check"
env PATH="$here/fake-bin:${py_dir:+$py_dir:}$PATH" POA_EMU_GPUS=2 POA_GPU_PARITY_CONFIGS=tiny \
    POA_DEVCHECK_TRAIN_CONFIG="$src/configs/tiny.yaml" POA_DEVCHECK_PERF="${POA_DEVCHECK_PERF:-no}" \
    sh "$src/tests/gpu/device-check.sh" --bundle "$out/bundle" --out "$out/check" "$@"
