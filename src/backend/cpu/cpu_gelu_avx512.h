/* cpu_gelu_avx512.h — the CPU backend's AVX-512F exact-erf GELU kernels; internal to
 * src/backend/cpu (cpu_nn_attention.c chooses between them and the libmvec loops).
 *
 * Compiled with per-function target attributes (POA_CPU_GELU_AVX512 defined on x86-64 with GCC
 * or clang) so that the library stays baseline x86-64; call them only when
 * poa_cpu_avx512f_usable() (cpu_avx512_math.h) says the CPU runs AVX-512F.  They open no
 * OpenMP regions (the op functions run them on each thread's share). */
#ifndef POA_BACKEND_CPU_GELU_AVX512_H
#define POA_BACKEND_CPU_GELU_AVX512_H

#include "backend/cpu/cpu_avx512_math.h"

#include <stddef.h>

#ifdef POA_CPU_AVX512_MATH
#define POA_CPU_GELU_AVX512 1

/* y[i] = GELU(x[i]) for i < n. */
void poa_cpu_gelu_avx512_fwd(float *y, const float *x, size_t n);

/* dx[i] = dy[i] · GELU'(x[i]) (dx may alias dy); y, if not NULL, receives GELU(x[i]) bit for
 * bit as poa_cpu_gelu_avx512_fwd computes it. */
void poa_cpu_gelu_avx512_bwd(float *dx, float *y, const float *dy, const float *x, size_t n);
#endif

#endif
