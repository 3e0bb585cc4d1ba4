// emu_blas.cpp — the CPU emulator's cuBLAS and cuBLASLt (tests/gpu/emu/README.md): the GEMMs
// poa calls, column-major as the libraries define them, summed in double and rounded once to the
// output type (fp32 or bf16, round to nearest even).  beta == 0 never reads C, as cuBLAS
// promises.  The heuristic offers one algorithm unless POA_EMU_LT says otherwise (none: no
// algorithm, so poa takes its cublasGemmEx fallback; nobias: no BIAS epilogue, so poa adds the
// bias with its own kernel).
#include "cublasLt.h"
#include "cuda_bf16.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace
{
float load(const void *p, cudaDataType t, size_t i)
{
    return t == CUDA_R_16BF ? __bfloat162float(((const __nv_bfloat16 *) p)[i])
                            : ((const float *) p)[i];
}
void store(void *p, cudaDataType t, size_t i, double v)
{
    if (t == CUDA_R_16BF)
        ((__nv_bfloat16 *) p)[i] = __float2bfloat16_rn((float) v);
    else
        ((float *) p)[i] = (float) v;
}
bool supported(int t)
{
    return t == CUDA_R_32F || t == CUDA_R_16BF;
}

struct operand {
    const void *p;
    cudaDataType t;
    long long ld, stride;
    bool trans;
    // element (i, j) of op(X) in batch b
    float at(long long i, long long j, int b) const
    {
        const long long r = trans ? j : i, c = trans ? i : j;
        return load(p, t, (size_t) (b * stride + r + c * ld));
    }
};

// D = alpha · op(A) op(B) + beta · C (+ bias[i] per row i), m × n, batches of strides.  Each
// element is summed in double over l = 0, 1, …, k-1 in order (products of floats are exact in
// double).  For speed the operands are first copied into floats laid out for the loop: op(B)
// column by column, op(A) ROWS rows at a time, so that ROWS independent sums advance together.
void gemm(int m, int n, int k, int batch, float alpha, const operand &A, const operand &B,
          float beta, const void *C, cudaDataType ct, long long ldc, long long sc, void *D,
          cudaDataType dt, long long ldd, long long sd, const float *bias)
{
    const int ROWS = 16;
    std::vector<float> bt((size_t) n * k), ar((size_t) k * ROWS);
    for (int b = 0; b < batch; b++) {
        for (int j = 0; j < n; j++)
            for (int l = 0; l < k; l++) bt[(size_t) j * k + l] = B.at(l, j, b);
        for (int i0 = 0; i0 < m; i0 += ROWS) {
            const int rows = m - i0 < ROWS ? m - i0 : ROWS;
            for (int l = 0; l < k; l++)
                for (int q = 0; q < ROWS; q++)
                    ar[(size_t) l * ROWS + q] = q < rows ? A.at(i0 + q, l, b) : 0.0f;
            for (int j = 0; j < n; j++) {
                double s[ROWS] = {0};
                const float *bj = bt.data() + (size_t) j * k;
                for (int l = 0; l < k; l++) {
                    const double x = bj[l];
                    const float *a = ar.data() + (size_t) l * ROWS;
                    for (int q = 0; q < ROWS; q++) s[q] += (double) a[q] * x;
                }
                for (int q = 0; q < rows; q++) {
                    const int i = i0 + q;
                    double v = alpha * s[q];
                    if (beta != 0) v += (double) beta * load(C, ct, (size_t) (b * sc + i + j * ldc));
                    if (bias) v += bias[i];
                    store(D, dt, (size_t) (b * sd + i + j * ldd), v);
                }
            }
        }
    }
}
} // namespace

struct cublasContext {
    int unused;
};
struct cublasLtContext {
    int unused;
};

extern "C" {
cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    return *h = new cublasContext{0}, CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    return delete h, CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t)
{
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t)
{
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS:
        return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE:
        return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED:
        return "CUBLAS_STATUS_NOT_SUPPORTED";
    default:
        return "CUBLAS_STATUS_NOT_INITIALIZED";
    }
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t, cublasOperation_t ta,
                                          cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType at,
                                          int lda, long long sa, const void *B, cudaDataType bt,
                                          int ldb, long long sb, const void *beta, void *C,
                                          cudaDataType ct, int ldc, long long sc, int batch,
                                          cublasComputeType_t, cublasGemmAlgo_t)
{
    if (!supported(at) || bt != at || !supported(ct)) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m < 0 || n < 0 || k < 0 || batch < 0 || ldc < (m > 1 ? m : 1) ||
        lda < ((ta == CUBLAS_OP_N ? m : k) > 1 ? (ta == CUBLAS_OP_N ? m : k) : 1) ||
        ldb < ((tb == CUBLAS_OP_N ? k : n) > 1 ? (tb == CUBLAS_OP_N ? k : n) : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    operand a{A, at, lda, sa, ta == CUBLAS_OP_T}, b{B, bt, ldb, sb, tb == CUBLAS_OP_T};
    gemm(m, n, k, batch, *(const float *) alpha, a, b, *(const float *) beta, C, ct, ldc, sc, C, ct,
         ldc, sc, NULL);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType at,
                            int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                            void *C, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo)
{
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta,
                                      C, ct, ldc, 0, 1, compute, algo);
}

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
    return *h = new cublasLtContext{0}, CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h)
{
    return delete h, CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutInit(cublasLtMatrixLayout_t l, cudaDataType t, uint64_t rows,
                                        uint64_t cols, int64_t ld)
{
    if (!supported(t) || ld < (int64_t) (rows > 1 ? rows : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    *l = cublasLtMatrixLayoutOpaque_t{t, rows, cols, ld, 1, 0};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l,
                                                cublasLtMatrixLayoutAttribute_t a, const void *v,
                                                size_t n)
{
    if (a == CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT && n == 4)
        return memcpy(&l->batch, v, 4), CUBLAS_STATUS_SUCCESS;
    if (a == CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET && n == 8)
        return memcpy(&l->stride, v, 8), CUBLAS_STATUS_SUCCESS;
    return CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasLtMatmulDescInit(cublasLtMatmulDesc_t d, cublasComputeType_t compute,
                                      cudaDataType scale_type)
{
    if (scale_type != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    *d = cublasLtMatmulDescOpaque_t{
        compute, scale_type, CUBLAS_OP_N, CUBLAS_OP_N, -1, CUBLASLT_EPILOGUE_DEFAULT, NULL};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d,
                                              cublasLtMatmulDescAttributes_t a, const void *v,
                                              size_t n)
{
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
        return n == 4                ? memcpy(&d->transa, v, 4),
               CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_DESC_TRANSB:
        return n == 4                ? memcpy(&d->transb, v, 4),
               CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        return n == 4                ? memcpy(&d->epilogue, v, 4),
               CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        return n == 4                ? memcpy(&d->bias_type, v, 4),
               CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        return n == sizeof(void *)   ? memcpy(&d->bias, v, n),
               CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasLtMatmulPreferenceInit(cublasLtMatmulPreference_t p)
{
    memset(p, 0, sizeof *p);
    p->reduction_mask = CUBLASLT_REDUCTION_SCHEME_MASK;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a,
                                                    const void *v, size_t n)
{
    switch (a) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
        return n == 8                ? memcpy(&p->max_workspace, v, 8),
               CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK:
        return n == 4                ? memcpy(&p->reduction_mask, v, 4),
               CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
        return n == 4 ? memcpy(&p->align[a - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], v, 4),
               CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    default:
        return CUBLAS_STATUS_INVALID_VALUE;
    }
}
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t d,
                                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                              cublasLtMatmulPreference_t, int want,
                                              cublasLtMatmulHeuristicResult_t *res, int *found)
{
    const char *mode = getenv("POA_EMU_LT");
    *found = 0;
    if (want < 1) return CUBLAS_STATUS_INVALID_VALUE;
    if (mode && strcmp(mode, "none") == 0) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->epilogue == CUBLASLT_EPILOGUE_BIAS && mode && strcmp(mode, "nobias") == 0)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    memset(res, 0, sizeof *res);
    res->algo.data[0] = 1;
    res->state = CUBLAS_STATUS_SUCCESS;
    *found = 1;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t la, const void *B,
                              cublasLtMatrixLayout_t lb, const void *beta, const void *C,
                              cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld,
                              const cublasLtMatmulAlgo_t *algo, void *, size_t, cudaStream_t)
{
    if (!algo || algo->data[0] != 1) return CUBLAS_STATUS_INVALID_VALUE;
    const bool ta = d->transa == CUBLAS_OP_T, tb = d->transb == CUBLAS_OP_T;
    const int m = (int) ld->rows, n = (int) ld->cols, k = (int) (ta ? la->rows : la->cols);
    if ((int) (ta ? la->cols : la->rows) != m || (int) (tb ? lb->rows : lb->cols) != n ||
        (int) (tb ? lb->cols : lb->rows) != k || lc->rows != ld->rows || lc->cols != ld->cols ||
        la->batch != ld->batch || lb->batch != ld->batch || lc->batch != ld->batch) {
        fprintf(stderr, "cuda emulator: cublasLtMatmul: layouts do not match (m %d n %d k %d)\n", m,
                n, k);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    const float *bias = NULL;
    if (d->epilogue == CUBLASLT_EPILOGUE_BIAS) {
        if (d->bias_type != CUDA_R_32F || !d->bias) return CUBLAS_STATUS_INVALID_VALUE;
        bias = (const float *) d->bias;
    }
    operand a{A, (cudaDataType) la->type, la->ld, la->stride, ta};
    operand b{B, (cudaDataType) lb->type, lb->ld, lb->stride, tb};
    gemm(m, n, k, ld->batch, *(const float *) alpha, a, b, *(const float *) beta, C,
         (cudaDataType) lc->type, lc->ld, lc->stride, D, (cudaDataType) ld->type, ld->ld,
         ld->stride, bias);
    return CUBLAS_STATUS_SUCCESS;
}
} // extern "C"
