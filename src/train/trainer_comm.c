/* trainer_comm.c — see trainer_comm.h. */
#include "train/trainer_comm.h"
#include "common/poa_error.h"
#include "common/timer.h"

#include <stdlib.h>
#include <string.h>

void poa_trainer_comm_init(poa_trainer_comm *c, poa_comm *d, poa_backend *be, const poa_model *m)
{
    memset(c, 0, sizeof *c);
    c->d = d;
    c->be = be;
    c->m = m;
    c->world = poa_comm_world_size(d);
}

/* Backward completion order of the buckets (model.h: embeddings 0, block i 1 + i, final norm
 * L + 1, head h L + 2 + h): the heads' gradients are final first, then the backbone from the
 * final norm down to the embeddings. */
static void backward_order(poa_trainer_comm *c)
{
    const int L = c->m->cfg.max_depth, nb = c->n_buckets;
    int k = 0;
    for (int b = nb - 1; b >= L + 2; b--) c->order[k++] = b;
    for (int b = L + 1; b >= 0; b--) c->order[k++] = b;
    POA_ASSERT(k == nb);
}

void poa_trainer_comm_attach(poa_trainer_comm *c, float *grads)
{
    if (c->world <= 1) return;
    poa_comm_bucket_opts o = {.average = 1, .max_chunk_floats = 0};
    c->buckets = poa_comm_buckets_create(c->d, &c->m->table, grads, &o);
    c->n_buckets = poa_comm_buckets_count(c->buckets);
    POA_CHECK(c->n_buckets == c->m->table.n_buckets, "bucket count %d != table's %d", c->n_buckets,
              c->m->table.n_buckets);
    c->order = poa_xcalloc((size_t) c->n_buckets, sizeof(int));
    c->started = poa_xcalloc((size_t) c->n_buckets, sizeof(int));
    backward_order(c);
}

void poa_trainer_comm_free(poa_trainer_comm *c)
{
    if (c->buckets) poa_comm_buckets_destroy(c->buckets);
    free(c->order);
    free(c->started);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------ Sinkhorn-Knopp collectives */

static void sum_f64(void *ctx, double *buf, size_t n)
{
    poa_trainer_comm *c = ctx;
    poa_comm_allreduce_sum_f64(c->d, buf, n);
}

static void max_f64(void *ctx, double *buf, size_t n)
{
    poa_trainer_comm *c = ctx;
    poa_comm_allreduce_max_f64(c->d, buf, n);
}

poa_collective poa_trainer_comm_collective(poa_trainer_comm *c)
{
    if (c->world <= 1) return poa_collective_single();
    poa_collective coll = {c, sum_f64, max_f64};
    return coll;
}

/* ------------------------------------------------------------------ gradient buckets */

void poa_trainer_comm_bucket_ready(void *ctx, int bucket)
{
    poa_trainer_comm *c = ctx;
    if (!c->buckets) return;
    POA_ASSERT(bucket >= 0 && bucket < c->n_buckets);
    if (c->started[bucket]) return;
    c->started[bucket] = 1;
    c->ready_calls++;
    poa_comm_bucket_start(c->buckets, bucket);
    poa_comm_progress(c->buckets);
}

void poa_trainer_comm_progress(void *ctx)
{
    poa_trainer_comm *c = ctx;
    if (c->buckets) poa_comm_progress(c->buckets);
}

/* End of backward: start what the step did not report (in backward order, the same on every
 * rank), then wait until every bucket is reduced. */
static void reduce_grads(void *ctx, float *grads, size_t n)
{
    poa_trainer_comm *c = ctx;
    (void) grads;
    (void) n;
    if (!c->buckets) return;
    double t0 = poa_now();
    for (int k = 0; k < c->n_buckets; k++) {
        int b = c->order[k];
        if (c->started[b]) continue;
        c->started[b] = 1;
        poa_comm_bucket_start(c->buckets, b);
        poa_comm_progress(c->buckets);
    }
    poa_comm_buckets_wait_all(c->buckets);
    memset(c->started, 0, (size_t) c->n_buckets * sizeof(int));
    c->reduce_wait_s = poa_now() - t0;
}

static int any_rank(void *ctx, int flag)
{
    poa_trainer_comm *c = ctx;
    return c->world <= 1 ? flag != 0 : poa_comm_any(c->d, flag);
}

poa_step_hooks poa_trainer_comm_hooks(poa_trainer_comm *c)
{
    poa_step_hooks h;
    memset(&h, 0, sizeof h);
    h.ctx = c;
    h.bucket_ready = poa_trainer_comm_bucket_ready;
    h.progress = poa_trainer_comm_progress;
    h.reduce_grads = reduce_grads;
    h.any = any_rank;
    return h;
}

void poa_trainer_comm_timing(poa_trainer_comm *c, double *comm_s, double *exposed_s)
{
    *comm_s = *exposed_s = 0;
    if (!c->buckets) return;
    poa_comm_timing t;
    poa_comm_buckets_timing(c->buckets, &t);
    *comm_s = t.comm_s - c->last.comm_s;
    *exposed_s = t.exposed_s - c->last.exposed_s;
    c->last = t;
    c->ready_calls = 0;
}
