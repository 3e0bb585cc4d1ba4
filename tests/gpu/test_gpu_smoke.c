/* test_gpu_smoke.c — CUDA backend smoke test: exit 77 (skipped) without a device; otherwise
 * compare the CUDA GEMM, axpy and Σx² with the CPU backend, and check the device interface:
 * pinned buffers, transfers on the transfer stream ordered by events, deterministic Σx². */
#include "poa_config.h"
#include "backend/backend.h"
#ifdef POA_HAVE_NCCL
#include <nccl.h>
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Σx² of n device floats, through a device double and one download. */
static double sum_squares(poa_backend *be, double *dev_out, const float *x, size_t n)
{
    double h = 0;
    be->train->sum_squares(be, dev_out, x, n);
    be->iface->download(be, &h, dev_out, sizeof h);
    return h;
}

int main(void)
{
#ifdef POA_HAVE_NCCL
    int nccl_version = 0;
    ncclGetVersion(&nccl_version); /* linked in the CUDA+NCCL configuration */
    printf("NCCL %d\n", nccl_version);
#endif
    if (poa_backend_device_count("cuda") < 1) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    char err[256];
    const poa_backend_opts fp32 = {POA_DT_F32, 0, 0}; /* no TF32: compared with the CPU */
    poa_backend *gpu = poa_backend_create("cuda", &fp32, err, sizeof err);
    poa_backend *cpu = poa_backend_create("cpu", NULL, err, sizeof err);
    if (!gpu || !cpu) {
        fprintf(stderr, "backend: %s\n", err);
        return 1;
    }
    char desc[512];
    gpu->iface->describe(gpu, desc, sizeof desc);
    printf("%s\n", desc);
    enum { M = 33, N = 65, K = 47 };
    float *hA = gpu->iface->host_alloc(gpu, sizeof(float) * M * K);
    float *hB = gpu->iface->host_alloc(gpu, sizeof(float) * K * N);
    float *hC = malloc(sizeof(float) * M * N), *hG = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) hA[i] = sinf((float) i);
    for (int i = 0; i < K * N; i++) hB[i] = cosf((float) i);
    float *dA = gpu->iface->alloc(gpu, sizeof(float) * M * K);
    float *dB = gpu->iface->alloc(gpu, sizeof(float) * K * N);
    float *dC = gpu->iface->alloc(gpu, sizeof(float) * M * N);
    double *dS = gpu->iface->alloc(gpu, sizeof(double));
    /* inputs through the transfer stream; the compute stream waits for them */
    poa_event *up = gpu->iface->event_create(gpu), *t0 = gpu->iface->event_create(gpu);
    poa_event *t1 = gpu->iface->event_create(gpu), *down = gpu->iface->event_create(gpu);
    gpu->iface->upload_async(gpu, dA, hA, sizeof(float) * M * K, NULL);
    gpu->iface->upload_async(gpu, dB, hB, sizeof(float) * K * N, up);
    gpu->iface->stream_wait(gpu, up);
    gpu->iface->event_record(gpu, t0);
    gpu->nn->gemm(gpu, POA_NO_TRANS, POA_NO_TRANS, M, N, K, 1.0f, dA, K, dB, N, 0.0f, dC, N);
    gpu->iface->event_record(gpu, t1);
    gpu->iface->download_async(gpu, hG, dC, sizeof(float) * M * N, down);
    gpu->iface->event_synchronize(gpu, down);
    const double gemm_s = gpu->iface->event_elapsed(gpu, t0, t1);
    cpu->nn->gemm(cpu, POA_NO_TRANS, POA_NO_TRANS, M, N, K, 1.0f, hA, K, hB, N, 0.0f, hC, N);
    double maxerr = 0;
    for (int i = 0; i < M * N; i++) maxerr = fmax(maxerr, fabs(hG[i] - hC[i]));
    double *cS = cpu->iface->alloc(cpu, sizeof(double));
    const double ss_g = sum_squares(gpu, dS, dC, M * N), ss_g2 = sum_squares(gpu, dS, dC, M * N);
    const double ss_c = sum_squares(cpu, cS, hC, M * N);
    /* axpy on the device, against the host */
    gpu->nn->axpy(gpu, dC, 0.5f, dC, M * N);
    gpu->iface->download(gpu, hG, dC, sizeof(float) * M * N);
    double axpy_err = 0;
    for (int i = 0; i < M * N; i++) axpy_err = fmax(axpy_err, fabs(hG[i] - 1.5 * hC[i]));
    printf("gemm max abs err %.3g (%.3g ms), sum_squares gpu %.17g cpu %.17g, axpy err %.3g\n",
           maxerr, gemm_s * 1e3, ss_g, ss_c, axpy_err);
    int ok = maxerr < 1e-3 && fabs(ss_g - ss_c) <= 1e-4 * ss_c && axpy_err < 2e-3 &&
             memcmp(&ss_g, &ss_g2, sizeof ss_g) == 0 && gemm_s >= 0;
    gpu->iface->event_destroy(gpu, up);
    gpu->iface->event_destroy(gpu, t0);
    gpu->iface->event_destroy(gpu, t1);
    gpu->iface->event_destroy(gpu, down);
    gpu->iface->free(gpu, dA);
    gpu->iface->free(gpu, dB);
    gpu->iface->free(gpu, dC);
    gpu->iface->free(gpu, dS);
    gpu->iface->host_free(gpu, hA);
    gpu->iface->host_free(gpu, hB);
    cpu->iface->free(cpu, cS);
    free(hC);
    free(hG);
    poa_backend_destroy(gpu);
    poa_backend_destroy(cpu);
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
