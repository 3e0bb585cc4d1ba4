/* model.c — the parameter table built from the X-macro lists of model.h, optimizer rules and
 * seeded initialisation. */
#include "model/model.h"
#include "common/poa_error.h"
#include "common/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------ optimizer rules (docs/algorithm.md §8.2) */

/* Layer id of the official get_vit_lr_decay_rate (force_is_backbone for the backbone module,
 * n_blocks = 0 for dino_head, which makes every head tensor's multiplier 1). */
double poa_model_lr_mult(const poa_model_config *cfg, const char *module, const char *name)
{
    int is_backbone = strcmp(module, "backbone") == 0;
    int n_layers = is_backbone ? cfg->max_depth : 0;
    int layer_id = n_layers + 1;
    if (is_backbone) {
        if (strstr(name, "pos_embed") || strstr(name, "patch_embed") ||
            strstr(name, "mask_token") || strstr(name, "cls_token"))
            layer_id = 0;
        else if (strncmp(name, "blocks.", 7) == 0)
            layer_id = atoi(name + 7) + 1;
    }
    double mult = pow(cfg->layerwise_decay, (double) (n_layers + 1 - layer_id));
    if (strstr(name, "patch_embed")) mult *= cfg->patch_embed_lr_mult;
    return mult;
}

double poa_model_wd_mult(const char *name)
{
    size_t n = strlen(name);
    int ends_bias = n >= 5 && strcmp(name + n - 5, ".bias") == 0;
    return (ends_bias || strstr(name, "norm") || strstr(name, "gamma")) ? 0.0 : 1.0;
}

/* ---------------------------------------------------------------- table */

static int resolve_shape(const poa_model_config *c, poa_shape_kind kind, int K, int64_t *s)
{
    int64_t D = c->max_embed_dim, R = (int64_t) c->mlp_ratio * D;
    int64_t hid = c->head_hidden_dim, bn = c->head_bottleneck_dim;
    switch (kind) {
    case POA_SHAPE_1_1_D:
        s[0] = 1, s[1] = 1, s[2] = D;
        return 3;
    case POA_SHAPE_1_POS_D:
        s[0] = 1, s[1] = poa_model_pos_rows(c), s[2] = D;
        return 3;
    case POA_SHAPE_1_D:
        s[0] = 1, s[1] = D;
        return 2;
    case POA_SHAPE_D_CPP:
        s[0] = D, s[1] = c->in_chans, s[2] = s[3] = c->patch_size;
        return 4;
    case POA_SHAPE_D:
        s[0] = D;
        return 1;
    case POA_SHAPE_3D:
        s[0] = 3 * D;
        return 1;
    case POA_SHAPE_3D_D:
        s[0] = 3 * D, s[1] = D;
        return 2;
    case POA_SHAPE_D_D:
        s[0] = D, s[1] = D;
        return 2;
    case POA_SHAPE_4D:
        s[0] = R;
        return 1;
    case POA_SHAPE_4D_D:
        s[0] = R, s[1] = D;
        return 2;
    case POA_SHAPE_D_4D:
        s[0] = D, s[1] = R;
        return 2;
    case POA_SHAPE_HID_D:
        s[0] = hid, s[1] = D;
        return 2;
    case POA_SHAPE_HID:
        s[0] = hid;
        return 1;
    case POA_SHAPE_HID_HID:
        s[0] = hid, s[1] = hid;
        return 2;
    case POA_SHAPE_BN_HID:
        s[0] = bn, s[1] = hid;
        return 2;
    case POA_SHAPE_BN:
        s[0] = bn;
        return 1;
    case POA_SHAPE_K_1:
        s[0] = K, s[1] = 1;
        return 2;
    case POA_SHAPE_K_BN:
        s[0] = K, s[1] = bn;
        return 2;
    }
    POA_FATAL("unknown shape kind %d", (int) kind);
}

static poa_init_rule resolve_init(const poa_model_config *c, poa_init_kind kind, double *arg)
{
    *arg = 0.0;
    switch (kind) {
    case POA_INITK_ZERO:
        return POA_INIT_ZERO;
    case POA_INITK_ONE:
        return POA_INIT_ONE;
    case POA_INITK_TRUNC02:
        *arg = 0.02;
        return POA_INIT_TRUNC_NORMAL;
    case POA_INITK_CLS:
        *arg = 1e-6;
        return POA_INIT_NORMAL;
    case POA_INITK_CONV:
        *arg = 1.0 / sqrt((double) c->in_chans * c->patch_size * c->patch_size);
        return POA_INIT_UNIFORM;
    case POA_INITK_LAYERSCALE:
        *arg = c->layerscale;
        return POA_INIT_CONST;
    case POA_INITK_LINEAR_BN:
        *arg = 1.0 / sqrt((double) c->head_bottleneck_dim);
        return POA_INIT_UNIFORM;
    }
    POA_FATAL("unknown init kind %d", (int) kind);
}

static size_t add_param(poa_model *m, const char *module, const char *name, poa_shape_kind shape,
                        poa_init_kind init, int block, int bucket, int K)
{
    const poa_model_config *c = &m->cfg;
    int64_t dims[POA_PARAM_MAX_DIMS];
    int ndim = resolve_shape(c, shape, K, dims);
    double arg;
    poa_init_rule rule = resolve_init(c, init, &arg);
    double wd = poa_model_wd_mult(name);
    unsigned flags = strcmp(module, "backbone") == 0 ? POA_PF_BACKBONE : POA_PF_HEAD;
    if (wd == 0.0) flags |= POA_PF_NO_WD;
    if (strstr(name, "last_layer")) flags |= POA_PF_LAST_LAYER;
    float lr = (float) poa_model_lr_mult(c, module, name);
    int i = poa_params_add(&m->table, module, name, ndim, dims, block, bucket, rule, arg, flags, lr,
                           (float) wd);
    return m->table.p[i].offset;
}

void poa_model_build(poa_model *m, const poa_model_config *cfg)
{
    poa_err err;
    POA_CHECK(poa_model_config_validate(cfg, &err) == POA_OK, "%s", err.msg);
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    poa_params_init(&m->table);
    const int x = cfg->extracted;
    const int L = cfg->max_depth;
    char name[POA_PARAM_NAME_MAX];

#define ADD_EMBED(field, tname, xname, shape, init)                                                \
    m->vit.field = add_param(m, "backbone", x ? xname : tname, shape, init, -1, 0, 0);
    POA_VIT_EMBED_PARAMS(ADD_EMBED)
#undef ADD_EMBED

    for (int i = 0; i < L; i++) {
#define ADD_BLOCK(field, tname, xname, shape, init)                                                \
    snprintf(name, sizeof name, "blocks.%d.%s", i, x ? xname : tname);                             \
    m->blocks[i].field = add_param(m, "backbone", name, shape, init, i, 1 + i, 0);
        POA_VIT_BLOCK_PARAMS(ADD_BLOCK)
#undef ADD_BLOCK
    }

#define ADD_NORM(field, tname, xname, shape, init)                                                 \
    m->vit.field = add_param(m, "backbone", x ? xname : tname, shape, init, -1, L + 1, 0);
    POA_VIT_NORM_PARAMS(ADD_NORM)
#undef ADD_NORM
    m->backbone_end = m->table.total;

    for (int h = 0; h < cfg->n_heads; h++) {
        int K = cfg->head_n_prototypes[h];
#define ADD_HEAD(field, tname, xname, shape, init)                                                 \
    snprintf(name, sizeof name, tname, h);                                                         \
    m->heads[h].field = add_param(m, "dino_head", name, shape, init, -1, L + 2 + h, K);
        POA_HEAD_PARAMS(ADD_HEAD)
#undef ADD_HEAD
    }
    m->n_widths = poa_model_widths(cfg, NULL, 0);
    m->n_depths = poa_model_depths(cfg, NULL, 0);
}

void poa_model_free(poa_model *m)
{
    poa_params_free(&m->table);
}

void poa_model_param_key(const poa_model *m, int i, char *buf, size_t n)
{
    const poa_param_desc *d = &m->table.p[i];
    if (m->cfg.extracted)
        snprintf(buf, n, "%s", d->name);
    else
        snprintf(buf, n, "%s.%s", d->module, d->name);
}

/* ---------------------------------------------------------------- initialisation */

/* Counter layout inside stream (seed, 0, POA_RNG_INIT): bits 40.. parameter index, bits 34..39
 * redraw attempt (truncated normal), bits 0..33 element index. */
static uint64_t init_counter(int param, int attempt, size_t e)
{
    return ((uint64_t) param << 40) | ((uint64_t) attempt << 34) | (uint64_t) e;
}

static double normal_at(uint64_t seed, uint64_t ctr)
{
    poa_philox4 r = poa_rng_block(seed, 0, POA_RNG_INIT, ctr);
    double u1 = poa_u32x2_to_unit_double(r.v[0], r.v[1]);
    double u2 = poa_u32x2_to_unit_double(r.v[2], r.v[3]);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double uniform_at(uint64_t seed, uint64_t ctr)
{
    poa_philox4 r = poa_rng_block(seed, 0, POA_RNG_INIT, ctr);
    return poa_u32x2_to_unit_double(r.v[0], r.v[1]);
}

static void init_one(const poa_param_desc *d, int index, float *dst, uint64_t seed)
{
    double a = d->init_arg;
    for (size_t e = 0; e < d->numel; e++) {
        double v = 0.0;
        switch (d->init) {
        case POA_INIT_ZERO:
            v = 0.0;
            break;
        case POA_INIT_ONE:
            v = 1.0;
            break;
        case POA_INIT_CONST:
            v = a;
            break;
        case POA_INIT_NORMAL:
            v = a * normal_at(seed, init_counter(index, 0, e));
            break;
        case POA_INIT_UNIFORM:
            v = a * (2.0 * uniform_at(seed, init_counter(index, 0, e)) - 1.0);
            break;
        case POA_INIT_TRUNC_NORMAL:
            /* N(0, a²) truncated at the absolute bounds ±2 (docs/algorithm.md §2.7), by
             * redrawing. */
            for (int attempt = 0;; attempt++) {
                POA_CHECK(attempt < 64, "truncated normal of %s: no value in [-2, 2]", d->name);
                v = a * normal_at(seed, init_counter(index, attempt, e));
                if (v >= -2.0 && v <= 2.0) break;
            }
            break;
        }
        dst[e] = (float) v;
    }
}

void poa_model_init_params_host(const poa_model *m, float *host, uint64_t seed)
{
    memset(host, 0, m->table.total * sizeof(float));
    for (int i = 0; i < m->table.n; i++)
        init_one(&m->table.p[i], i, host + m->table.p[i].offset, seed);
}

void poa_model_init_params(poa_backend *be, const poa_model *m, float *params, uint64_t seed)
{
    size_t max_numel = 0;
    for (int i = 0; i < m->table.n; i++)
        if (m->table.p[i].numel > max_numel) max_numel = m->table.p[i].numel;
    float *stage = poa_xmalloc(max_numel * sizeof(float));
    be->iface->zero(be, params, m->table.total * sizeof(float));
    for (int i = 0; i < m->table.n; i++) {
        const poa_param_desc *d = &m->table.p[i];
        init_one(d, i, stage, seed);
        be->iface->upload(be, params + d->offset, stage, d->numel * sizeof(float));
    }
    free(stage);
}
