/* test_ops_attention.c — what the CPU backend keeps for the attention backward: its saved
 * buffer holds the softmax probabilities P [B, H, T, T] in fp32 (attention_saved_bytes says
 * so), which must match the naive forward's (large scores included: max subtraction) and be
 * distributions row by row; at T = 197, elastic head subsets inside wider rows, many (image,
 * head) pairs and the AVX-512 kernels' edge shapes (T below, at and past multiples of 16,
 * Dh = 16 … 80).  Every case runs twice: with the kernels the CPU gets by default (AVX-512
 * where it has it) and with the BLAS path forced by POA_CPU_ATTN=blas.  The op's contract
 * (out, dqkv, finite differences, scratch bounds) is tested by tests/ops/test_backend_ops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/cpu/cpu_nn.h"
#include "ops_test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct attn_case {
    int B, T, H, Dh;
    int ldqkv, ldout, lddqkv, lddout;
    float value_range; /* qkv entries uniform in ±value_range */
    float rtol;        /* fp32 scores of magnitude S carry errors ~S·2⁻²⁴, amplified by exp */
} attn_case;

/* The forward's saved buffer: the probabilities P [B, H, T, T] in fp32 (backend.h's CPU
 * choice), against the naive forward's, each row a distribution. */
static void check_attention(const attn_case *k, uint64_t seed)
{
    poa_backend *be = cpu_backend();
    const int B = k->B, T = k->T, H = k->H, Dh = k->Dh, rows = B * T;
    const float scale = 1.0f / sqrtf((float) Dh);
    const size_t nqkv = (size_t) rows * k->ldqkv, nout = (size_t) rows * k->ldout;
    const size_t np = (size_t) B * H * T * T;
    float *qkv = rand_floats(nqkv, -k->value_range, k->value_range, seed);
    float *out = rand_floats(nout, -5, 5, seed + 1), *probs = rand_floats(np, -5, 5, seed + 2);
    double *dqkv_ = to_double(qkv, nqkv), *dout_ = to_double(out, nout), *dp = to_double(probs, np);
    assert_int_equal(be->nn->attention_saved_bytes(be, B, T, H, Dh), sizeof(float) * np);
    void *scratch = poa_xmalloc(be->nn->attention_scratch_bytes(be, B, T, H, Dh) + 1);
    be->nn->attention_fwd(be, ACT(out), k->ldout, probs, ACT(qkv), k->ldqkv, B, T, H, Dh, scale,
                          scratch);
    poa_naive_attention_fwd(dout_, k->ldout, dp, dqkv_, k->ldqkv, B, T, H, Dh, scale);
    char what[160];
    snprintf(what, sizeof what, "attention_fwd probs B=%d T=%d H=%d Dh=%d", B, T, H, Dh);
    assert_true(close_all(what, probs, dp, np, 1e-7, k->rtol));
    for (size_t r = 0; r < (size_t) B * H * T; r++) { /* each row of P is a distribution */
        double s = 0;
        for (int j = 0; j < T; j++) {
            assert_true(probs[r * T + j] >= 0.0f);
            s += probs[r * T + j];
        }
        if (fabs(s - 1) > 1e-5) fprintf(stderr, "probs row %zu sums to %.9g\n", r, s);
        assert_true(fabs(s - 1) <= 1e-5);
    }
    free(qkv), free(out), free(probs), free(scratch), free(dqkv_), free(dout_), free(dp);
    poa_backend_destroy(be);
}

/* T = 197 (224-px crop), two heads of 8, rows wider than the 3·H·Dh used. */
static void test_attention_t197(void **state)
{
    (void) state;
    const attn_case k = {2, 197, 2, 8, 3 * 16 + 5, 16 + 3, 3 * 16 + 2, 16 + 7, 2.0f, 1e-4f};
    check_attention(&k, 1200);
}

/* Elastic width: the first H = 3 of 5 heads of Dh = 4; qkv rows laid out for the active width
 * inside a buffer whose ld is the intact 3·D_max (docs/algorithm.md §3.2). */
static void test_attention_elastic(void **state)
{
    (void) state;
    const attn_case k = {2, 11, 3, 4, 3 * 20, 20, 3 * 20 + 1, 20 + 2, 1.5f, 1e-4f};
    check_attention(&k, 1300);
    const attn_case one = {1, 7, 1, 5, 15, 5, 15, 5, 1.0f, 1e-4f}; /* a single (image, head) pair */
    check_attention(&one, 1310);
}

/* Large scores (|s| up to ~10³, exp would overflow without max subtraction) stay finite and
 * as accurate as fp32 scores allow. */
static void test_attention_large_scores(void **state)
{
    (void) state;
    const attn_case k = {1, 37, 2, 16, 96, 32, 96, 32, 30.0f, 1e-2f};
    check_attention(&k, 1400);
}

/* More (image, head) pairs than the scratch has slots. */
static void test_attention_many_pairs(void **state)
{
    (void) state;
    const attn_case k = {33, 5, 3, 4, 36, 12, 36, 12, 1.0f, 1e-4f};
    check_attention(&k, 1500);
}

/* The AVX-512 kernels' edges: T below 16, at a multiple of 16 and one past (ragged last vector
 * of the score rows, tail row blocks of 1–5 rows), the ViT head widths Dh = 16, 32, 64 and 48,
 * 80 (a ragged count of vectors, a second 64-column chunk); rows of qkv, out, dqkv and dout
 * laid out for H = 3 heads inside wider buffers. */
static void test_attention_kernel_shapes(void **state)
{
    (void) state;
    const int Ts[] = {1, 5, 16, 17, 37, 64, 65};
    const int Dhs[] = {16, 32, 64, 48, 80};
    uint64_t seed = 1600;
    for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++)
        for (size_t j = 0; j < sizeof Dhs / sizeof *Dhs; j++) {
            const int T = Ts[i], Dh = Dhs[j], w = 3 * Dh;
            const attn_case k = {2, T, 3, Dh, 3 * w + 3, w + 1, 3 * w + 5, w + 2, 1.5f, 1e-4f};
            check_attention(&k, seed);
            seed += 10;
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_t197),          cmocka_unit_test(test_attention_elastic),
        cmocka_unit_test(test_attention_large_scores),  cmocka_unit_test(test_attention_many_pairs),
        cmocka_unit_test(test_attention_kernel_shapes),
    };
    fprintf(stderr, "attention kernels: %s\n", poa_cpu_attention_impl());
    int fails = cmocka_run_group_tests_name("ops_attention", tests, NULL, NULL);
    setenv("POA_CPU_ATTN", "blas", 1);
    fprintf(stderr, "attention kernels: %s (POA_CPU_ATTN=blas)\n", poa_cpu_attention_impl());
    fails += cmocka_run_group_tests_name("ops_attention_blas", tests, NULL, NULL);
    return fails;
}
