/* cpu_attn_avx512.c — AVX-512 kernels of the CPU multi-head attention (docs/algorithm.md §2.4), one
 * (image, head) pair per call, the whole pair in one cache-resident pass.
 *
 * Why not BLAS: the attention products are small (ViT-S/16 at 224 px: T = 197, Dh = 64; local
 * crops T = 37) and OpenBLAS runs them at 65–85 GFLOP/s single-threaded against ~150 for the
 * layer GEMMs — it packs both operands of every call, K = Dh = 64 is short, and 197 leaves
 * ragged tiles.  Here every product is one register-blocked micro-kernel,
 *
 *     C[r, :] = alpha · Σ_k a(r, k) · B[k, :],   a(r, k) = A[r·lda + k·ak],
 *
 * with MR = 6 rows × up to 4 zmm (64 columns) of accumulators, B rows contiguous and a(r, k)
 * broadcast from any strides — so a transposed left operand (Pᵀ dO, dSᵀ q) costs nothing.  The
 * operands are packed once per pair into per-thread scratch: kᵀ (vᵀ) as [Dh, Tp] (Tp = T
 * rounded up to 16), q, v, k, dO as [T, Dhp] rows; zero padding lets the kernel load whole
 * vectors, and only the stores of a ragged last vector are masked.  The packs also turn T rows
 * 3·H·Dh floats apart (a new page each for ViT-S) into one contiguous block.
 *
 * Forward, per panel of 24 query rows: S = scale·q kᵀ goes into scratch (each 64-column chunk
 * of kᵀ serves the panel's four blocks of rows from L1), the rows are soft-maxed there,
 * o = P v is accumulated from there, and the panel of P is copied out.  Backward: per panel,
 * dP = dO vᵀ into the dS scratch, dS = P ⊙ (dP − rowsum(dP ⊙ P)) and dq = scale dS k; then
 * dv = Pᵀ dO and dk = scale dSᵀ q over the whole pair, P and dS by then in L2.  Sums run in
 * fp32 in k order, as BLAS does; the softmax and its backward sum rows in fp32 vector lanes, as
 * PyTorch's vectorised kernels do.
 *
 * Memory: in a training step the operands are cold (qkv was written by the previous GEMM, P by
 * the forward long before the backward) and, at 4–9 GB/s of single-core DRAM bandwidth on the
 * development VM, stalls on them took a third of the time.  So the micro-kernel prefetches, one
 * line per step of its k loop, the lines needed next — the next panel's P and output rows, and this
 * panel's share of the next pair's q, k, v (dO) rows — spread over the arithmetic rather than
 * issued as a burst (a burst of prefetches or of stores to missing lines stalls on the few
 * line-fill buffers).
 *
 * Every function carries target("avx512f") instead of the file being compiled with -mavx512f:
 * the library stays baseline x86-64, and cpu_nn_attention.c calls these kernels only after
 * poa_cpu_avx512f_usable().  They open no OpenMP regions (they run inside one). */
#include "backend/cpu/cpu_attn_avx512.h"
#include "backend/cpu/cpu_avx512_math.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static size_t round16(int n)
{
    return ((size_t) n + 15) / 16 * 16;
}

/* A slot: region A, kᵀ or vᵀ [Dh, Tp]; regions B and C, [T, Dhp] packs; then the backward's
 * dS [T, Tp]. */
static size_t region_a(int T, int Dh)
{
    return (size_t) Dh * round16(T);
}

static size_t region_b(int T, int Dh)
{
    return (size_t) T * round16(Dh);
}

size_t poa_cpu_attn_avx512_slot(int T, int Dh)
{
    return region_a(T, Dh) + 2 * region_b(T, Dh) + (size_t) T * round16(T);
}

#ifdef POA_CPU_ATTN_AVX512
#include <immintrin.h>

#define TGT        __attribute__((target("avx512f")))
#define TGT_INLINE static inline __attribute__((always_inline, target("avx512f")))

#define MR    6 /* rows of a register block: 6 × 4 accumulators + 4 B vectors of 32 zmm */
#define NVMAX 4 /* zmm per row of a register block (64 columns) */

/* One step k of the micro-kernel: acc[r][:] += a(r, k) · B[k, :]. */
TGT_INLINE void mk_step(const int R, const int NV, __m512 acc[MR][NVMAX], const float *a,
                        size_t lda, const float *b)
{
    __m512 bv[NVMAX];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        const __m512 ar = _mm512_set1_ps(a[(size_t) r * lda]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
}

/* The micro-kernel: rows [0, R) and the NV vectors of columns [0, 16·NV) of
 * C = alpha · Σ_{k<K} a(r, k) B[k, :]; the last vector's store is masked by `last`.  B must
 * hold 16·NV readable floats per row.  R and NV are constants in each instantiation below, so
 * the accumulator arrays live in registers.  The first npf steps also prefetch one line each of
 * pf[] (lines the caller needs next). */
TGT_INLINE void mk_body(const int R, const int NV, int K, const float *A, size_t lda, size_t ak,
                        const float *Bm, size_t ldb, float *C, size_t ldc, float alpha,
                        __mmask16 last, const char *const *pf, int npf)
{
    __m512 acc[MR][NVMAX];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    int k = 0;
    for (; k < K && k < npf; k++) {
        _mm_prefetch(pf[k], _MM_HINT_T0);
        mk_step(R, NV, acc, A + (size_t) k * ak, lda, Bm + (size_t) k * ldb);
    }
    for (; k < K; k++) mk_step(R, NV, acc, A + (size_t) k * ak, lda, Bm + (size_t) k * ldb);
    const __m512 al = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        float *c = C + (size_t) r * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < NV - 1; v++) _mm512_storeu_ps(c + 16 * v, _mm512_mul_ps(acc[r][v], al));
        _mm512_mask_storeu_ps(c + 16 * (NV - 1), last, _mm512_mul_ps(acc[r][NV - 1], al));
    }
}

typedef void (*mk_fn)(int K, const float *A, size_t lda, size_t ak, const float *Bm, size_t ldb,
                      float *C, size_t ldc, float alpha, __mmask16 last, const char *const *pf,
                      int npf);

#define MK(R, NV)                                                                                  \
    TGT static void mk_##R##_##NV(int K, const float *A, size_t lda, size_t ak, const float *Bm,   \
                                  size_t ldb, float *C, size_t ldc, float alpha, __mmask16 last,   \
                                  const char *const *pf, int npf)                                  \
    {                                                                                              \
        mk_body(R, NV, K, A, lda, ak, Bm, ldb, C, ldc, alpha, last, pf, npf);                      \
    }
#define MK_ROW(R) MK(R, 1) MK(R, 2) MK(R, 3) MK(R, 4)
MK_ROW(1)
MK_ROW(2)
MK_ROW(3)
MK_ROW(4)
MK_ROW(5)
MK_ROW(6)
#define MK_REF(R)                                                                                  \
    {                                                                                              \
        mk_##R##_1, mk_##R##_2, mk_##R##_3, mk_##R##_4                                             \
    }
static const mk_fn mk_table[MR][NVMAX] = {MK_REF(1), MK_REF(2), MK_REF(3),
                                          MK_REF(4), MK_REF(5), MK_REF(6)};

/* A list of cache lines to prefetch, handed out a slice per micro-kernel call. */
#define PF_MAX 1024
typedef struct pf_list {
    const char *line[PF_MAX];
    int n, next;
} pf_list;

/* Append the lines of [p, p + n floats). */
static void pf_add_span(pf_list *l, const float *p, size_t n)
{
    if (!n) return;
    const uintptr_t a = (uintptr_t) p & ~(uintptr_t) 63, e = (uintptr_t) (p + n - 1);
    for (uintptr_t x = a; x <= e && l->n < PF_MAX; x += 64) l->line[l->n++] = (const char *) x;
}

/* Append rows [0, R) of n floats, ld apart. */
static void pf_add_rows(pf_list *l, const float *p, size_t ld, int R, size_t n)
{
    for (int r = 0; r < R; r++) pf_add_span(l, p + r * ld, n);
}

/* C [M, N] (=) alpha · Σ_{k<K} A[m·lda + k·ak] B[k·ldb + n]: blocks of MR rows × 64 columns,
 * the blocks of rows inside the loop over 64-column chunks so that a chunk of B (K × 256 bytes,
 * 16 KiB for K = 64) stays in L1 while it serves them all.  B rows must be readable up to N
 * rounded up to 16.  The calls prefetch the lines of pf; with pf NULL and one chunk, each
 * block of rows prefetches the next one's C rows. */
TGT static void gemm_rows(int M, int N, int K, const float *A, size_t lda, size_t ak,
                          const float *Bm, size_t ldb, float *C, size_t ldc, float alpha,
                          pf_list *pf)
{
    pf_list own;
    const int own_pf = !pf && M > MR && N <= 16 * NVMAX;
    /* the vectors of a row split evenly over the chunks (13 as 4 + 3 + 3 + 3, not 4 + 4 + 4 + 1:
     * a chunk of one vector has too few accumulators to hide the FMA latency) */
    const int nvt = (N + 15) / 16, nch = (nvt + NVMAX - 1) / NVMAX;
    for (int c = 0, n0 = 0; c < nch; c++) {
        const int nv = nvt / nch + (c < nvt % nch);
        const int n = N - n0 < 16 * nv ? N - n0 : 16 * nv, tail = n - 16 * (nv - 1);
        const __mmask16 last = (__mmask16) (tail == 16 ? 0xFFFF : (1u << tail) - 1);
        for (int m0 = 0; m0 < M; m0 += MR) {
            const int R = M - m0 < MR ? M - m0 : MR;
            if (own_pf) {
                own.n = own.next = 0;
                if (m0 + MR < M)
                    pf_add_rows(&own, C + (size_t) (m0 + MR) * ldc, ldc,
                                M - m0 - MR < MR ? M - m0 - MR : MR, (size_t) N);
                pf = &own;
            }
            int npf = 0;
            const char *const *pfl = NULL;
            if (pf) {
                npf = pf->n - pf->next < K ? pf->n - pf->next : K;
                pfl = pf->line + pf->next;
                pf->next += npf;
            }
            mk_table[R - 1][nv - 1](K, A + (size_t) m0 * lda, lda, ak, Bm + n0, ldb,
                                    C + (size_t) m0 * ldc + n0, ldc, alpha, last, pfl, npf);
        }
        n0 += n;
    }
}

/* Rows of a pack's source are 3·H·Dh floats apart (a new page each for ViT-S: the hardware
 * prefetchers do not follow), and the source is cold (written by the qkv GEMM, or in the
 * backward long before): the pack loops prefetch this many rows ahead. */
#define PACK_AHEAD 8

TGT_INLINE void prefetch_row(const float *p, int n)
{
    for (int e = 0; e < n; e += 16) _mm_prefetch((const char *) (p + e), _MM_HINT_T0);
}

/* Transpose of 16 rows of 16 floats in registers: 4 rounds of 16 shuffles. */
TGT_INLINE void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* r[4g + p], 128-bit lane L: rows 4g .. 4g + 3 of column 4L + p */
    for (int g = 0; g < 4; g++) {
        const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 2]);
        const __m512d c = _mm512_castps_pd(t[4 * g + 1]), d = _mm512_castps_pd(t[4 * g + 3]);
        r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int p = 0; p < 4; p++) {
        const __m512 v0 = _mm512_shuffle_f32x4(r[p], r[4 + p], 0x88);
        const __m512 v1 = _mm512_shuffle_f32x4(r[p], r[4 + p], 0xdd);
        const __m512 w0 = _mm512_shuffle_f32x4(r[8 + p], r[12 + p], 0x88);
        const __m512 w1 = _mm512_shuffle_f32x4(r[8 + p], r[12 + p], 0xdd);
        t[p] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        t[4 + p] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        t[8 + p] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
        t[12 + p] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

static __mmask16 tail_mask(int n)
{
    return (__mmask16) (n >= 16 ? 0xFFFF : (1u << n) - 1);
}

/* dst [Dh, Tp] = srcᵀ for src [T, Dh] (rows lds apart); columns [T, Tp) zero.  16 × 16 tiles
 * transposed in registers. */
TGT static void pack_transposed(float *dst, const float *src, size_t lds, int T, int Dh)
{
    const size_t Tp = round16(T);
    for (int j = 0; j < T && j < PACK_AHEAD; j++) prefetch_row(src + (size_t) j * lds, Dh);
    for (int j0 = 0; j0 < T; j0 += 16) {
        const int nj = T - j0 < 16 ? T - j0 : 16;
        for (int j = j0 + PACK_AHEAD; j < j0 + 16 + PACK_AHEAD && j < T; j++)
            prefetch_row(src + (size_t) j * lds, Dh);
        for (int e0 = 0; e0 < Dh; e0 += 16) {
            const int ne = Dh - e0 < 16 ? Dh - e0 : 16;
            const __mmask16 m = tail_mask(ne);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < nj ? _mm512_maskz_loadu_ps(m, src + (size_t) (j0 + i) * lds + e0)
                              : _mm512_setzero_ps();
            transpose16(r);
            for (int c = 0; c < ne; c++) _mm512_storeu_ps(dst + (e0 + c) * Tp + j0, r[c]);
        }
    }
}

/* dst [T, Dhp] = src [T, Dh] (rows lds apart); columns [Dh, Dhp) zero. */
TGT static void pack_rows(float *dst, const float *src, size_t lds, int T, int Dh)
{
    const size_t Dhp = round16(Dh);
    for (int j = 0; j < T && j < PACK_AHEAD; j++) prefetch_row(src + (size_t) j * lds, Dh);
    for (int j = 0; j < T; j++) {
        if (j + PACK_AHEAD < T) prefetch_row(src + (size_t) (j + PACK_AHEAD) * lds, Dh);
        const float *s = src + (size_t) j * lds;
        float *d = dst + j * Dhp;
        for (int e = 0; e < Dh; e += 16)
            _mm512_storeu_ps(d + e, _mm512_maskz_loadu_ps(tail_mask(Dh - e), s + e));
    }
}

/* In-place softmax of R rows (ld apart) of n scores: exp(s − max) times the reciprocal of the
 * sum (PyTorch's order of operations), each row's sum in fp32 vector lanes.  The rows go
 * through each pass together, so that the R max and sum reductions are independent chains. */
TGT_INLINE void softmax_body(const int R, float *p, size_t ld, int n)
{
    const int nf = n & ~15;
    const __mmask16 m = tail_mask(n - nf);
    __m512 acc[MR], c[MR];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) acc[r] = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < nf; j += 16)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) acc[r] = _mm512_max_ps(acc[r], _mm512_loadu_ps(p + r * ld + j));
    if (m)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            acc[r] =
                _mm512_mask_max_ps(acc[r], m, acc[r], _mm512_maskz_loadu_ps(m, p + r * ld + nf));
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        c[r] = _mm512_set1_ps(_mm512_reduce_max_ps(acc[r]));
        acc[r] = _mm512_setzero_ps();
    }
    for (int j = 0; j < nf; j += 16)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 e = poa_exp512(_mm512_sub_ps(_mm512_loadu_ps(p + r * ld + j), c[r]));
            _mm512_storeu_ps(p + r * ld + j, e);
            acc[r] = _mm512_add_ps(acc[r], e);
        }
    if (m)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 e =
                poa_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + r * ld + nf), c[r]));
            _mm512_mask_storeu_ps(p + r * ld + nf, m, e);
            acc[r] = _mm512_mask_add_ps(acc[r], m, acc[r], e);
        }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) c[r] = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(acc[r]));
    for (int j = 0; j < nf; j += 16)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            _mm512_storeu_ps(p + r * ld + j, _mm512_mul_ps(_mm512_loadu_ps(p + r * ld + j), c[r]));
    if (m)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            _mm512_mask_storeu_ps(p + r * ld + nf, m,
                                  _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + r * ld + nf), c[r]));
}

TGT static void softmax_rows(float *p, size_t ld, int R, int n)
{
    if (R == MR) {
        softmax_body(MR, p, ld, n);
        return;
    }
    for (int r = 0; r < R; r++) softmax_body(1, p + r * ld, ld, n);
}

/* dS = P ⊙ (dP − Σ_j dP ⊙ P) over R rows of n, in place over dP (g, rows ldg apart; P rows ldp
 * apart), the R row sums interleaved. */
TGT_INLINE void softmax_bwd_body(const int R, float *g, size_t ldg, const float *p, size_t ldp,
                                 int n)
{
    const int nf = n & ~15;
    const __mmask16 m = tail_mask(n - nf);
    __m512 dot[MR];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) dot[r] = _mm512_setzero_ps();
    for (int j = 0; j < nf; j += 16)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            dot[r] = _mm512_fmadd_ps(_mm512_loadu_ps(g + r * ldg + j),
                                     _mm512_loadu_ps(p + r * ldp + j), dot[r]);
    if (m)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            dot[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, g + r * ldg + nf),
                                     _mm512_maskz_loadu_ps(m, p + r * ldp + nf), dot[r]);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) dot[r] = _mm512_set1_ps(_mm512_reduce_add_ps(dot[r]));
    for (int j = 0; j < nf; j += 16)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(g + r * ldg + j), dot[r]);
            _mm512_storeu_ps(g + r * ldg + j, _mm512_mul_ps(_mm512_loadu_ps(p + r * ldp + j), d));
        }
    if (m)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, g + r * ldg + nf), dot[r]);
            _mm512_mask_storeu_ps(g + r * ldg + nf, m,
                                  _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + r * ldp + nf), d));
        }
}

TGT static void softmax_bwd_rows(float *g, size_t ldg, const float *p, size_t ldp, int R, int n)
{
    if (R == MR) {
        softmax_bwd_body(MR, g, ldg, p, ldp, n);
        return;
    }
    for (int r = 0; r < R; r++) softmax_bwd_body(1, g + r * ldg, ldg, p + r * ldp, ldp, n);
}

/* dst[0, n) = src[0, n). */
TGT static void copy_floats(float *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
    if (i < n) {
        const __mmask16 m = tail_mask((int) (n - i));
        _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
    }
}

/* Rows of a panel: S (dP) for a panel is computed chunk of kᵀ (vᵀ) by chunk, each chunk
 * serving the panel's blocks of MR rows from L1. */
#define PANEL (4 * MR)

/* Prefetch rows [i0, i0 + R) of the next pair's q, k and v (k, v at offsets ko, vo from q). */
static void pf_add_qkv_rows(pf_list *pf, const float *q, ptrdiff_t ko, ptrdiff_t vo, int ldqkv,
                            int i0, int R, int Dh)
{
    const float *rows = q + (size_t) i0 * ldqkv;
    pf_add_rows(pf, rows, ldqkv, R, Dh);
    pf_add_rows(pf, rows + ko, ldqkv, R, Dh);
    pf_add_rows(pf, rows + vo, ldqkv, R, Dh);
}

TGT void poa_cpu_attn_avx512_fwd_head(float *out, int ldout, float *P, const float *q,
                                      const float *k, const float *v, int ldqkv, int T, int Dh,
                                      float scale, float *scratch, const float *next_q)
{
    const ptrdiff_t ko = k - q, vo = v - q;
    const size_t Tp = round16(T), Dhp = round16(Dh);
    float *kt = scratch, *vp = kt + region_a(T, Dh), *qp = vp + region_b(T, Dh);
    float *Sb = qp + region_b(T, Dh); /* one panel of S, then P, ld T (PANEL·T ≤ T·Tp) */
    pack_rows(qp, q, ldqkv, T, Dh);
    pack_transposed(kt, k, ldqkv, T, Dh);
    pack_rows(vp, v, ldqkv, T, Dh);
    pf_list pf;
    for (int i0 = 0; i0 < T; i0 += PANEL) {
        const int R = T - i0 < PANEL ? T - i0 : PANEL;
        const int R2 = T - i0 - R < PANEL ? T - i0 - R : PANEL;
        /* fetched meanwhile: the next panel's P and out lines, this panel's rows of the next
         * pair's q, k, v */
        pf.n = pf.next = 0;
        pf_add_span(&pf, P + (size_t) (i0 + R) * T, (size_t) R2 * T);
        pf_add_rows(&pf, out + (size_t) (i0 + R) * ldout, ldout, R2, Dh);
        if (next_q) pf_add_qkv_rows(&pf, next_q, ko, vo, ldqkv, i0, R, Dh);
        /* S into L1-resident scratch, softmax there, o = P v from there, then P out with a
         * copy loop of whole lines */
        gemm_rows(R, T, Dh, qp + i0 * Dhp, Dhp, 1, kt, Tp, Sb, Tp, scale, &pf);
        for (int r = 0; r < R; r += MR)
            softmax_rows(Sb + (size_t) r * Tp, Tp, R - r < MR ? R - r : MR, T);
        gemm_rows(R, Dh, T, Sb, Tp, 1, vp, Dhp, out + (size_t) i0 * ldout, ldout, 1.0f, &pf);
        for (int r = 0; r < R; r++)
            copy_floats(P + (size_t) (i0 + r) * T, Sb + (size_t) r * Tp, (size_t) T);
    }
}

TGT void poa_cpu_attn_avx512_bwd_head(float *dq, float *dk, float *dv, int lddqkv, const float *dO,
                                      int lddout, const float *q, const float *k, const float *v,
                                      int ldqkv, const float *P, int T, int Dh, float scale,
                                      float *scratch, const float *next_q, const float *next_dO)
{
    const ptrdiff_t ko = k - q, vo = v - q;
    const size_t Tp = round16(T), Dhp = round16(Dh);
    float *vt = scratch, *dOp = vt + region_a(T, Dh), *kq = dOp + region_b(T, Dh);
    float *dS = kq + region_b(T, Dh);
    pack_rows(dOp, dO, lddout, T, Dh);
    pack_transposed(vt, v, ldqkv, T, Dh);
    pack_rows(kq, k, ldqkv, T, Dh);
    /* per panel of rows: dP = dO vᵀ, dS = softmax_bwd(dP), dq = scale dS k — reading P a panel
     * ahead, so that P is in L2 for dv */
    pf_list pf;
    for (int i0 = 0; i0 < T; i0 += PANEL) {
        const int R = T - i0 < PANEL ? T - i0 : PANEL;
        const int R2 = T - i0 - R < PANEL ? T - i0 - R : PANEL;
        float *dSi = dS + (size_t) i0 * Tp;
        pf.n = pf.next = 0;
        pf_add_span(&pf, P + (size_t) (i0 + R) * T, (size_t) R2 * T);
        pf_add_rows(&pf, dq + (size_t) (i0 + R) * lddqkv, lddqkv, R2, Dh);
        if (next_q) {
            pf_add_rows(&pf, next_dO + (size_t) i0 * lddout, lddout, R, Dh);
            pf_add_qkv_rows(&pf, next_q, ko, vo, ldqkv, i0, R, Dh);
        }
        gemm_rows(R, T, Dh, dOp + i0 * Dhp, Dhp, 1, vt, Tp, dSi, Tp, 1.0f, &pf);
        for (int r = 0; r < R; r += MR)
            softmax_bwd_rows(dSi + (size_t) r * Tp, Tp, P + (size_t) (i0 + r) * T, T,
                             R - r < MR ? R - r : MR, T);
        gemm_rows(R, Dh, T, dSi, Tp, 1, kq, Dhp, dq + (size_t) i0 * lddqkv, lddqkv, scale, &pf);
    }
    /* dv = Pᵀ dO: a(j, i) = P[i·T + j] */
    gemm_rows(T, Dh, T, P, 1, T, dOp, Dhp, dv, lddqkv, 1.0f, NULL);
    /* dk = scale dSᵀ q: a(j, i) = dS[i·Tp + j] */
    pack_rows(kq, q, ldqkv, T, Dh);
    gemm_rows(T, Dh, T, dS, 1, Tp, kq, Dhp, dk, lddqkv, scale, NULL);
}
#endif
