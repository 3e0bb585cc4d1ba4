/* rng.h — counter-based random numbers (Philox4x32-10, Salmon et al. SC'11).
 *
 * A stream is named by (seed, rank, purpose); element `index` of the stream is the Philox block
 *   key = (seed_lo32, seed_hi32), counter = (index_lo32, index_hi32, rank, purpose)
 * so any thread, on the CPU or the GPU, can compute any element without shared state, and the
 * CPU and CUDA backends draw identical numbers.  The header is plain C; under nvcc POA_HD marks
 * the functions __host__ __device__.
 */
#ifndef POA_COMMON_RNG_H
#define POA_COMMON_RNG_H

#include <stdint.h>

#if defined(__CUDACC__)
#define POA_HD __host__ __device__ __forceinline__
#else
#define POA_HD static inline
#endif

/* Purposes: one stream family per use, so adding a use never shifts another's numbers. */
enum poa_rng_purpose {
    POA_RNG_INIT = 1,     /* parameter initialisation (rank 0 draws, then broadcast) */
    POA_RNG_SAMPLER = 2,  /* data order permutation                                  */
    POA_RNG_AUGMENT = 3,  /* crop boxes, flips, jitter, blur, solarise               */
    POA_RNG_MASK = 4,     /* iBOT block masks                                        */
    POA_RNG_DROPPATH = 5, /* drop-path subsets                                       */
    POA_RNG_SUBNET = 6,   /* elastic sub-network cycle shuffles                      */
    POA_RNG_EVAL = 7,     /* linear probe: classifier init, data order, training crops
                             (the rank word names the sub-stream: 0, 1, 2)            */
    POA_RNG_TEST = 15,    /* unit tests                                              */
};

typedef struct poa_philox4 {
    uint32_t v[4];
} poa_philox4;

POA_HD uint32_t poa_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t) a * (uint64_t) b;
    *hi = (uint32_t) (p >> 32);
    return (uint32_t) p;
}

/* The Philox4x32 bijection with 10 rounds. */
POA_HD poa_philox4 poa_philox4x32_10(poa_philox4 ctr, uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = poa_mulhilo32(0xD2511F53u, ctr.v[0], &hi0);
        uint32_t lo1 = poa_mulhilo32(0xCD9E8D57u, ctr.v[2], &hi1);
        poa_philox4 n;
        n.v[0] = hi1 ^ ctr.v[1] ^ k0;
        n.v[1] = lo1;
        n.v[2] = hi0 ^ ctr.v[3] ^ k1;
        n.v[3] = lo0;
        ctr = n;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return ctr;
}

/* Block `index` of stream (seed, rank, purpose): four independent uint32. */
POA_HD poa_philox4 poa_rng_block(uint64_t seed, uint32_t rank, uint32_t purpose, uint64_t index)
{
    poa_philox4 c;
    c.v[0] = (uint32_t) index;
    c.v[1] = (uint32_t) (index >> 32);
    c.v[2] = rank;
    c.v[3] = purpose;
    return poa_philox4x32_10(c, (uint32_t) seed, (uint32_t) (seed >> 32));
}

/* uint32 → float in [0, 1) with 24 random bits. */
POA_HD float poa_u32_to_unit_float(uint32_t x)
{
    return (float) (x >> 8) * (1.0f / 16777216.0f);
}
/* two uint32 → double in [0, 1) with 53 random bits. */
POA_HD double poa_u32x2_to_unit_double(uint32_t a, uint32_t b)
{
    uint64_t m = ((uint64_t) (a >> 5) << 26) | (uint64_t) (b >> 6);
    return (double) m * (1.0 / 9007199254740992.0);
}

/* Sequential reader over one stream, for host code that wants "the next number". */
typedef struct poa_rng {
    uint64_t seed;
    uint32_t rank, purpose;
    uint64_t index; /* next block to generate */
    uint32_t buf[4];
    int pos; /* next unused word in buf; 4 = empty */
} poa_rng;

void poa_rng_init(poa_rng *r, uint64_t seed, uint32_t rank, uint32_t purpose, uint64_t start_index);
uint32_t poa_rng_u32(poa_rng *r);
double poa_rng_uniform(poa_rng *r); /* [0, 1), 53 bits */
double poa_rng_uniform_range(poa_rng *r, double a, double b);
uint32_t poa_rng_below(poa_rng *r, uint32_t n); /* unbiased integer in [0, n)  */
double poa_rng_normal(poa_rng *r);              /* N(0, 1), Box-Muller         */
/* Fisher-Yates shuffle of n uint32/int indices. */
void poa_rng_shuffle_u32(poa_rng *r, uint32_t *a, uint64_t n);

#endif
