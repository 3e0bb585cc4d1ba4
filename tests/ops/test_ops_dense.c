/* test_ops_dense.c — CPU backend row/column ops against their naive double references and,
 * for backward ops, against central finite differences of L = Σ w ⊙ y:
 * gemm (all transposes, views, the threaded split paths, the AVX-512 GEMM's blocking and its
 * use inside a parallel region), gemm_bias (a linear layer's forward), gemm_strided_batched,
 * bias_grad, layernorm (+ statistics), gelu (both kernel sets; a dense accuracy sweep with the
 * negative tail's relative error, special inputs, ragged lengths), residual_ls (LayerScale +
 * drop-path scale), gather/scatter_add rows, l2norm, weightnorm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ops_test_util.h"

#include "backend/cpu/cpu_nn.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* forward float vs double reference */
#define FWD_ATOL 1e-6
#define FWD_RTOL 2e-5
/* FD in double: naive backward must be exact to this, the float backward to BWD_TOL */
#define FD_H    1e-5
#define FD_TOL  1e-7
#define BWD_TOL 1e-4

/* ------------------------------------------------------------------------ GEMM */
/* gemm (bias NULL) or gemm_bias (a bias row; beta must then be 0) on padded views against the
 * naive double GEMM; the padding columns of C must come back untouched. */
static void check_gemm_op(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                          float alpha, float beta, const float *bias, int pad, uint64_t seed)
{
    const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    const int lda = ac + pad, ldb = bc + pad + 1, ldc = N + pad + 2;
    float *A = rand_floats((size_t) ar * lda, -1, 1, seed);
    float *B = rand_floats((size_t) br * ldb, -1, 1, seed + 1);
    float *C = rand_floats((size_t) M * ldc, -1, 1, seed + 2);
    if (beta == 0) /* beta = 0 must ignore C entirely, even NaN (reused workspaces) */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t) i * ldc + j] = NAN;
    double *dA = to_double(A, (size_t) ar * lda), *dB = to_double(B, (size_t) br * ldb);
    double *dC = to_double(C, (size_t) M * ldc);
    if (bias)
        be->nn->gemm_bias(be, ta, tb, M, N, K, alpha, A, lda, B, ldb, bias, C, ldc);
    else
        be->nn->gemm(be, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    poa_naive_gemm(ta, tb, M, N, K, alpha, dA, lda, dB, ldb, beta, dC, ldc);
    if (bias) {
        double *db = to_double(bias, (size_t) N);
        poa_naive_add_bias(dC, ldc, db, M, N);
        free(db);
    }
    char what[128];
    snprintf(what, sizeof what, "%s ta=%d tb=%d M=%d N=%d K=%d beta=%g",
             bias ? "gemm_bias" : "gemm", ta, tb, M, N, K, beta);
    assert_true(close_view(what, C, dC, M, ldc, ldc, 1e-5 * (K + 1), 1e-5));
    free(A), free(B), free(C), free(dA), free(dB), free(dC);
}

static void check_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                       float alpha, float beta, int pad, uint64_t seed)
{
    check_gemm_op(be, ta, tb, M, N, K, alpha, beta, NULL, pad, seed);
}

static void check_gemm_bias(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                            float alpha, int pad, uint64_t seed)
{
    float *bias = rand_floats((size_t) N, -2, 2, seed + 7);
    check_gemm_op(be, ta, tb, M, N, K, alpha, 0.0f, bias, pad, seed);
    free(bias);
}

static void test_gemm_views(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    uint64_t seed = 100;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm(be, ta, tb, 13, 11, 9, 0.7f, 0.3f, 3, seed += 10);
            check_gemm(be, ta, tb, 13, 11, 9, 1.0f, 0.0f, 0, seed += 10);
            check_gemm(be, ta, tb, 301, 70, 40, 0.5f, 1.0f, 5, seed += 10); /* split rows */
            check_gemm(be, ta, tb, 20, 515, 64, 1.5f, 0.0f, 2, seed += 10); /* split cols */
        }
    check_gemm(be, POA_NO_TRANS, POA_NO_TRANS, 6, 5, 0, 1.0f, 0.5f, 1, seed += 10); /* K = 0 */
    check_gemm_bias(be, POA_NO_TRANS, POA_TRANS, 6, 5, 0, 1.0f, 1, seed += 10);     /* K = 0 */
    check_gemm_bias(be, POA_NO_TRANS, POA_TRANS, 13, 11, 9, 0.7f, 2, seed += 10);   /* BLAS */
    poa_backend_destroy(be);
}

/* The AVX-512 GEMM's blocking (cpu_gemm_avx512.c: 12 × 32 tiles, K blocks ≤ 384, N blocks
 * ≤ 768): ragged last tiles in M (rows % 12) and in N (columns % 32 below and above 16),
 * several K and N blocks with ragged last ones, every transpose, alpha, and beta 0 (C NaN),
 * 1 and other, with and without a bias row; the same shapes under POA_CPU_GEMM=blas check the
 * test itself. */
static void gemm_blocking_cases(poa_backend *be, uint64_t seed)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm(be, ta, tb, 97, 45, 800, 1.5f, 0.0f, 1, seed += 10);   /* 3 K blocks */
            check_gemm(be, ta, tb, 120, 1601, 70, 0.5f, 1.0f, 3, seed += 10); /* 3 N blocks */
            check_gemm(be, ta, tb, 205, 64, 385, 1.0f, 0.3f, 0, seed += 10);  /* K = 384 + 1 */
            check_gemm(be, ta, tb, 100, 33, 16, -0.7f, 1.0f, 2, seed += 10);  /* N = 32 + 1 */
            /* the bias goes in once, in the first K block, on ragged tiles too */
            check_gemm_bias(be, ta, tb, 97, 45, 800, 1.5f, 1, seed += 10);
            check_gemm_bias(be, ta, tb, 13, 1601, 70, 0.5f, 3, seed += 10);
        }
}

static void test_gemm_avx512_blocking(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    fprintf(stderr, "layer GEMM: %s\n", poa_cpu_gemm_impl());
    gemm_blocking_cases(be, 1000);
    setenv("POA_CPU_GEMM", "blas", 1);
    fprintf(stderr, "layer GEMM: %s (POA_CPU_GEMM=blas)\n", poa_cpu_gemm_impl());
    gemm_blocking_cases(be, 1000);
    unsetenv("POA_CPU_GEMM");
    poa_backend_destroy(be);
}

/* Two GEMMs at once, one per thread of an outer parallel region: each runs on its caller alone,
 * with its own packing buffer. */
static void test_gemm_inside_parallel(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    int failures = 0;
#pragma omp parallel num_threads(2) reduction(+ : failures)
    {
        const int t = omp_get_thread_num();
        const int M = 150 + 7 * t, N = 100 + 30 * t, K = 420;
        float *A = rand_floats((size_t) M * K, -1, 1, 40 + t);
        float *B = rand_floats((size_t) N * K, -1, 1, 50 + t);
        float *C = rand_floats((size_t) M * N, -1, 1, 60 + t);
        double *dA = to_double(A, (size_t) M * K), *dB = to_double(B, (size_t) N * K);
        double *dC = to_double(C, (size_t) M * N);
        be->nn->gemm(be, POA_NO_TRANS, POA_TRANS, M, N, K, 1.0f, A, K, B, K, 1.0f, C, N);
        poa_naive_gemm(POA_NO_TRANS, POA_TRANS, M, N, K, 1.0, dA, K, dB, K, 1.0, dC, N);
        failures += !close_all("gemm inside a parallel region", C, dC, (size_t) M * N,
                               1e-5 * (K + 1), 1e-5);
        free(A), free(B), free(C), free(dA), free(dB), free(dC);
    }
    assert_int_equal(failures, 0);
    poa_backend_destroy(be);
}

static void check_batched(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                          int batch, uint64_t seed)
{
    const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    /* elastic-like: views into wider rows, batches strided by more than a matrix */
    const int lda = ac + 3, ldb = bc + 2, ldc = N + 4;
    const long long sA = (long long) ar * lda + 7, sB = (long long) br * ldb + 1,
                    sC = (long long) M * ldc + 5;
    const size_t nA = (size_t) sA * batch, nB = (size_t) sB * batch, nC = (size_t) sC * batch;
    float *A = rand_floats(nA, -1, 1, seed), *B = rand_floats(nB, -1, 1, seed + 1);
    float *C = rand_floats(nC, -1, 1, seed + 2);
    double *dA = to_double(A, nA), *dB = to_double(B, nB), *dC = to_double(C, nC);
    be->nn->gemm_strided_batched(be, ta, tb, M, N, K, 0.8f, A, lda, sA, B, ldb, sB, 0.25f, C, ldc,
                                 sC, batch);
    poa_naive_gemm_strided_batched(ta, tb, M, N, K, 0.8, dA, lda, sA, dB, ldb, sB, 0.25, dC, ldc,
                                   sC, batch);
    char what[128];
    snprintf(what, sizeof what, "gemm_strided_batched ta=%d tb=%d M=%d N=%d K=%d batch=%d", ta, tb,
             M, N, K, batch);
    assert_true(close_all(what, C, dC, nC, 1e-5 * (K + 1), 1e-5));
    free(A), free(B), free(C), free(dA), free(dB), free(dC);
}

static void test_gemm_strided_batched(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_batched(be, ta, tb, 7, 9, 5, 6, 200 + 10 * (2 * ta + tb));
            check_batched(be, ta, tb, 97, 64, 48, 1, 300 + 10 * (2 * ta + tb)); /* one big */
        }
    poa_backend_destroy(be);
}

/* gemm_bias rounds as a GEMM with beta 1 onto the bias broadcast into C (how the layer ran
 * before the bias moved into the GEMM, and what the BLAS path still does): bit for bit. */
static void test_gemm_bias_rounding(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    const int M = 75, N = 200, K = 500, ldc = N + 3;
    float *x = rand_floats((size_t) M * K, -1, 1, 70), *w = rand_floats((size_t) N * K, -1, 1, 71);
    float *b = rand_floats((size_t) N, -1, 1, 72);
    float *y = rand_floats((size_t) M * ldc, -1, 1, 73), *y1 = copy_floats(y, (size_t) M * ldc);
    be->nn->gemm_bias(be, POA_NO_TRANS, POA_TRANS, M, N, K, 0.7f, x, K, w, K, b, y, ldc);
    for (int r = 0; r < M; r++) memcpy(y1 + (size_t) r * ldc, b, sizeof(float) * N);
    be->nn->gemm(be, POA_NO_TRANS, POA_TRANS, M, N, K, 0.7f, x, K, w, K, 1.0f, y1, ldc);
    assert_memory_equal(y, y1, sizeof(float) * (size_t) M * ldc);
    free(x), free(w), free(b), free(y), free(y1);
    poa_backend_destroy(be);
}

/* ------------------------------------------------------------------------ bias */
typedef struct bias_ctx {
    int rows, cols, ld;
    const double *y0, *wgt;
    double *y, *b;
} bias_ctx;

static double bias_objective(void *p)
{
    bias_ctx *c = p;
    memcpy(c->y, c->y0, sizeof(double) * (size_t) c->rows * c->ld);
    poa_naive_add_bias(c->y, c->ld, c->b, c->rows, c->cols);
    return weighted_sum(c->wgt, c->y, c->rows, c->cols, c->ld);
}

/* bias_grad is the backward of adding a bias to every row: FD of L = Σ w ⊙ (y + b) with respect to
 * b. */
static void check_bias_fd(poa_backend *be, int rows, int cols, uint64_t seed)
{
    const int ld = cols + 2;
    const size_t n = (size_t) rows * ld;
    float *w = rand_floats(n, -1, 1, seed), *g = rand_floats((size_t) cols, -1, 1, seed + 1);
    float *g0 = copy_floats(g, (size_t) cols), *y = rand_floats(n, -1, 1, seed + 2);
    float *b = rand_floats((size_t) cols, -1, 1, seed + 3);
    double *dw = to_double(w, n), *dy0 = to_double(y, n), *dy = to_double(y, n);
    double *db = to_double(b, (size_t) cols), *ng = poa_xcalloc((size_t) cols, sizeof(double));
    be->nn->bias_grad(be, g, w, ld, rows, cols);
    poa_naive_bias_grad(ng, dw, ld, rows, cols);
    bias_ctx c = {rows, cols, ld, dy0, dw, dy, db};
    assert_true(fd_check("bias_grad vs FD of y + b", bias_objective, &c, db, 1, cols, cols, ng, g,
                         g0, cols, 64, 1e-3, 1e-9, 1e-5));
    free(w), free(g), free(g0), free(y), free(b), free(dw), free(dy0), free(dy), free(db), free(ng);
}

static void test_bias(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    const int sizes[2][2] = {{5, 7}, {1003, 70}}; /* small; big enough for the threaded path */
    for (int k = 0; k < 2; k++) {
        const int rows = sizes[k][0], cols = sizes[k][1], ld = cols + 3;
        float *y = rand_floats((size_t) rows * ld, -1, 1, 400 + k);
        float *b = rand_floats((size_t) cols + 1, -1, 1, 410 + k);
        double *dy = to_double(y, (size_t) rows * ld), *db = to_double(b, (size_t) cols + 1);
        /* bias_grad accumulates (+=) into the junk already in b; b[cols] is untouched */
        be->nn->bias_grad(be, b, y, ld, rows, cols);
        poa_naive_bias_grad(db, dy, ld, rows, cols);
        assert_true(close_all("bias_grad", b, db, (size_t) cols + 1, 1e-5, 1e-5));
        free(y), free(b), free(dy), free(db);
    }
    check_bias_fd(be, 13, 9, 420);
    poa_backend_destroy(be);
}

/* ------------------------------------------------------------------------ LayerNorm */
typedef struct ln_ctx {
    int rows, d, ldx, ldy;
    double *x, *w, *b, *y, *mean, *rstd, *wgt;
} ln_ctx;

static double ln_objective(void *p)
{
    ln_ctx *c = p;
    poa_naive_layernorm_fwd(c->y, c->ldy, c->mean, c->rstd, c->x, c->ldx, c->w, c->b, c->rows, c->d,
                            1e-6);
    return weighted_sum(c->wgt, c->y, c->rows, c->d, c->ldy);
}

static void check_layernorm(poa_backend *be, int rows, int d, int ldx, uint64_t seed)
{
    const int ldy = d + 5, lddx = d + 1;
    const size_t nx = (size_t) rows * ldx, ny = (size_t) rows * ldy, ndx = (size_t) rows * lddx;
    float *x = rand_floats(nx, -2, 3, seed), *w = rand_floats((size_t) d, 0.5f, 1.5f, seed + 1);
    float *b = rand_floats((size_t) d, -0.5f, 0.5f, seed + 2);
    float *y = rand_floats(ny, -9, 9, seed + 3), *dyw = rand_floats(ny, -1, 1, seed + 4);
    float *mean = rand_floats((size_t) rows, 0, 1, 5), *rstd = rand_floats((size_t) rows, 0, 1, 6);
    double *dx_ = to_double(x, nx), *dw_ = to_double(w, (size_t) d),
           *db_ = to_double(b, (size_t) d);
    double *dy_ = to_double(y, ny), *dmean = to_double(mean, (size_t) rows);
    double *drstd = to_double(rstd, (size_t) rows), *dwgt = to_double(dyw, ny);

    be->nn->layernorm_fwd(be, ACT(y), ldy, mean, rstd, ACT(x), ldx, w, b, rows, d, 1e-6f);
    poa_naive_layernorm_fwd(dy_, ldy, dmean, drstd, dx_, ldx, dw_, db_, rows, d, 1e-6);
    assert_true(close_all("layernorm_fwd y (incl. padding)", y, dy_, ny, FWD_ATOL, FWD_RTOL));
    assert_true(close_all("layernorm_fwd mean", mean, dmean, (size_t) rows, 1e-6, 1e-6));
    assert_true(close_all("layernorm_fwd rstd", rstd, drstd, (size_t) rows, 0, 1e-6));

    /* backward: dx (=) over a view with its own ld; dw, db (+=) onto junk */
    float *gx = rand_floats(ndx, -9, 9, seed + 7);
    float *gw = rand_floats((size_t) d, -1, 1, seed + 8), *gb = rand_floats((size_t) d, -1, 1, 9);
    float *gw0 = copy_floats(gw, (size_t) d), *gb0 = copy_floats(gb, (size_t) d);
    double *ngx = to_double(gx, ndx), *ngw = to_double(gw, (size_t) d);
    double *ngb = to_double(gb, (size_t) d);
    be->nn->layernorm_bwd(be, ACT(gx), lddx, 0.0f, gw, gb, ACT(dyw), ldy, ACT(x), ldx, mean, rstd,
                          w, rows, d);
    poa_naive_layernorm_bwd(ngx, lddx, ngw, ngb, dwgt, ldy, dx_, ldx, dmean, drstd, dw_, rows, d);
    assert_true(close_all("layernorm_bwd dx (incl. padding)", gx, ngx, ndx, 1e-5, 1e-4));
    /* dx_beta 1 adds the same values onto what dx held (the add may fuse into an FMA, so up to
     * rounding) and leaves the padding alone */
    float *acc = rand_floats(ndx, -9, 9, seed + 10);
    double *want = to_double(acc, ndx);
    be->nn->layernorm_bwd(be, ACT(acc), lddx, 1.0f, NULL, NULL, ACT(dyw), ldy, ACT(x), ldx, mean,
                          rstd, w, rows, d);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < d; c++) want[(size_t) r * lddx + c] += gx[(size_t) r * lddx + c];
    assert_true(close_all("layernorm_bwd dx +=", acc, want, ndx, 1e-6, 1e-6));
    free(acc), free(want);
    assert_true(close_all("layernorm_bwd dw", gw, ngw, (size_t) d, 1e-5, 1e-5));
    assert_true(close_all("layernorm_bwd db", gb, ngb, (size_t) d, 1e-5, 1e-5));

    /* finite differences (naive gradients are relative to the pre-+= values) */
    double *ngw_only = poa_xcalloc((size_t) d, sizeof(double));
    double *ngb_only = poa_xcalloc((size_t) d, sizeof(double));
    poa_naive_layernorm_bwd(ngx, lddx, ngw_only, ngb_only, dwgt, ldy, dx_, ldx, dmean, drstd, dw_,
                            rows, d);
    double *ty = poa_xcalloc(ny, sizeof(double)), *tm = poa_xcalloc((size_t) rows, 8),
           *tr = poa_xcalloc((size_t) rows, 8);
    ln_ctx c = {rows, d, ldx, ldy, dx_, dw_, db_, ty, tm, tr, dwgt};
    assert_true(fd_check("layernorm dx", ln_objective, &c, dx_, rows, d, ldx, ngx, gx, NULL, lddx,
                         150, FD_H, FD_TOL, BWD_TOL));
    assert_true(fd_check("layernorm dw", ln_objective, &c, dw_, 1, d, d, ngw_only, gw, gw0, d, 64,
                         FD_H, FD_TOL, BWD_TOL));
    assert_true(fd_check("layernorm db", ln_objective, &c, db_, 1, d, d, ngb_only, gb, gb0, d, 64,
                         FD_H, FD_TOL, BWD_TOL));

    free(x), free(w), free(b), free(y), free(dyw), free(mean), free(rstd), free(gx), free(gw);
    free(gb), free(gw0), free(gb0);
    free(dx_), free(dw_), free(db_), free(dy_), free(dmean), free(drstd), free(dwgt), free(ngx);
    free(ngw), free(ngb), free(ngw_only), free(ngb_only), free(ty), free(tm), free(tr);
}

static void test_layernorm(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    check_layernorm(be, 7, 37, 45, 500);    /* odd sizes, elastic slice of wider rows */
    check_layernorm(be, 1501, 48, 64, 520); /* threaded path */
    poa_backend_destroy(be);
}

/* With w = 1, b = 0 each row of y has mean 0 and biased variance var/(var + eps). */
static void test_layernorm_statistics(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    const int rows = 9, d = 33, ld = 40;
    const float eps = 1e-2f; /* large enough to be visible in the variance */
    float *x = rand_floats((size_t) rows * ld, -0.3f, 0.5f, 600),
          *y = rand_floats((size_t) rows * ld, 0, 1, 601);
    float w[33], b[33], mean[9], rstd[9];
    for (int c = 0; c < d; c++) w[c] = 1, b[c] = 0;
    be->nn->layernorm_fwd(be, ACT(y), ld, mean, rstd, ACT(x), ld, w, b, rows, d, eps);
    for (int r = 0; r < rows; r++) {
        double mx = 0, vx = 0, my = 0, vy = 0;
        for (int c = 0; c < d; c++) mx += x[r * ld + c] / d, my += y[r * ld + c] / d;
        for (int c = 0; c < d; c++) {
            vx += (x[r * ld + c] - mx) * (x[r * ld + c] - mx) / d;
            vy += (y[r * ld + c] - my) * (y[r * ld + c] - my) / d;
        }
        if (fabs(my) > 1e-6 || fabs(vy - vx / (vx + eps)) > 1e-5 || fabs(mean[r] - mx) > 1e-6 ||
            fabs(rstd[r] - 1 / sqrt(vx + eps)) > 1e-5 * rstd[r])
            fprintf(stderr,
                    "row %d: mean(y) %g var(y) %g want %g; mean %g want %g; rstd %g want %g\n", r,
                    my, vy, vx / (vx + eps), mean[r], mx, rstd[r], 1 / sqrt(vx + eps));
        assert_true(fabs(my) <= 1e-6);
        assert_true(fabs(vy - vx / (vx + eps)) <= 1e-5);
        assert_true(fabs(mean[r] - mx) <= 1e-6);
        assert_true(fabs(rstd[r] - 1 / sqrt(vx + eps)) <= 1e-5 * rstd[r]);
    }
    free(x), free(y);
    poa_backend_destroy(be);
}

/* ------------------------------------------------------------------------ GELU */
typedef struct gelu_ctx {
    size_t n;
    double *x, *y, *wgt;
} gelu_ctx;

static double gelu_objective(void *p)
{
    gelu_ctx *c = p;
    poa_naive_gelu_fwd(c->y, c->x, c->n);
    return weighted_sum(c->wgt, c->y, 1, (int) c->n, (int) c->n);
}

/* test_gelu's checks on the kernels selected now (POA_CPU_GELU). */
static void gelu_cases(poa_backend *be)
{
    const size_t n = 70001; /* odd, threaded */
    float *x = rand_floats(n, -7, 7, 700), *y = rand_floats(n, 0, 1, 701);
    x[0] = 0, x[1] = -0.0f, x[2] = 1, x[3] = -1, x[4] = 3, x[5] = -3;
    double *dx = to_double(x, n), *dy = poa_xmalloc(sizeof(double) * n);
    be->nn->gelu_fwd(be, y, x, n);
    poa_naive_gelu_fwd(dy, dx, n);
    /* the libm kernels' 0.5 x (1 + erf(x/√2)) cancels for x ≪ 0, hence the absolute part */
    assert_true(close_all("gelu_fwd vs x·0.5·erfc(-x/sqrt2)", y, dy, n, 2e-7, 2e-6));
    /* a few exact anchors: GELU(1) = 0.8413447460685429, GELU(-1) = -0.15865525393145707 */
    assert_float_equal(y[2], 0.8413447460685429, 1e-7);
    assert_float_equal(y[3], -0.15865525393145707, 1e-7);
    assert_true(y[0] == 0.0f);

    float *g = rand_floats(n, -1, 1, 702), *gx = rand_floats(n, 0, 1, 703);
    double *dg = to_double(g, n), *ngx = poa_xmalloc(sizeof(double) * n);
    be->nn->gelu_bwd(be, gx, NULL, g, x, n);
    poa_naive_gelu_bwd(ngx, dg, dx, n);
    assert_true(close_all("gelu_bwd", gx, ngx, n, 2e-7, 1e-5));
    /* the fused form, in place (dx = dy) as the MLP backward calls it, also returns GELU(x),
     * bit for bit what gelu_fwd gives, and the same dx */
    float *y2 = rand_floats(n, 0, 1, 704), *gx2 = copy_floats(g, n);
    be->nn->gelu_bwd(be, gx2, y2, gx2, x, n);
    assert_memory_equal(y2, y, n * sizeof(float));
    assert_memory_equal(gx2, gx, n * sizeof(float));
    gelu_ctx c = {n, dx, dy, dg};
    assert_true(fd_check("gelu dx", gelu_objective, &c, dx, 1, (int) n, (int) n, ngx, gx, NULL,
                         (int) n, 300, FD_H, FD_TOL, BWD_TOL));
    free(x), free(y), free(dx), free(dy), free(g), free(gx), free(dg), free(ngx), free(y2),
        free(gx2);
}

/* Both kernel sets: the AVX-512 ones (where the CPU has them) and libmvec's. */
static void test_gelu(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    fprintf(stderr, "gelu: %s\n", poa_cpu_gelu_impl());
    gelu_cases(be);
    setenv("POA_CPU_GELU", "libm", 1);
    fprintf(stderr, "gelu: %s (POA_CPU_GELU=libm)\n", poa_cpu_gelu_impl());
    gelu_cases(be);
    unsetenv("POA_CPU_GELU");
    poa_backend_destroy(be);
}

/* Worst errors of got against want over x[0, n): absolute, and relative where x lies in [lo, hi]
 * (a NaN is the worst error; a nonzero result where the reference is 0 an infinite one). */
typedef struct gelu_worst {
    double abs, rel;
    float abs_at, rel_at;
} gelu_worst;

static int worse(double e, double than)
{
    return isnan(e) ? !isnan(than) : e > than;
}

static gelu_worst gelu_errors(const float *got, const double *want, const float *x, size_t n,
                              float lo, float hi)
{
    gelu_worst w = {0, 0, NAN, NAN};
    for (size_t i = 0; i < n; i++) {
        const double e = fabs(got[i] - want[i]);
        if (worse(e, w.abs)) w.abs = e, w.abs_at = x[i];
        if (x[i] < lo || x[i] > hi) continue;
        const double r = want[i] != 0 ? e / fabs(want[i]) : e != 0 ? INFINITY : 0;
        if (worse(r, w.rel)) w.rel = r, w.rel_at = x[i];
    }
    return w;
}

/* Every x in [−10, 10] in steps of 1e-4 (GELU(−10) = −7.6e-23 is still a normal float). */
#define GELU_SWEEP_N 200001

static float *gelu_sweep_inputs(void)
{
    float *x = poa_xmalloc(sizeof(float) * GELU_SWEEP_N);
    for (size_t i = 0; i < GELU_SWEEP_N; i++) x[i] = (float) (-10.0 + 1e-4 * (double) i);
    return x;
}

/* The sweep against the double reference: the forward within test_gelu's tolerances and the
 * backward's y bit for bit the forward's; with the AVX-512 kernels also the relative error
 * everywhere (forward) and in the negative tail x ∈ [−10, −3] (both), where GELU is tiny.
 * GELU_TAIL_RTOL: the erfc fit's own 1.05e-7 plus ~10 fp32 roundings of quantities of order 1
 * (each ≤ 6e-8) is under 7e-7; measured 4.5e-7 forward (5.2e-7 on a grid 100 times finer) and
 * 1.8e-7 backward, while an exp of the rounded exponent −x²/2 + P(t) reaches 2.1e-6.  The libm
 * kernels' 1 + erf(x/√2) has an absolute error of ~6e-8, which is all of Φ(−10) = 7.6e-24:
 * their relative errors there are of order 1 (printed, not checked). */
#define GELU_TAIL_RTOL 1e-6

static void gelu_sweep_cases(poa_backend *be, const char *impl)
{
    const size_t n = GELU_SWEEP_N;
    float *x = gelu_sweep_inputs(), *y = poa_xmalloc(sizeof(float) * n);
    float *y2 = poa_xmalloc(sizeof(float) * n), *gx = poa_xmalloc(sizeof(float) * n);
    float *ones = poa_xmalloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
    double *dx = to_double(x, n), *want = poa_xmalloc(sizeof(double) * n);
    double *dones = to_double(ones, n), *dwant = poa_xmalloc(sizeof(double) * n);
    be->nn->gelu_fwd(be, y, x, n);
    be->nn->gelu_bwd(be, gx, y2, ones, x, n);
    poa_naive_gelu_fwd(want, dx, n);
    poa_naive_gelu_bwd(dwant, dones, dx, n);
    assert_true(close_all("gelu_fwd sweep", y, want, n, 2e-7, 2e-6));
    assert_true(close_all("gelu_bwd sweep", gx, dwant, n, 2e-7, 1e-5));
    assert_memory_equal(y2, y, n * sizeof(float));
    const gelu_worst f = gelu_errors(y, want, x, n, -10, 10);
    const gelu_worst ft = gelu_errors(y, want, x, n, -10, -3);
    const gelu_worst b = gelu_errors(gx, dwant, x, n, -10, -3);
    fprintf(stderr,
            "gelu %s over [-10, 10]: fwd worst abs %.3g (x = %g), rel %.3g (x = %g), "
            "tail [-10, -3] rel %.3g (x = %g); bwd worst abs %.3g (x = %g), tail rel %.3g "
            "(x = %g)\n",
            impl, f.abs, f.abs_at, f.rel, f.rel_at, ft.rel, ft.rel_at, b.abs, b.abs_at, b.rel,
            b.rel_at);
    if (strcmp(impl, "avx512") == 0) {
        assert_true(f.rel <= GELU_TAIL_RTOL);
        assert_true(b.rel <= GELU_TAIL_RTOL);
    }
    free(x), free(y), free(y2), free(gx), free(ones), free(dx), free(want), free(dones);
    free(dwant);
}

/* Special inputs (as PyTorch's float GELU: GELU(−inf) = −inf · 0 = NaN, GELU'(±inf) = NaN). */
static void gelu_special_cases(poa_backend *be)
{
    const float x[] = {0.0f,    -0.0f,  INFINITY, -INFINITY, NAN,    1e30f,
                       FLT_MAX, -1e30f, -FLT_MAX, -20.0f,    1e-40f, -1e-40f};
    const size_t n = sizeof x / sizeof *x;
    float y[sizeof x / sizeof *x], g[sizeof x / sizeof *x], ones[sizeof x / sizeof *x];
    for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
    be->nn->gelu_fwd(be, y, x, n);
    be->nn->gelu_bwd(be, g, NULL, ones, x, n);
    assert_true(y[0] == 0.0f && y[1] == 0.0f && g[0] == 0.5f && g[1] == 0.5f);
    assert_true(y[2] == INFINITY && isnan(y[3]) && isnan(y[4]));
    assert_true(isnan(g[2]) && isnan(g[3]) && isnan(g[4]));
    assert_true(y[5] == 1e30f && y[6] == FLT_MAX && g[5] == 1.0f && g[6] == 1.0f);
    assert_true(y[7] == 0.0f && y[8] == 0.0f && g[7] == 0.0f && g[8] == 0.0f);
    assert_true(y[9] <= 0.0f && y[9] > -1e-30f && g[9] <= 0.0f && g[9] > -1e-30f);
    assert_true(fabs(y[10] - 0.5e-40) <= 2e-45 && fabs(y[11] + 0.5e-40) <= 2e-45);
    assert_true(g[10] == 0.5f && g[11] == 0.5f);
}

/* Every length up to 3 blocks of 64 values, from an odd offset: within tolerance of the
 * reference, the backward's y the forward's bit for bit, and nothing written past the end (the
 * kernels' masked tails).  The AVX-512 results must also be those of the full-length sweep bit
 * for bit: a value does not depend on its position (the libm loops, whose peeled and remainder
 * elements go through the scalar erff, differ in the last bit). */
static void gelu_ragged_cases(poa_backend *be, int position_free)
{
    enum { MAXN = 3 * 64 + 1, PAD = 32 };
    const float canary = 12345.0f;
    float *x = gelu_sweep_inputs(), *y = poa_xmalloc(sizeof(float) * GELU_SWEEP_N);
    float *g = poa_xmalloc(sizeof(float) * GELU_SWEEP_N);
    float *ones = poa_xmalloc(sizeof(float) * GELU_SWEEP_N);
    for (size_t i = 0; i < GELU_SWEEP_N; i++) ones[i] = 1.0f;
    be->nn->gelu_fwd(be, y, x, GELU_SWEEP_N);
    be->nn->gelu_bwd(be, g, NULL, ones, x, GELU_SWEEP_N);
    const size_t at = 77777; /* odd: unaligned loads and stores */
    double *dx = to_double(x + at, MAXN), *want = poa_xmalloc(sizeof(double) * MAXN);
    double *dones = to_double(ones, MAXN), *dwant = poa_xmalloc(sizeof(double) * MAXN);
    poa_naive_gelu_fwd(want, dx, MAXN);
    poa_naive_gelu_bwd(dwant, dones, dx, MAXN);
    float ys[MAXN + PAD], gs[MAXN + PAD], y2s[MAXN + PAD];
    for (size_t n = 1; n <= MAXN; n++) {
        for (size_t i = 0; i < MAXN + PAD; i++) ys[i] = gs[i] = y2s[i] = canary;
        be->nn->gelu_fwd(be, ys, x + at, n);
        be->nn->gelu_bwd(be, gs, y2s, ones, x + at, n);
        assert_true(close_all("gelu_fwd ragged", ys, want, n, 2e-7, 2e-6));
        assert_true(close_all("gelu_bwd ragged", gs, dwant, n, 2e-7, 1e-5));
        assert_memory_equal(y2s, ys, n * sizeof(float));
        if (position_free) {
            assert_memory_equal(ys, y + at, n * sizeof(float));
            assert_memory_equal(gs, g + at, n * sizeof(float));
        }
        for (size_t i = n; i < MAXN + PAD; i++)
            assert_true(ys[i] == canary && gs[i] == canary && y2s[i] == canary);
    }
    free(x), free(y), free(g), free(ones), free(dx), free(want), free(dones), free(dwant);
}

static void gelu_accuracy_cases(poa_backend *be)
{
    const char *impl = poa_cpu_gelu_impl();
    gelu_sweep_cases(be, impl);
    gelu_special_cases(be);
    gelu_ragged_cases(be, strcmp(impl, "avx512") == 0);
}

/* The accuracy of both kernel sets over a dense sweep, special inputs and ragged lengths. */
static void test_gelu_accuracy(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    gelu_accuracy_cases(be);
    setenv("POA_CPU_GELU", "libm", 1);
    gelu_accuracy_cases(be);
    unsetenv("POA_CPU_GELU");
    poa_backend_destroy(be);
}

/* ------------------------------------------------------------------------ residual */
typedef struct res_ctx {
    int B, T, d, ldx, ldy;
    const double *x0, *s;
    double *x, *y, *gamma, *wgt;
} res_ctx;

static double res_objective(void *p)
{
    res_ctx *c = p;
    memcpy(c->x, c->x0, sizeof(double) * (size_t) c->B * c->T * c->ldx);
    poa_naive_residual_ls_fwd(c->x, c->ldx, c->y, c->ldy, c->gamma, c->s, c->B, c->T, c->d);
    return weighted_sum(c->wgt, c->x, c->B * c->T, c->d, c->ldx);
}

static void check_residual(poa_backend *be, int use_s, int B, int T, int d, uint64_t seed)
{
    const int ldx = d + 3, ldy = d + 7, lddy = d + 2, rows = B * T;
    const size_t nx = (size_t) rows * ldx, ny = (size_t) rows * ldy, ndy = (size_t) rows * lddy;
    float *x = rand_floats(nx, -1, 1, seed), *y = rand_floats(ny, -1, 1, seed + 1);
    float *gamma = rand_floats((size_t) d, -1, 1, seed + 2), s[16];
    for (int b = 0; b < B; b++) s[b] = (b % 3 == 1) ? 0.0f : 1.25f + 0.5f * b;
    /* a dropped image's branch was never computed: its y may be anything, even NaN */
    if (use_s)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < d; c++) y[((size_t) 1 * T + t) * ldy + c] = NAN;
    const float *sp = use_s ? s : NULL;
    double ds[16];
    for (int b = 0; b < B; b++) ds[b] = s[b];
    const double *dsp = use_s ? ds : NULL;
    double *dx = to_double(x, nx), *dy = to_double(y, ny), *dgamma = to_double(gamma, (size_t) d);
    double *x0 = to_double(x, nx);
    float *base = copy_floats(x, nx);
    be->nn->residual_ls_fwd(be, ACT(x), ldx, ACT(x), ldx, ACT(y), ldy, gamma, sp, B, T, d);
    poa_naive_residual_ls_fwd(dx, ldx, dy, ldy, dgamma, dsp, B, T, d);
    assert_true(close_all("residual_ls_fwd in place", x, dx, nx, FWD_ATOL, FWD_RTOL));
    /* out of place from a base with another ld: the same rows, the padding untouched */
    {
        const int ldo = d + 5;
        const size_t no = (size_t) rows * ldo;
        float *out = rand_floats(no, -1, 1, seed + 6);
        double *want = to_double(out, no), *zero = poa_xcalloc(nx, sizeof(double));
        be->nn->residual_ls_fwd(be, ACT(out), ldo, ACT(base), ldx, ACT(y), ldy, gamma, sp, B, T, d);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < d; c++) want[(size_t) r * ldo + c] = dx[(size_t) r * ldx + c];
        assert_true(close_all("residual_ls_fwd from a base", out, want, no, FWD_ATOL, FWD_RTOL));
        /* no base: s γ ⊙ y alone (dropped images: zero rows) */
        be->nn->residual_ls_fwd(be, ACT(out), ldo, NULL, 0, ACT(y), ldy, gamma, sp, B, T, d);
        poa_naive_residual_ls_fwd(zero, ldx, dy, ldy, dgamma, dsp, B, T, d);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < d; c++) want[(size_t) r * ldo + c] = zero[(size_t) r * ldx + c];
        assert_true(close_all("residual_ls_fwd without base", out, want, no, FWD_ATOL, FWD_RTOL));
        free(out), free(want), free(zero);
    }
    free(base);

    /* backward: upstream gradient = objective weights (on x's layout) */
    float *w = rand_floats(nx, -1, 1, seed + 3), *gy = rand_floats(ndy, -1, 1, seed + 4);
    float *gg = rand_floats((size_t) d, -1, 1, seed + 5), *gg0 = copy_floats(gg, (size_t) d);
    double *dw = to_double(w, nx), *ngy = to_double(gy, ndy);
    double *ngg = poa_xcalloc((size_t) d, sizeof(double));
    be->nn->residual_ls_bwd(be, ACT(gy), lddy, gg, ACT(w), ldx, ACT(y), ldy, gamma, sp, B, T, d);
    poa_naive_residual_ls_bwd(ngy, lddy, ngg, dw, ldx, dy, ldy, dgamma, dsp, B, T, d);
    assert_true(close_all("residual_ls_bwd dy", gy, ngy, ndy, 1e-6, 1e-5));
    for (int c = 0; c < d; c++) gg[c] -= gg0[c], assert_true(isfinite(gg[c]));
    assert_true(close_all("residual_ls_bwd dgamma", gg, ngg, (size_t) d, 1e-5, 1e-5));
    for (int c = 0; c < d; c++) gg[c] += gg0[c];

    if (use_s) /* FD needs finite y everywhere; a dropped image's y has no effect on L */
        for (int t = 0; t < T; t++)
            for (int c = 0; c < d; c++) dy[((size_t) 1 * T + t) * ldy + c] = 0.5;
    res_ctx ctx = {B, T, d, ldx, ldy, x0, dsp, dx, dy, dgamma, dw};
    assert_true(fd_check("residual dy", res_objective, &ctx, dy, rows, d, ldy, ngy, gy, NULL, lddy,
                         200, FD_H, FD_TOL, BWD_TOL));
    assert_true(fd_check("residual dgamma", res_objective, &ctx, dgamma, 1, d, d, ngg, gg, gg0, d,
                         64, FD_H, FD_TOL, BWD_TOL));
    free(x), free(y), free(gamma), free(w), free(gy), free(gg), free(gg0);
    free(dx), free(dy), free(dgamma), free(x0), free(dw), free(ngy), free(ngg);
}

static void test_residual(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    check_residual(be, 0, 3, 5, 19, 800);
    check_residual(be, 1, 4, 5, 19, 810);
    check_residual(be, 1, 5, 37, 384, 820); /* threaded */
    poa_backend_destroy(be);
}

/* ------------------------------------------------------------------------ gather / scatter */
typedef struct gather_ctx {
    int n, cols, lds, ldd;
    const int32_t *idx;
    double *src, *dst, *wgt;
} gather_ctx;

static double gather_objective(void *p)
{
    gather_ctx *c = p;
    poa_naive_gather_rows(c->dst, c->ldd, c->src, c->lds, c->idx, c->n, c->cols);
    return weighted_sum(c->wgt, c->dst, c->n, c->cols, c->ldd);
}

/* scatter_add_rows is the backward of gather_rows: FD of L = Σ w ⊙ gather(src) wrt src. */
static void check_gather_fd(poa_backend *be, uint64_t seed)
{
    enum { SROWS = 6, N = 15, COLS = 5, LDS = 7, LDD = 6 };
    int32_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = (int32_t) ((i * 4 + 1) % SROWS); /* repeats */
    float *w = rand_floats(N * LDD, -1, 1, seed), *g = rand_floats(SROWS * LDS, -1, 1, seed + 1);
    float *g0 = copy_floats(g, SROWS * LDS), *src = rand_floats(SROWS * LDS, -1, 1, seed + 2);
    double *dw = to_double(w, N * LDD), *dsrc = to_double(src, SROWS * LDS);
    double *ng = poa_xcalloc(SROWS * LDS, sizeof(double)), *tmp = poa_xcalloc(N * LDD, 8);
    be->nn->act_scatter_add_rows(be, ACT(g), LDS, ACT(w), LDD, idx, N, COLS);
    poa_naive_scatter_add_rows(ng, LDS, dw, LDD, idx, N, COLS);
    gather_ctx c = {N, COLS, LDS, LDD, idx, dsrc, tmp, dw};
    assert_true(fd_check("scatter_add_rows vs FD of gather_rows", gather_objective, &c, dsrc, SROWS,
                         COLS, LDS, ng, g, g0, LDS, 64, 1e-3, 1e-9, 1e-5));
    free(w), free(g), free(g0), free(src), free(dw), free(dsrc), free(ng), free(tmp);
}

static void test_gather_scatter(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    for (int k = 0; k < 2; k++) {
        const int srows = 11, n = k ? 2000 : 9, cols = k ? 40 : 13, lds = cols + 3, ldd = cols + 1;
        int32_t idx[2000];
        poa_rng r;
        poa_rng_init(&r, 900 + k, 0, POA_RNG_TEST, 0);
        for (int i = 0; i < n; i++) idx[i] = (int32_t) poa_rng_below(&r, srows); /* repeats */
        float *src = rand_floats((size_t) srows * lds, -1, 1, 901 + k);
        float *dst = rand_floats((size_t) n * ldd, -1, 1, 903 + k);
        double *dsrc = to_double(src, (size_t) srows * lds),
               *ddst = to_double(dst, (size_t) n * ldd);
        float *dst2 = copy_floats(dst, (size_t) n * ldd);
        be->nn->act_gather_rows(be, ACT(dst), ldd, ACT(src), lds, idx, n, cols);
        poa_naive_gather_rows(ddst, ldd, dsrc, lds, idx, n, cols);
        assert_true(close_all("gather_rows", dst, ddst, (size_t) n * ldd, 0, 0));
        /* the backbone → heads crossing: activations are fp32 here, so the same values */
        be->nn->act_gather_rows_f32(be, dst2, ldd, ACT(src), lds, idx, n, cols);
        assert_memory_equal(dst2, dst, sizeof(float) * (size_t) n * ldd);
        float *src2 = copy_floats(src, (size_t) srows * lds);
        be->nn->act_scatter_add_rows(be, ACT(src), lds, ACT(dst), ldd, idx, n, cols);
        poa_naive_scatter_add_rows(dsrc, lds, ddst, ldd, idx, n, cols);
        assert_true(close_all("scatter_add_rows", src, dsrc, (size_t) srows * lds, 1e-5, 1e-5));
        be->nn->act_scatter_add_rows_f32(be, ACT(src2), lds, dst, ldd, idx, n, cols);
        assert_memory_equal(src2, src, sizeof(float) * (size_t) srows * lds);
        free(src), free(dst), free(dsrc), free(ddst), free(dst2), free(src2);
    }
    check_gather_fd(be, 950);
    poa_backend_destroy(be);
}

/* ------------------------------------------------------------------------ L2 normalisation */
typedef struct l2_ctx {
    int rows, cols, ldx, ldy;
    double eps, *x, *y, *norms, *wgt;
} l2_ctx;

static double l2_objective(void *p)
{
    l2_ctx *c = p;
    poa_naive_l2norm_fwd(c->y, c->ldy, c->norms, c->x, c->ldx, c->rows, c->cols, c->eps);
    return weighted_sum(c->wgt, c->y, c->rows, c->cols, c->ldy);
}

static void check_l2norm(poa_backend *be, int rows, int cols, float eps, float lo, float hi,
                         uint64_t seed)
{
    const int ldx = cols + 2, ldy = cols + 5, lddx = cols + 1;
    const size_t nx = (size_t) rows * ldx, ny = (size_t) rows * ldy, ndx = (size_t) rows * lddx;
    float *x = rand_floats(nx, lo, hi, seed), *y = rand_floats(ny, 0, 1, seed + 1);
    float *norms = rand_floats((size_t) rows, 0, 1, seed + 2);
    double *dx = to_double(x, nx), *dy = to_double(y, ny), *dn = to_double(norms, (size_t) rows);
    be->nn->l2norm_fwd(be, y, ldy, norms, x, ldx, rows, cols, eps);
    poa_naive_l2norm_fwd(dy, ldy, dn, dx, ldx, rows, cols, eps);
    assert_true(close_all("l2norm_fwd y", y, dy, ny, FWD_ATOL, FWD_RTOL));
    assert_true(close_all("l2norm_fwd norms", norms, dn, (size_t) rows, 0, 1e-6));

    float *w = rand_floats(ny, -1, 1, seed + 3), *gx = rand_floats(ndx, 0, 1, seed + 4);
    double *dw = to_double(w, ny), *ngx = to_double(gx, ndx);
    be->nn->l2norm_bwd(be, gx, lddx, w, ldy, x, ldx, norms, rows, cols, eps);
    poa_naive_l2norm_bwd(ngx, lddx, dw, ldy, dx, ldx, dn, rows, cols, eps);
    assert_true(close_all("l2norm_bwd", gx, ngx, ndx, 1e-5 * max_abs_d(ngx, ndx), 1e-5));
    l2_ctx c = {rows, cols, ldx, ldy, eps, dx, dy, dn, dw};
    assert_true(fd_check("l2norm dx", l2_objective, &c, dx, rows, cols, ldx, ngx, gx, NULL, lddx,
                         200, FD_H, FD_TOL, BWD_TOL));
    free(x), free(y), free(norms), free(w), free(gx), free(dx), free(dy), free(dn), free(dw);
    free(ngx);
}

static void test_l2norm(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    check_l2norm(be, 6, 27, 1e-12f, -1, 1, 1000);       /* the DINO head's eps */
    check_l2norm(be, 257, 256, 1e-12f, -1, 1, 1010);    /* threaded */
    check_l2norm(be, 12, 5, 0.5f, -0.35f, 0.35f, 1020); /* rows on both sides of eps */
    poa_backend_destroy(be);
}

/* ------------------------------------------------------------------------ weight norm */
typedef struct wn_ctx {
    int K, C;
    double *W, *vnorm, *g, *v, *wgt;
} wn_ctx;

static double wn_objective(void *p)
{
    wn_ctx *c = p;
    poa_naive_weightnorm_fwd(c->W, c->vnorm, c->g, c->v, c->K, c->C);
    return weighted_sum(c->wgt, c->W, c->K, c->C, c->C);
}

static void test_weightnorm(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    const int sizes[2][2] = {{9, 33}, {300, 256}}; /* small; threaded */
    for (int k = 0; k < 2; k++) {
        const int K = sizes[k][0], C = sizes[k][1];
        const size_t n = (size_t) K * C;
        float *v = rand_floats(n, -1.0f / 16, 1.0f / 16, 1100 + k);
        float *g = rand_floats((size_t) K, 0.5f, 1.5f, 1102 + k), *W = rand_floats(n, 0, 1, 1104);
        float *vn = rand_floats((size_t) K, 0, 1, 1105);
        double *dv = to_double(v, n), *dg = to_double(g, (size_t) K), *dW = to_double(W, n);
        double *dvn = to_double(vn, (size_t) K);
        be->nn->weightnorm_fwd(be, W, vn, g, v, K, C);
        poa_naive_weightnorm_fwd(dW, dvn, dg, dv, K, C);
        assert_true(close_all("weightnorm_fwd W", W, dW, n, FWD_ATOL, FWD_RTOL));
        assert_true(close_all("weightnorm_fwd vnorm", vn, dvn, (size_t) K, 0, 1e-6));

        float *gW = rand_floats(n, -1, 1, 1106 + k);
        float *gg = rand_floats((size_t) K, -1, 1, 1108), *gv = rand_floats(n, -1, 1, 1109);
        float *gg0 = copy_floats(gg, (size_t) K), *gv0 = copy_floats(gv, n);
        double *dgW = to_double(gW, n), *ngg = to_double(gg, (size_t) K), *ngv = to_double(gv, n);
        be->nn->weightnorm_bwd(be, gg, gv, gW, g, v, vn, K, C);
        poa_naive_weightnorm_bwd(ngg, ngv, dgW, dg, dv, dvn, K, C);
        assert_true(close_all("weightnorm_bwd dg", gg, ngg, (size_t) K, 1e-5, 1e-5));
        assert_true(close_all("weightnorm_bwd dv", gv, ngv, n, 1e-4, 1e-5));
        double *og = poa_xcalloc((size_t) K, 8), *ov = poa_xcalloc(n, 8);
        poa_naive_weightnorm_bwd(og, ov, dgW, dg, dv, dvn, K, C);
        wn_ctx c = {K, C, dW, dvn, dg, dv, dgW};
        assert_true(fd_check("weightnorm dv", wn_objective, &c, dv, K, C, C, ov, gv, gv0, C, 150,
                             FD_H, FD_TOL, BWD_TOL));
        assert_true(fd_check("weightnorm dg", wn_objective, &c, dg, 1, K, K, og, gg, gg0, K, 64,
                             FD_H, FD_TOL, BWD_TOL));
        free(v), free(g), free(W), free(vn), free(gW), free(gg), free(gv), free(gg0), free(gv0);
        free(dv), free(dg), free(dW), free(dvn), free(dgW), free(ngg), free(ngv), free(og);
        free(ov);
    }
    poa_backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_views),
        cmocka_unit_test(test_gemm_avx512_blocking),
        cmocka_unit_test(test_gemm_inside_parallel),
        cmocka_unit_test(test_gemm_bias_rounding),
        cmocka_unit_test(test_gemm_strided_batched),
        cmocka_unit_test(test_bias),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_layernorm_statistics),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_gelu_accuracy),
        cmocka_unit_test(test_residual),
        cmocka_unit_test(test_gather_scatter),
        cmocka_unit_test(test_l2norm),
        cmocka_unit_test(test_weightnorm),
    };
    return cmocka_run_group_tests_name("ops_dense", tests, NULL, NULL);
}
