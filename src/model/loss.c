/* loss.c — see loss.h.  Every term names its section of docs/algorithm.md; the scales follow the
 * official forward_backward (alipay/POA poa/train/ssl_meta_arch.py) term by term. */
#include "model/loss.h"
#include "common/poa_error.h"

#include <string.h>

const char *poa_loss_term_name(poa_loss_term t)
{
    static const char *names[POA_N_TERMS] = {
        "dino_is", "dino_es1", "distill_global", "distill_local",
        "ibot_is", "ibot_es",  "koleo_is",       "koleo_es",
    };
    POA_ASSERT(t >= 0 && t < POA_N_TERMS);
    return names[t];
}

poa_loss_cfg poa_loss_cfg_official(int B, int n_local, int n_heads)
{
    poa_loss_cfg c = {
        .B = B,
        .n_local = n_local,
        .n_heads = n_heads,
        .lambda_ie = 0.8f,
        .dino_weight = 1.0f,
        .koleo_weight = 0.1f,
        .ibot_weight = 1.0f,
        .student_temp = 0.1f,
        .distill_temp = 0.1f,
        .sk_iters = 3,
        .groups_local = 1,
        .groups_total = 1,
        .terms = POA_LOSS_ALL_TERMS,
    };
    return c;
}

/* ------------------------------------------------------------------------- Sinkhorn-Knopp */

/* docs/algorithm.md §6.2.  Per prototype k the logits are shifted by their maximum over all ranks'
 * rows before exp (no overflow, and no prototype can underflow to an all-zero row); the shift is a
 * per-prototype factor that the first prototype normalisation removes exactly. The official
 * whole-matrix normalisation and the /K, /R, ·R constants only rescale the matrix and cancel, so
 * each iteration is "prototypes to sum 1, samples to sum 1". */
void poa_sinkhorn_knopp(poa_backend *be, const poa_collective *coll, float *t, int ldt,
                        const float *logits, int ldl, int n, int K, float teacher_temp, int iters,
                        double *ws)
{
    POA_ASSERT(iters >= 1 && teacher_temp > 0);
    double *mx = ws, *psum = ws + K;
    be->train->col_max(be, mx, logits, ldl, n, K);
    poa_collective_max(coll, mx, (size_t) K);
    be->train->sk_exp(be, t, ldt, psum, logits, ldl, mx, n, K, 1.0f / teacher_temp);
    for (int it = 0; it < iters; it++) {
        poa_collective_sum(coll, psum, (size_t) K);
        /* mx is spent after sk_exp: its K doubles hold sk_normalize's reciprocals */
        be->train->sk_normalize(be, t, ldt, it + 1 < iters ? psum : NULL, psum, mx, n, K);
    }
}

/* ------------------------------------------------------------------------------ head terms */

static int enabled(const poa_loss_cfg *c, poa_loss_term t)
{
    return (c->terms >> t) & 1u;
}

/* Number of (teacher global, student view) pairs P = 2 + max(2·V_l, 1) (docs/algorithm.md §6.3). */
static int n_pairs(const poa_loss_cfg *c)
{
    int local_pairs = 2 * c->n_local;
    return 2 + (local_pairs > 1 ? local_pairs : 1);
}

size_t poa_loss_head_scratch(const poa_loss_cfg *c, int K)
{
    int rows = c->n_local > 2 ? c->n_local : 2;
    return (size_t) rows * c->B * K;
}

/* t_sum[b] = t_cls[b] + t_cls[B + b]: the targets of both teacher global crops of image b, which
 * every local crop of b is compared with (Σ_g CE(T_g, s) = CE(T_0 + T_1, s)). */
static void sum_crop_targets(poa_backend *be, float *t_sum, const float *t_cls, int ldt, int B,
                             int K)
{
    for (int b = 0; b < B; b++) {
        be->iface->copy(be, t_sum + (size_t) b * K, t_cls + (size_t) b * ldt, sizeof(float) * K);
        be->nn->axpy(be, t_sum + (size_t) b * K, 1.0f, t_cls + (size_t) (B + b) * ldt, (size_t) K);
    }
}

/* Cross-view terms L_IS (λ) and L_ES1 (1 − λ), docs/algorithm.md §6.3/§6.4: the mean over the P
 * pairs. Global rows pair with the other crop's target (row (i + B) mod 2B); every local row of
 * image b with both global targets.  Both parts are sums of CE divided by B·P. */
static void cross_view_terms(poa_backend *be, const poa_loss_cfg *c, int head, int K, double *slots,
                             const float *t_cls, int ldt, const float *s_is, const float *s_es,
                             int lds, float *ds_is, float *ds_es, int ldds, float *t_sum, int only)
{
    const int B = c->B, nL = c->n_local * c->B, H = c->n_heads;
    const float inv_ts = 1.0f / c->student_temp;
    const double norm = 1.0 / ((double) B * n_pairs(c));
    const float value_scale = (float) (norm / c->groups_local);
    const struct {
        poa_loss_term term;
        double weight;
        const float *s;
        float *ds;
    } br[2] = {{POA_TERM_DINO_IS, c->lambda_ie, s_is, ds_is},
               {POA_TERM_DINO_ES1, 1.0 - c->lambda_ie, s_es, ds_es}};
    if (nL > 0) sum_crop_targets(be, t_sum, t_cls, ldt, B, K);
    for (int x = 0; x < 2; x++) {
        if (!enabled(c, br[x].term) || (only >= 0 && x != only)) continue;
        double *slot = slots + poa_loss_slot(H, head, br[x].term);
        float grad_scale = (float) (c->dino_weight * br[x].weight / H / c->groups_total * norm);
        be->train->xent(be, slot, br[x].ds, ldds, br[x].s, lds, t_cls, ldt, 2 * B, B, NULL, 2 * B,
                        K, inv_ts, value_scale, grad_scale);
        if (nL > 0)
            be->train->xent(be, slot, br[x].ds + (size_t) 2 * B * ldds, ldds,
                            br[x].s + (size_t) 2 * B * lds, lds, t_sum, K, B, 0, NULL, nL, K,
                            inv_ts, value_scale, grad_scale);
    }
}

/* Same-view distillation L_ES2 (docs/algorithm.md §6.5): targets softmax(S^IS / 0.1) of the same
 * rows, detached (only the elastic logits get a gradient); mean over the 2B global rows plus mean
 * over the V_l·B local rows, weight 1 − λ, not multiplied by dino.loss_weight (docs/algorithm.md
 * §6.6). */
static void distill_part(poa_backend *be, const poa_loss_cfg *c, int head, int K, double *slots,
                         poa_loss_term term, int row0, int n, const float *s_is, const float *s_es,
                         int lds, float *ds_es, int ldds, float *pi)
{
    if (n == 0 || !enabled(c, term)) return;
    const int H = c->n_heads;
    be->train->softmax_rows(be, pi, K, s_is + (size_t) row0 * lds, lds, n, K,
                            1.0f / c->distill_temp);
    float value_scale = (float) (1.0 / n / c->groups_local);
    float grad_scale = (float) ((1.0 - c->lambda_ie) / H / c->groups_total / n);
    be->train->xent(be, slots + poa_loss_slot(H, head, term), ds_es + (size_t) row0 * ldds, ldds,
                    s_es + (size_t) row0 * lds, lds, pi, K, n, 0, NULL, n, K,
                    1.0f / c->student_temp, value_scale, grad_scale);
}

/* iBOT (docs/algorithm.md §6.8): Σ_q w_q CE(Tp_q, Sp_q) / 2B per branch, weights λ and 1 − λ, ×
 * ibot weight. */
static void ibot_terms(poa_backend *be, const poa_loss_cfg *c, int head, int K, double *slots,
                       const float *t_patch, int ldtp, const float *mask_w, int n_masked,
                       const float *s_is, const float *s_es, int lds, float *ds_is, float *ds_es,
                       int ldds, int only)
{
    const int H = c->n_heads, row0 = poa_loss_student_rows(c, 0);
    const double norm = 1.0 / (2.0 * c->B);
    const struct {
        poa_loss_term term;
        double weight;
        const float *s;
        float *ds;
    } br[2] = {{POA_TERM_IBOT_IS, c->lambda_ie, s_is, ds_is},
               {POA_TERM_IBOT_ES, 1.0 - c->lambda_ie, s_es, ds_es}};
    for (int x = 0; x < 2; x++) {
        if (!enabled(c, br[x].term) || (only >= 0 && x != only)) continue;
        float value_scale = (float) (norm / c->groups_local);
        float grad_scale = (float) (c->ibot_weight * br[x].weight / H / c->groups_total * norm);
        be->train->xent(be, slots + poa_loss_slot(H, head, br[x].term),
                        br[x].ds + (size_t) row0 * ldds, ldds, br[x].s + (size_t) row0 * lds, lds,
                        t_patch, ldtp, n_masked, 0, mask_w, n_masked, K, 1.0f / c->student_temp,
                        value_scale, grad_scale);
    }
}

/* The official code computes the global-crop DINO and distillation terms (and KoLeo) only when
 * dino.loss_weight > 0, the local-crop ones whenever there are local crops, and iBOT when
 * ibot.loss_weight > 0 and iBOT is active.  only: −1 both branches, else POA_LOSS_IS or
 * POA_LOSS_ES (each term's arithmetic and its accumulation order are the same). */
static void head_terms(poa_backend *be, const poa_loss_cfg *c, int head, int K, double *slots,
                       const float *t_cls, int ldt, const float *t_patch, int ldtp,
                       const float *mask_w, int n_masked, const float *s_is, const float *s_es,
                       int lds, float *ds_is, float *ds_es, int ldds, float *scratch, int only)
{
    POA_ASSERT(head >= 0 && head < c->n_heads && c->groups_local >= 1 && c->groups_total >= 1);
    const int B = c->B, nL = c->n_local * c->B;
    const int es = only != POA_LOSS_IS;
    if (c->dino_weight > 0) {
        cross_view_terms(be, c, head, K, slots, t_cls, ldt, s_is, s_es, lds, ds_is, ds_es, ldds,
                         scratch, only);
        if (es)
            distill_part(be, c, head, K, slots, POA_TERM_DISTILL_GLOBAL, 0, 2 * B, s_is, s_es, lds,
                         ds_es, ldds, scratch);
    }
    if (es)
        distill_part(be, c, head, K, slots, POA_TERM_DISTILL_LOCAL, 2 * B, nL, s_is, s_es, lds,
                     ds_es, ldds, scratch);
    if (t_patch && n_masked > 0 && c->ibot_weight > 0)
        ibot_terms(be, c, head, K, slots, t_patch, ldtp, mask_w, n_masked, s_is, s_es, lds, ds_is,
                   ds_es, ldds, only);
}

void poa_loss_head(poa_backend *be, const poa_loss_cfg *c, int head, int K, double *slots,
                   const float *t_cls, int ldt, const float *t_patch, int ldtp, const float *mask_w,
                   int n_masked, const float *s_is, const float *s_es, int lds, float *ds_is,
                   float *ds_es, int ldds, float *scratch)
{
    head_terms(be, c, head, K, slots, t_cls, ldt, t_patch, ldtp, mask_w, n_masked, s_is, s_es, lds,
               ds_is, ds_es, ldds, scratch, -1);
}

void poa_loss_head_branch(poa_backend *be, const poa_loss_cfg *c, int head, int K, int branch,
                          double *slots, const float *t_cls, int ldt, const float *t_patch,
                          int ldtp, const float *mask_w, int n_masked, const float *s_is,
                          const float *s_es, int lds, float *ds, int ldds, float *scratch)
{
    POA_ASSERT(branch == POA_LOSS_IS || branch == POA_LOSS_ES);
    head_terms(be, c, head, K, slots, t_cls, ldt, t_patch, ldtp, mask_w, n_masked, s_is, s_es, lds,
               branch == POA_LOSS_IS ? ds : NULL, branch == POA_LOSS_ES ? ds : NULL, ldds, scratch,
               branch);
}

/* ---------------------------------------------------------------------------------- KoLeo */

size_t poa_loss_koleo_scratch_bytes(const poa_backend *be, const poa_loss_cfg *c, int d_max)
{
    return be->train->koleo_scratch_bytes(be, c->B, d_max);
}

/* docs/algorithm.md §6.7: per global crop over the group's B images (never mixing the two crops of
 * an image), both branches, γ·½·(Σ_g KoLeo(Z^IS_g) + Σ_g KoLeo(Z^ES_g)); not λ-weighted. */
void poa_loss_koleo(poa_backend *be, const poa_loss_cfg *c, double *slots, const float *z_is,
                    int ldz_is, int d_is, float *dz_is, int lddz_is, const float *z_es, int ldz_es,
                    int d_es, float *dz_es, int lddz_es, void *scratch)
{
    if (!(c->dino_weight > 0 && c->koleo_weight > 0)) return;
    POA_CHECK(c->B >= 2, "KoLeo needs at least 2 images per rank group (B = %d)", c->B);
    const int B = c->B, H = c->n_heads;
    const float value_scale = 1.0f / c->groups_local;
    const float grad_scale = (float) (c->koleo_weight * 0.5 / c->groups_total);
    const struct {
        poa_loss_term term;
        const float *z;
        int ldz, d;
        float *dz;
        int lddz;
    } br[2] = {{POA_TERM_KOLEO_IS, z_is, ldz_is, d_is, dz_is, lddz_is},
               {POA_TERM_KOLEO_ES, z_es, ldz_es, d_es, dz_es, lddz_es}};
    for (int x = 0; x < 2; x++) {
        if (!enabled(c, br[x].term)) continue;
        for (int g = 0; g < 2; g++)
            be->train->koleo(be, slots + poa_loss_slot(H, 0, br[x].term),
                             br[x].dz + (size_t) g * B * br[x].lddz, br[x].lddz,
                             br[x].z + (size_t) g * B * br[x].ldz, br[x].ldz, B, br[x].d,
                             value_scale, grad_scale, scratch);
    }
}

double poa_loss_total(const poa_loss_cfg *c, const double *slots_host)
{
    const int H = c->n_heads;
    const double lam = c->lambda_ie;
    double total = 0;
    for (int h = 0; h < H; h++) {
        const double *s = slots_host + poa_loss_slot(H, h, 0);
        total += (c->dino_weight * (lam * s[POA_TERM_DINO_IS] + (1 - lam) * s[POA_TERM_DINO_ES1]) +
                  (1 - lam) * (s[POA_TERM_DISTILL_GLOBAL] + s[POA_TERM_DISTILL_LOCAL]) +
                  c->ibot_weight * (lam * s[POA_TERM_IBOT_IS] + (1 - lam) * s[POA_TERM_IBOT_ES])) /
                 H;
    }
    total += c->koleo_weight * 0.5 *
             (slots_host[poa_loss_slot(H, 0, POA_TERM_KOLEO_IS)] +
              slots_host[poa_loss_slot(H, 0, POA_TERM_KOLEO_ES)]);
    return total;
}
