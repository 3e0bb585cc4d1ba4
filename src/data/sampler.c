/* sampler.c — see sampler.h. */
#include "data/sampler.h"

#include "common/rng.h"

#include <stdlib.h>
#include <string.h>

/* All ranks draw the permutation of pass e from the same stream: rank field 0 of the Philox
 * counter, purpose SAMPLER, blocks starting at e << 32 (a pass uses fewer than 2^32 blocks). */
static void pass_slice(const poa_sampler *s, uint64_t pass, uint32_t *slice)
{
    uint64_t n = s->st.dataset_size;
    uint32_t *perm = poa_xmalloc(n * sizeof *perm);
    for (uint64_t i = 0; i < n; i++) perm[i] = (uint32_t) i;
    poa_rng r;
    poa_rng_init(&r, s->st.seed, 0, POA_RNG_SAMPLER, pass << 32);
    poa_rng_shuffle_u32(&r, perm, n);
    for (uint64_t k = 0; k < s->per_pass; k++) slice[k] = perm[s->st.rank + k * s->st.world_size];
    free(perm);
}

poa_status poa_sampler_init(poa_sampler *s, uint64_t seed, uint64_t dataset_size,
                            uint32_t world_size, uint32_t rank, poa_err *err)
{
    memset(s, 0, sizeof *s);
    if (world_size == 0 || rank >= world_size)
        return poa_err_set(err, POA_ERR_ARG, "sampler: rank %u outside world size %u", rank,
                           world_size);
    if (dataset_size < world_size)
        return poa_err_set(err, POA_ERR_ARG, "sampler: %llu images cannot be divided over %u ranks",
                           (unsigned long long) dataset_size, world_size);
    if (dataset_size > UINT32_MAX)
        return poa_err_set(err, POA_ERR_ARG, "sampler: %llu images, at most 2^32-1 supported",
                           (unsigned long long) dataset_size);
    s->st = (poa_sampler_state){seed, dataset_size, world_size, rank, 0, POA_SAMPLER_VERSION};
    s->per_pass = dataset_size / world_size;
    for (int i = 0; i < 2; i++) {
        s->cache[i].pass = UINT64_MAX;
        s->cache[i].slice = poa_xmalloc(s->per_pass * sizeof(uint32_t));
    }
    return POA_OK;
}

poa_status poa_sampler_restore(poa_sampler *s, const poa_sampler_state *st, poa_err *err)
{
    const char *what = NULL;
    unsigned long long saved = 0, now = 0;
    if (st->version != POA_SAMPLER_VERSION)
        what = "version", saved = st->version, now = POA_SAMPLER_VERSION;
    else if (st->seed != s->st.seed)
        what = "seed", saved = st->seed, now = s->st.seed;
    else if (st->dataset_size != s->st.dataset_size)
        what = "dataset size", saved = st->dataset_size, now = s->st.dataset_size;
    else if (st->world_size != s->st.world_size)
        what = "world size", saved = st->world_size, now = s->st.world_size;
    else if (st->rank != s->st.rank)
        what = "rank", saved = st->rank, now = s->st.rank;
    if (what)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "data order saved for %s %llu cannot continue with %s %llu (resume "
                           "with the same data, seed and number of ranks)",
                           what, saved, what, now);
    s->st.position = st->position;
    return POA_OK;
}

void poa_sampler_free(poa_sampler *s)
{
    for (int i = 0; i < 2; i++) free(s->cache[i].slice);
    memset(s, 0, sizeof *s);
}

uint32_t poa_sampler_at(poa_sampler *s, uint64_t pos)
{
    uint64_t pass = pos / s->per_pass, k = pos % s->per_pass;
    for (int i = 0; i < 2; i++)
        if (s->cache[i].pass == pass) return s->cache[i].slice[k];
    int v = s->next_victim;
    s->next_victim ^= 1;
    pass_slice(s, pass, s->cache[v].slice);
    s->cache[v].pass = pass;
    return s->cache[v].slice[k];
}

uint32_t poa_sampler_next(poa_sampler *s)
{
    return poa_sampler_at(s, s->st.position++);
}

void poa_sampler_state_pack(const poa_sampler_state *st, uint64_t w[POA_SAMPLER_STATE_WORDS])
{
    w[0] = st->seed;
    w[1] = st->dataset_size;
    w[2] = st->world_size;
    w[3] = st->rank;
    w[4] = st->position;
    w[5] = st->version;
}

void poa_sampler_state_unpack(const uint64_t w[POA_SAMPLER_STATE_WORDS], poa_sampler_state *st)
{
    *st = (poa_sampler_state){w[0], w[1], w[2], w[3], w[4], w[5]};
}
