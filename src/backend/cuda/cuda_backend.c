/* cuda_backend.c — the CUDA backend's device interface (poa_backend_iface: memory, copies,
 * streams, events), its creation and destruction, and its three op tables.
 *
 * One backend drives one GPU from the thread that created it (the device is made current
 * there).  It owns:
 *  - two non-blocking streams: `stream` runs every op, copy and zero; `xfer` runs upload_async /
 *    download_async so that host transfers overlap the compute;
 *  - a cuBLAS handle (only for GEMMs cuBLASLt has no algorithm for) and a cuBLASLt handle, both
 *    bound to `stream`; TF32 only when opts->allow_tf32;
 *  - fixed device memory allocated once here: the reduction scratch of the deterministic
 *    two-pass reductions and the cuBLASLt workspace; and the host table of cuBLASLt plans.
 * Nothing is allocated inside a step.  src/backend/cuda/README.md describes the design.
 */
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_helpers.h"
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_ops.h"
#include "common/poa_error.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct poa_event {
    cudaEvent_t ev;
};

static cuda_impl *impl_of(const poa_backend *be)
{
    return poa_cuda_impl(be);
}

/* ------------------------------------------------------------------------ identity */
void poa_cuda_describe(poa_backend *be, char *buf, size_t n)
{
    const cuda_impl *im = impl_of(be);
    snprintf(buf, n, "cuda: %s (sm_%d%d, %.1f GiB, %d SMs), compute %s%s", im->device_name,
             im->sm_major, im->sm_minor, (double) im->total_mem / (1024.0 * 1024.0 * 1024.0),
             im->sm_count, poa_dtype_name(be->act_dtype), im->allow_tf32 ? ", tf32 heads" : "");
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

/* ------------------------------------------------------------------------ memory */
static double mib(size_t bytes)
{
    return (double) bytes / (1024.0 * 1024.0);
}

void *poa_cuda_alloc(poa_backend *be, size_t bytes)
{
    (void) be;
    void *p = NULL;
    /* A zero-byte request still gets a distinct pointer (cudaMalloc(0) gives NULL). */
    const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
    if (e != cudaSuccess) {
        size_t f = 0, t = 0;
        const int have_info = cudaMemGetInfo(&f, &t) == cudaSuccess;
        cudaGetLastError(); /* the out-of-memory error is not sticky; do not report it twice */
        if (have_info)
            poa_fatal_at(__FILE__, __LINE__, __func__, "cudaMalloc",
                         "cannot allocate %zu bytes (%.1f MiB) of device memory: %s; %.1f MiB of "
                         "%.1f MiB free",
                         bytes, mib(bytes), cudaGetErrorString(e), mib(f), mib(t));
        poa_fatal_at(__FILE__, __LINE__, __func__, "cudaMalloc",
                     "cannot allocate %zu bytes (%.1f MiB) of device memory: %s", bytes, mib(bytes),
                     cudaGetErrorString(e));
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
    const cudaError_t e = cudaHostAlloc(&p, bytes ? bytes : 256, cudaHostAllocDefault);
    if (e != cudaSuccess)
        poa_fatal_at(__FILE__, __LINE__, __func__, "cudaHostAlloc",
                     "cannot allocate %zu bytes (%.1f MiB) of page-locked host memory: %s", bytes,
                     mib(bytes), cudaGetErrorString(e));
    return p;
}

void poa_cuda_host_free(poa_backend *be, void *p)
{
    (void) be;
    if (p) POA_CUDA_CHECK(cudaFreeHost(p));
}

/* ------------------------------------------------------------------------ copies */
void poa_cuda_upload(poa_backend *be, void *dst, const void *host_src, size_t bytes)
{
    if (bytes == 0) return;
    cudaStream_t s = impl_of(be)->stream;
    POA_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, s));
    POA_CUDA_CHECK(cudaStreamSynchronize(s));
}

void poa_cuda_download(poa_backend *be, void *host_dst, const void *src, size_t bytes)
{
    if (bytes == 0) return;
    cudaStream_t s = impl_of(be)->stream;
    POA_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, s));
    POA_CUDA_CHECK(cudaStreamSynchronize(s));
}

void poa_cuda_copy(poa_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0) return;
    POA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, impl_of(be)->stream));
}

void poa_cuda_zero(poa_backend *be, void *dst, size_t bytes)
{
    if (bytes == 0) return;
    POA_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, impl_of(be)->stream));
}

/* fp32 values staged through the reduction scratch per chunk: ops on the compute stream run in
 * order, so the scratch is free between them. */
static size_t act_chunk_elems(void)
{
    return POA_CUDA_SCRATCH_BYTES / sizeof(float);
}

void poa_cuda_act_upload(poa_backend *be, poa_act *dst, const float *host_src, size_t n)
{
    if (be->act_dtype == POA_DT_F32) {
        poa_cuda_upload(be, dst, host_src, n * sizeof(float));
        return;
    }
    cuda_impl *im = impl_of(be);
    float *stage = (float *) im->scratch;
    for (size_t off = 0; off < n; off += act_chunk_elems()) {
        const size_t m = n - off < act_chunk_elems() ? n - off : act_chunk_elems();
        POA_CUDA_CHECK(cudaMemcpyAsync(stage, host_src + off, m * sizeof(float),
                                       cudaMemcpyHostToDevice, im->stream));
        poa_cuda_act_from_f32(be, poa_act_at(be, dst, off), stage, m);
    }
    POA_CUDA_CHECK(cudaStreamSynchronize(im->stream));
}

void poa_cuda_act_download(poa_backend *be, float *host_dst, const poa_act *src, size_t n)
{
    if (be->act_dtype == POA_DT_F32) {
        poa_cuda_download(be, host_dst, src, n * sizeof(float));
        return;
    }
    cuda_impl *im = impl_of(be);
    float *stage = (float *) im->scratch;
    for (size_t off = 0; off < n; off += act_chunk_elems()) {
        const size_t m = n - off < act_chunk_elems() ? n - off : act_chunk_elems();
        poa_cuda_act_to_f32(be, stage, poa_act_at(be, src, off), m);
        POA_CUDA_CHECK(cudaMemcpyAsync(host_dst + off, stage, m * sizeof(float),
                                       cudaMemcpyDeviceToHost, im->stream));
        /* the next chunk rewrites the stage: the copy must have finished */
        POA_CUDA_CHECK(cudaStreamSynchronize(im->stream));
    }
}

/* ------------------------------------------------------------------------ transfer stream */
void poa_cuda_upload_async(poa_backend *be, void *dst, const void *host_src, size_t bytes,
                           poa_event *done)
{
    cuda_impl *im = impl_of(be);
    if (bytes)
        POA_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, im->xfer));
    if (done) POA_CUDA_CHECK(cudaEventRecord(done->ev, im->xfer));
}

/* `done` first marks the compute stream's work so far; the transfer stream waits for that mark
 * (a wait binds to the record made before it, so recording `done` again afterwards is safe). */
void poa_cuda_download_async(poa_backend *be, void *host_dst, const void *src, size_t bytes,
                             poa_event *done)
{
    POA_CHECK(done != NULL, "download_async needs an event (it orders the copy after compute)");
    cuda_impl *im = impl_of(be);
    POA_CUDA_CHECK(cudaEventRecord(done->ev, im->stream));
    POA_CUDA_CHECK(cudaStreamWaitEvent(im->xfer, done->ev, 0));
    if (bytes)
        POA_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, im->xfer));
    POA_CUDA_CHECK(cudaEventRecord(done->ev, im->xfer));
}

/* ------------------------------------------------------------------------ events */
poa_event *poa_cuda_event_create(poa_backend *be)
{
    (void) be;
    poa_event *e = poa_xcalloc(1, sizeof *e);
    POA_CUDA_CHECK(cudaEventCreateWithFlags(&e->ev, cudaEventDefault)); /* timing enabled */
    return e;
}

void poa_cuda_event_destroy(poa_backend *be, poa_event *ev)
{
    (void) be;
    if (!ev) return;
    POA_CUDA_CHECK(cudaEventDestroy(ev->ev));
    free(ev);
}

void poa_cuda_event_record(poa_backend *be, poa_event *ev)
{
    POA_CUDA_CHECK(cudaEventRecord(ev->ev, impl_of(be)->stream));
}

void poa_cuda_stream_wait(poa_backend *be, poa_event *ev)
{
    POA_CUDA_CHECK(cudaStreamWaitEvent(impl_of(be)->stream, ev->ev, 0));
}

void poa_cuda_event_synchronize(poa_backend *be, poa_event *ev)
{
    (void) be;
    POA_CUDA_CHECK(cudaEventSynchronize(ev->ev));
}

double poa_cuda_event_elapsed(poa_backend *be, poa_event *start, poa_event *end)
{
    (void) be;
    float ms = 0;
    POA_CUDA_CHECK(cudaEventElapsedTime(&ms, start->ev, end->ev));
    return ms * 1e-3;
}

void poa_cuda_synchronize(poa_backend *be)
{
    cuda_impl *im = impl_of(be);
    POA_CUDA_CHECK(cudaStreamSynchronize(im->stream));
    POA_CUDA_CHECK(cudaStreamSynchronize(im->xfer));
}

void *poa_cuda_native_stream(poa_backend *be)
{
    return (void *) impl_of(be)->stream;
}

/* ------------------------------------------------------------------------ tables */
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
    .gemm_bias = poa_cuda_gemm_bias,
    .bias_grad = poa_cuda_bias_grad,
    .gelu_fwd = poa_cuda_gelu_fwd,
    .gelu_bwd = poa_cuda_gelu_bwd,
    .l2norm_fwd = poa_cuda_l2norm_fwd,
    .l2norm_bwd = poa_cuda_l2norm_bwd,
    .weightnorm_fwd = poa_cuda_weightnorm_fwd,
    .weightnorm_bwd = poa_cuda_weightnorm_bwd,
    .axpy = poa_cuda_axpy,
    .scale = poa_cuda_scale,
    .pos_resample_fwd = poa_cuda_pos_resample_fwd,
    .pos_resample_bwd = poa_cuda_pos_resample_bwd,
    .act_from_f32 = poa_cuda_act_from_f32,
    .act_gemm = poa_cuda_act_gemm,
    .act_gemm_bias = poa_cuda_act_gemm_bias,
    .act_gemm_wgrad = poa_cuda_act_gemm_wgrad,
    .act_bias_grad = poa_cuda_act_bias_grad,
    .act_gelu_fwd = poa_cuda_act_gelu_fwd,
    .act_gelu_bwd = poa_cuda_act_gelu_bwd,
    .layernorm_fwd = poa_cuda_layernorm_fwd,
    .layernorm_bwd = poa_cuda_layernorm_bwd,
    .attention_fwd = poa_cuda_attention_fwd,
    .attention_bwd = poa_cuda_attention_bwd,
    .attention_saved_bytes = poa_cuda_attention_saved_bytes,
    .attention_scratch_bytes = poa_cuda_attention_scratch_bytes,
    .residual_ls_fwd = poa_cuda_residual_ls_fwd,
    .residual_ls_bwd = poa_cuda_residual_ls_bwd,
    .patch_unfold = poa_cuda_patch_unfold,
    .tokens_fwd = poa_cuda_tokens_fwd,
    .tokens_bwd = poa_cuda_tokens_bwd,
    .act_gather_rows = poa_cuda_act_gather_rows,
    .act_scatter_add_rows = poa_cuda_act_scatter_add_rows,
    .act_gather_rows_f32 = poa_cuda_act_gather_rows_f32,
    .act_scatter_add_rows_f32 = poa_cuda_act_scatter_add_rows_f32,
};

static const poa_train_ops cuda_train_ops = {
    .sum_squares = poa_cuda_sum_squares,
    .softmax_rows = poa_cuda_softmax_rows,
    .xent = poa_cuda_xent,
    .col_max = poa_cuda_col_max,
    .sk_exp = poa_cuda_sk_exp,
    .sk_normalize = poa_cuda_sk_normalize,
    .koleo = poa_cuda_koleo,
    .koleo_scratch_bytes = poa_cuda_koleo_scratch_bytes,
    .adamw = poa_cuda_adamw,
    .ema = poa_cuda_ema,
};

/* ------------------------------------------------------------------------ creation */
int poa_cuda_devices(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* "no driver" / "no device": clear it, it is an answer here */
        return 0;
    }
    return n;
}

void poa_cuda_backend_tables(const poa_backend_iface **iface, const poa_nn_ops **nn,
                             const poa_train_ops **train)
{
    *iface = &cuda_iface;
    *nn = &cuda_nn_ops;
    *train = &cuda_train_ops;
}

/* Releases what a (possibly partly) created backend holds; every field may be empty. */
static void release_impl(cuda_impl *im)
{
    if (im->gemm_cache) poa_cuda_gemm_cache_destroy(im->gemm_cache);
    if (im->lt) cublasLtDestroy(im->lt);
    if (im->cublas) cublasDestroy(im->cublas);
    if (im->lt_workspace) cudaFree(im->lt_workspace);
    if (im->scratch) cudaFree(im->scratch);
    if (im->xfer) cudaStreamDestroy(im->xfer);
    if (im->stream) cudaStreamDestroy(im->stream);
    free(im);
}

/* The device checks that fail with a message rather than a crash: no device, index out of
 * range, dtype not supported, no kernel image for this GPU. */
static int check_device(const poa_backend_opts *o, char *errbuf, size_t errlen)
{
    if (o->act_dtype != POA_DT_F32 && o->act_dtype != POA_DT_BF16) {
        snprintf(errbuf, errlen, "cuda: compute dtype %d is not supported (fp32 or bf16)",
                 (int) o->act_dtype);
        return 0;
    }
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1) {
        const char *why = e != cudaSuccess ? cudaGetErrorString(e) : "no GPU";
        cudaGetLastError();
        const char *vis = getenv("CUDA_VISIBLE_DEVICES");
        snprintf(errbuf, errlen, "cuda: no CUDA device is visible (%s; CUDA_VISIBLE_DEVICES=%s)",
                 why, vis ? vis : "(unset)");
        return 0;
    }
    if (o->device < 0 || o->device >= n) {
        snprintf(errbuf, errlen, "cuda: device %d does not exist (%d visible: 0..%d)", o->device, n,
                 n - 1);
        return 0;
    }
    return 1;
}

#define CREATE_CUDA(call)                                                                          \
    do {                                                                                           \
        const cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess) {                                                                   \
            snprintf(errbuf, errlen, "cuda: %s failed: %s (%s)", #call, cudaGetErrorString(e_),    \
                     cudaGetErrorName(e_));                                                        \
            cudaGetLastError();                                                                    \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)
#define CREATE_CUBLAS(call)                                                                        \
    do {                                                                                           \
        const cublasStatus_t s_ = (call);                                                          \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            snprintf(errbuf, errlen, "cuda: %s failed: cuBLAS status %d (%s)", #call, (int) s_,    \
                     cublasGetStatusString(s_));                                                   \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

poa_backend *poa_cuda_backend_create(const poa_backend_opts *opts, char *errbuf, size_t errlen)
{
    const poa_backend_opts defaults = {.act_dtype = POA_DT_F32, .device = 0, .allow_tf32 = 0};
    const poa_backend_opts *o = opts ? opts : &defaults;
    if (!check_device(o, errbuf, errlen)) return NULL;

    cuda_impl *im = poa_xcalloc(1, sizeof *im);
    im->device = o->device;
    im->act = o->act_dtype;
    im->allow_tf32 = o->allow_tf32 != 0;
    CREATE_CUDA(cudaSetDevice(o->device));
    struct cudaDeviceProp prop;
    CREATE_CUDA(cudaGetDeviceProperties(&prop, o->device));
    snprintf(im->device_name, sizeof im->device_name, "%s", prop.name);
    im->sm_major = prop.major, im->sm_minor = prop.minor;
    im->sm_count = prop.multiProcessorCount;
    im->total_mem = prop.totalGlobalMem;
    const int probe = poa_cuda_probe_kernels();
    if (probe != 0) {
        snprintf(errbuf, errlen,
                 "cuda: device %d (%s, sm_%d%d) cannot run this build's kernels: %s "
                 "(reconfigure with --with-cuda-arch=%d%d)",
                 o->device, prop.name, prop.major, prop.minor,
                 cudaGetErrorString((cudaError_t) probe), prop.major, prop.minor);
        cudaGetLastError();
        goto fail;
    }

    CREATE_CUDA(cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking));
    CREATE_CUDA(cudaStreamCreateWithFlags(&im->xfer, cudaStreamNonBlocking));
    CREATE_CUDA(cudaMalloc(&im->scratch, POA_CUDA_SCRATCH_BYTES));
    CREATE_CUDA(cudaMalloc(&im->lt_workspace, POA_CUDA_LT_WORKSPACE_BYTES));
    CREATE_CUBLAS(cublasCreate(&im->cublas));
    CREATE_CUBLAS(cublasSetStream(im->cublas, im->stream));
    /* The cuBLAS fallback GEMMs name their compute type explicitly (COMPUTE_32F_FAST_TF32 for
     * the fp32 GEMMs when allow_tf32).  The handle stays in the default math mode: in TF32 mode
     * cuBLAS may also run COMPUTE_32F products on TF32 tensor cores, which the activation
     * GEMMs of an fp32 run must never do (cuda_gemm.cu, "Types"). */
    CREATE_CUBLAS(cublasSetMathMode(im->cublas, CUBLAS_DEFAULT_MATH));
    CREATE_CUBLAS(cublasLtCreate(&im->lt));
    im->gemm_cache = poa_cuda_gemm_cache_create();

    poa_backend *be = poa_xcalloc(1, sizeof *be);
    be->name = "cuda";
    be->act_dtype = o->act_dtype;
    be->act_size = poa_dtype_size(o->act_dtype);
    be->iface = &cuda_iface;
    be->nn = &cuda_nn_ops;
    be->train = &cuda_train_ops;
    be->impl = im;
    return be;

fail:
    release_impl(im);
    return NULL;
}

void poa_cuda_destroy(poa_backend *be)
{
    if (!be) return;
    cuda_impl *im = impl_of(be);
    poa_cuda_synchronize(be);
    release_impl(im);
    free(be);
}
