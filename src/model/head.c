/* head.c — projection heads with the elastic first layer (docs/algorithm.md §3.2, §5).
 * See head.h. */
#include "model/head.h"
#include "common/poa_error.h"
#include "model/layers.h"

#include <string.h>

#define ALIGN_FLOATS 64
#define L2_EPS       1e-12f /* F.normalize eps for fp32 tensors (docs/algorithm.md §5.1) */

static size_t round_up(size_t n)
{
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

/* ---------------------------------------------------------------- prototypes */

static size_t weights_floats(const poa_model *m, int with_grad)
{
    const poa_model_config *c = &m->cfg;
    size_t total = 0;
    for (int h = 0; h < c->n_heads; h++) {
        size_t K = (size_t) c->head_n_prototypes[h];
        total += round_up(K * c->head_bottleneck_dim) * (with_grad ? 2 : 1) + round_up(K);
    }
    return total;
}

size_t poa_head_weights_bytes(const poa_model *m, int with_grad)
{
    return weights_floats(m, with_grad) * sizeof(float);
}

void poa_head_weights_create(poa_backend *be, const poa_model *m, poa_head_weights *hw,
                             int with_grad)
{
    const poa_model_config *c = &m->cfg;
    memset(hw, 0, sizeof *hw);
    hw->with_grad = with_grad;
    const size_t total = weights_floats(m, with_grad);
    if (total == 0) return;
    hw->arena = be->iface->alloc(be, total * sizeof(float));
    float *p = hw->arena;
    for (int h = 0; h < c->n_heads; h++) {
        size_t K = (size_t) c->head_n_prototypes[h];
        hw->W[h] = p;
        p += round_up(K * c->head_bottleneck_dim);
        hw->vnorm[h] = p;
        p += round_up(K);
        if (with_grad) {
            hw->dW[h] = p;
            p += round_up(K * c->head_bottleneck_dim);
        }
    }
}

void poa_head_weights_destroy(poa_backend *be, poa_head_weights *hw)
{
    if (hw->arena) be->iface->free(be, hw->arena);
    memset(hw, 0, sizeof *hw);
}

void poa_head_weights_forward(poa_backend *be, const poa_model *m, const float *params,
                              poa_head_weights *hw)
{
    const poa_model_config *c = &m->cfg;
    for (int h = 0; h < c->n_heads; h++) {
        const int K = c->head_n_prototypes[h], bn = c->head_bottleneck_dim;
        be->nn->weightnorm_fwd(be, hw->W[h], hw->vnorm[h], params + m->heads[h].g,
                               params + m->heads[h].v, K, bn);
        if (hw->with_grad) be->iface->zero(be, hw->dW[h], (size_t) K * bn * sizeof(float));
    }
}

void poa_head_weights_backward(poa_backend *be, const poa_model *m, const float *params,
                               float *grads, const poa_head_weights *hw)
{
    const poa_model_config *c = &m->cfg;
    POA_CHECK(hw->with_grad, "head weights without gradient buffers");
    for (int h = 0; h < c->n_heads; h++) {
        const poa_head_offsets *o = &m->heads[h];
        be->nn->weightnorm_bwd(be, grads + o->g, grads + o->v, hw->dW[h], params + o->g,
                               params + o->v, hw->vnorm[h], c->head_n_prototypes[h],
                               c->head_bottleneck_dim);
    }
}

/* ---------------------------------------------------------------- activations */

typedef struct head_arena {
    float *base;
    size_t used;
} head_arena;

static float *take(head_arena *ar, size_t n)
{
    size_t off = ar->used;
    ar->used += round_up(n);
    return ar->base ? ar->base + off : NULL;
}

static void carve(const poa_model *m, poa_head_acts *a, int rows, int train, head_arena *ar)
{
    const size_t R = (size_t) rows, hid = (size_t) m->cfg.head_hidden_dim;
    const size_t bn = (size_t) m->cfg.head_bottleneck_dim;
    a->h1 = take(ar, R * hid);
    a->g1 = take(ar, R * hid);
    a->h2 = take(ar, R * hid);
    a->g2 = take(ar, R * hid);
    a->u = take(ar, R * bn);
    a->un = take(ar, R * bn);
    a->norms = take(ar, R);
    a->dA = train ? take(ar, R * hid) : NULL;
    a->dB = train ? take(ar, R * hid) : NULL;
    a->du = train ? take(ar, R * bn) : NULL;
    a->dun = train ? take(ar, R * bn) : NULL;
}

size_t poa_head_acts_floats(const poa_model *m, int max_rows, int train)
{
    poa_head_acts tmp;
    head_arena ar = {NULL, 0};
    carve(m, &tmp, max_rows, train, &ar);
    return ar.used;
}

void poa_head_acts_create(poa_backend *be, const poa_model *m, poa_head_acts *a, int max_rows,
                          int train)
{
    memset(a, 0, sizeof *a);
    a->train = train;
    a->max_rows = max_rows;
    a->arena = be->iface->alloc(be, poa_head_acts_floats(m, max_rows, train) * sizeof(float));
}

void poa_head_acts_create_at(const poa_model *m, poa_head_acts *a, int max_rows, int train,
                             float *arena)
{
    (void) m;
    memset(a, 0, sizeof *a);
    a->train = train;
    a->max_rows = max_rows;
    a->arena = arena;
    a->borrowed = 1;
}

void poa_head_acts_destroy(poa_backend *be, poa_head_acts *a)
{
    if (a->arena && !a->borrowed) be->iface->free(be, a->arena);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------- forward / backward */

void poa_head_forward(poa_backend *be, const poa_model *m, const float *params,
                      const poa_head_weights *hw, int head, int width, const float *z, int ldz,
                      int rows, poa_head_acts *a, float *logits, int ldl)
{
    const poa_model_config *c = &m->cfg;
    POA_CHECK(head >= 0 && head < c->n_heads, "head %d of %d", head, c->n_heads);
    POA_CHECK(rows >= 0 && rows <= a->max_rows, "%d head rows, workspace planned for %d", rows,
              a->max_rows);
    POA_CHECK(width >= 1 && width <= c->max_embed_dim, "head input width %d", width);
    const poa_head_offsets *o = &m->heads[head];
    const int D = c->max_embed_dim, hid = c->head_hidden_dim, bn = c->head_bottleneck_dim;
    const int K = c->head_n_prototypes[head];
    head_arena ar = {a->arena, 0};
    carve(m, a, rows, a->train, &ar);
    a->head = head;
    a->width = width;
    a->rows = rows;
    a->alpha = (float) ((double) D / (double) width);
    a->z = z;
    a->ldz = ldz;
    if (rows == 0) return;

    /* first layer: W1[:, :width] × α (docs/algorithm.md §3.2); all hidden outputs kept */
    poa_linear_forward(be, a->h1, hid, z, ldz, params + o->w1, D, params + o->b1, rows, hid, width,
                       a->alpha);
    be->nn->gelu_fwd(be, a->g1, a->h1, (size_t) rows * hid);
    poa_linear_forward(be, a->h2, hid, a->g1, hid, params + o->w2, hid, params + o->b2, rows, hid,
                       hid, 1.0f);
    be->nn->gelu_fwd(be, a->g2, a->h2, (size_t) rows * hid);
    poa_linear_forward(be, a->u, bn, a->g2, hid, params + o->w3, hid, params + o->b3, rows, bn, hid,
                       1.0f);
    be->nn->l2norm_fwd(be, a->un, bn, a->norms, a->u, bn, rows, bn, L2_EPS);
    poa_linear_forward(be, logits, ldl, a->un, bn, hw->W[head], bn, NULL, rows, K, bn, 1.0f);
}

void poa_head_backward(poa_backend *be, const poa_model *m, const float *params, float *grads,
                       poa_head_weights *hw, poa_head_acts *a, const float *dlogits, int ldd,
                       float *dz, int lddz)
{
    const poa_model_config *c = &m->cfg;
    POA_CHECK(a->train && hw->with_grad, "head backward without gradient workspaces");
    const poa_head_offsets *o = &m->heads[a->head];
    const int D = c->max_embed_dim, hid = c->head_hidden_dim, bn = c->head_bottleneck_dim;
    const int K = c->head_n_prototypes[a->head], R = a->rows;
    const size_t n_hid = (size_t) R * hid;
    if (R == 0) return;

    /* last layer: dWn += dlogitsᵀ û;  dû = dlogits · Wn */
    poa_linear_backward(be, a->dun, bn, 0.0f, hw->dW[a->head], NULL, dlogits, ldd, a->un, bn,
                        hw->W[a->head], bn, R, K, bn, 1.0f);
    be->nn->l2norm_bwd(be, a->du, bn, a->dun, bn, a->u, bn, a->norms, R, bn, L2_EPS);
    poa_linear_backward(be, a->dA, hid, 0.0f, grads + o->w3, grads + o->b3, a->du, bn, a->g2, hid,
                        params + o->w3, hid, R, bn, hid, 1.0f);
    be->nn->gelu_bwd(be, a->dB, NULL, a->dA, a->h2, n_hid);
    poa_linear_backward(be, a->dA, hid, 0.0f, grads + o->w2, grads + o->b2, a->dB, hid, a->g1, hid,
                        params + o->w2, hid, R, hid, hid, 1.0f);
    be->nn->gelu_bwd(be, a->dB, NULL, a->dA, a->h1, n_hid);
    poa_linear_backward(be, dz, lddz, 1.0f, grads + o->w1, grads + o->b1, a->dB, hid, a->z, a->ldz,
                        params + o->w1, D, R, hid, a->width, a->alpha);
}
