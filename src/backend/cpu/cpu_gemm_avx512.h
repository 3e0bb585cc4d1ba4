/* cpu_gemm_avx512.h — the CPU backend's own AVX-512 single-precision GEMM; internal to
 * src/backend/cpu (cpu_nn.c chooses between it and BLAS).
 *
 * Compiled with per-function target attributes (POA_CPU_GEMM_AVX512 defined on x86-64 with GCC
 * or clang) so that the library stays baseline x86-64; call it only when
 * poa_cpu_avx512f_usable() (cpu_avx512_math.h) says the CPU runs AVX-512F. */
#ifndef POA_BACKEND_CPU_GEMM_AVX512_H
#define POA_BACKEND_CPU_GEMM_AVX512_H

#if defined(__x86_64__) && defined(__GNUC__)
#define POA_CPU_GEMM_AVX512 1
#endif

#ifdef POA_CPU_GEMM_AVX512

/* Row-major C[M, N] = alpha · op(A) op(B) + beta · C + bias, as cblas_sgemm with CblasRowMajor
 * plus an optional bias row: op(A) is [M, K] (A stored [K, M] when ta), op(B) is [K, N] (B
 * stored [N, K] when tb); bias (N values, added to every row) may be NULL.  C is not read when
 * beta is 0.  M, N, K > 0.  Runs on `threads` OpenMP threads (1: on the calling thread alone,
 * as inside a parallel region); the result does not depend on the count.  Sums run over k in
 * ascending order within blocks of at most 384, the blocks added to C in order, as a blocked
 * BLAS does; beta · C + bias is formed in the first block, so that (beta 0, bias) rounds exactly
 * as broadcasting the bias into C and running with beta 1. */
void poa_cpu_gemm_avx512(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, const float *bias, float *C, int ldc,
                         int threads);
#endif

#endif
