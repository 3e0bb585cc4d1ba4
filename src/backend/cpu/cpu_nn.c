/* cpu_nn.c — the CPU backend's poa_nn_ops table, its threading, the GEMMs, the simple row
 * ops (bias, gather/scatter, axpy, scale) and the activation entries of the table (fp32 on the
 * CPU: the same kernels).  The other layer ops live in cpu_nn_*.c.
 * Threading model: see cpu_nn.h. */
#include "poa_config.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_avx512_math.h"
#include "backend/cpu/cpu_gemm_avx512.h"
#include "backend/cpu/cpu_nn.h"
#include "backend/cpu/cpu_simd.h"
#include "common/poa_error.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <string.h>

#ifdef POA_HAVE_OPENBLAS
/* Declared here so that any cblas.h (reference or OpenBLAS's) works. */
void openblas_set_num_threads(int num_threads);
#endif

/* ------------------------------------------------------------------------ threads */
static int default_threads; /* OpenMP's default, remembered on the first poa_cpu_set_threads */

/* OpenBLAS's own pool is set to one thread once: all parallelism comes from OpenMP. */
static void blas_single_threaded_once(void)
{
#ifdef POA_HAVE_OPENBLAS
    static atomic_int done;
    if (!atomic_load_explicit(&done, memory_order_acquire) && !atomic_exchange(&done, 1))
        openblas_set_num_threads(1);
#endif
}

void poa_cpu_set_threads(int n)
{
    if (default_threads == 0) default_threads = omp_get_max_threads();
    omp_set_num_threads(n > 0 ? n : default_threads);
    blas_single_threaded_once();
}

int poa_cpu_get_threads(void)
{
    return omp_get_max_threads();
}

/* ------------------------------------------------------------------------ GEMM */
static void scale_matrix(float *C, int ldc, int M, int N, float beta)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t) i * ldc;
        if (beta == 0.0f)
            memset(c, 0, sizeof(float) * (size_t) N);
        else
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

void poa_cpu_gemm_serial(poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* BLAS rejects lda = 0; the product is empty: C = beta C */
        scale_matrix(C, ldc, M, N, beta);
        return;
    }
    blas_single_threaded_once();
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Below this many multiply-adds a GEMM is not worth waking a second thread. */
#define GEMM_PARALLEL_MIN_FLOPS (1 << 18)

/* Threads for one GEMM: all of them, unless already inside a parallel region or too small. */
static int gemm_threads(int M, int N, int K)
{
    if (omp_in_parallel() || (double) M * N * K < GEMM_PARALLEL_MIN_FLOPS) return 1;
    return omp_get_max_threads();
}

/* The GEMMs go to cpu_gemm_avx512.c where the CPU has AVX-512F and the product is at least one
 * 32-column tile wide and 16 deep, unless POA_CPU_GEMM=blas forces BLAS.  The choice must not
 * depend on M: M counts images × tokens, and a row of C must come out the same whatever the
 * batch (data-parallel runs are checked against single-rank ones to fp32 reduction order). */
static int gemm_avx512(int N, int K)
{
#ifdef POA_CPU_GEMM_AVX512
    if (N < 32 || K < 16) return 0;
    return poa_cpu_avx512_chosen("POA_CPU_GEMM", "blas");
#else
    (void) N, (void) K;
    return 0;
#endif
}

const char *poa_cpu_gemm_impl(void)
{
    return gemm_avx512(384, 384) ? "avx512" : "blas";
}

/* Elementwise row loops go parallel above this many elements. */
#define ROWS_PARALLEL_MIN 65536

/* y[r, :cols] = b[:cols] for every row. */
static void broadcast_rows(float *y, int ldy, const float *b, int rows, int cols)
{
#pragma omp parallel if ((double) rows * cols > ROWS_PARALLEL_MIN)
    {
        size_t lo, hi;
        poa_cpu_share((size_t) rows, 1, &lo, &hi);
        for (size_t r = lo; r < hi; r++) memcpy(y + r * ldy, b, sizeof(float) * (size_t) cols);
    }
}

/* C = alpha op(A) op(B) + beta C + bias (bias, if any, only with beta 0).  The AVX-512 GEMM adds
 * the bias where it stores C; the BLAS path broadcasts it into C and runs with beta 1, which
 * rounds the same way. */
static void gemm_dispatch(poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta,
                          const float *bias, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
#ifdef POA_CPU_GEMM_AVX512
    if (K > 0 && gemm_avx512(N, K)) {
        poa_cpu_gemm_avx512(ta != POA_NO_TRANS, tb != POA_NO_TRANS, M, N, K, alpha, A, lda, B, ldb,
                            beta, bias, C, ldc, gemm_threads(M, N, K));
        return;
    }
#endif
    if (bias) {
        broadcast_rows(C, ldc, bias, M, N);
        beta = 1.0f;
    }
    poa_cpu_gemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void poa_cpu_gemm(poa_trans ta, poa_trans tb, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    gemm_dispatch(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, NULL, C, ldc);
}

void poa_cpu_gemm_blas(poa_trans ta, poa_trans tb, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    int nt = gemm_threads(M, N, K);
    if (nt <= 1 || K <= 0) {
        poa_cpu_gemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Split the larger of M and N into one panel per thread (panels of whole 8-row/col steps
     * keep BLAS's micro-kernels full). */
    const int split_rows = M >= N;
    const int extent = split_rows ? M : N;
    if (extent < 8 * nt) nt = extent / 8 > 0 ? extent / 8 : 1;
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        int step = (extent + n - 1) / n;
        step = (step + 7) / 8 * 8;
        const int lo = t * step, hi = lo + step < extent ? lo + step : extent;
        if (lo < hi) {
            if (split_rows) {
                const float *a = ta ? A + lo : A + (size_t) lo * lda;
                poa_cpu_gemm_serial(ta, tb, hi - lo, N, K, alpha, a, lda, B, ldb, beta,
                                    C + (size_t) lo * ldc, ldc);
            } else {
                const float *b = tb ? B + (size_t) lo * ldb : B + lo;
                poa_cpu_gemm_serial(ta, tb, M, hi - lo, K, alpha, A, lda, b, ldb, beta, C + lo,
                                    ldc);
            }
        }
    }
}

static void cpu_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc)
{
    (void) be;
    poa_cpu_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void cpu_gemm_bias(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                          float alpha, const float *A, int lda, const float *B, int ldb,
                          const float *bias, float *C, int ldc)
{
    (void) be;
    gemm_dispatch(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0f, bias, C, ldc);
}

static void cpu_gemm_strided_batched(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N,
                                     int K, float alpha, const float *A, int lda, long long strideA,
                                     const float *B, int ldb, long long strideB, float beta,
                                     float *C, int ldc, long long strideC, int batch)
{
    (void) be;
    if (batch <= 0 || M <= 0 || N <= 0) return;
    const int nt = omp_get_max_threads();
    /* Many GEMMs: one per thread at a time.  Few large ones: split each over the threads. */
    if (batch >= nt || (double) M * N * K < GEMM_PARALLEL_MIN_FLOPS) {
#pragma omp parallel for schedule(dynamic, 1) if (batch > 1)
        for (int i = 0; i < batch; i++)
            poa_cpu_gemm_serial(ta, tb, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb,
                                beta, C + i * strideC, ldc);
    } else {
        for (int i = 0; i < batch; i++)
            poa_cpu_gemm(ta, tb, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta,
                         C + i * strideC, ldc);
    }
}

/* ------------------------------------------------------------------------ bias */

int poa_cpu_column_block(int cols)
{
    int nt = omp_get_max_threads();
    int blk = (cols + nt - 1) / nt;
    blk = (blk + 15) / 16 * 16;
    return blk > POA_CPU_COL_BLOCK ? POA_CPU_COL_BLOCK : blk < 16 ? 16 : blk;
}

/* db[c] += Σ_r dy[r, c] over the columns [c0, c0 + nc) (nc ≤ POA_CPU_COL_SPAN). */
POA_CPU_CLONES static void bias_grad_span(float *db, const float *dy, int lddy, int rows, int c0,
                                          int nc)
{
    double acc[POA_CPU_COL_SPAN];
    float part[POA_CPU_COL_SPAN];
    for (int c = 0; c < nc; c++) acc[c] = 0;
    for (int r0 = 0; r0 < rows; r0 += POA_CPU_ROW_CHUNK) {
        const int r1 = r0 + POA_CPU_ROW_CHUNK < rows ? r0 + POA_CPU_ROW_CHUNK : rows;
        for (int c = 0; c < nc; c++) part[c] = 0;
        for (int r = r0; r < r1; r++) {
            const float *g = dy + (size_t) r * lddy + c0;
#pragma omp simd
            for (int c = 0; c < nc; c++) part[c] += g[c];
        }
#pragma omp simd
        for (int c = 0; c < nc; c++) acc[c] += part[c];
    }
    for (int c = 0; c < nc; c++) db[c0 + c] += (float) acc[c];
}

static void cpu_bias_grad(poa_backend *be, float *db, const float *dy, int lddy, int rows, int cols)
{
    (void) be;
#pragma omp parallel if ((double) rows * cols > ROWS_PARALLEL_MIN)
    {
        size_t lo, hi;
        poa_cpu_share((size_t) cols, 16, &lo, &hi);
        for (size_t c0 = lo; c0 < hi; c0 += POA_CPU_COL_SPAN) {
            const size_t nc = hi - c0 < POA_CPU_COL_SPAN ? hi - c0 : POA_CPU_COL_SPAN;
            bias_grad_span(db, dy, lddy, rows, (int) c0, (int) nc);
        }
    }
}

/* ------------------------------------------------------------------------ gather / scatter */
static void cpu_gather_rows(poa_backend *be, float *dst, int ldd, const float *src, int lds,
                            const int32_t *idx, int n, int cols)
{
    (void) be;
#pragma omp parallel for schedule(static) if ((double) n * cols > ROWS_PARALLEL_MIN)
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t) i * ldd, src + (size_t) idx[i] * lds, sizeof(float) * (size_t) cols);
}

/* Repeated indices accumulate: threads own column blocks, so no two threads touch one value and
 * the summation order (increasing i) is deterministic. */
static void cpu_scatter_add_rows(poa_backend *be, float *dst, int ldd, const float *src, int lds,
                                 const int32_t *idx, int n, int cols)
{
    (void) be;
    const int blk = poa_cpu_column_block(cols), nblk = (cols + blk - 1) / blk;
#pragma omp parallel for schedule(static) if ((double) n * cols > ROWS_PARALLEL_MIN)
    for (int ib = 0; ib < nblk; ib++) {
        const int c0 = ib * blk, nc = c0 + blk < cols ? blk : cols - c0;
        for (int i = 0; i < n; i++) {
            float *d = dst + (size_t) idx[i] * ldd + c0;
            const float *s = src + (size_t) i * lds + c0;
#pragma omp simd
            for (int c = 0; c < nc; c++) d[c] += s[c];
        }
    }
}

/* ------------------------------------------------------------------------ vectors */
POA_CPU_CLONES static void axpy_span(float *y, float a, const float *x, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void cpu_axpy(poa_backend *be, float *y, float a, const float *x, size_t n)
{
    (void) be;
#pragma omp parallel if (n > 65536)
    {
        size_t lo, hi;
        poa_cpu_share(n, 16, &lo, &hi);
        if (lo < hi) axpy_span(y + lo, a, x + lo, hi - lo);
    }
}

POA_CPU_CLONES static void scale_span(float *x, float a, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

static void cpu_scale(poa_backend *be, float *x, float a, size_t n)
{
    (void) be;
#pragma omp parallel if (n > 65536)
    {
        size_t lo, hi;
        poa_cpu_share(n, 16, &lo, &hi);
        if (lo < hi) scale_span(x + lo, a, hi - lo);
    }
}

/* ------------------------------------------------------------------ activations
 * The CPU backend's compute dtype is fp32 (backend.h, "Precision"): a poa_act * is a float *,
 * and every activation op is the fp32 kernel itself, so the backbone computes exactly what it
 * computed before activations had a dtype of their own. */
#define F(p)  ((float *) (p))
#define CF(p) ((const float *) (p))

static void cpu_act_from_f32(poa_backend *be, poa_act *dst, const float *src, size_t n)
{
    (void) be;
    if ((const void *) dst != (const void *) src && n) memcpy(dst, src, n * sizeof(float));
}

static void cpu_act_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                         float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                         float beta, poa_act *C, int ldc)
{
    cpu_gemm(be, ta, tb, M, N, K, alpha, CF(A), lda, CF(B), ldb, beta, F(C), ldc);
}

static void cpu_act_gemm_bias(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                              float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                              const float *bias, poa_act *C, int ldc)
{
    cpu_gemm_bias(be, ta, tb, M, N, K, alpha, CF(A), lda, CF(B), ldb, bias, F(C), ldc);
}

/* C += alpha op(A) op(B): the GEMM with beta 1. */
static void cpu_act_gemm_wgrad(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                               float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                               float *C, int ldc)
{
    cpu_gemm(be, ta, tb, M, N, K, alpha, CF(A), lda, CF(B), ldb, 1.0f, C, ldc);
}

static void cpu_act_bias_grad(poa_backend *be, float *db, const poa_act *dy, int lddy, int rows,
                              int cols)
{
    cpu_bias_grad(be, db, CF(dy), lddy, rows, cols);
}

static void cpu_act_gelu_fwd(poa_backend *be, poa_act *y, const poa_act *x, size_t n)
{
    poa_cpu_gelu_fwd(be, F(y), CF(x), n);
}

static void cpu_act_gelu_bwd(poa_backend *be, poa_act *dx, poa_act *y, const poa_act *dy,
                             const poa_act *x, size_t n)
{
    poa_cpu_gelu_bwd(be, F(dx), F(y), CF(dy), CF(x), n);
}

static void cpu_act_layernorm_fwd(poa_backend *be, poa_act *y, int ldy, float *mean, float *rstd,
                                  const poa_act *x, int ldx, const float *w, const float *b,
                                  int rows, int d, float eps)
{
    poa_cpu_layernorm_fwd(be, F(y), ldy, mean, rstd, CF(x), ldx, w, b, rows, d, eps);
}

static void cpu_act_layernorm_bwd(poa_backend *be, poa_act *dx, int lddx, float dx_beta, float *dw,
                                  float *db, const poa_act *dy, int lddy, const poa_act *x, int ldx,
                                  const float *mean, const float *rstd, const float *w, int rows,
                                  int d)
{
    poa_cpu_layernorm_bwd(be, F(dx), lddx, dx_beta, dw, db, CF(dy), lddy, CF(x), ldx, mean, rstd, w,
                          rows, d);
}

/* `saved` holds the probabilities [B, H, T, T] (fp32). */
static void cpu_act_attention_fwd(poa_backend *be, poa_act *out, int ldout, void *saved,
                                  const poa_act *qkv, int ldqkv, int B, int T, int H, int Dh,
                                  float scale, void *scratch)
{
    poa_cpu_attention_fwd(be, F(out), ldout, (float *) saved, CF(qkv), ldqkv, B, T, H, Dh, scale,
                          (float *) scratch);
}

static void cpu_act_attention_bwd(poa_backend *be, poa_act *dqkv, int lddqkv, const poa_act *dout,
                                  int lddout, const poa_act *qkv, int ldqkv, const void *saved,
                                  int B, int T, int H, int Dh, float scale, void *scratch)
{
    poa_cpu_attention_bwd(be, F(dqkv), lddqkv, CF(dout), lddout, CF(qkv), ldqkv,
                          (const float *) saved, B, T, H, Dh, scale, (float *) scratch);
}

static size_t cpu_attention_saved_bytes(const poa_backend *be, int B, int T, int H, int Dh)
{
    (void) be, (void) Dh;
    return (size_t) B * H * T * T * sizeof(float);
}

static size_t cpu_attention_scratch_bytes(const poa_backend *be, int B, int T, int H, int Dh)
{
    (void) be;
    return poa_cpu_attention_scratch(B, T, H, Dh) * sizeof(float);
}

static void cpu_act_residual_ls_fwd(poa_backend *be, poa_act *x, int ldx, const poa_act *base,
                                    int ldbase, const poa_act *y, int ldy, const float *gamma,
                                    const float *s, int B, int T, int d)
{
    poa_cpu_residual_ls_fwd(be, F(x), ldx, CF(base), ldbase, CF(y), ldy, gamma, s, B, T, d);
}

static void cpu_act_residual_ls_bwd(poa_backend *be, poa_act *dy, int lddy, float *dgamma,
                                    const poa_act *dx, int lddx, const poa_act *y, int ldy,
                                    const float *gamma, const float *s, int B, int T, int d)
{
    poa_cpu_residual_ls_bwd(be, F(dy), lddy, dgamma, CF(dx), lddx, CF(y), ldy, gamma, s, B, T, d);
}

static void cpu_act_patch_unfold(poa_backend *be, poa_act *cols, const float *img, int B, int C,
                                 int Hi, int Wi, int P)
{
    poa_cpu_patch_unfold(be, F(cols), img, B, C, Hi, Wi, P);
}

static void cpu_act_tokens_fwd(poa_backend *be, poa_act *x, int ldx, const poa_act *emb, int ldemb,
                               const float *cls, const float *pos, int ldpos,
                               const float *mask_token, const uint8_t *mask, int B, int N, int d)
{
    poa_cpu_tokens_fwd(be, F(x), ldx, CF(emb), ldemb, cls, pos, ldpos, mask_token, mask, B, N, d);
}

static void cpu_act_tokens_bwd(poa_backend *be, poa_act *demb, int lddemb, float *dcls, float *dpos,
                               int ldpos, float *dmask_token, const poa_act *dx, int lddx,
                               const uint8_t *mask, int B, int N, int d)
{
    poa_cpu_tokens_bwd(be, F(demb), lddemb, dcls, dpos, ldpos, dmask_token, CF(dx), lddx, mask, B,
                       N, d);
}

static void cpu_act_gather_rows(poa_backend *be, poa_act *dst, int ldd, const poa_act *src, int lds,
                                const int32_t *idx, int n, int cols)
{
    cpu_gather_rows(be, F(dst), ldd, CF(src), lds, idx, n, cols);
}

static void cpu_act_scatter_add_rows(poa_backend *be, poa_act *dst, int ldd, const poa_act *src,
                                     int lds, const int32_t *idx, int n, int cols)
{
    cpu_scatter_add_rows(be, F(dst), ldd, CF(src), lds, idx, n, cols);
}

static void cpu_act_gather_rows_f32(poa_backend *be, float *dst, int ldd, const poa_act *src,
                                    int lds, const int32_t *idx, int n, int cols)
{
    cpu_gather_rows(be, dst, ldd, CF(src), lds, idx, n, cols);
}

static void cpu_act_scatter_add_rows_f32(poa_backend *be, poa_act *dst, int ldd, const float *src,
                                         int lds, const int32_t *idx, int n, int cols)
{
    cpu_scatter_add_rows(be, F(dst), ldd, src, lds, idx, n, cols);
}

const poa_nn_ops poa_cpu_nn_ops = {
    .gemm = cpu_gemm,
    .gemm_strided_batched = cpu_gemm_strided_batched,
    .gemm_bias = cpu_gemm_bias,
    .bias_grad = cpu_bias_grad,
    .gelu_fwd = poa_cpu_gelu_fwd,
    .gelu_bwd = poa_cpu_gelu_bwd,
    .l2norm_fwd = poa_cpu_l2norm_fwd,
    .l2norm_bwd = poa_cpu_l2norm_bwd,
    .weightnorm_fwd = poa_cpu_weightnorm_fwd,
    .weightnorm_bwd = poa_cpu_weightnorm_bwd,
    .axpy = cpu_axpy,
    .scale = cpu_scale,
    .pos_resample_fwd = poa_cpu_pos_resample_fwd,
    .pos_resample_bwd = poa_cpu_pos_resample_bwd,
    .act_from_f32 = cpu_act_from_f32,
    .act_gemm = cpu_act_gemm,
    .act_gemm_bias = cpu_act_gemm_bias,
    .act_gemm_wgrad = cpu_act_gemm_wgrad,
    .act_bias_grad = cpu_act_bias_grad,
    .act_gelu_fwd = cpu_act_gelu_fwd,
    .act_gelu_bwd = cpu_act_gelu_bwd,
    .layernorm_fwd = cpu_act_layernorm_fwd,
    .layernorm_bwd = cpu_act_layernorm_bwd,
    .attention_fwd = cpu_act_attention_fwd,
    .attention_bwd = cpu_act_attention_bwd,
    .attention_saved_bytes = cpu_attention_saved_bytes,
    .attention_scratch_bytes = cpu_attention_scratch_bytes,
    .residual_ls_fwd = cpu_act_residual_ls_fwd,
    .residual_ls_bwd = cpu_act_residual_ls_bwd,
    .patch_unfold = cpu_act_patch_unfold,
    .tokens_fwd = cpu_act_tokens_fwd,
    .tokens_bwd = cpu_act_tokens_bwd,
    .act_gather_rows = cpu_act_gather_rows,
    .act_scatter_add_rows = cpu_act_scatter_add_rows,
    .act_gather_rows_f32 = cpu_act_gather_rows_f32,
    .act_scatter_add_rows_f32 = cpu_act_scatter_add_rows_f32,
};
