/* schedule.c — see schedule.h.  Every expression keeps numpy's evaluation order so that the
 * float64 values match the official schedules bit for bit. */
#include "train/schedule.h"
#include "common/poa_error.h"

#include <math.h>
#include <string.h>

void poa_cosine_schedule_init(poa_cosine_schedule *s, double base, double final, long long total,
                              long long warmup, double start_warmup, double iter_num_scale)
{
    POA_CHECK(iter_num_scale >= 0.7 && iter_num_scale <= 1.0,
              "optim.iter_num_scale = %g: must lie in [0.7, 1]", iter_num_scale);
    POA_CHECK(warmup >= 0 && warmup <= total, "schedule: warm-up %lld outside [0, %lld]", warmup,
              total);
    s->base = base;
    s->final = final;
    s->start_warmup = start_warmup;
    s->total = total;
    s->warmup = warmup;
    /* np.arange(int(total_iters / iter_num_scale) - warmup_iters - freeze_iters) */
    s->cos_len = (long long) ((double) total / iter_num_scale) - warmup;
}

/* numpy.linspace(start, stop, num)[i]: i·step + start, step = (stop − start)/(num − 1), the last
 * value forced to stop; a single value is start. */
static double linspace_at(double start, double stop, long long num, long long i)
{
    if (num == 1) return start;
    if (i == num - 1) return stop;
    double step = (stop - start) / (double) (num - 1);
    return (double) i * step + start;
}

double poa_cosine_schedule_at(const poa_cosine_schedule *s, long long it)
{
    POA_ASSERT(it >= 0);
    if (it >= s->total) return s->final;
    if (it < s->warmup) return linspace_at(s->start_warmup, s->base, s->warmup, it);
    double i = (double) (it - s->warmup);
    return s->final + 0.5 * (s->base - s->final) * (1 + cos(M_PI * i / (double) s->cos_len));
}

poa_schedule_hparams poa_schedule_hparams_official(void)
{
    poa_schedule_hparams h = {
        .epoch_length = 800,
        .epochs = 346,
        .lr = 0.004 * sqrt(1600 / 1024.0),
        .min_lr = 2e-5,
        .warmup_epochs = 10,
        .weight_decay = 0.04,
        .weight_decay_end = 0.4,
        .momentum_teacher = 0.992,
        .final_momentum_teacher = 0.9999,
        .warmup_teacher_temp = 0.04,
        .teacher_temp = 0.07,
        .warmup_teacher_temp_epochs = 30,
        .freeze_last_layer_epochs = 1,
        .ibot_activate_epochs = 30,
        .iter_num_scale = 0.78,
    };
    return h;
}

/* As train.py's build_schedulers: the τ_t schedule is a pure warm-up (total = warm-up), so
 * iter_num_scale has no effect on it. */
void poa_schedules_init(poa_schedules *s, const poa_schedule_hparams *h)
{
    long long I = h->epoch_length, T = h->epochs * I;
    poa_cosine_schedule_init(&s->lr, h->lr, h->min_lr, T, h->warmup_epochs * I, 0,
                             h->iter_num_scale);
    poa_cosine_schedule_init(&s->wd, h->weight_decay, h->weight_decay_end, T, 0, 0,
                             h->iter_num_scale);
    poa_cosine_schedule_init(&s->momentum, h->momentum_teacher, h->final_momentum_teacher, T, 0, 0,
                             h->iter_num_scale);
    long long tw = h->warmup_teacher_temp_epochs * I;
    poa_cosine_schedule_init(&s->teacher_temp, h->teacher_temp, h->teacher_temp, tw, tw,
                             h->warmup_teacher_temp, h->iter_num_scale);
    s->freeze_last_layer_iters = h->freeze_last_layer_epochs * I;
    s->ibot_start_iter = h->ibot_activate_epochs * I;
}

poa_schedule_values poa_schedules_at(const poa_schedules *s, long long it)
{
    poa_schedule_values v;
    v.lr = poa_cosine_schedule_at(&s->lr, it);
    /* last_layer_lr_schedule.schedule[:freeze_last_layer_epochs · I] = 0 */
    v.last_layer_lr = it < s->freeze_last_layer_iters && it < s->lr.total ? 0.0 : v.lr;
    v.wd = poa_cosine_schedule_at(&s->wd, it);
    v.momentum = poa_cosine_schedule_at(&s->momentum, it);
    v.teacher_temp = poa_cosine_schedule_at(&s->teacher_temp, it);
    v.ibot_active = it >= s->ibot_start_iter;
    return v;
}

double poa_scaled_lr(double base_lr, const char *rule, long long global_batch)
{
    if (strcmp(rule, "sqrt_wrt_1024") == 0) return base_lr * sqrt(global_batch / 1024.0);
    if (strcmp(rule, "linear_wrt_1024") == 0) return base_lr * global_batch / 1024.0;
    POA_CHECK(strcmp(rule, "none") == 0, "unknown optim.scaling_rule '%s'", rule);
    return base_lr;
}
