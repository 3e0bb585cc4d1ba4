# backend/cpu/: the fp32 CPU reference backend.  Layer ops (cpu_nn*.c, with poa's own AVX-512
# GEMM, attention and GELU kernels) and training ops (cpu_train*.c: losses, Sinkhorn-Knopp,
# optimizer, reductions).  Tests: tests/ops/ (test_backend_ops and test_ops_*); the naive
# double-precision references they compare against are test code (tests/lib/cpu_naive.c).
noinst_LIBRARIES += src/backend/cpu/libpoa_backend_cpu.a
src_backend_cpu_libpoa_backend_cpu_a_SOURCES += \
	src/backend/cpu/cpu_backend.c src/backend/cpu/cpu_backend.h \
	src/backend/cpu/cpu_nn.c src/backend/cpu/cpu_nn.h \
	src/backend/cpu/cpu_nn_norm.c src/backend/cpu/cpu_nn_attention.c \
	src/backend/cpu/cpu_nn_tokens.c src/backend/cpu/cpu_simd.h \
	src/backend/cpu/cpu_attn_avx512.c src/backend/cpu/cpu_attn_avx512.h \
	src/backend/cpu/cpu_gemm_avx512.c src/backend/cpu/cpu_gemm_avx512.h \
	src/backend/cpu/cpu_gelu_avx512.c src/backend/cpu/cpu_gelu_avx512.h \
	src/backend/cpu/cpu_avx512_math.h \
	src/backend/cpu/cpu_train.c src/backend/cpu/cpu_train_sk.c \
	src/backend/cpu/cpu_train_optim.c src/backend/cpu/cpu_train_impl.h
