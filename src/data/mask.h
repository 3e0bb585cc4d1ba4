/* mask.h — iBOT block-wise masks (docs/algorithm.md §9.2), as dinov2's MaskingGenerator and
 * collate_data_and_cast compute them, drawing from a Philox stream instead of Python's random.
 *
 * Arithmetic as in the official code: Python round() (half to even) for block sides, uniform(a, b)
 * = a + (b - a)·u, randint inclusive; the per-crop target count int(N · U(r_k, r_{k+1})) in
 * float32 because r_k comes from torch.linspace (float32). */
#ifndef POA_DATA_MASK_H
#define POA_DATA_MASK_H

#include "common/rng.h"

#include <stdint.h>

typedef struct poa_mask_params {
    int grid_h, grid_w;          /* patch grid of a global crop (14 × 14 for 224 / 16)   */
    double min_num_patches;      /* 4                                                     */
    double max_num_patches;      /* per block: 0.5 · N in the official configuration      */
    double min_aspect;           /* 0.3; blocks have aspect in [0.3, 1 / 0.3]             */
    double max_aspect;           /* 0 → 1 / min_aspect                                   */
    double mask_probability;     /* ibot.mask_sample_probability: 0.5                     */
    double ratio_min, ratio_max; /* ibot.mask_ratio_min_max: 0.1, 0.5                  */
} poa_mask_params;

/* The official parameters for a grid; max_num_patches by dinov2's train.py expression
 * 0.5 * img_size // patch_size * img_size // patch_size evaluated in floats. */
void poa_mask_params_default(poa_mask_params *p, int img_size, int patch_size);

/* MaskingGenerator(num_masking_patches = target): a grid_h × grid_w mask (row-major, 0/1) with at
 * most `target` ones; returns the number of ones. */
int poa_mask_generate(const poa_mask_params *p, poa_rng *r, int target, uint8_t *mask);

/* One step of it (MaskingGenerator._mask): up to 10 attempts to add one block of at most
 * `budget` new cells; returns the number of cells added (0: no attempt fitted). */
int poa_mask_add_block(const poa_mask_params *p, poa_rng *r, uint8_t *mask, double budget);

/* int(N * (lo + (hi - lo) * u)) in float32, lo/hi as float32 (torch tensors) — the per-crop target
 * of collate_data_and_cast. */
int poa_mask_target(int n_tokens, float lo, float hi, double u);
/* torch.linspace(a, b, steps) in float32 (element i). */
float poa_linspace_f32(double a, double b, int steps, int i);

/* Masks of the n_crops global crops of a rank group (n_crops = 2B), row-major [n_crops, N]:
 * floor(n_crops · mask_probability) crops get masks with stratified ratios, the rest empty, the
 * list shuffled.  Returns the total of masked patches; *upperbound = Σ int(N · r_{k+1}) (the
 * official "upperbound"). */
int poa_mask_batch(const poa_mask_params *p, poa_rng *r, int n_crops, uint8_t *masks,
                   int64_t *upperbound);

#endif
