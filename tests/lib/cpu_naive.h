/* cpu_naive.h — naive, obviously-correct double-precision versions of the backend ops, for
 * tests only (docs/architecture.md §3.2, "Naive twins for tests"): the layer ops (cpu_naive.c)
 * and the training ops (cpu_naive_train.c).  Built into tests/lib/libpoa_testutil.a (make
 * check), never into the backend archive or the programs.
 *
 * Each poa_naive_X has the arguments and the semantics of poa_nn_ops.X / poa_train_ops.X (same
 * views, leading dimensions, = / += rules) minus the backend, on double arrays: plain loops,
 * straight from the formulas of docs/algorithm.md §2, no threads, no BLAS.  Activation ops have
 * one reference whatever the compute dtype (the tests give it the values the backend holds).
 * tests/ops/test_backend_ops compares every backend with them, and differentiates the naive
 * forwards by central finite differences in double.
 */
#ifndef POA_TESTS_LIB_CPU_NAIVE_H
#define POA_TESTS_LIB_CPU_NAIVE_H

#include "backend/backend.h"

#include <stddef.h>
#include <stdint.h>

void poa_naive_gemm(poa_trans ta, poa_trans tb, int M, int N, int K, double alpha, const double *A,
                    int lda, const double *B, int ldb, double beta, double *C, int ldc);
void poa_naive_gemm_strided_batched(poa_trans ta, poa_trans tb, int M, int N, int K, double alpha,
                                    const double *A, int lda, long long strideA, const double *B,
                                    int ldb, long long strideB, double beta, double *C, int ldc,
                                    long long strideC, int batch);

void poa_naive_add_bias(double *y, int ldy, const double *b, int rows, int cols);
void poa_naive_bias_grad(double *db, const double *dy, int lddy, int rows, int cols);

void poa_naive_layernorm_fwd(double *y, int ldy, double *mean, double *rstd, const double *x,
                             int ldx, const double *w, const double *b, int rows, int d,
                             double eps);
void poa_naive_layernorm_bwd(double *dx, int lddx, double *dw, double *db, const double *dy,
                             int lddy, const double *x, int ldx, const double *mean,
                             const double *rstd, const double *w, int rows, int d);

void poa_naive_gelu_fwd(double *y, const double *x, size_t n);
void poa_naive_gelu_bwd(double *dx, const double *dy, const double *x, size_t n);

void poa_naive_attention_fwd(double *out, int ldout, double *probs, const double *qkv, int ldqkv,
                             int B, int T, int H, int Dh, double scale);
void poa_naive_attention_bwd(double *dqkv, int lddqkv, const double *dout, int lddout,
                             const double *qkv, int ldqkv, const double *probs, int B, int T, int H,
                             int Dh, double scale);

void poa_naive_residual_ls_fwd(double *x, int ldx, const double *y, int ldy, const double *gamma,
                               const double *s, int B, int T, int d);
void poa_naive_residual_ls_bwd(double *dy, int lddy, double *dgamma, const double *dx, int lddx,
                               const double *y, int ldy, const double *gamma, const double *s,
                               int B, int T, int d);

void poa_naive_patch_unfold(double *cols, const double *img, int B, int C, int Hi, int Wi, int P);
/* docs/algorithm.md §2.3 in double: src = (o + 0.5)/s − 0.5 with s = (n_out + 0.1)/n_in. */
void poa_naive_pos_resample_fwd(double *dst, int ldd, const double *src, int lds, int M, int h0,
                                int w0, int d);
void poa_naive_pos_resample_bwd(double *dsrc, int lds, const double *ddst, int ldd, int M, int h0,
                                int w0, int d);

void poa_naive_tokens_fwd(double *x, int ldx, const double *emb, int ldemb, const double *cls,
                          const double *pos, int ldpos, const double *mask_token,
                          const uint8_t *mask, int B, int N, int d);
void poa_naive_tokens_bwd(double *demb, int lddemb, double *dcls, double *dpos, int ldpos,
                          double *dmask_token, const double *dx, int lddx, const uint8_t *mask,
                          int B, int N, int d);

void poa_naive_gather_rows(double *dst, int ldd, const double *src, int lds, const int32_t *idx,
                           int n, int cols);
void poa_naive_scatter_add_rows(double *dst, int ldd, const double *src, int lds,
                                const int32_t *idx, int n, int cols);

void poa_naive_l2norm_fwd(double *y, int ldy, double *norms, const double *x, int ldx, int rows,
                          int cols, double eps);
void poa_naive_l2norm_bwd(double *dx, int lddx, const double *dy, int lddy, const double *x,
                          int ldx, const double *norms, int rows, int cols, double eps);

void poa_naive_weightnorm_fwd(double *W, double *vnorm, const double *g, const double *v, int K,
                              int C);
void poa_naive_weightnorm_bwd(double *dg, double *dv, const double *dW, const double *g,
                              const double *v, const double *vnorm, int K, int C);

/* ------------------------------------------------------------------------ training ops
 * (cpu_naive_train.c).  Scalars that the backend accumulates into loss slots are returned
 * instead (the value the op adds); gradients are accumulated (+=) as the ops do. */
double poa_naive_sum_squares(const double *x, size_t n);
void poa_naive_softmax_rows(double *y, int ldy, const double *x, int ldx, int n, int K,
                            double inv_tau);
/* Returns loss_scale · Σ_i w_i ce_i; ds (may be NULL) += grad_scale · ∂(Σ_i w_i ce_i)/∂s. */
double poa_naive_xent(double *ds, int ldds, const double *s, int lds, const double *t, int ldt,
                      int t_period, int t_shift, const double *w, int n, int K, double inv_tau,
                      double loss_scale, double grad_scale);
void poa_naive_col_max(double *mx, const double *x, int ldx, int n, int K);
void poa_naive_sk_exp(double *q, int ldq, double *psum, const double *x, int ldx, const double *mx,
                      int n, int K, double inv_tau);
void poa_naive_sk_normalize(double *q, int ldq, double *psum_next, const double *psum, int n,
                            int K);
/* The official Sinkhorn-Knopp of the R × K logits L (contiguous): no max subtraction, the
 * /K, /R, ·R constants; T [R, K] receives the targets. */
void poa_naive_sinkhorn(double *T, const double *L, int R, int K, double inv_tau, int iters);
/* Returns loss_scale · KoLeo(z); dz (may be NULL) += grad_scale · ∂KoLeo/∂z. */
double poa_naive_koleo(double *dz, int lddz, const double *z, int ldz, int n, int c,
                       double loss_scale, double grad_scale);
void poa_naive_adamw(double *param, double *m, double *v, const double *grad,
                     const poa_optim_seg *segs, int nseg, const poa_adamw_args *a);
void poa_naive_ema(double *t, const double *s, size_t n, double m);

#endif
