/* dist_nccl.h — the NCCL/CUDA half of the dist layer (dist_nccl.c, built only with NCCL).
 * Plain C: streams are passed as void * (cudaStream_t), no CUDA types here. */
#ifndef POA_DIST_NCCL_H
#define POA_DIST_NCCL_H

#include <mpi.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dist_nccl dist_nccl;
typedef struct dist_nccl_buckets dist_nccl_buckets;

typedef enum { DIST_F32 = 0, DIST_F64 = 1 } dist_dtype;
typedef enum { DIST_SUM = 0, DIST_MAX = 1 } dist_op;

/* Select the GPU of this local rank, create the communicator (unique id from rank 0 over
 * comm), register the abort hook.  Collective over comm. */
dist_nccl *dist_nccl_init(MPI_Comm comm, int rank, int size, int local_rank, int local_size);
void dist_nccl_finalize(dist_nccl *n);
void dist_nccl_set_stream(dist_nccl *n, void *stream);
/* 1 when p is device (or managed) memory that NCCL can use. */
int dist_nccl_is_device_ptr(const void *p);
void dist_nccl_allreduce(dist_nccl *n, void *buf, size_t count, dist_dtype t, dist_op op);
void dist_nccl_broadcast(dist_nccl *n, void *buf, size_t count, dist_dtype t, int root);
/* Device → host copy on the compute stream, then wait for that stream. */
void dist_nccl_download(dist_nccl *n, void *host, const void *dev, size_t bytes);

dist_nccl_buckets *dist_nccl_buckets_create(dist_nccl *n, int n_buckets);
void dist_nccl_buckets_destroy(dist_nccl_buckets *b);
/* Enqueue: compute stream → event → comm stream: all-reduce, scale (if != 1), done event.
 * The first start of a step opens the step's timing window. */
void dist_nccl_bucket_start(dist_nccl_buckets *b, int id, float *ptr, size_t count, float scale);
void dist_nccl_bucket_wait(dist_nccl_buckets *b, int id);
/* Compute stream waits for every started bucket; closes the step's timing window. */
void dist_nccl_buckets_wait_all(dist_nccl_buckets *b, const int *started, int n_buckets);
/* Comm / exposed seconds accumulated since the last reset (waits for pending timing events). */
void dist_nccl_buckets_timing(dist_nccl_buckets *b, double *comm_s, double *exposed_s);
void dist_nccl_buckets_timing_reset(dist_nccl_buckets *b);

/* dist_kernels.cu: x[0:n] *= a on stream; 0 or a CUDA error code. */
int poa_dist_cuda_scale(float *x, float a, size_t n, void *stream);
const char *poa_dist_cuda_error_string(int code);

#ifdef __cplusplus
}
#endif
#endif
