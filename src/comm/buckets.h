/* buckets.h — the gradient all-reduce of the comm layer (comm.h), one bucket per parameter-table
 * bucket, overlapped with the backward pass.
 *
 * A bucket is the contiguous range [begin, end) of one bucket id of the parameter table
 * (poa_params_bucket_range) in the flat gradient buffer; one bucket per block, plus the
 * embeddings, the final norm and the heads.  Per step:
 *
 *   for each backward op ...:
 *       after the last write to bucket b's gradients: poa_comm_bucket_start(s, b);
 *       between ops: poa_comm_progress(s);
 *   poa_comm_buckets_wait_all(s);   // the optimizer may now read the reduced gradients
 *
 * A bucket may be started only after the last backward pass that touches it in the step
 * (docs/architecture.md §6, §7.3).  Starting a bucket twice in one step is fatal; wait_all starts
 * buckets that were never started (counted in late_starts) so that no rank skips a reduce.
 *
 * MPI: MPI_Iallreduce(MPI_IN_PLACE, SUM) per chunk of at most max_chunk_floats floats (chunking
 *      bounds the int count and lets the first chunks finish while later ones are in flight);
 *      averaging multiplies by 1/world on the host as each chunk completes.
 * NCCL: the compute stream records an event after the bucket's last gradient write; the
 *      communication stream waits on it, runs ncclAllReduce (one call per bucket; NCCL pipelines
 *      internally, so no chunking) and the 1/world scale kernel, and records a done event;
 *      wait_all makes the compute stream wait on the done events (the optimizer's kernels
 *      follow on that stream).  The host never blocks.
 * Averaging is (Σ_r g_r) · (1/world) in both kinds.
 */
#ifndef POA_COMM_BUCKETS_H
#define POA_COMM_BUCKETS_H

#include "comm/comm.h"
#include "tensor/params.h"

#include <stddef.h>

typedef struct poa_comm_bucket_set poa_comm_bucket_set;

typedef struct poa_comm_bucket_opts {
    int average;             /* 1: scale the sum by 1/world_size (gradient averaging)     */
    size_t max_chunk_floats; /* MPI chunk size; 0 = 4 Mi floats (16 MiB)                  */
} poa_comm_bucket_opts;

/* grad: flat gradient buffer of t->total floats in backend memory.  Collective. */
poa_comm_bucket_set *poa_comm_buckets_create(poa_comm *d, const poa_param_table *t, float *grad,
                                             const poa_comm_bucket_opts *opts);
void poa_comm_buckets_destroy(poa_comm_bucket_set *s);
int poa_comm_buckets_count(const poa_comm_bucket_set *s);

void poa_comm_bucket_start(poa_comm_bucket_set *s, int bucket);
/* Drive outstanding reduces (MPI_Testall); returns how many buckets are still in flight. */
int poa_comm_progress(poa_comm_bucket_set *s);
/* Wait for one bucket (MPI_Waitall of its chunks; NCCL: compute stream waits on its event). */
void poa_comm_bucket_wait(poa_comm_bucket_set *s, int bucket);
/* Start what was not started, wait for everything, open the next step. */
void poa_comm_buckets_wait_all(poa_comm_bucket_set *s);

/* Communication timers, accumulated over steps until reset.
 *  comm_s:     per step, first bucket start → last bucket complete (as observed by this rank;
 *              NCCL: measured with events on the communication stream);
 *  exposed_s:  time the consumer was blocked waiting: MPI: host time inside wait/wait_all;
 *              NCCL: compute-stream stall, measured with events around the waits;
 *  call_s:     host time spent inside poa_comm_bucket_start / poa_comm_progress (MPI overhead). */
typedef struct poa_comm_timing {
    double comm_s, exposed_s, call_s;
    double bytes; /* bytes reduced (gradient payload, not wire traffic) */
    long steps, buckets, late_starts;
} poa_comm_timing;

/* NCCL: reads the events of finished steps (waits for the last step's events). */
void poa_comm_buckets_timing(poa_comm_bucket_set *s, poa_comm_timing *out);
void poa_comm_buckets_timing_reset(poa_comm_bucket_set *s);

#endif
