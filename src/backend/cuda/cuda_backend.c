/* cuda_backend.c — the CUDA backend's device interface (memory, pinned host buffers, the
 * compute and transfer streams, events), its cuBLAS GEMMs, its tables and its creation.
 * Ops not ported yet are left NULL; poa_backend_missing_ops lists them and callers check before
 * use. */
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_ops.h"
#include "common/bf16.h"
#include "common/poa_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The backend's state: the shared cuda_impl (first, so that poa_cuda_impl() sees it) and an
 * event download_async uses to order the transfer stream after the compute stream. */
typedef struct cuda_state {
    cuda_impl im;
    cudaEvent_t compute_mark;
} cuda_state;

static cuda_state *state_of(poa_backend *be)
{
    return (cuda_state *) be->impl;
}

/* ------------------------------------------------------------------ the device */

void poa_cuda_describe(poa_backend *be, char *buf, size_t n)
{
    const cuda_impl *im = poa_cuda_impl(be);
    snprintf(buf, n, "cuda: %s (sm_%d%d, %.1f GiB), compute %s", im->device_name, im->sm_major,
             im->sm_minor, (double) im->total_mem / (1024.0 * 1024.0 * 1024.0),
             poa_dtype_name(be->act_dtype));
}

int poa_cuda_is_host(const poa_backend *be)
{
    (void) be;
    return 0;
}

void poa_cuda_mem_info(poa_backend *be, size_t *free_bytes, size_t *total_bytes)
{
    (void) be;
    size_t f = 0, t = 0;
    POA_CUDA_CHECK(cudaMemGetInfo(&f, &t));
    if (free_bytes) *free_bytes = f;
    if (total_bytes) *total_bytes = t;
}

void poa_cuda_destroy(poa_backend *be)
{
    cuda_state *st = state_of(be);
    cuda_impl *im = &st->im;
    cudaStreamSynchronize(im->stream);
    cudaStreamSynchronize(im->xfer);
    if (im->scratch) cudaFree(im->scratch);
    cudaEventDestroy(st->compute_mark);
    cublasDestroy(im->cublas);
    cudaStreamDestroy(im->xfer);
    cudaStreamDestroy(im->stream);
    free(st);
    free(be);
}

/* ------------------------------------------------------------------ memory */

void *poa_cuda_alloc(poa_backend *be, size_t bytes)
{
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
    if (e != cudaSuccess) {
        size_t f = 0, t = 0;
        cudaGetLastError();
        poa_cuda_mem_info(be, &f, &t);
        POA_FATAL("cudaMalloc of %zu bytes failed: %s (%.1f of %.1f MiB free)", bytes,
                  cudaGetErrorString(e), (double) f / 1048576.0, (double) t / 1048576.0);
    }
    return p;
}

void poa_cuda_free(poa_backend *be, void *p)
{
    (void) be;
    if (p) POA_CUDA_CHECK(cudaFree(p));
}

void *poa_cuda_host_alloc(poa_backend *be, size_t bytes)
{
    (void) be;
    void *p = NULL;
    POA_CUDA_CHECK(cudaMallocHost(&p, bytes ? bytes : 256));
    return p;
}

void poa_cuda_host_free(poa_backend *be, void *p)
{
    (void) be;
    if (p) POA_CUDA_CHECK(cudaFreeHost(p));
}

void poa_cuda_upload(poa_backend *be, void *dst, const void *host_src, size_t bytes)
{
    cudaStream_t s = poa_cuda_impl(be)->stream;
    POA_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, s));
    POA_CUDA_CHECK(cudaStreamSynchronize(s));
}

void poa_cuda_download(poa_backend *be, void *host_dst, const void *src, size_t bytes)
{
    cudaStream_t s = poa_cuda_impl(be)->stream;
    POA_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, s));
    POA_CUDA_CHECK(cudaStreamSynchronize(s));
}

void poa_cuda_copy(poa_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes)
        POA_CUDA_CHECK(
            cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, poa_cuda_impl(be)->stream));
}

void poa_cuda_zero(poa_backend *be, void *dst, size_t bytes)
{
    if (bytes) POA_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, poa_cuda_impl(be)->stream));
}

/* Activations through a host staging buffer in the compute dtype (tests and checkpoints only,
 * never inside a step). */
void poa_cuda_act_upload(poa_backend *be, poa_act *dst, const float *host_src, size_t n)
{
    if (be->act_dtype == POA_DT_F32) {
        poa_cuda_upload(be, dst, host_src, n * sizeof(float));
        return;
    }
    uint16_t *h = poa_xmalloc(n * sizeof *h + 1);
    for (size_t i = 0; i < n; i++) h[i] = poa_bf16_from_f32(host_src[i]);
    poa_cuda_upload(be, dst, h, n * sizeof *h);
    free(h);
}

void poa_cuda_act_download(poa_backend *be, float *host_dst, const poa_act *src, size_t n)
{
    if (be->act_dtype == POA_DT_F32) {
        poa_cuda_download(be, host_dst, src, n * sizeof(float));
        return;
    }
    uint16_t *h = poa_xmalloc(n * sizeof *h + 1);
    poa_cuda_download(be, h, src, n * sizeof *h);
    for (size_t i = 0; i < n; i++) host_dst[i] = poa_f32_from_bf16(h[i]);
    free(h);
}

void poa_cuda_upload_async(poa_backend *be, void *dst, const void *host_src, size_t bytes,
                           poa_event *done)
{
    cudaStream_t x = poa_cuda_impl(be)->xfer;
    if (bytes) POA_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, x));
    if (done) POA_CUDA_CHECK(cudaEventRecord((cudaEvent_t) done, x));
}

void poa_cuda_download_async(poa_backend *be, void *host_dst, const void *src, size_t bytes,
                             poa_event *done)
{
    cuda_state *st = state_of(be);
    POA_CUDA_CHECK(cudaEventRecord(st->compute_mark, st->im.stream));
    POA_CUDA_CHECK(cudaStreamWaitEvent(st->im.xfer, st->compute_mark, 0));
    if (bytes)
        POA_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, st->im.xfer));
    if (done) POA_CUDA_CHECK(cudaEventRecord((cudaEvent_t) done, st->im.xfer));
}

/* ------------------------------------------------------------------ events */

/* A poa_event * is the cudaEvent_t itself. */
poa_event *poa_cuda_event_create(poa_backend *be)
{
    (void) be;
    cudaEvent_t e;
    POA_CUDA_CHECK(cudaEventCreate(&e));
    return (poa_event *) e;
}

void poa_cuda_event_destroy(poa_backend *be, poa_event *ev)
{
    (void) be;
    if (ev) POA_CUDA_CHECK(cudaEventDestroy((cudaEvent_t) ev));
}

void poa_cuda_event_record(poa_backend *be, poa_event *ev)
{
    POA_CUDA_CHECK(cudaEventRecord((cudaEvent_t) ev, poa_cuda_impl(be)->stream));
}

void poa_cuda_stream_wait(poa_backend *be, poa_event *ev)
{
    POA_CUDA_CHECK(cudaStreamWaitEvent(poa_cuda_impl(be)->stream, (cudaEvent_t) ev, 0));
}

void poa_cuda_event_synchronize(poa_backend *be, poa_event *ev)
{
    (void) be;
    POA_CUDA_CHECK(cudaEventSynchronize((cudaEvent_t) ev));
}

double poa_cuda_event_elapsed(poa_backend *be, poa_event *start, poa_event *end)
{
    (void) be;
    float ms = 0;
    POA_CUDA_CHECK(cudaEventElapsedTime(&ms, (cudaEvent_t) start, (cudaEvent_t) end));
    return ms / 1000.0;
}

void poa_cuda_synchronize(poa_backend *be)
{
    POA_CUDA_CHECK(cudaStreamSynchronize(poa_cuda_impl(be)->xfer));
    POA_CUDA_CHECK(cudaStreamSynchronize(poa_cuda_impl(be)->stream));
}

void *poa_cuda_native_stream(poa_backend *be)
{
    return (void *) poa_cuda_impl(be)->stream;
}

/* ------------------------------------------------------------------ fp32 GEMMs */

/* Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ: swap the operands. */
void poa_cuda_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 0 || N == 0) return;
    POA_CUBLAS_CHECK(cublasSgemm(poa_cuda_impl(be)->cublas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb, A, lda,
                                 &beta, C, ldc));
}

void poa_cuda_gemm_strided_batched(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                                   float alpha, const float *A, int lda, long long strideA,
                                   const float *B, int ldb, long long strideB, float beta, float *C,
                                   int ldc, long long strideC, int batch)
{
    if (M == 0 || N == 0 || batch == 0) return;
    POA_CUBLAS_CHECK(cublasSgemmStridedBatched(
        poa_cuda_impl(be)->cublas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
        N, M, K, &alpha, B, ldb, strideB, A, lda, strideA, &beta, C, ldc, strideC, batch));
}

/* ------------------------------------------------------------------ tables */

static const poa_backend_iface cuda_iface = {
    .describe = poa_cuda_describe,
    .is_host = poa_cuda_is_host,
    .mem_info = poa_cuda_mem_info,
    .destroy = poa_cuda_destroy,
    .alloc = poa_cuda_alloc,
    .free = poa_cuda_free,
    .host_alloc = poa_cuda_host_alloc,
    .host_free = poa_cuda_host_free,
    .upload = poa_cuda_upload,
    .download = poa_cuda_download,
    .copy = poa_cuda_copy,
    .zero = poa_cuda_zero,
    .act_upload = poa_cuda_act_upload,
    .act_download = poa_cuda_act_download,
    .upload_async = poa_cuda_upload_async,
    .download_async = poa_cuda_download_async,
    .event_create = poa_cuda_event_create,
    .event_destroy = poa_cuda_event_destroy,
    .event_record = poa_cuda_event_record,
    .stream_wait = poa_cuda_stream_wait,
    .event_synchronize = poa_cuda_event_synchronize,
    .event_elapsed = poa_cuda_event_elapsed,
    .synchronize = poa_cuda_synchronize,
    .native_stream = poa_cuda_native_stream,
};

static const poa_nn_ops cuda_nn_ops = {
    .gemm = poa_cuda_gemm,
    .gemm_strided_batched = poa_cuda_gemm_strided_batched,
    .axpy = poa_cuda_axpy,
    .scale = poa_cuda_scale,
};

static const poa_train_ops cuda_train_ops = {
    .sum_squares = poa_cuda_sum_squares,
};

void poa_cuda_backend_tables(const poa_backend_iface **iface, const poa_nn_ops **nn,
                             const poa_train_ops **train)
{
    *iface = &cuda_iface;
    *nn = &cuda_nn_ops;
    *train = &cuda_train_ops;
}

/* ------------------------------------------------------------------ creation */

int poa_cuda_devices(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no device" error */
        return 0;
    }
    return n;
}

poa_backend *poa_cuda_backend_create(const poa_backend_opts *opts, char *errbuf, size_t errlen)
{
    const int n = poa_cuda_devices();
    if (n < 1) {
        snprintf(errbuf, errlen, "no CUDA device is visible (driver missing or no GPU)");
        return NULL;
    }
    if (opts->device < 0 || opts->device >= n) {
        snprintf(errbuf, errlen, "CUDA device %d requested, %d visible", opts->device, n);
        return NULL;
    }
    cuda_state *st = poa_xcalloc(1, sizeof *st);
    cuda_impl *im = &st->im;
    im->device = opts->device;
    im->act = opts->act_dtype;
    im->allow_tf32 = opts->allow_tf32;
    POA_CUDA_CHECK(cudaSetDevice(im->device));
    struct cudaDeviceProp prop;
    POA_CUDA_CHECK(cudaGetDeviceProperties(&prop, im->device));
    snprintf(im->device_name, sizeof im->device_name, "%s", prop.name);
    im->sm_major = prop.major;
    im->sm_minor = prop.minor;
    im->sm_count = prop.multiProcessorCount;
    im->total_mem = prop.totalGlobalMem;
    POA_CUDA_CHECK(cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking));
    POA_CUDA_CHECK(cudaStreamCreateWithFlags(&im->xfer, cudaStreamNonBlocking));
    POA_CUDA_CHECK(cudaEventCreateWithFlags(&st->compute_mark, cudaEventDisableTiming));
    POA_CUBLAS_CHECK(cublasCreate(&im->cublas));
    POA_CUBLAS_CHECK(cublasSetStream(im->cublas, im->stream));
    POA_CUBLAS_CHECK(cublasSetMathMode(im->cublas, im->allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                  : CUBLAS_DEFAULT_MATH));
    POA_CUDA_CHECK(cudaMalloc(&im->scratch, POA_CUDA_SCRATCH_BYTES));
    poa_backend *be = poa_xcalloc(1, sizeof *be);
    be->name = "cuda";
    be->act_dtype = opts->act_dtype;
    be->act_size = poa_dtype_size(opts->act_dtype);
    poa_cuda_backend_tables(&be->iface, &be->nn, &be->train);
    be->impl = st;
    return be;
}
