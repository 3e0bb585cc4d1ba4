/* optim.h — AdamW with the official parameter groups, gradient clipping per module, and the
 * EMA teacher update (docs/algorithm.md §8.1–8.3, §4).
 *
 * Parameter groups come from the parameter table: lr_mult / wd_mult of every tensor
 * (docs/algorithm.md §8.2, written by the model), POA_PF_LAST_LAYER (last-layer lr schedule, 0 in
 * the first epoch), POA_PF_BACKBONE / POA_PF_HEAD (the two clipping groups).  Every tensor is
 * updated at every step, also with a zero gradient (docs/algorithm.md §8.1); one step counter for
 * all.
 *
 * Buffers: the gradient buffer is zeroed as a whole before each step, so the alignment padding
 * between tensors is 0 and a module's norm is one reduction over its contiguous range.
 */
#ifndef POA_TRAIN_OPTIM_H
#define POA_TRAIN_OPTIM_H

#include "backend/backend.h"
#include "tensor/params.h"

enum { POA_CLIP_BACKBONE = 0, POA_CLIP_HEAD = 1, POA_N_CLIP_GROUPS = 2 };

typedef struct poa_optim {
    poa_backend *be;
    int nseg;
    poa_optim_seg *segs_host;
    poa_optim_seg *segs; /* backend memory                           */
    float *m, *v;        /* AdamW moments, table total floats (backend) */
    size_t total;
    long long step; /* optimizer steps taken                    */
    double beta1, beta2, eps;
    double clip_grad; /* optim.clip_grad (1.5); 0 disables clipping */
    size_t group_begin[POA_N_CLIP_GROUPS], group_end[POA_N_CLIP_GROUPS];
} poa_optim;

/* Moments start at zero. */
void poa_optim_init(poa_optim *o, poa_backend *be, const poa_param_table *t, double beta1,
                    double beta2, double eps, double clip_grad);
void poa_optim_free(poa_optim *o);

/* Enqueue Σ g² of each clip group into sumsq[POA_N_CLIP_GROUPS] (backend memory, doubles): no
 * host synchronisation; the caller downloads them with its other per-step scalars. */
void poa_optim_sum_squares(const poa_optim *o, const float *grad, double *sumsq);

/* Gradient norm of each clip group (docs/algorithm.md §8.3) from the downloaded sums of squares,
 * and the clip coefficient min(1, clip / (norm + 1e-6)) computed in fp32 as
 * torch.nn.utils.clip_grad_norm_ does. */
void poa_optim_grad_norms(const poa_optim *o, const double sumsq[POA_N_CLIP_GROUPS],
                          double norm[POA_N_CLIP_GROUPS], float coef[POA_N_CLIP_GROUPS]);

/* One AdamW step with the iteration's schedule values; coef from poa_optim_grad_norms (the
 * gradient buffer itself is left unclipped).  params_act: the compute copy of the parameters
 * refreshed in the same pass, or NULL when the compute dtype is fp32. */
void poa_optim_step(poa_optim *o, float *params, const float *grad, double lr, double last_layer_lr,
                    double wd, const float coef[POA_N_CLIP_GROUPS], poa_act *params_act);

/* θ_T ← m·θ_T + (1 − m)·θ_S over the whole flat buffers (docs/algorithm.md §4); teacher_act as
 * params_act above. */
void poa_ema_update(poa_backend *be, float *teacher, const float *student, size_t total,
                    double momentum, poa_act *teacher_act);

#endif
