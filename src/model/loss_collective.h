/* loss_collective.h — the small collective interface of the losses (docs/algorithm.md §6.2;
 * docs/architecture.md §2 and §7.2).
 *
 * Sinkhorn-Knopp pools its statistics over every rank group of the iteration.  model/ stays
 * free of MPI/NCCL: the caller passes these callbacks (train/ wires them to src/comm; tests use
 * MPI directly or the single-process version).  Buffers are in backend memory and reduced in
 * place; every rank must call them in the same order, also with zero local rows.
 */
#ifndef POA_MODEL_LOSS_COLLECTIVE_H
#define POA_MODEL_LOSS_COLLECTIVE_H

#include <stddef.h>

typedef struct poa_collective {
    void *ctx;
    /* buf[i] ← Σ over ranks of buf[i]; NULL means a single rank (nothing to do). */
    void (*allreduce_sum_f64)(void *ctx, double *buf, size_t n);
    /* buf[i] ← max over ranks of buf[i]; NULL means a single rank. */
    void (*allreduce_max_f64)(void *ctx, double *buf, size_t n);
} poa_collective;

/* One process holds every rank group of the iteration. */
static inline poa_collective poa_collective_single(void)
{
    poa_collective c = {NULL, NULL, NULL};
    return c;
}

static inline void poa_collective_sum(const poa_collective *c, double *buf, size_t n)
{
    if (c && c->allreduce_sum_f64) c->allreduce_sum_f64(c->ctx, buf, n);
}

static inline void poa_collective_max(const poa_collective *c, double *buf, size_t n)
{
    if (c && c->allreduce_max_f64) c->allreduce_max_f64(c->ctx, buf, n);
}

#endif
