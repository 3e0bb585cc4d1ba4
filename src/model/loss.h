/* loss.h — the POA loss (docs/algorithm.md §6.2–6.9), composed from
 * the backend's training ops.  No MPI here: Sinkhorn-Knopp pools its sums through
 * loss_collective.h.
 *
 * Per rank group of B images and per head h (K prototypes), each student branch X ∈ {IS, ES}
 * gives one logits matrix with the rows
 *     [ 2B global-crop cls tokens (crop 0 of every image, then crop 1)
 *     | V_l·B local-crop cls tokens (local 0 of every image, local 1, …)
 *     | n_m masked patch tokens (iBOT on) ]                                   ("student rows")
 * and the teacher gives Sinkhorn-Knopp targets for the 2B global crops (same crop order) and for
 * the n_m masked patches.  The loss functions add every term's value (unweighted, as
 * docs/algorithm.md §6.9 defines it, averaged over this rank's groups) into "loss slots"
 * (doubles in backend memory) and its weighted gradient into the logits/feature gradients (+=).
 *
 * Gradient weights: the back-propagated loss is the mean over the rank groups of all ranks
 * (docs/algorithm.md §6.9, §1.2).  Every gradient is divided by groups_total, which the step
 * sets to G, the rank groups of this rank; the gradient all-reduce then averages over the ranks
 * (docs/architecture.md §7.3), which completes the mean over all ranks' groups.
 */
#ifndef POA_MODEL_LOSS_H
#define POA_MODEL_LOSS_H

#include "backend/backend.h"
#include "model/loss_collective.h"

/* Loss terms (sections of docs/algorithm.md).  Per head: */
typedef enum poa_loss_term {
    POA_TERM_DINO_IS = 0,    /* L_IS^(h)                          (§6.3)                */
    POA_TERM_DINO_ES1,       /* L_ES1^(h)                         (§6.4)                */
    POA_TERM_DISTILL_GLOBAL, /* global-crop mean of L_ES2^(h)     (§6.5)                */
    POA_TERM_DISTILL_LOCAL,  /* local-crop mean of L_ES2^(h)                            */
    POA_TERM_IBOT_IS,        /* iBOT^IS_h                         (§6.8)                */
    POA_TERM_IBOT_ES,        /* iBOT^ES_h                                               */
    POA_N_HEAD_TERMS,
    /* Per rank group (not per head): */
    POA_TERM_KOLEO_IS = POA_N_HEAD_TERMS, /* Σ_g KoLeo(Z^IS_g)     (§6.7)                */
    POA_TERM_KOLEO_ES,                    /* Σ_g KoLeo(Z^ES_g)                          */
    POA_N_TERMS
} poa_loss_term;

#define POA_LOSS_ALL_TERMS ((1u << POA_N_TERMS) - 1u)

const char *poa_loss_term_name(poa_loss_term t);

/* Slots: head h's terms at h·POA_N_HEAD_TERMS + term, then the two KoLeo slots. */
static inline int poa_loss_n_slots(int n_heads)
{
    return n_heads * POA_N_HEAD_TERMS + (POA_N_TERMS - POA_N_HEAD_TERMS);
}
static inline int poa_loss_slot(int n_heads, int head, poa_loss_term t)
{
    return t < POA_N_HEAD_TERMS ? head * POA_N_HEAD_TERMS + (int) t
                                : n_heads * POA_N_HEAD_TERMS + (int) t - POA_N_HEAD_TERMS;
}

typedef struct poa_loss_cfg {
    int B;              /* images per rank group (train.batch_size_per_gpu)              */
    int n_local;        /* V_l (crops.local_crops_number)                                */
    int n_heads;        /* H                                                             */
    float lambda_ie;    /* λ (dino.lambda_ie)                                            */
    float dino_weight;  /* dino.loss_weight: multiplies λ·L_IS + (1−λ)·L_ES1 only (§6.6)   */
    float koleo_weight; /* γ (dino.koleo_loss_weight)                                    */
    float ibot_weight;  /* ibot.loss_weight                                              */
    float student_temp; /* τ_s = 0.1                                                     */
    float distill_temp; /* temperature of the L_ES2 targets = 0.1                        */
    int sk_iters;       /* Sinkhorn-Knopp iterations = 3                                 */
    int groups_local;   /* rank groups on this rank (slot values are their mean)         */
    int groups_total;   /* gradients are divided by it: G (the all-reduce averages ranks) */
    unsigned terms;     /* enabled terms, bit (1 << poa_loss_term); POA_LOSS_ALL_TERMS    */
} poa_loss_cfg;

/* The official weights and temperatures (docs/algorithm.md §6) for one group on one rank. */
poa_loss_cfg poa_loss_cfg_official(int B, int n_local, int n_heads);

/* Rows of a student logits matrix of one rank group with n_masked masked patches. */
static inline int poa_loss_student_rows(const poa_loss_cfg *c, int n_masked)
{
    return (2 + c->n_local) * c->B + n_masked;
}

/* Teacher targets by Sinkhorn-Knopp (docs/algorithm.md §6.2) over the n local rows of logits [n, K]
 * and the rows of every other rank (coll): t [n, K] (ldt).  ws: 2·K doubles of backend memory. */
void poa_sinkhorn_knopp(poa_backend *be, const poa_collective *coll, float *t, int ldt,
                        const float *logits, int ldl, int n, int K, float teacher_temp, int iters,
                        double *ws);

/* Floats of scratch that poa_loss_head needs. */
size_t poa_loss_head_scratch(const poa_loss_cfg *c, int K);

/* The DINO, same-view distillation and iBOT terms of one head for one rank group.
 *   t_cls [2B, K]      SK targets of the group's teacher global crops (crop 0 rows, crop 1 rows)
 *   t_patch [n_m, K]   SK targets of its masked patches, NULL when iBOT is off
 *   mask_w [n_m]       1/(masked patches of the patch's crop) (backend memory)
 *   s_is, s_es         student logits (student rows, ld lds); ds_is, ds_es their gradients (+=)
 *   slots              this rank's loss slots (+=)                                        */
void poa_loss_head(poa_backend *be, const poa_loss_cfg *c, int head, int K, double *slots,
                   const float *t_cls, int ldt, const float *t_patch, int ldtp, const float *mask_w,
                   int n_masked, const float *s_is, const float *s_es, int lds, float *ds_is,
                   float *ds_es, int ldds, float *scratch);

/* The terms of one student branch only, gradients into ds (+=): POA_LOSS_IS (L_IS, iBOT^IS:
 * reads s_is) or POA_LOSS_ES (L_ES1, L_ES2, iBOT^ES: reads s_es, and the class-token rows
 * [0, (2 + V_l)·B) of s_is as the distillation targets).  The two calls give the values and
 * gradients of poa_loss_head bit for bit (each term's operations and their order are the same),
 * so a caller can run one branch's backward before the other's logits exist. */
enum { POA_LOSS_IS = 0, POA_LOSS_ES = 1 };
void poa_loss_head_branch(poa_backend *be, const poa_loss_cfg *c, int head, int K, int branch,
                          double *slots, const float *t_cls, int ldt, const float *t_patch,
                          int ldtp, const float *mask_w, int n_masked, const float *s_is,
                          const float *s_es, int lds, float *ds, int ldds, float *scratch);

/* Bytes of scratch that poa_loss_koleo needs for features of width ≤ d_max. */
size_t poa_loss_koleo_scratch_bytes(const poa_backend *be, const poa_loss_cfg *c, int d_max);

/* KoLeo of one rank group (docs/algorithm.md §6.7): z_is [2B, d_is] and z_es [2B, d_es] are the
 * backbone cls outputs of the global crops (crop 0 rows, crop 1 rows); dz_* (+=). */
void poa_loss_koleo(poa_backend *be, const poa_loss_cfg *c, double *slots, const float *z_is,
                    int ldz_is, int d_is, float *dz_is, int lddz_is, const float *z_es, int ldz_es,
                    int d_es, float *dz_es, int lddz_es, void *scratch);

/* The back-propagated total loss of this rank (mean over its groups) from downloaded slots:
 * (1/H)Σ_h[w_d(λ L_IS + (1−λ) L_ES1) + (1−λ) L_ES2] + (γ/2)(KoLeo_IS + KoLeo_ES)
 * + w_i (1/H) Σ_h [λ iBOT_IS + (1−λ) iBOT_ES] (docs/algorithm.md §6.9, §6.6), disabled terms left
 * out. */
double poa_loss_total(const poa_loss_cfg *c, const double *slots_host);

#endif
