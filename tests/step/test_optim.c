/* test_optim.c — parameter groups from the table flags, per-module gradient norms and clipping
 * (docs/algorithm.md §8.3), AdamW with the last-layer freeze (§8.1, §8.2) and EMA (§4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "tensor/params.h"
#include "tests/step/step_test_util.h"
#include "train/optim.h"

#include <math.h>
#include <string.h>

/* A miniature model: backbone tensors, then dino_head tensors (model.h's flat order). */
static void make_table(poa_param_table *t)
{
    poa_params_init(t);
    int64_t s1[1] = {7}, s2[2] = {5, 3}, s3[2] = {9, 4}, s4[2] = {6, 1};
    poa_params_add(t, "backbone", "mask_token", 1, s1, -1, 0, POA_INIT_ZERO, 0, POA_PF_BACKBONE,
                   0.25f, 1.0f);
    poa_params_add(t, "backbone", "patch_embed.proj.weight", 2, s2, -1, 0, POA_INIT_ZERO, 0,
                   POA_PF_BACKBONE, 0.05f, 1.0f);
    poa_params_add(t, "backbone", "blocks.0.norm1.norm.weight", 1, s1, 0, 1, POA_INIT_ONE, 0,
                   POA_PF_BACKBONE | POA_PF_NO_WD, 0.9f, 0.0f);
    poa_params_add(t, "dino_head", "mlp0.0.linear.weight", 2, s3, -1, 2, POA_INIT_ZERO, 0,
                   POA_PF_HEAD, 1.0f, 1.0f);
    poa_params_add(t, "dino_head", "last_layer0.weight_g", 2, s4, -1, 2, POA_INIT_ONE, 0,
                   POA_PF_HEAD | POA_PF_LAST_LAYER, 1.0f, 1.0f);
}

static void test_groups_norms_and_step(void **state)
{
    (void) state;
    char err[128];
    poa_backend *be = poa_backend_create("cpu", NULL, err, sizeof err);
    poa_param_table t;
    make_table(&t);
    poa_optim o;
    poa_optim_init(&o, be, &t, 0.9, 0.999, 1e-8, 1.5);
    assert_int_equal(o.nseg, 5);
    assert_int_equal(o.segs_host[4].last_layer, 1);
    assert_int_equal(o.segs_host[3].last_layer, 0);
    assert_int_equal(o.segs_host[3].clip_group, POA_CLIP_HEAD);
    assert_int_equal(o.segs_host[2].clip_group, POA_CLIP_BACKBONE);
    assert_true(o.segs_host[2].wd_mult == 0 && o.segs_host[1].lr_mult == 0.05f);
    assert_int_equal(o.group_begin[POA_CLIP_HEAD], t.p[3].offset);
    assert_int_equal(o.group_end[POA_CLIP_BACKBONE], t.p[2].offset + t.p[2].numel);

    size_t n = t.total;
    float *p = be->iface->alloc(be, sizeof(float) * n),
          *g = be->iface->alloc(be, sizeof(float) * n);
    memset(p, 0, sizeof(float) * n);
    memset(g, 0, sizeof(float) * n);
    double rp[256] = {0}, rm[256] = {0}, rv[256] = {0};
    for (int i = 1; i < t.n; i++) {
        fill_normal(p + t.p[i].offset, t.p[i].numel, 10 + i, 0.5f);
        fill_normal(g + t.p[i].offset, t.p[i].numel, 20 + i, i == 3 ? 3.0f : 0.1f);
    }
    for (size_t i = 0; i < n; i++) rp[i] = p[i];

    /* norms per module: backbone small (no clipping), heads large (clipped to 1.5) */
    double norm[2], want[2] = {0, 0};
    float coef[2];
    double *sumsq = be->iface->alloc(be, sizeof(double) * POA_N_CLIP_GROUPS), sumsq_host[2];
    poa_optim_sum_squares(&o, g, sumsq);
    be->iface->download(be, sumsq_host, sumsq, sizeof sumsq_host);
    be->iface->free(be, sumsq);
    poa_optim_grad_norms(&o, sumsq_host, norm, coef);
    for (int i = 0; i < t.n; i++)
        for (size_t k = 0; k < t.p[i].numel; k++) {
            double x = g[t.p[i].offset + k];
            want[(t.p[i].flags & POA_PF_HEAD) ? 1 : 0] += x * x;
        }
    assert_true(check_scalar("backbone grad norm", norm[0], sqrt(want[0]), 1e-12));
    assert_true(check_scalar("head grad norm", norm[1], sqrt(want[1]), 1e-12));
    assert_true(norm[0] < 1.5 && coef[0] == 1.0f);
    assert_true(norm[1] > 1.5);
    assert_true(check_scalar("head clip coefficient", coef[1], 1.5 / (norm[1] + 1e-6), 1e-6));

    /* one step inside the last-layer freeze: weight_g keeps its values, its moments move */
    const double lr = 1e-2, wd = 0.04;
    poa_optim_step(&o, p, g, lr, 0.0, wd, coef, NULL);
    for (int i = 0; i < t.n; i++) {
        const poa_param_desc *d = &t.p[i];
        double lr_p = (d->flags & POA_PF_LAST_LAYER ? 0.0 : lr) * d->lr_mult;
        double c = d->flags & POA_PF_HEAD ? coef[1] : coef[0];
        for (size_t k = d->offset; k < d->offset + d->numel; k++) {
            double gi = g[k] * c;
            rp[k] *= 1 - lr_p * wd * d->wd_mult;
            rm[k] = 0.1 * gi;
            rv[k] = 0.001 * gi * gi;
            rp[k] -= lr_p * (rm[k] / 0.1) / (sqrt(rv[k] / 0.001) + 1e-8);
        }
    }
    assert_true(check_close("params after AdamW", p, rp, n, 1e-6));
    assert_true(check_close("exp_avg after AdamW", o.m, rm, n, 1e-6));
    assert_true(check_close("exp_avg_sq after AdamW", o.v, rv, n, 1e-6));
    for (size_t k = t.p[4].offset; k < t.p[4].offset + t.p[4].numel; k++)
        assert_true(p[k] == (float) rp[k] && o.m[k] != 0);
    /* a zero-gradient tensor at 0 (mask_token before iBOT) stays exactly 0 */
    for (size_t k = 0; k < t.p[0].numel; k++) assert_true(p[t.p[0].offset + k] == 0.0f);
    assert_int_equal(o.step, 1);

    /* EMA over the whole buffer */
    float *teacher = be->iface->alloc(be, sizeof(float) * n);
    double rt[256];
    for (size_t i = 0; i < n; i++) teacher[i] = 1.0f, rt[i] = 0.99 + 0.01 * p[i];
    poa_ema_update(be, teacher, p, n, 0.99, NULL);
    assert_true(check_close("teacher after EMA", teacher, rt, n, 1e-7));

    be->iface->free(be, p), be->iface->free(be, g), be->iface->free(be, teacher);
    poa_optim_free(&o);
    poa_params_free(&t);
    poa_backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_groups_norms_and_step)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
