/* trainer_data_synth.c — the synthetic batch source (see trainer_data.h). */
#include "train/trainer_data.h"
#include "common/config.h"
#include "common/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stream index of (iteration, part): parts are pixels of the global crops, of the local crops,
 * and the masks; each part of one iteration uses fewer than 2^30 Philox blocks. */
enum { PART_GLOBAL = 0, PART_LOCAL = 1, PART_MASK = 2 };
#define SYNTH_RANK_BASE 0x40000000u /* keeps these streams apart from the loader's */

typedef struct synth {
    poa_data_params p;
    float *global, *local;
    uint8_t *masks;
    uint32_t *perm;
} synth;

poa_data_params poa_data_params_of(const poa_config *cfg, int rank, int world_size)
{
    poa_data_params p;
    memset(&p, 0, sizeof p);
    snprintf(p.dir, sizeof p.dir, "%s", cfg->train.dataset_path);
    p.B = cfg->train.batch_size_per_gpu;
    p.G = cfg->train.rank_groups;
    p.n_local = cfg->crops.local_crops_number;
    p.channels = 3;
    p.global_size = cfg->crops.global_crops_size;
    p.local_size = cfg->crops.local_crops_size;
    p.patch_size = cfg->student.patch_size;
    for (int i = 0; i < 2; i++) {
        p.global_scale[i] = cfg->crops.global_crops_scale.v[i];
        p.local_scale[i] = cfg->crops.local_crops_scale.v[i];
        p.mask_ratio[i] = cfg->ibot.mask_ratio_min_max.v[i];
    }
    p.mask_p = cfg->ibot.mask_sample_probability;
    p.blur_paper = cfg->train.blur_semantics == POA_CFG_BLUR_PAPER;
    p.seed = (uint64_t) cfg->train.seed;
    p.threads = cfg->train.data_threads > 0 ? cfg->train.data_threads : cfg->train.num_workers;
    if (p.threads < 1) p.threads = 1;
    p.prefetch = cfg->train.prefetch;
    p.first_group = (uint32_t) rank * (uint32_t) p.G;
    p.groups_total = world_size * p.G;
    return p;
}

static void fill_pixels(float *x, size_t n, uint64_t seed, uint32_t group, long long it, int part)
{
    poa_rng r;
    poa_rng_init(&r, seed, SYNTH_RANK_BASE + group, POA_RNG_AUGMENT,
                 ((uint64_t) it * 3 + (uint64_t) part) << 30);
    for (size_t i = 0; i < n; i++) x[i] = (float) (2.0 * poa_rng_uniform(&r) - 1.0);
}

/* The official mask counts (dinov2 collate): int(2B·p) of the 2B crops are masked, crop i with
 * int(N · U(r_i, r_{i+1})) patches for the stratified ratios r = linspace(min, max, n + 1). */
static void fill_masks(synth *s, uint8_t *m, uint32_t group, long long it)
{
    const int crops = 2 * s->p.B;
    const int gs = s->p.global_size / s->p.patch_size, N = gs * gs;
    const double lo0 = s->p.mask_ratio[0], span = s->p.mask_ratio[1] - s->p.mask_ratio[0];
    poa_rng r;
    poa_rng_init(&r, s->p.seed, SYNTH_RANK_BASE + group, POA_RNG_MASK, ((uint64_t) it) << 30);
    memset(m, 0, (size_t) crops * N);
    const int n_masked = (int) (crops * s->p.mask_p);
    for (int c = 0; c < crops; c++) s->perm[c] = (uint32_t) c;
    poa_rng_shuffle_u32(&r, s->perm, (uint64_t) crops);
    for (int i = 0; i < n_masked; i++) {
        double lo = lo0 + span * i / n_masked, hi = lo0 + span * (i + 1) / n_masked;
        int k = (int) (N * poa_rng_uniform_range(&r, lo, hi));
        uint8_t *row = m + (size_t) s->perm[i] * N;
        for (int j = 0; j < k; j++) { /* k distinct random patches */
            uint32_t q = poa_rng_below(&r, (uint32_t) N);
            while (row[q]) q = (q + 1) % (uint32_t) N;
            row[q] = 1;
        }
    }
}

static poa_status synth_next(poa_batch_source *src, long long it, poa_host_batch *b, poa_err *err)
{
    (void) err;
    synth *s = src->ctx;
    const poa_data_params *p = &s->p;
    const size_t ng = (size_t) 2 * p->B * p->channels * p->global_size * p->global_size;
    const size_t nl = (size_t) p->n_local * p->B * p->channels * p->local_size * p->local_size;
    const int gs = p->global_size / p->patch_size;
    const size_t nm = (size_t) 2 * p->B * gs * gs;
    for (int g = 0; g < p->G; g++) {
        uint32_t group = p->first_group + (uint32_t) g;
        fill_pixels(s->global + g * ng, ng, p->seed, group, it, PART_GLOBAL);
        if (nl) fill_pixels(s->local + g * nl, nl, p->seed, group, it, PART_LOCAL);
        fill_masks(s, s->masks + g * nm, group, it);
    }
    b->global_crops = s->global;
    b->local_crops = nl ? s->local : NULL;
    b->masks = s->masks;
    return POA_OK;
}

static size_t synth_state_words(poa_batch_source *s)
{
    (void) s;
    return 0;
}
static void synth_get_state(poa_batch_source *s, uint64_t *w)
{
    (void) s;
    (void) w;
}
static poa_status synth_set_state(poa_batch_source *s, const uint64_t *w, size_t n, long long it,
                                  poa_err *err)
{
    (void) s, (void) w, (void) n, (void) it, (void) err;
    return POA_OK;
}

static void synth_destroy(poa_batch_source *src)
{
    synth *s = src->ctx;
    free(s->global);
    free(s->local);
    free(s->masks);
    free(s->perm);
    free(s);
    free(src);
}

poa_batch_source *poa_batch_source_synthetic(const poa_data_params *p)
{
    synth *s = poa_xcalloc(1, sizeof *s);
    s->p = *p;
    const int gs = p->global_size / p->patch_size;
    const size_t G = (size_t) p->G, B = (size_t) p->B, C = (size_t) p->channels;
    s->global = poa_xmalloc(sizeof(float) * G * 2 * B * C * p->global_size * p->global_size);
    s->local =
        poa_xmalloc(sizeof(float) * (G * p->n_local * B * C * p->local_size * p->local_size + 1));
    s->masks = poa_xmalloc(G * 2 * B * gs * gs);
    s->perm = poa_xmalloc(sizeof(uint32_t) * 2 * B);
    poa_batch_source *src = poa_xcalloc(1, sizeof *src);
    src->name = "synthetic";
    src->ctx = s;
    src->p = *p;
    src->next = synth_next;
    src->state_words = synth_state_words;
    src->get_state = synth_get_state;
    src->set_state = synth_set_state;
    src->destroy = synth_destroy;
    return src;
}
