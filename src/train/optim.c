/* optim.c — see optim.h. */
#include "train/optim.h"
#include "common/poa_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int clip_group_of(const poa_param_desc *d)
{
    POA_CHECK(!!(d->flags & POA_PF_HEAD) != !!(d->flags & POA_PF_BACKBONE),
              "parameter %s must be either backbone or head", d->name);
    return (d->flags & POA_PF_HEAD) ? POA_CLIP_HEAD : POA_CLIP_BACKBONE;
}

/* Each clip group must be one contiguous range of the flat buffer (model.h: backbone first,
 * then dino_head) so that its norm is a single reduction. */
static void find_group_ranges(poa_optim *o)
{
    for (int g = 0; g < POA_N_CLIP_GROUPS; g++)
        o->group_begin[g] = (size_t) -1, o->group_end[g] = 0;
    for (int s = 0; s < o->nseg; s++) {
        const poa_optim_seg *sg = &o->segs_host[s];
        int g = sg->clip_group;
        if (sg->offset < o->group_begin[g]) o->group_begin[g] = sg->offset;
        if (sg->offset + sg->numel > o->group_end[g]) o->group_end[g] = sg->offset + sg->numel;
    }
    for (int g = 0; g < POA_N_CLIP_GROUPS; g++) {
        if (o->group_begin[g] == (size_t) -1) o->group_begin[g] = o->group_end[g] = 0;
        for (int s = 0; s < o->nseg; s++) {
            const poa_optim_seg *sg = &o->segs_host[s];
            POA_CHECK(sg->clip_group == g || sg->offset + sg->numel <= o->group_begin[g] ||
                          sg->offset >= o->group_end[g],
                      "clip group %d is not contiguous in the flat buffer", g);
        }
    }
}

void poa_optim_init(poa_optim *o, poa_backend *be, const poa_param_table *t, double beta1,
                    double beta2, double eps, double clip_grad)
{
    memset(o, 0, sizeof *o);
    o->be = be;
    o->nseg = t->n;
    o->total = t->total;
    o->beta1 = beta1, o->beta2 = beta2, o->eps = eps, o->clip_grad = clip_grad;
    o->segs_host = poa_xcalloc((size_t) t->n, sizeof *o->segs_host);
    for (int i = 0; i < t->n; i++) {
        const poa_param_desc *d = &t->p[i];
        poa_optim_seg *s = &o->segs_host[i];
        s->offset = d->offset;
        s->numel = d->numel;
        s->lr_mult = d->lr_mult;
        s->wd_mult = d->wd_mult;
        s->last_layer = !!(d->flags & POA_PF_LAST_LAYER);
        s->clip_group = clip_group_of(d);
    }
    find_group_ranges(o);
    size_t sb = sizeof *o->segs * (size_t) t->n;
    o->segs = be->iface->alloc(be, sb);
    be->iface->upload(be, o->segs, o->segs_host, sb);
    o->m = be->iface->alloc(be, sizeof(float) * t->total);
    o->v = be->iface->alloc(be, sizeof(float) * t->total);
    be->iface->zero(be, o->m, sizeof(float) * t->total);
    be->iface->zero(be, o->v, sizeof(float) * t->total);
}

void poa_optim_free(poa_optim *o)
{
    if (!o->be) return;
    o->be->iface->free(o->be, o->segs);
    o->be->iface->free(o->be, o->m);
    o->be->iface->free(o->be, o->v);
    free(o->segs_host);
    memset(o, 0, sizeof *o);
}

void poa_optim_sum_squares(const poa_optim *o, const float *grad, double *sumsq)
{
    for (int g = 0; g < POA_N_CLIP_GROUPS; g++) {
        size_t b = o->group_begin[g], e = o->group_end[g];
        o->be->train->sum_squares(o->be, sumsq + g, grad + b, e - b); /* an empty group: 0 */
    }
}

void poa_optim_grad_norms(const poa_optim *o, const double sumsq[POA_N_CLIP_GROUPS],
                          double norm[POA_N_CLIP_GROUPS], float coef[POA_N_CLIP_GROUPS])
{
    for (int g = 0; g < POA_N_CLIP_GROUPS; g++) {
        size_t b = o->group_begin[g], e = o->group_end[g];
        norm[g] = e > b ? sqrt(sumsq[g]) : 0.0;
        coef[g] = 1.0f;
        if (o->clip_grad > 0) {
            float c = (float) o->clip_grad / ((float) norm[g] + 1e-6f);
            coef[g] = c < 1.0f ? c : 1.0f;
        }
    }
}

void poa_optim_step(poa_optim *o, float *params, const float *grad, double lr, double last_layer_lr,
                    double wd, const float coef[POA_N_CLIP_GROUPS], poa_act *params_act)
{
    o->step++;
    poa_adamw_args a = {.lr = lr,
                        .last_layer_lr = last_layer_lr,
                        .wd = wd,
                        .beta1 = o->beta1,
                        .beta2 = o->beta2,
                        .eps = o->eps,
                        .step = o->step};
    for (int g = 0; g < POA_MAX_CLIP_GROUPS; g++)
        a.grad_scale[g] = g < POA_N_CLIP_GROUPS ? coef[g] : 1.0f;
    o->be->train->adamw(o->be, params, o->m, o->v, grad, o->segs, o->nseg, &a, params_act);
}

void poa_ema_update(poa_backend *be, float *teacher, const float *student, size_t total,
                    double momentum, poa_act *teacher_act)
{
    be->train->ema(be, teacher, student, total, momentum, teacher_act);
}
