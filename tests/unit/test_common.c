/* test_common.c — unit tests of common/: status codes, error records, Philox RNG, timers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/poa_error.h"
#include "common/rng.h"
#include "common/timer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_status_names_and_exit_codes(void **state)
{
    (void) state;
    for (int s = 0; s < POA_STATUS_COUNT; s++) {
        assert_non_null(poa_status_name((poa_status) s));
        assert_string_not_equal(poa_status_name((poa_status) s), "unknown status");
    }
    assert_string_equal(poa_status_name((poa_status) 999), "unknown status");
    assert_int_equal(poa_status_exit_code(POA_OK), POA_EXIT_OK);
    assert_int_equal(poa_status_exit_code(POA_ERR_CONFIG), POA_EXIT_USAGE);
    assert_int_equal(poa_status_exit_code(POA_ERR_FORMAT), POA_EXIT_DATA);
    assert_int_equal(poa_status_exit_code(POA_ERR_IO), POA_EXIT_IO);
    assert_int_equal(poa_status_exit_code(POA_ERR_INTERRUPT), POA_EXIT_REQUEUE);
}

static void test_err_set_and_prefix(void **state)
{
    (void) state;
    poa_err e;
    poa_err_clear(&e);
    assert_int_equal(e.code, POA_OK);
    assert_int_equal(poa_err_set(&e, POA_ERR_IO, "cannot open %s", "x.h5"), POA_ERR_IO);
    assert_string_equal(e.msg, "cannot open x.h5");
    poa_err_prefix(&e, "checkpoint %d", 3);
    assert_string_equal(e.msg, "checkpoint 3: cannot open x.h5");
    assert_int_equal(e.code, POA_ERR_IO);
    /* NULL records are allowed */
    assert_int_equal(poa_err_set(NULL, POA_ERR_ARG, "ignored"), POA_ERR_ARG);
}

/* Known-answer vectors of Philox4x32-10 (Random123 kat_vectors). */
static void test_philox_known_answers(void **state)
{
    (void) state;
    poa_philox4 c0 = {{0, 0, 0, 0}};
    poa_philox4 r0 = poa_philox4x32_10(c0, 0, 0);
    assert_int_equal(r0.v[0], 0x6627e8d5u);
    assert_int_equal(r0.v[1], 0xe169c58du);
    assert_int_equal(r0.v[2], 0xbc57ac4cu);
    assert_int_equal(r0.v[3], 0x9b00dbd8u);
    poa_philox4 c1 = {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}};
    poa_philox4 r1 = poa_philox4x32_10(c1, 0xffffffffu, 0xffffffffu);
    assert_int_equal(r1.v[0], 0x408f276du);
    assert_int_equal(r1.v[1], 0x41c83b0eu);
    assert_int_equal(r1.v[2], 0xa20bc7c6u);
    assert_int_equal(r1.v[3], 0x6d5451fdu);
    poa_philox4 c2 = {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
    poa_philox4 r2 = poa_philox4x32_10(c2, 0xa4093822u, 0x299f31d0u);
    assert_int_equal(r2.v[0], 0xd16cfe09u);
    assert_int_equal(r2.v[1], 0x94fdccebu);
    assert_int_equal(r2.v[2], 0x5001e420u);
    assert_int_equal(r2.v[3], 0x24126ea1u);
}

/* The sequential reader and the random-access block function give the same stream, so a GPU
 * thread computing element i sees what the CPU sees. */
static void test_stream_random_access_matches_sequential(void **state)
{
    (void) state;
    poa_rng r;
    poa_rng_init(&r, 1234567890123ull, 3, POA_RNG_AUGMENT, 0);
    for (uint64_t i = 0; i < 100; i++) {
        poa_philox4 b = poa_rng_block(1234567890123ull, 3, POA_RNG_AUGMENT, i);
        for (int k = 0; k < 4; k++) assert_int_equal(poa_rng_u32(&r), b.v[k]);
    }
    /* starting mid-stream */
    poa_rng s;
    poa_rng_init(&s, 1234567890123ull, 3, POA_RNG_AUGMENT, 50);
    poa_philox4 b50 = poa_rng_block(1234567890123ull, 3, POA_RNG_AUGMENT, 50);
    assert_int_equal(poa_rng_u32(&s), b50.v[0]);
}

static void test_streams_differ_by_rank_and_purpose(void **state)
{
    (void) state;
    poa_philox4 a = poa_rng_block(7, 0, POA_RNG_MASK, 0);
    poa_philox4 b = poa_rng_block(7, 1, POA_RNG_MASK, 0);
    poa_philox4 c = poa_rng_block(7, 0, POA_RNG_DROPPATH, 0);
    poa_philox4 d = poa_rng_block(8, 0, POA_RNG_MASK, 0);
    assert_memory_not_equal(&a, &b, sizeof a);
    assert_memory_not_equal(&a, &c, sizeof a);
    assert_memory_not_equal(&a, &d, sizeof a);
}

static void test_uniform_moments_and_range(void **state)
{
    (void) state;
    poa_rng r;
    poa_rng_init(&r, 42, 0, POA_RNG_TEST, 0);
    const int n = 200000;
    double s = 0, s2 = 0, ns = 0, ns2 = 0;
    for (int i = 0; i < n; i++) {
        double u = poa_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        s += u;
        s2 += u * u;
        double z = poa_rng_normal(&r);
        ns += z;
        ns2 += z * z;
    }
    assert_true(fabs(s / n - 0.5) < 0.005);
    assert_true(fabs(s2 / n - 1.0 / 3.0) < 0.005);
    assert_true(fabs(ns / n) < 0.01);
    assert_true(fabs(ns2 / n - 1.0) < 0.02);
    /* float conversion stays below 1 even for the largest word */
    assert_true(poa_u32_to_unit_float(0xffffffffu) < 1.0f);
    assert_true(poa_u32x2_to_unit_double(0xffffffffu, 0xffffffffu) < 1.0);
}

static void test_below_and_shuffle(void **state)
{
    (void) state;
    poa_rng r;
    poa_rng_init(&r, 9, 0, POA_RNG_TEST, 0);
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++) {
        uint32_t k = poa_rng_below(&r, 7);
        assert_true(k < 7);
        hist[k]++;
    }
    for (int k = 0; k < 7; k++) assert_true(abs(hist[k] - 10000) < 500);

    uint32_t a[100], b[100];
    for (int i = 0; i < 100; i++) a[i] = b[i] = (uint32_t) i;
    poa_rng r1, r2;
    poa_rng_init(&r1, 5, 2, POA_RNG_SAMPLER, 0);
    poa_rng_init(&r2, 5, 2, POA_RNG_SAMPLER, 0);
    poa_rng_shuffle_u32(&r1, a, 100);
    poa_rng_shuffle_u32(&r2, b, 100);
    assert_memory_equal(a, b, sizeof a); /* deterministic */
    int seen[100] = {0}, moved = 0;
    for (int i = 0; i < 100; i++) {
        seen[a[i]]++;
        moved += a[i] != (uint32_t) i;
    }
    for (int i = 0; i < 100; i++) assert_int_equal(seen[i], 1); /* a permutation */
    assert_true(moved > 50);
}

static void test_timer_monotonic(void **state)
{
    (void) state;
    double t0 = poa_now();
    poa_stopwatch sw = {0};
    poa_stopwatch_start(&sw);
    volatile double x = 0;
    for (int i = 0; i < 1000000; i++) x += i;
    double dt = poa_stopwatch_stop(&sw);
    assert_true(dt >= 0);
    assert_true(poa_now() >= t0);
    assert_int_equal(sw.count, 1);
    assert_true(sw.total == dt);
}

static void test_log_rank_filter(void **state)
{
    (void) state;
    poa_log_init(1, 4, 0);
    assert_false(poa_log_speaks());
    poa_log_init(1, 4, 1);
    assert_true(poa_log_speaks());
    poa_log_init(0, 1, 0);
    assert_true(poa_log_speaks());
    assert_int_equal(poa_log_rank(), 0);
    assert_int_equal(poa_log_world_size(), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names_and_exit_codes),
        cmocka_unit_test(test_err_set_and_prefix),
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_stream_random_access_matches_sequential),
        cmocka_unit_test(test_streams_differ_by_rank_and_purpose),
        cmocka_unit_test(test_uniform_moments_and_range),
        cmocka_unit_test(test_below_and_shuffle),
        cmocka_unit_test(test_timer_monotonic),
        cmocka_unit_test(test_log_rank_filter),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
