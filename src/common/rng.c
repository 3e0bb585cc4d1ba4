/* rng.c — sequential helpers over the Philox streams of rng.h. */
#include "common/rng.h"

#include <math.h>

void poa_rng_init(poa_rng *r, uint64_t seed, uint32_t rank, uint32_t purpose, uint64_t start_index)
{
    r->seed = seed;
    r->rank = rank;
    r->purpose = purpose;
    r->index = start_index;
    r->pos = 4;
}

uint32_t poa_rng_u32(poa_rng *r)
{
    if (r->pos == 4) {
        poa_philox4 b = poa_rng_block(r->seed, r->rank, r->purpose, r->index++);
        for (int i = 0; i < 4; i++) r->buf[i] = b.v[i];
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

double poa_rng_uniform(poa_rng *r)
{
    uint32_t a = poa_rng_u32(r);
    uint32_t b = poa_rng_u32(r);
    return poa_u32x2_to_unit_double(a, b);
}

double poa_rng_uniform_range(poa_rng *r, double a, double b)
{
    return a + (b - a) * poa_rng_uniform(r);
}

uint32_t poa_rng_below(poa_rng *r, uint32_t n)
{
    if (n <= 1) return 0;
    /* Lemire-style rejection on the low end keeps the result unbiased. */
    uint32_t threshold = (uint32_t) (-n) % n;
    for (;;) {
        uint64_t m = (uint64_t) poa_rng_u32(r) * n;
        if ((uint32_t) m >= threshold) return (uint32_t) (m >> 32);
    }
}

double poa_rng_normal(poa_rng *r)
{
    double u1 = poa_rng_uniform(r);
    double u2 = poa_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void poa_rng_shuffle_u32(poa_rng *r, uint32_t *a, uint64_t n)
{
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = poa_rng_below(r, (uint32_t) i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}
