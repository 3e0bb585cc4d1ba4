/* backend.h — what model/ and train/ need from a compute device, in three tables:
 *
 *   poa_backend_iface  the device: identity, memory (device and pinned host), copies, the
 *                      compute stream, a transfer stream, events;
 *   poa_nn_ops         the layers (backbone in the run's compute dtype, heads in fp32);
 *   poa_train_ops      losses, optimizer, reductions (fp32 with double accumulators).
 *
 * The CPU backend (fp32 reference, src/backend/cpu/) and the CUDA backend (src/backend/cuda/)
 * fill all three.  Callers never compare backend names, never include the headers of
 * backend/cpu/ or backend/cuda/, and never dereference backend memory unless iface->is_host() says
 * it is host memory.  src/backend/README.md explains the design.
 *
 * Rules of every op:
 *  - all matrices are row-major views (pointer, rows, cols, leading dimension in elements);
 *  - backward ops `+=` into parameter gradients (several branches share parameters) and `=`
 *    into activation gradients unless the op says otherwise;
 *  - ops are enqueued on the backend's compute stream and return at once (CPU: they run before
 *    returning); results are visible to later ops on that stream without synchronising; the
 *    host sees them after a synchronous download, iface->synchronize() or an event;
 *  - no allocation inside a step: every op's scratch is either the caller's (sized by the
 *    op's *_bytes function, planned when the workspaces are created) or fixed-size memory the
 *    backend allocated when it was created;
 *  - index arrays (int32), masks (uint8) and scales passed to ops live in backend memory;
 *  - reductions are deterministic: the same inputs give the same bits on the same device and
 *    build, run after run (no floating-point atomics), so a resumed run equals an
 *    uninterrupted one.
 *
 * Precision is a property of the run (src/backend/README.md, "Precision"): parameters, their
 * gradients, the optimizer moments and the teacher are fp32 master copies; the backbone's
 * activations, their gradients and the GEMM operands are in the compute dtype be->act_dtype
 * (fp32 on the CPU; bf16 by default on CUDA, fp32 there for parity runs); statistics
 * (LayerNorm mean/rstd, softmax, losses, Sinkhorn-Knopp, KoLeo, norms) are computed in fp32
 * or double whatever the compute dtype.  The projection heads run in fp32 (poa decision: they
 * are ~1 % of a ViT-L step's FLOPs; src/backend/README.md, "Precision").  GEMMs with activation
 * operands accumulate in fp32.
 *
 * Shape letters: B images, T tokens (incl. cls), D width, H heads, Dh head dim, K prototypes.
 */
#ifndef POA_BACKEND_BACKEND_H
#define POA_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* C linkage for the CUDA backend's .cu files too (poa_dtype_name, poa_backend_*). */
#ifdef __cplusplus
extern "C" {
#endif

typedef struct poa_backend poa_backend;

typedef enum { POA_NO_TRANS = 0, POA_TRANS = 1 } poa_trans;

/* Element types of backend tensors. */
typedef enum poa_dtype { POA_DT_F32 = 0, POA_DT_BF16 = 1 } poa_dtype;
const char *poa_dtype_name(poa_dtype t); /* "fp32", "bf16" */
size_t poa_dtype_size(poa_dtype t);      /* 4, 2 */

/* An element of the run's compute dtype.  Incomplete on purpose: `p + n` on a poa_act * does
 * not compile; offsets go through poa_act_at(), which knows the element size.               */
typedef struct poa_act poa_act;
/* p advanced by n elements of the compute dtype (keeps p's constness).                      */
#define poa_act_at(be, p, n) ((__typeof__(p)) ((char *) (p) + (size_t) (n) * (be)->act_size))
/* Bytes of n activations.                                                                    */
static inline size_t poa_act_bytes(const poa_backend *be, size_t n);

/* Opaque event of a backend (CUDA: a cudaEvent_t; CPU: a completed marker).                  */
typedef struct poa_event poa_event;

/* ----------------------------------------------------------------------------------------- */
/* The device.                                                                               */
typedef struct poa_backend_iface {
    /* One line for logs, e.g. "cuda: NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB), compute bf16" or
     * "cpu: 2 threads, compute fp32, kernels gemm avx512, attention avx512, gelu avx512, blas
     * SkylakeX", followed by one line "\nwarning: ..." per setup problem that slows the
     * backend down (CPU: OpenBLAS running its generic kernels on an AVX2/AVX-512 CPU).       */
    void (*describe)(poa_backend *be, char *buf, size_t n);
    /* 1 when backend memory is ordinary host memory (callers may then read it directly).     */
    int (*is_host)(const poa_backend *be);
    /* Device memory now free and in total (bytes); CPU: the host's available/total memory.   */
    void (*mem_info)(poa_backend *be, size_t *free_bytes, size_t *total_bytes);
    /* Releases everything the backend owns (after iface->synchronize); be is freed.          */
    void (*destroy)(poa_backend *be);

    /* Device memory: 256-byte aligned, contents undefined; fatal (with the size and what is
     * free) when it cannot be had.                                                           */
    void *(*alloc)(poa_backend *be, size_t bytes);
    void (*free)(poa_backend *be, void *p);
    /* Host memory the transfer stream can copy from/to without staging (CUDA: page-locked;
     * CPU: 256-byte aligned malloc).  Fatal on failure.                                      */
    void *(*host_alloc)(poa_backend *be, size_t bytes);
    void (*host_free)(poa_backend *be, void *p);

    /* Copies ordered on the compute stream.  upload/download return when the copy is done
     * (the host buffer may be pageable and reused at once); copy and zero are enqueued.      */
    void (*upload)(poa_backend *be, void *dst, const void *host_src, size_t bytes);
    void (*download)(poa_backend *be, void *host_dst, const void *src, size_t bytes);
    void (*copy)(poa_backend *be, void *dst, const void *src, size_t bytes);
    void (*zero)(poa_backend *be, void *dst, size_t bytes);
    /* n activations from / to fp32 host values (rounded to nearest even for bf16); return
     * when done.  For tests, evaluation features and checkpoints of activations.            */
    void (*act_upload)(poa_backend *be, poa_act *dst, const float *host_src, size_t n);
    void (*act_download)(poa_backend *be, float *host_dst, const poa_act *src, size_t n);

    /* Transfers on the backend's transfer stream, overlapping the compute stream.
     * upload_async: host_src (from host_alloc) → dst, then records `done`; the compute stream
     * must stream_wait(done) before an op reads dst, and the host must not rewrite host_src
     * before event_synchronize(done).  download_async first waits for everything enqueued on
     * the compute stream so far, then copies and records `done`; the host may read host_dst
     * after event_synchronize(done).  CPU: the copy happens at once and `done` is complete.  */
    void (*upload_async)(poa_backend *be, void *dst, const void *host_src, size_t bytes,
                         poa_event *done);
    void (*download_async)(poa_backend *be, void *host_dst, const void *src, size_t bytes,
                           poa_event *done);

    /* Events.  record: marks the work enqueued so far on the compute stream.  stream_wait:
     * compute work enqueued later waits for the event (no host block).  event_synchronize:
     * the host waits for it.  event_elapsed: seconds between two recorded, completed events.
     * synchronize: the host waits for everything enqueued on every stream of the backend.   */
    poa_event *(*event_create)(poa_backend *be);
    void (*event_destroy)(poa_backend *be, poa_event *ev);
    void (*event_record)(poa_backend *be, poa_event *ev);
    void (*stream_wait)(poa_backend *be, poa_event *ev);
    void (*event_synchronize)(poa_backend *be, poa_event *ev);
    double (*event_elapsed)(poa_backend *be, poa_event *start, poa_event *end);
    void (*synchronize)(poa_backend *be);
    /* The compute stream as the device library sees it (CUDA: a cudaStream_t), for the comm
     * layer's NCCL calls and events; NULL on the CPU.                                        */
    void *(*native_stream)(poa_backend *be);
} poa_backend_iface;

/* ----------------------------------------------------------------------------------------- */
/* Layer ops.  Tensors typed float * are fp32; tensors typed poa_act * are in the compute
 * dtype.  The backbone (ViT) works on poa_act; the heads on fp32; the gather/scatter pair
 * act_gather_rows_f32 / act_scatter_add_rows_f32 crosses between the two.                   */
typedef struct poa_nn_ops {
    /* fp32 GEMMs (heads, tests).  C[M,N] = alpha · op(A) op(B) + beta · C; op(A) is [M,K],
     * op(B) is [K,N].  beta == 0: C is not read (may hold NaN).  K == 0: C = beta · C.        */
    void (*gemm)(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
    /* `batch` independent GEMMs, operand i at base + i · stride (elements).                   */
    void (*gemm_strided_batched)(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                                 float alpha, const float *A, int lda, long long strideA,
                                 const float *B, int ldb, long long strideB, float beta, float *C,
                                 int ldc, long long strideC, int batch);
    /* C[M,N] (=) = alpha · op(A) op(B) + bias[:N] on every row (bias may be NULL); C not read.
     * A linear layer's forward with the bias added where the GEMM stores C.                  */
    void (*gemm_bias)(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, const float *bias, float *C,
                      int ldc);
    /* db[:cols] += Σ_r dy[r, :cols]                                                          */
    void (*bias_grad)(poa_backend *be, float *db, const float *dy, int lddy, int rows, int cols);
    /* exact-erf GELU on n contiguous values; bwd: dx = dy · gelu'(x) (=), dx may alias dy;
     * y, if not NULL, receives gelu(x) from the same pass (bit-identical to gelu_fwd).        */
    void (*gelu_fwd)(poa_backend *be, float *y, const float *x, size_t n);
    void (*gelu_bwd)(poa_backend *be, float *dx, float *y, const float *dy, const float *x,
                     size_t n);
    /* y = x / max(||x||_2, eps) per row (F.normalize); norms[rows] = ||x||_2 (unclamped)
     * saved.  bwd: dx (=); rows with ||x|| < eps get dx = dy / eps (the clamp is constant).  */
    void (*l2norm_fwd)(poa_backend *be, float *y, int ldy, float *norms, const float *x, int ldx,
                       int rows, int cols, float eps);
    void (*l2norm_bwd)(poa_backend *be, float *dx, int lddx, const float *dy, int lddy,
                       const float *x, int ldx, const float *norms, int rows, int cols, float eps);
    /* Weight normalisation of the heads' last layer: W[k,:] = v[k,:] · (g[k] / ||v[k,:]||),
     * W and v [K, C] contiguous; vnorm[K] = ||v[k,:]|| saved.  bwd: dg, dv (+=); either may be
     * NULL.                                                                                  */
    void (*weightnorm_fwd)(poa_backend *be, float *W, float *vnorm, const float *g, const float *v,
                           int K, int C);
    void (*weightnorm_bwd)(poa_backend *be, float *dg, float *dv, const float *dW, const float *g,
                           const float *v, const float *vnorm, int K, int C);
    /* y += a · x; x *= a (n contiguous floats).                                               */
    void (*axpy)(poa_backend *be, float *y, float a, const float *x, size_t n);
    void (*scale)(poa_backend *be, float *x, float a, size_t n);
    /* Bicubic resampling of the position-embedding grid (parameters, fp32): src [M·M, d] (ld
     * lds) → dst [h0·w0, d] (ld ldd); scale factors (h0+0.1)/M, (w0+0.1)/M, A = −0.75, source
     * coordinate not clamped, taps clamped.  bwd is the exact adjoint of fwd: dsrc (+=).  The
     * CPU backend's tap weights are bit-identical to torch's fp32 CPU F.interpolate.         */
    void (*pos_resample_fwd)(poa_backend *be, float *dst, int ldd, const float *src, int lds, int M,
                             int h0, int w0, int d);
    void (*pos_resample_bwd)(poa_backend *be, float *dsrc, int lds, const float *ddst, int ldd,
                             int M, int h0, int w0, int d);

    /* --- the backbone, in the compute dtype ------------------------------------------------ */
    /* dst[n] = src[n] rounded to the compute dtype (the GEMM weights' compute copy).          */
    void (*act_from_f32)(poa_backend *be, poa_act *dst, const float *src, size_t n);
    /* C[M,N] = alpha · op(A) op(B) + beta · C, C in the compute dtype (fp32 accumulation).
     * beta == 0: C not read.  An input gradient (beta 0, or 1 to add a second branch's).     */
    void (*act_gemm)(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                     const poa_act *A, int lda, const poa_act *B, int ldb, float beta, poa_act *C,
                     int ldc);
    /* C[M,N] (=) = alpha · op(A) op(B) + bias[:N] (fp32, may be NULL); a linear layer.        */
    void (*act_gemm_bias)(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                          float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                          const float *bias, poa_act *C, int ldc);
    /* C[M,N] (+=) alpha · op(A) op(B) with C fp32: a weight gradient from activations.        */
    void (*act_gemm_wgrad)(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                           float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                           float *C, int ldc);
    /* db[:cols] (fp32) += Σ_r dy[r, :cols]                                                   */
    void (*act_bias_grad)(poa_backend *be, float *db, const poa_act *dy, int lddy, int rows,
                          int cols);
    /* GELU as gelu_fwd/gelu_bwd, on activations (computed in fp32, stored in the dtype).     */
    void (*act_gelu_fwd)(poa_backend *be, poa_act *y, const poa_act *x, size_t n);
    void (*act_gelu_bwd)(poa_backend *be, poa_act *dx, poa_act *y, const poa_act *dy,
                         const poa_act *x, size_t n);

    /* LayerNorm over the first d features of each row (biased variance):
     * y = (x − mean) · rstd · w + b, rstd = 1/sqrt(var + eps), statistics in fp32.  Saves
     * mean[rows], rstd[rows] (fp32).  Columns d … ld−1 of y are not touched.                 */
    void (*layernorm_fwd)(poa_backend *be, poa_act *y, int ldy, float *mean, float *rstd,
                          const poa_act *x, int ldx, const float *w, const float *b, int rows,
                          int d, float eps);
    /* dx (= if dx_beta is 0, += if 1: a residual stream adds the branch's gradient in the same
     * pass); dw, db (+=, fp32).  Any of dx, dw, db may be NULL (not computed).               */
    void (*layernorm_bwd)(poa_backend *be, poa_act *dx, int lddx, float dx_beta, float *dw,
                          float *db, const poa_act *dy, int lddy, const poa_act *x, int ldx,
                          const float *mean, const float *rstd, const float *w, int rows, int d);

    /* Multi-head attention of B images × T tokens.  qkv rows: [q (H·Dh) | k (H·Dh) | v (H·Dh)]
     * at row b·T + t with leading dim ldqkv.  out [B·T, H·Dh] (heads concatenated).
     * softmax(q kᵀ · scale) row-wise in fp32 (max subtracted).  `saved` (attention_saved_bytes)
     * keeps what backward needs: the backend chooses what (CPU: the probabilities [B, H, T, T]
     * fp32; CUDA: per row the maximum and 1/l, [B, H, T] pairs of fp32, backward recomputes
     * the scores).
     * `scratch` (attention_scratch_bytes, both directions) is garbage before and after.     */
    void (*attention_fwd)(poa_backend *be, poa_act *out, int ldout, void *saved, const poa_act *qkv,
                          int ldqkv, int B, int T, int H, int Dh, float scale, void *scratch);
    /* dqkv (=) from dout.  qkv and saved as forward left them; out not needed.               */
    void (*attention_bwd)(poa_backend *be, poa_act *dqkv, int lddqkv, const poa_act *dout,
                          int lddout, const poa_act *qkv, int ldqkv, const void *saved, int B,
                          int T, int H, int Dh, float scale, void *scratch);
    size_t (*attention_saved_bytes)(const poa_backend *be, int B, int T, int H, int Dh);
    size_t (*attention_scratch_bytes)(const poa_backend *be, int B, int T, int H, int Dh);

    /* LayerScale residual with per-image drop-path scales:
     * x[b,t,:d] = base[b,t,:d] + s[b] · gamma[:d] ⊙ y[b,t,:d]; s (fp32) == NULL means 1 for
     * every image; base may be x itself (+=) or NULL (zero).  An image with s[b] == 0
     * (dropped) gets its base row only: its rows of y are never read.                        */
    void (*residual_ls_fwd)(poa_backend *be, poa_act *x, int ldx, const poa_act *base, int ldbase,
                            const poa_act *y, int ldy, const float *gamma, const float *s, int B,
                            int T, int d);
    /* dy (=) = s[b] · gamma ⊙ dx; dgamma (+=, fp32) = Σ s[b] dx ⊙ y.  dx itself is passed
     * through.  dy or dgamma may be NULL; rows of y of images with s[b] == 0 are never read;
     * dy must not alias dx.                                                                  */
    void (*residual_ls_bwd)(poa_backend *be, poa_act *dy, int lddy, float *dgamma,
                            const poa_act *dx, int lddx, const poa_act *y, int ldy,
                            const float *gamma, const float *s, int B, int T, int d);

    /* Patch unfolding: img [B, C, Hi, Wi] (fp32 pixels) → cols [B·(Hi/P)·(Wi/P), C·P·P]
     * (compute dtype), patch order row-major over the grid, within a patch (channel, row,
     * col) order.                                                                            */
    void (*patch_unfold)(poa_backend *be, poa_act *cols, const float *img, int B, int C, int Hi,
                         int Wi, int P);
    /* Token assembly: x[b,0,:d] = cls + pos[0]; x[b,1+n,:d] = (mask[b·N+n] ? mask_token :
     * emb[b·N+n]) + pos[1+n], sums in fp32.  cls, pos, mask_token are fp32 parameters; mask
     * (uint8) may be NULL.                                                                   */
    void (*tokens_fwd)(poa_backend *be, poa_act *x, int ldx, const poa_act *emb, int ldemb,
                       const float *cls, const float *pos, int ldpos, const float *mask_token,
                       const uint8_t *mask, int B, int N, int d);
    /* demb (=; 0 at masked patches), dcls/dpos/dmask_token (+=, fp32; dmask_token sums the
     * masked positions' dx).  Any of demb, dcls, dpos, dmask_token may be NULL.              */
    void (*tokens_bwd)(poa_backend *be, poa_act *demb, int lddemb, float *dcls, float *dpos,
                       int ldpos, float *dmask_token, const poa_act *dx, int lddx,
                       const uint8_t *mask, int B, int N, int d);

    /* Row gather/scatter: dst[i, :cols] = src[idx[i], :cols]; scatter_add: dst[idx[i], :cols]
     * += src[i, :cols].  The n indices of a scatter_add are distinct (callers scatter back
     * what they gathered), so rows can be processed in parallel without atomics.             */
    void (*act_gather_rows)(poa_backend *be, poa_act *dst, int ldd, const poa_act *src, int lds,
                            const int32_t *idx, int n, int cols);
    void (*act_scatter_add_rows)(poa_backend *be, poa_act *dst, int ldd, const poa_act *src,
                                 int lds, const int32_t *idx, int n, int cols);
    /* The backbone → heads crossing: rows of activations gathered into fp32 (the heads'
     * inputs), and the heads' fp32 gradients added back onto activation rows.                */
    void (*act_gather_rows_f32)(poa_backend *be, float *dst, int ldd, const poa_act *src, int lds,
                                const int32_t *idx, int n, int cols);
    void (*act_scatter_add_rows_f32)(poa_backend *be, poa_act *dst, int ldd, const float *src,
                                     int lds, const int32_t *idx, int n, int cols);
} poa_nn_ops;

/* ----------------------------------------------------------------------------------------- */
/* Loss, optimizer and reduction ops, fp32 tensors.  Conventions of this part:
 *  - loss values are accumulated (+=) into double scalars in backend memory ("loss slots"), so a
 *    step downloads all of them once at its end; `loss_scale` scales the value written there and
 *    `grad_scale` the gradient, so a slot can hold an unweighted term while the gradient carries
 *    its weight (λ, 1/H, 1/G ...);
 *  - gradients w.r.t. logits/features are accumulated (+=): several loss terms share them;
 *  - Sinkhorn-Knopp is split into local pieces; the cross-rank sums/max between the pieces are
 *    done by the caller (model/loss_collective.h), so the backend never talks to MPI/NCCL.     */

/* One parameter tensor for the optimizer (backend memory, built once from the param table).   */
typedef struct poa_optim_seg {
    uint64_t offset, numel; /* elements, in every flat buffer (params, grads, moments, teacher) */
    float lr_mult, wd_mult; /* parameter group (docs/algorithm.md §8.2)                      */
    int32_t last_layer;     /* 1: lr from the last-layer schedule (frozen in epoch 0)         */
    int32_t clip_group;     /* index into poa_adamw_args.grad_scale (0 backbone, 1 dino_head) */
} poa_optim_seg;

#define POA_MAX_CLIP_GROUPS 4

/* Scalars of one AdamW step; host memory.                                                     */
typedef struct poa_adamw_args {
    double lr, last_layer_lr, wd; /* schedule values of this iteration                        */
    double beta1, beta2, eps;
    long long step; /* 1 at the first step                                                     */
    /* gradient clip coefficient min(1, max_norm / (norm + 1e-6)) per clip group; folded into
     * the update so that the gradient buffer keeps the unclipped gradients.                   */
    float grad_scale[POA_MAX_CLIP_GROUPS];
} poa_adamw_args;

typedef struct poa_train_ops {
    /* *out (backend memory, double) = Σ x² over n values, in a fixed order.  No host
     * synchronisation, no allocation.  A non-finite value makes the sum non-finite (no fp32
     * square reaches the double range's end), so one call per clip group gives both the norm
     * and the non-finite guard.                                                              */
    void (*sum_squares)(poa_backend *be, double *out, const float *x, size_t n);

    /* y[i, :K] = softmax(x[i, :K] · inv_tau) per row (max-subtracted).                       */
    void (*softmax_rows)(poa_backend *be, float *y, int ldy, const float *x, int ldx, int n, int K,
                         float inv_tau);

    /* Soft-target cross-entropy of n student rows s [n, K]:
     *   t_i  = t[(i + t_shift) mod t_period]              (target row; t_period ≥ 1)
     *   ce_i = −Σ_k t_ik · log_softmax(s_i · inv_tau)_k
     *   *loss += loss_scale · Σ_i w_i ce_i                 (loss may be NULL)
     *   ds_i  += grad_scale · w_i · inv_tau · (softmax(s_i · inv_tau) · Σ_k t_ik − t_i)
     *                                                      (ds may be NULL)
     * w: per-row weights [n] in backend memory, or NULL for all ones.                         */
    void (*xent)(poa_backend *be, double *loss, float *ds, int ldds, const float *s, int lds,
                 const float *t, int ldt, int t_period, int t_shift, const float *w, int n, int K,
                 float inv_tau, float loss_scale, float grad_scale);

    /* Sinkhorn-Knopp pieces on the local rows x [n, K] (n samples, K prototypes).
     * col_max: mx[k] = max_i x[i, k] (=, double).  The caller max-reduces mx over ranks.     */
    void (*col_max)(poa_backend *be, double *mx, const float *x, int ldx, int n, int K);
    /* q[i, k] = exp((x[i, k] − mx[k]) · inv_tau); psum[k] = Σ_i q[i, k] (=, double).
     * Subtracting a per-prototype constant is exact: the first prototype normalisation
     * absorbs it (docs/algorithm.md §6.2).  The caller sum-reduces psum
     * over ranks.  q may be x (in place; then ldq = ldx).                                    */
    void (*sk_exp)(poa_backend *be, float *q, int ldq, double *psum, const float *x, int ldx,
                   const double *mx, int n, int K, float inv_tau);
    /* One iteration: q[i, k] /= psum[k] (each prototype sums to 1 over all ranks' samples),
     * then each sample row is normalised to sum 1.  If psum_next != NULL it receives the new
     * local prototype sums Σ_i q[i, k] (=) for the next iteration; psum_next may be psum.
     * scratch: K doubles of the caller's workspace (1/psum), clobbered.                      */
    void (*sk_normalize)(poa_backend *be, float *q, int ldq, double *psum_next, const double *psum,
                         double *scratch, int n, int K);

    /* KoLeo of n ≥ 2 rows z [n, c]:  *loss += loss_scale · KoLeo(z);
     * dz (+=) grad_scale · ∂KoLeo/∂z.  scratch: koleo_scratch_bytes(n, c) bytes.            */
    void (*koleo)(poa_backend *be, double *loss, float *dz, int lddz, const float *z, int ldz,
                  int n, int c, float loss_scale, float grad_scale, void *scratch);
    size_t (*koleo_scratch_bytes)(const poa_backend *be, int n, int c);

    /* AdamW over the flat buffers, one pass over nseg tensors; segs in backend memory.  param,
     * m, v are updated in place; grad is read (scaled by the clip coefficient of the
     * segment's group).  Arithmetic follows torch.optim.AdamW.  param_act, if not NULL,
     * receives the updated parameters rounded to the compute dtype (same offsets): the GEMM
     * weights' compute copy, refreshed in the same pass.                                     */
    void (*adamw)(poa_backend *be, float *param, float *m, float *v, const float *grad,
                  const poa_optim_seg *segs, int nseg, const poa_adamw_args *a, poa_act *param_act);

    /* EMA teacher update: t = m·t + (1 − m)·s over n floats; t_act as param_act above.       */
    void (*ema)(poa_backend *be, float *t, const float *s, size_t n, double m, poa_act *t_act);
} poa_train_ops;

struct poa_backend {
    const char *name;    /* "cpu" or "cuda": for messages only                             */
    poa_dtype act_dtype; /* the run's compute dtype                                        */
    size_t act_size;     /* poa_dtype_size(act_dtype)                                      */
    const poa_backend_iface *iface;
    const poa_nn_ops *nn;
    const poa_train_ops *train;
    void *impl; /* backend private state (cuBLAS handles, streams, thread count, ...)          */
};

static inline size_t poa_act_bytes(const poa_backend *be, size_t n)
{
    return n * be->act_size;
}

/* How a backend is created (train.backend, compute_precision.compute_dtype, the rank's GPU). */
typedef struct poa_backend_opts {
    poa_dtype act_dtype; /* CPU: fp32 only                                                   */
    int device;          /* CUDA device index (the rank's local rank modulo the GPUs)          */
    int allow_tf32;      /* CUDA: TF32 tensor cores for the fp32 GEMMs (heads); 0 for parity   */
} poa_backend_opts;

/* Create a backend by name ("cpu", "cuda"); NULL with a message in errbuf if unavailable (not
 * built, no device, dtype not supported).  opts NULL: fp32, device 0, no TF32 (tests).        */
poa_backend *poa_backend_create(const char *name, const poa_backend_opts *opts, char *errbuf,
                                size_t errlen);
void poa_backend_destroy(poa_backend *be);
/* Devices a backend could use here: CPU 1; CUDA the visible GPUs (0 when not built, without
 * a driver or without a GPU).                                                                */
int poa_backend_device_count(const char *name);

/* The ops the tables leave NULL: their count, and the first `max` names in names[].  A backend
 * with missing ops cannot run the model; callers check before use rather than crash on the
 * first NULL op.                                                                             */
int poa_backend_missing_ops(const poa_backend *be, const char **names, int max);
/* The same for a backend by name without creating it (no device needed): all ops when the
 * backend is not built.  names may be NULL.  train.backend = auto uses it.                   */
int poa_backend_missing_ops_of(const char *name, const char **names, int max);

/* A backend for memory planning only (poa-train --dry-run, on a machine that may lack the
 * device and in a build that may lack the backend): name, act_dtype, act_size, the sizing
 * functions attention_saved_bytes and attention_scratch_bytes (nn) and koleo_scratch_bytes
 * (train); every other table entry is NULL.  Filled into *storage and returned; NULL for an unknown
 * name.  The CUDA sizes are the documented ones (src/backend/README.md, "Memory"). */
const poa_backend *poa_backend_planner(const char *name, poa_dtype act_dtype, poa_backend *storage);

#ifdef __cplusplus
}
#endif

#endif
