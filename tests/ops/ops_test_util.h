/* ops_test_util.h — helpers shared by the CPU backend's kernel tests (tests/ops/test_ops_*.c):
 * random buffers from the test RNG stream, float ↔ double copies and comparisons that print the
 * worst element.  (The backend-generic op test has its own harness, backend_ops.h.)
 * Include after <cmocka.h>. */
#ifndef POA_TESTS_OPS_TEST_UTIL_H
#define POA_TESTS_OPS_TEST_UTIL_H

#include "backend/backend.h"
#include "tests/lib/cpu_naive.h"
#include "common/poa_error.h"
#include "common/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* uniform values in [lo, hi) from the test stream `seed` */
static inline float *rand_floats(size_t n, float lo, float hi, uint64_t seed)
{
    float *x = poa_xmalloc(sizeof(float) * (n ? n : 1));
    poa_rng r;
    poa_rng_init(&r, seed, 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float) poa_rng_uniform_range(&r, lo, hi);
    return x;
}

static inline double *to_double(const float *x, size_t n)
{
    double *d = poa_xmalloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static inline float *copy_floats(const float *x, size_t n)
{
    float *c = poa_xmalloc(sizeof(float) * (n ? n : 1));
    memcpy(c, x, sizeof(float) * n);
    return c;
}

/* Compare `got` (float) with `want` (double) over a rows × cols view with leading dimension ld;
 * element passes when |got − want| ≤ atol + rtol |want|.  Prints the worst element on failure.
 * Returns 1 if all pass. */
static inline int close_view(const char *what, const float *got, const double *want, int rows,
                             int cols, int ld, double atol, double rtol)
{
    double worst = -INFINITY, wgot = 0, wwant = 0;
    int wr = -1, wc = -1, bad = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const double g = got[(size_t) r * ld + c], w = want[(size_t) r * ld + c];
            double excess = fabs(g - w) - (atol + rtol * fabs(w));
            if (isnan(excess)) excess = INFINITY;
            if (excess > 0) bad++;
            if (excess > worst) worst = excess, wr = r, wc = c, wgot = g, wwant = w;
        }
    if (bad)
        fprintf(stderr,
                "%s: %d of %d elements differ; worst at (%d, %d): got %.9g want %.9g "
                "(|diff| %.3g, atol %.3g rtol %.3g)\n",
                what, bad, rows * cols, wr, wc, wgot, wwant, fabs(wgot - wwant), atol, rtol);
    return bad == 0;
}

/* Whole-buffer variant (n contiguous values). */
static inline int close_all(const char *what, const float *got, const double *want, size_t n,
                            double atol, double rtol)
{
    return close_view(what, got, want, 1, (int) n, (int) n, atol, rtol);
}

/* The CPU backend computes in fp32 (backend.h, "Precision"): a float buffer is an activation
 * buffer, and the tests pass their float arrays to the activation ops through these casts. */
#define ACT(p) _Generic((p), const float * : (const poa_act *) (p), default : (poa_act *) (p))

static inline poa_backend *cpu_backend(void)
{
    char err[256];
    poa_backend *be = poa_backend_create("cpu", NULL, err, sizeof err);
    if (!be) fprintf(stderr, "%s\n", err);
    return be;
}

#endif
