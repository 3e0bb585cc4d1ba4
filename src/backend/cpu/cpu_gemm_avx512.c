/* cpu_gemm_avx512.c — an AVX-512 sgemm for the layer GEMMs of the CPU backend.
 *
 * Why not BLAS: on one core this kernel and OpenBLAS 0.3.21 (SkylakeX kernels) are equally
 * fast — 100–135 GFLOP/s on the ViT layer shapes in a training step, 150–160 on cache-resident
 * data, the core's FMA peak (BLIS 0.9 skx was no faster) — but the CPU backend splits every GEMM
 * over its OpenMP threads itself, and with BLAS that meant one single-threaded call per thread
 * on a fixed half of the rows: each thread packed all of B, and a thread whose vCPU the host
 * slowed held the other at the end.  Here the threads pack each B block once, together, and take
 * the rows 12 at a time (ViT-S steps on two threads 9–14 % faster, src/model/README.md).  And a
 * kernel of our own lets the backend choose it by N and K alone, so that a row's result never
 * depends on how many rows (images) share the call.
 *
 * The structure is the classic blocked one (Goto; BLIS's loop order), written for row-major C
 * with the vector lanes along N:
 *
 *   for each K block (kc ≤ 384):  for each N block (nc ≤ 768):
 *     pack B[kc, nc] into NR-column micro-panels, k-major       (shared, ≤ 1.2 MB: stays in L2)
 *     for each MR-row micro-panel of A (threads take them dynamically):
 *       pack A[MR, kc] k-major unless op(A) is row-major         (per thread, 18 KB)
 *       for each micro-panel of B: C[MR, NR] (+)= alpha · A · Bp  (the micro-kernel)
 *
 * The micro-kernel keeps the 12 × 32 tile of C in 24 zmm accumulators; per k it loads two
 * vectors of B (from L2: 128 bytes per 24 FMAs) and broadcasts 12 values of A.  The B pack makes
 * both layouts of B look the same to it, zero-pads ragged edges so it always runs whole vectors,
 * and turns strided rows into one contiguous stream; a row-major op(A) is read in place (its
 * 12 × kc block is reused across all B micro-panels, so a pack would only add a pass).  Only the
 * C stores of a ragged tile are masked; C + alpha·acc is one FMA rounding, as in OpenBLAS.  A
 * linear layer's bias is added in the same store (first K block), so C is written without being
 * read and no separate pass broadcasts the bias into C beforehand.
 *
 * Load balance: the A micro-panels are handed out one at a time (dynamic schedule); with few rows
 * (the heads' class tokens) the B micro-panels are shared out too.  Which thread computes a tile
 * never changes its arithmetic: results do not depend on the thread count.
 *
 * Memory: the shared B pack lives in a buffer owned by the calling thread, allocated on its
 * first GEMM (at most 1.2 MB) and kept; the A pack is on each thread's stack.  Nothing is
 * allocated per call after the first.
 *
 * Every function carries target("avx512f") instead of the file being compiled with -mavx512f:
 * the library stays baseline x86-64, and cpu_nn.c calls in only after
 * poa_cpu_avx512_chosen() (cpu_avx512_math.h). */
#include "backend/cpu/cpu_gemm_avx512.h"
#include "backend/cpu/cpu_avx512_math.h"
#include "common/poa_error.h"

#ifdef POA_CPU_GEMM_AVX512
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>

#define TGT          __attribute__((target("avx512f")))
#define TGT_NOINLINE __attribute__((noinline, target("avx512f")))
#define TGT_INLINE   static inline __attribute__((always_inline, target("avx512f")))

enum {
    MR = 12,      /* rows of the register tile (broadcast operand) */
    NR = 32,      /* columns of the register tile: two zmm */
    KC_MAX = 384, /* depth of a block: the A micro-panel (MR × kc floats) stays in L1 */
    NC_MAX = 768, /* width of a block: the B pack (kc × nc floats) stays in L2 */
};

static __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16) 0xFFFF : n <= 0 ? (__mmask16) 0 : (__mmask16) ((1u << n) - 1);
}

/* Lane l: l · ld, the gather offsets (in floats) of 16 rows ld floats apart. */
TGT_INLINE __m512i row_offsets(size_t ld)
{
    return _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int) ld));
}

/* ------------------------------------------------------------------------ micro-kernel */
/* C[mr, nr] = alpha · Σ_k a(r, k) Bp[k, :] + cbeta · C + bias (C not read when cbeta is 0;
 * bias: nr values added to every row, or NULL), a(r, k) = A[r·rs + k·ks];
 * Bp: [kc][NR], 64-byte aligned and zero-padded.  mr ≤ MR, nr ≤ NR: the rows and columns of
 * C that exist; A must have all MR rows.  rs and ks are constants in the packed instance. */
TGT_INLINE void kernel_body(int kc, const float *restrict A, size_t rs, size_t ks,
                            const float *restrict Bp, float *restrict C, size_t ldc, float alpha,
                            float cbeta, const float *bias, int mr, int nr)
{
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    /* Ask for the tile of C now; it is read (or written) after the k loop. */
    for (int r = 0; r < mr; r++) {
        _mm_prefetch((const char *) (C + (size_t) r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *) (C + (size_t) r * ldc + 16), _MM_HINT_T0);
    }
    for (int k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16);
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            const __m512 a = _mm512_set1_ps(A[r * rs]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
        A += ks;
        Bp += NR;
    }
    const __m512 al = _mm512_set1_ps(alpha), cb = _mm512_set1_ps(cbeta);
    const __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
    /* The bias is what C would hold had it been broadcast into C first: the same rounding. */
    const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        if (r >= mr) break;
        float *c = C + (size_t) r * ldc;
        /* C + alpha·acc in one rounding (an FMA), as OpenBLAS's kernels store */
        __m512 c0 = b0, c1 = b1;
        if (cbeta != 0.0f) {
            c0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, c), cb, b0);
            c1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, c + 16), cb, b1);
        }
        _mm512_mask_storeu_ps(c, m0, _mm512_fmadd_ps(acc[r][0], al, c0));
        _mm512_mask_storeu_ps(c + 16, m1, _mm512_fmadd_ps(acc[r][1], al, c1));
    }
}

/* A packed as Ap[k][MR] (zero-padded rows past mr). */
TGT_NOINLINE static void kernel_packed(int kc, const float *Ap, const float *Bp, float *C,
                                       size_t ldc, float alpha, float cbeta, const float *bias,
                                       int mr, int nr)
{
    kernel_body(kc, Ap, 1, MR, Bp, C, ldc, alpha, cbeta, bias, mr, nr);
}

/* A read in place from MR whole rows lda apart (a row-major op(A)): the MR × kc block is
 * reused from L1 across the B micro-panels, so packing it would only add a pass. */
TGT_NOINLINE static void kernel_rows(int kc, const float *A, size_t lda, const float *Bp, float *C,
                                     size_t ldc, float alpha, float cbeta, const float *bias,
                                     int nr)
{
    kernel_body(kc, A, lda, 1, Bp, C, ldc, alpha, cbeta, bias, MR, nr);
}

/* ------------------------------------------------------------------------ packing */
/* One NR-column micro-panel of op(B) rows [0, kc), columns [0, nr): dst[k][c], zero past nr.
 * B points at op(B)[k0, j0]. */
TGT_NOINLINE static void pack_b_panel(int tb, int kc, int nr, const float *B, size_t ldb,
                                      float *dst)
{
    const __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
    if (!tb) { /* op(B)[k, c] = B[k·ldb + c]: rows of B are rows of the panel */
        for (int k = 0; k < kc; k++, B += ldb, dst += NR) {
            _mm512_store_ps(dst, _mm512_maskz_loadu_ps(m0, B));
            _mm512_store_ps(dst + 16, _mm512_maskz_loadu_ps(m1, B + 16));
        }
        return;
    }
    /* op(B)[k, c] = B[c·ldb + k]: gather column k of the nr stored rows. */
    const __m512i idx = row_offsets(ldb);
    const float *B16 = B + 16 * ldb;
    for (int k = 0; k < kc; k++, dst += NR) {
        _mm512_store_ps(dst, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m0, idx, B + k, 4));
        _mm512_store_ps(dst + 16,
                        m1 ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m1, idx, B16 + k, 4)
                           : _mm512_setzero_ps());
    }
}

/* One MR-row micro-panel of op(A) rows [0, mr), columns [0, kc): dst[k][r], zero past mr.
 * A points at op(A)[i0, k0]. */
TGT_NOINLINE static void pack_a_panel(int ta, int kc, int mr, const float *A, size_t lda,
                                      float *dst)
{
    const __mmask16 m = lanes(mr), keep = lanes(MR);
    if (ta) { /* op(A)[r, k] = A[k·lda + r]: MR contiguous floats per k */
        for (int k = 0; k < kc; k++, A += lda, dst += MR)
            _mm512_mask_storeu_ps(dst, keep, _mm512_maskz_loadu_ps(m, A));
        return;
    }
    /* op(A)[r, k] = A[r·lda + k]: gather column k of the mr rows. */
    const __m512i idx = row_offsets(lda);
    for (int k = 0; k < kc; k++, dst += MR)
        _mm512_mask_storeu_ps(dst, keep,
                              _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, A + k, 4));
}

/* ------------------------------------------------------------------------ driver */
typedef struct gemm_args {
    int ta, tb, M, N, K;
    float alpha;
    const float *A, *B;
    size_t lda, ldb, ldc;
    float *C;
    float beta;        /* C's factor in the first K block (the later ones add onto C) */
    const float *bias; /* N values added to every row of C in the first K block, or NULL */
    int kc, nc;        /* nominal block sizes (the last block of each may be smaller) */
    float *Bp;         /* shared B pack, kc × nc floats, 64-byte aligned */
} gemm_args;

static const float *a_at(const gemm_args *g, int i, int k)
{
    return g->ta ? g->A + (size_t) k * g->lda + i : g->A + (size_t) i * g->lda + k;
}

static const float *b_at(const gemm_args *g, int k, int j)
{
    return g->tb ? g->B + (size_t) j * g->ldb + k : g->B + (size_t) k * g->ldb + j;
}

/* Work items per A micro-panel: with few rows (the heads' class tokens) the B micro-panels are
 * shared out too, so that every thread gets a few items.  Which thread computes a tile never
 * changes its arithmetic. */
static int column_groups(int rows, int panels, int threads)
{
    const int want = 4 * threads;
    if (threads <= 1 || rows >= want) return 1;
    const int g = (want + rows - 1) / rows;
    return g < panels ? g : panels;
}

/* One (K block, N block): pack B cooperatively, then the A micro-panels, dynamically.  Called
 * by every thread of the team (orphaned worksharing; each loop ends with a barrier). */
TGT static void run_block(const gemm_args *g, int k0, int kc, int j0, int nc, float *Ap)
{
    const int panels = (nc + NR - 1) / NR, rows = (g->M + MR - 1) / MR;
#pragma omp for schedule(static)
    for (int p = 0; p < panels; p++) {
        const int j = j0 + p * NR, nr = nc - p * NR < NR ? nc - p * NR : NR;
        pack_b_panel(g->tb, kc, nr, b_at(g, k0, j), g->ldb, g->Bp + (size_t) p * kc * NR);
    }
    const float cbeta = k0 > 0 ? 1.0f : g->beta;
    const float *bias = k0 == 0 && g->bias ? g->bias + j0 : NULL;
    const int groups = column_groups(rows, panels, omp_get_num_threads());
#pragma omp for schedule(dynamic, 1)
    for (int item = 0; item < rows * groups; item++) {
        const int ib = item / groups, grp = item % groups;
        const int i = ib * MR, mr = g->M - i < MR ? g->M - i : MR;
        const int in_place = !g->ta && mr == MR; /* whole rows of a row-major op(A) */
        if (!in_place) pack_a_panel(g->ta, kc, mr, a_at(g, i, k0), g->lda, Ap);
        float *c = g->C + (size_t) i * g->ldc + j0;
        const int p_end = (grp + 1) * panels / groups;
        for (int p = grp * panels / groups; p < p_end; p++) {
            const int nr = nc - p * NR < NR ? nc - p * NR : NR;
            const float *bp = g->Bp + (size_t) p * kc * NR, *b = bias ? bias + p * NR : NULL;
            if (in_place)
                kernel_rows(kc, a_at(g, i, k0), g->lda, bp, c + p * NR, g->ldc, g->alpha, cbeta, b,
                            nr);
            else
                kernel_packed(kc, Ap, bp, c + p * NR, g->ldc, g->alpha, cbeta, b, mr, nr);
        }
    }
}

TGT static void run_all_blocks(const gemm_args *g)
{
    float Ap[MR * KC_MAX] __attribute__((aligned(64)));
    for (int k0 = 0; k0 < g->K; k0 += g->kc) {
        const int kc = g->K - k0 < g->kc ? g->K - k0 : g->kc;
        for (int j0 = 0; j0 < g->N; j0 += g->nc) {
            const int nc = g->N - j0 < g->nc ? g->N - j0 : g->nc;
            run_block(g, k0, kc, j0, nc, Ap);
        }
    }
}

/* Blocks of at most `cap` of `n`, as even as possible, rounded up to `align`. */
static int even_block(int n, int cap, int align)
{
    const int count = (n + cap - 1) / cap;
    const int b = (n + count - 1) / count;
    return (b + align - 1) / align * align;
}

/* The calling thread's B pack buffer (grown on demand; kept for the thread's life). */
static float *b_pack_buffer(size_t floats)
{
    static _Thread_local float *buf;
    static _Thread_local size_t cap;
    if (floats > cap) {
        free(buf);
        buf = aligned_alloc(64, floats * sizeof(float));
        POA_CHECK(buf != NULL, "out of host memory allocating the GEMM's %zu-byte pack buffer",
                  floats * sizeof(float));
        cap = floats;
    }
    return buf;
}

void poa_cpu_gemm_avx512(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, const float *bias, float *C, int ldc,
                         int threads)
{
    gemm_args g = {
        .ta = ta, .tb = tb, .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta, .bias = bias};
    g.A = A, g.B = B, g.C = C;
    g.lda = (size_t) lda, g.ldb = (size_t) ldb, g.ldc = (size_t) ldc;
    g.kc = even_block(K, KC_MAX, 1), g.nc = even_block(N, NC_MAX, NR);
    g.Bp = b_pack_buffer((size_t) g.kc * g.nc); /* ≤ 1.2 MB, once per calling thread */
#pragma omp parallel num_threads(threads) if (threads > 1)
    run_all_blocks(&g);
}
#endif
