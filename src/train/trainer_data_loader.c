/* trainer_data_loader.c — the batch source on the packed data set (see trainer_data.h).
 *
 * One poa_loader per rank group of this rank, opened with rank = global rank group index and
 * world size = rank groups of the iteration: the sampler slice, the augmentation and the mask
 * streams of a rank group are then those of the official GPU it stands for (docs/algorithm.md §1.2,
 * §8.5), whatever the number of MPI ranks.  Each loader hands out B images per iteration, so
 * its sampler position before iteration `it` is it·B; the position of every batch is checked
 * against that (the invariant behind the exact resume).
 *
 * This file includes the data layer's headers and not common/config.h (their blur-semantics
 * enumerators share names); poa_data_params carries the configuration values.
 */
#include "train/trainer_data.h"
#include "common/log.h"
#include "data/dataset.h"
#include "data/loader.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WORDS POA_SAMPLER_STATE_WORDS

typedef struct lsrc {
    poa_data_params p;
    poa_loader_params lp;
    poa_loader **L;        /* [G], NULL until set_state */
    float *global, *local; /* [G] concatenation when G > 1 */
    uint8_t *masks;
    size_t ng, nl, nm; /* per group: floats / floats / bytes */
    long long next_it;
} lsrc;

static void close_loaders(lsrc *s)
{
    for (int g = 0; g < s->p.G; g++) {
        if (s->L[g]) poa_loader_close(s->L[g]);
        s->L[g] = NULL;
    }
}

static poa_status check_dir(const char *dir, poa_err *err)
{
    struct stat sb;
    if (!dir[0] || strcmp(dir, "ImageNet:split=TRAIN") == 0)
        return poa_err_set(err, POA_ERR_NOTFOUND,
                           "no data set given: pass --data DIR (a folder written by poa-pack)");
    if (stat(dir, &sb) != 0)
        return poa_err_set(err, POA_ERR_NOTFOUND, "data directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return poa_err_set(err, POA_ERR_NOTFOUND,
                           "data %s is not a directory (give the folder written by poa-pack)", dir);
    return POA_OK;
}

static void loader_params(const poa_data_params *p, poa_loader_params *lp)
{
    poa_loader_params_default(lp);
    lp->global_crops_size = p->global_size;
    lp->local_crops_size = p->local_size;
    for (int i = 0; i < 2; i++) {
        lp->global_crops_scale[i] = p->global_scale[i];
        lp->local_crops_scale[i] = p->local_scale[i];
        lp->mask_ratio_min_max[i] = p->mask_ratio[i];
    }
    lp->local_crops_number = p->n_local;
    lp->patch_size = p->patch_size;
    lp->mask_sample_probability = p->mask_p;
    lp->batch_size = p->B;
    lp->seed = p->seed;
    lp->world_size = p->groups_total;
    lp->threads = p->threads / p->G > 0 ? p->threads / p->G : 1;
    lp->prefetch = p->prefetch < 2 ? 2 : p->prefetch;
    lp->blur_semantics = p->blur_paper ? POA_BLUR_PAPER : POA_BLUR_OFFICIAL;
}

/* The sampler state of rank group `rank` before iteration `it` of an uninterrupted run. */
static poa_sampler_state state_at(const lsrc *s, int rank, long long it, uint64_t n_images)
{
    poa_sampler_state st = {s->p.seed,
                            n_images,
                            (uint64_t) s->p.groups_total,
                            (uint64_t) rank,
                            (uint64_t) it * (uint64_t) s->p.B,
                            POA_SAMPLER_VERSION};
    return st;
}

static poa_status open_group(poa_batch_source *src, int g, const uint64_t *words, long long it,
                             poa_err *err)
{
    lsrc *s = src->ctx;
    poa_loader_params lp = s->lp;
    lp.rank = (int) s->p.first_group + g;
    poa_sampler_state st = state_at(s, lp.rank, it, (uint64_t) src->images_total);
    if (words) {
        poa_sampler_state saved;
        poa_sampler_state_unpack(words, &saved);
        poa_status rs = poa_loader_open(&s->L[g], s->p.dir, "train", &lp, &saved, err);
        if (rs == POA_OK) return POA_OK;
        if (rs != POA_ERR_CONFIG) return rs;
        poa_warn("rank group %d: the saved data position does not fit this data set (%s); "
                 "continuing at image %llu of the group's stream",
                 lp.rank, err->msg, (unsigned long long) st.position);
    }
    return poa_loader_open(&s->L[g], s->p.dir, "train", &lp, &st, err);
}

static poa_status lsrc_set_state(poa_batch_source *src, const uint64_t *w, size_t n, long long it,
                                 poa_err *err)
{
    lsrc *s = src->ctx;
    close_loaders(s);
    const int use = w && n == (size_t) s->p.G * WORDS;
    for (int g = 0; g < s->p.G; g++) {
        poa_status st = open_group(src, g, use ? w + (size_t) g * WORDS : NULL, it, err);
        if (st != POA_OK) {
            close_loaders(s);
            return st;
        }
    }
    s->next_it = it;
    return POA_OK;
}

static size_t lsrc_state_words(poa_batch_source *src)
{
    lsrc *s = src->ctx;
    return (size_t) s->p.G * WORDS;
}

static void lsrc_get_state(poa_batch_source *src, uint64_t *w)
{
    lsrc *s = src->ctx;
    for (int g = 0; g < s->p.G; g++) {
        poa_sampler_state st;
        poa_loader_state(s->L[g], &st);
        poa_sampler_state_pack(&st, w + (size_t) g * WORDS);
    }
}

/* Fault injection for the tests (tests/fault/test_fault_nonfinite.sh): with
 * POA_DEBUG_NONFINITE_DATA=IT in the environment, the first pixel of this rank's batch of
 * iteration IT becomes NaN, as a broken input pipeline would make it; the step's non-finite
 * guard must stop the run (exit 5) before anything is written.  --debug-nonfinite-at poisons a
 * weight instead. */
static void inject_nonfinite_data(long long it, const float *pixels)
{
    const char *v = getenv("POA_DEBUG_NONFINITE_DATA");
    if (!v || !*v || atoll(v) != it) return;
    ((float *) pixels)[0] = NAN; /* the loader's slot: writable until the next batch */
    poa_warn("POA_DEBUG_NONFINITE_DATA: pixel 0 of the batch of iteration %lld set to NaN", it);
}

static poa_status lsrc_next(poa_batch_source *src, long long it, poa_host_batch *b, poa_err *err)
{
    lsrc *s = src->ctx;
    if (!s->L[0] || it != s->next_it)
        return poa_err_set(err, POA_ERR_INTERNAL, "loader asked for iteration %lld, expected %lld",
                           it, s->next_it);
    const poa_batch *bt = NULL;
    for (int g = 0; g < s->p.G; g++) {
        poa_status st = poa_loader_next(s->L[g], &bt, err);
        if (st != POA_OK) return st;
        if (bt->position != (uint64_t) it * (uint64_t) s->p.B)
            return poa_err_set(err, POA_ERR_INTERNAL,
                               "rank group %u: batch at stream position %llu, expected %llu",
                               s->p.first_group + g, (unsigned long long) bt->position,
                               (unsigned long long) it * (unsigned long long) s->p.B);
        if (s->p.G == 1) break;
        memcpy(s->global + g * s->ng, bt->global_crops, sizeof(float) * s->ng);
        if (s->nl) memcpy(s->local + g * s->nl, bt->local_crops, sizeof(float) * s->nl);
        memcpy(s->masks + g * s->nm, bt->masks, s->nm);
    }
    s->next_it = it + 1;
    if (s->p.G == 1) {
        b->global_crops = bt->global_crops;
        b->local_crops = s->nl ? bt->local_crops : NULL;
        b->masks = bt->masks;
    } else {
        b->global_crops = s->global;
        b->local_crops = s->nl ? s->local : NULL;
        b->masks = s->masks;
    }
    inject_nonfinite_data(it, b->global_crops);
    return POA_OK;
}

static void lsrc_destroy(poa_batch_source *src)
{
    lsrc *s = src->ctx;
    close_loaders(s);
    free(s->L);
    free(s->global);
    free(s->local);
    free(s->masks);
    free(s);
    free(src);
}

poa_status poa_batch_source_loader(const poa_data_params *p, poa_batch_source **out, poa_err *err)
{
    *out = NULL;
    poa_status st = check_dir(p->dir, err);
    if (st != POA_OK) return st;
    poa_dataset ds;
    memset(&ds, 0, sizeof ds);
    if ((st = poa_dataset_open(&ds, p->dir, "train", err)) != POA_OK) return st;
    long long n_images = ds.num_images;
    poa_dataset_close(&ds);
    if (n_images < p->groups_total)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s holds %lld training images, fewer than the %d rank groups", p->dir,
                           n_images, p->groups_total);
    lsrc *s = poa_xcalloc(1, sizeof *s);
    s->p = *p;
    loader_params(p, &s->lp);
    s->L = poa_xcalloc((size_t) p->G, sizeof *s->L);
    const int gs = p->global_size / p->patch_size;
    s->ng = (size_t) 2 * p->B * p->channels * p->global_size * p->global_size;
    s->nl = (size_t) p->n_local * p->B * p->channels * p->local_size * p->local_size;
    s->nm = (size_t) 2 * p->B * gs * gs;
    if (p->G > 1) {
        s->global = poa_xmalloc(sizeof(float) * s->ng * p->G);
        s->local = poa_xmalloc(sizeof(float) * (s->nl * p->G + 1));
        s->masks = poa_xmalloc(s->nm * p->G);
    }
    poa_batch_source *src = poa_xcalloc(1, sizeof *src);
    src->name = "loader";
    src->ctx = s;
    src->p = *p;
    src->images_total = n_images;
    src->next = lsrc_next;
    src->state_words = lsrc_state_words;
    src->get_state = lsrc_get_state;
    src->set_state = lsrc_set_state;
    src->destroy = lsrc_destroy;
    *out = src;
    return POA_OK;
}
