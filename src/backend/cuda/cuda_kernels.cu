// cuda_kernels.cu — the CUDA backend's vector ops: axpy, scale and the deterministic sum of
// squares (cuda_ops.h names and signatures).
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.h"

namespace
{

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

constexpr unsigned SUMSQ_BLOCK = 256, SUMSQ_BLOCKS = 1024;

// Pass 1: block b sums its grid-stride share into partial[b] (fixed order: deterministic).
__global__ void sum_squares_partial(const float *x, size_t n, double *partial)
{
    __shared__ double shared[32];
    double s = 0;
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x)
        s += (double) x[i] * x[i];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Pass 2: one block adds the partials in block order.
__global__ void sum_squares_final(const double *partial, int n_partial, double *out)
{
    __shared__ double shared[32];
    double s = 0;
    for (int i = threadIdx.x; i < n_partial; i += blockDim.x) s += partial[i];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) *out = s;
}

} // namespace

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

// Partials in the backend's fixed scratch: no allocation, no host synchronisation.
extern "C" void poa_cuda_sum_squares(poa_backend *be, double *out, const float *x, size_t n)
{
    double *partial = (double *) poa_cuda_impl(be)->scratch;
    unsigned blocks = poa_cuda_grid(n, SUMSQ_BLOCK);
    if (blocks > SUMSQ_BLOCKS) blocks = SUMSQ_BLOCKS;
    sum_squares_partial<<<blocks, SUMSQ_BLOCK, 0, poa_cuda_stream(be)>>>(x, n, partial);
    POA_CUDA_LAUNCHED("sum_squares_partial");
    sum_squares_final<<<1, SUMSQ_BLOCK, 0, poa_cuda_stream(be)>>>(partial, (int) blocks, out);
    POA_CUDA_LAUNCHED("sum_squares_final");
}
