/* model_config.c — see model_config.h. */
#include "model/model_config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

poa_status poa_model_config_from_arch(poa_model_config *cfg, const char *arch, poa_err *err)
{
    const poa_arch_preset *a = poa_arch_preset_find(arch);
    if (!a)
        return poa_err_set(err, POA_ERR_CONFIG, "unknown model arch '%s' (valid: %s)", arch,
                           poa_arch_preset_names());
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
    for (int h = 0; h < a->n_heads; h++) cfg->head_n_prototypes[h] = a->head_n_prototypes[h];
    cfg->head_hidden_dim = a->head_hidden_dim;
    cfg->head_bottleneck_dim = a->head_bottleneck_dim;
    cfg->head_nlayers = 3;
    cfg->global_crops_size = a->global_crops_size;
    cfg->local_crops_size = a->local_crops_size;
    cfg->layerwise_decay = 0.9;
    cfg->patch_embed_lr_mult = 0.2;
    cfg->extracted = 0;
    return POA_OK;
}

poa_status poa_model_config_from_config(const poa_config *cfg, poa_model_config *mc, poa_err *err)
{
    const char *arch = poa_config_enum_text(POA_CFG_KEY_student_arch, cfg->student.arch);
    poa_status st = poa_model_config_from_arch(mc, arch, err);
    if (st != POA_OK) return st;
    /* The biases (student.*_bias) and every size are checked by the one model check
     * (common/arch.h) that poa_config_finalize ran on cfg and poa_model_config_validate runs on
     * the result. */
    /* student.* (after the preset of poa_config_finalize, docs/algorithm.md §2.1, §3.1) */
    mc->patch_size = cfg->student.patch_size;
    mc->max_embed_dim = cfg->student.max_embed_dim;
    mc->min_embed_dim = cfg->student.min_embed_dim;
    mc->max_depth = cfg->student.max_depth;
    mc->min_depth = cfg->student.min_depth;
    mc->head_dim = cfg->student.head_dim;
    mc->width_interval = cfg->student.width_interval;
    mc->depth_interval = cfg->student.depth_interval;
    mc->layerscale = (float) cfg->student.layerscale;
    /* crops.*: the position-embedding grid is the global crop's (docs/algorithm.md §2.3) */
    mc->img_size = cfg->crops.global_crops_size;
    mc->global_crops_size = cfg->crops.global_crops_size;
    mc->local_crops_size = cfg->crops.local_crops_size;
    /* dino.* heads, shared by iBOT (docs/algorithm.md §5.2, §5.3) */
    _Static_assert(POA_CFG_LIST_MAX <= POA_MODEL_MAX_HEADS, "dino.head_n_prototypes fits");
    mc->n_heads = cfg->dino.head_n_prototypes.n;
    for (int h = 0; h < mc->n_heads; h++)
        mc->head_n_prototypes[h] = cfg->dino.head_n_prototypes.v[h];
    mc->head_hidden_dim = cfg->dino.head_hidden_dim;
    mc->head_bottleneck_dim = cfg->dino.head_bottleneck_dim;
    mc->head_nlayers = cfg->dino.head_nlayers;
    /* parameter groups (docs/algorithm.md §8.2) */
    mc->layerwise_decay = cfg->optim.layerwise_decay;
    mc->patch_embed_lr_mult = cfg->optim.patch_embed_lr_mult;
    if ((st = poa_model_config_validate(mc, err)) != POA_OK)
        return poa_err_prefix(err, "model of the configuration (student.*, dino.head_*, crops.*)");
    return POA_OK;
}

static poa_arch_shape shape_of(const poa_model_config *c)
{
    return (poa_arch_shape){
        .patch_size = c->patch_size,
        .in_chans = c->in_chans,
        .mlp_ratio = c->mlp_ratio,
        .head_dim = c->head_dim,
        .min_embed_dim = c->min_embed_dim,
        .max_embed_dim = c->max_embed_dim,
        .width_interval = c->width_interval,
        .min_depth = c->min_depth,
        .max_depth = c->max_depth,
        .depth_interval = c->depth_interval,
        /* the model always has them */
        .qkv_bias = true,
        .proj_bias = true,
        .ffn_bias = true,
        .img_size = c->img_size,
        .global_crops_size = c->global_crops_size,
        .local_crops_size = c->local_crops_size,
        .n_heads = c->n_heads,
        .head_n_prototypes = c->head_n_prototypes,
        .head_hidden_dim = c->head_hidden_dim,
        .head_bottleneck_dim = c->head_bottleneck_dim,
        .head_nlayers = c->head_nlayers,
        .extracted = c->extracted != 0,
    };
}

poa_status poa_model_config_validate(const poa_model_config *c, poa_err *err)
{
    poa_arch_shape shape = shape_of(c);
    poa_arch_fault fault;
    if (!poa_arch_shape_check(&shape, &fault))
        return poa_err_set(err, POA_ERR_CONFIG, "%s", fault.msg);
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
