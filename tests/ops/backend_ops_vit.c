/* backend_ops_vit.c — the backbone's ops on activations in tests/ops/test_backend_ops:
 * LayerNorm, attention, the LayerScale residual, patch unfolding, token assembly and the row
 * gathers/scatters.
 *
 * Tolerances: the fp32 ones are those the CPU backend's op tests established; a bf16 compute
 * dtype adds 2^-8 relative per rounding to bf16 on the value's path (bf16_r()), and where the
 * backend may round an intermediate to bf16 (the operands of attention's tensor-core products:
 * P for P·V, dS for dS·K), 2^-8 of the intermediate's contribution, bounded by the output's
 * largest magnitude.
 */
#include "backend_ops.h"

#include "common/poa_error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double bf16_r(const bo_ctx *c, int r)
{
    return c->be->act_dtype == POA_DT_F32 ? 0 : r * bo_u_act(c);
}

static int vit_rows(const bo_ctx *c)
{
    return c->images * BO_TOKENS;
}

/* ------------------------------------------------------------------------ LayerNorm */
typedef struct ln_args {
    bo_buf *x, *y, *mean, *rstd, *w, *b, *dy, *dx, *dw, *db;
    bo_buf *dx_eq; /* dx_beta 1 cases: the same call with dx_beta 0, NULL dw/db */
    int rows, d;
    float eps, dx_beta;
} ln_args;

static void ln_fwd_run(poa_backend *be, void *p)
{
    const ln_args *a = p;
    be->nn->layernorm_fwd(be, BO_A(a->y), a->y->ld, BO_F(a->mean), BO_F(a->rstd), BO_A(a->x),
                          a->x->ld, BO_F(a->w), BO_F(a->b), a->rows, a->d, a->eps);
}

static void ln_bwd_run(poa_backend *be, void *p)
{
    const ln_args *a = p;
    be->nn->layernorm_bwd(be, a->dx ? BO_A(a->dx) : NULL, a->dx ? a->dx->ld : 0, a->dx_beta,
                          a->dw ? BO_F(a->dw) : NULL, a->db ? BO_F(a->db) : NULL, BO_A(a->dy),
                          a->dy->ld, BO_A(a->x), a->x->ld, BO_F(a->mean), BO_F(a->rstd), BO_F(a->w),
                          a->rows, a->d);
    if (a->dx_eq)
        be->nn->layernorm_bwd(be, BO_A(a->dx_eq), a->dx_eq->ld, 0.0f, NULL, NULL, BO_A(a->dy),
                              a->dy->ld, BO_A(a->x), a->x->ld, BO_F(a->mean), BO_F(a->rstd),
                              BO_F(a->w), a->rows, a->d);
}

typedef struct ln_shape {
    int rows, d, ldx;
    size_t offx;
} ln_shape;

static const ln_shape ln_shapes[] = {
    {7, 37, 45, 0},    /* odd sizes, an elastic slice of wider rows */
    {1501, 48, 64, 0}, /* threaded */
    {1, 384, 384, 0},  /* one row */
    {5, 24, 72, 3},    /* an unaligned start */
};

static void ln_inputs(bo_case *k, ln_args *a, const ln_shape *s)
{
    a->x = bo_new(k, "x", BO_ACT, BO_IN, s->rows, s->d, s->ldx, s->offx);
    bo_fill(a->x, -2, 3);
    a->w = bo_vec(k, "w", BO_F32, BO_IN, (size_t) s->d);
    bo_fill(a->w, 0.5, 1.5);
    a->b = bo_vec(k, "b", BO_F32, BO_IN, (size_t) s->d);
    bo_fill(a->b, -0.5, 0.5);
}

/* y within 1e-6 + 2e-5 relative (+ one bf16 rounding); mean and rstd, fp32 statistics of the
 * values held, within 1e-6. */
static void ln_fwd_case(bo_ctx *c, const ln_shape *s, float eps, int unit_affine)
{
    bo_case k;
    bo_case_begin(&k, c, "layernorm_fwd rows=%d d=%d ldx=%d ldy=%d off=%zu eps=%g%s", s->rows, s->d,
                  s->ldx, s->d + 5, s->offx, eps, unit_affine ? " w=1 b=0" : "");
    ln_args a = {0};
    a.rows = s->rows, a.d = s->d, a.eps = eps;
    ln_inputs(&k, &a, s);
    if (unit_affine)
        for (int j = 0; j < s->d; j++) BO_HV(a.w)[j] = 1, BO_HV(a.b)[j] = 0;
    a.y = bo_new(&k, "y", BO_ACT, BO_OUT, s->rows, s->d, s->d + 5, 0);
    a.mean = bo_vec(&k, "mean", BO_F32, BO_OUT, (size_t) s->rows);
    a.rstd = bo_vec(&k, "rstd", BO_F32, BO_OUT, (size_t) s->rows);
    bo_run(&k, ln_fwd_run, &a);
    double *wy = bo_want(&k, a.y), *wm = bo_want(&k, a.mean), *wr = bo_want(&k, a.rstd);
    poa_naive_layernorm_fwd(BO_WV(wy, a.y), a.y->ld, BO_WV(wm, a.mean), BO_WV(wr, a.rstd),
                            BO_HV(a.x), a.x->ld, BO_HV(a.w), BO_HV(a.b), s->rows, s->d, eps);
    bo_expect(&k, a.y, wy, NULL, (bo_tol){1e-6, 2e-5 + bf16_r(c, 1), 0});
    bo_expect(&k, a.mean, wm, NULL, (bo_tol){1e-6, 1e-6, 0});
    bo_expect(&k, a.rstd, wr, NULL, (bo_tol){0, 1e-6, 0});
    if (unit_affine && c->be->act_dtype == POA_DT_F32) { /* y has mean 0, var var/(var + eps) */
        for (int r = 0; r < s->rows; r++) {
            const double *y = BO_GV(a.y) + (size_t) r * a.y->ld;
            const double vx = 1 / (BO_WV(wr, a.rstd)[r] * BO_WV(wr, a.rstd)[r]) - eps;
            double my = 0, vy = 0;
            for (int j = 0; j < s->d; j++) my += y[j] / s->d;
            for (int j = 0; j < s->d; j++) vy += (y[j] - my) * (y[j] - my) / s->d;
            char what[64];
            snprintf(what, sizeof what, "row %d: mean(y)", r);
            bo_expect_scalar(&k, what, my, 0, 1e-6, 0);
            snprintf(what, sizeof what, "row %d: var(y)", r);
            bo_expect_scalar(&k, what, vy, vx / (vx + eps), 1e-5, 0);
        }
    }
    bo_case_end(&k);
}

void bo_check_layernorm_fwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof ln_shapes / sizeof *ln_shapes; i++)
        ln_fwd_case(c, &ln_shapes[i], 1e-6f, 0);
    const ln_shape stats = {9, 33, 40, 0};
    ln_fwd_case(c, &stats, 1e-2f, 1); /* eps large enough to show in the variance */
}

/* The backward's inputs: the statistics forward saves, from the values x holds. */
static void ln_bwd_setup(bo_case *k, ln_args *a, const ln_shape *s, int outs)
{
    ln_inputs(k, a, s);
    a->dy = bo_new(k, "dy", BO_ACT, BO_IN, s->rows, s->d, s->d + 5, 0);
    bo_prepare(k);
    a->mean = bo_vec(k, "mean", BO_F32, BO_IN, (size_t) s->rows);
    a->rstd = bo_vec(k, "rstd", BO_F32, BO_IN, (size_t) s->rows);
    double *y = bo_tmpd(k, (size_t) s->rows * s->d);
    poa_naive_layernorm_fwd(y, s->d, BO_HV(a->mean), BO_HV(a->rstd), BO_HV(a->x), a->x->ld,
                            BO_HV(a->w), BO_HV(a->b), s->rows, s->d, a->eps);
    if (outs & 1) {
        a->dx = bo_new(k, "dx", BO_ACT, BO_OUT, s->rows, s->d, s->d + 1, 0);
        bo_fill(a->dx, -9, 9);
    }
    if (outs & 2) a->dw = bo_vec(k, "dw", BO_F32, BO_OUT, (size_t) s->d);
    if (outs & 4) a->db = bo_vec(k, "db", BO_F32, BO_OUT, (size_t) s->d);
}

/* dx = (or +=) the naive dx within 1e-5 + 1e-4 of |dx| (a difference of three row terms),
 * plus the add's and bf16's roundings of the stored value; dw, db (+= onto junk) within
 * 1e-5 + 1e-5 relative. */
static void ln_bwd_case(bo_ctx *c, const ln_shape *s, float dx_beta, int outs)
{
    bo_case k;
    bo_case_begin(&k, c,
                  "layernorm_bwd rows=%d d=%d ldx=%d lddx=%d off=%zu dx_beta=%g dx=%s "
                  "dw=%s db=%s",
                  s->rows, s->d, s->ldx, s->d + 1, s->offx, dx_beta, outs & 1 ? "yes" : "NULL",
                  outs & 2 ? "yes" : "NULL", outs & 4 ? "yes" : "NULL");
    ln_args a = {0};
    a.rows = s->rows, a.d = s->d, a.eps = 1e-6f, a.dx_beta = dx_beta;
    ln_bwd_setup(&k, &a, s, outs);
    if (dx_beta != 0 && a.dx)
        a.dx_eq = bo_new(&k, "dx (dx_beta 0)", BO_ACT, BO_OUT, s->rows, s->d, s->d + 1, 0);
    bo_run(&k, ln_bwd_run, &a);
    if (a.dx_eq) { /* += adds what = stores, up to the add's rounding (an FMA may fuse it) and,
                    * in bf16, the rounding of the stored dx_beta 0 value (2^-8 of it) */
        double *want = bo_want(&k, a.dx), *mag = bo_tmpd(&k, a.dx->n);
        for (int r = 0; r < s->rows; r++)
            for (int j = 0; j < s->d; j++) {
                const double g = BO_GV(a.dx_eq)[(size_t) r * a.dx_eq->ld + j];
                BO_WV(want, a.dx)[(size_t) r * a.dx->ld + j] += g;
                BO_WV(mag, a.dx)[(size_t) r * a.dx->ld + j] = fabs(g);
            }
        const char *name = a.dx->name;
        a.dx->name = "dx (dx_beta 1) vs its initial values + dx (dx_beta 0)";
        bo_expect(&k, a.dx, want, mag, (bo_tol){1e-6, 1e-6 + bf16_r(c, 1), bf16_r(c, 1)});
        a.dx->name = name;
    }
    double *ngx = bo_tmpd(&k, (size_t) s->rows * (s->d + 1));
    double *wdw = a.dw ? bo_want(&k, a.dw) : NULL, *wdb = a.db ? bo_want(&k, a.db) : NULL;
    poa_naive_layernorm_bwd(ngx, s->d + 1, wdw ? BO_WV(wdw, a.dw) : NULL,
                            wdb ? BO_WV(wdb, a.db) : NULL, BO_HV(a.dy), a.dy->ld, BO_HV(a.x),
                            a.x->ld, BO_HV(a.mean), BO_HV(a.rstd), BO_HV(a.w), s->rows, s->d);
    if (a.dx) {
        double *want = bo_want(&k, a.dx), *mag = bo_tmpd(&k, a.dx->n);
        for (int r = 0; r < s->rows; r++)
            for (int j = 0; j < s->d; j++) {
                const size_t e = (size_t) r * a.dx->ld + j;
                const double g = ngx[(size_t) r * (s->d + 1) + j];
                BO_WV(want, a.dx)[e] = (dx_beta != 0 ? BO_WV(want, a.dx)[e] : 0) + g;
                BO_WV(mag, a.dx)[e] = fabs(g);
            }
        bo_expect(&k, a.dx, want, mag, (bo_tol){1e-5, 2 * BO_U32 + bf16_r(c, 1), 1e-4});
    }
    if (a.dw) bo_expect(&k, a.dw, wdw, NULL, (bo_tol){1e-5, 1e-5, 0});
    if (a.db) bo_expect(&k, a.db, wdb, NULL, (bo_tol){1e-5, 1e-5, 0});
    bo_case_end(&k);
}

void bo_check_layernorm_bwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof ln_shapes / sizeof *ln_shapes; i++)
        ln_bwd_case(c, &ln_shapes[i], 0.0f, 7);
    ln_bwd_case(c, &ln_shapes[0], 1.0f, 7); /* a residual stream adds the branch's dx */
    ln_bwd_case(c, &ln_shapes[0], 1.0f, 1); /* dx only */
    ln_bwd_case(c, &ln_shapes[0], 0.0f, 6); /* dw, db only */
    ln_bwd_case(c, &ln_shapes[3], 0.0f, 2); /* dw only */
}

typedef struct ln_fd {
    int rows, d, ldx;
    double *x, *w, *b, *y, *mean, *rstd;
    const double *wgt;
    int ldw;
} ln_fd;

static double ln_objective(void *p)
{
    ln_fd *f = p;
    poa_naive_layernorm_fwd(f->y, f->ldw, f->mean, f->rstd, f->x, f->ldx, f->w, f->b, f->rows, f->d,
                            1e-6);
    return bo_dot(f->wgt, f->y, f->rows, f->d, f->ldw);
}

void bo_grad_layernorm(bo_ctx *c)
{
    for (int i = 0; i < 2; i++) {
        const ln_shape *s = &ln_shapes[i];
        bo_case k;
        bo_case_begin(&k, c, "layernorm_bwd rows=%d d=%d vs finite differences", s->rows, s->d);
        ln_args a = {0};
        a.rows = s->rows, a.d = s->d, a.eps = 1e-6f;
        ln_bwd_setup(&k, &a, s, 7);
        bo_run(&k, ln_bwd_run, &a);
        const int ldy = a.dy->ld, lddx = a.dx->ld;
        double *x = bo_want(&k, a.x), *w = bo_want(&k, a.w), *b = bo_want(&k, a.b);
        double *y = bo_tmpd(&k, (size_t) s->rows * ldy), *m = bo_tmpd(&k, (size_t) s->rows);
        double *r = bo_tmpd(&k, (size_t) s->rows), *ngx = bo_tmpd(&k, (size_t) s->rows * lddx);
        double *ngw = bo_tmpd(&k, (size_t) s->d), *ngb = bo_tmpd(&k, (size_t) s->d);
        double *xv = BO_WV(x, a.x), *wv = BO_WV(w, a.w), *bv = BO_WV(b, a.b);
        poa_naive_layernorm_fwd(y, ldy, m, r, xv, a.x->ld, wv, bv, s->rows, s->d, 1e-6);
        poa_naive_layernorm_bwd(ngx, lddx, ngw, ngb, BO_HV(a.dy), ldy, xv, a.x->ld, m, r, wv,
                                s->rows, s->d);
        ln_fd f = {s->rows, s->d, a.x->ld, xv, wv, bv, y, m, r, BO_HV(a.dy), ldy};
        const double tol = 1e-4 + bf16_r(c, 2);
        bo_fd(&k, "dx", ln_objective, &f, xv, s->rows, s->d, a.x->ld, ngx, BO_GV(a.dx), lddx, 150,
              1e-5, 1e-7, tol);
        bo_fd(&k, "dw", ln_objective, &f, wv, 1, s->d, s->d, ngw, BO_WV(bo_delta(&k, a.dw), a.dw),
              s->d, 64, 1e-5, 1e-7, 1e-4);
        bo_fd(&k, "db", ln_objective, &f, bv, 1, s->d, s->d, ngb, BO_WV(bo_delta(&k, a.db), a.db),
              s->d, 64, 1e-5, 1e-7, 1e-4);
        bo_case_end(&k);
    }
}

/* ------------------------------------------------------------------------ attention */
typedef struct attn_shape {
    int B, T, H, Dh;
    int ldqkv, ldout, lddqkv, lddout;
    float range; /* qkv uniform in ±range                                              */
    float rtol;  /* fp32 scores of magnitude S carry errors ~S·2^-24, amplified by exp */
    size_t offq; /* element offset of the qkv view                                    */
    int fd;      /* --grad: finite-difference checks (0: none)                         */
} attn_shape;

typedef struct attn_args {
    const attn_shape *s;
    float scale;
    bo_buf *qkv, *out, *saved, *scratch, *dout, *dqkv;
} attn_args;

static void attn_fwd_run(poa_backend *be, void *p)
{
    const attn_args *a = p;
    const attn_shape *s = a->s;
    be->nn->attention_fwd(be, BO_A(a->out), s->ldout, bo_dev(a->saved), BO_A(a->qkv), s->ldqkv,
                          s->B, s->T, s->H, s->Dh, a->scale, bo_dev(a->scratch));
}

static void attn_bwd_run(poa_backend *be, void *p)
{
    const attn_args *a = p;
    const attn_shape *s = a->s;
    attn_fwd_run(be, p);
    be->nn->attention_bwd(be, BO_A(a->dqkv), s->lddqkv, BO_A(a->dout), s->lddout, BO_A(a->qkv),
                          s->ldqkv, bo_dev(a->saved), s->B, s->T, s->H, s->Dh, a->scale,
                          bo_dev(a->scratch));
}

static void attn_buffers(bo_case *k, attn_args *a, int bwd)
{
    const attn_shape *s = a->s;
    poa_backend *be = k->c->be;
    const int rows = s->B * s->T, w = s->H * s->Dh;
    a->scale = 1.0f / sqrtf((float) s->Dh);
    a->qkv = bo_new(k, "qkv", BO_ACT, BO_IN, rows, 3 * w, s->ldqkv, s->offq);
    bo_fill(a->qkv, -s->range, s->range);
    a->out = bo_new(k, "out", BO_ACT, BO_OUT, rows, w, s->ldout, 0);
    const size_t saved = be->nn->attention_saved_bytes(be, s->B, s->T, s->H, s->Dh);
    const size_t scratch = be->nn->attention_scratch_bytes(be, s->B, s->T, s->H, s->Dh);
    a->saved = bo_new(k, "saved", BO_BYTES, BO_OUT, 1, (int) saved, (int) saved, 0);
    a->scratch = bo_new(k, "scratch", BO_BYTES, BO_SCRATCH, 1, (int) scratch, (int) scratch, 0);
    if (!bwd) return;
    a->dout = bo_new(k, "dout", BO_ACT, BO_IN, rows, w, s->lddout, 0);
    a->dqkv = bo_new(k, "dqkv", BO_ACT, BO_OUT, rows, 3 * w, s->lddqkv, 0);
    bo_fill(a->dqkv, -5, 5);
}

static void attn_desc(char *d, size_t n, const char *op, const attn_shape *s)
{
    snprintf(d, n,
             "%s B=%d T=%d H=%d Dh=%d ldqkv=%d ldout=%d lddqkv=%d lddout=%d qkv in +-%g "
             "off=%zu",
             op, s->B, s->T, s->H, s->Dh, s->ldqkv, s->ldout, s->lddqkv, s->lddout, s->range,
             s->offq);
}

/* The naive forward's probabilities [B, H, T, T] for the values qkv holds. */
static double *attn_reference(bo_case *k, const attn_args *a, double *out, int ldout)
{
    const attn_shape *s = a->s;
    double *probs = bo_tmpd(k, (size_t) s->B * s->H * s->T * s->T);
    poa_naive_attention_fwd(out, ldout, probs, BO_HV(a->qkv), s->ldqkv, s->B, s->T, s->H, s->Dh,
                            a->scale);
    return probs;
}

/* out within 1e-6 + rtol (the case's: exp amplifies the scores' fp32 errors); bf16: one
 * rounding of out and 2^-8 of Σ_j P_ij |v_j| ≤ max|v| for P rounded before P·V. */
static void attn_fwd_case(bo_ctx *c, const attn_shape *s)
{
    char d[256];
    attn_desc(d, sizeof d, "attention_fwd", s);
    bo_case k;
    bo_case_begin(&k, c, "%s", d);
    attn_args a = {s, 0, NULL, NULL, NULL, NULL, NULL, NULL};
    attn_buffers(&k, &a, 0);
    bo_run(&k, attn_fwd_run, &a);
    double *want = bo_want(&k, a.out);
    attn_reference(&k, &a, BO_WV(want, a.out), s->ldout);
    const double vmax =
        bo_max_abs(BO_HV(a.qkv) + 2 * s->H * s->Dh, s->B * s->T, s->H * s->Dh, s->ldqkv);
    bo_expect(&k, a.out, want, NULL,
              (bo_tol){1e-6 + bf16_r(c, 2) * vmax, s->rtol + bf16_r(c, 1), 0});
    bo_case_end(&k);
}

/* dqkv within 1e-5 of its largest |value| + rtol; bf16: dq = scale·dS·k, dk = scale·dSᵀq,
 * dv = Pᵀ dO with P and dS rounded for the products (2^-8 each), dP − D cancelling, and dqkv
 * rounded: 4 roundings of the largest |dqkv| and one of the value. */
static void attn_bwd_case(bo_ctx *c, const attn_shape *s)
{
    char d[256];
    attn_desc(d, sizeof d, "attention_bwd", s);
    bo_case k;
    bo_case_begin(&k, c, "%s (after attention_fwd)", d);
    attn_args a = {s, 0, NULL, NULL, NULL, NULL, NULL, NULL};
    attn_buffers(&k, &a, 1);
    bo_run(&k, attn_bwd_run, &a);
    const int rows = s->B * s->T;
    double *out = bo_tmpd(&k, (size_t) rows * s->ldout), *want = bo_want(&k, a.dqkv);
    double *probs = attn_reference(&k, &a, out, s->ldout);
    poa_naive_attention_bwd(BO_WV(want, a.dqkv), s->lddqkv, BO_HV(a.dout), s->lddout, BO_HV(a.qkv),
                            s->ldqkv, probs, s->B, s->T, s->H, s->Dh, a.scale);
    const double m = bo_max_abs(BO_WV(want, a.dqkv), rows, 3 * s->H * s->Dh, s->lddqkv);
    bo_expect(&k, a.dqkv, want, NULL,
              (bo_tol){(1e-5 + bf16_r(c, 4)) * m, s->rtol + bf16_r(c, 1), 0});
    bo_case_end(&k);
}

/* T = 197 (224-px crop) with two heads of 8 in rows wider than 3·H·Dh; elastic width (the
 * first H = 3 of 5 heads inside a buffer whose ld is the intact 3·D); one (image, head) pair;
 * large scores (|s| ~ 10³: exp overflows without max subtraction); many pairs; T = 1; an
 * unaligned qkv; Dh = 128. */
static const attn_shape attn_shapes[] = {
    {2, 197, 2, 8, 3 * 16 + 5, 16 + 3, 3 * 16 + 2, 16 + 7, 2.0f, 1e-4f, 0, 0},
    {2, 11, 3, 4, 3 * 20, 20, 3 * 20 + 1, 20 + 2, 1.5f, 1e-4f, 0, 250},
    {1, 7, 1, 5, 15, 5, 15, 5, 1.0f, 1e-4f, 0, 100},
    {1, 37, 2, 16, 96, 32, 96, 32, 30.0f, 1e-2f, 0, 0},
    {33, 5, 3, 4, 36, 12, 36, 12, 1.0f, 1e-4f, 0, 60},
    {3, 1, 2, 8, 48, 16, 48, 16, 1.0f, 1e-4f, 0, 30},
    {2, 9, 2, 12, 3 * 24 + 1, 24, 3 * 24, 24, 1.0f, 1e-4f, 13, 40},
    {1, 33, 1, 128, 3 * 128, 128, 3 * 128, 128, 1.0f, 1e-4f, 0, 0},
};

/* The shapes of blocked kernels: T below, at and one past multiples of 16 (ragged last
 * vectors and row blocks), head widths 16, 32, 48, 64, 80, rows laid out for 3 heads inside
 * wider buffers. */
static void attn_kernel_shapes(bo_ctx *c, void (*one)(bo_ctx *, const attn_shape *), int fd)
{
    const int Ts[] = {1, 5, 16, 17, 37, 64, 65};
    const int Dhs[] = {16, 32, 64, 48, 80};
    for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++)
        for (size_t j = 0; j < sizeof Dhs / sizeof *Dhs; j++) {
            const int T = Ts[i], Dh = Dhs[j], w = 3 * Dh;
            const int checks = fd && T <= 17 && Dh <= 32 ? 40 : 0;
            const attn_shape s = {2,         T,     3,    Dh,    3 * w + 3, w + 1,
                                  3 * w + 5, w + 2, 1.5f, 1e-4f, 0,         checks};
            if (!fd || checks) one(c, &s);
        }
}

void bo_check_attention_fwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof attn_shapes / sizeof *attn_shapes; i++)
        attn_fwd_case(c, &attn_shapes[i]);
    attn_kernel_shapes(c, attn_fwd_case, 0);
}

void bo_check_attention_bwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof attn_shapes / sizeof *attn_shapes; i++)
        attn_bwd_case(c, &attn_shapes[i]);
    attn_kernel_shapes(c, attn_bwd_case, 0);
}

/* attention_saved_bytes / attention_scratch_bytes: the same answer twice, and no smaller for
 * more images (their sufficiency is checked by the guard after `saved` and `scratch` in every
 * attention case). */
void bo_check_attention_sizes(bo_ctx *c)
{
    poa_backend *be = c->be;
    bo_case k;
    bo_case_begin(&k, c,
                  "attention_saved_bytes, attention_scratch_bytes: repeatable, monotone "
                  "in B (sufficiency: the guards of every attention case)");
    const int shapes[][4] = {{1, 1, 1, 1}, {2, 197, 6, 64}, {64, 197, 16, 64}, {3, 65, 3, 80}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int B = shapes[i][0], T = shapes[i][1], H = shapes[i][2], Dh = shapes[i][3];
        const size_t sv = be->nn->attention_saved_bytes(be, B, T, H, Dh);
        const size_t sc = be->nn->attention_scratch_bytes(be, B, T, H, Dh);
        if (sv != be->nn->attention_saved_bytes(be, B, T, H, Dh) ||
            sc != be->nn->attention_scratch_bytes(be, B, T, H, Dh))
            bo_fail(&k, "B=%d T=%d H=%d Dh=%d: sizes differ between two calls", B, T, H, Dh);
        if (be->nn->attention_saved_bytes(be, 2 * B, T, H, Dh) < sv ||
            be->nn->attention_scratch_bytes(be, 2 * B, T, H, Dh) < sc)
            bo_fail(&k, "B=%d T=%d H=%d Dh=%d: smaller for 2B images", B, T, H, Dh);
        bo_note(&k, "B=%d T=%d H=%d Dh=%d: saved %zu bytes, scratch %zu bytes", B, T, H, Dh, sv,
                sc);
    }
    bo_case_end(&k);
}

typedef struct attn_fd {
    const attn_shape *s;
    double *qkv, *out, *probs, scale;
    const double *w;
} attn_fd;

static double attn_objective(void *p)
{
    attn_fd *f = p;
    const attn_shape *s = f->s;
    poa_naive_attention_fwd(f->out, s->lddout, f->probs, f->qkv, s->ldqkv, s->B, s->T, s->H, s->Dh,
                            f->scale);
    return bo_dot(f->w, f->out, s->B * s->T, s->H * s->Dh, s->lddout);
}

/* FD of the naive forward (objective weights: dout): the naive backward within 1e-7, the
 * backend's within 1e-4 (bf16: plus its roundings, as in the check). */
static void attn_grad_case(bo_ctx *c, const attn_shape *s)
{
    if (!s->fd) return;
    char d[256];
    attn_desc(d, sizeof d, "attention_bwd", s);
    bo_case k;
    bo_case_begin(&k, c, "%s vs finite differences", d);
    attn_args a = {s, 0, NULL, NULL, NULL, NULL, NULL, NULL};
    attn_buffers(&k, &a, 1);
    bo_run(&k, attn_bwd_run, &a);
    const int rows = s->B * s->T;
    double *qkv = bo_want(&k, a.qkv), *qv = BO_WV(qkv, a.qkv);
    double *out = bo_tmpd(&k, (size_t) rows * s->lddout);
    double *probs = bo_tmpd(&k, (size_t) s->B * s->H * s->T * s->T);
    double *ng = bo_tmpd(&k, (size_t) rows * s->lddqkv);
    poa_naive_attention_fwd(out, s->lddout, probs, qv, s->ldqkv, s->B, s->T, s->H, s->Dh, a.scale);
    poa_naive_attention_bwd(ng, s->lddqkv, BO_HV(a.dout), s->lddout, qv, s->ldqkv, probs, s->B,
                            s->T, s->H, s->Dh, a.scale);
    attn_fd f = {s, qv, out, probs, a.scale, BO_HV(a.dout)};
    bo_fd(&k, "dqkv", attn_objective, &f, qv, rows, 3 * s->H * s->Dh, s->ldqkv, ng, BO_GV(a.dqkv),
          s->lddqkv, s->fd, 1e-5, 1e-7, 1e-4 + bf16_r(c, 5));
    bo_case_end(&k);
}

void bo_grad_attention(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof attn_shapes / sizeof *attn_shapes; i++)
        attn_grad_case(c, &attn_shapes[i]);
    attn_kernel_shapes(c, attn_grad_case, 1);
}

/* ------------------------------------------------------------------------ LayerScale residual */
typedef enum { S_NONE, S_MIXED, S_DROPPED, S_KEPT } s_pattern;
typedef enum { BASE_SELF, BASE_OTHER, BASE_NULL } base_kind;

typedef struct res_args {
    bo_buf *x, *base, *y, *gamma, *s, *dy, *dgamma, *dx;
    int B, T, d;
    base_kind base_k;
} res_args;

static void res_fwd_run(poa_backend *be, void *p)
{
    const res_args *a = p;
    const poa_act *base = a->base_k == BASE_SELF ? BO_A(a->x) : a->base ? BO_A(a->base) : NULL;
    const int ldb = a->base_k == BASE_SELF ? a->x->ld : a->base ? a->base->ld : 0;
    be->nn->residual_ls_fwd(be, BO_A(a->x), a->x->ld, base, ldb, BO_A(a->y), a->y->ld,
                            BO_F(a->gamma), a->s ? BO_F(a->s) : NULL, a->B, a->T, a->d);
}

static void res_bwd_run(poa_backend *be, void *p)
{
    const res_args *a = p;
    be->nn->residual_ls_bwd(be, a->dy ? BO_A(a->dy) : NULL, a->dy ? a->dy->ld : 0,
                            a->dgamma ? BO_F(a->dgamma) : NULL, BO_A(a->dx), a->dx->ld, BO_A(a->y),
                            a->y->ld, BO_F(a->gamma), a->s ? BO_F(a->s) : NULL, a->B, a->T, a->d);
}

typedef struct res_shape {
    int B, T, d;
    s_pattern sp;
    size_t off;
    int dense; /* every leading dimension d: 16-byte rows where d allows (vector paths) */
} res_shape;

static const res_shape res_shapes[] = {
    {3, 5, 19, S_NONE, 0, 0},    {4, 5, 19, S_MIXED, 0, 0},
    {5, 37, 384, S_MIXED, 0, 0}, /* threaded */
    {2, 3, 8, S_DROPPED, 0, 0},  {2, 3, 8, S_KEPT, 0, 0},
    {3, 4, 21, S_MIXED, 5, 0}, /* unaligned */
    {5, 37, 384, S_MIXED, 0, 1}, {2, 3, 8, S_DROPPED, 0, 1},
    {3, 5, 16, S_NONE, 0, 1},    {4, 5, 24, S_KEPT, 0, 1},
    {3, 4, 24, S_MIXED, 3, 1},   {3, 5, 19, S_MIXED, 0, 1},
};

/* A view's leading dimension: d + extra (padding columns the op must not touch), or d. */
static int res_ld(const res_shape *sh, int extra)
{
    return sh->dense ? sh->d : sh->d + extra;
}

static const char *s_name(s_pattern p)
{
    static const char *n[] = {"s=NULL", "s mixed (images 1, 4 dropped)", "s all dropped",
                              "s all 1"};
    return n[p];
}

static double s_value(s_pattern p, int b)
{
    switch (p) {
    case S_MIXED:
        return b % 3 == 1 ? 0.0 : 1.25 + 0.5 * b;
    case S_DROPPED:
        return 0.0;
    default:
        return 1.0;
    }
}

/* y of dropped images holds NaN: the op must not read it. */
static void res_inputs(bo_case *k, res_args *a, const res_shape *sh)
{
    const int rows = sh->B * sh->T, d = sh->d;
    a->B = sh->B, a->T = sh->T, a->d = d;
    a->y = bo_new(k, "y", BO_ACT, BO_IN, rows, d, res_ld(sh, 7), sh->off);
    a->gamma = bo_vec(k, "gamma", BO_F32, BO_IN, (size_t) d);
    if (sh->sp != S_NONE) {
        a->s = bo_vec(k, "s", BO_F32, BO_IN, (size_t) sh->B);
        for (int b = 0; b < sh->B; b++) BO_HV(a->s)[b] = s_value(sh->sp, b);
    }
    for (int b = 0; b < sh->B; b++)
        if (s_value(sh->sp, b) == 0)
            for (int t = 0; t < sh->T; t++)
                for (int j = 0; j < d; j++)
                    BO_HV(a->y)[((size_t) b * sh->T + t) * a->y->ld + j] = NAN;
}

/* x within 1e-6 + 2e-5 relative, + one bf16 rounding. */
static void res_fwd_case(bo_ctx *c, const res_shape *sh, base_kind bk)
{
    static const char *bn[] = {"base=x (in place)", "base: another buffer", "base=NULL"};
    bo_case k;
    bo_case_begin(&k, c, "residual_ls_fwd B=%d T=%d d=%d %s %s ldx=%d ldy=%d off=%zu", sh->B, sh->T,
                  sh->d, s_name(sh->sp), bn[bk], res_ld(sh, 5), res_ld(sh, 7), sh->off);
    res_args a = {0};
    a.base_k = bk;
    res_inputs(&k, &a, sh);
    const int rows = sh->B * sh->T;
    a.x = bo_new(&k, "x", BO_ACT, BO_OUT, rows, sh->d, res_ld(sh, 5), 0);
    if (bk == BASE_OTHER)
        a.base = bo_new(&k, "base", BO_ACT, BO_IN, rows, sh->d, res_ld(sh, 3), sh->off);
    bo_run(&k, res_fwd_run, &a);
    double *want = bo_want(&k, a.x);
    double *xw = BO_WV(want, a.x), *sd = bo_tmpd(&k, (size_t) sh->B);
    for (int b = 0; b < sh->B; b++) sd[b] = s_value(sh->sp, b);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < sh->d; j++)
            xw[(size_t) r * a.x->ld + j] = bk == BASE_SELF ? xw[(size_t) r * a.x->ld + j]
                                           : bk == BASE_OTHER
                                               ? BO_HV(a.base)[(size_t) r * a.base->ld + j]
                                               : 0.0;
    poa_naive_residual_ls_fwd(xw, a.x->ld, BO_HV(a.y), a.y->ld, BO_HV(a.gamma),
                              sh->sp == S_NONE ? NULL : sd, sh->B, sh->T, sh->d);
    bo_expect(&k, a.x, want, NULL, (bo_tol){1e-6, 2e-5 + bf16_r(c, 1), 0});
    bo_case_end(&k);
}

void bo_check_residual_ls_fwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof res_shapes / sizeof *res_shapes; i++)
        for (int bk = BASE_SELF; bk <= BASE_NULL; bk++) res_fwd_case(c, &res_shapes[i], bk);
}

/* which: 1 dy, 2 dgamma */
static void res_bwd_setup(bo_case *k, res_args *a, const res_shape *sh, int which)
{
    res_inputs(k, a, sh);
    const int rows = sh->B * sh->T;
    a->dx = bo_new(k, "dx", BO_ACT, BO_IN, rows, sh->d, res_ld(sh, 3), 0);
    if (which & 1) a->dy = bo_new(k, "dy", BO_ACT, BO_OUT, rows, sh->d, res_ld(sh, 2), sh->off);
    if (which & 2) a->dgamma = bo_vec(k, "dgamma", BO_F32, BO_OUT, (size_t) sh->d);
}

/* dy (=) within 1e-6 + 1e-5 relative + one bf16 rounding; dgamma (+= onto junk, fp32 sums
 * over B·T rows) within 1e-5 + 1e-5 relative. */
static void res_bwd_case(bo_ctx *c, const res_shape *sh, int which)
{
    bo_case k;
    bo_case_begin(&k, c, "residual_ls_bwd B=%d T=%d d=%d %s dy=%s dgamma=%s off=%zu%s", sh->B,
                  sh->T, sh->d, s_name(sh->sp), which & 1 ? "yes" : "NULL",
                  which & 2 ? "yes" : "NULL", sh->off, sh->dense ? " dense" : "");
    res_args a = {0};
    res_bwd_setup(&k, &a, sh, which);
    bo_run(&k, res_bwd_run, &a);
    double *wdy = a.dy ? bo_want(&k, a.dy) : NULL, *wdg = a.dgamma ? bo_want(&k, a.dgamma) : NULL;
    double *sd = bo_tmpd(&k, (size_t) sh->B);
    for (int b = 0; b < sh->B; b++) sd[b] = s_value(sh->sp, b);
    poa_naive_residual_ls_bwd(wdy ? BO_WV(wdy, a.dy) : NULL, a.dy ? a.dy->ld : 0,
                              wdg ? BO_WV(wdg, a.dgamma) : NULL, BO_HV(a.dx), a.dx->ld, BO_HV(a.y),
                              a.y->ld, BO_HV(a.gamma), sh->sp == S_NONE ? NULL : sd, sh->B, sh->T,
                              sh->d);
    if (a.dy) bo_expect(&k, a.dy, wdy, NULL, (bo_tol){1e-6, 1e-5 + bf16_r(c, 1), 0});
    if (a.dgamma) {
        double *added = bo_tmpd(&k, a.dgamma->n);
        for (size_t j = 0; j < a.dgamma->n; j++) added[j] = wdg[j] - a.dgamma->h[j];
        bo_expect_added(&k, a.dgamma, added, NULL, (bo_tol){1e-5, 1e-5, 0});
    }
    bo_case_end(&k);
}

void bo_check_residual_ls_bwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof res_shapes / sizeof *res_shapes; i++)
        res_bwd_case(c, &res_shapes[i], 3);
    res_bwd_case(c, &res_shapes[1], 1);
    res_bwd_case(c, &res_shapes[1], 2);
}

typedef struct res_fd {
    int B, T, d, ldx, ldy;
    const double *s;
    double *x, *y, *gamma;
    const double *w;
} res_fd;

static double res_objective(void *p)
{
    res_fd *f = p;
    memset(f->x, 0, sizeof(double) * (size_t) f->B * f->T * f->ldx);
    poa_naive_residual_ls_fwd(f->x, f->ldx, f->y, f->ldy, f->gamma, f->s, f->B, f->T, f->d);
    return bo_dot(f->w, f->x, f->B * f->T, f->d, f->ldx);
}

void bo_grad_residual_ls(bo_ctx *c)
{
    for (int i = 0; i < 3; i++) {
        const res_shape *sh = &res_shapes[i];
        bo_case k;
        bo_case_begin(&k, c, "residual_ls_bwd B=%d T=%d d=%d %s vs finite differences", sh->B,
                      sh->T, sh->d, s_name(sh->sp));
        res_args a = {0};
        res_bwd_setup(&k, &a, sh, 3);
        bo_run(&k, res_bwd_run, &a);
        const int rows = sh->B * sh->T;
        double *y = bo_want(&k, a.y), *yv = BO_WV(y, a.y), *g = bo_want(&k, a.gamma);
        double *sd = bo_tmpd(&k, (size_t) sh->B), *x = bo_tmpd(&k, (size_t) rows * a.dx->ld);
        for (int b = 0; b < sh->B; b++) sd[b] = s_value(sh->sp, b);
        for (size_t j = 0; j < a.y->n;
             j++) /* a dropped image's y has no effect; FD needs it finite */
            if (isnan(y[j])) y[j] = 0.5;
        double *ngy = bo_tmpd(&k, (size_t) rows * a.dy->ld), *ngg = bo_tmpd(&k, (size_t) sh->d);
        const double *sp = sh->sp == S_NONE ? NULL : sd;
        poa_naive_residual_ls_bwd(ngy, a.dy->ld, ngg, BO_HV(a.dx), a.dx->ld, yv, a.y->ld,
                                  BO_WV(g, a.gamma), sp, sh->B, sh->T, sh->d);
        res_fd f = {sh->B, sh->T, sh->d, a.dx->ld,          a.y->ld,
                    sp,    x,     yv,    BO_WV(g, a.gamma), BO_HV(a.dx)};
        bo_fd(&k, "dy", res_objective, &f, yv, rows, sh->d, a.y->ld, ngy, BO_GV(a.dy), a.dy->ld,
              200, 1e-5, 1e-7, 1e-4 + bf16_r(c, 1));
        bo_fd(&k, "dgamma", res_objective, &f, BO_WV(g, a.gamma), 1, sh->d, sh->d, ngg,
              BO_WV(bo_delta(&k, a.dgamma), a.dgamma), sh->d, 64, 1e-5, 1e-7, 1e-4);
        bo_case_end(&k);
    }
}

/* ------------------------------------------------------------------------ patch unfolding */
typedef struct unfold_args {
    bo_buf *img, *cols;
    int B, C, Hi, Wi, P;
} unfold_args;

static void unfold_run(poa_backend *be, void *p)
{
    const unfold_args *a = p;
    be->nn->patch_unfold(be, BO_A(a->cols), BO_F(a->img), a->B, a->C, a->Hi, a->Wi, a->P);
}

/* A copy: exact in fp32, one rounding in bf16. */
void bo_check_patch_unfold(bo_ctx *c)
{
    const int shapes[][5] = {
        {2, 3, 12, 8, 4}, {3, 3, 64, 48, 16}, {1, 3, 6, 10, 2}, {1, 1, 3, 3, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int *s = shapes[i];
        const int n = (s[2] / s[4]) * (s[3] / s[4]) * s[0], len = s[1] * s[4] * s[4];
        bo_case k;
        bo_case_begin(&k, c, "patch_unfold B=%d C=%d Hi=%d Wi=%d P=%d", s[0], s[1], s[2], s[3],
                      s[4]);
        unfold_args a = {NULL, NULL, s[0], s[1], s[2], s[3], s[4]};
        a.img = bo_vec(&k, "img", BO_F32, BO_IN, (size_t) s[0] * s[1] * s[2] * s[3]);
        a.cols = bo_new(&k, "cols", BO_ACT, BO_OUT, n, len, len, 0);
        bo_run(&k, unfold_run, &a);
        double *want = bo_want(&k, a.cols);
        poa_naive_patch_unfold(BO_WV(want, a.cols), BO_HV(a.img), s[0], s[1], s[2], s[3], s[4]);
        for (size_t j = 0; j < (size_t) n * len; j++)
            BO_WV(want, a.cols)[j] = bo_round_act(c, BO_WV(want, a.cols)[j]);
        bo_expect(&k, a.cols, want, NULL, (bo_tol){0, 0, 0});
        if (i == 0) { /* the layout: image 1, patch (row 2, col 1), channel 2, pixel (3, 1) */
            const int P = s[4], gw = s[3] / P, row = (1 * (s[2] / P) + 2) * gw + 1;
            const double px =
                BO_HV(a.img)[(((size_t) 1 * s[1] + 2) * s[2] + 2 * P + 3) * s[3] + 1 * P + 1];
            bo_expect_scalar(&k, "image 1, patch (2, 1), channel 2, pixel (3, 1)",
                             BO_GV(a.cols)[(size_t) row * len + (2 * P + 3) * P + 1],
                             bo_round_act(c, px), 0, 0);
        }
        bo_case_end(&k);
    }
}

/* ------------------------------------------------------------------------ tokens */
typedef struct tok_shape {
    int B, N, d, ldx, ldemb, ldpos;
    int mask; /* 0 NULL, 1 some masked, 2 all masked */
} tok_shape;

static const tok_shape tok_shapes[] = {
    {3, 6, 13, 17, 15, 19, 1},                                 /* elastic-like: d below every ld */
    {3, 6, 13, 17, 15, 19, 0}, {4, 196, 96, 128, 100, 128, 1}, /* threaded, a global crop */
    {2, 4, 8, 8, 8, 8, 2},     {1, 1, 5, 5, 5, 5, 1},
};

typedef struct tok_args {
    const tok_shape *s;
    bo_buf *x, *emb, *cls, *pos, *mtok, *mask, *demb, *dcls, *dpos, *dmtok;
} tok_args;

static void tok_fwd_run(poa_backend *be, void *p)
{
    const tok_args *a = p;
    const tok_shape *s = a->s;
    be->nn->tokens_fwd(be, BO_A(a->x), s->ldx, BO_A(a->emb), s->ldemb, BO_F(a->cls), BO_F(a->pos),
                       s->ldpos, BO_F(a->mtok), a->mask ? BO_U(a->mask) : NULL, s->B, s->N, s->d);
}

static void tok_bwd_run(poa_backend *be, void *p)
{
    const tok_args *a = p;
    const tok_shape *s = a->s;
    be->nn->tokens_bwd(be, a->demb ? BO_A(a->demb) : NULL, s->ldemb, a->dcls ? BO_F(a->dcls) : NULL,
                       a->dpos ? BO_F(a->dpos) : NULL, s->ldpos, a->dmtok ? BO_F(a->dmtok) : NULL,
                       BO_A(a->x), s->ldx, a->mask ? BO_U(a->mask) : NULL, s->B, s->N, s->d);
}

static void tok_mask(bo_case *k, tok_args *a)
{
    const tok_shape *s = a->s;
    if (!s->mask) return;
    a->mask = bo_vec(k, "mask", BO_U8, BO_IN, (size_t) s->B * s->N);
    for (int i = 0; i < s->B * s->N; i++)
        BO_HV(a->mask)[i] = s->mask == 2 ? 1 : (i * 7 + 3) % 5 < 2;
}

static const char *mask_name(int m)
{
    return m == 0 ? "mask=NULL" : m == 1 ? "mask: 2 in 5" : "mask: all";
}

/* x = (emb or mask_token) + pos: one rounding of a sum of two (1e-7 relative in fp32). */
static void tok_fwd_case(bo_ctx *c, const tok_shape *s)
{
    bo_case k;
    bo_case_begin(&k, c, "tokens_fwd B=%d N=%d d=%d ldx=%d ldemb=%d ldpos=%d %s", s->B, s->N, s->d,
                  s->ldx, s->ldemb, s->ldpos, mask_name(s->mask));
    tok_args a = {s, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    const int T = s->N + 1;
    a.emb = bo_new(&k, "emb", BO_ACT, BO_IN, s->B * s->N, s->d, s->ldemb, 0);
    a.cls = bo_vec(&k, "cls", BO_F32, BO_IN, (size_t) s->d);
    a.pos = bo_new(&k, "pos", BO_F32, BO_IN, T, s->d, s->ldpos, 0);
    a.mtok = bo_vec(&k, "mask_token", BO_F32, BO_IN, (size_t) s->d);
    tok_mask(&k, &a);
    a.x = bo_new(&k, "x", BO_ACT, BO_OUT, s->B * T, s->d, s->ldx, 0);
    bo_run(&k, tok_fwd_run, &a);
    double *want = bo_want(&k, a.x);
    poa_naive_tokens_fwd(BO_WV(want, a.x), s->ldx, BO_HV(a.emb), s->ldemb, BO_HV(a.cls),
                         BO_HV(a.pos), s->ldpos, BO_HV(a.mtok), a.mask ? bo_u8(a.mask) : NULL, s->B,
                         s->N, s->d);
    bo_expect(&k, a.x, want, NULL, (bo_tol){1e-7, 1e-7 + bf16_r(c, 1), 0});
    bo_case_end(&k);
}

void bo_check_tokens_fwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof tok_shapes / sizeof *tok_shapes; i++)
        tok_fwd_case(c, &tok_shapes[i]);
}

/* which: 1 demb, 2 dcls, 4 dpos, 8 dmask_token */
static void tok_bwd_setup(bo_case *k, tok_args *a, int which)
{
    const tok_shape *s = a->s;
    const int T = s->N + 1;
    a->x = bo_new(k, "dx", BO_ACT, BO_IN, s->B * T, s->d, s->ldx, 0);
    tok_mask(k, a);
    if (which & 1) {
        a->demb = bo_new(k, "demb", BO_ACT, BO_OUT, s->B * s->N, s->d, s->ldemb, 0);
        bo_fill(a->demb, 3, 4);
    }
    if (which & 2) a->dcls = bo_vec(k, "dcls", BO_F32, BO_OUT, (size_t) s->d);
    if (which & 4) a->dpos = bo_new(k, "dpos", BO_F32, BO_OUT, T, s->d, s->ldpos, 0);
    if (which & 8) a->dmtok = bo_vec(k, "dmask_token", BO_F32, BO_OUT, (size_t) s->d);
}

/* demb: a copy of dx or 0, exact; dcls, dpos (+= onto junk): sums over the B images,
 * γ_{B+2} of the terms' magnitude; dmask_token: a sum over the masked positions (up to B·N),
 * γ_{B·N+2} of theirs.  No mask: dmask_token unchanged. */
static void tok_bwd_case(bo_ctx *c, const tok_shape *s, int which)
{
    bo_case k;
    bo_case_begin(&k, c, "tokens_bwd B=%d N=%d d=%d %s demb=%s dcls=%s dpos=%s dmask_token=%s",
                  s->B, s->N, s->d, mask_name(s->mask), which & 1 ? "yes" : "NULL",
                  which & 2 ? "yes" : "NULL", which & 4 ? "yes" : "NULL",
                  which & 8 ? "yes" : "NULL");
    tok_args a = {s, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    tok_bwd_setup(&k, &a, which);
    bo_run(&k, tok_bwd_run, &a);
    double *we = a.demb ? bo_want(&k, a.demb) : NULL, *wc = a.dcls ? bo_want(&k, a.dcls) : NULL;
    double *wp = a.dpos ? bo_want(&k, a.dpos) : NULL, *wm = a.dmtok ? bo_want(&k, a.dmtok) : NULL;
    const uint8_t *mask = a.mask ? bo_u8(a.mask) : NULL;
    poa_naive_tokens_bwd(we ? BO_WV(we, a.demb) : NULL, s->ldemb, wc ? BO_WV(wc, a.dcls) : NULL,
                         wp ? BO_WV(wp, a.dpos) : NULL, s->ldpos, wm ? BO_WV(wm, a.dmtok) : NULL,
                         BO_HV(a.x), s->ldx, mask, s->B, s->N, s->d);
    /* magnitudes: |junk| + Σ|dx| of the terms each value sums (B images for dcls and dpos, the
     * masked positions for dmask_token) */
    const int T = s->N + 1;
    const double *dx = BO_HV(a.x);
    double *mc = bo_tmpd(&k, (size_t) s->d), *mp = bo_tmpd(&k, (size_t) T * s->ldpos);
    double *mm = bo_tmpd(&k, (size_t) s->d);
    for (int b = 0; b < s->B; b++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < s->d; j++) {
                const double g = fabs(dx[((size_t) b * T + t) * s->ldx + j]);
                mp[(size_t) t * s->ldpos + j] += g;
                if (t == 0) mc[j] += g;
                if (t > 0 && mask && mask[(size_t) b * s->N + t - 1]) mm[j] += g;
            }
    const bo_tol img_tol = {0, 0, (s->B + 2) * BO_U32};
    const bo_tol all_tol = {0, 0, ((double) s->B * s->N + 2) * BO_U32};
    double *magc = a.dcls ? bo_tmpd(&k, a.dcls->n) : NULL,
           *magp = a.dpos ? bo_tmpd(&k, a.dpos->n) : NULL;
    double *magm = a.dmtok ? bo_tmpd(&k, a.dmtok->n) : NULL;
    for (int j = 0; magc && j < s->d; j++) BO_WV(magc, a.dcls)[j] = mc[j] + fabs(BO_HV(a.dcls)[j]);
    for (int j = 0; magm && j < s->d; j++)
        BO_WV(magm, a.dmtok)[j] = mm[j] + fabs(BO_HV(a.dmtok)[j]);
    for (int t = 0; magp && t < T; t++)
        for (int j = 0; j < s->d; j++) {
            const size_t e = (size_t) t * s->ldpos + j;
            BO_WV(magp, a.dpos)[e] = mp[e] + fabs(BO_HV(a.dpos)[e]);
        }
    if (a.demb) bo_expect(&k, a.demb, we, NULL, (bo_tol){0, 0, 0});
    if (a.dcls) bo_expect(&k, a.dcls, wc, magc, img_tol);
    if (a.dpos) bo_expect(&k, a.dpos, wp, magp, img_tol);
    if (a.dmtok && mask) bo_expect(&k, a.dmtok, wm, magm, all_tol);
    if (a.dmtok && !mask) bo_expect_unchanged(&k, a.dmtok);
    bo_case_end(&k);
}

void bo_check_tokens_bwd(bo_ctx *c)
{
    for (size_t i = 0; i < sizeof tok_shapes / sizeof *tok_shapes; i++)
        tok_bwd_case(c, &tok_shapes[i], 15);
    tok_bwd_case(c, &tok_shapes[0], 1);
    tok_bwd_case(c, &tok_shapes[0], 14);
    tok_bwd_case(c, &tok_shapes[0], 8);
}

typedef struct tok_fd {
    const tok_shape *s;
    double *x, *emb, *cls, *pos, *mtok;
    const double *w;
    const uint8_t *mask;
} tok_fd;

static double tok_objective(void *p)
{
    tok_fd *f = p;
    const tok_shape *s = f->s;
    poa_naive_tokens_fwd(f->x, s->ldx, f->emb, s->ldemb, f->cls, f->pos, s->ldpos, f->mtok, f->mask,
                         s->B, s->N, s->d);
    return bo_dot(f->w, f->x, s->B * (s->N + 1), s->d, s->ldx);
}

void bo_grad_tokens(bo_ctx *c)
{
    for (int i = 0; i < 3; i++) {
        const tok_shape *s = &tok_shapes[i];
        const int T = s->N + 1;
        bo_case k;
        bo_case_begin(&k, c, "tokens_bwd B=%d N=%d d=%d %s vs finite differences", s->B, s->N, s->d,
                      mask_name(s->mask));
        tok_args a = {s, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
        tok_bwd_setup(&k, &a, 15);
        bo_run(&k, tok_bwd_run, &a);
        double *x = bo_tmpd(&k, (size_t) s->B * T * s->ldx);
        double *emb = bo_tmpd(&k, (size_t) s->B * s->N * s->ldemb), *cls = bo_tmpd(&k, s->d);
        double *pos = bo_tmpd(&k, (size_t) T * s->ldpos), *mt = bo_tmpd(&k, s->d);
        double *nge = bo_tmpd(&k, (size_t) s->B * s->N * s->ldemb), *ngc = bo_tmpd(&k, s->d);
        double *ngp = bo_tmpd(&k, (size_t) T * s->ldpos), *ngm = bo_tmpd(&k, s->d);
        const uint8_t *mask = a.mask ? bo_u8(a.mask) : NULL;
        poa_naive_tokens_bwd(nge, s->ldemb, ngc, ngp, s->ldpos, ngm, BO_HV(a.x), s->ldx, mask, s->B,
                             s->N, s->d);
        tok_fd f = {s, x, emb, cls, pos, mt, BO_HV(a.x), mask};
        bo_fd(&k, "demb", tok_objective, &f, emb, s->B * s->N, s->d, s->ldemb, nge, BO_GV(a.demb),
              s->ldemb, 200, 1e-3, 1e-9, 1e-5);
        bo_fd(&k, "dcls", tok_objective, &f, cls, 1, s->d, s->d, ngc,
              BO_WV(bo_delta(&k, a.dcls), a.dcls), s->d, 100, 1e-3, 1e-9, 1e-5);
        bo_fd(&k, "dpos", tok_objective, &f, pos, T, s->d, s->ldpos, ngp,
              BO_WV(bo_delta(&k, a.dpos), a.dpos), s->ldpos, 200, 1e-3, 1e-9, 1e-5);
        if (mask)
            bo_fd(&k, "dmask_token", tok_objective, &f, mt, 1, s->d, s->d, ngm,
                  BO_WV(bo_delta(&k, a.dmtok), a.dmtok), s->d, 100, 1e-3, 1e-9, 1e-5);
        bo_case_end(&k);
    }
}

/* ------------------------------------------------------------------------ gather / scatter */
typedef enum { GS_GATHER, GS_SCATTER, GS_GATHER_F32, GS_SCATTER_F32 } gs_op;

static const char *gs_name(gs_op op)
{
    static const char *n[] = {"act_gather_rows", "act_scatter_add_rows", "act_gather_rows_f32",
                              "act_scatter_add_rows_f32"};
    return n[op];
}

typedef struct gs_args {
    gs_op op;
    bo_buf *dst, *src, *idx;
    int n, cols;
    bo_buf *twin; /* fp32 compute dtype: the same rows through the act (non-f32) op */
} gs_args;

static void gs_run(poa_backend *be, void *p)
{
    const gs_args *a = p;
    const int32_t *idx = BO_I(a->idx);
    switch (a->op) {
    case GS_GATHER:
        be->nn->act_gather_rows(be, BO_A(a->dst), a->dst->ld, BO_A(a->src), a->src->ld, idx, a->n,
                                a->cols);
        break;
    case GS_SCATTER:
        be->nn->act_scatter_add_rows(be, BO_A(a->dst), a->dst->ld, BO_A(a->src), a->src->ld, idx,
                                     a->n, a->cols);
        break;
    case GS_GATHER_F32:
        be->nn->act_gather_rows_f32(be, BO_F(a->dst), a->dst->ld, BO_A(a->src), a->src->ld, idx,
                                    a->n, a->cols);
        break;
    case GS_SCATTER_F32:
        be->nn->act_scatter_add_rows_f32(be, BO_A(a->dst), a->dst->ld, BO_F(a->src), a->src->ld,
                                         idx, a->n, a->cols);
        break;
    }
    if (!a->twin) return; /* fp32 activations: an fp32 buffer is an activation buffer */
    if (a->op == GS_GATHER_F32)
        be->nn->act_gather_rows(be, BO_A(a->twin), a->twin->ld, BO_A(a->src), a->src->ld, idx, a->n,
                                a->cols);
    else
        be->nn->act_scatter_add_rows(be, BO_A(a->twin), a->twin->ld, (const poa_act *) BO_F(a->src),
                                     a->src->ld, idx, a->n, a->cols);
}

typedef struct gs_shape {
    int rows, n, cols;
    size_t off;
    int dense; /* both leading dimensions cols: 16-byte rows where cols allows (vector path) */
} gs_shape;

/* rows: of the activation buffer; n indices (distinct for scatters; gathers repeat) */
static const gs_shape gs_shapes[] = {
    {11, 9, 13, 0, 0},      {3000, 2000, 40, 0, 0}, {5, 1, 7, 0, 0},   {394, 197, 24, 3, 0},
    {3000, 2000, 40, 0, 1}, {394, 197, 24, 0, 1},   {11, 9, 13, 0, 1}, {394, 197, 24, 3, 1},
};

/* gathers: exact copies; scatters: dst + src rounded once (fp32 add, then the compute dtype). */
static void gs_case(bo_ctx *c, gs_op op, const gs_shape *sh)
{
    const int scatter = op == GS_SCATTER || op == GS_SCATTER_F32;
    const int f32 = op == GS_GATHER_F32 || op == GS_SCATTER_F32;
    bo_case k;
    const int ld_act = sh->dense ? sh->cols : sh->cols + 3,
              ld_rows = sh->dense ? sh->cols : sh->cols + 1;
    bo_case_begin(&k, c, "%s rows=%d n=%d cols=%d ld(act)=%d ld(rows)=%d off=%zu indices %s",
                  gs_name(op), sh->rows, sh->n, sh->cols, ld_act, ld_rows, sh->off,
                  scatter ? "distinct" : "with repeats");
    gs_args a = {op, NULL, NULL, NULL, sh->n, sh->cols, NULL};
    /* the activation side [rows, cols] (ld cols + 3) and the row side [n, cols] (ld cols + 1),
     * or both packed */
    bo_buf *act = bo_new(&k, scatter ? "dst" : "src", BO_ACT, scatter ? BO_OUT : BO_IN, sh->rows,
                         sh->cols, ld_act, sh->off);
    bo_buf *rows = bo_new(&k, scatter ? "src" : "dst", f32 ? BO_F32 : BO_ACT,
                          scatter ? BO_IN : BO_OUT, sh->n, sh->cols, ld_rows, 0);
    a.dst = scatter ? act : rows, a.src = scatter ? rows : act;
    a.idx = bo_vec(&k, "idx", BO_I32, BO_IN, (size_t) sh->n);
    for (int i = 0; i < sh->n; i++) /* a permutation's prefix (distinct), or repeats */
        BO_HV(a.idx)[i] = scatter ? (i * 7919 + 3) % sh->rows : (i * 4 + 1) % sh->rows;
    if (scatter && sh->rows % 7919 == 0) POA_ASSERT(!"7919 must be coprime with rows");
    bo_buf *twin = NULL; /* fp32 compute dtype: the fp32 crossing gives the act op's bits */
    if (f32 && c->be->act_dtype == POA_DT_F32) {
        twin = bo_new(&k, scatter ? "dst (act_scatter_add_rows)" : "dst (act_gather_rows)", BO_ACT,
                      BO_OUT, a.dst->rows, a.dst->cols, a.dst->ld, a.dst->off);
        memcpy(twin->h, a.dst->h, sizeof(double) * a.dst->n);
        a.twin = twin;
    }
    bo_run(&k, gs_run, &a);
    if (twin) bo_expect_same_bytes(&k, a.dst, twin);
    double *want = bo_want(&k, a.dst);
    if (scatter) {
        double *mag = bo_tmpd(&k, a.dst->n);
        for (size_t j = 0; j < a.dst->n; j++) mag[j] = fabs(a.dst->h[j]);
        poa_naive_scatter_add_rows(BO_WV(want, a.dst), a.dst->ld, BO_HV(a.src), a.src->ld,
                                   bo_i32(a.idx), sh->n, sh->cols);
        for (int i = 0; i < sh->n; i++)
            for (int j = 0; j < sh->cols; j++) BO_WV(mag, a.dst)
        [(size_t) bo_i32(a.idx)[i] * a.dst->ld + j] +=
            fabs(BO_HV(a.src)[(size_t) i * a.src->ld + j]);
        bo_expect(&k, a.dst, want, mag, (bo_tol){0, bf16_r(c, 1), BO_U32});
    } else {
        poa_naive_gather_rows(BO_WV(want, a.dst), a.dst->ld, BO_HV(a.src), a.src->ld, bo_i32(a.idx),
                              sh->n, sh->cols);
        bo_expect(&k, a.dst, want, NULL, (bo_tol){0, 0, 0});
    }
    bo_case_end(&k);
}

static void gs_cases(bo_ctx *c, gs_op op)
{
    for (size_t i = 0; i < sizeof gs_shapes / sizeof *gs_shapes; i++) gs_case(c, op, &gs_shapes[i]);
}

void bo_check_act_gather_rows(bo_ctx *c)
{
    gs_cases(c, GS_GATHER);
}

void bo_check_act_scatter_add_rows(bo_ctx *c)
{
    gs_cases(c, GS_SCATTER);
}

void bo_check_act_gather_rows_f32(bo_ctx *c)
{
    gs_cases(c, GS_GATHER_F32);
}

void bo_check_act_scatter_add_rows_f32(bo_ctx *c)
{
    gs_cases(c, GS_SCATTER_F32);
}

typedef struct gs_fd {
    int n, cols, lds, ldd;
    const int32_t *idx;
    double *src, *dst;
    const double *w;
} gs_fd;

static double gather_objective(void *p)
{
    gs_fd *f = p;
    poa_naive_gather_rows(f->dst, f->ldd, f->src, f->lds, f->idx, f->n, f->cols);
    return bo_dot(f->w, f->dst, f->n, f->cols, f->ldd);
}

/* A scatter_add is the backward of the gather with the same indices: FD of L = Σ w ⊙
 * gather(src) with respect to src, w the rows scattered. */
static void gs_fd_case(bo_ctx *c, gs_op op)
{
    enum { SROWS = 20, N = 15, COLS = 5, LDS = 7, LDD = 6 };
    bo_case k;
    bo_case_begin(&k, c, "%s vs finite differences of the gather: rows=%d n=%d cols=%d",
                  gs_name(op), SROWS, N, COLS);
    gs_args a = {op, NULL, NULL, NULL, N, COLS, NULL};
    a.dst = bo_new(&k, "dst", BO_ACT, BO_OUT, SROWS, COLS, LDS, 0);
    a.src = bo_new(&k, "src", op == GS_SCATTER_F32 ? BO_F32 : BO_ACT, BO_IN, N, COLS, LDD, 0);
    a.idx = bo_vec(&k, "idx", BO_I32, BO_IN, N);
    for (int i = 0; i < N; i++) BO_HV(a.idx)[i] = (i * 7 + 3) % SROWS;
    bo_run(&k, gs_run, &a);
    double *x = bo_tmpd(&k, SROWS * LDS), *y = bo_tmpd(&k, N * LDD), *ng = bo_tmpd(&k, SROWS * LDS);
    for (int i = 0; i < SROWS * LDS; i++) x[i] = sin(i);
    poa_naive_scatter_add_rows(ng, LDS, BO_HV(a.src), LDD, bo_i32(a.idx), N, COLS);
    gs_fd f = {N, COLS, LDS, LDD, bo_i32(a.idx), x, y, BO_HV(a.src)};
    bo_fd(&k, "dsrc", gather_objective, &f, x, SROWS, COLS, LDS, ng,
          BO_WV(bo_delta(&k, a.dst), a.dst), LDS, 64, 1e-3, 1e-9, 1e-5 + bf16_r(c, 2));
    bo_case_end(&k);
}

void bo_grad_act_scatter_add_rows(bo_ctx *c)
{
    gs_fd_case(c, GS_SCATTER);
}

void bo_grad_act_scatter_add_rows_f32(bo_ctx *c)
{
    gs_fd_case(c, GS_SCATTER_F32);
}

/* ------------------------------------------------------------------------ perf */
typedef struct perf_ln {
    int rows, d;
    poa_act *x, *y, *dy, *dx;
    float *mean, *rstd, *w, *b, *dw, *db;
} perf_ln_args;

static void perf_ln_fwd_run(poa_backend *be, void *p)
{
    const perf_ln_args *l = p;
    be->nn->layernorm_fwd(be, l->y, l->d, l->mean, l->rstd, l->x, l->d, l->w, l->b, l->rows, l->d,
                          1e-6f);
}

static void perf_ln_bwd_run(poa_backend *be, void *p)
{
    const perf_ln_args *l = p;
    be->nn->layernorm_bwd(be, l->dx, l->d, 1.0f, l->dw, l->db, l->dy, l->d, l->x, l->d, l->mean,
                          l->rstd, l->w, l->rows, l->d);
}

static void perf_ln(bo_ctx *c, int bwd)
{
    for (int i = 0; i < 2; i++) {
        const int rows = vit_rows(c), d = bo_vits[i].d;
        const size_t n = (size_t) rows * d;
        perf_ln_args l = {rows, d, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
        l.x = bo_perf_alloc(c, BO_ACT, n, -2, 2), l.y = bo_perf_alloc(c, BO_ACT, n, -1, 1);
        l.dy = bo_perf_alloc(c, BO_ACT, n, -1, 1), l.dx = bo_perf_alloc(c, BO_ACT, n, -1, 1);
        l.mean = bo_perf_alloc(c, BO_F32, (size_t) rows, -0.1, 0.1);
        l.rstd = bo_perf_alloc(c, BO_F32, (size_t) rows, 0.5, 1);
        l.w = bo_perf_alloc(c, BO_F32, (size_t) d, 0.5, 1.5);
        l.b = bo_perf_alloc(c, BO_F32, (size_t) d, -0.5, 0.5);
        l.dw = bo_perf_alloc(c, BO_F32, (size_t) d, -1, 1);
        l.db = bo_perf_alloc(c, BO_F32, (size_t) d, -1, 1);
        const double t = bo_time(c, bwd ? perf_ln_bwd_run : perf_ln_fwd_run, &l);
        char shape[96];
        snprintf(shape, sizeof shape, "%s rows=%d d=%d%s", bo_vits[i].name, rows, d,
                 bwd ? " dx+=, dw, db" : "");
        bo_perf_line(c, shape, t, (double) n * c->be->act_size * (bwd ? 4 : 2), 0);
        bo_perf_free(c, l.x), bo_perf_free(c, l.y), bo_perf_free(c, l.dy), bo_perf_free(c, l.dx);
        bo_perf_free(c, l.mean), bo_perf_free(c, l.rstd), bo_perf_free(c, l.w);
        bo_perf_free(c, l.b), bo_perf_free(c, l.dw), bo_perf_free(c, l.db);
    }
}

void bo_perf_layernorm_fwd(bo_ctx *c)
{
    perf_ln(c, 0);
}

void bo_perf_layernorm_bwd(bo_ctx *c)
{
    perf_ln(c, 1);
}

typedef struct perf_attn {
    int B, T, H, Dh;
    poa_act *qkv, *out, *dout, *dqkv;
    void *saved, *scratch;
} perf_attn;

static void perf_attn_fwd_run(poa_backend *be, void *p)
{
    const perf_attn *a = p;
    const int w = a->H * a->Dh;
    be->nn->attention_fwd(be, a->out, w, a->saved, a->qkv, 3 * w, a->B, a->T, a->H, a->Dh,
                          1.0f / sqrtf((float) a->Dh), a->scratch);
}

static void perf_attn_bwd_run(poa_backend *be, void *p)
{
    const perf_attn *a = p;
    const int w = a->H * a->Dh;
    be->nn->attention_bwd(be, a->dqkv, 3 * w, a->dout, w, a->qkv, 3 * w, a->saved, a->B, a->T, a->H,
                          a->Dh, 1.0f / sqrtf((float) a->Dh), a->scratch);
}

/* Per model two shapes: the global crops (images × 197 tokens) and the local crops (4 × as many
 * 96-px crops of 37 tokens: the official recipe has 8 local crops per 2 global ones).  FLOPs:
 * forward 4·B·H·T²·Dh (q kᵀ, P v), backward 8·B·H·T²·Dh (dP, dV, dQ, dK): the minimal counts,
 * whatever a kernel recomputes. */
static void perf_attn_op(bo_ctx *c, int bwd)
{
    poa_backend *be = c->be;
    for (int s = 0; s < 4; s++) {
        const bo_vit *m = &bo_vits[s / 2];
        const int local = s % 2;
        perf_attn a = {.B = local ? 4 * c->images : c->images,
                       .T = local ? BO_LOCAL_TOKENS : BO_TOKENS,
                       .H = m->heads,
                       .Dh = m->head_dim};
        const size_t rows = (size_t) a.B * a.T, w = (size_t) a.H * a.Dh;
        a.qkv = bo_perf_alloc(c, BO_ACT, rows * 3 * w, -1, 1);
        a.out = bo_perf_alloc(c, BO_ACT, rows * w, -1, 1);
        a.dout = bo_perf_alloc(c, BO_ACT, rows * w, -1, 1);
        a.dqkv = bo_perf_alloc(c, BO_ACT, rows * 3 * w, -1, 1);
        const size_t sv = be->nn->attention_saved_bytes(be, a.B, a.T, a.H, a.Dh);
        const size_t sc = be->nn->attention_scratch_bytes(be, a.B, a.T, a.H, a.Dh);
        a.saved = bo_perf_alloc(c, BO_BYTES, sv, 0, 0);
        a.scratch = bo_perf_alloc(c, BO_BYTES, sc, 0, 0);
        perf_attn_fwd_run(be, &a); /* saved as forward leaves it */
        const double t = bo_time(c, bwd ? perf_attn_bwd_run : perf_attn_fwd_run, &a);
        char shape[96];
        snprintf(shape, sizeof shape, "%s B=%d T=%d H=%d Dh=%d", m->name, a.B, a.T, a.H, a.Dh);
        bo_perf_line(c, shape, t, 0, (bwd ? 8.0 : 4.0) * a.B * a.H * a.T * a.T * a.Dh);
        bo_perf_free(c, a.qkv), bo_perf_free(c, a.out), bo_perf_free(c, a.dout);
        bo_perf_free(c, a.dqkv), bo_perf_free(c, a.saved), bo_perf_free(c, a.scratch);
    }
}

void bo_perf_attention_fwd(bo_ctx *c)
{
    perf_attn_op(c, 0);
}

void bo_perf_attention_bwd(bo_ctx *c)
{
    perf_attn_op(c, 1);
}

typedef struct perf_res {
    int B, T, d;
    poa_act *x, *y, *dx, *dy;
    float *gamma, *s, *dgamma;
} perf_res_args;

static void perf_res_fwd_run(poa_backend *be, void *p)
{
    const perf_res_args *r = p;
    be->nn->residual_ls_fwd(be, r->x, r->d, r->x, r->d, r->y, r->d, r->gamma, r->s, r->B, r->T,
                            r->d);
}

static void perf_res_bwd_run(poa_backend *be, void *p)
{
    const perf_res_args *r = p;
    be->nn->residual_ls_bwd(be, r->dy, r->d, r->dgamma, r->dx, r->d, r->y, r->d, r->gamma, r->s,
                            r->B, r->T, r->d);
}

static void perf_res(bo_ctx *c, int bwd)
{
    for (int i = 0; i < 2; i++) {
        perf_res_args r = {c->images, BO_TOKENS, bo_vits[i].d, NULL, NULL,
                           NULL,      NULL,      NULL,         NULL, NULL};
        const size_t n = (size_t) r.B * r.T * r.d;
        r.x = bo_perf_alloc(c, BO_ACT, n, -1, 1), r.y = bo_perf_alloc(c, BO_ACT, n, -1, 1);
        r.dx = bo_perf_alloc(c, BO_ACT, n, -1, 1), r.dy = bo_perf_alloc(c, BO_ACT, n, -1, 1);
        r.gamma = bo_perf_alloc(c, BO_F32, (size_t) r.d, -1, 1);
        r.s = bo_perf_alloc(c, BO_F32, (size_t) r.B, 1, 1);
        r.dgamma = bo_perf_alloc(c, BO_F32, (size_t) r.d, -1, 1);
        const double t = bo_time(c, bwd ? perf_res_bwd_run : perf_res_fwd_run, &r);
        char shape[96];
        snprintf(shape, sizeof shape, "%s B=%d T=%d d=%d%s", bo_vits[i].name, r.B, r.T, r.d,
                 bwd ? " dy, dgamma" : " in place");
        bo_perf_line(c, shape, t, (double) n * c->be->act_size * 3, 0);
        bo_perf_free(c, r.x), bo_perf_free(c, r.y), bo_perf_free(c, r.dx), bo_perf_free(c, r.dy);
        bo_perf_free(c, r.gamma), bo_perf_free(c, r.s), bo_perf_free(c, r.dgamma);
    }
}

void bo_perf_residual_ls_fwd(bo_ctx *c)
{
    perf_res(c, 0);
}

void bo_perf_residual_ls_bwd(bo_ctx *c)
{
    perf_res(c, 1);
}

typedef struct perf_unfold {
    int B;
    float *img;
    poa_act *cols;
} perf_unfold;

static void perf_unfold_run(poa_backend *be, void *p)
{
    const perf_unfold *u = p;
    be->nn->patch_unfold(be, u->cols, u->img, u->B, 3, 224, 224, 16);
}

void bo_perf_patch_unfold(bo_ctx *c)
{
    const size_t n = (size_t) c->images * 3 * 224 * 224;
    perf_unfold u = {c->images, bo_perf_alloc(c, BO_F32, n, -1, 1),
                     bo_perf_alloc(c, BO_ACT, n, -1, 1)};
    const double t = bo_time(c, perf_unfold_run, &u);
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d 3x224x224 P=16", c->images);
    bo_perf_line(c, shape, t, (double) n * (4 + c->be->act_size), 0);
    bo_perf_free(c, u.img), bo_perf_free(c, u.cols);
}

typedef struct perf_tok {
    int B, N, d;
    poa_act *x, *emb;
    float *cls, *pos, *mt, *dcls, *dpos, *dmt;
    uint8_t *mask;
} perf_tok_args;

static void perf_tok_fwd_run(poa_backend *be, void *p)
{
    const perf_tok_args *t = p;
    be->nn->tokens_fwd(be, t->x, t->d, t->emb, t->d, t->cls, t->pos, t->d, t->mt, t->mask, t->B,
                       t->N, t->d);
}

static void perf_tok_bwd_run(poa_backend *be, void *p)
{
    const perf_tok_args *t = p;
    be->nn->tokens_bwd(be, t->emb, t->d, t->dcls, t->dpos, t->d, t->dmt, t->x, t->d, t->mask, t->B,
                       t->N, t->d);
}

static void perf_tok(bo_ctx *c, int bwd)
{
    for (int i = 0; i < 2; i++) {
        perf_tok_args t = {0};
        t.B = c->images, t.N = BO_TOKENS - 1, t.d = bo_vits[i].d;
        const size_t nx = (size_t) t.B * (t.N + 1) * t.d, ne = (size_t) t.B * t.N * t.d;
        t.x = bo_perf_alloc(c, BO_ACT, nx, -1, 1), t.emb = bo_perf_alloc(c, BO_ACT, ne, -1, 1);
        t.cls = bo_perf_alloc(c, BO_F32, (size_t) t.d, -1, 1);
        t.pos = bo_perf_alloc(c, BO_F32, (size_t) (t.N + 1) * t.d, -1, 1);
        t.mt = bo_perf_alloc(c, BO_F32, (size_t) t.d, -1, 1);
        t.dcls = bo_perf_alloc(c, BO_F32, (size_t) t.d, -1, 1);
        t.dpos = bo_perf_alloc(c, BO_F32, (size_t) (t.N + 1) * t.d, -1, 1);
        t.dmt = bo_perf_alloc(c, BO_F32, (size_t) t.d, -1, 1);
        t.mask = bo_perf_alloc(c, BO_U8, (size_t) t.B * t.N, 0, 0); /* zeros: none masked */
        const double s = bo_time(c, bwd ? perf_tok_bwd_run : perf_tok_fwd_run, &t);
        char shape[96];
        snprintf(shape, sizeof shape, "%s B=%d N=%d d=%d", bo_vits[i].name, t.B, t.N, t.d);
        bo_perf_line(c, shape, s, (double) (nx + ne) * c->be->act_size, 0);
        bo_perf_free(c, t.x), bo_perf_free(c, t.emb), bo_perf_free(c, t.cls);
        bo_perf_free(c, t.pos), bo_perf_free(c, t.mt), bo_perf_free(c, t.dcls);
        bo_perf_free(c, t.dpos), bo_perf_free(c, t.dmt), bo_perf_free(c, t.mask);
    }
}

void bo_perf_tokens_fwd(bo_ctx *c)
{
    perf_tok(c, 0);
}

void bo_perf_tokens_bwd(bo_ctx *c)
{
    perf_tok(c, 1);
}

typedef struct perf_gs {
    gs_op op;
    int n, cols;
    void *act, *rows;
    int32_t *idx;
} perf_gs_args;

static void perf_gs_run(poa_backend *be, void *p)
{
    const perf_gs_args *g = p;
    switch (g->op) {
    case GS_GATHER:
        be->nn->act_gather_rows(be, g->rows, g->cols, g->act, g->cols, g->idx, g->n, g->cols);
        break;
    case GS_SCATTER:
        be->nn->act_scatter_add_rows(be, g->act, g->cols, g->rows, g->cols, g->idx, g->n, g->cols);
        break;
    case GS_GATHER_F32:
        be->nn->act_gather_rows_f32(be, g->rows, g->cols, g->act, g->cols, g->idx, g->n, g->cols);
        break;
    case GS_SCATTER_F32:
        be->nn->act_scatter_add_rows_f32(be, g->act, g->cols, g->rows, g->cols, g->idx, g->n,
                                         g->cols);
        break;
    }
}

/* Half the tokens of the batch (masked patch tokens into the iBOT head), every other row. */
static void perf_gs(bo_ctx *c, gs_op op)
{
    const int f32 = op == GS_GATHER_F32 || op == GS_SCATTER_F32;
    for (int i = 0; i < 2; i++) {
        const int rows = vit_rows(c), n = rows / 2, cols = bo_vits[i].d;
        perf_gs_args g = {op, n, cols, NULL, NULL, NULL};
        g.act = bo_perf_alloc(c, BO_ACT, (size_t) rows * cols, -1, 1);
        g.rows = bo_perf_alloc(c, f32 ? BO_F32 : BO_ACT, (size_t) n * cols, -1, 1);
        g.idx = bo_perf_alloc(c, BO_I32, (size_t) n, 0, 0);
        int32_t *idx = poa_xmalloc(sizeof(int32_t) * (size_t) n);
        for (int j = 0; j < n; j++) idx[j] = 2 * j;
        c->be->iface->upload(c->be, g.idx, idx, sizeof(int32_t) * (size_t) n);
        free(idx);
        const double t = bo_time(c, perf_gs_run, &g);
        char shape[96];
        snprintf(shape, sizeof shape, "%s n=%d of %d rows, cols=%d", bo_vits[i].name, n, rows,
                 cols);
        const double es = (double) c->be->act_size, er = f32 ? 4.0 : es;
        const int scatter = op == GS_SCATTER || op == GS_SCATTER_F32;
        bo_perf_line(c, shape, t, (double) n * cols * (scatter ? 2 * es + er : es + er), 0);
        bo_perf_free(c, g.act), bo_perf_free(c, g.rows), bo_perf_free(c, g.idx);
    }
}

void bo_perf_act_gather_rows(bo_ctx *c)
{
    perf_gs(c, GS_GATHER);
}

void bo_perf_act_scatter_add_rows(bo_ctx *c)
{
    perf_gs(c, GS_SCATTER);
}

void bo_perf_act_gather_rows_f32(bo_ctx *c)
{
    perf_gs(c, GS_GATHER_F32);
}

void bo_perf_act_scatter_add_rows_f32(bo_ctx *c)
{
    perf_gs(c, GS_SCATTER_F32);
}
