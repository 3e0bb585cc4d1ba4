/* model_config.h — the model configuration (a plain struct), elastic widths/depths and block
 * selection (docs/algorithm.md §2.1, §3.1, §3.3, §12.1).
 *
 * Field names are the official YAML keys (student.*, dino.head_*, crops.*_size, optim.*) so the
 * trainer fills the struct key by key: start from poa_model_config_from_arch(), overwrite what
 * the configuration file sets, then call poa_model_config_validate().
 */
#ifndef POA_MODEL_MODEL_CONFIG_H
#define POA_MODEL_MODEL_CONFIG_H

#include "common/arch.h"
#include "common/config.h"
#include "common/poa_error.h"

#include <stddef.h>

#define POA_MODEL_MAX_HEADS POA_ARCH_MAX_HEADS /* projection heads (MPH) */
#define POA_MODEL_MAX_DEPTH POA_ARCH_MAX_DEPTH /* L_max                   */
#define POA_MODEL_ARCH_MAX  32

typedef struct poa_model_config {
    char arch[POA_MODEL_ARCH_MAX]; /* tiny, demo, vit_small, vit_base, vit_large, vit_dynamic */

    /* backbone (student.*) */
    int img_size;       /* side the pos_embed grid is built for (= crops.global_crops_size)      */
    int patch_size;     /* P                                                                    */
    int in_chans;       /* C (3)                                                                */
    int max_embed_dim;  /* D_max                                                                */
    int min_embed_dim;  /* smallest elastic width                                               */
    int max_depth;      /* L_max                                                                */
    int min_depth;      /* smallest elastic depth                                               */
    int head_dim;       /* Dh (attention head dimension)                                        */
    int width_interval; /* elastic width step, in attention heads                               */
    int depth_interval; /* elastic depth step, in blocks                                        */
    int mlp_ratio;      /* 4                                                                    */
    float layerscale;   /* LayerScale init value (1e-5)                                         */
    float ln_eps;       /* LayerNorm eps (1e-6)                                                 */

    /* projection heads (dino.*); iBOT shares them (docs/algorithm.md §5.3) */
    int n_heads;                                /* H = length of head_n_prototypes             */
    int head_n_prototypes[POA_MODEL_MAX_HEADS]; /* K_h                                         */
    int head_hidden_dim;                        /* 2048                                        */
    int head_bottleneck_dim;                    /* 256                                         */
    int head_nlayers;                           /* 3 (the only value supported)                */

    /* crops (crops.*): sizes the activation workspaces are planned for */
    int global_crops_size;
    int local_crops_size;

    /* optimizer multipliers written into the parameter table (optim.*, docs/algorithm.md §8.2) */
    double layerwise_decay;     /* 0.9 */
    double patch_embed_lr_mult; /* 0.2 */

    /* 1: parameter names of a standalone (extracted) ViT, docs/algorithm.md §2.8 (no
     * .linear./.norm. wrapper level, final norm `norm.weight`); such a model has a single
     * sub-network and no heads. */
    int extracted;
} poa_model_config;

/* Defaults of an architecture, from the one preset table (common/arch.h): "tiny" (docs/algorithm.md
 * §12.1), "demo" (Fashion-MNIST on CPU, see src/model/README.md), "vit_small", "vit_base" (patch
 * 16, elastic ranges as in docs/algorithm.md §12.3), "vit_large" / "vit_dynamic" (the official POA
 * ViT-L teacher: 11 widths × 13 depths, 4 heads). */
poa_status poa_model_config_from_arch(poa_model_config *cfg, const char *arch, poa_err *err);
/* Model description of a run configuration: the student.arch preset's defaults, then every key
 * that describes the model (student.*, dino.head_*, crops.*_size, optim.layerwise_decay,
 * optim.patch_embed_lr_mult).  cfg must be finalized (poa_config_finalize has checked the
 * model's shape, biases included); POA_ERR_CONFIG names the keys for values the model rejects.
 * The trainer builds its model with it, and a checkpoint's stored configuration is turned back
 * into the run's model with it (src/modelio/model_source.h). */
poa_status poa_model_config_from_config(const poa_config *cfg, poa_model_config *mc, poa_err *err);
/* Check the cross-field rules (divisibility, ranges, supported values) with the one model check
 * that the configuration uses too (poa_arch_shape_check); the message names the official keys. */
poa_status poa_model_config_validate(const poa_model_config *cfg, poa_err *err);

/* Attention heads of a width: d / Dh. */
static inline int poa_model_n_attn_heads(const poa_model_config *cfg, int width)
{
    return width / cfg->head_dim;
}
/* Patches of a square crop: (size / P)². */
static inline int poa_model_n_patches(const poa_model_config *cfg, int img_h, int img_w)
{
    return (img_h / cfg->patch_size) * (img_w / cfg->patch_size);
}
/* Rows of the stored position-embedding table: 1 + (img_size / P)². */
static inline int poa_model_pos_rows(const poa_model_config *cfg)
{
    return 1 + poa_model_n_patches(cfg, cfg->img_size, cfg->img_size);
}

/* Elastic widths, ascending: range(min_embed_dim, max_embed_dim + 1, head_dim·width_interval)
 * (docs/algorithm.md §3.1, the official Python range).  Writes at most `cap`; returns the count. */
int poa_model_widths(const poa_model_config *cfg, int *widths, int cap);
/* Elastic depths, ascending: range(min_depth, max_depth + 1, depth_interval). */
int poa_model_depths(const poa_model_config *cfg, int *depths, int cap);

/* Intact block indices of depth L (docs/algorithm.md §3.3): numpy.linspace(0, L_max-1, L) truncated
 * toward zero, computed exactly as numpy does (float64 k·step, last index forced).  blocks[L]. */
void poa_model_block_select(int max_depth, int depth, int *blocks);

/* Candidate counts of the sub-network cycle (docs/algorithm.md §3.5): counts[u·N_d + v] =
 * round_half_even(linspace(S,1,N_w)[u] · linspace(S,1,N_d)[v]) for width u, depth v.
 * Returns the sum (573 for the official ViT-L with S = 3). */
int poa_model_candidate_counts(const poa_model_config *cfg, double net_select_scale, int *counts,
                               int cap);

/* A sub-network: width d and the intact blocks it runs, in increasing order (docs/algorithm.md
 * §3.3). */
typedef struct poa_subnet {
    int width;                       /* d                      */
    int depth;                       /* L = number of blocks   */
    int blocks[POA_MODEL_MAX_DEPTH]; /* intact block indices   */
} poa_subnet;

/* Sub-network (width, depth); any width that is a multiple of head_dim in [head_dim, D_max] and
 * any depth in [1, L_max] is accepted (evaluation runs arbitrary pairs, docs/algorithm.md §10). */
poa_status poa_subnet_make(const poa_model_config *cfg, int width, int depth, poa_subnet *sn,
                           poa_err *err);
/* The intact network (D_max, L_max). */
poa_subnet poa_subnet_intact(const poa_model_config *cfg);
/* α = D_max / d (docs/algorithm.md §3.1). */
static inline double poa_subnet_alpha(const poa_model_config *cfg, const poa_subnet *sn)
{
    return (double) cfg->max_embed_dim / (double) sn->width;
}

#endif
