/* test_ops_threads.c — the CPU ops give bit-identical results whatever the thread count
 * (poa_cpu_set_threads): reductions over rows are owned by column blocks and summed in row
 * order, so a run is reproducible on nodes with different core counts; and a GEMM's rows do not
 * depend on how many rows share the call. */
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

/* The GEMM guarantees hold for the backend's AVX-512 GEMM.  The BLAS fallback (CPUs without
 * AVX-512F, POA_CPU_GEMM=blas) splits a GEMM into one OpenBLAS call per thread, and OpenBLAS
 * picks kernels by shape, so there a row can differ in the last bits with the thread count
 * (measured with OpenBLAS's Haswell kernels: 6723 of the 296 × 296 × 384 product's values) and
 * with the number of rows in the call (1 … 74 rows against 296, SkylakeX kernels). */
static int avx512_gemm(void)
{
    return strcmp(poa_cpu_gemm_impl(), "avx512") == 0;
}

/* Every op with a cross-row reduction or a split, run once; outputs appended to `out`. */
static size_t run_ops(poa_backend *be, float *out)
{
    float *x = rand_floats((size_t) ROWS * 3 * D, -1, 1, 3000);
    float *dy = rand_floats((size_t) ROWS * 3 * D, -1, 1, 3001);
    float *w = rand_floats(D, 0.5f, 1.5f, 3002), *mean = out, *rstd = out + ROWS;
    size_t used = 2 * ROWS;
    float *y = out + used;
    be->nn->layernorm_fwd(be, ACT(y), D, mean, rstd, ACT(x), 3 * D, w, w, ROWS, D, 1e-6f);
    used += (size_t) ROWS * D;
    float *dx = out + used, *dw = dx + (size_t) ROWS * D, *db = dw + D;
    memset(dw, 0, sizeof(float) * 2 * D);
    be->nn->layernorm_bwd(be, ACT(dx), D, 0.0f, dw, db, ACT(dy), 3 * D, ACT(x), 3 * D, mean, rstd,
                          w, ROWS, D);
    used += (size_t) ROWS * D + 2 * D;
    float *bg = out + used;
    memset(bg, 0, sizeof(float) * 3 * D);
    be->nn->bias_grad(be, bg, dy, 3 * D, ROWS, 3 * D);
    used += 3 * D;
    float *att = out + used, *probs = att + (size_t) ROWS * D;
    float *scr = malloc(be->nn->attention_scratch_bytes(be, B, T, H, DH));
    be->nn->attention_fwd(be, ACT(att), D, probs, ACT(x), 3 * D, B, T, H, DH, 0.17f, scr);
    used += (size_t) ROWS * D + (size_t) B * H * T * T;
    float *dqkv = out + used;
    be->nn->attention_bwd(be, ACT(dqkv), 3 * D, ACT(dy), 3 * D, ACT(x), 3 * D, probs, B, T, H, DH,
                          0.17f, scr);
    used += (size_t) ROWS * 3 * D;
    float *dgam = out + used, *dres = dgam + D, s[B] = {1.25f, 0.0f, 1.25f, 2, 2, 0, 1, 1};
    memset(dgam, 0, sizeof(float) * D);
    be->nn->residual_ls_bwd(be, ACT(dres), D, dgam, ACT(dy), 3 * D, ACT(x), 3 * D, w, s, B, T, D);
    used += D + (size_t) ROWS * D;
    float *dcls = out + used, *dpos = dcls + D, *dmt = dpos + (size_t) T * D, *demb = dmt + D;
    memset(dcls, 0, sizeof(float) * (size_t) (T + 2) * D);
    uint8_t mask[B * N];
    for (int i = 0; i < B * N; i++) mask[i] = (uint8_t) (i % 3 == 0);
    be->nn->tokens_bwd(be, ACT(demb), D, dcls, dpos, D, dmt, ACT(dy), 3 * D, mask, B, N, D);
    used += (size_t) (T + 2) * D + (size_t) B * N * D;
    float *dsrc = out + used;
    memset(dsrc, 0, sizeof(float) * 196 * D);
    be->nn->pos_resample_bwd(be, dsrc, D, dy, 3 * D, 14, 16, 16, D);
    used += (size_t) 196 * D;
    float *acc = out + used;
    memset(acc, 0, sizeof(float) * 7 * D);
    int32_t idx[ROWS];
    for (int i = 0; i < ROWS; i++) idx[i] = (i * 5) % 7;
    be->nn->act_scatter_add_rows(be, ACT(acc), D, ACT(dy), 3 * D, idx, ROWS, D);
    used += (size_t) 7 * D;
    if (avx512_gemm()) {
        float *C = out + used; /* a GEMM large enough to be split over threads */
        be->nn->gemm(be, POA_NO_TRANS, POA_TRANS, ROWS, ROWS, D, 1.0f, x, 3 * D, dy, 3 * D, 0.0f, C,
                     ROWS);
        used += (size_t) ROWS * ROWS;
        /* several K blocks (K = 1152) and N blocks (N = 800); and 5 rows, where the B
         * micro-panels are shared out over the threads too */
        float *wide = rand_floats((size_t) 3 * D * 800, -1, 1, 3003);
        float *C2 = out + used, *C3 = C2 + (size_t) ROWS * 800;
        be->nn->gemm(be, POA_NO_TRANS, POA_NO_TRANS, ROWS, 800, 3 * D, 1.0f, x, 3 * D, wide, 800,
                     0.0f, C2, 800);
        be->nn->gemm(be, POA_NO_TRANS, POA_NO_TRANS, 5, 800, 3 * D, 1.0f, x, 3 * D, wide, 800, 0.0f,
                     C3, 800);
        used += (size_t) (ROWS + 5) * 800;
        free(wide);
    }
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

/* A row of a GEMM comes out the same whatever the number of rows (images × tokens) in the call:
 * data-parallel runs (fewer images per call) are compared with single-rank ones. */
static void test_gemm_rows_do_not_depend_on_batch(void **state)
{
    (void) state;
    if (!avx512_gemm()) skip(); /* see avx512_gemm */
    poa_backend *be = cpu_backend();
    const int K = 3 * D, Nc = 1536, rows[] = {ROWS, 2 * T, T, 13, 1};
    float *x = rand_floats((size_t) ROWS * K, -1, 1, 4000);
    float *w = rand_floats((size_t) Nc * K, -1, 1, 4001);
    float *all = malloc(sizeof(float) * (size_t) ROWS * Nc),
          *part = malloc(sizeof(float) * Nc * T * 2);
    for (int tb = 0; tb < 2; tb++) {
        const int ldb = tb ? K : Nc;
        be->nn->gemm(be, POA_NO_TRANS, tb, ROWS, Nc, K, 1.0f, x, K, w, ldb, 0.0f, all, Nc);
        for (size_t r = 1; r < sizeof rows / sizeof rows[0]; r++) {
            be->nn->gemm(be, POA_NO_TRANS, tb, rows[r], Nc, K, 1.0f, x, K, w, ldb, 0.0f, part, Nc);
            size_t differ = 0;
            for (size_t i = 0; i < (size_t) rows[r] * Nc; i++)
                differ += memcmp(&all[i], &part[i], sizeof(float)) != 0;
            if (differ)
                fprintf(stderr,
                        "gemm tb=%d: %zu of the first %d rows differ from the %d-row call\n", tb,
                        differ, rows[r], ROWS);
            assert_int_equal(differ, 0);
        }
    }
    free(x), free(w), free(all), free(part);
    poa_backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_do_not_depend_on_threads),
        cmocka_unit_test(test_gemm_rows_do_not_depend_on_batch),
    };
    return cmocka_run_group_tests_name("ops_threads", tests, NULL, NULL);
}
