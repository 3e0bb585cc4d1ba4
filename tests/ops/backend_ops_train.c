/* backend_ops_train.c — the loss, optimizer and reduction ops (poa_train_ops) in
 * tests/ops/test_backend_ops.  All fp32 tensors with double scalars, whatever the compute
 * dtype (param_act / t_act excepted: the updated values rounded to it, exactly).
 *
 * Tolerances are the CPU backend's train-op tests' (mostly norm-wise: ||got − want|| /
 * ||want||, the worst element printed), or rigorous per-element bounds where the op's
 * arithmetic is short: Σx² in double (γ_n = n·2^-53), the column max (exact), EMA (three fp32
 * roundings).
 */
#include "backend_ops.h"

#include "common/poa_error.h"
#include "common/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ sum_squares */
typedef struct sq_args {
    bo_buf *out, *x;
} sq_args;

static void sq_run(poa_backend *be, void *p)
{
    const sq_args *a = p;
    be->train->sum_squares(be, BO_D(a->out), BO_F(a->x), (size_t) a->x->cols);
}

/* special: 0 random, 1 the values 1 2 3 -4 0.5 (30.25), 2 +Inf, 3 NaN, 4 -Inf, 5 ±3e38 */
static void sq_case(bo_ctx *c, int n, size_t off, int special)
{
    static const char *sp[] = {"",         " {1, 2, 3, -4, 0.5}", " one +Inf",
                               " one NaN", " one -Inf",           " values near FLT_MAX"};
    bo_case k;
    bo_case_begin(&k, c, "sum_squares n=%d off=%zu%s (*out =, not +=)", n, off, sp[special]);
    sq_args a = {bo_vec(&k, "out", BO_F64, BO_OUT, 1), NULL};
    a.x = bo_new(&k, "x", BO_F32, BO_IN, 1, n, n, off);
    bo_fill(a.x, -3, 3);
    double *x = BO_HV(a.x);
    const double small[] = {1, 2, 3, -4, 0.5};
    if (special == 1)
        for (int i = 0; i < n && i < 5; i++) x[i] = small[i];
    if (special >= 2 && special <= 4)
        x[n / 2] = special == 2 ? INFINITY : special == 3 ? NAN : -INFINITY;
    if (special == 5) /* the largest floats square to ~1.2e77: a long sum stays finite */
        for (int i = 0; i < n; i++) x[i] = (i % 2 ? -3.4e38 : 3.4e38);
    bo_run(&k, sq_run, &a);
    const double want = poa_naive_sum_squares(x, (size_t) n);
    double *w = bo_want(&k, a.out);
    BO_WV(w, a.out)[0] = want;
    bo_expect(&k, a.out, w, NULL, (bo_tol){0, (n + 1) * 0x1p-53, 0});
    bo_case_end(&k);
}

void bo_check_sum_squares(bo_ctx *c)
{
    sq_case(c, 5, 0, 1);
    sq_case(c, 1, 0, 0);
    sq_case(c, 100003, 0, 0);
    sq_case(c, 37, 1, 0);
    for (int s = 2; s <= 4; s++) sq_case(c, 1001, 0, s);
    sq_case(c, 100000, 0, 5);
}

/* ------------------------------------------------------------------------ softmax */
typedef struct sm_args {
    bo_buf *y, *x;
    float inv_tau;
} sm_args;

static void sm_run(poa_backend *be, void *p)
{
    const sm_args *a = p;
    be->train->softmax_rows(be, BO_F(a->y), a->y->ld, BO_F(a->x), a->x->ld, a->x->rows, a->x->cols,
                            a->inv_tau);
}

/* norm-wise 1e-6 */
static void sm_case(bo_ctx *c, int n, int K, int ld, float inv_tau, size_t off)
{
    bo_case k;
    bo_case_begin(&k, c, "softmax_rows n=%d K=%d ld=%d inv_tau=%g off=%zu", n, K, ld, inv_tau, off);
    sm_args a = {NULL, NULL, inv_tau};
    a.x = bo_new(&k, "x", BO_F32, BO_IN, n, K, ld, off);
    bo_fill(a.x, -2, 2);
    a.y = bo_new(&k, "y", BO_F32, BO_OUT, n, K, ld + 1, 0);
    bo_run(&k, sm_run, &a);
    double *want = bo_want(&k, a.y);
    poa_naive_softmax_rows(BO_WV(want, a.y), a.y->ld, BO_HV(a.x), ld, n, K, inv_tau);
    bo_expect_norm(&k, a.y, want, 1e-6);
    bo_case_end(&k);
}

void bo_check_softmax_rows(bo_ctx *c)
{
    sm_case(c, 7, 33, 40, 10.0f, 0);
    sm_case(c, 3, 1000, 1004, 10.0f, 0); /* longer than a 512-value chunk, the last partial */
    sm_case(c, 1, 1, 1, 10.0f, 0);
    sm_case(c, 2, 65536, 65536, 1 / 0.1f, 0); /* the DINO head's K, student temperature */
    sm_case(c, 5, 17, 19, 25.0f, 3);
}

/* ------------------------------------------------------------------------ cross-entropy */
typedef struct xent_spec {
    int n, K, ld, t_period, t_shift, use_w;
    float inv_tau, loss_scale, grad_scale;
    int loss, ds; /* outputs present */
    size_t off;
} xent_spec;

typedef struct xent_args {
    const xent_spec *s;
    bo_buf *loss, *ds, *s_, *t, *w;
} xent_args;

static void xent_run(poa_backend *be, void *p)
{
    const xent_args *a = p;
    const xent_spec *s = a->s;
    be->train->xent(be, a->loss ? BO_D(a->loss) : NULL, a->ds ? BO_F(a->ds) : NULL, s->ld,
                    BO_F(a->s_), s->ld, BO_F(a->t), s->ld, s->t_period, s->t_shift,
                    a->w ? BO_F(a->w) : NULL, s->n, s->K, s->inv_tau, s->loss_scale, s->grad_scale);
}

/* Targets: softmax of random logits (rows sum to 1), row 2 summing to 2; the padding of the
 * rows NaN (never read). */
static void xent_buffers(bo_case *k, xent_args *a)
{
    const xent_spec *s = a->s;
    a->s_ = bo_new(k, "s", BO_F32, BO_IN, s->n, s->K, s->ld, s->off);
    a->t = bo_new(k, "t", BO_F32, BO_IN, s->t_period, s->K, s->ld, 0);
    poa_rng r;
    poa_rng_init(&r, k->c->seed + 77, 0, POA_RNG_TEST, 0);
    for (int i = 0; i < s->t_period; i++) {
        double *ti = BO_HV(a->t) + (size_t) i * s->ld, sum = 0;
        for (int j = 0; j < s->K; j++) sum += ti[j] = exp(poa_rng_uniform_range(&r, -3, 3));
        for (int j = 0; j < s->K; j++) ti[j] *= (i == 2 ? 2 : 1) / sum;
        for (int j = s->K; j < s->ld && i + 1 < s->t_period; j++) ti[j] = NAN;
    }
    if (s->use_w) {
        a->w = bo_vec(k, "w", BO_F32, BO_IN, (size_t) s->n);
        bo_fill(a->w, 0.1, 1.0);
    }
    if (s->loss) a->loss = bo_vec(k, "loss", BO_F64, BO_OUT, 1);
    if (s->ds) a->ds = bo_new(k, "ds", BO_F32, BO_OUT, s->n, s->K, s->ld, s->off);
}

static double xent_reference(const xent_args *a, double *ds)
{
    const xent_spec *s = a->s;
    return poa_naive_xent(ds, s->ld, BO_HV(a->s_), s->ld, BO_HV(a->t), s->ld, s->t_period,
                          s->t_shift, a->w ? BO_HV(a->w) : NULL, s->n, s->K, s->inv_tau,
                          s->loss_scale, s->grad_scale);
}

static void xent_desc(char *d, size_t n, const char *what, const xent_spec *s)
{
    snprintf(d, n,
             "%s n=%d K=%d ld=%d t_period=%d t_shift=%d w=%s inv_tau=%g loss_scale=%g "
             "grad_scale=%g loss=%s ds=%s off=%zu",
             what, s->n, s->K, s->ld, s->t_period, s->t_shift, s->use_w ? "yes" : "NULL",
             s->inv_tau, s->loss_scale, s->grad_scale, s->loss ? "yes" : "NULL",
             s->ds ? "yes" : "NULL", s->off);
}

/* The added loss within 1e-6 relative; the added ds norm-wise within 1e-4 (the CPU tests'
 * tolerance against FD; here against the analytic naive gradient). */
static void xent_case(bo_ctx *c, const xent_spec *s)
{
    char d[320];
    xent_desc(d, sizeof d, "xent", s);
    bo_case k;
    bo_case_begin(&k, c, "%s (+=)", d);
    xent_args a = {s, NULL, NULL, NULL, NULL, NULL};
    xent_buffers(&k, &a);
    bo_run(&k, xent_run, &a);
    double *ds = bo_tmpd(&k, (size_t) s->n * s->ld);
    const double loss = xent_reference(&a, ds);
    if (a.loss)
        bo_expect_scalar(&k, "loss added", BO_GV(a.loss)[0] - BO_HV(a.loss)[0], loss, 0, 1e-6);
    if (a.ds) {
        double *got = bo_view_copy(&k, a.ds, bo_delta(&k, a.ds));
        double *want = bo_tmpd(&k, (size_t) s->n * s->K);
        for (int i = 0; i < s->n; i++)
            for (int j = 0; j < s->K; j++) want[(size_t) i * s->K + j] = ds[(size_t) i * s->ld + j];
        bo_expect_norm_values(&k, "ds added", got, want, (size_t) s->n * s->K, 1e-4);
    }
    bo_case_end(&k);
}

static const xent_spec xent_specs[] = {
    {6, 24, 28, 6, 0, 0, 10.0f, 1.0f, 1.0f, 1, 1, 0},       /* plain */
    {6, 24, 28, 6, 3, 1, 10.0f, 0.5f, 0.125f, 1, 1, 0},     /* paired crops, weights, scales */
    {6, 24, 28, 2, 1, 0, 4.0f, 1.0f / 3, 0.7f, 1, 1, 0},    /* periodic targets (local crops) */
    {3, 1000, 1004, 3, 1, 1, 10.0f, 0.5f, 0.25f, 1, 1, 0},  /* rows longer than 512 values */
    {6, 24, 28, 6, 0, 1, 10.0f, 1.0f, 1.0f, 0, 1, 0},       /* loss NULL */
    {6, 24, 28, 6, 0, 1, 10.0f, 1.0f, 1.0f, 1, 0, 0},       /* ds NULL */
    {1, 7, 7, 1, 0, 0, 10.0f, 1.0f, 1.0f, 1, 1, 0},         /* one row */
    {4, 65536, 65536, 2, 1, 0, 10.0f, 0.5f, 0.5f, 1, 1, 0}, /* the DINO head's K */
    {5, 17, 19, 5, 2, 1, 10.0f, 1.0f, 1.0f, 1, 1, 3},       /* unaligned */
};

void bo_check_xent(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof xent_specs / sizeof *xent_specs; i++)
        xent_case(c, &xent_specs[i]);
}

typedef struct xent_fd {
    const xent_args *a;
    double *sv;
} xent_fd;

static double xent_objective(void *p)
{
    xent_fd *f = p;
    const xent_spec *s = f->a->s;
    return poa_naive_xent(NULL, 0, f->sv, s->ld, BO_HV(f->a->t), s->ld, s->t_period, s->t_shift,
                          f->a->w ? BO_HV(f->a->w) : NULL, s->n, s->K, s->inv_tau, 1.0, 1.0);
}

/* Loss and gradient from one backend pass, against each other: the directional derivative
 * of the backend's own loss along ±2^-10 (the fp32 values' actual difference) vs <ds, v>, within
 * 1e-2 (the central difference's h² term at inv_tau 10 is ~1e-3 of it). */
typedef struct xent_dir {
    xent_args a;
    bo_buf *sp, *sm, *lp, *lm;
} xent_dir;

static void xent_dir_run(poa_backend *be, void *p)
{
    const xent_dir *d = p;
    const xent_spec *s = d->a.s;
    const float *w = d->a.w ? BO_F(d->a.w) : NULL;
    be->train->xent(be, BO_D(d->lp), NULL, 0, BO_F(d->sp), s->ld, BO_F(d->a.t), s->ld, s->t_period,
                    s->t_shift, w, s->n, s->K, s->inv_tau, 1.0f, 1.0f);
    be->train->xent(be, BO_D(d->lm), NULL, 0, BO_F(d->sm), s->ld, BO_F(d->a.t), s->ld, s->t_period,
                    s->t_shift, w, s->n, s->K, s->inv_tau, 1.0f, 1.0f);
    xent_run(be, (void *) &d->a);
}

static void xent_grad_case(bo_ctx *c, const xent_spec *s)
{
    char d[320];
    xent_desc(d, sizeof d, "xent", s);
    bo_case k;
    bo_case_begin(&k, c, "%s: ds vs finite differences of the naive loss and of the backend's", d);
    xent_dir x = {{s, NULL, NULL, NULL, NULL, NULL}, NULL, NULL, NULL, NULL};
    xent_buffers(&k, &x.a);
    bo_prepare(&k);
    const double h = 0x1p-10;
    x.sp = bo_new(&k, "s+hv", BO_F32, BO_IN, s->n, s->K, s->ld, 0);
    x.sm = bo_new(&k, "s-hv", BO_F32, BO_IN, s->n, s->K, s->ld, 0);
    double *v = bo_tmpd(&k, (size_t) s->n * s->ld);
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->K; j++) {
            const size_t e = (size_t) i * s->ld + j;
            const double sign = (i * 31 + j * 17) % 3 == 0 ? -1 : 1;
            const double sp = (float) (BO_HV(x.a.s_)[e] + h * sign);
            const double sm = (float) (BO_HV(x.a.s_)[e] - h * sign);
            v[e] = (sp - sm) / (2 * h); /* the exact perturbation of the fp32 values */
            BO_HV(x.sp)[e] = sp, BO_HV(x.sm)[e] = sm;
        }
    x.lp = bo_vec(&k, "loss(s+hv)", BO_F64, BO_OUT, 1);
    x.lm = bo_vec(&k, "loss(s-hv)", BO_F64, BO_OUT, 1);
    bo_run(&k, xent_dir_run, &x);
    const xent_args *a = &x.a;
    double *ng = bo_tmpd(&k, (size_t) s->n * s->ld), *sv = bo_tmpd(&k, (size_t) s->n * s->ld);
    memcpy(sv, BO_HV(a->s_), sizeof(double) * (size_t) s->n * s->ld);
    xent_reference(a, ng);
    const double ratio = (double) s->grad_scale; /* naive loss unscaled: gradient × grad_scale */
    for (size_t i = 0; i < (size_t) s->n * s->ld; i++) ng[i] /= ratio;
    double *got = bo_delta(&k, a->ds), *gv = BO_WV(got, a->ds);
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->K; j++) gv[(size_t) i * s->ld + j] /= ratio;
    xent_fd f = {a, sv};
    bo_fd(&k, "ds", xent_objective, &f, sv, s->n, s->K, s->ld, ng, gv, s->ld, 200, 1e-5, 1e-6,
          1e-4);
    double dir = 0;
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->K; j++)
            dir += BO_WV(got, a->ds)[(size_t) i * s->ld + j] * ratio * v[(size_t) i * s->ld + j];
    const double fd = (BO_GV(x.lp)[0] - BO_HV(x.lp)[0] - BO_GV(x.lm)[0] + BO_HV(x.lm)[0]) / (2 * h);
    bo_expect_scalar(&k, "backend: <ds, v> / grad_scale vs (loss(s+hv) - loss(s-hv)) / 2h",
                     dir / ratio, fd, 0, 1e-2);
    bo_case_end(&k);
}

void bo_grad_xent(bo_ctx *c)
{
    for (int i = 0; i < 4; i++) xent_grad_case(c, &xent_specs[i]);
}

/* ------------------------------------------------------------------------ Sinkhorn-Knopp */
typedef struct sk_args {
    bo_buf *x, *q, *mx, *psum, *psum_next, *scratch;
    int n, K, in_place, alias;
    float inv_tau;
} sk_args;

static void col_max_run(poa_backend *be, void *p)
{
    const sk_args *a = p;
    be->train->col_max(be, BO_D(a->mx), BO_F(a->x), a->x->ld, a->n, a->K);
}

static void sk_exp_run(poa_backend *be, void *p)
{
    const sk_args *a = p;
    bo_buf *q = a->in_place ? a->x : a->q;
    be->train->sk_exp(be, BO_F(q), q->ld, BO_D(a->psum), BO_F(a->x), a->x->ld, BO_D(a->mx), a->n,
                      a->K, a->inv_tau);
}

static void sk_norm_run(poa_backend *be, void *p)
{
    const sk_args *a = p;
    double *next = a->alias ? BO_D(a->psum) : a->psum_next ? BO_D(a->psum_next) : NULL;
    be->train->sk_normalize(be, BO_F(a->q), a->q->ld, next, BO_D(a->psum), BO_D(a->scratch), a->n,
                            a->K);
}

static const int sk_shapes[][4] = {
    /* n, K, ld, off */
    {40, 24, 24, 0}, {40, 600, 604, 0}, /* more prototypes than a 512-column span */
    {1, 7, 7, 0},    {3, 65536, 65536, 0}, {17, 33, 35, 1},
};

/* The maximum is exact. */
void bo_check_col_max(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof sk_shapes / sizeof *sk_shapes; i++) {
        const int *s = sk_shapes[i];
        bo_case k;
        bo_case_begin(&k, c, "col_max n=%d K=%d ld=%d off=%d", s[0], s[1], s[2], s[3]);
        sk_args a = {0};
        a.n = s[0], a.K = s[1];
        a.x = bo_new(&k, "x", BO_F32, BO_IN, s[0], s[1], s[2], (size_t) s[3]);
        a.mx = bo_vec(&k, "mx", BO_F64, BO_OUT, (size_t) s[1]);
        bo_run(&k, col_max_run, &a);
        double *want = bo_want(&k, a.mx);
        poa_naive_col_max(BO_WV(want, a.mx), BO_HV(a.x), s[2], s[0], s[1]);
        bo_expect(&k, a.mx, want, NULL, (bo_tol){0, 0, 0});
        bo_case_end(&k);
    }
}

/* q = exp((x − mx)·inv_tau): an fp32 argument of magnitude ≤ |x − mx|·inv_tau carries
 * 2^-24 of it, exp adds a few ulp: per element (2·max|arg| + 8)·2^-24 relative; psum sums
 * those in double. */
static void sk_exp_case(bo_ctx *c, const int *s, int in_place)
{
    const float inv_tau = 1 / 0.04f;
    bo_case k;
    bo_case_begin(&k, c, "sk_exp n=%d K=%d ld=%d off=%d inv_tau=%g%s", s[0], s[1], s[2], s[3],
                  inv_tau, in_place ? " in place (q = x)" : "");
    sk_args a = {0};
    a.n = s[0], a.K = s[1], a.inv_tau = inv_tau, a.in_place = in_place;
    a.x = bo_new(&k, "x", BO_F32, in_place ? BO_OUT : BO_IN, s[0], s[1], s[2], (size_t) s[3]);
    bo_prepare(&k);
    a.mx = bo_vec(&k, "mx", BO_F64, BO_IN, (size_t) s[1]);
    poa_naive_col_max(BO_HV(a.mx), BO_HV(a.x), s[2], s[0], s[1]);
    if (!in_place) a.q = bo_new(&k, "q", BO_F32, BO_OUT, s[0], s[1], s[2] + 2, 0);
    a.psum = bo_vec(&k, "psum", BO_F64, BO_OUT, (size_t) s[1]);
    bo_run(&k, sk_exp_run, &a);
    bo_buf *q = in_place ? a.x : a.q;
    double *wq = bo_want(&k, q), *wp = bo_want(&k, a.psum);
    poa_naive_sk_exp(BO_WV(wq, q), q->ld, BO_WV(wp, a.psum), BO_HV(a.x), a.x->ld, BO_HV(a.mx), s[0],
                     s[1], inv_tau);
    const double rtol = (2 * 2 * inv_tau + 8) * BO_U32; /* |x − mx| ≤ 2 */
    bo_expect(&k, q, wq, NULL, (bo_tol){0, rtol, 0});
    bo_expect(&k, a.psum, wp, NULL, (bo_tol){0, rtol, 0});
    bo_case_end(&k);
}

void bo_check_sk_exp(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof sk_shapes / sizeof *sk_shapes; i++)
        sk_exp_case(c, sk_shapes[i], 0);
    sk_exp_case(c, sk_shapes[0], 1);
}

/* One normalisation: two divisions and a row sum of K values: (K + 8)·2^-24 relative per
 * element, and psum_next sums n of those. */
static void sk_norm_case(bo_ctx *c, const int *s, int next)
{
    static const char *nn[] = {"psum_next=NULL", "psum_next", "psum_next=psum"};
    bo_case k;
    bo_case_begin(&k, c, "sk_normalize n=%d K=%d ld=%d off=%d %s", s[0], s[1], s[2], s[3],
                  nn[next]);
    sk_args a = {0};
    a.n = s[0], a.K = s[1], a.alias = next == 2;
    a.q = bo_new(&k, "q", BO_F32, BO_OUT, s[0], s[1], s[2], (size_t) s[3]);
    bo_fill(a.q, 0.01, 1);
    a.psum = bo_vec(&k, "psum", BO_F64, next == 2 ? BO_OUT : BO_IN, (size_t) s[1]);
    bo_fill(a.psum, 0.5, 2);
    if (next == 1) a.psum_next = bo_vec(&k, "psum_next", BO_F64, BO_OUT, (size_t) s[1]);
    a.scratch = bo_new(&k, "scratch", BO_BYTES, BO_SCRATCH, 1, 8 * s[1], 8 * s[1], 0);
    bo_run(&k, sk_norm_run, &a);
    double *wq = bo_want(&k, a.q), *wn = bo_tmpd(&k, (size_t) s[1]);
    poa_naive_sk_normalize(BO_WV(wq, a.q), a.q->ld, wn, BO_HV(a.psum), s[0], s[1]);
    const double rtol = (s[1] + 8) * BO_U32;
    bo_expect(&k, a.q, wq, NULL, (bo_tol){0, rtol, 0});
    bo_buf *nb = next == 1 ? a.psum_next : next == 2 ? a.psum : NULL;
    if (nb) {
        double *w = bo_want(&k, nb);
        memcpy(BO_WV(w, nb), wn, sizeof(double) * (size_t) s[1]);
        bo_expect(&k, nb, w, NULL, (bo_tol){0, rtol + s[0] * 0x1p-53, 0});
    }
    bo_case_end(&k);
}

/* The pieces over `parts` row blocks ("ranks"), the cross-block max and sums done here as the
 * collective would, on backend memory. */
static void pieces_sk(bo_ctx *c, double *T, const double *L, int R, int K, float inv_tau, int iters,
                      int parts)
{
    poa_backend *be = c->be;
    const poa_backend_iface *io = be->iface;
    float *hl = poa_xmalloc(sizeof(float) * (size_t) R * K);
    for (size_t i = 0; i < (size_t) R * K; i++) hl[i] = (float) L[i];
    float *dq = io->alloc(be, sizeof(float) * (size_t) R * K);
    double *dmx = io->alloc(be, sizeof(double) * (size_t) K * parts);
    double *dps = io->alloc(be, sizeof(double) * (size_t) K * parts);
    double *dred = io->alloc(be, sizeof(double) * K), *dscr = io->alloc(be, sizeof(double) * K);
    double *mx = poa_xmalloc(sizeof(double) * (size_t) K * parts),
           *red = poa_xmalloc(sizeof(double) * K);
    io->upload(be, dq, hl, sizeof(float) * (size_t) R * K);
    int start[8], rows[8];
    for (int p = 0; p < parts; p++)
        start[p] = R * p / parts, rows[p] = R * (p + 1) / parts - start[p];
    for (int p = 0; p < parts; p++)
        be->train->col_max(be, dmx + (size_t) p * K, dq + (size_t) start[p] * K, K, rows[p], K);
    io->download(be, mx, dmx, sizeof(double) * (size_t) K * parts);
    for (int j = 0; j < K; j++) {
        red[j] = -INFINITY;
        for (int p = 0; p < parts; p++) red[j] = fmax(red[j], mx[(size_t) p * K + j]);
    }
    io->upload(be, dred, red, sizeof(double) * K);
    for (int p = 0; p < parts; p++) /* in place, as the loss does */
        be->train->sk_exp(be, dq + (size_t) start[p] * K, K, dps + (size_t) p * K,
                          dq + (size_t) start[p] * K, K, dred, rows[p], K, inv_tau);
    for (int it = 0; it < iters; it++) {
        io->download(be, mx, dps, sizeof(double) * (size_t) K * parts);
        for (int j = 0; j < K; j++) {
            red[j] = 0;
            for (int p = 0; p < parts; p++) red[j] += mx[(size_t) p * K + j];
        }
        io->upload(be, dred, red, sizeof(double) * K);
        for (int p = 0; p < parts; p++)
            be->train->sk_normalize(be, dq + (size_t) start[p] * K, K,
                                    it + 1 < iters ? dps + (size_t) p * K : NULL, dred, dscr,
                                    rows[p], K);
    }
    io->download(be, hl, dq, sizeof(float) * (size_t) R * K);
    for (size_t i = 0; i < (size_t) R * K; i++) T[i] = hl[i];
    io->free(be, dq), io->free(be, dmx), io->free(be, dps), io->free(be, dred), io->free(be, dscr);
    free(hl), free(mx), free(red);
}

/* The pieces compose into the official algorithm (norm-wise 1e-5), over one and three
 * "ranks"; rows sum to 1; the prototype sums approach R/K with the iterations; logits shifted
 * by a constant (7, far outside exp's range at 1/τ = 25 without the max subtraction) give the
 * same targets (1e-4). */
static void sk_composite_case(bo_ctx *c, int R, int K)
{
    bo_case k;
    bo_case_begin(&k, c,
                  "col_max + sk_exp + sk_normalize compose into the official "
                  "Sinkhorn-Knopp: R=%d K=%d, 1 and 3 ranks, 3 iterations",
                  R, K);
    const size_t n = (size_t) R * K;
    double *L = bo_tmpd(&k, n), *want = bo_tmpd(&k, n), *T = bo_tmpd(&k, n), *Ls = bo_tmpd(&k, n);
    poa_rng r;
    poa_rng_init(&r, c->seed + (uint64_t) K, 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < n; i++) L[i] = (float) poa_rng_uniform_range(&r, -1, 1);
    const float inv_tau = 1 / 0.04f;
    poa_naive_sinkhorn(want, L, R, K, 1 / 0.04, 3);
    pieces_sk(c, T, L, R, K, inv_tau, 3, 1);
    bo_expect_norm_values(&k, "one rank vs the official algorithm", T, want, n, 1e-5);
    for (int i = 0; i < R; i++) {
        double s = 0;
        for (int j = 0; j < K; j++) s += T[(size_t) i * K + j];
        if (!(fabs(s - 1) < 1e-5)) bo_fail(&k, "sample row %d sums to %.9g", i, s);
    }
    pieces_sk(c, T, L, R, K, inv_tau, 3, 3);
    bo_expect_norm_values(&k, "three ranks vs the official algorithm", T, want, n, 1e-5);
    /* logits of a realistic spread: with |logit/τ| up to 25 three iterations are far from
     * converged (docs/algorithm.md, "Sinkhorn-Knopp targets") */
    double *T1 = bo_tmpd(&k, n), dev1 = 0, dev3 = 0;
    for (size_t i = 0; i < n; i++) Ls[i] = (float) (0.1 * L[i]);
    pieces_sk(c, T1, Ls, R, K, inv_tau, 1, 1);
    pieces_sk(c, T, Ls, R, K, inv_tau, 3, 1);
    for (int j = 0; j < K; j++) {
        double s1 = 0, s3 = 0;
        for (int i = 0; i < R; i++) s1 += T1[(size_t) i * K + j], s3 += T[(size_t) i * K + j];
        dev1 = fmax(dev1, fabs(s1 - (double) R / K)), dev3 = fmax(dev3, fabs(s3 - (double) R / K));
    }
    if (!(dev3 < dev1 && dev3 < 0.25 * R / K))
        bo_fail(&k, "prototype sums: max deviation from R/K %g after 1 and %g after 3 iterations",
                dev1, dev3);
    else
        bo_note(&k, "prototype sums: max deviation from R/K %g after 1, %g after 3 iterations",
                dev1, dev3);
    for (size_t i = 0; i < n; i++) Ls[i] = (float) (L[i] + 7.0);
    pieces_sk(c, T, Ls, R, K, inv_tau, 3, 2);
    bo_expect_norm_values(&k, "logits + 7, two ranks", T, want, n, 1e-4);
    bo_case_end(&k);
}

void bo_check_sk_normalize(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof sk_shapes / sizeof *sk_shapes; i++)
        sk_norm_case(c, sk_shapes[i], 1);
    sk_norm_case(c, sk_shapes[0], 0);
    sk_norm_case(c, sk_shapes[0], 2);
    sk_composite_case(c, 40, 24);
    sk_composite_case(c, 40, 600);
}

/* ------------------------------------------------------------------------ KoLeo */
typedef struct koleo_args {
    bo_buf *loss, *dz, *z, *scratch;
    int n, c;
    float loss_scale, grad_scale;
} koleo_args;

static void koleo_run(poa_backend *be, void *p)
{
    const koleo_args *a = p;
    be->train->koleo(be, BO_D(a->loss), BO_F(a->dz), a->dz->ld, BO_F(a->z), a->z->ld, a->n, a->c,
                     a->loss_scale, a->grad_scale, bo_dev(a->scratch));
}

static void koleo_buffers(bo_case *k, koleo_args *a, int ld, size_t off)
{
    poa_backend *be = k->c->be;
    a->z = bo_new(k, "z", BO_F32, BO_IN, a->n, a->c, ld, off);
    poa_rng r;
    poa_rng_init(&r, k->c->seed + 3, 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < a->z->n; i++) a->z->h[i] = poa_rng_normal(&r);
    a->dz = bo_new(k, "dz", BO_F32, BO_OUT, a->n, a->c, ld, off);
    bo_fill(a->dz, -1e-3, 1e-3); /* junk to add onto, small: dz's entries are ~1e-5 */
    a->loss = bo_vec(k, "loss", BO_F64, BO_OUT, 1);
    const size_t sb = be->train->koleo_scratch_bytes(be, a->n, a->c);
    a->scratch = bo_new(k, "scratch", BO_BYTES, BO_SCRATCH, 1, (int) sb, (int) sb, 0);
}

/* The added loss within 1e-6 relative (and 1e-6 of loss_scale), the added dz norm-wise
 * within 1e-4 (c ≤ 64) and every element within 1e-4 of the largest. */
static void koleo_case(bo_ctx *c, int n, int cdim, int ld, size_t off)
{
    bo_case k;
    bo_case_begin(&k, c, "koleo n=%d c=%d ld=%d off=%zu loss_scale=0.5 grad_scale=0.25 (+=)", n,
                  cdim, ld, off);
    koleo_args a = {NULL, NULL, NULL, NULL, n, cdim, 0.5f, 0.25f};
    koleo_buffers(&k, &a, ld, off);
    bo_run(&k, koleo_run, &a);
    double *dz = bo_tmpd(&k, (size_t) n * ld);
    const double loss =
        poa_naive_koleo(dz, ld, BO_HV(a.z), ld, n, cdim, a.loss_scale, a.grad_scale);
    /* log(d) near 0 cancels: 1e-6 of the terms' magnitude (~loss_scale) as well */
    bo_expect_scalar(&k, "loss added", BO_GV(a.loss)[0] - BO_HV(a.loss)[0], loss,
                     1e-6 * a.loss_scale, 1e-6);
    double *want = bo_tmpd(&k, (size_t) n * cdim);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < cdim; j++) want[(size_t) i * cdim + j] = dz[(size_t) i * ld + j];
    double *got = bo_view_copy(&k, a.dz, bo_delta(&k, a.dz));
    if (cdim <= 64) bo_expect_norm_values(&k, "dz added", got, want, (size_t) n * cdim, 1e-4);
    /* every element within 1e-4 of the largest: dz is the gradient projected on the sphere's
     * tangent, (g − x (x·g)) / ||z||, whose fp32 error scales with |g|, not with the (much
     * smaller, in high dimension) projection */
    double m = 0, worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < (size_t) n * cdim; i++) m = fmax(m, fabs(want[i]));
    for (size_t i = 0; i < (size_t) n * cdim; i++)
        if (!(fabs(got[i] - want[i]) <= worst)) worst = fabs(got[i] - want[i]), wi = i;
    if (!(worst <= 1e-4 * m))
        bo_fail(&k, "dz added: worst [%zu] got %.9g want %.9g: |diff| %.3g > 1e-4 of max|dz| %.3g",
                wi, got[wi], want[wi], worst, m);
    else
        bo_note(&k, "dz added: worst [%zu] |diff| %.3g, 1e-4 of max|dz| %.3g", wi, worst, m);
    bo_case_end(&k);
}

/* Identical rows: the loss finite and large (the eps terms), the gradient finite. */
static void koleo_identical_case(bo_ctx *c)
{
    enum { N = 9, C = 13, LD = 16 };
    bo_case k;
    bo_case_begin(&k, c, "koleo n=%d c=%d identical rows: loss finite and > 10, dz finite", N, C);
    koleo_args a = {NULL, NULL, NULL, NULL, N, C, 1.0f, 1.0f};
    koleo_buffers(&k, &a, LD, 0);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) BO_HV(a.z)[(size_t) i * LD + j] = j + 1;
    BO_HV(a.loss)[0] = 0;
    bo_run(&k, koleo_run, &a);
    const double loss = BO_GV(a.loss)[0];
    if (!(isfinite(loss) && loss > 10)) bo_fail(&k, "loss %g: want finite and > 10", loss);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++)
            if (!isfinite(BO_GV(a.dz)[(size_t) i * LD + j])) {
                bo_fail(&k, "dz(%d, %d) = %g is not finite", i, j,
                        BO_GV(a.dz)[(size_t) i * LD + j]);
                i = N;
                break;
            }
    bo_case_end(&k);
}

void bo_check_koleo(bo_ctx *c)
{
    koleo_case(c, 9, 13, 16, 0);
    koleo_case(c, 2, 5, 5, 0);
    koleo_case(c, 64, 384, 384, 0); /* the cls tokens of 64 images, ViT-S */
    koleo_case(c, 17, 33, 35, 1);
    koleo_identical_case(c);
}

typedef struct koleo_fd {
    int n, c, ld;
    double *z;
} koleo_fd;

static double koleo_objective(void *p)
{
    koleo_fd *f = p;
    return poa_naive_koleo(NULL, 0, f->z, f->ld, f->n, f->c, 1.0, 1.0);
}

typedef struct koleo_dir {
    koleo_args a;
    bo_buf *zp, *zm, *lp, *lm;
} koleo_dir;

static void koleo_dir_run(poa_backend *be, void *p)
{
    const koleo_dir *d = p;
    const koleo_args *a = &d->a;
    koleo_run(be, (void *) a);
    be->train->koleo(be, BO_D(d->lp), BO_F(a->dz), a->dz->ld, BO_F(d->zp), a->z->ld, a->n, a->c,
                     1.0f, 0.0f, bo_dev(a->scratch));
    be->train->koleo(be, BO_D(d->lm), BO_F(a->dz), a->dz->ld, BO_F(d->zm), a->z->ld, a->n, a->c,
                     1.0f, 0.0f, bo_dev(a->scratch));
}

/* FD of the naive loss (h 1e-5): the naive gradient within 1e-6, the backend's within 1e-4 of
 * the largest |FD|; the backend's own loss along ±2^-12 against its <dz, v> within 1e-2.  The
 * two extra loss evaluations run with grad_scale 0, so dz holds the first call's gradient. */
void bo_grad_koleo(bo_ctx *c)
{
    const int shapes[][2] = {{9, 13}, {16, 40}, {64, 384}};
    for (int s = 0; s < 3; s++) {
        const int n = shapes[s][0], cd = shapes[s][1], ld = cd + 3;
        bo_case k;
        bo_case_begin(&k, c,
                      "koleo n=%d c=%d: dz vs finite differences of the naive loss and of "
                      "the backend's",
                      n, cd);
        koleo_dir d = {{NULL, NULL, NULL, NULL, n, cd, 1.0f, 1.0f}, NULL, NULL, NULL, NULL};
        koleo_buffers(&k, &d.a, ld, 0);
        bo_prepare(&k);
        const double h = 0x1p-12;
        d.zp = bo_new(&k, "z+hv", BO_F32, BO_IN, n, cd, ld, 0);
        d.zm = bo_new(&k, "z-hv", BO_F32, BO_IN, n, cd, ld, 0);
        double *v = bo_tmpd(&k, (size_t) n * ld);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < cd; j++) {
                const size_t e = (size_t) i * ld + j;
                const double zp = (float) (BO_HV(d.a.z)[e] + h), zm = (float) (BO_HV(d.a.z)[e] - h);
                v[e] = (zp - zm) / (2 * h); /* the exact perturbation of the fp32 values */
                BO_HV(d.zp)[e] = zp, BO_HV(d.zm)[e] = zm;
            }
        d.lp = bo_vec(&k, "loss(z+hv)", BO_F64, BO_OUT, 1);
        d.lm = bo_vec(&k, "loss(z-hv)", BO_F64, BO_OUT, 1);
        bo_run(&k, koleo_dir_run, &d);
        double *z = bo_want(&k, d.a.z), *ng = bo_tmpd(&k, (size_t) n * ld);
        poa_naive_koleo(ng, ld, BO_WV(z, d.a.z), ld, n, cd, 1.0, 1.0);
        double *got = BO_WV(bo_delta(&k, d.a.dz), d.a.dz);
        koleo_fd f = {n, cd, ld, BO_WV(z, d.a.z)};
        bo_fd(&k, "dz", koleo_objective, &f, BO_WV(z, d.a.z), n, cd, ld, ng, got, ld, 300, 1e-5,
              1e-6, 1e-4);
        double dir = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < cd; j++) dir += got[(size_t) i * ld + j] * v[(size_t) i * ld + j];
        const double fd =
            (BO_GV(d.lp)[0] - BO_HV(d.lp)[0] - BO_GV(d.lm)[0] + BO_HV(d.lm)[0]) / (2 * h);
        bo_expect_scalar(&k, "backend: <dz, v> vs (loss(z+hv) - loss(z-hv)) / 2h", dir, fd, 0,
                         1e-2);
        bo_case_end(&k);
    }
}

/* ------------------------------------------------------------------------ AdamW */
typedef struct adamw_args {
    bo_buf *p, *m, *v, *g, *segs, *pact;
    int nseg;
    poa_adamw_args args;
} adamw_args;

static void adamw_run(poa_backend *be, void *p)
{
    const adamw_args *a = p;
    be->train->adamw(be, BO_F(a->p), BO_F(a->m), BO_F(a->v), BO_F(a->g), bo_dev(a->segs), a->nseg,
                     &a->args, a->pact ? BO_A(a->pact) : NULL);
}

/* The state of a multi-step run: the backend's fp32 buffers and the double reference. */
typedef struct adamw_state {
    size_t n;
    float *p, *m, *v;
    double *rp, *rm, *rv;
} adamw_state;

/* One step from `st`: p, m, v norm-wise within 1e-6 of the reference (which evolves in double
 * from the first step); param_act exactly the updated p rounded to the compute dtype; the
 * padding between segments never touched. */
static void adamw_step_case(bo_ctx *c, adamw_state *st, const poa_optim_seg *segs, int nseg,
                            int step, int with_act, uint64_t gseed)
{
    const size_t n = st->n;
    poa_adamw_args args = {.lr = 1e-3 * step,
                           .last_layer_lr = step == 1 ? 0 : 2e-3,
                           .wd = 0.04,
                           .beta1 = 0.9,
                           .beta2 = 0.999,
                           .eps = 1e-8,
                           .step = step,
                           .grad_scale = {0.75f, 1.0f, 1.0f, 1.0f}};
    bo_case k;
    bo_case_begin(&k, c,
                  "adamw n=%zu segments=%d step=%d lr=%g last_layer_lr=%g clip "
                  "scales=0.75/1 param_act=%s",
                  n, nseg, step, args.lr, args.last_layer_lr, with_act ? "yes" : "NULL");
    adamw_args a = {NULL, NULL, NULL, NULL, NULL, NULL, nseg, args};
    a.p = bo_vec(&k, "param", BO_F32, BO_OUT, n);
    a.m = bo_vec(&k, "exp_avg", BO_F32, BO_OUT, n);
    a.v = bo_vec(&k, "exp_avg_sq", BO_F32, BO_OUT, n);
    a.g = bo_vec(&k, "grad", BO_F32, BO_IN, n);
    a.segs = bo_new(&k, "segs", BO_BYTES, BO_IN, 1, (int) (sizeof *segs * nseg),
                    (int) (sizeof *segs * nseg), 0);
    bo_set_bytes(a.segs, segs, sizeof *segs * nseg);
    if (with_act) a.pact = bo_vec(&k, "param_act", BO_ACT, BO_OUT, n);
    poa_rng r;
    poa_rng_init(&r, gseed, 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < n; i++) {
        BO_HV(a.p)[i] = st->p[i], BO_HV(a.m)[i] = st->m[i], BO_HV(a.v)[i] = st->v[i];
        BO_HV(a.g)[i] = (float) (0.01 * poa_rng_normal(&r));
    }
    bo_run(&k, adamw_run, &a);
    poa_naive_adamw(st->rp, st->rm, st->rv, BO_HV(a.g), segs, nseg, &args);
    bo_expect_norm_values(&k, "param", BO_GV(a.p), st->rp, n, 1e-6);
    bo_expect_norm_values(&k, "exp_avg", BO_GV(a.m), st->rm, n, 1e-6);
    bo_expect_norm_values(&k, "exp_avg_sq", BO_GV(a.v), st->rv, n, 1e-6);
    if (a.pact) { /* the segments' elements; the padding keeps its bits */
        double *want = bo_want(&k, a.pact);
        for (int s = 0; s < nseg; s++)
            for (uint64_t i = segs[s].offset; i < segs[s].offset + segs[s].numel; i++)
                BO_WV(want, a.pact)[i] = bo_round_act(c, BO_GV(a.p)[i]);
        bo_expect(&k, a.pact, want, NULL, (bo_tol){0, 0, 0});
    }
    size_t covered = 0; /* padding: elements outside every segment keep their bits */
    for (size_t i = 0; i < n; i++) {
        int in = 0;
        for (int s = 0; s < nseg; s++)
            in |= i >= segs[s].offset && i < segs[s].offset + segs[s].numel;
        covered += in;
        if (!in && (BO_GV(a.p)[i] != BO_HV(a.p)[i] || BO_GV(a.m)[i] != BO_HV(a.m)[i] ||
                    BO_GV(a.v)[i] != BO_HV(a.v)[i])) {
            bo_fail(&k, "element %zu (between segments) changed", i);
            break;
        }
    }
    for (size_t i = 0; i < n; i++)
        st->p[i] = (float) BO_GV(a.p)[i], st->m[i] = (float) BO_GV(a.m)[i],
        st->v[i] = (float) BO_GV(a.v)[i];
    bo_note(&k, "%zu of %zu elements in segments", covered, n);
    bo_case_end(&k);
}

static void adamw_run_steps(bo_ctx *c, size_t n, const poa_optim_seg *segs, int nseg, int steps)
{
    adamw_state st = {n,
                      poa_xcalloc(n, 4),
                      poa_xcalloc(n, 4),
                      poa_xcalloc(n, 4),
                      poa_xcalloc(n, 8),
                      poa_xcalloc(n, 8),
                      poa_xcalloc(n, 8)};
    poa_rng r;
    poa_rng_init(&r, c->seed + 21, 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < n; i++) st.p[i] = (float) (0.1 * poa_rng_normal(&r)), st.rp[i] = st.p[i];
    for (int step = 1; step <= steps; step++)
        adamw_step_case(c, &st, segs, nseg, step, step != 2, c->seed + 30 + (uint64_t) step);
    free(st.p), free(st.m), free(st.v), free(st.rp), free(st.rm), free(st.rv);
}

void bo_check_adamw(bo_ctx *c)
{
    const poa_optim_seg segs[3] = {
        {0, 40, 0.5f, 1.0f, 0, 0},  /* decayed, lr × 0.5, backbone clip group */
        {48, 16, 1.0f, 0.0f, 0, 0}, /* no weight decay                        */
        {64, 32, 1.0f, 1.0f, 1, 1}, /* last layer, head clip group            */
    };
    adamw_run_steps(c, 96, segs, 3, 3);
    const poa_optim_seg big[2] = {{0, 65539, 1.0f, 1.0f, 0, 0}, {65543, 34460, 1.0f, 0.0f, 1, 1}};
    adamw_run_steps(c, 100003, big, 2, 2); /* vector paths with ragged tails */
}

/* ------------------------------------------------------------------------ EMA */
typedef struct ema_args {
    bo_buf *t, *s, *tact;
    double m;
} ema_args;

static void ema_run(poa_backend *be, void *p)
{
    const ema_args *a = p;
    be->train->ema(be, BO_F(a->t), BO_F(a->s), (size_t) a->t->cols, a->m,
                   a->tact ? BO_A(a->tact) : NULL);
}

/* m·t + (1 − m)·s in fp32: the scalars, the products and the sum rounded (4·2^-24 of
 * |m t| + |(1 − m) s|); t_act exactly t rounded to the compute dtype. */
static void ema_case(bo_ctx *c, int n, size_t off, int with_act)
{
    const double m = 0.992;
    bo_case k;
    bo_case_begin(&k, c, "ema n=%d m=%g off=%zu t_act=%s", n, m, off, with_act ? "yes" : "NULL");
    ema_args a = {NULL, NULL, NULL, m};
    a.t = bo_new(&k, "t", BO_F32, BO_OUT, 1, n, n, off);
    a.s = bo_new(&k, "s", BO_F32, BO_IN, 1, n, n, 0);
    if (with_act) a.tact = bo_new(&k, "t_act", BO_ACT, BO_OUT, 1, n, n, off);
    bo_run(&k, ema_run, &a);
    double *want = bo_want(&k, a.t), *mag = bo_tmpd(&k, a.t->n);
    for (int i = 0; i < n; i++)
        BO_WV(mag, a.t)[i] = fabs(m * BO_HV(a.t)[i]) + fabs((1 - m) * BO_HV(a.s)[i]);
    poa_naive_ema(BO_WV(want, a.t), BO_HV(a.s), (size_t) n, m);
    bo_expect(&k, a.t, want, mag, (bo_tol){0, 0, 4 * BO_U32});
    if (a.tact) {
        double *w = bo_want(&k, a.tact);
        for (int i = 0; i < n; i++) BO_WV(w, a.tact)[i] = bo_round_act(c, BO_GV(a.t)[i]);
        bo_expect(&k, a.tact, w, NULL, (bo_tol){0, 0, 0});
    }
    bo_case_end(&k);
}

void bo_check_ema(bo_ctx *c)
{
    ema_case(c, 96, 0, 1);
    ema_case(c, 100003, 0, 1);
    ema_case(c, 1, 0, 1);
    ema_case(c, 37, 1, 1);
    ema_case(c, 96, 0, 0);
}

/* ------------------------------------------------------------------------ perf */
static int head_rows(const bo_ctx *c)
{
    return c->images * 10;
}

typedef struct perf_train {
    int n, K;
    float *x, *y, *t, *z, *dz;
    double *slot, *mx, *psum, *scr;
    void *kscr;
    size_t numel;
} perf_train;

static void perf_sq_run(poa_backend *be, void *p)
{
    const perf_train *t = p;
    be->train->sum_squares(be, t->slot, t->x, t->numel);
}

static void perf_sm_run(poa_backend *be, void *p)
{
    const perf_train *t = p;
    be->train->softmax_rows(be, t->y, t->K, t->x, t->K, t->n, t->K, 10.0f);
}

static void perf_xent_run(poa_backend *be, void *p)
{
    const perf_train *t = p;
    be->train->xent(be, t->slot, t->y, t->K, t->x, t->K, t->t, t->K, t->n, 0, NULL, t->n, t->K,
                    10.0f, 1.0f, 1.0f);
}

static void perf_colmax_run(poa_backend *be, void *p)
{
    const perf_train *t = p;
    be->train->col_max(be, t->mx, t->x, t->K, t->n, t->K);
}

static void perf_skexp_run(poa_backend *be, void *p)
{
    const perf_train *t = p;
    be->train->sk_exp(be, t->y, t->K, t->psum, t->x, t->K, t->mx, t->n, t->K, 25.0f);
}

static void perf_sknorm_run(poa_backend *be, void *p)
{
    const perf_train *t = p;
    be->train->sk_normalize(be, t->y, t->K, t->psum, t->psum, t->scr, t->n, t->K);
}

static void perf_koleo_run(poa_backend *be, void *p)
{
    const perf_train *t = p;
    be->train->koleo(be, t->slot, t->dz, t->K, t->z, t->K, t->n, t->K, 1.0f, 1.0f, t->kscr);
}

/* The heads' logits: rows × 65536 prototypes. */
static void perf_head_op(bo_ctx *c, bo_fn fn, int passes)
{
    perf_train t = {0};
    t.n = head_rows(c), t.K = BO_PROTOTYPES;
    const size_t n = (size_t) t.n * t.K;
    t.x = bo_perf_alloc(c, BO_F32, n, -1, 1), t.y = bo_perf_alloc(c, BO_F32, n, 0, 1);
    t.t = bo_perf_alloc(c, BO_F32, n, 0, 1.0 / t.K);
    t.slot = bo_perf_alloc(c, BO_F64, 1, 0, 0);
    t.mx = bo_perf_alloc(c, BO_F64, (size_t) t.K, 0, 0);
    t.psum = bo_perf_alloc(c, BO_F64, (size_t) t.K, 0, 0);
    t.scr = bo_perf_alloc(c, BO_F64, (size_t) t.K, 0, 0);
    double *ones = poa_xmalloc(sizeof(double) * t.K);
    for (int j = 0; j < t.K; j++) ones[j] = 1;
    c->be->iface->upload(c->be, t.mx, ones, sizeof(double) * t.K);
    c->be->iface->upload(c->be, t.psum, ones, sizeof(double) * t.K);
    free(ones);
    const double s = bo_time(c, fn, &t);
    char shape[64];
    snprintf(shape, sizeof shape, "head logits n=%d K=%d", t.n, t.K);
    bo_perf_line(c, shape, s, 4.0 * passes * n, 0);
    bo_perf_free(c, t.x), bo_perf_free(c, t.y), bo_perf_free(c, t.t), bo_perf_free(c, t.slot);
    bo_perf_free(c, t.mx), bo_perf_free(c, t.psum), bo_perf_free(c, t.scr);
}

void bo_perf_softmax_rows(bo_ctx *c)
{
    perf_head_op(c, perf_sm_run, 2);
}

void bo_perf_xent(bo_ctx *c)
{
    perf_head_op(c, perf_xent_run, 4);
}

void bo_perf_col_max(bo_ctx *c)
{
    perf_head_op(c, perf_colmax_run, 1);
}

void bo_perf_sk_exp(bo_ctx *c)
{
    perf_head_op(c, perf_skexp_run, 2);
}

void bo_perf_sk_normalize(bo_ctx *c)
{
    perf_head_op(c, perf_sknorm_run, 3);
}

void bo_perf_koleo(bo_ctx *c)
{
    perf_train t = {0};
    t.n = c->images, t.K = bo_vits[0].d; /* the cls tokens of one global crop per image */
    const size_t n = (size_t) t.n * t.K;
    t.z = bo_perf_alloc(c, BO_F32, n, -1, 1), t.dz = bo_perf_alloc(c, BO_F32, n, -1, 1);
    t.slot = bo_perf_alloc(c, BO_F64, 1, 0, 0);
    t.kscr = bo_perf_alloc(c, BO_BYTES, c->be->train->koleo_scratch_bytes(c->be, t.n, t.K), 0, 0);
    const double s = bo_time(c, perf_koleo_run, &t);
    char shape[64];
    snprintf(shape, sizeof shape, "cls tokens n=%d c=%d", t.n, t.K);
    bo_perf_line(c, shape, s, 0, 2.0 * t.n * t.n * t.K);
    bo_perf_free(c, t.z), bo_perf_free(c, t.dz), bo_perf_free(c, t.slot), bo_perf_free(c, t.kscr);
}

/* ViT-S/16 with its heads: ~22M backbone + ~17M for the DINO head's last layer. */
#define PERF_PARAMS ((size_t) 39 * 1000 * 1000)

void bo_perf_sum_squares(bo_ctx *c)
{
    perf_train t = {0};
    t.numel = PERF_PARAMS;
    t.x = bo_perf_alloc(c, BO_F32, t.numel, -1, 1);
    t.slot = bo_perf_alloc(c, BO_F64, 1, 0, 0);
    const double s = bo_time(c, perf_sq_run, &t);
    char shape[64];
    snprintf(shape, sizeof shape, "ViT-S + heads gradients n=%zu", t.numel);
    bo_perf_line(c, shape, s, 4.0 * t.numel, 0);
    bo_perf_free(c, t.x), bo_perf_free(c, t.slot);
}

typedef struct perf_opt {
    size_t n;
    float *p, *m, *v, *g;
    poa_act *pact;
    poa_optim_seg *segs;
    poa_adamw_args args;
} perf_opt;

static void perf_adamw_run(poa_backend *be, void *p)
{
    const perf_opt *o = p;
    be->train->adamw(be, o->p, o->m, o->v, o->g, o->segs, 2, &o->args, o->pact);
}

static void perf_ema_run(poa_backend *be, void *p)
{
    const perf_opt *o = p;
    be->train->ema(be, o->p, o->g, o->n, 0.996, o->pact);
}

static void perf_opt_op(bo_ctx *c, int ema)
{
    perf_opt o = {0};
    o.n = PERF_PARAMS;
    o.p = bo_perf_alloc(c, BO_F32, o.n, -1, 1), o.m = bo_perf_alloc(c, BO_F32, o.n, 0, 0);
    o.v = bo_perf_alloc(c, BO_F32, o.n, 0, 0), o.g = bo_perf_alloc(c, BO_F32, o.n, -1, 1);
    o.pact = bo_perf_alloc(c, BO_ACT, o.n, 0, 0);
    const poa_optim_seg segs[2] = {{0, o.n / 2, 1, 1, 0, 0}, {o.n / 2, o.n - o.n / 2, 1, 0, 1, 1}};
    o.segs = bo_perf_alloc(c, BO_BYTES, sizeof segs, 0, 0);
    c->be->iface->upload(c->be, o.segs, segs, sizeof segs);
    o.args = (poa_adamw_args){.lr = 1e-4,
                              .last_layer_lr = 1e-4,
                              .wd = 0.04,
                              .beta1 = 0.9,
                              .beta2 = 0.999,
                              .eps = 1e-8,
                              .step = 10,
                              .grad_scale = {1, 1, 1, 1}};
    const double s = bo_time(c, ema ? perf_ema_run : perf_adamw_run, &o);
    char shape[96];
    snprintf(shape, sizeof shape, "ViT-S + heads n=%zu, compute copy", o.n);
    const double bytes = ema ? (12.0 + c->be->act_size) * o.n : (28.0 + c->be->act_size) * o.n;
    bo_perf_line(c, shape, s, bytes, 0);
    bo_perf_free(c, o.p), bo_perf_free(c, o.m), bo_perf_free(c, o.v), bo_perf_free(c, o.g);
    bo_perf_free(c, o.pact), bo_perf_free(c, o.segs);
}

void bo_perf_adamw(bo_ctx *c)
{
    perf_opt_op(c, 0);
}

void bo_perf_ema(bo_ctx *c)
{
    perf_opt_op(c, 1);
}
