/* test_linear.c — the linear-probe pieces of src/eval/linear.h and the training transform of
 * src/eval/images.h:
 *  - the kept blocks: depths 12, 24, 14 (the official examples: 3, 6, 9, 11 / 6, 12, 18, 23 /
 *    4, 7, 10, 13), the demo's depths 3 to 6 and the shallowest networks, against numpy's
 *    half-to-even rounding written out by hand;
 *  - the classifier grid: the official order and inputs (n ∈ {1, 4} outer, avgpool, rates), the
 *    input-major parameter layout, lr = rate · B / 256, initial weights N(0, 0.01²), biases 0;
 *  - the gradient of the summed cross-entropies against central differences in double precision
 *    (a copy of the parameters perturbed one at a time), and the loss sums; the fixed-point sums
 *    the same bits in any order of the calls; a non-finite feature marks exactly the classifiers
 *    that read it as diverged;
 *  - one SGD step by hand (momentum 0.9: buf = grad on the first step, then 0.9 · buf + grad);
 *  - the cosine factor; top-1 / top-5 with ties to the lower class; the best classifier (first
 *    of the highest);
 *  - the order of the training images: one permutation per pass, batches across passes, the
 *    same for the same seed;
 *  - the training transform: a pure function of (seed, key) — the same crop whatever the
 *    position in a call — equal to RandomResizedCrop + flip drawn from the documented stream,
 *    crop boxes within scale 0.08–1 and ratio 3/4–4/3, about half of them flipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/rng.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "data/jpeg.h"
#include "data_test_pack.h"
#include "eval/images.h"
#include "eval/linear.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* numpy.round(L / 4 * i) by its definition: the nearest integer, halves to the even one. */
static int np_round_quarter(int L, int i)
{
    const double v = L / 4.0 * i, f = floor(v);
    if (v - f < 0.5) return (int) f;
    if (v - f > 0.5) return (int) f + 1;
    return ((long) f % 2 == 0) ? (int) f : (int) f + 1;
}

static void test_block_positions(void **state)
{
    (void) state;
    static const int want[][5] = {
        {12, 3, 6, 9, 11}, {24, 6, 12, 18, 23}, {14, 4, 7, 10, 13}, /* the official examples */
        {3, 1, 2, 2, 2},   {4, 1, 2, 3, 3},     {5, 1, 2, 4, 4},    /* the demo's depths     */
        {6, 2, 3, 4, 5},   {1, 0, 0, 1, 0},     {2, 0, 1, 2, 1},    /* shallowest            */
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        int pos[POA_LINEAR_BLOCKS];
        poa_linear_block_positions(want[k][0], pos);
        for (int j = 0; j < POA_LINEAR_BLOCKS; j++) assert_int_equal(pos[j], want[k][j + 1]);
    }
    for (int L = 1; L <= 48; L++) {
        int pos[POA_LINEAR_BLOCKS];
        poa_linear_block_positions(L, pos);
        for (int i = 1; i <= 3; i++) assert_int_equal(pos[i - 1], np_round_quarter(L, i));
        assert_int_equal(pos[3], L - 1);
    }
}

static const double rates[3] = {1e-3, 1e-2, 0.1};

static void test_grid_layout(void **state)
{
    (void) state;
    const int d = 6, C = 4;
    poa_linear c;
    poa_linear_init_blocks(&c, d, C, rates, 3, 512 / 256.0, 8, 7);
    assert_int_equal(poa_linear_count(&c), 12);
    assert_int_equal(c.row, 5 * d);
    static const int inputs[4][4] = {{1, 0, 3, 1}, {1, 1, 3, 2}, {4, 0, 0, 4}, {4, 1, 0, 5}};
    size_t at = 0;
    for (int k = 0; k < 12; k++) {
        const poa_linear_input *in = poa_linear_input_of(&c, k);
        const int g = k / 3;
        assert_int_equal(in->n_blocks, inputs[g][0]);
        assert_int_equal(in->avgpool, inputs[g][1]);
        assert_int_equal(in->offset, inputs[g][2] * d);
        assert_int_equal(in->dim, inputs[g][3] * d);
        assert_true(poa_linear_rate_of(&c, k) == rates[k % 3]);
        assert_true(poa_linear_lr_of(&c, k) == rates[k % 3] * 2.0);
        if (k % 3 == 0) { /* input-major: W [3C, dim] then b [3C] */
            assert_int_equal(in->w_off, at);
            assert_int_equal(in->b_off, at + (size_t) 3 * C * in->dim);
            at = in->b_off + 3 * C;
        }
    }
    assert_int_equal(c.n_params, at);
    double sum = 0, sq = 0;
    size_t nw = 0;
    for (int g = 0; g < c.n_in; g++) {
        for (size_t i = c.in[g].w_off; i < c.in[g].b_off; i++, nw++)
            sum += c.params[i], sq += (double) c.params[i] * c.params[i];
        for (size_t i = c.in[g].b_off; i < c.in[g].b_off + 3 * C; i++)
            assert_true(c.params[i] == 0.0f);
    }
    const double mean = sum / nw, sd = sqrt(sq / nw - mean * mean);
    assert_true(fabs(mean) < 0.002 && fabs(sd - 0.01) < 0.001);
    /* the same seed draws the same weights */
    poa_linear c2;
    poa_linear_init_blocks(&c2, d, C, rates, 3, 2.0, 8, 7);
    assert_memory_equal(c.params, c2.params, sizeof(float) * c.n_params);
    poa_linear_free(&c2);
    poa_linear_free(&c);
    poa_linear_init_pixels(&c, 10, C, rates, 3, 1.0, 8, 7);
    assert_int_equal(poa_linear_count(&c), 3);
    assert_int_equal(c.in[0].n_blocks, 0);
    assert_int_equal(c.in[0].dim, 10);
    assert_int_equal(c.n_params, (size_t) 3 * C * 11);
    poa_linear_free(&c);
}

/* Σ_k mean over rows of the cross-entropy of classifier k, in double, with params p. */
static double total_loss(const poa_linear *c, const float *p, const float *x, int rows,
                         const int32_t *y)
{
    const int C = c->n_classes;
    double total = 0;
    for (int g = 0; g < c->n_in; g++) {
        const poa_linear_input *in = &c->in[g];
        for (int l = 0; l < c->n_lr; l++)
            for (int r = 0; r < rows; r++) {
                double z[16], mx = -1e300, s = 0;
                for (int j = 0; j < C; j++) {
                    const float *w = p + in->w_off + ((size_t) l * C + j) * in->dim;
                    z[j] = p[in->b_off + (size_t) l * C + j];
                    for (int e = 0; e < in->dim; e++)
                        z[j] += (double) w[e] * x[(size_t) r * c->row + in->offset + e];
                    mx = z[j] > mx ? z[j] : mx;
                }
                for (int j = 0; j < C; j++) s += exp(z[j] - mx);
                total += (mx + log(s) - z[y[r]]) / rows;
            }
    }
    return total;
}

static void random_rows(float *x, size_t n, uint64_t seed)
{
    poa_rng r;
    poa_rng_init(&r, seed, 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float) poa_rng_normal(&r);
}

static void test_gradient(void **state)
{
    (void) state;
    const int d = 3, C = 4, rows = 5;
    poa_linear c;
    poa_linear_init_blocks(&c, d, C, rates, 2, 1.0, 4, 11);
    for (size_t i = 0; i < c.n_params; i++) c.params[i] *= 30.0f; /* logits of order 1 */
    for (int g = 0; g < c.n_in; g++) c.params[c.in[g].b_off + 1] = 0.3f;
    float x[5 * 15];
    random_rows(x, sizeof x / sizeof x[0], 3);
    const int32_t y[5] = {0, 3, 1, 1, 2};
    poa_linear_zero_grad(&c);
    /* two calls (4 + 1 rows: max_rows 4) accumulate the batch mean with scale 1 / rows */
    poa_linear_accumulate(&c, x, 4, y, 1.0f / rows);
    poa_linear_accumulate(&c, x + 4 * c.row, 1, y + 4, 1.0f / rows);
    size_t n;
    poa_linear_sums(&c, &n);
    assert_int_equal(n, c.n_params + 16);
    float *g = malloc(sizeof(float) * c.n_params);
    double loss[8];
    poa_linear_gradient(&c, g, loss);
    float *p = malloc(sizeof(float) * c.n_params);
    memcpy(p, c.params, sizeof(float) * c.n_params);
    double worst = 0;
    for (size_t i = 0; i < c.n_params; i++) {
        const float h = 1e-2f, keep = p[i];
        p[i] = keep + h;
        const double up = total_loss(&c, p, x, rows, y);
        p[i] = keep - h;
        const double down = total_loss(&c, p, x, rows, y);
        p[i] = keep;
        const double fd = (up - down) / (2.0 * h), err = fabs(fd - g[i]);
        worst = err > worst ? err : worst;
    }
    assert_true(worst < 2e-4);
    /* loss sums: Σ over the rows of each classifier's cross-entropy */
    double sum = 0;
    for (int k = 0; k < 8; k++) sum += loss[k];
    assert_true(fabs(sum / rows - total_loss(&c, p, x, rows, y)) < 1e-6);
    /* the fixed-point sums do not depend on the order of the calls */
    size_t len;
    int64_t *first = malloc(sizeof(int64_t) * n);
    memcpy(first, poa_linear_sums(&c, &len), sizeof(int64_t) * n);
    poa_linear_zero_grad(&c);
    poa_linear_accumulate(&c, x + 4 * c.row, 1, y + 4, 1.0f / rows);
    poa_linear_accumulate(&c, x, 4, y, 1.0f / rows);
    assert_memory_equal(first, poa_linear_sums(&c, &len), sizeof(int64_t) * n);
    /* a non-finite feature marks the classifiers that read it as diverged: NaN gradient and loss */
    poa_linear_zero_grad(&c);
    float bad[15];
    memcpy(bad, x, sizeof bad);
    bad[1] = INFINITY; /* column 1: read by the n = 4 inputs only */
    poa_linear_accumulate(&c, bad, 1, y, 1.0f / rows);
    poa_linear_gradient(&c, g, loss);
    for (int k = 0; k < 8; k++) {
        size_t at = c.in[k / 2].w_off + (size_t) (k % 2) * C * c.in[k / 2].dim;
        assert_true(isnan(loss[k]) == (k >= 4));
        assert_true(isnan(g[at]) == (k >= 4));
    }
    free(first);
    free(g);
    free(p);
    poa_linear_free(&c);
}

/* fp32 results against double: a few ulps (the compiler may fuse a multiply-add). */
static int near(float got, double want)
{
    return fabs(got - want) <= 4e-7 * fabs(want) + 1e-12;
}

static void test_sgd_step(void **state)
{
    (void) state;
    poa_linear c;
    poa_linear_init_pixels(&c, 2, 2, rates, 2, 1.0, 2, 5);
    float *p0 = malloc(sizeof(float) * c.n_params), *g1 = malloc(sizeof(float) * c.n_params);
    memcpy(p0, c.params, sizeof(float) * c.n_params);
    /* the summed gradient, as the fixed-point sums hold it: g · 2^40 */
    for (size_t i = 0; i < c.n_params; i++) {
        g1[i] = 0.5f + (float) i;
        c.sums[i] = (int64_t) ldexp(g1[i], POA_LINEAR_GRAD_BITS);
    }
    poa_linear_step(&c, 0.5);
    /* classifier l: W [2, 2] at l · 4, biases after both W at 8 + l · 2 */
    for (size_t i = 0; i < c.n_params; i++) {
        const int l = i < 8 ? (int) (i / 4) : (int) ((i - 8) / 2);
        const float lr = (float) (rates[l] * 0.5);
        assert_true(near(c.params[i], p0[i] - (double) lr * g1[i]));
        assert_true(c.momentum[i] == g1[i]);
    }
    memcpy(p0, c.params, sizeof(float) * c.n_params);
    for (size_t i = 0; i < c.n_params; i++) c.sums[i] = (int64_t) 1 << POA_LINEAR_GRAD_BITS;
    poa_linear_step(&c, 1.0);
    for (size_t i = 0; i < c.n_params; i++) {
        const int l = i < 8 ? (int) (i / 4) : (int) ((i - 8) / 2);
        const double m = (double) g1[i] * 0.9f + 1.0;
        assert_true(near(c.momentum[i], m));
        assert_true(near(c.params[i], p0[i] - (double) (float) rates[l] * m));
    }
    free(p0);
    free(g1);
    poa_linear_free(&c);
}

static void test_cosine(void **state)
{
    (void) state;
    assert_true(poa_linear_cosine(0, 100) == 1.0);
    assert_true(fabs(poa_linear_cosine(50, 100) - 0.5) < 1e-15);
    assert_true(fabs(poa_linear_cosine(99, 100) - 0.5 * (1 + cos(M_PI * 0.99))) < 1e-15);
    assert_true(poa_linear_cosine(99, 100) > 0);
}

static void test_score_and_best(void **state)
{
    (void) state;
    /* pixels of dim 7 = 7 classes: W = identity, so the logits are the features themselves */
    poa_linear c;
    poa_linear_init_pixels(&c, 7, 7, rates, 2, 1.0, 4, 1);
    memset(c.params, 0, sizeof(float) * c.n_params);
    for (int l = 0; l < 2; l++)
        for (int j = 0; j < 7; j++) c.params[(size_t) l * 49 + j * 7 + j] = 1.0f;
    const float x[3 * 7] = {
        0, 1, 1, 0, 0, 0, 0,  /* label 2: tie with class 1 goes to 1: rank 1            */
        5, 4, 3, 2, 1, 0, -1, /* label 5: rank 5, outside the top 5                      */
        0, 0, 0, 0, 0, 0, 0,  /* label 0: all tied, the lowest index wins: rank 0        */
    };
    const int32_t y[3] = {2, 5, 0};
    int64_t c1[2] = {0, 0}, c5[2] = {0, 0};
    poa_linear_score(&c, x, 3, y, c1, c5);
    assert_int_equal(c1[0], 1);
    assert_int_equal(c5[0], 2);
    c.params[49 + 0] = -1.0f; /* classifier 1: class 0's logit of row 3 stays 0, row 2's is -5 */
    int64_t d1[2] = {0, 0}, d5[2] = {0, 0};
    poa_linear_score(&c, x, 3, y, d1, d5);
    assert_int_equal(d1[1], 1);
    assert_int_equal(d5[1], 3); /* row 2: label 5 now ranks 4th */
    const int64_t tie[4] = {3, 7, 7, 1};
    c.n_lr = 4; /* only poa_linear_count is read */
    assert_int_equal(poa_linear_best(&c, tie), 1);
    c.n_lr = 2;
    poa_linear_free(&c);
}

static void test_order(void **state)
{
    (void) state;
    const int n = 10, B = 4;
    poa_linear_order o, o2;
    poa_linear_order_init(&o, n, 3);
    poa_linear_order_init(&o2, n, 3);
    int64_t all[40], batch[4];
    for (int t = 0; t < 10; t++) {
        poa_linear_batch(&o, t, B, all + t * B);
        poa_linear_batch(&o2, 9 - t, B, batch); /* any order of calls: the same batches */
    }
    poa_linear_batch(&o2, 2, B, batch);
    assert_memory_equal(batch, all + 8, sizeof batch);
    for (int p = 0; p < 4; p++) {
        int seen[10] = {0};
        for (int j = 0; j < n; j++) seen[all[p * n + j]]++;
        for (int j = 0; j < n; j++) assert_int_equal(seen[j], 1);
    }
    assert_memory_not_equal(all, all + n, sizeof(int64_t) * n); /* passes differ */
    poa_linear_order_free(&o2);
    poa_linear_order_init(&o2, n, 4);
    poa_linear_batch(&o2, 0, B, batch);
    assert_memory_not_equal(batch, all, sizeof batch); /* another seed, another order */
    poa_linear_order_free(&o);
    poa_linear_order_free(&o2);
}

/* The training transform on a small packed set of assorted sizes. */
static void test_train_transform(void **state)
{
    (void) state;
    char dir[] = "/tmp/poa_test_linear_XXXXXX";
    assert_non_null(mkdtemp(dir));
    poa_err err;
    assert_int_equal(test_make_packed(dir, 6, 1, -1, &err), POA_OK);
    poa_eval_transform t;
    poa_eval_transform_default(16, 0, &t);
    poa_eval_reader *r;
    assert_int_equal(poa_eval_reader_open(&r, dir, "train", &t, &err), POA_OK);
    const size_t per = 3 * 16 * 16;
    enum { N = 64 };
    int64_t images[N];
    uint64_t keys[N];
    for (int j = 0; j < N; j++) images[j] = j % 6, keys[j] = 1000 + (uint64_t) j;
    keys[5] = keys[1]; /* image 5 with image 1's key: another picture, other pixels */
    images[7] = images[1], keys[7] = keys[1]; /* the same image and key: the same crop */
    float *px = malloc(sizeof(float) * per * N), *one = malloc(sizeof(float) * per);
    int32_t lab[N];
    const poa_eval_augment aug = {42, keys};
    assert_int_equal(poa_eval_reader_read_list(r, images, N, &aug, px, lab, &err), POA_OK);
    assert_memory_equal(px + per, px + 7 * per, sizeof(float) * per);
    assert_memory_not_equal(px + per, px + 5 * per, sizeof(float) * per);
    for (int j = 0; j < N; j++) assert_int_equal(lab[j], (int) (images[j] % 3));
    /* image 1 alone, same key: same pixels; another key or seed: others */
    const poa_eval_augment aug1 = {42, keys + 1}, seed2 = {43, keys + 1};
    assert_int_equal(poa_eval_reader_read_list(r, images + 1, 1, &aug1, one, NULL, &err), POA_OK);
    assert_memory_equal(one, px + per, sizeof(float) * per);
    assert_int_equal(poa_eval_reader_read_list(r, images + 1, 1, &seed2, one, NULL, &err), POA_OK);
    assert_memory_not_equal(one, px + per, sizeof(float) * per);
    /* = RandomResizedCrop(16, (0.08, 1), (3/4, 4/3)) + flip drawn from (seed, 2, POA_RNG_EVAL) at
     * key · 64, applied by data/augment.h (tested against torchvision there) */
    poa_dataset ds;
    assert_int_equal(poa_dataset_open(&ds, dir, "train", &err), POA_OK);
    poa_jpeg_decoder dec;
    poa_jpeg_decoder_init(&dec);
    poa_image im = {0};
    poa_aug_scratch sc;
    memset(&sc, 0, sizeof sc);
    uint8_t *buf = NULL;
    size_t cap = 0, len;
    int flips = 0, crops = 0;
    poa_view_params v;
    memset(&v, 0, sizeof v);
    v.size = 16, v.scale[0] = 0.08, v.scale[1] = 1, v.ratio[0] = 0.75, v.ratio[1] = 4.0 / 3.0;
    v.flip_p = 0.5;
    for (int j = 0; j < N; j++) {
        int32_t l;
        assert_int_equal(poa_dataset_read(&ds, images[j], &buf, &cap, &len, &l, &err), POA_OK);
        assert_int_equal(poa_jpeg_decode(&dec, buf, len, 8, &im, NULL, &err), POA_OK);
        poa_rng rng;
        poa_rng_init(&rng, 42, 2, POA_RNG_EVAL, keys[j] << 6);
        poa_crop_params p;
        poa_crop_draw(&v, im.w, im.h, &rng, &p);
        p.jitter = p.gray = p.blur = p.solarize = 0;
        poa_crop_apply(&im, 1.0, &p, 16, 128, 9, t.mean, t.std, one, &sc);
        assert_memory_equal(one, px + per * j, sizeof(float) * per);
        const double area = (double) p.width * p.height / ((double) im.w * im.h);
        const double ratio = (double) p.width / p.height;
        if (area >= 0.08 - 1e-2 && area <= 1.0 && ratio > 0.7 && ratio < 1.4) crops++;
        flips += p.flip;
    }
    assert_true(crops >= N - 2); /* the fallback centre crop may fall outside */
    assert_true(flips > N / 4 && flips < 3 * N / 4);
    poa_image_free(&im);
    poa_aug_scratch_free(&sc);
    poa_jpeg_decoder_free(&dec);
    free(buf);
    poa_dataset_close(&ds);
    free(px);
    free(one);
    poa_eval_reader_close(r);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_positions), cmocka_unit_test(test_grid_layout),
        cmocka_unit_test(test_gradient),        cmocka_unit_test(test_sgd_step),
        cmocka_unit_test(test_cosine),          cmocka_unit_test(test_score_and_best),
        cmocka_unit_test(test_order),           cmocka_unit_test(test_train_transform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
