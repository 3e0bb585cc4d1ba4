// cuda_kernels.cu — CUDA kernels behind plain C launchers (see cuda_kernels.h).
#include "backend/cuda/cuda_kernels.h"

#include <cuda_runtime.h>

extern "C" int poa_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky "no device" error
        return 0;
    }
    return n;
}

extern "C" const char *poa_cuda_error_string(int code)
{
    return cudaGetErrorString((cudaError_t) code);
}

static unsigned grid_for(size_t n, unsigned block)
{
    size_t g = (n + block - 1) / block;
    return (unsigned) (g > 65535u * 16u ? 65535u * 16u : (g ? g : 1));
}

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

__global__ void sum_squares_kernel(const float *x, size_t n, double *out)
{
    __shared__ double part[256];
    double s = 0;
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x)
        s += (double) x[i] * x[i];
    part[threadIdx.x] = s;
    __syncthreads();
    for (unsigned w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomicAdd(out, part[0]);
}

extern "C" int poa_cuda_axpy(float *y, float a, const float *x, size_t n, void *stream)
{
    if (n == 0) return 0;
    axpy_kernel<<<grid_for(n, 256), 256, 0, (cudaStream_t) stream>>>(y, a, x, n);
    return (int) cudaGetLastError();
}

extern "C" int poa_cuda_scale(float *x, float a, size_t n, void *stream)
{
    if (n == 0) return 0;
    scale_kernel<<<grid_for(n, 256), 256, 0, (cudaStream_t) stream>>>(x, a, n);
    return (int) cudaGetLastError();
}

extern "C" int poa_cuda_sum_squares(const float *x, size_t n, double *out, void *stream)
{
    double *d = NULL;
    cudaError_t e = cudaMallocAsync((void **) &d, sizeof(double), (cudaStream_t) stream);
    if (e != cudaSuccess) return (int) e;
    cudaMemsetAsync(d, 0, sizeof(double), (cudaStream_t) stream);
    if (n) {
        unsigned g = grid_for(n, 256);
        if (g > 1024) g = 1024;
        sum_squares_kernel<<<g, 256, 0, (cudaStream_t) stream>>>(x, n, d);
    }
    cudaMemcpyAsync(out, d, sizeof(double), cudaMemcpyDeviceToHost, (cudaStream_t) stream);
    cudaFreeAsync(d, (cudaStream_t) stream);
    e = cudaStreamSynchronize((cudaStream_t) stream);
    return (int) e;
}
