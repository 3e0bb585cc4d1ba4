# tests/gpu/: the CUDA backend on a device; exits 77 (skipped) without one.
if HAVE_CMOCKA
if HAVE_CUDA
check_PROGRAMS += tests/gpu/test_gpu_smoke
tests_gpu_test_gpu_smoke_SOURCES = tests/gpu/test_gpu_smoke.c
tests_gpu_test_gpu_smoke_CFLAGS = $(TEST_CFLAGS)
tests_gpu_test_gpu_smoke_LDADD = $(TEST_LDADD)
TESTS += tests/gpu/test_gpu_smoke
endif
endif
EXTRA_DIST += tests/gpu/test_gpu_smoke.c
# A standalone GPU check of the norm, loss and optimizer kernels (built by hand on a GPU
# machine: the commands are in its header).
EXTRA_DIST += tests/gpu/cuda_norm_loss_check.cu

# The GPU check (tests/gpu/README.md): tools/gpu-bundle.sh gathers the CUDA build for a GPU
# machine, device-check.sh runs there.  What runs without a GPU is tested here: the GPU
# benchmark's driver on the CPU with a tiny model (FLOP formulas) and device-check.sh's command
# line.
dist_noinst_SCRIPTS += tests/gpu/device-check.sh
EXTRA_DIST += tests/gpu/bundle-env.sh tests/gpu/bundle-chroot-check.sh tests/gpu/README.md \
	tests/gpu/test_bench_step_gpu_cpu.sh
if HAVE_TORCH
TESTS += tests/gpu/test_bench_step_gpu_cpu.sh
endif

# The CPU emulator of CUDA (tests/gpu/emu/README.md): the CUDA configuration built against it
# runs the GPU tests without a GPU (tests/scripts/ci-tests.sh, phase "cuda emulator").
EXTRA_DIST += tests/gpu/emu/README.md tests/gpu/emu/emu_runtime.cpp tests/gpu/emu/emu_blas.cpp \
	tests/gpu/emu/emu_nccl.cpp tests/gpu/emu/include/cuda_runtime.h \
	tests/gpu/emu/include/cuda_runtime_api.h tests/gpu/emu/include/cuda_bf16.h \
	tests/gpu/emu/include/mma.h tests/gpu/emu/include/cublas_v2.h \
	tests/gpu/emu/include/cublasLt.h tests/gpu/emu/include/nccl.h tests/gpu/emu/schedule_check.cu
dist_noinst_SCRIPTS += tests/gpu/emu/make-toolkit.sh tests/gpu/emu/run-checks.sh tests/gpu/emu/nvcc \
	tests/gpu/emu/rehearse-device-check.sh tests/gpu/emu/fake-bin/nvidia-smi
