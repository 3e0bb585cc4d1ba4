# tests/: cmocka unit tests (one program per unit), MPI tests (test_mpi_*: mpiexec -n 2),
# PyTorch parity tests (tests/reference/), GPU tests (exit 77 without a device).
LOG_COMPILER = $(SHELL) $(top_srcdir)/tests/scripts/run-test.sh
AM_TESTS_ENVIRONMENT = POA_TOP_BUILDDIR='$(abs_top_builddir)'; export POA_TOP_BUILDDIR;
dist_noinst_SCRIPTS += tests/scripts/run-test.sh
EXTRA_DIST += tests/reference

TEST_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
TEST_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS) $(CMOCKA_LIBS)

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_common tests/unit/test_tensor tests/unit/test_backend_smoke
tests_unit_test_common_SOURCES = tests/unit/test_common.c
tests_unit_test_common_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_common_LDADD = $(TEST_LDADD)
tests_unit_test_tensor_SOURCES = tests/unit/test_tensor.c
tests_unit_test_tensor_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_tensor_LDADD = $(TEST_LDADD)
tests_unit_test_backend_smoke_SOURCES = tests/unit/test_backend_smoke.c
tests_unit_test_backend_smoke_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_backend_smoke_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test_common tests/unit/test_tensor tests/unit/test_backend_smoke

check_PROGRAMS += tests/unit/fatal_probe
tests_unit_fatal_probe_SOURCES = tests/unit/fatal_probe.c
tests_unit_fatal_probe_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test_fatal_path.sh
EXTRA_DIST += tests/unit/test_fatal_path.sh

# slurm/*.sbatch: the programs are found next to the submitted script (fake Slurm on PATH)
TESTS += tests/slurm/test_sbatch_paths.sh
EXTRA_DIST += tests/slurm/test_sbatch_paths.sh

check_PROGRAMS += tests/mpi/test_mpi_log
tests_mpi_test_mpi_log_SOURCES = tests/mpi/test_mpi_log.c
tests_mpi_test_mpi_log_CFLAGS = $(TEST_CFLAGS)
tests_mpi_test_mpi_log_LDADD = $(TEST_LDADD)
TESTS += tests/mpi/test_mpi_log

if HAVE_CUDA
check_PROGRAMS += tests/gpu/test_gpu_smoke
tests_gpu_test_gpu_smoke_SOURCES = tests/gpu/test_gpu_smoke.c
tests_gpu_test_gpu_smoke_CFLAGS = $(TEST_CFLAGS)
tests_gpu_test_gpu_smoke_LDADD = $(TEST_LDADD)
TESTS += tests/gpu/test_gpu_smoke
endif
endif

# The GPU check (tests/gpu/README.md): tools/gpu-bundle.sh gathers the CUDA build for a GPU machine,
# tests/gpu/device-check.sh runs there.  What runs without a GPU is tested here.
dist_noinst_SCRIPTS += tools/gpu-bundle.sh tests/gpu/device-check.sh
EXTRA_DIST += tests/gpu/bundle-env.sh tests/gpu/bundle-chroot-check.sh tests/gpu/README.md \
	tests/gpu/test_bench_step_gpu_cpu.sh src/backend/cuda/README.md
if HAVE_TORCH
TESTS += tests/gpu/test_bench_step_gpu_cpu.sh
endif
