/* step_test_util.h — helpers shared by the tests of the POA step (train ops, losses, step):
 * deterministic random fills (Philox, POA_RNG_TEST) and tensor comparisons that print what
 * differed. */
#ifndef POA_TESTS_STEP_UTIL_H
#define POA_TESTS_STEP_UTIL_H

#include "common/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static inline void fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    poa_rng r;
    poa_rng_init(&r, seed, 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float) poa_rng_uniform_range(&r, lo, hi);
}

static inline void fill_normal(float *x, size_t n, uint64_t seed, float std)
{
    poa_rng r;
    poa_rng_init(&r, seed, 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float) (std * poa_rng_normal(&r));
}

/* Norm-wise relative error ||a − b|| / max(||b||, floor). */
static inline double rel_err(const float *a, const double *b, size_t n, double floor)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double) a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    den = sqrt(den);
    return sqrt(num) / (den > floor ? den : floor);
}

/* Compare n values; on failure print the worst element.  Returns 1 if within tol. */
static inline int check_close(const char *what, const float *got, const double *want, size_t n,
                              double tol)
{
    double e = rel_err(got, want, n, 1e-30);
    if (e <= tol) return 1;
    size_t worst = 0;
    double wd = -1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double) got[i] - want[i]);
        if (d > wd) wd = d, worst = i;
    }
    fprintf(stderr, "%s: relative error %.3e > %.1e (worst [%zu]: got %.9g want %.9g)\n", what, e,
            tol, worst, (double) got[worst], want[worst]);
    return 0;
}

static inline int check_scalar(const char *what, double got, double want, double tol)
{
    double e = fabs(got - want) / (fabs(want) > 1e-30 ? fabs(want) : 1e-30);
    if (e <= tol) return 1;
    fprintf(stderr, "%s: got %.12g want %.12g (relative error %.3e > %.1e)\n", what, got, want, e,
            tol);
    return 0;
}

#endif
