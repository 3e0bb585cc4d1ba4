/* cpu_gelu_avx512.c — exact-erf GELU forward and backward in AVX-512F (docs/algorithm.md §2.4),
 * blocks of 16 values a vector, the ragged tail through masked loads and stores.
 *
 * Why not libmvec's erff: its 8-lane version costs ~1.2 ns per value and the 16-lane one loses
 * the negative tail (cpu_simd.h).  Here, in fp32, with one exp per value forward and two
 * backward:
 *
 *     GELU(x)  = x · Φ(x),            Φ(x) = ½ erfc(−x/√2),
 *     GELU'(x) = Φ(x) + x · φ(x),     φ(x) = exp(−x²/2) / √(2π).
 *
 * Φ has no cancellation anywhere: for x ≤ 0, Φ(x) = ½ erfc(|x|/√2), erfc of a non-negative
 * argument, which the approximation below gives with a small *relative* error however tiny it
 * is (GELU(−10) = −7.6e-23); for x > 0, Φ(x) = 1 − ½ erfc(x/√2) (erfc(−z) = 2 − erfc(z)), a
 * subtraction of at most ½.  PyTorch's 0.5 x (1 + erf(x/√2)) instead cancels for x ≪ 0.
 *
 * erfc(z) for z ≥ 0 is Numerical Recipes' Chebyshev fit (Press et al., Numerical Recipes in C,
 * 2nd ed., §6.2, erfcc):
 *
 *     erfc(z) ≈ t · exp(−z² + P(t)),   t = 1 / (1 + z/2),
 *     P(t) = −1.26551223 + t (1.00002368 + t (0.37409196 + t (0.09678418 + t (−0.18628806
 *            + t (0.27886807 + t (−1.13520398 + t (1.48851587 + t (−0.82215223
 *            + t 0.17087277))))))))
 *
 * with a fractional error below 1.2e-7 for every z ≥ 0 (1.05e-7 measured in double against
 * libm's erfc over [0, 10] in steps of 5e-5).
 *
 * In fp32 the exponent −z² = −x²/2 reaches −128, and a float that large carries an absolute
 * rounding error (up to 4e-6) that exp turns into the same relative error.  So x²/2 is split
 * exactly into h + l with an FMA, and exp(−h + (P(t) − l)) is formed by poa_exp512_sum_block,
 * which never rounds the large part; and it is computed from x, not from z = x/√2, whose
 * rounding would be doubled in z².  z only enters t, where its rounding hardly matters.  φ uses
 * the same split.  Against the double reference over every x in [−10, 10] in steps of 1e-4
 * (tests/ops/test_ops_dense.c, test_gelu_accuracy): forward within 3.8e-7 absolute (0.8 ulp, at
 * x ≈ 4.9) and 4.5e-7 relative everywhere, the negative tail included; backward within 1.9e-7
 * absolute and 2e-7 relative in the tail (on a grid 100 times finer: 5.2e-7 forward relative,
 * 2.2e-7 backward absolute).  The remaining error is the fit's 1e-7 plus a few fp32 roundings
 * of quantities of order 1 (t, P(t), the reduced exponent, the products).
 *
 * |x| is clamped to 16 before any of this: beyond it erfc(|x|/√2) and φ(x) are below e^−128,
 * far under the smallest denormal, and the clamp keeps x² finite.  The final product with x
 * then gives GELU(+inf) = +inf, GELU(−inf) = −inf · 0 = NaN and NaN for NaN, as PyTorch's float
 * GELU does (and GELU'(±inf) = NaN, through x · φ = ±inf · 0, also as PyTorch); GELU(−0) = −0.
 *
 * Every function carries target("avx512f") instead of the file being compiled with -mavx512f:
 * the library stays baseline x86-64, and cpu_nn_attention.c calls in only after
 * poa_cpu_avx512f_usable(). */
#include "backend/cpu/cpu_gelu_avx512.h"

#ifdef POA_CPU_GELU_AVX512

#define TGT        __attribute__((target("avx512f")))
#define TGT_INLINE POA_AVX512_INLINE

/* Vectors per block (cpu_avx512_math.h), the fastest measured: the backward keeps more values
 * per vector alive and spills registers with 6. */
#define FWD_VECTORS 6
#define BWD_VECTORS 4

/* Beyond |x| = 16, erfc(|x|/√2) and φ(x) are below e^−128 (see above). */
#define ABS_X_MAX 16.0f

/* P(t) of Numerical Recipes' erfcc (see above), highest power first, ln 2 subtracted from the
 * constant term: t · exp(−z² + P(t) − ln 2) = ½ erfc(z), the ½ of Φ at no cost. */
static const float erfc_poly[10] = {
    0.17087277f,  -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
    -0.18628806f, 0.09678418f,  0.37409196f, 1.00002368f,  -1.26551223f - 0.69314718f};

/* The lanes of vector j of a block covering n values: all, or those of the ragged tail. */
static __mmask16 block_lanes(size_t n, int j)
{
    const size_t left = n > 16 * (size_t) j ? n - 16 * (size_t) j : 0;
    return left >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << left) - 1);
}

/* a = min(|x|, 16); NaN becomes 16 (vminps returns its second operand), the final product with
 * x restores it. */
TGT_INLINE void clamped_abs(const int u, __m512 *a, const __m512 *x)
{
#pragma GCC unroll 8
    for (int j = 0; j < u; j++)
        a[j] = _mm512_min_ps(_mm512_abs_ps(x[j]), _mm512_set1_ps(ABS_X_MAX));
}

/* −a²/2 as h + l: h = fl(−a/2 · a), l = −a/2 · a − h, exact by the FMA (−a/2 is exact).  The
 * exponent of φ, and the bulk of erfc's. */
TGT_INLINE void neg_half_square(const int u, __m512 *h, __m512 *l, const __m512 *a)
{
#pragma GCC unroll 8
    for (int j = 0; j < u; j++) {
        const __m512 nha = _mm512_mul_ps(a[j], _mm512_set1_ps(-0.5f));
        h[j] = _mm512_mul_ps(nha, a[j]);
        l[j] = _mm512_fmsub_ps(nha, a[j], h[j]);
    }
}

/* t = 1 / (1 + z/2) for z = a/√2: rcp14 and one Newton step (relative error ~2⁻²⁸ before the
 * last rounding); faster here than a division. */
TGT_INLINE void erfc_t(const int u, __m512 *t, const __m512 *a)
{
    __m512 d[POA_AVX512_BLOCK_MAX];
#pragma GCC unroll 8
    for (int j = 0; j < u; j++)
        d[j] = _mm512_fmadd_ps(a[j], _mm512_set1_ps(0.35355339059327376f), _mm512_set1_ps(1));
#pragma GCC unroll 8
    for (int j = 0; j < u; j++) t[j] = _mm512_rcp14_ps(d[j]);
#pragma GCC unroll 8
    for (int j = 0; j < u; j++)
        t[j] = _mm512_fmadd_ps(t[j], _mm512_fnmadd_ps(d[j], t[j], _mm512_set1_ps(1)), t[j]);
}

/* Φ(x) for the u vectors of a block, and in h, l the split −a²/2 for the backward's φ.  Both
 * kernels take GELU(x) = x · Φ(x) from here, so that the backward's y is the forward's bit for
 * bit (backend.h); every multiply-add in it is an explicit FMA, so that the compiler's
 * contraction of a * b + c cannot differ between the two. */
TGT_INLINE void gelu_cdf(const int u, __m512 *cdf, __m512 *h, __m512 *l, const __m512 *x)
{
    __m512 a[POA_AVX512_BLOCK_MAX], t[POA_AVX512_BLOCK_MAX], p[POA_AVX512_BLOCK_MAX];
    __m512 e[POA_AVX512_BLOCK_MAX];
    clamped_abs(u, a, x);
    neg_half_square(u, h, l, a);
    erfc_t(u, t, a);
    poa_horner512_block(u, p, t, erfc_poly, 10);
#pragma GCC unroll 8
    for (int j = 0; j < u; j++) p[j] = _mm512_add_ps(p[j], l[j]);
    poa_exp512_sum_block(u, e, h, p); /* exp(−a²/2 + P(t) − ln 2) */
#pragma GCC unroll 8
    for (int j = 0; j < u; j++) {
        const __m512 q = _mm512_mul_ps(t[j], e[j]); /* ½ erfc(|x|/√2) */
        const __mmask16 pos = _mm512_cmp_ps_mask(x[j], _mm512_setzero_ps(), _CMP_GT_OQ);
        cdf[j] = _mm512_mask_sub_ps(q, pos, _mm512_set1_ps(1), q);
    }
}

TGT_INLINE __m512 gelu_value(__m512 x, __m512 cdf)
{
    return _mm512_mul_ps(x, cdf);
}

/* y = GELU(x) on a block of u vectors covering n ≤ 16 u values. */
TGT_INLINE void gelu_fwd_block(const int u, float *y, const float *x, size_t n)
{
    __m512 v[POA_AVX512_BLOCK_MAX], cdf[POA_AVX512_BLOCK_MAX];
    __m512 h[POA_AVX512_BLOCK_MAX], l[POA_AVX512_BLOCK_MAX];
#pragma GCC unroll 8
    for (int j = 0; j < u; j++) v[j] = _mm512_maskz_loadu_ps(block_lanes(n, j), x + 16 * j);
    gelu_cdf(u, cdf, h, l, v);
#pragma GCC unroll 8
    for (int j = 0; j < u; j++)
        _mm512_mask_storeu_ps(y + 16 * j, block_lanes(n, j), gelu_value(v[j], cdf[j]));
}

/* dx = dy · (Φ + x φ), φ = exp(−x²/2) / √(2π), and y = GELU(x) unless NULL, on a block of u
 * vectors covering n ≤ 16 u values. */
TGT_INLINE void gelu_bwd_block(const int u, float *dx, float *y, const float *dy, const float *x,
                               size_t n)
{
    __m512 v[POA_AVX512_BLOCK_MAX], cdf[POA_AVX512_BLOCK_MAX];
    __m512 h[POA_AVX512_BLOCK_MAX], l[POA_AVX512_BLOCK_MAX], e[POA_AVX512_BLOCK_MAX];
#pragma GCC unroll 8
    for (int j = 0; j < u; j++) v[j] = _mm512_maskz_loadu_ps(block_lanes(n, j), x + 16 * j);
    gelu_cdf(u, cdf, h, l, v);
    poa_exp512_sum_block(u, e, h, l);
#pragma GCC unroll 8
    for (int j = 0; j < u; j++) {
        const __mmask16 m = block_lanes(n, j);
        const __m512 pdf = _mm512_mul_ps(e[j], _mm512_set1_ps(0.39894228040143268f));
        const __m512 g = _mm512_maskz_loadu_ps(m, dy + 16 * j);
        if (y) _mm512_mask_storeu_ps(y + 16 * j, m, gelu_value(v[j], cdf[j]));
        _mm512_mask_storeu_ps(dx + 16 * j, m, _mm512_mul_ps(g, _mm512_fmadd_ps(v[j], pdf, cdf[j])));
    }
}

TGT void poa_cpu_gelu_avx512_fwd(float *y, const float *x, size_t n)
{
    const size_t block = 16 * FWD_VECTORS;
    size_t i = 0;
    for (; i + block <= n; i += block) gelu_fwd_block(FWD_VECTORS, y + i, x + i, block);
    if (i < n) gelu_fwd_block(FWD_VECTORS, y + i, x + i, n - i);
}

TGT void poa_cpu_gelu_avx512_bwd(float *dx, float *y, const float *dy, const float *x, size_t n)
{
    const size_t block = 16 * BWD_VECTORS;
    size_t i = 0;
    for (; i + block <= n; i += block)
        gelu_bwd_block(BWD_VECTORS, dx + i, y ? y + i : NULL, dy + i, x + i, block);
    if (i < n) gelu_bwd_block(BWD_VECTORS, dx + i, y ? y + i : NULL, dy + i, x + i, n - i);
}

#endif
