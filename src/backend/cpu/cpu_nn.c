/* cpu_nn.c — layer ops of the CPU backend (fp32, BLAS GEMMs, OpenMP loops) and the
 * poa_nn_ops table. */
#include "backend/cpu/cpu_backend.h"
#include "common/poa_error.h"

#include <cblas.h>
#include <math.h>

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

const poa_nn_ops poa_cpu_nn_ops = {
    .alloc = poa_cpu_alloc,
    .free = poa_cpu_free,
    .upload = poa_cpu_copy,
    .download = poa_cpu_copy,
    .copy = poa_cpu_copy,
    .zero = poa_cpu_zero,
    .sync = poa_cpu_sync,
    .gemm = cpu_gemm,
    .axpy = cpu_axpy,
    .scale = cpu_scale,
};

