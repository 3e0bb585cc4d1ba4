/* test_gpu_smoke.c — CUDA backend smoke test: exit 77 (skipped) without a device; otherwise
 * compare the CUDA GEMM, axpy and Σx² with the CPU backend. */
#include "poa_config.h"
#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#ifdef POA_HAVE_NCCL
#include <nccl.h>
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
#ifdef POA_HAVE_NCCL
    int nccl_version = 0;
    ncclGetVersion(&nccl_version); /* linked in the CUDA+NCCL configuration */
    printf("NCCL %d\n", nccl_version);
#endif
    if (poa_cuda_devices() < 1) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    char err[256];
    poa_backend *gpu = poa_backend_create("cuda", err, sizeof err);
    poa_backend *cpu = poa_backend_create("cpu", err, sizeof err);
    if (!gpu || !cpu) {
        fprintf(stderr, "backend: %s\n", err);
        return 1;
    }
    enum { M = 33, N = 65, K = 47 };
    float *hA = malloc(sizeof(float) * M * K), *hB = malloc(sizeof(float) * K * N);
    float *hC = malloc(sizeof(float) * M * N), *hG = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) hA[i] = sinf((float) i);
    for (int i = 0; i < K * N; i++) hB[i] = cosf((float) i);
    float *dA = gpu->nn->alloc(gpu, sizeof(float) * M * K);
    float *dB = gpu->nn->alloc(gpu, sizeof(float) * K * N);
    float *dC = gpu->nn->alloc(gpu, sizeof(float) * M * N);
    gpu->nn->upload(gpu, dA, hA, sizeof(float) * M * K);
    gpu->nn->upload(gpu, dB, hB, sizeof(float) * K * N);
    gpu->nn->gemm(gpu, POA_NO_TRANS, POA_NO_TRANS, M, N, K, 1.0f, dA, K, dB, N, 0.0f, dC, N);
    gpu->nn->download(gpu, hG, dC, sizeof(float) * M * N);
    cpu->nn->gemm(cpu, POA_NO_TRANS, POA_NO_TRANS, M, N, K, 1.0f, hA, K, hB, N, 0.0f, hC, N);
    double maxerr = 0;
    for (int i = 0; i < M * N; i++) maxerr = fmax(maxerr, fabs(hG[i] - hC[i]));
    double ss_g = gpu->train->sum_squares(gpu, dC, M * N);
    double ss_c = cpu->train->sum_squares(cpu, hC, M * N);
    printf("gemm max abs err %.3g, sum_squares gpu %.9g cpu %.9g\n", maxerr, ss_g, ss_c);
    int ok = maxerr < 1e-3 && fabs(ss_g - ss_c) <= 1e-4 * ss_c;
    gpu->nn->free(gpu, dA);
    gpu->nn->free(gpu, dB);
    gpu->nn->free(gpu, dC);
    poa_backend_destroy(gpu);
    poa_backend_destroy(cpu);
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
