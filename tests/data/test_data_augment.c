/* test_data_augment.c — every augmentation op against torchvision 0.14 / Pillow 9 on the same
 * image with the same explicit parameters (tests/reference/augment_ref.py writes the reference
 * outputs).  Tolerances:
 *   JPEG decoding, crop + bicubic resize, flip, brightness, contrast, saturation, hue, grayscale,
 *   solarize, the crop geometry of RandomResizedCrop, mask counts: exact;
 *   Gaussian blur: at most 1 grey level, on at most 0.5 % of the values (torchvision convolves
 *   with the 2-D kernel, the C code with two 1-D passes: a value within float32 round-off of .5
 *   may round the other way);
 *   ToTensor + Normalize: at most 1e-6 absolute;
 *   whole crops: as the ops they contain (blur differences carried through normalisation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "data/augment.h"
#include "data/data_util.h"
#include "data/jpeg.h"
#include "data/mask.h"
#include "data_test_util.h"

#include <math.h>

static char dir[4096];
static char **lines;
static int n_lines;

/* ------------------------------------------------------------------ manifest */
static const char *get(const char *line, const char *key)
{
    static __thread char val[8192];
    size_t k = strlen(key);
    for (const char *p = strchr(line, ' '); p; p = strchr(p + 1, ' ')) {
        if (strncmp(p + 1, key, k) == 0 && p[1 + k] == '=') {
            const char *v = p + 2 + k, *e = strchr(v, ' ');
            size_t n = e ? (size_t) (e - v) : strlen(v);
            snprintf(val, sizeof val, "%.*s", (int) n, v);
            return val;
        }
    }
    fail_msg("manifest line without '%s': %s", key, line);
    return NULL;
}
static int geti(const char *line, const char *key)
{
    return atoi(get(line, key));
}
static double getd(const char *line, const char *key)
{
    return strtod(get(line, key), NULL);
}
static int is_op(const char *line, const char *op)
{
    size_t n = strlen(op);
    return strncmp(line, op, n) == 0 && line[n] == ' ';
}

static void *load(const char *name, size_t want)
{
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *d;
    size_t n;
    poa_err err;
    if (poa_read_file(path, &d, &n, &err) != POA_OK) fail_msg("%s", err.msg);
    if (want && n != want) fail_msg("%s: %zu bytes, expected %zu", path, n, want);
    return d;
}

static poa_image load_image(const char *line)
{
    poa_image im = {0};
    int w = geti(line, "sw"), h = geti(line, "sh");
    poa_image_resize_buffer(&im, w, h);
    uint8_t *d = load(get(line, "src"), (size_t) w * h * 3);
    memcpy(im.p, d, (size_t) w * h * 3);
    free(d);
    return im;
}

/* Compare uint8 images: returns the number of values that differ, *maxd the largest difference. */
static size_t diff_u8(const uint8_t *a, const uint8_t *b, size_t n, int *maxd)
{
    size_t bad = 0;
    *maxd = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int) a[i] - (int) b[i]);
        if (d) bad++;
        if (d > *maxd) *maxd = d;
    }
    return bad;
}

static void expect_exact(const char *line, const poa_image *got)
{
    size_t n = (size_t) got->w * got->h * 3;
    uint8_t *ref = load(get(line, "ref"), n);
    int maxd;
    size_t bad = diff_u8(got->p, ref, n, &maxd);
    free(ref);
    if (bad) fail_msg("%zu of %zu values differ (max %d) in: %s", bad, n, maxd, line);
}

/* ------------------------------------------------------------------ tests */
static void test_decode_matches_pil(void **state)
{
    (void) state;
    poa_jpeg_decoder dec;
    poa_jpeg_decoder_init(&dec);
    poa_image im = {0};
    int cases = 0;
    for (int i = 0; i < n_lines; i++) {
        if (!is_op(lines[i], "decode")) continue;
        size_t n;
        char path[8400];
        snprintf(path, sizeof path, "%s/%s", dir, get(lines[i], "jpg"));
        uint8_t *jpg;
        poa_err err = {0};
        assert_int_equal(poa_read_file(path, &jpg, &n, NULL), POA_OK);
        if (poa_jpeg_decode(&dec, jpg, n, 8, &im, NULL, &err) != POA_OK) fail_msg("%s", err.msg);
        assert_int_equal(im.w, geti(lines[i], "w"));
        assert_int_equal(im.h, geti(lines[i], "h"));
        expect_exact(lines[i], &im);
        free(jpg);
        cases++;
    }
    printf("decode: %d JPEG kinds identical to PIL's Image.open().convert(\"RGB\")\n", cases);
    assert_int_equal(cases, 7);
    poa_image_free(&im);
    poa_jpeg_decoder_free(&dec);
}

static void test_resize_matches_pillow(void **state)
{
    (void) state;
    poa_image out = {0};
    poa_image_scratch s = {0};
    int cases = 0;
    for (int i = 0; i < n_lines; i++) {
        if (!is_op(lines[i], "resize")) continue;
        const char *l = lines[i];
        poa_image src = load_image(l);
        int w = geti(l, "w"), h = geti(l, "h");
        float box[4] = {0, 0, (float) w, (float) h};
        poa_resize_bicubic(&src, geti(l, "x"), geti(l, "y"), w, h, box, geti(l, "ow"),
                           geti(l, "oh"), &out, &s);
        expect_exact(l, &out);
        poa_image_free(&src);
        cases++;
    }
    printf("resize: %d crop+bicubic cases identical to torchvision resized_crop\n", cases);
    assert_true(cases >= 13);
    poa_image_free(&out);
    poa_image_scratch_free(&s);
}

static void test_pixel_ops_match_torchvision(void **state)
{
    (void) state;
    int cases = 0;
    for (int i = 0; i < n_lines; i++) {
        const char *l = lines[i];
        poa_image im;
        if (is_op(l, "hflip"))
            im = load_image(l), poa_hflip(&im);
        else if (is_op(l, "brightness"))
            im = load_image(l), poa_adjust_brightness(&im, (float) getd(l, "f"));
        else if (is_op(l, "contrast"))
            im = load_image(l), poa_adjust_contrast(&im, (float) getd(l, "f"));
        else if (is_op(l, "saturation"))
            im = load_image(l), poa_adjust_saturation(&im, (float) getd(l, "f"));
        else if (is_op(l, "hue"))
            im = load_image(l), poa_adjust_hue(&im, getd(l, "f"));
        else if (is_op(l, "grayscale"))
            im = load_image(l), poa_grayscale(&im);
        else if (is_op(l, "solarize"))
            im = load_image(l), poa_solarize(&im, 128);
        else
            continue;
        expect_exact(l, &im);
        poa_image_free(&im);
        cases++;
    }
    printf("pixel ops: %d cases (flip, brightness, contrast, saturation, hue, grayscale, "
           "solarize) identical\n",
           cases);
    assert_int_equal(cases, 29);
}

static void test_blur_within_one_level(void **state)
{
    (void) state;
    poa_image_scratch s = {0};
    int cases = 0;
    for (int i = 0; i < n_lines; i++) {
        const char *l = lines[i];
        if (!is_op(l, "blur")) continue;
        poa_image im = load_image(l);
        poa_gaussian_blur(&im, 9, (float) getd(l, "sigma"), &s);
        size_t n = (size_t) im.w * im.h * 3;
        uint8_t *ref = load(get(l, "ref"), n);
        int maxd;
        size_t bad = diff_u8(im.p, ref, n, &maxd);
        printf("blur sigma %s: %zu of %zu values differ by %d\n", get(l, "sigma"), bad, n, maxd);
        if (maxd > 1 || bad > n / 200) fail_msg("blur outside tolerance: %s", l);
        free(ref);
        poa_image_free(&im);
        cases++;
    }
    assert_int_equal(cases, 6);
    poa_image_scratch_free(&s);
}

static void test_normalize(void **state)
{
    (void) state;
    for (int i = 0; i < n_lines; i++) {
        const char *l = lines[i];
        if (!is_op(l, "normalize")) continue;
        poa_image im = load_image(l);
        size_t n = (size_t) im.w * im.h * 3;
        float *got = malloc(n * sizeof *got);
        poa_normalize_chw(&im, poa_imagenet_mean, poa_imagenet_std, got);
        float *ref = load(get(l, "ref"), n * sizeof(float));
        double maxd = 0;
        for (size_t k = 0; k < n; k++) maxd = fmax(maxd, fabs((double) got[k] - ref[k]));
        printf("normalize: max |C - torchvision| = %.3g\n", maxd);
        assert_true(maxd <= 1e-6);
        free(got);
        free(ref);
        poa_image_free(&im);
        return;
    }
    fail_msg("no normalize case");
}

static void parse_floats(const char *s, float *v, int n)
{
    char *end;
    for (int i = 0; i < n; i++) {
        v[i] = strtof(s, &end);
        s = end + (*end == ',');
    }
}

static void test_rrc_geometry(void **state)
{
    (void) state;
    int cases = 0, fallbacks = 0;
    const double ratio[2] = {3.0 / 4.0, 4.0 / 3.0};
    for (int i = 0; i < n_lines; i++) {
        const char *l = lines[i];
        if (!is_op(l, "rrc")) continue;
        float area[10], logr[10];
        parse_floats(get(l, "area"), area, 10);
        parse_floats(get(l, "logr"), logr, 10);
        poa_crop_params p;
        int W = geti(l, "W"), H = geti(l, "H");
        poa_rrc_from_draws(W, H, ratio, area, logr, getd(l, "ut"), getd(l, "ul"), &p);
        if (p.top != geti(l, "top") || p.left != geti(l, "left") || p.height != geti(l, "height") ||
            p.width != geti(l, "width"))
            fail_msg("box (top %d, left %d, h %d, w %d) differs from torchvision's: %s", p.top,
                     p.left, p.height, p.width, l);
        if (area[0] == 1.0f) fallbacks++;
        cases++;
    }
    printf("RandomResizedCrop.get_params: %d cases (%d fallbacks) identical\n", cases, fallbacks);
    assert_int_equal(cases, 60);
    assert_true(fallbacks >= 6);
}

static void parse_pipeline(const char *l, poa_crop_params *p)
{
    memset(p, 0, sizeof *p);
    p->top = geti(l, "top");
    p->left = geti(l, "left");
    p->height = geti(l, "height");
    p->width = geti(l, "width");
    p->flip = geti(l, "flip");
    p->jitter = geti(l, "jitter");
    sscanf(get(l, "order"), "%d,%d,%d,%d", &p->order[0], &p->order[1], &p->order[2], &p->order[3]);
    p->brightness = (float) getd(l, "b");
    p->contrast = (float) getd(l, "c");
    p->saturation = (float) getd(l, "s");
    p->hue = (float) getd(l, "h");
    p->gray = geti(l, "gray");
    p->blur = geti(l, "blur");
    p->sigma = (float) getd(l, "sigma");
    p->solarize = geti(l, "solarize");
}

static void test_whole_crops(void **state)
{
    (void) state;
    poa_aug_scratch s = {0};
    int cases = 0, exact = 0;
    for (int i = 0; i < n_lines; i++) {
        const char *l = lines[i];
        if (!is_op(l, "pipeline")) continue;
        poa_image src = load_image(l);
        poa_crop_params p;
        parse_pipeline(l, &p);
        int size = geti(l, "size");
        size_t n = 3 * (size_t) size * size;
        float *got = malloc(n * sizeof *got);
        poa_crop_apply(&src, 1.0, &p, size, 128, 9, poa_imagenet_mean, poa_imagenet_std, got, &s);
        float *ref = load(get(l, "ref"), n * sizeof(float));
        size_t off = 0;
        double maxd = 0;
        for (size_t k = 0; k < n; k++) {
            double d = fabs((double) got[k] - ref[k]);
            maxd = fmax(maxd, d);
            if (d > 1e-6) off++;
        }
        /* One grey level after normalisation: 1 / (255 · 0.224) = 0.0175. */
        int ok = p.blur ? maxd <= 0.0176 && off <= n / 200 : maxd <= 1e-6;
        if (!ok)
            fail_msg("crop differs: %zu of %zu values, max %.4g (blur %d): %s", off, n, maxd,
                     p.blur, l);
        exact += off == 0;
        free(got);
        free(ref);
        poa_image_free(&src);
        cases++;
    }
    printf("whole crops: %d cases (6 JPEG kinds, 224/96/32/16 px) within tolerance, %d exact\n",
           cases, exact);
    assert_int_equal(cases, 48);
    poa_aug_scratch_free(&s);
}

static void test_mask_counts_float32(void **state)
{
    (void) state;
    int cases = 0;
    for (int i = 0; i < n_lines; i++) {
        const char *l = lines[i];
        if (is_op(l, "linspace")) {
            int steps = geti(l, "steps");
            float v[256];
            parse_floats(get(l, "values"), v, steps);
            for (int k = 0; k < steps; k++)
                if (poa_linspace_f32(0.1, 0.5, steps, k) != v[k])
                    fail_msg("linspace(0.1, 0.5, %d)[%d] = %.9g, torch %.9g", steps, k,
                             poa_linspace_f32(0.1, 0.5, steps, k), v[k]);
        } else if (is_op(l, "masktarget")) {
            int steps = geti(l, "steps"), k = geti(l, "k");
            int t = poa_mask_target(geti(l, "N"), poa_linspace_f32(0.1, 0.5, steps, k),
                                    poa_linspace_f32(0.1, 0.5, steps, k + 1), getd(l, "u"));
            if (t != geti(l, "target")) fail_msg("mask target %d: %s", t, l);
            cases++;
        }
    }
    printf("mask targets: %d float32 cases identical\n", cases);
    assert_true(cases > 100);
}

static int setup(void **state)
{
    (void) state;
    test_scratch(dir, sizeof dir, "augment_ref");
    const char *py = getenv("POA_PYTHON_REF");
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/reference/augment_ref.py' --out '%s'",
             py && *py ? py : "/usr/bin/python3", test_src_dir(), dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "reference script failed: %s\n", cmd);
        return -1;
    }
    char path[8400];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[65536];
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\n")] = '\0';
        lines = realloc(lines, (size_t) (n_lines + 1) * sizeof *lines);
        lines[n_lines++] = strdup(buf);
    }
    fclose(f);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_matches_pil),
        cmocka_unit_test(test_resize_matches_pillow),
        cmocka_unit_test(test_pixel_ops_match_torchvision),
        cmocka_unit_test(test_blur_within_one_level),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_rrc_geometry),
        cmocka_unit_test(test_whole_crops),
        cmocka_unit_test(test_mask_counts_float32),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
