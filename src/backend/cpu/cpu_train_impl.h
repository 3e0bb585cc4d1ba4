/* cpu_train_impl.h — functions shared between the CPU backend's training-op files
 * (cpu_train.c builds the poa_train_ops table from them).  Semantics: backend.h. */
#ifndef POA_BACKEND_CPU_TRAIN_IMPL_H
#define POA_BACKEND_CPU_TRAIN_IMPL_H

#include "backend/backend.h"

/* Sums over a row of K values (softmax, cross-entropy, Sinkhorn-Knopp sample rows; K up to
 * 65,536 prototypes) are accumulated in fp32 vector lanes over chunks of this many values, and
 * each chunk sum is added to a double accumulator (a vector lane adds 32 values in fp32 with
 * AVX-512, 128 with SSE; the long sum over the chunks is in double). */
#define POA_CPU_SUM_CHUNK 512

/* cpu_train_sk.c: Sinkhorn-Knopp pieces and KoLeo */
void poa_cpu_col_max(poa_backend *be, double *mx, const float *x, int ldx, int n, int K);
void poa_cpu_sk_exp(poa_backend *be, float *q, int ldq, double *psum, const float *x, int ldx,
                    const double *mx, int n, int K, float inv_tau);
void poa_cpu_sk_normalize(poa_backend *be, float *q, int ldq, double *psum_next, const double *psum,
                          double *rinv, int n, int K);
void poa_cpu_koleo(poa_backend *be, double *loss, float *dz, int lddz, const float *z, int ldz,
                   int n, int c, float loss_scale, float grad_scale, void *scratch);
size_t poa_cpu_koleo_scratch_bytes(const poa_backend *be, int n, int c);

/* cpu_train_optim.c: AdamW and EMA */
void poa_cpu_adamw(poa_backend *be, float *param, float *m, float *v, const float *grad,
                   const poa_optim_seg *segs, int nseg, const poa_adamw_args *a,
                   poa_act *param_act);
void poa_cpu_ema(poa_backend *be, float *t, const float *s, size_t n, double m, poa_act *t_act);

#endif
