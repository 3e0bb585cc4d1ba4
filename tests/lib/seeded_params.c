/* seeded_params.c — see seeded_params.h. */
#include "tests/lib/seeded_params.h"
#include "common/rng.h"

#include <math.h>
#include <string.h>

void seeded_params(const poa_model *m, float *host, uint64_t seed)
{
    poa_rng r;
    poa_rng_init(&r, seed, 0, POA_RNG_TEST, 0);
    memset(host, 0, m->table.total * sizeof(float));
    for (int i = 0; i < m->table.n; i++) {
        const poa_param_desc *p = &m->table.p[i];
        double lo = -0.2, hi = 0.2;
        if (strstr(p->name, "gamma"))
            lo = 0.5, hi = 1.5;
        else if (strstr(p->name, "norm") && strstr(p->name, "weight"))
            lo = 0.7, hi = 1.3;
        else if (strstr(p->name, "token") || strstr(p->name, "pos_embed"))
            lo = -0.5, hi = 0.5;
        else if (p->ndim >= 2) {
            double a = sqrt(3.0 / (double) (p->numel / (size_t) p->shape[0]));
            lo = -a, hi = a;
        }
        for (size_t e = 0; e < p->numel; e++)
            host[p->offset + e] = (float) poa_rng_uniform_range(&r, lo, hi);
    }
}
