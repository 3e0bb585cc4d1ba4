/* head.h — the projection heads (MPH, docs/algorithm.md §5.1–5.3) with the elastic first layer
 * (§3.2).
 *
 * Head h maps rows z [R, d] (cls tokens, or masked patch tokens for iBOT — the heads are shared,
 * docs/algorithm.md §5.3) to logits [R, K_h]:
 *     h1 = GELU(α·z·W1[:, :d]ᵀ + b1)   α = D_max/d  (1 for the intact student and the teacher)
 *     h2 = GELU(h1·W2ᵀ + b2)
 *     u  = h2·W3ᵀ + b3;   û = u / max(||u||, 1e-12)
 *     logits = û · Wnᵀ,   Wn[k] = g[k]·v[k]/||v[k]||   (weight-normalised last layer)
 *
 * The composed prototype matrix Wn is computed once per step and parameter set
 * (poa_head_weights_forward) and its gradient is accumulated over all head calls of the step in
 * hw->dW; poa_head_weights_backward() then turns it into the gradients of weight_g / weight_v
 * once.  Per step, for the student:
 *     poa_head_weights_forward(be, m, params, &hw);           // W = g v/||v||, dW = 0
 *     poa_head_forward(...) for every (head, branch) call, each with its own poa_head_acts;
 *     ... losses give dlogits ...
 *     poa_head_backward(...) for every call (any order);      // dz += ..., grads += ...
 *     poa_head_weights_backward(be, m, params, grads, &hw);   // dg, dv += ...
 * The teacher uses its own poa_head_weights (with_grad = 0) and workspaces with train = 0.
 */
#ifndef POA_MODEL_HEAD_H
#define POA_MODEL_HEAD_H

#include "model/model.h"

typedef struct poa_head_weights {
    int with_grad;
    float *arena;
    float *W[POA_MODEL_MAX_HEADS];     /* [K_h, bn] composed prototypes            */
    float *vnorm[POA_MODEL_MAX_HEADS]; /* [K_h] ||v_k||                             */
    float *dW[POA_MODEL_MAX_HEADS];    /* [K_h, bn] accumulated dL/dW (with_grad)   */
} poa_head_weights;

/* Bytes of the prototypes' arena (poa_head_weights_create). */
size_t poa_head_weights_bytes(const poa_model *m, int with_grad);
void poa_head_weights_create(poa_backend *be, const poa_model *m, poa_head_weights *hw,
                             int with_grad);
void poa_head_weights_destroy(poa_backend *be, poa_head_weights *hw);
/* W_h = weightnorm(g_h, v_h) for every head; dW_h = 0. */
void poa_head_weights_forward(poa_backend *be, const poa_model *m, const float *params,
                              poa_head_weights *hw);
/* grads of weight_g, weight_v (+=) from the accumulated dW. */
void poa_head_weights_backward(poa_backend *be, const poa_model *m, const float *params,
                               float *grads, const poa_head_weights *hw);

/* Activations of one head call (R ≤ max_rows rows). */
typedef struct poa_head_acts {
    int train, max_rows;
    float *arena;
    int borrowed; /* arena is the caller's (poa_head_acts_create_at)             */
    /* current call */
    int head, width, rows;
    float alpha;
    const float *z; /* input rows, kept by the caller until backward */
    int ldz;
    float *h1, *g1, *h2, *g2; /* [R, hidden] pre/post GELU      */
    float *u, *un;            /* [R, bn] bottleneck, normalised  */
    float *norms;             /* [R] ||u||                       */
    float *dA, *dB;           /* [R, hidden] backward scratch    */
    float *du, *dun;          /* [R, bn]                         */
} poa_head_acts;

size_t poa_head_acts_floats(const poa_model *m, int max_rows, int train);
void poa_head_acts_create(poa_backend *be, const poa_model *m, poa_head_acts *a, int max_rows,
                          int train);
/* The same on the caller's backend memory of poa_head_acts_floats(m, max_rows, train) floats
 * (not freed by destroy): a workspace region shared by calls that never overlap. */
void poa_head_acts_create_at(const poa_model *m, poa_head_acts *a, int max_rows, int train,
                             float *arena);
void poa_head_acts_destroy(poa_backend *be, poa_head_acts *a);

/* logits [rows, K_h] (ld ldl, =) of head `head` for input rows z [rows, width] (ld ldz) of a
 * sub-network of width `width`.  z must stay valid until poa_head_backward. */
void poa_head_forward(poa_backend *be, const poa_model *m, const float *params,
                      const poa_head_weights *hw, int head, int width, const float *z, int ldz,
                      int rows, poa_head_acts *a, float *logits, int ldl);
/* Backward of the last forward on `a` from dlogits [rows, K_h] (ld ldd): parameter gradients of
 * the head's MLP (+=), hw->dW[head] (+=), and dz [rows, width] (ld lddz, +=: several heads and
 * losses share the input) unless dz is NULL. */
void poa_head_backward(poa_backend *be, const poa_model *m, const float *params, float *grads,
                       poa_head_weights *hw, poa_head_acts *a, const float *dlogits, int ldd,
                       float *dz, int lddz);

#endif
