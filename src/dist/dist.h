/* dist.h — the distributed layer: process setup, small collectives, gradient buckets.
 *
 * One interface for both kinds (architecture note, "Distributed rules"):
 *  - POA_DIST_MPI:  buffers are host memory (CPU backend); collectives are MPI on a private
 *                   duplicate of MPI_COMM_WORLD; bucket reduces are MPI_Iallreduce.
 *  - POA_DIST_NCCL: buffers are device memory (CUDA backend); collectives are NCCL calls on the
 *                   backend's compute stream (small ones) or on a communication stream with
 *                   cudaEvents both ways (buckets); no device-wide synchronisation.
 * MPI always manages the processes: local rank from MPI_Comm_split_type(SHARED), one GPU per
 * local rank, the NCCL unique id broadcast over MPI, no TCP/file bootstrap of our own.
 * The "host" collectives (dist_host_*) use MPI in both kinds and take host memory.
 *
 * Library failures are fatal (POA_CHECK with the MPI/NCCL/CUDA error string); the NCCL
 * communicator is aborted by a hook on the fatal path so that no rank hangs in a collective.
 *
 * Rank groups (spec, "Rank group"; G groups of B images on one rank): the Sinkhorn-Knopp sums of
 * spec §4.1 run over the union of all groups of all ranks.  The caller adds its G local partial
 * sums into one buffer and calls dist_allreduce_sum_f32 once; nothing else is needed here.
 */
#ifndef POA_DIST_DIST_H
#define POA_DIST_DIST_H

#include "tensor/params.h"

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

typedef enum poa_dist_kind { POA_DIST_MPI = 0, POA_DIST_NCCL = 1 } poa_dist_kind;

typedef struct poa_dist poa_dist;

/* "mpi" / "nccl". */
const char *dist_kind_name(poa_dist_kind kind);
/* Whether this build supports kind (NCCL needs configure --with-nccl). */
int dist_kind_available(poa_dist_kind kind);

/* Initialise MPI if the program has not (MPI_THREAD_FUNNELED; then dist_finalize finalises it),
 * duplicate MPI_COMM_WORLD, find the local rank; for NCCL select GPU local_rank (fatal when the
 * node has fewer GPUs than ranks) and create the communicator.  Collective over all ranks.
 * An unavailable kind is a usage error (exit POA_EXIT_USAGE with a message). */
poa_dist *dist_init(int *argc, char ***argv, poa_dist_kind kind);
/* Destroy communicators; MPI_Finalize if dist_init initialised MPI.  Collective. */
void dist_finalize(poa_dist *d);

int dist_rank(const poa_dist *d);
int dist_world_size(const poa_dist *d);
int dist_local_rank(const poa_dist *d);
int dist_local_size(const poa_dist *d);
poa_dist_kind dist_kind(const poa_dist *d);
MPI_Comm dist_mpi_comm(const poa_dist *d);

/* NCCL: the stream that the backend's kernels run on (a cudaStream_t).  Small collectives are
 * enqueued on it and bucket reduces synchronise with it through events.  Must be set before
 * any collective on backend memory or bucket set creation; ignored by the MPI kind.  NULL means
 * the legacy default stream (only correct if the backend uses it). */
void dist_set_compute_stream(poa_dist *d, void *stream);

/* ------------------------------------------------------------------ backend-memory collectives */
/* In-place sums/max over all ranks of n values in backend memory (host for MPI, device for
 * NCCL).  NCCL: enqueued on the compute stream, so later kernels on that stream see the result
 * without a host synchronisation.  Used for the Sinkhorn-Knopp sums (spec §4.1) and counts. */
void dist_allreduce_sum_f32(poa_dist *d, float *buf, size_t n);
void dist_allreduce_sum_f64(poa_dist *d, double *buf, size_t n);
void dist_allreduce_max_f32(poa_dist *d, float *buf, size_t n);
void dist_allreduce_max_f64(poa_dist *d, double *buf, size_t n);
/* Broadcast n floats from root (the initial parameters from rank 0, spec §1.6). */
void dist_broadcast_f32(poa_dist *d, float *buf, size_t n, int root);

/* 64-bit hash of `bytes` bytes of backend memory, compared across ranks: returns 1 when every
 * rank holds the same bits, 0 otherwise (on every rank).  When `first_diff` is non-NULL it
 * receives the lowest rank whose hash differs from rank 0's (-1 when identical).  NCCL: copies
 * the buffer to the host on the compute stream and waits for that stream (not for a step). */
int dist_check_identical(poa_dist *d, const void *buf, size_t bytes, int *first_diff);

/* ------------------------------------------------------------------ host collectives (MPI) */
void dist_host_allreduce_sum_f64(poa_dist *d, double *buf, size_t n);
void dist_host_allreduce_sum_i64(poa_dist *d, int64_t *buf, size_t n);
void dist_host_allreduce_max_f64(poa_dist *d, double *buf, size_t n);
void dist_host_broadcast(poa_dist *d, void *buf, size_t bytes, int root);
/* 1 on every rank if flag != 0 on any rank (e.g. a NaN loss anywhere skips the step
 * everywhere, spec §6.5). */
int dist_any(poa_dist *d, int flag);
/* Largest value of v over all ranks. */
int dist_max_int(poa_dist *d, int v);
void dist_barrier(poa_dist *d);
int dist_check_identical_host(poa_dist *d, const void *buf, size_t bytes, int *first_diff);

/* Gather one uint64 blob per rank to `root` (the per-rank RNG/sampler states that a checkpoint
 * stores).  On root *all / *lens get world-size malloc'ed arrays (free each blob, then both
 * arrays); other ranks get NULL.  Lengths may differ and may be 0. */
void dist_gather_blobs(poa_dist *d, const uint64_t *mine, size_t n, int root, uint64_t ***all,
                       size_t **lens);
/* The inverse: root holds n_root blobs; rank r receives blob r (malloc'ed, *n) or an empty blob
 * when r >= n_root (a resumed run with more ranks than the writer had). */
void dist_scatter_blobs(poa_dist *d, uint64_t *const *all, const size_t *lens, int n_root, int root,
                        uint64_t **mine, size_t *n);

/* The hash used by dist_check_identical (stable across runs and machines). */
uint64_t dist_hash64(const void *buf, size_t bytes);

/* ------------------------------------------------------------------ gradient buckets */
/* A bucket is the contiguous range [begin, end) of one bucket id of the parameter table
 * (poa_params_bucket_range) in the flat gradient buffer; one bucket per block, plus the
 * embeddings, the final norm and the heads.  Per step:
 *
 *   for each backward op ...: after the last write to bucket b's gradients, dist_bucket_start(s,
 * b); between ops, dist_progress(s); dist_buckets_wait_all(s);   // the optimizer may now read the
 * reduced gradients
 *
 * A bucket may be started only after the last backward pass that touches it in the step
 * (architecture note).  Starting a bucket twice in one step is fatal; wait_all starts buckets
 * that were never started (counted in late_starts) so that no rank skips a reduce.
 *
 * MPI: MPI_Iallreduce(MPI_IN_PLACE, SUM) per chunk of at most max_chunk_floats floats (chunking
 *      bounds the int count and lets the first chunks finish while later ones are in flight);
 *      averaging multiplies by 1/world on the host as each chunk completes.
 * NCCL: the compute stream records an event after the bucket's last gradient write; the
 *      communication stream waits on it, runs ncclAllReduce (one call per bucket; NCCL pipelines
 *      internally, so no chunking) and the 1/world scale kernel, and records a done event;
 *      wait_all makes the compute stream wait on the done events (the optimizer's kernels
 *      follow on that stream).  The host never blocks.
 * Averaging is (Σ_r g_r) · (1/world) in both kinds. */
typedef struct poa_bucket_set poa_bucket_set;

typedef struct poa_bucket_opts {
    int average;             /* 1: scale the sum by 1/world_size (gradient averaging)     */
    size_t max_chunk_floats; /* MPI chunk size; 0 = 4 Mi floats (16 MiB)                  */
} poa_bucket_opts;

/* grad: flat gradient buffer of t->total floats in backend memory.  Collective. */
poa_bucket_set *dist_buckets_create(poa_dist *d, const poa_param_table *t, float *grad,
                                    const poa_bucket_opts *opts);
void dist_buckets_destroy(poa_bucket_set *s);
int dist_buckets_count(const poa_bucket_set *s);

void dist_bucket_start(poa_bucket_set *s, int bucket);
/* Drive outstanding reduces (MPI_Testall); returns how many buckets are still in flight. */
int dist_progress(poa_bucket_set *s);
/* Wait for one bucket (MPI_Waitall of its chunks; NCCL: compute stream waits on its event). */
void dist_bucket_wait(poa_bucket_set *s, int bucket);
/* Start what was not started, wait for everything, open the next step. */
void dist_buckets_wait_all(poa_bucket_set *s);

/* Communication timers, accumulated over steps until reset.
 *  comm_s:     per step, first bucket start → last bucket complete (as observed by this rank;
 *              NCCL: measured with events on the communication stream);
 *  exposed_s:  time the consumer was blocked waiting: MPI: host time inside wait/wait_all;
 *              NCCL: compute-stream stall, measured with events around the waits;
 *  call_s:     host time spent inside dist_bucket_start / dist_progress (MPI overhead). */
typedef struct poa_comm_timing {
    double comm_s, exposed_s, call_s;
    double bytes; /* bytes reduced (gradient payload, not wire traffic) */
    long steps, buckets, late_starts;
} poa_comm_timing;

/* NCCL: reads the events of finished steps (waits for the last step's events). */
void dist_buckets_timing(poa_bucket_set *s, poa_comm_timing *out);
void dist_buckets_timing_reset(poa_bucket_set *s);

#endif
