/* test_config.c — unit tests of the configuration system (common/config.*, common/cli.*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/arch.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/poa_error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef POA_TEST_SRCDIR
#define POA_TEST_SRCDIR "."
#endif

/* ------------------------------------------------------------------ helpers */

static const char *srcdir(void)
{
    const char *d = getenv("POA_TOP_SRCDIR");
    return d && *d ? d : POA_TEST_SRCDIR;
}

/* A scratch file under the build tree (tests write nothing into the source tree). */
static const char *scratch_path(const char *name)
{
    static char path[4096];
    const char *top = getenv("POA_TOP_BUILDDIR");
    char dir[4000];
    snprintf(dir, sizeof dir, "%s", top && *top ? top : ".");
    static const char *const parts[] = {"/tests", "/out", "/config-unit"};
    for (int i = 0; i < 3; i++) { /* mkdir -p */
        snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "%s", parts[i]);
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", dir, strerror(errno));
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static const char *write_file(const char *name, const char *text)
{
    const char *path = scratch_path(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Fail with the message when a call that should succeed does not. */
#define assert_ok(call, err)                                                                       \
    do {                                                                                           \
        poa_status st_ = (call);                                                                   \
        if (st_ != POA_OK) fail_msg("%s failed: %s", #call, (err).msg);                            \
    } while (0)

/* The call must fail with `code` and a message containing every given fragment. */
static void expect_error(poa_status st, poa_status code, const poa_err *err, ...)
{
    if (st != code)
        fail_msg("expected status %s, got %s (%s)", poa_status_name(code), poa_status_name(st),
                 err->msg);
    va_list ap;
    va_start(ap, err);
    for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;)
        if (!strstr(err->msg, frag)) fail_msg("message lacks '%s': %s", frag, err->msg);
    va_end(ap);
}

static void assert_double_exact(double got, double want, const char *what)
{
    if (got != want) fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

/* ------------------------------------------------------------------ the table and defaults */

static void test_defaults_are_the_official_vitl_recipe(void **state)
{
    (void) state;
    poa_config c;
    poa_config_defaults(&c);
    /* docs/algorithm.md §8.4, §8.5, §2.1, §5, §6, §9 */
    assert_int_equal(c.train.batch_size_per_gpu, 50);
    assert_int_equal(c.train.OFFICIAL_EPOCH_LENGTH, 800);
    assert_int_equal(c.optim.epochs, 346);
    assert_double_exact(c.optim.base_lr, 0.004, "optim.base_lr");
    assert_double_exact(c.optim.min_lr, 2e-5, "optim.min_lr");
    assert_int_equal(c.optim.warmup_epochs, 10);
    assert_double_exact(c.optim.weight_decay, 0.04, "optim.weight_decay");
    assert_double_exact(c.optim.weight_decay_end, 0.4, "optim.weight_decay_end");
    assert_double_exact(c.optim.iter_num_scale, 0.78, "optim.iter_num_scale");
    assert_int_equal(c.optim.ibot_activate_epochs, 30);
    assert_int_equal(c.optim.freeze_last_layer_epochs, 1);
    assert_double_exact(c.optim.clip_grad, 1.5, "optim.clip_grad");
    assert_double_exact(c.optim.layerwise_decay, 0.9, "optim.layerwise_decay");
    assert_double_exact(c.optim.patch_embed_lr_mult, 0.2, "optim.patch_embed_lr_mult");
    assert_double_exact(c.optim.adamw_beta1, 0.9, "optim.adamw_beta1");
    assert_double_exact(c.optim.adamw_beta2, 0.999, "optim.adamw_beta2");
    assert_int_equal(c.optim.scaling_rule, POA_LR_SCALING_SQRT_WRT_1024);
    assert_double_exact(c.teacher.momentum_teacher, 0.992, "teacher.momentum_teacher");
    assert_double_exact(c.teacher.final_momentum_teacher, 0.9999, "final_momentum_teacher");
    assert_double_exact(c.teacher.warmup_teacher_temp, 0.04, "teacher.warmup_teacher_temp");
    assert_double_exact(c.teacher.teacher_temp, 0.07, "teacher.teacher_temp");
    assert_int_equal(c.teacher.warmup_teacher_temp_epochs, 30);
    assert_int_equal(c.student.arch, POA_ARCH_VIT_DYNAMIC);
    assert_int_equal(c.student.min_embed_dim, 384);
    assert_int_equal(c.student.max_embed_dim, 1024);
    assert_int_equal(c.student.min_depth, 12);
    assert_int_equal(c.student.max_depth, 24);
    assert_int_equal(c.student.head_dim, 64);
    assert_int_equal(c.student.patch_size, 16);
    assert_double_exact(c.student.drop_path_rate, 0.2, "student.drop_path_rate");
    assert_double_exact(c.student.layerscale, 1e-5, "student.layerscale");
    assert_double_exact(c.student.net_select_scale, 3.0, "student.net_select_scale");
    assert_true(c.student.drop_path_uniform && c.student.qkv_bias && c.student.ffn_bias);
    assert_int_equal(c.dino.head_n_prototypes.n, 4);
    const int k[4] = {8192, 16384, 32768, 65536};
    for (int i = 0; i < 4; i++) assert_int_equal(c.dino.head_n_prototypes.v[i], k[i]);
    assert_int_equal(c.dino.head_bottleneck_dim, 256);
    assert_int_equal(c.dino.head_hidden_dim, 2048);
    assert_int_equal(c.dino.head_nlayers, 3);
    assert_double_exact(c.dino.koleo_loss_weight, 0.1, "dino.koleo_loss_weight");
    assert_double_exact(c.dino.lambda_ie, 0.8, "dino.lambda_ie");
    assert_double_exact(c.dino.loss_weight, 1.0, "dino.loss_weight");
    assert_double_exact(c.ibot.loss_weight, 1.0, "ibot.loss_weight");
    assert_double_exact(c.ibot.mask_sample_probability, 0.5, "ibot.mask_sample_probability");
    assert_int_equal(c.ibot.mask_ratio_min_max.n, 2);
    assert_double_exact(c.ibot.mask_ratio_min_max.v[0], 0.1, "mask ratio min");
    assert_double_exact(c.ibot.mask_ratio_min_max.v[1], 0.5, "mask ratio max");
    assert_false(c.ibot.separate_head);
    assert_int_equal(c.train.centering, POA_CENTERING_SINKHORN_KNOPP);
    assert_int_equal(c.crops.local_crops_number, 8);
    assert_int_equal(c.crops.global_crops_size, 224);
    assert_int_equal(c.crops.local_crops_size, 96);
    assert_double_exact(c.crops.global_crops_scale.v[0], 0.32, "global scale min");
    assert_double_exact(c.crops.local_crops_scale.v[0], 0.05, "local scale min");
    assert_double_exact(c.crops.local_crops_scale.v[1], 0.32, "local scale max");
    assert_int_equal(c.evaluation.eval_period_iterations, 27680);
    assert_string_equal(c.train.dataset_path, "ImageNet:split=TRAIN");
    assert_string_equal(c.MODEL.WEIGHTS, "");
    /* poa-specific defaults */
    assert_int_equal(c.train.rank_groups, 1);
    assert_int_equal(c.train.blur_semantics, POA_CFG_BLUR_OFFICIAL);
    assert_int_equal(c.train.log_period_iterations, 10);
    assert_int_equal(poa_config_total_iterations(&c), 276800);
}

static void test_finalize_derives_the_official_values(void **state)
{
    (void) state;
    poa_config c;
    poa_err err = {0};
    poa_config_defaults(&c);
    assert_ok(poa_config_finalize(&c, 32, &err), err);
    /* docs/algorithm.md §8.4: 0.004 x sqrt(1600/1024) = 5.0e-3 */
    if (fabs(c.optim.lr - 5.0e-3) > 1e-15) fail_msg("optim.lr = %.17g, want 0.005", c.optim.lr);
    assert_int_equal(poa_config_global_batch(&c, 32), 1600);
    assert_int_equal(c.train.checkpoint_period_iterations, 2400);
    assert_int_equal(c.origin[POA_CFG_KEY_optim_lr].source, POA_CFG_SRC_DERIVED);
    /* linear rule (the paper's text): 0.004 x 1600/1024 = 6.25e-3 */
    c.optim.scaling_rule = POA_LR_SCALING_LINEAR_WRT_1024;
    assert_ok(poa_config_finalize(&c, 32, &err), err);
    if (fabs(c.optim.lr - 6.25e-3) > 1e-15) fail_msg("linear optim.lr = %.17g", c.optim.lr);
    /* vit_large preset = the official sizes */
    poa_config_defaults(&c);
    c.student.arch = POA_ARCH_VIT_LARGE;
    assert_ok(poa_config_finalize(&c, 1, &err), err);
    assert_int_equal(c.student.max_embed_dim, 1024);
    assert_int_equal(c.student.min_depth, 12);
}

static void test_key_table_is_consistent(void **state)
{
    (void) state;
    const poa_cfg_key *keys = poa_config_keys();
    poa_config c;
    poa_config_defaults(&c);
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        const poa_cfg_key *k = &keys[i];
        assert_ptr_equal(poa_config_find_key(k->name), k);
        assert_ptr_equal(poa_config_key((poa_cfg_key_id) i), k);
        if (!k->help || !*k->help) fail_msg("%s has no help", k->name);
        char name[256];
        snprintf(name, sizeof name, "%s.%s", k->section, k->leaf);
        assert_string_equal(name, k->name);
        assert_true(k->offset + 1 <= sizeof(poa_config));
        if (k->type == POA_CFG_TYPE_ENUM) assert_true(k->n_choices >= 1);
    }
    poa_err err = {0};
    assert_ok(poa_config_validate(&c, &err), err); /* every default in range */
    assert_string_equal(
        poa_config_enum_text(POA_CFG_KEY_train_centering, POA_CENTERING_SINKHORN_KNOPP),
        "sinkhorn_knopp");
    assert_string_equal(poa_config_enum_text(POA_CFG_KEY_student_arch, POA_ARCH_TINY), "tiny");
    assert_string_equal(poa_config_enum_text(POA_CFG_KEY_train_backend, POA_BACKEND_CUDA), "cuda");
    assert_null(poa_config_enum_text(POA_CFG_KEY_train_backend, 99));
    assert_null(poa_config_find_key("optim"));
}

/* One preset table (common/arch.h) for every student.arch choice; each preset fills the
 * student.* keys with its sizes and passes the one model check. */
static void test_every_arch_has_a_valid_preset(void **state)
{
    (void) state;
    const poa_cfg_key *arch = poa_config_key(POA_CFG_KEY_student_arch);
    for (int a = 0; a < arch->n_choices; a++) {
        const poa_arch_preset *p = poa_arch_preset_find(arch->choices[a]);
        if (!p) fail_msg("student.arch = %s has no preset", arch->choices[a]);
        poa_config c;
        poa_err err = {0};
        poa_config_defaults(&c);
        char ov[128];
        snprintf(ov, sizeof ov, "student.arch=%s", arch->choices[a]);
        assert_ok(poa_config_set_override(&c, ov, &err), err);
        snprintf(ov, sizeof ov, "crops.global_crops_size=%d", p->global_crops_size);
        assert_ok(poa_config_set_override(&c, ov, &err), err);
        snprintf(ov, sizeof ov, "crops.local_crops_size=%d", p->local_crops_size);
        assert_ok(poa_config_set_override(&c, ov, &err), err);
        assert_ok(poa_config_finalize(&c, 1, &err), err);
        assert_int_equal(c.student.min_embed_dim, p->min_embed_dim);
        assert_int_equal(c.student.max_embed_dim, p->max_embed_dim);
        assert_int_equal(c.student.min_depth, p->min_depth);
        assert_int_equal(c.student.max_depth, p->max_depth);
        assert_int_equal(c.student.head_dim, p->head_dim);
        assert_int_equal(c.student.patch_size, p->patch_size);
    }
    assert_null(poa_arch_preset_find("vit_huge"));
}

static void test_levenshtein_and_closest_key(void **state)
{
    (void) state;
    assert_int_equal(poa_levenshtein("kitten", "sitting"), 3);
    assert_int_equal(poa_levenshtein("", "abc"), 3);
    assert_int_equal(poa_levenshtein("ABC", "abc"), 0);
    assert_string_equal(poa_config_closest_key("optim.base_lrr")->name, "optim.base_lr");
    assert_string_equal(poa_config_closest_key("base_lr")->name, "optim.base_lr");
    assert_string_equal(poa_config_closest_key("train.base_lr")->name, "optim.base_lr");
    assert_string_equal(poa_config_closest_key("train.official_epoch_length")->name,
                        "train.OFFICIAL_EPOCH_LENGTH");
    assert_string_equal(poa_config_closest_key("crops.local_crop_number")->name,
                        "crops.local_crops_number");
}

/* ------------------------------------------------------------------ YAML files */

static const char nested_yaml[] = "# a comment\n"
                                  "optim:\n"
                                  "  base_lr: 0.001\n"
                                  "  epochs: 40\n"
                                  "dino:\n"
                                  "  head_n_prototypes: [64, 128]\n"
                                  "crops:\n"
                                  "  global_crops_scale:\n"
                                  "  - 0.4\n"
                                  "  - 1\n"
                                  "train:\n"
                                  "  output_dir: 'runs/a b'\n"
                                  "  centering: centering\n"
                                  "  cache_dataset: no\n"
                                  "student: {arch: tiny, patch_size: 8}\n"
                                  "MODEL:\n"
                                  "  WEIGHTS:\n";

static void test_load_nested_keys_and_lists(void **state)
{
    (void) state;
    poa_config c;
    poa_err err = {0};
    poa_config_defaults(&c);
    const char *path = write_file("nested.yaml", nested_yaml);
    assert_ok(poa_config_load_yaml(&c, path, &err), err);
    assert_double_exact(c.optim.base_lr, 0.001, "optim.base_lr");
    assert_int_equal(c.optim.epochs, 40);
    assert_int_equal(c.dino.head_n_prototypes.n, 2);
    assert_int_equal(c.dino.head_n_prototypes.v[1], 128);
    assert_int_equal(c.crops.global_crops_scale.n, 2);
    assert_double_exact(c.crops.global_crops_scale.v[0], 0.4, "global scale min");
    assert_double_exact(c.crops.global_crops_scale.v[1], 1.0, "global scale max");
    assert_string_equal(c.train.output_dir, "runs/a b");
    assert_int_equal(c.train.centering, POA_CENTERING_SOFTMAX);
    assert_false(c.train.cache_dataset);
    assert_int_equal(c.student.arch, POA_ARCH_TINY);
    assert_int_equal(c.student.patch_size, 8);
    assert_string_equal(c.MODEL.WEIGHTS, "");
    /* origins: file, line and column of the value */
    poa_cfg_origin o = c.origin[POA_CFG_KEY_optim_epochs];
    assert_int_equal(o.source, POA_CFG_SRC_FILE);
    assert_int_equal(o.line, 4);
    assert_int_equal(o.column, 11);
    char buf[4200];
    poa_config_format_origin(&c, POA_CFG_KEY_optim_epochs, buf, sizeof buf);
    if (!strstr(buf, "nested.yaml:4:11")) fail_msg("origin text: %s", buf);
    assert_int_equal(c.origin[POA_CFG_KEY_optim_min_lr].source, POA_CFG_SRC_DEFAULT);
    /* the tiny preset fills the sizes that were not set; the explicit patch size stays */
    assert_ok(poa_config_finalize(&c, 1, &err), err);
    assert_int_equal(c.student.max_embed_dim, 64);
    assert_int_equal(c.student.max_depth, 4);
    assert_int_equal(c.origin[POA_CFG_KEY_student_max_depth].source, POA_CFG_SRC_PRESET);
    assert_int_equal(c.origin[POA_CFG_KEY_student_patch_size].source, POA_CFG_SRC_FILE);
}

static void test_empty_file_and_official_fsdp_keys(void **state)
{
    (void) state;
    poa_config c, d;
    poa_err err = {0};
    poa_config_defaults(&c);
    poa_config_defaults(&d);
    assert_ok(poa_config_load_yaml_string(&c, "empty.yaml", "# nothing\n", &err), err);
    assert_ok(poa_config_load_yaml_string(&c, "empty2.yaml", "", &err), err);
    /* FSDP internals of the official file are accepted and ignored */
    assert_ok(poa_config_load_yaml_string(&c, "fsdp.yaml",
                                          "compute_precision:\n"
                                          "  grad_scaler: true\n"
                                          "  teacher:\n"
                                          "    backbone:\n"
                                          "      sharding_strategy: SHARD_GRAD_OP\n"
                                          "      mixed_precision: {param_dtype: fp16}\n",
                                          &err),
              err);
    assert_null(poa_config_first_difference(&c, &d));
}

static void test_overrides_beat_files(void **state)
{
    (void) state;
    poa_config c;
    poa_err err = {0};
    poa_config_defaults(&c);
    const char *path = write_file("override.yaml", "optim:\n  epochs: 4\n  base_lr: 0.5\n");
    assert_ok(poa_config_load_yaml(&c, path, &err), err);
    assert_ok(poa_config_set_override(&c, "optim.epochs=8", &err), err);
    assert_ok(poa_config_set_override(&c, "crops.local_crops_scale=[0.1, 0.3]", &err), err);
    assert_ok(poa_config_set_override(&c, "crops.global_crops_scale=0.5,1.0", &err), err);
    assert_ok(poa_config_set_override(&c, "train.output_dir=/tmp/x=y", &err), err);
    assert_int_equal(c.optim.epochs, 8);
    assert_double_exact(c.optim.base_lr, 0.5, "optim.base_lr (file)");
    assert_double_exact(c.crops.local_crops_scale.v[1], 0.3, "local scale max");
    assert_double_exact(c.crops.global_crops_scale.v[0], 0.5, "global scale min");
    assert_string_equal(c.train.output_dir, "/tmp/x=y");
    assert_int_equal(c.origin[POA_CFG_KEY_optim_epochs].source, POA_CFG_SRC_CLI);
    assert_int_equal(c.origin[POA_CFG_KEY_optim_base_lr].source, POA_CFG_SRC_FILE);
    /* the printed effective configuration shows both values and their origins */
    const char *out = scratch_path("print.txt");
    FILE *f = fopen(out, "w+");
    assert_non_null(f);
    poa_config_print(&c, f);
    rewind(f);
    char line[4400];
    int saw_epochs = 0, saw_lr = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "optim.epochs ") && strstr(line, " 8 ") && strstr(line, "# command line"))
            saw_epochs = 1;
        if (strstr(line, "optim.base_lr ") && strstr(line, "override.yaml:3:12")) saw_lr = 1;
    }
    fclose(f);
    if (!saw_epochs || !saw_lr) fail_msg("effective config lacks origins (see %s)", out);
}

static void test_unknown_key_names_the_closest(void **state)
{
    (void) state;
    poa_config c;
    poa_err err = {0};
    poa_config_defaults(&c);
    const char *path = write_file("unknown.yaml", "optim:\n  epochs: 3\n  base_lrr: 0.1\n");
    expect_error(poa_config_load_yaml(&c, path, &err), POA_ERR_CONFIG, &err, "unknown.yaml:3:3",
                 "unknown key 'optim.base_lrr'", "did you mean 'optim.base_lr'", NULL);
    expect_error(poa_config_set_override(&c, "optim.base_lrr=0.1", &err), POA_ERR_CONFIG, &err,
                 "command line", "did you mean 'optim.base_lr'", NULL);
    /* a misspelt section: the leaf below it is reported */
    expect_error(poa_config_load_yaml_string(&c, "s.yaml", "optm:\n  base_lr: 1\n", &err),
                 POA_ERR_CONFIG, &err, "s.yaml:2:3", "did you mean 'optim.base_lr'", NULL);
    /* a section given a value */
    expect_error(poa_config_load_yaml_string(&c, "v.yaml", "\noptim: 3\n", &err), POA_ERR_CONFIG,
                 &err, "v.yaml:2:1", "'optim' is a section", NULL);
    expect_error(poa_config_set_override(&c, "optim.epochs", &err), POA_ERR_CONFIG, &err,
                 "expected key=value", NULL);
}

static void test_wrong_type_reports_place_and_expected_type(void **state)
{
    (void) state;
    poa_config c;
    poa_err err = {0};
    poa_config_defaults(&c);
    const char *path = write_file("type.yaml", "train:\n  seed: 1\n  batch_size_per_gpu: 2.5\n");
    expect_error(poa_config_load_yaml(&c, path, &err), POA_ERR_CONFIG, &err, "type.yaml:3:23",
                 "train.batch_size_per_gpu", "expected int", "'2.5'", NULL);
    expect_error(poa_config_load_yaml_string(&c, "t.yaml", "optim:\n  base_lr: fast\n", &err),
                 POA_ERR_CONFIG, &err, "t.yaml:2:12", "expected float", NULL);
    expect_error(poa_config_load_yaml_string(&c, "t.yaml", "optim:\n  base_lr: [1, 2]\n", &err),
                 POA_ERR_CONFIG, &err, "t.yaml:2:12", "expected float", "a list", NULL);
    expect_error(poa_config_load_yaml_string(&c, "t.yaml", "optim:\n  base_lr:\n", &err),
                 POA_ERR_CONFIG, &err, "expected float", "null", NULL);
    expect_error(poa_config_load_yaml_string(&c, "b.yaml", "ibot:\n  separate_head: maybe\n", &err),
                 POA_ERR_CONFIG, &err, "b.yaml:2:18", "expected bool", NULL);
    expect_error(poa_config_load_yaml_string(&c, "e.yaml", "train:\n  backend: tpu\n", &err),
                 POA_ERR_CONFIG, &err, "e.yaml:2:12", "expected one of {auto, cpu, cuda}", NULL);
    expect_error(
        poa_config_load_yaml_string(&c, "l.yaml", "dino:\n  head_n_prototypes: 64\n", &err),
        POA_ERR_CONFIG, &err, "l.yaml:2:22", "expected list of int", NULL);
    expect_error(poa_config_load_yaml_string(
                     &c, "l.yaml", "ibot:\n  mask_ratio_min_max: [0.1, 0.2, 0.3]\n", &err),
                 POA_ERR_CONFIG, &err, "l.yaml:2:23", "expected a list of 2 values, got 3", NULL);
    expect_error(
        poa_config_load_yaml_string(&c, "l.yaml", "dino:\n  head_n_prototypes: [64, x]\n", &err),
        POA_ERR_CONFIG, &err, "expected list of int", "'x'", NULL);
    expect_error(poa_config_load_yaml_string(&c, "m.yaml", "dino:\n  lambda_ie: {a: 1}\n", &err),
                 POA_ERR_CONFIG, &err, "m.yaml:2:14", "expected float", "a mapping", NULL);
    expect_error(poa_config_set_override(&c, "optim.epochs=1e3", &err), POA_ERR_CONFIG, &err,
                 "expected int", NULL);
    expect_error(poa_config_set_override(&c, "optim.base_lr=nan", &err), POA_ERR_CONFIG, &err,
                 "expected float", NULL);
}

static void test_out_of_range(void **state)
{
    (void) state;
    poa_config c;
    poa_err err = {0};
    poa_config_defaults(&c);
    expect_error(poa_config_load_yaml_string(&c, "r.yaml", "optim:\n  iter_num_scale: 0.5\n", &err),
                 POA_ERR_CONFIG, &err, "r.yaml:2:19", "optim.iter_num_scale = 0.5",
                 "out of range [0.7, 1.0]", NULL);
    expect_error(poa_config_set_override(&c, "dino.head_n_prototypes=[64,0]", &err), POA_ERR_CONFIG,
                 &err, "out of range", NULL);
    expect_error(poa_config_set_override(&c, "crops.local_crops_number=-1", &err), POA_ERR_CONFIG,
                 &err, "out of range [0, 256]", NULL);
    /* values set through the struct are checked by validate */
    c.dino.lambda_ie = 1.5;
    expect_error(poa_config_validate(&c, &err), POA_ERR_CONFIG, &err, "dino.lambda_ie = 1.5",
                 "out of range", NULL);
}

static void test_cross_key_rules_cite_the_keys(void **state)
{
    (void) state;
    poa_config c;
    poa_err err = {0};
    poa_config_defaults(&c);
    assert_ok(poa_config_load_yaml_string(&c, "x.yaml", "crops:\n  local_crops_size: 100\n", &err),
              err);
    expect_error(poa_config_finalize(&c, 1, &err), POA_ERR_CONFIG, &err, "x.yaml:2:21",
                 "crops.local_crops_size = 100", "student.patch_size = 16", NULL);
    poa_config_defaults(&c);
    assert_ok(poa_config_set_override(&c, "student.min_embed_dim=400", &err), err);
    expect_error(poa_config_finalize(&c, 1, &err), POA_ERR_CONFIG, &err, "command line",
                 "student.min_embed_dim = 400", "head_dim", NULL);
    poa_config_defaults(&c);
    assert_ok(poa_config_set_override(&c, "optim.epochs=5", &err), err);
    expect_error(poa_config_finalize(&c, 1, &err), POA_ERR_CONFIG, &err, "command line",
                 "optim.warmup_epochs = 10 exceeds optim.epochs = 5", NULL);
    poa_config_defaults(&c);
    assert_ok(poa_config_set_override(&c, "crops.global_crops_scale=[0.9,0.5]", &err), err);
    expect_error(poa_config_finalize(&c, 1, &err), POA_ERR_CONFIG, &err, "min <= max", NULL);
    poa_config_defaults(&c);
    assert_ok(poa_config_set_override(&c, "ibot.separate_head=true", &err), err);
    expect_error(poa_config_finalize(&c, 1, &err), POA_ERR_CONFIG, &err, "not supported", NULL);
    poa_config_defaults(&c);
    assert_ok(poa_config_set_override(&c, "student.min_depth=30", &err), err);
    expect_error(poa_config_finalize(&c, 1, &err), POA_ERR_CONFIG, &err,
                 "student.min_depth = 30 exceeds student.max_depth = 24", NULL);
    /* rules of the model itself, checked with the configuration (common/arch.h) */
    poa_config_defaults(&c);
    assert_ok(poa_config_set_override(&c, "dino.head_nlayers=2", &err), err);
    expect_error(poa_config_finalize(&c, 1, &err), POA_ERR_CONFIG, &err, "command line",
                 "dino.head_nlayers = 2", "only 3", NULL);
    poa_config_defaults(&c);
    assert_ok(poa_config_set_override(&c, "student.max_depth=200", &err), err);
    assert_ok(poa_config_set_override(&c, "student.min_depth=200", &err), err);
    expect_error(poa_config_finalize(&c, 1, &err), POA_ERR_CONFIG, &err, "command line",
                 "student.max_depth = 200", "at most 128", NULL);
    poa_config_defaults(&c);
    assert_ok(poa_config_set_override(&c, "student.ffn_bias=false", &err), err);
    expect_error(poa_config_finalize(&c, 1, &err), POA_ERR_CONFIG, &err, "student.ffn_bias",
                 "biases in every linear layer", NULL);
}

static void test_malformed_yaml_reports_line_and_column(void **state)
{
    (void) state;
    poa_config c;
    poa_err err = {0};
    poa_config_defaults(&c);
    const char *path = write_file("malformed.yaml", "optim:\n  epochs: 4\n  base_lr: [0.1\n"
                                                    "train:\n  seed: 1\n");
    expect_error(poa_config_load_yaml(&c, path, &err), POA_ERR_CONFIG, &err,
                 "malformed.yaml:4:", "malformed YAML", "line 3 column 12", NULL);
    expect_error(poa_config_load_yaml_string(&c, "tab.yaml", "optim:\n\tepochs: 4\n", &err),
                 POA_ERR_CONFIG, &err, "tab.yaml:2:1", "malformed YAML", NULL);
    expect_error(
        poa_config_load_yaml_string(&c, "ind.yaml", "optim:\n  epochs: 4\n base_lr: 1\n", &err),
        POA_ERR_CONFIG, &err, "ind.yaml:3:", "malformed YAML", NULL);
    expect_error(
        poa_config_load_yaml_string(&c, "dup.yaml", "optim:\n  epochs: 4\n  epochs: 5\n", &err),
        POA_ERR_CONFIG, &err, "dup.yaml:3:3", "duplicate key 'optim.epochs'", "line 2", NULL);
    expect_error(poa_config_load_yaml_string(&c, "two.yaml", "optim: {}\n---\noptim: {}\n", &err),
                 POA_ERR_CONFIG, &err, "two.yaml:2:1", "one YAML document", NULL);
    expect_error(poa_config_load_yaml_string(&c, "top.yaml", "- a\n- b\n", &err), POA_ERR_CONFIG,
                 &err, "top.yaml:1:1", "top level must be a mapping", NULL);
}

static void test_missing_file(void **state)
{
    (void) state;
    poa_config c;
    poa_err err = {0};
    poa_config_defaults(&c);
    expect_error(poa_config_load_yaml(&c, "no/such/config.yaml", &err), POA_ERR_NOTFOUND, &err,
                 "no/such/config.yaml", "cannot open", NULL);
    expect_error(poa_config_load_yaml(&c, srcdir(), &err), POA_ERR_IO, &err, "is a directory",
                 NULL);
}

/* ------------------------------------------------------------------ output */

static void roundtrip(const poa_config *c, bool comments)
{
    poa_err err = {0};
    const char *path = scratch_path(comments ? "roundtrip-comments.yaml" : "roundtrip.yaml");
    assert_ok(poa_config_save(c, path, comments, &err), err);
    poa_config back;
    poa_config_defaults(&back);
    assert_ok(poa_config_load_yaml(&back, path, &err), err);
    const char *diff = poa_config_first_difference(c, &back);
    if (diff) fail_msg("%s differs after write and reload of %s", diff, path);
    /* byte-exact doubles, not only equal text */
    assert_double_exact(back.optim.base_lr, c->optim.base_lr, "optim.base_lr");
    assert_double_exact(back.teacher.teacher_temp, c->teacher.teacher_temp, "teacher_temp");
}

static void test_write_and_reload_is_identical(void **state)
{
    (void) state;
    poa_config c;
    poa_err err = {0};
    poa_config_defaults(&c);
    roundtrip(&c, false);
    c.optim.base_lr = 1.0 / 3.0;
    c.teacher.teacher_temp = 0.1 + 0.2; /* 0.30000000000000004 */
    c.student.layerscale = 1e-300;
    c.optim.weight_decay_end = 12.0;
    c.dino.head_n_prototypes = (poa_cfg_int_list){3, {7, 11, 13}};
    c.crops.local_crops_scale = (poa_cfg_float_list){2, {1.0 / 7.0, 0.999999999999}};
    snprintf(c.train.dataset_path, sizeof c.train.dataset_path, "a \"quoted\" \\ path: #x\ttab");
    snprintf(c.train.output_dir, sizeof c.train.output_dir, "'single' ünïcode");
    c.train.backend = POA_BACKEND_CUDA;
    c.ibot.separate_head = true;
    assert_ok(poa_config_set_override(&c, "optim.epochs=17", &err), err);
    roundtrip(&c, false);
    roundtrip(&c, true);
}

/* String values: well-formed UTF-8 only (what is not cannot be saved as YAML and read back), and
 * every well-formed value survives the saved configuration, including the code points a YAML
 * reader must not meet raw (C1 controls, NEL, LS, PS, BOM, U+FFFF: saved escaped). */
/* The defaults with train.output_dir=value set as an override. */
static poa_status set_output_dir(poa_config *c, const char *value, poa_err *err)
{
    char line[128];
    poa_config_defaults(c);
    snprintf(line, sizeof line, "train.output_dir=%s", value);
    return poa_config_set_override(c, line, err);
}

static void test_string_values_are_utf8_and_reload(void **state)
{
    (void) state;
    static const char *const bad[] = {
        "a\xed\xa0\x80"
        "b",                /* a surrogate, U+D800 */
        "\xe0\x80\x80",     /* overlong NUL */
        "\xf0\x8f\xbf\xbf", /* overlong U+FFFF */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xc0\xaf",         /* overlong '/' */
        "\xe2\x80",         /* cut short */
        "\xff",
    };
    poa_config c;
    poa_err err = {0};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(set_output_dir(&c, bad[i], &err), POA_ERR_CONFIG);
        if (!strstr(err.msg, "is not UTF-8")) fail_msg("case %zu: %s", i, err.msg);
    }
    static const char *const good[] = {
        "c1 \xc2\x80 \xc2\x9f",
        "nel \xc2\x85",
        "ls \xe2\x80\xa8 ps \xe2\x80\xa9",
        "bom \xef\xbb\xbf",
        "ffff \xef\xbf\xbf \xef\xbf\xbe",
        "nbsp \xc2\xa0 del \x7f",
        "emoji \xf0\x9f\x98\x80 max \xf4\x8f\xbf\xbf",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        assert_ok(set_output_dir(&c, good[i], &err), err);
        roundtrip(&c, false);
        roundtrip(&c, true);
    }
}

static void test_help_lists_every_key(void **state)
{
    (void) state;
    const char *path = scratch_path("help.txt");
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    poa_config_help(f);
    long size = ftell(f);
    rewind(f);
    char *text = calloc(1, (size_t) size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t) size, f), (size_t) size);
    fclose(f);
    const poa_cfg_key *keys = poa_config_keys();
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        char needle[256];
        snprintf(needle, sizeof needle, "  %s = ", keys[i].name);
        if (!strstr(text, needle)) fail_msg("--help lacks %s", keys[i].name);
    }
    if (!strstr(text, "optim.base_lr = 0.004   (float in [0.0, 100.0])"))
        fail_msg("--help does not show the default and range of optim.base_lr");
    free(text);
}

/* ------------------------------------------------------------------ shipped configs */

static void load_shipped(const char *name, poa_config *c, int world_size)
{
    char path[4096];
    poa_err err = {0};
    snprintf(path, sizeof path, "%s/configs/%s", srcdir(), name);
    poa_config_defaults(c);
    assert_ok(poa_config_load_yaml(c, path, &err), err);
    assert_ok(poa_config_finalize(c, world_size, &err), err);
}

static void test_shipped_configs_load_and_validate(void **state)
{
    (void) state;
    poa_config c, d;
    poa_err err = {0};
    /* vitl_poa.yaml writes out the defaults */
    load_shipped("vitl_poa.yaml", &c, 32);
    poa_config_defaults(&d);
    assert_ok(poa_config_finalize(&d, 32, &err), err);
    const char *diff = poa_config_first_difference(&c, &d);
    if (diff) fail_msg("configs/vitl_poa.yaml differs from the built-in defaults at %s", diff);
    /* tiny.yaml: docs/algorithm.md §12.1, and its sizes agree with the tiny preset */
    load_shipped("tiny.yaml", &c, 1);
    assert_int_equal(c.crops.global_crops_size, 32);
    assert_int_equal(c.crops.local_crops_size, 16);
    assert_int_equal(c.crops.local_crops_number, 2);
    assert_int_equal(c.dino.head_n_prototypes.n, 2);
    assert_int_equal(c.dino.head_hidden_dim, 128);
    assert_int_equal(c.dino.head_bottleneck_dim, 32);
    assert_int_equal(poa_config_total_iterations(&c), 16);
    assert_int_equal(c.optim.ibot_activate_epochs * c.train.OFFICIAL_EPOCH_LENGTH, 8);
    poa_config_defaults(&d);
    d.student.arch = POA_ARCH_TINY;
    assert_ok(poa_config_finalize(&d, 1, &err), err);
    assert_int_equal(c.student.min_embed_dim, d.student.min_embed_dim);
    assert_int_equal(c.student.max_embed_dim, d.student.max_embed_dim);
    assert_int_equal(c.student.min_depth, d.student.min_depth);
    assert_int_equal(c.student.max_depth, d.student.max_depth);
    assert_int_equal(c.student.head_dim, d.student.head_dim);
    assert_int_equal(c.student.patch_size, d.student.patch_size);
    /* demo.yaml and fmnist.yaml: the same for the demo preset, except the patch (8, not the
     * preset's 4: docs/demo-learning-study.md) */
    const char *demo_files[] = {"demo.yaml", "fmnist.yaml"};
    for (int i = 0; i < 2; i++) {
        load_shipped(demo_files[i], &c, 1);
        poa_config_defaults(&d);
        d.student.arch = POA_ARCH_DEMO;
        assert_ok(poa_config_finalize(&d, 1, &err), err);
        assert_int_equal(c.student.max_embed_dim, d.student.max_embed_dim);
        assert_int_equal(c.student.min_embed_dim, d.student.min_embed_dim);
        assert_int_equal(c.student.max_depth, d.student.max_depth);
        assert_int_equal(c.student.min_depth, d.student.min_depth);
        assert_int_equal(c.student.head_dim, d.student.head_dim);
        assert_int_equal(d.student.patch_size, 4);
        assert_int_equal(c.student.patch_size, 8);
    }
}

/* ------------------------------------------------------------------ command line */

static const poa_cli_option test_options[] = {
    {"output-dir", 'o', "DIR", "output directory"},
    {"no-resume", 0, NULL, "start from scratch"},
};
static const poa_cli_spec test_spec = {.program = "poa-test",
                                       .summary = "a test program",
                                       .options = test_options,
                                       .n_options = 2,
                                       .uses_config = true};

static void test_cli_parses_configs_options_and_overrides(void **state)
{
    (void) state;
    char *argv[] = {"prog",
                    "--config",
                    "a.yaml",
                    "optim.epochs=3",
                    "-c",
                    "b.yaml",
                    "--output-dir=out",
                    "--no-resume",
                    "--config-file",
                    "c.yaml",
                    "-v",
                    "--",
                    "train.seed=7",
                    NULL};
    int argc = (int) (sizeof argv / sizeof argv[0]) - 1;
    poa_cli cli;
    poa_err err = {0};
    assert_ok(poa_cli_parse(&cli, &test_spec, argc, argv, &err), err);
    assert_int_equal(cli.n_configs, 3);
    assert_string_equal(cli.configs[0], "a.yaml");
    assert_string_equal(cli.configs[1], "b.yaml");
    assert_string_equal(cli.configs[2], "c.yaml");
    assert_int_equal(cli.n_overrides, 2);
    assert_string_equal(cli.overrides[0], "optim.epochs=3");
    assert_string_equal(cli.overrides[1], "train.seed=7");
    assert_string_equal(poa_cli_value(&cli, &test_spec, "output-dir"), "out");
    assert_true(poa_cli_flag(&cli, &test_spec, "no-resume"));
    assert_true(cli.verbose);
    assert_false(cli.help);
    poa_cli_free(&cli);

    char *bad[] = {"prog", "--outptu-dir", "x", NULL};
    expect_error(poa_cli_parse(&cli, &test_spec, 3, bad, &err), POA_ERR_ARG, &err,
                 "unknown option '--outptu-dir'", "did you mean '--output-dir'", NULL);
    poa_cli_free(&cli);
    char *missing[] = {"prog", "--config", NULL};
    expect_error(poa_cli_parse(&cli, &test_spec, 2, missing, &err), POA_ERR_ARG, &err,
                 "--config needs a FILE", NULL);
    poa_cli_free(&cli);
    char *stray[] = {"prog", "stray", NULL};
    expect_error(poa_cli_parse(&cli, &test_spec, 2, stray, &err), POA_ERR_ARG, &err,
                 "unexpected argument 'stray'", NULL);
    poa_cli_free(&cli);
    char *flagarg[] = {"prog", "--no-resume=1", NULL};
    expect_error(poa_cli_parse(&cli, &test_spec, 2, flagarg, &err), POA_ERR_ARG, &err,
                 "takes no argument", NULL);
    poa_cli_free(&cli);
}

static void test_cli_builds_the_configuration_in_order(void **state)
{
    (void) state;
    const char *a = write_file("cli-a.yaml", "optim:\n  epochs: 20\n  base_lr: 0.1\n");
    char a_copy[4096];
    snprintf(a_copy, sizeof a_copy, "%s", a);
    const char *b = write_file("cli-b.yaml", "optim:\n  epochs: 30\n");
    char *argv[] = {"prog", "--config", a_copy, "--config", (char *) b, "optim.base_lr=0.2", NULL};
    poa_cli cli;
    poa_config c;
    poa_err err = {0};
    assert_ok(poa_cli_parse(&cli, &test_spec, 6, argv, &err), err);
    assert_ok(poa_cli_build_config(&cli, &c, 4, &err), err);
    assert_int_equal(c.optim.epochs, 30);            /* later file wins */
    assert_double_exact(c.optim.base_lr, 0.2, "lr"); /* command line wins */
    assert_int_equal(c.world_size, 4);
    poa_cli_free(&cli);

    char *bad[] = {"prog", "--config", a_copy, "optim.epochs=abc", NULL};
    assert_ok(poa_cli_parse(&cli, &test_spec, 4, bad, &err), err);
    expect_error(poa_cli_build_config(&cli, &c, 1, &err), POA_ERR_CONFIG, &err, "optim.epochs",
                 "expected int", NULL);
    poa_cli_free(&cli);
}

/* The usual main() start: -1 = go on, 0 after --help, POA_EXIT_USAGE after an error. */
static void test_cli_main_setup_exit_codes(void **state)
{
    (void) state;
    poa_cli cli;
    poa_config c;
    poa_err err = {0};
    char *help[] = {"prog", "--help", NULL};
    assert_int_equal(poa_cli_main_setup(&test_spec, 2, help, &cli, &c, 1, &err), POA_EXIT_OK);
    poa_cli_free(&cli);
    char *bad[] = {"prog", "optim.epochs=x", NULL};
    assert_int_equal(poa_cli_main_setup(&test_spec, 2, bad, &cli, &c, 1, &err), POA_EXIT_USAGE);
    poa_cli_free(&cli);
    char *wrong[] = {"prog", "--bogus", NULL};
    assert_int_equal(poa_cli_main_setup(&test_spec, 2, wrong, &cli, &c, 1, &err), POA_EXIT_USAGE);
    poa_cli_free(&cli);
    char *good[] = {"prog", "optim.epochs=20", "stray", NULL};
    assert_int_equal(poa_cli_main_setup(&test_spec, 3, good, &cli, &c, 1, &err), POA_EXIT_USAGE);
    poa_cli_free(&cli);
    char *fine[] = {"prog", "optim.epochs=20", NULL};
    assert_int_equal(poa_cli_main_setup(&test_spec, 2, fine, &cli, &c, 1, &err), -1);
    assert_int_equal(c.optim.epochs, 20);
    poa_cli_free(&cli);
}

/* A program without a configuration (poa-pack, the benchmarks): numbers with ranges, its own
 * --config option, multi-line option help. */
static const poa_cli_option tool_options[] = {
    {"config", 0, "NAME", "a name, not a file"},
    {"count", 'j', "N", "a count"},
    {"size", 0, "MB", "a size\nsecond line of the help"},
};
static const poa_cli_spec tool_spec = {
    .program = "poa-tool", .summary = "a tool", .options = tool_options, .n_options = 3};

static void test_cli_numbers_and_tools_without_configuration(void **state)
{
    (void) state;
    poa_cli cli;
    poa_err err = {0};
    char *argv[] = {"prog", "--config", "demo", "-j", "12", "--size=0.5", NULL};
    assert_ok(poa_cli_parse(&cli, &tool_spec, 6, argv, &err), err);
    assert_string_equal(poa_cli_value(&cli, &tool_spec, "config"), "demo");
    assert_int_equal(cli.n_configs, 0);
    long count;
    double size, absent;
    assert_ok(poa_cli_long(&cli, &tool_spec, "count", 0, 1, 1L << 40, &count, &err), err);
    assert_int_equal(count, 12);
    assert_ok(poa_cli_double(&cli, &tool_spec, "size", 1, 0, 10, false, &size, &err), err);
    assert_double_exact(size, 0.5, "size");
    expect_error(poa_cli_long(&cli, &tool_spec, "count", 0, 20, 30, &count, &err), POA_ERR_ARG,
                 &err, "option --count: expected an integer in [20, 30], got '12'", NULL);
    expect_error(poa_cli_double(&cli, &tool_spec, "size", 1, 1, 10, false, &size, &err),
                 POA_ERR_ARG, &err, "option --size", "got '0.5'", NULL);
    poa_cli_free(&cli);
    char *nan_arg[] = {"prog", "--size", "nan", NULL};
    assert_ok(poa_cli_parse(&cli, &tool_spec, 3, nan_arg, &err), err);
    assert_ok(poa_cli_double(&cli, &tool_spec, "size", 1, 0, 10, true, &size, &err), err);
    assert_true(isnan(size));
    expect_error(poa_cli_double(&cli, &tool_spec, "size", 1, 0, 10, false, &size, &err),
                 POA_ERR_ARG, &err, "got 'nan'", NULL);
    poa_cli_free(&cli);
    char *none[] = {"prog", NULL};
    assert_ok(poa_cli_parse(&cli, &tool_spec, 1, none, &err), err);
    assert_ok(poa_cli_double(&cli, &tool_spec, "size", 7, 0, 1, false, &absent, &err), err);
    assert_double_exact(absent, 7, "default");
    poa_cli_free(&cli);
    char *override[] = {"prog", "optim.epochs=3", NULL};
    expect_error(poa_cli_parse(&cli, &tool_spec, 2, override, &err), POA_ERR_ARG, &err,
                 "unexpected argument 'optim.epochs=3'", NULL);
    poa_cli_free(&cli);
    /* --help: continuation lines under the text, no configuration keys */
    const char *path = scratch_path("tool-help.txt");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    poa_cli_usage(&tool_spec, f);
    fclose(f);
    char text[4096] = "";
    f = fopen(path, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    if (!strstr(text, "      --size MB              a size\n"
                      "                             second line of the help\n"))
        fail_msg("continuation line not indented:\n%s", text);
    if (!strstr(text, "  -j, --count N") || !strstr(text, "      --config NAME"))
        fail_msg("options missing:\n%s", text);
    if (strstr(text, "Configuration keys")) fail_msg("configuration keys listed:\n%s", text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_official_vitl_recipe),
        cmocka_unit_test(test_finalize_derives_the_official_values),
        cmocka_unit_test(test_key_table_is_consistent),
        cmocka_unit_test(test_every_arch_has_a_valid_preset),
        cmocka_unit_test(test_levenshtein_and_closest_key),
        cmocka_unit_test(test_load_nested_keys_and_lists),
        cmocka_unit_test(test_empty_file_and_official_fsdp_keys),
        cmocka_unit_test(test_overrides_beat_files),
        cmocka_unit_test(test_unknown_key_names_the_closest),
        cmocka_unit_test(test_wrong_type_reports_place_and_expected_type),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_cross_key_rules_cite_the_keys),
        cmocka_unit_test(test_malformed_yaml_reports_line_and_column),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_write_and_reload_is_identical),
        cmocka_unit_test(test_string_values_are_utf8_and_reload),
        cmocka_unit_test(test_help_lists_every_key),
        cmocka_unit_test(test_shipped_configs_load_and_validate),
        cmocka_unit_test(test_cli_parses_configs_options_and_overrides),
        cmocka_unit_test(test_cli_builds_the_configuration_in_order),
        cmocka_unit_test(test_cli_main_setup_exit_codes),
        cmocka_unit_test(test_cli_numbers_and_tools_without_configuration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
