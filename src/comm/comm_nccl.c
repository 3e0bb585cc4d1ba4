/* comm_nccl.c — NCCL communicator, small collectives on the compute stream, and the bucket
 * reduces on a communication stream with events both ways (docs/architecture.md
 * §7.3: no device-wide synchronisation inside a step).  Built only with NCCL. */
#include "poa_config.h"
#include "comm/comm_nccl.h"
#include "comm/comm_internal.h"
#include "common/log.h"
#include "common/poa_error.h"

#include <cuda_runtime_api.h>
/* nccl.h declares a few `f()` functions; it is not installed as a system header here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <nccl.h>
#pragma GCC diagnostic pop
#include <stdlib.h>
#include <string.h>

#define CUDA_OK(call)                                                                              \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        POA_CHECK(e_ == cudaSuccess, "CUDA error: %s", cudaGetErrorString(e_));                    \
    } while (0)

#define NCCL_OK(comm, call)                                                                        \
    do {                                                                                           \
        ncclResult_t r_ = (call);                                                                  \
        POA_CHECK(r_ == ncclSuccess, "NCCL error: %s (%s)", ncclGetErrorString(r_),                \
                  nccl_last_error(comm));                                                          \
    } while (0)

struct poa_comm_nccl {
    ncclComm_t comm;
    int device;
    cudaStream_t stream; /* the backend's compute stream */
    int stream_set;      /* poa_comm_set_compute_stream was called */
};

/* The CUDA backend runs on a non-blocking stream, which the legacy default stream does not
 * order with: enqueueing before the stream is known would race silently. */
static cudaStream_t compute_stream(const poa_comm_nccl *n)
{
    POA_CHECK(n->stream_set,
              "NCCL kind: call poa_comm_set_compute_stream() with the backend's stream "
              "before collectives on device memory or bucket sets");
    return n->stream;
}

static const char *nccl_last_error(ncclComm_t comm)
{
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
    const char *s = ncclGetLastError(comm);
    return s && s[0] ? s : "no further detail";
#else
    (void) comm;
    return "no further detail";
#endif
}

/* ------------------------------------------------------------------ fatal path */

/* The fatal path aborts the communicator so that the other ranks' NCCL calls fail instead of
 * hanging; MPI_Abort follows (poa_error.c).  One global, cleared when the comm is destroyed. */
static ncclComm_t abort_comm;
static int abort_hook_registered;

static void abort_nccl(void *ctx)
{
    (void) ctx;
    if (abort_comm) {
        ncclComm_t c = abort_comm;
        abort_comm = NULL;
        ncclCommAbort(c);
    }
}

/* ------------------------------------------------------------------ setup */

/* One GPU per local rank; with one visible GPU per rank (srun --gpus-per-task=1 or
 * CUDA_VISIBLE_DEVICES set per task) every rank uses device 0. */
static int choose_device(int local_rank, int local_size)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1)
        poa_die(POA_EXIT_USAGE, "the NCCL backend needs a CUDA device, but none is visible (%s)",
                cudaGetErrorString(e));
    if (n >= local_size) return local_rank;
    if (n == 1) return 0;
    poa_die(POA_EXIT_USAGE,
            "%d ranks on this node but %d GPUs: start one rank per GPU (e.g. srun "
            "--ntasks-per-node=%d --gpus-per-task=1)",
            local_size, n, n);
}

poa_comm_nccl *poa_comm_nccl_init(MPI_Comm comm, int rank, int size, int local_rank, int local_size)
{
    poa_comm_nccl *n = poa_xcalloc(1, sizeof *n);
    n->device = choose_device(local_rank, local_size);
    CUDA_OK(cudaSetDevice(n->device));
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (rank == 0) NCCL_OK(NULL, ncclGetUniqueId(&id));
    POA_COMM_MPI_OK(MPI_Bcast(&id, (int) sizeof id, MPI_BYTE, 0, comm));
    NCCL_OK(NULL, ncclCommInitRank(&n->comm, size, id, rank));
    abort_comm = n->comm;
    if (!abort_hook_registered) {
        poa_register_abort_hook(abort_nccl, NULL);
        abort_hook_registered = 1;
    }
    int v = 0;
    ncclGetVersion(&v);
    poa_debug("NCCL %d: rank %d of %d on device %d", v, rank, size, n->device);
    return n;
}

void poa_comm_nccl_finalize(poa_comm_nccl *n)
{
    if (!n) return;
    abort_comm = NULL;
    NCCL_OK(n->comm, ncclCommDestroy(n->comm));
    free(n);
}

void poa_comm_nccl_set_stream(poa_comm_nccl *n, void *stream)
{
    n->stream = (cudaStream_t) stream;
    n->stream_set = 1;
}

int poa_comm_nccl_is_device_ptr(const void *p)
{
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError(); /* plain host memory on old drivers: clear the error */
        return 0;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

static ncclDataType_t nccl_type(poa_comm_dtype t)
{
    return t == POA_COMM_F64 ? ncclFloat64 : ncclFloat32;
}

void poa_comm_nccl_allreduce(poa_comm_nccl *n, void *buf, size_t count, poa_comm_dtype t,
                             poa_comm_op op)
{
    NCCL_OK(n->comm,
            ncclAllReduce(buf, buf, count, nccl_type(t), op == POA_COMM_MAX ? ncclMax : ncclSum,
                          n->comm, compute_stream(n)));
}

void poa_comm_nccl_broadcast(poa_comm_nccl *n, void *buf, size_t count, poa_comm_dtype t, int root)
{
    NCCL_OK(n->comm,
            ncclBroadcast(buf, buf, count, nccl_type(t), root, n->comm, compute_stream(n)));
}

void poa_comm_nccl_download(poa_comm_nccl *n, void *host, const void *dev, size_t bytes)
{
    CUDA_OK(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, compute_stream(n)));
    CUDA_OK(cudaStreamSynchronize(n->stream));
}

/* ------------------------------------------------------------------ buckets */

/* Timing events of one step: the communication window on the comm stream and the compute
 * stream's stall in wait_all.  A small ring, read once the events have completed. */
#define TIMING_RING 4
typedef struct step_events {
    cudaEvent_t comm_begin, comm_end, wait_begin, wait_end;
    int pending;
} step_events;

struct poa_comm_nccl_buckets {
    poa_comm_nccl *n;
    int nb;
    cudaStream_t comm;
    cudaEvent_t *ready; /* compute → comm: the bucket's gradients are final   */
    cudaEvent_t *done;  /* comm → compute: the bucket is reduced and scaled   */
    step_events ring[TIMING_RING];
    int slot;      /* ring slot of the current step                  */
    int step_open; /* a reduce was enqueued in the current step      */
    double comm_s, exposed_s;
};

static void read_slot(poa_comm_nccl_buckets *b, step_events *e, int block)
{
    if (!e->pending) return;
    if (!block && cudaEventQuery(e->wait_end) != cudaSuccess) {
        cudaGetLastError(); /* cudaErrorNotReady is not an error here */
        return;
    }
    CUDA_OK(cudaEventSynchronize(e->wait_end));
    CUDA_OK(cudaEventSynchronize(e->comm_end));
    float comm_ms = 0, wait_ms = 0;
    CUDA_OK(cudaEventElapsedTime(&comm_ms, e->comm_begin, e->comm_end));
    CUDA_OK(cudaEventElapsedTime(&wait_ms, e->wait_begin, e->wait_end));
    b->comm_s += comm_ms * 1e-3;
    b->exposed_s += wait_ms * 1e-3;
    e->pending = 0;
}

poa_comm_nccl_buckets *poa_comm_nccl_buckets_create(poa_comm_nccl *n, int n_buckets)
{
    (void) compute_stream(n);
    poa_comm_nccl_buckets *b = poa_xcalloc(1, sizeof *b);
    b->n = n;
    b->nb = n_buckets;
    /* The highest priority lets reduces overtake queued backward kernels. */
    int lo = 0, hi = 0;
    CUDA_OK(cudaDeviceGetStreamPriorityRange(&lo, &hi));
    CUDA_OK(cudaStreamCreateWithPriority(&b->comm, cudaStreamNonBlocking, hi));
    b->ready = poa_xcalloc((size_t) (n_buckets ? n_buckets : 1), sizeof *b->ready);
    b->done = poa_xcalloc((size_t) (n_buckets ? n_buckets : 1), sizeof *b->done);
    for (int i = 0; i < n_buckets; i++) {
        CUDA_OK(cudaEventCreateWithFlags(&b->ready[i], cudaEventDisableTiming));
        CUDA_OK(cudaEventCreateWithFlags(&b->done[i], cudaEventDisableTiming));
    }
    for (int k = 0; k < TIMING_RING; k++) {
        step_events *e = &b->ring[k];
        CUDA_OK(cudaEventCreate(&e->comm_begin));
        CUDA_OK(cudaEventCreate(&e->comm_end));
        CUDA_OK(cudaEventCreate(&e->wait_begin));
        CUDA_OK(cudaEventCreate(&e->wait_end));
    }
    return b;
}

void poa_comm_nccl_buckets_destroy(poa_comm_nccl_buckets *b)
{
    if (!b) return;
    CUDA_OK(cudaStreamSynchronize(b->comm));
    for (int i = 0; i < b->nb; i++) {
        cudaEventDestroy(b->ready[i]);
        cudaEventDestroy(b->done[i]);
    }
    for (int k = 0; k < TIMING_RING; k++) {
        step_events *e = &b->ring[k];
        cudaEventDestroy(e->comm_begin);
        cudaEventDestroy(e->comm_end);
        cudaEventDestroy(e->wait_begin);
        cudaEventDestroy(e->wait_end);
    }
    cudaStreamDestroy(b->comm);
    free(b->ready);
    free(b->done);
    free(b);
}

void poa_comm_nccl_bucket_start(poa_comm_nccl_buckets *b, int id, float *ptr, size_t count,
                                float scale)
{
    cudaStream_t compute = b->n->stream;
    CUDA_OK(cudaEventRecord(b->ready[id], compute));
    CUDA_OK(cudaStreamWaitEvent(b->comm, b->ready[id], 0));
    if (!b->step_open) {
        step_events *e = &b->ring[b->slot];
        read_slot(b, e, 1); /* a slot from TIMING_RING steps ago: long finished */
        CUDA_OK(cudaEventRecord(e->comm_begin, b->comm));
        b->step_open = 1;
    }
    NCCL_OK(b->n->comm, ncclAllReduce(ptr, ptr, count, ncclFloat32, ncclSum, b->n->comm, b->comm));
    if (scale != 1.0f) {
        int rc = poa_comm_cuda_scale(ptr, scale, count, b->comm);
        POA_CHECK(rc == 0, "CUDA error: %s", poa_comm_cuda_error_string(rc));
    }
    CUDA_OK(cudaEventRecord(b->done[id], b->comm));
}

void poa_comm_nccl_bucket_wait(poa_comm_nccl_buckets *b, int id)
{
    CUDA_OK(cudaStreamWaitEvent(b->n->stream, b->done[id], 0));
}

void poa_comm_nccl_buckets_wait_all(poa_comm_nccl_buckets *b, const int *started, int n_buckets)
{
    cudaStream_t compute = b->n->stream;
    if (!b->step_open) return; /* nothing was enqueued */
    step_events *e = &b->ring[b->slot];
    CUDA_OK(cudaEventRecord(e->comm_end, b->comm));
    CUDA_OK(cudaEventRecord(e->wait_begin, compute));
    for (int id = 0; id < n_buckets; id++)
        if (started[id]) CUDA_OK(cudaStreamWaitEvent(compute, b->done[id], 0));
    CUDA_OK(cudaEventRecord(e->wait_end, compute));
    e->pending = 1;
    b->step_open = 0;
    b->slot = (b->slot + 1) % TIMING_RING;
    for (int k = 0; k < TIMING_RING; k++) read_slot(b, &b->ring[k], 0);
}

void poa_comm_nccl_buckets_timing(poa_comm_nccl_buckets *b, double *comm_s, double *exposed_s)
{
    for (int k = 0; k < TIMING_RING; k++) read_slot(b, &b->ring[k], 1);
    *comm_s = b->comm_s;
    *exposed_s = b->exposed_s;
}

void poa_comm_nccl_buckets_timing_reset(poa_comm_nccl_buckets *b)
{
    for (int k = 0; k < TIMING_RING; k++) read_slot(b, &b->ring[k], 1);
    b->comm_s = b->exposed_s = 0;
}
