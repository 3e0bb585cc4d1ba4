/* trainer_config.c — see trainer_config.h. */
#include "train/trainer_config.h"
#include "data/mask.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

poa_status poa_trainer_check_supported(const poa_config *cfg, int backend_kind, poa_err *err)
{
    if (cfg->train.centering != POA_CENTERING_SINKHORN_KNOPP)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "train.centering = centering (softmax centering) is not implemented by "
                           "poa-train; use sinkhorn_knopp (the POA recipe, "
                           "docs/algorithm.md §6.2)");
    int dt = cfg->compute_precision.compute_dtype;
    if (dt == POA_DTYPE_FP16)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "compute_precision.compute_dtype = fp16 is not supported: poa computes "
                           "in bf16 (fp32's exponent range, so no loss scaling is needed) or "
                           "fp32; use auto, bf16 or fp32");
    if (backend_kind == POA_BACKEND_CPU && dt == POA_DTYPE_BF16)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "compute_precision.compute_dtype = bf16: the CPU backend computes in "
                           "fp32 only; use fp32 or auto");
    if (cfg->student.pretrained_weights[0])
        return poa_err_set(err, POA_ERR_CONFIG,
                           "student.pretrained_weights is not supported by poa-train; use "
                           "MODEL.WEIGHTS (a poa checkpoint) to initialise a run");
    if (cfg->MODEL.WEIGHTS[0])
        return poa_err_set(err, POA_ERR_CONFIG,
                           "MODEL.WEIGHTS (initial weights of a new run) is not implemented by "
                           "poa-train yet; leave it empty");
    if (cfg->train.rank_groups > POA_STEP_MAX_GROUPS)
        return poa_err_set(err, POA_ERR_CONFIG, "train.rank_groups = %d: at most %d per rank",
                           cfg->train.rank_groups, POA_STEP_MAX_GROUPS);
    return POA_OK;
}

poa_dtype poa_trainer_compute_dtype(const poa_config *cfg, int backend_kind)
{
    switch (cfg->compute_precision.compute_dtype) {
    case POA_DTYPE_FP32:
        return POA_DT_F32;
    case POA_DTYPE_BF16:
        return POA_DT_BF16;
    default: /* auto */
        return backend_kind == POA_BACKEND_CUDA ? POA_DT_BF16 : POA_DT_F32;
    }
}

/* The stratified iBOT masks (docs/algorithm.md §9.2; src/data/mask.h and the synthetic source):
 * int(2B·p) crops are masked, crop k with at most int(N·r_{k+1}) patches for the ratios
 * r = linspace(r_min, r_max, n + 1) — the official "upperbound".  Each crop's bound is taken from
 * the float32 linspace the loader uses and the double one of the synthetic source, whichever is
 * larger, plus one patch for rounding; the step checks every batch against it. */
int poa_trainer_max_masked(const poa_config *cfg, int n_patches)
{
    const int B = cfg->train.batch_size_per_gpu;
    const long long all = 2LL * B * n_patches;
    const int n = (int) (2 * B * cfg->ibot.mask_sample_probability);
    const double lo = cfg->ibot.mask_ratio_min_max.v[0], hi = cfg->ibot.mask_ratio_min_max.v[1];
    long long bound = 0;
    for (int k = 0; k < n; k++) {
        double r = (double) poa_linspace_f32(lo, hi, n + 1, k + 1);
        const double r_synth = lo + (hi - lo) * (k + 1) / n;
        if (r_synth > r) r = r_synth;
        bound += (long long) ((double) n_patches * r) + 1;
    }
    return (int) (bound < all ? bound : all);
}

poa_status poa_trainer_step_config(const poa_config *cfg, const poa_model *m, int rank,
                                   int world_size, poa_step_config *sc, poa_err *err)
{
    const int B = cfg->train.batch_size_per_gpu, G = cfg->train.rank_groups;
    const int V = cfg->crops.local_crops_number;
    if (B < 2)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "train.batch_size_per_gpu = %d: KoLeo needs at least 2 images per rank "
                           "group (docs/algorithm.md §6.7)",
                           B);
    if (world_size < 1 || rank < 0 || rank >= world_size)
        return poa_err_set(err, POA_ERR_ARG, "rank %d of %d", rank, world_size);
    *sc = poa_step_config_official(m, B, G, V);
    sc->first_group = (uint32_t) rank * (uint32_t) G;
    sc->max_masked = poa_trainer_max_masked(
        cfg, poa_model_n_patches(&m->cfg, m->cfg.global_crops_size, m->cfg.global_crops_size));
    sc->drop_path_rate = cfg->student.drop_path_rate;
    sc->drop_path_bernoulli = poa_trainer_drop_path_bernoulli(cfg);
    sc->net_select_scale = cfg->student.net_select_scale;
    sc->seed = (uint64_t) cfg->train.seed;
    /* losses (docs/algorithm.md §6.3–6.9) */
    sc->loss.lambda_ie = (float) cfg->dino.lambda_ie;
    sc->loss.dino_weight = (float) cfg->dino.loss_weight;
    sc->loss.koleo_weight = (float) cfg->dino.koleo_loss_weight;
    sc->loss.ibot_weight = (float) cfg->ibot.loss_weight;
    /* AdamW and clipping (docs/algorithm.md §8.1, §8.3) */
    sc->beta1 = cfg->optim.adamw_beta1;
    sc->beta2 = cfg->optim.adamw_beta2;
    sc->eps = 1e-8;
    sc->clip_grad = cfg->optim.clip_grad;
    /* schedules (docs/algorithm.md §8.4) */
    poa_schedule_hparams *h = &sc->sched;
    h->epoch_length = cfg->train.OFFICIAL_EPOCH_LENGTH;
    h->epochs = cfg->optim.epochs;
    h->lr = cfg->optim.lr;
    h->min_lr = cfg->optim.min_lr;
    h->warmup_epochs = cfg->optim.warmup_epochs;
    h->weight_decay = cfg->optim.weight_decay;
    h->weight_decay_end = cfg->optim.weight_decay_end;
    h->momentum_teacher = cfg->teacher.momentum_teacher;
    h->final_momentum_teacher = cfg->teacher.final_momentum_teacher;
    h->warmup_teacher_temp = cfg->teacher.warmup_teacher_temp;
    h->teacher_temp = cfg->teacher.teacher_temp;
    h->warmup_teacher_temp_epochs = cfg->teacher.warmup_teacher_temp_epochs;
    h->freeze_last_layer_epochs = cfg->optim.freeze_last_layer_epochs;
    h->ibot_activate_epochs = cfg->optim.ibot_activate_epochs;
    h->iter_num_scale = cfg->optim.iter_num_scale;
    return POA_OK;
}

long long poa_trainer_total_iterations(const poa_config *cfg)
{
    return (long long) cfg->optim.epochs * cfg->train.OFFICIAL_EPOCH_LENGTH;
}

int poa_trainer_is_checkpoint_iteration(const poa_config *cfg, long long it)
{
    long long period = cfg->train.checkpoint_period_iterations;
    if (it + 1 >= poa_trainer_total_iterations(cfg)) return 1;
    return period > 0 && (it + 1) % period == 0;
}

int poa_trainer_is_eval_iteration(const poa_config *cfg, long long it)
{
    long long period = cfg->evaluation.eval_period_iterations;
    return period > 0 && (it + 1) % period == 0;
}

int poa_trainer_drop_path_bernoulli(const poa_config *cfg)
{
    const int mode = cfg->train.drop_path_mode;
    if (mode == POA_DROP_PATH_AUTO) return cfg->student.drop_path_rate <= 0.1;
    return mode == POA_DROP_PATH_BERNOULLI;
}
