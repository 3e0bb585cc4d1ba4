/* vit.c — ViT backbone forward/backward on views of the intact parameters (docs/algorithm.md §2,
 * §3.2–3.4). See vit.h for the API and the workspace. */
#include "model/vit.h"
#include "common/poa_error.h"
#include "common/rng.h"
#include "model/layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- weights */

poa_weights poa_weights_f32(const poa_backend *be, const float *params)
{
    POA_CHECK(be->act_dtype == POA_DT_F32,
              "fp32 weights for a backend computing in %s: keep a compute copy of the GEMM weights",
              poa_dtype_name(be->act_dtype));
    return (poa_weights){params, (const poa_act *) params};
}

/* ---------------------------------------------------------------- workspace layout */

#define ARENA_ALIGN 256 /* bytes */

typedef struct arena {
    char *base; /* NULL while only counting */
    size_t used;
} arena;

static void *take(arena *ar, size_t bytes)
{
    size_t off = ar->used;
    ar->used += (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    return ar->base ? ar->base + off : NULL;
}

static float *take_f32(arena *ar, size_t n)
{
    return take(ar, n * sizeof(float));
}

/* Shape of one call. */
typedef struct call_shape {
    int B, N, T, d, n_blocks, train;
    int kept; /* images a branch computes at most (≤ B) */
    int cpp;  /* C·P·P */
    int hid;  /* r·d   */
    int heads;
    size_t act_size;   /* bytes of an activation */
    size_t attn_saved; /* bytes per block (kept images) */
    size_t attn_scratch;
} call_shape;

static poa_act *take_act(arena *ar, const call_shape *s, size_t n)
{
    return take(ar, n * s->act_size);
}

static call_shape shape_of(const poa_backend *be, const poa_model *m, int B, int kept, int H, int W,
                           int d, int n_blocks, int train)
{
    const poa_model_config *c = &m->cfg;
    call_shape s;
    s.B = B;
    s.kept = train && kept > 0 && kept < B ? kept : B;
    s.N = poa_model_n_patches(c, H, W);
    s.T = 1 + s.N;
    s.d = d;
    s.n_blocks = n_blocks;
    s.train = train;
    s.cpp = c->in_chans * c->patch_size * c->patch_size;
    s.hid = c->mlp_ratio * d;
    s.heads = d / c->head_dim;
    s.act_size = be->act_size;
    s.attn_saved = be->nn->attention_saved_bytes(be, s.kept, s.T, s.heads, c->head_dim);
    s.attn_scratch = be->nn->attention_scratch_bytes(be, s.kept, s.T, s.heads, c->head_dim);
    return s;
}

/* Train mode: what backward reads, per executed block (the stream input for all B images; the
 * branches' saved tensors for the kept images only) and per call, from the arena `keep`. */
static void carve_train_kept(poa_vit_acts *a, const call_shape *s, arena *keep)
{
    const size_t BT = (size_t) s->B * s->T, RT = (size_t) s->kept * s->T, d = (size_t) s->d;
    a->dp_s = take_f32(keep, (size_t) s->n_blocks * 2 * s->B);
    a->dp_idx = take(keep, (size_t) s->n_blocks * 2 * BT * sizeof(int32_t));
    for (int k = 0; k < s->n_blocks; k++) {
        poa_vit_block_acts *b = &a->blk[k];
        b->x_in = take_act(keep, s, BT * d);
        b->mean1 = take_f32(keep, RT);
        b->rstd1 = take_f32(keep, RT);
        b->qkv = take_act(keep, s, RT * 3 * d);
        b->saved = take(keep, s->attn_saved);
        b->att = take_act(keep, s, RT * d);
        b->y1 = take_act(keep, s, RT * d);
        b->mean2 = take_f32(keep, RT);
        b->rstd2 = take_f32(keep, RT);
        b->h = take_act(keep, s, RT * s->hid);
        b->y2 = take_act(keep, s, RT * d);
        b->ln = b->x_mid = NULL;
    }
    a->x_final = take_act(keep, s, BT * d);
    a->mean_f = take_f32(keep, BT);
    a->rstd_f = take_f32(keep, BT);
    a->out = take_act(keep, s, BT * d);
    a->d_out = take_act(keep, s, BT * d);
}

/* Inference mode: one block set shared by every block, the stream updated in place; all of it
 * in the scratch `tmp`. */
static void carve_inference(poa_vit_acts *a, const call_shape *s, arena *tmp)
{
    const size_t BT = (size_t) s->B * s->T, d = (size_t) s->d;
    a->dp_s = NULL;
    a->dp_idx = NULL;
    poa_act *stream = take_act(tmp, s, BT * d);
    poa_vit_block_acts *b0 = &a->blk[0];
    b0->x_in = stream;
    b0->ln = take_act(tmp, s, BT * d);
    b0->mean1 = b0->mean2 = take_f32(tmp, BT);
    b0->rstd1 = b0->rstd2 = take_f32(tmp, BT);
    b0->qkv = take_act(tmp, s, BT * 3 * d);
    b0->saved = take(tmp, s->attn_saved);
    b0->att = take_act(tmp, s, BT * d);
    b0->y1 = take_act(tmp, s, BT * d);
    b0->x_mid = stream;
    b0->h = take_act(tmp, s, BT * s->hid);
    b0->y2 = take_act(tmp, s, BT * d);
    for (int k = 1; k < s->n_blocks; k++) a->blk[k] = a->blk[0];
    a->x_final = stream;
    a->mean_f = take_f32(tmp, BT);
    a->rstd_f = take_f32(tmp, BT);
    a->out = take_act(tmp, s, BT * d);
    a->d_out = NULL;
}

/* Carve every buffer of a call: what backward reads from `keep` (train mode), the rest from
 * `tmp` (or only count when the arenas' bases are NULL).  Activations take s->act_size bytes
 * each, statistics and scales 4. */
static void carve(poa_vit_acts *a, const call_shape *s, arena *keep, arena *tmp)
{
    const size_t BT = (size_t) s->B * s->T, d = (size_t) s->d;
    if (s->train)
        carve_train_kept(a, s, keep);
    else
        carve_inference(a, s, tmp);
    a->cols = take_act(tmp, s, (size_t) s->B * s->N * s->cpp);
    a->emb = take_act(tmp, s, (size_t) s->B * s->N * d);
    a->pos = take_f32(tmp, (size_t) s->T * d);
    a->g = take_act(tmp, s, BT * s->hid);
    if (s->train) {
        a->ln = take_act(tmp, s, BT * d);
        a->x_mid = take_act(tmp, s, BT * d);
        a->xs = take_act(tmp, s, BT * d);
        a->dbig = take_act(tmp, s, BT * s->hid);
        a->dqkv = take_act(tmp, s, BT * 3 * d);
        a->dx = take_act(tmp, s, BT * d);
        a->dln = take_act(tmp, s, BT * d);
        a->dtmp = take_act(tmp, s, BT * d);
        a->datt = take_act(tmp, s, BT * d);
        a->dpos = take_f32(tmp, (size_t) s->T * d);
        for (int k = 0; k < s->n_blocks; k++) a->blk[k].ln = a->ln, a->blk[k].x_mid = a->x_mid;
    } else {
        a->ln = a->x_mid = NULL;
        a->xs = a->dbig = a->dqkv = a->dx = a->dln = a->dtmp = a->datt = NULL;
        a->dpos = NULL;
    }
    a->attn_scratch = take(tmp, s->attn_scratch);
}

static poa_vit_sizes sizes_of(const poa_backend *be, const poa_model *m, int B, int kept, int size,
                              int width, int depth, int train)
{
    call_shape s = shape_of(be, m, B, kept, size, size, width, depth, train);
    poa_vit_acts tmp;
    arena keep = {NULL, 0}, scr = {NULL, 0};
    carve(&tmp, &s, &keep, &scr);
    return (poa_vit_sizes){keep.used, scr.used};
}

poa_vit_sizes poa_vit_acts_sizes(const poa_backend *be, const poa_model *m, const poa_vit_plan *p)
{
    const poa_model_config *c = &m->cfg;
    if (!p->shapes || p->n_shapes <= 0)
        return sizes_of(be, m, p->max_images, p->max_kept, p->size, c->max_embed_dim, c->max_depth,
                        p->train);
    poa_vit_sizes out = {0, 0};
    for (int i = 0; i < p->n_shapes; i++) {
        poa_vit_sizes z = sizes_of(be, m, p->max_images, p->max_kept, p->size, p->shapes[i][0],
                                   p->shapes[i][1], p->train);
        if (z.arena > out.arena) out.arena = z.arena;
        if (z.scratch > out.scratch) out.scratch = z.scratch;
    }
    return out;
}

size_t poa_vit_acts_bytes(const poa_backend *be, const poa_model *m, int max_images, int size,
                          int train)
{
    poa_vit_plan p = {max_images, 0, size, train, NULL, 0};
    poa_vit_sizes z = poa_vit_acts_sizes(be, m, &p);
    return z.arena + z.scratch;
}

static size_t aligned(size_t bytes)
{
    return (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

void poa_vit_acts_create_plan(poa_backend *be, const poa_model *m, poa_vit_acts *a,
                              const poa_vit_plan *p, void *scratch)
{
    POA_CHECK(p->max_images >= 1 && p->max_kept >= 0, "workspace for %d images, %d kept",
              p->max_images, p->max_kept);
    memset(a, 0, sizeof *a);
    const poa_vit_sizes z = poa_vit_acts_sizes(be, m, p);
    a->train = p->train;
    a->max_images = p->max_images;
    a->max_kept = p->max_kept > 0 && p->max_kept < p->max_images ? p->max_kept : p->max_images;
    a->max_size = p->size;
    a->cap = z.arena;
    a->scratch_cap = z.scratch;
    const size_t own = aligned(z.arena) + (scratch ? 0 : z.scratch);
    if (own > 0) a->own = be->iface->alloc(be, own);
    a->arena = z.arena ? a->own : NULL;
    a->scratch = scratch ? scratch : (char *) a->own + aligned(z.arena);
    a->max_tokens =
        (size_t) p->max_images * (1 + (size_t) poa_model_n_patches(&m->cfg, p->size, p->size));
    if (p->train) { /* host staging of the drop-path decisions, largest call */
        const size_t groups = (size_t) m->cfg.max_depth * 2;
        a->host_s = poa_xmalloc(groups * (size_t) p->max_images * sizeof(float));
        a->host_idx = poa_xmalloc(groups * a->max_tokens * sizeof(int32_t));
    }
}

void poa_vit_acts_create(poa_backend *be, const poa_model *m, poa_vit_acts *a, int max_images,
                         int size, int train)
{
    poa_vit_plan p = {max_images, 0, size, train, NULL, 0};
    poa_vit_acts_create_plan(be, m, a, &p, NULL);
}

void poa_vit_acts_destroy(poa_backend *be, poa_vit_acts *a)
{
    if (a->own) be->iface->free(be, a->own);
    free(a->host_s);
    free(a->host_idx);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------- forward */

/* Patch embedding, masking, cls token and position embedding (docs/algorithm.md §2.2, §2.3) → x
 * [B·T, d]. */
static void embed_forward(poa_backend *be, const poa_model *m, const poa_weights *w,
                          poa_vit_acts *a, const poa_vit_input *in, poa_act *x)
{
    const poa_model_config *c = &m->cfg;
    const int D = c->max_embed_dim, d = a->d, cpp = c->in_chans * c->patch_size * c->patch_size;
    const poa_vit_offsets *o = &m->vit;
    const float *P = w->f32;
    be->nn->patch_unfold(be, a->cols, in->images, a->B, c->in_chans, a->H, a->W, c->patch_size);
    /* conv as GEMM: all output channels are computed by the official code, then the first d are
     * kept; computing only the first d is the same (no α, docs/algorithm.md §3.2). */
    poa_act_linear_forward(be, a->emb, d, a->cols, cpp, poa_act_at(be, w->act, o->pe_w), cpp,
                           P + o->pe_b, a->B * a->N, d, cpp, 1.0f);
    const float *pos = P + o->pos_embed;
    int ldpos = D;
    if (a->resample) {
        const int M = c->img_size / c->patch_size;
        be->iface->copy(be, a->pos, pos, (size_t) d * sizeof(float)); /* cls row: never resampled */
        be->nn->pos_resample_fwd(be, a->pos + d, d, pos + D, D, M, a->gh, a->gw, d);
        pos = a->pos;
        ldpos = d;
    }
    be->nn->tokens_fwd(be, x, d, a->emb, d, P + o->cls_token, pos, ldpos, P + o->mask_token,
                       a->mask, a->B, a->N, d);
}

/* dst = src over the whole stream [B·T, d] (nothing to do in place). */
static void stream_copy(poa_backend *be, const poa_vit_acts *a, poa_act *dst, const poa_act *src)
{
    if (dst != src) be->iface->copy(be, dst, src, poa_act_bytes(be, (size_t) a->B * a->T * a->d));
}

/* Branch input: the stream itself, or the kept images' rows gathered into a->xs. */
static const poa_act *branch_input(poa_backend *be, poa_vit_acts *a, const poa_vit_branch *br,
                                   const poa_act *x)
{
    if (!br->idx) return x;
    be->nn->act_gather_rows(be, a->xs, a->d, x, a->d, br->idx, br->n_img * a->T, a->d);
    return a->xs;
}

/* x_out = x_base, plus s ⊙ γ ⊙ y on the rows of the branch's images (y: the branch's rows).
 * x_out may be x_base (an inference workspace updates the stream in place). */
static void branch_residual(poa_backend *be, poa_vit_acts *a, const poa_vit_branch *br,
                            poa_act *x_out, const poa_act *x_base, const poa_act *y,
                            const float *gamma)
{
    const int d = a->d, rows = br->n_img * a->T;
    if (!br->idx) {
        be->nn->residual_ls_fwd(be, x_out, d, x_base, d, y, d, gamma, br->s, br->n_img, a->T, d);
        return;
    }
    stream_copy(be, a, x_out, x_base);
    be->nn->residual_ls_fwd(be, a->xs, d, NULL, 0, y, d, gamma, br->s, br->n_img, a->T, d);
    be->nn->act_scatter_add_rows(be, x_out, d, a->xs, d, br->idx, rows, d);
}

/* x_mid = x_in + s γ1 ⊙ y1 on the rows of the attention branch's images (x_in itself when the
 * branch dropped every image): the forward's residual, and backward's recomputation of x_mid
 * with the same ops (bit-identical). */
static void attn_residual(poa_backend *be, poa_vit_acts *a, const poa_vit_block_acts *b,
                          const float *gamma)
{
    if (b->br[0].n_img == 0) {
        stream_copy(be, a, b->x_mid, b->x_in);
        return;
    }
    branch_residual(be, a, &b->br[0], b->x_mid, b->x_in, b->y1, gamma);
}

/* Attention branch of block i (docs/algorithm.md §2.4): x_mid = x_in + s γ1 ⊙
 * proj(Attn(qkv(LN1(x_in)))). */
static void attn_forward(poa_backend *be, const poa_model *m, const poa_weights *w, int i,
                         poa_vit_acts *a, poa_vit_block_acts *b)
{
    const poa_model_config *c = &m->cfg;
    const poa_block_offsets *o = &m->blocks[i];
    const poa_vit_branch *br = &b->br[0];
    const int D = c->max_embed_dim, d = a->d, R = br->n_img * a->T;
    const float al = a->alpha;
    const float *P = w->f32;
    if (R == 0) { /* every image dropped: the stream passes through */
        attn_residual(be, a, b, P + o->ls1);
        return;
    }
    const poa_act *x = branch_input(be, a, br, b->x_in);
    be->nn->layernorm_fwd(be, b->ln, d, b->mean1, b->rstd1, x, d, P + o->norm1_w, P + o->norm1_b, R,
                          d, c->ln_eps);
    if (d == D) { /* intact: q, k, v chunks are adjacent, one GEMM */
        poa_act_linear_forward(be, b->qkv, 3 * d, b->ln, d, poa_act_at(be, w->act, o->qkv_w), D,
                               P + o->qkv_b, R, 3 * d, d, al);
    } else { /* elastic: chunk t uses rows t·D_max + [0, d) (docs/algorithm.md §3.2) */
        for (int t = 0; t < 3; t++)
            poa_act_linear_forward(be, poa_act_at(be, b->qkv, t * d), 3 * d, b->ln, d,
                                   poa_act_at(be, w->act, o->qkv_w + (size_t) t * D * D), D,
                                   P + o->qkv_b + (size_t) t * D, R, d, d, al);
    }
    be->nn->attention_fwd(be, b->att, d, b->saved, b->qkv, 3 * d, br->n_img, a->T, d / c->head_dim,
                          c->head_dim, (float) (1.0 / sqrt((double) c->head_dim)), a->attn_scratch);
    poa_act_linear_forward(be, b->y1, d, b->att, d, poa_act_at(be, w->act, o->proj_w), D,
                           P + o->proj_b, R, d, d, al);
    attn_residual(be, a, b, P + o->ls1);
}

/* MLP branch of block i: x_out = x_mid + s γ2 ⊙ fc2(GELU(fc1(LN2(x_mid)))). */
static void mlp_forward(poa_backend *be, const poa_model *m, const poa_weights *w, int i,
                        poa_vit_acts *a, poa_vit_block_acts *b, poa_act *x_out)
{
    const poa_model_config *c = &m->cfg;
    const poa_block_offsets *o = &m->blocks[i];
    const poa_vit_branch *br = &b->br[1];
    const int D = c->max_embed_dim, d = a->d, R = br->n_img * a->T, hid = c->mlp_ratio * d;
    const float al = a->alpha;
    const float *P = w->f32;
    if (R == 0) {
        stream_copy(be, a, x_out, b->x_mid);
        return;
    }
    const poa_act *x = branch_input(be, a, br, b->x_mid);
    be->nn->layernorm_fwd(be, b->ln, d, b->mean2, b->rstd2, x, d, P + o->norm2_w, P + o->norm2_b, R,
                          d, c->ln_eps);
    poa_act_linear_forward(be, b->h, hid, b->ln, d, poa_act_at(be, w->act, o->fc1_w), D,
                           P + o->fc1_b, R, hid, d, al);
    be->nn->act_gelu_fwd(be, a->g, b->h, (size_t) R * hid);
    poa_act_linear_forward(be, b->y2, d, a->g, hid, poa_act_at(be, w->act, o->fc2_w),
                           c->mlp_ratio * D, P + o->fc2_b, R, d, hid, al);
    branch_residual(be, a, br, x_out, b->x_mid, b->y2, P + o->ls2);
}

/* Drop-path decisions of the call → per branch: kept images, their rows and scales (uploaded
 * once).  A branch that keeps every image runs without gathering. */
static void setup_branches(poa_backend *be, poa_vit_acts *a, const float *droppath, int kept_cap)
{
    const int B = a->B, T = a->T, groups = a->sn.depth * 2;
    for (int g = 0; g < groups; g++) {
        poa_vit_branch *br = &a->blk[g / 2].br[g % 2];
        *br = (poa_vit_branch){B, NULL, NULL};
        if (!droppath) continue;
        const float *s = droppath + (size_t) g * B;
        float *hs = a->host_s + (size_t) g * B;
        int32_t *hi = a->host_idx + (size_t) g * B * T;
        int kept = 0, all_one = 1;
        for (int img = 0; img < B; img++) {
            POA_CHECK(s[img] >= 0.0f, "negative drop-path scale %g", s[img]);
            if (s[img] == 0.0f) continue;
            all_one &= s[img] == 1.0f;
            hs[kept] = s[img];
            for (int t = 0; t < T; t++) hi[(size_t) kept * T + t] = img * T + t;
            kept++;
        }
        POA_CHECK(kept <= kept_cap,
                  "drop path keeps %d of %d images in branch %d of block %d, the workspace is "
                  "planned for at most %d (poa_vit_plan.max_kept)",
                  kept, B, g % 2, g / 2, kept_cap);
        br->n_img = kept;
        if (kept == B && all_one) continue;
        br->s = a->dp_s + (size_t) g * B;
        if (kept < B) br->idx = a->dp_idx + (size_t) g * B * T;
    }
    if (droppath) {
        be->iface->upload(be, a->dp_s, a->host_s, (size_t) groups * B * sizeof(float));
        be->iface->upload(be, a->dp_idx, a->host_idx, (size_t) groups * B * T * sizeof(int32_t));
    }
}

/* out = the final LayerNorm of the stream x (its statistics in a->mean_f / rstd_f: an
 * intermediate output's are overwritten by the last call, which is the one backward reads). */
static void final_norm(poa_backend *be, const poa_model *m, const poa_weights *w, poa_vit_acts *a,
                       const poa_act *x, poa_act *out)
{
    be->nn->layernorm_fwd(be, out, a->d, a->mean_f, a->rstd_f, x, a->d, w->f32 + m->vit.norm_w,
                          w->f32 + m->vit.norm_b, a->B * a->T, a->d, m->cfg.ln_eps);
}

void poa_vit_forward(poa_backend *be, const poa_model *m, const poa_weights *w,
                     const poa_subnet *sn, const poa_vit_input *in, poa_vit_acts *a)
{
    poa_vit_forward_blocks(be, m, w, sn, in, NULL, 0, NULL, a);
}

void poa_vit_forward_blocks(poa_backend *be, const poa_model *m, const poa_weights *w,
                            const poa_subnet *sn, const poa_vit_input *in, const int *blocks, int n,
                            poa_act *const *out, poa_vit_acts *a)
{
    const poa_model_config *c = &m->cfg;
    const int P = c->patch_size, M = c->img_size / P;
    POA_CHECK(in->H % P == 0 && in->W % P == 0, "image %dx%d is not a multiple of patch %d", in->H,
              in->W, P);
    POA_CHECK(in->B >= 1 && in->B <= a->max_images, "%d images, workspace planned for %d", in->B,
              a->max_images);
    POA_CHECK(sn->width <= c->max_embed_dim && sn->depth <= c->max_depth, "bad sub-network");
    a->sn = *sn;
    a->B = in->B;
    a->H = in->H;
    a->W = in->W;
    a->gh = in->H / P;
    a->gw = in->W / P;
    a->N = a->gh * a->gw;
    a->T = 1 + a->N;
    a->d = sn->width;
    a->alpha = (float) ((double) c->max_embed_dim / (double) sn->width);
    a->resample = a->gh != M || a->gw != M;
    a->mask = in->masks;
    a->images = in->images;

    call_shape s = shape_of(be, m, a->B, a->max_kept, a->H, a->W, a->d, sn->depth, a->train);
    arena keep = {a->arena, 0}, tmp = {a->scratch, 0};
    carve(a, &s, &keep, &tmp);
    POA_CHECK((size_t) a->B * a->T <= a->max_tokens,
              "backbone call of %d images x %d tokens, workspace planned for %zu token rows", a->B,
              a->T, a->max_tokens);
    POA_CHECK(keep.used <= a->cap && tmp.used <= a->scratch_cap,
              "backbone workspace too small for %d images of %dx%d, sub-network %dx%d: %zu + %zu "
              "bytes needed, %zu + %zu planned (B_max %d, size %d)",
              a->B, a->H, a->W, sn->width, sn->depth, keep.used, tmp.used, a->cap, a->scratch_cap,
              a->max_images, a->max_size);
    setup_branches(be, a, a->train ? in->droppath : NULL, s.kept);

    for (int j = 0; j < n; j++)
        POA_CHECK(blocks[j] >= 0 && blocks[j] < sn->depth,
                  "intermediate output after block %d of a sub-network of depth %d", blocks[j],
                  sn->depth);
    embed_forward(be, m, w, a, in, a->blk[0].x_in);
    for (int k = 0; k < sn->depth; k++) {
        poa_act *x_out = k + 1 < sn->depth ? a->blk[k + 1].x_in : a->x_final;
        attn_forward(be, m, w, sn->blocks[k], a, &a->blk[k]);
        mlp_forward(be, m, w, sn->blocks[k], a, &a->blk[k], x_out);
        for (int j = 0; j < n; j++)
            if (blocks[j] == k) final_norm(be, m, w, a, x_out, out[j]);
    }
    final_norm(be, m, w, a, a->x_final, a->out);
}

/* ---------------------------------------------------------------- backward */

/* dy (=) of a branch's output rows from the stream gradient dx: s γ ⊙ dx[rows]; dγ (+=). */
static void branch_residual_bwd(poa_backend *be, poa_vit_acts *a, const poa_vit_branch *br,
                                poa_act *dy, float *dgamma, const poa_act *y, const float *gamma)
{
    const int d = a->d;
    const poa_act *dx = a->dx;
    if (br->idx) {
        be->nn->act_gather_rows(be, a->dtmp, d, a->dx, d, br->idx, br->n_img * a->T, d);
        dx = a->dtmp;
    }
    be->nn->residual_ls_bwd(be, dy, d, dgamma, dx, d, y, d, gamma, br->s, br->n_img, a->T, d);
}

/* Stream gradient += LayerNorm backward of the branch (its input rows re-gathered). */
static void branch_layernorm_bwd(poa_backend *be, poa_vit_acts *a, const poa_vit_branch *br,
                                 const poa_act *x, const float *mean, const float *rstd,
                                 const float *w, float *dw, float *db)
{
    const int d = a->d, R = br->n_img * a->T;
    const poa_act *xin = branch_input(be, a, br, x);
    if (!br->idx) { /* every image kept: add straight onto the stream */
        be->nn->layernorm_bwd(be, a->dx, d, 1.0f, dw, db, a->dln, d, xin, d, mean, rstd, w, R, d);
        return;
    }
    be->nn->layernorm_bwd(be, a->dtmp, d, 0.0f, dw, db, a->dln, d, xin, d, mean, rstd, w, R, d);
    be->nn->act_scatter_add_rows(be, a->dx, d, a->dtmp, d, br->idx, R, d);
}

/* A branch's LayerNorm output again, into b->ln: forward's op on the same input rows and
 * parameters, so the values (and the statistics it rewrites) are bit-identical to forward's. */
static void branch_layernorm_again(poa_backend *be, const poa_model *m, poa_vit_acts *a,
                                   const poa_vit_block_acts *b, const poa_vit_branch *br,
                                   const poa_act *x, float *mean, float *rstd, const float *w,
                                   const float *bias)
{
    const int d = a->d, R = br->n_img * a->T;
    const poa_act *xin = branch_input(be, a, br, x);
    be->nn->layernorm_fwd(be, b->ln, d, mean, rstd, xin, d, w, bias, R, d, m->cfg.ln_eps);
}

/* MLP branch backward: a->dx = dL/dx_out on entry, dL/dx_mid on exit. */
static void mlp_backward(poa_backend *be, const poa_model *m, const poa_weights *w, float *G, int i,
                         poa_vit_acts *a, const poa_vit_block_acts *b)
{
    const poa_model_config *c = &m->cfg;
    const poa_block_offsets *o = &m->blocks[i];
    const poa_vit_branch *br = &b->br[1];
    const int D = c->max_embed_dim, d = a->d, R = br->n_img * a->T, hid = c->mlp_ratio * d;
    const float al = a->alpha;
    const float *P = w->f32;
    if (R == 0) return;
    attn_residual(be, a, b, P + o->ls1); /* x_mid, not kept from forward */
    branch_residual_bwd(be, a, br, a->dln, G + o->ls2, b->y2, P + o->ls2);
    /* fc2's input gradient first: it does not need GELU(h), which is not saved; one pass then
     * turns dL/dGELU into dL/dh in place and recomputes GELU(h) for fc2's weight gradient. */
    poa_act_linear_backward_input(be, a->dbig, hid, 0.0f, a->dln, d,
                                  poa_act_at(be, w->act, o->fc2_w), c->mlp_ratio * D, R, d, hid,
                                  al);
    be->nn->act_gelu_bwd(be, a->dbig, a->g, a->dbig, b->h, (size_t) R * hid);
    poa_act_linear_backward_params(be, G + o->fc2_w, G + o->fc2_b, a->dln, d, a->g, hid,
                                   c->mlp_ratio * D, R, d, hid, al);
    branch_layernorm_again(be, m, a, b, br, b->x_mid, b->mean2, b->rstd2, P + o->norm2_w,
                           P + o->norm2_b);
    poa_act_linear_backward(be, a->dln, d, 0.0f, G + o->fc1_w, G + o->fc1_b, a->dbig, hid, b->ln, d,
                            poa_act_at(be, w->act, o->fc1_w), D, R, hid, d, al);
    branch_layernorm_bwd(be, a, br, b->x_mid, b->mean2, b->rstd2, P + o->norm2_w, G + o->norm2_w,
                         G + o->norm2_b);
}

/* Attention branch backward: a->dx = dL/dx_mid on entry, dL/dx_in on exit. */
static void attn_backward(poa_backend *be, const poa_model *m, const poa_weights *w, float *G,
                          int i, poa_vit_acts *a, const poa_vit_block_acts *b)
{
    const poa_model_config *c = &m->cfg;
    const poa_block_offsets *o = &m->blocks[i];
    const poa_vit_branch *br = &b->br[0];
    const int D = c->max_embed_dim, d = a->d, R = br->n_img * a->T;
    const float al = a->alpha;
    const float *P = w->f32;
    if (R == 0) return;
    branch_residual_bwd(be, a, br, a->dln, G + o->ls1, b->y1, P + o->ls1);
    poa_act_linear_backward(be, a->datt, d, 0.0f, G + o->proj_w, G + o->proj_b, a->dln, d, b->att,
                            d, poa_act_at(be, w->act, o->proj_w), D, R, d, d, al);
    be->nn->attention_bwd(be, a->dqkv, 3 * d, a->datt, d, b->qkv, 3 * d, b->saved, br->n_img, a->T,
                          d / c->head_dim, c->head_dim, (float) (1.0 / sqrt((double) c->head_dim)),
                          a->attn_scratch);
    branch_layernorm_again(be, m, a, b, br, b->x_in, b->mean1, b->rstd1, P + o->norm1_w,
                           P + o->norm1_b);
    if (d == D) {
        poa_act_linear_backward(be, a->dln, d, 0.0f, G + o->qkv_w, G + o->qkv_b, a->dqkv, 3 * d,
                                b->ln, d, poa_act_at(be, w->act, o->qkv_w), D, R, 3 * d, d, al);
    } else {
        for (int t = 0; t < 3; t++)
            poa_act_linear_backward(
                be, a->dln, d, t ? 1.0f : 0.0f, G + o->qkv_w + (size_t) t * D * D,
                G + o->qkv_b + (size_t) t * D, poa_act_at(be, a->dqkv, t * d), 3 * d, b->ln, d,
                poa_act_at(be, w->act, o->qkv_w + (size_t) t * D * D), D, R, d, d, al);
    }
    branch_layernorm_bwd(be, a, br, b->x_in, b->mean1, b->rstd1, P + o->norm1_w, G + o->norm1_w,
                         G + o->norm1_b);
}

/* Tokens and patch embedding backward from a->dx = dL/dx0. */
static void embed_backward(poa_backend *be, const poa_model *m, float *G, poa_vit_acts *a)
{
    const poa_model_config *c = &m->cfg;
    const poa_vit_offsets *o = &m->vit;
    const int D = c->max_embed_dim, d = a->d, cpp = c->in_chans * c->patch_size * c->patch_size;
    float *dpos = G + o->pos_embed;
    int lddpos = D;
    if (a->resample) {
        be->iface->zero(be, a->dpos, (size_t) a->T * d * sizeof(float));
        dpos = a->dpos;
        lddpos = d;
    }
    be->nn->tokens_bwd(be, a->emb, d, G + o->cls_token, dpos, lddpos, G + o->mask_token, a->dx, d,
                       a->mask, a->B, a->N, d);
    if (a->resample) {
        const int M = c->img_size / c->patch_size;
        be->nn->axpy(be, G + o->pos_embed, 1.0f, a->dpos, (size_t) d);
        be->nn->pos_resample_bwd(be, G + o->pos_embed + D, D, a->dpos + d, d, M, a->gh, a->gw, d);
    }
    /* the unfolded patches are scratch: unfold the call's pixels again (the same values) */
    be->nn->patch_unfold(be, a->cols, a->images, a->B, c->in_chans, a->H, a->W, c->patch_size);
    poa_act_linear_backward_params(be, G + o->pe_w, G + o->pe_b, a->emb, d, a->cols, cpp, cpp,
                                   a->B * a->N, d, cpp, 1.0f);
}

/* ---------------------------------------------------------------- backward hooks */

/* Bucket of the parameter at float offset `off` (table offsets ascend). */
static int bucket_at(const poa_model *m, size_t off)
{
    const poa_param_table *t = &m->table;
    int lo = 0, hi = t->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (t->p[mid].offset == off) return t->p[mid].bucket;
        if (t->p[mid].offset < off)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    POA_FATAL("no parameter at offset %zu", off);
}

/* After backward step `st` (0: final norm; 1 + j: the j-th block visited, i.e. executed block
 * depth − 1 − j; depth + 1: embeddings): grads_done for its bucket.  The parameter table gives
 * each of these parts a bucket of its own (model.c: embeddings 0, block i 1 + i, final norm
 * L + 1), so no later step of the pass writes it; tests/step/test_mpi_step_overlap checks that
 * every announced bucket is final. */
static void step_done(const poa_model *m, poa_vit_acts *a, int st)
{
    if (!a->grads_done) return;
    size_t first; /* offset of the step's first parameter */
    if (st == 0)
        first = m->vit.norm_w;
    else if (st <= a->sn.depth)
        first = m->blocks[a->sn.blocks[a->sn.depth - st]].norm1_w;
    else
        first = m->vit.cls_token;
    a->grads_done(a->hook_ctx, bucket_at(m, first));
}

static void progress(poa_vit_acts *a)
{
    if (a->progress) a->progress(a->hook_ctx);
}

void poa_vit_backward(poa_backend *be, const poa_model *m, const poa_weights *w, float *grads,
                      poa_vit_acts *a, const poa_act *d_out)
{
    POA_CHECK(a->train, "backward on an inference-only workspace");
    const int BT = a->B * a->T, d = a->d;
    be->nn->layernorm_bwd(be, a->dx, d, 0.0f, grads + m->vit.norm_w, grads + m->vit.norm_b, d_out,
                          d, a->x_final, d, a->mean_f, a->rstd_f, w->f32 + m->vit.norm_w, BT, d);
    step_done(m, a, 0);
    for (int k = a->sn.depth - 1; k >= 0; k--) {
        mlp_backward(be, m, w, grads, a->sn.blocks[k], a, &a->blk[k]);
        progress(a);
        attn_backward(be, m, w, grads, a->sn.blocks[k], a, &a->blk[k]);
        step_done(m, a, a->sn.depth - k);
        progress(a);
    }
    embed_backward(be, m, grads, a);
    step_done(m, a, a->sn.depth + 1);
}

void poa_vit_zero_dout(poa_backend *be, poa_vit_acts *a)
{
    be->iface->zero(be, a->d_out, poa_act_bytes(be, (size_t) a->B * a->T * a->d));
}

/* ---------------------------------------------------------------- drop path */

int poa_droppath_kept(int n, double rate)
{
    if (rate <= 0.0) return n;
    int k = (int) ((double) n * (1.0 - rate));
    return k < 1 ? 1 : k;
}

void poa_droppath_draw(float *scale, int n_blocks, int n, double rate, uint64_t seed, uint32_t rank,
                       uint64_t stream_index)
{
    if (rate <= 0.0) {
        for (size_t i = 0; i < (size_t) n_blocks * 2 * n; i++) scale[i] = 1.0f;
        return;
    }
    /* k = max(int(n · (1 − rate)), 1) and scale n / k, as the official code computes them. */
    const int k = poa_droppath_kept(n, rate);
    const float keep_scale = (float) ((double) n / (double) k);
    poa_rng r;
    poa_rng_init(&r, seed, rank, POA_RNG_DROPPATH, stream_index);
    uint32_t *perm = poa_xmalloc((size_t) n * sizeof *perm);
    for (int g = 0; g < n_blocks * 2; g++) {
        for (int b = 0; b < n; b++) perm[b] = (uint32_t) b;
        poa_rng_shuffle_u32(&r, perm, (uint64_t) n);
        float *s = scale + (size_t) g * n;
        for (int b = 0; b < n; b++) s[b] = 0.0f;
        for (int j = 0; j < k; j++) s[perm[j]] = keep_scale;
    }
    free(perm);
}

void poa_droppath_draw_bernoulli(float *scale, int n_blocks, int n, double rate, uint64_t seed,
                                 uint32_t rank, uint64_t stream_index)
{
    const size_t total = (size_t) n_blocks * 2 * n;
    if (rate <= 0.0) {
        for (size_t i = 0; i < total; i++) scale[i] = 1.0f;
        return;
    }
    /* Official per-sample drop path: keep with probability 1 − rate, kept scaled by
     * 1 / (1 − rate); one fresh draw per (block, branch, image). */
    const double keep = 1.0 - rate;
    const float keep_scale = keep > 0.0 ? (float) (1.0 / keep) : 0.0f;
    poa_rng r;
    poa_rng_init(&r, seed, rank, POA_RNG_DROPPATH, stream_index);
    for (size_t i = 0; i < total; i++) scale[i] = poa_rng_uniform(&r) < keep ? keep_scale : 0.0f;
}
