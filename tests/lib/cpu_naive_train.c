/* cpu_naive_train.c — naive double-precision references of the training ops (poa_train_ops:
 * Σx², softmax, soft-target cross-entropy, the Sinkhorn-Knopp pieces and the official
 * algorithm they compose into, KoLeo, AdamW, EMA), for tests only (see cpu_naive.h).  Written
 * straight from the formulas of backend.h and docs/algorithm.md, one value at a time. */
#include "tests/lib/cpu_naive.h"
#include "common/poa_error.h"

#include <math.h>
#include <stdlib.h>

double poa_naive_sum_squares(const double *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}

/* log Σ_k exp(a_k), max subtracted */
static double log_sum_exp(const double *a, int K)
{
    double mx = -INFINITY, s = 0;
    for (int k = 0; k < K; k++) mx = a[k] > mx ? a[k] : mx;
    for (int k = 0; k < K; k++) s += exp(a[k] - mx);
    return mx + log(s);
}

void poa_naive_softmax_rows(double *y, int ldy, const double *x, int ldx, int n, int K,
                            double inv_tau)
{
    double *a = poa_xmalloc(sizeof(double) * (size_t) (K > 0 ? K : 1));
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < K; k++) a[k] = x[(size_t) i * ldx + k] * inv_tau;
        const double lse = log_sum_exp(a, K);
        for (int k = 0; k < K; k++) y[(size_t) i * ldy + k] = exp(a[k] - lse);
    }
    free(a);
}

double poa_naive_xent(double *ds, int ldds, const double *s, int lds, const double *t, int ldt,
                      int t_period, int t_shift, const double *w, int n, int K, double inv_tau,
                      double loss_scale, double grad_scale)
{
    double total = 0, *a = poa_xmalloc(sizeof(double) * (size_t) (K > 0 ? K : 1));
    for (int i = 0; i < n; i++) {
        const double *ti = t + (size_t) ((i + t_shift) % t_period) * ldt;
        const double wi = w ? w[i] : 1.0;
        for (int k = 0; k < K; k++) a[k] = s[(size_t) i * lds + k] * inv_tau;
        const double lse = log_sum_exp(a, K);
        double ce = 0, tsum = 0;
        for (int k = 0; k < K; k++) ce -= ti[k] * (a[k] - lse), tsum += ti[k];
        total += wi * ce;
        if (!ds) continue;
        for (int k = 0; k < K; k++)
            ds[(size_t) i * ldds + k] +=
                grad_scale * wi * inv_tau * (exp(a[k] - lse) * tsum - ti[k]);
    }
    free(a);
    return loss_scale * total;
}

/* ------------------------------------------------------------------------ Sinkhorn-Knopp */
void poa_naive_col_max(double *mx, const double *x, int ldx, int n, int K)
{
    for (int k = 0; k < K; k++) {
        mx[k] = -INFINITY;
        for (int i = 0; i < n; i++) mx[k] = fmax(mx[k], x[(size_t) i * ldx + k]);
    }
}

void poa_naive_sk_exp(double *q, int ldq, double *psum, const double *x, int ldx, const double *mx,
                      int n, int K, double inv_tau)
{
    for (int k = 0; k < K; k++) {
        psum[k] = 0;
        for (int i = 0; i < n; i++) {
            const double e = exp((x[(size_t) i * ldx + k] - mx[k]) * inv_tau);
            q[(size_t) i * ldq + k] = e;
            psum[k] += e;
        }
    }
}

void poa_naive_sk_normalize(double *q, int ldq, double *psum_next, const double *psum, int n, int K)
{
    for (int i = 0; i < n; i++) {
        double *qi = q + (size_t) i * ldq, rs = 0;
        for (int k = 0; k < K; k++) qi[k] /= psum[k], rs += qi[k];
        for (int k = 0; k < K; k++) qi[k] /= rs;
    }
    if (!psum_next) return;
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += q[(size_t) i * ldq + k];
        psum_next[k] = s;
    }
}

/* The official algorithm: Q = exp(L/τ)ᵀ / ΣQ, then per iteration rows of Q (prototypes)
 * divided by their sum · K, columns (samples) by their sum · R; the targets are Q · R.     */
void poa_naive_sinkhorn(double *T, const double *L, int R, int K, double inv_tau, int iters)
{
    double *Q = poa_xmalloc(sizeof(double) * (size_t) R * K), tot = 0; /* Q[k·R + r] */
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++)
            tot += Q[(size_t) k * R + r] = exp(L[(size_t) r * K + k] * inv_tau);
    for (size_t i = 0; i < (size_t) R * K; i++) Q[i] /= tot;
    for (int it = 0; it < iters; it++) {
        for (int k = 0; k < K; k++) {
            double s = 0;
            for (int r = 0; r < R; r++) s += Q[(size_t) k * R + r];
            for (int r = 0; r < R; r++) Q[(size_t) k * R + r] /= s * K;
        }
        for (int r = 0; r < R; r++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += Q[(size_t) k * R + r];
            for (int k = 0; k < K; k++) Q[(size_t) k * R + r] /= s * R;
        }
    }
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++) T[(size_t) r * K + k] = Q[(size_t) k * R + r] * R;
    free(Q);
}

/* ------------------------------------------------------------------------ KoLeo */
#define KOLEO_EPS 1e-8

/* Row i of z normalised (F.normalize, eps 1e-8) into x[i·c …]; returns the unclamped norm. */
static double koleo_normalize(double *x, const double *z, int ldz, int i, int c)
{
    double s = 0;
    for (int k = 0; k < c; k++) s += z[(size_t) i * ldz + k] * z[(size_t) i * ldz + k];
    const double norm = sqrt(s), den = fmax(norm, KOLEO_EPS);
    for (int k = 0; k < c; k++) x[(size_t) i * c + k] = z[(size_t) i * ldz + k] / den;
    return norm;
}

/* The nearest neighbour of row i by dot product (the first of equal ones). */
static int koleo_neighbour(const double *x, int n, int c, int i)
{
    int best = -1;
    double bd = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (j == i) continue;
        double d = 0;
        for (int k = 0; k < c; k++) d += x[(size_t) i * c + k] * x[(size_t) j * c + k];
        if (d > bd) bd = d, best = j;
    }
    return best;
}

/* KoLeo = −(1/n) Σ_i log(||x_i − x_nn(i) + eps|| + eps) (torch's pairwise_distance adds eps
 * to the difference); the neighbour choice is constant under differentiation. */
double poa_naive_koleo(double *dz, int lddz, const double *z, int ldz, int n, int c,
                       double loss_scale, double grad_scale)
{
    double *x = poa_xmalloc(sizeof(double) * (size_t) n * c);
    double *dx = poa_xcalloc((size_t) n * c, sizeof(double));
    double *norm = poa_xmalloc(sizeof(double) * (size_t) n), total = 0;
    for (int i = 0; i < n; i++) norm[i] = koleo_normalize(x, z, ldz, i, c);
    for (int i = 0; i < n; i++) {
        const int j = koleo_neighbour(x, n, c, i);
        double s = 0;
        for (int k = 0; k < c; k++) {
            const double diff = x[(size_t) i * c + k] - x[(size_t) j * c + k] + KOLEO_EPS;
            s += diff * diff;
        }
        const double d = sqrt(s);
        total -= log(d + KOLEO_EPS);
        /* ∂(−log(d + eps))/∂x_i = −(x_i − x_j + eps) / (d (d + eps)); the opposite for x_j */
        const double f = -1.0 / (n * d * (d + KOLEO_EPS));
        for (int k = 0; k < c; k++) {
            const double diff = x[(size_t) i * c + k] - x[(size_t) j * c + k] + KOLEO_EPS;
            dx[(size_t) i * c + k] += f * diff;
            dx[(size_t) j * c + k] -= f * diff;
        }
    }
    for (int i = 0; dz && i < n; i++) { /* through the normalisation: (I − x xᵀ)/||z|| */
        const double *xi = x + (size_t) i * c, *gi = dx + (size_t) i * c;
        double dot = 0;
        for (int k = 0; k < c; k++) dot += xi[k] * gi[k];
        for (int k = 0; k < c; k++)
            dz[(size_t) i * lddz + k] +=
                grad_scale *
                (norm[i] > KOLEO_EPS ? (gi[k] - xi[k] * dot) / norm[i] : gi[k] / KOLEO_EPS);
    }
    free(x), free(dx), free(norm);
    return loss_scale * total / n;
}

/* ------------------------------------------------------------------------ optimizer */
/* torch.optim.AdamW: decoupled decay, bias-corrected moments; the clip coefficient of the
 * segment's group scales the gradient. */
void poa_naive_adamw(double *param, double *m, double *v, const double *grad,
                     const poa_optim_seg *segs, int nseg, const poa_adamw_args *a)
{
    const double bc1 = 1 - pow(a->beta1, (double) a->step),
                 bc2 = 1 - pow(a->beta2, (double) a->step);
    for (int s = 0; s < nseg; s++) {
        const poa_optim_seg *sg = &segs[s];
        const double lr = (sg->last_layer ? a->last_layer_lr : a->lr) * sg->lr_mult;
        const double wd = a->wd * sg->wd_mult, gs = a->grad_scale[sg->clip_group];
        for (uint64_t i = sg->offset; i < sg->offset + sg->numel; i++) {
            const double g = grad[i] * gs;
            param[i] *= 1 - lr * wd;
            m[i] = a->beta1 * m[i] + (1 - a->beta1) * g;
            v[i] = a->beta2 * v[i] + (1 - a->beta2) * g * g;
            param[i] -= lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + a->eps);
        }
    }
}

void poa_naive_ema(double *t, const double *s, size_t n, double m)
{
    for (size_t i = 0; i < n; i++) t[i] = m * t[i] + (1 - m) * s[i];
}
