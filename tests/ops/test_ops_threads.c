/* test_ops_threads.c — the CPU ops give bit-identical results whatever the thread count
 * (poa_cpu_set_threads): reductions over rows are owned by column blocks and summed in row
 * order, so a run is reproducible on nodes with different core counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/cpu/cpu_nn.h"
#include "ops_test_util.h"

#include <stdlib.h>
#include <string.h>

/* sizes above every op's threshold for going parallel */
enum { B = 8, T = 37, N = 36, D = 384, H = 6, DH = 64, ROWS = B * T };

/* Every op with a cross-row reduction or a split, run once; outputs appended to `out`. */
static size_t run_ops(poa_backend *be, float *out)
{
    float *x = rand_floats((size_t) ROWS * 3 * D, -1, 1, 3000);
    float *dy = rand_floats((size_t) ROWS * 3 * D, -1, 1, 3001);
    float *w = rand_floats(D, 0.5f, 1.5f, 3002), *mean = out, *rstd = out + ROWS;
    size_t used = 2 * ROWS;
    float *y = out + used;
    be->nn->layernorm_fwd(be, y, D, mean, rstd, x, 3 * D, w, w, ROWS, D, 1e-6f);
    used += (size_t) ROWS * D;
    float *dx = out + used, *dw = dx + (size_t) ROWS * D, *db = dw + D;
    memset(dw, 0, sizeof(float) * 2 * D);
    be->nn->layernorm_bwd(be, dx, D, 0.0f, dw, db, dy, 3 * D, x, 3 * D, mean, rstd, w, ROWS, D);
    used += (size_t) ROWS * D + 2 * D;
    float *bg = out + used;
    memset(bg, 0, sizeof(float) * 3 * D);
    be->nn->bias_grad(be, bg, dy, 3 * D, ROWS, 3 * D);
    used += 3 * D;
    float *att = out + used, *probs = att + (size_t) ROWS * D;
    float *scr = malloc(sizeof(float) * be->nn->attention_scratch(B, T, H, DH));
    be->nn->attention_fwd(be, att, D, probs, x, 3 * D, B, T, H, DH, 0.17f, scr);
    used += (size_t) ROWS * D + (size_t) B * H * T * T;
    float *dqkv = out + used;
    be->nn->attention_bwd(be, dqkv, 3 * D, dy, 3 * D, x, 3 * D, probs, B, T, H, DH, 0.17f, scr);
    used += (size_t) ROWS * 3 * D;
    float *dgam = out + used, *dres = dgam + D, s[B] = {1.25f, 0.0f, 1.25f, 2, 2, 0, 1, 1};
    memset(dgam, 0, sizeof(float) * D);
    be->nn->residual_ls_bwd(be, dres, D, dgam, dy, 3 * D, x, 3 * D, w, s, B, T, D);
    used += D + (size_t) ROWS * D;
    float *dcls = out + used, *dpos = dcls + D, *dmt = dpos + (size_t) T * D, *demb = dmt + D;
    memset(dcls, 0, sizeof(float) * (size_t) (T + 2) * D);
    uint8_t mask[B * N];
    for (int i = 0; i < B * N; i++) mask[i] = (uint8_t) (i % 3 == 0);
    be->nn->tokens_bwd(be, demb, D, dcls, dpos, D, dmt, dy, 3 * D, mask, B, N, D);
    used += (size_t) (T + 2) * D + (size_t) B * N * D;
    float *dsrc = out + used;
    memset(dsrc, 0, sizeof(float) * 196 * D);
    be->nn->pos_resample_bwd(be, dsrc, D, dy, 3 * D, 14, 16, 16, D);
    used += (size_t) 196 * D;
    float *acc = out + used;
    memset(acc, 0, sizeof(float) * 7 * D);
    int32_t idx[ROWS];
    for (int i = 0; i < ROWS; i++) idx[i] = (i * 5) % 7;
    be->nn->scatter_add_rows(be, acc, D, dy, 3 * D, idx, ROWS, D);
    used += (size_t) 7 * D;
    float *C = out + used; /* a GEMM large enough to be split over threads */
    be->nn->gemm(be, POA_NO_TRANS, POA_TRANS, ROWS, ROWS, D, 1.0f, x, 3 * D, dy, 3 * D, 0.0f, C,
                 ROWS);
    used += (size_t) ROWS * ROWS;
    free(x), free(dy), free(w), free(scr);
    return used;
}

static void test_results_do_not_depend_on_threads(void **state)
{
    (void) state;
    poa_backend *be = cpu_backend();
    const size_t cap = 4u << 20;
    float *one = calloc(cap, sizeof(float)), *many = calloc(cap, sizeof(float));
    const int saved = poa_cpu_get_threads();
    poa_cpu_set_threads(1);
    assert_int_equal(poa_cpu_get_threads(), 1);
    const size_t n1 = run_ops(be, one);
    poa_cpu_set_threads(3); /* more threads than this machine's cores: any split must agree */
    assert_int_equal(poa_cpu_get_threads(), 3);
    const size_t n3 = run_ops(be, many);
    poa_cpu_set_threads(saved);
    assert_true(n1 == n3 && n1 <= cap);
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < n1; i++)
        if (memcmp(&one[i], &many[i], sizeof(float)) != 0 && differ++ == 0) first = i;
    if (differ)
        fprintf(stderr,
                "%zu of %zu values differ between 1 and 3 threads; first at %zu: %.9g vs %.9g\n",
                differ, n1, first, one[first], many[first]);
    assert_int_equal(differ, 0);
    free(one), free(many);
    poa_backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_do_not_depend_on_threads),
    };
    return cmocka_run_group_tests_name("ops_threads", tests, NULL, NULL);
}
