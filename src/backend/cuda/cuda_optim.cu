// cuda_optim.cu — the CUDA backend's optimizer ops (backend.h, poa_train_ops): AdamW over all
// parameter tensors in one launch, and the EMA teacher update.  Both optionally refresh the
// compute-dtype copy of the updated tensor (param_act / t_act) in the same pass.
//
// Why it is written this way:
//  - the arithmetic is the CPU backend's (src/backend/cpu/cpu_train_optim.c, itself
//    torch.optim.AdamW's single-tensor path) operation for operation: the per-tensor scalars
//    in double rounded once to float, the element update in fp32 with the same association.
//    The kernels use the _rn intrinsics, which the compiler never contracts into FMAs, so an
//    fp32 run's parameters and moments come out bit-identical to the CPU backend's for the
//    same inputs (sqrt and division are IEEE-rounded as on the CPU);
//  - one launch for all tensors: a fixed grid (the blocks resident at once) walks the segments
//    in order, each segment spread over the whole grid by a grid-stride loop; the block that
//    starts a segment rotates with the segment index, so that the many small tensors (biases,
//    norms) do not all land on block 0.  The segment table lives in device memory and is read
//    by the kernel, so the host needs no copy of it and nothing synchronises;
//  - elements are independent: the result does not depend on the grid (no reduction).
//    Padding between segments is never touched.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.h"

#include <math.h>
#include <stdint.h>

namespace
{

constexpr int OPT_THREADS = 256;

// Scalars of one step, formed on the host as the CPU backend forms them.
struct adamw_scalars {
    double lr, last_layer_lr, wd, bc1; // per-segment lr, decay and step are derived in double
    float b1, one_m_b1, b2, one_m_b2, bc2s, eps;
    float grad_scale[POA_MAX_CLIP_GROUPS];
};

// Per-segment coefficients: lr = (last_layer ? last_layer_lr : lr) · lr_mult, wd = wd ·
// wd_mult, decay = (float) (1 − lr·wd), neg_step = (float) −(lr / bc1) — in double, no
// contraction, as the CPU.
struct seg_coef {
    float gs, decay, neg_step;
};

__device__ __forceinline__ seg_coef segment_coef(const poa_optim_seg &sg, const adamw_scalars &a)
{
    const double lr = __dmul_rn(sg.last_layer ? a.last_layer_lr : a.lr, (double) sg.lr_mult);
    const double wd = __dmul_rn(a.wd, (double) sg.wd_mult);
    seg_coef c;
    c.gs = a.grad_scale[sg.clip_group];
    c.decay = (float) __dsub_rn(1.0, __dmul_rn(lr, wd));
    c.neg_step = (float) -__ddiv_rn(lr, a.bc1);
    return c;
}

// Block b's rank among the grid for segment s: the segment's first elements go to block
// s mod G, the next to the following block, and so on (wrapping).
__device__ __forceinline__ unsigned rotated_block(int s)
{
    const unsigned first = (unsigned) s % gridDim.x;
    return (blockIdx.x + gridDim.x - first) % gridDim.x;
}

// torch.optim.AdamW on every segment:  g' = g·gs;  m = β1·m + (1−β1)·g';
// v = β2·v + (1−β2)·g'·g';  p = p·decay − step · m / (sqrt(v)/sqrt(bc2) + eps).
template <typename T, bool ACT>
__global__ void adamw_kernel(float *param, float *m, float *v, const float *grad,
                             const poa_optim_seg *segs, int nseg, adamw_scalars a, T *param_act)
{
    const uint64_t stride = (uint64_t) gridDim.x * blockDim.x;
    for (int s = 0; s < nseg; s++) {
        const poa_optim_seg sg = segs[s];
        // A clip group out of range is a corrupt segment table (the CPU backend asserts);
        // stop the kernel rather than index past grad_scale.
        if (sg.clip_group < 0 || sg.clip_group >= POA_MAX_CLIP_GROUPS) __trap();
        const seg_coef c = segment_coef(sg, a);
        float *p = param + sg.offset, *ms = m + sg.offset, *vs = v + sg.offset;
        const float *g = grad + sg.offset;
        T *pa = ACT ? param_act + sg.offset : NULL;
        for (uint64_t i = (uint64_t) rotated_block(s) * blockDim.x + threadIdx.x; i < sg.numel;
             i += stride) {
            const float gi = __fmul_rn(g[i], c.gs); // gs = 1 leaves g exact
            const float mi = __fadd_rn(__fmul_rn(ms[i], a.b1), __fmul_rn(a.one_m_b1, gi));
            const float vi =
                __fadd_rn(__fmul_rn(vs[i], a.b2), __fmul_rn(__fmul_rn(a.one_m_b2, gi), gi));
            const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), a.bc2s), a.eps);
            const float pi =
                __fadd_rn(__fmul_rn(p[i], c.decay), __fmul_rn(c.neg_step, __fdiv_rn(mi, denom)));
            ms[i] = mi;
            vs[i] = vi;
            p[i] = pi;
            if (ACT) pa[i] = from_f32<T>(pi);
        }
    }
}

// t = t·m + (1 − m)·s (fp32, no contraction, as the CPU); t_act = t in the compute dtype.
template <typename T, bool ACT>
__global__ void ema_kernel(float *t, const float *s, size_t n, float mf, float one_m, T *t_act)
{
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x) {
        const float ti = __fadd_rn(__fmul_rn(t[i], mf), __fmul_rn(one_m, s[i]));
        t[i] = ti;
        if (ACT) t_act[i] = from_f32<T>(ti);
    }
}

// Blocks of the AdamW grid: as many as are resident at once (every block has the same share
// of every large segment, so a second wave of blocks would double the time).
template <typename T, bool ACT> unsigned adamw_blocks(const poa_backend *be)
{
    int per_sm = 0;
    POA_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, adamw_kernel<T, ACT>,
                                                                 OPT_THREADS, 0));
    const int sms = poa_cuda_impl(be)->sm_count;
    if (per_sm < 1) per_sm = 1;
    return sms > 0 ? (unsigned) (per_sm * sms) : 1024u;
}

} // namespace

void poa_cuda_adamw(poa_backend *be, float *param, float *m, float *v, const float *grad,
                    const poa_optim_seg *segs, int nseg, const poa_adamw_args *a,
                    poa_act *param_act)
{
    POA_CHECK(a->step >= 1, "adamw: step %lld (the first step is 1)", a->step);
    if (nseg <= 0) return;
    adamw_scalars s;
    s.lr = a->lr;
    s.last_layer_lr = a->last_layer_lr;
    s.wd = a->wd;
    s.bc1 = 1.0 - pow(a->beta1, (double) a->step);
    s.b1 = (float) a->beta1;
    s.one_m_b1 = (float) (1.0 - a->beta1);
    s.b2 = (float) a->beta2;
    s.one_m_b2 = (float) (1.0 - a->beta2);
    s.bc2s = (float) sqrt(1.0 - pow(a->beta2, (double) a->step));
    s.eps = (float) a->eps;
    for (int g = 0; g < POA_MAX_CLIP_GROUPS; g++) s.grad_scale[g] = a->grad_scale[g];
    cudaStream_t st = poa_cuda_stream(be);
    if (!param_act) {
        adamw_kernel<float, false><<<adamw_blocks<float, false>(be), OPT_THREADS, 0, st>>>(
            param, m, v, grad, segs, nseg, s, (float *) NULL);
    } else {
        POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
            using T = decltype(tag);
            adamw_kernel<T, true><<<adamw_blocks<T, true>(be), OPT_THREADS, 0, st>>>(
                param, m, v, grad, segs, nseg, s, act_ptr<T>(param_act));
        });
    }
    POA_CUDA_LAUNCHED("adamw_kernel");
}

void poa_cuda_ema(poa_backend *be, float *t, const float *s, size_t n, double m, poa_act *t_act)
{
    if (n == 0) return;
    const float mf = (float) m, one_m = (float) (1.0 - m);
    const unsigned blocks = poa_cuda_grid(n, OPT_THREADS);
    cudaStream_t st = poa_cuda_stream(be);
    if (!t_act) {
        ema_kernel<float, false>
            <<<blocks, OPT_THREADS, 0, st>>>(t, s, n, mf, one_m, (float *) NULL);
    } else {
        POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
            using T = decltype(tag);
            ema_kernel<T, true>
                <<<blocks, OPT_THREADS, 0, st>>>(t, s, n, mf, one_m, act_ptr<T>(t_act));
        });
    }
    POA_CUDA_LAUNCHED("ema_kernel");
}
