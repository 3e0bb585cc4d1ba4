/* test_step_guard.c — the POA step on the TINY model without a reference: the report (schedule
 * values, sampled sub-networks of each rank group, timings), and the non-finite guard
 * (docs/algorithm.md §8.6): a NaN/Inf in a loss term, in a gradient, or on another rank skips the
 * update and leaves parameters, AdamW moments, step counter and teacher bit-identical; the step's
 * drop-path draws of both variants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "tests/step/step_test_batch.h"
#include "train/step.h"

#include <math.h>
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

static poa_step_config tiny_config(int G)
{
    poa_step_config cfg = poa_step_config_official(&model, 2, G, 1);
    cfg.sched.epoch_length = 4, cfg.sched.epochs = 4, cfg.sched.warmup_epochs = 1;
    cfg.sched.warmup_teacher_temp_epochs = 2, cfg.sched.ibot_activate_epochs = 2;
    cfg.seed = 11;
    return cfg;
}

/* Host copies of everything a skipped step must leave alone. */
typedef struct snapshot {
    float *p, *m, *v, *t;
    long long step;
} snapshot;

static float *host_copy(const float *dev, size_t n)
{
    float *h = malloc(sizeof(float) * n);
    be->iface->download(be, h, dev, sizeof(float) * n);
    return h;
}

static void take(snapshot *s, poa_step *st)
{
    size_t n = model.table.total;
    s->p = host_copy(poa_step_params(st), n);
    s->m = host_copy(poa_step_optim(st)->m, n);
    s->v = host_copy(poa_step_optim(st)->v, n);
    s->t = host_copy(poa_step_teacher(st), n);
    s->step = poa_step_optim(st)->step;
}

static void assert_untouched(const snapshot *s, poa_step *st)
{
    snapshot now;
    take(&now, st);
    size_t bytes = sizeof(float) * model.table.total;
    assert_memory_equal(now.p, s->p, bytes);
    assert_memory_equal(now.m, s->m, bytes);
    assert_memory_equal(now.v, s->v, bytes);
    assert_memory_equal(now.t, s->t, bytes);
    assert_int_equal(now.step, s->step);
    free(now.p), free(now.m), free(now.v), free(now.t);
}

static void release(snapshot *s)
{
    free(s->p), free(s->m), free(s->v), free(s->t);
}

static void test_report_and_groups(void **state)
{
    (void) state;
    poa_step_config cfg = tiny_config(2);
    cfg.first_group = 6; /* as on rank 3 with 2 groups per rank */
    poa_step *st = poa_step_create(be, &model, &cfg, NULL, NULL);
    poa_step_init_params(st, 5);
    test_batch tb;
    test_batch_make(&tb, be, &model, 2, 0, 2, 1, 3);
    poa_step_report r;
    for (long long it = 0; it < 10; it++) {
        tb.b.it = it;
        assert_int_equal(poa_step_run(st, &tb.b, &r), POA_OK);
        assert_true(r.ok && isfinite(r.loss) && r.loss > 0);
        poa_schedule_values want = poa_schedules_at(poa_step_schedules(st), it);
        assert_true(r.sched.lr == want.lr && r.sched.teacher_temp == want.teacher_temp);
        assert_int_equal(r.sched.ibot_active, it >= 8);
        for (int g = 0; g < 2; g++) {
            /* the sub-network of global group 6 + g; never the intact network */
            poa_subnet_sampler smp;
            int widths[8], depths[8], counts[64];
            int nw = poa_model_widths(&model.cfg, widths, 8);
            int nd = poa_model_depths(&model.cfg, depths, 8);
            poa_model_candidate_counts(&model.cfg, 3.0, counts, 64);
            poa_subnet_sampler_init(&smp, widths, nw, depths, nd, counts, cfg.seed);
            int w, d;
            poa_subnet_sampler_pick(&smp, 6 + (uint32_t) g, it, &w, &d);
            poa_subnet_sampler_free(&smp);
            assert_int_equal(r.subnet_width[g], w);
            assert_int_equal(r.subnet_depth[g], d);
            assert_false(w == 64 && d == 4);
            assert_int_equal(r.n_masked[g] > 0, it >= 8);
        }
        assert_true(r.seconds[POA_PHASE_TOTAL] > 0);
        assert_true(r.grad_norm[0] > 0 && r.grad_norm[1] > 0);
    }
    assert_int_equal(poa_step_optim(st)->step, 10);
    char line[2048];
    poa_step_report_format(st, &r, line, sizeof line);
    printf("%s\n", line);
    assert_non_null(strstr(line, "dino_is"));
    test_batch_free(&tb, be);
    poa_step_destroy(st);
}

/* Reduce hook that poisons one gradient entry (a NaN/Inf arriving from the gradient reduce). */
typedef struct poison {
    size_t at;
    float value;
} poison;

static int armed; /* the hooks act only on the step under test */

static void poison_grads(void *ctx, float *grads, size_t n)
{
    poison *p = ctx;
    assert_true(p->at < n);
    if (armed) be->iface->upload(be, grads + p->at, &p->value, sizeof(float));
}

static int other_rank_bad(void *ctx, int flag)
{
    (void) ctx;
    return armed || flag;
}

static void run_failing(poa_step_hooks *hooks, int nan_input, const char *expect)
{
    armed = 0;
    poa_step_config cfg = tiny_config(1);
    poa_step *st = poa_step_create(be, &model, &cfg, NULL, hooks);
    poa_step_init_params(st, 5);
    test_batch tb;
    test_batch_make(&tb, be, &model, 2, 0, 1, 1, 4);
    poa_step_report r;
    tb.b.it = 5;
    assert_int_equal(poa_step_run(st, &tb.b, &r), POA_OK); /* moments are non-zero now */
    if (nan_input) {
        float bad = NAN;
        be->iface->upload(be, tb.glob + 7, &bad, sizeof bad);
    }
    snapshot before;
    take(&before, st);
    armed = 1;
    tb.b.it = 6;
    assert_int_equal(poa_step_run(st, &tb.b, &r), POA_ERR_NONFINITE);
    assert_false(r.ok);
    if (!strstr(r.bad_what, expect))
        fail_msg("report says '%s', expected '%s'", r.bad_what, expect);
    assert_untouched(&before, st);
    release(&before);
    test_batch_free(&tb, be);
    poa_step_destroy(st);
}

static void test_nonfinite_gradient(void **state)
{
    (void) state;
    int i = poa_params_find(&model.table, "blocks.2.mlp.fc1.linear.weight");
    assert_true(i >= 0);
    poison p = {model.table.p[i].offset + 5, INFINITY};
    poa_step_hooks hooks = {.ctx = &p, .reduce_grads = poison_grads};
    run_failing(&hooks, 0, "gradient of backbone.blocks.2.mlp.fc1.linear.weight");
    p.value = NAN;
    p.at = model.table.p[poa_params_find(&model.table, "last_layer1.weight_g")].offset;
    run_failing(&hooks, 0, "gradient of dino_head.last_layer1.weight_g");
}

static void test_nonfinite_loss(void **state)
{
    (void) state;
    run_failing(NULL, 1, "loss term");
}

static void test_nonfinite_elsewhere(void **state)
{
    (void) state;
    poa_step_hooks hooks = {.any = other_rank_bad};
    run_failing(&hooks, 0, "another rank");
}

/* bucket_ready: every bucket once per step, the heads' before the backbone's, all before the
 * reduce; backbone buckets from the final norm down to the embeddings. */
typedef struct bucket_log {
    int order[64], n, reduced_after, progress_calls;
} bucket_log;

static void log_ready(void *ctx, int bucket)
{
    bucket_log *l = ctx;
    assert_true(l->n < 64);
    l->order[l->n++] = bucket;
}

static void log_progress(void *ctx)
{
    ((bucket_log *) ctx)->progress_calls++;
}

static void log_reduce(void *ctx, float *g, size_t n)
{
    (void) g, (void) n;
    bucket_log *l = ctx;
    l->reduced_after = l->n;
}

static void test_bucket_hooks(void **state)
{
    (void) state;
    poa_step_config cfg = tiny_config(2);
    bucket_log log = {{0}, 0, -1, 0};
    poa_step_hooks hooks = {.ctx = &log,
                            .bucket_ready = log_ready,
                            .progress = log_progress,
                            .reduce_grads = log_reduce};
    poa_step *st = poa_step_create(be, &model, &cfg, NULL, &hooks);
    poa_step_init_params(st, 5);
    test_batch tb;
    test_batch_make(&tb, be, &model, 2, 0, 2, 1, 3);
    poa_step_report r;
    tb.b.it = 9;
    assert_int_equal(poa_step_run(st, &tb.b, &r), POA_OK);
    const int nb = model.table.n_buckets, L = model.cfg.max_depth;
    assert_int_equal(log.n, nb);
    assert_int_equal(log.reduced_after, nb);
    assert_true(log.progress_calls >= 4);
    /* model.h: embeddings 0, block i → 1 + i, final norm L + 1, head h → L + 2 + h */
    for (int k = 0; k < nb; k++) assert_int_equal(log.order[k], nb - 1 - k);
    assert_true(log.order[nb - L - 2] == L + 1);
    test_batch_free(&tb, be);
    poa_step_destroy(st);
}

/* The step's own drop-path draws: batch subsets (poa_droppath_draw) or, with
 * drop_path_bernoulli, per-sample masks (poa_droppath_draw_bernoulli), from the stream of the
 * global group at counter (4·it + call) << 24 (src/train/README.md, "Drop path").  Two steps
 * from the same start, one drawing, one given those decisions, end bit-identical; the two
 * variants do not. */
static void run_droppath_steps(int bernoulli, int explicit_decisions, float *params_out)
{
    poa_step_config cfg = tiny_config(2);
    cfg.first_group = 4;
    cfg.drop_path_rate = 0.1;
    cfg.drop_path_bernoulli = bernoulli;
    poa_step *st = poa_step_create(be, &model, &cfg, NULL, NULL);
    poa_step_init_params(st, 5);
    test_batch tb;
    test_batch_make(&tb, be, &model, 2, 0, 2, 1, 3);
    poa_subnet sn[2];
    assert_int_equal(poa_subnet_make(&model.cfg, 48, 3, &sn[0], NULL), POA_OK);
    assert_int_equal(poa_subnet_make(&model.cfg, 32, 2, &sn[1], NULL), POA_OK);
    tb.b.subnets = sn;
    const int B = cfg.B, L = model.cfg.max_depth;
    float *dp[2 * 4];
    for (int i = 0; i < 8; i++) dp[i] = malloc(sizeof(float) * (size_t) L * 2 * 2 * B);
    poa_step_report r;
    for (long long it = 0; it < 3; it++) {
        tb.b.it = it;
        tb.b.droppath = NULL;
        if (explicit_decisions) {
            for (int g = 0; g < 2; g++)
                for (int call = 0; call < 4;
                     call++) { /* IS-global, IS-local, ES-global, ES-local */
                    const int depth = call < 2 ? L : sn[g].depth, n = call % 2 ? B : 2 * B;
                    const uint64_t stream = ((uint64_t) it * 4 + (uint64_t) call) << 24;
                    (bernoulli ? poa_droppath_draw_bernoulli
                               : poa_droppath_draw)(dp[g * 4 + call], depth, n, cfg.drop_path_rate,
                                                    cfg.seed, 4 + (uint32_t) g, stream);
                }
            tb.b.droppath = (const float *const *) dp;
        }
        assert_int_equal(poa_step_run(st, &tb.b, &r), POA_OK);
    }
    be->iface->download(be, params_out, poa_step_params(st), sizeof(float) * model.table.total);
    for (int i = 0; i < 8; i++) free(dp[i]);
    test_batch_free(&tb, be);
    poa_step_destroy(st);
}

static void test_droppath_variants(void **state)
{
    (void) state;
    const size_t n = model.table.total;
    float *drawn[2], *given = malloc(sizeof(float) * n);
    for (int bernoulli = 0; bernoulli < 2; bernoulli++) {
        drawn[bernoulli] = malloc(sizeof(float) * n);
        run_droppath_steps(bernoulli, 0, drawn[bernoulli]);
        run_droppath_steps(bernoulli, 1, given);
        assert_memory_equal(drawn[bernoulli], given, sizeof(float) * n);
    }
    assert_true(memcmp(drawn[0], drawn[1], sizeof(float) * n) != 0);
    free(drawn[0]), free(drawn[1]), free(given);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_and_groups),   cmocka_unit_test(test_bucket_hooks),
        cmocka_unit_test(test_nonfinite_gradient),  cmocka_unit_test(test_nonfinite_loss),
        cmocka_unit_test(test_nonfinite_elsewhere), cmocka_unit_test(test_droppath_variants),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
