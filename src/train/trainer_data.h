/* trainer_data.h — where the rank loop gets its batches: a small interface with two
 * implementations, the packed-data loader (src/data, docs/algorithm.md §9) and a synthetic source
 * (random pixels and masks, for benchmarks of the step machinery and for tests that need no data).
 *
 * A batch holds this rank's G rank groups in the layout of poa_step_batch (host memory):
 *   global [G][2B, C, S_g, S_g]   per group crop 0 of every image, then crop 1
 *   local  [G][V_l·B, C, S_l, S_l] local crop 0 of every image, then local 1, …
 *   masks  [G][2B, N_g]           iBOT masks, 1 = masked (docs/algorithm.md §9.2)
 * The data of global rank group g (= rank·G + local group) at iteration `it` must not depend on
 * how the groups are spread over ranks, so 2 ranks × 1 group and 1 rank × 2 groups train on the
 * same images (the equivalence test of the rank loop).
 *
 * State: a source may hold state (sampler position, RNG counters); it is saved per rank in
 * checkpoints as an opaque uint64 blob and restored on resume, so a resumed run reads exactly
 * the batches an uninterrupted run reads.
 */
#ifndef POA_TRAIN_TRAINER_DATA_H
#define POA_TRAIN_TRAINER_DATA_H

#include "common/poa_error.h"

#include <stddef.h>
#include <stdint.h>

struct poa_config;

typedef struct poa_host_batch {
    const float *global_crops;
    const float *local_crops; /* NULL when V_l = 0 */
    const uint8_t *masks;
} poa_host_batch;

/* The configuration values the sources need (filled by poa_data_params_of; a plain struct so
 * that the loader's headers and common/config.h never meet in one file). */
typedef struct poa_data_params {
    char dir[4096]; /* train.dataset_path: the poa-pack folder                     */
    int B, G, n_local, channels;
    int global_size, local_size, patch_size;
    double global_scale[2], local_scale[2]; /* crops.*_crops_scale                      */
    double mask_p, mask_ratio[2];           /* ibot.mask_sample_probability, ratio range */
    int blur_paper;                         /* train.blur_semantics = paper               */
    uint64_t seed;                          /* train.seed                                 */
    int threads, prefetch;                  /* train.data_threads, train.prefetch (per rank) */
    uint32_t first_group; /* global index of this rank's first rank group (rank · G)    */
    int groups_total;     /* rank groups of the iteration over all ranks (world · G)     */
} poa_data_params;

poa_data_params poa_data_params_of(const struct poa_config *cfg, int rank, int world_size);

typedef struct poa_batch_source poa_batch_source;
struct poa_batch_source {
    const char *name; /* "loader" / "synthetic" */
    void *ctx;
    poa_data_params p;
    long long images_total; /* images in the data set (0: synthetic) */
    /* The batch of iteration `it` (called with it = start, start + 1, …).  Pointers stay
     * valid until the next call.  Errors come with the data layer's message. */
    poa_status (*next)(poa_batch_source *s, long long it, poa_host_batch *b, poa_err *err);
    /* Opaque per-rank state after the last batch returned (resume), and its restoration before
     * the first batch.  n = 0: the state of a run that reaches iteration `start_it` without
     * interruption with this rank layout. */
    size_t (*state_words)(poa_batch_source *s);
    void (*get_state)(poa_batch_source *s, uint64_t *words);
    poa_status (*set_state)(poa_batch_source *s, const uint64_t *words, size_t n,
                            long long start_it, poa_err *err);
    void (*destroy)(poa_batch_source *s);
};

/* Synthetic batches: pixels U(−1, 1) and masks with the official counts (int(2B·p) masked crops
 * with stratified ratios, random patches) drawn from Philox streams keyed by (train.seed,
 * global rank group, iteration).  Stateless: the batch of (g, it) is a pure function. */
poa_batch_source *poa_batch_source_synthetic(const poa_data_params *p);

/* The packed data set p->dir through the data layer's loader, one loader per rank group with
 * rank = global rank group and world size = rank groups of the iteration, so the data of a rank
 * group does not depend on how the groups are spread over ranks.  Checks the folder (missing:
 * POA_ERR_NOTFOUND; wrong format or version: POA_ERR_FORMAT / POA_ERR_VERSION) at creation;
 * the loaders start in set_state. */
poa_status poa_batch_source_loader(const poa_data_params *p, poa_batch_source **out, poa_err *err);

static inline void poa_batch_source_destroy(poa_batch_source *s)
{
    if (s && s->destroy) s->destroy(s);
}

#endif
