/* test_model_parity.c — the C model engine against the PyTorch reference (tests/reference/
 * model_ref.py, float64): backbone outputs and the gradient of EVERY parameter for intact and
 * elastic sub-networks on global, local and non-square crops, with masks and with drop path;
 * every projection head, intact and with the elastic first layer.
 *
 * Metric per tensor: ||ours − ref||₂ / ||ref||₂ ≤ 1e-4 (fp32 engine vs float64 reference);
 * entries whose reference is exactly zero (outside an elastic slice; the key bias, whose
 * gradient is zero mathematically) must be zero up to 1e-4 × the tensor's RMS, and a tensor
 * whose reference is all zero (skipped blocks, unused mask token) must be exactly zero.
 *
 * A mutation test then breaks the backward of one op at a time (layer norm, GELU, attention,
 * LayerScale residual, tokens, position resampling, bias gradient, L2 norm, weight norm, GEMM,
 * drop-path scatter)
 * and checks that the comparison catches every one.
 *
 * usage: test_model_parity FILE.h5   (written by model_ref.py; test_model_parity.sh runs both) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "h5ref.h"
#include "model/head.h"
#include "model/vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REL_TOL   1e-4
#define MAX_CASES 64

static const char *ref_path;
static hid_t ref_file;
static poa_backend *be;
static poa_model model;
static float *params; /* backend */
static float *grads;  /* backend */
static float *host;   /* table.total floats */
static int verbose = 1;

/* ---------------------------------------------------------------- helpers */

static float *upload_new(const void *src, size_t bytes)
{
    float *p = be->iface->alloc(be, bytes ? bytes : 4);
    if (bytes) be->iface->upload(be, p, src, bytes);
    return p;
}

/* Compare one tensor; returns 1 on failure and prints a line for it (and for every tensor when
 * verbose > 1). */
static int compare(const char *what, const float *ours, const double *ref, size_t n)
{
    double diff2 = 0, ref2 = 0;
    size_t zero_violations = 0, first_violation = 0;
    int nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double) ours[i] - ref[i];
        if (!isfinite(ours[i])) nonfinite = 1;
        diff2 += e * e;
        ref2 += ref[i] * ref[i];
    }
    /* Where the reference is exactly 0 (outside a slice, or a mathematically zero gradient such
     * as the key bias's) ours must be 0 up to round-off of the tensor's scale; exactly 0 when
     * the whole reference tensor is. */
    const double zero_tol = REL_TOL * sqrt(ref2 / (double) (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        if (ref[i] == 0.0 && fabs((double) ours[i]) > zero_tol && zero_violations++ == 0)
            first_violation = i;
    double rel = ref2 > 0 ? sqrt(diff2 / ref2) : sqrt(diff2);
    int fail = nonfinite || zero_violations > 0 || rel > REL_TOL;
    if (fail && verbose)
        fprintf(stderr,
                "  FAIL %-48s rel err %.3e (||ref|| %.3e)%s; %zu entries nonzero where the "
                "reference is exactly 0 (first at %zu)\n",
                what, rel, sqrt(ref2), nonfinite ? " NON-FINITE" : "", zero_violations,
                first_violation);
    else if (verbose > 1)
        fprintf(stderr, "  ok   %-48s rel err %.3e (||ref|| %.3e)\n", what, rel, sqrt(ref2));
    return fail;
}

/* Every parameter gradient of the table against /cases/<c>/grads/<key>. */
static int compare_all_grads(const char *cs)
{
    be->iface->download(be, host, grads, model.table.total * sizeof(float));
    int fails = 0;
    for (int i = 0; i < model.table.n; i++) {
        const poa_param_desc *p = &model.table.p[i];
        char key[160], path[256];
        poa_model_param_key(&model, i, key, sizeof key);
        snprintf(path, sizeof path, "/cases/%s/grads/%s", cs, key);
        if (!h5ref_exists(ref_file, path)) { /* the other module's tensors: untouched */
            for (size_t e = 0; e < p->numel; e++)
                if (host[p->offset + e] != 0.0f) {
                    if (verbose) fprintf(stderr, "  FAIL %s: gradient written but not used\n", key);
                    fails++;
                    break;
                }
            continue;
        }
        size_t n;
        double *ref = h5ref_read_f64(ref_file, path, &n);
        assert_int_equal(n, p->numel);
        fails += compare(key, host + p->offset, ref, n);
        free(ref);
    }
    return fails;
}

static void load_params(void)
{
    memset(host, 0, model.table.total * sizeof(float));
    for (int i = 0; i < model.table.n; i++) {
        const poa_param_desc *p = &model.table.p[i];
        char key[160], path[256];
        poa_model_param_key(&model, i, key, sizeof key);
        snprintf(path, sizeof path, "/params/%s", key);
        size_t n;
        float *v = h5ref_read_f32(ref_file, path, &n);
        if (n != p->numel) fail_msg("%s: %zu values in the file, table says %zu", key, n, p->numel);
        memcpy(host + p->offset, v, n * sizeof(float));
        free(v);
    }
    be->iface->upload(be, params, host, model.table.total * sizeof(float));
}

static int compare_dataset(const char *cs, const char *name, const float *dev, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "/cases/%s/%s", cs, name);
    size_t nref;
    double *ref = h5ref_read_f64(ref_file, path, &nref);
    assert_int_equal(nref, n);
    float *ours = malloc(n * sizeof(float));
    be->iface->download(be, ours, dev, n * sizeof(float));
    char what[256];
    snprintf(what, sizeof what, "%s (%s)", name, cs);
    int f = compare(what, ours, ref, n);
    free(ours);
    free(ref);
    return f;
}

static float *read_upload(const char *cs, const char *name, size_t *n)
{
    char path[256];
    snprintf(path, sizeof path, "/cases/%s/%s", cs, name);
    float *h = h5ref_read_f32(ref_file, path, n);
    float *d = upload_new(h, *n * sizeof(float));
    free(h);
    return d;
}

/* ---------------------------------------------------------------- cases */

static int run_vit_case(const char *cs)
{
    char obj[160];
    snprintf(obj, sizeof obj, "/cases/%s", cs);
    const int width = h5ref_attr_int(ref_file, obj, "width");
    const int depth = h5ref_attr_int(ref_file, obj, "depth");
    const int B = h5ref_attr_int(ref_file, obj, "B");
    const int H = h5ref_attr_int(ref_file, obj, "H");
    const int W = h5ref_attr_int(ref_file, obj, "W");
    poa_subnet sn;
    poa_err err;
    assert_int_equal(poa_subnet_make(&model.cfg, width, depth, &sn, &err), POA_OK);

    size_t n;
    poa_vit_input in = {0};
    in.B = B, in.H = H, in.W = W;
    float *images = read_upload(cs, "images", &n);
    in.images = images;
    uint8_t *masks = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/masks", obj);
    if (h5ref_exists(ref_file, path)) {
        uint8_t *h = h5ref_read_u8(ref_file, path, &n);
        masks = be->iface->alloc(be, n);
        be->iface->upload(be, masks, h, n);
        free(h);
        in.masks = masks;
    }
    float *dp = NULL;
    snprintf(path, sizeof path, "%s/droppath", obj);
    if (h5ref_exists(ref_file, path)) {
        dp = h5ref_read_f32(ref_file, path, &n);
        assert_int_equal(n, (size_t) depth * 2 * B);
        in.droppath = dp;
    }

    poa_vit_acts acts;
    poa_vit_acts_create(be, &model, &acts, B, H > W ? H : W, 1);
    const poa_weights wt = poa_weights_f32(be, params);
    poa_vit_forward(be, &model, &wt, &sn, &in, &acts);
    const size_t n_out = (size_t) B * acts.T * width;
    int fails = compare_dataset(cs, "out", (const float *) acts.out, n_out);

    snprintf(path, sizeof path, "%s/dout", obj);
    float *dout = h5ref_read_f32(ref_file, path, &n);
    assert_int_equal(n, n_out);
    be->iface->act_upload(be, acts.d_out, dout, n);
    be->iface->zero(be, grads, model.table.total * sizeof(float));
    poa_vit_backward(be, &model, &wt, grads, &acts, acts.d_out);
    fails += compare_all_grads(cs);

    free(dout);
    free(dp);
    poa_vit_acts_destroy(be, &acts);
    be->iface->free(be, images);
    if (masks) be->iface->free(be, masks);
    return fails;
}

static int run_head_case(const char *cs)
{
    char obj[160];
    snprintf(obj, sizeof obj, "/cases/%s", cs);
    const int h = h5ref_attr_int(ref_file, obj, "head");
    const int width = h5ref_attr_int(ref_file, obj, "width");
    const int rows = h5ref_attr_int(ref_file, obj, "rows");
    const int K = model.cfg.head_n_prototypes[h];
    size_t n;
    float *z = read_upload(cs, "z", &n);
    assert_int_equal(n, (size_t) rows * width);
    float *dlogits = read_upload(cs, "dlogits", &n);
    assert_int_equal(n, (size_t) rows * K);
    float *logits = be->iface->alloc(be, (size_t) rows * K * sizeof(float));
    float *dz = be->iface->alloc(be, (size_t) rows * width * sizeof(float));
    be->iface->zero(be, dz, (size_t) rows * width * sizeof(float));

    poa_head_weights hw;
    poa_head_acts acts;
    poa_head_weights_create(be, &model, &hw, 1);
    poa_head_acts_create(be, &model, &acts, rows, 1);
    poa_head_weights_forward(be, &model, params, &hw);
    poa_head_forward(be, &model, params, &hw, h, width, z, width, rows, &acts, logits, K);
    int fails = compare_dataset(cs, "logits", logits, (size_t) rows * K);

    be->iface->zero(be, grads, model.table.total * sizeof(float));
    poa_head_backward(be, &model, params, grads, &hw, &acts, dlogits, K, dz, width);
    poa_head_weights_backward(be, &model, params, grads, &hw);
    fails += compare_dataset(cs, "dz", dz, (size_t) rows * width);
    fails += compare_all_grads(cs);

    poa_head_acts_destroy(be, &acts);
    poa_head_weights_destroy(be, &hw);
    be->iface->free(be, z);
    be->iface->free(be, dlogits);
    be->iface->free(be, logits);
    be->iface->free(be, dz);
    return fails;
}

static int run_case(const char *cs)
{
    char kind[16];
    char obj[160];
    snprintf(obj, sizeof obj, "/cases/%s", cs);
    h5ref_attr_str(ref_file, obj, "kind", kind, sizeof kind);
    return strcmp(kind, "vit") == 0 ? run_vit_case(cs) : run_head_case(cs);
}

static void test_case(void **state)
{
    const char *cs = *state;
    int fails = run_case(cs);
    if (fails) fail_msg("case %s: %d tensors differ from the PyTorch reference", cs, fails);
}

/* ---------------------------------------------------------------- mutation test */

static poa_nn_ops orig, mut;

/* Each mutant runs the real op and then spoils its result slightly (0.1 % or a doubled
 * accumulation), which no correct engine produces.  The backbone's ops take activations, fp32
 * on the CPU backend (F() views them as floats); an op with an fp32 twin used by the heads
 * (GELU, bias gradient, weight-gradient GEMM) is spoilt in both. */
#define F(p) ((float *) (p))
static void m_layernorm_bwd(poa_backend *b, poa_act *dx, int lddx, float dx_beta, float *dw,
                            float *db, const poa_act *dy, int lddy, const poa_act *x, int ldx,
                            const float *mean, const float *rstd, const float *w, int rows, int d)
{
    orig.layernorm_bwd(b, dx, lddx, dx_beta, dw, db, dy, lddy, x, ldx, mean, rstd, w, rows, d);
    for (int r = 0; r < rows; r++) orig.scale(b, F(dx) + (size_t) r * lddx, 1.001f, (size_t) d);
}
static void m_layernorm_bwd_params(poa_backend *b, poa_act *dx, int lddx, float dx_beta, float *dw,
                                   float *db, const poa_act *dy, int lddy, const poa_act *x,
                                   int ldx, const float *mean, const float *rstd, const float *w,
                                   int rows, int d)
{
    orig.layernorm_bwd(b, dx, lddx, dx_beta, dw, db, dy, lddy, x, ldx, mean, rstd, w, rows, d);
    orig.layernorm_bwd(b, NULL, 0, 0.0f, dw, db, dy, lddy, x, ldx, mean, rstd, w, rows, d);
}
static void m_gelu_bwd(poa_backend *b, float *dx, float *y, const float *dy, const float *x,
                       size_t n)
{
    orig.gelu_bwd(b, dx, y, dy, x, n);
    orig.scale(b, dx, 1.001f, n);
}
static void m_act_gelu_bwd(poa_backend *b, poa_act *dx, poa_act *y, const poa_act *dy,
                           const poa_act *x, size_t n)
{
    orig.act_gelu_bwd(b, dx, y, dy, x, n);
    orig.scale(b, F(dx), 1.001f, n);
}
static void m_attention_bwd(poa_backend *b, poa_act *dqkv, int lddqkv, const poa_act *dout,
                            int lddout, const poa_act *qkv, int ldqkv, const void *saved, int B,
                            int T, int H, int Dh, float scale, void *scratch)
{
    orig.attention_bwd(b, dqkv, lddqkv, dout, lddout, qkv, ldqkv, saved, B, T, H, Dh,
                       scale * 1.001f, scratch);
}
static void m_residual_ls_bwd(poa_backend *b, poa_act *dy, int lddy, float *dgamma,
                              const poa_act *dx, int lddx, const poa_act *y, int ldy,
                              const float *gamma, const float *s, int B, int T, int d)
{
    orig.residual_ls_bwd(b, dy, lddy, dgamma, dx, lddx, y, ldy, gamma, s, B, T, d);
    orig.residual_ls_bwd(b, NULL, lddy, dgamma, dx, lddx, y, ldy, gamma, s, B, T, d);
}
static void m_tokens_bwd(poa_backend *b, poa_act *demb, int lddemb, float *dcls, float *dpos,
                         int ldpos, float *dmask_token, const poa_act *dx, int lddx,
                         const uint8_t *mask, int B, int N, int d)
{
    orig.tokens_bwd(b, demb, lddemb, dcls, dpos, ldpos, dmask_token, dx, lddx, mask, B, N, d);
    orig.tokens_bwd(b, demb, lddemb, dcls, dpos, ldpos, dmask_token, dx, lddx, mask, B, N, d);
}
static void m_pos_resample_bwd(poa_backend *b, float *dsrc, int lds, const float *ddst, int ldd,
                               int M, int h0, int w0, int d)
{
    orig.pos_resample_bwd(b, dsrc, lds, ddst, ldd, M, h0, w0, d);
    orig.pos_resample_bwd(b, dsrc, lds, ddst, ldd, M, h0, w0, d);
}
static void m_bias_grad(poa_backend *b, float *db, const float *dy, int lddy, int rows, int cols)
{
    orig.bias_grad(b, db, dy, lddy, rows, cols);
    orig.bias_grad(b, db, dy, lddy, rows, cols);
}
static void m_act_bias_grad(poa_backend *b, float *db, const poa_act *dy, int lddy, int rows,
                            int cols)
{
    orig.act_bias_grad(b, db, dy, lddy, rows, cols);
    orig.act_bias_grad(b, db, dy, lddy, rows, cols);
}
static void m_l2norm_bwd(poa_backend *b, float *dx, int lddx, const float *dy, int lddy,
                         const float *x, int ldx, const float *norms, int rows, int cols, float eps)
{
    orig.l2norm_bwd(b, dx, lddx, dy, lddy, x, ldx, norms, rows, cols, eps);
    for (int r = 0; r < rows; r++) orig.scale(b, dx + (size_t) r * lddx, 1.001f, (size_t) cols);
}
static void m_weightnorm_bwd(poa_backend *b, float *dg, float *dv, const float *dW, const float *g,
                             const float *v, const float *vnorm, int K, int C)
{
    orig.weightnorm_bwd(b, dg, dv, dW, g, v, vnorm, K, C);
    orig.weightnorm_bwd(b, dg, dv, dW, g, v, vnorm, K, C);
}
static void m_scatter_add_rows(poa_backend *b, poa_act *dst, int ldd, const poa_act *src, int lds,
                               const int32_t *idx, int n, int cols)
{
    orig.act_scatter_add_rows(b, dst, ldd, src, lds, idx, n, cols);
    orig.act_scatter_add_rows(b, dst, ldd, src, lds, idx, n, cols);
}
/* A weight-gradient GEMM (transposed A, accumulating) that drops the α of elastic slices. */
static void m_gemm_wgrad(poa_backend *b, poa_trans ta, poa_trans tb, int M, int N, int K,
                         float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                         float *C, int ldc)
{
    if (ta == POA_TRANS && beta == 1.0f) alpha *= 1.001f;
    orig.gemm(b, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
static void m_act_gemm_wgrad(poa_backend *b, poa_trans ta, poa_trans tb, int M, int N, int K,
                             float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                             float *C, int ldc)
{
    if (ta == POA_TRANS) alpha *= 1.001f;
    orig.act_gemm_wgrad(b, ta, tb, M, N, K, alpha, A, lda, B, ldb, C, ldc);
}
#undef F

/* Install mutation k into o; returns its name, or NULL past the last one. */
static const char *apply_mutation(poa_nn_ops *o, int k)
{
    switch (k) {
    case 0:
        o->layernorm_bwd = m_layernorm_bwd;
        return "layernorm_bwd: dx";
    case 1:
        o->layernorm_bwd = m_layernorm_bwd_params;
        return "layernorm_bwd: dw, db";
    case 2:
        o->gelu_bwd = m_gelu_bwd;
        o->act_gelu_bwd = m_act_gelu_bwd;
        return "gelu_bwd";
    case 3:
        o->attention_bwd = m_attention_bwd;
        return "attention_bwd";
    case 4:
        o->residual_ls_bwd = m_residual_ls_bwd;
        return "residual_ls_bwd: dgamma";
    case 5:
        o->tokens_bwd = m_tokens_bwd;
        return "tokens_bwd";
    case 6:
        o->pos_resample_bwd = m_pos_resample_bwd;
        return "pos_resample_bwd";
    case 7:
        o->bias_grad = m_bias_grad;
        o->act_bias_grad = m_act_bias_grad;
        return "bias_grad";
    case 8:
        o->l2norm_bwd = m_l2norm_bwd;
        return "l2norm_bwd";
    case 9:
        o->weightnorm_bwd = m_weightnorm_bwd;
        return "weightnorm_bwd";
    case 10:
        o->gemm = m_gemm_wgrad;
        o->act_gemm_wgrad = m_act_gemm_wgrad;
        return "gemm (weight gradients)";
    case 11:
        o->act_scatter_add_rows = m_scatter_add_rows;
        return "scatter_add_rows (drop path)";
    default:
        return NULL;
    }
}

static void test_mutations_detected(void **state)
{
    char(*names)[128] = *state;
    int n_cases = 0;
    while (n_cases < MAX_CASES && names[n_cases][0]) n_cases++;
    const poa_nn_ops *real = be->nn;
    orig = *real;
    int undetected = 0;
    verbose = 0;
    for (int k = 0;; k++) {
        mut = orig;
        const char *what = apply_mutation(&mut, k);
        if (!what) break;
        be->nn = &mut;
        int failing_cases = 0;
        for (int c = 0; c < n_cases; c++) failing_cases += run_case(names[c]) > 0;
        be->nn = real;
        fprintf(stderr, "  mutation %-28s caught by %2d of %d cases\n", what, failing_cases,
                n_cases);
        if (failing_cases == 0) undetected++;
    }
    verbose = 1;
    if (undetected) fail_msg("%d broken backward ops went unnoticed", undetected);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s REFERENCE.h5\n", argv[0]);
        return 2;
    }
    ref_path = argv[1];
    if (getenv("POA_TEST_VERBOSE")) verbose = 2;
    ref_file = h5ref_open(ref_path);
    char arch[32];
    h5ref_attr_str(ref_file, "/", "arch", arch, sizeof arch);
    poa_model_config cfg;
    poa_err err;
    if (poa_model_config_from_arch(&cfg, arch, &err) != POA_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char errbuf[256];
    be = poa_backend_create("cpu", NULL, errbuf, sizeof errbuf);
    poa_model_build(&model, &cfg);
    params = be->iface->alloc(be, model.table.total * sizeof(float));
    grads = be->iface->alloc(be, model.table.total * sizeof(float));
    host = malloc(model.table.total * sizeof(float));
    load_params();

    static char names[MAX_CASES + 1][128];
    int n = h5ref_group_members(ref_file, "/cases", names, MAX_CASES);
    struct CMUnitTest tests[MAX_CASES + 1];
    for (int i = 0; i < n; i++) {
        tests[i] = (struct CMUnitTest) cmocka_unit_test_prestate(test_case, names[i]);
        tests[i].name = names[i];
    }
    tests[n] = (struct CMUnitTest) cmocka_unit_test_prestate(test_mutations_detected, names);
    int rc = _cmocka_run_group_tests("model_parity", tests, (size_t) n + 1, NULL, NULL);

    free(host);
    be->iface->free(be, params);
    be->iface->free(be, grads);
    poa_model_free(&model);
    poa_backend_destroy(be);
    H5Fclose(ref_file);
    return rc;
}
