/* cpu_train.c — loss, optimizer and reduction ops of the CPU backend and the poa_train_ops
 * table. */
#include "backend/cpu/cpu_backend.h"
#include "common/poa_error.h"

#include <math.h>

static double cpu_sum_squares(poa_backend *be, const float *x, size_t n)
{
    (void) be;
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) s += (double) x[i] * x[i];
    return s;
}

static int cpu_all_finite(poa_backend *be, const float *x, size_t n)
{
    (void) be;
    int bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) bad |= !isfinite(x[i]);
    return !bad;
}

const poa_train_ops poa_cpu_train_ops = {
    .sum_squares = cpu_sum_squares,
    .all_finite = cpu_all_finite,
};

