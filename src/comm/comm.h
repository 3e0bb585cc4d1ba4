/* comm.h — the distributed layer: process setup and collectives (gradient buckets: buckets.h).
 *
 * One interface for both kinds (docs/architecture.md §7):
 *  - POA_COMM_MPI:  buffers are host memory (CPU backend); collectives are MPI on a private
 *                   duplicate of MPI_COMM_WORLD; bucket reduces are MPI_Iallreduce.
 *  - POA_COMM_NCCL: buffers are device memory (CUDA backend); collectives are NCCL calls on the
 *                   backend's compute stream (small ones) or on a communication stream with
 *                   cudaEvents both ways (buckets); no device-wide synchronisation.
 * MPI always manages the processes: local rank from MPI_Comm_split_type(SHARED), one GPU per
 * local rank, the NCCL unique id broadcast over MPI, no TCP/file bootstrap of our own.
 * The "host" collectives (poa_comm_host_*) use MPI in both kinds and take host memory.
 *
 * Library failures are fatal (POA_CHECK with the MPI/NCCL/CUDA error string); the NCCL
 * communicator is aborted by a hook on the fatal path so that no rank hangs in a collective.
 *
 * Rank groups (docs/algorithm.md §1.2; G groups of B images on one rank): Sinkhorn-Knopp
 * (docs/algorithm.md §6.2) runs over the rows of all groups of all ranks.  The caller pools its
 * G groups' rows into one call, whose per-prototype maxima and sums are reduced with
 * poa_comm_allreduce_max_f64 / poa_comm_allreduce_sum_f64 (docs/architecture.md §7.2); nothing
 * else is needed here.
 */
#ifndef POA_COMM_COMM_H
#define POA_COMM_COMM_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

typedef enum poa_comm_kind { POA_COMM_MPI = 0, POA_COMM_NCCL = 1 } poa_comm_kind;

typedef struct poa_comm poa_comm;

/* "mpi" / "nccl". */
const char *poa_comm_kind_name(poa_comm_kind kind);
/* Whether this build supports kind (NCCL needs configure --with-nccl). */
int poa_comm_kind_available(poa_comm_kind kind);

/* Initialise MPI if the program has not (MPI_THREAD_FUNNELED; then poa_comm_finalize finalises it),
 * duplicate MPI_COMM_WORLD, find the local rank; for NCCL select GPU local_rank (fatal when the
 * node has fewer GPUs than ranks) and create the communicator.  Collective over all ranks.
 * An unavailable kind is a usage error (exit POA_EXIT_USAGE with a message). */
poa_comm *poa_comm_init(int *argc, char ***argv, poa_comm_kind kind);
/* Destroy communicators; MPI_Finalize if poa_comm_init initialised MPI.  Collective. */
void poa_comm_finalize(poa_comm *d);

int poa_comm_rank(const poa_comm *d);
int poa_comm_world_size(const poa_comm *d);
int poa_comm_local_rank(const poa_comm *d);
int poa_comm_local_size(const poa_comm *d);
poa_comm_kind poa_comm_kind_of(const poa_comm *d);
MPI_Comm poa_comm_mpi_comm(const poa_comm *d);

/* NCCL: the stream that the backend's kernels run on (a cudaStream_t).  Small collectives are
 * enqueued on it and bucket reduces synchronise with it through events.  Must be set before
 * any collective on backend memory or bucket set creation; ignored by the MPI kind.  NULL means
 * the legacy default stream (only correct if the backend uses it). */
void poa_comm_set_compute_stream(poa_comm *d, void *stream);

/* ------------------------------------------------------------------ backend-memory collectives */
/* In-place sums/max over all ranks of n values in backend memory (host for MPI, device for
 * NCCL).  NCCL: enqueued on the compute stream, so later kernels on that stream see the result
 * without a host synchronisation.  Used for the Sinkhorn-Knopp sums (docs/algorithm.md §6.2;
 * docs/architecture.md §7.2) and counts. */
void poa_comm_allreduce_sum_f32(poa_comm *d, float *buf, size_t n);
void poa_comm_allreduce_sum_f64(poa_comm *d, double *buf, size_t n);
void poa_comm_allreduce_max_f32(poa_comm *d, float *buf, size_t n);
void poa_comm_allreduce_max_f64(poa_comm *d, double *buf, size_t n);
/* Broadcast n floats from root (the initial parameters from rank 0, docs/algorithm.md §2.7). */
void poa_comm_broadcast_f32(poa_comm *d, float *buf, size_t n, int root);

/* 64-bit hash of `bytes` bytes of backend memory, compared across ranks: returns 1 when every
 * rank holds the same bits, 0 otherwise (on every rank).  When `first_diff` is non-NULL it
 * receives the lowest rank whose hash differs from rank 0's (-1 when identical).  NCCL: copies
 * the buffer to the host on the compute stream and waits for that stream (not for a step). */
int poa_comm_check_identical(poa_comm *d, const void *buf, size_t bytes, int *first_diff);

/* ------------------------------------------------------------------ host collectives (MPI) */
void poa_comm_host_allreduce_sum_f64(poa_comm *d, double *buf, size_t n);
void poa_comm_host_allreduce_sum_i64(poa_comm *d, int64_t *buf, size_t n);
void poa_comm_host_allreduce_max_f64(poa_comm *d, double *buf, size_t n);
void poa_comm_host_broadcast(poa_comm *d, void *buf, size_t bytes, int root);
/* 1 on every rank if flag != 0 on any rank (e.g. a NaN loss anywhere skips the step
 * everywhere, docs/algorithm.md §8.6). */
int poa_comm_any(poa_comm *d, int flag);
/* Largest value of v over all ranks. */
int poa_comm_max_int(poa_comm *d, int v);
void poa_comm_barrier(poa_comm *d);
int poa_comm_check_identical_host(poa_comm *d, const void *buf, size_t bytes, int *first_diff);

/* Gather one uint64 blob per rank to `root` (the per-rank RNG/sampler states that a checkpoint
 * stores).  On root *all / *lens get world-size malloc'ed arrays (free each blob, then both
 * arrays); other ranks get NULL.  Lengths may differ and may be 0. */
void poa_comm_gather_blobs(poa_comm *d, const uint64_t *mine, size_t n, int root, uint64_t ***all,
                           size_t **lens);
/* The inverse: root holds n_root blobs; rank r receives blob r (malloc'ed, *n) or an empty blob
 * when r >= n_root (a resumed run with more ranks than the writer had). */
void poa_comm_scatter_blobs(poa_comm *d, uint64_t *const *all, const size_t *lens, int n_root,
                            int root, uint64_t **mine, size_t *n);

/* The hash used by poa_comm_check_identical (stable across runs and machines). */
uint64_t poa_comm_hash64(const void *buf, size_t bytes);

#endif
