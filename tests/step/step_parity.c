/* step_parity.c — complete POA steps (src/train/step.h) against the PyTorch reference
 * tests/reference/step_ref.py on the TINY model: from the same parameters, crops, masks,
 * sub-networks and drop-path decisions, every loss term, the schedule values, both gradient norms
 * and every gradient before clipping of every step, and at the end every parameter, both AdamW
 * moments and every teacher tensor.  Relative error ≤ 1e-4 per tensor (norm-wise; the reference
 * runs in float64); every tensor that differs is reported.
 *
 * The same program checks the CUDA backend (fp32 activations, TF32 off) against the same
 * reference: every gradient, moment and teacher tensor within the same 1e-4.
 *
 * usage: step_parity [--backend cpu|cuda] REF.h5 (tests/step/parity_backend.h; run by
 *        test_step_parity.sh on the CPU, test_gpu_step_parity.sh on CUDA) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "train/step.h"
#include "tests/step/h5_test_read.h"
#include "tests/step/parity_backend.h"

#include <math.h>
#include <string.h>

#define TOL 1e-4
/* The update (after − initial) of a parameter or teacher tensor is checked more loosely than the
 * tensor itself: AdamW's m/(sqrt(v) + eps) turns the float32 rounding of gradient entries near
 * eps into visible differences, and a float32 EMA step of size (1 − m)·|θ_S − θ_T| ≈ 1e-4·|θ|
 * carries a relative rounding error of ~1e-4 by itself.  A wrong lr/wd multiplier, freeze or
 * momentum is off by far more. */
#define UPDATE_TOL 1e-2

static const char *g_path;
static poa_backend *be;
static poa_model model;
static double g_worst;
static char g_worst_label[256];
static int g_compared;

typedef struct ctx {
    hid_t f;
    const char *name;
    int bad;
} ctx;

/* n floats of backend memory against the float64 dataset at path; prints if they differ. */
static void compare_tensor(ctx *c, const char *label, const float *got_dev, size_t n,
                           const char *path, double tol, size_t skip0, size_t skip1)
{
    size_t nr;
    double *ref = h5r_doubles(c->f, path, &nr, NULL);
    float *got = malloc(sizeof(float) * (n ? n : 1));
    be->iface->download(be, got, got_dev, sizeof(float) * n);
    double num = 0, den = 0, worst = -1;
    size_t wi = 0;
    if (nr != n) {
        fprintf(stderr, "%s: %s: %zu values, reference %zu\n", c->name, label, n, nr);
        c->bad++;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (i >= skip0 && i < skip1) continue;
            double d = got[i] - ref[i];
            num += d * d, den += ref[i] * ref[i];
            if (fabs(d) > worst) worst = fabs(d), wi = i;
        }
        double e = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0);
        g_compared++;
        if (e > tol) {
            fprintf(stderr,
                    "%s: %s: relative error %.3e > %.0e (|ref| %.3e; worst [%zu] got %.9g "
                    "want %.9g)\n",
                    c->name, label, e, tol, sqrt(den), wi, (double) got[wi], ref[wi]);
            c->bad++;
        } else if (e > g_worst) {
            g_worst = e;
            snprintf(g_worst_label, sizeof g_worst_label, "%s", label);
        }
    }
    free(ref);
    free(got);
}

static void compare_scalar(ctx *c, const char *label, double got, double want, double tol)
{
    double e = fabs(got - want) / (fabs(want) > 0 ? fabs(want) : 1.0);
    if (e > tol) {
        fprintf(stderr, "%s: %s: %.12g, reference %.12g (relative error %.2e)\n", c->name, label,
                got, want, e);
        c->bad++;
    }
}

/* The key part [D, 2D) of a block's qkv bias has a mathematically zero gradient (softmax is
 * invariant to adding q·b_k to every logit of a query): its float32 gradient is rounding noise
 * near Adam's eps, so AdamW moves it by up to ±lr in float32 and by ~1e-13 in the float64
 * reference, as it does in the official fp16/fp32 code.  Updated parameters are compared without
 * that slice; check_key_bias_noise() verifies that its gradient is indeed noise. */
static int key_bias_slice(const poa_param_desc *d, size_t *s0, size_t *s1)
{
    *s0 = *s1 = 0;
    if (!strstr(d->name, "attn.qkv.linear.bias")) return 0;
    *s0 = (size_t) model.cfg.max_embed_dim;
    *s1 = 2 * *s0;
    return 1;
}

static void check_key_bias_noise(ctx *c, const float *grads, long long it)
{
    for (int i = 0; i < model.table.n; i++) {
        const poa_param_desc *d = &model.table.p[i];
        size_t s0, s1;
        if (!key_bias_slice(d, &s0, &s1)) continue;
        float *g = malloc(sizeof(float) * d->numel);
        be->iface->download(be, g, grads + d->offset, sizeof(float) * d->numel);
        double key = 0, rest = 0;
        for (size_t k = 0; k < d->numel; k++)
            *(k >= s0 && k < s1 ? &key : &rest) += (double) g[k] * g[k];
        if (sqrt(key) > 1e-4 * sqrt(rest)) {
            fprintf(stderr, "%s: step %lld: key-bias gradient of %s is not noise (%.3e vs %.3e)\n",
                    c->name, it, d->name, sqrt(key), sqrt(rest));
            c->bad++;
        }
        free(g);
    }
}

/* Every parameter tensor of a flat buffer against <prefix>/<key>. */
static void compare_all(ctx *c, const char *what, const float *buf, const char *prefix, double tol,
                        int skip_key_bias)
{
    for (int i = 0; i < model.table.n; i++) {
        const poa_param_desc *d = &model.table.p[i];
        char key[160], path[320], label[220];
        poa_model_param_key(&model, i, key, sizeof key);
        snprintf(path, sizeof path, "%s/%s", prefix, key);
        snprintf(label, sizeof label, "%s %s", what, key);
        size_t s0 = 0, s1 = 0;
        if (skip_key_bias) key_bias_slice(d, &s0, &s1);
        compare_tensor(c, label, buf + d->offset, d->numel, path, tol, s0, s1);
    }
}

/* The update of every tensor, (after − initial), against the reference's. */
static void compare_updates(ctx *c, const char *what, const float *params, const char *init_prefix,
                            const char *ref_prefix, double tol)
{
    for (int i = 0; i < model.table.n; i++) {
        const poa_param_desc *d = &model.table.p[i];
        char key[160], path[400];
        poa_model_param_key(&model, i, key, sizeof key);
        size_t n;
        snprintf(path, sizeof path, "%s/%s", init_prefix, key);
        float *init = h5r_floats(c->f, path, &n, NULL);
        snprintf(path, sizeof path, "%s/%s", ref_prefix, key);
        double *ref = h5r_doubles(c->f, path, &n, NULL);
        float *got = malloc(sizeof(float) * n);
        be->iface->download(be, got, params + d->offset, sizeof(float) * n);
        double num = 0, den = 0, worst = -1;
        size_t wi = 0, s0, s1;
        key_bias_slice(d, &s0, &s1);
        for (size_t k = 0; k < n; k++) {
            if (k >= s0 && k < s1) continue;
            double dg = (double) got[k] - init[k], dr = ref[k] - init[k];
            num += (dg - dr) * (dg - dr), den += dr * dr;
            if (fabs(dg - dr) > worst) worst = fabs(dg - dr), wi = k;
        }
        double e = den > 0 ? sqrt(num / den) : sqrt(num);
        if (e > tol) {
            fprintf(stderr, "%s: %s update of %s: relative error %.3e (worst [%zu] %.6g vs %.6g)\n",
                    c->name, what, key, e, wi, (double) got[wi] - init[wi], ref[wi] - init[wi]);
            c->bad++;
        }
        free(init), free(ref), free(got);
    }
}

static void load_params(hid_t f, float *buf, const char *prefix)
{
    for (int i = 0; i < model.table.n; i++) {
        const poa_param_desc *d = &model.table.p[i];
        char key[160], path[320];
        poa_model_param_key(&model, i, key, sizeof key);
        snprintf(path, sizeof path, "%s/%s", prefix, key);
        size_t n;
        float *h = h5r_floats(f, path, &n, NULL);
        assert_int_equal(n, d->numel);
        be->iface->upload(be, buf + d->offset, h, sizeof(float) * n);
        free(h);
    }
}

static poa_step_config config_from(hid_t f, int G, int droppath)
{
    poa_step_config cfg = poa_step_config_official(&model, (int) h5r_attr1(f, "hparams", "B"), G,
                                                   (int) h5r_attr1(f, "hparams", "V"));
    poa_schedule_hparams *h = &cfg.sched;
#define HP(field) h->field = h5r_attr1(f, "hparams", #field)
    HP(epoch_length), HP(epochs), HP(lr), HP(min_lr), HP(warmup_epochs), HP(weight_decay);
    HP(weight_decay_end), HP(momentum_teacher), HP(final_momentum_teacher);
    HP(warmup_teacher_temp), HP(teacher_temp), HP(warmup_teacher_temp_epochs);
    HP(freeze_last_layer_epochs), HP(ibot_activate_epochs), HP(iter_num_scale);
#undef HP
    cfg.loss.lambda_ie = (float) h5r_attr1(f, "hparams", "lambda_ie");
    cfg.loss.dino_weight = (float) h5r_attr1(f, "hparams", "dino_weight");
    cfg.loss.koleo_weight = (float) h5r_attr1(f, "hparams", "koleo_weight");
    cfg.loss.ibot_weight = (float) h5r_attr1(f, "hparams", "ibot_weight");
    cfg.clip_grad = h5r_attr1(f, "hparams", "clip_grad");
    cfg.drop_path_rate = droppath ? 0.2 : 0.0;
    cfg.overrides = 1; /* the reference's sub-networks (the intact one among them) and draws */
    return cfg;
}

static void run_one_step(ctx *c, poa_step *st, const char *sp, int G, long long it, int droppath)
{
    char path[320];
    size_t n;
    poa_step_batch b;
    memset(&b, 0, sizeof b);
    b.it = it;
    snprintf(path, sizeof path, "%s/global_crops", sp);
    float *h = h5r_floats(c->f, path, &n, NULL);
    float *glob = be->iface->alloc(be, sizeof(float) * n);
    be->iface->upload(be, glob, h, sizeof(float) * n);
    free(h);
    snprintf(path, sizeof path, "%s/local_crops", sp);
    h = h5r_floats(c->f, path, &n, NULL);
    float *loc = be->iface->alloc(be, sizeof(float) * n);
    be->iface->upload(be, loc, h, sizeof(float) * n);
    free(h);
    snprintf(path, sizeof path, "%s/masks", sp);
    float *mf = h5r_floats(c->f, path, &n, NULL);
    uint8_t *masks = malloc(n);
    for (size_t i = 0; i < n; i++) masks[i] = mf[i] != 0;
    free(mf);
    snprintf(path, sizeof path, "%s/subnets", sp);
    double *sub = h5r_doubles(c->f, path, &n, NULL);
    poa_subnet subnets[POA_STEP_MAX_GROUPS];
    for (int g = 0; g < G; g++)
        assert_int_equal(
            poa_subnet_make(&model.cfg, (int) sub[2 * g], (int) sub[2 * g + 1], &subnets[g], NULL),
            POA_OK);
    free(sub);
    float *dp[4 * POA_STEP_MAX_GROUPS] = {0};
    if (droppath)
        for (int g = 0; g < G; g++)
            for (int call = 0; call < 4; call++) {
                snprintf(path, sizeof path, "%s/droppath_g%d_c%d", sp, g, call);
                dp[g * 4 + call] = h5r_floats(c->f, path, NULL, NULL);
            }
    b.global_crops = glob;
    b.local_crops = loc;
    b.masks = masks;
    b.subnets = subnets;
    b.droppath = droppath ? (const float *const *) dp : NULL;

    poa_step_report r;
    poa_status rc = poa_step_run(st, &b, &r);
    if (rc != POA_OK) fail_msg("%s: step %lld failed: %s", c->name, it, r.bad_what);
    char line[2048];
    poa_step_report_format(st, &r, line, sizeof line);
    printf("%s: %s\n", c->name, line);

    /* schedule values, loss terms, gradient norms, gradients before clipping */
    compare_scalar(c, "lr", r.sched.lr, h5r_attr1(c->f, sp, "lr"), 1e-12);
    compare_scalar(c, "last_layer_lr", r.sched.last_layer_lr, h5r_attr1(c->f, sp, "last_layer_lr"),
                   1e-12);
    compare_scalar(c, "wd", r.sched.wd, h5r_attr1(c->f, sp, "wd"), 1e-12);
    compare_scalar(c, "momentum", r.sched.momentum, h5r_attr1(c->f, sp, "momentum"), 1e-12);
    compare_scalar(c, "teacher_temp", r.sched.teacher_temp, h5r_attr1(c->f, sp, "teacher_temp"),
                   1e-12);
    compare_scalar(c, "iBOT active", r.sched.ibot_active, h5r_attr1(c->f, sp, "ibot"), 0);
    snprintf(path, sizeof path, "%s/slots", sp);
    double *slots = h5r_doubles(c->f, path, &n, NULL);
    assert_int_equal((int) n, r.n_slots);
    for (int i = 0; i < r.n_slots; i++) {
        char label[64];
        snprintf(label, sizeof label, "step %lld loss slot %d", it, i);
        if (slots[i] == 0)
            compare_scalar(c, label, r.slots[i] + 1.0, 1.0, 0);
        else
            compare_scalar(c, label, r.slots[i], slots[i], TOL);
    }
    free(slots);
    compare_scalar(c, "total loss", r.loss, h5r_attr1(c->f, sp, "total"), TOL);
    compare_scalar(c, "backbone grad norm", r.grad_norm[0],
                   h5r_attr1(c->f, sp, "grad_norm_backbone"), TOL);
    compare_scalar(c, "head grad norm", r.grad_norm[1], h5r_attr1(c->f, sp, "grad_norm_head"), TOL);
    char prefix[256], what[64];
    snprintf(prefix, sizeof prefix, "%s/grads", sp);
    snprintf(what, sizeof what, "step %lld grad", it);
    compare_all(c, what, poa_step_grads(st), prefix, TOL, 0);
    check_key_bias_noise(c, poa_step_grads(st), it);

    for (int i = 0; i < 4 * G; i++) free(dp[i]);
    free(masks);
    be->iface->free(be, glob);
    be->iface->free(be, loc);
}

static void test_case(void **state)
{
    ctx c = {0};
    c.name = *state;
    c.f = H5Fopen(g_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char cp[128], sp[192];
    snprintf(cp, sizeof cp, "cases/%s", c.name);
    int G = (int) h5r_attr1(c.f, cp, "G"), n_steps = (int) h5r_attr1(c.f, cp, "n_steps");
    int droppath = (int) h5r_attr1(c.f, cp, "droppath");
    long long it0 = (long long) h5r_attr1(c.f, cp, "it0");
    poa_step_config cfg = config_from(c.f, G, droppath);
    poa_step *st = poa_step_create(be, &model, &cfg, NULL, NULL);
    load_params(c.f, poa_step_params(st), "init/student");
    load_params(c.f, poa_step_teacher(st), "init/teacher");
    poa_step_params_written(st);
    for (int k = 0; k < n_steps; k++) {
        snprintf(sp, sizeof sp, "%s/step%d", cp, k);
        run_one_step(&c, st, sp, G, it0 + k, droppath);
    }
    snprintf(sp, sizeof sp, "%s/final/params", cp);
    compare_all(&c, "param", poa_step_params(st), sp, TOL, 1);
    compare_updates(&c, "param", poa_step_params(st), "init/student", sp, UPDATE_TOL);
    snprintf(sp, sizeof sp, "%s/final/exp_avg", cp);
    compare_all(&c, "exp_avg", poa_step_optim(st)->m, sp, TOL, 0);
    snprintf(sp, sizeof sp, "%s/final/exp_avg_sq", cp);
    compare_all(&c, "exp_avg_sq", poa_step_optim(st)->v, sp, TOL, 0);
    snprintf(sp, sizeof sp, "%s/final/teacher", cp);
    compare_all(&c, "teacher", poa_step_teacher(st), sp, TOL, 1);
    /* the EMA moves the teacher by (1 − m)(θ_S − θ_T): check that move itself */
    compare_updates(&c, "teacher", poa_step_teacher(st), "init/teacher", sp, UPDATE_TOL);
    assert_int_equal(poa_step_optim(st)->step, n_steps);
    poa_step_destroy(st);
    H5Fclose(c.f);
    printf("%s: %d tensors compared, largest relative error of the matching ones %.2e (%s)\n",
           c.name, g_compared, g_worst, g_worst_label);
    g_compared = 0, g_worst = 0;
    if (c.bad)
        fail_msg("%s: %d tensors or values differ from the PyTorch reference", c.name, c.bad);
}

int main(int argc, char **argv)
{
    int status;
    be = parity_backend_open(argc, argv, &g_path, &status);
    if (!be) return status;
    poa_model_config mc;
    POA_CHECK(poa_model_config_from_arch(&mc, "tiny", NULL) == POA_OK, "tiny config");
    poa_model_build(&model, &mc);
    int rc = h5r_run_cases("step_parity", g_path, "cases", test_case);
    poa_model_free(&model);
    poa_backend_destroy(be);
    return rc;
}
