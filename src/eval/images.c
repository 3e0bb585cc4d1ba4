/* images.c — see images.h. */
#include "eval/images.h"
#include "common/log.h"
#include "common/rng.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/jpeg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

struct poa_eval_reader {
    poa_dataset ds;
    poa_eval_transform t;
    int64_t n_used; /* images presented: all, or evenly spaced ones (poa_eval_reader_use) */
};

/* Dataset entry of the p-th image presented. */
static int64_t entry(const poa_eval_reader *r, int64_t p)
{
    return r->n_used == r->ds.num_images ? p : p * r->ds.num_images / r->n_used;
}

void poa_eval_transform_default(int crop, int resize, poa_eval_transform *t)
{
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    t->crop = crop;
    t->resize = resize > 0 ? resize : crop >= 224 ? (int) lround(crop * 256.0 / 224.0) : crop;
    memcpy(t->mean, mean, sizeof mean);
    memcpy(t->std, stdv, sizeof stdv);
}

/* Label of entry i (from the index tables kept in memory). */
static int32_t label_of(const poa_dataset *d, int64_t i)
{
    int s;
    int64_t rec;
    poa_dataset_locate(d, i, &s, &rec);
    return d->shards[s].labels[rec];
}

poa_status poa_eval_reader_open(poa_eval_reader **out, const char *dir, const char *split,
                                const poa_eval_transform *t, poa_err *err)
{
    *out = NULL;
    if (t->crop < 1 || t->resize < t->crop)
        return poa_err_set(err, POA_ERR_ARG,
                           "evaluation transform: resize %d, crop %d (need 1 <= crop <= resize)",
                           t->resize, t->crop);
    poa_eval_reader *r = poa_xcalloc(1, sizeof *r);
    r->t = *t;
    poa_status st = poa_dataset_open(&r->ds, dir, split, err);
    if (st) {
        free(r);
        return st;
    }
    if (r->ds.num_images < 1) {
        st = poa_err_set(err, POA_ERR_FORMAT, "%s: split '%s' has no images", dir, split);
    } else {
        for (int64_t i = 0; i < r->ds.num_images && !st; i++) {
            const int32_t lab = label_of(&r->ds, i);
            if (lab < 0 || lab >= r->ds.num_classes)
                st = poa_err_set(err, POA_ERR_FORMAT,
                                 "%s: split '%s', image %lld has label %d (need a class in "
                                 "[0, %d): evaluation needs labelled images)",
                                 dir, split, (long long) i, (int) lab, r->ds.num_classes);
        }
    }
    if (st) {
        poa_dataset_close(&r->ds);
        free(r);
        return st;
    }
    r->n_used = r->ds.num_images;
    *out = r;
    return POA_OK;
}

void poa_eval_reader_use(poa_eval_reader *r, int64_t n)
{
    r->n_used = n > 0 && n < r->ds.num_images ? n : r->ds.num_images;
}

int64_t poa_eval_reader_count(const poa_eval_reader *r)
{
    return r->n_used;
}

int poa_eval_reader_classes(const poa_eval_reader *r)
{
    return r->ds.num_classes;
}

poa_status poa_eval_reader_labels(const poa_eval_reader *r, int64_t first, int64_t n,
                                  int32_t *labels, poa_err *err)
{
    if (first < 0 || n < 0 || first + n > r->n_used)
        return poa_err_set(err, POA_ERR_ARG, "%s/%s: images [%lld, %lld) of %lld", r->ds.dir,
                           r->ds.split, (long long) first, (long long) (first + n),
                           (long long) r->n_used);
    for (int64_t i = 0; i < n; i++) labels[i] = label_of(&r->ds, entry(r, first + i));
    return POA_OK;
}

/* Per-thread decoding state. */
typedef struct worker {
    uint8_t *buf;
    size_t cap;
    poa_jpeg_decoder dec;
    poa_image im, rs;
    poa_image_scratch sc;
    poa_aug_scratch aug;
} worker;

/* The source box (x0, y0, x1, y1) that Resize(resize) + CenterCrop(crop) keeps of a w × h
 * image: torchvision's output size of the resize (shorter side = resize, longer side truncated)
 * and its crop offsets (rounded), mapped back with the resize's scale per axis. */
static void crop_box(int w, int h, const poa_eval_transform *t, float box[4])
{
    int rw, rh;
    if (w <= h)
        rw = t->resize, rh = (int) ((long long) t->resize * h / w);
    else
        rh = t->resize, rw = (int) ((long long) t->resize * w / h);
    const int left = (int) lround((rw - t->crop) / 2.0), top = (int) lround((rh - t->crop) / 2.0);
    const double sx = (double) w / rw, sy = (double) h / rh;
    box[0] = (float) (left * sx), box[1] = (float) (top * sy);
    box[2] = (float) ((left + t->crop) * sx), box[3] = (float) ((top + t->crop) * sy);
}

/* The training transform of one decoded image (see poa_eval_augment). */
static void augment(const poa_eval_reader *r, worker *wk, const poa_eval_augment *aug, uint64_t key,
                    float *out)
{
    static const double scale[2] = {0.08, 1.0}, ratio[2] = {3.0 / 4.0, 4.0 / 3.0};
    poa_view_params v;
    memset(&v, 0, sizeof v);
    v.size = r->t.crop;
    memcpy(v.scale, scale, sizeof scale);
    memcpy(v.ratio, ratio, sizeof ratio);
    v.flip_p = 0.5; /* no colour, grey, blur or solarisation: their probabilities stay 0 */
    v.sigma[0] = v.sigma[1] = 1.0;
    v.blur_kernel = 9;
    poa_rng rng;
    poa_rng_init(&rng, aug->seed, 2, POA_RNG_EVAL, key << 6);
    poa_crop_params p;
    poa_crop_draw(&v, wk->im.w, wk->im.h, &rng, &p);
    p.jitter = p.gray = p.blur = p.solarize = 0;
    poa_crop_apply(&wk->im, 1.0, &p, r->t.crop, 128, v.blur_kernel, r->t.mean, r->t.std, out,
                   &wk->aug);
}

static poa_status read_one(poa_eval_reader *r, worker *wk, int64_t p, const poa_eval_augment *aug,
                           uint64_t key, float *out, int32_t *label, poa_err *err)
{
    const int64_t i = entry(r, p);
    size_t n = 0;
    int32_t lab = -1;
    poa_status st = poa_dataset_read(&r->ds, i, &wk->buf, &wk->cap, &n, &lab, err);
    if (st) return st;
    if (label) *label = lab;
    if (!out) return POA_OK;
    st = poa_jpeg_decode(&wk->dec, wk->buf, n, 8, &wk->im, NULL, err);
    if (st) {
        poa_err inner = *err;
        return poa_err_set(err, st, "%s/%s image %lld: %s", r->ds.dir, r->ds.split, (long long) i,
                           inner.msg);
    }
    if (aug) {
        augment(r, wk, aug, key, out);
        return POA_OK;
    }
    float box[4];
    crop_box(wk->im.w, wk->im.h, &r->t, box);
    poa_resize_bicubic(&wk->im, 0, 0, wk->im.w, wk->im.h, box, r->t.crop, r->t.crop, &wk->rs,
                       &wk->sc);
    poa_normalize_chw(&wk->rs, r->t.mean, r->t.std, out);
    return POA_OK;
}

/* Images first + j, or list[j] when list is not NULL, for j < n (see poa_eval_reader_read_list). */
static poa_status read_images(poa_eval_reader *r, int64_t first, const int64_t *list, int n,
                              const poa_eval_augment *aug, float *pixels, int32_t *labels,
                              poa_err *err)
{
    const size_t per = (size_t) 3 * r->t.crop * r->t.crop;
    poa_status first_st = POA_OK;
    int first_bad = -1;
#pragma omp parallel
    {
        worker wk;
        memset(&wk, 0, sizeof wk);
        poa_jpeg_decoder_init(&wk.dec);
        poa_err e = {0};
#pragma omp for schedule(dynamic, 4)
        for (int j = 0; j < n; j++) {
            const int64_t p = list ? list[j] : first + j;
            poa_status st =
                read_one(r, &wk, p, aug, aug ? aug->keys[j] : 0,
                         pixels ? pixels + per * (size_t) j : NULL, labels ? labels + j : NULL, &e);
            if (st) {
#pragma omp critical(poa_eval_read_error)
                if (first_bad < 0 || j < first_bad) {
                    first_bad = j, first_st = st;
                    *err = e;
                }
            }
        }
        poa_jpeg_decoder_free(&wk.dec);
        poa_image_free(&wk.im);
        poa_image_free(&wk.rs);
        poa_image_scratch_free(&wk.sc);
        poa_aug_scratch_free(&wk.aug);
        free(wk.buf);
    }
    return first_st;
}

poa_status poa_eval_reader_read(poa_eval_reader *r, int64_t first, int n, float *pixels,
                                int32_t *labels, poa_err *err)
{
    if (first < 0 || n < 0 || first + n > r->n_used)
        return poa_err_set(err, POA_ERR_ARG, "%s/%s: images [%lld, %lld) of %lld", r->ds.dir,
                           r->ds.split, (long long) first, (long long) (first + n),
                           (long long) r->n_used);
    return read_images(r, first, NULL, n, NULL, pixels, labels, err);
}

poa_status poa_eval_reader_read_list(poa_eval_reader *r, const int64_t *images, int n,
                                     const poa_eval_augment *aug, float *pixels, int32_t *labels,
                                     poa_err *err)
{
    for (int j = 0; j < n; j++)
        if (images[j] < 0 || images[j] >= r->n_used)
            return poa_err_set(err, POA_ERR_ARG, "%s/%s: image %lld of %lld", r->ds.dir,
                               r->ds.split, (long long) images[j], (long long) r->n_used);
    return read_images(r, 0, images, n, aug, pixels, labels, err);
}

void poa_eval_reader_close(poa_eval_reader *r)
{
    if (!r) return;
    poa_dataset_close(&r->ds);
    free(r);
}
