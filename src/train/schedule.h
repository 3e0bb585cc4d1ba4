/* schedule.h — per-iteration schedules of the optimizer and the teacher (docs/algorithm.md §8.4),
 * as the official CosineScheduler lays them out (numpy float64 arithmetic reproduced exactly).
 *
 * Cos(base, final, total, warmup, start, scale): for it < warmup the linear warm-up
 * numpy.linspace(start, base, warmup)[it]; for warmup ≤ it < total the cosine
 *   final + 0.5·(base − final)·(1 + cos(π·(it − warmup)/Hc)),  Hc = int(total/scale) − warmup
 * (laid out for total/scale iterations and cut at total: optim.iter_num_scale); final from
 * total on.
 */
#ifndef POA_TRAIN_SCHEDULE_H
#define POA_TRAIN_SCHEDULE_H

typedef struct poa_cosine_schedule {
    double base, final, start_warmup;
    long long total, warmup, cos_len; /* cos_len = Hc */
} poa_cosine_schedule;

/* Fatal unless 0.7 ≤ iter_num_scale ≤ 1 (the official assertion) and 0 ≤ warmup ≤ total. */
void poa_cosine_schedule_init(poa_cosine_schedule *s, double base, double final, long long total,
                              long long warmup, double start_warmup, double iter_num_scale);
double poa_cosine_schedule_at(const poa_cosine_schedule *s, long long it);

/* The optimizer/teacher hyper-parameters the schedules are built from (official key names). */
typedef struct poa_schedule_hparams {
    long long epoch_length;               /* train.OFFICIAL_EPOCH_LENGTH (800)                 */
    long long epochs;                     /* optim.epochs (346)                                */
    double lr;                            /* optim.lr after the scaling rule (5e-3)            */
    double min_lr;                        /* optim.min_lr (2e-5)                               */
    long long warmup_epochs;              /* optim.warmup_epochs (10)                          */
    double weight_decay;                  /* optim.weight_decay (0.04)                         */
    double weight_decay_end;              /* optim.weight_decay_end (0.4)                      */
    double momentum_teacher;              /* teacher.momentum_teacher (0.992)                  */
    double final_momentum_teacher;        /* teacher.final_momentum_teacher (0.9999)           */
    double warmup_teacher_temp;           /* teacher.warmup_teacher_temp (0.04)                */
    double teacher_temp;                  /* teacher.teacher_temp (0.07)                       */
    long long warmup_teacher_temp_epochs; /* teacher.warmup_teacher_temp_epochs (30)      */
    long long freeze_last_layer_epochs;   /* optim.freeze_last_layer_epochs (1)           */
    long long ibot_activate_epochs;       /* optim.ibot_activate_epochs (30)                   */
    double iter_num_scale;                /* optim.iter_num_scale (0.78)                       */
} poa_schedule_hparams;

/* The official ViT-L recipe (vit_ssl_default_config.yaml + vit_ee1200.yaml, lr for 1600 images). */
poa_schedule_hparams poa_schedule_hparams_official(void);

typedef struct poa_schedules {
    poa_cosine_schedule lr, wd, momentum, teacher_temp;
    long long freeze_last_layer_iters, ibot_start_iter;
} poa_schedules;

/* Values of one iteration. */
typedef struct poa_schedule_values {
    double lr, last_layer_lr, wd, momentum, teacher_temp;
    int ibot_active; /* it ≥ optim.ibot_activate_epochs · epoch_length */
} poa_schedule_values;

void poa_schedules_init(poa_schedules *s, const poa_schedule_hparams *h);
poa_schedule_values poa_schedules_at(const poa_schedules *s, long long it);

/* optim.lr from optim.base_lr and the global batch (optim.scaling_rule, docs/algorithm.md §8.4):
 * "sqrt_wrt_1024": base·sqrt(B/1024); "linear_wrt_1024": base·B/1024; "none": base. */
double poa_scaled_lr(double base_lr, const char *rule, long long global_batch);

#endif
