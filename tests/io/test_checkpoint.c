/* test_checkpoint.c — HDF5 checkpoints (src/io/checkpoint.h): bit-exact round trip, keep-last-N
 * rotation, fallback past truncated / corrupt files with a warning, format version and missing
 * tensor errors, leftover temporary files, evaluation checkpoints, and signals/kills during a
 * write never leaving a partial file under a final name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "poa_config.h"
#include "common/log.h"
#include "common/rng.h"
#include "comm/signals.h"
#include "io/checkpoint.h"
#include "io/h5util.h"
#include "tiny_table.h"

#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ fixtures */

typedef struct fixture {
    poa_param_table t;
    float *buf[4];  /* teacher, student, m, v as written */
    float *back[4]; /* loaded */
    uint64_t blob0[5], blob1[1];
    uint64_t *blobs[2];
    size_t blob_len[2];
    float center[16];
    poa_ckpt_array arrays[1];
    poa_ckpt_header h;
    char dir[512];
} fixture;

static const char *test_root(void)
{
    const char *b = getenv("POA_TOP_BUILDDIR");
    return b && b[0] ? b : ".";
}

/* A fresh, empty directory under the build tree for one test. */
static void fresh_dir(char *dir, size_t n, const char *name)
{
    snprintf(dir, n, "%s/tests/out/io/%s", test_root(), name);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    assert_int_equal(system(cmd), 0);
}

/* Random bit patterns (including NaN payloads and denormals): the round trip must keep bits. */
static void fill_random_bits(float *p, size_t n, uint64_t seed)
{
    poa_rng r;
    poa_rng_init(&r, seed, 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = poa_rng_u32(&r);
        memcpy(&p[i], &u, sizeof u);
    }
}

static poa_ckpt_tensors tensors_of(float **b)
{
    poa_ckpt_tensors x = {b[0], b[1], b[2], b[3]};
    return x;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    tiny_table_build(&f->t, &TINY_DEFAULT);
    for (int k = 0; k < 4; k++) {
        f->buf[k] = calloc(f->t.total, sizeof(float));
        f->back[k] = calloc(f->t.total, sizeof(float));
        fill_random_bits(f->buf[k], f->t.total, 100 + (uint64_t) k);
    }
    for (int i = 0; i < 5; i++) f->blob0[i] = 0xF000000000000000ull + (uint64_t) i;
    f->blobs[0] = f->blob0;
    f->blobs[1] = f->blob1;
    f->blob_len[0] = 5;
    f->blob_len[1] = 0; /* an empty state is allowed */
    for (int i = 0; i < 16; i++) f->center[i] = 0.25f * (float) i - 1.0f;
    f->arrays[0] = (poa_ckpt_array){"dino_center_0", f->center, 16};
    poa_ckpt_header *h = &f->h;
    h->iteration = 12;
    h->epoch = 1;
    h->adam_step = 13;
    h->world_size = 2;
    h->rank_groups_per_rank = 3;
    h->config_yaml = "train:\n  seed: 0  # ünïcödé\nstudent:\n  arch: vit_tiny\n";
    h->n_rank_states = 2;
    h->rank_state = f->blobs;
    h->rank_state_len = f->blob_len;
    h->n_arrays = 1;
    h->arrays = f->arrays;
    poa_meta_set_int(&h->meta, "head_dim", 16);
    poa_meta_set_int(&h->meta, "patch_size", 4);
    poa_meta_set_int(&h->meta, "img_size", 16);
    int64_t widths[] = {16, 32}, depths[] = {1, 2}, one[] = {7};
    poa_meta_set_ints(&h->meta, "elastic_widths", widths, 2);
    poa_meta_set_ints(&h->meta, "elastic_depths", depths, 2);
    poa_meta_set_ints(&h->meta, "single", one, 1); /* a 1-element vector stays a vector */
    poa_meta_set_string(&h->meta, "arch", "vit_tiny");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int k = 0; k < 4; k++) {
        free(f->buf[k]);
        free(f->back[k]);
    }
    poa_params_free(&f->t);
    free(f);
    return 0;
}

static void write_ok(fixture *f, int64_t it, int keep)
{
    poa_ckpt_tensors x = tensors_of(f->buf);
    poa_ckpt_write_opts o = {.keep = keep};
    poa_err e = {0};
    f->h.iteration = it;
    poa_status st = poa_ckpt_write(f->dir, &f->t, &x, &f->h, &o, NULL, 0, &e);
    if (st) fail_msg("write %lld: %s", (long long) it, e.msg);
}

/* Compare every parameter's bits; print the first difference. */
static void assert_params_identical(const poa_param_table *t, const float *a, const float *b,
                                    const char *what)
{
    for (int i = 0; i < t->n; i++) {
        const poa_param_desc *d = &t->p[i];
        if (memcmp(a + d->offset, b + d->offset, d->numel * sizeof(float)) != 0) {
            for (size_t j = 0; j < d->numel; j++) {
                uint32_t x, y;
                memcpy(&x, a + d->offset + j, 4);
                memcpy(&y, b + d->offset + j, 4);
                if (x != y)
                    fail_msg("%s %s.%s element %zu: wrote 0x%08x, read 0x%08x", what, d->module,
                             d->name, j, x, y);
            }
        }
    }
}

/* Run fn with stderr redirected to a file; return what it printed (malloc'ed). */
static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = calloc(1, (size_t) n + 1);
    if (n > 0) assert_int_equal(fread(s, 1, (size_t) n, fp), (size_t) n);
    fclose(fp);
    return s;
}

static int stderr_begin(const char *path)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);
    return saved;
}

static char *stderr_end(int saved, const char *path)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *s = read_file(path);
    fprintf(stderr, "%s", s); /* keep the output visible in the test log */
    return s;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle)) fail_msg("expected \"%s\" in: %s", needle, haystack);
}

/* ------------------------------------------------------------------ tests */

static void test_round_trip_identical_bits(void **state)
{
    fixture *f = *state;
    fresh_dir(f->dir, sizeof f->dir, "round_trip");
    write_ok(f, 12, 3);

    float center_back[16] = {0};
    poa_ckpt_array arr = {"dino_center_0", center_back, 16};
    poa_ckpt_header h = {.n_arrays = 1, .arrays = &arr};
    poa_ckpt_tensors x = tensors_of(f->back);
    poa_ckpt_load_opts o = {.expect_world_size = 4}; /* a different world size is allowed */
    char path[600];
    poa_err e = {0};
    poa_status st = poa_ckpt_load_latest(f->dir, &f->t, &x, &h, &o, path, sizeof path, &e);
    if (st) fail_msg("load: %s", e.msg);
    assert_contains(path, "checkpoint_0000012.h5");
    const char *names[4] = {"teacher", "student", "exp_avg", "exp_avg_sq"};
    for (int k = 0; k < 4; k++) assert_params_identical(&f->t, f->buf[k], f->back[k], names[k]);
    assert_memory_equal(center_back, f->center, sizeof center_back);
    assert_int_equal(h.iteration, 12);
    assert_int_equal(h.epoch, 1);
    assert_int_equal(h.adam_step, 13);
    assert_int_equal(h.world_size, 2);
    assert_int_equal(h.rank_groups_per_rank, 3);
    assert_string_equal(h.program_version, PACKAGE_VERSION);
    assert_string_equal(h.config_yaml, f->h.config_yaml);
    assert_int_equal(h.n_rank_states, 2);
    assert_int_equal(h.rank_state_len[0], 5);
    assert_int_equal(h.rank_state_len[1], 0);
    assert_memory_equal(h.rank_state[0], f->blob0, sizeof f->blob0);
    /* model meta: same items, types and values, in the order written */
    assert_int_equal(h.meta.n, f->h.meta.n);
    for (int i = 0; i < h.meta.n; i++) {
        const poa_meta_item *a = &f->h.meta.item[i], *b = &h.meta.item[i];
        assert_string_equal(b->key, a->key);
        assert_int_equal(b->type, a->type);
        assert_int_equal(b->n, a->n);
        assert_memory_equal(b->v, a->v, (size_t) a->n * sizeof a->v[0]);
        assert_string_equal(b->s, a->s);
    }
    poa_ckpt_header_free(&h);

    /* A partial load (teacher only) of the same file works; the header is optional. */
    memset(f->back[0], 0, f->t.total * sizeof(float));
    poa_ckpt_tensors teacher_only = {.teacher = f->back[0]};
    st = poa_ckpt_load(path, &f->t, &teacher_only, NULL, NULL, &e);
    if (st) fail_msg("teacher-only load: %s", e.msg);
    assert_params_identical(&f->t, f->buf[0], f->back[0], "teacher");
}

static void test_keep_last_n(void **state)
{
    fixture *f = *state;
    fresh_dir(f->dir, sizeof f->dir, "rotation");
    for (int64_t it = 100; it <= 500; it += 100) write_ok(f, it, 2);
    int64_t *its = NULL;
    int n = 0;
    poa_err e = {0};
    assert_int_equal(poa_ckpt_list(f->dir, &its, &n, &e), POA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(its[0], 500);
    assert_int_equal(its[1], 400);
    free(its);
    char path[600];
    poa_ckpt_path(f->dir, 300, path, sizeof path);
    assert_int_not_equal(access(path, F_OK), 0);
    /* Numeric, not lexicographic, order past 7 digits. */
    write_ok(f, 12345678, 2);
    assert_int_equal(poa_ckpt_list(f->dir, &its, &n, &e), POA_OK);
    assert_int_equal(n, 2);
    assert_int_equal(its[0], 12345678);
    assert_int_equal(its[1], 500);
    free(its);
}

static void truncate_to_half(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, sb.st_size / 2), 0);
    close(fd);
}

static void test_truncated_newest_falls_back(void **state)
{
    fixture *f = *state;
    fresh_dir(f->dir, sizeof f->dir, "truncated");
    write_ok(f, 10, 3);
    write_ok(f, 20, 3);
    char newest[600], log[700], path[600];
    poa_ckpt_path(f->dir, 20, newest, sizeof newest);
    truncate_to_half(newest);

    poa_err e = {0};
    poa_ckpt_tensors x = tensors_of(f->back);
    assert_int_not_equal(poa_ckpt_load(newest, &f->t, &x, NULL, NULL, &e), POA_OK);
    assert_contains(e.msg, "checkpoint_0000020.h5");

    snprintf(log, sizeof log, "%s/stderr.txt", f->dir);
    int saved = stderr_begin(log);
    poa_ckpt_header h = {0};
    poa_status st = poa_ckpt_load_latest(f->dir, &f->t, &x, &h, NULL, path, sizeof path, &e);
    char *printed = stderr_end(saved, log);
    if (st) fail_msg("fallback load: %s", e.msg);
    assert_contains(path, "checkpoint_0000010.h5");
    assert_int_equal(h.iteration, 10);
    assert_contains(printed, "warning: skipping checkpoint");
    assert_contains(printed, "checkpoint_0000020.h5");
    assert_contains(printed, "resuming from");
    free(printed);
    poa_ckpt_header_free(&h);
    assert_params_identical(&f->t, f->buf[1], f->back[1], "student");
}

/* Flip one byte inside the stored data of a tensor: the Fletcher-32 checksum catches it. */
static void corrupt_tensor(const char *path, const char *dataset)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t ds = H5Dopen2(file, dataset, H5P_DEFAULT);
    assert_true(ds >= 0);
    hsize_t off[4];
    unsigned mask = 0;
    haddr_t addr = 0;
    hsize_t size = 0;
    hid_t space = H5Dget_space(ds);
    assert_true(H5Dget_chunk_info(ds, space, 0, off, &mask, &addr, &size) >= 0);
    assert_true(size > 17);
    H5Sclose(space);
    H5Dclose(ds);
    H5Fclose(file);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, (off_t) addr + 17), 1);
    c ^= 0x01;
    assert_int_equal(pwrite(fd, &c, 1, (off_t) addr + 17), 1);
    close(fd);
}

static void test_corrupt_tensor_detected(void **state)
{
    fixture *f = *state;
    fresh_dir(f->dir, sizeof f->dir, "corrupt");
    write_ok(f, 10, 3);
    write_ok(f, 20, 3);
    char newest[600], path[600];
    poa_ckpt_path(f->dir, 20, newest, sizeof newest);
    corrupt_tensor(newest, "/student/backbone.blocks.1.mlp.fc1.linear.weight");

    poa_err e = {0};
    poa_ckpt_tensors x = tensors_of(f->back);
    poa_status st = poa_ckpt_load(newest, &f->t, &x, NULL, NULL, &e);
    assert_int_equal(st, POA_ERR_FORMAT);
    assert_contains(e.msg, "backbone.blocks.1.mlp.fc1.linear.weight");
    assert_contains(e.msg, "checksum");
    st = poa_ckpt_load_latest(f->dir, &f->t, &x, NULL, NULL, path, sizeof path, &e);
    if (st) fail_msg("fallback load: %s", e.msg);
    assert_contains(path, "checkpoint_0000010.h5");
}

static void set_root_attr(const char *path, const char *name, int64_t v, const char *s)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(file >= 0);
    poa_err e;
    if (s)
        assert_int_equal(poa_h5_attr_write_string(file, name, s, &e), POA_OK);
    else
        assert_int_equal(poa_h5_attr_write_i64(file, name, v, &e), POA_OK);
    H5Fclose(file);
}

static void test_wrong_version_is_an_error(void **state)
{
    fixture *f = *state;
    fresh_dir(f->dir, sizeof f->dir, "version");
    write_ok(f, 10, 3);
    write_ok(f, 20, 3);
    char newest[600], path[600];
    poa_ckpt_path(f->dir, 20, newest, sizeof newest);
    set_root_attr(newest, "format_version", 99, NULL);
    set_root_attr(newest, "program_version", 0, "9.9.9");

    poa_err e = {0};
    poa_ckpt_tensors x = tensors_of(f->back);
    assert_int_equal(poa_ckpt_load(newest, &f->t, &x, NULL, NULL, &e), POA_ERR_VERSION);
    assert_contains(e.msg, "format version 99");
    assert_contains(e.msg, "written by poa 9.9.9");
    assert_contains(e.msg, "reads version 1");
    assert_contains(e.msg, "resume it with poa 9.9.9");
    /* Not a corrupt file: the search stops instead of silently resuming from an older one. */
    assert_int_equal(poa_ckpt_load_latest(f->dir, &f->t, &x, NULL, NULL, path, sizeof path, &e),
                     POA_ERR_VERSION);
    poa_ckpt_header h = {0};
    assert_int_equal(poa_ckpt_read_header(newest, &h, &e), POA_ERR_VERSION);

    set_root_attr(newest, "format", 0, "poa-shard");
    assert_int_equal(poa_ckpt_load(newest, &f->t, &x, NULL, NULL, &e), POA_ERR_VERSION);
    assert_contains(e.msg, "is a 'poa-shard' file, not a 'poa-checkpoint'");
}

static void test_missing_or_mismatched_tensor(void **state)
{
    fixture *f = *state;
    fresh_dir(f->dir, sizeof f->dir, "missing");
    write_ok(f, 10, 3);
    char path[600];
    poa_ckpt_path(f->dir, 10, path, sizeof path);
    poa_ckpt_tensors x = tensors_of(f->back);
    poa_err e = {0};

    /* A model with one more head: its tensors are missing from the file. */
    tiny_dims more = TINY_DEFAULT;
    more.n_heads = 3;
    more.K[2] = 8;
    poa_param_table big;
    tiny_table_build(&big, &more);
    float *bigbuf = calloc(big.total, sizeof(float));
    poa_ckpt_tensors bx = {.teacher = bigbuf};
    assert_int_equal(poa_ckpt_load(path, &big, &bx, NULL, NULL, &e), POA_ERR_NOTFOUND);
    assert_contains(e.msg, "/teacher");
    assert_contains(e.msg, "dino_head.mlp2.0.linear.weight");
    free(bigbuf);
    poa_params_free(&big);

    /* A wider model: shapes differ, both are named. */
    tiny_dims wide = TINY_DEFAULT;
    wide.D = 48;
    poa_param_table w;
    tiny_table_build(&w, &wide);
    float *wbuf = calloc(w.total, sizeof(float));
    poa_ckpt_tensors wx = {.teacher = wbuf};
    assert_int_equal(poa_ckpt_load(path, &w, &wx, NULL, NULL, &e), POA_ERR_FORMAT);
    assert_contains(e.msg, "backbone.cls_token");
    assert_contains(e.msg, "[1, 1, 32], expected [1, 1, 48]");
    free(wbuf);
    poa_params_free(&w);

    /* A model with fewer heads: the file has tensors the model lacks. */
    tiny_dims fewer = TINY_DEFAULT;
    fewer.n_heads = 1;
    poa_param_table s;
    tiny_table_build(&s, &fewer);
    float *sbuf = calloc(s.total, sizeof(float));
    poa_ckpt_tensors sx = {.teacher = sbuf};
    assert_int_equal(poa_ckpt_load(path, &s, &sx, NULL, NULL, &e), POA_ERR_FORMAT);
    assert_contains(e.msg, "is not a tensor of this model");
    poa_ckpt_load_opts lenient = {.allow_extra_tensors = 1};
    if (poa_ckpt_load(path, &s, &sx, NULL, &lenient, &e)) fail_msg("lenient load: %s", e.msg);
    free(sbuf);
    poa_params_free(&s);

    /* A tensor deleted from the file. */
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(file >= 0);
    assert_true(H5Ldelete(file, "/student/backbone.blocks.1.ls2.gamma", H5P_DEFAULT) >= 0);
    H5Fclose(file);
    assert_int_equal(poa_ckpt_load(path, &f->t, &x, NULL, NULL, &e), POA_ERR_NOTFOUND);
    assert_contains(e.msg, "/student");
    assert_contains(e.msg, "'backbone.blocks.1.ls2.gamma' is missing");
    assert_contains(e.msg, "checkpoint_0000010.h5");
}

static void test_leftover_temp_file(void **state)
{
    fixture *f = *state;
    fresh_dir(f->dir, sizeof f->dir, "tempfile");
    write_ok(f, 20, 3);
    /* A "crash" during the write of iteration 30 left its temporary file behind, and a crash
     * during an evaluation checkpoint left another. */
    char tmp[700], etmp[800], edir[700], path[600];
    snprintf(tmp, sizeof tmp, "%s/.checkpoint_0000030.h5.tmp.4242", f->dir);
    snprintf(edir, sizeof edir, "%s/eval/training_30", f->dir);
    snprintf(etmp, sizeof etmp, "%s/.teacher_checkpoint.h5.tmp.4242", edir);
    FILE *fp = fopen(tmp, "wb");
    assert_non_null(fp);
    fputs("\x89HDF\r\n\x1a\n partial", fp);
    fclose(fp);
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && echo partial > '%s'", edir, etmp);
    assert_int_equal(system(cmd), 0);

    int64_t *its = NULL;
    int n = 0;
    poa_err e = {0};
    assert_int_equal(poa_ckpt_list(f->dir, &its, &n, &e), POA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(its[0], 20);
    free(its);
    poa_ckpt_tensors x = tensors_of(f->back);
    if (poa_ckpt_load_latest(f->dir, &f->t, &x, NULL, NULL, path, sizeof path, &e))
        fail_msg("load: %s", e.msg);
    assert_contains(path, "checkpoint_0000020.h5");
    /* The next write removes both leftovers. */
    write_ok(f, 40, 3);
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_int_not_equal(access(etmp, F_OK), 0);
}

static void test_eval_checkpoint(void **state)
{
    fixture *f = *state;
    fresh_dir(f->dir, sizeof f->dir, "eval");
    f->h.iteration = 27679;
    char path[600];
    poa_err e = {0};
    if (poa_ckpt_write_eval(f->dir, &f->t, f->buf[0], &f->h, NULL, path, sizeof path, &e))
        fail_msg("write eval: %s", e.msg);
    assert_contains(path, "/eval/training_27679/teacher_checkpoint.h5");
    poa_ckpt_tensors x = {.teacher = f->back[0]};
    poa_ckpt_header h = {0};
    if (poa_ckpt_load(path, &f->t, &x, &h, NULL, &e)) fail_msg("load eval: %s", e.msg);
    assert_params_identical(&f->t, f->buf[0], f->back[0], "teacher");
    assert_int_equal(h.iteration, 27679);
    assert_non_null(poa_meta_get(&h.meta, "head_dim"));
    assert_int_equal(poa_meta_get(&h.meta, "head_dim")->v[0], 16);
    poa_ckpt_header_free(&h);
    /* It holds no student: asking for one names the missing group. */
    poa_ckpt_tensors xs = {.student = f->back[1]};
    assert_int_equal(poa_ckpt_load(path, &f->t, &xs, NULL, NULL, &e), POA_ERR_NOTFOUND);
    assert_contains(e.msg, "group /student is missing");
    /* Evaluation checkpoints are not resumable checkpoints. */
    int64_t *its = NULL;
    int n = -1;
    assert_int_equal(poa_ckpt_list(f->dir, &its, &n, &e), POA_OK);
    assert_int_equal(n, 0);
    free(its);
    assert_int_equal(poa_ckpt_load_latest(f->dir, &f->t, &x, NULL, NULL, NULL, 0, &e),
                     POA_ERR_NOTFOUND);
}

/* ------------------------------------------------------------------ signals during writes */

/* A larger table so that one write takes a few milliseconds. */
static void big_table(poa_param_table *t)
{
    tiny_dims g = TINY_DEFAULT;
    g.D = 128;
    g.depth = 4;
    g.hidden = 256;
    g.K[0] = 1024;
    g.K[1] = 2048;
    tiny_table_build(t, &g);
}

/* Child: write checkpoints in a loop; after a SIGTERM has been seen, finish and exit 75 (what
 * the trainer does: checkpoint, then POA_EXIT_REQUEUE). */
static _Noreturn void writer_child(const char *dir, int handle_signals)
{
    if (handle_signals) poa_signals_install();
    poa_log_set_level(POA_LOG_WARN);
    poa_param_table t;
    big_table(&t);
    float *buf = calloc(t.total, sizeof(float));
    fill_random_bits(buf, t.total, 7);
    poa_ckpt_tensors x = {buf, buf, buf, buf};
    poa_ckpt_header h = {.world_size = 1, .rank_groups_per_rank = 1};
    poa_ckpt_write_opts o = {.keep = 2};
    for (int64_t it = 1; it < 100000; it++) {
        poa_err e;
        h.iteration = it;
        if (poa_ckpt_write(dir, &t, &x, &h, &o, NULL, 0, &e)) {
            fprintf(stderr, "child: %s\n", e.msg);
            _exit(1);
        }
        if (poa_signal_pending()) _exit(POA_EXIT_REQUEUE);
    }
    _exit(2);
}

static void wait_for_first_checkpoint(const char *dir)
{
    char path[600];
    poa_ckpt_path(dir, 1, path, sizeof path);
    for (int i = 0; i < 2000 && access(path, F_OK) != 0; i++) usleep(5000);
    assert_int_equal(access(path, F_OK), 0);
}

/* Every file under a final name loads; what load_latest returns is a complete checkpoint. */
static void assert_all_final_files_load(const char *dir)
{
    poa_param_table t;
    big_table(&t);
    float *buf = calloc(t.total, sizeof(float));
    poa_ckpt_tensors x = {buf, buf, buf, buf};
    int64_t *its = NULL;
    int n = 0;
    poa_err e = {0};
    assert_int_equal(poa_ckpt_list(dir, &its, &n, &e), POA_OK);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        char path[600];
        poa_ckpt_path(dir, its[i], path, sizeof path);
        if (poa_ckpt_load(path, &t, &x, NULL, NULL, &e)) fail_msg("partial file: %s", e.msg);
    }
    free(its);
    free(buf);
    poa_params_free(&t);
}

static void test_sigterm_during_write_finishes_then_requeues(void **state)
{
    fixture *f = *state;
    fresh_dir(f->dir, sizeof f->dir, "sigterm");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) writer_child(f->dir, 1);
    wait_for_first_checkpoint(f->dir);
    usleep(3000); /* most likely in the middle of a write now */
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status)) fail_msg("writer died by signal %d", WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), POA_EXIT_REQUEUE);
    assert_all_final_files_load(f->dir);
}

static void test_kill_during_write_leaves_no_partial_file(void **state)
{
    fixture *f = *state;
    /* SIGKILL (what Slurm sends after KillWait) at several points of the write loop. */
    for (int round = 0; round < 4; round++) {
        fresh_dir(f->dir, sizeof f->dir, "sigkill");
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) writer_child(f->dir, 0);
        wait_for_first_checkpoint(f->dir);
        usleep((useconds_t) (1000 + 2500 * round));
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_all_final_files_load(f->dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_identical_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_last_n, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_newest_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_tensor_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_version_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_or_mismatched_tensor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftover_temp_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_during_write_finishes_then_requeues, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kill_during_write_leaves_no_partial_file, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("checkpoint", tests, NULL, NULL);
}
