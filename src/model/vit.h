/* vit.h — forward and backward of the ViT backbone for any sub-network (docs/algorithm.md §2,
 * §3.2–3.4).
 *
 * A sub-network (width d, blocks) runs directly on the intact parameters: every weight is a
 * strided view of the intact tensor (pointer, rows, cols, leading dimension D_max), the α of
 * docs/algorithm.md §3.2 is the GEMM scalar, and backward accumulates α-scaled gradients into the
 * same slices of the intact gradient buffer.  Nothing is copied.
 *
 * Precision (src/backend/README.md, "Precision"): activations, their gradients and the GEMM
 * weights are in the backend's compute dtype (poa_act); LayerNorm statistics, drop-path scales,
 * biases, LayerScale, the tokens and every parameter gradient are fp32.  The weights come as a
 * poa_weights pair: the fp32 master parameters and the compute copy of the GEMM weights.
 *
 * Usage (one backbone call of the trainer):
 *     poa_vit_acts a;  poa_vit_acts_create(be, m, &a, B_max, crop_size, 1);   // once
 *     poa_vit_forward(be, m, &w, &sn, &input, &a);                              // per step
 *     ... heads/losses read a.out and accumulate into a.d_out (see below) ...
 *     poa_vit_backward(be, m, &w, grads, &a, a.d_out);
 * Outputs: a.out [B·T, d] (ld d) = final-normed tokens (docs/algorithm.md §2.6); row b·T is image
 * b's cls token ("x_norm_clstoken"), rows b·T + 1 + n its patch tokens ("x_norm_patchtokens").  The
 * cls rows as a matrix are (a.out, rows B, cols d, ld T·d).  a.d_out has the same layout: zero it
 * with poa_vit_zero_dout() and accumulate (+=) the gradient of every consumer into it.
 *
 * Memory: all buffers come from two regions allocated when the workspace is created
 * (poa_vit_acts_create_plan: B_max, the largest number of images a drop-path branch computes,
 * crop size, the sub-networks served): the arena holds what backward reads (kept from forward to
 * backward), the scratch what a call needs only while it runs; a scratch may be shared by
 * workspaces whose calls do not overlap.  Forward carves the current call's buffers from them,
 * so one workspace serves every planned sub-network and any B ≤ B_max.  No allocation happens in
 * a step.  A workspace created with train = 0 (the teacher) saves nothing (all of it is
 * scratch) and cannot run backward.
 */
#ifndef POA_MODEL_VIT_H
#define POA_MODEL_VIT_H

#include "model/model.h"

#include <stdint.h>

/* The images one residual branch runs on.  Without drop path: all B images.  With drop path
 * (docs/algorithm.md §2.5) only the kept images are computed: their rows are gathered
 * from the residual stream (idx), the branch runs on n_img·T rows, and its output is added back
 * with the per-image scales s (n/k for batch subsets, 1/(1 − rate) for per-sample masks). */
typedef struct poa_vit_branch {
    int n_img;          /* images computed (k ≤ B)                                   */
    const int32_t *idx; /* [n_img·T] stream rows of the kept images (backend), or NULL */
    const float *s;     /* [n_img] residual scales (backend), or NULL (all 1)          */
} poa_vit_branch;

/* The weights of a backbone call: the fp32 master parameters (LayerNorm weights, biases,
 * LayerScale, cls/pos/mask tokens are read from here) and the compute copy of the GEMM weights
 * (patch embed, qkv, proj, fc1, fc2) in the compute dtype, at the same element offsets as the
 * flat buffer.  For fp32 runs act is f32 itself (poa_weights_f32): no copy. */
typedef struct poa_weights {
    const float *f32;
    const poa_act *act;
} poa_weights;

/* The weights of an fp32 run: act aliases the master parameters (be->act_dtype must be fp32). */
poa_weights poa_weights_f32(const poa_backend *be, const float *params);

/* Saved activations of one executed block (shapes for the current call; letters: B images,
 * T tokens, d width, r·d MLP width, h = d/Dh heads; R = rows of a branch, n_img·T, at most
 * max_kept·T).  poa_act: compute dtype; float: fp32.  Only what backward cannot recompute
 * cheaply is kept: the LayerNorm outputs are recomputed from the branch input and the saved
 * mean/rstd, and the stream after the attention residual from x_in and y1, with the forward's
 * own ops (bit-identical values; src/model/README.md, "Memory"). */
typedef struct poa_vit_block_acts {
    poa_vit_branch br[2]; /* 0 attention, 1 MLP                                      */
    poa_act *x_in;        /* [B·T, d] block input (residual stream)            */
    float *mean1, *rstd1; /* [R] norm1 statistics                               */
    poa_act *qkv;         /* [R, 3d] q | k | v, heads in order                  */
    void *saved;          /* what attention backward needs (attention_saved_bytes) */
    poa_act *att;         /* [R, d] attention output, heads concatenated        */
    poa_act *y1;          /* [R, d] attn.proj output (before LayerScale)        */
    float *mean2, *rstd2; /* [R] norm2 statistics                               */
    poa_act *h;           /* [R, r·d] fc1 output before GELU                    */
    poa_act *y2;          /* [R, d] fc2 output (before LayerScale)              */
    /* inference workspaces (train = 0): the shared buffers of the one block set */
    poa_act *ln;    /* [R, d] norm1 / norm2 output (scratch)              */
    poa_act *x_mid; /* [B·T, d] stream after the attention residual      */
} poa_vit_block_acts;

/* How a workspace is planned (poa_vit_acts_create_plan). */
typedef struct poa_vit_plan {
    int max_images; /* B_max: images of one call                                       */
    int max_kept;   /* images one residual branch computes at most (drop path keeps k of
                       n, docs/algorithm.md §2.5); 0 = max_images                       */
    int size;       /* largest crop side                                                */
    int train;      /* 1: saves everything backward needs                               */
    /* The sub-networks the workspace serves, as (width, depth) pairs; NULL: any (planned for
     * the intact network, the largest). */
    const int (*shapes)[2];
    int n_shapes;
} poa_vit_plan;

/* Bytes of a workspace: its own arena (what lives from forward to backward) and its scratch
 * (what a call uses only while it runs: garbage before forward, between forward and backward,
 * and after backward).  Workspaces whose calls never run at the same time may share one
 * scratch (poa_vit_acts_create_plan); an inference workspace (train = 0) keeps nothing and is
 * all scratch. */
typedef struct poa_vit_sizes {
    size_t arena, scratch;
} poa_vit_sizes;

typedef struct poa_vit_acts {
    /* plan */
    int train;          /* 1: saves everything backward needs                       */
    int max_images;     /* B_max                                                    */
    int max_kept;       /* images a branch may compute                              */
    int max_size;       /* largest crop side planned for                            */
    size_t cap;         /* arena bytes                                              */
    size_t scratch_cap; /* scratch bytes                                           */
    size_t max_tokens;  /* B_max · T of the planned crop size                     */
    void *arena;        /* backend memory (NULL when the plan keeps nothing)        */
    void *scratch;      /* backend memory: own (inside the allocation of arena) or shared */
    void *own;          /* what poa_vit_acts_create* allocated (freed by destroy)   */

    /* current call, set by poa_vit_forward */
    poa_subnet sn;
    int B, H, W;         /* images and their size                                     */
    int N, T, d;         /* patches, tokens (1 + N), width                             */
    int gh, gw;          /* patch grid                                                 */
    int resample;        /* position embedding resampled (grid ≠ stored grid)          */
    float alpha;         /* D_max / d                                                  */
    const float *images; /* the call's pixels (backward unfolds them again)            */
    const uint8_t *mask; /* [B·N] backend memory or NULL                         */
    float *dp_s;         /* [n_blocks][2][B] kept images' scales (backend)       */
    int32_t *dp_idx;     /* [n_blocks][2][B·T] kept images' rows (backend)       */
    float *host_s;       /* host staging of the two above (allocated at create)  */
    int32_t *host_idx;

    poa_vit_block_acts blk[POA_MODEL_MAX_DEPTH];
    poa_act *x_final;       /* [B·T, d] stream after the last block              */
    float *mean_f, *rstd_f; /* [B·T]                                            */
    poa_act *out;           /* [B·T, d] final-normed tokens                      */
    poa_act *d_out;         /* [B·T, d] gradient w.r.t. out (filled by caller)   */

    /* scratch */
    poa_act *cols;  /* [B·N, C·P·P] unfolded patches (forward; unfolded again in backward) */
    poa_act *emb;   /* [B·N, d] patch embeddings; backward: their gradient       */
    float *pos;     /* [T, d] resampled position embedding (when resample; fp32) */
    poa_act *ln;    /* [B·T, d] a LayerNorm output (forward; recomputed in backward) */
    poa_act *x_mid; /* [B·T, d] stream after a block's attention residual (idem)   */
    poa_act *g;     /* [B·T, r·d] GELU output (forward; recomputed in backward)  */
    poa_act *xs;    /* [B·T, d] gathered branch input / compact residual        */
    poa_act *dbig;  /* [B·T, r·d]                                                */
    poa_act *dqkv;  /* [B·T, 3d]                                                 */
    poa_act *dx;    /* [B·T, d] gradient of the residual stream                  */
    poa_act *dln;   /* [B·T, d]                                                  */
    poa_act *dtmp;  /* [B·T, d]                                                  */
    poa_act *datt;  /* [B·T, d]                                                  */
    float *dpos;    /* [T, d] (fp32)                                             */
    void *attn_scratch;

    /* Backward hooks (optional; NULL after poa_vit_acts_create, kept across calls; the caller
     * sets and clears them).  A backward call runs in steps: the final norm, each executed
     * block (last first), the embeddings (cls_token, pos_embed, mask_token, patch_embed).
     * grads_done(hook_ctx, bucket): after a step, for that step's bucket (poa_param_desc.bucket;
     * the parameter table gives each of these parts a bucket of its own): its gradients receive
     * nothing more from this call.  So the buckets of the final norm, of the executed blocks
     * and of the embeddings are reported exactly once per call, in decreasing order (the
     * embeddings' even when there are no masks for mask_token); buckets of blocks the
     * sub-network skips are not reported.
     * progress(hook_ctx): after each block's MLP and attention backward, to let non-blocking
     * communication advance.  On CUDA both run on the host once the step's kernels are
     * enqueued, so an event recorded on the compute stream in them follows the writes. */
    void *hook_ctx;
    void (*grads_done)(void *ctx, int bucket);
    void (*progress)(void *ctx);
} poa_vit_acts;

/* Bytes of a workspace for the intact network, every branch computing all images, arena and
 * scratch together (the per-image figures of the memory plan). */
size_t poa_vit_acts_bytes(const poa_backend *be, const poa_model *m, int max_images, int size,
                          int train);
/* Arena and scratch bytes of a plan on backend be (its compute dtype and attention sizes; a
 * planning backend works, poa_backend_planner). */
poa_vit_sizes poa_vit_acts_sizes(const poa_backend *be, const poa_model *m, const poa_vit_plan *p);
/* A workspace for plan p.  scratch: backend memory of at least poa_vit_acts_sizes().scratch
 * bytes that the caller owns and may share with other workspaces whose calls do not overlap in
 * time, or NULL to allocate the workspace's own. */
void poa_vit_acts_create_plan(poa_backend *be, const poa_model *m, poa_vit_acts *a,
                              const poa_vit_plan *p, void *scratch);
/* The intact network, every branch on all images, own scratch. */
void poa_vit_acts_create(poa_backend *be, const poa_model *m, poa_vit_acts *a, int max_images,
                         int size, int train);
void poa_vit_acts_destroy(poa_backend *be, poa_vit_acts *a);

/* One backbone call's inputs. */
typedef struct poa_vit_input {
    const float *images;  /* [B, C, H, W] backend memory (normalised pixels); train
                             workspaces read them again in backward: keep them until then    */
    int B, H, W;          /* H, W multiples of the patch size                             */
    const uint8_t *masks; /* [B, N] backend memory, 1 = masked (docs/algorithm.md §2.2), or NULL */
    /* Drop path (docs/algorithm.md §2.5): host array [n_blocks][2][B] of per-image residual scales
     * for executed block k (in order) and branch j (0 attention, 1 MLP): n/k for the k kept images,
     * 0 for the others (poa_droppath_draw), or 1/(1 − rate) and 0 per image
     * (poa_droppath_draw_bernoulli).  A branch is computed for its kept images only; any
     * non-negative scales work (0 = dropped).
     * NULL: no drop path.  Ignored by inference workspaces (train = 0: teacher, evaluation). */
    const float *droppath;
} poa_vit_input;

/* Forward of sub-network sn on the weights w (intact layout).  Fills a->out. */
void poa_vit_forward(poa_backend *be, const poa_model *m, const poa_weights *w,
                     const poa_subnet *sn, const poa_vit_input *in, poa_vit_acts *a);
/* poa_vit_forward, also keeping intermediate outputs (the linear probe, docs/algorithm.md,
 * "Linear probing"): after executed block blocks[j] (0-based along sn->blocks, < sn->depth) the
 * residual stream goes through the final LayerNorm into out[j] (backend memory [B·T, d], ld d,
 * the layout of a->out), for j < n.  Positions may repeat and come in any order; the output
 * after block depth − 1 equals a->out bit for bit. */
void poa_vit_forward_blocks(poa_backend *be, const poa_model *m, const poa_weights *w,
                            const poa_subnet *sn, const poa_vit_input *in, const int *blocks, int n,
                            poa_act *const *out, poa_vit_acts *a);
/* Backward of the last forward on `a`, from d_out [B·T, d] (ld d; may be a->d_out): parameter
 * gradients (fp32) are accumulated (+=) into grads (same layout as the parameters); untouched
 * slices and skipped blocks receive nothing.  w must be the weights forward used.  Calls
 * a->grads_done and a->progress when set (see poa_vit_acts). */
void poa_vit_backward(poa_backend *be, const poa_model *m, const poa_weights *w, float *grads,
                      poa_vit_acts *a, const poa_act *d_out);
/* a->d_out = 0 for the current call's shape. */
void poa_vit_zero_dout(poa_backend *be, poa_vit_acts *a);

/* The k of the batch-subset drop path: max(floor(n·(1 − rate)), 1) of n images (n for rate ≤ 0),
 * as poa_droppath_draw keeps them (the workspace plan of a training step). */
int poa_droppath_kept(int n, double rate);
/* Batch-subset drop path decisions (docs/algorithm.md §2.5) for one backbone call: for every
 * executed block and branch, a uniformly random subset of k = max(floor(n·(1 − rate)), 1) of the n
 * images is kept with scale n/k; the others get 0.  scale[(blk·2 + branch)·n + b].  Drawn
 * sequentially from the stream (seed, rank, POA_RNG_DROPPATH) starting at counter `stream_index`
 * (give every backbone call its own, well separated start, e.g. call_id << 32).  rate ≤ 0 → all
 * ones. */
void poa_droppath_draw(float *scale, int n_blocks, int n, double rate, uint64_t seed, uint32_t rank,
                       uint64_t stream_index);
/* Per-sample (Bernoulli) drop path decisions, the official variant for rates ≤ 0.1: every
 * (executed block, branch, image) is kept independently with probability 1 − rate and scale
 * 1 / (1 − rate), else 0, so the attention and MLP branches get independent masks and a branch
 * may keep every image or none.  Same layout and stream as poa_droppath_draw; rate ≤ 0 → all
 * ones. */
void poa_droppath_draw_bernoulli(float *scale, int n_blocks, int n, double rate, uint64_t seed,
                                 uint32_t rank, uint64_t stream_index);

#endif
