/* test_gpu_smoke.c — CUDA backend smoke test: exit 77 (skipped) without a device; otherwise
 * check the device interface (pinned buffers, transfers on the transfer stream ordered by
 * events, gemm, axpy and a deterministic Σx² against the CPU backend), then create the backend
 * in fp32 and bf16 and check its cuBLASLt GEMMs against a double reference on the host: gemm
 * (C holding NaN, beta 0: C must not be read) and act_gemm_bias with an odd shape.  The
 * op-by-op comparison with the naive references is tests/ops/test_backend_ops. */
#include "poa_config.h"
#include "backend/backend.h"
#include "common/bf16.h"
#ifdef POA_HAVE_NCCL
#include <nccl.h>
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M = 33, N = 65, K = 47 };

/* C[M, N] = A[M, K] · B[N, K]ᵀ + bias in double, from A and B rounded to bf16 if `bf16`. */
static void reference(double *C, const float *A, const float *B, const float *bias, int bf16)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = bias ? bias[j] : 0.0;
            for (int k = 0; k < K; k++) {
                const float a = A[i * K + k], b = B[j * K + k];
                s += bf16 ? (double) poa_round_bf16(a) * poa_round_bf16(b) : (double) a * b;
            }
            C[i * N + j] = s;
        }
}

/* max |got − want| / (1 + |want| + |also|): `also` (may be NULL) is the product without the
 * bias, so that a bias added after the product's own rounding is judged on both magnitudes. */
static double max_rel_err(const float *got, const double *want, const double *also, int n)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        const double scale = 1.0 + fabs(want[i]) + (also ? fabs(also[i]) : 0.0);
        const double e = fabs(got[i] - want[i]) / scale;
        worst = isnan(got[i]) ? INFINITY : fmax(worst, e);
    }
    return worst;
}

/* One backend: gemm (fp32, NT, beta 0 over NaN) and act_gemm_bias (compute dtype). */
static int check_backend(poa_dtype dt, const float *hA, const float *hB, const float *hbias,
                         const double *ref, double *ref_bias)
{
    reference(ref_bias, hA, hB, hbias, dt == POA_DT_BF16);
    char err[512];
    poa_backend_opts opts = {.act_dtype = dt, .device = 0, .allow_tf32 = 0};
    poa_backend *be = poa_backend_create("cuda", &opts, err, sizeof err);
    if (!be) {
        fprintf(stderr, "backend: %s\n", err);
        return 0;
    }
    char desc[256];
    be->iface->describe(be, desc, sizeof desc);
    printf("%s\n", desc);
    const poa_backend_iface *io = be->iface;
    float *hC = malloc(sizeof(float) * M * N);
    float *dA = io->alloc(be, sizeof(float) * M * K), *dB = io->alloc(be, sizeof(float) * N * K);
    float *dC = io->alloc(be, sizeof(float) * M * N), *dbias = io->alloc(be, sizeof(float) * N);
    io->upload(be, dA, hA, sizeof(float) * M * K);
    io->upload(be, dB, hB, sizeof(float) * N * K);
    io->upload(be, dbias, hbias, sizeof(float) * N);
    for (int i = 0; i < M * N; i++) hC[i] = NAN;
    io->upload(be, dC, hC, sizeof(float) * M * N);
    be->nn->gemm(be, POA_NO_TRANS, POA_TRANS, M, N, K, 1.0f, dA, K, dB, K, 0.0f, dC, N);
    io->download(be, hC, dC, sizeof(float) * M * N);
    const double e_gemm = max_rel_err(hC, ref, NULL, M * N);

    poa_act *aA = io->alloc(be, poa_act_bytes(be, M * K));
    poa_act *aB = io->alloc(be, poa_act_bytes(be, N * K));
    poa_act *aC = io->alloc(be, poa_act_bytes(be, M * N));
    be->nn->act_from_f32(be, aA, dA, M * K);
    be->nn->act_from_f32(be, aB, dB, N * K);
    be->nn->act_gemm_bias(be, POA_NO_TRANS, POA_TRANS, M, N, K, 1.0f, aA, K, aB, K, dbias, aC, N);
    io->act_download(be, hC, aC, M * N);
    const double e_bias = max_rel_err(hC, ref_bias, ref, M * N);
    /* bf16: the reference has the same rounded operands; what is left is fp32 accumulation
     * and the bf16 rounding of the output (2^-9 relative) */
    const double tol = dt == POA_DT_BF16 ? 4e-3 : 1e-5;
    printf("%s: gemm max rel err %.3g (tol 1e-5), act_gemm_bias %.3g (tol %.1g)\n",
           poa_dtype_name(dt), e_gemm, e_bias, tol);
    const int ok = e_gemm <= 1e-5 && e_bias <= tol;
    io->free(be, dA), io->free(be, dB), io->free(be, dC), io->free(be, dbias);
    io->free(be, aA), io->free(be, aB), io->free(be, aC);
    free(hC);
    poa_backend_destroy(be);
    return ok;
}

/* Σx² of n device floats, through a device double and one download. */
static double sum_squares(poa_backend *be, double *dev_out, const float *x, size_t n)
{
    double h = 0;
    be->train->sum_squares(be, dev_out, x, n);
    be->iface->download(be, &h, dev_out, sizeof h);
    return h;
}

/* The device interface in fp32 against the CPU backend: inputs uploaded on the transfer stream
 * from pinned buffers, the compute stream waiting on their event, gemm timed between two
 * events, the result downloaded asynchronously; axpy; Σx² equal to the CPU's and bit-identical
 * when repeated. */
static int check_interface(void)
{
    char err[256];
    const poa_backend_opts fp32 = {POA_DT_F32, 0, 0}; /* no TF32: compared with the CPU */
    poa_backend *gpu = poa_backend_create("cuda", &fp32, err, sizeof err);
    poa_backend *cpu = poa_backend_create("cpu", NULL, err, sizeof err);
    if (!gpu || !cpu) {
        fprintf(stderr, "backend: %s\n", err);
        return 0;
    }
    char desc[512];
    gpu->iface->describe(gpu, desc, sizeof desc);
    printf("%s\n", desc);
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
    const int ok = maxerr < 1e-3 && fabs(ss_g - ss_c) <= 1e-4 * ss_c && axpy_err < 2e-3 &&
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
    return ok;
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
    float *hA = malloc(sizeof(float) * M * K), *hB = malloc(sizeof(float) * N * K);
    float *hbias = malloc(sizeof(float) * N);
    double *ref = malloc(sizeof(double) * M * N), *ref_bias = malloc(sizeof(double) * M * N);
    for (int i = 0; i < M * K; i++) hA[i] = sinf((float) i);
    for (int i = 0; i < N * K; i++) hB[i] = cosf((float) i);
    for (int j = 0; j < N; j++) hbias[j] = 0.25f * (float) j;
    reference(ref, hA, hB, NULL, 0);
    /* every check runs (no short-circuit), so one failure does not hide another */
    const int ok = check_interface() & check_backend(POA_DT_F32, hA, hB, hbias, ref, ref_bias) &
                   check_backend(POA_DT_BF16, hA, hB, hbias, ref, ref_bias);
    free(hA), free(hB), free(hbias), free(ref), free(ref_bias);
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
