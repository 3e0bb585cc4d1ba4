/* test_gpu_smoke.c — CUDA backend smoke test: exit 77 (skipped) without a device; otherwise
 * create the backend in fp32 and bf16 and check its cuBLASLt GEMMs against a double reference
 * on the host: gemm (C holding NaN, beta 0: C must not be read) and act_gemm_bias with an odd
 * shape.  The op-by-op comparison with the CPU backend is the backend-generic op test. */
#include "poa_config.h"
#include "backend/backend.h"
#include "common/bf16.h"
#ifdef POA_HAVE_NCCL
#include <nccl.h>
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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
    const int ok = check_backend(POA_DT_F32, hA, hB, hbias, ref, ref_bias) &&
                   check_backend(POA_DT_BF16, hA, hB, hbias, ref, ref_bias);
    free(hA), free(hB), free(hbias), free(ref), free(ref_bias);
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
