/* bench_sgemm.h — the yardstick of the benchmarks' frac_sgemm: OpenBLAS's sgemm on an n×n×n
 * product (n = 1024), wall clock, on as many threads as the benchmark's own step uses
 * (omp_get_max_threads(), i.e. OMP_NUM_THREADS), timed in the same process as the step.
 *
 * frac_sgemm = the step's GFLOP/s (analytic FLOPs over wall time) / this rate: like with like,
 * both wall clock at the same thread count under the same machine load.  (An sgemm rate per core
 * or per CPU-second against a two-thread step's wall-clock rate overstates the fraction about
 * twofold.)
 *
 * OpenBLAS runs an n×n×n product on T threads two ways, and the yardstick is the faster in each
 * measurement:
 *   split — T OpenMP threads, each one row panel in single-threaded OpenBLAS (poa_cpu_gemm_blas,
 *           the CPU backend's BLAS path);
 *   pool  — one cblas_sgemm call on T threads of OpenBLAS's own pool (what PyTorch does); only
 *           with OpenBLAS, and only for T > 1 (with one thread both are the same call).
 * Both rates are printed too (sgemm_split_gflops, sgemm_pool_gflops).
 */
#ifndef POA_BENCH_SGEMM_H
#define POA_BENCH_SGEMM_H

typedef struct bench_sgemm {
    float *A, *B, *C;
    int n;
    int threads; /* omp_get_max_threads() when created */
} bench_sgemm;

/* GFLOP/s (wall clock) of one measurement: each way, and the faster. */
typedef struct bench_sgemm_rate {
    double split, pool, best; /* pool: NAN without OpenBLAS or with one thread */
} bench_sgemm_rate;

/* Allocates and fills the operands, runs each way once (warm-up). */
bench_sgemm bench_sgemm_create(int n);
/* One product each way.  Afterwards waits until OpenBLAS's pool threads have stopped spinning
 * (about 0.1 s), so that they do not take cycles from the step timed next. */
bench_sgemm_rate bench_sgemm_run(const bench_sgemm *p);
void bench_sgemm_destroy(bench_sgemm *p);
/* Median of the n values that are not NaN (reorders v); NAN when all are. */
double bench_median(double *v, int n);

#endif
