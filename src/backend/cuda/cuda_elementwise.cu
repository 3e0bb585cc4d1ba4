// cuda_elementwise.cu — the CUDA backend's element-wise and bias ops: gelu_fwd/bwd (fp32) and
// act_gelu_fwd/bwd (compute dtype), axpy, scale, act_from_f32 (and the act → fp32 conversion
// behind act_download), residual_ls_fwd/bwd (LayerScale residual with drop-path scales),
// bias_grad and act_bias_grad; and the probe that tells whether the GPU can run this build's
// kernels.
//
// Shape of the code: one grid-stride kernel per op, one element per thread step, templates over
// the activation storage type T (float or bf16) computing in fp32 (backend.h, "Precision");
// the fp32 entries are the T = float instances.  No __restrict__: the entries allow dx to alias
// dy and base to be x.  Column sums (bias gradients, dgamma) use the deterministic two-pass sum
// of cuda_core.cuh (double accumulation, fixed order), never atomics.
//
// GELU: exact erf form, GELU(x) = x·Φ(x) with Φ(x) = ½·erfc(−x/√2): equal to ½(1 + erf(x/√2)) but
// without its cancellation for x ≪ 0, so the negative tail keeps its relative accuracy (as the
// double reference in tests/lib/cpu_naive.c).  gelu_bwd's optional y is computed by the same device
// function as gelu_fwd, so the two are bit-identical.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_core.cuh"
#include "backend/cuda/cuda_helpers.h"
#include "backend/cuda/cuda_ops.h"

// ---------------------------------------------------------------- GELU
__device__ __forceinline__ float gelu_cdf(float x)
{
    return 0.5f * erfcf(x * -0.70710678118654752f);
}

__device__ __forceinline__ float gelu_pdf(float x) // φ(x) = exp(−x²/2)/√(2π)
{
    return 0.39894228040143268f * expf(-0.5f * x * x);
}

template <typename T> __global__ void gelu_fwd_kernel(T *y, const T *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x) {
        const float v = to_f32(x[i]);
        y[i] = from_f32<T>(v * gelu_cdf(v));
    }
}

// dx = dy · (Φ(x) + x φ(x)); y (optional) = x Φ(x).  dx may alias dy: each element is read
// before it is written, by the same thread.
template <typename T>
__global__ void gelu_bwd_kernel(T *dx, T *y, const T *dy, const T *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x) {
        const float v = to_f32(x[i]), g = to_f32(dy[i]);
        const float cdf = gelu_cdf(v);
        if (y) y[i] = from_f32<T>(v * cdf);
        dx[i] = from_f32<T>(g * (cdf + v * gelu_pdf(v)));
    }
}

template <typename T> static void launch_gelu_fwd(const poa_backend *be, T *y, const T *x, size_t n)
{
    if (n == 0) return;
    gelu_fwd_kernel<T><<<poa_cuda_grid(n, 256), 256, 0, poa_cuda_stream(be)>>>(y, x, n);
    POA_CUDA_LAUNCHED("gelu_fwd_kernel");
}

template <typename T>
static void launch_gelu_bwd(const poa_backend *be, T *dx, T *y, const T *dy, const T *x, size_t n)
{
    if (n == 0) return;
    gelu_bwd_kernel<T><<<poa_cuda_grid(n, 256), 256, 0, poa_cuda_stream(be)>>>(dx, y, dy, x, n);
    POA_CUDA_LAUNCHED("gelu_bwd_kernel");
}

extern "C" void poa_cuda_gelu_fwd(poa_backend *be, float *y, const float *x, size_t n)
{
    launch_gelu_fwd<float>(be, y, x, n);
}

extern "C" void poa_cuda_gelu_bwd(poa_backend *be, float *dx, float *y, const float *dy,
                                  const float *x, size_t n)
{
    launch_gelu_bwd<float>(be, dx, y, dy, x, n);
}

extern "C" void poa_cuda_act_gelu_fwd(poa_backend *be, poa_act *y, const poa_act *x, size_t n)
{
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        launch_gelu_fwd<T>(be, act_ptr<T>(y), act_ptr<T>(x), n);
    });
}

extern "C" void poa_cuda_act_gelu_bwd(poa_backend *be, poa_act *dx, poa_act *y, const poa_act *dy,
                                      const poa_act *x, size_t n)
{
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        launch_gelu_bwd<T>(be, act_ptr<T>(dx), y ? act_ptr<T>(y) : (T *) nullptr, act_ptr<T>(dy),
                           act_ptr<T>(x), n);
    });
}

// ---------------------------------------------------------------- vectors and conversions
__global__ void axpy_kernel(float *y, float a, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x)
        y[i] += a * x[i];
}

__global__ void scale_kernel(float *x, float a, size_t n)
{
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x)
        x[i] *= a;
}

template <typename D, typename S> __global__ void convert_kernel(D *dst, const S *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x)
        dst[i] = from_f32<D>(to_f32(src[i]));
}

extern "C" void poa_cuda_axpy(poa_backend *be, float *y, float a, const float *x, size_t n)
{
    if (n == 0) return;
    axpy_kernel<<<poa_cuda_grid(n, 256), 256, 0, poa_cuda_stream(be)>>>(y, a, x, n);
    POA_CUDA_LAUNCHED("axpy_kernel");
}

extern "C" void poa_cuda_scale(poa_backend *be, float *x, float a, size_t n)
{
    if (n == 0) return;
    scale_kernel<<<poa_cuda_grid(n, 256), 256, 0, poa_cuda_stream(be)>>>(x, a, n);
    POA_CUDA_LAUNCHED("scale_kernel");
}

extern "C" void poa_cuda_act_from_f32(poa_backend *be, poa_act *dst, const float *src, size_t n)
{
    if (n == 0) return;
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        convert_kernel<T, float>
            <<<poa_cuda_grid(n, 256), 256, 0, poa_cuda_stream(be)>>>(act_ptr<T>(dst), src, n);
        POA_CUDA_LAUNCHED("convert_kernel (fp32 to compute dtype)");
    });
}

extern "C" void poa_cuda_act_to_f32(poa_backend *be, float *dst, const poa_act *src, size_t n)
{
    if (n == 0) return;
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        convert_kernel<float, T>
            <<<poa_cuda_grid(n, 256), 256, 0, poa_cuda_stream(be)>>>(dst, act_ptr<T>(src), n);
        POA_CUDA_LAUNCHED("convert_kernel (compute dtype to fp32)");
    });
}

// ---------------------------------------------------------------- LayerScale residual
// x[r, :d] = base[r, :d] + s[b]·(gamma ⊙ y[r, :d]) with b = r / tokens, in fp32, the CPU
// backend's order of operations.  s == NULL: 1 for every image (and the product sb·(…) is
// skipped, as on the CPU).  base == NULL: 0.  base == x (same pointer and ld): in place.  A
// dropped image (s[b] == 0) gets its base row and its y row is not read.
template <typename T>
__global__ void residual_fwd_kernel(T *x, int ldx, const T *base, int ldbase, const T *y, int ldy,
                                    const float *gamma, const float *s, int tokens, long long rows,
                                    int d)
{
    const bool in_place = base == x && ldbase == ldx;
    POA_RC_LOOP(r, c, rows, d)
    {
        const float sb = s ? s[r / tokens] : 1.0f;
        T *xp = x + r * ldx + c;
        if (sb == 0.0f) {
            if (!base)
                *xp = from_f32<T>(0.0f);
            else if (!in_place)
                *xp = base[r * ldbase + c];
            continue;
        }
        const float g = gamma[c] * to_f32(y[r * ldy + c]);
        float v;
        if (!base)
            v = sb * g;
        else if (s)
            v = to_f32(base[r * ldbase + c]) + sb * g;
        else
            v = to_f32(base[r * ldbase + c]) + g;
        *xp = from_f32<T>(v);
    }
}

// dy[r, :d] = (s[b]·dx[r, :d]) ⊙ gamma.
template <typename T>
__global__ void residual_dy_kernel(T *dy, int lddy, const T *dx, int lddx, const float *gamma,
                                   const float *s, int tokens, long long rows, int d)
{
    POA_RC_LOOP(r, c, rows, d)
    {
        const float sb = s ? s[r / tokens] : 1.0f;
        dy[r * lddy + c] = from_f32<T>((sb * to_f32(dx[r * lddx + c])) * gamma[c]);
    }
}

// dgamma's term of row r, column c: (s[b]·dx) · y, 0 (y not read) for a dropped image.
template <typename T> struct dgamma_term {
    const T *dx, *y;
    int lddx, ldy, tokens;
    const float *s;
    __device__ double operator()(int r, int c) const
    {
        const float sb = s ? s[r / tokens] : 1.0f;
        if (sb == 0.0f) return 0.0;
        const float g = sb * to_f32(dx[(long long) r * lddx + c]);
        return (double) (g * to_f32(y[(long long) r * ldy + c]));
    }
};

extern "C" void poa_cuda_residual_ls_fwd(poa_backend *be, poa_act *x, int ldx, const poa_act *base,
                                         int ldbase, const poa_act *y, int ldy, const float *gamma,
                                         const float *s, int B, int T, int d)
{
    const long long rows = (long long) B * T;
    if (rows <= 0 || d <= 0) return;
    const poa_rc_launch l = poa_rc_geometry(rows, d);
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using A = decltype(tag);
        residual_fwd_kernel<A><<<l.grid, l.block, 0, poa_cuda_stream(be)>>>(
            act_ptr<A>(x), ldx, base ? act_ptr<A>(base) : (const A *) nullptr, ldbase,
            act_ptr<A>(y), ldy, gamma, s, T, rows, d);
        POA_CUDA_LAUNCHED("residual_fwd_kernel");
    });
}

extern "C" void poa_cuda_residual_ls_bwd(poa_backend *be, poa_act *dy, int lddy, float *dgamma,
                                         const poa_act *dx, int lddx, const poa_act *y, int ldy,
                                         const float *gamma, const float *s, int B, int T, int d)
{
    const long long rows = (long long) B * T;
    if (rows <= 0 || d <= 0) return;
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using A = decltype(tag);
        if (dy) {
            const poa_rc_launch l = poa_rc_geometry(rows, d);
            residual_dy_kernel<A><<<l.grid, l.block, 0, poa_cuda_stream(be)>>>(
                act_ptr<A>(dy), lddy, act_ptr<A>(dx), lddx, gamma, s, T, rows, d);
            POA_CUDA_LAUNCHED("residual_dy_kernel");
        }
        if (dgamma) {
            dgamma_term<A> f;
            f.dx = act_ptr<A>(dx), f.y = act_ptr<A>(y);
            f.lddx = lddx, f.ldy = ldy, f.tokens = T, f.s = s;
            poa_colsum_add(be, dgamma, f, (int) rows, d);
        }
    });
}

// ---------------------------------------------------------------- bias gradients
// Row r, column c of a [rows, cols] view, widened to double.
template <typename T> struct view_term {
    const T *v;
    int ld;
    __device__ double operator()(int r, int c) const
    {
        return (double) to_f32(v[(long long) r * ld + c]);
    }
};

extern "C" void poa_cuda_bias_grad(poa_backend *be, float *db, const float *dy, int lddy, int rows,
                                   int cols)
{
    view_term<float> f;
    f.v = dy, f.ld = lddy;
    poa_colsum_add(be, db, f, rows, cols);
}

extern "C" void poa_cuda_act_bias_grad(poa_backend *be, float *db, const poa_act *dy, int lddy,
                                       int rows, int cols)
{
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        view_term<T> f;
        f.v = act_ptr<T>(dy), f.ld = lddy;
        poa_colsum_add(be, db, f, rows, cols);
    });
}

// ---------------------------------------------------------------- kernel image probe
__global__ void probe_kernel(int *p)
{
    if (p) *p = 0;
}

extern "C" int poa_cuda_probe_kernels(void)
{
    cudaFuncAttributes attr;
    const cudaError_t e = cudaFuncGetAttributes(&attr, probe_kernel);
    if (e != cudaSuccess) cudaGetLastError();
    return (int) e;
}
