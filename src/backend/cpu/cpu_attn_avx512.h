/* cpu_attn_avx512.h — AVX-512 kernels of the CPU backend's multi-head attention (docs/algorithm.md
 * §2.4), one (image, head) pair per call; internal to src/backend/cpu (the op functions that spread
 * the pairs over threads and choose between these kernels and BLAS are in cpu_nn_attention.c).
 *
 * The kernels exist on x86-64 with GCC or clang (POA_CPU_ATTN_AVX512 defined), compiled with
 * per-function target attributes so that the library stays baseline x86-64; call them only
 * when poa_cpu_avx512f_usable() (cpu_avx512_math.h) says the CPU runs AVX-512F. */
#ifndef POA_BACKEND_CPU_ATTN_AVX512_H
#define POA_BACKEND_CPU_ATTN_AVX512_H

#include <stddef.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define POA_CPU_ATTN_AVX512 1
#endif

/* Floats of scratch one (image, head) pair needs in either direction: the [T, T] dS of the
 * backward plus two packed operands.  A multiple of 16; the kernels want it 64-byte aligned. */
size_t poa_cpu_attn_avx512_slot(int T, int Dh);

#ifdef POA_CPU_ATTN_AVX512
/* One pair: P = softmax(scale · q kᵀ) ([T, T], ld T), out = P v.  q, k, v: rows of ldqkv.
 * next_q: q of the pair this thread processes next (its k and v at the same offsets from it as
 * this pair's k and v), prefetched meanwhile; NULL if none. */
void poa_cpu_attn_avx512_fwd_head(float *out, int ldout, float *P, const float *q, const float *k,
                                  const float *v, int ldqkv, int T, int Dh, float scale,
                                  float *scratch, const float *next_q);

/* One pair: dv = Pᵀ dO, dS = softmax_bwd(dO vᵀ), dq = scale dS k, dk = scale dSᵀ q (=).
 * next_q, next_dO: the next pair's q (k, v as for the forward) and dO, prefetched meanwhile;
 * NULL if none. */
void poa_cpu_attn_avx512_bwd_head(float *dq, float *dk, float *dv, int lddqkv, const float *dO,
                                  int lddout, const float *q, const float *k, const float *v,
                                  int ldqkv, const float *P, int T, int Dh, float scale,
                                  float *scratch, const float *next_q, const float *next_dO);
#endif

#endif
