/* test_ops_tokens.c — token preparation ops of the CPU backend (docs/algorithm.md §2.2–2.3):
 * patch_unfold, tokens_fwd/bwd (cls, mask token, position embedding), pos_resample_fwd/bwd against
 * the naive double reference, against PyTorch's F.interpolate (values from
 * tests/reference/pos_resample_ref.py, in pos_resample_ref.h), the constant-in/constant-out
 * invariant (docs/algorithm.md §12.4), the adjoint identity and finite differences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ops_test_util.h"
#include "pos_resample_ref.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ patch unfolding */
static void test_patch_unfold(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    const int shapes[2][5] = {{2, 3, 12, 8, 4}, {3, 3, 64, 48, 16}}; /* B, C, Hi, Wi, P */
    for (int s = 0; s < 2; s++) {
        const int B = shapes[s][0], C = shapes[s][1], Hi = shapes[s][2], Wi = shapes[s][3];
        const int P = shapes[s][4], n = (Hi / P) * (Wi / P) * B, len = C * P * P;
        const size_t nimg = (size_t) B * C * Hi * Wi, ncols = (size_t) n * len;
        float *img = rand_floats(nimg, -1, 1, 2000 + s), *cols = rand_floats(ncols, 5, 6, 2002);
        double *dimg = to_double(img, nimg), *dcols = to_double(cols, ncols);
        be->nn->patch_unfold(be, ACT(cols), img, B, C, Hi, Wi, P);
        poa_naive_patch_unfold(dcols, dimg, B, C, Hi, Wi, P);
        assert_true(close_all("patch_unfold", cols, dcols, ncols, 0, 0));
        /* spot check of the layout: image 1, patch (row 2, col 1), channel 2, pixel (3, 1) */
        if (s == 0) {
            const int gw = Wi / P, row = (1 * (Hi / P) + 2) * gw + 1;
            const float want = img[(((size_t) 1 * C + 2) * Hi + 2 * P + 3) * Wi + 1 * P + 1];
            assert_true(cols[(size_t) row * len + (2 * P + 3) * P + 1] == want);
        }
        free(img), free(cols), free(dimg), free(dcols);
    }
    poa_backend_destroy(be);
}

/* ------------------------------------------------------------------------ tokens */
typedef struct tok_case {
    int B, N, d, ldx, ldemb, ldpos;
} tok_case;

typedef struct tok_ctx {
    const tok_case *k;
    double *x, *emb, *cls, *pos, *mtok, *wgt;
    const uint8_t *mask;
} tok_ctx;

static double tok_objective(void *p)
{
    tok_ctx *c = p;
    const tok_case *k = c->k;
    poa_naive_tokens_fwd(c->x, k->ldx, c->emb, k->ldemb, c->cls, c->pos, k->ldpos, c->mtok, c->mask,
                         k->B, k->N, k->d);
    return weighted_sum(c->wgt, c->x, k->B * (k->N + 1), k->d, k->ldx);
}

static void check_tokens(const tok_case *k, int use_mask, uint64_t seed)
{
    poa_backend *be = cpu_backend();
    const int B = k->B, N = k->N, d = k->d, T = N + 1;
    const size_t nx = (size_t) B * T * k->ldx, nemb = (size_t) B * N * k->ldemb;
    const size_t npos = (size_t) T * k->ldpos;
    float *emb = rand_floats(nemb, -1, 1, seed), *cls = rand_floats((size_t) d, -1, 1, seed + 1);
    float *pos = rand_floats(npos, -1, 1, seed + 2),
          *mtok = rand_floats((size_t) d, -1, 1, seed + 3);
    float *x = rand_floats(nx, 7, 8, seed + 4);
    uint8_t *mask = poa_xmalloc((size_t) B * N);
    for (int i = 0; i < B * N; i++) mask[i] = (uint8_t) ((i * 7 + 3) % 5 < 2);
    const uint8_t *mp = use_mask ? mask : NULL;
    double *dx = to_double(x, nx), *demb = to_double(emb, nemb), *dcls = to_double(cls, (size_t) d);
    double *dpos = to_double(pos, npos), *dmtok = to_double(mtok, (size_t) d);
    be->nn->tokens_fwd(be, ACT(x), k->ldx, ACT(emb), k->ldemb, cls, pos, k->ldpos, mtok, mp, B, N,
                       d);
    poa_naive_tokens_fwd(dx, k->ldx, demb, k->ldemb, dcls, dpos, k->ldpos, dmtok, mp, B, N, d);
    assert_true(close_all("tokens_fwd", x, dx, nx, 1e-7, 1e-7));

    /* backward: demb (=) onto junk; dcls, dpos, dmask_token (+=) onto junk */
    float *g = rand_floats(nx, -1, 1, seed + 5), *ge = rand_floats(nemb, 3, 4, seed + 6);
    float *gc = rand_floats((size_t) d, -1, 1, seed + 7), *gp = rand_floats(npos, -1, 1, seed + 8);
    float *gm = rand_floats((size_t) d, -1, 1, seed + 9);
    float *gc0 = copy_floats(gc, (size_t) d), *gp0 = copy_floats(gp, npos);
    float *gm0 = copy_floats(gm, (size_t) d);
    double *dg = to_double(g, nx), *nge = to_double(ge, nemb);
    double *ngc = poa_xcalloc((size_t) d, 8), *ngp = poa_xcalloc(npos, 8),
           *ngm = poa_xcalloc((size_t) d, 8);
    be->nn->tokens_bwd(be, ACT(ge), k->ldemb, gc, gp, k->ldpos, gm, ACT(g), k->ldx, mp, B, N, d);
    poa_naive_tokens_bwd(nge, k->ldemb, ngc, ngp, k->ldpos, ngm, dg, k->ldx, mp, B, N, d);
    assert_true(close_all("tokens_bwd demb", ge, nge, nemb, 0, 0));
    tok_ctx c = {k, dx, demb, dcls, dpos, dmtok, dg, mp};
    assert_true(fd_check("tokens demb", tok_objective, &c, demb, B * N, d, k->ldemb, nge, ge, NULL,
                         k->ldemb, 200, 1e-3, 1e-9, 1e-5));
    assert_true(fd_check("tokens dcls", tok_objective, &c, dcls, 1, d, d, ngc, gc, gc0, d, 100,
                         1e-3, 1e-9, 1e-5));
    assert_true(fd_check("tokens dpos", tok_objective, &c, dpos, T, d, k->ldpos, ngp, gp, gp0,
                         k->ldpos, 200, 1e-3, 1e-9, 1e-5));
    if (use_mask)
        assert_true(fd_check("tokens dmask_token", tok_objective, &c, dmtok, 1, d, d, ngm, gm, gm0,
                             d, 100, 1e-3, 1e-9, 1e-5));
    else /* without a mask the mask token gets no gradient */
        assert_memory_equal(gm, gm0, sizeof(float) * (size_t) d);

    free(emb), free(cls), free(pos), free(mtok), free(x), free(mask), free(g), free(ge), free(gc);
    free(gp), free(gm), free(gc0), free(gp0), free(gm0);
    free(dx), free(demb), free(dcls), free(dpos), free(dmtok), free(dg), free(nge), free(ngc);
    free(ngp), free(ngm);
    poa_backend_destroy(be);
}

static void test_tokens(void **state)
{
    (void) state;
    const tok_case small = {3, 6, 13, 17, 15, 19};    /* elastic-like: d < every ld */
    const tok_case big = {4, 196, 96, 128, 100, 128}; /* threaded (global-crop-like) */
    check_tokens(&small, 1, 2100);
    check_tokens(&small, 0, 2200);
    check_tokens(&big, 1, 2300);
}

/* ------------------------------------------------------------------------ pos resampling */
typedef struct pos_ctx {
    int M, h0, w0, d, lds, ldd;
    double *src, *dst, *wgt;
} pos_ctx;

static double pos_objective(void *p)
{
    pos_ctx *c = p;
    poa_naive_pos_resample_fwd(c->dst, c->ldd, c->src, c->lds, c->M, c->h0, c->w0, c->d);
    return weighted_sum(c->wgt, c->dst, c->h0 * c->w0, c->d, c->ldd);
}

/* Fast vs naive, += backward, adjoint identity, FD. */
static void check_pos_resample(int M, int h0, int w0, int d, int fd_checks, uint64_t seed)
{
    poa_backend *be = cpu_backend();
    const int lds = d + 3, ldd = d + 2, nout = h0 * w0;
    const size_t ns = (size_t) M * M * lds, nd = (size_t) nout * ldd;
    float *src = rand_floats(ns, -1, 1, seed), *dst = rand_floats(nd, 5, 6, seed + 1);
    double *dsrc = to_double(src, ns), *ddst = to_double(dst, nd);
    be->nn->pos_resample_fwd(be, dst, ldd, src, lds, M, h0, w0, d);
    poa_naive_pos_resample_fwd(ddst, ldd, dsrc, lds, M, h0, w0, d);
    char what[96];
    snprintf(what, sizeof what, "pos_resample_fwd %d -> %dx%d", M, h0, w0);
    /* the naive op is the real-number formula of docs/algorithm.md §2.3; the fp32 op rounds the
     * coordinate ratio to fp32 as torch does, which moves samples by up to ~1e-6 of a grid step */
    assert_true(close_all(what, dst, ddst, nd, 4e-6, 1e-5));

    float *g = rand_floats(nd, -1, 1, seed + 2), *gs = rand_floats(ns, -1, 1, seed + 3);
    float *gs0 = copy_floats(gs, ns);
    double *dg = to_double(g, nd), *ngs = poa_xcalloc(ns, sizeof(double));
    be->nn->pos_resample_bwd(be, gs, lds, g, ldd, M, h0, w0, d);
    poa_naive_pos_resample_bwd(ngs, lds, dg, ldd, M, h0, w0, d);
    for (size_t i = 0; i < ns; i++) gs[i] -= gs0[i];
    snprintf(what, sizeof what, "pos_resample_bwd %d -> %dx%d", M, h0, w0);
    assert_true(close_all(what, gs, ngs, ns, 4e-6, 1e-5));
    for (size_t i = 0; i < ns; i++) gs[i] += gs0[i];

    /* adjoint: <fwd(x), y> = <x, bwd(y)> for the naive pair (double) */
    const double lhs = weighted_sum(dg, ddst, nout, d, ldd),
                 rhs = weighted_sum(ngs, dsrc, M * M, d, lds);
    if (fabs(lhs - rhs) > 1e-12 * (fabs(lhs) + 1))
        fprintf(stderr, "adjoint: %.17g vs %.17g\n", lhs, rhs);
    assert_true(fabs(lhs - rhs) <= 1e-12 * (fabs(lhs) + 1));

    pos_ctx c = {M, h0, w0, d, lds, ldd, dsrc, ddst, dg};
    assert_true(fd_check(what, pos_objective, &c, dsrc, M * M, d, lds, ngs, gs, gs0, lds, fd_checks,
                         1e-3, 1e-9, 2e-5));
    free(src), free(dst), free(dsrc), free(ddst), free(g), free(gs), free(gs0), free(dg), free(ngs);
    poa_backend_destroy(be);
}

static void test_pos_resample_vs_naive(void **state)
{
    (void) state;
    check_pos_resample(14, 6, 6, 5, 200, 2400);   /* 224 px grid → 96-px local crop */
    check_pos_resample(4, 2, 2, 7, 200, 2410);    /* TINY: 32-px grid of patch 8 → 16-px crop */
    check_pos_resample(14, 6, 9, 3, 200, 2420);   /* non-square */
    check_pos_resample(3, 5, 4, 4, 200, 2430);    /* upsampling: taps beyond the edge */
    check_pos_resample(14, 12, 12, 512, 4, 2440); /* threaded */
}

/* Against F.interpolate(..., scale_factor=((h0+0.1)/M, (w0+0.1)/M), mode="bicubic") in torch's
 * fp32 CPU kernel: inputs rebuilt from the closed forms of pos_resample_ref.py. */
static void check_vs_torch(int M, int h0, int w0, int d, const float *ref_out,
                           const float *ref_grad)
{
    poa_backend *be = cpu_backend();
    const int nout = h0 * w0;
    float *src = poa_xmalloc(sizeof(float) * (size_t) M * M * d);
    float *wgt = poa_xmalloc(sizeof(float) * (size_t) nout * d);
    float *out = poa_xmalloc(sizeof(float) * (size_t) nout * d);
    float *grad = poa_xcalloc((size_t) M * M * d, sizeof(float));
    for (int k = 0; k < M * M; k++)
        for (int c = 0; c < d; c++) src[k * d + c] = (float) (sin(0.37 * k + 1.3 * c) + 0.01 * k);
    for (int o = 0; o < nout; o++)
        for (int c = 0; c < d; c++) wgt[o * d + c] = (float) cos(0.23 * o - 0.7 * c);
    be->nn->pos_resample_fwd(be, out, d, src, d, M, h0, w0, d);
    be->nn->pos_resample_bwd(be, grad, d, wgt, d, M, h0, w0, d);
    double *dref = to_double(ref_out, (size_t) nout * d);
    double *dgref = to_double(ref_grad, (size_t) M * M * d);
    char what[96];
    snprintf(what, sizeof what, "pos_resample_fwd %d -> %dx%d vs torch", M, h0, w0);
    /* bit-identical weights; the 16-term sums are rounded in a different order than torch's
     * vectorised loop, so values agree to a few ulp of the terms (|terms| ≲ 1) */
    assert_true(close_all(what, out, dref, (size_t) nout * d, 2.5e-7, 2.5e-7));
    /* torch's backward kernel rounds its source coordinates differently from its forward (its
     * weights differ from the forward's by up to 7e-7); ours is the exact adjoint of our
     * forward, so the gradients agree to ~1e-6 of their terms only */
    snprintf(what, sizeof what, "pos_resample_bwd %d -> %dx%d vs torch", M, h0, w0);
    assert_true(close_all(what, grad, dgref, (size_t) M * M * d, 2e-6, 1e-6));
    int exact = 0;
    for (int i = 0; i < nout * d; i++) exact += out[i] == ref_out[i];
    printf("pos_resample %d -> %dx%d: %d of %d outputs bit-identical to torch\n", M, h0, w0, exact,
           nout * d);
    free(src), free(wgt), free(out), free(grad), free(dref), free(dgref);
    poa_backend_destroy(be);
}

static void test_pos_resample_vs_torch(void **state)
{
    (void) state;
    check_vs_torch(14, 6, 6, 2, ref_out_m14_6x6_d2, ref_grad_m14_6x6_d2);
    check_vs_torch(4, 2, 2, 3, ref_out_m4_2x2_d3, ref_grad_m4_2x2_d3);
    check_vs_torch(14, 6, 9, 1, ref_out_m14_6x9_d1, ref_grad_m14_6x9_d1);
    check_vs_torch(3, 5, 4, 2, ref_out_m3_5x4_d2, ref_grad_m3_5x4_d2);
}

/* docs/algorithm.md §12.4: a constant grid resamples to the same constant (the weights of every
 * output sum to one, clamped taps included; in fp32 to within a few ulp, as in torch). */
static void test_pos_resample_constant(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    const int cases[4][3] = {{14, 6, 6}, {4, 2, 2}, {14, 6, 9}, {3, 5, 4}};
    for (int k = 0; k < 4; k++) {
        const int M = cases[k][0], h0 = cases[k][1], w0 = cases[k][2], d = 4;
        float src[14 * 14 * 4], dst[6 * 9 * 4];
        for (int i = 0; i < M * M; i++)
            for (int c = 0; c < d; c++) src[i * d + c] = 0.25f + 0.5f * c;
        be->nn->pos_resample_fwd(be, dst, d, src, d, M, h0, w0, d);
        for (int o = 0; o < h0 * w0; o++)
            for (int c = 0; c < d; c++) {
                const float want = 0.25f + 0.5f * c;
                if (fabsf(dst[o * d + c] - want) > 1e-6f * want)
                    fprintf(stderr, "constant %g -> %.9g at output %d (%d -> %dx%d)\n", want,
                            dst[o * d + c], o, M, h0, w0);
                assert_true(fabsf(dst[o * d + c] - want) <= 1e-6f * want);
            }
    }
    poa_backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patch_unfold),          cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_pos_resample_vs_naive), cmocka_unit_test(test_pos_resample_vs_torch),
        cmocka_unit_test(test_pos_resample_constant),
    };
    return cmocka_run_group_tests_name("ops_tokens", tests, NULL, NULL);
}
