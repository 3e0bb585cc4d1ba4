/* extract.c — standalone sub-network extraction (docs/algorithm.md §10).  See extract.h. */
#include "model/extract.h"
#include "common/poa_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

poa_status poa_extract_config(const poa_model_config *cfg, int width, int depth,
                              poa_model_config *out, poa_err *err)
{
    poa_subnet sn;
    poa_status s = poa_subnet_make(cfg, width, depth, &sn, err);
    if (s != POA_OK) return s;
    *out = *cfg;
    out->max_embed_dim = out->min_embed_dim = width;
    out->max_depth = out->min_depth = depth;
    out->n_heads = 0;
    out->extracted = 1;
    return poa_model_config_validate(out, err);
}

poa_status poa_extract_config_of_shape(const poa_vit_shape *s, poa_model_config *out, poa_err *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->arch, sizeof out->arch, "extracted");
    out->img_size = out->global_crops_size = out->local_crops_size = s->img_size;
    out->patch_size = s->patch_size;
    out->in_chans = s->in_chans;
    out->max_embed_dim = out->min_embed_dim = s->width;
    out->max_depth = out->min_depth = s->depth;
    out->head_dim = s->head_dim;
    out->width_interval = out->depth_interval = 1;
    out->mlp_ratio = s->mlp_ratio;
    out->layerscale = 1.0f; /* an initial value only: the weights carry the trained gammas */
    out->ln_eps = s->ln_eps;
    out->head_nlayers = 3;
    out->layerwise_decay = 1.0;
    out->patch_embed_lr_mult = 1.0;
    out->extracted = 1;
    return poa_model_config_validate(out, err);
}

/* Slice of one tensor kind for width d (docs/algorithm.md §3.2 table). */
static poa_extract_map slice_of(const poa_model_config *c, poa_shape_kind kind, int d, float alpha)
{
    const int D = c->max_embed_dim, r = c->mlp_ratio;
    const int cpp = c->in_chans * c->patch_size * c->patch_size;
    poa_extract_map s = {0, 0, 1, 0, 1, d, D, 1.0f};
    switch (kind) {
    case POA_SHAPE_1_1_D:
    case POA_SHAPE_1_D:
    case POA_SHAPE_D:
        break; /* [:d]              */
    case POA_SHAPE_1_POS_D:
        s.rows = poa_model_pos_rows(c);
        break; /* [..., :d]         */
    case POA_SHAPE_D_CPP:
        s.rows = d, s.cols = cpp, s.ld_src = cpp;
        break;
    case POA_SHAPE_3D:
        s.groups = 3, s.group_stride = (size_t) D;
        break;
    case POA_SHAPE_3D_D:
        s.groups = 3, s.group_stride = (size_t) D * D, s.rows = d, s.scale = alpha;
        break;
    case POA_SHAPE_D_D:
        s.rows = d, s.scale = alpha;
        break;
    case POA_SHAPE_4D:
        s.cols = r * d;
        break;
    case POA_SHAPE_4D_D:
        s.rows = r * d, s.scale = alpha;
        break;
    case POA_SHAPE_D_4D:
        s.rows = d, s.cols = r * d, s.ld_src = r * D, s.scale = alpha;
        break;
    default:
        POA_FATAL("shape kind %d has no extraction rule", (int) kind);
    }
    return s;
}

int poa_extract_maps(const poa_model *m, const poa_model *out, const poa_subnet *sn,
                     poa_extract_map *maps, int cap)
{
    const poa_model_config *c = &m->cfg;
    const int d = sn->width;
    const float alpha = (float) ((double) c->max_embed_dim / (double) d);
    int n = 0;
#define MAP(src_off, dst_off, kind)                                                                \
    do {                                                                                           \
        POA_CHECK(n < cap, "extraction maps: capacity %d", cap);                                   \
        maps[n] = slice_of(c, kind, d, alpha);                                                     \
        maps[n].src = (src_off);                                                                   \
        maps[n].dst = (dst_off);                                                                   \
        n++;                                                                                       \
    } while (0)
#define MAP_VIT(field, tname, xname, shape, init) MAP(m->vit.field, out->vit.field, shape);
    POA_VIT_EMBED_PARAMS(MAP_VIT)
    for (int j = 0; j < sn->depth; j++) {
        const poa_block_offsets *src = &m->blocks[sn->blocks[j]], *dst = &out->blocks[j];
#define MAP_BLOCK(field, tname, xname, shape, init) MAP(src->field, dst->field, shape);
        POA_VIT_BLOCK_PARAMS(MAP_BLOCK)
#undef MAP_BLOCK
    }
    POA_VIT_NORM_PARAMS(MAP_VIT)
#undef MAP_VIT
#undef MAP
    POA_CHECK(n == out->table.n, "extraction maps %d tensors, the standalone table has %d", n,
              out->table.n);
    return n;
}

poa_status poa_extract_subnet(const poa_model *m, const float *src_host, int width, int depth,
                              poa_model *out, float **out_host, poa_err *err)
{
    poa_model_config oc;
    poa_status s = poa_extract_config(&m->cfg, width, depth, &oc, err);
    if (s != POA_OK) return s;
    poa_subnet sn;
    poa_subnet_make(&m->cfg, width, depth, &sn, NULL);
    poa_model_build(out, &oc);
    poa_extract_map *maps = poa_xmalloc((size_t) out->table.n * sizeof *maps);
    int n = poa_extract_maps(m, out, &sn, maps, out->table.n);
    float *dst = poa_xcalloc(out->table.total, sizeof(float));
    for (int i = 0; i < n; i++) {
        const poa_extract_map *mp = &maps[i];
        float *o = dst + mp->dst;
        for (int g = 0; g < mp->groups; g++)
            for (int r = 0; r < mp->rows; r++) {
                const float *row =
                    src_host + mp->src + g * mp->group_stride + (size_t) r * mp->ld_src;
                for (int col = 0; col < mp->cols; col++) *o++ = row[col] * mp->scale;
            }
    }
    free(maps);
    *out_host = dst;
    return POA_OK;
}
