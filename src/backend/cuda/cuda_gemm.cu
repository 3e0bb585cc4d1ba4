// cuda_gemm.cu — every GEMM entry of the CUDA backend (gemm, gemm_strided_batched, gemm_bias,
// act_gemm, act_gemm_bias, act_gemm_wgrad) through cuBLASLt, with a table of plans by shape.
//
// Row-major → column-major.  poa's matrices are row-major views (pointer, ld); cuBLASLt is
// column-major.  A row-major [R, C] matrix with leading dimension ld is the column-major [C, R]
// matrix with the same ld, i.e. its transpose; so C = op(A)·op(B) (row-major) is computed as
// Cᵀ = op(B)ᵀ·op(A)ᵀ: cuBLASLt's A is poa's B (transposed as tb says), cuBLASLt's B is poa's A
// (as ta says), cuBLASLt's D is [N, M] with poa's ldc, and the bias epilogue's vector runs along
// cuBLASLt's rows = poa's columns, which is what a linear layer's bias[:N] needs.
//
// Types.  fp32 GEMMs (heads, tests): fp32 in and out, CUBLAS_COMPUTE_32F, or
// CUBLAS_COMPUTE_32F_FAST_TF32 when the backend was created with allow_tf32.  Activation GEMMs:
// A and B in the compute dtype (bf16 or fp32), fp32 accumulation (CUBLAS_COMPUTE_32F, never TF32:
// an fp32 compute dtype is for parity runs), D in the compute dtype (act_gemm, act_gemm_bias) or
// fp32 (act_gemm_wgrad, C += with beta 1).  alpha and beta are fp32 host scalars.
//
// Bias.  The BIAS epilogue adds the fp32 bias where the GEMM stores D, before D's rounding to the
// compute dtype.  With a bf16 D cuBLASLt's default bias type is bf16; poa asks for an fp32 bias
// (CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = CUDA_R_32F).  Where the heuristic finds no algorithm for
// that (or for the bias pointer's alignment), the plan falls back to the GEMM without epilogue
// followed by a kernel adding the bias in fp32 (for bf16 D that rounds twice: once after the
// GEMM, once after the add).  Setting POA_CUDA_GEMM_LOG=1 prints each plan with its path.
//
// beta == 0: C is not read (cuBLASLt and cuBLAS skip C when beta is 0, so NaN in C cannot
// leak); every bias GEMM runs with beta 0.  K == 0: cuBLASLt is not called; C = beta·C (0 when
// beta is 0, whatever C held), bias GEMMs store the bias, act_gemm_wgrad adds nothing.  M, N or
// batch == 0: nothing.
//
// Alignment.  Views into larger buffers (a qkv chunk at column t·d, one image's rows) may be
// aligned to less than the 256 bytes the heuristic assumes by default.  Each operand's alignment
// — the largest power of two up to 256 dividing its address, its leading dimension and batch
// stride in bytes — is given to the heuristic (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES), and
// the bias pointer is set in the descriptor before the query, so the algorithm chosen is valid
// for the actual pointers.  The alignments are part of the plan's key.
//
// Determinism.  The heuristic is deterministic for a given key, device and library, so a shape
// always runs the same algorithm.  Split-K algorithms are restricted to
// CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE (fp32 partials in the workspace, added by a separate
// reduction step: no atomics, no partials rounded to bf16); INPLACE and OUTPUT_TYPE reductions
// are excluded.  When cuBLASLt has no algorithm at all for a key, the plan uses cublasGemmEx /
// cublasGemmStridedBatchedEx (deterministic on a given GPU and library).
//
// Plans.  A plan holds the matmul descriptor, the three layouts (C and D share one), the
// algorithm and its path, in cuBLASLt's pre-allocated "opaque" structs, inside a table allocated
// when the backend is created: 256 sets × 4 ways by a hash of the key (types, compute type,
// epilogue, transposes, M, N, K, leading dimensions, batch and strides, alignments).  The first
// call of a key plans it (the heuristic query, host work only); later calls only set the bias
// pointer and enqueue the matmul.  A full set replaces its ways in turn; replanning a key gives
// the same algorithm, so results never depend on the table's history.  The backend is used from
// one host thread; the table is not locked.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_core.cuh"
#include "backend/cuda/cuda_helpers.h"
#include "backend/cuda/cuda_ops.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GEMM_SETS = 256, GEMM_WAYS = 4 };

// Split-K reductions the heuristic may choose (algorithms without split-K are always allowed):
// COMPUTE_TYPE only — fp32 partials in the workspace, added by a separate reduction kernel.
// CUBLASLT_REDUCTION_SCHEME_NONE (0) here would forbid split-K altogether.
static const uint32_t LT_REDUCTION_SCHEMES = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;

namespace
{

// What selects a plan.  Zero-filled before use so that memcmp and the hash see no stale padding.
struct gemm_key {
    int32_t ab_type, cd_type, compute, bias;
    int32_t ta, tb, M, N, K, lda, ldb, ldc, batch, pad;
    int64_t sA, sB, sC;
    uint32_t align_a, align_b, align_c, align_bias;
};

struct gemm_plan {
    gemm_key key;
    int valid;
    int lt;         // 1: cublasLtMatmul with `algo`; 0: cublasGemmEx fallback
    int fused_bias; // 1: the BIAS epilogue adds the bias; 0: bias_add_kernel after the GEMM
    size_t ws;      // workspace the algorithm needs (≤ POA_CUDA_LT_WORKSPACE_BYTES)
    cublasLtMatmulDescOpaque_t desc;
    cublasLtMatrixLayoutOpaque_t la, lb, lc; // cuBLASLt's A (poa's B), B (poa's A), C = D
    cublasLtMatmulAlgo_t algo;
};

// One GEMM call as poa describes it (row-major), with the types chosen by the entry.
struct gemm_call {
    poa_trans ta, tb;
    int M, N, K;
    float alpha, beta;
    const void *A;
    int lda;
    long long sA;
    const void *B;
    int ldb;
    long long sB;
    void *C;
    int ldc;
    long long sC;
    int batch;
    const float *bias; // NULL: none
    cudaDataType_t ab_type, cd_type;
    cublasComputeType_t compute;
};

} // namespace

struct cuda_gemm_cache {
    gemm_plan plans[GEMM_SETS][GEMM_WAYS];
    unsigned next_victim[GEMM_SETS];
    int log;           // POA_CUDA_GEMM_LOG: print each plan as it is made
    long long planned; // plans made so far (for the log)
};

extern "C" cuda_gemm_cache *poa_cuda_gemm_cache_create(void)
{
    cuda_gemm_cache *c = (cuda_gemm_cache *) poa_xcalloc(1, sizeof *c);
    const char *env = getenv("POA_CUDA_GEMM_LOG");
    c->log = env && *env && strcmp(env, "0") != 0;
    return c;
}

extern "C" void poa_cuda_gemm_cache_destroy(cuda_gemm_cache *cache)
{
    free(cache); // the opaque cuBLASLt structs hold no resources
}

// ---------------------------------------------------------------- small kernels
// C[b][r, c] = beta · C[b][r, c], or 0 when beta is 0 (C is then not read): the K == 0 product.
template <typename T>
__global__ void scale_or_zero_kernel(T *C, int ldc, long long sC, int M, int N, long long rows,
                                     float beta)
{
    POA_RC_LOOP(rr, c, rows, N)
    {
        const long long b = rr / M, r = rr % M;
        T *p = C + b * sC + r * (long long) ldc + c;
        *p = beta == 0.0f ? from_f32<T>(0.0f) : from_f32<T>(beta * to_f32(*p));
    }
}

// C[r, c] = bias[c] (0 without bias): a bias GEMM with K == 0.
template <typename T>
__global__ void set_bias_kernel(T *C, int ldc, const float *bias, int M, int N)
{
    POA_RC_LOOP(r, c, M, N)
    {
        C[r * (long long) ldc + c] = from_f32<T>(bias ? bias[c] : 0.0f);
    }
}

// C[r, c] += bias[c] in fp32: the bias of a plan whose epilogue could not take it.
template <typename T>
__global__ void bias_add_kernel(T *C, int ldc, const float *bias, int M, int N)
{
    POA_RC_LOOP(r, c, M, N)
    {
        T *p = C + r * (long long) ldc + c;
        *p = from_f32<T>(to_f32(*p) + bias[c]);
    }
}

template <typename T>
static void launch_scale_or_zero(const poa_backend *be, void *C, int ldc, long long sC, int M,
                                 int N, int batch, float beta)
{
    const long long rows = (long long) M * batch;
    const poa_rc_launch l = poa_rc_geometry(rows, N);
    scale_or_zero_kernel<T>
        <<<l.grid, l.block, 0, poa_cuda_stream(be)>>>((T *) C, ldc, sC, M, N, rows, beta);
    POA_CUDA_LAUNCHED("scale_or_zero_kernel");
}

template <typename T>
static void launch_set_bias(const poa_backend *be, void *C, int ldc, const float *bias, int M,
                            int N)
{
    const poa_rc_launch l = poa_rc_geometry(M, N);
    set_bias_kernel<T><<<l.grid, l.block, 0, poa_cuda_stream(be)>>>((T *) C, ldc, bias, M, N);
    POA_CUDA_LAUNCHED("set_bias_kernel");
}

template <typename T>
static void launch_bias_add(const poa_backend *be, void *C, int ldc, const float *bias, int M,
                            int N)
{
    const poa_rc_launch l = poa_rc_geometry(M, N);
    bias_add_kernel<T><<<l.grid, l.block, 0, poa_cuda_stream(be)>>>((T *) C, ldc, bias, M, N);
    POA_CUDA_LAUNCHED("bias_add_kernel");
}

// The three small kernels above for the D type of a call (fp32 or bf16).
static void k0_scale_or_zero(const poa_backend *be, const gemm_call &c)
{
    if (c.cd_type == CUDA_R_16BF)
        launch_scale_or_zero<bf16>(be, c.C, c.ldc, c.sC, c.M, c.N, c.batch, c.beta);
    else
        launch_scale_or_zero<float>(be, c.C, c.ldc, c.sC, c.M, c.N, c.batch, c.beta);
}

static void k0_set_bias(const poa_backend *be, const gemm_call &c)
{
    if (c.cd_type == CUDA_R_16BF)
        launch_set_bias<bf16>(be, c.C, c.ldc, c.bias, c.M, c.N);
    else
        launch_set_bias<float>(be, c.C, c.ldc, c.bias, c.M, c.N);
}

static void add_bias_after(const poa_backend *be, const gemm_call &c)
{
    if (c.cd_type == CUDA_R_16BF)
        launch_bias_add<bf16>(be, c.C, c.ldc, c.bias, c.M, c.N);
    else
        launch_bias_add<float>(be, c.C, c.ldc, c.bias, c.M, c.N);
}

// ---------------------------------------------------------------- keys
static size_t type_size(cudaDataType_t t)
{
    return t == CUDA_R_16BF ? 2 : 4;
}

// Largest power of two ≤ 256 dividing the address, the leading dimension and the batch stride
// (in bytes): the alignment every matrix of the operand is guaranteed to have.
static uint32_t operand_alignment(const void *p, long long ld, long long stride, size_t elem)
{
    uint64_t bits = (uint64_t) (uintptr_t) p | (uint64_t) ld * elem;
    if (stride != 0) bits |= (uint64_t) stride * elem;
    uint32_t a = 256;
    while (a > 1 && (bits & (a - 1)) != 0) a >>= 1;
    return a;
}

static uint32_t pointer_alignment(const void *p)
{
    return operand_alignment(p, 0, 0, 1);
}

static gemm_key key_of(const gemm_call &c)
{
    gemm_key k;
    memset(&k, 0, sizeof k);
    const size_t ab = type_size(c.ab_type), cd = type_size(c.cd_type);
    k.ab_type = (int32_t) c.ab_type;
    k.cd_type = (int32_t) c.cd_type;
    k.compute = (int32_t) c.compute;
    k.bias = c.bias != NULL;
    k.ta = (int32_t) c.ta, k.tb = (int32_t) c.tb;
    k.M = c.M, k.N = c.N, k.K = c.K;
    k.lda = c.lda, k.ldb = c.ldb, k.ldc = c.ldc;
    k.batch = c.batch;
    if (c.batch > 1) k.sA = c.sA, k.sB = c.sB, k.sC = c.sC;
    k.align_a = operand_alignment(c.A, c.lda, c.batch > 1 ? c.sA : 0, ab);
    k.align_b = operand_alignment(c.B, c.ldb, c.batch > 1 ? c.sB : 0, ab);
    k.align_c = operand_alignment(c.C, c.ldc, c.batch > 1 ? c.sC : 0, cd);
    k.align_bias = c.bias ? pointer_alignment(c.bias) : 0;
    return k;
}

static uint64_t key_hash(const gemm_key &k)
{
    const unsigned char *p = (const unsigned char *) &k;
    uint64_t h = 1469598103934665603ull; // FNV-1a
    for (size_t i = 0; i < sizeof k; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

// ---------------------------------------------------------------- planning
template <typename V>
static void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const V &v)
{
    POA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, a, &v, sizeof v));
}

template <typename V>
static void set_layout(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a, const V &v)
{
    POA_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, a, &v, sizeof v));
}

template <typename V>
static void set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a,
                     const V &v)
{
    POA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, a, &v, sizeof v));
}

static void init_layout(cublasLtMatrixLayoutOpaque_t *l, cudaDataType_t t, int rows, int cols,
                        int ld, int batch, long long stride)
{
    POA_CUBLAS_CHECK(cublasLtMatrixLayoutInit(l, t, (uint64_t) rows, (uint64_t) cols, ld));
    if (batch > 1) {
        set_layout(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, (int32_t) batch);
        set_layout(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, (int64_t) stride);
    }
}

// The matmul descriptor of a call, with or without the BIAS epilogue (fp32 bias vector).
static void init_desc(gemm_plan *p, const gemm_call &c, int with_bias)
{
    POA_CUBLAS_CHECK(cublasLtMatmulDescInit(&p->desc, c.compute, CUDA_R_32F));
    set_desc(&p->desc, CUBLASLT_MATMUL_DESC_TRANSA, (int32_t) (c.tb ? CUBLAS_OP_T : CUBLAS_OP_N));
    set_desc(&p->desc, CUBLASLT_MATMUL_DESC_TRANSB, (int32_t) (c.ta ? CUBLAS_OP_T : CUBLAS_OP_N));
    if (with_bias) {
        set_desc(&p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, (uint32_t) CUBLASLT_EPILOGUE_BIAS);
        set_desc(&p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, (int32_t) CUDA_R_32F);
        set_desc(&p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, (const void *) c.bias);
    }
}

// The best algorithm the heuristic offers for the plan's descriptor and layouts under poa's
// preferences; 0 when it offers none.
static int query_algorithm(cuda_impl *im, gemm_plan *p)
{
    const gemm_key &k = p->key;
    cublasLtMatmulPreferenceOpaque_t pref;
    POA_CUBLAS_CHECK(cublasLtMatmulPreferenceInit(&pref));
    set_pref(&pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
             (uint64_t) POA_CUDA_LT_WORKSPACE_BYTES);
    set_pref(&pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, LT_REDUCTION_SCHEMES);
    set_pref(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, k.align_b); // cuBLASLt's A = B
    set_pref(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, k.align_a); // cuBLASLt's B = A
    set_pref(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, k.align_c);
    set_pref(&pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, k.align_c);
    cublasLtMatmulHeuristicResult_t res;
    memset(&res, 0, sizeof res);
    int found = 0;
    const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(im->lt, &p->desc, &p->la, &p->lb,
                                                            &p->lc, &p->lc, &pref, 1, &res, &found);
    if (s == CUBLAS_STATUS_NOT_SUPPORTED) return 0;
    POA_CUBLAS_CHECK(s);
    if (found < 1 || res.state != CUBLAS_STATUS_SUCCESS) return 0;
    if (res.workspaceSize > POA_CUDA_LT_WORKSPACE_BYTES) return 0;
    p->algo = res.algo;
    p->ws = res.workspaceSize;
    return 1;
}

static const char *type_name(int32_t t)
{
    return t == CUDA_R_16BF ? "bf16" : t == CUDA_R_32F ? "fp32" : "?";
}

static void log_plan(const cuda_gemm_cache *cache, const gemm_plan *p)
{
    const gemm_key &k = p->key;
    fprintf(stderr,
            "poa cuda gemm plan %lld: %c%c M %d N %d K %d ld %d/%d/%d batch %d, %s x %s -> %s%s, "
            "align %u/%u/%u bias %u: %s%s, workspace %zu\n",
            cache->planned, k.ta ? 'T' : 'N', k.tb ? 'T' : 'N', k.M, k.N, k.K, k.lda, k.ldb, k.ldc,
            k.batch, type_name(k.ab_type), type_name(k.ab_type), type_name(k.cd_type),
            k.compute == CUBLAS_COMPUTE_32F_FAST_TF32 ? " (tf32)" : "", k.align_a, k.align_b,
            k.align_c, k.align_bias, p->lt ? "cublasLt" : "cublasGemmEx fallback",
            !k.bias         ? ""
            : p->fused_bias ? ", bias epilogue"
                            : ", bias kernel",
            p->ws);
}

static void build_plan(cuda_impl *im, gemm_plan *p, const gemm_key &k, const gemm_call &c)
{
    memset(p, 0, sizeof *p);
    p->key = k;
    init_layout(&p->la, c.ab_type, c.tb ? c.K : c.N, c.tb ? c.N : c.K, c.ldb, c.batch, c.sB);
    init_layout(&p->lb, c.ab_type, c.ta ? c.M : c.K, c.ta ? c.K : c.M, c.lda, c.batch, c.sA);
    init_layout(&p->lc, c.cd_type, c.N, c.M, c.ldc, c.batch, c.sC);
    if (c.bias) {
        init_desc(p, c, 1);
        p->fused_bias = p->lt = query_algorithm(im, p);
    }
    if (!p->lt) {
        init_desc(p, c, 0);
        p->lt = query_algorithm(im, p);
    }
    p->valid = 1;
    im->gemm_cache->planned++;
    if (im->gemm_cache->log) log_plan(im->gemm_cache, p);
}

// The plan of a call: found by key, else made in its set's next way.
static gemm_plan *plan_for(cuda_impl *im, const gemm_call &c)
{
    const gemm_key k = key_of(c);
    const unsigned set = (unsigned) (key_hash(k) % GEMM_SETS);
    cuda_gemm_cache *cache = im->gemm_cache;
    gemm_plan *ways = cache->plans[set];
    for (int w = 0; w < GEMM_WAYS; w++)
        if (ways[w].valid && memcmp(&ways[w].key, &k, sizeof k) == 0) return &ways[w];
    int w = 0;
    while (w < GEMM_WAYS && ways[w].valid) w++;
    if (w == GEMM_WAYS) w = (int) (cache->next_victim[set]++ % GEMM_WAYS);
    build_plan(im, &ways[w], k, c);
    return &ways[w];
}

// ---------------------------------------------------------------- execution
// Leading dimensions of A and B (not checked when K == 0: the product is empty and callers may
// pass 0, as BLAS cannot take).
static void check_operands(const gemm_call &c, const char *entry)
{
    POA_CHECK(c.lda >= (c.ta ? c.M : c.K) && c.lda >= 1, "%s: lda %d < %d (ta %d, M %d, K %d)",
              entry, c.lda, c.ta ? c.M : c.K, (int) c.ta, c.M, c.K);
    POA_CHECK(c.ldb >= (c.tb ? c.K : c.N) && c.ldb >= 1, "%s: ldb %d < %d (tb %d, K %d, N %d)",
              entry, c.ldb, c.tb ? c.K : c.N, (int) c.tb, c.K, c.N);
}

static void run_fallback(cuda_impl *im, const gemm_call &c)
{
    const cublasOperation_t opa = c.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t opb = c.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    const float beta = c.beta;
    if (c.batch > 1)
        POA_CUBLAS_CHECK(cublasGemmStridedBatchedEx(im->cublas, opa, opb, c.N, c.M, c.K, &c.alpha,
                                                    c.B, c.ab_type, c.ldb, c.sB, c.A, c.ab_type,
                                                    c.lda, c.sA, &beta, c.C, c.cd_type, c.ldc, c.sC,
                                                    c.batch, c.compute, CUBLAS_GEMM_DEFAULT));
    else
        POA_CUBLAS_CHECK(cublasGemmEx(im->cublas, opa, opb, c.N, c.M, c.K, &c.alpha, c.B, c.ab_type,
                                      c.ldb, c.A, c.ab_type, c.lda, &beta, c.C, c.cd_type, c.ldc,
                                      c.compute, CUBLAS_GEMM_DEFAULT));
}

// D = alpha · op(A) op(B) + beta · C (+ bias) for a call with M, N, K, batch ≥ 1.
static void run_gemm(const poa_backend *be, const gemm_call &c)
{
    cuda_impl *im = poa_cuda_impl(be);
    gemm_plan *p = plan_for(im, c);
    if (p->lt) {
        if (p->fused_bias)
            set_desc(&p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, (const void *) c.bias);
        POA_CUBLAS_CHECK(cublasLtMatmul(im->lt, &p->desc, &c.alpha, c.B, &p->la, c.A, &p->lb,
                                        &c.beta, c.C, &p->lc, c.C, &p->lc, &p->algo,
                                        im->lt_workspace, POA_CUDA_LT_WORKSPACE_BYTES, im->stream));
    } else {
        run_fallback(im, c);
    }
    if (c.bias && !p->fused_bias) add_bias_after(be, c);
}

// Every entry ends here: the empty and K == 0 cases, then the GEMM.
static void gemm_dispatch(const poa_backend *be, const gemm_call &c, const char *entry)
{
    POA_CHECK(c.K >= 0, "%s: K %d", entry, c.K);
    if (c.M <= 0 || c.N <= 0 || c.batch <= 0) return;
    POA_CHECK(c.ldc >= c.N, "%s: ldc %d < N %d", entry, c.ldc, c.N);
    if (c.K == 0) {
        if (c.bias)
            k0_set_bias(be, c); // a linear layer of an empty input: the bias
        else if (c.beta != 1.0f)
            k0_scale_or_zero(be, c); // C = beta·C, 0 when beta is 0; beta 1 leaves C as it is
        return;
    }
    check_operands(c, entry);
    run_gemm(be, c);
}

// ---------------------------------------------------------------- entries
static cublasComputeType_t fp32_compute(const poa_backend *be)
{
    return poa_cuda_impl(be)->allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

static cudaDataType_t act_type(const poa_backend *be)
{
    return be->act_dtype == POA_DT_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

static gemm_call make_call(poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                           const void *A, int lda, const void *B, int ldb, float beta, void *C,
                           int ldc)
{
    gemm_call c;
    memset(&c, 0, sizeof c);
    c.ta = ta, c.tb = tb, c.M = M, c.N = N, c.K = K;
    c.alpha = alpha, c.beta = beta;
    c.A = A, c.lda = lda, c.B = B, c.ldb = ldb, c.C = C, c.ldc = ldc;
    c.batch = 1;
    return c;
}

extern "C" void poa_cuda_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                              float alpha, const float *A, int lda, const float *B, int ldb,
                              float beta, float *C, int ldc)
{
    gemm_call c = make_call(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    c.ab_type = c.cd_type = CUDA_R_32F;
    c.compute = fp32_compute(be);
    gemm_dispatch(be, c, "gemm");
}

extern "C" void poa_cuda_gemm_strided_batched(poa_backend *be, poa_trans ta, poa_trans tb, int M,
                                              int N, int K, float alpha, const float *A, int lda,
                                              long long strideA, const float *B, int ldb,
                                              long long strideB, float beta, float *C, int ldc,
                                              long long strideC, int batch)
{
    gemm_call c = make_call(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    c.sA = strideA, c.sB = strideB, c.sC = strideC, c.batch = batch;
    c.ab_type = c.cd_type = CUDA_R_32F;
    c.compute = fp32_compute(be);
    gemm_dispatch(be, c, "gemm_strided_batched");
}

extern "C" void poa_cuda_gemm_bias(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                                   float alpha, const float *A, int lda, const float *B, int ldb,
                                   const float *bias, float *C, int ldc)
{
    gemm_call c = make_call(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc);
    c.bias = bias;
    c.ab_type = c.cd_type = CUDA_R_32F;
    c.compute = fp32_compute(be);
    gemm_dispatch(be, c, "gemm_bias");
}

extern "C" void poa_cuda_act_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                                  float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                                  float beta, poa_act *C, int ldc)
{
    gemm_call c = make_call(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    c.ab_type = c.cd_type = act_type(be);
    c.compute = CUBLAS_COMPUTE_32F;
    gemm_dispatch(be, c, "act_gemm");
}

extern "C" void poa_cuda_act_gemm_bias(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N,
                                       int K, float alpha, const poa_act *A, int lda,
                                       const poa_act *B, int ldb, const float *bias, poa_act *C,
                                       int ldc)
{
    gemm_call c = make_call(ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc);
    c.bias = bias;
    c.ab_type = c.cd_type = act_type(be);
    c.compute = CUBLAS_COMPUTE_32F;
    gemm_dispatch(be, c, "act_gemm_bias");
}

extern "C" void poa_cuda_act_gemm_wgrad(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N,
                                        int K, float alpha, const poa_act *A, int lda,
                                        const poa_act *B, int ldb, float *C, int ldc)
{
    gemm_call c = make_call(ta, tb, M, N, K, alpha, A, lda, B, ldb, 1.0f, C, ldc);
    c.ab_type = act_type(be);
    c.cd_type = CUDA_R_32F;
    c.compute = CUBLAS_COMPUTE_32F;
    gemm_dispatch(be, c, "act_gemm_wgrad");
}
