/* cpu_avx512_math.h — AVX-512F elementwise math for the CPU backend's hand-written kernels (the
 * softmax's exp of cpu_attn_avx512.c) and the check that the CPU runs them; internal to
 * src/backend/cpu.
 *
 * The functions are static inline with target("avx512f") so that every file including this
 * header stays baseline x86-64: only callers that are themselves compiled for AVX-512F (and run
 * after poa_cpu_avx512f_usable()) may call them.  Defined on x86-64 with GCC or clang
 * (POA_CPU_AVX512_MATH). */
#ifndef POA_BACKEND_CPU_AVX512_MATH_H
#define POA_BACKEND_CPU_AVX512_MATH_H

#if defined(__x86_64__) && defined(__GNUC__)
#define POA_CPU_AVX512_MATH 1
#include <immintrin.h>

#define POA_AVX512_INLINE static inline __attribute__((always_inline, target("avx512f")))

/* 1 if the CPU runs AVX-512F (and the OS saves the zmm registers). */
static inline int poa_cpu_avx512f_usable(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
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

#endif

#endif
