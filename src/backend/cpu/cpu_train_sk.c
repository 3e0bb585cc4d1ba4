/* cpu_train_sk.c — Sinkhorn-Knopp pieces (docs/algorithm.md §6.2) and KoLeo (docs/algorithm.md
 * §6.7) of the CPU backend. Matrices are [n samples, K prototypes] row-major; per-prototype
 * (column) work is split over threads by column ranges so that every thread streams whole rows
 * segments, and each thread walks its range in spans of POA_CPU_COL_SPAN columns with a vectorised
 * kernel (cpu_simd.h). Column sums are accumulated in fp32 over chunks of POA_CPU_ROW_CHUNK rows
 * and the chunk sums in double (as the layer ops' column sums, cpu_nn.h); row sums as in
 * cpu_train.c. */
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_nn.h"
#include "backend/cpu/cpu_simd.h"
#include "backend/cpu/cpu_train_impl.h"
#include "common/poa_error.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
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

/* mx[c0 + c] = max_i x[i, c0 + c] for c < nc ≤ POA_CPU_COL_SPAN (NaNs skipped). */
POA_CPU_CLONES static void col_max_span(double *mx, const float *x, int ldx, int n, int c0, int nc)
{
    float m[POA_CPU_COL_SPAN];
    for (int c = 0; c < nc; c++) m[c] = -INFINITY;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t) i * ldx + c0;
#pragma omp simd
        for (int c = 0; c < nc; c++) m[c] = xi[c] > m[c] ? xi[c] : m[c];
    }
    for (int c = 0; c < nc; c++) mx[c0 + c] = m[c];
}

void poa_cpu_col_max(poa_backend *be, double *mx, const float *x, int ldx, int n, int K)
{
    (void) be;
#pragma omp parallel
    {
        int k0, k1;
        column_range(K, THREAD_ID(), THREAD_NUM(), &k0, &k1);
        for (int c0 = k0; c0 < k1; c0 += POA_CPU_COL_SPAN)
            col_max_span(mx, x, ldx, n, c0,
                         k1 - c0 < POA_CPU_COL_SPAN ? k1 - c0 : POA_CPU_COL_SPAN);
    }
}

/* q = exp((x − mx)·inv_tau) and psum = Σ_i q over the columns [c0, c0 + nc). */
POA_CPU_CLONES static void sk_exp_span(float *q, int ldq, double *psum, const float *x, int ldx,
                                       const double *mx, int n, int c0, int nc, float inv_tau)
{
    float m[POA_CPU_COL_SPAN], part[POA_CPU_COL_SPAN];
    double acc[POA_CPU_COL_SPAN];
    for (int c = 0; c < nc; c++) m[c] = (float) mx[c0 + c], acc[c] = 0;
    for (int r0 = 0; r0 < n; r0 += POA_CPU_ROW_CHUNK) {
        const int r1 = r0 + POA_CPU_ROW_CHUNK < n ? r0 + POA_CPU_ROW_CHUNK : n;
        for (int c = 0; c < nc; c++) part[c] = 0;
        for (int i = r0; i < r1; i++) {
            const float *xi = x + (size_t) i * ldx + c0;
            float *qi = q + (size_t) i * ldq + c0; /* may be xi (in place) */
#pragma omp simd
            for (int c = 0; c < nc; c++) {
                const float e = expf((xi[c] - m[c]) * inv_tau);
                qi[c] = e;
                part[c] += e;
            }
        }
#pragma omp simd
        for (int c = 0; c < nc; c++) acc[c] += part[c];
    }
    for (int c = 0; c < nc; c++) psum[c0 + c] = acc[c];
}

void poa_cpu_sk_exp(poa_backend *be, float *q, int ldq, double *psum, const float *x, int ldx,
                    const double *mx, int n, int K, float inv_tau)
{
    (void) be;
#pragma omp parallel
    {
        int k0, k1;
        column_range(K, THREAD_ID(), THREAD_NUM(), &k0, &k1);
        for (int c0 = k0; c0 < k1; c0 += POA_CPU_COL_SPAN)
            sk_exp_span(q, ldq, psum, x, ldx, mx, n, c0,
                        k1 - c0 < POA_CPU_COL_SPAN ? k1 - c0 : POA_CPU_COL_SPAN, inv_tau);
    }
}

/* One sample row: q_k = q_k / psum_k (as q_k · (1/psum_k) in double, rounded to float), then
 * the row is scaled to sum 1. */
POA_CPU_CLONES static void sk_normalize_row(float *q, const double *rinv, int K)
{
    double rs = 0;
    for (int k0 = 0; k0 < K; k0 += POA_CPU_SUM_CHUNK) {
        const int k1 = K - k0 > POA_CPU_SUM_CHUNK ? k0 + POA_CPU_SUM_CHUNK : K;
        float part = 0;
#pragma omp simd reduction(+ : part)
        for (int k = k0; k < k1; k++) {
            const float v = (float) (q[k] * rinv[k]);
            q[k] = v;
            part += v;
        }
        rs += part;
    }
    const float r = (float) (1.0 / rs);
#pragma omp simd
    for (int k = 0; k < K; k++) q[k] *= r;
}

/* sum[c0 + c] = Σ_i q[i, c0 + c] for c < nc ≤ POA_CPU_COL_SPAN. */
POA_CPU_CLONES static void col_sum_span(double *sum, const float *q, int ldq, int n, int c0, int nc)
{
    float part[POA_CPU_COL_SPAN];
    double acc[POA_CPU_COL_SPAN];
    for (int c = 0; c < nc; c++) acc[c] = 0;
    for (int r0 = 0; r0 < n; r0 += POA_CPU_ROW_CHUNK) {
        const int r1 = r0 + POA_CPU_ROW_CHUNK < n ? r0 + POA_CPU_ROW_CHUNK : n;
        for (int c = 0; c < nc; c++) part[c] = 0;
        for (int i = r0; i < r1; i++) {
            const float *qi = q + (size_t) i * ldq + c0;
#pragma omp simd
            for (int c = 0; c < nc; c++) part[c] += qi[c];
        }
#pragma omp simd
        for (int c = 0; c < nc; c++) acc[c] += part[c];
    }
    for (int c = 0; c < nc; c++) sum[c0 + c] = acc[c];
}

void poa_cpu_sk_normalize(poa_backend *be, float *q, int ldq, double *psum_next, const double *psum,
                          double *rinv, int n, int K)
{
    (void) be;
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int k = 0; k < K; k++) rinv[k] = 1.0 / psum[k];
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++) sk_normalize_row(q + (size_t) i * ldq, rinv, K);
        if (psum_next) { /* psum_next may be psum: read only before the barrier above */
            int k0, k1;
            column_range(K, THREAD_ID(), THREAD_NUM(), &k0, &k1);
            for (int c0 = k0; c0 < k1; c0 += POA_CPU_COL_SPAN)
                col_sum_span(psum_next, q, ldq, n, c0,
                             k1 - c0 < POA_CPU_COL_SPAN ? k1 - c0 : POA_CPU_COL_SPAN);
        }
    }
}

/* ---------------------------------------------------------------------------- KoLeo */

#define KOLEO_EPS 1e-8f /* F.normalize, PairwiseDistance and log eps (docs/algorithm.md §6.7) */

size_t poa_cpu_koleo_scratch_bytes(const poa_backend *be, int n, int c)
{
    (void) be;
    return ((size_t) n * c * 2 + (size_t) n * 4) * sizeof(float);
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
                   int n, int c, float loss_scale, float grad_scale, void *scratch_bytes)
{
    (void) be;
    POA_ASSERT(n >= 2);
    float *scratch = scratch_bytes;
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
