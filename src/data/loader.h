/* loader.h — the training data loader: sampler → shard reads → JPEG decode → multi-crop
 * augmentation → iBOT masks → contiguous float batches, produced by worker threads into a ring of
 * prefetched batches.
 *
 * Determinism: image j of the rank's stream (sampler position p) is augmented with the Philox
 * stream (seed, rank, POA_RNG_AUGMENT, crop-indexed from p) and the masks of the batch starting at
 * p come from (seed, rank, POA_RNG_MASK, from p): a batch depends only on the seed, the rank, the
 * world size, the data and its position — not on the number of threads, their timing or on
 * where a run was resumed.
 *
 * HDF5: every HDF5 call happens in poa_loader_open (the caller's thread); workers read the
 * contiguous /images datasets with pread() on plain file descriptors, so HDF5's one-thread rule
 * holds whether or not the library is thread-safe, and no HDF5 handle exists to cross a fork.
 *
 * A record that fails to decode is replaced by the next entry of the dataset that decodes (entry
 * i + 1, i + 2, … modulo N — the same every run), counted in poa_batch.n_replaced and the loader
 * statistics and reported as a warning (the first 10 times); it never stops training.
 */
#ifndef POA_DATA_LOADER_H
#define POA_DATA_LOADER_H

#include "common/poa_error.h"
#include "data/augment.h"
#include "data/mask.h"
#include "data/sampler.h"

#include <stdint.h>

/* Everything the loader needs; the trainer fills it from the configuration:
 *   crops.global_crops_size, crops.local_crops_size, crops.global_crops_scale,
 *   crops.local_crops_scale, crops.local_crops_number, ibot.mask_sample_probability,
 *   ibot.mask_ratio_min_max, train.batch_size_per_gpu, train.seed, (student.patch_size). */
typedef struct poa_loader_params {
    int global_crops_size;          /* 224 */
    int local_crops_size;           /* 96  */
    double global_crops_scale[2];   /* 0.32, 1.0 */
    double local_crops_scale[2];    /* 0.05, 0.32 */
    int local_crops_number;         /* 8 */
    int patch_size;                 /* 16: mask grid = global_crops_size / patch_size */
    double mask_sample_probability; /* 0.5 */
    double mask_ratio_min_max[2];   /* 0.1, 0.5 */
    double mask_max_num_patches;    /* <= 0: dinov2's 0.5·grid² rule (poa_mask_params_default) */
    int batch_size;                 /* B images per batch = one rank group */
    uint64_t seed;                  /* train.seed */
    int rank, world_size;           /* this rank's share of the data (sampler.h) */
    int threads;                    /* worker threads (>= 1) */
    int prefetch; /* batches in the ring (>= 2); each holds 4·B·3·(2S² + V·s²) bytes of crops:
                     104 MB for B = 50, 224/96 px, V = 8 */
    poa_blur_semantics blur_semantics; /* official (default) or paper */
    double dct_min_ratio; /* decode with DCT scaling when every crop is this much smaller
                             than its box (default 2; 0 = never, exact torchvision) */
} poa_loader_params;

/* The official values (docs/algorithm.md §9.1, §9.2) with B = 50, seed 0, 1 rank, 2 threads,
 * ring of 4. */
void poa_loader_params_default(poa_loader_params *p);

typedef struct poa_batch {
    int batch_size, n_local, global_size, local_size, n_tokens;
    float *global_crops;     /* [2B, 3, S, S], crop-major: rows c·B + b (crop c of image b)   */
    float *local_crops;      /* [V_l·B, 3, s, s], crop-major                                 */
    uint8_t *masks;          /* [2B, n_tokens], row c·B + b, 1 = masked                       */
    int32_t *labels;         /* [B] class index (-1 none)                                    */
    uint64_t *indices;       /* [B] dataset entries used (after replacement)                 */
    int64_t mask_upperbound; /* Σ int(N · r_{k+1}) as the official collate                */
    int n_masked;            /* total masked patches                                          */
    int n_replaced;          /* undecodable records replaced in this batch                    */
    uint64_t position;       /* sampler position of image 0                                   */
} poa_batch;

typedef struct poa_loader_stats {
    uint64_t batches, images, replaced;
    double decode_s, augment_s; /* summed over workers */
} poa_loader_stats;

typedef struct poa_loader poa_loader;

/* Open split `split` of the packed folder `dir`.  resume: a state from poa_loader_state (NULL:
 * start at position 0). */
poa_status poa_loader_open(poa_loader **L, const char *dir, const char *split,
                           const poa_loader_params *p, const poa_sampler_state *resume,
                           poa_err *err);
/* The next batch; valid until the next call (which hands its slot back to the workers). */
poa_status poa_loader_next(poa_loader *L, const poa_batch **batch, poa_err *err);
/* Where to resume so that the next batch is the one after the last returned. */
void poa_loader_state(const poa_loader *L, poa_sampler_state *st);
void poa_loader_get_stats(const poa_loader *L, poa_loader_stats *s);
int64_t poa_loader_dataset_size(const poa_loader *L);
void poa_loader_close(poa_loader *L);

#endif
