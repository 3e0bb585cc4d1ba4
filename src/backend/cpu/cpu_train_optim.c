/* cpu_train_optim.c — AdamW (spec §6.1) and the EMA teacher update (spec §2.6) of the CPU
 * backend.  The element arithmetic mirrors torch.optim.AdamW (single-tensor path, fp32 tensors,
 * Python-float scalars) so that parity tests can compare moments and parameters closely. */
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_train_impl.h"
#include "common/poa_error.h"

#include <math.h>

void poa_cpu_adamw(poa_backend *be, float *param, float *m, float *v, const float *grad,
                   const poa_optim_seg *segs, int nseg, const poa_adamw_args *a)
{
    (void) be;
    POA_ASSERT(a->step >= 1);
    const double bc1 = 1.0 - pow(a->beta1, (double) a->step);
    const double bc2_sqrt = sqrt(1.0 - pow(a->beta2, (double) a->step));
    const float b1 = (float) a->beta1, b2 = (float) a->beta2;
    const float one_m_b1 = (float) (1.0 - a->beta1), one_m_b2 = (float) (1.0 - a->beta2);
    const float eps = (float) a->eps, bc2s = (float) bc2_sqrt;
#pragma omp parallel
    for (int s = 0; s < nseg; s++) {
        const poa_optim_seg *sg = &segs[s];
        POA_ASSERT(sg->clip_group >= 0 && sg->clip_group < POA_MAX_CLIP_GROUPS);
        const double lr = (sg->last_layer ? a->last_layer_lr : a->lr) * sg->lr_mult;
        const double wd = a->wd * sg->wd_mult;
        const float decay = (float) (1.0 - lr * wd);
        const float neg_step = (float) (-(lr / bc1));
        const float gs = a->grad_scale[sg->clip_group];
        float *p = param + sg->offset, *mi = m + sg->offset, *vi = v + sg->offset;
        const float *g = grad + sg->offset;
        const long long n = (long long) sg->numel;
#pragma omp for schedule(static) nowait
        for (long long i = 0; i < n; i++) {
            float gi = gs == 1.0f ? g[i] : g[i] * gs;
            p[i] *= decay;
            mi[i] = mi[i] * b1 + one_m_b1 * gi;
            vi[i] = vi[i] * b2 + one_m_b2 * gi * gi;
            float denom = sqrtf(vi[i]) / bc2s + eps;
            p[i] += neg_step * (mi[i] / denom);
        }
    }
}

void poa_cpu_ema(poa_backend *be, float *t, const float *s, size_t n, double m)
{
    (void) be;
    const float mf = (float) m, one_m = (float) (1.0 - m);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) t[i] = t[i] * mf + one_m * s[i];
}
