/* subnet_sampler.h — which elastic sub-network each rank group trains at each iteration
 * (docs/algorithm.md §3.5, §1.2).
 *
 * Candidate list NETS: for every width u (ascending) and depth v (ascending), the pair
 * (width_u, depth_v) appears counts[u·N_d + v] times (the official integer weights, computed by
 * poa_model_candidate_counts).  The last entry must be the intact network; it is excluded, so a
 * cycle has |NETS| − 1 positions.  Every rank group has its own cycle: a shuffled list of the
 * positions 0 … |NETS| − 2, reshuffled after its last position was used.
 *
 * Randomness: the permutation of cycle c of rank group g is a Fisher-Yates shuffle driven by the
 * Philox stream (seed, rank = g, POA_RNG_SUBNET) starting at counter c·2^32.  The choice at
 * iteration `it` is therefore a pure function of (seed, g, it): no state to checkpoint, and a
 * resumed run continues the same sequence.  `g` is the global rank-group index
 * (rank · groups_per_rank + local group), so G groups on one rank draw exactly what G ranks with
 * one group each draw.
 */
#ifndef POA_TRAIN_SUBNET_SAMPLER_H
#define POA_TRAIN_SUBNET_SAMPLER_H

#include <stdint.h>

typedef struct poa_subnet_sampler {
    int n_nets;     /* |NETS|, intact included                   */
    int cycle_len;  /* |NETS| − 1                                */
    int *net_width; /* [n_nets]                                  */
    int *net_depth; /* [n_nets]                                  */
    uint64_t seed;
    uint32_t *scratch; /* [cycle_len] permutation of the last pick  */
} poa_subnet_sampler;

/* widths[nw] and depths[nd] ascending, counts[nw·nd] ≥ 0 with the intact network (last width,
 * last depth) last in NETS and at least one other entry.  Fatal on invalid input. */
void poa_subnet_sampler_init(poa_subnet_sampler *s, const int *widths, int nw, const int *depths,
                             int nd, const int *counts, uint64_t seed);
void poa_subnet_sampler_free(poa_subnet_sampler *s);

/* Position in NETS used by rank group `group` at iteration `it` (0-based). */
int poa_subnet_sampler_index(poa_subnet_sampler *s, uint32_t group, int64_t it);
/* Width and depth used by rank group `group` at iteration `it`. */
void poa_subnet_sampler_pick(poa_subnet_sampler *s, uint32_t group, int64_t it, int *width,
                             int *depth);

#endif
