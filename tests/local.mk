# tests/: the harness.  Each test folder has its own fragment (tests/<folder>/local.mk): cmocka
# unit tests (one program per unit), MPI tests (test_mpi_*: run under mpiexec -n 2), PyTorch
# parity tests (tests/reference/), GPU tests (exit 77 without a device), shell tests of the
# programs.  Test-only code shared by the tests is in tests/lib/ (libpoa_testutil.a).
LOG_COMPILER = $(SHELL) $(top_srcdir)/tests/scripts/run-test.sh
AM_TESTS_ENVIRONMENT = POA_TOP_BUILDDIR='$(abs_top_builddir)'; export POA_TOP_BUILDDIR; \
	POA_SANITIZER_FLAGS='$(SANITIZER_FLAGS)'; export POA_SANITIZER_FLAGS;
# ci-tests.sh: the test command of README.md (every configuration)
dist_noinst_SCRIPTS += tests/scripts/run-test.sh tests/scripts/ci-tests.sh
EXTRA_DIST += tests/reference tests/scripts/tsan.supp tests/scripts/tsan-tests.txt \
	tests/scripts/cuda-tree-tests.txt

TEST_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
TEST_LDADD = tests/lib/libpoa_testutil.a $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS) $(CMOCKA_LIBS)
