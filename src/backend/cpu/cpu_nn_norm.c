/* cpu_nn_norm.c — LayerNorm (docs/algorithm.md §2.4), the DINO head's L2 normalisation and weight
 * normalisation (docs/algorithm.md §5.1).  Row statistics are accumulated in double; rows are
 * spread over the OpenMP threads, parameter gradients over column blocks (race-free,
 * deterministic). */
#include "backend/cpu/cpu_nn.h"
#include "backend/cpu/cpu_simd.h"
#include "common/poa_error.h"

#include <math.h>
#include <omp.h>

#define ROWS_PARALLEL_MIN 65536 /* elements: below, a fork/join costs more than it saves */

POA_CPU_INLINE double row_sum(const float *x, int n)
{
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < n; c++) s += x[c];
    return s;
}

POA_CPU_INLINE double row_sum_sq_dev(const float *x, int n, double mu)
{
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < n; c++) {
        double t = x[c] - mu;
        s += t * t;
    }
    return s;
}

POA_CPU_INLINE double row_dot(const float *a, const float *b, int n)
{
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < n; c++) s += (double) a[c] * b[c];
    return s;
}

/* ------------------------------------------------------------------------ LayerNorm */
/* y = (x − mean) · rstd · w + b over the first d features; biased variance; rstd =
 * 1/sqrt(var + eps) (docs/algorithm.md §2.4; eps = 1e-6 in POA). */
POA_CPU_CLONES static void layernorm_fwd_rows(float *y, int ldy, float *mean, float *rstd,
                                              const float *x, int ldx, const float *w,
                                              const float *b, int d, float eps, int r0, int r1)
{
    for (int r = r0; r < r1; r++) {
        const float *xr = x + (size_t) r * ldx;
        float *yr = y + (size_t) r * ldy;
        const double mu = row_sum(xr, d) / d;
        const double var = row_sum_sq_dev(xr, d, mu) / d;
        const float m = (float) mu, rs = (float) (1.0 / sqrt(var + (double) eps));
        mean[r] = m;
        rstd[r] = rs;
#pragma omp simd
        for (int c = 0; c < d; c++) yr[c] = (xr[c] - m) * rs * w[c] + b[c];
    }
}

void poa_cpu_layernorm_fwd(poa_backend *be, float *y, int ldy, float *mean, float *rstd,
                           const float *x, int ldx, const float *w, const float *b, int rows, int d,
                           float eps)
{
    (void) be;
#pragma omp parallel if ((double) rows * d > ROWS_PARALLEL_MIN)
    {
        size_t lo, hi;
        poa_cpu_share((size_t) rows, 1, &lo, &hi);
        layernorm_fwd_rows(y, ldy, mean, rstd, x, ldx, w, b, d, eps, (int) lo, (int) hi);
    }
}

/* dx (= or +=) rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)) with g = dy ⊙ w, x̂ = (x − mean) · rstd.
 * Accumulating here saves the residual stream a separate add pass. */
POA_CPU_CLONES static void layernorm_bwd_rows(float *dx, int lddx, int accumulate, const float *dy,
                                              int lddy, const float *x, int ldx, const float *mean,
                                              const float *rstd, const float *w, int d, int r0,
                                              int r1)
{
    for (int r = r0; r < r1; r++) {
        float *dxr = dx + (size_t) r * lddx;
        const float *dyr = dy + (size_t) r * lddy, *xr = x + (size_t) r * ldx;
        const float m = mean[r], rs = rstd[r];
        double sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
        for (int c = 0; c < d; c++) {
            const float g = dyr[c] * w[c], xh = (xr[c] - m) * rs;
            sg += g;
            sgx += (double) g * xh;
        }
        const float mg = (float) (sg / d), mgx = (float) (sgx / d);
        if (accumulate) {
#pragma omp simd
            for (int c = 0; c < d; c++) {
                const float xh = (xr[c] - m) * rs;
                dxr[c] += rs * (dyr[c] * w[c] - mg - xh * mgx);
            }
        } else {
#pragma omp simd
            for (int c = 0; c < d; c++) {
                const float xh = (xr[c] - m) * rs;
                dxr[c] = rs * (dyr[c] * w[c] - mg - xh * mgx);
            }
        }
    }
}

/* dw[c] += Σ_r dy x̂, db[c] += Σ_r dy over the columns [c0, c0 + nc) (nc ≤ POA_CPU_COL_SPAN). */
POA_CPU_CLONES static void layernorm_param_grad_span(float *dw, float *db, const float *dy,
                                                     int lddy, const float *x, int ldx,
                                                     const float *mean, const float *rstd, int rows,
                                                     int c0, int nc)
{
    double aw[POA_CPU_COL_SPAN], ab[POA_CPU_COL_SPAN];
    float pw[POA_CPU_COL_SPAN], pb[POA_CPU_COL_SPAN];
    for (int c = 0; c < nc; c++) aw[c] = 0, ab[c] = 0;
    for (int r0 = 0; r0 < rows; r0 += POA_CPU_ROW_CHUNK) {
        const int r1 = r0 + POA_CPU_ROW_CHUNK < rows ? r0 + POA_CPU_ROW_CHUNK : rows;
        for (int c = 0; c < nc; c++) pw[c] = 0, pb[c] = 0;
        for (int r = r0; r < r1; r++) {
            const float *g = dy + (size_t) r * lddy + c0, *xr = x + (size_t) r * ldx + c0;
            const float m = mean[r], rs = rstd[r];
#pragma omp simd
            for (int c = 0; c < nc; c++) {
                pw[c] += g[c] * ((xr[c] - m) * rs);
                pb[c] += g[c];
            }
        }
#pragma omp simd
        for (int c = 0; c < nc; c++) {
            aw[c] += pw[c];
            ab[c] += pb[c];
        }
    }
    for (int c = 0; c < nc; c++) {
        if (dw) dw[c0 + c] += (float) aw[c];
        if (db) db[c0 + c] += (float) ab[c];
    }
}

void poa_cpu_layernorm_bwd(poa_backend *be, float *dx, int lddx, float dx_beta, float *dw,
                           float *db, const float *dy, int lddy, const float *x, int ldx,
                           const float *mean, const float *rstd, const float *w, int rows, int d)
{
    (void) be;
    POA_ASSERT(dx_beta == 0.0f || dx_beta == 1.0f);
    const int accumulate = dx_beta != 0.0f;
#pragma omp parallel if ((double) rows * d > ROWS_PARALLEL_MIN)
    {
        if (dx) {
            size_t lo, hi;
            poa_cpu_share((size_t) rows, 1, &lo, &hi);
            layernorm_bwd_rows(dx, lddx, accumulate, dy, lddy, x, ldx, mean, rstd, w, d, (int) lo,
                               (int) hi);
        }
        if (dx && (dw || db)) {
#pragma omp barrier /* as the omp for this replaced: dx complete before the column sums */
        }
        if (dw || db) {
            size_t lo, hi;
            poa_cpu_share((size_t) d, 16, &lo, &hi);
            for (size_t c0 = lo; c0 < hi; c0 += POA_CPU_COL_SPAN) {
                const size_t nc = hi - c0 < POA_CPU_COL_SPAN ? hi - c0 : POA_CPU_COL_SPAN;
                layernorm_param_grad_span(dw, db, dy, lddy, x, ldx, mean, rstd, rows, (int) c0,
                                          (int) nc);
            }
        }
    }
}

/* ------------------------------------------------------------------------ L2 normalisation */
/* y = x / max(||x||, eps) (F.normalize; docs/algorithm.md §5.1 uses eps = 1e-12).
 * norms = ||x||. */
void poa_cpu_l2norm_fwd(poa_backend *be, float *y, int ldy, float *norms, const float *x, int ldx,
                        int rows, int cols, float eps)
{
    (void) be;
#pragma omp parallel for schedule(static) if ((double) rows * cols > ROWS_PARALLEL_MIN)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t) r * ldx;
        float *yr = y + (size_t) r * ldy;
        const float n = (float) sqrt(row_dot(xr, xr, cols));
        const float den = n > eps ? n : eps;
        norms[r] = n;
#pragma omp simd
        for (int c = 0; c < cols; c++) yr[c] = xr[c] / den;
    }
}

/* n ≥ eps: dx = dy/n − x (x·dy)/n³;  n < eps (clamped, constant denominator): dx = dy/eps. */
void poa_cpu_l2norm_bwd(poa_backend *be, float *dx, int lddx, const float *dy, int lddy,
                        const float *x, int ldx, const float *norms, int rows, int cols, float eps)
{
    (void) be;
#pragma omp parallel for schedule(static) if ((double) rows * cols > ROWS_PARALLEL_MIN)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t) r * ldx, *gr = dy + (size_t) r * lddy;
        float *dxr = dx + (size_t) r * lddx;
        const double n = norms[r];
        if (n >= eps) {
            const float inv = (float) (1.0 / n);
            const float coef = (float) (row_dot(xr, gr, cols) / (n * n * n));
#pragma omp simd
            for (int c = 0; c < cols; c++) dxr[c] = gr[c] * inv - xr[c] * coef;
        } else {
#pragma omp simd
            for (int c = 0; c < cols; c++) dxr[c] = gr[c] / eps;
        }
    }
}

/* ------------------------------------------------------------------------ weight norm */
/* W[k,:] = v[k,:] · (g[k] / ||v[k,:]||) (torch._weight_norm order of operations). */
void poa_cpu_weightnorm_fwd(poa_backend *be, float *W, float *vnorm, const float *g, const float *v,
                            int K, int C)
{
    (void) be;
#pragma omp parallel for schedule(static) if ((double) K * C > ROWS_PARALLEL_MIN)
    for (int k = 0; k < K; k++) {
        const float *vk = v + (size_t) k * C;
        float *Wk = W + (size_t) k * C;
        const float n = (float) sqrt(row_dot(vk, vk, C));
        const float f = g[k] / n;
        vnorm[k] = n;
#pragma omp simd
        for (int c = 0; c < C; c++) Wk[c] = vk[c] * f;
    }
}

/* dg[k] += (dW_k·v_k)/n;  dv_k += (g/n) dW_k − g (dW_k·v_k)/n³ v_k. */
void poa_cpu_weightnorm_bwd(poa_backend *be, float *dg, float *dv, const float *dW, const float *g,
                            const float *v, const float *vnorm, int K, int C)
{
    (void) be;
#pragma omp parallel for schedule(static) if ((double) K * C > ROWS_PARALLEL_MIN)
    for (int k = 0; k < K; k++) {
        const float *vk = v + (size_t) k * C, *gk = dW + (size_t) k * C;
        const double n = vnorm[k], dot = row_dot(gk, vk, C);
        if (dg) dg[k] += (float) (dot / n);
        if (!dv) continue;
        float *dvk = dv + (size_t) k * C;
        const float a = (float) (g[k] / n), b = (float) (g[k] * dot / (n * n * n));
#pragma omp simd
        for (int c = 0; c < C; c++) dvk[c] += a * gk[c] - b * vk[c];
    }
}
