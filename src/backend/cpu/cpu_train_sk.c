/* cpu_train_sk.c — Sinkhorn-Knopp pieces (spec §4.1) and KoLeo (spec §4.6) of the CPU backend.
 * Matrices are [n samples, K prototypes] row-major; per-prototype (column) work is split over
 * threads by column ranges so that every thread streams whole rows segments. */
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_train_impl.h"
#include "common/poa_error.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Column range [k0, k1) of thread `tid` out of `nt` (multiples of 16 columns). */
static void column_range(int K, int tid, int nt, int *k0, int *k1)
{
    int chunks = (K + 15) / 16;
    int per = (chunks + nt - 1) / nt;
    *k0 = tid * per * 16 < K ? tid * per * 16 : K;
    *k1 = (tid + 1) * per * 16 < K ? (tid + 1) * per * 16 : K;
}

#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID()  omp_get_thread_num()
#define THREAD_NUM() omp_get_num_threads()
#else
#define THREAD_ID()  0
#define THREAD_NUM() 1
#endif

void poa_cpu_col_max(poa_backend *be, double *mx, const float *x, int ldx, int n, int K)
{
    (void) be;
#pragma omp parallel
    {
        int k0, k1;
        column_range(K, THREAD_ID(), THREAD_NUM(), &k0, &k1);
        for (int k = k0; k < k1; k++) mx[k] = -INFINITY;
        for (int i = 0; i < n; i++) {
            const float *xi = x + (size_t) i * ldx;
            for (int k = k0; k < k1; k++)
                if (xi[k] > mx[k]) mx[k] = xi[k];
        }
    }
}

void poa_cpu_sk_exp(poa_backend *be, float *q, int ldq, double *psum, const float *x, int ldx,
                    const double *mx, int n, int K, float inv_tau)
{
    (void) be;
#pragma omp parallel
    {
        int k0, k1;
        column_range(K, THREAD_ID(), THREAD_NUM(), &k0, &k1);
        for (int k = k0; k < k1; k++) psum[k] = 0;
        for (int i = 0; i < n; i++) {
            const float *xi = x + (size_t) i * ldx;
            float *qi = q + (size_t) i * ldq;
            for (int k = k0; k < k1; k++) {
                qi[k] = expf((xi[k] - (float) mx[k]) * inv_tau);
                psum[k] += qi[k];
            }
        }
    }
}

void poa_cpu_sk_normalize(poa_backend *be, float *q, int ldq, double *psum_next, const double *psum,
                          int n, int K)
{
    (void) be;
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++) {
            float *qi = q + (size_t) i * ldq;
            double rs = 0;
            for (int k = 0; k < K; k++) {
                qi[k] = (float) (qi[k] / psum[k]);
                rs += qi[k];
            }
            float r = (float) (1.0 / rs);
            for (int k = 0; k < K; k++) qi[k] *= r;
        }
        if (psum_next) {
            int k0, k1;
            column_range(K, THREAD_ID(), THREAD_NUM(), &k0, &k1);
            for (int k = k0; k < k1; k++) psum_next[k] = 0;
            for (int i = 0; i < n; i++) {
                const float *qi = q + (size_t) i * ldq;
                for (int k = k0; k < k1; k++) psum_next[k] += qi[k];
            }
        }
    }
}

/* ---------------------------------------------------------------------------- KoLeo */

#define KOLEO_EPS 1e-8f /* F.normalize eps, PairwiseDistance eps and the log eps (spec §4.6) */

size_t poa_cpu_koleo_scratch(int n, int c)
{
    return (size_t) n * c * 2 + (size_t) n * 4;
}

/* Nearest neighbour by cosine: argmax_{j≠i} <x_i, x_j>, ties → smallest j.  Starts from the
 * first other row so that NaN features (every comparison false) still give a valid index and
 * the loss comes out NaN for the step's non-finite guard, instead of reading row −1. */
static int nearest_other(const float *x, int n, int c, int i)
{
    int best = i == 0 ? 1 : 0;
    double best_dot = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (j == i) continue;
        double d = 0;
        for (int k = 0; k < c; k++) d += (double) x[(size_t) i * c + k] * x[(size_t) j * c + k];
        if (d > best_dot) best_dot = d, best = j;
    }
    return best;
}

void poa_cpu_koleo(poa_backend *be, double *loss, float *dz, int lddz, const float *z, int ldz,
                   int n, int c, float loss_scale, float grad_scale, float *scratch)
{
    (void) be;
    POA_ASSERT(n >= 2);
    float *x = scratch;                   /* [n, c] normalised rows          */
    float *dx = x + (size_t) n * c;       /* [n, c] gradient w.r.t. x        */
    float *norm = dx + (size_t) n * c;    /* [n] ||z_i||                     */
    float *dist = norm + n;               /* [n]                             */
    float *coef = dist + n;               /* [n] dL/ddiff_i = coef_i·diff_i  */
    int32_t *nn = (int32_t *) (coef + n); /* [n] nearest neighbour          */

    for (int i = 0; i < n; i++) {
        const float *zi = z + (size_t) i * ldz;
        double s = 0;
        for (int k = 0; k < c; k++) s += (double) zi[k] * zi[k];
        norm[i] = (float) sqrt(s);
        float den = norm[i] > KOLEO_EPS ? norm[i] : KOLEO_EPS;
        for (int k = 0; k < c; k++) x[(size_t) i * c + k] = zi[k] / den;
    }
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int i = 0; i < n; i++) {
        nn[i] = nearest_other(x, n, c, i);
        const float *xi = x + (size_t) i * c, *xj = x + (size_t) nn[i] * c;
        double s = 0;
        for (int k = 0; k < c; k++) {
            float diff = xi[k] - xj[k] + KOLEO_EPS;
            s += (double) diff * diff;
        }
        dist[i] = (float) sqrt(s);
        total += -log((double) dist[i] + KOLEO_EPS);
        /* d(−log(dist+eps))/d diff = −diff / ((dist+eps)·dist); zero where dist = 0 */
        coef[i] =
            dist[i] > 0
                ? (float) (-(double) grad_scale / n / (((double) dist[i] + KOLEO_EPS) * dist[i]))
                : 0.0f;
    }
    if (loss) *loss += loss_scale * total / n;
    if (!dz) return;

    memset(dx, 0, sizeof(float) * (size_t) n * c);
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t) i * c, *xj = x + (size_t) nn[i] * c;
        float *dxi = dx + (size_t) i * c, *dxj = dx + (size_t) nn[i] * c;
        for (int k = 0; k < c; k++) {
            float g = coef[i] * (xi[k] - xj[k] + KOLEO_EPS);
            dxi[k] += g;
            dxj[k] -= g;
        }
    }
    /* through x = z / max(||z||, eps): dz = dx/den − z·(dx·z)/(den²·||z||) when ||z|| ≥ eps */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *zi = z + (size_t) i * ldz;
        const float *dxi = dx + (size_t) i * c;
        float *dzi = dz + (size_t) i * lddz;
        double den = norm[i] > KOLEO_EPS ? norm[i] : KOLEO_EPS;
        double proj = 0;
        if (norm[i] >= KOLEO_EPS) {
            for (int k = 0; k < c; k++) proj += (double) dxi[k] * zi[k];
            proj /= den * den * norm[i];
        }
        for (int k = 0; k < c; k++) dzi[k] += (float) (dxi[k] / den - zi[k] * proj);
    }
}
