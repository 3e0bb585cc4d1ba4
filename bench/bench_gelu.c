/* bench_gelu.c — wall time of the CPU backend's GELU forward and backward, the libmvec kernels
 * (POA_CPU_GELU=libm) against the AVX-512 ones of cpu_gelu_avx512.c; make bench-gelu.  The
 * default size is the values the MLPs of one ViT-S/16 step hold (8 images × 197 tokens × 1536
 * hidden × 12 blocks ≈ 29 M), which on the development VM is bound by memory bandwidth; a size
 * that stays in L2 (--n 262144) shows the arithmetic.
 *
 * usage: bench_gelu [--n N] [--rounds R]
 * For 1 and 2 threads, R rounds each time the two kernel sets alternately (so that drifts of a
 * shared machine hit both alike); per round gelu_fwd, then gelu_bwd as the MLP backward calls
 * it (in place, with the forward value y).  Prints the medians in ns per value, one line
 * `RESULT threads=… impl=… fwd_ns=… bwd_ns=…` per thread count and kernel set.  The inputs are
 * uniform in [−5, 5], the incoming gradient in [−1, 1].  Below 65,537 values the ops run on one
 * thread whatever the count. */
#include "backend/backend.h"
#include "backend/cpu/cpu_nn.h"
#include "common/cli.h"
#include "common/timer.h"

#include <limits.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUNDS 64

static const char *const impls[2] = {"libm", "avx512"};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float uniform(float lo, float hi) /* xorshift64 */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (float) ((double) (rng_state >> 11) * (1.0 / 9007199254740992.0));
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n)
{
    qsort(t, (size_t) n, sizeof *t, cmp_double);
    return t[n / 2];
}

/* Select a kernel set for the next calls (the op functions read POA_CPU_GELU on every call). */
static void use_impl(int avx512)
{
    if (avx512)
        unsetenv("POA_CPU_GELU");
    else
        setenv("POA_CPU_GELU", "libm", 1);
}

typedef struct gelu_bufs {
    float *x, *y, *g, *g0; /* input, forward value, gradient (in place), pristine gradient */
    size_t n;
} gelu_bufs;

/* One round of one kernel set: seconds of the forward and of the backward. */
static void time_round(poa_backend *be, const gelu_bufs *b, double *fwd, double *bwd)
{
    double t0 = poa_now();
    be->nn->gelu_fwd(be, b->y, b->x, b->n);
    *fwd = poa_now() - t0;
    memcpy(b->g, b->g0, sizeof(float) * b->n);
    t0 = poa_now();
    be->nn->gelu_bwd(be, b->g, b->y, b->g, b->x, b->n);
    *bwd = poa_now() - t0;
}

/* R alternating rounds on `threads` threads; prints the medians. */
static void bench_threads(poa_backend *be, const gelu_bufs *b, int threads, int rounds)
{
    double fwd[2][MAX_ROUNDS], bwd[2][MAX_ROUNDS], skip;
    omp_set_num_threads(threads);
    for (int k = 0; k < 2; k++) { /* warm-up: page faults, thread start-up */
        use_impl(k);
        time_round(be, b, &skip, &skip);
    }
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < 2; k++) {
            use_impl(k);
            time_round(be, b, &fwd[k][r], &bwd[k][r]);
        }
    for (int k = 0; k < 2; k++)
        printf("RESULT threads=%d impl=%s fwd_ns=%.3f bwd_ns=%.3f\n", threads, impls[k],
               1e9 * median(fwd[k], rounds) / (double) b->n,
               1e9 * median(bwd[k], rounds) / (double) b->n);
    unsetenv("POA_CPU_GELU");
}

static const poa_cli_option options[] = {
    {"n", 0, "N", "values per kernel call (default 29000000: one ViT-S/16 step's MLPs)"},
    {"rounds", 0, "R", "alternating rounds of the two kernels (default 7, at most 64)"},
};
static const poa_cli_spec spec = {
    .program = "bench_gelu",
    .summary = "Wall time of the libm and AVX-512 GELU kernels, 1 and 2 threads; make bench-gelu.",
    .options = options,
    .n_options = (int) (sizeof options / sizeof options[0]),
};

int main(int argc, char **argv)
{
    poa_cli cli;
    poa_err cli_err = {0};
    int n, rounds;
    int rc = poa_cli_main_setup(&spec, argc, argv, &cli, NULL, 1, &cli_err);
    if (rc < 0 &&
        (poa_cli_int(&cli, &spec, "n", 29 * 1000 * 1000, 1, INT_MAX, &n, &cli_err) != POA_OK ||
         poa_cli_int(&cli, &spec, "rounds", 7, 1, MAX_ROUNDS, &rounds, &cli_err) != POA_OK))
        rc = poa_cli_usage_error(&spec, "%s", cli_err.msg);
    poa_cli_free(&cli);
    if (rc >= 0) return rc;
    char err[256];
    poa_backend *be = poa_backend_create("cpu", NULL, err, sizeof err);
    if (!be) {
        fprintf(stderr, "bench_gelu: %s\n", err);
        return 1;
    }
    gelu_bufs b = {NULL, NULL, NULL, NULL, (size_t) n};
    float **bufs[4] = {&b.x, &b.y, &b.g, &b.g0};
    for (int k = 0; k < 4; k++) *bufs[k] = be->iface->alloc(be, sizeof(float) * b.n);
    for (size_t i = 0; i < b.n; i++) {
        b.x[i] = uniform(-5, 5);
        b.g0[i] = uniform(-1, 1);
    }
    use_impl(1);
    printf("bench_gelu: n=%zu rounds=%d, kernels libm and %s\n", b.n, rounds, poa_cpu_gelu_impl());
    for (int threads = 1; threads <= 2; threads++) bench_threads(be, &b, threads, rounds);
    for (int k = 0; k < 4; k++) be->iface->free(be, *bufs[k]);
    poa_backend_destroy(be);
    return 0;
}
