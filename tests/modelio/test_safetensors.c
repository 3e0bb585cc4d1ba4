/* test_safetensors.c — poa's safetensors writer and reader (src/io/safetensors.h):
 *  - the bytes of a written file: 8-byte little-endian header length, a JSON header that
 *    starts with '{' and is padded with spaces to 8 + N ≡ 0 (mod 8), the metadata first, the
 *    tensors in table order with contiguous data_offsets, raw little-endian floats;
 *  - round trip: shapes, values (bit for bit), metadata strings with quotes, backslashes,
 *    newlines, control characters and UTF-8;
 *  - the reader rejects, naming the file: a truncated file, a header length past the end, a
 *    header that is not JSON or does not start with '{', duplicate names, offsets with a hole
 *    or an overlap, offsets that disagree with dtype × shape, non-string metadata, an unknown
 *    dtype; strict table loads reject a missing tensor, an extra tensor, a wrong shape and a
 *    non-F32 dtype;
 *  - a failed write (the destination is a directory) leaves no file and names the path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/timer.h"
#include "io/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[4096];

static void path_of(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

/* A table of three tensors: [2, 3], [5] and [1, 1, 4] (offsets aligned by the table). */
static void small_table(poa_param_table *t, float **buf)
{
    poa_params_init(t);
    int64_t a[2] = {2, 3}, b[1] = {5}, c[3] = {1, 1, 4};
    poa_params_add(t, "backbone", "blocks.0.attn.qkv.weight", 2, a, 0, 1, POA_INIT_ZERO, 0, 0, 1,
                   1);
    poa_params_add(t, "backbone", "norm.bias", 1, b, -1, 2, POA_INIT_ZERO, 0, 0, 1, 1);
    poa_params_add(t, "backbone", "cls_token", 3, c, -1, 2, POA_INIT_ZERO, 0, 0, 1, 1);
    *buf = calloc(t->total, sizeof(float));
    for (int i = 0; i < t->n; i++)
        for (size_t e = 0; e < t->p[i].numel; e++)
            (*buf)[t->p[i].offset + e] = (float) (i + 1) * 0.5f + (float) e * 0.125f - 1.0f;
}

static const char *TRICKY =
    "line 1\nquote \" backslash \\ tab\t bell \a unicode \xc3\xa9\xe2\x82\xac";

static void write_small(const char *path, poa_param_table *t, float **buf)
{
    small_table(t, buf);
    poa_st_kv kv[2] = {{"format", "pt"}, {"config_yaml", TRICKY}};
    poa_err err;
    if (poa_st_write_table(path, t, *buf, kv, 2, &err) != POA_OK) fail_msg("%s", err.msg);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t) ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void test_layout(void **state)
{
    (void) state;
    char path[4200];
    path_of(path, sizeof path, "layout.safetensors");
    poa_param_table t;
    float *buf;
    write_small(path, &t, &buf);
    size_t n;
    unsigned char *b = slurp(path, &n);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t) b[i] << (8 * i);
    assert_int_equal((8 + hl) % 8, 0);
    assert_int_equal(b[8], '{');
    const char *h = (const char *) b + 8;
    size_t end = hl;
    while (end > 0 && h[end - 1] == ' ') end--;
    assert_int_equal(h[end - 1], '}');
    assert_true(hl - end < 8);
    /* metadata first, then the tensors in table order with contiguous offsets */
    char *hdr = strndup(h, hl);
    const char *m = strstr(hdr, "\"__metadata__\""),
               *q = strstr(hdr, "\"blocks.0.attn.qkv.weight\""), *nb = strstr(hdr, "\"norm.bias\""),
               *ct = strstr(hdr, "\"cls_token\"");
    assert_true(m && q && nb && ct && m < q && q < nb && nb < ct);
    assert_non_null(strstr(hdr, "\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]"));
    assert_non_null(strstr(hdr, "\"shape\":[5],\"data_offsets\":[24,44]"));
    assert_non_null(strstr(hdr, "\"shape\":[1,1,4],\"data_offsets\":[44,60]"));
    assert_non_null(strstr(hdr, "\\n") && strstr(hdr, "\\\"") && strstr(hdr, "\\u0007"));
    assert_int_equal(n, 8 + hl + 60);
    /* raw little-endian floats, in table order */
    float first, last;
    memcpy(&first, b + 8 + hl, 4);
    memcpy(&last, b + n - 4, 4);
    assert_true(first == buf[t.p[0].offset]);
    assert_true(last == buf[t.p[2].offset + 3]);
    free(hdr);
    free(b);
    free(buf);
    poa_params_free(&t);
}

static void test_round_trip(void **state)
{
    (void) state;
    char path[4200];
    path_of(path, sizeof path, "round.safetensors");
    poa_param_table t;
    float *buf;
    write_small(path, &t, &buf);
    poa_st_file f;
    poa_err err;
    if (poa_st_open(path, &f, &err) != POA_OK) fail_msg("%s", err.msg);
    assert_int_equal(f.n_tensors, 3);
    assert_string_equal(poa_st_meta_get(&f, "format"), "pt");
    assert_string_equal(poa_st_meta_get(&f, "config_yaml"), TRICKY);
    assert_null(poa_st_meta_get(&f, "nothing"));
    const poa_st_tensor *x = poa_st_find(&f, "cls_token");
    assert_non_null(x);
    assert_int_equal(x->ndim, 3);
    assert_int_equal(x->shape[2], 4);
    float *back = calloc(t.total, sizeof(float));
    assert_int_equal(poa_st_load_table(&f, &t, back, &err), POA_OK);
    assert_memory_equal(back, buf, t.total * sizeof(float));
    poa_st_close(&f);
    free(back);
    free(buf);
    poa_params_free(&t);
}

/* A file made of header text (padded) and `data` bytes of zeros; opening must fail with code
 * and a message containing `what` and the path. */
static void expect_bad(const char *name, const char *header, size_t data, poa_status code,
                       const char *what)
{
    char path[4200];
    path_of(path, sizeof path, name);
    size_t hl = strlen(header);
    unsigned char *b = calloc(8 + hl + data + 1, 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char) (hl >> (8 * i));
    memcpy(b + 8, header, hl);
    spit(path, b, 8 + hl + data);
    free(b);
    poa_st_file f;
    poa_err err = {0};
    poa_status st = poa_st_open(path, &f, &err);
    poa_st_close(&f);
    if (st != code || !strstr(err.msg, what) || !strstr(err.msg, path))
        fail_msg("%s: status %d, message '%s' (want %d, '%s')", name, st, err.msg, code, what);
}

static void test_rejects(void **state)
{
    (void) state;
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_bad("ok_but_short.st", ok, 4, POA_ERR_FORMAT, "truncated");
    expect_bad("long.st", ok, 12, POA_ERR_FORMAT, "holds 12");
    expect_bad("notjson.st", "{\"a\":", 0, POA_ERR_FORMAT, "JSON");
    expect_bad("brace.st", " {}", 0, POA_ERR_FORMAT, "does not start with '{'");
    expect_bad("dup.st",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, POA_ERR_FORMAT, "duplicate key");
    expect_bad("dup-apart.st",
               "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               12, POA_ERR_FORMAT, "duplicate key");
    expect_bad("dup-meta.st", "{\"__metadata__\":{\"k\":\"1\",\"j\":\"2\",\"k\":\"3\"}}", 0,
               POA_ERR_FORMAT, "duplicate key");
    expect_bad("end.st", "{\"a\":", 0, POA_ERR_FORMAT, "unexpected end at header byte 5");
    expect_bad("hole.st",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               12, POA_ERR_FORMAT, "tile");
    expect_bad("overlap.st",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, POA_ERR_FORMAT, "tile");
    expect_bad("size.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
               POA_ERR_FORMAT, "do not match");
    expect_bad("dtype.st", "{\"a\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               POA_ERR_FORMAT, "dtype");
    expect_bad("meta.st", "{\"__metadata__\":{\"k\":1}}", 0, POA_ERR_FORMAT, "not a string");
    expect_bad("neg.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
               POA_ERR_FORMAT, "bad shape");

    /* 200,000 metadata keys and a duplicate of the first at the end: found (keys are compared
     * sorted; comparing each with every earlier one took minutes for a header this size) */
    size_t cap = 200000 * 24 + 64, n = 0;
    char *big = malloc(cap);
    n += (size_t) snprintf(big + n, cap - n, "{\"__metadata__\":{");
    for (int i = 0; i < 200000; i++) n += (size_t) snprintf(big + n, cap - n, "\"k%d\":\"v\",", i);
    snprintf(big + n, cap - n, "\"k0\":\"v\"}}");
    double t0 = poa_now();
    expect_bad("many-keys.st", big, 0, POA_ERR_FORMAT, "duplicate key");
    if (poa_now() - t0 > 20.0) fail_msg("200,000 keys took %.1f s", poa_now() - t0);
    free(big);

    /* a header length past the end of the file, and a file shorter than 8 bytes */
    char path[4200];
    path_of(path, sizeof path, "hlen.st");
    unsigned char b[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    spit(path, b, 16);
    poa_st_file f;
    poa_err err;
    assert_int_equal(poa_st_open(path, &f, &err), POA_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "header length 65535"));
    poa_st_close(&f);
    path_of(path, sizeof path, "tiny.st");
    spit(path, b, 5);
    assert_int_equal(poa_st_open(path, &f, &err), POA_ERR_FORMAT);
    poa_st_close(&f);
    path_of(path, sizeof path, "missing.st");
    assert_int_equal(poa_st_open(path, &f, &err), POA_ERR_NOTFOUND);
    poa_st_close(&f);

    /* a truncated real file */
    poa_param_table t;
    float *buf;
    path_of(path, sizeof path, "cut.safetensors");
    write_small(path, &t, &buf);
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(poa_st_open(path, &f, &err), POA_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "truncated"));
    poa_st_close(&f);
    free(buf);
    poa_params_free(&t);
}

static void test_strict_load(void **state)
{
    (void) state;
    char path[4200];
    path_of(path, sizeof path, "strict.safetensors");
    poa_param_table t, other;
    float *buf;
    write_small(path, &t, &buf);
    poa_st_file f;
    poa_err err;
    assert_int_equal(poa_st_open(path, &f, &err), POA_OK);
    float *back = calloc(t.total + 64, sizeof(float));
    /* a table with a tensor the file lacks */
    poa_params_init(&other);
    int64_t a[2] = {2, 3}, b5[1] = {5}, c[3] = {1, 1, 4}, x[1] = {7};
    poa_params_add(&other, "backbone", "blocks.0.attn.qkv.weight", 2, a, 0, 1, POA_INIT_ZERO, 0, 0,
                   1, 1);
    poa_params_add(&other, "backbone", "norm.bias", 1, b5, -1, 2, POA_INIT_ZERO, 0, 0, 1, 1);
    poa_params_add(&other, "backbone", "cls_token", 3, c, -1, 2, POA_INIT_ZERO, 0, 0, 1, 1);
    poa_params_add(&other, "backbone", "norm.weight", 1, x, -1, 3, POA_INIT_ZERO, 0, 0, 1, 1);
    assert_int_equal(poa_st_load_table(&f, &other, back, &err), POA_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "'norm.weight' is missing"));
    poa_params_free(&other);
    /* a table without one of the file's tensors */
    poa_params_init(&other);
    poa_params_add(&other, "backbone", "norm.bias", 1, b5, -1, 2, POA_INIT_ZERO, 0, 0, 1, 1);
    assert_int_equal(poa_st_load_table(&f, &other, back, &err), POA_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "unexpected tensor"));
    poa_params_free(&other);
    /* another shape */
    poa_params_init(&other);
    int64_t a2[2] = {3, 2};
    poa_params_add(&other, "backbone", "blocks.0.attn.qkv.weight", 2, a2, 0, 1, POA_INIT_ZERO, 0, 0,
                   1, 1);
    poa_params_add(&other, "backbone", "norm.bias", 1, b5, -1, 2, POA_INIT_ZERO, 0, 0, 1, 1);
    poa_params_add(&other, "backbone", "cls_token", 3, c, -1, 2, POA_INIT_ZERO, 0, 0, 1, 1);
    assert_int_equal(poa_st_load_table(&f, &other, back, &err), POA_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "has shape [2, 3], expected [3, 2]"));
    poa_params_free(&other);
    poa_st_close(&f);

    /* a non-F32 tensor */
    const char *h16 = "{\"norm.bias\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}";
    path_of(path, sizeof path, "f16.st");
    size_t hl = strlen(h16);
    unsigned char raw[256] = {0};
    for (int i = 0; i < 8; i++) raw[i] = (unsigned char) (hl >> (8 * i));
    memcpy(raw + 8, h16, hl);
    spit(path, raw, 8 + hl + 8);
    assert_int_equal(poa_st_open(path, &f, &err), POA_OK);
    assert_int_equal(poa_st_read_f32(&f, &f.tensors[0], back, &err), POA_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "is F16, not F32"));
    poa_st_close(&f);
    free(back);
    free(buf);
    poa_params_free(&t);
}

static void test_failed_write(void **state)
{
    (void) state;
    char path[4200];
    path_of(path, sizeof path, "taken.safetensors");
    assert_int_equal(mkdir(path, 0777), 0); /* the final name is a directory: rename fails */
    poa_param_table t;
    float *buf;
    small_table(&t, &buf);
    poa_err err;
    assert_int_equal(poa_st_write_table(path, &t, buf, NULL, 0, &err), POA_ERR_IO);
    assert_non_null(strstr(err.msg, path));
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -q tmp", dir);
    assert_int_not_equal(system(cmd), 0); /* no temporary file left */
    free(buf);
    poa_params_free(&t);
}

int main(void)
{
    const char *top = getenv("POA_TOP_BUILDDIR");
    snprintf(dir, sizeof dir, "%s/tests/out/modelio/safetensors", top ? top : ".");
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),       cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_rejects),      cmocka_unit_test(test_strict_load),
        cmocka_unit_test(test_failed_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
