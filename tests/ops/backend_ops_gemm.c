/* backend_ops_gemm.c — the GEMM entries (gemm, gemm_strided_batched, gemm_bias, act_gemm,
 * act_gemm_bias, act_gemm_wgrad) and the bias gradients (bias_grad, act_bias_grad) of
 * tests/ops/test_backend_ops.
 *
 * Tolerance of a GEMM element c = α Σ_k a_k b_k + β c0 (+ bias): whatever the order or
 * blocking of the sum, with fp32 accumulation of exact products (an fp32 or a bf16 product is
 * exact in fp32's 24 bits only for bf16; fp32 products are rounded once, which the bound
 * counts), |error| ≤ γ_{K+2} · (|α| Σ_k |a_k b_k| + |β c0| + |bias|), γ_n = n·2^-24 (the
 * textbook bound: K − 1 additions, the products, the α and β scalings and the final add).
 * `mag` is that magnitude per element, computed by the naive GEMM on |A|, |B|.  An output in
 * the compute dtype is then rounded once more (bf16: 2^-8 of the value); act_gemm_bias may
 * round twice (a bias kernel after a GEMM whose output is already rounded, where the device
 * library has no fp32-bias epilogue for a bf16 output: a second 2^-8, relative to the terms'
 * magnitude).  The bound is rigorous, so a failure is a wrong result, not rounding noise.
 */
#include "backend_ops.h"

#include "common/poa_error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum { GV_GEMM, GV_GEMM_BIAS, GV_ACT, GV_ACT_BIAS, GV_WGRAD } gemm_variant;

static const char *variant_name(gemm_variant v)
{
    static const char *names[] = {"gemm", "gemm_bias", "act_gemm", "act_gemm_bias",
                                  "act_gemm_wgrad"};
    return names[v];
}

typedef struct gemm_spec {
    poa_trans ta, tb;
    int M, N, K;
    float alpha, beta;    /* beta of gemm / act_gemm (bias variants do not read C)        */
    int pad;              /* lda = stored cols + pad, ldb = + pad + 1, ldc = N + pad + 2 */
    int offA, offB, offC; /* element offsets of the views (unaligned starts)              */
    int bias;             /* bias variants: 1 a bias row, 0 NULL                          */
    int nan_c;            /* C holds NaN before the call (must not be read)               */
} gemm_spec;

typedef struct gemm_args {
    gemm_variant v;
    const gemm_spec *s;
    bo_buf *A, *B, *C, *bias;
    int batch;
    long long sA, sB, sC;
} gemm_args;

static void gemm_run(poa_backend *be, void *p)
{
    const gemm_args *a = p;
    const gemm_spec *s = a->s;
    const int lda = a->A->ld, ldb = a->B->ld, ldc = a->C->ld;
    const float *bias = a->bias ? BO_F(a->bias) : NULL;
    switch (a->v) {
    case GV_GEMM:
        be->nn->gemm(be, s->ta, s->tb, s->M, s->N, s->K, s->alpha, BO_F(a->A), lda, BO_F(a->B), ldb,
                     s->beta, BO_F(a->C), ldc);
        break;
    case GV_GEMM_BIAS:
        be->nn->gemm_bias(be, s->ta, s->tb, s->M, s->N, s->K, s->alpha, BO_F(a->A), lda, BO_F(a->B),
                          ldb, bias, BO_F(a->C), ldc);
        break;
    case GV_ACT:
        be->nn->act_gemm(be, s->ta, s->tb, s->M, s->N, s->K, s->alpha, BO_A(a->A), lda, BO_A(a->B),
                         ldb, s->beta, BO_A(a->C), ldc);
        break;
    case GV_ACT_BIAS:
        be->nn->act_gemm_bias(be, s->ta, s->tb, s->M, s->N, s->K, s->alpha, BO_A(a->A), lda,
                              BO_A(a->B), ldb, bias, BO_A(a->C), ldc);
        break;
    case GV_WGRAD:
        be->nn->act_gemm_wgrad(be, s->ta, s->tb, s->M, s->N, s->K, s->alpha, BO_A(a->A), lda,
                               BO_A(a->B), ldb, BO_F(a->C), ldc);
        break;
    }
}

static void gemm_batched_run(poa_backend *be, void *p)
{
    const gemm_args *a = p;
    const gemm_spec *s = a->s;
    be->nn->gemm_strided_batched(be, s->ta, s->tb, s->M, s->N, s->K, s->alpha, BO_F(a->A), a->A->ld,
                                 a->sA, BO_F(a->B), a->B->ld, a->sB, s->beta, BO_F(a->C), a->C->ld,
                                 a->sC, a->batch);
}

static int reads_c(gemm_variant v)
{
    return v == GV_GEMM || v == GV_ACT || v == GV_WGRAD;
}

static bo_tol gemm_tol(const bo_ctx *c, gemm_variant v, int K)
{
    const int act_out = v == GV_ACT || v == GV_ACT_BIAS;
    const double out_round = act_out && c->be->act_dtype != POA_DT_F32 ? bo_u_act(c) : 0;
    bo_tol t = {0, out_round, (K + 2) * BO_U32 * (1 + out_round)};
    if (v == GV_ACT_BIAS) t.mtol += out_round;
    return t;
}

/* want (whole-allocation layout of C) = α op(A) op(B) + β C0 [+ bias], and the magnitude of
 * the terms of each element. */
static void gemm_reference(bo_case *k, const gemm_args *a, int batch, long long sA, long long sB,
                           long long sC, double **want_out, double **mag_out)
{
    const gemm_spec *s = a->s;
    const double beta = a->v == GV_WGRAD ? 1.0 : reads_c(a->v) ? s->beta : 0.0;
    double *want = bo_want(k, a->C), *mag = bo_tmpd(k, a->C->n);
    double *absA = bo_tmpd(k, a->A->n), *absB = bo_tmpd(k, a->B->n);
    for (size_t i = 0; i < a->A->n; i++) absA[i] = fabs(a->A->h[i]);
    for (size_t i = 0; i < a->B->n; i++) absB[i] = fabs(a->B->h[i]);
    for (size_t i = 0; i < a->C->n; i++) mag[i] = beta != 0 ? fabs(beta * a->C->h[i]) : 0;
    for (int i = 0; i < batch; i++) {
        double *Cw = BO_WV(want, a->C) + i * sC, *Cm = BO_WV(mag, a->C) + i * sC;
        poa_naive_gemm(s->ta, s->tb, s->M, s->N, s->K, s->alpha, BO_HV(a->A) + i * sA, a->A->ld,
                       BO_HV(a->B) + i * sB, a->B->ld, beta, Cw, a->C->ld);
        poa_naive_gemm(s->ta, s->tb, s->M, s->N, s->K, fabs(s->alpha), absA + a->A->off + i * sA,
                       a->A->ld, absB + a->B->off + i * sB, a->B->ld, 1.0, Cm, a->C->ld);
        if (!a->bias) continue;
        poa_naive_add_bias(Cw, a->C->ld, BO_HV(a->bias), s->M, s->N);
        for (int r = 0; r < s->M; r++)
            for (int j = 0; j < s->N; j++) Cm[(size_t) r * a->C->ld + j] += fabs(BO_HV(a->bias)[j]);
    }
    *want_out = want, *mag_out = mag;
}

static void describe(char *d, size_t n, gemm_variant v, const gemm_spec *s, int lda, int ldb,
                     int ldc)
{
    int len = snprintf(d, n, "%s ta=%c tb=%c M=%d N=%d K=%d alpha=%g", variant_name(v),
                       s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->M, s->N, s->K, s->alpha);
    if (reads_c(v) && v != GV_WGRAD) len += snprintf(d + len, n - len, " beta=%g", s->beta);
    if (v == GV_GEMM_BIAS || v == GV_ACT_BIAS)
        len += snprintf(d + len, n - len, " bias=%s", s->bias ? "row" : "NULL");
    len += snprintf(d + len, n - len, " lda=%d ldb=%d ldc=%d", lda, ldb, ldc);
    if (s->offA || s->offB || s->offC)
        len += snprintf(d + len, n - len, " off=%d/%d/%d", s->offA, s->offB, s->offC);
    if (s->nan_c) snprintf(d + len, n - len, " C=NaN");
}

static int imax(int a, int b)
{
    return a > b ? a : b;
}

static void gemm_case(bo_ctx *c, gemm_variant v, const gemm_spec *spec)
{
    gemm_spec sw = *spec; /* act_gemm_wgrad always reads C (+=): never NaN there */
    if (v == GV_WGRAD) sw.nan_c = 0;
    const gemm_spec *s = &sw;
    const int ar = s->ta ? s->K : s->M, ac = s->ta ? s->M : s->K;
    const int br = s->tb ? s->N : s->K, bc = s->tb ? s->K : s->N;
    const int lda = imax(1, ac + s->pad), ldb = imax(1, bc + s->pad + 1), ldc = s->N + s->pad + 2;
    const bo_kind ka = v == GV_GEMM || v == GV_GEMM_BIAS ? BO_F32 : BO_ACT;
    const bo_kind kc = v == GV_ACT || v == GV_ACT_BIAS ? BO_ACT : BO_F32;
    char d[200];
    describe(d, sizeof d, v, s, lda, ldb, ldc);
    bo_case k;
    bo_case_begin(&k, c, "%s", d);
    gemm_args a = {v, s, NULL, NULL, NULL, NULL, 1, 0, 0, 0};
    a.A = bo_new(&k, "A", ka, BO_IN, ar, ac, lda, (size_t) s->offA);
    a.B = bo_new(&k, "B", ka, BO_IN, br, bc, ldb, (size_t) s->offB);
    a.C = bo_new(&k, "C", kc, BO_OUT, s->M, s->N, ldc, (size_t) s->offC);
    if ((v == GV_GEMM_BIAS || v == GV_ACT_BIAS) && s->bias) {
        a.bias = bo_vec(&k, "bias", BO_F32, BO_IN, (size_t) s->N);
        bo_fill(a.bias, -2, 2);
    }
    if (s->nan_c)
        for (size_t i = 0; i < a.C->n; i++)
            if (a.C->inview[i]) a.C->h[i] = NAN;
    bo_run(&k, gemm_run, &a);
    double *want, *mag;
    gemm_reference(&k, &a, 1, 0, 0, 0, &want, &mag);
    bo_expect(&k, a.C, want, mag, gemm_tol(c, v, s->K));
    bo_case_end(&k);
}

/* The shapes of every GEMM entry: all transposes; views with ld > cols; beta 0 over NaN
 * (C not read), 1 and other values; alpha ≠ 1; shapes big enough to split over threads or
 * tiles (301 rows, 515 columns) and ragged; M = 1, N = 1; K == 0 (C = beta·C, or the bias);
 * views starting at odd element offsets (not 16-byte aligned). */
static void gemm_cases(bo_ctx *c, gemm_variant v)
{
    const int bias_v = v == GV_GEMM_BIAS || v == GV_ACT_BIAS;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const gemm_spec list[] = {
                {ta, tb, 13, 11, 9, 0.7f, 0.3f, 3, 0, 0, 0, 1, 0},
                {ta, tb, 13, 11, 9, 1.0f, 0.0f, 0, 0, 0, 0, 1, 1},
                {ta, tb, 301, 70, 40, 0.5f, 1.0f, 5, 0, 0, 0, 1, 0},
                {ta, tb, 20, 515, 64, 1.5f, 0.0f, 2, 0, 0, 0, 1, 1},
                {ta, tb, 1, 33, 17, 1.0f, 1.0f, 1, 0, 0, 0, 1, 0},
                {ta, tb, 29, 1, 17, -0.5f, 0.0f, 1, 0, 0, 0, 0, 0},
                {ta, tb, 37, 19, 23, 1.0f, 0.5f, 2, 1, 3, 5, 1, 0},
            };
            for (size_t i = 0; i < sizeof list / sizeof *list; i++) gemm_case(c, v, &list[i]);
        }
    /* K == 0: C = beta · C (gemm), 0 when beta is 0 even over NaN; the bias alone (bias) */
    const gemm_spec k0[] = {
        {POA_NO_TRANS, POA_NO_TRANS, 6, 5, 0, 1.0f, 0.5f, 1, 0, 0, 0, 1, 0},
        {POA_NO_TRANS, POA_TRANS, 6, 5, 0, 1.0f, 0.0f, 1, 0, 0, 0, 1, 1},
        {POA_NO_TRANS, POA_TRANS, 6, 5, 0, 1.0f, 0.0f, 1, 0, 0, 0, 0, 1},
    };
    for (size_t i = 0; i < sizeof k0 / sizeof *k0; i++)
        if (bias_v || k0[i].bias) gemm_case(c, v, &k0[i]);
    if (v == GV_GEMM || v == GV_GEMM_BIAS) return;
    /* a ViT block's shapes (2 images × 17 tokens, d = 24, 3 heads): qkv = x Wᵀ + b; the
     * input gradient dy W (beta 0, then 1: a second branch); the weight gradient dyᵀ x; and
     * operands that are elastic slices of a wider buffer (the k part of qkv: offset H·Dh = 12
     * elements, 24 bytes in bf16, with the intact ld 3·36) */
    const gemm_spec vit[] = {
        {POA_NO_TRANS, POA_TRANS, 34, 72, 24, 1.0f, 0.0f, 5, 0, 0, 0, 1, 1},
        {POA_NO_TRANS, POA_NO_TRANS, 34, 24, 96, 1.0f, 1.0f, 3, 0, 0, 0, 1, 0},
        {POA_TRANS, POA_NO_TRANS, 96, 24, 34, 1.0f, 1.0f, 0, 0, 0, 0, 1, 0},
        {POA_NO_TRANS, POA_TRANS, 34, 17, 12, 0.25f, 0.0f, 96, 12, 13, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof vit / sizeof *vit; i++) gemm_case(c, v, &vit[i]);
}

void bo_check_gemm(bo_ctx *c)
{
    gemm_cases(c, GV_GEMM);
}

void bo_check_gemm_bias(bo_ctx *c)
{
    gemm_cases(c, GV_GEMM_BIAS);
}

void bo_check_act_gemm(bo_ctx *c)
{
    gemm_cases(c, GV_ACT);
}

void bo_check_act_gemm_bias(bo_ctx *c)
{
    gemm_cases(c, GV_ACT_BIAS);
}

void bo_check_act_gemm_wgrad(bo_ctx *c)
{
    gemm_cases(c, GV_WGRAD);
}

/* Elastic-like: views into wider rows, matrices strided by more than a matrix. */
static void batched_case(bo_ctx *c, poa_trans ta, poa_trans tb, int M, int N, int K, int batch,
                         float beta, int nan_c)
{
    const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    const int lda = ac + 3, ldb = bc + 2, ldc = N + 4;
    const long long sA = (long long) ar * lda + 7, sB = (long long) br * ldb + 1,
                    sC = (long long) M * ldc + 5;
    const gemm_spec s = {ta, tb, M, N, K, 0.8f, beta, 0, 0, 0, 0, 0, nan_c};
    bo_case k;
    bo_case_begin(&k, c,
                  "gemm_strided_batched ta=%c tb=%c M=%d N=%d K=%d batch=%d alpha=0.8 beta=%g "
                  "lda=%d ldb=%d ldc=%d strides=%lld/%lld/%lld%s",
                  ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, batch, beta, lda, ldb, ldc, sA, sB, sC,
                  nan_c ? " C=NaN" : "");
    gemm_args a = {GV_GEMM, &s, NULL, NULL, NULL, NULL, batch, sA, sB, sC};
    a.A = bo_new_batched(&k, "A", BO_F32, BO_IN, batch, ar, ac, lda, (size_t) sA, 0);
    a.B = bo_new_batched(&k, "B", BO_F32, BO_IN, batch, br, bc, ldb, (size_t) sB, 0);
    a.C = bo_new_batched(&k, "C", BO_F32, BO_OUT, batch, M, N, ldc, (size_t) sC, 0);
    if (nan_c)
        for (size_t i = 0; i < a.C->n; i++)
            if (a.C->inview[i]) a.C->h[i] = NAN;
    bo_run(&k, gemm_batched_run, &a);
    double *want, *mag;
    gemm_reference(&k, &a, batch, sA, sB, sC, &want, &mag);
    bo_expect(&k, a.C, want, mag, gemm_tol(c, GV_GEMM, K));
    bo_case_end(&k);
}

void bo_check_gemm_strided_batched(bo_ctx *c)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            batched_case(c, ta, tb, 7, 9, 5, 6, 0.25f, 0);
            batched_case(c, ta, tb, 97, 64, 48, 1, 0.25f, 0); /* one big */
        }
    batched_case(c, POA_NO_TRANS, POA_TRANS, 5, 5, 8, 12, 0.0f, 1); /* attention-like, q kᵀ */
    batched_case(c, POA_NO_TRANS, POA_NO_TRANS, 1, 3, 4, 3, 1.0f, 0);
}

/* ------------------------------------------------------------------------ bias gradients */
typedef struct bias_args {
    bo_buf *db, *dy;
    int act;
} bias_args;

static void bias_grad_run(poa_backend *be, void *p)
{
    const bias_args *a = p;
    if (a->act)
        be->nn->act_bias_grad(be, BO_F(a->db), BO_A(a->dy), a->dy->ld, a->dy->rows, a->dy->cols);
    else
        be->nn->bias_grad(be, BO_F(a->db), BO_F(a->dy), a->dy->ld, a->dy->rows, a->dy->cols);
}

/* db[:cols] += Σ_r dy[r, :cols] onto junk: within 1e-5 + 1e-5 relative (the CPU tests'
 * tolerance: a sum of `rows` terms in any order carries ~sqrt(rows)·2^-24 of the terms'
 * magnitude, 2e-6 at 1003 rows; the rigorous worst case, rows·2^-24, would be 100 times
 * looser). */
static void bias_case(bo_ctx *c, int act, int rows, int cols, size_t off)
{
    bo_case k;
    bo_case_begin(&k, c, "%s rows=%d cols=%d lddy=%d off=%zu", act ? "act_bias_grad" : "bias_grad",
                  rows, cols, cols + 3, off);
    bias_args a = {NULL, NULL, act};
    a.dy = bo_new(&k, "dy", act ? BO_ACT : BO_F32, BO_IN, rows, cols, cols + 3, off);
    a.db = bo_vec(&k, "db", BO_F32, BO_OUT, (size_t) cols);
    bo_run(&k, bias_grad_run, &a);
    double *want = bo_want(&k, a.db);
    poa_naive_bias_grad(BO_WV(want, a.db), BO_HV(a.dy), a.dy->ld, rows, cols);
    bo_expect(&k, a.db, want, NULL, (bo_tol){1e-5, 1e-5, 0});
    bo_case_end(&k);
}

static void bias_cases(bo_ctx *c, int act)
{
    bias_case(c, act, 5, 7, 0);
    bias_case(c, act, 1003, 70, 0); /* big enough for the threaded path */
    bias_case(c, act, 1, 33, 0);
    bias_case(c, act, 394, 384, 0); /* two images of a ViT-S block */
    bias_case(c, act, 17, 9, 1);    /* unaligned start */
}

void bo_check_bias_grad(bo_ctx *c)
{
    bias_cases(c, 0);
}

void bo_check_act_bias_grad(bo_ctx *c)
{
    bias_cases(c, 1);
}

/* bias_grad is the backward of adding a bias to every row: finite differences of
 * L = Σ w ⊙ (y + b) with respect to b, w the dy given to the op. */
typedef struct bias_fd_ctx {
    int rows, cols, ld;
    const double *y0, *w;
    double *y, *b;
} bias_fd_ctx;

static double bias_objective(void *p)
{
    bias_fd_ctx *f = p;
    memcpy(f->y, f->y0, sizeof(double) * (size_t) f->rows * f->ld);
    poa_naive_add_bias(f->y, f->ld, f->b, f->rows, f->cols);
    return bo_dot(f->w, f->y, f->rows, f->cols, f->ld);
}

static void bias_fd_case(bo_ctx *c, int act)
{
    const int rows = 13, cols = 9, ld = cols + 2;
    bo_case k;
    bo_case_begin(&k, c, "%s vs finite differences of y + b: rows=%d cols=%d",
                  act ? "act_bias_grad" : "bias_grad", rows, cols);
    bias_args a = {NULL, NULL, act};
    a.dy = bo_new(&k, "dy", act ? BO_ACT : BO_F32, BO_IN, rows, cols, ld, 0);
    a.db = bo_vec(&k, "db", BO_F32, BO_OUT, (size_t) cols);
    bo_run(&k, bias_grad_run, &a);
    double *ng = bo_tmpd(&k, (size_t) cols), *y0 = bo_tmpd(&k, (size_t) rows * ld);
    double *y = bo_tmpd(&k, (size_t) rows * ld), *b = bo_tmpd(&k, (size_t) cols);
    for (size_t i = 0; i < (size_t) rows * ld; i++) y0[i] = 0.1 * (double) (i % 17);
    poa_naive_bias_grad(ng, BO_HV(a.dy), ld, rows, cols);
    bias_fd_ctx f = {rows, cols, ld, y0, BO_HV(a.dy), y, b};
    bo_fd(&k, "db", bias_objective, &f, b, 1, cols, cols, ng, BO_WV(bo_delta(&k, a.db), a.db), cols,
          64, 1e-3, 1e-9, 1e-5);
    bo_case_end(&k);
}

void bo_grad_bias_grad(bo_ctx *c)
{
    bias_fd_case(c, 0);
}

void bo_grad_act_bias_grad(bo_ctx *c)
{
    bias_fd_case(c, 1);
}

/* A linear layer on activations, y = x Wᵀ + b (act_gemm_bias), and its backward: dx = dy W
 * (act_gemm), dW += dyᵀ x (act_gemm_wgrad), db += Σ dy (act_bias_grad), each against central
 * finite differences of L = Σ w ⊙ y in double. */
typedef struct linear_fd {
    int M, N, K;
    double *x, *W, *b, *y, *w;
} linear_fd;

static double linear_objective(void *p)
{
    linear_fd *f = p;
    poa_naive_gemm(POA_NO_TRANS, POA_TRANS, f->M, f->N, f->K, 1.0, f->x, f->K, f->W, f->K, 0.0,
                   f->y, f->N);
    poa_naive_add_bias(f->y, f->N, f->b, f->M, f->N);
    return bo_dot(f->w, f->y, f->M, f->N, f->N);
}

typedef struct linear_args {
    bo_buf *x, *W, *b, *dy, *dx, *dW, *db;
    int M, N, K, act;
} linear_args;

/* The backward of y = x Wᵀ + b: dx = dy W, dW += dyᵀ x, db += Σ dy (activations: act_gemm,
 * act_gemm_wgrad, act_bias_grad; fp32, the heads: gemm with beta 0 and 1, bias_grad). */
static void linear_bwd_run(poa_backend *be, void *p)
{
    const linear_args *a = p;
    if (a->act) {
        be->nn->act_gemm(be, POA_NO_TRANS, POA_NO_TRANS, a->M, a->K, a->N, 1.0f, BO_A(a->dy), a->N,
                         BO_A(a->W), a->K, 0.0f, BO_A(a->dx), a->K);
        be->nn->act_gemm_wgrad(be, POA_TRANS, POA_NO_TRANS, a->N, a->K, a->M, 1.0f, BO_A(a->dy),
                               a->N, BO_A(a->x), a->K, BO_F(a->dW), a->K);
        be->nn->act_bias_grad(be, BO_F(a->db), BO_A(a->dy), a->N, a->M, a->N);
        return;
    }
    be->nn->gemm(be, POA_NO_TRANS, POA_NO_TRANS, a->M, a->K, a->N, 1.0f, BO_F(a->dy), a->N,
                 BO_F(a->W), a->K, 0.0f, BO_F(a->dx), a->K);
    be->nn->gemm(be, POA_TRANS, POA_NO_TRANS, a->N, a->K, a->M, 1.0f, BO_F(a->dy), a->N, BO_F(a->x),
                 a->K, 1.0f, BO_F(a->dW), a->K);
    be->nn->bias_grad(be, BO_F(a->db), BO_F(a->dy), a->N, a->M, a->N);
}

/* FD of the double forward vs the backend's gradients: 1e-4 of the largest FD (the fp32
 * GEMMs' own error is ~K·2^-24 of it); bf16 adds the rounding of dx (2^-8). */
static void linear_fd_case(bo_ctx *c, int act)
{
    const int M = 9, N = 7, K = 11;
    const bo_kind kind = act ? BO_ACT : BO_F32;
    bo_case k;
    bo_case_begin(&k, c, "%s: linear layer M=%d N=%d K=%d vs finite differences",
                  act ? "act_gemm/act_gemm_wgrad/act_bias_grad" : "gemm (dx, dW += )/bias_grad", M,
                  N, K);
    linear_args a = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, M, N, K, act};
    a.x = bo_new(&k, "x", kind, BO_IN, M, K, K, 0);
    a.W = bo_new(&k, "W", kind, BO_IN, N, K, K, 0);
    a.b = bo_vec(&k, "b", BO_F32, BO_IN, (size_t) N);
    a.dy = bo_new(&k, "dy", kind, BO_IN, M, N, N, 0);
    a.dx = bo_new(&k, "dx", kind, BO_OUT, M, K, K, 0);
    a.dW = bo_new(&k, "dW", BO_F32, BO_OUT, N, K, K, 0);
    a.db = bo_vec(&k, "db", BO_F32, BO_OUT, (size_t) N);
    bo_run(&k, linear_bwd_run, &a);
    double *y = bo_tmpd(&k, (size_t) M * N);
    linear_fd f = {M, N, K, BO_HV(a.x), BO_HV(a.W), BO_HV(a.b), y, BO_HV(a.dy)};
    const double tol = 1e-4 + (act && c->be->act_dtype != POA_DT_F32 ? 2 * BO_U16 : 0);
    bo_fd(&k, "dx", linear_objective, &f, BO_HV(a.x), M, K, K, NULL, BO_GV(a.dx), K, 99, 1e-3, 0,
          tol);
    bo_fd(&k, "dW", linear_objective, &f, BO_HV(a.W), N, K, K, NULL,
          BO_WV(bo_delta(&k, a.dW), a.dW), K, 77, 1e-3, 0, 1e-4);
    bo_fd(&k, "db", linear_objective, &f, BO_HV(a.b), 1, N, N, NULL,
          BO_WV(bo_delta(&k, a.db), a.db), N, 7, 1e-3, 0, 1e-4);
    bo_case_end(&k);
}

void bo_grad_act_gemm(bo_ctx *c)
{
    linear_fd_case(c, 1);
}

void bo_grad_gemm(bo_ctx *c)
{
    linear_fd_case(c, 0);
}

/* ------------------------------------------------------------------------ perf */
typedef struct perf_gemm {
    gemm_variant v;
    poa_trans ta, tb;
    int M, N, K;
    void *A, *B, *C;
    float *bias;
} perf_gemm;

static void perf_gemm_run(poa_backend *be, void *p)
{
    const perf_gemm *g = p;
    const int lda = g->ta ? g->M : g->K, ldb = g->tb ? g->K : g->N;
    switch (g->v) {
    case GV_GEMM:
        be->nn->gemm(be, g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, lda, g->B, ldb, 0.0f, g->C,
                     g->N);
        break;
    case GV_GEMM_BIAS:
        be->nn->gemm_bias(be, g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, lda, g->B, ldb, g->bias,
                          g->C, g->N);
        break;
    case GV_ACT:
        be->nn->act_gemm(be, g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, lda, g->B, ldb, 0.0f, g->C,
                         g->N);
        break;
    case GV_ACT_BIAS:
        be->nn->act_gemm_bias(be, g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, lda, g->B, ldb,
                              g->bias, g->C, g->N);
        break;
    case GV_WGRAD:
        be->nn->act_gemm_wgrad(be, g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, lda, g->B, ldb, g->C,
                               g->N);
        break;
    }
}

static void perf_gemm_shape(bo_ctx *c, gemm_variant v, const char *what, poa_trans ta, poa_trans tb,
                            int M, int N, int K)
{
    const bo_kind ka = v == GV_GEMM || v == GV_GEMM_BIAS ? BO_F32 : BO_ACT;
    const bo_kind kc = v == GV_ACT || v == GV_ACT_BIAS ? BO_ACT : BO_F32;
    perf_gemm g = {v, ta, tb, M, N, K, NULL, NULL, NULL, NULL};
    g.A = bo_perf_alloc(c, ka, (size_t) M * K, -1, 1);
    g.B = bo_perf_alloc(c, ka, (size_t) K * N, -1, 1);
    g.C = bo_perf_alloc(c, kc, (size_t) M * N, -1, 1);
    g.bias = bo_perf_alloc(c, BO_F32, (size_t) N, -1, 1);
    const double t = bo_time(c, perf_gemm_run, &g);
    char shape[128];
    snprintf(shape, sizeof shape, "%s %c%c M=%d N=%d K=%d", what, ta ? 'T' : 'N', tb ? 'T' : 'N', M,
             N, K);
    bo_perf_line(c, shape, t, 0, 2.0 * M * N * K);
    bo_perf_free(c, g.A), bo_perf_free(c, g.B), bo_perf_free(c, g.C), bo_perf_free(c, g.bias);
}

static int vit_rows(const bo_ctx *c)
{
    return c->images * BO_TOKENS;
}

/* The heads: rows = the cls tokens of 10 crops per image (2 global, 8 local). */
static int head_rows(const bo_ctx *c)
{
    return c->images * 10;
}

void bo_perf_gemm(bo_ctx *c)
{
    /* the DINO head's last layer: [rows, 256] × [65536, 256]ᵀ */
    perf_gemm_shape(c, GV_GEMM, "head last layer", POA_NO_TRANS, POA_TRANS, head_rows(c),
                    BO_PROTOTYPES, BO_HEAD_DIM);
    perf_gemm_shape(c, GV_GEMM, "head last layer dW", POA_TRANS, POA_NO_TRANS, BO_PROTOTYPES,
                    BO_HEAD_DIM, head_rows(c));
}

void bo_perf_gemm_bias(bo_ctx *c)
{
    for (int i = 0; i < 2; i++)
        perf_gemm_shape(c, GV_GEMM_BIAS, bo_vits[i].name, POA_NO_TRANS, POA_TRANS, head_rows(c),
                        2048, bo_vits[i].d); /* the head MLP's first layer */
}

typedef struct perf_batched {
    int batch, T, Dh;
    float *q, *s;
} perf_batched;

static void perf_batched_run(poa_backend *be, void *p)
{
    const perf_batched *b = p;
    be->nn->gemm_strided_batched(be, POA_NO_TRANS, POA_TRANS, b->T, b->T, b->Dh, 1.0f, b->q, b->Dh,
                                 (long long) b->T * b->Dh, b->q, b->Dh, (long long) b->T * b->Dh,
                                 0.0f, b->s, b->T, (long long) b->T * b->T, b->batch);
}

void bo_perf_gemm_strided_batched(bo_ctx *c)
{
    for (int i = 0; i < 2; i++) { /* q kᵀ per (image, head) */
        perf_batched b = {c->images * bo_vits[i].heads, BO_TOKENS, bo_vits[i].head_dim, NULL, NULL};
        b.q = bo_perf_alloc(c, BO_F32, (size_t) b.batch * b.T * b.Dh, -1, 1);
        b.s = bo_perf_alloc(c, BO_F32, (size_t) b.batch * b.T * b.T, -1, 1);
        const double t = bo_time(c, perf_batched_run, &b);
        char shape[128];
        snprintf(shape, sizeof shape, "%s q k^T batch=%d T=%d Dh=%d", bo_vits[i].name, b.batch, b.T,
                 b.Dh);
        bo_perf_line(c, shape, t, 0, 2.0 * b.batch * b.T * b.T * b.Dh);
        bo_perf_free(c, b.q), bo_perf_free(c, b.s);
    }
}

void bo_perf_act_gemm_bias(bo_ctx *c)
{
    for (int i = 0; i < 2; i++) {
        const bo_vit *m = &bo_vits[i];
        char what[64];
        snprintf(what, sizeof what, "%s qkv", m->name);
        perf_gemm_shape(c, GV_ACT_BIAS, what, POA_NO_TRANS, POA_TRANS, vit_rows(c), 3 * m->d, m->d);
        snprintf(what, sizeof what, "%s fc1", m->name);
        perf_gemm_shape(c, GV_ACT_BIAS, what, POA_NO_TRANS, POA_TRANS, vit_rows(c), m->mlp, m->d);
    }
}

void bo_perf_act_gemm(bo_ctx *c)
{
    for (int i = 0; i < 2; i++) { /* fc2's input gradient dy W */
        const bo_vit *m = &bo_vits[i];
        char what[64];
        snprintf(what, sizeof what, "%s fc2 dx", m->name);
        perf_gemm_shape(c, GV_ACT, what, POA_NO_TRANS, POA_NO_TRANS, vit_rows(c), m->mlp, m->d);
    }
}

void bo_perf_act_gemm_wgrad(bo_ctx *c)
{
    for (int i = 0; i < 2; i++) { /* fc1's weight gradient dyᵀ x */
        const bo_vit *m = &bo_vits[i];
        char what[64];
        snprintf(what, sizeof what, "%s fc1 dW", m->name);
        perf_gemm_shape(c, GV_WGRAD, what, POA_TRANS, POA_NO_TRANS, m->mlp, m->d, vit_rows(c));
    }
}

typedef struct perf_bias {
    int act, rows, cols;
    void *dy;
    float *db;
} perf_bias_args;

static void perf_bias_run(poa_backend *be, void *p)
{
    const perf_bias_args *b = p;
    if (b->act)
        be->nn->act_bias_grad(be, b->db, b->dy, b->cols, b->rows, b->cols);
    else
        be->nn->bias_grad(be, b->db, b->dy, b->cols, b->rows, b->cols);
}

static void perf_bias(bo_ctx *c, int act)
{
    for (int i = 0; i < 2; i++) {
        const bo_vit *m = &bo_vits[i];
        perf_bias_args b = {act, act ? vit_rows(c) : head_rows(c), act ? m->mlp : 2048, NULL, NULL};
        b.dy = bo_perf_alloc(c, act ? BO_ACT : BO_F32, (size_t) b.rows * b.cols, -1, 1);
        b.db = bo_perf_alloc(c, BO_F32, (size_t) b.cols, -1, 1);
        const double t = bo_time(c, perf_bias_run, &b);
        char shape[128];
        snprintf(shape, sizeof shape, "%s rows=%d cols=%d", m->name, b.rows, b.cols);
        bo_perf_line(c, shape, t, (double) b.rows * b.cols * (act ? c->be->act_size : 4), 0);
        bo_perf_free(c, b.dy), bo_perf_free(c, b.db);
    }
}

void bo_perf_bias_grad(bo_ctx *c)
{
    perf_bias(c, 0);
}

void bo_perf_act_bias_grad(bo_ctx *c)
{
    perf_bias(c, 1);
}
