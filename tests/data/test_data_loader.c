/* test_data_loader.c — sampler (determinism, permutation, rank disjointness, resume), iBOT mask
 * statistics, DCT-scaled decoding, and the threaded loader: crop-major layout recomputed crop by
 * crop, 2 threads = 1 thread bit for bit, resume = continuing, undecodable records replaced
 * deterministically. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/log.h"
#include "data/dataset.h"
#include "data/jpeg.h"
#include "data/loader.h"
#include "data/mask.h"
#include "data/sampler.h"
#include "data_test_pack.h"
#include "data_test_util.h"
#include "tests/lib/image_ref.h"

#include <math.h>

static char packed[4096], packed_bad[4096];
enum { N_IMAGES = 23, CORRUPT = 9 };

/* ------------------------------------------------------------------ sampler */
static void test_sampler_permutation_and_determinism(void **state)
{
    (void) state;
    enum { N = 1000 };
    poa_sampler a, b, c;
    assert_int_equal(poa_sampler_init(&a, 7, N, 1, 0, NULL), POA_OK);
    assert_int_equal(poa_sampler_init(&b, 7, N, 1, 0, NULL), POA_OK);
    assert_int_equal(poa_sampler_init(&c, 8, N, 1, 0, NULL), POA_OK);
    int seen[N] = {0}, same_as_other_seed = 0, same_pass = 0;
    for (int i = 0; i < N; i++) {
        uint32_t v = poa_sampler_next(&a);
        assert_int_equal(v, poa_sampler_next(&b));
        assert_true(v < N);
        seen[v]++;
        same_as_other_seed += v == poa_sampler_next(&c);
    }
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1); /* one pass = a permutation */
    for (int i = 0; i < N; i++)
        same_pass += poa_sampler_at(&a, (uint64_t) i) == poa_sampler_at(&a, (uint64_t) (N + i));
    assert_true(same_as_other_seed < 20); /* another seed: another order */
    assert_true(same_pass < 20);          /* pass 1 is reshuffled */
    poa_sampler_free(&a);
    poa_sampler_free(&b);
    poa_sampler_free(&c);
}

static void test_sampler_ranks_disjoint(void **state)
{
    (void) state;
    enum { N = 1003, W = 4 };
    int owner[N];
    for (int i = 0; i < N; i++) owner[i] = -1;
    poa_sampler s[W];
    for (int r = 0; r < W; r++)
        assert_int_equal(poa_sampler_init(&s[r], 3, N, W, (uint32_t) r, NULL), POA_OK);
    for (int r = 0; r < W; r++)
        for (int k = 0; k < N / W; k++) {
            uint32_t v = poa_sampler_at(&s[r], (uint64_t) k);
            if (owner[v] != -1)
                fail_msg("image %u read by ranks %d and %d in pass 0", v, owner[v], r);
            owner[v] = r;
        }
    int unused = 0;
    for (int i = 0; i < N; i++) unused += owner[i] == -1;
    assert_int_equal(unused, N % W); /* as ShardedInfiniteSampler: N mod W images unused per pass */
    /* Rank r reads entries r, r + W, … of the shared permutation of pass 0. */
    poa_sampler one;
    assert_int_equal(poa_sampler_init(&one, 3, N, 1, 0, NULL), POA_OK);
    for (int k = 0; k < 10; k++)
        for (int r = 0; r < W; r++)
            assert_int_equal(poa_sampler_at(&s[r], (uint64_t) k),
                             poa_sampler_at(&one, (uint64_t) (r + k * W)));
    for (int r = 0; r < W; r++) poa_sampler_free(&s[r]);
    poa_sampler_free(&one);
    poa_err err;
    poa_sampler bad;
    assert_int_equal(poa_sampler_init(&bad, 0, 3, 4, 0, &err), POA_ERR_ARG);
    assert_non_null(strstr(err.msg, "3 images cannot be divided over 4 ranks"));
}

static void test_sampler_resume(void **state)
{
    (void) state;
    enum { N = 97 };
    poa_sampler a, b;
    assert_int_equal(poa_sampler_init(&a, 11, N, 2, 1, NULL), POA_OK);
    for (int i = 0; i < 130; i++) poa_sampler_next(&a); /* past a pass boundary */
    uint64_t words[POA_SAMPLER_STATE_WORDS];
    poa_sampler_state_pack(&a.st, words);
    poa_sampler_state st;
    poa_sampler_state_unpack(words, &st);
    assert_int_equal(st.position, 130);
    assert_int_equal(poa_sampler_init(&b, 11, N, 2, 1, NULL), POA_OK);
    assert_int_equal(poa_sampler_restore(&b, &st, NULL), POA_OK);
    for (int i = 0; i < 200; i++) assert_int_equal(poa_sampler_next(&a), poa_sampler_next(&b));
    poa_err err;
    st.world_size = 4;
    assert_int_equal(poa_sampler_restore(&b, &st, &err), POA_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "world size 4 cannot continue with world size 2"));
    st.world_size = 2;
    st.seed = 12;
    assert_int_equal(poa_sampler_restore(&b, &st, &err), POA_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "seed 12"));
    poa_sampler_free(&a);
    poa_sampler_free(&b);
}

/* ------------------------------------------------------------------ masks */
static void bounding_box(const uint8_t *m, int g, int *h, int *w, int *count)
{
    int r0 = g, r1 = -1, c0 = g, c1 = -1;
    *count = 0;
    for (int i = 0; i < g; i++)
        for (int j = 0; j < g; j++)
            if (m[i * g + j]) {
                (*count)++;
                r0 = i < r0 ? i : r0, r1 = i > r1 ? i : r1, c0 = j < c0 ? j : c0,
                c1 = j > c1 ? j : c1;
            }
    *h = r1 - r0 + 1;
    *w = c1 - c0 + 1;
}

static void test_mask_blocks(void **state)
{
    (void) state;
    poa_mask_params p;
    poa_mask_params_default(&p, 224, 16);
    assert_int_equal(p.grid_h, 14);
    assert_true(p.max_num_patches == 98.0);
    poa_rng r;
    poa_rng_init(&r, 1, 0, POA_RNG_TEST, 0);
    uint8_t m[196];
    double area_sum = 0;
    int n = 4000, min_side = 14, max_side = 0;
    double min_aspect = 1e9, max_aspect = 0;
    for (int i = 0; i < n; i++) {
        memset(m, 0, sizeof m);
        int added = poa_mask_add_block(&p, &r, m, 98.0);
        int h, w, count;
        bounding_box(m, 14, &h, &w, &count);
        assert_int_equal(count, added);
        if (added == 0) continue;
        assert_int_equal(h * w, count); /* one full rectangle */
        assert_true(h < 14 && w < 14);
        assert_true(count <= 98);
        area_sum += count;
        min_side = h < min_side ? h : min_side;
        max_side = h > max_side ? h : max_side;
        min_aspect = fmin(min_aspect, (double) h / w);
        max_aspect = fmax(max_aspect, (double) h / w);
    }
    double mean_area = area_sum / n;
    printf("single blocks: mean area %.1f (U(4, 98) mean 51), sides %d..%d, h/w %.2f..%.2f\n",
           mean_area, min_side, max_side, min_aspect, max_aspect);
    /* log-uniform aspect in [0.3, 3.33] with rounding; rejected blocks (side >= 14) bias the area.
     */
    assert_true(mean_area > 35 && mean_area < 55);
    /* round() of sides from an aspect in [0.3, 1/0.3]: at most 5 × 1 (or 1 × 5). */
    assert_true(min_aspect >= 0.2 && max_aspect <= 5.0);
    assert_true(min_aspect < 0.5 && max_aspect > 2.0);
}

static void test_mask_counts_and_batches(void **state)
{
    (void) state;
    poa_mask_params p;
    poa_mask_params_default(&p, 224, 16);
    poa_rng r;
    poa_rng_init(&r, 2, 0, POA_RNG_TEST, 0);
    uint8_t m[196];
    double ratio_sum = 0;
    int n = 0;
    for (int t = 19; t <= 98; t++)
        for (int rep = 0; rep < 20; rep++, n++) {
            int c = poa_mask_generate(&p, &r, t, m);
            int direct = 0;
            for (int i = 0; i < 196; i++) direct += m[i];
            assert_int_equal(direct, c);
            assert_true(c <= t && c > 0);
            ratio_sum += (double) c / t;
        }
    printf("mask(target): mean count/target %.3f\n", ratio_sum / n);
    assert_true(ratio_sum / n > 0.85);
    assert_int_equal(poa_mask_generate(&p, &r, 0, m), 0);

    enum { B = 50, NC = 2 * B };
    uint8_t *masks = malloc(NC * 196);
    int64_t ub;
    int hist_nonempty = 0, first_half_nonempty = 0;
    for (int rep = 0; rep < 40; rep++) {
        int total = poa_mask_batch(&p, &r, NC, masks, &ub);
        int counts[NC], sum = 0, nonempty = 0;
        for (int k = 0; k < NC; k++) {
            counts[k] = 0;
            for (int i = 0; i < 196; i++) counts[k] += masks[k * 196 + i];
            sum += counts[k];
            nonempty += counts[k] > 0;
            if (k < B) first_half_nonempty += counts[k] > 0;
        }
        assert_int_equal(sum, total);
        assert_int_equal(nonempty, B); /* floor(2B · 0.5) masked crops */
        assert_true(total <= ub);
        hist_nonempty += nonempty;
        /* Stratified ratios: the masked counts sorted lie below int(196 · r_{k+1}). */
        int sorted[NC], m2 = 0;
        for (int k = 0; k < NC; k++)
            if (counts[k]) sorted[m2++] = counts[k];
        for (int a = 0; a < m2; a++)
            for (int b2 = a + 1; b2 < m2; b2++)
                if (sorted[b2] < sorted[a]) {
                    int t = sorted[a];
                    sorted[a] = sorted[b2];
                    sorted[b2] = t;
                }
        assert_true(sorted[0] >= 1 && sorted[m2 - 1] <= 98);
        assert_true(sorted[m2 / 2] >= 196 * 0.2 && sorted[m2 / 2] <= 196 * 0.4);
    }
    /* Shuffled: masked crops land in both halves (global crop 1 and 2) about equally. */
    printf("masked crops in the first half: %d of %d\n", first_half_nonempty, hist_nonempty);
    assert_true(first_half_nonempty > hist_nonempty * 0.4 &&
                first_half_nonempty < hist_nonempty * 0.6);
    free(masks);
}

/* ------------------------------------------------------------------ DCT scaling */
static void test_dct_scaling(void **state)
{
    (void) state;
    poa_crop_params c[2] = {{.width = 400, .height = 300}, {.width = 200, .height = 160}};
    int sizes[2] = {32, 16};
    assert_int_equal(poa_dct_scale(c, sizes, 2, 0), 8);
    assert_int_equal(poa_dct_scale(c, sizes, 2, 2.0), 1); /* 10× smaller: 1/8 still >= size */
    int big[2] = {224, 96};
    assert_int_equal(poa_dct_scale(c, big, 2, 2.0), 8); /* < 2× smaller: full decode */
    /* A 640×480 image cropped to 16 px: DCT-scaled decode + resize stays close to the exact path.
     */
    enum { W = 640, H = 480 };
    uint8_t *rgb = malloc(W * H * 3), *jpg;
    size_t n;
    test_picture(rgb, W, H, 9);
    assert_int_equal(poa_jpeg_encode(rgb, W, H, 0, 90, 0, &jpg, &n, NULL), POA_OK);
    poa_jpeg_decoder dec;
    poa_jpeg_decoder_init(&dec);
    poa_image full = {0}, small = {0};
    assert_int_equal(poa_jpeg_decode(&dec, jpg, n, 8, &full, NULL, NULL), POA_OK);
    poa_crop_params p = {.top = 37, .left = 101, .height = 301, .width = 333};
    int s16[1] = {16};
    int num = poa_dct_scale(&p, s16, 1, 2.0);
    assert_true(num < 8);
    assert_int_equal(poa_jpeg_decode(&dec, jpg, n, num, &small, NULL, NULL), POA_OK);
    assert_int_equal(small.w, (W * num + 7) / 8);
    poa_aug_scratch s = {0};
    poa_crop_apply_u8(&full, 1.0, &p, 16, 128, 9, &s);
    uint8_t exact[16 * 16 * 3];
    memcpy(exact, s.crop.p, sizeof exact);
    poa_crop_apply_u8(&small, num / 8.0, &p, 16, 128, 9, &s);
    double mad = 0;
    for (int i = 0; i < 16 * 16 * 3; i++) mad += abs((int) exact[i] - (int) s.crop.p[i]);
    mad /= 16 * 16 * 3;
    printf("DCT scale %d/8 for a 333x301 box to 16 px: mean |diff| %.2f grey levels\n", num, mad);
    assert_true(mad < 6.0);
    poa_aug_scratch_free(&s);
    poa_image_free(&full);
    poa_image_free(&small);
    poa_jpeg_decoder_free(&dec);
    free(rgb);
    free(jpg);
}

/* ------------------------------------------------------------------ table-driven hue */
static void test_hue_tables_exhaustive(void **state)
{
    (void) state;
    /* Every RGB colour, for shifts covering both directions and the wrap-around: the table
     * version equals Pillow's conversions evaluated pixel by pixel. */
    const double factors[] = {-0.1, 0.0031, 0.0999};
    poa_image a = {0}, b = {0};
    poa_image_resize_buffer(&a, 256, 256);
    poa_image_resize_buffer(&b, 256, 256);
    for (size_t f = 0; f < sizeof factors / sizeof factors[0]; f++)
        for (int r = 0; r < 256; r++) {
            for (int i = 0; i < 256 * 256; i++) {
                a.p[3 * i] = (uint8_t) r, a.p[3 * i + 1] = (uint8_t) (i >> 8),
                        a.p[3 * i + 2] = (uint8_t) i;
            }
            memcpy(b.p, a.p, 256 * 256 * 3);
            poa_adjust_hue(&a, factors[f]);
            poa_adjust_hue_reference(&b, factors[f]);
            if (memcmp(a.p, b.p, 256 * 256 * 3) != 0)
                for (int i = 0; i < 256 * 256; i++)
                    if (memcmp(a.p + 3 * i, b.p + 3 * i, 3))
                        fail_msg("hue %g of (%d, %d, %d): table (%d, %d, %d), direct (%d, %d, %d)",
                                 factors[f], r, i >> 8, i & 255, a.p[3 * i], a.p[3 * i + 1],
                                 a.p[3 * i + 2], b.p[3 * i], b.p[3 * i + 1], b.p[3 * i + 2]);
        }
    printf("hue tables: all 2^24 colours identical to the direct conversion for 3 factors\n");
    poa_image_free(&a);
    poa_image_free(&b);
}

static void test_blur_semantics(void **state)
{
    (void) state;
    const double gs[2] = {0.32, 1.0}, ls[2] = {0.05, 0.32};
    const double official[3] = {0.0, 0.9, 0.5}, paper[3] = {1.0, 0.1, 0.5};
    for (int k = 0; k < 3; k++) {
        poa_view_params o, p;
        poa_view_params_official(&o, k, 224, 96, gs, ls, POA_BLUR_OFFICIAL);
        poa_view_params_official(&p, k, 224, 96, gs, ls, POA_BLUR_PAPER);
        assert_true(o.blur_p == official[k] && p.blur_p == paper[k]);
        assert_true(o.solarize_p == (k == 1 ? 0.2 : 0.0));
        assert_int_equal(o.size, k < 2 ? 224 : 96);
    }
    /* Executed frequencies over many draws. */
    int blurred[3] = {0, 0, 0}, n = 20000;
    for (int k = 0; k < 3; k++) {
        poa_view_params v;
        poa_view_params_official(&v, k, 224, 96, gs, ls, POA_BLUR_OFFICIAL);
        for (int i = 0; i < n; i++) {
            poa_rng r;
            poa_rng_init(&r, 9, 0, POA_RNG_TEST, (uint64_t) i << 10);
            poa_crop_params c;
            poa_crop_draw(&v, 500, 375, &r, &c);
            blurred[k] += c.blur;
            assert_true(c.width >= 1 && c.width <= 500 && c.height >= 1 && c.height <= 375);
        }
    }
    printf("blur frequencies (official): %.3f %.3f %.3f\n", (double) blurred[0] / n,
           (double) blurred[1] / n, (double) blurred[2] / n);
    assert_int_equal(blurred[0], 0);
    assert_true(fabs((double) blurred[1] / n - 0.9) < 0.01 &&
                fabs((double) blurred[2] / n - 0.5) < 0.015);
}

/* ------------------------------------------------------------------ loader */
static poa_loader_params small_params(int threads)
{
    poa_loader_params p;
    poa_loader_params_default(&p);
    p.global_crops_size = 32;
    p.local_crops_size = 16;
    p.local_crops_number = 3;
    p.patch_size = 8;
    p.batch_size = 4;
    p.seed = 42;
    p.threads = threads;
    p.prefetch = 3;
    return p;
}

typedef struct batch_copy {
    float *g, *l;
    uint8_t *m;
    int32_t labels[16];
    uint64_t idx[16];
    int replaced;
    uint64_t position;
} batch_copy;

static size_t gsz(const poa_batch *b)
{
    return 2 * (size_t) b->batch_size * 3 * b->global_size * b->global_size;
}
static size_t lsz(const poa_batch *b)
{
    return (size_t) b->n_local * b->batch_size * 3 * b->local_size * b->local_size;
}

static void take(const char *dir, poa_loader_params p, const poa_sampler_state *resume, int n,
                 batch_copy *out, poa_sampler_state *state_after_2)
{
    poa_loader *L;
    poa_err err = {0};
    if (poa_loader_open(&L, dir, "train", &p, resume, &err) != POA_OK) fail_msg("%s", err.msg);
    for (int i = 0; i < n; i++) {
        const poa_batch *b;
        if (poa_loader_next(L, &b, &err) != POA_OK) fail_msg("%s", err.msg);
        out[i].g = malloc(gsz(b) * 4);
        out[i].l = malloc(lsz(b) * 4);
        out[i].m = malloc(2 * (size_t) b->batch_size * b->n_tokens);
        memcpy(out[i].g, b->global_crops, gsz(b) * 4);
        memcpy(out[i].l, b->local_crops, lsz(b) * 4);
        memcpy(out[i].m, b->masks, 2 * (size_t) b->batch_size * b->n_tokens);
        memcpy(out[i].labels, b->labels, (size_t) b->batch_size * 4);
        memcpy(out[i].idx, b->indices, (size_t) b->batch_size * 8);
        out[i].replaced = b->n_replaced;
        out[i].position = b->position;
        if (i == 1 && state_after_2) poa_loader_state(L, state_after_2);
    }
    poa_loader_close(L);
}

static void free_copies(batch_copy *c, int n)
{
    for (int i = 0; i < n; i++) free(c[i].g), free(c[i].l), free(c[i].m);
}

static void expect_same(const batch_copy *a, const batch_copy *b, const poa_loader_params *p,
                        const char *what)
{
    size_t g = 2 * (size_t) p->batch_size * 3 * p->global_crops_size * p->global_crops_size;
    size_t l = (size_t) p->local_crops_number * p->batch_size * 3 * p->local_crops_size *
               p->local_crops_size;
    size_t m = 2 * (size_t) p->batch_size * (p->global_crops_size / p->patch_size) *
               (p->global_crops_size / p->patch_size);
    if (memcmp(a->g, b->g, g * 4) || memcmp(a->l, b->l, l * 4) || memcmp(a->m, b->m, m) ||
        memcmp(a->idx, b->idx, (size_t) p->batch_size * 8) || a->replaced != b->replaced)
        fail_msg("%s: batches at position %llu differ", what, (unsigned long long) a->position);
}

static void test_loader_threads_identical(void **state)
{
    (void) state;
    enum { NB = 9 }; /* 36 images: more than one pass of 23 */
    batch_copy one[NB], two[NB];
    poa_loader_params p1 = small_params(1), p2 = small_params(2);
    take(packed, p1, NULL, NB, one, NULL);
    take(packed, p2, NULL, NB, two, NULL);
    for (int i = 0; i < NB; i++) expect_same(&one[i], &two[i], &p1, "1 thread vs 2 threads");
    /* Different seed → different batches. */
    batch_copy other[1];
    poa_loader_params p3 = small_params(2);
    p3.seed = 43;
    take(packed, p3, NULL, 1, other, NULL);
    assert_true(memcmp(other[0].g, one[0].g, 4 * 100) != 0);
    printf("loader: %d batches identical with 1 and 2 threads\n", NB);
    free_copies(one, NB);
    free_copies(two, NB);
    free_copies(other, 1);
}

static void test_loader_resume(void **state)
{
    (void) state;
    enum { NB = 6 };
    batch_copy full[NB], resumed[NB - 2];
    poa_sampler_state st;
    poa_loader_params p = small_params(2);
    take(packed, p, NULL, NB, full, &st);
    assert_int_equal(st.position, 2 * 4);
    take(packed, p, &st, NB - 2, resumed, NULL);
    for (int i = 0; i < NB - 2; i++)
        expect_same(&resumed[i], &full[i + 2], &p, "resumed vs continued");
    printf("loader: resuming at position %llu reproduces the next %d batches\n",
           (unsigned long long) st.position, NB - 2);
    free_copies(full, NB);
    free_copies(resumed, NB - 2);
}

/* Batch rows are crop-major and equal to the documented per-crop computation. */
static void test_loader_layout(void **state)
{
    (void) state;
    poa_loader_params p = small_params(2);
    poa_loader *L;
    poa_err err = {0};
    assert_int_equal(poa_loader_open(&L, packed, "train", &p, NULL, &err), POA_OK);
    const poa_batch *b;
    assert_int_equal(poa_loader_next(L, &b, &err), POA_OK);
    assert_int_equal(b->n_tokens, 16);
    assert_int_equal(b->position, 0);
    poa_dataset ds;
    assert_int_equal(poa_dataset_open(&ds, packed, "train", &err), POA_OK);
    poa_sampler smp;
    assert_int_equal(poa_sampler_init(&smp, p.seed, N_IMAGES, 1, 0, NULL), POA_OK);
    poa_jpeg_decoder dec;
    poa_jpeg_decoder_init(&dec);
    poa_image im = {0};
    poa_aug_scratch s = {0};
    uint8_t *buf = NULL;
    size_t cap = 0, size;
    int32_t label;
    float *crop = malloc(3 * 32 * 32 * sizeof *crop);
    int dct_used = 0;
    for (int k = 0; k < p.batch_size; k++) {
        uint64_t idx = poa_sampler_at(&smp, (uint64_t) k);
        assert_int_equal(b->indices[k], idx);
        assert_int_equal(poa_dataset_read(&ds, (int64_t) idx, &buf, &cap, &size, &label, &err),
                         POA_OK);
        assert_int_equal(b->labels[k], label);
        /* As documented in loader.h: draw every crop, choose the DCT scale, decode, apply. */
        poa_jpeg_info info;
        assert_int_equal(poa_jpeg_probe(buf, size, &info, &err), POA_OK);
        int nc = 2 + p.local_crops_number, sizes[8];
        poa_view_params v[8];
        poa_crop_params cp[8];
        for (int c = 0; c < nc; c++) {
            poa_view_params_official(&v[c], c, 32, 16, p.global_crops_scale, p.local_crops_scale,
                                     POA_BLUR_OFFICIAL);
            poa_rng r;
            poa_rng_init(&r, p.seed, 0, POA_RNG_AUGMENT, ((uint64_t) k * 64 + (uint64_t) c) << 10);
            poa_crop_draw(&v[c], info.width, info.height, &r, &cp[c]);
            sizes[c] = v[c].size;
        }
        int num = poa_dct_scale(cp, sizes, nc, p.dct_min_ratio);
        dct_used += num < 8;
        assert_int_equal(poa_jpeg_decode(&dec, buf, size, num, &im, NULL, &err), POA_OK);
        for (int c = 0; c < nc; c++) {
            poa_crop_apply(&im, num / 8.0, &cp[c], v[c].size, 128, 9, poa_imagenet_mean,
                           poa_imagenet_std, crop, &s);
            size_t n = 3 * (size_t) v[c].size * v[c].size;
            const float *row = c < 2 ? b->global_crops + ((size_t) c * p.batch_size + k) * n
                                     : b->local_crops + ((size_t) (c - 2) * p.batch_size + k) * n;
            if (memcmp(row, crop, n * sizeof *crop) != 0)
                fail_msg("batch row of crop %d of image %d is not the crop computed directly", c,
                         k);
        }
    }
    printf("loader layout: %d images recomputed crop by crop (%d decoded with DCT scaling)\n",
           p.batch_size, dct_used);
    /* Masks: 2B rows of the 4×4 grid, B of them masked. */
    int nonempty = 0;
    for (int r = 0; r < 2 * p.batch_size; r++) {
        int cnt = 0;
        for (int i = 0; i < 16; i++) cnt += b->masks[r * 16 + i];
        nonempty += cnt > 0;
        assert_true(cnt <= 8);
    }
    assert_int_equal(nonempty, p.batch_size);
    free(crop);
    free(buf);
    poa_image_free(&im);
    poa_aug_scratch_free(&s);
    poa_jpeg_decoder_free(&dec);
    poa_sampler_free(&smp);
    poa_dataset_close(&ds);
    poa_loader_close(L);
}

static void test_loader_replaces_undecodable(void **state)
{
    (void) state;
    enum { NB = 12 }; /* two passes */
    batch_copy one[NB], two[NB];
    poa_loader_params p1 = small_params(1), p2 = small_params(2);
    take(packed_bad, p1, NULL, NB, one, NULL);
    take(packed_bad, p2, NULL, NB, two, NULL);
    int replaced = 0;
    for (int i = 0; i < NB; i++) {
        expect_same(&one[i], &two[i], &p1, "replacement with 1 vs 2 threads");
        replaced += one[i].replaced;
        for (int k = 0; k < 4; k++) assert_int_not_equal(one[i].idx[k], CORRUPT);
    }
    printf("loader: corrupt entry replaced %d times in %d batches, deterministically\n", replaced,
           NB);
    assert_int_equal(replaced, 2); /* once per pass */
    free_copies(one, NB);
    free_copies(two, NB);
}

static void test_loader_errors(void **state)
{
    (void) state;
    poa_loader *L;
    poa_err err = {0};
    poa_loader_params p = small_params(1);
    p.global_crops_size = 30;
    assert_int_equal(poa_loader_open(&L, packed, "train", &p, NULL, &err), POA_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "not a multiple of patch size"));
    p = small_params(1);
    assert_int_equal(poa_loader_open(&L, packed, "val", &p, NULL, &err), POA_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "no split 'val'"));
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/nowhere", packed);
    assert_int_equal(poa_loader_open(&L, missing, "train", &p, NULL, &err), POA_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "metadata.h5"));
}

static int setup(void **state)
{
    (void) state;
    poa_log_set_level(POA_LOG_ERROR); /* the replacement warnings are expected */
    poa_err err = {0};
    test_scratch(packed, sizeof packed, "loader/good");
    test_scratch(packed_bad, sizeof packed_bad, "loader/bad");
    if (test_make_packed(packed, N_IMAGES, 3, -1, &err) != POA_OK ||
        test_make_packed(packed_bad, N_IMAGES, 2, CORRUPT, &err) != POA_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampler_permutation_and_determinism),
        cmocka_unit_test(test_sampler_ranks_disjoint),
        cmocka_unit_test(test_sampler_resume),
        cmocka_unit_test(test_mask_blocks),
        cmocka_unit_test(test_mask_counts_and_batches),
        cmocka_unit_test(test_dct_scaling),
        cmocka_unit_test(test_hue_tables_exhaustive),
        cmocka_unit_test(test_blur_semantics),
        cmocka_unit_test(test_loader_threads_identical),
        cmocka_unit_test(test_loader_resume),
        cmocka_unit_test(test_loader_layout),
        cmocka_unit_test(test_loader_replaces_undecodable),
        cmocka_unit_test(test_loader_errors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
