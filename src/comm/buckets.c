/* buckets.c — bucketed, overlapped gradient all-reduce (see comm.h, "gradient buckets").
 *
 * MPI kind: each bucket is split into chunks of at most max_chunk_floats floats, each chunk one
 * MPI_Iallreduce(MPI_IN_PLACE, SUM) on the comm layer's communicator.  Open MPI (like most MPIs
 * without an asynchronous progress thread) advances non-blocking collectives only inside MPI calls,
 * so the trainer calls poa_comm_progress between backward ops; completed chunks are scaled by
 * 1/world right there, so that wait_all has little left to do. NCCL kind: comm_nccl.c does the
 * work; this file keeps the bookkeeping common to both.
 */
#include "poa_config.h"
#include "comm/buckets.h"
#include "comm/comm_internal.h"
#include "common/log.h"
#include "common/poa_error.h"
#include "common/timer.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHUNK_FLOATS ((size_t) 4 << 20)

typedef struct bucket {
    size_t begin, end;         /* float range in the gradient buffer */
    int first_chunk, n_chunks; /* chunks [first_chunk, first_chunk + n_chunks)     */
    int pending;               /* chunks not yet complete (MPI)                    */
    int started;
} bucket;

struct poa_comm_bucket_set {
    poa_comm *d;
    float *grad;
    float scale; /* 1/world when averaging, else 1 */
    int nb;
    bucket *b;
    /* MPI chunks */
    int n_chunks;
    MPI_Request *req;
    int *chunk_bucket;
    size_t *chunk_begin, *chunk_count;
    int *done_idx; /* scratch for MPI_Testsome/Waitsome */
    int *nonempty; /* NCCL: buckets with floats (started ones wait_all waits for) */
    int in_flight; /* buckets started and not complete  */
    int n_started;
    /* timing of the current step */
    double t_first_start, t_last_done;
    poa_comm_timing timing;
    poa_comm_nccl_buckets *nccl;
};

static int is_nccl(const poa_comm_bucket_set *s)
{
    return s->nccl != NULL;
}

/* Buckets and their MPI chunks from the parameter table. */
static void plan_chunks(poa_comm_bucket_set *s, const poa_param_table *t, size_t max_chunk)
{
    s->nb = t->n_buckets;
    s->b = poa_xcalloc((size_t) (s->nb ? s->nb : 1), sizeof *s->b);
    int cap = 0;
    for (int id = 0; id < s->nb; id++) {
        bucket *bk = &s->b[id];
        poa_params_bucket_range(t, id, &bk->begin, &bk->end);
        bk->first_chunk = s->n_chunks;
        for (size_t at = bk->begin; at < bk->end; at += max_chunk) {
            if (s->n_chunks == cap) {
                cap = cap ? 2 * cap : 64;
                s->chunk_bucket = poa_xrealloc(s->chunk_bucket, (size_t) cap * sizeof(int));
                s->chunk_begin = poa_xrealloc(s->chunk_begin, (size_t) cap * sizeof(size_t));
                s->chunk_count = poa_xrealloc(s->chunk_count, (size_t) cap * sizeof(size_t));
            }
            s->chunk_bucket[s->n_chunks] = id;
            s->chunk_begin[s->n_chunks] = at;
            s->chunk_count[s->n_chunks] = bk->end - at < max_chunk ? bk->end - at : max_chunk;
            s->n_chunks++;
        }
        bk->n_chunks = s->n_chunks - bk->first_chunk;
    }
    s->req = poa_xmalloc((size_t) (s->n_chunks ? s->n_chunks : 1) * sizeof *s->req);
    s->done_idx = poa_xmalloc((size_t) (s->n_chunks ? s->n_chunks : 1) * sizeof(int));
    for (int c = 0; c < s->n_chunks; c++) s->req[c] = MPI_REQUEST_NULL;
}

poa_comm_bucket_set *poa_comm_buckets_create(poa_comm *d, const poa_param_table *t, float *grad,
                                             const poa_comm_bucket_opts *opts)
{
    POA_CHECK(d && t && grad, "poa_comm_buckets_create: NULL argument");
    size_t max_chunk =
        opts && opts->max_chunk_floats ? opts->max_chunk_floats : DEFAULT_CHUNK_FLOATS;
    POA_CHECK(max_chunk <= (size_t) INT_MAX, "max_chunk_floats %zu exceeds an MPI count",
              max_chunk);
    poa_comm_bucket_set *s = poa_xcalloc(1, sizeof *s);
    s->d = d;
    s->grad = grad;
    s->scale = opts && opts->average ? 1.0f / (float) d->size : 1.0f;
    plan_chunks(s, t, max_chunk);
#ifdef POA_HAVE_NCCL
    if (d->nccl) s->nccl = poa_comm_nccl_buckets_create(d->nccl, s->nb);
#endif
    s->nonempty = poa_xcalloc((size_t) (s->nb ? s->nb : 1), sizeof *s->nonempty);
    for (int id = 0; id < s->nb; id++) s->nonempty[id] = s->b[id].end > s->b[id].begin;
    /* Every rank must hold the same plan, or the reduces would pair the wrong buffers. */
    uint64_t plan[3] = {(uint64_t) s->nb, (uint64_t) s->n_chunks, (uint64_t) t->total};
    POA_CHECK(poa_comm_check_identical_host(d, plan, sizeof plan, NULL),
              "ranks disagree on the bucket plan (different parameter tables?)");
    return s;
}

void poa_comm_buckets_destroy(poa_comm_bucket_set *s)
{
    if (!s) return;
    POA_CHECK(s->in_flight == 0, "destroying a bucket set with %d reduces in flight", s->in_flight);
#ifdef POA_HAVE_NCCL
    if (s->nccl) poa_comm_nccl_buckets_destroy(s->nccl);
#endif
    free(s->b);
    free(s->req);
    free(s->chunk_bucket);
    free(s->chunk_begin);
    free(s->chunk_count);
    free(s->done_idx);
    free(s->nonempty);
    free(s);
}

int poa_comm_buckets_count(const poa_comm_bucket_set *s)
{
    return s->nb;
}

/* ------------------------------------------------------------------ MPI completion */

static void scale_chunk(poa_comm_bucket_set *s, int c)
{
    if (s->scale == 1.0f) return;
    float *p = s->grad + s->chunk_begin[c];
    const float a = s->scale;
    for (size_t i = 0; i < s->chunk_count[c]; i++) p[i] *= a;
}

/* Account for `n` chunks reported complete by MPI_Testsome/Waitsome. */
static void chunks_completed(poa_comm_bucket_set *s, int n)
{
    for (int k = 0; k < n; k++) {
        int c = s->done_idx[k];
        scale_chunk(s, c);
        bucket *bk = &s->b[s->chunk_bucket[c]];
        if (--bk->pending == 0) {
            s->in_flight--;
            s->t_last_done = poa_now();
        }
    }
}

static void test_some(poa_comm_bucket_set *s)
{
    int n = 0;
    POA_COMM_MPI_OK(MPI_Testsome(s->n_chunks, s->req, &n, s->done_idx, MPI_STATUSES_IGNORE));
    if (n != MPI_UNDEFINED) chunks_completed(s, n);
}

/* ------------------------------------------------------------------ API */

void poa_comm_bucket_start(poa_comm_bucket_set *s, int id)
{
    POA_CHECK(id >= 0 && id < s->nb, "bucket %d out of range [0, %d)", id, s->nb);
    bucket *bk = &s->b[id];
    POA_CHECK(!bk->started, "bucket %d started twice in one step", id);
    double t0 = poa_now();
    bk->started = 1;
    if (s->n_started++ == 0) s->t_first_start = t0;
    size_t count = bk->end - bk->begin;
    s->timing.bytes += (double) count * sizeof(float);
    s->timing.buckets++;
    if (count == 0) return;
#ifdef POA_HAVE_NCCL
    if (is_nccl(s)) {
        poa_comm_nccl_bucket_start(s->nccl, id, s->grad + bk->begin, count, s->scale);
        s->timing.call_s += poa_now() - t0;
        return;
    }
#endif
    bk->pending = bk->n_chunks;
    s->in_flight++;
    for (int c = bk->first_chunk; c < bk->first_chunk + bk->n_chunks; c++)
        POA_COMM_MPI_OK(MPI_Iallreduce(MPI_IN_PLACE, s->grad + s->chunk_begin[c],
                                       (int) s->chunk_count[c], MPI_FLOAT, MPI_SUM, s->d->comm,
                                       &s->req[c]));
    test_some(s); /* small chunks may complete at once; also kicks the schedule */
    s->timing.call_s += poa_now() - t0;
}

int poa_comm_progress(poa_comm_bucket_set *s)
{
    if (is_nccl(s) || s->in_flight == 0) return is_nccl(s) ? 0 : s->in_flight;
    double t0 = poa_now();
    test_some(s);
    s->timing.call_s += poa_now() - t0;
    return s->in_flight;
}

/* Block until the chunks in [c0, c1) are complete (MPI). */
static void wait_chunks(poa_comm_bucket_set *s, int c0, int c1)
{
    for (;;) {
        int open = 0;
        for (int c = c0; c < c1 && !open; c++) open = s->req[c] != MPI_REQUEST_NULL;
        if (!open) return;
        int n = 0;
        POA_COMM_MPI_OK(MPI_Waitsome(c1 - c0, s->req + c0, &n, s->done_idx, MPI_STATUSES_IGNORE));
        if (n == MPI_UNDEFINED) return;
        for (int k = 0; k < n; k++) s->done_idx[k] += c0;
        chunks_completed(s, n);
    }
}

void poa_comm_bucket_wait(poa_comm_bucket_set *s, int id)
{
    POA_CHECK(id >= 0 && id < s->nb, "bucket %d out of range [0, %d)", id, s->nb);
    bucket *bk = &s->b[id];
    POA_CHECK(bk->started, "waiting for bucket %d, which was not started", id);
#ifdef POA_HAVE_NCCL
    if (is_nccl(s)) {
        if (bk->end > bk->begin) poa_comm_nccl_bucket_wait(s->nccl, id);
        return;
    }
#endif
    double t0 = poa_now();
    wait_chunks(s, bk->first_chunk, bk->first_chunk + bk->n_chunks);
    s->timing.exposed_s += poa_now() - t0;
}

static void start_missing(poa_comm_bucket_set *s)
{
    for (int id = 0; id < s->nb; id++) {
        if (s->b[id].started) continue;
        s->timing.late_starts++;
        poa_comm_bucket_start(s, id);
    }
}

static void open_next_step(poa_comm_bucket_set *s)
{
    for (int id = 0; id < s->nb; id++) s->b[id].started = 0;
    s->n_started = 0;
    s->t_first_start = s->t_last_done = 0;
    s->timing.steps++;
}

void poa_comm_buckets_wait_all(poa_comm_bucket_set *s)
{
    start_missing(s);
#ifdef POA_HAVE_NCCL
    if (is_nccl(s)) {
        /* every bucket is started by now (start_missing) */
        poa_comm_nccl_buckets_wait_all(s->nccl, s->nonempty, s->nb);
        open_next_step(s);
        return;
    }
#endif
    double t0 = poa_now();
    wait_chunks(s, 0, s->n_chunks);
    double t1 = poa_now();
    POA_ASSERT(s->in_flight == 0);
    s->timing.exposed_s += t1 - t0;
    /* Completion is observed when MPI is polled, so comm_s is exact only up to the polling
     * interval of poa_comm_progress. */
    if (s->n_started && s->t_last_done > s->t_first_start)
        s->timing.comm_s += s->t_last_done - s->t_first_start;
    open_next_step(s);
}

void poa_comm_buckets_timing(poa_comm_bucket_set *s, poa_comm_timing *out)
{
#ifdef POA_HAVE_NCCL
    if (is_nccl(s)) poa_comm_nccl_buckets_timing(s->nccl, &s->timing.comm_s, &s->timing.exposed_s);
#endif
    *out = s->timing;
}

void poa_comm_buckets_timing_reset(poa_comm_bucket_set *s)
{
#ifdef POA_HAVE_NCCL
    if (is_nccl(s)) poa_comm_nccl_buckets_timing_reset(s->nccl);
#endif
    memset(&s->timing, 0, sizeof s->timing);
}
