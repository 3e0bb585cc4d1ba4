/* cuda_helpers.h — C-callable helpers of the CUDA backend that are not op-table entries:
 * what cuda_backend.c needs from the .cu files (the cuBLASLt plan cache, the device-side
 * conversion of activations to fp32, the probe for a usable kernel image).  Seen only inside
 * src/backend/cuda/.  No CUDA types here. */
#ifndef POA_BACKEND_CUDA_HELPERS_H
#define POA_BACKEND_CUDA_HELPERS_H

#include "backend/backend.h"
#include "backend/cuda/cuda_impl.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cuda_gemm.cu: the fixed-size table of cuBLASLt plans (descriptors, layouts and the algorithm
 * the heuristic chose, by shape), created with the backend and never grown. */
cuda_gemm_cache *poa_cuda_gemm_cache_create(void);
void poa_cuda_gemm_cache_destroy(cuda_gemm_cache *cache);

/* cuda_elementwise.cu: dst[n] (fp32, device) = src[n] (compute dtype, device), enqueued on the
 * compute stream. */
void poa_cuda_act_to_f32(poa_backend *be, float *dst, const poa_act *src, size_t n);

/* cuda_elementwise.cu: 0 when the current device can run this build's kernels, else the CUDA
 * error code (cudaErrorNoKernelImageForDevice when no -gencode of the build matches it). */
int poa_cuda_probe_kernels(void);

#ifdef __cplusplus
}
#endif
#endif
