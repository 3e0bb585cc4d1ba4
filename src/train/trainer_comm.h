/* trainer_comm.h — the step's distributed hooks on top of src/comm
 * (docs/architecture.md §7):
 *  - the Sinkhorn-Knopp collective of the losses (model/loss_collective.h): sums and maxima of
 *    doubles in backend memory over all ranks (docs/algorithm.md §6.2, docs/architecture.md §7.2);
 *  - the gradient all-reduce: one bucket per parameter-table bucket (embeddings, each block,
 *    final norm, each head), averaged over ranks (the step divides by its own G groups, step.h),
 *    started as soon as the last backward pass touching the bucket is past it and overlapped
 *    with the rest of the backward (MPI_Iallreduce + poa_comm_progress on the CPU backend, NCCL on
 * a communication stream on CUDA): the heads' buckets after the last head backward, each backbone
 * bucket during the last intact pass, right after its block (step.h);
 *  - the "any rank" agreement of the non-finite guard (docs/algorithm.md §8.6).
 *
 * Overlap needs the step to say when a bucket is final (poa_trainer_comm_bucket_ready) and to
 * let communication progress between backward ops (poa_trainer_comm_progress).  Buckets that
 * were not reported ready (none with the step of step.c) are started by the end-of-backward
 * hook (reduce_grads), in backward order: heads, final norm, blocks L−1 … 0, embeddings
 * (ready_calls counts the buckets the step reported; those started here are not counted).
 */
#ifndef POA_TRAIN_TRAINER_COMM_H
#define POA_TRAIN_TRAINER_COMM_H

#include "backend/backend.h"
#include "comm/buckets.h"
#include "model/loss_collective.h"
#include "model/model.h"
#include "train/step.h"

typedef struct poa_trainer_comm {
    poa_comm *d;
    poa_backend *be;
    const poa_model *m;
    int world;
    poa_comm_bucket_set *buckets; /* NULL with one rank (nothing to reduce)              */
    int n_buckets;
    int *order;           /* [n_buckets] backward completion order                           */
    int *started;         /* [n_buckets] started in the current step                         */
    poa_comm_timing last; /* totals at the previous poa_trainer_comm_step_timing         */
    double reduce_wait_s; /* this step: host time in the reduce hook (no overlap left) */
    int ready_calls;      /* this step: buckets reported ready by the step           */
} poa_trainer_comm;

/* Before the step exists: collectives only. */
void poa_trainer_comm_init(poa_trainer_comm *c, poa_comm *d, poa_backend *be, const poa_model *m);
/* The bucket set on the step's gradient buffer (collective; nothing with one rank). */
void poa_trainer_comm_attach(poa_trainer_comm *c, float *grads);
void poa_trainer_comm_free(poa_trainer_comm *c);

poa_collective poa_trainer_comm_collective(poa_trainer_comm *c);
poa_step_hooks poa_trainer_comm_hooks(poa_trainer_comm *c);

/* Per-bucket hooks for a step that reports them (see the header comment). */
void poa_trainer_comm_bucket_ready(void *ctx, int bucket);
void poa_trainer_comm_progress(void *ctx);

/* Communication since the previous call: comm_s (per step, first bucket start → last
 * completion, summed) and exposed_s (time the steps waited for it).  NCCL: waits for the last
 * step's timing events, so call it when logging, not every step. */
void poa_trainer_comm_timing(poa_trainer_comm *c, double *comm_s, double *exposed_s);

#endif
