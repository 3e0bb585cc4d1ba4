/* cpu_train_optim.c — AdamW (docs/algorithm.md §8.1) and the EMA teacher update (docs/algorithm.md
 * §4) of the CPU backend.  The element arithmetic mirrors torch.optim.AdamW (single-tensor path,
 * fp32 tensors, Python-float scalars) so that parity tests can compare moments and parameters
 * closely.
 *
 * The optimizer touches every parameter every step, so its loops are explicitly vectorised with
 * SSE (the x86-64 baseline; plain C elsewhere): the compiler will not vectorise sqrtf under the
 * default errno semantics.  SSE arithmetic is IEEE single precision like the scalar code and the
 * operations are done in the same order, so both paths give identical bits. */
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_train_impl.h"
#include "common/poa_error.h"

#include <math.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

/* Scalars of one tensor's update. */
typedef struct adamw_coef {
    float gs, decay, b1, one_m_b1, b2, one_m_b2, bc2s, eps, neg_step;
} adamw_coef;

static void adamw_range(float *restrict p, float *restrict m, float *restrict v,
                        const float *restrict g, long long lo, long long hi, const adamw_coef *c)
{
    long long i = lo;
#if defined(__SSE2__)
    const __m128 gs = _mm_set1_ps(c->gs), decay = _mm_set1_ps(c->decay), b1 = _mm_set1_ps(c->b1);
    const __m128 omb1 = _mm_set1_ps(c->one_m_b1), b2 = _mm_set1_ps(c->b2);
    const __m128 omb2 = _mm_set1_ps(c->one_m_b2), bc2s = _mm_set1_ps(c->bc2s);
    const __m128 eps = _mm_set1_ps(c->eps), neg_step = _mm_set1_ps(c->neg_step);
    for (; i + 4 <= hi; i += 4) {
        const __m128 gi = _mm_mul_ps(_mm_loadu_ps(g + i), gs);
        const __m128 mi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(m + i), b1), _mm_mul_ps(omb1, gi));
        const __m128 vi =
            _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(v + i), b2), _mm_mul_ps(_mm_mul_ps(omb2, gi), gi));
        const __m128 denom = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), bc2s), eps);
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        _mm_storeu_ps(p + i, _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(p + i), decay),
                                        _mm_mul_ps(neg_step, _mm_div_ps(mi, denom))));
    }
#endif
    for (; i < hi; i++) {
        const float gi = g[i] * c->gs; /* gs = 1 leaves g exact */
        const float mi = m[i] * c->b1 + c->one_m_b1 * gi;
        const float vi = v[i] * c->b2 + c->one_m_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * c->decay + c->neg_step * (mi / (sqrtf(vi) / c->bc2s + c->eps));
    }
}

/* [lo, hi) of n elements for the calling thread (static split, multiples of 16). */
static void thread_range(long long n, long long *lo, long long *hi)
{
    int tid = 0, nt = 1;
#ifdef _OPENMP
    tid = omp_get_thread_num();
    nt = omp_get_num_threads();
#endif
    long long per = (n + nt - 1) / nt;
    per = (per + 15) / 16 * 16;
    *lo = (long long) tid * per < n ? (long long) tid * per : n;
    *hi = *lo + per < n ? *lo + per : n;
}

/* The compute dtype of the CPU is fp32: the model uses the master copy itself as the GEMM
 * weights' compute copy and passes no param_act / t_act.  A caller that passes one (backend.h
 * allows it) gets the updated values copied there: fp32 rounded to fp32 is the value. */
static void copy_range(poa_act *dst, const float *src, long long lo, long long hi)
{
    if (dst && hi > lo) memcpy((float *) dst + lo, src + lo, sizeof(float) * (size_t) (hi - lo));
}

void poa_cpu_adamw(poa_backend *be, float *param, float *m, float *v, const float *grad,
                   const poa_optim_seg *segs, int nseg, const poa_adamw_args *a, poa_act *param_act)
{
    POA_ASSERT(be->act_dtype == POA_DT_F32);
    POA_ASSERT(a->step >= 1);
    const double bc1 = 1.0 - pow(a->beta1, (double) a->step);
    const double bc2_sqrt = sqrt(1.0 - pow(a->beta2, (double) a->step));
    for (int s = 0; s < nseg; s++)
        POA_ASSERT(segs[s].clip_group >= 0 && segs[s].clip_group < POA_MAX_CLIP_GROUPS);
#pragma omp parallel
    for (int s = 0; s < nseg; s++) { /* no barrier: tensors are disjoint */
        const poa_optim_seg *sg = &segs[s];
        const double lr = (sg->last_layer ? a->last_layer_lr : a->lr) * sg->lr_mult;
        const double wd = a->wd * sg->wd_mult;
        const adamw_coef c = {
            .gs = a->grad_scale[sg->clip_group],
            .decay = (float) (1.0 - lr * wd),
            .b1 = (float) a->beta1,
            .one_m_b1 = (float) (1.0 - a->beta1),
            .b2 = (float) a->beta2,
            .one_m_b2 = (float) (1.0 - a->beta2),
            .bc2s = (float) bc2_sqrt,
            .eps = (float) a->eps,
            .neg_step = (float) (-(lr / bc1)),
        };
        long long lo, hi;
        thread_range((long long) sg->numel, &lo, &hi);
        adamw_range(param + sg->offset, m + sg->offset, v + sg->offset, grad + sg->offset, lo, hi,
                    &c);
        copy_range(param_act, param, (long long) sg->offset + lo, (long long) sg->offset + hi);
    }
}

static void ema_range(float *restrict t, const float *restrict s, long long lo, long long hi,
                      float mf, float one_m)
{
    for (long long i = lo; i < hi; i++) t[i] = t[i] * mf + one_m * s[i];
}

void poa_cpu_ema(poa_backend *be, float *t, const float *s, size_t n, double m, poa_act *t_act)
{
    POA_ASSERT(be->act_dtype == POA_DT_F32);
    const float mf = (float) m, one_m = (float) (1.0 - m);
#pragma omp parallel if (n > 65536)
    {
        long long lo, hi;
        thread_range((long long) n, &lo, &hi);
        ema_range(t, s, lo, hi, mf, one_m);
        copy_range(t_act, t, lo, hi);
    }
}
