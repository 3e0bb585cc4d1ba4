/* cpu_nn_tokens.c — token preparation (docs/algorithm.md §2.2): patch unfolding, bicubic resampling
 * of the position-embedding grid (docs/algorithm.md §2.3) and the assembly of [cls | patches] +
 * pos. */
#include "backend/cpu/cpu_nn.h"
#include "common/poa_error.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define ELEMS_PARALLEL_MIN 65536

/* ------------------------------------------------------------------------ patch unfolding */
/* cols[(b·gh + py)·gw + px, (c·P + i)·P + j] = img[b, c, py·P + i, px·P + j]: the order in which
 * a [D, C, P, P] convolution weight flattens, so the patch embedding is one GEMM. */
void poa_cpu_patch_unfold(poa_backend *be, float *cols, const float *img, int B, int C, int Hi,
                          int Wi, int P)
{
    (void) be;
    const int gh = Hi / P, gw = Wi / P, rowlen = C * P * P;
    const int grid_rows = B * gh;
#pragma omp parallel for schedule(static) if ((double) B * C * Hi * Wi > ELEMS_PARALLEL_MIN)
    for (int bp = 0; bp < grid_rows; bp++) {
        const int b = bp / gh, py = bp % gh;
        for (int px = 0; px < gw; px++) {
            float *dst = cols + ((size_t) bp * gw + px) * rowlen;
            for (int c = 0; c < C; c++)
                for (int i = 0; i < P; i++) {
                    const float *src =
                        img + (((size_t) b * C + c) * Hi + (size_t) py * P + i) * Wi + px * P;
                    memcpy(dst + (c * P + i) * P, src, sizeof(float) * (size_t) P);
                }
        }
    }
}

/* ------------------------------------------------------------------------ pos resampling */
/* The four taps and weights of one output index along one axis (docs/algorithm.md §2.3),
 * reproducing PyTorch's fp32 CPU bicubic weights bit for bit (checked against torch 1.13 on
 * x86-64 by pushing one-hot inputs through F.interpolate; see tests/reference/pos_resample_ref.py):
 *   ratio = (float)(1 / s) with s = (n_out + 0.1) / n_in in double (the Python scale factor);
 *   src = ratio · (o + 0.5) − 0.5 in double, not clamped (cubic);
 *   i0 = min(floor(src), n_in − 1), t = (float)(src − i0) clamped to [0, 1];
 *   Keys kernel, A = −0.75, in float with the fused multiply-adds of torch's AVX2 build;
 *   taps i0 − 1 … i0 + 2 clamped into [0, n_in − 1] (edge replication). */
typedef struct cubic_taps {
    int idx[4];
    float w[4];
} cubic_taps;

/* Separate statements and no contraction: only the fmaf() calls below are fused, whatever the
 * compiler flags. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_FP_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define NO_FP_CONTRACT
#endif

NO_FP_CONTRACT static float cubic_near(float x, float A) /* |x| ≤ 1: ((A+2)x − (A+3)) x² + 1 */
{
    const float u = fmaf(A + 2, x, -(A + 3));
    const float v = u * x;
    const float r = v * x;
    return r + 1;
}

NO_FP_CONTRACT static float cubic_far(float x, float A) /* 1 < |x| < 2 */
{
    const float u = fmaf(A, x, -5 * A);
    const float v = fmaf(u, x, 8 * A);
    const float r = v * x;
    return r - 4 * A;
}

NO_FP_CONTRACT static cubic_taps cubic_taps_of(int o, int n_in, int n_out)
{
    const double s = ((double) n_out + 0.1) / (double) n_in;
    const float ratio = (float) (1.0 / s);
    const double src = (double) ratio * (o + 0.5) - 0.5;
    int i0 = (int) floor(src);
    if (i0 > n_in - 1) i0 = n_in - 1;
    float t = (float) (src - i0);
    t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
    const float A = -0.75f;
    cubic_taps ct;
    ct.w[0] = cubic_far(t + 1.0f, A);
    ct.w[1] = cubic_near(t, A);
    const float t2 = 1.0f - t;
    ct.w[2] = cubic_near(t2, A);
    ct.w[3] = cubic_far(t2 + 1.0f, A);
    for (int j = 0; j < 4; j++) {
        int k = i0 - 1 + j;
        ct.idx[j] = k < 0 ? 0 : k > n_in - 1 ? n_in - 1 : k;
    }
    return ct;
}

/* Largest target grid side handled with stack tables. */
#define POS_MAX_SIDE 512

/* dst[(oy·w0 + ox), c] = Σ_i wy_i (Σ_j wx_j src[(iy_i·M + ix_j), c]) for c < d, summed in that
 * order (PyTorch's separable evaluation: columns first, then rows). */
void poa_cpu_pos_resample_fwd(poa_backend *be, float *dst, int ldd, const float *src, int lds,
                              int M, int h0, int w0, int d)
{
    (void) be;
    POA_CHECK(h0 <= POS_MAX_SIDE && w0 <= POS_MAX_SIDE && M > 0, "grid %dx%d from %d", h0, w0, M);
    cubic_taps ty[POS_MAX_SIDE], tx[POS_MAX_SIDE];
    for (int o = 0; o < h0; o++) ty[o] = cubic_taps_of(o, M, h0);
    for (int o = 0; o < w0; o++) tx[o] = cubic_taps_of(o, M, w0);
    const int outputs = h0 * w0;
#pragma omp parallel for schedule(static) if ((double) outputs * d > ELEMS_PARALLEL_MIN)
    for (int op = 0; op < outputs; op++) {
        const cubic_taps *cy = &ty[op / w0], *cx = &tx[op % w0];
        float *out = dst + (size_t) op * ldd;
        for (int i = 0; i < 4; i++) {
            const float *r0 = src + ((size_t) cy->idx[i] * M + cx->idx[0]) * lds;
            const float *r1 = src + ((size_t) cy->idx[i] * M + cx->idx[1]) * lds;
            const float *r2 = src + ((size_t) cy->idx[i] * M + cx->idx[2]) * lds;
            const float *r3 = src + ((size_t) cy->idx[i] * M + cx->idx[3]) * lds;
            const float wy = cy->w[i];
            const float wx0 = cx->w[0], wx1 = cx->w[1], wx2 = cx->w[2], wx3 = cx->w[3];
            if (i == 0) {
#pragma omp simd
                for (int c = 0; c < d; c++)
                    out[c] = (r0[c] * wx0 + r1[c] * wx1 + r2[c] * wx2 + r3[c] * wx3) * wy;
            } else {
#pragma omp simd
                for (int c = 0; c < d; c++)
                    out[c] += (r0[c] * wx0 + r1[c] * wx1 + r2[c] * wx2 + r3[c] * wx3) * wy;
            }
        }
    }
}

/* The exact adjoint: dsrc[tap] += (ddst · wy) · wx.  Threads own channel blocks, so taps
 * shared by neighbouring outputs never race and the order is deterministic. */
void poa_cpu_pos_resample_bwd(poa_backend *be, float *dsrc, int lds, const float *ddst, int ldd,
                              int M, int h0, int w0, int d)
{
    (void) be;
    POA_CHECK(h0 <= POS_MAX_SIDE && w0 <= POS_MAX_SIDE && M > 0, "grid %dx%d from %d", h0, w0, M);
    cubic_taps ty[POS_MAX_SIDE], tx[POS_MAX_SIDE];
    for (int o = 0; o < h0; o++) ty[o] = cubic_taps_of(o, M, h0);
    for (int o = 0; o < w0; o++) tx[o] = cubic_taps_of(o, M, w0);
    const int blk = poa_cpu_column_block(d), nblk = (d + blk - 1) / blk;
#pragma omp parallel for schedule(static) if ((double) h0 * w0 * d > ELEMS_PARALLEL_MIN)
    for (int ib = 0; ib < nblk; ib++) {
        const int c0 = ib * blk, nc = c0 + blk < d ? blk : d - c0;
        for (int op = 0; op < h0 * w0; op++) {
            const cubic_taps *cy = &ty[op / w0], *cx = &tx[op % w0];
            const float *g = ddst + (size_t) op * ldd + c0;
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    float *ds = dsrc + ((size_t) cy->idx[i] * M + cx->idx[j]) * lds + c0;
                    const float wy = cy->w[i], wx = cx->w[j];
#pragma omp simd
                    for (int c = 0; c < nc; c++) ds[c] += (g[c] * wy) * wx;
                }
        }
    }
}

/* ------------------------------------------------------------------------ token assembly */
void poa_cpu_tokens_fwd(poa_backend *be, float *x, int ldx, const float *emb, int ldemb,
                        const float *cls, const float *pos, int ldpos, const float *mask_token,
                        const uint8_t *mask, int B, int N, int d)
{
    (void) be;
    const int T = N + 1, rows = B * T;
#pragma omp parallel for schedule(static) if ((double) rows * d > ELEMS_PARALLEL_MIN)
    for (int r = 0; r < rows; r++) {
        const int b = r / T, t = r % T;
        const float *p = pos + (size_t) t * ldpos, *e;
        if (t == 0)
            e = cls;
        else if (mask && mask[(size_t) b * N + t - 1])
            e = mask_token;
        else
            e = emb + ((size_t) b * N + t - 1) * ldemb;
        float *xr = x + (size_t) r * ldx;
#pragma omp simd
        for (int c = 0; c < d; c++) xr[c] = e[c] + p[c];
    }
}

/* Parameter gradients of one column block [c0, c0 + nc): dpos[t] += Σ_b dx[b, t];
 * dcls += Σ_b dx[b, 0]; dmask_token += Σ over masked (b, n) of dx[b, 1 + n]. */
static void tokens_param_grad_block(float *dcls, float *dpos, int ldpos, float *dmask_token,
                                    const float *dx, int lddx, const uint8_t *mask, int B, int N,
                                    int c0, int nc)
{
    const int T = N + 1;
    double am[POA_CPU_COL_BLOCK] = {0};
    for (int t = 0; t < T; t++) {
        double ap[POA_CPU_COL_BLOCK] = {0};
        for (int b = 0; b < B; b++) {
            const float *g = dx + ((size_t) b * T + t) * lddx + c0;
#pragma omp simd
            for (int c = 0; c < nc; c++) ap[c] += g[c];
            if (dmask_token && t > 0 && mask && mask[(size_t) b * N + t - 1]) {
#pragma omp simd
                for (int c = 0; c < nc; c++) am[c] += g[c];
            }
        }
        if (dpos)
            for (int c = 0; c < nc; c++) dpos[(size_t) t * ldpos + c0 + c] += (float) ap[c];
        if (dcls && t == 0)
            for (int c = 0; c < nc; c++) dcls[c0 + c] += (float) ap[c];
    }
    if (dmask_token && mask)
        for (int c = 0; c < nc; c++) dmask_token[c0 + c] += (float) am[c];
}

void poa_cpu_tokens_bwd(poa_backend *be, float *demb, int lddemb, float *dcls, float *dpos,
                        int ldpos, float *dmask_token, const float *dx, int lddx,
                        const uint8_t *mask, int B, int N, int d)
{
    (void) be;
    const int T = N + 1, patches = B * N;
    const int blk = poa_cpu_column_block(d), nblk = (d + blk - 1) / blk;
#pragma omp parallel if ((double) B * T * d > ELEMS_PARALLEL_MIN)
    {
        if (demb) {
#pragma omp for schedule(static)
            for (int r = 0; r < patches; r++) {
                float *de = demb + (size_t) r * lddemb;
                if (mask && mask[r]) {
                    memset(de, 0, sizeof(float) * (size_t) d);
                } else {
                    const int b = r / N, n = r % N;
                    memcpy(de, dx + ((size_t) b * T + 1 + n) * lddx, sizeof(float) * (size_t) d);
                }
            }
        }
        if (dcls || dpos || dmask_token) {
#pragma omp for schedule(static)
            for (int ib = 0; ib < nblk; ib++) {
                const int c0 = ib * blk, nc = c0 + blk < d ? blk : d - c0;
                tokens_param_grad_block(dcls, dpos, ldpos, dmask_token, dx, lddx, mask, B, N, c0,
                                        nc);
            }
        }
    }
}
