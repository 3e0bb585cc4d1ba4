/* test_trainer_units.c — unit tests of the rank loop's parts that need no MPI job:
 * configuration → model/step mapping and its checks, checkpoint and evaluation periods (the
 * official fvcore / do_test rules), the iBOT buffer bound, the metrics record (log line, JSON
 * line with NaN, the resume truncation of training_metrics.json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/config.h"
#include "common/rng.h"
#include "data/mask.h"
#include "backend/backend.h"
#include "model/model.h"
#include "train/metrics.h"
#include "train/step.h"
#include "train/trainer_config.h"
#include "train/trainer_data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *srcdir(void)
{
    const char *d = getenv("POA_TOP_SRCDIR");
    return d && *d ? d : ".";
}

/* Scratch folder tests/out/train/units under the build tree. */
static const char *scratch(const char *name)
{
    static char path[4096];
    const char *top = getenv("POA_TOP_BUILDDIR");
    char dir[4000];
    snprintf(dir, sizeof dir, "%s", top && *top ? top : ".");
    static const char *const parts[] = {"/tests", "/out", "/train", "/units"};
    for (int i = 0; i < 4; i++) {
        snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "%s", parts[i]);
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", dir, strerror(errno));
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* A configuration from configs/NAME plus overrides, finalized for `world` ranks. */
static poa_config *load(const char *name, const char *const *overrides, int world)
{
    poa_config *c = malloc(sizeof *c);
    poa_err err;
    char path[4200];
    snprintf(path, sizeof path, "%s/configs/%s", srcdir(), name);
    poa_config_defaults(c);
    if (poa_config_load_yaml(c, path, &err) != POA_OK) fail_msg("%s", err.msg);
    for (int i = 0; overrides && overrides[i]; i++)
        if (poa_config_set_override(c, overrides[i], &err) != POA_OK) fail_msg("%s", err.msg);
    if (poa_config_finalize(c, world, &err) != POA_OK) fail_msg("%s", err.msg);
    return c;
}

/* ------------------------------------------------------------------ configuration mapping */

static void test_model_config_demo(void **state)
{
    (void) state;
    poa_config *c = load("demo.yaml", NULL, 2);
    poa_model_config mc, want;
    poa_err err;
    assert_int_equal(poa_model_config_from_config(c, &mc, &err), POA_OK);
    assert_int_equal(poa_model_config_from_arch(&want, "demo", &err), POA_OK);
    /* the demo file spells out the preset: the mapping must give the preset's model */
    assert_int_equal(mc.max_embed_dim, want.max_embed_dim);
    assert_int_equal(mc.min_embed_dim, want.min_embed_dim);
    assert_int_equal(mc.max_depth, want.max_depth);
    assert_int_equal(mc.min_depth, want.min_depth);
    assert_int_equal(mc.head_dim, want.head_dim);
    assert_int_equal(mc.patch_size, want.patch_size);
    assert_int_equal(mc.img_size, 32);
    assert_int_equal(mc.local_crops_size, 16);
    assert_int_equal(mc.n_heads, 2);
    assert_int_equal(mc.head_n_prototypes[0], 256);
    assert_int_equal(mc.head_n_prototypes[1], 512);
    assert_int_equal(mc.head_hidden_dim, 256);
    assert_int_equal(mc.head_bottleneck_dim, 64);
    assert_true(fabs(mc.layerwise_decay - 0.9) < 1e-12);
    free(c);
}

static void test_model_config_official(void **state)
{
    (void) state;
    poa_config *c = load("vitl_poa.yaml", NULL, 32);
    poa_model_config mc;
    poa_err err;
    assert_int_equal(poa_model_config_from_config(c, &mc, &err), POA_OK);
    assert_int_equal(mc.max_embed_dim, 1024);
    assert_int_equal(mc.min_embed_dim, 384);
    assert_int_equal(mc.max_depth, 24);
    assert_int_equal(mc.min_depth, 12);
    assert_int_equal(mc.n_heads, 4);
    assert_int_equal(mc.head_n_prototypes[3], 65536);
    assert_int_equal(mc.img_size, 224);
    poa_model *m = calloc(1, sizeof *m);
    poa_model_build(m, &mc);
    poa_step_config sc;
    assert_int_equal(poa_trainer_step_config(c, m, 5, 32, &sc, &err), POA_OK);
    assert_int_equal(sc.B, 50);
    assert_int_equal(sc.G, 1);
    assert_int_equal(sc.first_group, 5);
    assert_int_equal(sc.n_local, 8);
    /* sqrt rule at 1600 images (docs/algorithm.md §8.4) */
    assert_true(fabs(sc.sched.lr - 0.005) < 1e-12);
    assert_int_equal(sc.sched.epoch_length, 800);
    assert_int_equal(sc.sched.epochs, 346);
    assert_true(fabs(sc.drop_path_rate - 0.2) < 1e-12);
    assert_true(fabs(sc.clip_grad - 1.5) < 1e-12);
    assert_true(fabs(sc.loss.lambda_ie - 0.8f) < 1e-7);
    poa_model_free(m);
    free(m);
    free(c);
}

static void test_rank_groups_offset(void **state)
{
    (void) state;
    const char *ov[] = {"train.rank_groups=3", NULL};
    poa_config *c = load("tiny.yaml", ov, 4);
    poa_model_config mc;
    poa_err err;
    assert_int_equal(poa_model_config_from_config(c, &mc, &err), POA_OK);
    poa_model *m = calloc(1, sizeof *m);
    poa_model_build(m, &mc);
    poa_step_config sc;
    assert_int_equal(poa_trainer_step_config(c, m, 2, 4, &sc, &err), POA_OK);
    assert_int_equal(sc.G, 3);
    assert_int_equal(sc.first_group, 6);
    /* lr for 8 × 3 × 4 = 96 images */
    assert_true(fabs(sc.sched.lr - 0.004 * sqrt(96.0 / 1024.0)) < 1e-15);
    poa_model_free(m);
    free(m);
    free(c);
}

/* train.drop_path_mode: auto is the official rule (per-sample Bernoulli masks for rates <= 0.1,
 * batch subsets above), subset and bernoulli force a variant; the step configuration gets it. */
static void test_drop_path_mode(void **state)
{
    (void) state;
    const struct {
        const char *file, *mode, *rate;
        int bernoulli;
    } cases[] = {
        {"demo.yaml", NULL, NULL, 1},     /* auto, 0.1 */
        {"vitl_poa.yaml", NULL, NULL, 0}, /* auto, 0.2 */
        {"tiny.yaml", "train.drop_path_mode=auto", "student.drop_path_rate=0.1", 1},
        {"tiny.yaml", "train.drop_path_mode=auto", "student.drop_path_rate=0.1001", 0},
        {"tiny.yaml", "train.drop_path_mode=subset", "student.drop_path_rate=0.05", 0},
        {"tiny.yaml", "train.drop_path_mode=bernoulli", "student.drop_path_rate=0.3", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *ov[] = {cases[i].mode, cases[i].rate, NULL};
        poa_config *c = load(cases[i].file, cases[i].mode ? ov : NULL, 2);
        assert_int_equal(poa_trainer_drop_path_bernoulli(c), cases[i].bernoulli);
        poa_model_config mc;
        poa_err err;
        assert_int_equal(poa_model_config_from_config(c, &mc, &err), POA_OK);
        poa_model *m = calloc(1, sizeof *m);
        poa_model_build(m, &mc);
        poa_step_config sc;
        assert_int_equal(poa_trainer_step_config(c, m, 0, 2, &sc, &err), POA_OK);
        assert_int_equal(sc.drop_path_bernoulli, cases[i].bernoulli);
        assert_true(sc.drop_path_rate == c->student.drop_path_rate);
        poa_model_free(m);
        free(m);
        free(c);
    }
}

static void test_unsupported(void **state)
{
    (void) state;
    poa_err err;
    const char *ov1[] = {"train.centering=centering", NULL};
    poa_config *c = load("tiny.yaml", ov1, 1);
    assert_int_equal(poa_trainer_check_supported(c, POA_BACKEND_CPU, &err), POA_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "train.centering"));
    free(c);
    const char *ov2[] = {"compute_precision.compute_dtype=bf16", NULL};
    c = load("tiny.yaml", ov2, 1);
    assert_int_equal(poa_trainer_check_supported(c, POA_BACKEND_CPU, &err), POA_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "compute_precision.compute_dtype"));
    assert_int_equal(poa_trainer_check_supported(c, POA_BACKEND_CUDA, &err), POA_OK);
    assert_int_equal(poa_trainer_compute_dtype(c, POA_BACKEND_CUDA), POA_DT_BF16);
    free(c);
    /* fp16 is refused on every backend (bf16 needs no loss scaling) */
    const char *ov6[] = {"compute_precision.compute_dtype=fp16", NULL};
    c = load("tiny.yaml", ov6, 1);
    assert_int_equal(poa_trainer_check_supported(c, POA_BACKEND_CUDA, &err), POA_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "compute_precision.compute_dtype = fp16"));
    assert_int_equal(poa_trainer_check_supported(c, POA_BACKEND_CPU, &err), POA_ERR_CONFIG);
    free(c);
    /* auto: bf16 on CUDA, fp32 on the CPU; fp32 everywhere when asked */
    const char *ov7[] = {"compute_precision.compute_dtype=auto", NULL};
    c = load("tiny.yaml", ov7, 1);
    assert_int_equal(poa_trainer_compute_dtype(c, POA_BACKEND_CUDA), POA_DT_BF16);
    assert_int_equal(poa_trainer_compute_dtype(c, POA_BACKEND_CPU), POA_DT_F32);
    free(c);
    const char *ov5[] = {"compute_precision.compute_dtype=fp32", NULL};
    c = load("tiny.yaml", ov5, 1);
    assert_int_equal(poa_trainer_compute_dtype(c, POA_BACKEND_CUDA), POA_DT_F32);
    free(c);
    const char *ov4[] = {"MODEL.WEIGHTS=/some/checkpoint.h5", NULL};
    c = load("tiny.yaml", ov4, 1);
    assert_int_equal(poa_trainer_check_supported(c, POA_BACKEND_CPU, &err), POA_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "MODEL.WEIGHTS"));
    free(c);
    /* biases switched off: the model check rejects the configuration itself (poa-config too) */
    poa_config *q = malloc(sizeof *q);
    char path[4200];
    snprintf(path, sizeof path, "%s/configs/tiny.yaml", srcdir());
    poa_config_defaults(q);
    assert_int_equal(poa_config_load_yaml(q, path, &err), POA_OK);
    assert_int_equal(poa_config_set_override(q, "student.qkv_bias=false", &err), POA_OK);
    assert_int_equal(poa_config_finalize(q, 1, &err), POA_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "student.qkv_bias"));
    assert_non_null(strstr(err.msg, "command line"));
    free(q);
}

/* The bound covers the official stratified mask counts (int(2B·p) masked crops, crop k with at
 * most int(N·r_{k+1}) patches: the loader's poa_mask_batch and its "upperbound", and the
 * synthetic source), with at most one patch of margin per masked crop; it is far below every
 * masked crop at r_max (the bound this replaced: 50 × 98 + 99 for ViT-L). */
static void test_max_masked(void **state)
{
    (void) state;
    poa_config *c = load("vitl_poa.yaml", NULL, 32);
    const int N = 196, B = 50, n_crops = (int) (2 * B * 0.5);
    const int bound = poa_trainer_max_masked(c, N);
    assert_true(bound <= 2 * B * N);
    assert_true(bound < n_crops * (int) (N * 0.5) * 2 / 3);
    poa_mask_params mp;
    poa_mask_params_default(&mp, 224, 16);
    mp.mask_probability = c->ibot.mask_sample_probability;
    mp.ratio_min = c->ibot.mask_ratio_min_max.v[0];
    mp.ratio_max = c->ibot.mask_ratio_min_max.v[1];
    uint8_t *masks = malloc((size_t) 2 * B * N);
    poa_rng r;
    poa_rng_init(&r, 7, 0, POA_RNG_MASK, 0);
    int64_t ub = 0;
    for (int i = 0; i < 50; i++) {
        const int total = poa_mask_batch(&mp, &r, 2 * B, masks, &ub);
        assert_true(total <= ub);
        assert_true(ub <= bound);
    }
    assert_true(bound <= ub + n_crops); /* at most one patch of margin per masked crop */
    free(masks);
    /* the synthetic source's masks of a few groups and iterations */
    poa_data_params p = poa_data_params_of(c, 0, 32);
    p.G = 2;
    poa_batch_source *src = poa_batch_source_synthetic(&p);
    for (long long it = 0; it < 20; it++) {
        poa_host_batch hb;
        poa_err err;
        assert_int_equal(src->next(src, it, &hb, &err), POA_OK);
        for (int g = 0; g < p.G; g++) {
            int total = 0;
            for (size_t k = 0; k < (size_t) 2 * B * N; k++) total += hb.masks[g * 2 * B * N + k];
            assert_true(total <= bound);
        }
    }
    poa_batch_source_destroy(src);
    free(c);
}

/* ------------------------------------------------------------------ periods */

static void test_periods(void **state)
{
    (void) state;
    poa_config *c = load("vitl_poa.yaml", NULL, 32);
    /* fvcore PeriodicCheckpointer: every 3 epochs (2,400 its) after (it + 1) % period, and the
     * last iteration; do_test: (it + 1) % 27,680 (docs/algorithm.md §14) */
    assert_int_equal(c->train.checkpoint_period_iterations, 2400);
    assert_false(poa_trainer_is_checkpoint_iteration(c, 2398));
    assert_true(poa_trainer_is_checkpoint_iteration(c, 2399));
    assert_false(poa_trainer_is_checkpoint_iteration(c, 2400));
    assert_true(poa_trainer_is_checkpoint_iteration(c, 276799));
    assert_true(poa_trainer_is_eval_iteration(c, 27679));
    assert_false(poa_trainer_is_eval_iteration(c, 27680));
    assert_true(poa_trainer_is_eval_iteration(c, 276799));
    int n = 0;
    for (long long it = 0; it < poa_trainer_total_iterations(c); it++)
        n += poa_trainer_is_eval_iteration(c, it);
    assert_int_equal(n, 10); /* ten teacher checkpoints per run */
    c->evaluation.eval_period_iterations = 0;
    assert_false(poa_trainer_is_eval_iteration(c, 27679));
    free(c);
}

/* ------------------------------------------------------------------ metrics */

static poa_metrics_record record(long long it, double loss)
{
    poa_metrics_record r;
    memset(&r, 0, sizeof r);
    r.iteration = it;
    r.epoch = it / 50;
    r.total_iterations = 300;
    r.total_loss = loss;
    for (int t = 0; t < POA_N_TERMS; t++) r.terms[t] = t + 0.5;
    r.lr = 7.1e-4;
    r.wd = 0.04;
    r.mom = 0.992;
    r.teacher_temp = 0.04;
    r.n_subnets = 2;
    r.width[0] = 96, r.depth[0] = 4, r.width[1] = 64, r.depth[1] = 3;
    r.batch_size = 64;
    r.img_s = 41.5;
    r.iter_time = 1.5;
    r.data_time = 0.15;
    r.comm_time = 0.1;
    r.comm_exposed_time = 0.05;
    r.compute_time = 1.3;
    r.eta_s = 125;
    return r;
}

static void test_metrics_format(void **state)
{
    (void) state;
    char buf[8192];
    poa_metrics_record r = record(150, 9.25);
    poa_metrics_format_json(&r, buf, sizeof buf);
    assert_non_null(strstr(buf, "{\"iteration\": 150, \"epoch\": 3, \"total_loss\": 9.25, "));
    assert_non_null(strstr(buf, "\"koleo_es\": 7.5"));
    assert_non_null(strstr(buf, "\"elastic_width\": 96, \"elastic_depth\": 4"));
    assert_non_null(strstr(buf, "\"elastic_widths\": [96, 64], \"elastic_depths\": [4, 3]"));
    assert_non_null(strstr(buf, "\"img_s\": 41.5"));
    assert_int_equal(buf[strlen(buf) - 1], '}');
    r.total_loss = NAN;
    r.terms[0] = INFINITY;
    poa_metrics_format_json(&r, buf, sizeof buf);
    assert_non_null(strstr(buf, "\"total_loss\": NaN"));
    assert_non_null(strstr(buf, "\"dino_is\": Infinity"));
    r = record(150, 9.25);
    poa_metrics_format_line(&r, buf, sizeof buf);
    assert_non_null(strstr(buf, "epoch 3 it 150/300 loss 9.25000 (dino_is 0.5000"));
    assert_non_null(strstr(buf, "sub 96x4,64x3"));
    assert_non_null(strstr(buf, "img/s 41.5 | data 10% compute 87%"));
    assert_non_null(strstr(buf, "ETA 2m05s"));
    char d[32];
    poa_format_duration(3725, d, sizeof d);
    assert_string_equal(d, "1h02m");
    poa_format_duration(45.2, d, sizeof d);
    assert_string_equal(d, "45s");
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

static void test_metrics_resume_truncation(void **state)
{
    (void) state;
    const char *path = scratch("training_metrics.json");
    char old[4200];
    snprintf(old, sizeof old, "%s.old", path);
    unlink(path);
    unlink(old);
    poa_metrics_file mf;
    poa_err err;
    assert_int_equal(poa_metrics_open(&mf, path, -1, &err), POA_OK);
    for (int it = 0; it < 10; it++) {
        poa_metrics_record r = record(it, 10.0 - it);
        assert_int_equal(poa_metrics_append(&mf, &r, &err), POA_OK);
    }
    poa_metrics_close(&mf);
    assert_int_equal(count_lines(path), 10);
    /* resumed after iteration 4: records 5..9 are dropped, then appended again */
    assert_int_equal(poa_metrics_open(&mf, path, 4, &err), POA_OK);
    assert_int_equal(count_lines(path), 5);
    poa_metrics_record r = record(5, 5.0);
    assert_int_equal(poa_metrics_append(&mf, &r, &err), POA_OK);
    poa_metrics_close(&mf);
    assert_int_equal(count_lines(path), 6);
    /* a run from scratch keeps the old file as training_metrics.json.old */
    assert_int_equal(poa_metrics_open(&mf, path, -1, &err), POA_OK);
    poa_metrics_close(&mf);
    assert_int_equal(count_lines(old), 6);
    assert_int_equal(count_lines(path), 0);
}

/* ViT-L with the official recipe (configs/vitl_poa.yaml: B = 50, 2 global + 8 local crops, four
 * heads, iBOT rows up to the stratified bound) planned for a bf16 CUDA device, on a machine
 * without one: the step's memory within the 45 GB budget of docs/performance.md ("Memory of
 * the step"), with the decisions the figure rests on. */
static void test_vitl_memory_budget(void **state)
{
    (void) state;
    poa_config *c = load("vitl_poa.yaml", NULL, 32);
    poa_model_config mc;
    poa_err err;
    assert_int_equal(poa_model_config_from_config(c, &mc, &err), POA_OK);
    poa_model *m = calloc(1, sizeof *m);
    poa_model_build(m, &mc);
    poa_step_config sc;
    assert_int_equal(poa_trainer_step_config(c, m, 0, 32, &sc, &err), POA_OK);
    poa_backend storage;
    const poa_backend *plan = poa_backend_planner("cuda", POA_DT_BF16, &storage);
    assert_non_null(plan);
    poa_step_memory x;
    poa_step_memory_plan(plan, m, &sc, &x);
    assert_int_equal(x.masked, poa_trainer_max_masked(c, 196));
    assert_int_equal(x.images[0], 100);
    assert_int_equal(x.kept[0], 80); /* drop path 0.2: batch subsets keep 80 of 100 crops */
    assert_int_equal(x.kept[1], 320);
    assert_true(x.compute_copies > 0);
    assert_true(x.total <= (size_t) 45e9);
    poa_model_free(m);
    free(m);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_config_demo),  cmocka_unit_test(test_model_config_official),
        cmocka_unit_test(test_rank_groups_offset), cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_drop_path_mode),     cmocka_unit_test(test_max_masked),
        cmocka_unit_test(test_vitl_memory_budget), cmocka_unit_test(test_periods),
        cmocka_unit_test(test_metrics_format),     cmocka_unit_test(test_metrics_resume_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
