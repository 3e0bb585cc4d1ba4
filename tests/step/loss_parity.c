/* loss_parity.c — the POA loss (src/model/loss.h) against the PyTorch reference
 * tests/reference/loss_ref.py: every loss term, the total, the Sinkhorn-Knopp targets, and the
 * gradient w.r.t. every student logits/feature matrix, for the full loss and for every term
 * alone (so a wrong backward of any single term fails).  Relative error ≤ 1e-4 (norm-wise, per
 * tensor); every tensor that differs is reported.
 *
 * The same program checks the CUDA backend (fp32, TF32 off) with the same tolerance.
 *
 * usage: loss_parity [--backend cpu|cuda] REF.h5 (tests/step/parity_backend.h; run by
 *        test_loss_parity.sh on the CPU, test_gpu_step_parity.sh on CUDA) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "model/loss.h"
#include "tests/step/h5_test_read.h"
#include "tests/step/parity_backend.h"
#include "tests/step/step_test_util.h"

#include <math.h>
#include <string.h>

#define TOL   1e-4
#define MAX_G 4
#define MAX_H 4

static const char *g_path;
static poa_backend *be;
static double g_worst; /* largest relative error of a passing tensor (the margin) */
static int g_compared;

typedef struct group_data {
    int n_m;
    float *mask_w;                      /* [n_m]                    */
    float *z_is, *z_es;                 /* [2B, D], [2B, d]         */
    float *s_is[MAX_H], *s_es[MAX_H];   /* [rows, K]                */
    float *ds_is[MAX_H], *ds_es[MAX_H]; /* gradients (+=)           */
    float *dz_is, *dz_es;
} group_data;

typedef struct case_data {
    hid_t f;
    char name[64];
    int B, V, G, D, d, H, K[MAX_H], ibot;
    poa_loss_cfg cfg;
    group_data g[MAX_G];
    float *t_logits[MAX_H], *tp_logits[MAX_H]; /* all groups' rows, group-major */
    float *targets[MAX_H], *ptargets[MAX_H];
    int n_m_total;
    double *slots;
    float *scratch, *kscratch;
    double *sk_ws;
} case_data;

static float *upload(const float *host, size_t n)
{
    float *p = be->iface->alloc(be, sizeof(float) * (n ? n : 1));
    if (n) be->iface->upload(be, p, host, sizeof(float) * n);
    return p;
}

static float *load(case_data *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static float *load(case_data *c, const char *fmt, ...)
{
    char path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    size_t n;
    float *h = h5r_floats(c->f, path, &n, NULL);
    float *p = upload(h, n);
    free(h);
    return p;
}

/* Compare a backend tensor with the reference dataset at `path`; prints and counts failures. */
static int compare(case_data *c, const char *label, const float *got, size_t n, const char *path)
{
    size_t nr;
    float *ref = h5r_floats(c->f, path, &nr, NULL);
    if (nr != n) {
        fprintf(stderr, "%s/%s: %zu values, reference has %zu\n", c->name, label, n, nr);
        free(ref);
        return 1;
    }
    float *host = malloc(sizeof(float) * (n ? n : 1));
    be->iface->download(be, host, got, sizeof(float) * n);
    double num = 0, den = 0, worst = -1;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double) host[i] - ref[i];
        num += d * d, den += (double) ref[i] * ref[i];
        if (fabs(d) > worst) worst = fabs(d), wi = i;
    }
    int bad = den == 0 ? num != 0 : sqrt(num / den) > TOL;
    g_compared++;
    if (!bad && den > 0 && sqrt(num / den) > g_worst) g_worst = sqrt(num / den);
    if (bad)
        fprintf(stderr, "%s/%s: relative error %.3e (|ref| %.3e; worst [%zu] got %.9g want %.9g)\n",
                c->name, label, den == 0 ? INFINITY : sqrt(num / den), sqrt(den), wi,
                (double) host[wi], (double) ref[wi]);
    free(ref);
    free(host);
    return bad;
}

static int rows_of(const case_data *c, int g)
{
    return poa_loss_student_rows(&c->cfg, c->g[g].n_m);
}

static void load_case(case_data *c)
{
    const char *n = c->name;
    c->B = (int) h5r_attr1(c->f, n, "B");
    c->V = (int) h5r_attr1(c->f, n, "V");
    c->G = (int) h5r_attr1(c->f, n, "G");
    c->D = (int) h5r_attr1(c->f, n, "D");
    c->d = (int) h5r_attr1(c->f, n, "d");
    c->ibot = (int) h5r_attr1(c->f, n, "ibot");
    double Ks[MAX_H];
    c->H = h5r_attr(c->f, n, "K", Ks, MAX_H);
    assert_true(c->H <= MAX_H && c->G <= MAX_G);
    for (int h = 0; h < c->H; h++) c->K[h] = (int) Ks[h];
    c->cfg = poa_loss_cfg_official(c->B, c->V, c->H);
    c->cfg.lambda_ie = (float) h5r_attr1(c->f, n, "lam");
    c->cfg.dino_weight = (float) h5r_attr1(c->f, n, "wd");
    c->cfg.koleo_weight = (float) h5r_attr1(c->f, n, "kw");
    c->cfg.ibot_weight = (float) h5r_attr1(c->f, n, "iw");
    c->cfg.groups_local = c->cfg.groups_total = c->G;
    c->n_m_total = 0;
    for (int g = 0; g < c->G; g++) {
        char p[128];
        snprintf(p, sizeof p, "%s/g%d", n, g);
        group_data *gd = &c->g[g];
        gd->n_m = (int) h5r_attr1(c->f, p, "n_m");
        c->n_m_total += gd->n_m;
        gd->mask_w = load(c, "%s/mask_w", p);
        gd->z_is = load(c, "%s/z_is", p);
        gd->z_es = load(c, "%s/z_es", p);
        gd->dz_is = upload(NULL, 0), gd->dz_es = upload(NULL, 0);
        be->iface->free(be, gd->dz_is), be->iface->free(be, gd->dz_es);
        gd->dz_is = be->iface->alloc(be, sizeof(float) * 2 * c->B * c->D);
        gd->dz_es = be->iface->alloc(be, sizeof(float) * 2 * c->B * c->d);
        for (int h = 0; h < c->H; h++) {
            gd->s_is[h] = load(c, "%s/s_is_h%d", p, h);
            gd->s_es[h] = load(c, "%s/s_es_h%d", p, h);
            size_t sz = sizeof(float) * (size_t) rows_of(c, g) * c->K[h];
            gd->ds_is[h] = be->iface->alloc(be, sz);
            gd->ds_es[h] = be->iface->alloc(be, sz);
        }
    }
    /* teacher logits of all groups, group-major, natural crop order */
    size_t scratch = 0;
    for (int h = 0; h < c->H; h++) {
        int K = c->K[h];
        c->t_logits[h] = be->iface->alloc(be, sizeof(float) * 2 * c->B * c->G * K);
        c->tp_logits[h] = be->iface->alloc(be, sizeof(float) * (c->n_m_total + 1) * K);
        c->targets[h] = be->iface->alloc(be, sizeof(float) * 2 * c->B * c->G * K);
        c->ptargets[h] = be->iface->alloc(be, sizeof(float) * (c->n_m_total + 1) * K);
        int at = 0;
        for (int g = 0; g < c->G; g++) {
            char p[128];
            size_t nn;
            snprintf(p, sizeof p, "%s/g%d/t_logits_h%d", n, g, h);
            float *x = h5r_floats(c->f, p, &nn, NULL);
            be->iface->upload(be, c->t_logits[h] + (size_t) 2 * c->B * g * K, x,
                              sizeof(float) * nn);
            free(x);
            snprintf(p, sizeof p, "%s/g%d/tp_logits_h%d", n, g, h);
            x = h5r_floats(c->f, p, &nn, NULL);
            if (nn) be->iface->upload(be, c->tp_logits[h] + (size_t) at * K, x, sizeof(float) * nn);
            at += c->g[g].n_m;
            free(x);
        }
        size_t s = poa_loss_head_scratch(&c->cfg, K);
        scratch = s > scratch ? s : scratch;
    }
    c->scratch = be->iface->alloc(be, sizeof(float) * scratch);
    int dmax = c->D > c->d ? c->D : c->d;
    c->kscratch = be->iface->alloc(be, poa_loss_koleo_scratch_bytes(be, &c->cfg, dmax));
    c->slots = be->iface->alloc(be, sizeof(double) * poa_loss_n_slots(c->H));
    c->sk_ws = be->iface->alloc(be, sizeof(double) * 2 * 512);
}

static void teacher_targets(case_data *c)
{
    poa_collective one = poa_collective_single();
    for (int h = 0; h < c->H; h++) {
        int K = c->K[h];
        assert_true(K <= 512);
        poa_sinkhorn_knopp(be, &one, c->targets[h], K, c->t_logits[h], K, 2 * c->B * c->G, K,
                           (float) h5r_attr1(c->f, c->name, "tt"), 3, c->sk_ws);
        if (c->ibot)
            poa_sinkhorn_knopp(be, &one, c->ptargets[h], K, c->tp_logits[h], K, c->n_m_total, K,
                               (float) h5r_attr1(c->f, c->name, "tt"), 3, c->sk_ws);
    }
}

static void run_loss(case_data *c, unsigned terms)
{
    c->cfg.terms = terms;
    be->iface->zero(be, c->slots, sizeof(double) * poa_loss_n_slots(c->H));
    int p_at = 0;
    for (int g = 0; g < c->G; g++) {
        group_data *gd = &c->g[g];
        int rows = rows_of(c, g);
        for (int h = 0; h < c->H; h++) {
            int K = c->K[h];
            be->iface->zero(be, gd->ds_is[h], sizeof(float) * rows * K);
            be->iface->zero(be, gd->ds_es[h], sizeof(float) * rows * K);
            poa_loss_head(be, &c->cfg, h, K, c->slots, c->targets[h] + (size_t) 2 * c->B * g * K, K,
                          c->ibot ? c->ptargets[h] + (size_t) p_at * K : NULL, K, gd->mask_w,
                          gd->n_m, gd->s_is[h], gd->s_es[h], K, gd->ds_is[h], gd->ds_es[h], K,
                          c->scratch);
        }
        be->iface->zero(be, gd->dz_is, sizeof(float) * 2 * c->B * c->D);
        be->iface->zero(be, gd->dz_es, sizeof(float) * 2 * c->B * c->d);
        poa_loss_koleo(be, &c->cfg, c->slots, gd->z_is, c->D, c->D, gd->dz_is, c->D, gd->z_es, c->d,
                       c->d, gd->dz_es, c->d, c->kscratch);
        p_at += gd->n_m;
    }
}

/* Gradients of every group/head/branch against <prefix>/g<g>/... */
static int compare_grads(case_data *c, const char *prefix)
{
    int bad = 0;
    char label[128], path[256];
    for (int g = 0; g < c->G; g++) {
        group_data *gd = &c->g[g];
        for (int h = 0; h < c->H; h++) {
            size_t n = (size_t) rows_of(c, g) * c->K[h];
            const char *br[2] = {"s_is", "s_es"};
            float *ds[2] = {gd->ds_is[h], gd->ds_es[h]};
            for (int x = 0; x < 2; x++) {
                snprintf(label, sizeof label, "%s: g%d d%s_h%d", prefix, g, br[x], h);
                snprintf(path, sizeof path, "%s/%s/g%d/d%s_h%d", c->name, prefix, g, br[x], h);
                bad += compare(c, label, ds[x], n, path);
            }
        }
        snprintf(label, sizeof label, "%s: g%d dz_is", prefix, g);
        snprintf(path, sizeof path, "%s/%s/g%d/dz_is", c->name, prefix, g);
        bad += compare(c, label, gd->dz_is, (size_t) 2 * c->B * c->D, path);
        snprintf(label, sizeof label, "%s: g%d dz_es", prefix, g);
        snprintf(path, sizeof path, "%s/%s/g%d/dz_es", c->name, prefix, g);
        bad += compare(c, label, gd->dz_es, (size_t) 2 * c->B * c->d, path);
    }
    return bad;
}

static int compare_slots(case_data *c)
{
    int n = poa_loss_n_slots(c->H), bad = 0;
    char path[128];
    snprintf(path, sizeof path, "%s/slots", c->name);
    size_t nr;
    double *ref = h5r_doubles(c->f, path, &nr, NULL);
    assert_int_equal((int) nr, n);
    for (int i = 0; i < n; i++) {
        int head = i < c->H * POA_N_HEAD_TERMS ? i / POA_N_HEAD_TERMS : -1;
        poa_loss_term t = head >= 0
                              ? (poa_loss_term) (i % POA_N_HEAD_TERMS)
                              : (poa_loss_term) (POA_N_HEAD_TERMS + i - c->H * POA_N_HEAD_TERMS);
        double e = fabs(c->slots[i] - ref[i]) / (fabs(ref[i]) > 0 ? fabs(ref[i]) : 1.0);
        if (ref[i] == 0 ? c->slots[i] != 0 : e > TOL) {
            fprintf(stderr,
                    "%s: loss term %s (head %d): %.9g, reference %.9g (relative error %.2e)\n",
                    c->name, poa_loss_term_name(t), head, c->slots[i], ref[i], e);
            bad++;
        }
    }
    double total = poa_loss_total(&c->cfg, c->slots), want = h5r_attr1(c->f, c->name, "total");
    if (fabs(total - want) > TOL * fabs(want)) {
        fprintf(stderr, "%s: total loss %.9g, reference %.9g\n", c->name, total, want);
        bad++;
    }
    free(ref);
    return bad;
}

static int compare_targets(case_data *c)
{
    int bad = 0, p_at = 0;
    char label[64], path[256];
    for (int g = 0; g < c->G; g++) {
        for (int h = 0; h < c->H; h++) {
            int K = c->K[h];
            snprintf(label, sizeof label, "SK targets g%d h%d", g, h);
            snprintf(path, sizeof path, "%s/g%d/targets_h%d", c->name, g, h);
            bad += compare(c, label, c->targets[h] + (size_t) 2 * c->B * g * K,
                           (size_t) 2 * c->B * K, path);
            if (c->ibot && c->g[g].n_m) {
                snprintf(label, sizeof label, "SK patch targets g%d h%d", g, h);
                snprintf(path, sizeof path, "%s/g%d/ptargets_h%d", c->name, g, h);
                bad += compare(c, label, c->ptargets[h] + (size_t) p_at * K,
                               (size_t) c->g[g].n_m * K, path);
            }
        }
        p_at += c->g[g].n_m;
    }
    return bad;
}

static void test_case(void **state)
{
    case_data c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "%s", (const char *) *state);
    c.f = H5Fopen(g_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(c.f >= 0);
    load_case(&c);
    teacher_targets(&c);
    int bad = compare_targets(&c);
    run_loss(&c, POA_LOSS_ALL_TERMS);
    bad += compare_slots(&c);
    bad += compare_grads(&c, ".");
    for (int t = 0; t < POA_N_TERMS; t++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "term_%s", poa_loss_term_name((poa_loss_term) t));
        run_loss(&c, 1u << t);
        bad += compare_grads(&c, prefix);
    }
    H5Fclose(c.f);
    printf("%s: %d tensors compared, largest relative error of the matching ones %.2e\n", c.name,
           g_compared, g_worst);
    g_compared = 0, g_worst = 0;
    if (bad) fail_msg("%s: %d tensors or values differ from the PyTorch reference", c.name, bad);
}

int main(int argc, char **argv)
{
    int status;
    be = parity_backend_open(argc, argv, &g_path, &status);
    if (!be) return status;
    int rc = h5r_run_cases("loss_parity", g_path, ".", test_case);
    poa_backend_destroy(be);
    return rc;
}
