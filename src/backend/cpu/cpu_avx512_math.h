/* cpu_avx512_math.h — AVX-512F elementwise math for the CPU backend's hand-written kernels (the
 * softmax's exp of cpu_attn_avx512.c, the exp and polynomials of cpu_gelu_avx512.c) and the
 * check that the CPU runs them; internal to src/backend/cpu.
 *
 * The functions are static inline with target("avx512f") so that every file including this
 * header stays baseline x86-64: only callers that are themselves compiled for AVX-512F (and run
 * after poa_cpu_avx512f_usable()) may call them.  Defined on x86-64 with GCC or clang
 * (POA_CPU_AVX512_MATH).
 *
 * Blocks: a kernel whose every value goes through a long chain of dependent operations (GELU's
 * ~36, 4 cycles each) keeps the two vector ports busy only if independent chains sit close
 * together in the instruction stream.  The *_block functions therefore take u vectors at once
 * (u a constant after inlining, at most POA_AVX512_BLOCK_MAX) and do each step for all u before
 * the next one.  On the development VM's Xeon the GELU forward ran ~15 % slower with its exp done
 * one vector at a time, ~35 % slower with everything done one vector at a time. */
#ifndef POA_BACKEND_CPU_AVX512_MATH_H
#define POA_BACKEND_CPU_AVX512_MATH_H

#if defined(__x86_64__) && defined(__GNUC__)
#define POA_CPU_AVX512_MATH 1
#include "backend/cpu/cpu_simd.h"

#include <immintrin.h>

#define POA_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))

/* 1 if the CPU runs AVX-512F (and the OS saves the zmm registers). */
static inline int poa_cpu_avx512f_usable(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
}

/* 1 if an AVX-512 kernel should run: the CPU has AVX-512F and the environment variable `var` does
 * not force the fallback (`fallback`, e.g. POA_CPU_GEMM=blas), read on every call so that a test
 * can switch. */
static inline int poa_cpu_avx512_chosen(const char *var, const char *fallback)
{
    return !poa_cpu_env_forces(var, fallback) && poa_cpu_avx512f_usable();
}

#define POA_AVX512_BLOCK_MAX 8 /* vectors in a block */

/* p[j] = c[0] t^(nc−1) + c[1] t^(nc−2) + … + c[nc−1] at t[j], by Horner's rule, for the u
 * vectors of a block. */
POA_AVX512_INLINE void poa_horner512_block(const int u, __m512 *p, const __m512 *t, const float *c,
                                           const int nc)
{
#pragma GCC unroll 8
    for (int j = 0; j < u; j++) p[j] = _mm512_set1_ps(c[0]);
#pragma GCC unroll 16
    for (int k = 1; k < nc; k++)
#pragma GCC unroll 8
        for (int j = 0; j < u; j++) p[j] = _mm512_fmadd_ps(p[j], t[j], _mm512_set1_ps(c[k]));
}

/* Cephes' expf range reduction: x = n ln2 + r with ln2 split in two, ln2_hi with 9 significant
 * bits so that n · ln2_hi is exact and the FMA forms x − n · ln2_hi with a single rounding. */
#define POA_EXP_LOG2E  1.44269504088896341f
#define POA_EXP_LN2_HI 0.693359375f
#define POA_EXP_LN2_LO -2.12194440e-4f

/* exp(x) for x ≤ 0 (larger x are clamped to 88.7): Cephes' expf — x = n ln2 + r, a degree-6
 * polynomial for e^r on |r| ≤ ln2/2, then 2ⁿ by vscalefps, which also takes n far below the
 * exponent range to 0.  Within 2 ulp of exp over [−104, 0] (measured against double exp);
 * below −104 the result is 0 (e^−104 is under the smallest denormal).  The softmax's exp. */
POA_AVX512_INLINE __m512 poa_exp512(__m512 x)
{
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.72283f)), _mm512_set1_ps(-104.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(POA_EXP_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(POA_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(POA_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1));
    return _mm512_scalef_ps(y, n);
}

/* e[j] = exp(a[j] + b[j]) for the u vectors of a block, for floats a in [−128, 0] and
 * corrections |b| ≤ 2, without first rounding a + b to float: for a = −x²/2 of magnitude ~50
 * that rounding alone (ulp/2 = 2e-6) would be a relative error of 2e-6 in the result.  Here the
 * large a only enters a − n ln2_hi, which the FMA forms with a single rounding and which is
 * below |b| + 0.4 in magnitude, so all roundings are those of numbers under 2.4 (≤ 1.2e-7 each).
 * n is rounded by adding and subtracting 1.5 · 2²³ (a few % faster than vrndscaleps here).
 *
 * e^r ≈ 1 + r (1 + r g(r)) on |r| ≤ 1.01 · ln2/2, g a degree-4 fit (Lawson's minimax, in double)
 * of (e^r − 1 − r)/r²: relative error 4.8e-9 with these fp32 coefficients, and the last FMA
 * rounds once, so that the result is within ~0.7 ulp; two operations fewer than Cephes' form
 * above.  Results under the smallest denormal come out 0. */
POA_AVX512_INLINE void poa_exp512_sum_block(const int u, __m512 *e, const __m512 *a,
                                            const __m512 *b)
{
    /* g(r), highest power first */
    static const float g[5] = {1.3813158319e-3f, 8.3694189130e-3f, 4.1668456526e-2f,
                               1.6666514791e-1f, 4.9999993052e-1f};
    const __m512 round = _mm512_set1_ps(12582912.0f);
    __m512 n[POA_AVX512_BLOCK_MAX], r[POA_AVX512_BLOCK_MAX];
#pragma GCC unroll 8
    for (int j = 0; j < u; j++) {
        const __m512 s = _mm512_add_ps(a[j], b[j]);
        n[j] = _mm512_sub_ps(_mm512_fmadd_ps(s, _mm512_set1_ps(POA_EXP_LOG2E), round), round);
    }
#pragma GCC unroll 8
    for (int j = 0; j < u; j++)
        r[j] = _mm512_add_ps(_mm512_fnmadd_ps(n[j], _mm512_set1_ps(POA_EXP_LN2_HI), a[j]),
                             _mm512_fnmadd_ps(n[j], _mm512_set1_ps(POA_EXP_LN2_LO), b[j]));
    poa_horner512_block(u, e, r, g, 5);
#pragma GCC unroll 8
    for (int j = 0; j < u; j++) {
        const __m512 one = _mm512_set1_ps(1);
        const __m512 er = _mm512_fmadd_ps(_mm512_fmadd_ps(e[j], r[j], one), r[j], one);
        e[j] = _mm512_scalef_ps(er, n[j]); /* 2ⁿ e^r */
    }
}

#endif

#endif
