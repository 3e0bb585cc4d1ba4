/* bench_loss_ops.c — wall time of the CPU backend's loss ops (backend.h, poa_train_ops) at the
 * sizes of one head of the ViT-B step (bench_step --config vit_base --batch 2): n rows (151:
 * the 20 class-token rows of 2 global + 8 local crops per image and the 131 masked patch rows)
 * × K prototypes (65,536); make bench-loss-ops.
 *
 * usage: bench_loss_ops [--rows N] [--k K] [--reps R]
 * Prints the median over R repetitions of: xent with its gradient, xent (loss only),
 * softmax_rows, and one Sinkhorn-Knopp run (col_max, sk_exp, 3 × sk_normalize), each in ms; and
 * the relative error of the xent loss against a double-precision reference, as one line
 * `RESULT rows=… K=… reps=… xent_grad_ms=… xent_ms=… softmax_rows_ms=… sk_ms=… xent_rel_err=…`
 * (sk: col_max + sk_exp + 3 × sk_normalize).  Student logits
 * are uniform in [−2, 2] (τ = 0.1), targets random rows summing to 1, SK logits uniform in
 * [−1, 1] (τ = 0.07).  Threads: OMP_NUM_THREADS.
 */
#include "backend/backend.h"
#include "common/cli.h"
#include "common/timer.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPS 64

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform01(void) /* xorshift64 */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double) (rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double median_ms(double *t, int n)
{
    qsort(t, (size_t) n, sizeof *t, cmp_double);
    return 1e3 * t[n / 2];
}

/* Σ_i −Σ_k t_ik log_softmax(s_i·inv_tau)_k in double. */
static double reference_xent(const float *s, const float *t, int n, int K, double inv_tau)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        const float *si = s + (size_t) i * K, *ti = t + (size_t) i * K;
        double mx = -INFINITY, se = 0, ce = 0;
        for (int k = 0; k < K; k++) mx = fmax(mx, si[k] * inv_tau);
        for (int k = 0; k < K; k++) se += exp(si[k] * inv_tau - mx);
        const double lse = mx + log(se);
        for (int k = 0; k < K; k++) ce -= ti[k] * (si[k] * inv_tau - lse);
        total += ce;
    }
    return total;
}

static const poa_cli_option options[] = {
    {"rows", 0, "N", "rows of the score matrix (default 151)"},
    {"k", 0, "K", "prototypes (default 65536)"},
    {"reps", 0, "R", "timed repetitions (default 7, at most 64)"},
};
static const poa_cli_spec spec = {
    .program = "bench_loss_ops",
    .summary = "Wall time of the loss ops at one ViT-B head's sizes; make bench-loss-ops.",
    .options = options,
    .n_options = (int) (sizeof options / sizeof options[0]),
};

int main(int argc, char **argv)
{
    poa_cli cli;
    poa_err cli_err = {0};
    int n, K, reps;
    int rc = poa_cli_main_setup(&spec, argc, argv, &cli, NULL, 1, &cli_err);
    if (rc < 0 && (poa_cli_int(&cli, &spec, "rows", 151, 1, INT_MAX, &n, &cli_err) != POA_OK ||
                   poa_cli_int(&cli, &spec, "k", 65536, 1, INT_MAX, &K, &cli_err) != POA_OK ||
                   poa_cli_int(&cli, &spec, "reps", 7, 1, MAX_REPS, &reps, &cli_err) != POA_OK))
        rc = poa_cli_usage_error(&spec, "%s", cli_err.msg);
    poa_cli_free(&cli);
    if (rc >= 0) return rc;
    char err[256];
    poa_backend *be = poa_backend_create("cpu", NULL, err, sizeof err);
    if (!be) {
        fprintf(stderr, "bench_loss_ops: %s\n", err);
        return 1;
    }
    const size_t sz = (size_t) n * K;
    float *s = be->iface->alloc(be, sizeof(float) * sz),
          *t = be->iface->alloc(be, sizeof(float) * sz);
    float *ds = be->iface->alloc(be, sizeof(float) * sz),
          *q = be->iface->alloc(be, sizeof(float) * sz);
    float *x = be->iface->alloc(be, sizeof(float) * sz);
    double *loss = be->iface->alloc(be, sizeof(double)),
           *mx = be->iface->alloc(be, sizeof(double) * K),
           *psum = be->iface->alloc(be, sizeof(double) * K);
    for (int i = 0; i < n; i++) {
        double rs = 0;
        for (int k = 0; k < K; k++) {
            const size_t at = (size_t) i * K + k;
            s[at] = (float) (4 * uniform01() - 2);
            x[at] = (float) (2 * uniform01() - 1);
            rs += t[at] = (float) uniform01();
        }
        for (int k = 0; k < K; k++) t[(size_t) i * K + k] /= (float) rs;
    }
    const float inv_ts = 10.0f, inv_tt = 1 / 0.07f;
    double t_grad[MAX_REPS], t_loss[MAX_REPS], t_soft[MAX_REPS], t_sk[MAX_REPS], value = 0;
    for (int r = 0; r < reps; r++) {
        memset(ds, 0, sizeof(float) * sz);
        *loss = 0;
        double t0 = poa_now();
        be->train->xent(be, loss, ds, K, s, K, t, K, n, 0, NULL, n, K, inv_ts, 1.0f, 1.0f);
        t_grad[r] = poa_now() - t0;
        value = *loss;
        t0 = poa_now();
        be->train->xent(be, loss, NULL, K, s, K, t, K, n, 0, NULL, n, K, inv_ts, 1.0f, 1.0f);
        t_loss[r] = poa_now() - t0;
        t0 = poa_now();
        be->train->softmax_rows(be, q, K, s, K, n, K, inv_ts);
        t_soft[r] = poa_now() - t0;
        t0 = poa_now();
        be->train->col_max(be, mx, x, K, n, K);
        be->train->sk_exp(be, q, K, psum, x, K, mx, n, K, inv_tt);
        for (int it = 0; it < 3; it++)
            be->train->sk_normalize(be, q, K, it < 2 ? psum : NULL, psum, mx, n, K);
        t_sk[r] = poa_now() - t0;
    }
    const double ref = reference_xent(s, t, n, K, inv_ts);
    printf("RESULT rows=%d K=%d reps=%d xent_grad_ms=%.2f xent_ms=%.2f softmax_rows_ms=%.2f "
           "sk_ms=%.2f xent_rel_err=%.2e\n",
           n, K, reps, median_ms(t_grad, reps), median_ms(t_loss, reps), median_ms(t_soft, reps),
           median_ms(t_sk, reps), fabs(value - ref) / fabs(ref));
    be->iface->free(be, s);
    be->iface->free(be, t);
    be->iface->free(be, ds);
    be->iface->free(be, q);
    be->iface->free(be, x);
    be->iface->free(be, loss);
    be->iface->free(be, mx);
    be->iface->free(be, psum);
    poa_backend_destroy(be);
    return 0;
}
