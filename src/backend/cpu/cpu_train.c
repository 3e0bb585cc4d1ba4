/* cpu_train.c — reductions, softmax and soft-target cross-entropy of the CPU backend, and the
 * poa_train_ops table (the other ops live in cpu_train_sk.c and cpu_train_optim.c).
 * Rows are processed in parallel; sums over a row are accumulated in double. */
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_train_impl.h"
#include "common/poa_error.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Σ x² with four double accumulators per thread (a single chain is latency-bound). */
static double cpu_sum_squares(poa_backend *be, const float *x, size_t n)
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
    return s;
}

/* A float is NaN or Inf exactly when its exponent bits are all ones: an integer test that
 * vectorises. */
static int cpu_all_finite(poa_backend *be, const float *x, size_t n)
{
    (void) be;
    unsigned bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return !bad;
}

static float row_max_scaled(const float *x, int K, float inv_tau)
{
    float mx = -INFINITY;
    for (int k = 0; k < K; k++) {
        float a = x[k] * inv_tau;
        if (a > mx) mx = a;
    }
    return mx;
}

/* log Σ_k exp(x_k·inv_tau), max-subtracted. */
static double row_logsumexp(const float *x, int K, float inv_tau)
{
    float mx = row_max_scaled(x, K, inv_tau);
    double s = 0;
    for (int k = 0; k < K; k++) s += expf(x[k] * inv_tau - mx);
    return (double) mx + log(s);
}

static void cpu_softmax_rows(poa_backend *be, float *y, int ldy, const float *x, int ldx, int n,
                             int K, float inv_tau)
{
    (void) be;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t) i * ldx;
        float *yi = y + (size_t) i * ldy;
        float mx = row_max_scaled(xi, K, inv_tau);
        double s = 0;
        for (int k = 0; k < K; k++) {
            yi[k] = expf(xi[k] * inv_tau - mx);
            s += yi[k];
        }
        float r = (float) (1.0 / s);
        for (int k = 0; k < K; k++) yi[k] *= r;
    }
}

/* ce = lse·Σt − Σ t·a with a = s·inv_tau; the gradient w.r.t. s is
 * inv_tau·(softmax(a)·Σt − t) (log-softmax backward with upstream −t). */
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
        double wi = w ? w[i] : 1.0;
        double lse = row_logsumexp(si, K, inv_tau);
        double tsum = 0, ta = 0;
        for (int k = 0; k < K; k++) {
            tsum += ti[k];
            ta += (double) ti[k] * (si[k] * inv_tau);
        }
        total += wi * (lse * tsum - ta);
        if (!ds) continue;
        float *dsi = ds + (size_t) i * ldds;
        float g = (float) (grad_scale * wi * inv_tau);
        float lsef = (float) lse, tsumf = (float) tsum;
        for (int k = 0; k < K; k++) dsi[k] += g * (expf(si[k] * inv_tau - lsef) * tsumf - ti[k]);
    }
    if (loss) *loss += loss_scale * total;
}

const poa_train_ops poa_cpu_train_ops = {
    .sum_squares = cpu_sum_squares,
    .all_finite = cpu_all_finite,
    .softmax_rows = cpu_softmax_rows,
    .xent = cpu_xent,
    .col_max = poa_cpu_col_max,
    .sk_exp = poa_cpu_sk_exp,
    .sk_normalize = poa_cpu_sk_normalize,
    .koleo = poa_cpu_koleo,
    .koleo_scratch = poa_cpu_koleo_scratch,
    .adamw = poa_cpu_adamw,
    .ema = poa_cpu_ema,
};
