/* test_mpi_buckets.c — runs under mpiexec -n 2: bucketed, overlapped gradient all-reduce
 * (poa_comm_bucket_start / poa_comm_progress / poa_comm_buckets_wait_all) against a plain
 * MPI_Allreduce, averaging, exposed-communication accounting, the small collectives, per-rank blobs
 * and poa_comm_check_identical. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/rng.h"
#include "common/timer.h"
#include "comm/buckets.h"
#include "../io/tiny_table.h"

#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static poa_comm *d;
static int rank, size;

/* A table large enough for several chunks per bucket (~0.6 M floats). */
static void table(poa_param_table *t)
{
    tiny_dims g = TINY_DEFAULT;
    g.D = 96;
    g.depth = 4;
    g.hidden = 128;
    g.K[0] = 512;
    g.K[1] = 1024;
    tiny_table_build(t, &g);
}

/* Per-rank random gradients with a wide dynamic range (rounding-sensitive sums). */
static float *random_grad(const poa_param_table *t, uint64_t seed)
{
    float *g = malloc(t->total * sizeof *g);
    poa_rng r;
    poa_rng_init(&r, seed, (uint32_t) rank, POA_RNG_TEST, 0);
    for (size_t i = 0; i < t->total; i++)
        g[i] = (float) (poa_rng_normal(&r) * pow(10.0, 6.0 * poa_rng_uniform(&r) - 3.0));
    return g;
}

static int in_some_param(const poa_param_table *t, size_t i)
{
    for (int k = 0; k < t->n; k++)
        if (i >= t->p[k].offset && i < t->p[k].offset + t->p[k].numel) return 1;
    return 0;
}

/* got must equal want bitwise on parameter elements and keep `orig` on padding. */
static void assert_reduced(const poa_param_table *t, const float *got, const float *want,
                           const float *orig)
{
    for (size_t i = 0; i < t->total; i++) {
        const float *ref = in_some_param(t, i) ? want : orig;
        if (memcmp(&got[i], &ref[i], sizeof(float)) != 0)
            fail_msg("rank %d element %zu (%s): got %.9g, expected %.9g", rank, i,
                     ref == orig ? "padding" : "parameter", got[i], ref[i]);
    }
}

/* Reference: one blocking MPI_Allreduce of the whole buffer.  With 2 ranks a float sum is
 * a + b whatever the algorithm, so bucketed and plain results must agree bit for bit. */
static float *reference_sum(const poa_param_table *t, const float *g, float scale)
{
    float *ref = malloc(t->total * sizeof *ref);
    MPI_Allreduce(g, ref, (int) t->total, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (scale != 1.0f)
        for (size_t i = 0; i < t->total; i++) ref[i] *= scale;
    return ref;
}

/* Start buckets last to first (the backward order), "computing" and polling in between. */
static void backward_like_step(poa_comm_bucket_set *s)
{
    for (int b = poa_comm_buckets_count(s) - 1; b >= 0; b--) {
        poa_comm_bucket_start(s, b);
        for (int k = 0; k < 3; k++) poa_comm_progress(s);
    }
    poa_comm_buckets_wait_all(s);
}

static void test_bucketed_sum_equals_allreduce(void **state)
{
    (void) state;
    poa_param_table t;
    table(&t);
    float *g = random_grad(&t, 1), *orig = malloc(t.total * sizeof(float));
    memcpy(orig, g, t.total * sizeof(float));
    float *ref = reference_sum(&t, g, 1.0f);
    poa_comm_bucket_opts o = {.average = 0,
                              .max_chunk_floats = 5000}; /* several chunks per bucket */
    poa_comm_bucket_set *s = poa_comm_buckets_create(d, &t, g, &o);
    assert_int_equal(poa_comm_buckets_count(s), t.n_buckets);
    backward_like_step(s);
    assert_reduced(&t, g, ref, orig);
    poa_comm_timing tm;
    poa_comm_buckets_timing(s, &tm);
    assert_int_equal(tm.steps, 1);
    assert_int_equal(tm.buckets, t.n_buckets);
    assert_int_equal(tm.late_starts, 0);
    size_t b0, b1, payload = 0;
    for (int b = 0; b < t.n_buckets; b++) {
        poa_params_bucket_range(&t, b, &b0, &b1);
        payload += (b1 - b0) * sizeof(float);
    }
    assert_true(fabs(tm.bytes - (double) payload) < 0.5);
    poa_comm_buckets_destroy(s);
    free(g);
    free(orig);
    free(ref);
    poa_params_free(&t);
}

static void test_averaging_and_repeated_steps(void **state)
{
    (void) state;
    poa_param_table t;
    table(&t);
    poa_comm_bucket_opts o = {.average = 1}; /* default chunking: one chunk per bucket */
    float *g = random_grad(&t, 2);
    poa_comm_bucket_set *s = poa_comm_buckets_create(d, &t, g, &o);
    for (int step = 0; step < 3; step++) {
        float *fresh = random_grad(&t, 10 + (uint64_t) step);
        memcpy(g, fresh, t.total * sizeof(float));
        float *ref = reference_sum(&t, g, 1.0f / (float) size);
        backward_like_step(s);
        assert_reduced(&t, g, ref, fresh);
        free(ref);
        free(fresh);
    }
    poa_comm_timing tm;
    poa_comm_buckets_timing(s, &tm);
    assert_int_equal(tm.steps, 3);
    assert_int_equal(tm.buckets, 3 * t.n_buckets);
    poa_comm_buckets_destroy(s);
    free(g);
    poa_params_free(&t);
}

/* Reduces complete while the rank "computes" and only polls: nothing is left for wait_all. */
static void test_progress_overlaps_compute(void **state)
{
    (void) state;
    poa_param_table t;
    table(&t);
    float *g = random_grad(&t, 3), *orig = malloc(t.total * sizeof(float));
    memcpy(orig, g, t.total * sizeof(float));
    float *ref = reference_sum(&t, g, 1.0f);
    poa_comm_bucket_opts o = {.max_chunk_floats = 20000};
    poa_comm_bucket_set *s = poa_comm_buckets_create(d, &t, g, &o);
    for (int b = poa_comm_buckets_count(s) - 1; b >= 0; b--) poa_comm_bucket_start(s, b);
    volatile double sink = 0;
    double t0 = poa_now();
    long polls = 0;
    while (poa_comm_progress(s) > 0) {
        for (int k = 0; k < 2000; k++) sink += sqrt((double) k); /* "backward compute" */
        polls++;
        if (poa_now() - t0 > 20) fail_msg("rank %d: reduces did not complete by polling", rank);
    }
    (void) sink;
    poa_comm_buckets_wait_all(s);
    poa_comm_timing tm;
    poa_comm_buckets_timing(s, &tm);
    print_message("rank %d: %ld polls, comm %.4f s, exposed %.6f s, calls %.4f s\n", rank, polls,
                  tm.comm_s, tm.exposed_s, tm.call_s);
    assert_true(tm.exposed_s < 0.01);
    assert_true(tm.comm_s >= 0 && tm.call_s > 0);
    assert_reduced(&t, g, ref, orig);
    poa_comm_buckets_destroy(s);
    free(g);
    free(orig);
    free(ref);
    poa_params_free(&t);
}

/* Rank 1 starts its reduces 0.3 s late: rank 0 is blocked in wait_all and must account it. */
static void test_exposed_time_accounted(void **state)
{
    (void) state;
    poa_param_table t;
    table(&t);
    float *g = random_grad(&t, 4);
    poa_comm_bucket_opts o = {0};
    poa_comm_bucket_set *s = poa_comm_buckets_create(d, &t, g, &o);
    poa_comm_buckets_timing_reset(s);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1) usleep(500000);
    backward_like_step(s);
    poa_comm_timing tm;
    poa_comm_buckets_timing(s, &tm);
    print_message("rank %d: comm %.4f s, exposed %.4f s\n", rank, tm.comm_s, tm.exposed_s);
    /* Rank 0 waits out rank 1's 0.5 s on top of the reduction both wait for; rank 1 waits for
     * the reduction only.  The checks compare the two ranks' own figures (no absolute bound on
     * rank 1's wait, which a loaded machine can stretch): the difference comes from the sleep. */
    double exposed[2] = {0, 0};
    MPI_Allgather(&tm.exposed_s, 1, MPI_DOUBLE, exposed, 1, MPI_DOUBLE, MPI_COMM_WORLD);
    assert_true(exposed[0] > 0.45);
    assert_true(exposed[1] < exposed[0] - 0.25);
    if (rank == 0) assert_true(tm.comm_s >= tm.exposed_s * 0.9);
    poa_comm_buckets_timing_reset(s);
    poa_comm_buckets_timing(s, &tm);
    assert_true(tm.exposed_s == 0 && tm.steps == 0);
    poa_comm_buckets_destroy(s);
    free(g);
    poa_params_free(&t);
}

/* Buckets never started are started by wait_all (no rank may skip a reduce). */
static void test_wait_all_starts_missing_buckets(void **state)
{
    (void) state;
    poa_param_table t;
    table(&t);
    float *g = random_grad(&t, 5), *orig = malloc(t.total * sizeof(float));
    memcpy(orig, g, t.total * sizeof(float));
    float *ref = reference_sum(&t, g, 1.0f);
    poa_comm_bucket_opts o = {0};
    poa_comm_bucket_set *s = poa_comm_buckets_create(d, &t, g, &o);
    poa_comm_bucket_start(s, 1);
    poa_comm_bucket_start(s, 0);
    poa_comm_bucket_wait(s, 1); /* the optimizer may consume one bucket early */
    poa_comm_buckets_wait_all(s);
    poa_comm_timing tm;
    poa_comm_buckets_timing(s, &tm);
    assert_int_equal(tm.late_starts, t.n_buckets - 2);
    assert_reduced(&t, g, ref, orig);
    poa_comm_buckets_destroy(s);
    free(g);
    free(orig);
    free(ref);
    poa_params_free(&t);
}

static void test_small_collectives(void **state)
{
    (void) state;
    float f[3] = {1.5f + (float) rank, -2.0f, (float) (10 * rank)};
    poa_comm_allreduce_sum_f32(d, f, 3);
    assert_true(f[0] == 4.0f && f[1] == -4.0f && f[2] == 10.0f);
    double x[2] = {0.1 * (rank + 1), 1e300};
    poa_comm_allreduce_sum_f64(d, x, 2);
    assert_true(x[0] == 0.1 + 0.2 || x[0] == 0.2 + 0.1);
    float m[2] = {(float) rank, -(float) rank};
    poa_comm_allreduce_max_f32(d, m, 2);
    assert_true(m[0] == 1.0f && m[1] == 0.0f);
    double md[2] = {-1e300 * rank, 0.5 * rank};
    poa_comm_allreduce_max_f64(d, md, 2);
    assert_true(md[0] == 0.0 && md[1] == 0.5);
    float p[4] = {0};
    if (rank == 0)
        for (int i = 0; i < 4; i++) p[i] = 0.5f * (float) i;
    poa_comm_broadcast_f32(d, p, 4, 0);
    for (int i = 0; i < 4; i++) assert_true(p[i] == 0.5f * (float) i);
    int64_t c[1] = {rank + 1};
    poa_comm_host_allreduce_sum_i64(d, c, 1);
    assert_int_equal(c[0], 3);
    double hm[1] = {(double) rank};
    poa_comm_host_allreduce_max_f64(d, hm, 1);
    assert_true(hm[0] == 1.0);
    assert_int_equal(poa_comm_any(d, rank == 1), 1);
    assert_int_equal(poa_comm_any(d, 0), 0);
    assert_int_equal(poa_comm_max_int(d, 7 * rank), 7);
    assert_int_equal(poa_comm_local_size(d), 2); /* both ranks on this machine */
    assert_true(poa_comm_local_rank(d) == rank);
    assert_int_equal(poa_comm_kind_of(d), POA_COMM_MPI);
}

/* Per-rank RNG/sampler blobs: gathered to rank 0 for the checkpoint, scattered back on resume
 * (also to more ranks than wrote them). */
static void test_gather_scatter_blobs(void **state)
{
    (void) state;
    uint64_t mine[3] = {100u + (uint64_t) rank, 200u, 300u};
    size_t n = rank == 0 ? 3 : 0; /* rank 1 contributes an empty blob */
    uint64_t **all = NULL;
    size_t *lens = NULL;
    poa_comm_gather_blobs(d, mine, n, 0, &all, &lens);
    if (rank == 0) {
        assert_int_equal(lens[0], 3);
        assert_int_equal(lens[1], 0);
        assert_memory_equal(all[0], mine, sizeof mine);
    } else {
        assert_null(all);
    }
    uint64_t *back = NULL;
    size_t nb = 0;
    poa_comm_scatter_blobs(d, all, lens, rank == 0 ? 2 : 0, 0, &back, &nb);
    assert_int_equal(nb, n);
    if (n) assert_memory_equal(back, mine, n * sizeof *back);
    free(back);
    /* A checkpoint written by 1 rank, resumed on 2: rank 1 gets an empty blob. */
    poa_comm_scatter_blobs(d, all, lens, 1, 0, &back, &nb);
    assert_int_equal(nb, rank == 0 ? 3 : 0);
    free(back);
    if (all) {
        for (int r = 0; r < size; r++) free(all[r]);
        free(all);
        free(lens);
    }
}

static void test_check_identical_detects_one_bit(void **state)
{
    (void) state;
    enum { N = 1001 }; /* odd size: the byte-wise tail of the hash is exercised too */
    unsigned char *buf = malloc(N);
    for (int i = 0; i < N; i++) buf[i] = (unsigned char) (i * 37 + 11);
    int diff = 99;
    assert_int_equal(poa_comm_check_identical(d, buf, N, &diff), 1);
    assert_int_equal(diff, -1);
    /* one bit in the middle, then one bit in the last byte, on rank 1 only */
    int where[2] = {N / 2, N - 1};
    for (int k = 0; k < 2; k++) {
        if (rank == 1) buf[where[k]] ^= 0x10;
        int same = poa_comm_check_identical(d, buf, N, &diff);
        if (same) fail_msg("rank %d: a flipped bit at byte %d was not detected", rank, where[k]);
        assert_int_equal(diff, 1);
        if (rank == 1) buf[where[k]] ^= 0x10;
    }
    assert_int_equal(poa_comm_check_identical_host(d, buf, N, NULL), 1);
    /* the hash covers every byte and the length */
    assert_true(poa_comm_hash64(buf, N) != poa_comm_hash64(buf, N - 1));
    free(buf);
}

int main(int argc, char **argv)
{
    d = poa_comm_init(&argc, &argv, POA_COMM_MPI);
    rank = poa_comm_rank(d);
    size = poa_comm_world_size(d);
    if (size != 2) {
        fprintf(stderr, "test_mpi_buckets needs exactly 2 ranks (got %d)\n", size);
        poa_comm_finalize(d);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucketed_sum_equals_allreduce),
        cmocka_unit_test(test_averaging_and_repeated_steps),
        cmocka_unit_test(test_progress_overlaps_compute),
        cmocka_unit_test(test_exposed_time_accounted),
        cmocka_unit_test(test_wait_all_starts_missing_buckets),
        cmocka_unit_test(test_small_collectives),
        cmocka_unit_test(test_gather_scatter_blobs),
        cmocka_unit_test(test_check_identical_detects_one_bit),
    };
    int failed = cmocka_run_group_tests_name("mpi_buckets", tests, NULL, NULL);
    int any = poa_comm_max_int(d, failed);
    poa_comm_finalize(d);
    return any ? 1 : 0;
}
