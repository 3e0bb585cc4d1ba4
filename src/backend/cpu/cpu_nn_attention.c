/* cpu_nn_attention.c — the transformer block's non-GEMM ops (docs/algorithm.md §2.4): multi-head
 * attention (one (image, head) pair per thread; the AVX-512 kernels of cpu_attn_avx512.c where the
 * CPU has them, else BLAS per pair), exact-erf GELU (the AVX-512 kernels of cpu_gelu_avx512.c, else
 * libmvec's erff) and the LayerScale residual with drop-path scale. */
#include "backend/cpu/cpu_nn.h"
#include "backend/cpu/cpu_avx512_math.h"
#include "backend/cpu/cpu_attn_avx512.h"
#include "backend/cpu/cpu_gelu_avx512.h"
#include "backend/cpu/cpu_simd.h"

#include <math.h>
#include <stdatomic.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ELEMS_PARALLEL_MIN 65536

/* ------------------------------------------------------------------------ GELU */
/* The GELU kernels: the AVX-512 ones of cpu_gelu_avx512.c (erfc-based, ~2× faster on
 * cache-resident data, accurate in the negative tail) where the CPU has AVX-512F, unless
 * POA_CPU_GELU=libm forces the libmvec loops below (the op tests run both; read on every call so
 * that a test can switch). */
static int gelu_avx512(void)
{
#ifdef POA_CPU_GELU_AVX512
    return poa_cpu_avx512_chosen("POA_CPU_GELU", "libm");
#else
    return 0;
#endif
}

const char *poa_cpu_gelu_impl(void)
{
    return gelu_avx512() ? "avx512" : "libm";
}

/* GELU(x) = x · 0.5 · (1 + erf(x/√2)), the order of operations of PyTorch's kernel. */
POA_CPU_CLONES_AVX2 static void gelu_fwd_libm(float *y, const float *x, size_t n)
{
    const float alpha = (float) M_SQRT1_2;
#pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] = x[i] * 0.5f * (1.0f + erff(x[i] * alpha));
}

static void gelu_fwd_span(int avx512, float *y, const float *x, size_t n)
{
#ifdef POA_CPU_GELU_AVX512
    if (avx512) {
        poa_cpu_gelu_avx512_fwd(y, x, n);
        return;
    }
#endif
    (void) avx512;
    gelu_fwd_libm(y, x, n);
}

void poa_cpu_gelu_fwd(poa_backend *be, float *y, const float *x, size_t n)
{
    (void) be;
    const int avx512 = gelu_avx512();
#pragma omp parallel if (n > ELEMS_PARALLEL_MIN)
    {
        size_t lo, hi;
        poa_cpu_share(n, 16, &lo, &hi);
        if (lo < hi) gelu_fwd_span(avx512, y + lo, x + lo, hi - lo);
    }
}

/* GELU'(x) = Φ(x) + x φ(x), Φ(x) = 0.5 (1 + erf(x/√2)), φ(x) = exp(−x²/2)/√(2π).  With y,
 * the same erf also gives the forward x·Φ(x) (PyTorch's order of operations, as gelu_fwd_libm),
 * which the MLP backward needs for fc2's weight gradient: one erf pass instead of two. */
POA_CPU_CLONES_AVX2 static void gelu_bwd_libm(float *dx, float *y, const float *dy, const float *x,
                                              size_t n)
{
    const float alpha = (float) M_SQRT1_2;
    const float beta = (float) (M_2_SQRTPI * M_SQRT1_2 * 0.5);
    if (y) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            const float v = x[i], e = erff(v * alpha);
            const float cdf = 0.5f * (1.0f + e);
            const float pdf = beta * expf(v * v * -0.5f);
            y[i] = v * 0.5f * (1.0f + e);
            dx[i] = dy[i] * (cdf + v * pdf);
        }
        return;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        const float cdf = 0.5f * (1.0f + erff(v * alpha));
        const float pdf = beta * expf(v * v * -0.5f);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

static void gelu_bwd_span(int avx512, float *dx, float *y, const float *dy, const float *x,
                          size_t n)
{
#ifdef POA_CPU_GELU_AVX512
    if (avx512) {
        poa_cpu_gelu_avx512_bwd(dx, y, dy, x, n);
        return;
    }
#endif
    (void) avx512;
    gelu_bwd_libm(dx, y, dy, x, n);
}

void poa_cpu_gelu_bwd(poa_backend *be, float *dx, float *y, const float *dy, const float *x,
                      size_t n)
{
    (void) be;
    const int avx512 = gelu_avx512();
#pragma omp parallel if (n > ELEMS_PARALLEL_MIN)
    {
        size_t lo, hi;
        poa_cpu_share(n, 16, &lo, &hi);
        if (lo < hi) gelu_bwd_span(avx512, dx + lo, y ? y + lo : NULL, dy + lo, x + lo, hi - lo);
    }
}

/* ------------------------------------------------------------------------ residual */
/* x = base + s[b] · (gamma ⊙ y); base may be x itself (in place) or NULL (zero).  An image
 * with s[b] == 0 (dropped by drop path) gets the base only, so its y rows need not have been
 * computed.  Reading the base here saves the block a copy of the stream before each branch. */
POA_CPU_CLONES static void residual_fwd_rows(float *x, int ldx, const float *base, int ldbase,
                                             const float *y, int ldy, const float *gamma,
                                             const float *s, int T, int d, int r0, int r1)
{
    for (int r = r0; r < r1; r++) {
        const float sb = s ? s[r / T] : 1.0f;
        float *xr = x + (size_t) r * ldx;
        const float *br = base ? base + (size_t) r * ldbase : NULL;
        const float *yr = y + (size_t) r * ldy;
        if (sb == 0.0f) {
            if (!br)
                memset(xr, 0, sizeof(float) * (size_t) d);
            else if (br != xr)
                memcpy(xr, br, sizeof(float) * (size_t) d);
        } else if (!br) {
#pragma omp simd
            for (int c = 0; c < d; c++) xr[c] = sb * (gamma[c] * yr[c]);
        } else if (s) {
#pragma omp simd
            for (int c = 0; c < d; c++) xr[c] = br[c] + sb * (gamma[c] * yr[c]);
        } else {
#pragma omp simd
            for (int c = 0; c < d; c++) xr[c] = br[c] + gamma[c] * yr[c];
        }
    }
}

void poa_cpu_residual_ls_fwd(poa_backend *be, float *x, int ldx, const float *base, int ldbase,
                             const float *y, int ldy, const float *gamma, const float *s, int B,
                             int T, int d)
{
    (void) be;
    const int rows = B * T;
#pragma omp parallel if ((double) rows * d > ELEMS_PARALLEL_MIN)
    {
        size_t lo, hi;
        poa_cpu_share((size_t) rows, 1, &lo, &hi);
        residual_fwd_rows(x, ldx, base, ldbase, y, ldy, gamma, s, T, d, (int) lo, (int) hi);
    }
}

/* dgamma[c] += Σ_rows (s[b] dx) y over the columns [c0, c0 + nc) (nc ≤ POA_CPU_COL_SPAN);
 * dropped images contribute 0. */
POA_CPU_CLONES static void residual_dgamma_span(float *dgamma, const float *dx, int lddx,
                                                const float *y, int ldy, const float *s, int B,
                                                int T, int c0, int nc)
{
    double acc[POA_CPU_COL_SPAN];
    float part[POA_CPU_COL_SPAN];
    for (int c = 0; c < nc; c++) acc[c] = 0;
    for (int b = 0; b < B; b++) {
        const float sb = s ? s[b] : 1.0f;
        if (sb == 0.0f) continue;
        for (int t0 = 0; t0 < T; t0 += POA_CPU_ROW_CHUNK) {
            const int t1 = t0 + POA_CPU_ROW_CHUNK < T ? t0 + POA_CPU_ROW_CHUNK : T;
            for (int c = 0; c < nc; c++) part[c] = 0;
            for (int t = t0; t < t1; t++) {
                const size_t r = (size_t) b * T + t;
                const float *g = dx + r * lddx + c0, *yr = y + r * ldy + c0;
#pragma omp simd
                for (int c = 0; c < nc; c++) part[c] += (sb * g[c]) * yr[c];
            }
#pragma omp simd
            for (int c = 0; c < nc; c++) acc[c] += part[c];
        }
    }
    for (int c = 0; c < nc; c++) dgamma[c0 + c] += (float) acc[c];
}

/* dy = (s[b] dx) ⊙ gamma over the rows [r0, r1). */
POA_CPU_CLONES static void residual_dy_rows(float *dy, int lddy, const float *dx, int lddx,
                                            const float *gamma, const float *s, int T, int d,
                                            int r0, int r1)
{
    for (int r = r0; r < r1; r++) {
        const float sb = s ? s[r / T] : 1.0f;
        float *dyr = dy + (size_t) r * lddy;
        const float *g = dx + (size_t) r * lddx;
#pragma omp simd
        for (int c = 0; c < d; c++) dyr[c] = (sb * g[c]) * gamma[c];
    }
}

void poa_cpu_residual_ls_bwd(poa_backend *be, float *dy, int lddy, float *dgamma, const float *dx,
                             int lddx, const float *y, int ldy, const float *gamma, const float *s,
                             int B, int T, int d)
{
    (void) be;
    const int rows = B * T;
#pragma omp parallel if ((double) rows * d > ELEMS_PARALLEL_MIN)
    {
        if (dy) {
            size_t lo, hi;
            poa_cpu_share((size_t) rows, 1, &lo, &hi);
            residual_dy_rows(dy, lddy, dx, lddx, gamma, s, T, d, (int) lo, (int) hi);
        }
        if (dy && dgamma) {
#pragma omp barrier /* as the omp for this replaced: dy complete before dgamma is summed */
        }
        if (dgamma) {
            size_t lo, hi;
            poa_cpu_share((size_t) d, 16, &lo, &hi);
            for (size_t c0 = lo; c0 < hi; c0 += POA_CPU_COL_SPAN) {
                const size_t nc = hi - c0 < POA_CPU_COL_SPAN ? hi - c0 : POA_CPU_COL_SPAN;
                residual_dgamma_span(dgamma, dx, lddx, y, ldy, s, B, T, (int) c0, (int) nc);
            }
        }
    }
}

/* ------------------------------------------------------------------------ attention */
/* In-place numerically stable softmax of each of the T rows of p (ld T): exp(s − max) times
 * the reciprocal of the row sum — PyTorch's order of operations, and like its vectorised
 * kernel (aten/src/ATen/native/cpu/SoftMaxKernel.cpp, _vec_softmax_lastdim) the sum is
 * accumulated in fp32 vector lanes: a double accumulator kept GCC from vectorising the
 * loop, and with it the exp, with no gain in accuracy that the 1e-4 parity needs. */
POA_CPU_CLONES static void softmax_rows(float *p, int T)
{
    for (int i = 0; i < T; i++) {
        float *row = p + (size_t) i * T;
        float mx = row[0];
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < T; j++) mx = row[j] > mx ? row[j] : mx;
        float sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < T; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        const float inv = 1.0f / sum;
#pragma omp simd
        for (int j = 0; j < T; j++) row[j] *= inv;
    }
}

/* Pointers of image b, head h inside the qkv rows [q (H·Dh) | k (H·Dh) | v (H·Dh)]. */
typedef struct head_view {
    const float *q, *k, *v;
} head_view;

static head_view head_of(const float *qkv, int ldqkv, int b, int h, int T, int H, int Dh)
{
    const float *q = qkv + (size_t) b * T * ldqkv + (size_t) h * Dh;
    head_view hv = {q, q + (size_t) H * Dh, q + (size_t) 2 * H * Dh};
    return hv;
}

/* The attention kernels to use: the AVX-512 ones of cpu_attn_avx512.c where the CPU has
 * AVX-512F, unless POA_CPU_ATTN=blas forces the BLAS path (the op test runs both; read on
 * every call so that a test can switch). */
static int attention_avx512(void)
{
#ifdef POA_CPU_ATTN_AVX512
    return poa_cpu_avx512_chosen("POA_CPU_ATTN", "blas");
#else
    return 0;
#endif
}

const char *poa_cpu_attention_impl(void)
{
    return attention_avx512() ? "avx512" : "blas";
}

/* One scratch slot per concurrently processed (image, head) pair; at most this many. */
#define ATTN_MAX_SLOTS 64

static int attention_slots(int B, int H)
{
    return B * H < ATTN_MAX_SLOTS ? B * H : ATTN_MAX_SLOTS;
}

/* Threads of an attention op: one slot each. */
static int attention_team(int B, int H)
{
    const int nt = omp_get_max_threads(), slots = attention_slots(B, H);
    return nt < slots ? nt : slots;
}

/* Floats of one slot: the BLAS backward's [T, T] dS, or the AVX-512 kernels' dS and packs
 * (whichever path runs, so that the size does not depend on the CPU). */
static size_t attention_slot(int T, int Dh)
{
    const size_t blas = (size_t) T * T, avx = poa_cpu_attn_avx512_slot(T, Dh);
    return blas > avx ? blas : avx;
}

/* + 16: room to align the first slot to 64 bytes. */
size_t poa_cpu_attention_scratch(int B, int T, int H, int Dh)
{
    return (size_t) attention_slots(B, H) * attention_slot(T, Dh) + 16;
}

/* Slot t of the scratch (slots are whole multiples of 16 floats). */
static float *attention_slot_of(float *scratch, int T, int Dh, int t)
{
    float *base = (float *) (((uintptr_t) scratch + 63) & ~(uintptr_t) 63);
    return base + (size_t) t * attention_slot(T, Dh);
}

/* BLAS path, one pair: S = scale · q kᵀ, then P = softmax(S) row-wise, then o = P v. */
static void attention_fwd_head(float *out, int ldout, float *probs, const float *qkv, int ldqkv,
                               int b, int h, int T, int H, int Dh, float scale)
{
    const head_view hv = head_of(qkv, ldqkv, b, h, T, H, Dh);
    float *P = probs + ((size_t) b * H + h) * T * T; /* [T, T] */
    poa_cpu_gemm_serial(POA_NO_TRANS, POA_TRANS, T, T, Dh, scale, hv.q, ldqkv, hv.k, ldqkv, 0.0f, P,
                        T);
    softmax_rows(P, T);
    poa_cpu_gemm_serial(POA_NO_TRANS, POA_NO_TRANS, T, Dh, T, 1.0f, P, T, hv.v, ldqkv, 0.0f,
                        out + (size_t) b * T * ldout + (size_t) h * Dh, ldout);
}

/* One attention op's operands, for the per-pair functions below. */
typedef struct attn_op {
    float *out, *probs, *dqkv; /* forward: out, probs; backward: dqkv */
    const float *qkv, *dout, *P;
    int ldout, ldqkv, lddqkv, lddout;
    int B, T, H, Dh, avx;
    float scale;
} attn_op;

/* The operands both directions share. */
static attn_op attn_op_of(const float *qkv, int ldqkv, int B, int T, int H, int Dh, float scale)
{
    attn_op op = {0};
    op.qkv = qkv, op.ldqkv = ldqkv, op.scale = scale, op.avx = attention_avx512();
    op.B = B, op.T = T, op.H = H, op.Dh = Dh;
    return op;
}

/* One (image, head) pair bh; next: the pair this thread computes after it (-1: none). */
typedef void (*attn_pair_fn)(const attn_op *op, int bh, int next, float *scratch);

static int claim_pair(atomic_int *next)
{
    return atomic_fetch_add_explicit(next, 1, memory_order_relaxed);
}

/* Pairs over the threads, one at a time (dynamic: when the host slows one vCPU the other takes
 * more pairs).  The AVX-512 kernels prefetch the next pair's operands while they compute, so a
 * thread claims its next pair before it computes the current one.  Each thread has its scratch
 * slot. */
static void for_each_pair(const attn_op *op, float *scratch, attn_pair_fn fn)
{
    const int pairs = op->B * op->H;
    atomic_int next_pair = 0;
#pragma omp parallel num_threads(attention_team(op->B, op->H)) if (pairs > 1)
    {
        float *scr = attention_slot_of(scratch, op->T, op->Dh, omp_get_thread_num());
        for (int bh = claim_pair(&next_pair), n; bh < pairs; bh = n) {
            n = claim_pair(&next_pair);
            fn(op, bh, n < pairs ? n : -1, scr);
        }
    }
}

static void fwd_pair(const attn_op *op, int bh, int next, float *scratch)
{
    const int H = op->H, T = op->T, Dh = op->Dh, b = bh / H, h = bh % H;
#ifdef POA_CPU_ATTN_AVX512
    if (op->avx) {
        const head_view hv = head_of(op->qkv, op->ldqkv, b, h, T, H, Dh);
        const float *next_q =
            next >= 0 ? head_of(op->qkv, op->ldqkv, next / H, next % H, T, H, Dh).q : NULL;
        poa_cpu_attn_avx512_fwd_head(op->out + (size_t) b * T * op->ldout + (size_t) h * Dh,
                                     op->ldout, op->probs + (size_t) bh * T * T, hv.q, hv.k, hv.v,
                                     op->ldqkv, T, Dh, op->scale, scratch, next_q);
        return;
    }
#endif
    (void) next, (void) scratch;
    attention_fwd_head(op->out, op->ldout, op->probs, op->qkv, op->ldqkv, b, h, T, H, Dh,
                       op->scale);
}

void poa_cpu_attention_fwd(poa_backend *be, float *out, int ldout, float *probs, const float *qkv,
                           int ldqkv, int B, int T, int H, int Dh, float scale, float *scratch)
{
    (void) be;
    attn_op op = attn_op_of(qkv, ldqkv, B, T, H, Dh, scale);
    op.out = out, op.ldout = ldout, op.probs = probs;
    for_each_pair(&op, scratch, fwd_pair);
}

/* dS = P ⊙ (dP − rowsum(dP ⊙ P)), in place over dP (softmax backward).  The row sum is an
 * fp32 vector-lane reduction, as in PyTorch's _vec_softmax_backward. */
POA_CPU_CLONES static void softmax_bwd_rows(float *dP, const float *P, int T)
{
    for (int i = 0; i < T; i++) {
        float *g = dP + (size_t) i * T;
        const float *p = P + (size_t) i * T;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < T; j++) dot += g[j] * p[j];
#pragma omp simd
        for (int j = 0; j < T; j++) g[j] = p[j] * (g[j] - dot);
    }
}

static void attention_bwd_head(float *dqkv, int lddqkv, const float *dout, int lddout,
                               const float *qkv, int ldqkv, const float *probs, int b, int h, int T,
                               int H, int Dh, float scale, float *dS)
{
    const head_view hv = head_of(qkv, ldqkv, b, h, T, H, Dh);
    const float *P = probs + ((size_t) b * H + h) * T * T;
    const float *dO = dout + (size_t) b * T * lddout + (size_t) h * Dh;
    float *dq = dqkv + (size_t) b * T * lddqkv + (size_t) h * Dh;
    float *dk = dq + (size_t) H * Dh, *dv = dq + (size_t) 2 * H * Dh;
    /* dv = Pᵀ dO;  dP = dO vᵀ;  dS = softmax_bwd(dP);  dq = scale dS k;  dk = scale dSᵀ q */
    poa_cpu_gemm_serial(POA_TRANS, POA_NO_TRANS, T, Dh, T, 1.0f, P, T, dO, lddout, 0.0f, dv,
                        lddqkv);
    poa_cpu_gemm_serial(POA_NO_TRANS, POA_TRANS, T, T, Dh, 1.0f, dO, lddout, hv.v, ldqkv, 0.0f, dS,
                        T);
    softmax_bwd_rows(dS, P, T);
    poa_cpu_gemm_serial(POA_NO_TRANS, POA_NO_TRANS, T, Dh, T, scale, dS, T, hv.k, ldqkv, 0.0f, dq,
                        lddqkv);
    poa_cpu_gemm_serial(POA_TRANS, POA_NO_TRANS, T, Dh, T, scale, dS, T, hv.q, ldqkv, 0.0f, dk,
                        lddqkv);
}

static void bwd_pair(const attn_op *op, int bh, int next, float *scratch)
{
    const int H = op->H, T = op->T, Dh = op->Dh, b = bh / H, h = bh % H;
#ifdef POA_CPU_ATTN_AVX512
    if (op->avx) {
        const head_view hv = head_of(op->qkv, op->ldqkv, b, h, T, H, Dh);
        float *dq = op->dqkv + (size_t) b * T * op->lddqkv + (size_t) h * Dh;
        const float *next_q = NULL, *next_dO = NULL;
        if (next >= 0) {
            next_q = head_of(op->qkv, op->ldqkv, next / H, next % H, T, H, Dh).q;
            next_dO = op->dout + (size_t) (next / H) * T * op->lddout + (size_t) (next % H) * Dh;
        }
        poa_cpu_attn_avx512_bwd_head(
            dq, dq + (size_t) H * Dh, dq + (size_t) 2 * H * Dh, op->lddqkv,
            op->dout + (size_t) b * T * op->lddout + (size_t) h * Dh, op->lddout, hv.q, hv.k, hv.v,
            op->ldqkv, op->P + (size_t) bh * T * T, T, Dh, op->scale, scratch, next_q, next_dO);
        return;
    }
#endif
    (void) next;
    attention_bwd_head(op->dqkv, op->lddqkv, op->dout, op->lddout, op->qkv, op->ldqkv, op->P, b, h,
                       T, H, Dh, op->scale, scratch);
}

void poa_cpu_attention_bwd(poa_backend *be, float *dqkv, int lddqkv, const float *dout, int lddout,
                           const float *qkv, int ldqkv, const float *probs, int B, int T, int H,
                           int Dh, float scale, float *scratch)
{
    (void) be;
    attn_op op = attn_op_of(qkv, ldqkv, B, T, H, Dh, scale);
    op.dqkv = dqkv, op.lddqkv = lddqkv, op.dout = dout, op.lddout = lddout, op.P = probs;
    for_each_pair(&op, scratch, bwd_pair);
}
