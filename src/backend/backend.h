/* backend.h — the table of ops that model/ and train/ call; CPU and CUDA implement it.
 *
 * Rules (docs/architecture.md §3.1):
 *  - memory is allocated by the backend; callers hold pointers and never dereference them;
 *  - all matrices are row-major views (pointer, rows, cols, leading dimension);
 *  - backward ops `+=` into parameter gradients (several branches share parameters) and `=`
 *    into activation gradients unless the op says otherwise;
 *  - no allocation inside a step: scratch comes from a workspace planned up front (workspace.h);
 *  - index arrays (int32) passed to ops live in backend memory too (upload them).
 * Shape letters: B images, T tokens (incl. cls), D width, H heads, Dh head dim, K prototypes.
 *
 * The table is split in two parts: `nn` (layer ops) and `train` (losses, optimizer,
 * reductions).  Each backend fills both.
 */
#ifndef POA_BACKEND_BACKEND_H
#define POA_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct poa_backend poa_backend;

typedef enum { POA_NO_TRANS = 0, POA_TRANS = 1 } poa_trans;

/* ----------------------------------------------------------------------------------------- */
/* Layer ops.                                                                                */
typedef struct poa_nn_ops {
    /* memory ---------------------------------------------------------------------------- */
    void *(*alloc)(poa_backend *be, size_t bytes); /* fatal on failure; 256-byte aligned */
    void (*free)(poa_backend *be, void *p);
    void (*upload)(poa_backend *be, void *dst, const void *host_src, size_t bytes);
    void (*download)(poa_backend *be, void *host_dst, const void *src, size_t bytes);
    void (*copy)(poa_backend *be, void *dst, const void *src, size_t bytes);
    void (*zero)(poa_backend *be, void *dst, size_t bytes);
    void (*sync)(poa_backend *be);

    /* C[M,N] = alpha * op(A) op(B) + beta * C; op(A) is [M,K], op(B) is [K,N]; row-major.
     * beta == 0: C is not read (may hold garbage or NaN).  K == 0: C = beta * C.             */
    void (*gemm)(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
    /* `batch` independent GEMMs, operand i at base + i * stride (floats).                     */
    void (*gemm_strided_batched)(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                                 float alpha, const float *A, int lda, long long strideA,
                                 const float *B, int ldb, long long strideB, float beta, float *C,
                                 int ldc, long long strideC, int batch);

    /* C[M,N] (=) = alpha * op(A) op(B) + bias[:N] on every row: a linear layer's forward, the
     * bias added where the GEMM stores C (no separate pass; C is not read).  bias may be NULL. */
    void (*gemm_bias)(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, const float *bias, float *C,
                      int ldc);
    /* db[:cols] += sum_r dy[r, :cols]                                                        */
    void (*bias_grad)(poa_backend *be, float *db, const float *dy, int lddy, int rows, int cols);

    /* LayerNorm over the first d features of each row (biased variance, docs/algorithm.md §2.4):
     * y = (x − mean) · rstd · w + b, rstd = 1/sqrt(var + eps).  Saves mean[rows], rstd[rows].
     * Columns d … ld−1 of y are not touched.                                                 */
    void (*layernorm_fwd)(poa_backend *be, float *y, int ldy, float *mean, float *rstd,
                          const float *x, int ldx, const float *w, const float *b, int rows, int d,
                          float eps);
    /* dx (= if dx_beta is 0, += if 1: a residual stream adds the branch's gradient in the same
     * pass); dw, db (+=).  Any of dx, dw, db may be NULL (not computed).                    */
    void (*layernorm_bwd)(poa_backend *be, float *dx, int lddx, float dx_beta, float *dw, float *db,
                          const float *dy, int lddy, const float *x, int ldx, const float *mean,
                          const float *rstd, const float *w, int rows, int d);

    /* exact-erf GELU on n contiguous values; bwd: dx = dy * gelu'(x) (=), dx may alias dy;
     * y, if not NULL, receives gelu(x) from the same pass (bit-identical to gelu_fwd).        */
    void (*gelu_fwd)(poa_backend *be, float *y, const float *x, size_t n);
    void (*gelu_bwd)(poa_backend *be, float *dx, float *y, const float *dy, const float *x,
                     size_t n);

    /* Multi-head attention of B images × T tokens.  qkv rows: [q (H·Dh) | k (H·Dh) | v (H·Dh)]
     * at row b*T+t with leading dim ldqkv.  out [B*T, H*Dh] (heads concatenated).
     * probs [B, H, T, T] (contiguous, row i of (b, h) at ((b·H + h)·T + i)·T) saved
     * softmax(q kᵀ·scale) for backward; the softmax subtracts the row maximum.
     * scratch (both directions) must hold attention_scratch(B, T, H, Dh) floats (CPU: one
     * slot of a [T, T] matrix and packed operands per concurrently processed (image, head)
     * pair, at most 64 slots); its contents are garbage before and after.                    */
    void (*attention_fwd)(poa_backend *be, float *out, int ldout, float *probs, const float *qkv,
                          int ldqkv, int B, int T, int H, int Dh, float scale, float *scratch);
    /* dqkv (=) from dout.                                                                     */
    void (*attention_bwd)(poa_backend *be, float *dqkv, int lddqkv, const float *dout, int lddout,
                          const float *qkv, int ldqkv, const float *probs, int B, int T, int H,
                          int Dh, float scale, float *scratch);
    size_t (*attention_scratch)(int B, int T, int H, int Dh);

    /* LayerScale residual with per-image drop-path scale (docs/algorithm.md §2.4, §2.5):
     * x[b,t,:d] = base[b,t,:d] + s[b] * gamma[:d] ⊙ y[b,t,:d]; s == NULL means 1 for every
     * image; base may be x itself (+=) or NULL (zero).  An image with s[b] == 0 (dropped) gets
     * its base row only: its rows of y are never read.                                        */
    void (*residual_ls_fwd)(poa_backend *be, float *x, int ldx, const float *base, int ldbase,
                            const float *y, int ldy, const float *gamma, const float *s, int B,
                            int T, int d);
    /* dy (=) = s[b] * gamma ⊙ dx; dgamma (+=) = Σ s[b] dx ⊙ y.  dx itself is passed through.
     * dy or dgamma may be NULL; rows of y of images with s[b] == 0 are never read; dy must
     * not alias dx (dgamma reads dx after dy is written).                                    */
    void (*residual_ls_bwd)(poa_backend *be, float *dy, int lddy, float *dgamma, const float *dx,
                            int lddx, const float *y, int ldy, const float *gamma, const float *s,
                            int B, int T, int d);

    /* Patch unfolding: img [B, C, Hi, Wi] → cols [B*(Hi/P)*(Wi/P), C*P*P], patch order
     * row-major over the grid, within a patch (channel, row, col) order
     * (docs/algorithm.md §2.2).                                                              */
    void (*patch_unfold)(poa_backend *be, float *cols, const float *img, int B, int C, int Hi,
                         int Wi, int P);

    /* Bicubic resampling of the position-embedding grid (docs/algorithm.md §2.3):
     * src [M*M, d] (ld lds) → dst [h0*w0, d] (ld ldd), scale factors (h0+0.1)/M, (w0+0.1)/M,
     * A = -0.75, no clamp of the source coordinate, taps clamped.  bwd is the exact adjoint of
     * fwd: dsrc (+=).
     * The CPU backend's tap weights are bit-identical to torch's fp32 CPU F.interpolate
     * (ratio 1/s rounded to fp32, as torch does); outputs agree to a few ulp.                */
    void (*pos_resample_fwd)(poa_backend *be, float *dst, int ldd, const float *src, int lds, int M,
                             int h0, int w0, int d);
    void (*pos_resample_bwd)(poa_backend *be, float *dsrc, int lds, const float *ddst, int ldd,
                             int M, int h0, int w0, int d);

    /* Token assembly (docs/algorithm.md §2.2): x[b,0,:d] = cls + pos[0];
     * x[b,1+n,:d] = (mask[b*N+n] ? mask_token : emb[b*N+n]) + pos[1+n].  mask may be NULL
     * (uint8, backend memory).                                                               */
    void (*tokens_fwd)(poa_backend *be, float *x, int ldx, const float *emb, int ldemb,
                       const float *cls, const float *pos, int ldpos, const float *mask_token,
                       const uint8_t *mask, int B, int N, int d);
    /* demb (=; 0 at masked patches), dcls/dpos/dmask_token (+=; dmask_token sums the masked
     * positions' dx).  Any of demb, dcls, dpos, dmask_token may be NULL (not computed).       */
    void (*tokens_bwd)(poa_backend *be, float *demb, int lddemb, float *dcls, float *dpos,
                       int ldpos, float *dmask_token, const float *dx, int lddx,
                       const uint8_t *mask, int B, int N, int d);

    /* Row gather/scatter: dst[i, :cols] = src[idx[i], :cols]; scatter_add: dst[idx[i]] += src[i]
     * (repeated indices accumulate; deterministic order).                                     */
    void (*gather_rows)(poa_backend *be, float *dst, int ldd, const float *src, int lds,
                        const int32_t *idx, int n, int cols);
    void (*scatter_add_rows)(poa_backend *be, float *dst, int ldd, const float *src, int lds,
                             const int32_t *idx, int n, int cols);

    /* y = x / max(||x||_2, eps) per row (F.normalize); norms[rows] = ||x||_2 (unclamped)
     * saved.  bwd: dx (=); rows with ||x|| < eps get dx = dy / eps (the clamp is constant).  */
    void (*l2norm_fwd)(poa_backend *be, float *y, int ldy, float *norms, const float *x, int ldx,
                       int rows, int cols, float eps);
    void (*l2norm_bwd)(poa_backend *be, float *dx, int lddx, const float *dy, int lddy,
                       const float *x, int ldx, const float *norms, int rows, int cols, float eps);

    /* Weight normalisation (docs/algorithm.md §5.1): W[k,:] = v[k,:] * (g[k] / ||v[k,:]||),
     * W and v [K, C] contiguous; vnorm[K] = ||v[k,:]|| saved.  bwd: dg, dv (+=); either may be
     * NULL.                                                                                  */
    void (*weightnorm_fwd)(poa_backend *be, float *W, float *vnorm, const float *g, const float *v,
                           int K, int C);
    void (*weightnorm_bwd)(poa_backend *be, float *dg, float *dv, const float *dW, const float *g,
                           const float *v, const float *vnorm, int K, int C);

    /* y += a * x; x *= a (n contiguous floats).                                               */
    void (*axpy)(poa_backend *be, float *y, float a, const float *x, size_t n);
    void (*scale)(poa_backend *be, float *x, float a, size_t n);
} poa_nn_ops;

/* ----------------------------------------------------------------------------------------- */
/* Loss, optimizer and reduction ops.  Conventions of this part:
 *  - loss values are accumulated (+=) into double scalars in backend memory ("loss slots"), so a
 *    step downloads all of them once at its end; `loss_scale` scales the value written there and
 *    `grad_scale` the gradient, so a slot can hold the unweighted term of docs/algorithm.md
 *    §6.9 while the gradient carries its weight (λ, 1/H, 1/G ...);
 *  - gradients w.r.t. logits/features are accumulated (+=): several loss terms share them;
 *  - Sinkhorn-Knopp is split into local pieces; the cross-rank sums/max between the pieces are
 *    done by the caller (model/loss_collective.h), so the backend never talks to MPI/NCCL.     */

/* One parameter tensor for the optimizer (backend memory, built once from the param table).   */
typedef struct poa_optim_seg {
    uint64_t offset, numel; /* floats, in every flat buffer (params, grads, moments, teacher)  */
    float lr_mult, wd_mult; /* docs/algorithm.md §8.2                                        */
    int32_t last_layer;     /* 1: lr from the last-layer schedule (frozen in epoch 0)         */
    int32_t clip_group;     /* index into poa_adamw_args.grad_scale (0 backbone, 1 dino_head) */
} poa_optim_seg;

#define POA_MAX_CLIP_GROUPS 4

/* Scalars of one AdamW step (docs/algorithm.md §8.1); host memory.                            */
typedef struct poa_adamw_args {
    double lr, last_layer_lr, wd; /* schedule values of this iteration (docs/algorithm.md §8.4) */
    double beta1, beta2, eps;
    long long step; /* 1 at the first step                                                     */
    /* gradient clip coefficient min(1, max_norm / (norm + 1e-6)) per clip group
     * (docs/algorithm.md §8.3); folded into the update so that the gradient buffer keeps the
     * unclipped gradients.                                                                    */
    float grad_scale[POA_MAX_CLIP_GROUPS];
} poa_adamw_args;

typedef struct poa_train_ops {
    /* Σ x² in double, returned to the host (a sync point: use once per step).                */
    double (*sum_squares)(poa_backend *be, const float *x, size_t n);
    /* 1 if every value is finite.                                                            */
    int (*all_finite)(poa_backend *be, const float *x, size_t n);

    /* y[i, :K] = softmax(x[i, :K] · inv_tau) per row (max-subtracted).                       */
    void (*softmax_rows)(poa_backend *be, float *y, int ldy, const float *x, int ldx, int n, int K,
                         float inv_tau);

    /* Soft-target cross-entropy ("CE" of docs/algorithm.md §1.1) of n student rows s [n, K]:
     *   t_i  = t[(i + t_shift) mod t_period]              (target row; t_period ≥ 1)
     *   ce_i = −Σ_k t_ik · log_softmax(s_i · inv_tau)_k
     *   *loss += loss_scale · Σ_i w_i ce_i                 (loss may be NULL)
     *   ds_i  += grad_scale · w_i · inv_tau · (softmax(s_i · inv_tau) · Σ_k t_ik − t_i)
     *                                                      (ds may be NULL)
     * w: per-row weights [n] in backend memory, or NULL for all ones.                         */
    void (*xent)(poa_backend *be, double *loss, float *ds, int ldds, const float *s, int lds,
                 const float *t, int ldt, int t_period, int t_shift, const float *w, int n, int K,
                 float inv_tau, float loss_scale, float grad_scale);

    /* Sinkhorn-Knopp pieces (docs/algorithm.md §6.2; docs/architecture.md §3.1) on the local
     * rows x [n, K] (n samples, K prototypes).
     * col_max: mx[k] = max_i x[i, k] (=, double).  The caller max-reduces mx over ranks.     */
    void (*col_max)(poa_backend *be, double *mx, const float *x, int ldx, int n, int K);
    /* q[i, k] = exp((x[i, k] − mx[k]) · inv_tau); psum[k] = Σ_i q[i, k] (=, double).
     * Subtracting a per-prototype constant is exact: the first prototype normalisation
     * absorbs it (see src/train/README.md).  The caller sum-reduces psum over ranks.
     * q may be x (in place; then ldq = ldx).                                                 */
    void (*sk_exp)(poa_backend *be, float *q, int ldq, double *psum, const float *x, int ldx,
                   const double *mx, int n, int K, float inv_tau);
    /* One iteration: q[i, k] /= psum[k] (each prototype sums to 1 over all ranks' samples),
     * then each sample row is normalised to sum 1.  If psum_next != NULL it receives the new
     * local prototype sums Σ_i q[i, k] (=) for the next iteration; psum_next may be psum.
     * scratch: K doubles of the caller's workspace (1/psum), clobbered.                      */
    void (*sk_normalize)(poa_backend *be, float *q, int ldq, double *psum_next, const double *psum,
                         double *scratch, int n, int K);

    /* KoLeo (docs/algorithm.md §6.7) of n ≥ 2 rows z [n, c]:  *loss += loss_scale · KoLeo(z);
     * dz (+=) grad_scale · ∂KoLeo/∂z.  scratch: koleo_scratch(n, c) floats.                 */
    void (*koleo)(poa_backend *be, double *loss, float *dz, int lddz, const float *z, int ldz,
                  int n, int c, float loss_scale, float grad_scale, float *scratch);
    size_t (*koleo_scratch)(int n, int c);

    /* AdamW over the flat buffers (docs/algorithm.md §8.1), one loop over nseg tensors; segs in
     * backend memory.  param, m, v are updated in place; grad is read (scaled by the clip
     * coefficient of the segment's group).  Arithmetic follows torch.optim.AdamW.           */
    void (*adamw)(poa_backend *be, float *param, float *m, float *v, const float *grad,
                  const poa_optim_seg *segs, int nseg, const poa_adamw_args *a);

    /* EMA teacher update (docs/algorithm.md §4): t = m·t + (1 − m)·s over n floats.           */
    void (*ema)(poa_backend *be, float *t, const float *s, size_t n, double m);
} poa_train_ops;

struct poa_backend {
    const char *name; /* "cpu" or "cuda" */
    const poa_nn_ops *nn;
    const poa_train_ops *train;
    void *impl; /* backend private state (cuBLAS handle, streams, thread count, ...) */
};

/* Create a backend by name ("cpu", "cuda"); NULL with a message in errbuf if unavailable. */
poa_backend *poa_backend_create(const char *name, char *errbuf, size_t errlen);

/* The ops the tables leave NULL (not implemented by that backend yet): their count, and the
 * first `max` names in names[].  A backend with missing ops cannot run the model (the CUDA
 * backend has only its memory, GEMM and reduction ops so far); callers check before use rather
 * than crash on the first NULL op. */
int poa_backend_missing_ops(const poa_nn_ops *nn, const poa_train_ops *train, const char **names,
                            int max);
void poa_backend_destroy(poa_backend *be);

#endif
