/* test_data_schema.c — the dataset file formats: the schema tables against
 * hdf5-schemas/dataset.md, shard and metadata round trips, the validator's refusals, CRC-32,
 * labels.txt parsing, actual_index parsing, JPEG probing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/atomic_io.h"
#include "data/data_util.h"
#include "data/h5data.h"
#include "data/jpeg.h"
#include "data/metadata.h"
#include "data/scan.h"
#include "data/schema.h"
#include "data/shard.h"
#include "data_test_util.h"

#include <unistd.h>

static char scratch[4096];

/* ------------------------------------------------------------------ CRC-32 */
static void test_crc32_known_answer(void **state)
{
    (void) state;
    assert_int_equal(poa_crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(poa_crc32(0, "", 0), 0);
    uint8_t buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (uint8_t) (i * 7 + 3);
    uint32_t whole = poa_crc32(0, buf, 1000);
    assert_int_equal(poa_crc32(poa_crc32(0, buf, 333), buf + 333, 667), whole);
}

/* ------------------------------------------------------------------ doc ↔ tables */
static char *read_text(const char *path)
{
    uint8_t *d;
    size_t n;
    poa_err err;
    if (poa_read_file(path, &d, &n, &err) != POA_OK) fail_msg("%s", err.msg);
    char *s = realloc(d, n + 1);
    s[n] = '\0';
    return s;
}

static void check_doc_block(const char *doc, const char *name, const poa_schema *s)
{
    char begin[64], end[64];
    snprintf(begin, sizeof begin, "<!-- schema:%s:begin -->\n", name);
    snprintf(end, sizeof end, "<!-- schema:%s:end -->", name);
    const char *b = strstr(doc, begin), *e = b ? strstr(b, end) : NULL;
    if (!b || !e) fail_msg("hdf5-schemas/dataset.md: markers %s … %s missing", begin, end);
    b += strlen(begin);
    char *printed = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&printed, &len);
    poa_schema_print(f, s);
    fclose(f);
    size_t doclen = (size_t) (e - b);
    if (doclen != len || memcmp(b, printed, len) != 0) {
        /* Print the first differing line of each. */
        size_t i = 0;
        while (i < len && i < doclen && b[i] == printed[i]) i++;
        size_t ls = i;
        while (ls > 0 && printed[ls - 1] != '\n') ls--;
        fail_msg("hdf5-schemas/dataset.md (%s) differs from the validator table at:\n doc:  "
                 "%.120s\n code: %.120s\n"
                 "(regenerate the rows with poa-pack --print-schema %s)",
                 name, b + ls, printed + ls, name);
    }
    free(printed);
}

static void test_doc_matches_tables(void **state)
{
    (void) state;
    char path[4096];
    snprintf(path, sizeof path, "%s/hdf5-schemas/dataset.md", test_src_dir());
    char *doc = read_text(path);
    check_doc_block(doc, "shard", &poa_shard_schema);
    check_doc_block(doc, "metadata", &poa_metadata_schema);
    free(doc);
}

/* ------------------------------------------------------------------ shard round trip */
#define NREC 5
static const size_t rec_sizes[NREC] = {1, 17, 4096, 3, 100000};

static void fill_records(poa_shard_record *r, uint8_t **bufs)
{
    static const char *names[NREC] = {"a/a_1.JPEG", "a/a_2.JPEG", "b/b_10.JPEG", "b/b_11.JPEG",
                                      "c/deep/c_7.JPEG"};
    for (int i = 0; i < NREC; i++) {
        bufs[i] = malloc(rec_sizes[i]);
        for (size_t j = 0; j < rec_sizes[i]; j++) bufs[i][j] = (uint8_t) (j * 31 + (size_t) i * 7);
        r[i] = (poa_shard_record){bufs[i],
                                  rec_sizes[i],
                                  i / 2,
                                  (uint64_t) (10 + 2 * i),
                                  names[i],
                                  (uint32_t) (100 + i),
                                  (uint32_t) (200 + i)};
    }
}

static poa_shard_info test_info(int64_t count)
{
    poa_shard_info info = {"train", 1, 3, 10, count, 0x1234567890abcdefull, 0, 0};
    return info;
}

static void write_good_shard(const char *path, uint8_t **bufs)
{
    poa_shard_record recs[NREC];
    fill_records(recs, bufs);
    poa_strtab sk, why;
    poa_strtab_init(&sk);
    poa_strtab_init(&why);
    poa_strtab_push(&sk, "b/broken.JPEG");
    poa_strtab_push(&why, "truncated JPEG: Premature end of JPEG file");
    poa_shard_info info = test_info(NREC + 1);
    poa_err err = {0};
    if (poa_shard_write(path, &info, recs, NREC, &sk, &why, &err) != POA_OK)
        fail_msg("%s", err.msg);
    poa_strtab_free(&sk);
    poa_strtab_free(&why);
}

static void test_shard_round_trip(void **state)
{
    (void) state;
    char path[4200];
    snprintf(path, sizeof path, "%s/good.h5", scratch);
    uint8_t *bufs[NREC];
    write_good_shard(path, bufs);
    poa_shard s;
    poa_err err = {0};
    if (poa_shard_open(&s, path, POA_SHARD_LOAD_NAMES, &err) != POA_OK) fail_msg("%s", err.msg);
    assert_int_equal(s.num_images, NREC);
    assert_int_equal(s.num_skipped, 1);
    assert_int_equal(s.info.shard_index, 1);
    assert_int_equal(s.info.shard_count, 3);
    assert_int_equal(s.info.source_first, 10);
    assert_true(s.info.plan_fingerprint == 0x1234567890abcdefull);
    assert_string_equal(s.info.split, "train");
    assert_string_equal(poa_strtab_get(&s.file_names, 4), "c/deep/c_7.JPEG");
    assert_string_equal(poa_strtab_get(&s.skipped_names, 0), "b/broken.JPEG");
    uint8_t *buf = NULL;
    size_t cap = 0, size = 0;
    for (int i = 0; i < NREC; i++) {
        assert_int_equal(poa_shard_read(&s, i, &buf, &cap, &size, &err), POA_OK);
        assert_int_equal(size, rec_sizes[i]);
        assert_memory_equal(buf, bufs[i], size);
        assert_int_equal(s.labels[i], i / 2);
        assert_int_equal(s.ids[i], 10 + 2 * i);
        assert_int_equal(s.sizes[2 * i], 100 + i);
        assert_int_equal(s.sizes[2 * i + 1], 200 + i);
        free(bufs[i]);
    }
    assert_int_equal(poa_shard_read(&s, NREC, &buf, &cap, &size, &err), POA_ERR_ARG);
    assert_int_equal(poa_shard_check_crc(&s, &err), POA_OK);
    free(buf);
    poa_shard_close(&s);
    /* No temporary file is left next to the final one. */
    char tmp[POA_IO_PATH_MAX + 64];
    assert_int_equal(poa_io_temp_path(path, tmp, sizeof tmp, NULL), POA_OK);
    assert_int_not_equal(access(tmp, F_OK), 0);
}

static void test_shard_empty(void **state)
{
    (void) state;
    char path[4200];
    snprintf(path, sizeof path, "%s/empty.h5", scratch);
    poa_strtab sk, why;
    poa_strtab_init(&sk);
    poa_strtab_init(&why);
    poa_strtab_push(&sk, "x.JPEG");
    poa_strtab_push(&why, "empty file (0 bytes)");
    poa_shard_info info = test_info(1);
    poa_err err = {0};
    assert_int_equal(poa_shard_write(path, &info, NULL, 0, &sk, &why, &err), POA_OK);
    poa_shard s;
    if (poa_shard_open(&s, path, POA_SHARD_LOAD_NAMES, &err) != POA_OK) fail_msg("%s", err.msg);
    assert_int_equal(s.num_images, 0);
    assert_int_equal(s.num_bytes, 0);
    assert_int_equal(poa_shard_check_crc(&s, &err), POA_OK);
    poa_shard_close(&s);
    poa_strtab_free(&sk);
    poa_strtab_free(&why);
}

/* ------------------------------------------------------------------ validator refusals */
typedef void (*mutation)(hid_t f);

static void set_attr_str(hid_t f, const char *name, const char *v)
{
    assert_int_equal(poa_dh5_attr_put_str(f, name, v, NULL), POA_OK);
}
static void m_format(hid_t f)
{
    set_attr_str(f, "format", "poa-checkpoint");
}
static void m_version(hid_t f)
{
    assert_int_equal(poa_dh5_attr_put_i64(f, "format_version", 2, NULL), POA_OK);
}
static void m_missing_crc(hid_t f)
{
    H5Ldelete(f, "crc32", H5P_DEFAULT);
}
static void m_missing_attr(hid_t f)
{
    H5Adelete(f, "num_skipped");
}
static void m_labels_float(hid_t f)
{
    H5Ldelete(f, "labels", H5P_DEFAULT);
    float v[NREC] = {0};
    hsize_t d[1] = {NREC};
    poa_dh5_write(f, "labels", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, d, v, NULL);
}
static void m_offsets_short(hid_t f)
{
    H5Ldelete(f, "offsets", H5P_DEFAULT);
    uint64_t v[NREC] = {0};
    hsize_t d[1] = {NREC};
    poa_dh5_write(f, "offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, d, v, NULL);
}
static void m_offsets_order(hid_t f)
{
    hid_t d = H5Dopen2(f, "offsets", H5P_DEFAULT);
    uint64_t v[NREC + 1];
    H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    uint64_t t = v[2];
    v[2] = v[3];
    v[3] = t;
    H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
}
static void m_images_chunked(hid_t f)
{
    int64_t nbytes;
    poa_dh5_attr_get_i64(f, "num_bytes", &nbytes, NULL);
    uint8_t *v = calloc((size_t) nbytes, 1);
    H5Ldelete(f, "images", H5P_DEFAULT);
    hsize_t d[1] = {(hsize_t) nbytes}, c[1] = {4096};
    hid_t sp = H5Screate_simple(1, d, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 1, c);
    H5Pset_deflate(pl, 4);
    hid_t ds = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    H5Pclose(pl);
    H5Sclose(sp);
    free(v);
}

static void check_refusal(const char *name, mutation m, poa_status want, const char *needle)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/bad_%s.h5", scratch, name);
    uint8_t *bufs[NREC];
    write_good_shard(path, bufs);
    for (int i = 0; i < NREC; i++) free(bufs[i]);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    m(f);
    H5Fclose(f);
    poa_shard s;
    poa_err err = {0};
    poa_status st = poa_shard_open(&s, path, 0, &err);
    if (st != want || !strstr(err.msg, needle) || !strstr(err.msg, path))
        fail_msg("mutation %s: got status %s, message '%s'; wanted %s and a message naming the "
                 "file and containing '%s'",
                 name, poa_status_name(st), err.msg, poa_status_name(want), needle);
}

static void test_validator_refusals(void **state)
{
    (void) state;
    check_refusal("format", m_format, POA_ERR_VERSION, "not a poa-dataset-shard file");
    check_refusal("version", m_version, POA_ERR_VERSION, "version 2");
    check_refusal("missing_crc", m_missing_crc, POA_ERR_FORMAT, "dataset '/crc32' missing");
    check_refusal("missing_attr", m_missing_attr, POA_ERR_FORMAT,
                  "attribute 'num_skipped' missing");
    check_refusal("labels_float", m_labels_float, POA_ERR_FORMAT, "'/labels' has the wrong type");
    check_refusal("offsets_short", m_offsets_short, POA_ERR_FORMAT,
                  "'/offsets' dimension 0 is 5, expected 6");
    check_refusal("offsets_order", m_offsets_order, POA_ERR_FORMAT, "offsets not increasing");
    check_refusal("images_chunked", m_images_chunked, POA_ERR_FORMAT, "contiguous and unfiltered");
}

static void test_truncated_and_missing_file(void **state)
{
    (void) state;
    char path[4200], cut[4200];
    snprintf(path, sizeof path, "%s/to_cut.h5", scratch);
    snprintf(cut, sizeof cut, "%s/cut.h5", scratch);
    uint8_t *bufs[NREC];
    write_good_shard(path, bufs);
    for (int i = 0; i < NREC; i++) free(bufs[i]);
    uint8_t *d;
    size_t n;
    assert_int_equal(poa_read_file(path, &d, &n, NULL), POA_OK);
    FILE *f = fopen(cut, "wb");
    fwrite(d, 1, n / 2, f);
    fclose(f);
    free(d);
    poa_shard s;
    poa_err err = {0};
    assert_int_not_equal(poa_shard_open(&s, cut, 0, &err), POA_OK);
    assert_non_null(strstr(err.msg, cut));
    snprintf(cut, sizeof cut, "%s/does_not_exist.h5", scratch);
    assert_int_equal(poa_shard_open(&s, cut, 0, &err), POA_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, cut));
}

/* ------------------------------------------------------------------ metadata */
static void test_metadata_round_trip(void **state)
{
    (void) state;
    poa_metadata m;
    poa_metadata_init(&m);
    snprintf(m.source_root, sizeof m.source_root, "/data/imagenet");
    poa_meta_split *s = poa_metadata_add_split(&m, "train");
    poa_strtab_push(&s->class_ids, "n01");
    poa_strtab_push(&s->class_names, "tench, Tinca tinca");
    s->num_images = 3;
    s->actual_index = malloc(3 * 4);
    s->class_index = malloc(3 * 4);
    s->ids = malloc(3 * 8);
    for (int i = 0; i < 3; i++) {
        s->actual_index[i] = (uint32_t) (100 + i);
        s->class_index[i] = 0;
        s->ids[i] = (uint64_t) i;
        char name[64];
        snprintf(name, sizeof name, "n01/n01_%d.JPEG", 100 + i);
        poa_strtab_push(&s->file_names, name);
    }
    poa_strtab_push(&s->shard_files, "train-00000-of-00002.h5");
    poa_strtab_push(&s->shard_files, "train-00001-of-00002.h5");
    s->shard_num_images = malloc(2 * 8);
    s->shard_num_images[0] = 2;
    s->shard_num_images[1] = 1;
    s->num_source_files = 4;
    poa_strtab_push(&s->skipped_names, "n01/bad.JPEG");
    poa_strtab_push(&s->skipped_reasons, "not a JPEG file: PNG data");
    poa_meta_split *t = poa_metadata_add_split(&m, "test");
    t->shard_num_images = malloc(8);
    char path[4200];
    snprintf(path, sizeof path, "%s/metadata.h5", scratch);
    poa_err err = {0};
    if (poa_metadata_write(path, &m, &err) != POA_OK) fail_msg("%s", err.msg);
    poa_metadata r;
    if (poa_metadata_read(path, &r, POA_META_LOAD_ENTRIES, &err) != POA_OK) fail_msg("%s", err.msg);
    assert_int_equal(r.n_splits, 2);
    const poa_meta_split *rs = poa_metadata_find(&r, "train");
    assert_non_null(rs);
    assert_null(poa_metadata_find(&r, "val"));
    assert_string_equal(r.source_root, "/data/imagenet");
    assert_string_equal(poa_strtab_get(&rs->class_names, 0), "tench, Tinca tinca");
    assert_int_equal(rs->num_images, 3);
    assert_int_equal(rs->actual_index[2], 102);
    assert_string_equal(poa_strtab_get(&rs->file_names, 1), "n01/n01_101.JPEG");
    assert_int_equal(rs->shard_num_images[0], 2);
    assert_string_equal(poa_strtab_get(&rs->skipped_reasons, 0), "not a JPEG file: PNG data");
    assert_int_equal(poa_metadata_find(&r, "test")->num_images, 0);
    poa_metadata_free(&r);
    /* A shard list that does not add up to num_images is refused. */
    s->shard_num_images[1] = 5;
    assert_int_equal(poa_metadata_write(path, &m, &err), POA_OK);
    assert_int_equal(poa_metadata_read(path, &r, 0, &err), POA_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "shards hold 7 images, num_images = 3"));
    poa_metadata_free(&m);
}

/* ------------------------------------------------------------------ labels.txt */
static poa_status labels_from(const char *text, poa_labels *l, poa_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/labels.txt", scratch);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    return poa_labels_read(path, l, err);
}

static void test_labels_parser(void **state)
{
    (void) state;
    poa_labels l;
    poa_err err = {0};
    const char *good =
        "\xEF\xBB\xBFn01,\"tench, Tinca tinca\"\r\n\nn02,plain\nn03,\"say \"\"hi\"\"\"\n";
    if (labels_from(good, &l, &err) != POA_OK) fail_msg("%s", err.msg);
    assert_int_equal(l.wnids.n, 3);
    assert_string_equal(poa_labels_lookup(&l, "n01"), "tench, Tinca tinca");
    assert_string_equal(poa_labels_lookup(&l, "n02"), "plain");
    assert_string_equal(poa_labels_lookup(&l, "n03"), "say \"hi\"");
    assert_null(poa_labels_lookup(&l, "n04"));
    poa_labels_free(&l);
    struct {
        const char *text, *needle;
    } bad[] = {{"n01,a\nn02,b,c\n", "labels.txt:2: wrong number of fields"},
               {"n01\n", "labels.txt:1: wrong number of fields"},
               {"n01,\"open\n", "labels.txt:1: unterminated quote"},
               {"n01,a\nn01,b\n", "labels.txt:2: class id 'n01' appears twice"},
               {",nameless\n", "labels.txt:1: empty class id"},
               {"\n\n", "no class rows"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        poa_status st = labels_from(bad[i].text, &l, &err);
        if (st != POA_ERR_FORMAT || !strstr(err.msg, bad[i].needle))
            fail_msg("labels case %zu: status %s, message '%s', wanted '%s'", i,
                     poa_status_name(st), err.msg, bad[i].needle);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/no_such_labels.txt", scratch);
    assert_int_equal(poa_labels_read(path, &l, &err), POA_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "no_such_labels.txt: cannot open"));
}

static void test_names(void **state)
{
    (void) state;
    assert_int_equal(poa_actual_index("n01440764/n01440764_10026.JPEG"), 10026);
    assert_int_equal(poa_actual_index("ILSVRC2012_val_00000293.JPEG"), 293);
    assert_int_equal(poa_actual_index("fm3_dress/fm3_dress_0.JPEG"), 0);
    assert_int_equal(poa_actual_index("x/noindex.JPEG"), UINT32_MAX);
    assert_int_equal(poa_actual_index("x/a_b.JPEG"), UINT32_MAX);
    assert_true(poa_has_image_extension("a.JPEG"));
    assert_true(poa_has_image_extension("a.jpg"));
    assert_true(poa_has_image_extension("a.PnG"));
    assert_false(poa_has_image_extension("README"));
    assert_false(poa_has_image_extension("a.JPEG.txt"));
}

/* ------------------------------------------------------------------ JPEG probe */
static void expect_probe(const uint8_t *d, size_t n, const char *needle)
{
    poa_jpeg_info info;
    poa_err err = {0};
    poa_status st = poa_jpeg_probe(d, n, &info, &err);
    if (st != POA_ERR_DECODE || !strstr(err.msg, needle))
        fail_msg("probe: status %s, message '%s', wanted '%s'", poa_status_name(st), err.msg,
                 needle);
}

static void test_jpeg_probe_and_decode(void **state)
{
    (void) state;
    enum { W = 37, H = 23 };
    uint8_t rgb[W * H * 3];
    test_picture(rgb, W, H, 3);
    uint8_t *jpg;
    size_t n;
    assert_int_equal(poa_jpeg_encode(rgb, W, H, 0, 90, 0, &jpg, &n, NULL), POA_OK);
    poa_jpeg_info info;
    assert_int_equal(poa_jpeg_probe(jpg, n, &info, NULL), POA_OK);
    assert_int_equal(info.width, W);
    assert_int_equal(info.height, H);
    assert_int_equal(info.components, 3);
    assert_int_equal(info.precision, 8);
    poa_jpeg_decoder dec;
    poa_jpeg_decoder_init(&dec);
    poa_image im = {0};
    poa_err err = {0};
    assert_int_equal(poa_jpeg_decode(&dec, jpg, n, 8, &im, NULL, &err), POA_OK);
    assert_int_equal(im.w, W);
    assert_int_equal(im.h, H);
    assert_int_equal(poa_jpeg_decode(&dec, jpg, n, 4, &im, NULL, &err), POA_OK);
    assert_int_equal(im.w, (W + 1) / 2);
    assert_int_equal(im.h, (H + 1) / 2);
    /* Truncated scan data: refused as PIL refuses it. */
    assert_int_equal(poa_jpeg_decode(&dec, jpg, n * 2 / 3, 8, &im, NULL, &err), POA_ERR_DECODE);
    assert_non_null(strstr(err.msg, "truncated JPEG"));

    expect_probe(jpg, 0, "empty file (0 bytes)");
    expect_probe((const uint8_t *) "\x89PNG\r\n\x1a\n0000", 12, "not a JPEG file: PNG data");
    expect_probe((const uint8_t *) "GIF89a....", 10, "not a JPEG file: GIF data");
    expect_probe((const uint8_t *) "hello", 5, "not a JPEG file (starts with 0x68 0x65)");
    expect_probe(jpg, 40, "truncated JPEG: the file ends inside the header");
    /* 12-bit: patch the frame header's precision byte. */
    uint8_t *j12 = malloc(n);
    memcpy(j12, jpg, n);
    for (size_t i = 2; i + 4 < n; i++)
        if (j12[i] == 0xFF && j12[i + 1] == 0xC0) {
            j12[i + 1] = 0xC1;
            j12[i + 4] = 12;
            break;
        }
    expect_probe(j12, n, "12-bit JPEG (sample precision 12) is not supported");
    free(j12);
    free(jpg);
    poa_image_free(&im);
    poa_jpeg_decoder_free(&dec);
}

static int setup(void **state)
{
    (void) state;
    test_scratch(scratch, sizeof scratch, "schema");
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_known_answer),
        cmocka_unit_test(test_doc_matches_tables),
        cmocka_unit_test(test_shard_round_trip),
        cmocka_unit_test(test_shard_empty),
        cmocka_unit_test(test_validator_refusals),
        cmocka_unit_test(test_truncated_and_missing_file),
        cmocka_unit_test(test_metadata_round_trip),
        cmocka_unit_test(test_labels_parser),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_jpeg_probe_and_decode),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
