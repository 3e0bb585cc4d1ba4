/* cuda_backend.c — memory, cuBLAS and the op tables of the CUDA backend.
 * Ops not yet ported are left NULL; callers check poa_backend ops before use. */
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_kernels.h"
#include "common/poa_error.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct cuda_impl {
    int device;
    cudaStream_t stream;
    cublasHandle_t cublas;
} cuda_impl;

#define CUDA_OK(call)                                                                              \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        POA_CHECK(e_ == cudaSuccess, "%s", cudaGetErrorString(e_));                                \
    } while (0)
#define CUBLAS_OK(call)                                                                            \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        POA_CHECK(s_ == CUBLAS_STATUS_SUCCESS, "cuBLAS status %d", (int) s_);                      \
    } while (0)

static cuda_impl *impl_of(poa_backend *be)
{
    return (cuda_impl *) be->impl;
}

static void *cu_alloc(poa_backend *be, size_t bytes)
{
    void *p = NULL;
    CUDA_OK(cudaMalloc(&p, bytes ? bytes : 256));
    (void) be;
    return p;
}

static void cu_free(poa_backend *be, void *p)
{
    (void) be;
    if (p) CUDA_OK(cudaFree(p));
}

static void cu_upload(poa_backend *be, void *dst, const void *src, size_t bytes)
{
    CUDA_OK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, impl_of(be)->stream));
    CUDA_OK(cudaStreamSynchronize(impl_of(be)->stream));
}

static void cu_download(poa_backend *be, void *dst, const void *src, size_t bytes)
{
    CUDA_OK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, impl_of(be)->stream));
    CUDA_OK(cudaStreamSynchronize(impl_of(be)->stream));
}

static void cu_copy(poa_backend *be, void *dst, const void *src, size_t bytes)
{
    CUDA_OK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, impl_of(be)->stream));
}

static void cu_zero(poa_backend *be, void *dst, size_t bytes)
{
    CUDA_OK(cudaMemsetAsync(dst, 0, bytes, impl_of(be)->stream));
}

static void cu_sync(poa_backend *be)
{
    CUDA_OK(cudaStreamSynchronize(impl_of(be)->stream));
}

/* Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ: swap the operands. */
static void cu_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 0 || N == 0) return;
    CUBLAS_OK(cublasSgemm(impl_of(be)->cublas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                          ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb, A, lda, &beta, C,
                          ldc));
}

static void cu_gemm_strided_batched(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N,
                                    int K, float alpha, const float *A, int lda, long long sA,
                                    const float *B, int ldb, long long sB, float beta, float *C,
                                    int ldc, long long sC, int batch)
{
    if (M == 0 || N == 0 || batch == 0) return;
    CUBLAS_OK(cublasSgemmStridedBatched(impl_of(be)->cublas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                        ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb, sB,
                                        A, lda, sA, &beta, C, ldc, sC, batch));
}

static void cu_axpy(poa_backend *be, float *y, float a, const float *x, size_t n)
{
    int e = poa_cuda_axpy(y, a, x, n, impl_of(be)->stream);
    POA_CHECK(e == 0, "%s", poa_cuda_error_string(e));
}

static void cu_scale(poa_backend *be, float *x, float a, size_t n)
{
    int e = poa_cuda_scale(x, a, n, impl_of(be)->stream);
    POA_CHECK(e == 0, "%s", poa_cuda_error_string(e));
}

static double cu_sum_squares(poa_backend *be, const float *x, size_t n)
{
    double s = 0;
    int e = poa_cuda_sum_squares(x, n, &s, impl_of(be)->stream);
    POA_CHECK(e == 0, "%s", poa_cuda_error_string(e));
    return s;
}

static const poa_nn_ops cuda_nn_ops = {
    .alloc = cu_alloc,
    .free = cu_free,
    .upload = cu_upload,
    .download = cu_download,
    .copy = cu_copy,
    .zero = cu_zero,
    .sync = cu_sync,
    .gemm = cu_gemm,
    .gemm_strided_batched = cu_gemm_strided_batched,
    .axpy = cu_axpy,
    .scale = cu_scale,
};

static const poa_train_ops cuda_train_ops = {
    .sum_squares = cu_sum_squares,
};

void poa_cuda_backend_ops(const poa_nn_ops **nn, const poa_train_ops **train)
{
    *nn = &cuda_nn_ops, *train = &cuda_train_ops;
}

void *poa_cuda_backend_stream(poa_backend *be)
{
    return (void *) impl_of(be)->stream;
}

int poa_cuda_devices(void)
{
    return poa_cuda_device_count();
}

poa_backend *poa_cuda_backend_create(char *errbuf, size_t errlen)
{
    if (poa_cuda_device_count() < 1) {
        snprintf(errbuf, errlen, "no CUDA device is visible (driver missing or no GPU)");
        return NULL;
    }
    cuda_impl *im = poa_xcalloc(1, sizeof *im);
    CUDA_OK(cudaGetDevice(&im->device));
    CUDA_OK(cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking));
    CUBLAS_OK(cublasCreate(&im->cublas));
    CUBLAS_OK(cublasSetStream(im->cublas, im->stream));
    poa_backend *be = poa_xcalloc(1, sizeof *be);
    be->name = "cuda";
    be->nn = &cuda_nn_ops;
    be->train = &cuda_train_ops;
    be->impl = im;
    return be;
}

void poa_cuda_backend_destroy(poa_backend *be)
{
    cuda_impl *im = impl_of(be);
    cublasDestroy(im->cublas);
    cudaStreamDestroy(im->stream);
    free(im);
    free(be);
}
