/* cpu_nn.h — the CPU backend's layer ops, shared between its cpu_nn*.c files, and its thread
 * control.
 *
 * Threads: every op parallelises with OpenMP, and BLAS runs single-threaded *inside* the OpenMP
 * regions (the AVX-512 GEMM shares its row panels out dynamically; a BLAS GEMM is split into
 * row or column panels, one per thread).  One thread pool for everything means no
 * oversubscription and no OpenBLAS worker spinning against OpenMP workers on a small node.  The
 * thread count therefore follows OMP_NUM_THREADS (or poa_cpu_set_threads); the first GEMM sets
 * OpenBLAS's own pool to one thread.
 *
 * Reproducibility: the ops give bit-identical results whatever the thread count, and a GEMM's
 * rows do not depend on how many rows share the call — for the BLAS GEMM path only as far as
 * OpenBLAS's per-shape kernel choice allows (tests/ops/test_ops_threads.c).
 */
#ifndef POA_BACKEND_CPU_NN_H
#define POA_BACKEND_CPU_NN_H

#include "backend/backend.h"

/* Use n threads for the CPU ops from now on (n ≤ 0: the OpenMP default, OMP_NUM_THREADS).
 * Call it from the thread that calls the ops. */
void poa_cpu_set_threads(int n);
/* The thread count the CPU ops use. */
int poa_cpu_get_threads(void);

/* C = alpha op(A) op(B) + beta C (row-major), split over the OpenMP threads.  Products at least
 * 32 columns wide and 16 deep run in the backend's own AVX-512 GEMM
 * (cpu_gemm_avx512.c) where the CPU has AVX-512F; the others, and all of them under
 * POA_CPU_GEMM=blas in the environment (read on every call), in BLAS split into one panel per
 * thread, BLAS itself single-threaded.  Safe to call from inside a parallel region (then it
 * runs on the caller). */
void poa_cpu_gemm(poa_trans ta, poa_trans tb, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The GEMM the layer shapes get now: "avx512" or "blas" (see poa_cpu_gemm). */
const char *poa_cpu_gemm_impl(void);
/* poa_cpu_gemm's BLAS path alone: one panel per thread, BLAS single-threaded in each (the
 * benchmarks' "BLAS sgemm" reference). */
void poa_cpu_gemm_blas(poa_trans ta, poa_trans tb, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Single-threaded BLAS GEMM on the calling thread (for use inside parallel regions). */
void poa_cpu_gemm_serial(poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc);

/* Columns are reduced over rows in blocks of at most this many (double accumulators on the
 * stack); poa_cpu_column_block(cols) picks a width (multiple of 16) that gives every thread a
 * block when it can.  A thread owning whole columns makes the sums race-free and deterministic. */
#define POA_CPU_COL_BLOCK 64
int poa_cpu_column_block(int cols);
/* Inside a column block, rows are first summed in fp32 over chunks of this many rows (vector
 * registers), then each chunk sum is added to the double accumulator. */
#define POA_CPU_ROW_CHUNK 16
/* The wide column sums of the training step (bias gradients, LayerNorm and LayerScale
 * parameter gradients) give each thread an even share of the columns (poa_cpu_share) and walk
 * it in spans of at most this many columns, the same per-column order of summation as a
 * column block (fp32 chunks of POA_CPU_ROW_CHUNK rows, then double).  A 64-column block read
 * 256 bytes per row at a stride of the row length — a new page per row for the 1536-wide MLP,
 * which the hardware prefetchers do not follow —; a span reads each row as one contiguous run,
 * and its fp32 and double sums (6 KiB per reduced quantity) stay in L1. */
#define POA_CPU_COL_SPAN 512

/* ---- ops implemented in the cpu_nn_*.c files (table in cpu_nn.c) ------------------------ */
void poa_cpu_layernorm_fwd(poa_backend *be, float *y, int ldy, float *mean, float *rstd,
                           const float *x, int ldx, const float *w, const float *b, int rows, int d,
                           float eps);
void poa_cpu_layernorm_bwd(poa_backend *be, float *dx, int lddx, float dx_beta, float *dw,
                           float *db, const float *dy, int lddy, const float *x, int ldx,
                           const float *mean, const float *rstd, const float *w, int rows, int d);
void poa_cpu_l2norm_fwd(poa_backend *be, float *y, int ldy, float *norms, const float *x, int ldx,
                        int rows, int cols, float eps);
void poa_cpu_l2norm_bwd(poa_backend *be, float *dx, int lddx, const float *dy, int lddy,
                        const float *x, int ldx, const float *norms, int rows, int cols, float eps);
void poa_cpu_weightnorm_fwd(poa_backend *be, float *W, float *vnorm, const float *g, const float *v,
                            int K, int C);
void poa_cpu_weightnorm_bwd(poa_backend *be, float *dg, float *dv, const float *dW, const float *g,
                            const float *v, const float *vnorm, int K, int C);

void poa_cpu_gelu_fwd(poa_backend *be, float *y, const float *x, size_t n);
void poa_cpu_gelu_bwd(poa_backend *be, float *dx, float *y, const float *dy, const float *x,
                      size_t n);
/* The GELU kernels the ops use now: "avx512" (hand-written, where the CPU has AVX-512F) or
 * "libm" (libmvec's erff; also forced by POA_CPU_GELU=libm in the environment, read on every
 * call). */
const char *poa_cpu_gelu_impl(void);
void poa_cpu_residual_ls_fwd(poa_backend *be, float *x, int ldx, const float *base, int ldbase,
                             const float *y, int ldy, const float *gamma, const float *s, int B,
                             int T, int d);
void poa_cpu_residual_ls_bwd(poa_backend *be, float *dy, int lddy, float *dgamma, const float *dx,
                             int lddx, const float *y, int ldy, const float *gamma, const float *s,
                             int B, int T, int d);

void poa_cpu_attention_fwd(poa_backend *be, float *out, int ldout, float *probs, const float *qkv,
                           int ldqkv, int B, int T, int H, int Dh, float scale, float *scratch);
void poa_cpu_attention_bwd(poa_backend *be, float *dqkv, int lddqkv, const float *dout, int lddout,
                           const float *qkv, int ldqkv, const float *probs, int B, int T, int H,
                           int Dh, float scale, float *scratch);
size_t poa_cpu_attention_scratch(int B, int T, int H, int Dh);
/* The attention kernels the ops use now: "avx512" (hand-written, where the CPU has AVX-512F) or
 * "blas" (OpenBLAS per (image, head) pair; also forced by POA_CPU_ATTN=blas in the
 * environment, read on every call). */
const char *poa_cpu_attention_impl(void);

void poa_cpu_patch_unfold(poa_backend *be, float *cols, const float *img, int B, int C, int Hi,
                          int Wi, int P);
void poa_cpu_pos_resample_fwd(poa_backend *be, float *dst, int ldd, const float *src, int lds,
                              int M, int h0, int w0, int d);
void poa_cpu_pos_resample_bwd(poa_backend *be, float *dsrc, int lds, const float *ddst, int ldd,
                              int M, int h0, int w0, int d);
void poa_cpu_tokens_fwd(poa_backend *be, float *x, int ldx, const float *emb, int ldemb,
                        const float *cls, const float *pos, int ldpos, const float *mask_token,
                        const uint8_t *mask, int B, int N, int d);
void poa_cpu_tokens_bwd(poa_backend *be, float *demb, int lddemb, float *dcls, float *dpos,
                        int ldpos, float *dmask_token, const float *dx, int lddx,
                        const uint8_t *mask, int B, int N, int d);

#endif
