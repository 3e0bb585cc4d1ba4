/* test_train_ops.c — the CPU backend's training ops (backend.h, poa_train_ops) against naive
 * double-precision references; every op with a backward is also checked against central finite
 * differences of its naive forward. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "common/poa_error.h"
#include "tests/step/step_test_util.h"

#include <math.h>
#include <string.h>

static poa_backend *be;

static int setup(void **state)
{
    (void) state;
    char err[256];
    be = poa_backend_create("cpu", NULL, err, sizeof err);
    return be ? 0 : -1;
}

static int teardown(void **state)
{
    (void) state;
    poa_backend_destroy(be);
    return 0;
}

/* ------------------------------------------------------------------ softmax / cross-entropy */

static double naive_lse(const double *a, int K)
{
    double mx = -INFINITY, s = 0;
    for (int k = 0; k < K; k++) mx = a[k] > mx ? a[k] : mx;
    for (int k = 0; k < K; k++) s += exp(a[k] - mx);
    return mx + log(s);
}

typedef struct xent_case {
    int n, K, ld, t_period, t_shift, use_w;
    float inv_tau, loss_scale, grad_scale;
    const float *t, *w;
} xent_case;

/* loss_scale · Σ_i w_i · (−Σ_k t_ik log_softmax(s_i·inv_tau)_k) in double */
static double naive_xent(const xent_case *c, const double *s)
{
    double total = 0, *a = malloc(sizeof(double) * c->K);
    for (int i = 0; i < c->n; i++) {
        const float *ti = c->t + (size_t) ((i + c->t_shift) % c->t_period) * c->ld;
        for (int k = 0; k < c->K; k++) a[k] = s[(size_t) i * c->ld + k] * c->inv_tau;
        double lse = naive_lse(a, c->K), ce = 0;
        for (int k = 0; k < c->K; k++) ce -= ti[k] * (a[k] - lse);
        total += (c->use_w ? c->w[i] : 1.0) * ce;
    }
    free(a);
    return c->loss_scale * total;
}

static void run_softmax_case(int N, int K, int LD, float inv_tau, const char *name)
{
    float *x = be->iface->alloc(be, sizeof(float) * N * LD),
          *y = be->iface->alloc(be, sizeof(float) * N * LD);
    fill_uniform(x, (size_t) N * LD, 1, -2, 2);
    be->train->softmax_rows(be, y, LD, x, LD, N, K, inv_tau);
    double *want = malloc(sizeof(double) * N * K), *a = malloc(sizeof(double) * K);
    float *got = malloc(sizeof(float) * N * K);
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < K; k++) a[k] = x[i * LD + k] * (double) inv_tau;
        double lse = naive_lse(a, K);
        for (int k = 0; k < K; k++)
            want[i * K + k] = exp(a[k] - lse), got[i * K + k] = y[i * LD + k];
    }
    assert_true(check_close(name, got, want, (size_t) N * K, 1e-6));
    free(want);
    free(a);
    free(got);
    be->iface->free(be, x);
    be->iface->free(be, y);
}

static void test_softmax_rows(void **state)
{
    (void) state;
    run_softmax_case(7, 33, 40, 10.0f, "softmax_rows");
    /* rows longer than one fp32 summation chunk (512 values), the last chunk partial */
    run_softmax_case(3, 1000, 1004, 10.0f, "softmax_rows K = 1000");
}

static void run_xent_case(xent_case *c, const char *name)
{
    size_t sz = (size_t) c->n * c->ld;
    float *s = be->iface->alloc(be, sizeof(float) * sz),
          *ds = be->iface->alloc(be, sizeof(float) * sz);
    double *loss = be->iface->alloc(be, sizeof(double));
    fill_uniform(s, sz, 11, -1, 1);
    for (size_t i = 0; i < sz; i++) ds[i] = 0.25f; /* accumulation: ds += grad */
    *loss = 1.5;
    be->train->xent(be, loss, ds, c->ld, s, c->ld, c->t, c->ld, c->t_period, c->t_shift,
                    c->use_w ? c->w : NULL, c->n, c->K, c->inv_tau, c->loss_scale, c->grad_scale);
    double *sd = malloc(sizeof(double) * sz);
    for (size_t i = 0; i < sz; i++) sd[i] = s[i];
    char what[128];
    snprintf(what, sizeof what, "%s: loss", name);
    assert_true(check_scalar(what, *loss - 1.5, naive_xent(c, sd), 1e-6));

    /* gradient = grad_scale/loss_scale · ∂(naive loss)/∂s by central differences */
    double *fd = malloc(sizeof(double) * c->n * c->K);
    float *got = malloc(sizeof(float) * c->n * c->K);
    const double h = 1e-4;
    for (int i = 0; i < c->n; i++)
        for (int k = 0; k < c->K; k++) {
            size_t at = (size_t) i * c->ld + k;
            double keep = sd[at];
            sd[at] = keep + h;
            double up = naive_xent(c, sd);
            sd[at] = keep - h;
            double dn = naive_xent(c, sd);
            sd[at] = keep;
            fd[i * c->K + k] = (up - dn) / (2 * h) * c->grad_scale / c->loss_scale;
            got[i * c->K + k] = ds[at] - 0.25f;
        }
    snprintf(what, sizeof what, "%s: dlogits vs finite differences", name);
    assert_true(check_close(what, got, fd, (size_t) c->n * c->K, 1e-4));
    free(fd);
    free(got);
    free(sd);
    be->iface->free(be, s);
    be->iface->free(be, ds);
    be->iface->free(be, loss);
}

static void test_xent(void **state)
{
    (void) state;
    enum { N = 6, K = 24, LD = 28 };
    float t[N * LD], w[N];
    /* target rows: softmax of random logits (rows sum to 1), plus one row summing to 2 */
    for (int i = 0; i < N; i++) {
        float raw[K];
        fill_uniform(raw, K, 100 + i, -3, 3);
        double s = 0;
        for (int k = 0; k < K; k++) s += exp(raw[k]);
        for (int k = 0; k < K; k++) t[i * LD + k] = (float) (exp(raw[k]) / s * (i == 2 ? 2 : 1));
    }
    fill_uniform(w, N, 7, 0.1f, 1.0f);
    xent_case plain = {N, K, LD, N, 0, 0, 10.0f, 1.0f, 1.0f, t, w};
    run_xent_case(&plain, "xent plain");
    /* paired rows (global crops: target of the other crop), weights and separate scales */
    xent_case paired = {N, K, LD, N, N / 2, 1, 10.0f, 0.5f, 0.125f, t, w};
    run_xent_case(&paired, "xent shifted+weighted");
    /* periodic targets (local crops share the B target rows), another temperature */
    xent_case periodic = {N, K, LD, 2, 1, 0, 4.0f, 1.0f / 3, 0.7f, t, w};
    run_xent_case(&periodic, "xent periodic");
}

/* Rows longer than one fp32 summation chunk (512 values), the last chunk partial. */
static void test_xent_wide(void **state)
{
    (void) state;
    enum { N = 3, K = 1000, LD = 1004 };
    float *t = malloc(sizeof(float) * N * LD), w[N], raw[K];
    for (int i = 0; i < N; i++) {
        fill_uniform(raw, K, 200 + i, -4, 4);
        double s = 0;
        for (int k = 0; k < K; k++) s += exp(raw[k]);
        for (int k = 0; k < K; k++) t[i * LD + k] = (float) (exp(raw[k]) / s);
        for (int k = K; k < LD; k++) t[i * LD + k] = NAN; /* padding is never read */
    }
    fill_uniform(w, N, 8, 0.1f, 1.0f);
    xent_case wide = {N, K, LD, N, 1, 1, 10.0f, 0.5f, 0.25f, t, w};
    run_xent_case(&wide, "xent K = 1000");
    free(t);
}

/* ---------------------------------------------------------------------------- Sinkhorn-Knopp */

/* The official algorithm in double (no max subtraction, with the /K, /B, ·B constants). */
static void naive_sk(double *T, const float *L, int R, int K, double inv_tau, int iters)
{
    double *Q = malloc(sizeof(double) * R * K), tot = 0; /* Q[k*R + r] */
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++) tot += Q[k * R + r] = exp(L[r * K + k] * inv_tau);
    for (int i = 0; i < R * K; i++) Q[i] /= tot;
    for (int it = 0; it < iters; it++) {
        for (int k = 0; k < K; k++) {
            double s = 0;
            for (int r = 0; r < R; r++) s += Q[k * R + r];
            for (int r = 0; r < R; r++) Q[k * R + r] /= s * K;
        }
        for (int r = 0; r < R; r++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += Q[k * R + r];
            for (int k = 0; k < K; k++) Q[k * R + r] /= s * R;
        }
    }
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++) T[r * K + k] = Q[k * R + r] * R;
    free(Q);
}

/* SK with the backend pieces over `parts` row blocks ("ranks"), the cross-block reductions done
 * here by hand, as the collective would. */
static void pieces_sk(float *T, const float *L, int R, int K, float inv_tau, int iters, int parts)
{
    double *mx = malloc(sizeof(double) * K * parts), *ps = malloc(sizeof(double) * K * parts);
    double *red = malloc(sizeof(double) * K);
    int rows[8], start[8];
    for (int p = 0; p < parts; p++) {
        start[p] = R * p / parts;
        rows[p] = R * (p + 1) / parts - start[p];
    }
    for (int p = 0; p < parts; p++)
        be->train->col_max(be, mx + p * K, L + start[p] * K, K, rows[p], K);
    for (int k = 0; k < K; k++) {
        red[k] = -INFINITY;
        for (int p = 0; p < parts; p++) red[k] = fmax(red[k], mx[p * K + k]);
    }
    for (int p = 0; p < parts; p++)
        be->train->sk_exp(be, T + start[p] * K, K, ps + p * K, L + start[p] * K, K, red, rows[p], K,
                          inv_tau);
    for (int it = 0; it < iters; it++) {
        for (int k = 0; k < K; k++) {
            red[k] = 0;
            for (int p = 0; p < parts; p++) red[k] += ps[p * K + k];
        }
        for (int p = 0; p < parts; p++)
            be->train->sk_normalize(be, T + start[p] * K, K, it + 1 < iters ? ps + p * K : NULL,
                                    red, mx, rows[p], K);
    }
    free(mx);
    free(ps);
    free(red);
}

static void test_sinkhorn_knopp(void **state)
{
    (void) state;
    enum { R = 40, K = 24 };
    float L[R * K], T1[R * K], T3[R * K], Ls[R * K];
    double want[R * K];
    fill_uniform(L, R * K, 5, -1, 1);
    naive_sk(want, L, R, K, 1 / 0.04, 3);
    pieces_sk(T1, L, R, K, 1 / 0.04f, 3, 1);
    assert_true(check_close("SK one rank vs official algorithm", T1, want, R * K, 1e-5));
    /* over three "ranks" = over the union batch */
    pieces_sk(T3, L, R, K, 1 / 0.04f, 3, 3);
    assert_true(check_close("SK three ranks vs official algorithm", T3, want, R * K, 1e-5));
    /* every sample row sums to 1; prototype sums ≈ R/K when R ≥ K (docs/algorithm.md §12.4) */
    for (int r = 0; r < R; r++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += T1[r * K + k];
        assert_true(fabs(s - 1) < 1e-5);
    }
    /* ... and the prototype sums approach R/K with the iterations (logits of a realistic spread:
     * with |logit/τ| up to 25 three iterations are far from converged, docs/algorithm.md §12.4) */
    double dev1 = 0, dev3 = 0;
    for (int i = 0; i < R * K; i++) Ls[i] = 0.1f * L[i];
    pieces_sk(T3, Ls, R, K, 1 / 0.04f, 1, 1);
    pieces_sk(T1, Ls, R, K, 1 / 0.04f, 3, 1);
    for (int k = 0; k < K; k++) {
        double s1 = 0, s3 = 0;
        for (int r = 0; r < R; r++) s1 += T3[r * K + k], s3 += T1[r * K + k];
        dev1 = fmax(dev1, fabs(s1 - (double) R / K)), dev3 = fmax(dev3, fabs(s3 - (double) R / K));
    }
    if (!(dev3 < dev1 && dev3 < 0.25 * R / K))
        fail_msg("prototype sums: max deviation from R/K %g after 1 and %g after 3 iterations",
                 dev1, dev3);
    /* invariant to a constant added to all logits; logits far outside exp's range still work
     * (the per-prototype max subtraction; the official code would overflow here) */
    for (int i = 0; i < R * K; i++) Ls[i] = L[i] + 7.0f;
    pieces_sk(T3, Ls, R, K, 1 / 0.04f, 3, 2);
    assert_true(check_close("SK shifted logits", T3, want, R * K, 1e-4));
}

/* More prototypes than one column span (512) and more rows than one fp32 row chunk (16) of
 * the column sums; samples rows longer than one fp32 summation chunk (512 values). */
static void test_sinkhorn_knopp_wide(void **state)
{
    (void) state;
    enum { R = 40, K = 600 };
    float *L = malloc(sizeof(float) * R * K), *T = malloc(sizeof(float) * R * K);
    double *want = malloc(sizeof(double) * R * K);
    fill_uniform(L, R * K, 6, -1, 1);
    naive_sk(want, L, R, K, 1 / 0.04, 3);
    pieces_sk(T, L, R, K, 1 / 0.04f, 3, 1);
    assert_true(check_close("SK K = 600, one rank vs official algorithm", T, want, R * K, 1e-5));
    pieces_sk(T, L, R, K, 1 / 0.04f, 3, 3);
    assert_true(check_close("SK K = 600, three ranks vs official algorithm", T, want, R * K, 1e-5));
    free(L);
    free(T);
    free(want);
}

/* ------------------------------------------------------------------------------------- KoLeo */

static double naive_koleo(const double *z, int n, int c)
{
    double *x = malloc(sizeof(double) * n * c), total = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < c; k++) s += z[i * c + k] * z[i * c + k];
        double den = fmax(sqrt(s), 1e-8);
        for (int k = 0; k < c; k++) x[i * c + k] = z[i * c + k] / den;
    }
    for (int i = 0; i < n; i++) {
        int best = -1;
        double bd = -INFINITY;
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            double d = 0;
            for (int k = 0; k < c; k++) d += x[i * c + k] * x[j * c + k];
            if (d > bd) bd = d, best = j;
        }
        double s = 0;
        for (int k = 0; k < c; k++) {
            double diff = x[i * c + k] - x[best * c + k] + 1e-8;
            s += diff * diff;
        }
        total -= log(sqrt(s) + 1e-8);
    }
    free(x);
    return total / n;
}

static void test_koleo(void **state)
{
    (void) state;
    enum { N = 9, C = 13, LD = 16 };
    float *z = be->iface->alloc(be, sizeof(float) * N * LD),
          *dz = be->iface->alloc(be, sizeof(float) * N * LD);
    double *loss = be->iface->alloc(be, sizeof(double));
    void *scratch = be->iface->alloc(be, be->train->koleo_scratch_bytes(be, N, C));
    fill_normal(z, N * LD, 3, 1.0f);
    memset(dz, 0, sizeof(float) * N * LD);
    *loss = 0;
    be->train->koleo(be, loss, dz, LD, z, LD, N, C, 0.5f, 0.25f, scratch);
    double zd[N * C];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < C; k++) zd[i * C + k] = z[i * LD + k];
    assert_true(check_scalar("koleo loss", *loss, 0.5 * naive_koleo(zd, N, C), 1e-6));
    double fd[N * C];
    float got[N * C];
    const double h = 1e-5;
    for (int i = 0; i < N * C; i++) {
        double keep = zd[i];
        zd[i] = keep + h;
        double up = naive_koleo(zd, N, C);
        zd[i] = keep - h;
        double dn = naive_koleo(zd, N, C);
        zd[i] = keep;
        fd[i] = 0.25 * (up - dn) / (2 * h);
        got[i] = dz[(i / C) * LD + i % C];
    }
    assert_true(check_close("koleo dz vs finite differences", got, fd, N * C, 1e-4));
    /* identical rows: finite (eps terms) and large (docs/algorithm.md §12.4) */
    for (int i = 0; i < N; i++)
        for (int k = 0; k < C; k++) z[i * LD + k] = (float) (k + 1);
    *loss = 0;
    be->train->koleo(be, loss, dz, LD, z, LD, N, C, 1.0f, 1.0f, scratch);
    assert_true(isfinite(*loss) && *loss > 10);
    double *ss = be->iface->alloc(be, sizeof(double));
    be->train->sum_squares(be, ss, dz, N * LD); /* finite exactly when every value is */
    assert_true(isfinite(*ss));
    be->iface->free(be, ss);
    be->iface->free(be, z);
    be->iface->free(be, dz);
    be->iface->free(be, loss);
    be->iface->free(be, scratch);
}

/* ------------------------------------------------------------------------------- AdamW, EMA */

static void test_adamw_and_ema(void **state)
{
    (void) state;
    enum { N = 96 };
    poa_optim_seg segs[3] = {
        {0, 40, 0.5f, 1.0f, 0, 0},  /* decayed, lr × 0.5, backbone clip group */
        {48, 16, 1.0f, 0.0f, 0, 0}, /* no weight decay                        */
        {64, 32, 1.0f, 1.0f, 1, 1}, /* last layer, head clip group            */
    };
    poa_optim_seg *dsegs = be->iface->alloc(be, sizeof segs);
    be->iface->upload(be, dsegs, segs, sizeof segs);
    float *p = be->iface->alloc(be, sizeof(float) * N),
          *m = be->iface->alloc(be, sizeof(float) * N);
    float *v = be->iface->alloc(be, sizeof(float) * N),
          *g = be->iface->alloc(be, sizeof(float) * N);
    double rp[N], rm[N] = {0}, rv[N] = {0};
    fill_normal(p, N, 21, 0.1f);
    for (int i = 0; i < N; i++) rp[i] = p[i];
    memset(m, 0, sizeof(float) * N);
    memset(v, 0, sizeof(float) * N);
    for (int step = 1; step <= 3; step++) {
        fill_normal(g, N, 30 + step, 0.01f);
        poa_adamw_args a = {.lr = 1e-3 * step,
                            .last_layer_lr = step == 1 ? 0 : 2e-3,
                            .wd = 0.04,
                            .beta1 = 0.9,
                            .beta2 = 0.999,
                            .eps = 1e-8,
                            .step = step,
                            .grad_scale = {0.75f, 1.0f}};
        be->train->adamw(be, p, m, v, g, dsegs, 3, &a, NULL);
        for (int s = 0; s < 3; s++) {
            double lr = (segs[s].last_layer ? a.last_layer_lr : a.lr) * segs[s].lr_mult;
            double wd = a.wd * segs[s].wd_mult;
            for (uint64_t i = segs[s].offset; i < segs[s].offset + segs[s].numel; i++) {
                double gi = (double) g[i] * a.grad_scale[segs[s].clip_group];
                rp[i] *= 1 - lr * wd;
                rm[i] = 0.9 * rm[i] + 0.1 * gi;
                rv[i] = 0.999 * rv[i] + 0.001 * gi * gi;
                double mh = rm[i] / (1 - pow(0.9, step)), vh = rv[i] / (1 - pow(0.999, step));
                rp[i] -= lr * mh / (sqrt(vh) + 1e-8);
            }
        }
        char what[64];
        snprintf(what, sizeof what, "adamw step %d: param", step);
        assert_true(check_close(what, p, rp, N, 1e-6));
        snprintf(what, sizeof what, "adamw step %d: exp_avg", step);
        assert_true(check_close(what, m, rm, N, 1e-6));
        snprintf(what, sizeof what, "adamw step %d: exp_avg_sq", step);
        assert_true(check_close(what, v, rv, N, 1e-6));
    }
    /* padding between segments is never touched */
    for (int i = 40; i < 48; i++) assert_true(rp[i] == p[i]);
    /* EMA */
    double rt[N];
    float *t = be->iface->alloc(be, sizeof(float) * N);
    fill_normal(t, N, 50, 0.1f);
    for (int i = 0; i < N; i++) rt[i] = 0.992 * t[i] + 0.008 * p[i];
    be->train->ema(be, t, p, N, 0.992, NULL);
    assert_true(check_close("ema", t, rt, N, 1e-6));
    be->iface->free(be, p), be->iface->free(be, m), be->iface->free(be, v), be->iface->free(be, g);
    be->iface->free(be, t), be->iface->free(be, dsegs);
}

static void test_reductions(void **state)
{
    (void) state;
    float x[5] = {1, 2, 3, -4, 0.5f};
    double *out = be->iface->alloc(be, sizeof(double));
    be->train->sum_squares(be, out, x, 5);
    assert_true(fabs(*out - 30.25) < 1e-9);
    /* the step's guard: a non-finite value makes the sum non-finite */
    x[3] = INFINITY;
    be->train->sum_squares(be, out, x, 5);
    assert_false(isfinite(*out));
    x[3] = NAN;
    be->train->sum_squares(be, out, x, 5);
    assert_false(isfinite(*out));
    /* the largest floats square to ~1.2e77: a long finite sum stays finite */
    enum { BIG = 100000 };
    float *big = be->iface->alloc(be, sizeof(float) * BIG);
    for (int i = 0; i < BIG; i++) big[i] = i % 2 ? 3.4e38f : -3.4e38f;
    be->train->sum_squares(be, out, big, BIG);
    assert_true(isfinite(*out) && *out > 1e82);
    be->iface->free(be, big);
    be->iface->free(be, out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reductions),     cmocka_unit_test(test_softmax_rows),
        cmocka_unit_test(test_xent),           cmocka_unit_test(test_xent_wide),
        cmocka_unit_test(test_sinkhorn_knopp), cmocka_unit_test(test_sinkhorn_knopp_wide),
        cmocka_unit_test(test_koleo),          cmocka_unit_test(test_adamw_and_ema),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
