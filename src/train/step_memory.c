/* step_memory.c — the memory plan of a POA step (step_layout.h, step.h "poa_step_memory"). */
#include "train/step_layout.h"
#include "common/poa_error.h"
#include "model/head.h"
#include "model/loss.h"

#include <stdlib.h>
#include <string.h>

#define REGION_ALIGN 256 /* bytes, as every backend allocation */

static size_t align_up(size_t bytes)
{
    return (bytes + REGION_ALIGN - 1) / REGION_ALIGN * REGION_ALIGN;
}

/* Offset of a buffer of `bytes` at *at in a region, *at advanced past it. */
static size_t place(size_t *at, size_t bytes)
{
    const size_t off = *at;
    *at += align_up(bytes);
    return off;
}

static size_t max2(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* Every (width, depth) of the elastic set except the intact network: the sampler never draws it
 * (docs/algorithm.md §3.5), so the elastic workspaces are planned for the largest of the others. */
static void elastic_shapes(const poa_model *m, poa_step_layout *L)
{
    int widths[64], depths[POA_MODEL_MAX_DEPTH];
    const int nw = poa_model_widths(&m->cfg, widths, 64);
    const int nd = poa_model_depths(&m->cfg, depths, POA_MODEL_MAX_DEPTH);
    POA_CHECK(nw <= 64 && nd <= POA_MODEL_MAX_DEPTH, "too many elastic widths/depths");
    L->es_shapes = poa_xcalloc((size_t) nw * nd + 1, sizeof *L->es_shapes);
    L->n_es_shapes = 0;
    for (int u = 0; u < nw; u++)
        for (int v = 0; v < nd; v++) {
            if (widths[u] == m->cfg.max_embed_dim && depths[v] == m->cfg.max_depth) continue;
            L->es_shapes[L->n_es_shapes][0] = widths[u];
            L->es_shapes[L->n_es_shapes][1] = depths[v];
            L->n_es_shapes++;
        }
    if (L->n_es_shapes == 0) { /* a model with no elastic range: the intact network only */
        free(L->es_shapes);
        L->es_shapes = NULL;
    }
}

/* The (width, depth) whose workspace is the largest of the planned shapes (for the report). */
static void largest_shape(const poa_backend *be, const poa_model *m, const poa_step_layout *L,
                          const poa_vit_plan *p, int *w, int *d)
{
    *w = m->cfg.max_embed_dim, *d = m->cfg.max_depth;
    if (!L->es_shapes) return;
    size_t best = 0;
    for (int i = 0; i < L->n_es_shapes; i++) {
        poa_vit_plan one = *p;
        one.shapes = (const int(*)[2]) & L->es_shapes[i];
        one.n_shapes = 1;
        poa_vit_sizes z = poa_vit_acts_sizes(be, m, &one);
        if (z.arena > best) best = z.arena, *w = L->es_shapes[i][0], *d = L->es_shapes[i][1];
    }
}

static void plan_backbone(const poa_backend *be, const poa_model *m, const poa_step_config *cfg,
                          poa_step_layout *L)
{
    const int B = cfg->B, V = cfg->n_local;
    const int subset = cfg->drop_path_rate > 0 && !cfg->drop_path_bernoulli && !cfg->overrides;
    const int n[2] = {2 * B, V * B};
    for (int x = 0; x < 2; x++) {
        L->mem.images[x] = n[x];
        L->mem.kept[x] = subset ? poa_droppath_kept(n[x], cfg->drop_path_rate) : n[x];
    }
    if (!cfg->overrides) elastic_shapes(m, L);
    L->teacher = (poa_vit_plan){2 * B, 0, cfg->global_size, 0, NULL, 0};
    for (int c = 0; c < POA_STEP_N_CALLS; c++) {
        const int local = c == POA_STEP_CALL_IS_LOCAL || c == POA_STEP_CALL_ES_LOCAL;
        const int elastic = c >= POA_STEP_CALL_ES_GLOBAL;
        L->call[c] = (poa_vit_plan){n[local],
                                    L->mem.kept[local],
                                    local ? cfg->local_size : cfg->global_size,
                                    1,
                                    elastic ? (const int(*)[2]) L->es_shapes : NULL,
                                    elastic ? L->n_es_shapes : 0};
        if (local && V == 0) continue;
        poa_vit_sizes z = poa_vit_acts_sizes(be, m, &L->call[c]);
        L->mem.student[c] = align_up(z.arena);
        L->mem.shared_backbone = max2(L->mem.shared_backbone, z.scratch);
    }
    largest_shape(be, m, L, &L->call[POA_STEP_CALL_ES_GLOBAL], &L->mem.es_width, &L->mem.es_depth);
}

/* Teacher phase: its backbone workspace, later its head workspace, at offset 0; the gathered
 * teacher rows (head inputs) after the larger of the two. */
static void plan_teacher_phase(const poa_backend *be, const poa_model *m,
                               const poa_step_config *cfg, poa_step_layout *L)
{
    const size_t G = (size_t) cfg->G, B = (size_t) cfg->B, D = (size_t) m->cfg.max_embed_dim;
    const poa_vit_sizes tz = poa_vit_acts_sizes(be, m, &L->teacher);
    const size_t ha_t = poa_head_acts_floats(m, L->t_rows, 0) * sizeof(float);
    size_t at = align_up(max2(tz.scratch, ha_t));
    L->t_z = place(&at, sizeof(float) * G * 2 * B * D);
    L->t_zp = place(&at, sizeof(float) * G * (size_t) L->nm_max * D);
    L->mem.shared_teacher = at;
}

/* Heads phase: two logits buffers, the intact class-token logits, one head call's activations,
 * head inputs and gradients of both branches, loss and KoLeo scratch. */
static void plan_heads_phase(const poa_backend *be, const poa_model *m, const poa_loss_cfg *loss,
                             poa_step_layout *L)
{
    const size_t rows = (size_t) L->rows_max, K = (size_t) L->Kmax;
    const size_t D = (size_t) m->cfg.max_embed_dim;
    size_t at = 0;
    L->lg_a = place(&at, sizeof(float) * rows * K);
    L->lg_b = place(&at, sizeof(float) * rows * K);
    L->lg_cls = place(&at, sizeof(float) * (size_t) L->n_cls * K);
    L->mem.heads_logits = at;
    L->ha = place(&at, poa_head_acts_floats(m, L->rows_max, 1) * sizeof(float));
    L->mem.heads_acts = at - L->mem.heads_logits;
    const size_t before_inputs = at;
    L->z_is = place(&at, sizeof(float) * rows * D);
    L->z_es = place(&at, sizeof(float) * rows * D);
    L->dz_is = place(&at, sizeof(float) * rows * D);
    L->dz_es = place(&at, sizeof(float) * rows * D);
    L->mem.heads_inputs = at - before_inputs;
    const size_t before_scratch = at;
    L->loss_scratch = place(&at, sizeof(float) * poa_loss_head_scratch(loss, L->Kmax));
    L->koleo = place(&at, poa_loss_koleo_scratch_bytes(be, loss, (int) D));
    L->mem.heads_scratch = at - before_scratch;
    L->mem.shared_heads = at;
}

/* The small arrays step.c allocates one by one (each rounded as the step allocates). */
static size_t small_bytes(const poa_model *m, const poa_step_config *cfg, const poa_step_layout *L)
{
    const size_t G = (size_t) cfg->G, B = (size_t) cfg->B, nl = (size_t) cfg->n_local * B;
    const size_t Ng = (size_t) poa_model_n_patches(&m->cfg, cfg->global_size, cfg->global_size);
    const size_t n_slots = (size_t) poa_loss_n_slots(m->cfg.n_heads) + POA_N_CLIP_GROUPS;
    const size_t sizes[] = {
        sizeof(int32_t) * 2 * B,               /* idx_cls_g   */
        sizeof(int32_t) * nl,                  /* idx_cls_l   */
        sizeof(int32_t) * G * L->nm_max,       /* idx_mask    */
        sizeof(float) * G * L->nm_max,         /* mask_w      */
        G * 2 * B * Ng,                        /* masks_dev   */
        sizeof(double) * n_slots,              /* slots       */
        sizeof(double) * 2 * (size_t) L->Kmax, /* sk_ws      */
        sizeof(double) * (size_t) m->table.n,  /* param_sumsq */
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        total += poa_step_alloc_size(sizes[i]);
    return total;
}

void poa_step_layout_make(const poa_backend *be, const poa_model *m, const poa_step_config *cfg,
                          poa_step_layout *L)
{
    memset(L, 0, sizeof *L);
    const poa_model_config *mc = &m->cfg;
    const int B = cfg->B, G = cfg->G;
    const int Ng = poa_model_n_patches(mc, cfg->global_size, cfg->global_size);
    for (int h = 0; h < mc->n_heads; h++)
        if (mc->head_n_prototypes[h] > L->Kmax) L->Kmax = mc->head_n_prototypes[h];
    poa_loss_cfg loss = cfg->loss;
    loss.B = B, loss.n_local = cfg->n_local, loss.n_heads = mc->n_heads;
    L->nm_max = cfg->max_masked > 0 ? cfg->max_masked : 2 * B * Ng;
    L->n_cls = poa_loss_student_rows(&loss, 0);
    L->rows_max = poa_loss_student_rows(&loss, L->nm_max);
    L->t_rows = G * 2 * B > G * L->nm_max ? G * 2 * B : G * L->nm_max;
    L->mem.rows = L->rows_max;
    L->mem.masked = L->nm_max;

    const size_t flat = sizeof(float) * m->table.total;
    L->mem.params = L->mem.grads = L->mem.teacher = flat;
    L->mem.moments = 2 * flat;
    L->mem.compute_copies = be->act_dtype == POA_DT_F32 ? 0 : 2 * poa_act_bytes(be, m->table.total);
    L->mem.optim_table = sizeof(poa_optim_seg) * (size_t) m->table.n;
    L->mem.head_weights = poa_head_weights_bytes(m, 1) + poa_head_weights_bytes(m, 0);

    plan_backbone(be, m, cfg, L);
    plan_teacher_phase(be, m, cfg, L);
    plan_heads_phase(be, m, &loss, L);
    poa_step_memory *x = &L->mem;
    x->shared = max2(x->shared_teacher, max2(x->shared_backbone, x->shared_heads));
    for (int h = 0; h < mc->n_heads; h++) {
        const size_t K = (size_t) mc->head_n_prototypes[h];
        x->targets += poa_step_alloc_size(sizeof(float) * (size_t) G * 2 * B * K);
        x->targets += poa_step_alloc_size(sizeof(float) * (size_t) G * L->nm_max * K);
    }
    x->small = small_bytes(m, cfg, L);
    x->total = x->params + x->grads + x->teacher + x->moments + x->compute_copies + x->optim_table +
               x->head_weights + x->targets + poa_step_alloc_size(x->shared) + x->small;
    for (int c = 0; c < POA_STEP_N_CALLS; c++) x->total += x->student[c];
}

void poa_step_layout_free(poa_step_layout *L)
{
    free(L->es_shapes);
    L->es_shapes = NULL;
}

void poa_step_memory_plan(const poa_backend *be, const poa_model *m, const poa_step_config *cfg,
                          poa_step_memory *out)
{
    poa_step_layout L;
    poa_step_layout_make(be, m, cfg, &L);
    *out = L.mem;
    poa_step_layout_free(&L);
}
