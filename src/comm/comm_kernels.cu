// comm_kernels.cu — the one kernel of the comm layer: the 1/world scale of an all-reduced
// gradient bucket, launched on the communication stream (declared in comm_nccl.h).
#include <cuda_runtime.h>
#include <stddef.h>

__global__ void poa_comm_scale_kernel(float *x, float a, size_t n)
{
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x)
        x[i] *= a;
}

extern "C" int poa_comm_cuda_scale(float *x, float a, size_t n, void *stream)
{
    if (n == 0) return 0;
    const unsigned block = 256;
    size_t g = (n + block - 1) / block;
    unsigned grid = (unsigned) (g > 65535u * 16u ? 65535u * 16u : g);
    poa_comm_scale_kernel<<<grid, block, 0, (cudaStream_t) stream>>>(x, a, n);
    return (int) cudaGetLastError();
}

extern "C" const char *poa_comm_cuda_error_string(int code)
{
    return cudaGetErrorString((cudaError_t) code);
}
