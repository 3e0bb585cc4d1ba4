# tests/mpi/: rank-aware logging under mpiexec -n 2 (tests/scripts/run-test.sh).
if HAVE_CMOCKA
check_PROGRAMS += tests/mpi/test_mpi_log
tests_mpi_test_mpi_log_SOURCES = tests/mpi/test_mpi_log.c
tests_mpi_test_mpi_log_CFLAGS = $(TEST_CFLAGS)
tests_mpi_test_mpi_log_LDADD = $(TEST_LDADD)
TESTS += tests/mpi/test_mpi_log
endif
