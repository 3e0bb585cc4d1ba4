/* bench_sgemm.c — the benchmarks' sgemm yardstick (see bench_sgemm.h). */
#include "bench_sgemm.h"

#include "backend/cpu/cpu_nn.h"
#include "common/timer.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* OpenBLAS's thread control; absent (NULL) with another BLAS. */
extern void openblas_set_num_threads(int num_threads) __attribute__((weak));

/* OpenBLAS's idle pool threads spin (yielding) for 2^28 TSC cycles, about 0.1 s at 2-3 GHz,
 * before they sleep; wait somewhat longer. */
#define POOL_SETTLE_NS 200000000L

static float *operand(int n, unsigned salt)
{
    const size_t count = (size_t) n * n;
    float *m = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    if (!m) {
        fprintf(stderr, "bench_sgemm: out of memory (%zu floats)\n", count);
        exit(1);
    }
    for (size_t i = 0; i < count; i++) m[i] = (float) (((i + salt) * 2654435761u) % 1000) * 1e-3f;
    return m;
}

static int pool_available(const bench_sgemm *p)
{
    return p->threads > 1 && openblas_set_num_threads != NULL;
}

/* GFLOP/s of one product, poa_cpu_gemm_blas (one panel per OpenMP thread). */
static double run_split(const bench_sgemm *p)
{
    const int n = p->n;
    const double t0 = poa_now();
    poa_cpu_gemm_blas(POA_NO_TRANS, POA_NO_TRANS, n, n, n, 1.0f, p->A, n, p->B, n, 0.0f, p->C, n);
    return 2.0 * n * n * (double) n / (poa_now() - t0) * 1e-9;
}

/* GFLOP/s of one cblas_sgemm on p->threads threads of OpenBLAS's pool; the pool goes back to
 * one thread afterwards, as the CPU backend wants it. */
static double run_pool(const bench_sgemm *p)
{
    const int n = p->n;
    openblas_set_num_threads(p->threads);
    const double t0 = poa_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, p->A, n, p->B, n, 0.0f,
                p->C, n);
    const double dt = poa_now() - t0;
    openblas_set_num_threads(1);
    return 2.0 * n * n * (double) n / dt * 1e-9;
}

bench_sgemm bench_sgemm_create(int n)
{
    bench_sgemm p = {operand(n, 0), operand(n, 7), operand(n, 0), n, omp_get_max_threads()};
    (void) bench_sgemm_run(&p); /* warm-up: pages, OpenBLAS's buffers and pool */
    return p;
}

bench_sgemm_rate bench_sgemm_run(const bench_sgemm *p)
{
    bench_sgemm_rate r = {run_split(p), NAN, 0};
    r.best = r.split;
    if (pool_available(p)) {
        r.pool = run_pool(p);
        if (r.pool > r.best) r.best = r.pool;
        nanosleep(&(struct timespec){0, POOL_SETTLE_NS}, NULL);
    }
    return r;
}

void bench_sgemm_destroy(bench_sgemm *p)
{
    free(p->A), free(p->B), free(p->C);
    p->A = p->B = p->C = NULL;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    int m = 0; /* NaNs out: they break qsort's ordering */
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) v[m++] = v[i];
    if (m == 0) return NAN;
    qsort(v, (size_t) m, sizeof *v, cmp_double);
    return m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}
