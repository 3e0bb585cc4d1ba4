/* cpu_train.c — reductions, softmax and soft-target cross-entropy of the CPU backend, and the
 * poa_train_ops table (the other ops live in cpu_train_sk.c and cpu_train_optim.c).
 * Rows are processed in parallel, each by a vectorised per-row kernel (cpu_simd.h: one clone
 * per ISA, libmvec's vector expf); a sum over a row (K up to 65,536 prototypes) is accumulated
 * in fp32 vector lanes over chunks of POA_CPU_SUM_CHUNK values and the chunk sums in double. */
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_simd.h"
#include "backend/cpu/cpu_train_impl.h"
#include "common/poa_error.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Σ x² with four double accumulators per thread (a single chain is latency-bound).  A NaN or
 * Inf makes the sum non-finite: the step's guard needs no pass of its own. */
static void cpu_sum_squares(poa_backend *be, double *out, const float *x, size_t n)
{
    (void) be;
    double s = 0;
    const long long n4 = (long long) (n / 4);
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > 65536)
    for (long long j = 0; j < n4; j++) {
        const float *q = x + 4 * j;
        s += ((double) q[0] * q[0] + (double) q[1] * q[1]) +
             ((double) q[2] * q[2] + (double) q[3] * q[3]);
    }
    for (size_t i = 4 * (size_t) n4; i < n; i++) s += (double) x[i] * x[i];
    *out = s;
}

/* max_k x_k·inv_tau (a NaN is skipped, as by a scalar `if (a > mx)`; an all-NaN row gives
 * −inf and the row's results come out NaN). */
POA_CPU_INLINE float row_max_scaled(const float *x, int K, float inv_tau)
{
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int k = 0; k < K; k++) {
        const float a = x[k] * inv_tau;
        mx = a > mx ? a : mx;
    }
    return mx;
}

POA_CPU_INLINE int chunk_end(int k0, int K)
{
    return K - k0 > POA_CPU_SUM_CHUNK ? k0 + POA_CPU_SUM_CHUNK : K;
}

/* y = softmax(x·inv_tau) of one row, max-subtracted: y_k = exp(a_k − m) / Σ_j exp(a_j − m). */
POA_CPU_CLONES static void softmax_row(float *y, const float *x, int K, float inv_tau)
{
    const float mx = row_max_scaled(x, K, inv_tau);
    double s = 0;
    for (int k0 = 0; k0 < K; k0 += POA_CPU_SUM_CHUNK) {
        const int k1 = chunk_end(k0, K);
        float part = 0;
#pragma omp simd reduction(+ : part)
        for (int k = k0; k < k1; k++) {
            y[k] = expf(x[k] * inv_tau - mx);
            part += y[k];
        }
        s += part;
    }
    const float r = (float) (1.0 / s);
#pragma omp simd
    for (int k = 0; k < K; k++) y[k] *= r;
}

static void cpu_softmax_rows(poa_backend *be, float *y, int ldy, const float *x, int ldx, int n,
                             int K, float inv_tau)
{
    (void) be;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) softmax_row(y + (size_t) i * ldy, x + (size_t) i * ldx, K, inv_tau);
}

/* One row of cpu_xent.  With a = s·inv_tau and m = max a, the cross-entropy
 * ce = −Σ_k t_k·log_softmax(a)_k = lse·Σt − Σ t·a is formed as
 *   ce = log(Σ_k exp(a_k − m))·Σt + Σ_k t_k·(m − a_k),
 * two non-negative terms for t ≥ 0 (no cancellation between lse·Σt and Σ t·a when |m| is
 * large).  The gradient w.r.t. s, scaled by g, is added to ds (if not NULL):
 * g·(softmax(a)·Σt − t) (log-softmax backward with upstream −t), softmax(a)_k = exp(a_k − lse). */
POA_CPU_CLONES static double xent_row(float *ds, const float *s, const float *t, int K,
                                      float inv_tau, float g)
{
    const float mx = row_max_scaled(s, K, inv_tau);
    double se = 0, tsum = 0, td = 0;
    for (int k0 = 0; k0 < K; k0 += POA_CPU_SUM_CHUNK) {
        const int k1 = chunk_end(k0, K);
        float pe = 0, pt = 0, ptd = 0;
#pragma omp simd reduction(+ : pe, pt, ptd)
        for (int k = k0; k < k1; k++) {
            const float d = s[k] * inv_tau - mx; /* a_k − m ≤ 0 */
            pe += expf(d);
            pt += t[k];
            ptd += t[k] * d;
        }
        se += pe;
        tsum += pt;
        td += ptd;
    }
    const double lse_m = log(se); /* lse − m */
    if (ds) {
        const float lsef = (float) ((double) mx + lse_m), tsumf = (float) tsum;
#pragma omp simd
        for (int k = 0; k < K; k++) ds[k] += g * (expf(s[k] * inv_tau - lsef) * tsumf - t[k]);
    }
    return lse_m * tsum - td;
}

/* Σ_i w_i·ce_i and ds_i += grad_scale·w_i·inv_tau·(softmax(a_i)·Σt_i − t_i) (xent_row). */
static void cpu_xent(poa_backend *be, double *loss, float *ds, int ldds, const float *s, int lds,
                     const float *t, int ldt, int t_period, int t_shift, const float *w, int n,
                     int K, float inv_tau, float loss_scale, float grad_scale)
{
    (void) be;
    POA_ASSERT(t_period >= 1 && t_shift >= 0);
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int i = 0; i < n; i++) {
        const float *si = s + (size_t) i * lds;
        const float *ti = t + (size_t) ((i + t_shift) % t_period) * ldt;
        const double wi = w ? w[i] : 1.0;
        float *dsi = ds ? ds + (size_t) i * ldds : NULL;
        total += wi * xent_row(dsi, si, ti, K, inv_tau, (float) (grad_scale * wi * inv_tau));
    }
    if (loss) *loss += loss_scale * total;
}

const poa_train_ops poa_cpu_train_ops = {
    .sum_squares = cpu_sum_squares,
    .softmax_rows = cpu_softmax_rows,
    .xent = cpu_xent,
    .col_max = poa_cpu_col_max,
    .sk_exp = poa_cpu_sk_exp,
    .sk_normalize = poa_cpu_sk_normalize,
    .koleo = poa_cpu_koleo,
    .koleo_scratch_bytes = poa_cpu_koleo_scratch_bytes,
    .adamw = poa_cpu_adamw,
    .ema = poa_cpu_ema,
};
