/* step.c — see step.h.  Order of one step (docs/algorithm.md §7):
 *   1. schedules; sub-network and drop-path draws of every group;
 *   2. teacher backbone on every group's global crops, its cls rows (and the rows of the patches
 *      masked in the student's crops) gathered group-major;
 *   3. per head: teacher head → Sinkhorn-Knopp over all rows of all ranks (in place);
 *   4. per group: student backbone calls, head inputs gathered as the "student rows" of loss.h,
 *      KoLeo, per head forward → loss → backward, then the backbone passes backward;
 *   5. composed prototype gradient → weight_g/weight_v; reduce hook; guard; clip; AdamW; EMA. */
#include "train/step.h"
#include "common/poa_error.h"
#include "train/step_layout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    CALL_IS_GLOBAL = POA_STEP_CALL_IS_GLOBAL,
    CALL_IS_LOCAL = POA_STEP_CALL_IS_LOCAL,
    CALL_ES_GLOBAL = POA_STEP_CALL_ES_GLOBAL,
    CALL_ES_LOCAL = POA_STEP_CALL_ES_LOCAL,
    N_CALLS = POA_STEP_N_CALLS
};

struct poa_step {
    poa_backend *be;
    const poa_model *m;
    poa_step_config cfg;
    poa_collective coll;
    poa_step_hooks hooks;

    int H, D, C, Kmax;
    int Ng, Tg, Nl, Tl; /* patches / tokens of a global and a local crop */
    int nm_max;         /* masked patches per group the buffers hold      */
    int rows_max;       /* student rows per group (loss.h)                */
    int n_cls_rows;     /* class-token rows of them: (2 + V)·B            */

    float *params, *grads, *teacher;
    /* Compute copies of the GEMM weights (backend.h, "Precision"): the fp32 buffers themselves
     * when the compute dtype is fp32, else copies refreshed by AdamW and the EMA. */
    poa_act *params_act, *teacher_act;
    int own_act; /* 1: params_act / teacher_act are separate buffers */
    poa_optim optim;
    poa_schedules sched;
    poa_subnet_sampler sampler;

    poa_step_memory mem; /* the plan the buffers below were made from                   */
    /* The shared working region (poa_step_memory.shared): the teacher's backbone and head
     * workspaces and gathered rows, the students' backbone transients and the heads' working
     * set take turns in it (step.h, "Memory"). */
    void *region;
    poa_vit_acts t_acts, acts[N_CALLS];
    poa_head_weights hw_s, hw_t;
    poa_head_acts ha, ha_t; /* student head calls (one at a time), teacher head calls    */

    float *t_z;                           /* [G·2B, D] teacher cls rows, group-major (region) */
    float *t_zp;                          /* [G·nm_max, D] teacher masked-patch rows (region) */
    float *targets[POA_MODEL_MAX_HEADS];  /* [G·2B, K_h] logits, then SK targets      */
    float *ptargets[POA_MODEL_MAX_HEADS]; /* [G·nm_max, K_h]                           */
    float *z_is, *z_es, *dz_is, *dz_es;   /* [rows_max, D] student head inputs (region) */
    /* The heads' working logits (region): two [rows_max, Kmax] buffers and the intact branch's
     * class-token logits [n_cls, Kmax] (the distillation targets), see heads_and_losses. */
    float *lg_a, *lg_b, *lg_cls;
    int32_t *idx_cls_g, *idx_cls_l; /* backend: cls rows of a global / local call  */
    int32_t *idx_mask;              /* backend [G·nm_max] masked token rows         */
    float *mask_w;                  /* backend [G·nm_max] 1 / masked patches of crop */
    uint8_t *masks_dev;             /* backend [G·2B·Ng]                             */
    int32_t *idx_host;
    float *w_host;
    int n_masked[POA_STEP_MAX_GROUPS], mask_at[POA_STEP_MAX_GROUPS + 1];

    /* slots: the loss slots, then the clip groups' Σ g² (sum_squares), one download per step */
    double *slots, *sk_ws;
    double *param_sumsq; /* [table.n] Σ g² per tensor: names the bad tensor (rare path)      */
    double *param_sumsq_host;
    float *loss_scratch;
    void *koleo_scratch;
    /* Phase boundaries on the compute stream: start, teacher, per group (student forward,
     * heads and losses, backward), reduce, optimizer; around the batch's enqueued hook, whose
     * host time (staging the next batch) is no phase of the step. */
    poa_event *ev_start, *ev_teacher, *ev_reduce, *ev_end, *ev_hook[2];
    poa_event *ev_group[POA_STEP_MAX_GROUPS][3];
    float *dp_host[N_CALLS];
    size_t dp_floats;
    poa_subnet subnet[POA_STEP_MAX_GROUPS];
    uint8_t *announced; /* [table.n_buckets] bucket_ready called in the current step */
    size_t allocated;   /* backend bytes allocated by creation (checked against mem.total)  */
};

const char *poa_step_phase_name(int phase)
{
    static const char *names[POA_N_PHASES] = {"teacher", "student_fwd", "heads_loss", "backward",
                                              "reduce",  "optim",       "total"};
    POA_ASSERT(phase >= 0 && phase < POA_N_PHASES);
    return names[phase];
}

poa_step_config poa_step_config_official(const poa_model *m, int B, int G, int n_local)
{
    poa_step_config c;
    memset(&c, 0, sizeof c);
    c.B = B;
    c.G = G;
    c.n_local = n_local;
    c.global_size = m->cfg.global_crops_size;
    c.local_size = m->cfg.local_crops_size;
    c.drop_path_rate = 0.2;
    c.net_select_scale = 3.0;
    c.loss = poa_loss_cfg_official(B, n_local, m->cfg.n_heads);
    c.beta1 = 0.9, c.beta2 = 0.999, c.eps = 1e-8;
    c.clip_grad = 1.5;
    c.sched = poa_schedule_hparams_official();
    return c;
}

/* ------------------------------------------------------------------ creation */

static void *balloc(poa_step *s, size_t bytes)
{
    const size_t n = poa_step_alloc_size(bytes);
    void *p = s->be->iface->alloc(s->be, n);
    s->be->iface->zero(s->be, p, n);
    s->allocated += n;
    return p;
}

static void upload_cls_indices(poa_step *s)
{
    const int B = s->cfg.B, nl = s->cfg.n_local * B;
    int32_t *h = poa_xmalloc(sizeof(int32_t) * (size_t) (2 * B + nl + 1));
    for (int i = 0; i < 2 * B; i++) h[i] = i * s->Tg;
    s->idx_cls_g = balloc(s, sizeof(int32_t) * 2 * B);
    s->be->iface->upload(s->be, s->idx_cls_g, h, sizeof(int32_t) * 2 * B);
    for (int i = 0; i < nl; i++) h[i] = i * s->Tl;
    s->idx_cls_l = balloc(s, sizeof(int32_t) * (size_t) nl);
    if (nl) s->be->iface->upload(s->be, s->idx_cls_l, h, sizeof(int32_t) * (size_t) nl);
    free(h);
}

static void make_sampler(poa_step *s)
{
    int widths[64], depths[POA_MODEL_MAX_DEPTH], counts[64 * POA_MODEL_MAX_DEPTH];
    int nw = poa_model_widths(&s->m->cfg, widths, 64);
    int nd = poa_model_depths(&s->m->cfg, depths, POA_MODEL_MAX_DEPTH);
    POA_CHECK(nw <= 64 && nd <= POA_MODEL_MAX_DEPTH, "too many elastic widths/depths");
    poa_model_candidate_counts(&s->m->cfg, s->cfg.net_select_scale, counts,
                               64 * POA_MODEL_MAX_DEPTH);
    poa_subnet_sampler_init(&s->sampler, widths, nw, depths, nd, counts, s->cfg.seed);
}

/* The four student calls' workspaces on the shared scratch, the teacher's workspace and both head
 * workspaces in the shared region (step_layout.h). */
static void create_backbones(poa_step *s, const poa_step_layout *L)
{
    poa_backend *be = s->be;
    poa_vit_acts_create_plan(be, s->m, &s->t_acts, &L->teacher, s->region);
    for (int c = 0; c < N_CALLS; c++) {
        if ((c == CALL_IS_LOCAL || c == CALL_ES_LOCAL) && s->cfg.n_local == 0) continue;
        poa_vit_acts_create_plan(be, s->m, &s->acts[c], &L->call[c], s->region);
        s->allocated += s->acts[c].cap ? L->mem.student[c] : 0;
    }
}

static float *in_region(poa_step *s, size_t offset)
{
    return (float *) ((char *) s->region + offset);
}

static void create_workspaces(poa_step *s, const poa_step_layout *L)
{
    poa_backend *be = s->be;
    const poa_model *m = s->m;
    const int B = s->cfg.B, G = s->cfg.G, V = s->cfg.n_local;
    s->region = balloc(s, L->mem.shared);
    create_backbones(s, L);
    poa_head_weights_create(be, m, &s->hw_s, 1);
    poa_head_weights_create(be, m, &s->hw_t, 0);
    s->allocated += L->mem.head_weights;
    poa_head_acts_create_at(m, &s->ha, s->rows_max, 1, in_region(s, L->ha));
    poa_head_acts_create_at(m, &s->ha_t, L->t_rows, 0, in_region(s, 0));
    s->t_z = in_region(s, L->t_z);
    s->t_zp = in_region(s, L->t_zp);
    s->lg_a = in_region(s, L->lg_a);
    s->lg_b = in_region(s, L->lg_b);
    s->lg_cls = in_region(s, L->lg_cls);
    s->z_is = in_region(s, L->z_is);
    s->z_es = in_region(s, L->z_es);
    s->dz_is = in_region(s, L->dz_is);
    s->dz_es = in_region(s, L->dz_es);
    s->loss_scratch = in_region(s, L->loss_scratch);
    s->koleo_scratch = in_region(s, L->koleo);
    for (int h = 0; h < s->H; h++) {
        size_t K = (size_t) m->cfg.head_n_prototypes[h];
        s->targets[h] = balloc(s, sizeof(float) * (size_t) G * 2 * B * K);
        s->ptargets[h] = balloc(s, sizeof(float) * (size_t) G * s->nm_max * K);
    }
    upload_cls_indices(s);
    s->idx_mask = balloc(s, sizeof(int32_t) * (size_t) G * s->nm_max);
    s->mask_w = balloc(s, sizeof(float) * (size_t) G * s->nm_max);
    s->masks_dev = balloc(s, (size_t) G * 2 * B * s->Ng);
    s->idx_host = poa_xmalloc(sizeof(int32_t) * ((size_t) G * s->nm_max + 1));
    s->w_host = poa_xmalloc(sizeof(float) * ((size_t) G * s->nm_max + 1));

    s->slots = balloc(s, sizeof(double) * (size_t) (poa_loss_n_slots(s->H) + POA_N_CLIP_GROUPS));
    s->sk_ws = balloc(s, sizeof(double) * 2 * (size_t) s->Kmax);
    s->param_sumsq = balloc(s, sizeof(double) * (size_t) m->table.n);
    s->param_sumsq_host = poa_xcalloc((size_t) m->table.n + 1, sizeof(double));
    s->ev_start = be->iface->event_create(be);
    s->ev_teacher = be->iface->event_create(be);
    s->ev_reduce = be->iface->event_create(be);
    s->ev_end = be->iface->event_create(be);
    s->ev_hook[0] = be->iface->event_create(be);
    s->ev_hook[1] = be->iface->event_create(be);
    for (int g = 0; g < G; g++)
        for (int k = 0; k < 3; k++) s->ev_group[g][k] = be->iface->event_create(be);
    int n_max = 2 * B > V * B ? 2 * B : V * B;
    s->dp_floats = (size_t) m->cfg.max_depth * 2 * n_max;
    for (int c = 0; c < N_CALLS; c++) s->dp_host[c] = poa_xmalloc(sizeof(float) * s->dp_floats);
}

poa_step *poa_step_create(poa_backend *be, const poa_model *m, const poa_step_config *cfg,
                          const poa_collective *coll, const poa_step_hooks *hooks)
{
    POA_CHECK(cfg->G >= 1 && cfg->G <= POA_STEP_MAX_GROUPS, "rank groups %d outside [1, %d]",
              cfg->G, POA_STEP_MAX_GROUPS);
    POA_CHECK(cfg->B >= 2, "KoLeo needs at least 2 images per rank group (B = %d)", cfg->B);
    POA_CHECK(poa_backend_missing_ops(be, NULL, 0) == 0,
              "the backend lacks ops the step needs (poa_backend_missing_ops lists them)");
    poa_step *s = poa_xcalloc(1, sizeof *s);
    s->be = be;
    s->m = m;
    s->cfg = *cfg;
    s->coll = coll ? *coll : poa_collective_single();
    if (hooks) s->hooks = *hooks;
    const poa_model_config *mc = &m->cfg;
    s->H = mc->n_heads;
    s->D = mc->max_embed_dim;
    s->C = mc->in_chans;
    for (int h = 0; h < s->H; h++)
        if (mc->head_n_prototypes[h] > s->Kmax) s->Kmax = mc->head_n_prototypes[h];
    s->Ng = poa_model_n_patches(mc, cfg->global_size, cfg->global_size);
    s->Nl = poa_model_n_patches(mc, cfg->local_size, cfg->local_size);
    s->Tg = 1 + s->Ng;
    s->Tl = 1 + s->Nl;
    s->nm_max = cfg->max_masked > 0 ? cfg->max_masked : 2 * cfg->B * s->Ng;
    s->cfg.loss.B = cfg->B;
    s->cfg.loss.n_local = cfg->n_local;
    s->cfg.loss.n_heads = s->H;
    s->cfg.loss.groups_local = s->cfg.loss.groups_total = cfg->G;
    s->rows_max = poa_loss_student_rows(&s->cfg.loss, s->nm_max);
    s->n_cls_rows = poa_loss_student_rows(&s->cfg.loss, 0);

    size_t bytes = sizeof(float) * m->table.total;
    s->params = balloc(s, bytes);
    s->grads = balloc(s, bytes);
    s->teacher = balloc(s, bytes);
    s->own_act = be->act_dtype != POA_DT_F32;
    if (s->own_act) {
        s->params_act = balloc(s, poa_act_bytes(be, m->table.total));
        s->teacher_act = balloc(s, poa_act_bytes(be, m->table.total));
    } else { /* fp32: the GEMMs read the master copies */
        s->params_act = (poa_act *) s->params;
        s->teacher_act = (poa_act *) s->teacher;
    }
    poa_optim_init(&s->optim, be, &m->table, cfg->beta1, cfg->beta2, cfg->eps, cfg->clip_grad);
    poa_schedules_init(&s->sched, &cfg->sched);
    make_sampler(s);
    poa_step_layout L;
    poa_step_layout_make(be, m, cfg, &L);
    s->mem = L.mem;
    s->allocated += L.mem.moments + L.mem.optim_table; /* poa_optim_init's buffers */
    create_workspaces(s, &L);
    poa_step_layout_free(&L);
    POA_CHECK(s->allocated == s->mem.total,
              "step memory: %zu bytes allocated, %zu planned (step_memory.c and step.c disagree)",
              s->allocated, s->mem.total);
    s->announced = poa_xcalloc((size_t) (m->table.n_buckets ? m->table.n_buckets : 1), 1);
    return s;
}

void poa_step_destroy(poa_step *s)
{
    if (!s) return;
    poa_backend *be = s->be;
    poa_vit_acts_destroy(be, &s->t_acts);
    for (int c = 0; c < N_CALLS; c++) poa_vit_acts_destroy(be, &s->acts[c]);
    poa_head_weights_destroy(be, &s->hw_s);
    poa_head_weights_destroy(be, &s->hw_t);
    poa_head_acts_destroy(be, &s->ha);
    poa_head_acts_destroy(be, &s->ha_t);
    void *bufs[] = {s->params,   s->grads,  s->teacher,   s->region, s->idx_cls_g, s->idx_cls_l,
                    s->idx_mask, s->mask_w, s->masks_dev, s->slots,  s->sk_ws,     s->param_sumsq};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->iface->free(be, bufs[i]);
    if (s->own_act) be->iface->free(be, s->params_act), be->iface->free(be, s->teacher_act);
    poa_event *evs[] = {s->ev_start, s->ev_teacher, s->ev_reduce,
                        s->ev_end,   s->ev_hook[0], s->ev_hook[1]};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) be->iface->event_destroy(be, evs[i]);
    for (int g = 0; g < s->cfg.G; g++)
        for (int k = 0; k < 3; k++) be->iface->event_destroy(be, s->ev_group[g][k]);
    free(s->param_sumsq_host);
    for (int h = 0; h < s->H; h++)
        be->iface->free(be, s->targets[h]), be->iface->free(be, s->ptargets[h]);
    for (int c = 0; c < N_CALLS; c++) free(s->dp_host[c]);
    free(s->idx_host);
    free(s->w_host);
    free(s->announced);
    poa_optim_free(&s->optim);
    poa_subnet_sampler_free(&s->sampler);
    free(s);
}

void poa_step_init_params(poa_step *s, uint64_t seed)
{
    poa_model_init_params(s->be, s->m, s->params, seed);
    s->be->iface->copy(s->be, s->teacher, s->params, sizeof(float) * s->m->table.total);
    poa_step_params_written(s);
}

void poa_step_params_written(poa_step *s)
{
    if (!s->own_act) return;
    const size_t n = s->m->table.total;
    s->be->nn->act_from_f32(s->be, s->params_act, s->params, n);
    s->be->nn->act_from_f32(s->be, s->teacher_act, s->teacher, n);
}

/* The weights of the student's and the teacher's backbone calls. */
static poa_weights student_weights(const poa_step *s)
{
    return (poa_weights){s->params, s->params_act};
}

static poa_weights teacher_weights(const poa_step *s)
{
    return (poa_weights){s->teacher, s->teacher_act};
}

float *poa_step_params(poa_step *s)
{
    return s->params;
}
float *poa_step_grads(poa_step *s)
{
    return s->grads;
}
float *poa_step_teacher(poa_step *s)
{
    return s->teacher;
}
poa_optim *poa_step_optim(poa_step *s)
{
    return &s->optim;
}
const poa_schedules *poa_step_schedules(const poa_step *s)
{
    return &s->sched;
}
const poa_step_memory *poa_step_memory_of(const poa_step *s)
{
    return &s->mem;
}

/* ------------------------------------------------------------------ per-step inputs */

/* Sub-network of every group (docs/algorithm.md §3.5) unless the batch gives them. */
static void choose_subnets(poa_step *s, const poa_step_batch *b, poa_step_report *r)
{
    for (int g = 0; g < s->cfg.G; g++) {
        if (b->subnets) {
            s->subnet[g] = b->subnets[g];
        } else {
            int w, d;
            poa_subnet_sampler_pick(&s->sampler, s->cfg.first_group + (uint32_t) g, b->it, &w, &d);
            POA_CHECK(poa_subnet_make(&s->m->cfg, w, d, &s->subnet[g], NULL) == POA_OK,
                      "sampled sub-network (%d, %d) is invalid", w, d);
        }
        r->subnet_width[g] = s->subnet[g].width;
        r->subnet_depth[g] = s->subnet[g].depth;
    }
}

/* iBOT masks of every group → masked token rows, weights 1/n_c (docs/algorithm.md §6.8), device
 * masks. */
static void prepare_masks(poa_step *s, const poa_step_batch *b, int ibot_on, poa_step_report *r)
{
    const int G = s->cfg.G, B = s->cfg.B, N = s->Ng;
    s->mask_at[0] = 0;
    for (int g = 0; g < G; g++) {
        int n = 0;
        int32_t *idx = s->idx_host + (size_t) g * s->nm_max;
        float *w = s->w_host + (size_t) g * s->nm_max;
        if (ibot_on && b->masks) {
            const uint8_t *mg = b->masks + (size_t) g * 2 * B * N;
            for (int c = 0; c < 2 * B; c++) {
                int nc = 0;
                for (int p = 0; p < N; p++) nc += mg[(size_t) c * N + p] != 0;
                for (int p = 0; p < N; p++) {
                    if (!mg[(size_t) c * N + p]) continue;
                    POA_CHECK(n < s->nm_max, "group %d has more than %d masked patches", g,
                              s->nm_max);
                    idx[n] = c * s->Tg + 1 + p;
                    w[n] = 1.0f / (float) nc;
                    n++;
                }
            }
            if (n) {
                s->be->iface->upload(s->be, s->idx_mask + (size_t) g * s->nm_max, idx,
                                     sizeof(int32_t) * (size_t) n);
                s->be->iface->upload(s->be, s->mask_w + (size_t) g * s->nm_max, w,
                                     sizeof(float) * (size_t) n);
            }
        }
        s->n_masked[g] = n;
        r->n_masked[g] = n;
        s->mask_at[g + 1] = s->mask_at[g] + n;
    }
    if (ibot_on && b->masks)
        s->be->iface->upload(s->be, s->masks_dev, b->masks, (size_t) G * 2 * B * N);
}

/* Drop-path scales of one backbone call (docs/algorithm.md §2.5), or NULL when off: batch subsets
 * or per-sample Bernoulli masks.  Stream index: four calls per group and iteration, each consuming
 * fewer than 2^24 Philox blocks. */
static const float *droppath_of(poa_step *s, const poa_step_batch *b, int g, int call, int n_blocks,
                                int n)
{
    if (b->droppath) return b->droppath[g * N_CALLS + call];
    if (s->cfg.drop_path_rate <= 0) return NULL;
    POA_ASSERT((size_t) n_blocks * 2 * n <= s->dp_floats);
    uint64_t stream = ((uint64_t) b->it * N_CALLS + (uint64_t) call) << 24;
    const uint32_t group = s->cfg.first_group + (uint32_t) g;
    if (s->cfg.drop_path_bernoulli)
        poa_droppath_draw_bernoulli(s->dp_host[call], n_blocks, n, s->cfg.drop_path_rate,
                                    s->cfg.seed, group, stream);
    else
        poa_droppath_draw(s->dp_host[call], n_blocks, n, s->cfg.drop_path_rate, s->cfg.seed, group,
                          stream);
    return s->dp_host[call];
}

/* ------------------------------------------------------------------ teacher */

static void teacher_targets(poa_step *s, const poa_step_batch *b, float temp, int ibot_on)
{
    poa_backend *be = s->be;
    const int B = s->cfg.B, G = s->cfg.G, D = s->D, S = s->cfg.global_size;
    const poa_subnet intact = poa_subnet_intact(&s->m->cfg);
    const poa_weights w = teacher_weights(s);
    for (int g = 0; g < G; g++) {
        poa_vit_input in = {
            b->global_crops + (size_t) g * 2 * B * s->C * S * S, 2 * B, S, S, NULL, NULL};
        poa_vit_forward(be, s->m, &w, &intact, &in, &s->t_acts);
        be->nn->act_gather_rows_f32(be, s->t_z + (size_t) g * 2 * B * D, D, s->t_acts.out, D,
                                    s->idx_cls_g, 2 * B, D);
        if (ibot_on && s->n_masked[g])
            be->nn->act_gather_rows_f32(be, s->t_zp + (size_t) s->mask_at[g] * D, D, s->t_acts.out,
                                        D, s->idx_mask + (size_t) g * s->nm_max, s->n_masked[g], D);
    }
    poa_head_weights_forward(be, s->m, s->teacher, &s->hw_t);
    const int n_cls = G * 2 * B, n_p = s->mask_at[G];
    for (int h = 0; h < s->H; h++) {
        const int K = s->m->cfg.head_n_prototypes[h];
        poa_head_forward(be, s->m, s->teacher, &s->hw_t, h, D, s->t_z, D, n_cls, &s->ha_t,
                         s->targets[h], K);
        poa_sinkhorn_knopp(be, &s->coll, s->targets[h], K, s->targets[h], K, n_cls, K, temp,
                           s->cfg.loss.sk_iters, s->sk_ws);
        if (!ibot_on) continue;
        poa_head_forward(be, s->m, s->teacher, &s->hw_t, h, D, s->t_zp, D, n_p, &s->ha_t,
                         s->ptargets[h], K);
        poa_sinkhorn_knopp(be, &s->coll, s->ptargets[h], K, s->ptargets[h], K, n_p, K, temp,
                           s->cfg.loss.sk_iters, s->sk_ws);
    }
}

/* ------------------------------------------------------------------ student */

static void student_forward(poa_step *s, const poa_step_batch *b, int g, int ibot_on)
{
    const int B = s->cfg.B, V = s->cfg.n_local, Sg = s->cfg.global_size, Sl = s->cfg.local_size;
    const poa_subnet intact = poa_subnet_intact(&s->m->cfg);
    const uint8_t *masks = ibot_on && b->masks ? s->masks_dev + (size_t) g * 2 * B * s->Ng : NULL;
    const float *glob = b->global_crops + (size_t) g * 2 * B * s->C * Sg * Sg;
    const float *loc = V ? b->local_crops + (size_t) g * V * B * s->C * Sl * Sl : NULL;
    const poa_weights w = student_weights(s);
    for (int c = 0; c < N_CALLS; c++) {
        const int local = c == CALL_IS_LOCAL || c == CALL_ES_LOCAL;
        const poa_subnet *sn = c < CALL_ES_GLOBAL ? &intact : &s->subnet[g];
        if (local && V == 0) continue;
        int n = local ? V * B : 2 * B;
        poa_vit_input in = {local ? loc : glob,   n,
                            local ? Sl : Sg,      local ? Sl : Sg,
                            local ? NULL : masks, droppath_of(s, b, g, c, sn->depth, n)};
        poa_vit_forward(s->be, s->m, &w, sn, &in, &s->acts[c]);
    }
}

/* Student rows of one branch (loss.h): global cls, local cls, masked patch tokens, from the
 * backbone's activations into the heads' fp32 inputs. */
static void gather_rows_of(poa_step *s, int g, int c_glob, int c_loc, float *z, int d)
{
    poa_backend *be = s->be;
    const int B = s->cfg.B, nl = s->cfg.n_local * B;
    be->nn->act_gather_rows_f32(be, z, d, s->acts[c_glob].out, d, s->idx_cls_g, 2 * B, d);
    if (nl)
        be->nn->act_gather_rows_f32(be, z + (size_t) 2 * B * d, d, s->acts[c_loc].out, d,
                                    s->idx_cls_l, nl, d);
    if (s->n_masked[g])
        be->nn->act_gather_rows_f32(be, z + (size_t) (2 * B + nl) * d, d, s->acts[c_glob].out, d,
                                    s->idx_mask + (size_t) g * s->nm_max, s->n_masked[g], d);
}

static void scatter_rows_of(poa_step *s, int g, int c_glob, int c_loc, const float *dz, int d)
{
    poa_backend *be = s->be;
    const int B = s->cfg.B, nl = s->cfg.n_local * B;
    poa_vit_zero_dout(be, &s->acts[c_glob]);
    be->nn->act_scatter_add_rows_f32(be, s->acts[c_glob].d_out, d, dz, d, s->idx_cls_g, 2 * B, d);
    if (nl) {
        poa_vit_zero_dout(be, &s->acts[c_loc]);
        be->nn->act_scatter_add_rows_f32(be, s->acts[c_loc].d_out, d, dz + (size_t) 2 * B * d, d,
                                         s->idx_cls_l, nl, d);
    }
    if (s->n_masked[g])
        be->nn->act_scatter_add_rows_f32(be, s->acts[c_glob].d_out, d,
                                         dz + (size_t) (2 * B + nl) * d, d,
                                         s->idx_mask + (size_t) g * s->nm_max, s->n_masked[g], d);
}

/* One head's loss terms and backward for group g, in the order of the original two-branch code
 * (elastic backward first, then intact) but with two [rows, K] buffers instead of four: the
 * intact logits are computed, their class-token rows kept (the distillation targets), the
 * elastic logits computed, the elastic terms' gradient and backward done, then the intact
 * logits computed again (the same op on the same inputs: the same bits) for the intact terms and
 * backward.  The values are those of one poa_loss_head call over both branches. */
static void head_loss_backward(poa_step *s, int g, int h, int rows, int ibot_on)
{
    poa_backend *be = s->be;
    const int D = s->D, d = s->subnet[g].width, B = s->cfg.B;
    const int K = s->m->cfg.head_n_prototypes[h];
    const float *t_cls = s->targets[h] + (size_t) g * 2 * B * K;
    const float *tp = ibot_on ? s->ptargets[h] + (size_t) s->mask_at[g] * K : NULL;
    const float *mw = s->mask_w + (size_t) g * s->nm_max;
    const size_t all = sizeof(float) * (size_t) rows * K;
    poa_loss_cfg *lc = &s->cfg.loss;
    float *A = s->lg_a, *Bf = s->lg_b, *cls = s->lg_cls;

    poa_head_forward(be, s->m, s->params, &s->hw_s, h, D, s->z_is, D, rows, &s->ha, A, K);
    be->iface->copy(be, cls, A, sizeof(float) * (size_t) s->n_cls_rows * K);
    poa_head_forward(be, s->m, s->params, &s->hw_s, h, d, s->z_es, d, rows, &s->ha, Bf, K);
    be->iface->zero(be, A, all);
    poa_loss_head_branch(be, lc, h, K, POA_LOSS_ES, s->slots, t_cls, K, tp, K, mw, s->n_masked[g],
                         cls, Bf, K, A, K, s->loss_scratch);
    poa_head_backward(be, s->m, s->params, s->grads, &s->hw_s, &s->ha, A, K, s->dz_es, d);

    poa_head_forward(be, s->m, s->params, &s->hw_s, h, D, s->z_is, D, rows, &s->ha, Bf, K);
    be->iface->zero(be, A, all);
    poa_loss_head_branch(be, lc, h, K, POA_LOSS_IS, s->slots, t_cls, K, tp, K, mw, s->n_masked[g],
                         Bf, NULL, K, A, K, s->loss_scratch);
    poa_head_backward(be, s->m, s->params, s->grads, &s->hw_s, &s->ha, A, K, s->dz_is, D);
}

/* Heads and losses of group g: KoLeo on the global cls rows, then per head forward (both
 * branches) → loss → backward, accumulating dz. */
static void heads_and_losses(poa_step *s, int g, int ibot_on)
{
    poa_backend *be = s->be;
    const int D = s->D, d = s->subnet[g].width;
    const int rows = poa_loss_student_rows(&s->cfg.loss, s->n_masked[g]);
    gather_rows_of(s, g, CALL_IS_GLOBAL, CALL_IS_LOCAL, s->z_is, D);
    gather_rows_of(s, g, CALL_ES_GLOBAL, CALL_ES_LOCAL, s->z_es, d);
    be->iface->zero(be, s->dz_is, sizeof(float) * (size_t) rows * D);
    be->iface->zero(be, s->dz_es, sizeof(float) * (size_t) rows * d);
    poa_loss_koleo(be, &s->cfg.loss, s->slots, s->z_is, D, D, s->dz_is, D, s->z_es, d, d, s->dz_es,
                   d, s->koleo_scratch);
    for (int h = 0; h < s->H; h++) head_loss_backward(s, g, h, rows, ibot_on);
    scatter_rows_of(s, g, CALL_ES_GLOBAL, CALL_ES_LOCAL, s->dz_es, d);
    scatter_rows_of(s, g, CALL_IS_GLOBAL, CALL_IS_LOCAL, s->dz_is, D);
}

/* bucket_ready once per bucket and step: after the bucket's last gradient write. */
static void announce(poa_step *s, int bucket)
{
    POA_ASSERT(bucket >= 0 && bucket < s->m->table.n_buckets);
    POA_CHECK(!s->announced[bucket], "bucket %d announced twice in one step", bucket);
    s->announced[bucket] = 1;
    s->hooks.bucket_ready(s->hooks.ctx, bucket);
}

/* poa_vit_acts hooks of the last backbone pass of the step. */
static void vit_grads_done(void *ctx, int bucket)
{
    announce(ctx, bucket);
}

static void vit_progress(void *ctx)
{
    poa_step *s = ctx;
    s->hooks.progress(s->hooks.ctx);
}

/* Elastic passes first, the intact global pass (which touches every block) last.  The intact
 * global pass of the last group is the last write to every backbone gradient of the step: it
 * announces each backbone bucket as soon as backward is past it (final norm, blocks L−1 … 0,
 * embeddings), so their reduces overlap with the rest of that pass. */
static void backbone_backward(poa_step *s, int last_group)
{
    poa_step_hooks *hk = &s->hooks;
    const poa_weights w = student_weights(s);
    static const int order[N_CALLS] = {CALL_ES_LOCAL, CALL_ES_GLOBAL, CALL_IS_LOCAL,
                                       CALL_IS_GLOBAL};
    for (int i = 0; i < N_CALLS; i++) {
        poa_vit_acts *a = &s->acts[order[i]];
        int local = order[i] == CALL_IS_LOCAL || order[i] == CALL_ES_LOCAL;
        if (local && s->cfg.n_local == 0) continue;
        int last = last_group && order[i] == CALL_IS_GLOBAL;
        a->hook_ctx = s;
        a->grads_done = last && hk->bucket_ready ? vit_grads_done : NULL;
        a->progress = hk->progress ? vit_progress : NULL;
        poa_vit_backward(s->be, s->m, &w, s->grads, a, a->d_out);
        a->grads_done = NULL;
        a->progress = NULL;
        if (hk->progress) hk->progress(hk->ctx);
    }
}

/* bucket_ready for every bucket of the head (heads = 1) or backbone parameters that was not
 * announced yet, highest bucket first (the order in which backward finishes them).  For the
 * backbone this is a safety net after the last pass: that pass announces all buckets it
 * touches (poa_vit_acts.grads_done), which with the intact network is all of them. */
static void buckets_ready(poa_step *s, int heads)
{
    if (!s->hooks.bucket_ready) return;
    const poa_param_table *t = &s->m->table;
    for (int i = t->n - 1; i >= 0; i--) {
        const poa_param_desc *d = &t->p[i];
        if (!!(d->flags & POA_PF_HEAD) != heads || s->announced[d->bucket]) continue;
        announce(s, d->bucket);
    }
}

/* ------------------------------------------------------------------ guard, update */

/* Which loss term a slot holds, for the guard's message. */
static void name_bad_slot(const poa_step *s, int i, poa_step_report *r)
{
    int head = i < s->H * POA_N_HEAD_TERMS ? i / POA_N_HEAD_TERMS : -1;
    poa_loss_term t = head >= 0 ? (poa_loss_term) (i % POA_N_HEAD_TERMS)
                                : (poa_loss_term) (POA_N_HEAD_TERMS + i - s->H * POA_N_HEAD_TERMS);
    if (head >= 0)
        snprintf(r->bad_what, sizeof r->bad_what, "loss term %s of head %d is %g",
                 poa_loss_term_name(t), head, r->slots[i]);
    else
        snprintf(r->bad_what, sizeof r->bad_what, "loss term %s is %g", poa_loss_term_name(t),
                 r->slots[i]);
}

/* The rare path: Σ g² of every tensor into the planned device array, one download, and the
 * first tensor whose sum is not finite is named. */
static void name_bad_gradient(poa_step *s, poa_step_report *r)
{
    poa_backend *be = s->be;
    const poa_param_table *t = &s->m->table;
    for (int i = 0; i < t->n; i++)
        be->train->sum_squares(be, s->param_sumsq + i, s->grads + t->p[i].offset, t->p[i].numel);
    be->iface->download(be, s->param_sumsq_host, s->param_sumsq, sizeof(double) * (size_t) t->n);
    for (int i = 0; i < t->n; i++) {
        if (isfinite(s->param_sumsq_host[i])) continue;
        snprintf(r->bad_what, sizeof r->bad_what, "gradient of %s.%s is not finite", t->p[i].module,
                 t->p[i].name);
        return;
    }
    snprintf(r->bad_what, sizeof r->bad_what, "gradient padding is not finite");
}

/* docs/algorithm.md §8.6: NaN or Inf in any loss term or gradient fails the step.  Σ g² in
 * double is finite exactly when every gradient is (no float squares to more than 1.2e77), so
 * the clipping norms, downloaded with the loss slots, are the guard over the gradients. */
static int find_nonfinite(poa_step *s, poa_step_report *r)
{
    for (int i = 0; i < r->n_slots; i++) {
        if (isfinite(r->slots[i])) continue;
        name_bad_slot(s, i, r);
        return 1;
    }
    if (isfinite(r->grad_norm[0]) && isfinite(r->grad_norm[1])) return 0;
    name_bad_gradient(s, r);
    return 1;
}

static void update(poa_step *s, poa_step_report *r)
{
    poa_act *params_act = s->own_act ? s->params_act : NULL;
    poa_act *teacher_act = s->own_act ? s->teacher_act : NULL;
    poa_optim_step(&s->optim, s->params, s->grads, r->sched.lr, r->sched.last_layer_lr, r->sched.wd,
                   r->clip_coef, params_act);
    poa_ema_update(s->be, s->teacher, s->params, s->m->table.total, r->sched.momentum, teacher_act);
}

/* Phase times from the step's events, once the step's work is complete. */
static void phase_times(poa_step *s, int reached_end, poa_step_report *r)
{
    poa_backend *be = s->be;
    double (*el)(poa_backend *, poa_event *, poa_event *) = be->iface->event_elapsed;
    r->seconds[POA_PHASE_TEACHER] = el(be, s->ev_start, s->ev_teacher);
    poa_event *prev = s->ev_teacher;
    for (int g = 0; g < s->cfg.G; g++) {
        r->seconds[POA_PHASE_STUDENT_FWD] += el(be, prev, s->ev_group[g][0]);
        r->seconds[POA_PHASE_HEADS_LOSS] += el(be, s->ev_group[g][0], s->ev_group[g][1]);
        r->seconds[POA_PHASE_BACKWARD] += el(be, s->ev_group[g][1], s->ev_group[g][2]);
        prev = s->ev_group[g][2];
    }
    r->seconds[POA_PHASE_REDUCE] = el(be, prev, s->ev_reduce);
    const double hook = el(be, s->ev_hook[0], s->ev_hook[1]);
    if (reached_end) r->seconds[POA_PHASE_OPTIM] = el(be, s->ev_reduce, s->ev_end) - hook;
    r->seconds[POA_PHASE_TOTAL] = el(be, s->ev_start, s->ev_end) - hook;
}

/* Enqueue the forward and backward passes of every group (the host waits for nothing here
 * except what the collectives and hooks themselves wait for). */
static void forward_backward(poa_step *s, const poa_step_batch *b, int ibot_on, poa_step_report *r)
{
    poa_backend *be = s->be;
    teacher_targets(s, b, (float) r->sched.teacher_temp, ibot_on);
    be->iface->event_record(be, s->ev_teacher);

    be->iface->zero(be, s->grads, sizeof(float) * s->m->table.total);
    memset(s->announced, 0, (size_t) s->m->table.n_buckets);
    be->iface->zero(be, s->slots, sizeof(double) * (size_t) r->n_slots);
    poa_head_weights_forward(be, s->m, s->params, &s->hw_s);
    for (int g = 0; g < s->cfg.G; g++) {
        student_forward(s, b, g, ibot_on);
        be->iface->event_record(be, s->ev_group[g][0]);
        heads_and_losses(s, g, ibot_on);
        if (g == s->cfg.G - 1) { /* the heads' gradients are final: their reduce can overlap */
            poa_head_weights_backward(be, s->m, s->params, s->grads, &s->hw_s);
            buckets_ready(s, 1);
        }
        be->iface->event_record(be, s->ev_group[g][1]);
        backbone_backward(s, g == s->cfg.G - 1);
        be->iface->event_record(be, s->ev_group[g][2]);
    }
    buckets_ready(s, 0); /* normally none left: the last intact pass announced them */
    if (s->hooks.reduce_grads) s->hooks.reduce_grads(s->hooks.ctx, s->grads, s->m->table.total);
    be->iface->event_record(be, s->ev_reduce);
}

poa_status poa_step_run(poa_step *s, const poa_step_batch *b, poa_step_report *r)
{
    poa_backend *be = s->be;
    memset(r, 0, sizeof *r);
    r->it = b->it;
    r->G = s->cfg.G;
    r->n_slots = poa_loss_n_slots(s->H);
    r->sched = poa_schedules_at(&s->sched, b->it);
    const int ibot_on = r->sched.ibot_active && s->cfg.loss.ibot_weight > 0;

    be->iface->event_record(be, s->ev_start);
    choose_subnets(s, b, r);
    prepare_masks(s, b, ibot_on, r);
    forward_backward(s, b, ibot_on, r);

    /* The clip groups' Σ g² land next to the loss slots: one download brings both. */
    double *sumsq = s->slots + r->n_slots;
    poa_optim_sum_squares(&s->optim, s->grads, sumsq);
    be->iface->event_record(be, s->ev_hook[0]);
    if (b->enqueued) b->enqueued(b->enqueued_ctx);
    be->iface->event_record(be, s->ev_hook[1]);
    double host[POA_MODEL_MAX_HEADS * POA_N_HEAD_TERMS + 2 + POA_N_CLIP_GROUPS];
    be->iface->download(be, host, s->slots,
                        sizeof(double) * (size_t) (r->n_slots + POA_N_CLIP_GROUPS));
    memcpy(r->slots, host, sizeof(double) * (size_t) r->n_slots);
    r->loss = poa_loss_total(&s->cfg.loss, r->slots);
    poa_optim_grad_norms(&s->optim, host + r->n_slots, r->grad_norm, r->clip_coef);
    int bad = find_nonfinite(s, r);
    int any_bad = s->hooks.any ? s->hooks.any(s->hooks.ctx, bad) : bad;
    if (any_bad) {
        if (!bad) snprintf(r->bad_what, sizeof r->bad_what, "a non-finite value on another rank");
        r->ok = 0;
        be->iface->event_record(be, s->ev_end);
        be->iface->synchronize(be);
        phase_times(s, 0, r);
        return POA_ERR_NONFINITE;
    }
    update(s, r);
    be->iface->event_record(be, s->ev_end);
    be->iface->synchronize(be);
    phase_times(s, 1, r);
    r->ok = 1;
    return POA_OK;
}

void poa_step_report_format(const poa_step *s, const poa_step_report *r, char *buf, size_t n)
{
    size_t k = 0;
#define OUT(...) (k += (size_t) snprintf(buf + k, k < n ? n - k : 0, __VA_ARGS__))
    OUT("it %lld loss %.6f", r->it, r->loss);
    for (int t = 0; t < POA_N_TERMS; t++) {
        double v = 0;
        if (t < POA_N_HEAD_TERMS)
            for (int h = 0; h < s->H; h++) v += r->slots[poa_loss_slot(s->H, h, t)] / s->H;
        else
            v = r->slots[poa_loss_slot(s->H, 0, t)];
        OUT(" %s %.5f", poa_loss_term_name((poa_loss_term) t), v);
    }
    OUT(" gnorm %.4g/%.4g lr %.4e llr %.4e wd %.4g mom %.6f tt %.4f ibot %d sub", r->grad_norm[0],
        r->grad_norm[1], r->sched.lr, r->sched.last_layer_lr, r->sched.wd, r->sched.momentum,
        r->sched.teacher_temp, r->sched.ibot_active);
    for (int g = 0; g < r->G; g++)
        OUT("%s%dx%d", g ? "," : " ", r->subnet_width[g], r->subnet_depth[g]);
    for (int p = 0; p < POA_N_PHASES; p++) OUT(" %s %.3fs", poa_step_phase_name(p), r->seconds[p]);
    if (!r->ok) OUT(" NONFINITE: %s", r->bad_what);
#undef OUT
}
