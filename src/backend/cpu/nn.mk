# CPU layer ops (issue #3).  Tests of these ops are declared here too.
# cpu_naive.{c,h} is the double-precision reference the op tests compare against.
CPU_NN_SOURCES = src/backend/cpu/cpu_nn.c src/backend/cpu/cpu_nn.h \
	src/backend/cpu/cpu_nn_norm.c src/backend/cpu/cpu_nn_attention.c \
	src/backend/cpu/cpu_nn_tokens.c src/backend/cpu/cpu_simd.h \
	src/backend/cpu/cpu_attn_avx512.c src/backend/cpu/cpu_attn_avx512.h \
	src/backend/cpu/cpu_gemm_avx512.c src/backend/cpu/cpu_gemm_avx512.h \
	src/backend/cpu/cpu_gelu_avx512.c src/backend/cpu/cpu_gelu_avx512.h \
	src/backend/cpu/cpu_avx512_math.h \
	src/backend/cpu/cpu_naive.c src/backend/cpu/cpu_naive_train.c \
	src/backend/cpu/cpu_naive.h

if HAVE_CMOCKA
OPS_TESTS = tests/ops/test_ops_dense tests/ops/test_ops_attention tests/ops/test_ops_tokens \
	tests/ops/test_ops_threads
check_PROGRAMS += $(OPS_TESTS)
TESTS += $(OPS_TESTS)
noinst_HEADERS += tests/ops/ops_test_util.h tests/ops/pos_resample_ref.h
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
EXTRA_DIST += tests/ops/test_backend_ops.sh
endif
