# tests/lib/: test-only code shared by the tests, built by make check into libpoa_testutil.a
# (TEST_LDADD) and never into the production archives or the programs: the naive
# double-precision references of the layer ops (cpu_naive.c) and of the training ops
# (cpu_naive_train.c), which tests/ops/test_backend_ops compares every backend with, the direct
# evaluation of the hue adjustment (image_ref.c) and trained-like model parameters
# (seeded_params.c).  Compiled without FMA contraction, like src/data, so the
# references compute in the plain float/double steps they are written in.
check_LIBRARIES += tests/lib/libpoa_testutil.a
tests_lib_libpoa_testutil_a_SOURCES = \
	tests/lib/cpu_naive.c tests/lib/cpu_naive_train.c tests/lib/cpu_naive.h \
	tests/lib/image_ref.c tests/lib/image_ref.h \
	tests/lib/seeded_params.c tests/lib/seeded_params.h
tests_lib_libpoa_testutil_a_CFLAGS = $(AM_CFLAGS) -ffp-contract=off
# the shell side: what the shell tests source (tests/lib/testlib.sh)
EXTRA_DIST += tests/lib/testlib.sh
