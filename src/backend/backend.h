/* backend.h — the table of ops that model/ and train/ call; CPU and CUDA implement it.
 *
 * Rules (architecture note):
 *  - memory is allocated by the backend; callers hold pointers and never dereference them;
 *  - all matrices are row-major views (pointer, rows, cols, leading dimension);
 *  - backward ops `+=` into parameter gradients (several branches share parameters) and `=`
 *    into activation gradients unless the op says otherwise;
 *  - no allocation inside a step: scratch comes from a workspace planned up front (workspace.h);
 *  - index arrays (int32) passed to ops live in backend memory too (upload them).
 * Shape letters: B images, T tokens (incl. cls), D width, H heads, Dh head dim, K prototypes.
 *
 * The table is split in two parts with separate owners: `nn` (layers, issue #3) and `train`
 * (losses, optimizer, reductions, issue #4).  Each backend fills both.
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

    /* C[M,N] = alpha * op(A) op(B) + beta * C; op(A) is [M,K], op(B) is [K,N]; row-major.  */
    void (*gemm)(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
    /* `batch` independent GEMMs, operand i at base + i * stride (floats).                     */
    void (*gemm_strided_batched)(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                                 float alpha, const float *A, int lda, long long strideA,
                                 const float *B, int ldb, long long strideB, float beta, float *C,
                                 int ldc, long long strideC, int batch);

    /* y[r, :cols] += b[:cols] for every row                                                  */
    void (*add_bias)(poa_backend *be, float *y, int ldy, const float *b, int rows, int cols);
    /* db[:cols] += sum_r dy[r, :cols]                                                        */
    void (*bias_grad)(poa_backend *be, float *db, const float *dy, int lddy, int rows, int cols);

    /* LayerNorm over the first d features of each row (biased variance, spec §1.4).
     * Saves mean[rows], rstd[rows].                                                          */
    void (*layernorm_fwd)(poa_backend *be, float *y, int ldy, float *mean, float *rstd,
                          const float *x, int ldx, const float *w, const float *b, int rows,
                          int d, float eps);
    /* dx = (=); dw, db (+=).                                                                 */
    void (*layernorm_bwd)(poa_backend *be, float *dx, int lddx, float *dw, float *db,
                          const float *dy, int lddy, const float *x, int ldx, const float *mean,
                          const float *rstd, const float *w, int rows, int d);

    /* exact-erf GELU on n contiguous values; bwd: dx = dy * gelu'(x) (=).                    */
    void (*gelu_fwd)(poa_backend *be, float *y, const float *x, size_t n);
    void (*gelu_bwd)(poa_backend *be, float *dx, const float *dy, const float *x, size_t n);

    /* Multi-head attention of B images × T tokens.  qkv rows: [q (H·Dh) | k (H·Dh) | v (H·Dh)]
     * at row b*T+t with leading dim ldqkv.  out [B*T, H*Dh] (heads concatenated).
     * probs [B, H, T, T] saved softmax(q kᵀ·scale) for backward.                            */
    void (*attention_fwd)(poa_backend *be, float *out, int ldout, float *probs, const float *qkv,
                          int ldqkv, int B, int T, int H, int Dh, float scale);
    /* dqkv (=) from dout; scratch must hold attention_bwd_scratch floats.                    */
    void (*attention_bwd)(poa_backend *be, float *dqkv, int lddqkv, const float *dout, int lddout,
                          const float *qkv, int ldqkv, const float *probs, int B, int T, int H,
                          int Dh, float scale, float *scratch);
    size_t (*attention_bwd_scratch)(int B, int T, int H, int Dh);

    /* LayerScale residual with per-image drop-path scale (spec §1.4):
     * x[b,t,:d] += s[b] * gamma[:d] ⊙ y[b,t,:d]; s == NULL means 1 for every image.          */
    void (*residual_ls_fwd)(poa_backend *be, float *x, int ldx, const float *y, int ldy,
                            const float *gamma, const float *s, int B, int T, int d);
    /* dy (=) = s[b] * gamma ⊙ dx; dgamma (+=) = Σ s[b] dx ⊙ y.  dx itself is passed through. */
    void (*residual_ls_bwd)(poa_backend *be, float *dy, int lddy, float *dgamma, const float *dx,
                            int lddx, const float *y, int ldy, const float *gamma, const float *s,
                            int B, int T, int d);

    /* Patch unfolding: img [B, C, Hi, Wi] → cols [B*(Hi/P)*(Wi/P), C*P*P], patch order
     * row-major over the grid, within a patch (channel, row, col) order (spec §1.2).         */
    void (*patch_unfold)(poa_backend *be, float *cols, const float *img, int B, int C, int Hi,
                         int Wi, int P);

    /* Bicubic resampling of the position-embedding grid (spec §1.3): src [M*M, d] (ld lds)
     * → dst [h0*w0, d] (ld ldd), scale factors (h0+0.1)/M, (w0+0.1)/M, A = -0.75, no clamp of
     * the source coordinate, taps clamped.  bwd is the adjoint: dsrc (+=).                    */
    void (*pos_resample_fwd)(poa_backend *be, float *dst, int ldd, const float *src, int lds,
                             int M, int h0, int w0, int d);
    void (*pos_resample_bwd)(poa_backend *be, float *dsrc, int lds, const float *ddst, int ldd,
                             int M, int h0, int w0, int d);

    /* Token assembly (spec §1.2): x[b,0,:d] = cls + pos[0]; x[b,1+n,:d] = (mask[b*N+n] ?
     * mask_token : emb[b*N+n]) + pos[1+n].  mask may be NULL (uint8, backend memory).        */
    void (*tokens_fwd)(poa_backend *be, float *x, int ldx, const float *emb, int ldemb,
                       const float *cls, const float *pos, int ldpos, const float *mask_token,
                       const uint8_t *mask, int B, int N, int d);
    /* demb (=), dcls/dpos/dmask_token (+=).                                                 */
    void (*tokens_bwd)(poa_backend *be, float *demb, int lddemb, float *dcls, float *dpos,
                       int ldpos, float *dmask_token, const float *dx, int lddx,
                       const uint8_t *mask, int B, int N, int d);

    /* Row gather/scatter: dst[i, :cols] = src[idx[i], :cols]; scatter_add: dst[idx[i]] += src[i]. */
    void (*gather_rows)(poa_backend *be, float *dst, int ldd, const float *src, int lds,
                        const int32_t *idx, int n, int cols);
    void (*scatter_add_rows)(poa_backend *be, float *dst, int ldd, const float *src, int lds,
                             const int32_t *idx, int n, int cols);

    /* y = x / max(||x||_2, eps) per row; norms[rows] saved.  bwd: dx (=).                    */
    void (*l2norm_fwd)(poa_backend *be, float *y, int ldy, float *norms, const float *x, int ldx,
                       int rows, int cols, float eps);
    void (*l2norm_bwd)(poa_backend *be, float *dx, int lddx, const float *dy, int lddy,
                       const float *x, int ldx, const float *norms, int rows, int cols, float eps);

    /* Weight normalisation (spec §3.1): W[k,:] = g[k] * v[k,:] / ||v[k,:]||.  bwd: dg, dv (+=). */
    void (*weightnorm_fwd)(poa_backend *be, float *W, float *vnorm, const float *g,
                           const float *v, int K, int C);
    void (*weightnorm_bwd)(poa_backend *be, float *dg, float *dv, const float *dW, const float *g,
                           const float *v, const float *vnorm, int K, int C);

    /* y += a * x; x *= a (n contiguous floats).                                               */
    void (*axpy)(poa_backend *be, float *y, float a, const float *x, size_t n);
    void (*scale)(poa_backend *be, float *x, float a, size_t n);
} poa_nn_ops;

/* ----------------------------------------------------------------------------------------- */
/* Loss, optimizer and reduction ops (issue #4 fills these; NULL until implemented).           */
typedef struct poa_train_ops {
    /* Σ x² in double, returned to the host (a sync point: use once per step).                */
    double (*sum_squares)(poa_backend *be, const float *x, size_t n);
    /* 1 if every value is finite.                                                            */
    int (*all_finite)(poa_backend *be, const float *x, size_t n);
    void *reserved[30]; /* filled by issue #4: softmax/CE, Sinkhorn-Knopp, KoLeo, AdamW, EMA */
} poa_train_ops;

struct poa_backend {
    const char *name; /* "cpu" or "cuda" */
    const poa_nn_ops *nn;
    const poa_train_ops *train;
    void *impl; /* backend private state (cuBLAS handle, streams, thread count, ...) */
};

/* Create a backend by name ("cpu", "cuda"); NULL with a message in errbuf if unavailable. */
poa_backend *poa_backend_create(const char *name, char *errbuf, size_t errlen);
void poa_backend_destroy(poa_backend *be);

#endif
