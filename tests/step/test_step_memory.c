/* test_step_memory.c — the step's memory plan (step.h, poa_step_memory; src/train/README.md,
 * "Memory") against what the backend is really asked for: every alloc and free of the CPU
 * backend is counted through a wrapped device table, so the plan is checked against the
 * allocations themselves, not against the step's own bookkeeping.  Creation allocates exactly
 * the planned total, a step allocates nothing, destruction frees everything; the plan's parts
 * add up to its total (tests/train/test_trainer_units checks the plan of ViT-L at the official
 * batch on a bf16 CUDA device against the budget of docs/performance.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "tests/step/step_test_batch.h"
#include "train/step.h"

#include <string.h>

static poa_backend *be;
static poa_model model;

/* ------------------------------------------------------------------ counting device table */

#define MAX_LIVE 4096

static const poa_backend_iface *real;
static poa_backend_iface counting;
static struct {
    void *p;
    size_t bytes;
} live[MAX_LIVE];
static size_t n_live, bytes_live, bytes_peak, n_allocs;

static void *count_alloc(poa_backend *b, size_t bytes)
{
    void *p = real->alloc(b, bytes);
    assert_true(n_live < MAX_LIVE);
    live[n_live].p = p, live[n_live].bytes = bytes, n_live++;
    bytes_live += bytes;
    if (bytes_live > bytes_peak) bytes_peak = bytes_live;
    n_allocs++;
    return p;
}

static void count_free(poa_backend *b, void *p)
{
    if (p) {
        size_t i = 0;
        while (i < n_live && live[i].p != p) i++;
        assert_true(i < n_live); /* freed what was allocated through the table */
        bytes_live -= live[i].bytes;
        live[i] = live[--n_live];
    }
    real->free(b, p);
}

static void counting_on(void)
{
    real = be->iface;
    counting = *real;
    counting.alloc = count_alloc;
    counting.free = count_free;
    be->iface = &counting;
}

static void counting_off(void)
{
    be->iface = real;
}

/* ------------------------------------------------------------------ fixtures */

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

static poa_step_config tiny_config(int G, int V)
{
    poa_step_config cfg = poa_step_config_official(&model, 4, G, V);
    cfg.sched.epoch_length = 4, cfg.sched.epochs = 4, cfg.sched.warmup_epochs = 1;
    cfg.sched.warmup_teacher_temp_epochs = 2, cfg.sched.ibot_activate_epochs = 0;
    cfg.seed = 5;
    return cfg;
}

/* The sum of the plan's parts (the shared region counted once). */
static size_t parts(const poa_step_memory *x)
{
    size_t t = x->params + x->grads + x->teacher + x->moments + x->compute_copies + x->optim_table +
               x->head_weights + x->targets + x->shared + x->small;
    for (int c = 0; c < 4; c++) t += x->student[c];
    return t;
}

static void check_plan_shape(const poa_step_memory *x)
{
    assert_true(parts(x) <= x->total);
    assert_true(x->total - parts(x) < 64); /* an empty region is rounded up to 16 bytes */
    size_t largest = x->shared_teacher;
    if (x->shared_backbone > largest) largest = x->shared_backbone;
    if (x->shared_heads > largest) largest = x->shared_heads;
    assert_int_equal(x->shared, largest);
    assert_int_equal(x->shared_heads,
                     x->heads_logits + x->heads_acts + x->heads_inputs + x->heads_scratch);
}

/* ------------------------------------------------------------------ tests */

/* Creation asks the backend for exactly the planned bytes; steps (drop path on, iBOT on, the
 * step's own sub-network draws) ask for nothing; destruction returns every byte. */
static void run_counted(int G, int V, int overrides)
{
    poa_step_config cfg = tiny_config(G, V);
    cfg.overrides = overrides;
    poa_step_memory planned;
    poa_step_memory_plan(be, &model, &cfg, &planned);
    check_plan_shape(&planned);

    n_live = bytes_live = bytes_peak = n_allocs = 0;
    counting_on();
    poa_step *s = poa_step_create(be, &model, &cfg, NULL, NULL);
    counting_off();
    assert_int_equal(bytes_live, planned.total);
    assert_memory_equal(poa_step_memory_of(s), &planned, sizeof planned);
    const size_t allocs_create = n_allocs;

    poa_step_init_params(s, 3);
    test_batch tb;
    test_batch_make(&tb, be, &model, cfg.B, 0, G, V, 17);
    counting_on();
    for (long long it = 0; it < 2; it++) {
        poa_step_report r;
        tb.b.it = it;
        assert_int_equal(poa_step_run(s, &tb.b, &r), POA_OK);
    }
    counting_off();
    assert_int_equal(n_allocs, allocs_create); /* a step allocates nothing */
    assert_int_equal(bytes_peak, planned.total);
    test_batch_free(&tb, be);

    counting_on();
    poa_step_destroy(s);
    counting_off();
    assert_int_equal(bytes_live, 0);
    assert_int_equal(n_live, 0);
}

static void test_allocations_match_plan(void **state)
{
    (void) state;
    run_counted(1, 2, 0);
}

static void test_allocations_match_plan_groups(void **state)
{
    (void) state;
    run_counted(2, 1, 0);
}

static void test_allocations_match_plan_no_local(void **state)
{
    (void) state;
    run_counted(1, 0, 0);
}

static void test_allocations_match_plan_overrides(void **state)
{
    (void) state;
    run_counted(1, 2, 1);
}

/* What the plan decides: drop path keeps fewer images than a call has (the branches' buffers
 * are planned for those), overrides plan every branch for all images, the elastic workspaces
 * are planned for a candidate no larger than the intact network, and the shared region is
 * smaller than its three phases side by side. */
static void test_plan_decisions(void **state)
{
    (void) state;
    poa_step_config cfg = tiny_config(1, 2);
    poa_step_memory a, o;
    poa_step_memory_plan(be, &model, &cfg, &a);
    cfg.overrides = 1;
    poa_step_memory_plan(be, &model, &cfg, &o);
    assert_int_equal(a.images[0], 2 * cfg.B);
    assert_int_equal(a.images[1], 2 * cfg.B);
    assert_true(a.kept[0] < a.images[0]);
    assert_int_equal(o.kept[0], o.images[0]);
    assert_true(a.student[0] < o.student[0]);
    assert_true(a.student[2] <= a.student[0]);
    assert_true(a.es_width < model.cfg.max_embed_dim || a.es_depth < model.cfg.max_depth);
    assert_true(a.shared < a.shared_teacher + a.shared_backbone + a.shared_heads);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocations_match_plan),
        cmocka_unit_test(test_allocations_match_plan_groups),
        cmocka_unit_test(test_allocations_match_plan_no_local),
        cmocka_unit_test(test_allocations_match_plan_overrides),
        cmocka_unit_test(test_plan_decisions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
