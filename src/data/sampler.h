/* sampler.h — the per-rank, deterministic, resumable order of training images (docs/algorithm.md
 * §8.5).
 *
 * Pass e (e = 0, 1, …) is a permutation of the whole dataset drawn from the Philox stream
 * (seed, POA_RNG_SAMPLER, e) — identical on every rank; rank r reads entries r, r + W, r + 2W, …
 * of it, floor(N / W) per pass, so the ranks' images are disjoint within a pass (as the official
 * ShardedInfiniteSampler; the last N mod W entries of each pass are not used when W does not
 * divide N).  With W = 1 this is one device reading an infinite stream of independently
 * reshuffled passes, cut into batches across pass boundaries (docs/algorithm.md §8.5).
 *
 * The whole state is the position in the rank's stream (plus the values that must match to
 * resume): poa_sampler_state, six integers a checkpoint stores as they are.
 */
#ifndef POA_DATA_SAMPLER_H
#define POA_DATA_SAMPLER_H

#include "common/poa_error.h"

#include <stdint.h>

typedef struct poa_sampler_state {
    uint64_t seed;         /* train.seed                                      */
    uint64_t dataset_size; /* N                                               */
    uint64_t world_size;   /* W                                               */
    uint64_t rank;         /* r                                               */
    uint64_t position;     /* images of this rank's stream already handed out */
    uint64_t version;      /* POA_SAMPLER_VERSION: the permutation algorithm  */
} poa_sampler_state;

#define POA_SAMPLER_VERSION     1
#define POA_SAMPLER_STATE_WORDS 6

typedef struct poa_sampler {
    poa_sampler_state st;
    uint64_t per_pass; /* floor(N / W) */
    /* The rank's slice of the two most recently used passes. */
    struct {
        uint64_t pass;
        uint32_t *slice;
    } cache[2];
    int next_victim;
} poa_sampler;

/* A new sampler at position 0.  POA_ERR_ARG when N < W (a rank would get nothing) or N >
 * UINT32_MAX. */
poa_status poa_sampler_init(poa_sampler *s, uint64_t seed, uint64_t dataset_size,
                            uint32_t world_size, uint32_t rank, poa_err *err);
/* Continue from a saved state; POA_ERR_CONFIG when it was saved for another seed, dataset size,
 * world size, rank or algorithm version (the message names the value that differs). */
poa_status poa_sampler_restore(poa_sampler *s, const poa_sampler_state *st, poa_err *err);
void poa_sampler_free(poa_sampler *s);

/* Dataset index at stream position pos of this rank (random access, not thread-safe). */
uint32_t poa_sampler_at(poa_sampler *s, uint64_t pos);
/* The index at the current position, then advance. */
uint32_t poa_sampler_next(poa_sampler *s);

/* The state as POA_SAMPLER_STATE_WORDS integers and back (checkpoint helpers). */
void poa_sampler_state_pack(const poa_sampler_state *st, uint64_t words[POA_SAMPLER_STATE_WORDS]);
void poa_sampler_state_unpack(const uint64_t words[POA_SAMPLER_STATE_WORDS], poa_sampler_state *st);

#endif
