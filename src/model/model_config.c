/* model_config.c — see model_config.h. */
#include "model/model_config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct arch_defaults {
    const char *name;
    int img_size, patch_size, max_embed_dim, min_embed_dim, max_depth, min_depth, head_dim;
    int n_heads, prototypes[4], hidden, bottleneck;
    int global_crops_size, local_crops_size;
} arch_defaults;

/* Official heads (spec §3.2): 4 heads, hidden 2048, bottleneck 256. */
#define OFFICIAL_HEADS 4, {8192, 16384, 32768, 65536}, 2048, 256

static const arch_defaults arch_table[] = {
    /* spec §11.1: D 64, 4 blocks, 4 heads of 16, patch 8, 32/16 px, widths {32,48,64},
     * depths {2,3,4}, MPH K = {64, 128}, hidden 128, bottleneck 32. */
    {"tiny", 32, 8, 64, 32, 4, 2, 16, 2, {64, 128}, 128, 32, 32, 16},
    /* Fashion-MNIST on CPU (src/model/README.md): D 128 with heads of 32 → widths {64,96,128},
     * 6 blocks → depths {3,...,6}, patch 4 on 32/16 px crops, MPH K = {256, 512}. */
    {"demo", 32, 4, 128, 64, 6, 3, 32, 2, {256, 512}, 256, 64, 32, 16},
    /* spec §11.2: intact ViT-S/16, widths 192..384, depths 6..12, K = {2048,...,16384}. */
    {"vit_small", 224, 16, 384, 192, 12, 6, 64, 4, {2048, 4096, 8192, 16384}, 2048, 256, 224, 96},
    /* ViT-B/16 intact, widths 384..768 (ViT-S and up), depths 6..12 [REC]. */
    {"vit_base", 224, 16, 768, 384, 12, 6, 64, OFFICIAL_HEADS, 224, 96},
    /* The official POA teacher (spec §1.1, §2.1): 11 widths × 13 depths. */
    {"vit_large", 224, 16, 1024, 384, 24, 12, 64, OFFICIAL_HEADS, 224, 96},
    {"vit_dynamic", 224, 16, 1024, 384, 24, 12, 64, OFFICIAL_HEADS, 224, 96},
};

poa_status poa_model_config_from_arch(poa_model_config *cfg, const char *arch, poa_err *err)
{
    const arch_defaults *a = NULL;
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (strcmp(arch_table[i].name, arch) == 0) a = &arch_table[i];
    if (!a)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "unknown model arch '%s' (valid: tiny, demo, vit_small, vit_base, "
                           "vit_large, vit_dynamic)",
                           arch);
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->arch, sizeof cfg->arch, "%s", a->name);
    cfg->img_size = a->img_size;
    cfg->patch_size = a->patch_size;
    cfg->in_chans = 3;
    cfg->max_embed_dim = a->max_embed_dim;
    cfg->min_embed_dim = a->min_embed_dim;
    cfg->max_depth = a->max_depth;
    cfg->min_depth = a->min_depth;
    cfg->head_dim = a->head_dim;
    cfg->width_interval = 1;
    cfg->depth_interval = 1;
    cfg->mlp_ratio = 4;
    cfg->layerscale = 1e-5f;
    cfg->ln_eps = 1e-6f;
    cfg->n_heads = a->n_heads;
    for (int h = 0; h < a->n_heads; h++) cfg->head_n_prototypes[h] = a->prototypes[h];
    cfg->head_hidden_dim = a->hidden;
    cfg->head_bottleneck_dim = a->bottleneck;
    cfg->head_nlayers = 3;
    cfg->global_crops_size = a->global_crops_size;
    cfg->local_crops_size = a->local_crops_size;
    cfg->layerwise_decay = 0.9;
    cfg->patch_embed_lr_mult = 0.2;
    cfg->extracted = 0;
    return POA_OK;
}

static poa_status check_crop(const poa_model_config *c, const char *what, int size, poa_err *err)
{
    if (size < c->patch_size || size % c->patch_size != 0)
        return poa_err_set(err, POA_ERR_CONFIG, "%s %d is not a positive multiple of patch_size %d",
                           what, size, c->patch_size);
    return POA_OK;
}

poa_status poa_model_config_validate(const poa_model_config *c, poa_err *err)
{
    if (c->patch_size < 1 || c->in_chans < 1 || c->mlp_ratio < 1 || c->head_dim < 1)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "patch_size, in_chans, mlp_ratio and head_dim must be >= 1");
    if (c->max_embed_dim % c->head_dim || c->min_embed_dim % c->head_dim)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "min_embed_dim %d and max_embed_dim %d must be multiples of head_dim %d",
                           c->min_embed_dim, c->max_embed_dim, c->head_dim);
    if (c->min_embed_dim < c->head_dim || c->min_embed_dim > c->max_embed_dim)
        return poa_err_set(err, POA_ERR_CONFIG, "need head_dim <= min_embed_dim <= max_embed_dim");
    if (c->max_depth < 1 || c->max_depth > POA_MODEL_MAX_DEPTH)
        return poa_err_set(err, POA_ERR_CONFIG, "max_depth %d outside [1, %d]", c->max_depth,
                           POA_MODEL_MAX_DEPTH);
    if (c->min_depth < 1 || c->min_depth > c->max_depth)
        return poa_err_set(err, POA_ERR_CONFIG, "need 1 <= min_depth <= max_depth");
    if (c->width_interval < 1 || c->depth_interval < 1)
        return poa_err_set(err, POA_ERR_CONFIG, "width_interval and depth_interval must be >= 1");
    poa_status s;
    if ((s = check_crop(c, "img_size", c->img_size, err)) != POA_OK) return s;
    if ((s = check_crop(c, "global_crops_size", c->global_crops_size, err)) != POA_OK) return s;
    if ((s = check_crop(c, "local_crops_size", c->local_crops_size, err)) != POA_OK) return s;
    if (c->n_heads < 0 || c->n_heads > POA_MODEL_MAX_HEADS)
        return poa_err_set(err, POA_ERR_CONFIG, "%d projection heads (at most %d)", c->n_heads,
                           POA_MODEL_MAX_HEADS);
    if (c->n_heads > 0 && c->head_nlayers != 3)
        return poa_err_set(err, POA_ERR_CONFIG, "head_nlayers %d: only 3 is supported",
                           c->head_nlayers);
    for (int h = 0; h < c->n_heads; h++)
        if (c->head_n_prototypes[h] < 1)
            return poa_err_set(err, POA_ERR_CONFIG, "head %d has %d prototypes", h,
                               c->head_n_prototypes[h]);
    if (c->n_heads > 0 && (c->head_hidden_dim < 1 || c->head_bottleneck_dim < 1))
        return poa_err_set(err, POA_ERR_CONFIG,
                           "head_hidden_dim and head_bottleneck_dim must be >= 1");
    if (c->extracted &&
        (c->n_heads != 0 || c->min_embed_dim != c->max_embed_dim || c->min_depth != c->max_depth))
        return poa_err_set(err, POA_ERR_CONFIG,
                           "an extracted model has one width, one depth and no heads");
    return POA_OK;
}

int poa_model_widths(const poa_model_config *cfg, int *widths, int cap)
{
    int n = 0;
    int step = cfg->head_dim * cfg->width_interval;
    for (int w = cfg->min_embed_dim; w <= cfg->max_embed_dim; w += step) {
        if (n < cap) widths[n] = w;
        n++;
    }
    return n;
}

int poa_model_depths(const poa_model_config *cfg, int *depths, int cap)
{
    int n = 0;
    for (int l = cfg->min_depth; l <= cfg->max_depth; l += cfg->depth_interval) {
        if (n < cap) depths[n] = l;
        n++;
    }
    return n;
}

void poa_model_block_select(int max_depth, int depth, int *blocks)
{
    /* numpy.linspace(0, stop, num): step = stop / (num - 1); y_k = k * step (float64);
     * y[num-1] = stop; .astype(int64) truncates toward zero.  num == 1 gives [0]. */
    if (depth == 1) {
        blocks[0] = 0;
        return;
    }
    double step = (double) (max_depth - 1) / (double) (depth - 1);
    for (int k = 0; k < depth - 1; k++) blocks[k] = (int) (int64_t) ((double) k * step);
    blocks[depth - 1] = max_depth - 1;
}

/* numpy.linspace(start, 1.0, n)[i] (float64, last value forced). */
static double linspace_to_one(double start, int n, int i)
{
    if (n == 1) return start;
    if (i == n - 1) return 1.0;
    double step = (1.0 - start) / (double) (n - 1);
    return (double) i * step + start;
}

int poa_model_candidate_counts(const poa_model_config *cfg, double net_select_scale, int *counts,
                               int cap)
{
    int nw = poa_model_widths(cfg, NULL, 0);
    int nd = poa_model_depths(cfg, NULL, 0);
    int total = 0;
    for (int u = 0; u < nw; u++)
        for (int v = 0; v < nd; v++) {
            double sw = linspace_to_one(net_select_scale, nw, u);
            double sd = linspace_to_one(net_select_scale, nd, v);
            int c = (int) nearbyint(sw * sd); /* default rounding: half to even, like np.round */
            if (u * nd + v < cap) counts[u * nd + v] = c;
            total += c;
        }
    return total;
}

poa_status poa_subnet_make(const poa_model_config *cfg, int width, int depth, poa_subnet *sn,
                           poa_err *err)
{
    if (width < cfg->head_dim || width > cfg->max_embed_dim || width % cfg->head_dim)
        return poa_err_set(err, POA_ERR_ARG,
                           "sub-network width %d: need a multiple of head_dim %d in [%d, %d]",
                           width, cfg->head_dim, cfg->head_dim, cfg->max_embed_dim);
    if (depth < 1 || depth > cfg->max_depth)
        return poa_err_set(err, POA_ERR_ARG, "sub-network depth %d outside [1, %d]", depth,
                           cfg->max_depth);
    memset(sn, 0, sizeof *sn);
    sn->width = width;
    sn->depth = depth;
    poa_model_block_select(cfg->max_depth, depth, sn->blocks);
    return POA_OK;
}

poa_subnet poa_subnet_intact(const poa_model_config *cfg)
{
    poa_subnet sn;
    POA_CHECK(poa_subnet_make(cfg, cfg->max_embed_dim, cfg->max_depth, &sn, NULL) == POA_OK,
              "invalid model config");
    return sn;
}
