// cuda_common.cuh — device helpers shared by the CUDA backend's .cu files (internal).
//
// Activations come in the run's compute dtype (backend.h, "Precision"): kernels on activations
// are templates over the storage type T (float or __nv_bfloat16) and compute in fp32;
// POA_CUDA_DISPATCH_ACT picks the instantiation from the backend's dtype at run time.
// Reductions are deterministic (backend.h): fixed per-thread order, then warp shuffles in a
// fixed pattern, then shared memory in a fixed pattern; partial sums across blocks go to the
// backend's fixed scratch and are added in block order by a second kernel — never atomics on
// floating-point values.
#ifndef POA_BACKEND_CUDA_COMMON_CUH
#define POA_BACKEND_CUDA_COMMON_CUH

#include "backend/cuda/cuda_impl.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

// ---------------------------------------------------------------- storage ↔ fp32
__device__ __forceinline__ float to_f32(float x)
{
    return x;
}
__device__ __forceinline__ float to_f32(bf16 x)
{
    return __bfloat162float(x);
}
template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x)
{
    return x;
}
template <> __device__ __forceinline__ bf16 from_f32<bf16>(float x)
{
    return __float2bfloat16_rn(x);
}

// Typed views of the opaque poa_act pointers (the dtype is the backend's).
template <typename T> __host__ __device__ __forceinline__ T *act_ptr(poa_act *p)
{
    return reinterpret_cast<T *>(p);
}
template <typename T> __host__ __device__ __forceinline__ const T *act_ptr(const poa_act *p)
{
    return reinterpret_cast<const T *>(p);
}

// Runs `body` (a generic lambda taking a T* tag) with T = float or bf16 by the backend's dtype:
//     POA_CUDA_DISPATCH_ACT(be, [&](auto tag) { using T = decltype(tag); launch<T>(...); });
template <typename F> static inline void poa_cuda_dispatch_act(const poa_backend *be, F &&body)
{
    if (be->act_dtype == POA_DT_BF16)
        body(bf16());
    else
        body(float());
}
#define POA_CUDA_DISPATCH_ACT(be, ...) poa_cuda_dispatch_act((be), __VA_ARGS__)

// ---------------------------------------------------------------- launch shapes
static inline cudaStream_t poa_cuda_stream(const poa_backend *be)
{
    return poa_cuda_impl(be)->stream;
}

// Blocks for a grid-stride loop over n items (at least 1; capped so that one launch never
// exceeds the grid limit; enough to fill the device several times).
static inline unsigned poa_cuda_grid(size_t n, unsigned block)
{
    size_t g = (n + block - 1) / block;
    if (g < 1) g = 1;
    if (g > 65535u * 32u) g = 65535u * 32u;
    return (unsigned) g;
}

// ---------------------------------------------------------------- reductions
__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, ≤ 1024); every thread gets the result.
// `shared` holds 32 values of type V.  Deterministic for a given blockDim.
template <typename V> __device__ __forceinline__ V block_sum(V v, V *shared)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); // shared may still be read by a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    V t = lane < nwarps ? shared[lane] : V(0);
    return warp_sum(t);
}

__device__ __forceinline__ float block_max(float v, float *shared)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float t = lane < nwarps ? shared[lane] : -INFINITY;
    return warp_max(t);
}

// Row chunks for a deterministic column sum of `rows` × `cols` values whose partials
// (chunks × cols elements of elem_bytes) must fit the backend's scratch: at most 64 chunks,
// at least 1, about `rows_per_chunk` rows each.
static inline int poa_cuda_reduce_chunks(int rows, int cols, size_t elem_bytes, int rows_per_chunk)
{
    int chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
    if (chunks > 64) chunks = 64;
    size_t cap = POA_CUDA_SCRATCH_BYTES / ((size_t) (cols > 0 ? cols : 1) * elem_bytes);
    if ((size_t) chunks > cap) chunks = (int) cap;
    return chunks < 1 ? 1 : chunks;
}

#endif
