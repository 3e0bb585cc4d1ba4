/* comm_nccl.h — the NCCL/CUDA half of the comm layer (comm_nccl.c, built only with NCCL).
 * Plain C: streams are passed as void * (cudaStream_t), no CUDA types here. */
#ifndef POA_COMM_NCCL_H
#define POA_COMM_NCCL_H

#include <mpi.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct poa_comm_nccl poa_comm_nccl;
typedef struct poa_comm_nccl_buckets poa_comm_nccl_buckets;

typedef enum { POA_COMM_F32 = 0, POA_COMM_F64 = 1 } poa_comm_dtype;
typedef enum { POA_COMM_SUM = 0, POA_COMM_MAX = 1 } poa_comm_op;

/* Select the GPU of this local rank, create the communicator (unique id from rank 0 over
 * comm), register the abort hook.  Collective over comm. */
poa_comm_nccl *poa_comm_nccl_init(MPI_Comm comm, int rank, int size, int local_rank,
                                  int local_size);
void poa_comm_nccl_finalize(poa_comm_nccl *n);
void poa_comm_nccl_set_stream(poa_comm_nccl *n, void *stream);
/* 1 when p is device (or managed) memory that NCCL can use. */
int poa_comm_nccl_is_device_ptr(const void *p);
void poa_comm_nccl_allreduce(poa_comm_nccl *n, void *buf, size_t count, poa_comm_dtype t,
                             poa_comm_op op);
void poa_comm_nccl_broadcast(poa_comm_nccl *n, void *buf, size_t count, poa_comm_dtype t, int root);
/* Device → host copy on the compute stream, then wait for that stream. */
void poa_comm_nccl_download(poa_comm_nccl *n, void *host, const void *dev, size_t bytes);

poa_comm_nccl_buckets *poa_comm_nccl_buckets_create(poa_comm_nccl *n, int n_buckets);
void poa_comm_nccl_buckets_destroy(poa_comm_nccl_buckets *b);
/* Enqueue: compute stream → event → comm stream: all-reduce, scale (if != 1), done event.
 * The first start of a step opens the step's timing window. */
void poa_comm_nccl_bucket_start(poa_comm_nccl_buckets *b, int id, float *ptr, size_t count,
                                float scale);
void poa_comm_nccl_bucket_wait(poa_comm_nccl_buckets *b, int id);
/* Compute stream waits for every started bucket; closes the step's timing window. */
void poa_comm_nccl_buckets_wait_all(poa_comm_nccl_buckets *b, const int *started, int n_buckets);
/* Comm / exposed seconds accumulated since the last reset (waits for pending timing events). */
void poa_comm_nccl_buckets_timing(poa_comm_nccl_buckets *b, double *comm_s, double *exposed_s);
void poa_comm_nccl_buckets_timing_reset(poa_comm_nccl_buckets *b);

/* comm_kernels.cu: x[0:n] *= a on stream; 0 or a CUDA error code. */
int poa_comm_cuda_scale(float *x, float a, size_t n, void *stream);
const char *poa_comm_cuda_error_string(int code);

#ifdef __cplusplus
}
#endif
#endif
