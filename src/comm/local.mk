# comm/: MPI/NCCL collectives, gradient buckets, signals (see src/comm/README.md).
noinst_LIBRARIES += src/comm/libpoa_comm.a
src_comm_libpoa_comm_a_SOURCES = \
	src/comm/comm.c src/comm/comm.h src/comm/comm_internal.h src/comm/comm_nccl.h \
	src/comm/buckets.c src/comm/buckets.h \
	src/comm/signals.c src/comm/signals.h
POA_COMM_A = src/comm/libpoa_comm.a
EXTRA_DIST += src/comm/README.md
# NCCL half: host calls in plain C, one scale kernel in CUDA.
if HAVE_NCCL
src_comm_libpoa_comm_a_SOURCES += src/comm/comm_nccl.c src/comm/comm_kernels.cu
else
EXTRA_DIST += src/comm/comm_nccl.c src/comm/comm_kernels.cu
endif

# Tests of comm/ (tests/comm/); test_mpi_* run under mpiexec -n 2 (tests/scripts/run-test.sh).
if HAVE_CMOCKA
COMM_TESTS = tests/comm/test_mpi_buckets tests/comm/test_mpi_signals tests/comm/test_signals
check_PROGRAMS += $(COMM_TESTS)
TESTS += $(COMM_TESTS)
tests_comm_test_mpi_buckets_SOURCES = tests/comm/test_mpi_buckets.c
tests_comm_test_mpi_buckets_CFLAGS = $(TEST_CFLAGS)
tests_comm_test_mpi_buckets_LDADD = $(TEST_LDADD)
tests_comm_test_mpi_signals_SOURCES = tests/comm/test_mpi_signals.c
tests_comm_test_mpi_signals_CFLAGS = $(TEST_CFLAGS)
tests_comm_test_mpi_signals_LDADD = $(TEST_LDADD)
tests_comm_test_signals_SOURCES = tests/comm/test_signals.c
tests_comm_test_signals_CFLAGS = $(TEST_CFLAGS)
tests_comm_test_signals_LDADD = $(TEST_LDADD)
endif
# GPU test: exits 77 (skipped) without a device.
if HAVE_NCCL
check_PROGRAMS += tests/comm/test_gpu_nccl
TESTS += tests/comm/test_gpu_nccl
tests_comm_test_gpu_nccl_SOURCES = tests/comm/test_gpu_nccl.c
tests_comm_test_gpu_nccl_LDADD = $(TEST_LDADD)
else
EXTRA_DIST += tests/comm/test_gpu_nccl.c
endif
