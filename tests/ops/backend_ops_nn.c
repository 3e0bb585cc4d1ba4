/* backend_ops_nn.c — element-wise and row ops of tests/ops/test_backend_ops: GELU (fp32 and
 * on activations), L2 normalisation, weight normalisation, axpy, scale, the position-embedding
 * resampling and act_from_f32.
 *
 * fp32 tolerances are those the CPU backend's op tests established (errors of an fp32
 * computation of the formula, a few dozen units of 2^-24 relative to the result and an
 * absolute floor for values near zero).  An output in the compute dtype adds one rounding
 * (bf16: 2^-8 of the value) per bf16 store on the value's path (bo_bf16()).
 */
#include "backend_ops.h"

#include "common/poa_error.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* r roundings to the compute dtype when it is not fp32 (the fp32 tolerance covers fp32's). */
static double bo_bf16(const bo_ctx *c, int r)
{
    return c->be->act_dtype == POA_DT_F32 ? 0 : r * bo_u_act(c);
}

/* ------------------------------------------------------------------------ GELU */
/* The erf/erfc of an fp32 GELU: within 2e-6 relative (the CPU's AVX-512 kernels measure
 * 5e-7, libm's a few ulp) and 2e-7 absolute (the libm form 0.5 x (1 + erf(x/√2)) cancels for
 * x ≪ 0); the derivative within 1e-5 relative (exp and erf of the same argument). */
#define GELU_ATOL     2e-7
#define GELU_FWD_RTOL 2e-6
#define GELU_BWD_RTOL 1e-5

typedef struct gelu_args {
    int act;
    size_t n;
    bo_buf *x, *y, *dy, *dx, *y2, *dxy, *yf;
} gelu_args;

static void gelu_fwd_run(poa_backend *be, void *p)
{
    const gelu_args *a = p;
    if (a->act)
        be->nn->act_gelu_fwd(be, BO_A(a->y), BO_A(a->x), a->n);
    else
        be->nn->gelu_fwd(be, BO_F(a->y), BO_F(a->x), a->n);
}

/* dx (y NULL); the fused form in place (dx = dy, y returned) as the MLP backward calls it;
 * and the forward, whose y the fused form must repeat bit for bit. */
static void gelu_bwd_run(poa_backend *be, void *p)
{
    const gelu_args *a = p;
    if (a->act) {
        be->nn->act_gelu_fwd(be, BO_A(a->yf), BO_A(a->x), a->n);
        be->nn->act_gelu_bwd(be, BO_A(a->dx), NULL, BO_A(a->dy), BO_A(a->x), a->n);
        be->nn->act_gelu_bwd(be, BO_A(a->dxy), BO_A(a->y2), BO_A(a->dxy), BO_A(a->x), a->n);
    } else {
        be->nn->gelu_fwd(be, BO_F(a->yf), BO_F(a->x), a->n);
        be->nn->gelu_bwd(be, BO_F(a->dx), NULL, BO_F(a->dy), BO_F(a->x), a->n);
        be->nn->gelu_bwd(be, BO_F(a->dxy), BO_F(a->y2), BO_F(a->dxy), BO_F(a->x), a->n);
    }
}

typedef struct gelu_shape {
    size_t n;
    double lo, hi;
    size_t offx, offy;
    int anchors; /* x[0..5] = 0, -0, 1, -1, 3, -3 */
} gelu_shape;

static const gelu_shape gelu_shapes[] = {
    {70001, -7, 7, 0, 0, 1},                        /* odd, threaded */
    {1, -3, 3, 0, 0, 0},      {17, -5, 5, 1, 3, 0}, /* unaligned starts */
    {65, -10, 10, 0, 0, 0},                         /* one past a 64-value block */
    {4096, -10, 10, 3, 1, 1},
};

static bo_buf *gelu_x(bo_case *k, const gelu_args *a, const gelu_shape *s)
{
    bo_buf *x = bo_new(k, "x", a->act ? BO_ACT : BO_F32, BO_IN, 1, (int) s->n, (int) s->n, s->offx);
    bo_fill(x, s->lo, s->hi);
    const double anchors[] = {0.0, -0.0, 1, -1, 3, -3};
    for (size_t i = 0; s->anchors && i < 6 && i < s->n; i++) BO_HV(x)[i] = anchors[i];
    return x;
}

static void gelu_fwd_case(bo_ctx *c, int act, const gelu_shape *s)
{
    bo_case k;
    bo_case_begin(&k, c, "%s n=%zu x in [%g, %g) off=%zu/%zu", act ? "act_gelu_fwd" : "gelu_fwd",
                  s->n, s->lo, s->hi, s->offx, s->offy);
    gelu_args a = {act, s->n, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    a.x = gelu_x(&k, &a, s);
    a.y = bo_new(&k, "y", act ? BO_ACT : BO_F32, BO_OUT, 1, (int) s->n, (int) s->n, s->offy);
    bo_run(&k, gelu_fwd_run, &a);
    double *want = bo_want(&k, a.y);
    poa_naive_gelu_fwd(BO_WV(want, a.y), BO_HV(a.x), s->n);
    const double r = act ? bo_bf16(c, 1) : 0;
    bo_expect(&k, a.y, want, NULL, (bo_tol){GELU_ATOL, GELU_FWD_RTOL + r, 0});
    if (s->anchors && (!act || c->be->act_dtype == POA_DT_F32)) {
        /* GELU(1) = 0.8413447460685429, GELU(-1) = -0.15865525393145707, GELU(0) = 0 */
        bo_expect_scalar(&k, "gelu(0)", BO_GV(a.y)[0], 0.0, 0, 0);
        bo_expect_scalar(&k, "gelu(1)", BO_GV(a.y)[2], 0.8413447460685429, 1e-7, 0);
        bo_expect_scalar(&k, "gelu(-1)", BO_GV(a.y)[3], -0.15865525393145707, 1e-7, 0);
    }
    bo_case_end(&k);
}

static void gelu_bwd_case(bo_ctx *c, int act, const gelu_shape *s)
{
    bo_case k;
    bo_case_begin(&k, c,
                  "%s n=%zu x in [%g, %g) off=%zu/%zu; y NULL, and in place (dx = dy) with y",
                  act ? "act_gelu_bwd" : "gelu_bwd", s->n, s->lo, s->hi, s->offx, s->offy);
    const bo_kind kind = act ? BO_ACT : BO_F32;
    const int n = (int) s->n;
    gelu_args a = {act, s->n, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    a.x = gelu_x(&k, &a, s);
    a.dy = bo_new(&k, "dy", kind, BO_IN, 1, n, n, s->offy);
    a.dx = bo_new(&k, "dx", kind, BO_OUT, 1, n, n, s->offy);
    a.dxy = bo_new(&k, "dx=dy", kind, BO_OUT, 1, n, n, s->offx);
    a.y2 = bo_new(&k, "y (fused)", kind, BO_OUT, 1, n, n, s->offy);
    a.yf = bo_new(&k, "y (gelu_fwd)", kind, BO_OUT, 1, n, n, 0);
    memcpy(BO_HV(a.dxy), BO_HV(a.dy), sizeof(double) * s->n);
    bo_run(&k, gelu_bwd_run, &a);
    double *want = bo_want(&k, a.dx);
    poa_naive_gelu_bwd(BO_WV(want, a.dx), BO_HV(a.dy), BO_HV(a.x), s->n);
    const double r = act ? bo_bf16(c, 1) : 0;
    bo_expect(&k, a.dx, want, NULL, (bo_tol){GELU_ATOL, GELU_BWD_RTOL + r, 0});
    bo_expect_same_bytes(&k, a.dxy, a.dx);
    bo_expect_same_bytes(&k, a.y2, a.yf);
    bo_case_end(&k);
}

void bo_check_gelu_fwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof gelu_shapes / sizeof *gelu_shapes; i++)
        gelu_fwd_case(c, 0, &gelu_shapes[i]);
}

void bo_check_gelu_bwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof gelu_shapes / sizeof *gelu_shapes; i++)
        gelu_bwd_case(c, 0, &gelu_shapes[i]);
}

void bo_check_act_gelu_fwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof gelu_shapes / sizeof *gelu_shapes; i++)
        gelu_fwd_case(c, 1, &gelu_shapes[i]);
}

void bo_check_act_gelu_bwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof gelu_shapes / sizeof *gelu_shapes; i++)
        gelu_bwd_case(c, 1, &gelu_shapes[i]);
}

typedef struct gelu_fd {
    size_t n;
    double *x, *y, *w;
} gelu_fd;

static double gelu_objective(void *p)
{
    gelu_fd *f = p;
    poa_naive_gelu_fwd(f->y, f->x, f->n);
    return bo_dot(f->w, f->y, 1, (int) f->n, (int) f->n);
}

/* FD in double (h 1e-5): the naive derivative within 1e-7, the backend's within 1e-4 of the
 * largest |FD| (bf16: plus the rounding of dx). */
static void gelu_grad_case(bo_ctx *c, int act)
{
    const gelu_shape s = {70001, -7, 7, 0, 0, 0};
    bo_case k;
    bo_case_begin(&k, c, "%s n=%zu vs finite differences of the naive forward",
                  act ? "act_gelu_bwd" : "gelu_bwd", s.n);
    const bo_kind kind = act ? BO_ACT : BO_F32;
    const int n = (int) s.n;
    gelu_args a = {act, s.n, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    a.x = gelu_x(&k, &a, &s);
    a.dy = bo_new(&k, "dy", kind, BO_IN, 1, n, n, 0);
    a.dx = bo_new(&k, "dx", kind, BO_OUT, 1, n, n, 0);
    a.dxy = bo_new(&k, "dx=dy", kind, BO_OUT, 1, n, n, 0);
    a.y2 = bo_new(&k, "y (fused)", kind, BO_OUT, 1, n, n, 0);
    a.yf = bo_new(&k, "y (gelu_fwd)", kind, BO_OUT, 1, n, n, 0);
    bo_run(&k, gelu_bwd_run, &a);
    double *ng = bo_tmpd(&k, s.n), *x = bo_tmpd(&k, s.n), *y = bo_tmpd(&k, s.n);
    memcpy(x, BO_HV(a.x), sizeof(double) * s.n);
    poa_naive_gelu_bwd(ng, BO_HV(a.dy), x, s.n);
    gelu_fd f = {s.n, x, y, BO_HV(a.dy)};
    bo_fd(&k, "dx", gelu_objective, &f, x, 1, n, n, ng, BO_GV(a.dx), n, 300, 1e-5, 1e-7,
          1e-4 + bo_bf16(c, 1));
    bo_case_end(&k);
}

void bo_grad_gelu(bo_ctx *c)
{
    gelu_grad_case(c, 0);
}

void bo_grad_act_gelu(bo_ctx *c)
{
    gelu_grad_case(c, 1);
}

/* ------------------------------------------------------------------------ L2 normalisation */
/* y within 1e-6 + 2e-5 relative (the norm's sum of squares in fp32), norms within 1e-6
 * relative; dx within 1e-5 relative plus 1e-5 of the largest |dx| (dx = (dy − y (y·dy)) / n
 * cancels). */
typedef struct l2_args {
    bo_buf *x, *y, *norms, *dy, *dx;
    int rows, cols;
    float eps;
} l2_args;

static void l2_fwd_run(poa_backend *be, void *p)
{
    const l2_args *a = p;
    be->nn->l2norm_fwd(be, BO_F(a->y), a->y->ld, BO_F(a->norms), BO_F(a->x), a->x->ld, a->rows,
                       a->cols, a->eps);
}

static void l2_bwd_run(poa_backend *be, void *p)
{
    const l2_args *a = p;
    be->nn->l2norm_bwd(be, BO_F(a->dx), a->dx->ld, BO_F(a->dy), a->dy->ld, BO_F(a->x), a->x->ld,
                       BO_F(a->norms), a->rows, a->cols, a->eps);
}

typedef struct l2_shape {
    int rows, cols;
    float eps, lo, hi;
    size_t off;
} l2_shape;

static const l2_shape l2_shapes[] = {
    {6, 27, 1e-12f, -1, 1, 0},       /* the DINO head's eps */
    {257, 256, 1e-12f, -1, 1, 0},    /* threaded */
    {12, 5, 0.5f, -0.35f, 0.35f, 0}, /* rows on both sides of eps */
    {1, 64, 1e-12f, -1, 1, 1},       /* one row, unaligned */
};

static bo_buf *l2_x(bo_case *k, const l2_shape *s)
{
    bo_buf *x = bo_new(k, "x", BO_F32, BO_IN, s->rows, s->cols, s->cols + 2, s->off);
    bo_fill(x, s->lo, s->hi);
    return x;
}

static void l2_fwd_case(bo_ctx *c, const l2_shape *s)
{
    bo_case k;
    bo_case_begin(&k, c, "l2norm_fwd rows=%d cols=%d eps=%g ldx=%d ldy=%d off=%zu", s->rows,
                  s->cols, s->eps, s->cols + 2, s->cols + 5, s->off);
    l2_args a = {NULL, NULL, NULL, NULL, NULL, s->rows, s->cols, s->eps};
    a.x = l2_x(&k, s);
    a.y = bo_new(&k, "y", BO_F32, BO_OUT, s->rows, s->cols, s->cols + 5, 0);
    a.norms = bo_vec(&k, "norms", BO_F32, BO_OUT, (size_t) s->rows);
    bo_run(&k, l2_fwd_run, &a);
    double *wy = bo_want(&k, a.y), *wn = bo_want(&k, a.norms);
    poa_naive_l2norm_fwd(BO_WV(wy, a.y), a.y->ld, BO_WV(wn, a.norms), BO_HV(a.x), a.x->ld, s->rows,
                         s->cols, s->eps);
    bo_expect(&k, a.y, wy, NULL, (bo_tol){1e-6, 2e-5, 0});
    bo_expect(&k, a.norms, wn, NULL, (bo_tol){0, 1e-6, 0});
    bo_case_end(&k);
}

/* The backward case: norms are the exact norms of x rounded to fp32 (what forward saves). */
static void l2_bwd_setup(bo_case *k, l2_args *a, const l2_shape *s)
{
    a->x = l2_x(k, s);
    a->dy = bo_new(k, "dy", BO_F32, BO_IN, s->rows, s->cols, s->cols + 5, 0);
    a->norms = bo_vec(k, "norms", BO_F32, BO_IN, (size_t) s->rows);
    a->dx = bo_new(k, "dx", BO_F32, BO_OUT, s->rows, s->cols, s->cols + 1, s->off);
    double *y = bo_tmpd(k, (size_t) s->rows * s->cols);
    poa_naive_l2norm_fwd(y, s->cols, BO_HV(a->norms), BO_HV(a->x), a->x->ld, s->rows, s->cols,
                         s->eps);
}

static void l2_bwd_case(bo_ctx *c, const l2_shape *s)
{
    bo_case k;
    bo_case_begin(&k, c, "l2norm_bwd rows=%d cols=%d eps=%g lddx=%d off=%zu", s->rows, s->cols,
                  s->eps, s->cols + 1, s->off);
    l2_args a = {NULL, NULL, NULL, NULL, NULL, s->rows, s->cols, s->eps};
    l2_bwd_setup(&k, &a, s);
    bo_run(&k, l2_bwd_run, &a);
    double *want = bo_want(&k, a.dx);
    poa_naive_l2norm_bwd(BO_WV(want, a.dx), a.dx->ld, BO_HV(a.dy), a.dy->ld, BO_HV(a.x), a.x->ld,
                         BO_HV(a.norms), s->rows, s->cols, s->eps);
    const double m = bo_max_abs(BO_WV(want, a.dx), s->rows, s->cols, a.dx->ld);
    bo_expect(&k, a.dx, want, NULL, (bo_tol){1e-5 * m, 1e-5, 0});
    bo_case_end(&k);
}

void bo_check_l2norm_fwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof l2_shapes / sizeof *l2_shapes; i++) l2_fwd_case(c, &l2_shapes[i]);
}

void bo_check_l2norm_bwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof l2_shapes / sizeof *l2_shapes; i++) l2_bwd_case(c, &l2_shapes[i]);
}

typedef struct l2_fd {
    int rows, cols, ldx;
    double eps, *x, *y, *norms;
    const double *w;
    int ldw;
} l2_fd;

static double l2_objective(void *p)
{
    l2_fd *f = p;
    poa_naive_l2norm_fwd(f->y, f->ldw, f->norms, f->x, f->ldx, f->rows, f->cols, f->eps);
    return bo_dot(f->w, f->y, f->rows, f->cols, f->ldw);
}

void bo_grad_l2norm(bo_ctx *c)
{
    for (size_t i = 0; i < 3; i++) {
        const l2_shape *s = &l2_shapes[i];
        bo_case k;
        bo_case_begin(&k, c, "l2norm_bwd rows=%d cols=%d eps=%g vs finite differences", s->rows,
                      s->cols, s->eps);
        l2_args a = {NULL, NULL, NULL, NULL, NULL, s->rows, s->cols, s->eps};
        l2_bwd_setup(&k, &a, s);
        bo_run(&k, l2_bwd_run, &a);
        const size_t nx = a.x->n;
        double *x = bo_tmpd(&k, nx), *ng = bo_tmpd(&k, (size_t) s->rows * a.dx->ld);
        double *y = bo_tmpd(&k, (size_t) s->rows * a.dy->ld), *nrm = bo_tmpd(&k, (size_t) s->rows);
        memcpy(x, a.x->h, sizeof(double) * nx);
        double *xv = x + a.x->off;
        poa_naive_l2norm_fwd(y, a.dy->ld, nrm, xv, a.x->ld, s->rows, s->cols, s->eps);
        poa_naive_l2norm_bwd(ng, a.dx->ld, BO_HV(a.dy), a.dy->ld, xv, a.x->ld, nrm, s->rows,
                             s->cols, s->eps);
        l2_fd f = {s->rows, s->cols, a.x->ld, s->eps, xv, y, nrm, BO_HV(a.dy), a.dy->ld};
        bo_fd(&k, "dx", l2_objective, &f, xv, s->rows, s->cols, a.x->ld, ng, BO_GV(a.dx), a.dx->ld,
              200, 1e-5, 1e-7, 1e-4);
        bo_case_end(&k);
    }
}

/* ------------------------------------------------------------------------ weight norm */
/* W within 1e-6 + 2e-5 relative and vnorm within 1e-6 relative (as L2 normalisation); dg
 * within 1e-5 + 1e-5 relative, dv within 1e-4 + 1e-5 relative (sums over C of products). */
typedef struct wn_args {
    bo_buf *W, *vnorm, *g, *v, *dW, *dg, *dv;
    int K, C;
} wn_args;

static void wn_fwd_run(poa_backend *be, void *p)
{
    const wn_args *a = p;
    be->nn->weightnorm_fwd(be, BO_F(a->W), BO_F(a->vnorm), BO_F(a->g), BO_F(a->v), a->K, a->C);
}

static void wn_bwd_run(poa_backend *be, void *p)
{
    const wn_args *a = p;
    be->nn->weightnorm_bwd(be, a->dg ? BO_F(a->dg) : NULL, a->dv ? BO_F(a->dv) : NULL, BO_F(a->dW),
                           BO_F(a->g), BO_F(a->v), BO_F(a->vnorm), a->K, a->C);
}

static const int wn_shapes[][2] = {{9, 33}, {300, 256}, {5, 1}, {1, 256}};

static void wn_inputs(bo_case *k, wn_args *a)
{
    a->g = bo_vec(k, "g", BO_F32, BO_IN, (size_t) a->K);
    bo_fill(a->g, 0.5, 1.5);
    a->v = bo_vec(k, "v", BO_F32, BO_IN, (size_t) a->K * a->C);
    bo_fill(a->v, -1.0 / 16, 1.0 / 16);
}

static void wn_fwd_case(bo_ctx *c, int K, int C)
{
    bo_case k;
    bo_case_begin(&k, c, "weightnorm_fwd K=%d C=%d", K, C);
    wn_args a = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, K, C};
    wn_inputs(&k, &a);
    a.W = bo_vec(&k, "W", BO_F32, BO_OUT, (size_t) K * C);
    a.vnorm = bo_vec(&k, "vnorm", BO_F32, BO_OUT, (size_t) K);
    bo_run(&k, wn_fwd_run, &a);
    double *wW = bo_want(&k, a.W), *wn = bo_want(&k, a.vnorm);
    poa_naive_weightnorm_fwd(BO_WV(wW, a.W), BO_WV(wn, a.vnorm), BO_HV(a.g), BO_HV(a.v), K, C);
    bo_expect(&k, a.W, wW, NULL, (bo_tol){1e-6, 2e-5, 0});
    bo_expect(&k, a.vnorm, wn, NULL, (bo_tol){0, 1e-6, 0});
    bo_case_end(&k);
}

/* which: 3 both, 1 dg only (dv NULL), 2 dv only (dg NULL) */
static void wn_bwd_setup(bo_case *k, wn_args *a, int which)
{
    wn_inputs(k, a);
    a->dW = bo_vec(k, "dW", BO_F32, BO_IN, (size_t) a->K * a->C);
    a->vnorm = bo_vec(k, "vnorm", BO_F32, BO_IN, (size_t) a->K);
    double *W = bo_tmpd(k, (size_t) a->K * a->C);
    poa_naive_weightnorm_fwd(W, BO_HV(a->vnorm), BO_HV(a->g), BO_HV(a->v), a->K, a->C);
    if (which & 1) a->dg = bo_vec(k, "dg", BO_F32, BO_OUT, (size_t) a->K);
    if (which & 2) a->dv = bo_vec(k, "dv", BO_F32, BO_OUT, (size_t) a->K * a->C);
}

static void wn_bwd_case(bo_ctx *c, int K, int C, int which)
{
    bo_case k;
    bo_case_begin(&k, c, "weightnorm_bwd K=%d C=%d dg=%s dv=%s (+= onto junk)", K, C,
                  which & 1 ? "yes" : "NULL", which & 2 ? "yes" : "NULL");
    wn_args a = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, K, C};
    wn_bwd_setup(&k, &a, which);
    bo_run(&k, wn_bwd_run, &a);
    double *wg = a.dg ? bo_want(&k, a.dg) : NULL, *wv = a.dv ? bo_want(&k, a.dv) : NULL;
    poa_naive_weightnorm_bwd(wg ? BO_WV(wg, a.dg) : NULL, wv ? BO_WV(wv, a.dv) : NULL, BO_HV(a.dW),
                             BO_HV(a.g), BO_HV(a.v), BO_HV(a.vnorm), K, C);
    if (a.dg) bo_expect(&k, a.dg, wg, NULL, (bo_tol){1e-5, 1e-5, 0});
    if (a.dv) bo_expect(&k, a.dv, wv, NULL, (bo_tol){1e-4, 1e-5, 0});
    bo_case_end(&k);
}

void bo_check_weightnorm_fwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof wn_shapes / sizeof *wn_shapes; i++)
        wn_fwd_case(c, wn_shapes[i][0], wn_shapes[i][1]);
}

void bo_check_weightnorm_bwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof wn_shapes / sizeof *wn_shapes; i++)
        wn_bwd_case(c, wn_shapes[i][0], wn_shapes[i][1], 3);
    wn_bwd_case(c, 9, 33, 1);
    wn_bwd_case(c, 9, 33, 2);
}

typedef struct wn_fd {
    int K, C;
    double *W, *vnorm, *g, *v;
    const double *w;
} wn_fd;

static double wn_objective(void *p)
{
    wn_fd *f = p;
    poa_naive_weightnorm_fwd(f->W, f->vnorm, f->g, f->v, f->K, f->C);
    return bo_dot(f->w, f->W, f->K, f->C, f->C);
}

void bo_grad_weightnorm(bo_ctx *c)
{
    for (int i = 0; i < 2; i++) {
        const int K = wn_shapes[i][0], C = wn_shapes[i][1];
        bo_case k;
        bo_case_begin(&k, c, "weightnorm_bwd K=%d C=%d vs finite differences", K, C);
        wn_args a = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, K, C};
        wn_bwd_setup(&k, &a, 3);
        bo_run(&k, wn_bwd_run, &a);
        const size_t n = (size_t) K * C;
        double *g = bo_tmpd(&k, (size_t) K), *v = bo_tmpd(&k, n), *W = bo_tmpd(&k, n);
        double *vn = bo_tmpd(&k, (size_t) K), *ng = bo_tmpd(&k, (size_t) K), *nv = bo_tmpd(&k, n);
        memcpy(g, BO_HV(a.g), sizeof(double) * K);
        memcpy(v, BO_HV(a.v), sizeof(double) * n);
        poa_naive_weightnorm_fwd(W, vn, g, v, K, C);
        poa_naive_weightnorm_bwd(ng, nv, BO_HV(a.dW), g, v, vn, K, C);
        wn_fd f = {K, C, W, vn, g, v, BO_HV(a.dW)};
        bo_fd(&k, "dv", wn_objective, &f, v, K, C, C, nv, BO_WV(bo_delta(&k, a.dv), a.dv), C, 150,
              1e-5, 1e-7, 1e-4);
        bo_fd(&k, "dg", wn_objective, &f, g, 1, K, K, ng, BO_WV(bo_delta(&k, a.dg), a.dg), K, 64,
              1e-5, 1e-7, 1e-4);
        bo_case_end(&k);
    }
}

/* ------------------------------------------------------------------------ axpy, scale */
typedef struct vec_args {
    bo_buf *x, *y;
    float a;
    size_t n;
} vec_args;

static void axpy_run(poa_backend *be, void *p)
{
    const vec_args *v = p;
    be->nn->axpy(be, BO_F(v->y), v->a, BO_F(v->x), v->n);
}

static void scale_run(poa_backend *be, void *p)
{
    const vec_args *v = p;
    be->nn->scale(be, BO_F(v->x), v->a, v->n);
}

typedef struct vec_shape {
    size_t n;
    float a;
    size_t offx, offy;
} vec_shape;

static const vec_shape vec_shapes[] = {
    {1, 0.37f, 0, 0},
    {1000003, -2.5f, 0, 0},
    {37, 0.37f, 1, 3},
    {4096, 0.0f, 0, 0},
};

/* y + a·x: the product and the sum rounded (at most twice): 2·2^-24 of |y| + |a x|. */
void bo_check_axpy(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof vec_shapes / sizeof *vec_shapes; i++) {
        const vec_shape *s = &vec_shapes[i];
        bo_case k;
        bo_case_begin(&k, c, "axpy n=%zu a=%g off=%zu/%zu", s->n, s->a, s->offx, s->offy);
        vec_args v = {NULL, NULL, s->a, s->n};
        v.x = bo_new(&k, "x", BO_F32, BO_IN, 1, (int) s->n, (int) s->n, s->offx);
        v.y = bo_new(&k, "y", BO_F32, BO_OUT, 1, (int) s->n, (int) s->n, s->offy);
        bo_run(&k, axpy_run, &v);
        double *want = bo_want(&k, v.y), *mag = bo_tmpd(&k, v.y->n);
        for (size_t j = 0; j < s->n; j++) {
            const double ax = (double) s->a * BO_HV(v.x)[j];
            BO_WV(want, v.y)[j] += ax;
            BO_WV(mag, v.y)[j] = fabs(BO_HV(v.y)[j]) + fabs(ax);
        }
        bo_expect(&k, v.y, want, mag, (bo_tol){0, 0, 2 * BO_U32});
        bo_case_end(&k);
    }
}

/* a·x: one rounding. */
void bo_check_scale(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof vec_shapes / sizeof *vec_shapes; i++) {
        const vec_shape *s = &vec_shapes[i];
        bo_case k;
        bo_case_begin(&k, c, "scale n=%zu a=%g off=%zu", s->n, s->a, s->offy);
        vec_args v = {NULL, NULL, s->a, s->n};
        v.x = bo_new(&k, "x", BO_F32, BO_OUT, 1, (int) s->n, (int) s->n, s->offy);
        bo_run(&k, scale_run, &v);
        double *want = bo_want(&k, v.x);
        for (size_t j = 0; j < s->n; j++) BO_WV(want, v.x)[j] *= s->a;
        bo_expect(&k, v.x, want, NULL, (bo_tol){0, BO_U32, 0});
        bo_case_end(&k);
    }
}

/* ------------------------------------------------------------------------ pos resampling */
/* The naive op is the real-number formula (docs/algorithm.md, "Position-embedding resampling"); an
 * fp32 op rounds the coordinate ratio to fp32 as torch does, which moves samples by ~1e-6 of a grid
 * step: 4e-6 absolute + 1e-5 relative, both directions. */
typedef struct pos_args {
    bo_buf *src, *dst;
    int M, h0, w0, d;
} pos_args;

static void pos_fwd_run(poa_backend *be, void *p)
{
    const pos_args *a = p;
    be->nn->pos_resample_fwd(be, BO_F(a->dst), a->dst->ld, BO_F(a->src), a->src->ld, a->M, a->h0,
                             a->w0, a->d);
}

static void pos_bwd_run(poa_backend *be, void *p)
{
    const pos_args *a = p;
    be->nn->pos_resample_bwd(be, BO_F(a->src), a->src->ld, BO_F(a->dst), a->dst->ld, a->M, a->h0,
                             a->w0, a->d);
}

static const int pos_shapes[][5] = {
    /* M, h0, w0, d, FD checks */
    {14, 6, 6, 5, 200},   /* 224-px grid → 96-px local crop */
    {4, 2, 2, 7, 200},    /* 32-px grid of patch 8 → 16-px crop */
    {14, 6, 9, 3, 200},   /* non-square */
    {3, 5, 4, 4, 200},    /* upsampling: taps beyond the edge */
    {14, 12, 12, 512, 4}, /* threaded */
};

static void pos_buffers(bo_case *k, pos_args *a, int bwd)
{
    a->src = bo_new(k, bwd ? "dsrc" : "src", BO_F32, bwd ? BO_OUT : BO_IN, a->M * a->M, a->d,
                    a->d + 3, 0);
    a->dst = bo_new(k, bwd ? "ddst" : "dst", BO_F32, bwd ? BO_IN : BO_OUT, a->h0 * a->w0, a->d,
                    a->d + 2, 0);
}

static void pos_case(bo_ctx *c, const int *s, int bwd)
{
    bo_case k;
    bo_case_begin(&k, c, "pos_resample_%s M=%d -> %dx%d d=%d lds=%d ldd=%d%s", bwd ? "bwd" : "fwd",
                  s[0], s[1], s[2], s[3], s[3] + 3, s[3] + 2, bwd ? " (+= onto junk)" : "");
    pos_args a = {NULL, NULL, s[0], s[1], s[2], s[3]};
    pos_buffers(&k, &a, bwd);
    bo_run(&k, bwd ? pos_bwd_run : pos_fwd_run, &a);
    if (bwd) {
        double *added = bo_tmpd(&k, a.src->n);
        poa_naive_pos_resample_bwd(BO_WV(added, a.src), a.src->ld, BO_HV(a.dst), a.dst->ld, a.M,
                                   a.h0, a.w0, a.d);
        bo_expect_added(&k, a.src, added, NULL, (bo_tol){4e-6, 1e-5, 0});
    } else {
        double *want = bo_want(&k, a.dst);
        poa_naive_pos_resample_fwd(BO_WV(want, a.dst), a.dst->ld, BO_HV(a.src), a.src->ld, a.M,
                                   a.h0, a.w0, a.d);
        bo_expect(&k, a.dst, want, NULL, (bo_tol){4e-6, 1e-5, 0});
    }
    bo_case_end(&k);
}

/* A constant grid resamples to the same constant: the weights of every output sum to one,
 * clamped taps included (in fp32 to within 1e-6 relative, as in torch). */
static void pos_constant_case(bo_ctx *c, const int *s)
{
    bo_case k;
    bo_case_begin(&k, c, "pos_resample_fwd M=%d -> %dx%d d=4: a constant grid stays constant", s[0],
                  s[1], s[2]);
    pos_args a = {NULL, NULL, s[0], s[1], s[2], 4};
    pos_buffers(&k, &a, 0);
    for (int i = 0; i < a.M * a.M; i++)
        for (int j = 0; j < 4; j++) BO_HV(a.src)[(size_t) i * a.src->ld + j] = 0.25 + 0.5 * j;
    bo_run(&k, pos_fwd_run, &a);
    double *want = bo_want(&k, a.dst);
    for (int i = 0; i < a.h0 * a.w0; i++)
        for (int j = 0; j < 4; j++) BO_WV(want, a.dst)[(size_t) i * a.dst->ld + j] = 0.25 + 0.5 * j;
    bo_expect(&k, a.dst, want, NULL, (bo_tol){0, 1e-6, 0});
    bo_case_end(&k);
}

void bo_check_pos_resample_fwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof pos_shapes / sizeof *pos_shapes; i++)
        pos_case(c, pos_shapes[i], 0);
    for (size_t i = 0; i < 4; i++) pos_constant_case(c, pos_shapes[i]);
}

void bo_check_pos_resample_bwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof pos_shapes / sizeof *pos_shapes; i++)
        pos_case(c, pos_shapes[i], 1);
}

typedef struct pos_fd {
    int M, h0, w0, d, lds, ldd;
    double *src, *dst;
    const double *w;
} pos_fd;

static double pos_objective(void *p)
{
    pos_fd *f = p;
    poa_naive_pos_resample_fwd(f->dst, f->ldd, f->src, f->lds, f->M, f->h0, f->w0, f->d);
    return bo_dot(f->w, f->dst, f->h0 * f->w0, f->d, f->ldd);
}

/* The naive pair is adjoint (<fwd(x), y> = <x, bwd(y)> in double to 1e-12), and the backward
 * (backend and naive) matches FD of the forward. */
void bo_grad_pos_resample(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof pos_shapes / sizeof *pos_shapes; i++) {
        const int *s = pos_shapes[i];
        bo_case k;
        bo_case_begin(&k, c,
                      "pos_resample_bwd M=%d -> %dx%d d=%d vs finite differences and the "
                      "adjoint identity",
                      s[0], s[1], s[2], s[3]);
        pos_args a = {NULL, NULL, s[0], s[1], s[2], s[3]};
        pos_buffers(&k, &a, 1);
        bo_run(&k, pos_bwd_run, &a);
        const int lds = a.src->ld, ldd = a.dst->ld, nout = a.h0 * a.w0;
        double *x = bo_tmpd(&k, (size_t) a.M * a.M * lds), *y = bo_tmpd(&k, (size_t) nout * ldd);
        double *ng = bo_tmpd(&k, (size_t) a.M * a.M * lds);
        for (size_t j = 0; j < (size_t) a.M * a.M * lds; j++) x[j] = sin(0.37 * (double) j);
        poa_naive_pos_resample_fwd(y, ldd, x, lds, a.M, a.h0, a.w0, a.d);
        poa_naive_pos_resample_bwd(ng, lds, BO_HV(a.dst), ldd, a.M, a.h0, a.w0, a.d);
        const double lhs = bo_dot(BO_HV(a.dst), y, nout, a.d, ldd);
        const double rhs = bo_dot(ng, x, a.M * a.M, a.d, lds);
        bo_expect_scalar(&k, "adjoint <fwd(x), y> vs <x, bwd(y)>", lhs, rhs, 1e-12, 1e-12);
        pos_fd f = {a.M, a.h0, a.w0, a.d, lds, ldd, x, y, BO_HV(a.dst)};
        bo_fd(&k, "dsrc", pos_objective, &f, x, a.M * a.M, a.d, lds, ng,
              BO_WV(bo_delta(&k, a.src), a.src), lds, s[4], 1e-3, 1e-9, 2e-5);
        bo_case_end(&k);
    }
}

/* ------------------------------------------------------------------------ act_from_f32 */
typedef struct conv_args {
    bo_buf *src, *dst;
    size_t n;
} conv_args;

static void from_f32_run(poa_backend *be, void *p)
{
    const conv_args *a = p;
    be->nn->act_from_f32(be, BO_A(a->dst), BO_F(a->src), a->n);
}

/* Exactly the value rounded to nearest even: ties (1 + 2^-8 → 1, 1 + 3·2^-8 → 1 + 2^-6 in
 * bf16), ±0, ±Inf, NaN, subnormals, FLT_MAX (beyond bf16's range: +Inf). */
static void from_f32_case(bo_ctx *c, size_t n, size_t offs, size_t offd, int special)
{
    bo_case k;
    bo_case_begin(&k, c, "act_from_f32 n=%zu off=%zu/%zu%s", n, offs, offd,
                  special ? " (ties, signed zeros, Inf, NaN, subnormals, FLT_MAX)" : "");
    conv_args a = {NULL, NULL, n};
    a.src = bo_new(&k, "src", BO_F32, BO_IN, 1, (int) n, (int) n, offs);
    bo_fill(a.src, -100, 100);
    if (special) {
        const double v[] = {1 + 0x1p-8, 1 + 3 * 0x1p-8, -(1 + 0x1p-8), 0.0,
                            -0.0,       INFINITY,       -INFINITY,     NAN,
                            1e-40,      -3e-39,         FLT_MAX,       -FLT_MAX,
                            0x1.fep127, 1.00390625,     65504.0,       3.14159265358979};
        for (size_t i = 0; i < sizeof v / sizeof *v && i < n; i++) BO_HV(a.src)[i] = v[i];
    }
    a.dst = bo_new(&k, "dst", BO_ACT, BO_OUT, 1, (int) n, (int) n, offd);
    bo_run(&k, from_f32_run, &a);
    double *want = bo_want(&k, a.dst);
    for (size_t i = 0; i < n; i++) BO_WV(want, a.dst)[i] = bo_round_act(c, BO_HV(a.src)[i]);
    bo_expect(&k, a.dst, want, NULL, (bo_tol){0, 0, 0});
    bo_case_end(&k);
}

void bo_check_act_from_f32(bo_ctx *c)
{
    from_f32_case(c, 16, 0, 0, 1);
    from_f32_case(c, 1, 0, 0, 0);
    from_f32_case(c, 100003, 0, 0, 0);
    from_f32_case(c, 37, 1, 3, 0);
}

/* ------------------------------------------------------------------------ perf */
static int vit_rows(const bo_ctx *c)
{
    return c->images * BO_TOKENS;
}

typedef struct perf_elem {
    int act, bwd;
    size_t n;
    void *x, *y, *dy, *dx;
} perf_elem;

static void perf_elem_run(poa_backend *be, void *p)
{
    const perf_elem *e = p;
    if (e->act && e->bwd)
        be->nn->act_gelu_bwd(be, e->dx, e->y, e->dy, e->x, e->n);
    else if (e->act)
        be->nn->act_gelu_fwd(be, e->y, e->x, e->n);
    else if (e->bwd)
        be->nn->gelu_bwd(be, e->dx, e->y, e->dy, e->x, e->n);
    else
        be->nn->gelu_fwd(be, e->y, e->x, e->n);
}

static void perf_gelu(bo_ctx *c, int act, int bwd)
{
    for (int i = 0; i < 2; i++) {
        const size_t n =
            act ? (size_t) vit_rows(c) * bo_vits[i].mlp : (size_t) c->images * 10 * 2048;
        const bo_kind kind = act ? BO_ACT : BO_F32;
        const size_t es = act ? c->be->act_size : 4;
        perf_elem e = {act, bwd, n, NULL, NULL, NULL, NULL};
        e.x = bo_perf_alloc(c, kind, n, -3, 3);
        e.y = bo_perf_alloc(c, kind, n, -1, 1);
        e.dy = bo_perf_alloc(c, kind, n, -1, 1);
        e.dx = bo_perf_alloc(c, kind, n, -1, 1);
        const double t = bo_time(c, perf_elem_run, &e);
        char shape[128];
        snprintf(shape, sizeof shape, "%s n=%zu%s", act ? bo_vits[i].name : "head MLP", n,
                 bwd ? " (fused y)" : "");
        bo_perf_line(c, shape, t, (double) n * es * (bwd ? 4 : 2), 0);
        bo_perf_free(c, e.x), bo_perf_free(c, e.y), bo_perf_free(c, e.dy), bo_perf_free(c, e.dx);
        if (!act) break;
    }
}

void bo_perf_gelu_fwd(bo_ctx *c)
{
    perf_gelu(c, 0, 0);
}

void bo_perf_gelu_bwd(bo_ctx *c)
{
    perf_gelu(c, 0, 1);
}

void bo_perf_act_gelu_fwd(bo_ctx *c)
{
    perf_gelu(c, 1, 0);
}

void bo_perf_act_gelu_bwd(bo_ctx *c)
{
    perf_gelu(c, 1, 1);
}

typedef struct perf_rows {
    int rows, cols;
    float *x, *y, *n, *dy, *dx, *g, *dg;
} perf_rows;

static void perf_l2_fwd_run(poa_backend *be, void *p)
{
    const perf_rows *r = p;
    be->nn->l2norm_fwd(be, r->y, r->cols, r->n, r->x, r->cols, r->rows, r->cols, 1e-12f);
}

static void perf_l2_bwd_run(poa_backend *be, void *p)
{
    const perf_rows *r = p;
    be->nn->l2norm_bwd(be, r->dx, r->cols, r->dy, r->cols, r->x, r->cols, r->n, r->rows, r->cols,
                       1e-12f);
}

static void perf_wn_fwd_run(poa_backend *be, void *p)
{
    const perf_rows *r = p;
    be->nn->weightnorm_fwd(be, r->y, r->n, r->g, r->x, r->rows, r->cols);
}

static void perf_wn_bwd_run(poa_backend *be, void *p)
{
    const perf_rows *r = p;
    be->nn->weightnorm_bwd(be, r->dg, r->dx, r->dy, r->g, r->x, r->n, r->rows, r->cols);
}

/* rows × cols fp32 row op; `passes`: tensors of rows × cols read or written */
static void perf_rows_op(bo_ctx *c, const char *what, int rows, int cols, bo_fn fn, int passes)
{
    const size_t n = (size_t) rows * cols;
    perf_rows r = {rows, cols, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    r.x = bo_perf_alloc(c, BO_F32, n, -1, 1);
    r.y = bo_perf_alloc(c, BO_F32, n, -1, 1);
    r.dy = bo_perf_alloc(c, BO_F32, n, -1, 1);
    r.dx = bo_perf_alloc(c, BO_F32, n, -1, 1);
    r.n = bo_perf_alloc(c, BO_F32, (size_t) rows, 0.5, 1.5);
    r.g = bo_perf_alloc(c, BO_F32, (size_t) rows, 0.5, 1.5);
    r.dg = bo_perf_alloc(c, BO_F32, (size_t) rows, -1, 1);
    const double t = bo_time(c, fn, &r);
    char shape[128];
    snprintf(shape, sizeof shape, "%s rows=%d cols=%d", what, rows, cols);
    bo_perf_line(c, shape, t, 4.0 * passes * n, 0);
    bo_perf_free(c, r.x), bo_perf_free(c, r.y), bo_perf_free(c, r.dy), bo_perf_free(c, r.dx);
    bo_perf_free(c, r.n), bo_perf_free(c, r.g), bo_perf_free(c, r.dg);
}

void bo_perf_l2norm_fwd(bo_ctx *c)
{
    perf_rows_op(c, "head bottleneck", c->images * 10, BO_HEAD_DIM, perf_l2_fwd_run, 2);
}

void bo_perf_l2norm_bwd(bo_ctx *c)
{
    perf_rows_op(c, "head bottleneck", c->images * 10, BO_HEAD_DIM, perf_l2_bwd_run, 3);
}

void bo_perf_weightnorm_fwd(bo_ctx *c)
{
    perf_rows_op(c, "head last layer", BO_PROTOTYPES, BO_HEAD_DIM, perf_wn_fwd_run, 2);
}

void bo_perf_weightnorm_bwd(bo_ctx *c)
{
    perf_rows_op(c, "head last layer", BO_PROTOTYPES, BO_HEAD_DIM, perf_wn_bwd_run, 4);
}

typedef struct perf_vec {
    size_t n;
    float *x, *y;
} perf_vec;

static void perf_axpy_run(poa_backend *be, void *p)
{
    const perf_vec *v = p;
    be->nn->axpy(be, v->y, 0.5f, v->x, v->n);
}

static void perf_scale_run(poa_backend *be, void *p)
{
    const perf_vec *v = p;
    be->nn->scale(be, v->x, 1.0f, v->n);
}

static void perf_vec_op(bo_ctx *c, bo_fn fn, int passes)
{
    const size_t n = (size_t) BO_PROTOTYPES * BO_HEAD_DIM;
    perf_vec v = {n, bo_perf_alloc(c, BO_F32, n, -1, 1), bo_perf_alloc(c, BO_F32, n, -1, 1)};
    const double t = bo_time(c, fn, &v);
    char shape[64];
    snprintf(shape, sizeof shape, "head last layer n=%zu", n);
    bo_perf_line(c, shape, t, 4.0 * passes * n, 0);
    bo_perf_free(c, v.x), bo_perf_free(c, v.y);
}

void bo_perf_axpy(bo_ctx *c)
{
    perf_vec_op(c, perf_axpy_run, 3);
}

void bo_perf_scale(bo_ctx *c)
{
    perf_vec_op(c, perf_scale_run, 2);
}

typedef struct perf_pos {
    int M, h0, w0, d;
    float *src, *dst;
} perf_pos_args;

static void perf_pos_fwd_run(poa_backend *be, void *p)
{
    const perf_pos_args *q = p;
    be->nn->pos_resample_fwd(be, q->dst, q->d, q->src, q->d, q->M, q->h0, q->w0, q->d);
}

static void perf_pos_bwd_run(poa_backend *be, void *p)
{
    const perf_pos_args *q = p;
    be->nn->pos_resample_bwd(be, q->src, q->d, q->dst, q->d, q->M, q->h0, q->w0, q->d);
}

static void perf_pos(bo_ctx *c, int bwd)
{
    for (int i = 0; i < 2; i++) { /* 224-px grid → 96-px local crops */
        perf_pos_args q = {14, 6, 6, bo_vits[i].d, NULL, NULL};
        q.src = bo_perf_alloc(c, BO_F32, (size_t) q.M * q.M * q.d, -1, 1);
        q.dst = bo_perf_alloc(c, BO_F32, (size_t) q.h0 * q.w0 * q.d, -1, 1);
        const double t = bo_time(c, bwd ? perf_pos_bwd_run : perf_pos_fwd_run, &q);
        char shape[64];
        snprintf(shape, sizeof shape, "%s M=14 -> 6x6 d=%d", bo_vits[i].name, q.d);
        bo_perf_line(c, shape, t, 4.0 * (q.M * q.M + q.h0 * q.w0) * q.d, 0);
        bo_perf_free(c, q.src), bo_perf_free(c, q.dst);
    }
}

void bo_perf_pos_resample_fwd(bo_ctx *c)
{
    perf_pos(c, 0);
}

void bo_perf_pos_resample_bwd(bo_ctx *c)
{
    perf_pos(c, 1);
}

typedef struct perf_conv {
    size_t n;
    float *src;
    poa_act *dst;
} perf_conv;

static void perf_conv_run(poa_backend *be, void *p)
{
    const perf_conv *v = p;
    be->nn->act_from_f32(be, v->dst, v->src, v->n);
}

void bo_perf_act_from_f32(bo_ctx *c)
{
    const bo_vit *m = &bo_vits[1]; /* the compute copy of a ViT-L block's fc1 weight */
    perf_conv v = {(size_t) m->mlp * m->d, NULL, NULL};
    v.src = bo_perf_alloc(c, BO_F32, v.n, -1, 1);
    v.dst = bo_perf_alloc(c, BO_ACT, v.n, -1, 1);
    const double t = bo_time(c, perf_conv_run, &v);
    char shape[64];
    snprintf(shape, sizeof shape, "%s fc1 weight n=%zu", m->name, v.n);
    bo_perf_line(c, shape, t, (4.0 + c->be->act_size) * v.n, 0);
    bo_perf_free(c, v.src), bo_perf_free(c, v.dst);
}
