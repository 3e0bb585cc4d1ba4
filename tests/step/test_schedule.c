/* test_schedule.c — the schedules of docs/algorithm.md §8.4 at its check values
 * (ViT-L recipe, T = 276,800) and the TINY layout of §12.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "train/schedule.h"
#include "tests/step/step_test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Absolute comparison within half a unit of the last digit docs/algorithm.md prints. */
static void expect_printed(const char *what, long long it, double got, const char *printed)
{
    double want = strtod(printed, NULL);
    const char *dot = strchr(printed, '.'), *e = strpbrk(printed, "eE");
    int decimals = dot ? (int) ((e ? e : printed + strlen(printed)) - dot - 1) : 0;
    int exponent = e ? atoi(e + 1) : 0;
    double tol = 0.5 * pow(10.0, exponent - decimals);
    if (fabs(got - want) > tol)
        fail_msg("%s(%lld) = %.12g, docs/algorithm.md §8.4 prints %s (tolerance %.1e)", what, it,
                 got, printed, tol);
}

static void expect(const char *what, long long it, double got, double want, double rel)
{
    char buf[96];
    snprintf(buf, sizeof buf, "%s(%lld)", what, it);
    assert_true(check_scalar(buf, got, want, rel));
}

static void test_official_check_values(void **state)
{
    (void) state;
    poa_schedule_hparams h = poa_schedule_hparams_official();
    assert_true(fabs(h.lr - 5e-3) < 1e-18);
    poa_schedules s;
    poa_schedules_init(&s, &h);
    const long long T = 276800;
    assert_int_equal(s.lr.cos_len, 354871 - 8000);
    assert_int_equal(s.wd.cos_len, 354871);
    /* the check values of docs/algorithm.md §8.4, as printed there ("" = not given) */
    struct {
        long long it;
        const char *lr, *wd, *m, *tt;
    } rows[] = {
        {0, "0", "0.04", "0.992", "0.04"},
        {7999, "5.0e-3", "", "", ""},
        {8000, "5.0e-3", "", "", ""},
        {23999, "", "", "", "0.07"},
        {24000, "4.97390e-3", "0.044048", "0.9920888", "0.07"},
        {100000, "4.18448e-3", "0.106047", "0.9934494", "0.07"},
        {200000, "2.093307e-3", "0.255718", "0.9967338", "0.07"},
        {T - 1, "6.1697e-4", "0.358692", "0.998994", "0.07"},
        {T, "2e-5", "0.4", "0.9999", "0.07"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        poa_schedule_values v = poa_schedules_at(&s, rows[i].it);
        if (*rows[i].lr) expect_printed("lr", rows[i].it, v.lr, rows[i].lr);
        if (*rows[i].wd) expect_printed("wd", rows[i].it, v.wd, rows[i].wd);
        if (*rows[i].m) expect_printed("momentum", rows[i].it, v.momentum, rows[i].m);
        if (*rows[i].tt) expect_printed("teacher_temp", rows[i].it, v.teacher_temp, rows[i].tt);
    }
    assert_true(poa_schedules_at(&s, 0).lr == 0.0);
    /* warm-ups are numpy.linspace: both ends included */
    expect("lr", 1, poa_schedules_at(&s, 1).lr, 5e-3 / 7999, 1e-12);
    expect("teacher_temp", 1, poa_schedules_at(&s, 1).teacher_temp, 0.04 + 0.03 / 23999, 1e-12);
    /* last layer frozen for the first epoch only; iBOT from iteration 24,000 */
    assert_true(poa_schedules_at(&s, 799).last_layer_lr == 0);
    assert_true(poa_schedules_at(&s, 800).last_layer_lr == poa_schedules_at(&s, 800).lr);
    assert_true(poa_schedules_at(&s, 800).lr > 0);
    assert_false(poa_schedules_at(&s, 23999).ibot_active);
    assert_true(poa_schedules_at(&s, 24000).ibot_active);
}

static void test_tiny_layout(void **state)
{
    (void) state;
    /* docs/algorithm.md §12.1: E = 4 × I = 4, warm-up 1 epoch, τ_t warm-up 2 epochs, iBOT from
     * it = 8 */
    poa_schedule_hparams h = poa_schedule_hparams_official();
    h.epoch_length = 4, h.epochs = 4, h.warmup_epochs = 1, h.warmup_teacher_temp_epochs = 2;
    h.ibot_activate_epochs = 2;
    poa_schedules s;
    poa_schedules_init(&s, &h);
    assert_int_equal(s.lr.cos_len, 16);
    assert_int_equal(s.wd.cos_len, 20);
    assert_int_equal(s.momentum.cos_len, 20);
    expect("lr", 3, poa_schedules_at(&s, 3).lr, h.lr, 1e-15);
    expect("lr", 4, poa_schedules_at(&s, 4).lr, h.lr, 1e-15); /* cos(0) */
    double want = h.min_lr + 0.5 * (h.lr - h.min_lr) * (1 + cos(M_PI * 11 / 16));
    expect("lr", 15, poa_schedules_at(&s, 15).lr, want, 1e-15);
    want = 0.4 + 0.5 * (0.04 - 0.4) * (1 + cos(M_PI * 15 / 20));
    expect("wd", 15, poa_schedules_at(&s, 15).wd, want, 1e-15);
    expect("teacher_temp", 7, poa_schedules_at(&s, 7).teacher_temp, 0.07, 1e-15);
    assert_true(poa_schedules_at(&s, 3).last_layer_lr == 0);
    assert_false(poa_schedules_at(&s, 7).ibot_active);
    assert_true(poa_schedules_at(&s, 8).ibot_active);
}

static void test_scaled_lr(void **state)
{
    (void) state;
    assert_true(fabs(poa_scaled_lr(0.004, "sqrt_wrt_1024", 1600) - 5e-3) < 1e-15);
    assert_true(fabs(poa_scaled_lr(0.004, "linear_wrt_1024", 1600) - 6.25e-3) < 1e-15);
    assert_true(poa_scaled_lr(0.004, "none", 1600) == 0.004);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_official_check_values),
        cmocka_unit_test(test_tiny_layout),
        cmocka_unit_test(test_scaled_lr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
