# tests/ops/: the backends' ops against the naive double-precision references (tests/lib:
# cpu_naive.c for the layer ops, cpu_naive_train.c for the training ops) — test_backend_ops runs
# every op of the tables on every backend and compute dtype (tests/ops/README.md); the
# test_ops_* programs keep what is particular to the CPU kernels (AVX-512 blocking, threads,
# saved probabilities, torch's F.interpolate).
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

# Every op of the backend tables on every backend, against the naive references
# (tests/ops/README.md); the script runs its check, gradient and fallback-kernel passes.
BACKEND_OPS_SOURCES = tests/ops/test_backend_ops.c tests/ops/backend_ops.h \
	tests/ops/backend_ops_harness.c tests/ops/backend_ops_iface.c tests/ops/backend_ops_gemm.c \
	tests/ops/backend_ops_nn.c tests/ops/backend_ops_vit.c tests/ops/backend_ops_train.c \
	tests/ops/backend_ops_emu.c
check_PROGRAMS += tests/ops/test_backend_ops
tests_ops_test_backend_ops_SOURCES = $(BACKEND_OPS_SOURCES)
tests_ops_test_backend_ops_CFLAGS = $(TEST_CFLAGS)
tests_ops_test_backend_ops_LDADD = $(TEST_LDADD)
TESTS += tests/ops/test_backend_ops.sh
EXTRA_DIST += tests/ops/test_backend_ops.sh tests/ops/README.md
endif
EXTRA_DIST += tests/ops/ops_test_util.h tests/ops/pos_resample_ref.h
