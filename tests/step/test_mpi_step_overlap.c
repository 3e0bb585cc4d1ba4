/* test_mpi_step_overlap.c — the overlapped gradient all-reduce of the POA step: the
 * step announces every bucket exactly once (hooks.bucket_ready), heads first, then the backbone
 * buckets in decreasing order during the last intact backward pass (interleaved with its
 * progress calls), all before reduce_grads; and nothing writes a bucket's gradient after its
 * announcement: a copy taken at bucket_ready equals the step's final gradient bit for bit.
 * With iBOT off (mask_token untouched) and on, 2 rank groups, drop path, local crops.
 * Then the same through the trainer's real hooks (poa_trainer_comm: comm buckets, MPI
 * Iallreduce) on 2 ranks: the copies equal the local gradients of a step that reduces only at
 * the end, the reduced gradients and parameters equal it bit for bit, and every bucket was
 * started when the step reported it (none by reduce_grads, none late in poa_comm_buckets_wait_all).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "comm/buckets.h"
#include "tests/step/step_test_batch.h"
#include "train/step.h"
#include "train/trainer_comm.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

static poa_backend *be;
static poa_model model;
static poa_comm *d;
static int rank;

/* ------------------------------------------------------------------ recording hooks */

#define MAX_SEQ 1024

typedef struct recorder {
    poa_step *step;
    float **snap;     /* [n_buckets] host copy of the bucket's gradient at bucket_ready */
    int *count;       /* [n_buckets] announcements in the current step                 */
    int *at_progress; /* [n_buckets] progress calls seen before the announcement   */
    int seq[MAX_SEQ], n_seq;
    int progress_calls, reduce_calls, announced_at_reduce;
    poa_step_hooks inner; /* forwarded to (the trainer's hooks), or all NULL        */
} recorder;

static void bucket_range(int b, size_t *begin, size_t *end)
{
    poa_params_bucket_range(&model.table, b, begin, end);
}

static int bucket_is_head(int b)
{
    for (int i = 0; i < model.table.n; i++)
        if (model.table.p[i].bucket == b) return (model.table.p[i].flags & POA_PF_HEAD) != 0;
    return 0;
}

static void rec_bucket_ready(void *ctx, int b)
{
    recorder *r = ctx;
    POA_CHECK(b >= 0 && b < model.table.n_buckets, "bucket %d out of range", b);
    r->count[b]++;
    if (r->n_seq < MAX_SEQ) r->seq[r->n_seq++] = b;
    r->at_progress[b] = r->progress_calls;
    size_t begin, end;
    bucket_range(b, &begin, &end);
    if (end > begin)
        be->iface->download(be, r->snap[b], poa_step_grads(r->step) + begin,
                            sizeof(float) * (end - begin));
    if (r->inner.bucket_ready) r->inner.bucket_ready(r->inner.ctx, b);
}

static void rec_progress(void *ctx)
{
    recorder *r = ctx;
    r->progress_calls++;
    if (r->inner.progress) r->inner.progress(r->inner.ctx);
}

static void rec_reduce(void *ctx, float *g, size_t n)
{
    recorder *r = ctx;
    r->reduce_calls++;
    r->announced_at_reduce = r->n_seq;
    if (r->inner.reduce_grads) r->inner.reduce_grads(r->inner.ctx, g, n);
}

static int rec_any(void *ctx, int flag)
{
    recorder *r = ctx;
    return r->inner.any ? r->inner.any(r->inner.ctx, flag) : flag != 0;
}

static void recorder_init(recorder *r, const poa_step_hooks *inner)
{
    memset(r, 0, sizeof *r);
    if (inner) r->inner = *inner;
    const int nb = model.table.n_buckets;
    r->snap = calloc((size_t) nb, sizeof *r->snap);
    r->count = calloc((size_t) nb, sizeof(int));
    r->at_progress = calloc((size_t) nb, sizeof(int));
    for (int b = 0; b < nb; b++) {
        size_t begin, end;
        bucket_range(b, &begin, &end);
        r->snap[b] = malloc(sizeof(float) * (end - begin + 1));
    }
}

static void recorder_reset(recorder *r)
{
    memset(r->count, 0, sizeof(int) * (size_t) model.table.n_buckets);
    r->n_seq = r->progress_calls = r->reduce_calls = r->announced_at_reduce = 0;
}

static void recorder_free(recorder *r)
{
    for (int b = 0; b < model.table.n_buckets; b++) free(r->snap[b]);
    free(r->snap);
    free(r->count);
    free(r->at_progress);
}

static poa_step_hooks recorder_hooks(recorder *r)
{
    poa_step_hooks h = {r, rec_bucket_ready, rec_progress, rec_reduce, rec_any};
    return h;
}

/* Every bucket once, heads before the backbone, backbone decreasing, all before reduce_grads,
 * the backbone announcements interleaved with the backward (progress calls between the final
 * norm's and the embeddings'), and each copy equal to `final` (host, table.total floats).
 * Returns the number of failures (printed). */
static int check_announcements(const recorder *r, const float *final, const char *what,
                               long long it)
{
    const int nb = model.table.n_buckets;
    int bad = 0;
    for (int b = 0; b < nb; b++)
        if (r->count[b] != 1) {
            fprintf(stderr, "rank %d %s it %lld: bucket %d announced %d times\n", rank, what, it, b,
                    r->count[b]);
            bad++;
        }
    if (r->reduce_calls != 1 || r->announced_at_reduce != nb) {
        fprintf(stderr,
                "rank %d %s it %lld: reduce_grads called %d times, after %d of %d buckets\n", rank,
                what, it, r->reduce_calls, r->announced_at_reduce, nb);
        bad++;
    }
    int seen_backbone = 0, prev = -1, first_bb = -1, last_bb = -1;
    for (int k = 0; k < r->n_seq; k++) {
        int b = r->seq[k];
        if (bucket_is_head(b)) {
            if (seen_backbone) {
                fprintf(stderr, "rank %d %s it %lld: head bucket %d after a backbone bucket\n",
                        rank, what, it, b);
                bad++;
            }
            continue;
        }
        if (seen_backbone && b >= prev) {
            fprintf(stderr, "rank %d %s it %lld: backbone bucket %d announced after %d\n", rank,
                    what, it, b, prev);
            bad++;
        }
        if (!seen_backbone) first_bb = b;
        last_bb = b;
        seen_backbone = 1;
        prev = b;
    }
    if (first_bb >= 0 && r->at_progress[last_bb] <= r->at_progress[first_bb]) {
        fprintf(stderr,
                "rank %d %s it %lld: backbone buckets %d..%d announced with no backward op in "
                "between (no overlap)\n",
                rank, what, it, first_bb, last_bb);
        bad++;
    }
    for (int b = 0; b < nb; b++) {
        size_t begin, end;
        bucket_range(b, &begin, &end);
        if (r->count[b] < 1 || end == begin) continue;
        if (memcmp(r->snap[b], final + begin, sizeof(float) * (end - begin)) != 0) {
            size_t i = 0;
            while (r->snap[b][i] == final[begin + i]) i++;
            fprintf(stderr,
                    "rank %d %s it %lld: bucket %d changed after bucket_ready: float %zu of %zu "
                    "was %.9g, final %.9g\n",
                    rank, what, it, b, i, end - begin, (double) r->snap[b][i],
                    (double) final[begin + i]);
            bad++;
        }
    }
    return bad;
}

static poa_step_config config(int G, uint32_t first_group)
{
    poa_step_config cfg = poa_step_config_official(&model, 2, G, 1);
    cfg.sched.epoch_length = 2, cfg.sched.epochs = 8, cfg.sched.warmup_epochs = 1;
    cfg.sched.ibot_activate_epochs = 1; /* iBOT from it = 2: mask_token written from then on */
    cfg.first_group = first_group;
    cfg.seed = 5;
    return cfg;
}

static float *download_all(const float *dev)
{
    float *h = malloc(sizeof(float) * model.table.total);
    be->iface->download(be, h, dev, sizeof(float) * model.table.total);
    return h;
}

/* ------------------------------------------------------------------ tests */

/* One process, no communication: the announcements of the step itself. */
static void test_announced_once_in_order_and_final(void **state)
{
    (void) state;
    poa_step_config cfg = config(2, 0);
    recorder rec;
    recorder_init(&rec, NULL);
    poa_step_hooks hooks = recorder_hooks(&rec);
    poa_step *s = poa_step_create(be, &model, &cfg, NULL, &hooks);
    rec.step = s;
    poa_step_init_params(s, 3);
    test_batch tb;
    test_batch_make(&tb, be, &model, 2, 0, 2, 1, 29);
    int bad = 0;
    for (long long it = 1; it <= 3; it++) { /* it 1: iBOT off, 2–3: on */
        poa_step_report rep;
        recorder_reset(&rec);
        tb.b.it = it;
        bad += poa_step_run(s, &tb.b, &rep) != POA_OK;
        float *g = download_all(poa_step_grads(s));
        bad += check_announcements(&rec, g, "local", it);
        free(g);
    }
    test_batch_free(&tb, be);
    poa_step_destroy(s);
    recorder_free(&rec);
    assert_int_equal(bad, 0);
}

/* Reference: local gradients copied before a plain end-of-backward average. */
typedef struct ref_reduce {
    float *local; /* host */
} ref_reduce;

static void ref_reduce_grads(void *ctx, float *g, size_t n)
{
    ref_reduce *r = ctx;
    be->iface->download(be, r->local, g, sizeof(float) * n);
    MPI_Allreduce(MPI_IN_PLACE, g, (int) n, MPI_FLOAT, MPI_SUM, poa_comm_mpi_comm(d));
    for (size_t i = 0; i < n; i++) g[i] *= 1.0f / (float) poa_comm_world_size(d);
}

static int ref_any(void *ctx, int flag)
{
    (void) ctx;
    return poa_comm_any(d, flag);
}

/* Two ranks through the trainer's hooks (comm buckets started as announced). */
static void test_trainer_overlap_equals_end_reduce(void **state)
{
    (void) state;
    const size_t n = model.table.total;
    poa_trainer_comm comm;
    poa_trainer_comm_init(&comm, d, be, &model);
    poa_collective coll = poa_trainer_comm_collective(&comm);
    poa_step_config cfg = config(1, (uint32_t) rank);

    recorder rec;
    poa_step_hooks trainer = poa_trainer_comm_hooks(&comm);
    recorder_init(&rec, &trainer);
    poa_step_hooks hooks = recorder_hooks(&rec);
    poa_step *s = poa_step_create(be, &model, &cfg, &coll, &hooks);
    rec.step = s;
    poa_trainer_comm_attach(&comm, poa_step_grads(s));
    poa_step_init_params(s, 3);

    ref_reduce rr = {malloc(sizeof(float) * n)};
    poa_step_hooks rh = {.ctx = &rr, .reduce_grads = ref_reduce_grads, .any = ref_any};
    poa_step *ref = poa_step_create(be, &model, &cfg, &coll, &rh);
    poa_step_init_params(ref, 3);

    test_batch tb;
    test_batch_make(&tb, be, &model, 2, rank, 1, 1, 31);
    int bad = 0;
    for (long long it = 1; it <= 3; it++) {
        poa_step_report r1, r2;
        recorder_reset(&rec);
        tb.b.it = it;
        /* no assert between collectives: a failure on one rank would leave the other waiting */
        bad += poa_step_run(s, &tb.b, &r1) != POA_OK;
        bad += poa_step_run(ref, &tb.b, &r2) != POA_OK;
        bad += check_announcements(&rec, rr.local, "trainer", it);
        float *g1 = download_all(poa_step_grads(s)), *g2 = download_all(poa_step_grads(ref));
        float *p1 = download_all(poa_step_params(s)), *p2 = download_all(poa_step_params(ref));
        if (memcmp(g1, g2, sizeof(float) * n) || memcmp(p1, p2, sizeof(float) * n)) {
            fprintf(stderr, "rank %d it %lld: overlapped reduce differs from the end reduce\n",
                    rank, it);
            bad++;
        }
        free(g1), free(g2), free(p1), free(p2);
    }
    poa_comm_timing t;
    poa_comm_buckets_timing(comm.buckets, &t);
    if (t.late_starts != 0 || t.steps != 3 || comm.ready_calls != 3 * model.table.n_buckets) {
        fprintf(stderr,
                "rank %d: %ld buckets started late over %ld steps, %d of %d started when the "
                "step reported them\n",
                rank, t.late_starts, t.steps, comm.ready_calls, 3 * model.table.n_buckets);
        bad++;
    }
    int all_bad = poa_comm_max_int(d, bad);
    test_batch_free(&tb, be);
    poa_step_destroy(ref);
    poa_step_destroy(s);
    poa_trainer_comm_free(&comm);
    recorder_free(&rec);
    free(rr.local);
    assert_int_equal(all_bad, 0);
}

int main(int argc, char **argv)
{
    d = poa_comm_init(&argc, &argv, POA_COMM_MPI);
    rank = poa_comm_rank(d);
    char err[128];
    be = poa_backend_create("cpu", NULL, err, sizeof err);
    poa_model_config mc;
    POA_CHECK(poa_model_config_from_arch(&mc, "tiny", NULL) == POA_OK, "tiny config");
    poa_model_build(&model, &mc);
    int failed = 1;
    if (poa_comm_world_size(d) == 2) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_announced_once_in_order_and_final),
            cmocka_unit_test(test_trainer_overlap_equals_end_reduce),
        };
        failed = cmocka_run_group_tests_name("step_overlap", tests, NULL, NULL);
    } else if (rank == 0) {
        fprintf(stderr, "test_mpi_step_overlap needs 2 ranks\n");
    }
    int any = poa_comm_max_int(d, failed);
    poa_model_free(&model);
    poa_backend_destroy(be);
    poa_comm_finalize(d);
    return any ? 1 : 0;
}
