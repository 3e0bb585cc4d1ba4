/* cpu_backend.c — memory and BLAS ops of the CPU backend, and the op tables. */
#include "backend/cpu/cpu_backend.h"
#include "common/poa_error.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(poa_backend *be, size_t bytes)
{
    (void) be;
    void *p = NULL;
    size_t rounded = (bytes + 255) / 256 * 256;
    POA_CHECK(posix_memalign(&p, 256, rounded ? rounded : 256) == 0,
              "out of host memory allocating %zu bytes", bytes);
    return p;
}

static void cpu_free(poa_backend *be, void *p)
{
    (void) be;
    free(p);
}

static void cpu_copy(poa_backend *be, void *dst, const void *src, size_t bytes)
{
    (void) be;
    if (bytes) memmove(dst, src, bytes);
}

static void cpu_zero(poa_backend *be, void *dst, size_t bytes)
{
    (void) be;
    if (bytes) memset(dst, 0, bytes);
}

static void cpu_sync(poa_backend *be)
{
    (void) be;
}

static void cpu_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc)
{
    (void) be;
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void cpu_axpy(poa_backend *be, float *y, float a, const float *x, size_t n)
{
    (void) be;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void cpu_scale(poa_backend *be, float *x, float a, size_t n)
{
    (void) be;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

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

static const poa_nn_ops cpu_nn_ops = {
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .gemm = cpu_gemm,
    .axpy = cpu_axpy,
    .scale = cpu_scale,
};

static const poa_train_ops cpu_train_ops = {
    .sum_squares = cpu_sum_squares,
    .all_finite = cpu_all_finite,
};

poa_backend *poa_cpu_backend_create(void)
{
    poa_backend *be = poa_xcalloc(1, sizeof *be);
    be->name = "cpu";
    be->nn = &cpu_nn_ops;
    be->train = &cpu_train_ops;
    return be;
}

void poa_cpu_backend_destroy(poa_backend *be)
{
    free(be);
}
