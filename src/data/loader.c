/* loader.c — see loader.h.
 *
 * Work unit: one image (decode + all its crops), written straight into its rows of a batch slot.
 * Claims are serialised under the mutex, in stream order; the first claim of a batch prepares the
 * slot (sampler indices, masks).  A slot is reused once the consumer has moved past its batch. */
#include "data/loader.h"
#include "data/dataset.h"
#include "data/jpeg.h"

#include "common/log.h"
#include "common/timer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CROPS        64   /* crop index field of the augmentation RNG counter */
#define MAX_REPLACEMENTS 1000 /* consecutive undecodable records before giving up */

typedef struct slot {
    poa_batch b;
    uint64_t seq; /* batch number since open; UINT64_MAX = never used */
    int remaining, ready;
} slot;

struct poa_loader {
    poa_loader_params p;
    poa_dataset ds;
    poa_sampler sampler;
    uint64_t start_pos;
    int n_crops;
    poa_view_params views[MAX_CROPS];
    int sizes[MAX_CROPS];
    poa_mask_params mask;
    int ring;
    slot *slots;
    pthread_t *threads;
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_ready;
    uint64_t next_task, consumed, released;
    int holding, stop;
    poa_status error;
    poa_err err;
    poa_loader_stats stats;
    int warnings;
};

void poa_loader_params_default(poa_loader_params *p)
{
    *p = (poa_loader_params){.global_crops_size = 224,
                             .local_crops_size = 96,
                             .global_crops_scale = {0.32, 1.0},
                             .local_crops_scale = {0.05, 0.32},
                             .local_crops_number = 8,
                             .patch_size = 16,
                             .mask_sample_probability = 0.5,
                             .mask_ratio_min_max = {0.1, 0.5},
                             .mask_max_num_patches = 0,
                             .batch_size = 50,
                             .seed = 0,
                             .rank = 0,
                             .world_size = 1,
                             .threads = 2,
                             .prefetch = 4,
                             .blur_semantics = POA_BLUR_OFFICIAL,
                             .dct_min_ratio = 2.0};
}

/* ------------------------------------------------------------------ one image */
typedef struct worker_ctx {
    poa_jpeg_decoder dec;
    poa_image img;
    poa_aug_scratch aug;
    uint8_t *buf;
    size_t cap;
    poa_crop_params crops[MAX_CROPS];
    double decode_s, augment_s;
} worker_ctx;

static float *crop_out(const poa_loader *L, slot *s, int c, int k)
{
    int B = L->p.batch_size;
    if (c < 2) {
        size_t n = 3 * (size_t) L->p.global_crops_size * L->p.global_crops_size;
        return s->b.global_crops + ((size_t) c * B + k) * n;
    }
    size_t n = 3 * (size_t) L->p.local_crops_size * L->p.local_crops_size;
    return s->b.local_crops + ((size_t) (c - 2) * B + k) * n;
}

/* Decode entry idx and produce all its crops; POA_ERR_DECODE/FORMAT = replaceable. */
static poa_status try_image(poa_loader *L, worker_ctx *w, slot *s, int k, uint64_t idx,
                            uint64_t pos, poa_err *err)
{
    double t0 = poa_now();
    size_t size = 0;
    int32_t label = -1;
    poa_status st = poa_dataset_read(&L->ds, (int64_t) idx, &w->buf, &w->cap, &size, &label, err);
    poa_jpeg_info info;
    if (st == POA_OK) st = poa_jpeg_probe(w->buf, size, &info, err);
    if (st != POA_OK) return st;
    for (int c = 0; c < L->n_crops; c++) {
        poa_rng r;
        poa_rng_init(&r, L->p.seed, (uint32_t) L->p.rank, POA_RNG_AUGMENT,
                     (pos * MAX_CROPS + (uint64_t) c) << 10);
        poa_crop_draw(&L->views[c], info.width, info.height, &r, &w->crops[c]);
    }
    int num = poa_dct_scale(w->crops, L->sizes, L->n_crops, L->p.dct_min_ratio);
    st = poa_jpeg_decode(&w->dec, w->buf, size, num, &w->img, NULL, err);
    if (st != POA_OK) return st;
    double t1 = poa_now();
    for (int c = 0; c < L->n_crops; c++) {
        const poa_view_params *v = &L->views[c];
        poa_crop_apply(&w->img, num / 8.0, &w->crops[c], v->size, v->solarize_threshold,
                       v->blur_kernel, poa_imagenet_mean, poa_imagenet_std, crop_out(L, s, c, k),
                       &w->aug);
    }
    s->b.labels[k] = label;
    s->b.indices[k] = idx;
    w->decode_s += t1 - t0;
    w->augment_s += poa_now() - t1;
    return POA_OK;
}

static void warn_replacement(poa_loader *L, uint64_t idx, const char *msg)
{
    pthread_mutex_lock(&L->mu);
    int n = ++L->warnings;
    pthread_mutex_unlock(&L->mu);
    int shard;
    int64_t rec;
    poa_dataset_locate(&L->ds, (int64_t) idx, &shard, &rec);
    if (n <= 10)
        poa_warn("data: entry %llu (%s record %lld) cannot be used, replaced by the next entry: "
                 "%s%s",
                 (unsigned long long) idx, L->ds.shards[shard].path, (long long) rec, msg,
                 n == 10 ? " (further replacements are only counted)" : "");
}

static poa_status process_image(poa_loader *L, worker_ctx *w, slot *s, int k, uint64_t idx,
                                uint64_t pos, int *replaced, poa_err *err)
{
    uint64_t n = (uint64_t) L->ds.num_images;
    for (int attempt = 0; attempt < MAX_REPLACEMENTS; attempt++) {
        uint64_t i = (idx + (uint64_t) attempt) % n;
        poa_err e = {0};
        poa_status st = try_image(L, w, s, k, i, pos, &e);
        if (st == POA_OK) return POA_OK;
        if (st != POA_ERR_DECODE && st != POA_ERR_FORMAT) {
            *err = e;
            return st;
        }
        warn_replacement(L, i, e.msg);
        (*replaced)++;
    }
    return poa_err_set(err, POA_ERR_DECODE,
                       "data: %d consecutive entries from %llu on cannot be decoded (run "
                       "poa-pack --verify --decode %s)",
                       MAX_REPLACEMENTS, (unsigned long long) idx, L->ds.dir);
}

/* ------------------------------------------------------------------ workers */
static void prepare_slot(poa_loader *L, slot *s, uint64_t b)
{
    int B = L->p.batch_size;
    s->seq = b;
    s->remaining = B;
    s->ready = 0;
    s->b.n_replaced = 0;
    s->b.position = L->start_pos + b * (uint64_t) B;
    for (int k = 0; k < B; k++)
        s->b.indices[k] = poa_sampler_at(&L->sampler, s->b.position + (uint64_t) k);
    poa_rng r;
    poa_rng_init(&r, L->p.seed, (uint32_t) L->p.rank, POA_RNG_MASK, s->b.position << 20);
    s->b.n_masked = poa_mask_batch(&L->mask, &r, 2 * B, s->b.masks, &s->b.mask_upperbound);
}

static void fail(poa_loader *L, poa_status st, const poa_err *e)
{
    if (L->error == POA_OK) {
        L->error = st;
        L->err = *e;
    }
    L->stop = 1;
    pthread_cond_broadcast(&L->cv_ready);
    pthread_cond_broadcast(&L->cv_work);
}

static void *worker_main(void *arg)
{
    poa_loader *L = arg;
    worker_ctx w;
    memset(&w, 0, sizeof w);
    poa_jpeg_decoder_init(&w.dec);
    int B = L->p.batch_size;
    pthread_mutex_lock(&L->mu);
    while (!L->stop) {
        uint64_t t = L->next_task, b = t / (uint64_t) B;
        int k = (int) (t % (uint64_t) B);
        if (b >= L->released + (uint64_t) L->ring) {
            pthread_cond_wait(&L->cv_work, &L->mu);
            continue;
        }
        L->next_task++;
        slot *s = &L->slots[b % (uint64_t) L->ring];
        if (k == 0) prepare_slot(L, s, b);
        uint64_t idx = s->b.indices[k], pos = s->b.position + (uint64_t) k;
        pthread_mutex_unlock(&L->mu);

        int replaced = 0;
        poa_err e = {0};
        double d0 = w.decode_s, a0 = w.augment_s;
        poa_status st = process_image(L, &w, s, k, idx, pos, &replaced, &e);

        pthread_mutex_lock(&L->mu);
        L->stats.decode_s += w.decode_s - d0;
        L->stats.augment_s += w.augment_s - a0;
        L->stats.replaced += (uint64_t) replaced;
        if (st != POA_OK) {
            fail(L, st, &e);
            break;
        }
        L->stats.images++;
        s->b.n_replaced += replaced;
        if (--s->remaining == 0) {
            s->ready = 1;
            pthread_cond_broadcast(&L->cv_ready);
        }
    }
    pthread_mutex_unlock(&L->mu);
    poa_jpeg_decoder_free(&w.dec);
    poa_image_free(&w.img);
    poa_aug_scratch_free(&w.aug);
    free(w.buf);
    return NULL;
}

/* ------------------------------------------------------------------ open / next / close */
static poa_status check_params(const poa_loader_params *p, poa_err *err)
{
    if (p->batch_size < 1)
        return poa_err_set(err, POA_ERR_CONFIG, "batch size %d < 1", p->batch_size);
    if (p->local_crops_number < 0 || p->local_crops_number > MAX_CROPS - 2)
        return poa_err_set(err, POA_ERR_CONFIG, "crops.local_crops_number %d outside [0, %d]",
                           p->local_crops_number, MAX_CROPS - 2);
    if (p->global_crops_size < 10 || p->local_crops_size < 10)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "crop sizes %d / %d: at least 10 px (the 9-tap blur needs 5)",
                           p->global_crops_size, p->local_crops_size);
    if (p->patch_size < 1 || p->global_crops_size % p->patch_size)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "global crop size %d is not a multiple of patch size %d",
                           p->global_crops_size, p->patch_size);
    const double *sc[2] = {p->global_crops_scale, p->local_crops_scale};
    for (int i = 0; i < 2; i++)
        if (!(sc[i][0] > 0 && sc[i][0] <= sc[i][1] && sc[i][1] <= 1))
            return poa_err_set(err, POA_ERR_CONFIG,
                               "crops.%s_crops_scale [%g, %g]: need 0 < min <= max <= 1",
                               i ? "local" : "global", sc[i][0], sc[i][1]);
    if (!(p->mask_ratio_min_max[0] >= 0 && p->mask_ratio_min_max[0] <= p->mask_ratio_min_max[1] &&
          p->mask_ratio_min_max[1] <= 1))
        return poa_err_set(err, POA_ERR_CONFIG, "ibot.mask_ratio_min_max [%g, %g] outside [0, 1]",
                           p->mask_ratio_min_max[0], p->mask_ratio_min_max[1]);
    if (!(p->mask_sample_probability >= 0 && p->mask_sample_probability <= 1))
        return poa_err_set(err, POA_ERR_CONFIG, "ibot.mask_sample_probability %g outside [0, 1]",
                           p->mask_sample_probability);
    if (p->threads < 1 || p->world_size < 1 || p->rank < 0 || p->rank >= p->world_size)
        return poa_err_set(err, POA_ERR_CONFIG, "threads %d / rank %d of %d", p->threads, p->rank,
                           p->world_size);
    return POA_OK;
}

static void alloc_slots(poa_loader *L)
{
    const poa_loader_params *p = &L->p;
    size_t B = (size_t) p->batch_size, S = (size_t) p->global_crops_size,
           s = (size_t) p->local_crops_size, V = (size_t) p->local_crops_number;
    int n_tokens = L->mask.grid_h * L->mask.grid_w;
    L->slots = poa_xcalloc((size_t) L->ring, sizeof *L->slots);
    for (int i = 0; i < L->ring; i++) {
        poa_batch *b = &L->slots[i].b;
        L->slots[i].seq = UINT64_MAX;
        b->batch_size = p->batch_size;
        b->n_local = p->local_crops_number;
        b->global_size = p->global_crops_size;
        b->local_size = p->local_crops_size;
        b->n_tokens = n_tokens;
        b->global_crops = poa_xmalloc(2 * B * 3 * S * S * sizeof(float));
        b->local_crops = poa_xmalloc((V ? V : 1) * B * 3 * s * s * sizeof(float));
        b->masks = poa_xmalloc(2 * B * (size_t) n_tokens);
        b->labels = poa_xmalloc(B * sizeof *b->labels);
        b->indices = poa_xmalloc(B * sizeof *b->indices);
    }
}

static void setup_views(poa_loader *L)
{
    const poa_loader_params *p = &L->p;
    L->n_crops = 2 + p->local_crops_number;
    for (int c = 0; c < L->n_crops; c++) {
        poa_view_params_official(&L->views[c], c, p->global_crops_size, p->local_crops_size,
                                 p->global_crops_scale, p->local_crops_scale, p->blur_semantics);
        L->sizes[c] = L->views[c].size;
    }
    poa_mask_params_default(&L->mask, p->global_crops_size, p->patch_size);
    L->mask.mask_probability = p->mask_sample_probability;
    L->mask.ratio_min = p->mask_ratio_min_max[0];
    L->mask.ratio_max = p->mask_ratio_min_max[1];
    if (p->mask_max_num_patches > 0) L->mask.max_num_patches = p->mask_max_num_patches;
}

poa_status poa_loader_open(poa_loader **out, const char *dir, const char *split,
                           const poa_loader_params *p, const poa_sampler_state *resume,
                           poa_err *err)
{
    *out = NULL;
    poa_status st = check_params(p, err);
    if (st != POA_OK) return st;
    poa_loader *L = poa_xcalloc(1, sizeof *L);
    L->p = *p;
    st = poa_dataset_open(&L->ds, dir, split, err);
    if (st == POA_OK)
        st = poa_sampler_init(&L->sampler, p->seed, (uint64_t) L->ds.num_images,
                              (uint32_t) p->world_size, (uint32_t) p->rank, err);
    if (st == POA_OK && resume) st = poa_sampler_restore(&L->sampler, resume, err);
    if (st != POA_OK) {
        poa_dataset_close(&L->ds);
        free(L);
        return st;
    }
    L->start_pos = L->sampler.st.position;
    setup_views(L);
    L->ring = p->prefetch < 2 ? 2 : p->prefetch;
    alloc_slots(L);
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv_work, NULL);
    pthread_cond_init(&L->cv_ready, NULL);
    L->n_threads = p->threads;
    L->threads = poa_xmalloc((size_t) L->n_threads * sizeof *L->threads);
    for (int i = 0; i < L->n_threads; i++)
        POA_CHECK(pthread_create(&L->threads[i], NULL, worker_main, L) == 0, "pthread_create");
    *out = L;
    return POA_OK;
}

poa_status poa_loader_next(poa_loader *L, const poa_batch **batch, poa_err *err)
{
    pthread_mutex_lock(&L->mu);
    if (L->holding) {
        L->released++;
        L->holding = 0;
        pthread_cond_broadcast(&L->cv_work);
    }
    slot *s = &L->slots[L->consumed % (uint64_t) L->ring];
    while (!(s->ready && s->seq == L->consumed) && L->error == POA_OK)
        pthread_cond_wait(&L->cv_ready, &L->mu);
    poa_status st = L->error;
    if (st != POA_OK) {
        if (err) *err = L->err;
    } else {
        L->consumed++;
        L->holding = 1;
        L->stats.batches++;
        *batch = &s->b;
    }
    pthread_mutex_unlock(&L->mu);
    return st;
}

void poa_loader_state(const poa_loader *L, poa_sampler_state *st)
{
    *st = L->sampler.st;
    st->position = L->start_pos + L->consumed * (uint64_t) L->p.batch_size;
}

void poa_loader_get_stats(const poa_loader *L, poa_loader_stats *s)
{
    pthread_mutex_lock((pthread_mutex_t *) &L->mu);
    *s = L->stats;
    pthread_mutex_unlock((pthread_mutex_t *) &L->mu);
}

int64_t poa_loader_dataset_size(const poa_loader *L)
{
    return L->ds.num_images;
}

void poa_loader_close(poa_loader *L)
{
    if (!L) return;
    pthread_mutex_lock(&L->mu);
    L->stop = 1;
    pthread_cond_broadcast(&L->cv_work);
    pthread_cond_broadcast(&L->cv_ready);
    pthread_mutex_unlock(&L->mu);
    for (int i = 0; i < L->n_threads; i++) pthread_join(L->threads[i], NULL);
    for (int i = 0; i < L->ring; i++) {
        poa_batch *b = &L->slots[i].b;
        free(b->global_crops);
        free(b->local_crops);
        free(b->masks);
        free(b->labels);
        free(b->indices);
    }
    free(L->slots);
    free(L->threads);
    poa_sampler_free(&L->sampler);
    poa_dataset_close(&L->ds);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv_work);
    pthread_cond_destroy(&L->cv_ready);
    free(L);
}
