/* cuda_impl.h — the CUDA backend's private state and error checks, shared by its .c and .cu
 * files.  Seen only inside src/backend/cuda/ (model/ and train/ see backend.h alone).
 *
 * Errors: every CUDA / cuBLAS(Lt) call goes through POA_CUDA_CHECK / POA_CUBLAS_CHECK, which
 * name the failing call and the library's error text on the fatal path ("[rank r/N host]
 * file:line func: cudaMalloc(&p, bytes) -> out of memory (cudaErrorMemoryAllocation) ...").
 * Kernel launches are followed by POA_CUDA_LAUNCHED("kernel name") (cudaGetLastError).
 */
#ifndef POA_BACKEND_CUDA_IMPL_H
#define POA_BACKEND_CUDA_IMPL_H

#include "backend/backend.h"
#include "common/poa_error.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of the fixed reduction scratch allocated at creation (partial sums of the
 * deterministic two-pass reductions: column sums, sums of squares, loss sums).  An op sizes
 * its number of row chunks so that its partials fit (cuda_reduce_chunks).                   */
#define POA_CUDA_SCRATCH_BYTES ((size_t) 64 << 20)
/* cuBLASLt workspace.                                                                        */
#define POA_CUDA_LT_WORKSPACE_BYTES ((size_t) 32 << 20)

typedef struct cuda_gemm_cache cuda_gemm_cache; /* cuda_gemm.cu: cuBLASLt plans by shape    */

typedef struct cuda_impl {
    int device;
    char device_name[256];
    int sm_major, sm_minor, sm_count;
    size_t total_mem;
    cudaStream_t stream; /* compute: every op                                              */
    cudaStream_t xfer;   /* transfers: upload_async / download_async                        */
    cublasHandle_t cublas;
    cublasLtHandle_t lt;
    void *lt_workspace; /* POA_CUDA_LT_WORKSPACE_BYTES                                      */
    void *scratch;      /* POA_CUDA_SCRATCH_BYTES, see above                                */
    cuda_gemm_cache *gemm_cache;
    poa_dtype act; /* = be->act_dtype                                                       */
    int allow_tf32;
} cuda_impl;

static inline cuda_impl *poa_cuda_impl(const poa_backend *be)
{
    return (cuda_impl *) be->impl;
}

#define POA_CUDA_CHECK(call)                                                                       \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            poa_fatal_at(__FILE__, __LINE__, __func__, #call, "%s (%s)", cudaGetErrorString(e_),   \
                         cudaGetErrorName(e_));                                                    \
    } while (0)
#define POA_CUBLAS_CHECK(call)                                                                     \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                           \
            poa_fatal_at(__FILE__, __LINE__, __func__, #call, "cuBLAS status %d (%s)", (int) s_,   \
                         cublasGetStatusString(s_));                                               \
    } while (0)
/* After a kernel launch: configuration errors surface here, naming the kernel.              */
#define POA_CUDA_LAUNCHED(kernel_name)                                                             \
    do {                                                                                           \
        cudaError_t e_ = cudaGetLastError();                                                       \
        if (e_ != cudaSuccess)                                                                     \
            poa_fatal_at(__FILE__, __LINE__, __func__, kernel_name, "launch failed: %s (%s)",      \
                         cudaGetErrorString(e_), cudaGetErrorName(e_));                            \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
