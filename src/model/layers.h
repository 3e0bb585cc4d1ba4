/* layers.h — the linear layer on strided views, shared by the backbone and the heads (internal).
 *
 * A (possibly elastic) linear layer uses the leading [n_out, n_in] block of an intact weight
 * with leading dimension ldw, and applies α to the weight (docs/algorithm.md §3.2: the code scales
 * the input; α·(W x) = W (α x) exactly in real arithmetic).  Shape letters: R rows.
 *
 * Two variants: poa_linear_* on fp32 tensors (the projection heads), poa_act_linear_* on
 * activations and the GEMM weights' compute copy in the compute dtype (the backbone), with fp32
 * biases and fp32 parameter gradients (backend.h, "Precision").
 */
#ifndef POA_MODEL_LAYERS_H
#define POA_MODEL_LAYERS_H

#include "backend/backend.h"

/* ---------------------------------------------------------------- fp32 (heads) */

/* y[R, n_out] (=) = α · x[R, n_in] · W[:n_out, :n_in]ᵀ + b[:n_out]  (b may be NULL) */
static inline void poa_linear_forward(poa_backend *be, float *y, int ldy, const float *x, int ldx,
                                      const float *w, int ldw, const float *b, int rows, int n_out,
                                      int n_in, float alpha)
{
    be->nn->gemm_bias(be, POA_NO_TRANS, POA_TRANS, rows, n_out, n_in, alpha, x, ldx, w, ldw, b, y,
                      ldy);
}

/* dW[:n_out, :n_in] += α · dyᵀ x;  db[:n_out] += Σ_rows dy  (db may be NULL). */
static inline void poa_linear_backward_params(poa_backend *be, float *dw, float *db,
                                              const float *dy, int lddy, const float *x, int ldx,
                                              int ldw, int rows, int n_out, int n_in, float alpha)
{
    be->nn->gemm(be, POA_TRANS, POA_NO_TRANS, n_out, n_in, rows, alpha, dy, lddy, x, ldx, 1.0f, dw,
                 ldw);
    if (db) be->nn->bias_grad(be, db, dy, lddy, rows, n_out);
}

/* dx (= if dx_beta == 0, += if 1) α · dy · W[:n_out, :n_in]. */
static inline void poa_linear_backward_input(poa_backend *be, float *dx, int lddx, float dx_beta,
                                             const float *dy, int lddy, const float *w, int ldw,
                                             int rows, int n_out, int n_in, float alpha)
{
    be->nn->gemm(be, POA_NO_TRANS, POA_NO_TRANS, rows, n_in, n_out, alpha, dy, lddy, w, ldw,
                 dx_beta, dx, lddx);
}

/* Both of the above; dx may be NULL (no input gradient wanted). */
static inline void poa_linear_backward(poa_backend *be, float *dx, int lddx, float dx_beta,
                                       float *dw, float *db, const float *dy, int lddy,
                                       const float *x, int ldx, const float *w, int ldw, int rows,
                                       int n_out, int n_in, float alpha)
{
    poa_linear_backward_params(be, dw, db, dy, lddy, x, ldx, ldw, rows, n_out, n_in, alpha);
    if (dx)
        poa_linear_backward_input(be, dx, lddx, dx_beta, dy, lddy, w, ldw, rows, n_out, n_in,
                                  alpha);
}

/* ---------------------------------------------------------------- compute dtype (backbone) */

/* As poa_linear_forward: x, y and the weight w in the compute dtype, the bias fp32. */
static inline void poa_act_linear_forward(poa_backend *be, poa_act *y, int ldy, const poa_act *x,
                                          int ldx, const poa_act *w, int ldw, const float *b,
                                          int rows, int n_out, int n_in, float alpha)
{
    be->nn->act_gemm_bias(be, POA_NO_TRANS, POA_TRANS, rows, n_out, n_in, alpha, x, ldx, w, ldw, b,
                          y, ldy);
}

/* As poa_linear_backward_params: dW and db fp32 (+=) from dy and x in the compute dtype. */
static inline void poa_act_linear_backward_params(poa_backend *be, float *dw, float *db,
                                                  const poa_act *dy, int lddy, const poa_act *x,
                                                  int ldx, int ldw, int rows, int n_out, int n_in,
                                                  float alpha)
{
    be->nn->act_gemm_wgrad(be, POA_TRANS, POA_NO_TRANS, n_out, n_in, rows, alpha, dy, lddy, x, ldx,
                           dw, ldw);
    if (db) be->nn->act_bias_grad(be, db, dy, lddy, rows, n_out);
}

/* As poa_linear_backward_input, in the compute dtype. */
static inline void poa_act_linear_backward_input(poa_backend *be, poa_act *dx, int lddx,
                                                 float dx_beta, const poa_act *dy, int lddy,
                                                 const poa_act *w, int ldw, int rows, int n_out,
                                                 int n_in, float alpha)
{
    be->nn->act_gemm(be, POA_NO_TRANS, POA_NO_TRANS, rows, n_in, n_out, alpha, dy, lddy, w, ldw,
                     dx_beta, dx, lddx);
}

/* Both of the above; dx may be NULL. */
static inline void poa_act_linear_backward(poa_backend *be, poa_act *dx, int lddx, float dx_beta,
                                           float *dw, float *db, const poa_act *dy, int lddy,
                                           const poa_act *x, int ldx, const poa_act *w, int ldw,
                                           int rows, int n_out, int n_in, float alpha)
{
    poa_act_linear_backward_params(be, dw, db, dy, lddy, x, ldx, ldw, rows, n_out, n_in, alpha);
    if (dx)
        poa_act_linear_backward_input(be, dx, lddx, dx_beta, dy, lddy, w, ldw, rows, n_out, n_in,
                                      alpha);
}

#endif
