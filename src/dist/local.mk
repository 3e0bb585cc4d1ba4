# dist/: MPI/NCCL collectives, gradient buckets, signals (see src/dist/README.md).
# (Not DIST_SOURCES: that name is automake's own list of distributed sources.)
noinst_LIBRARIES += src/dist/libpoa_dist.a
src_dist_libpoa_dist_a_SOURCES = $(DISTLAYER_SOURCES)
POA_DIST_A = src/dist/libpoa_dist.a
DISTLAYER_SOURCES = \
	src/dist/dist.c src/dist/dist.h src/dist/dist_internal.h src/dist/dist_nccl.h \
	src/dist/buckets.c \
	src/dist/signals.c src/dist/signals.h
EXTRA_DIST += src/dist/README.md
# NCCL half: host calls in plain C, one scale kernel in CUDA.
if HAVE_NCCL
DISTLAYER_SOURCES += src/dist/dist_nccl.c src/dist/dist_kernels.cu
else
EXTRA_DIST += src/dist/dist_nccl.c src/dist/dist_kernels.cu
endif

# Tests of dist/ (tests/dist/); test_mpi_* run under mpiexec -n 2 (tests/scripts/run-test.sh).
if HAVE_CMOCKA
DIST_TESTS = tests/dist/test_mpi_buckets tests/dist/test_mpi_signals tests/dist/test_signals
check_PROGRAMS += $(DIST_TESTS)
TESTS += $(DIST_TESTS)
tests_dist_test_mpi_buckets_SOURCES = tests/dist/test_mpi_buckets.c
tests_dist_test_mpi_buckets_CFLAGS = $(TEST_CFLAGS)
tests_dist_test_mpi_buckets_LDADD = $(TEST_LDADD)
tests_dist_test_mpi_signals_SOURCES = tests/dist/test_mpi_signals.c
tests_dist_test_mpi_signals_CFLAGS = $(TEST_CFLAGS)
tests_dist_test_mpi_signals_LDADD = $(TEST_LDADD)
tests_dist_test_signals_SOURCES = tests/dist/test_signals.c
tests_dist_test_signals_CFLAGS = $(TEST_CFLAGS)
tests_dist_test_signals_LDADD = $(TEST_LDADD)
endif
# GPU test: exits 77 (skipped) without a device.
if HAVE_NCCL
check_PROGRAMS += tests/dist/test_gpu_nccl
TESTS += tests/dist/test_gpu_nccl
tests_dist_test_gpu_nccl_SOURCES = tests/dist/test_gpu_nccl.c
tests_dist_test_gpu_nccl_LDADD = $(TEST_LDADD)
else
EXTRA_DIST += tests/dist/test_gpu_nccl.c
endif
