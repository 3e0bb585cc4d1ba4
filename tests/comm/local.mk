# tests/comm/: tests of src/comm; test_mpi_* run under mpiexec -n 2 (tests/scripts/run-test.sh).
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
# NCCL on a GPU: exits 77 (skipped) without a device.
if HAVE_NCCL
check_PROGRAMS += tests/comm/test_gpu_nccl
TESTS += tests/comm/test_gpu_nccl
tests_comm_test_gpu_nccl_SOURCES = tests/comm/test_gpu_nccl.c
tests_comm_test_gpu_nccl_LDADD = $(TEST_LDADD)
else
EXTRA_DIST += tests/comm/test_gpu_nccl.c
endif
