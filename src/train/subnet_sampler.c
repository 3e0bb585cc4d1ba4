/* subnet_sampler.c — see subnet_sampler.h. */
#include "train/subnet_sampler.h"
#include "common/poa_error.h"
#include "common/rng.h"

#include <stdlib.h>

void poa_subnet_sampler_init(poa_subnet_sampler *s, const int *widths, int nw, const int *depths,
                             int nd, const int *counts, uint64_t seed)
{
    POA_CHECK(nw >= 1 && nd >= 1, "sub-network sampler: %d widths, %d depths", nw, nd);
    int n = 0;
    for (int i = 0; i < nw * nd; i++) {
        POA_CHECK(counts[i] >= 0, "sub-network sampler: negative count %d", counts[i]);
        n += counts[i];
    }
    POA_CHECK(counts[nw * nd - 1] >= 1 && n >= 2,
              "sub-network sampler: need the intact network last and another candidate "
              "(%d candidates)",
              n);
    s->n_nets = n;
    s->cycle_len = n - 1;
    s->net_width = poa_xmalloc(sizeof(int) * (size_t) n);
    s->net_depth = poa_xmalloc(sizeof(int) * (size_t) n);
    s->scratch = poa_xmalloc(sizeof(uint32_t) * (size_t) s->cycle_len);
    s->seed = seed;
    int at = 0;
    for (int u = 0; u < nw; u++)
        for (int v = 0; v < nd; v++)
            for (int c = 0; c < counts[u * nd + v]; c++) {
                s->net_width[at] = widths[u];
                s->net_depth[at] = depths[v];
                at++;
            }
}

void poa_subnet_sampler_free(poa_subnet_sampler *s)
{
    free(s->net_width);
    free(s->net_depth);
    free(s->scratch);
    s->net_width = s->net_depth = NULL;
    s->scratch = NULL;
}

int poa_subnet_sampler_index(poa_subnet_sampler *s, uint32_t group, int64_t it)
{
    POA_ASSERT(it >= 0);
    int64_t cycle = it / s->cycle_len;
    int pos = (int) (it % s->cycle_len);
    for (int i = 0; i < s->cycle_len; i++) s->scratch[i] = (uint32_t) i;
    poa_rng r;
    poa_rng_init(&r, s->seed, group, POA_RNG_SUBNET, (uint64_t) cycle << 32);
    poa_rng_shuffle_u32(&r, s->scratch, (uint64_t) s->cycle_len);
    return (int) s->scratch[pos];
}

void poa_subnet_sampler_pick(poa_subnet_sampler *s, uint32_t group, int64_t it, int *width,
                             int *depth)
{
    int idx = poa_subnet_sampler_index(s, group, it);
    *width = s->net_width[idx];
    *depth = s->net_depth[idx];
}
