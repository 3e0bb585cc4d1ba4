/* test_model_source.c — models from files (src/modelio/model_source.h, export.h) on the tiny
 * configuration (configs/tiny.yaml: widths {32, 48, 64} × depths {2, 3, 4}):
 *  - a checkpoint opens with the model of its stored configuration and exactly the teacher or
 *    the student weights that were written; an evaluation checkpoint gives its teacher and
 *    refuses --from student; a run directory gives its newest checkpoint, skips a truncated
 *    one with a warning and stops at a format version it cannot read;
 *  - a /model description that contradicts the stored configuration is rejected, naming the
 *    attribute; so are files that are no poa model and extracted files of another version;
 *  - an exported sub-network reads back (HDF5 and safetensors) with every metadata field and
 *    exactly the weights of poa_extract_subnet;
 *  - sub-networks outside the elastic grid and named sizes the run does not have are refused
 *    with messages that list the valid ones;
 *  - extracted metadata outside its limits (sizes, a model larger than the file, blocks, eps) and
 *    a truncated extracted file are refused before anything is allocated for them;
 *  - the features runner refuses an unknown backend, bf16 on the CPU, and sizes outside its
 *    plan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "poa_config.h"
#include "io/h5util.h"
#include "model/extract.h"
#include "modelio/export.h"
#include "modelio/features.h"
#include "seeded_ckpt.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char out_dir[4096], tiny[4096];

static void dir_of(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", out_dir, name);
}

/* Every tensor of m equal in a and b (padding ignored). */
static void assert_same_tensors(const poa_model *m, const float *a, const float *b)
{
    for (int i = 0; i < m->table.n; i++) {
        const poa_param_desc *p = &m->table.p[i];
        if (memcmp(a + p->offset, b + p->offset, p->numel * sizeof(float)) != 0)
            fail_msg("tensor %s differs", p->name);
    }
}

static poa_model_source open_ok(const char *path, poa_weights_from from)
{
    poa_model_source s;
    poa_err err;
    if (poa_model_source_open(path, from, &s, &err) != POA_OK) fail_msg("%s", err.msg);
    return s;
}

static void expect_open_error(const char *path, poa_weights_from from, poa_status code,
                              const char *text)
{
    poa_model_source s;
    poa_err err = {0};
    poa_status st = poa_model_source_open(path, from, &s, &err);
    poa_model_source_close(&s);
    if (st != code || !strstr(err.msg, text))
        fail_msg("%s: status %d '%s' (want %d, '%s')", path, st, err.msg, code, text);
}

static void set_attr_i64(const char *path, const char *group, const char *name, int64_t v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t g = group ? H5Gopen2(f, group, H5P_DEFAULT) : f;
    H5Adelete(g, name);
    poa_err err;
    assert_int_equal(poa_h5_attr_write_i64(g, name, v, &err), POA_OK);
    if (group) H5Gclose(g);
    H5Fclose(f);
}

static void test_checkpoint_weights(void **state)
{
    (void) state;
    char dir[4200], path[4300];
    dir_of(dir, sizeof dir, "run");
    poa_model m;
    float *teacher;
    assert_int_equal(seeded_ckpt_write(dir, tiny, NULL, 0, 5, 41, &m, &teacher), 0);
    snprintf(path, sizeof path, "%s/checkpoint_0000041.h5", dir);

    poa_model_source t = open_ok(path, POA_FROM_TEACHER);
    assert_int_equal(t.kind, POA_SOURCE_CHECKPOINT);
    assert_string_equal(t.model.cfg.arch, "tiny");
    assert_int_equal(t.model.table.n, m.table.n);
    assert_int_equal(t.model.cfg.max_embed_dim, 64);
    assert_int_equal(t.model.cfg.min_depth, 2);
    assert_int_equal(t.iteration, 41);
    assert_string_equal(t.content, "full");
    assert_non_null(strstr(t.config_yaml, "arch: tiny"));
    assert_same_tensors(&m, t.params, teacher);
    poa_model_source_close(&t);

    float *student = malloc(m.table.total * sizeof(float));
    seeded_params(&m, student, 6);
    poa_model_source s = open_ok(path, POA_FROM_STUDENT);
    assert_int_equal(s.from, POA_FROM_STUDENT);
    assert_same_tensors(&m, s.params, student);
    poa_model_source_close(&s);

    snprintf(path, sizeof path, "%s/eval/training_41/teacher_checkpoint.h5", dir);
    poa_model_source e = open_ok(path, POA_FROM_TEACHER);
    assert_string_equal(e.content, "teacher");
    assert_same_tensors(&m, e.params, teacher);
    poa_model_source_close(&e);
    expect_open_error(path, POA_FROM_STUDENT, POA_ERR_ARG, "evaluation checkpoint");

    free(student);
    free(teacher);
    poa_model_free(&m);
}

static void test_run_directory(void **state)
{
    (void) state;
    char dir[4200], p9[4300];
    dir_of(dir, sizeof dir, "dir");
    assert_int_equal(seeded_ckpt_write(dir, tiny, NULL, 0, 1, 5, NULL, NULL), 0);
    assert_int_equal(seeded_ckpt_write(dir, tiny, NULL, 0, 2, 9, NULL, NULL), 0);
    snprintf(p9, sizeof p9, "%s/checkpoint_0000009.h5", dir);
    poa_model_source s = open_ok(dir, POA_FROM_TEACHER);
    assert_string_equal(s.path, p9);
    assert_int_equal(s.iteration, 9);
    poa_model_source_close(&s);

    assert_int_equal(truncate(p9, 4096), 0); /* the newest is cut short: the one before */
    s = open_ok(dir, POA_FROM_TEACHER);
    assert_int_equal(s.iteration, 5);
    poa_model_source_close(&s);
    expect_open_error(p9, POA_FROM_TEACHER, POA_ERR_FORMAT, "truncated");

    assert_int_equal(seeded_ckpt_write(dir, tiny, NULL, 0, 2, 9, NULL, NULL), 0);
    set_attr_i64(p9, NULL, "format_version", 7); /* another version stops the search */
    expect_open_error(dir, POA_FROM_TEACHER, POA_ERR_VERSION, "format version 7");

    char empty[4200];
    dir_of(empty, sizeof empty, "empty");
    char cmd[8500];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", empty);
    assert_int_equal(system(cmd), 0);
    expect_open_error(empty, POA_FROM_TEACHER, POA_ERR_NOTFOUND, "holds no checkpoint");
    dir_of(empty, sizeof empty, "nothing-here");
    expect_open_error(empty, POA_FROM_TEACHER, POA_ERR_NOTFOUND, "No such file");
}

static void test_mismatch(void **state)
{
    (void) state;
    char dir[4200], path[4300];
    dir_of(dir, sizeof dir, "mismatch");
    assert_int_equal(seeded_ckpt_write(dir, tiny, NULL, 0, 3, 1, NULL, NULL), 0);
    snprintf(path, sizeof path, "%s/checkpoint_0000001.h5", dir);
    set_attr_i64(path, "model", "head_dim", 32);
    expect_open_error(path, POA_FROM_TEACHER, POA_ERR_FORMAT, "/model attribute 'head_dim' = 32");

    /* a file that is no poa model, and one that is not HDF5 or safetensors */
    char other[4300];
    snprintf(other, sizeof other, "%s/plain.h5", dir);
    hid_t f = H5Fcreate(other, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    expect_open_error(other, POA_FROM_TEACHER, POA_ERR_VERSION, "neither a poa checkpoint");
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    FILE *t = fopen(other, "w");
    fputs("hello, world\n", t);
    fclose(t);
    expect_open_error(other, POA_FROM_TEACHER, POA_ERR_FORMAT, "neither an HDF5 nor a safetensors");
}

static void check_meta(const poa_extracted_meta *x, const poa_model_source *src)
{
    assert_int_equal(x->embed_dim, 32);
    assert_int_equal(x->depth, 2);
    assert_int_equal(x->num_heads, 2);
    assert_int_equal(x->head_dim, 16);
    assert_int_equal(x->mlp_ratio, 4);
    assert_int_equal(x->patch_size, 8);
    assert_int_equal(x->img_size, 32);
    assert_int_equal(x->in_chans, 3);
    assert_true(x->ln_eps == 1e-6);
    assert_int_equal(x->blocks[0], 0);
    assert_int_equal(x->blocks[1], 3);
    assert_int_equal(x->source_iteration, 77);
    assert_string_equal(x->source_weights, "student");
    assert_string_equal(x->source_arch, "tiny");
    assert_int_equal(x->source_embed_dim, 64);
    assert_int_equal(x->source_depth, 4);
    assert_true(x->alpha == 2.0);
    assert_string_equal(x->program_version, PACKAGE_VERSION);
    assert_int_equal(strlen(x->created), 20);
    assert_non_null(strstr(x->source_checkpoint, "/export/checkpoint_0000077.h5"));
    assert_true(x->source_checkpoint[0] == '/');
    assert_string_equal(x->config_yaml, src->config_yaml);
}

/* A seeded checkpoint in out_dir/NAME (iteration it) opened with the weights `from`, and its
 * sub-network 32x2 exported to out_dir/NAME/out in `formats` (paths in order h5, safetensors). */
static poa_model_source export_32x2(const char *name, int64_t it, poa_weights_from from,
                                    unsigned formats, char (*paths)[POA_IO_PATH_MAX])
{
    char dir[4200], xdir[4300];
    dir_of(dir, sizeof dir, name);
    snprintf(xdir, sizeof xdir, "%s/out", dir);
    assert_int_equal(seeded_ckpt_write(dir, tiny, NULL, 0, 8, it, NULL, NULL), 0);
    poa_model_source src = open_ok(dir, from);
    poa_err err;
    if (poa_export_subnet(&src, 32, 2, xdir, formats, paths, &err) != POA_OK)
        fail_msg("%s", err.msg);
    return src;
}

static void test_export_round_trip(void **state)
{
    (void) state;
    char xdir[4200];
    dir_of(xdir, sizeof xdir, "export/out");
    char paths[2][POA_IO_PATH_MAX];
    poa_model_source src =
        export_32x2("export", 77, POA_FROM_STUDENT, POA_FILE_H5 | POA_FILE_SAFETENSORS, paths);
    poa_err err;
    assert_non_null(strstr(paths[0], "/vit_32x2.h5"));
    assert_non_null(strstr(paths[1], "/vit_32x2.safetensors"));
    poa_model want;
    float *want_w;
    assert_int_equal(poa_extract_subnet(&src.model, src.params, 32, 2, &want, &want_w, &err),
                     POA_OK);
    for (int k = 0; k < 2; k++) {
        poa_extracted_meta x;
        poa_file_format fmt;
        if (poa_extracted_read_meta(paths[k], &fmt, &x, &err) != POA_OK) fail_msg("%s", err.msg);
        assert_int_equal(fmt, k == 0 ? POA_FILE_H5 : POA_FILE_SAFETENSORS);
        check_meta(&x, &src);
        poa_extracted_meta_free(&x);
        poa_model_source s = open_ok(paths[k], POA_FROM_TEACHER);
        assert_int_equal(s.kind, POA_SOURCE_EXTRACTED);
        assert_int_equal(s.from, POA_FROM_STUDENT);
        assert_int_equal(s.model.table.n, want.table.n);
        for (int i = 0; i < want.table.n; i++)
            assert_string_equal(s.model.table.p[i].name, want.table.p[i].name);
        assert_string_equal(s.model.table.p[want.table.n - 1].name, "norm.bias");
        assert_same_tensors(&want, s.params, want_w);
        poa_subnet only[4];
        assert_int_equal(poa_model_source_subnets(&s, only, 4), 1);
        assert_int_equal(only[0].width, 32);
        poa_model_source_close(&s);
    }
    /* an extracted file of another format version */
    set_attr_i64(paths[0], NULL, "format_version", 2);
    expect_open_error(paths[0], POA_FROM_TEACHER, POA_ERR_VERSION, "format version 2");
    /* extracting from an extracted file is refused */
    poa_model_source s = open_ok(paths[1], POA_FROM_TEACHER);
    assert_int_equal(poa_export_subnet(&s, 32, 2, xdir, POA_FILE_H5, NULL, &err), POA_ERR_ARG);
    poa_model_source_close(&s);
    free(want_w);
    poa_model_free(&want);
    poa_model_source_close(&src);
}

static void test_subnets_and_names(void **state)
{
    (void) state;
    char dir[4200];
    dir_of(dir, sizeof dir, "names");
    assert_int_equal(seeded_ckpt_write(dir, tiny, NULL, 0, 9, 3, NULL, NULL), 0);
    poa_model_source src = open_ok(dir, POA_FROM_TEACHER);
    poa_subnet all[16], sn;
    assert_int_equal(poa_model_source_subnets(&src, all, 16), 9);
    assert_int_equal(all[0].width, 32);
    assert_int_equal(all[0].depth, 2);
    assert_int_equal(all[8].width, 64);
    assert_int_equal(all[8].depth, 4);
    poa_err err;
    assert_int_equal(poa_model_source_subnet(&src, 48, 3, &sn, &err), POA_OK);
    assert_int_equal(sn.blocks[1], 1);
    assert_int_equal(poa_model_source_subnet(&src, 40, 2, &sn, &err), POA_ERR_ARG);
    assert_non_null(strstr(err.msg, "width 40 is not an elastic width"));
    assert_non_null(strstr(err.msg, "widths 32, 48, 64; depths 2, 3, 4"));
    assert_int_equal(poa_model_source_subnet(&src, 64, 5, &sn, &err), POA_ERR_ARG);
    assert_non_null(strstr(err.msg, "depth 5 is not an elastic depth"));
    assert_int_equal(poa_model_source_subnet(&src, 16, 1, &sn, &err), POA_ERR_ARG);
    assert_int_equal(poa_model_source_named(&src, "tiny", &sn, &err), POA_OK);
    assert_int_equal(sn.width, 64);
    assert_int_equal(sn.depth, 4);
    assert_int_equal(poa_model_source_named(&src, "vit_small", &sn, &err), POA_ERR_ARG);
    assert_non_null(strstr(err.msg, "named sizes of this model: tiny (64x4)"));
    assert_int_equal(poa_model_source_named(&src, "vit_huge", &sn, &err), POA_ERR_ARG);
    assert_non_null(strstr(err.msg, "not an architecture name"));
    poa_model_source_close(&src);
}

/* A fresh copy of src named name in the test folder (path in buf). */
static void copy_of(const char *src, const char *name, char *buf, size_t n)
{
    dir_of(buf, n, name);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, buf);
    assert_int_equal(system(cmd), 0);
}

static void set_attr_f64(const char *path, const char *name, double v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    poa_err err;
    assert_int_equal(poa_h5_attr_write_f64(f, name, v, &err), POA_OK);
    H5Fclose(f);
}

static void set_attr_i64s(const char *path, const char *name, const int64_t *v, size_t n)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    poa_err err;
    assert_int_equal(poa_h5_attr_write_i64_array(f, name, v, n, &err), POA_OK);
    H5Fclose(f);
}

/* Extracted metadata is checked before the model is built and its weights allocated: sizes out
 * of range, a model larger than the file, blocks and eps that poa cannot have written. */
static void test_extracted_limits(void **state)
{
    (void) state;
    char path[4300], paths[2][POA_IO_PATH_MAX];
    poa_model_source src = export_32x2("limits", 5, POA_FROM_TEACHER, POA_FILE_H5, paths);
    poa_model_source_close(&src);

    copy_of(paths[0], "limits/mlp.h5", path, sizeof path);
    set_attr_i64(path, NULL, "mlp_ratio", (int64_t) 1 << 31);
    expect_open_error(path, POA_FROM_TEACHER, POA_ERR_FORMAT,
                      "metadata 'mlp_ratio' = 2147483648 is not in [1, 32768]");
    copy_of(paths[0], "limits/depth.h5", path, sizeof path);
    set_attr_i64(path, NULL, "depth", 0);
    expect_open_error(path, POA_FROM_TEACHER, POA_ERR_FORMAT, "'depth' = 0 is not in [1, 128]");
    /* in range, but 2 GiB of position embeddings in a file of a few hundred KB */
    copy_of(paths[0], "limits/image.h5", path, sizeof path);
    set_attr_i64(path, NULL, "img_size", 32768);
    expect_open_error(path, POA_FROM_TEACHER, POA_ERR_FORMAT, "more than the");
    copy_of(paths[0], "limits/source.h5", path, sizeof path);
    set_attr_i64(path, NULL, "source_depth", 1);
    expect_open_error(path, POA_FROM_TEACHER, POA_ERR_FORMAT, "a 32x2 model cut from a 64x1 one");
    const int64_t backwards[2] = {3, 1};
    copy_of(paths[0], "limits/blocks.h5", path, sizeof path);
    set_attr_i64s(path, "blocks", backwards, 2);
    expect_open_error(path, POA_FROM_TEACHER, POA_ERR_FORMAT,
                      "1 at position 1 is not an increasing");
    copy_of(paths[0], "limits/eps.h5", path, sizeof path);
    set_attr_f64(path, "ln_eps", INFINITY);
    expect_open_error(path, POA_FROM_TEACHER, POA_ERR_FORMAT, "ln_eps inf");
    /* cut short: the superblock check names it before libhdf5 reads it */
    copy_of(paths[0], "limits/cut.h5", path, sizeof path);
    assert_int_equal(truncate(path, 4000), 0);
    expect_open_error(path, POA_FROM_TEACHER, POA_ERR_FORMAT,
                      "truncated: the HDF5 superblock records");
}

/* The features runner refuses what it cannot do, with the reason. */
static void test_features_refusals(void **state)
{
    (void) state;
    char dir[4200];
    dir_of(dir, sizeof dir, "features");
    assert_int_equal(seeded_ckpt_write(dir, tiny, NULL, 0, 4, 2, NULL, NULL), 0);
    poa_model_source src = open_ok(dir, POA_FROM_TEACHER);
    poa_features *f;
    poa_err err;
    poa_features_opts o = {.backend = "tpu", .max_images = 2};
    assert_int_equal(poa_features_create(&f, &src, &o, &err), POA_ERR_ARG);
    assert_non_null(strstr(err.msg, "backend 'tpu'"));
    o = (poa_features_opts){.backend = "cpu", .max_images = 2, .compute_dtype = POA_DT_BF16};
    assert_int_equal(poa_features_create(&f, &src, &o, &err), POA_ERR_ARG);
    assert_non_null(strstr(err.msg, "bf16"));
    o = (poa_features_opts){.backend = "cpu", .max_images = 2, .max_size = 20};
    assert_int_equal(poa_features_create(&f, &src, &o, &err), POA_ERR_ARG);
    o.max_size = 0; /* the model's image size, 32 */
    assert_int_equal(poa_features_create(&f, &src, &o, &err), POA_OK);
    float img[3 * 3 * 32 * 32] = {0}, cls[3 * 64];
    poa_subnet sn = poa_subnet_intact(&src.model.cfg);
    assert_int_equal(poa_features_run(f, &sn, img, 3, 32, 32, cls, NULL, &err), POA_ERR_ARG);
    assert_int_equal(poa_features_run(f, &sn, img, 2, 40, 40, cls, NULL, &err), POA_ERR_ARG);
    assert_non_null(strstr(err.msg, "planned: at most 2 of at most 32 px"));
    assert_int_equal(poa_features_run(f, &sn, img, 2, 32, 32, cls, NULL, &err), POA_OK);
    poa_features_destroy(f);
    poa_model_source_close(&src);
}

int main(void)
{
    const char *top = getenv("POA_TOP_BUILDDIR"), *src = getenv("POA_TOP_SRCDIR");
    if (!top || !src) {
        fprintf(stderr, "run through make check (POA_TOP_BUILDDIR, POA_TOP_SRCDIR)\n");
        return 1;
    }
    snprintf(out_dir, sizeof out_dir, "%s/tests/out/modelio/source", top);
    snprintf(tiny, sizeof tiny, "%s/configs/tiny.yaml", src);
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", out_dir, out_dir);
    if (system(cmd) != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_weights), cmocka_unit_test(test_run_directory),
        cmocka_unit_test(test_mismatch),           cmocka_unit_test(test_export_round_trip),
        cmocka_unit_test(test_subnets_and_names),  cmocka_unit_test(test_features_refusals),
        cmocka_unit_test(test_extracted_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
