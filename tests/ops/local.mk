# tests/ops/: the CPU backend's layer ops against the naive double-precision references
# (tests/lib/cpu_naive.c) and their finite differences, and the threaded kernels.
if HAVE_CMOCKA
OPS_TESTS = tests/ops/test_ops_dense tests/ops/test_ops_attention tests/ops/test_ops_tokens \
	tests/ops/test_ops_threads
check_PROGRAMS += $(OPS_TESTS)
TESTS += $(OPS_TESTS)
tests_ops_test_ops_dense_SOURCES = tests/ops/test_ops_dense.c
tests_ops_test_ops_dense_CFLAGS = $(TEST_CFLAGS)
tests_ops_test_ops_dense_LDADD = $(TEST_LDADD)
tests_ops_test_ops_attention_SOURCES = tests/ops/test_ops_attention.c
tests_ops_test_ops_attention_CFLAGS = $(TEST_CFLAGS)
tests_ops_test_ops_attention_LDADD = $(TEST_LDADD)
tests_ops_test_ops_tokens_SOURCES = tests/ops/test_ops_tokens.c
tests_ops_test_ops_tokens_CFLAGS = $(TEST_CFLAGS)
tests_ops_test_ops_tokens_LDADD = $(TEST_LDADD)
tests_ops_test_ops_threads_SOURCES = tests/ops/test_ops_threads.c
tests_ops_test_ops_threads_CFLAGS = $(TEST_CFLAGS)
tests_ops_test_ops_threads_LDADD = $(TEST_LDADD)
endif
EXTRA_DIST += tests/ops/ops_test_util.h tests/ops/pos_resample_ref.h
