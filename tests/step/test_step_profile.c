/* test_step_profile.c — the per-op profiler (src/backend/backend_profile.h) on the CPU backend:
 * POA steps with it attached give bit-identical losses, parameters and teacher to steps without
 * it (every wrapper passes its arguments through unchanged) and count the step's ops; a host
 * clock times each call on that clock; calls past the event pool are counted as untimed; table
 * entries the backend leaves NULL stay NULL; an op a backend implements through its own tables
 * counts once; detaching restores the tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "backend/backend_profile.h"
#include "tests/step/step_test_batch.h"
#include "train/step.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static poa_backend *be;
static poa_model model;

static int setup(void **state)
{
    (void) state;
    return tiny_cpu_fixture_setup(&be, &model);
}

static int teardown(void **state)
{
    (void) state;
    tiny_cpu_fixture_teardown(be, &model);
    return 0;
}

/* poa_profile_report's text (printed too, for the log); the caller frees it. */
static char *report_text(const poa_profile *prof, double step_seconds, int top_shapes)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    poa_profile_report(prof, f, step_seconds, top_shapes);
    fclose(f);
    printf("%s", buf);
    return buf;
}

enum { ITERS = 3 };

/* ITERS steps of the tiny model from the same seeds; the losses and the final student and
 * teacher into the arguments; with `prof`, a profiler is attached after initialisation. */
static void run_steps(double *losses, float *params, float *teacher, poa_profile **prof)
{
    poa_step_config cfg = poa_step_config_official(&model, 2, 1, 1);
    cfg.sched.epoch_length = 2, cfg.sched.epochs = 4, cfg.sched.warmup_epochs = 1;
    cfg.sched.warmup_teacher_temp_epochs = 1, cfg.sched.ibot_activate_epochs = 0;
    cfg.seed = 3;
    poa_step *st = poa_step_create(be, &model, &cfg, NULL, NULL);
    poa_step_init_params(st, 7);
    test_batch tb;
    test_batch_make(&tb, be, &model, 2, 0, 1, 1, 9);
    if (prof) *prof = poa_profile_attach(be, 0, NULL);
    for (int it = 0; it < ITERS; it++) {
        poa_step_report r;
        tb.b.it = it;
        assert_int_equal(poa_step_run(st, &tb.b, &r), POA_OK);
        losses[it] = r.loss;
        if (prof) poa_profile_collect(*prof);
    }
    const size_t bytes = sizeof(float) * model.table.total;
    be->iface->download(be, params, poa_step_params(st), bytes);
    be->iface->download(be, teacher, poa_step_teacher(st), bytes);
    test_batch_free(&tb, be);
    poa_step_destroy(st);
}

static void test_step_unchanged_and_counted(void **state)
{
    (void) state;
    const size_t n = model.table.total;
    double l0[ITERS], l1[ITERS];
    float *p0 = malloc(sizeof(float) * n), *p1 = malloc(sizeof(float) * n);
    float *t0 = malloc(sizeof(float) * n), *t1 = malloc(sizeof(float) * n);
    const poa_nn_ops *nn = be->nn;
    const poa_train_ops *train = be->train;
    const poa_backend_iface *iface = be->iface;
    run_steps(l0, p0, t0, NULL);
    poa_profile *prof = NULL;
    run_steps(l1, p1, t1, &prof);
    assert_non_null(prof);
    assert_memory_equal(l0, l1, sizeof l0);
    assert_memory_equal(p0, p1, sizeof(float) * n);
    assert_memory_equal(t0, t1, sizeof(float) * n);

    /* every step: one AdamW and one EMA pass, GEMMs, LayerNorms and attentions of three branches */
    assert_true(poa_profile_calls_per_step(prof) > 100);
    assert_int_equal(poa_profile_untimed(prof), 0);
    assert_true(poa_profile_op_ms(prof, "act_gemm_bias") > 0);
    assert_true(poa_profile_op_ms(prof, "attention_fwd") > 0);
    assert_true(poa_profile_op_ms(prof, "layernorm_bwd") > 0);
    assert_true(poa_profile_op_ms(prof, "adamw") > 0);
    assert_true(poa_profile_op_ms(prof, "no_such_op") < 0);

    char *buf = report_text(prof, 0.5, 5);
    assert_non_null(strstr(buf, "profile: 3 step(s)"));
    assert_non_null(strstr(buf, "act_gemm_bias"));
    assert_non_null(strstr(buf, "adamw                             1.0"));
    assert_non_null(strstr(buf, "outside ops"));
    assert_non_null(strstr(buf, "GEMM shapes, longest first (5 of"));
    free(buf);
    poa_profile_detach(prof);
    assert_ptr_equal(be->nn, nn);
    assert_ptr_equal(be->train, train);
    assert_ptr_equal(be->iface, iface);
    free(p0), free(p1), free(t0), free(t1);
}

/* A clock that advances 1 ms per reading: each timed call takes exactly 1 ms on it. */
static double fake_now;
static double fake_clock(void)
{
    return fake_now += 1e-3;
}

static void test_host_clock(void **state)
{
    (void) state;
    float *x = be->iface->alloc(be, sizeof(float) * 64),
          *y = be->iface->alloc(be, sizeof(float) * 64);
    be->iface->zero(be, x, sizeof(float) * 64);
    poa_profile *prof = poa_profile_attach(be, 0, fake_clock);
    for (int i = 0; i < 3; i++) be->nn->gelu_fwd(be, y, x, 64);
    be->nn->gemm(be, POA_NO_TRANS, POA_TRANS, 4, 4, 4, 1.0f, x, 4, x, 4, 0.0f, y, 4);
    poa_profile_collect(prof);
    assert_true(fabs(poa_profile_op_ms(prof, "gelu_fwd") - 3.0) < 1e-9);
    assert_true(fabs(poa_profile_op_ms(prof, "gemm") - 1.0) < 1e-9);
    assert_true(poa_profile_calls_per_step(prof) == 4.0);
    char *buf = report_text(prof, 0, 1);
    /* 2·4·4·4 = 128 FLOP in 1 ms: 1.28e-7 TFLOP/s */
    assert_non_null(strstr(buf, "gemm                 NT M=4      N=4      K=4"));
    assert_non_null(strstr(buf, "host clock"));
    free(buf);
    poa_profile_detach(prof);
    be->iface->free(be, x), be->iface->free(be, y);
}

static void test_pool_overflow(void **state)
{
    (void) state;
    float *x = be->iface->alloc(be, sizeof(float) * 16);
    be->iface->zero(be, x, sizeof(float) * 16);
    poa_profile *prof = poa_profile_attach(be, 2, NULL);
    for (int i = 0; i < 5; i++) be->nn->scale(be, x, 0.5f, 16);
    poa_profile_collect(prof);
    assert_int_equal(poa_profile_untimed(prof), 3);
    assert_true(poa_profile_calls_per_step(prof) == 2.0);
    for (int i = 0; i < 2; i++) be->nn->scale(be, x, 0.5f, 16); /* the pool is free again */
    poa_profile_collect(prof);
    assert_int_equal(poa_profile_untimed(prof), 3);
    poa_profile_detach(prof);
    be->iface->free(be, x);
}

/* A backend's scale implemented through its own table's axpy: one call, the outer one. */
static void scale_via_axpy(poa_backend *b, float *x, float a, size_t n)
{
    b->nn->axpy(b, x, a - 1.0f, x, n);
}

static void test_null_and_nested(void **state)
{
    (void) state;
    poa_nn_ops nn = *be->nn;
    poa_train_ops train = *be->train;
    nn.scale = scale_via_axpy;
    train.koleo = NULL;
    const poa_nn_ops *save_nn = be->nn;
    const poa_train_ops *save_train = be->train;
    be->nn = &nn, be->train = &train;
    float *x = be->iface->alloc(be, sizeof(float) * 8);
    be->iface->zero(be, x, sizeof(float) * 8);
    poa_profile *prof = poa_profile_attach(be, 0, fake_clock);
    assert_null(be->train->koleo);
    assert_non_null(be->train->koleo_scratch_bytes);
    be->nn->scale(be, x, 2.0f, 8);
    poa_profile_collect(prof);
    assert_true(fabs(poa_profile_op_ms(prof, "scale") - 1.0) < 1e-9);
    assert_true(poa_profile_op_ms(prof, "axpy") == 0.0);
    assert_true(poa_profile_calls_per_step(prof) == 1.0);
    poa_profile_detach(prof);
    assert_ptr_equal(be->nn, &nn);
    assert_ptr_equal(be->train, &train);
    be->nn = save_nn, be->train = save_train;
    be->iface->free(be, x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_unchanged_and_counted),
        cmocka_unit_test(test_host_clock),
        cmocka_unit_test(test_pool_overflow),
        cmocka_unit_test(test_null_and_nested),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
