/* config_validate.c — finalize (the student.arch preset, derived values) and the checks: every
 * value in its key's range, then the cross-key rules, each error citing where the values came
 * from. */
#include "common/arch.h"
#include "common/config_internal.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

long long poa_config_global_batch(const poa_config *cfg, int world_size)
{
    return (long long) cfg->train.batch_size_per_gpu * cfg->train.rank_groups *
           (world_size > 0 ? world_size : 1);
}

long long poa_config_total_iterations(const poa_config *cfg)
{
    return (long long) cfg->optim.epochs * cfg->train.OFFICIAL_EPOCH_LENGTH;
}

static void preset_key(poa_config *cfg, poa_cfg_key_id id, int *field, int value)
{
    if (cfg->origin[id].source != POA_CFG_SRC_DEFAULT &&
        cfg->origin[id].source != POA_CFG_SRC_PRESET)
        return; /* set explicitly: the explicit value wins */
    *field = value;
    cfg->origin[id].source = POA_CFG_SRC_PRESET;
}

/* The backbone sizes of the student.arch preset (common/arch.h) into the keys still at their
 * default.  vit_dynamic is the official name of the elastic ViT-L whose sizes are the keys'
 * defaults: they stay "default". */
static void apply_arch_preset(poa_config *cfg)
{
    if (cfg->student.arch == POA_ARCH_VIT_DYNAMIC) return;
    const poa_arch_preset *p =
        poa_arch_preset_find(poa_config_enum_text(POA_CFG_KEY_student_arch, cfg->student.arch));
    if (!p) return;
    preset_key(cfg, POA_CFG_KEY_student_min_embed_dim, &cfg->student.min_embed_dim,
               p->min_embed_dim);
    preset_key(cfg, POA_CFG_KEY_student_max_embed_dim, &cfg->student.max_embed_dim,
               p->max_embed_dim);
    preset_key(cfg, POA_CFG_KEY_student_min_depth, &cfg->student.min_depth, p->min_depth);
    preset_key(cfg, POA_CFG_KEY_student_max_depth, &cfg->student.max_depth, p->max_depth);
    preset_key(cfg, POA_CFG_KEY_student_head_dim, &cfg->student.head_dim, p->head_dim);
    preset_key(cfg, POA_CFG_KEY_student_patch_size, &cfg->student.patch_size, p->patch_size);
}

static void derive(poa_config *cfg, poa_cfg_key_id id)
{
    cfg->origin[id] = (poa_cfg_origin){.source = POA_CFG_SRC_DERIVED};
}

poa_status poa_config_finalize(poa_config *cfg, int world_size, poa_err *err)
{
    if (world_size < 1) return poa_err_set(err, POA_ERR_ARG, "world size %d < 1", world_size);
    cfg->world_size = world_size;
    apply_arch_preset(cfg);
    /* optim.lr is always recomputed, as the official apply_scaling_rules_to_cfg does. */
    double batch = (double) poa_config_global_batch(cfg, world_size);
    double factor = cfg->optim.scaling_rule == POA_LR_SCALING_SQRT_WRT_1024 ? sqrt(batch / 1024.0)
                    : cfg->optim.scaling_rule == POA_LR_SCALING_LINEAR_WRT_1024 ? batch / 1024.0
                                                                                : 1.0;
    cfg->optim.lr = cfg->optim.base_lr * factor;
    derive(cfg, POA_CFG_KEY_optim_lr);
    if (cfg->train.checkpoint_period_iterations == 0) {
        /* official PeriodicCheckpointer period: 3 epochs */
        long long period = 3LL * cfg->train.OFFICIAL_EPOCH_LENGTH;
        cfg->train.checkpoint_period_iterations = period > INT_MAX ? INT_MAX : (int) period;
        derive(cfg, POA_CFG_KEY_train_checkpoint_period_iterations);
    }
    if (cfg->train.data_threads == 0) {
        cfg->train.data_threads = cfg->train.num_workers > 0 ? cfg->train.num_workers : 1;
        derive(cfg, POA_CFG_KEY_train_data_threads);
    }
    return poa_config_validate(cfg, err);
}

/* ---- validation ---- */

static const char *origin_text(const poa_config *cfg, poa_cfg_key_id id, char *buf, size_t len)
{
    return poa_config_format_origin(cfg, id, buf, len);
}

/* How specific an origin is: a file line beats the command line beats the rest. */
static int origin_rank(poa_cfg_source s)
{
    return s == POA_CFG_SRC_FILE ? 3 : s == POA_CFG_SRC_CLI ? 2 : s == POA_CFG_SRC_DEFAULT ? 0 : 1;
}

/* A broken rule between keys a and (optionally) b: "<most specific origin>: msg (a: origin;
 * b: origin)", so the message starts with the place the user most likely has to edit. */
static poa_status rule_error(const poa_config *cfg, poa_cfg_key_id a, poa_cfg_key_id b,
                             poa_err *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static poa_status rule_error(const poa_config *cfg, poa_cfg_key_id a, poa_cfg_key_id b,
                             poa_err *err, const char *fmt, ...)
{
    char msg[600], oa[POA_CFG_STR_MAX + 32], ob[POA_CFG_STR_MAX + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    origin_text(cfg, a, oa, sizeof oa);
    if ((int) b < 0 || b == a) return poa_err_set(err, POA_ERR_CONFIG, "%s: %s", oa, msg);
    origin_text(cfg, b, ob, sizeof ob);
    bool b_first = origin_rank(cfg->origin[b].source) > origin_rank(cfg->origin[a].source);
    return poa_err_set(err, POA_ERR_CONFIG, "%s: %s (%s: %s; %s: %s)", b_first ? ob : oa, msg,
                       poa_cfg_key_table[a].name, oa, poa_cfg_key_table[b].name, ob);
}

#define NOKEY ((poa_cfg_key_id) -1)

/* Every value within its key's range (values set through the API are checked here too). */
static poa_status validate_ranges(const poa_config *cfg, poa_err *err)
{
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        const poa_cfg_key *k = &poa_cfg_key_table[i];
        const void *v = poa_config_value_cptr(cfg, k);
        char text[POA_CFG_VALUE_TEXT_MAX];
        poa_config_format_value(cfg, k, text, sizeof text);
        bool bad = false;
        switch (k->type) {
        case POA_CFG_TYPE_INT:
            bad = *(const int *) v < k->min || *(const int *) v > k->max;
            break;
        case POA_CFG_TYPE_FLOAT:
            bad = !(*(const double *) v >= k->min && *(const double *) v <= k->max);
            break;
        case POA_CFG_TYPE_ENUM:
            bad = *(const int *) v < 0 || *(const int *) v >= k->n_choices;
            break;
        case POA_CFG_TYPE_INT_LIST: {
            const poa_cfg_int_list *l = v;
            bad = l->n < k->min_len || l->n > k->max_len;
            for (int j = 0; !bad && j < l->n; j++) bad = l->v[j] < k->min || l->v[j] > k->max;
            break;
        }
        case POA_CFG_TYPE_FLOAT_LIST: {
            const poa_cfg_float_list *l = v;
            bad = l->n < k->min_len || l->n > k->max_len;
            for (int j = 0; !bad && j < l->n; j++) bad = !(l->v[j] >= k->min && l->v[j] <= k->max);
            break;
        }
        default:
            break;
        }
        if (bad) {
            char r[128];
            poa_cfg_format_range(k, r, sizeof r);
            return rule_error(cfg, (poa_cfg_key_id) i, NOKEY, err, "%s = %s is out of range %s",
                              k->name, text, r);
        }
    }
    return POA_OK;
}

/* The model's shape as the configuration describes it (what poa-train builds from it). */
static poa_arch_shape arch_shape(const poa_config *cfg)
{
    const typeof(cfg->student) *s = &cfg->student;
    return (poa_arch_shape){
        .patch_size = s->patch_size,
        .in_chans = 3,
        .mlp_ratio = 4,
        .head_dim = s->head_dim,
        .min_embed_dim = s->min_embed_dim,
        .max_embed_dim = s->max_embed_dim,
        .width_interval = s->width_interval,
        .min_depth = s->min_depth,
        .max_depth = s->max_depth,
        .depth_interval = s->depth_interval,
        .qkv_bias = s->qkv_bias,
        .proj_bias = s->proj_bias,
        .ffn_bias = s->ffn_bias,
        .img_size = cfg->crops.global_crops_size,
        .global_crops_size = cfg->crops.global_crops_size,
        .local_crops_size = cfg->crops.local_crops_size,
        .n_heads = cfg->dino.head_n_prototypes.n,
        .head_n_prototypes = cfg->dino.head_n_prototypes.v,
        .head_hidden_dim = cfg->dino.head_hidden_dim,
        .head_bottleneck_dim = cfg->dino.head_bottleneck_dim,
        .head_nlayers = cfg->dino.head_nlayers,
        .extracted = false,
    };
}

static poa_cfg_key_id key_id_of(const char *name)
{
    const poa_cfg_key *k = name ? poa_config_find_key(name) : NULL;
    return k ? poa_cfg_key_index(k) : NOKEY;
}

/* The one model check (common/arch.h), citing the origins of the keys at fault. */
static poa_status validate_model(const poa_config *cfg, poa_err *err)
{
    poa_arch_shape shape = arch_shape(cfg);
    poa_arch_fault fault;
    if (!poa_arch_shape_check(&shape, &fault)) {
        poa_cfg_key_id a = key_id_of(fault.key), b = key_id_of(fault.other);
        if (a == NOKEY) return poa_err_set(err, POA_ERR_CONFIG, "%s", fault.msg);
        return rule_error(cfg, a, b, err, "%s", fault.msg);
    }
    if (!cfg->student.drop_path_uniform)
        return rule_error(cfg, POA_CFG_KEY_student_drop_path_uniform, NOKEY, err,
                          "student.drop_path_uniform = false is not supported (POA uses true)");
    return POA_OK;
}

static poa_status validate_crops(const poa_config *cfg, poa_err *err)
{
    /* the crops are whole patches: checked with the model (validate_model) */
    int p = cfg->student.patch_size;
    if ((cfg->crops.global_crops_size / p) % cfg->train.scale_for_num_patch)
        return rule_error(cfg, POA_CFG_KEY_train_scale_for_num_patch,
                          POA_CFG_KEY_crops_global_crops_size, err,
                          "the global patch grid %d is not a multiple of train.scale_for_num_patch "
                          "= %d",
                          cfg->crops.global_crops_size / p, cfg->train.scale_for_num_patch);
    static const struct {
        poa_cfg_key_id id;
        bool positive; /* the lower bound must be > 0 */
    } ranges[] = {{POA_CFG_KEY_crops_global_crops_scale, true},
                  {POA_CFG_KEY_crops_local_crops_scale, true},
                  {POA_CFG_KEY_ibot_mask_ratio_min_max, false}};
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
        const poa_cfg_float_list *l = poa_config_value_cptr(cfg, &poa_cfg_key_table[ranges[i].id]);
        if (l->v[0] > l->v[1] || (ranges[i].positive && l->v[0] <= 0))
            return rule_error(cfg, ranges[i].id, NOKEY, err,
                              "%s = [%g, %g] must be [min, max] with %smin <= max",
                              poa_cfg_key_table[ranges[i].id].name, l->v[0], l->v[1],
                              ranges[i].positive ? "0 < " : "");
    }
    return POA_OK;
}

static poa_status validate_training(const poa_config *cfg, poa_err *err)
{
    if (cfg->ibot.separate_head)
        return rule_error(cfg, POA_CFG_KEY_ibot_separate_head, NOKEY, err,
                          "ibot.separate_head = true is not supported (POA shares the DINO heads)");
    if (cfg->optim.warmup_epochs > cfg->optim.epochs)
        return rule_error(cfg, POA_CFG_KEY_optim_warmup_epochs, POA_CFG_KEY_optim_epochs, err,
                          "optim.warmup_epochs = %d exceeds optim.epochs = %d",
                          cfg->optim.warmup_epochs, cfg->optim.epochs);
    if (poa_config_total_iterations(cfg) > INT_MAX)
        return rule_error(
            cfg, POA_CFG_KEY_optim_epochs, POA_CFG_KEY_train_OFFICIAL_EPOCH_LENGTH, err,
            "optim.epochs x train.OFFICIAL_EPOCH_LENGTH = %lld iterations is too many",
            poa_config_total_iterations(cfg));
    if (cfg->dino.loss_weight > 0 && cfg->dino.koleo_loss_weight > 0 &&
        cfg->train.batch_size_per_gpu < 2)
        return rule_error(cfg, POA_CFG_KEY_train_batch_size_per_gpu,
                          POA_CFG_KEY_dino_koleo_loss_weight, err,
                          "KoLeo needs train.batch_size_per_gpu >= 2 (nearest neighbour within the "
                          "rank group)");
    if (cfg->ibot.loss_weight > 0 &&
        (cfg->ibot.mask_sample_probability <= 0 || cfg->ibot.mask_ratio_min_max.v[1] <= 0))
        return rule_error(cfg, POA_CFG_KEY_ibot_mask_sample_probability,
                          POA_CFG_KEY_ibot_loss_weight, err,
                          "the iBOT loss needs ibot.mask_sample_probability > 0 and a positive "
                          "maximum in ibot.mask_ratio_min_max");
    return POA_OK;
}

poa_status poa_config_validate(const poa_config *cfg, poa_err *err)
{
    poa_status st;
    if ((st = validate_ranges(cfg, err)) != POA_OK) return st;
    if ((st = validate_model(cfg, err)) != POA_OK) return st;
    if ((st = validate_crops(cfg, err)) != POA_OK) return st;
    return validate_training(cfg, err);
}
