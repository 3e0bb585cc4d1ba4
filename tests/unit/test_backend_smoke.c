/* test_backend_smoke.c — the backend factory, the op-completeness check and the CPU backend's
 * memory/BLAS ops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"

#include <math.h>
#include <string.h>

static void test_factory(void **state)
{
    (void) state;
    char err[256];
    poa_backend *be = poa_backend_create("cpu", err, sizeof err);
    assert_non_null(be);
    assert_string_equal(be->name, "cpu");
    poa_backend_destroy(be);
    assert_null(poa_backend_create("tpu", err, sizeof err));
    assert_non_null(strstr(err, "unknown backend 'tpu'"));
}

static void test_gemm_matches_naive_with_views(void **state)
{
    (void) state;
    char err[256];
    poa_backend *be = poa_backend_create("cpu", err, sizeof err);
    enum { M = 5, N = 7, K = 6, LDA = 9, LDB = 8, LDC = 10 };
    float *A = be->nn->alloc(be, sizeof(float) * K * LDA);
    float *B = be->nn->alloc(be, sizeof(float) * K * LDB);
    float *C = be->nn->alloc(be, sizeof(float) * M * LDC);
    float hA[K * LDA], hB[K * LDB], hC[M * LDC], ref[M * LDC];
    for (int i = 0; i < K * LDA; i++) hA[i] = (float) ((i * 7) % 13) / 13.0f - 0.5f;
    for (int i = 0; i < K * LDB; i++) hB[i] = (float) ((i * 5) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < M * LDC; i++) hC[i] = (float) i;
    be->nn->upload(be, A, hA, sizeof hA);
    be->nn->upload(be, B, hB, sizeof hB);
    be->nn->upload(be, C, hC, sizeof hC);
    /* C = 0.5 * Aᵀ B + 2 C with A stored [K, M] in a wider buffer */
    be->nn->gemm(be, POA_TRANS, POA_NO_TRANS, M, N, K, 0.5f, A, LDA, B, LDB, 2.0f, C, LDC);
    memcpy(ref, hC, sizeof ref);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double) hA[k * LDA + i] * hB[k * LDB + j];
            ref[i * LDC + j] = (float) (0.5 * s + 2.0 * hC[i * LDC + j]);
        }
    be->nn->download(be, hC, C, sizeof hC);
    for (int i = 0; i < M * LDC; i++) assert_float_equal(hC[i], ref[i], 1e-5);
    be->nn->free(be, A);
    be->nn->free(be, B);
    be->nn->free(be, C);
    poa_backend_destroy(be);
}

static void test_axpy_scale_reductions(void **state)
{
    (void) state;
    char err[256];
    poa_backend *be = poa_backend_create("cpu", err, sizeof err);
    float x[4] = {1, 2, 3, 4}, y[4] = {1, 1, 1, 1};
    be->nn->axpy(be, y, 2.0f, x, 4);
    assert_float_equal(y[3], 9.0f, 0);
    be->nn->scale(be, y, 0.5f, 4);
    assert_float_equal(y[0], 1.5f, 0);
    assert_float_equal(be->train->sum_squares(be, x, 4), 30.0, 0);
    assert_true(be->train->all_finite(be, x, 4));
    x[2] = NAN;
    assert_false(be->train->all_finite(be, x, 4));
    x[2] = INFINITY;
    assert_false(be->train->all_finite(be, x, 4));
    poa_backend_destroy(be);
}

/* The CPU backend implements every op; a table with holes is reported op by op, in table order,
 * the count exact even when fewer names fit. */
static void test_missing_ops(void **state)
{
    (void) state;
    char err[256];
    poa_backend *be = poa_backend_create("cpu", err, sizeof err);
    const char *names[4] = {NULL};
    assert_int_equal(poa_backend_missing_ops(be->nn, be->train, names, 4), 0);
    assert_null(names[0]);
    poa_nn_ops nn = *be->nn;
    poa_train_ops train = *be->train;
    nn.gemm_bias = NULL, nn.scale = NULL, train.ema = NULL;
    assert_int_equal(poa_backend_missing_ops(&nn, &train, names, 4), 3);
    assert_string_equal(names[0], "gemm_bias");
    assert_string_equal(names[1], "scale");
    assert_string_equal(names[2], "ema");
    assert_int_equal(poa_backend_missing_ops(&nn, &train, names, 1), 3);
    assert_int_equal(poa_backend_missing_ops(&nn, &train, NULL, 0), 3);
    poa_backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factory),
        cmocka_unit_test(test_missing_ops),
        cmocka_unit_test(test_gemm_matches_naive_with_views),
        cmocka_unit_test(test_axpy_scale_reductions),
    };
    return cmocka_run_group_tests_name("backend_smoke", tests, NULL, NULL);
}
