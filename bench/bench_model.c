/* bench_model.c — forward+backward throughput of the ViT backbone on the CPU backend, next to
 * OpenBLAS's sgemm at the same thread count measured in the same run (make bench-model;
 * bench_model.py runs it next to PyTorch).
 *
 * usage: bench_model --config NAME [--size S] [--batch B] [--reps N] [--warmup N]
 *                    [--width W --depth L] [--torch-img-s X] [--profile] [--ab VAR=VALUE]
 * --profile times every backend op of the timed steps (printed per op family);
 * --profile-cpu the same in thread CPU time (use with OMP_NUM_THREADS=1 on a busy machine).
 * --ab VAR=VALUE: an A/B of two run-time choices of the CPU backend (POA_CPU_GEMM=blas,
 * POA_CPU_ATTN=blas, POA_CPU_GELU=libm) within one process: the timed steps alternate between
 * the environment as given and VAR=VALUE, and an `AB` line gives both medians and the median of
 * the per-pair ratios.  On a shared VM whose speed drifts by ±20 % within a minute, comparing
 * neighbouring steps is the measurement the drift disturbs least (separate runs are not).
 * Prints one `RESULT config=… threads=… img_s=… gflops=… sgemm_gflops=… frac_sgemm=…
 * torch_img_s=… ratio_torch=…` line (medians over --reps timed iterations).  gflops is wall
 * clock; a 1024³ OpenBLAS sgemm on the same number of threads, wall clock, is timed after every
 * timed iteration (bench_sgemm.h), and frac_sgemm = gflops / its median.
 * Threads: OMP_NUM_THREADS.
 */
#include "backend/backend.h"
#include "backend/cpu/cpu_nn.h"
#include "common/cli.h"
#include "common/timer.h"
#include "model/vit.h"

#include "bench_sgemm.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- --profile: time per op */
enum { P_GEMM, P_BIAS, P_LN, P_GELU, P_ATTN, P_RESID, P_TOKENS, P_MEM, P_N };
static const char *prof_name[P_N] = {"gemm",      "bias",     "layernorm",      "gelu",
                                     "attention", "residual", "tokens/patches", "copy/zero/axpy"};
static double prof_t[P_N];
static poa_nn_ops real, wrapped;
static poa_backend_iface real_iface, wrapped_iface;
/* With --profile-cpu: this thread's CPU time (meaningful with one thread on a busy machine). */
static int prof_cpu;
static double prof_clock(void)
{
    if (!prof_cpu) return poa_now();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}
#define TIMED(cat, call)                                                                           \
    do {                                                                                           \
        double t0_ = prof_clock();                                                                 \
        call;                                                                                      \
        prof_t[cat] += prof_clock() - t0_;                                                         \
    } while (0)
static int prof_gemm_shapes; /* POA_BENCH_GEMM_SHAPES=1: one line per GEMM call */
static void gemm_timed(double dt, poa_trans ta, poa_trans tb, int M, int N, int K, const char *c)
{
    prof_t[P_GEMM] += dt;
    if (prof_gemm_shapes)
        printf("gemm %c%c M=%d N=%d K=%d %s %.3f ms %.1f GFLOP/s\n", ta ? 'T' : 'N', tb ? 'T' : 'N',
               M, N, K, c, dt * 1e3, 2.0 * M * N * K / dt * 1e-9);
}
static void w_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float al,
                   const poa_act *A, int lda, const poa_act *B, int ldb, float beta, poa_act *C,
                   int ldc)
{
    double t0 = prof_clock();
    real.act_gemm(be, ta, tb, M, N, K, al, A, lda, B, ldb, beta, C, ldc);
    char what[32];
    snprintf(what, sizeof what, "beta=%g", beta);
    gemm_timed(prof_clock() - t0, ta, tb, M, N, K, what);
}
/* a linear layer's forward: the bias is added where the GEMM stores C, so it counts as GEMM */
static void w_gemm_bias(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float al,
                        const poa_act *A, int lda, const poa_act *B, int ldb, const float *bias,
                        poa_act *C, int ldc)
{
    double t0 = prof_clock();
    real.act_gemm_bias(be, ta, tb, M, N, K, al, A, lda, B, ldb, bias, C, ldc);
    gemm_timed(prof_clock() - t0, ta, tb, M, N, K, bias ? "bias" : "beta=0");
}
/* a weight gradient: C (fp32) += op(A) op(B) */
static void w_gemm_wgrad(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float al,
                         const poa_act *A, int lda, const poa_act *B, int ldb, float *C, int ldc)
{
    double t0 = prof_clock();
    real.act_gemm_wgrad(be, ta, tb, M, N, K, al, A, lda, B, ldb, C, ldc);
    gemm_timed(prof_clock() - t0, ta, tb, M, N, K, "beta=1");
}
static void w_bias_grad(poa_backend *be, float *db, const poa_act *dy, int lddy, int rows, int cols)
{
    TIMED(P_BIAS, real.act_bias_grad(be, db, dy, lddy, rows, cols));
}
static void w_ln_fwd(poa_backend *be, poa_act *y, int ldy, float *mean, float *rstd,
                     const poa_act *x, int ldx, const float *w, const float *b, int rows, int d,
                     float eps)
{
    TIMED(P_LN, real.layernorm_fwd(be, y, ldy, mean, rstd, x, ldx, w, b, rows, d, eps));
}
static void w_ln_bwd(poa_backend *be, poa_act *dx, int lddx, float dx_beta, float *dw, float *db,
                     const poa_act *dy, int lddy, const poa_act *x, int ldx, const float *mean,
                     const float *rstd, const float *w, int rows, int d)
{
    TIMED(P_LN, real.layernorm_bwd(be, dx, lddx, dx_beta, dw, db, dy, lddy, x, ldx, mean, rstd, w,
                                   rows, d));
}
static void w_gelu_fwd(poa_backend *be, poa_act *y, const poa_act *x, size_t n)
{
    TIMED(P_GELU, real.act_gelu_fwd(be, y, x, n));
}
static void w_gelu_bwd(poa_backend *be, poa_act *dx, poa_act *y, const poa_act *dy,
                       const poa_act *x, size_t n)
{
    TIMED(P_GELU, real.act_gelu_bwd(be, dx, y, dy, x, n));
}
static void w_attn_fwd(poa_backend *be, poa_act *out, int ldout, void *saved, const poa_act *qkv,
                       int ldqkv, int B, int T, int H, int Dh, float scale, void *scratch)
{
    TIMED(P_ATTN,
          real.attention_fwd(be, out, ldout, saved, qkv, ldqkv, B, T, H, Dh, scale, scratch));
}
static void w_attn_bwd(poa_backend *be, poa_act *dqkv, int lddqkv, const poa_act *dout, int lddout,
                       const poa_act *qkv, int ldqkv, const void *saved, int B, int T, int H,
                       int Dh, float scale, void *scratch)
{
    TIMED(P_ATTN, real.attention_bwd(be, dqkv, lddqkv, dout, lddout, qkv, ldqkv, saved, B, T, H, Dh,
                                     scale, scratch));
}
static void w_res_fwd(poa_backend *be, poa_act *x, int ldx, const poa_act *base, int ldbase,
                      const poa_act *y, int ldy, const float *gamma, const float *s, int B, int T,
                      int d)
{
    TIMED(P_RESID, real.residual_ls_fwd(be, x, ldx, base, ldbase, y, ldy, gamma, s, B, T, d));
}
static void w_res_bwd(poa_backend *be, poa_act *dy, int lddy, float *dgamma, const poa_act *dx,
                      int lddx, const poa_act *y, int ldy, const float *gamma, const float *s,
                      int B, int T, int d)
{
    TIMED(P_RESID, real.residual_ls_bwd(be, dy, lddy, dgamma, dx, lddx, y, ldy, gamma, s, B, T, d));
}
static void w_unfold(poa_backend *be, poa_act *cols, const float *img, int B, int C, int Hi, int Wi,
                     int P)
{
    TIMED(P_TOKENS, real.patch_unfold(be, cols, img, B, C, Hi, Wi, P));
}
static void w_tok_fwd(poa_backend *be, poa_act *x, int ldx, const poa_act *emb, int ldemb,
                      const float *cls, const float *pos, int ldpos, const float *mask_token,
                      const uint8_t *mask, int B, int N, int d)
{
    TIMED(P_TOKENS,
          real.tokens_fwd(be, x, ldx, emb, ldemb, cls, pos, ldpos, mask_token, mask, B, N, d));
}
static void w_tok_bwd(poa_backend *be, poa_act *demb, int lddemb, float *dcls, float *dpos,
                      int ldpos, float *dmask, const poa_act *dx, int lddx, const uint8_t *mask,
                      int B, int N, int d)
{
    TIMED(P_TOKENS,
          real.tokens_bwd(be, demb, lddemb, dcls, dpos, ldpos, dmask, dx, lddx, mask, B, N, d));
}
static void w_copy(poa_backend *be, void *dst, const void *src, size_t bytes)
{
    TIMED(P_MEM, real_iface.copy(be, dst, src, bytes));
}
static void w_zero(poa_backend *be, void *dst, size_t bytes)
{
    TIMED(P_MEM, real_iface.zero(be, dst, bytes));
}
static void w_axpy(poa_backend *be, float *y, float a, const float *x, size_t n)
{
    TIMED(P_MEM, real.axpy(be, y, a, x, n));
}

static void profile_install(poa_backend *be)
{
    prof_gemm_shapes = getenv("POA_BENCH_GEMM_SHAPES") != NULL;
    real = *be->nn;
    wrapped = real;
    wrapped.act_gemm = w_gemm, wrapped.act_gemm_bias = w_gemm_bias;
    wrapped.act_gemm_wgrad = w_gemm_wgrad, wrapped.act_bias_grad = w_bias_grad;
    wrapped.layernorm_fwd = w_ln_fwd, wrapped.layernorm_bwd = w_ln_bwd;
    wrapped.act_gelu_fwd = w_gelu_fwd, wrapped.act_gelu_bwd = w_gelu_bwd;
    wrapped.attention_fwd = w_attn_fwd, wrapped.attention_bwd = w_attn_bwd;
    wrapped.residual_ls_fwd = w_res_fwd, wrapped.residual_ls_bwd = w_res_bwd;
    wrapped.patch_unfold = w_unfold, wrapped.tokens_fwd = w_tok_fwd, wrapped.tokens_bwd = w_tok_bwd;
    wrapped.axpy = w_axpy;
    be->nn = &wrapped;
    real_iface = *be->iface;
    wrapped_iface = real_iface;
    wrapped_iface.copy = w_copy, wrapped_iface.zero = w_zero;
    be->iface = &wrapped_iface;
}

static void profile_report(double total, int iters)
{
    double sum = 0;
    for (int i = 0; i < P_N; i++) sum += prof_t[i];
    printf("profile (per step, %d steps):\n", iters);
    for (int i = 0; i < P_N; i++)
        printf("  %-16s %8.1f ms  %5.1f %%\n", prof_name[i], prof_t[i] / iters * 1e3,
               100 * prof_t[i] / total);
    printf("  %-16s %8.1f ms  %5.1f %%\n", "(outside ops)", (total - sum) / iters * 1e3,
           100 * (total - sum) / total);
}

typedef struct options {
    const char *config;
    int size, batch, reps, warmup, width, depth, profile;
    double torch_img_s;
    const char *ab; /* --ab VAR=VALUE, or NULL */
} options;

enum { MAX_REPS = 64 };

static double median(double *v, int n)
{
    return bench_median(v, n);
}

static double now(void)
{
    return poa_now();
}

/* CPU time of the whole process (all threads). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* Multiply-adds ×2 of one image's forward and backward (GEMMs and attention products). */
static double flops_per_image(const poa_model_config *c, int size, int d, int L)
{
    const double N = poa_model_n_patches(c, size, size), T = N + 1,
                 cpp = 3.0 * c->patch_size * c->patch_size;
    const double r = c->mlp_ratio;
    double pe = 2.0 * N * cpp * d;
    double block = 2.0 * T * d * d * (3 + 1 + 2 * r) + 2.0 * 2.0 * T * T * d;
    double fwd = pe + L * block;
    /* backward: two GEMMs per forward GEMM (data and weight gradients), one for the patch
     * embedding (no image gradient); attention: four products per two forward ones. */
    return fwd + (2.0 * L * block + pe);
}

static const poa_cli_option cli_options[] = {
    {"config", 0, "NAME", "architecture preset (default demo)"},
    {"size", 0, "S", "crop side (default: the preset's global crop)"},
    {"batch", 0, "B", "images per step (default 8)"},
    {"reps", 0, "N", "timed steps (default 5, at most 64)"},
    {"warmup", 0, "N", "untimed steps first (default 1)"},
    {"width", 0, "W", "sub-network width (default: the intact width)"},
    {"depth", 0, "L", "sub-network depth (default: the intact depth)"},
    {"torch-img-s", 0, "X", "PyTorch's img/s, printed next to ours in the RESULT line"},
    {"profile", 0, NULL, "time every backend op (per op family; the sgemm is then not timed)"},
    {"profile-cpu", 0, NULL, "the same in thread CPU time"},
    {"ab", 0, "VAR=VALUE",
     "alternate the timed steps between the environment as given and\n"
     "VAR=VALUE (e.g. POA_CPU_GEMM=blas); prints an AB line with both medians"},
};
static const poa_cli_spec cli_spec = {
    .program = "bench_model",
    .summary = "Forward + backward of the ViT backbone on the CPU backend (default: demo, its "
               "global crop\nsize, 8 images, 5 timed steps after 1 warm-up), next to a 1024^3 "
               "OpenBLAS sgemm on as many\nthreads, wall clock; the last line is RESULT "
               "config=... threads=... img_s=... gflops=...\nsgemm_gflops=... frac_sgemm=... "
               "(see make bench-model).",
    .options = cli_options,
    .n_options = (int) (sizeof cli_options / sizeof cli_options[0]),
    .epilog = "POA_BENCH_GEMM_SHAPES=1 adds one line per GEMM.  Threads: OMP_NUM_THREADS.",
};

/* The command line into o: -1 to go on, else the exit code. */
static int parse(int argc, char **argv, options *o)
{
    *o = (options){"demo", 0, 0, 5, 1, 0, 0, 0, NAN, NULL};
    poa_cli cli;
    poa_err err = {0};
    int rc = poa_cli_main_setup(&cli_spec, argc, argv, &cli, NULL, 1, &err);
    if (rc < 0) {
        const char *config = poa_cli_value(&cli, &cli_spec, "config");
        if (config) o->config = config;
        o->ab = poa_cli_value(&cli, &cli_spec, "ab");
        prof_cpu = poa_cli_flag(&cli, &cli_spec, "profile-cpu");
        o->profile = prof_cpu || poa_cli_flag(&cli, &cli_spec, "profile");
        if (poa_cli_int(&cli, &cli_spec, "size", 0, 1, 1 << 14, &o->size, &err) != POA_OK ||
            poa_cli_int(&cli, &cli_spec, "batch", 0, 1, 1 << 20, &o->batch, &err) != POA_OK ||
            poa_cli_int(&cli, &cli_spec, "reps", 5, 1, MAX_REPS, &o->reps, &err) != POA_OK ||
            poa_cli_int(&cli, &cli_spec, "warmup", 1, 0, 1000, &o->warmup, &err) != POA_OK ||
            poa_cli_int(&cli, &cli_spec, "width", 0, 1, 1 << 16, &o->width, &err) != POA_OK ||
            poa_cli_int(&cli, &cli_spec, "depth", 0, 1, 1024, &o->depth, &err) != POA_OK ||
            poa_cli_double(&cli, &cli_spec, "torch-img-s", NAN, 0, 1e12, true, &o->torch_img_s,
                           &err) != POA_OK)
            rc = poa_cli_usage_error(&cli_spec, "%s", err.msg);
        else if (o->ab && (!strchr(o->ab, '=') || o->ab[0] == '='))
            rc = poa_cli_usage_error(&cli_spec, "--ab wants VAR=VALUE, got '%s'", o->ab);
    }
    poa_cli_free(&cli); /* the values point into argv */
    return rc;
}

/* --ab: the variable's original value (NULL: unset) and the B value. */
typedef struct ab_switch {
    char name[64];
    const char *value_b;
    char *value_a;
} ab_switch;

static ab_switch ab_parse(const char *spec)
{
    ab_switch s = {{0}, NULL, NULL};
    const size_t n = (size_t) (strchr(spec, '=') - spec);
    if (n >= sizeof s.name) {
        fprintf(stderr, "bench_model: --ab %s: variable name too long\n", spec);
        exit(2);
    }
    memcpy(s.name, spec, n);
    s.value_b = spec + n + 1;
    const char *orig = getenv(s.name);
    s.value_a = orig ? strdup(orig) : NULL;
    return s;
}

/* Step r (≥ 0) runs under B when r is odd. */
static void ab_set(const ab_switch *s, int r)
{
    if (r >= 0 && r % 2)
        setenv(s->name, s->value_b, 1);
    else if (s->value_a)
        setenv(s->name, s->value_a, 1);
    else
        unsetenv(s->name);
}

static void ab_report(const ab_switch *s, const double *t, int reps)
{
    double a[MAX_REPS], b[MAX_REPS], ratio[MAX_REPS / 2];
    int na = 0, nb = 0, np = 0;
    for (int r = 0; r < reps; r++) {
        if (r % 2) {
            b[nb++] = t[r];
            ratio[np++] = t[r] / t[r - 1];
        } else {
            a[na++] = t[r];
        }
    }
    if (!np) return;
    printf("AB  A: %s=%s median %.1f ms | B: %s=%s median %.1f ms | B/A %.3f, median of %d "
           "neighbouring-step ratios %.3f\n",
           s->name, s->value_a ? s->value_a : "(unset)", median(a, na) * 1e3, s->name, s->value_b,
           median(b, nb) * 1e3, median(b, nb) / median(a, na), np, median(ratio, np));
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    poa_model_config cfg;
    poa_err err;
    if (poa_model_config_from_arch(&cfg, o.config, &err) != POA_OK) {
        fprintf(stderr, "bench_model: %s\n", err.msg);
        return 2;
    }
    if (!o.size) o.size = cfg.global_crops_size;
    if (!o.batch) o.batch = 8;
    if (!o.width) o.width = cfg.max_embed_dim;
    if (!o.depth) o.depth = cfg.max_depth;
    char ebuf[256];
    poa_backend *be = poa_backend_create("cpu", NULL, ebuf, sizeof ebuf);
    if (!be) {
        fprintf(stderr, "bench_model: %s\n", ebuf);
        return 1;
    }
    poa_model m;
    poa_model_build(&m, &cfg);
    poa_subnet sn;
    if (poa_subnet_make(&cfg, o.width, o.depth, &sn, &err) != POA_OK) {
        fprintf(stderr, "bench_model: %s\n", err.msg);
        return 2;
    }
    const size_t P = m.table.total * sizeof(float);
    float *params = be->iface->alloc(be, P), *grads = be->iface->alloc(be, P);
    poa_model_init_params(be, &m, params, 0);
    const poa_weights w = poa_weights_f32(be, params);

    const int B = o.batch, S = o.size, T = 1 + poa_model_n_patches(&cfg, S, S);
    const size_t n_img = (size_t) B * 3 * S * S, n_out = (size_t) B * T * sn.width;
    float *h = malloc((n_img > n_out ? n_img : n_out) * sizeof(float));
    for (size_t i = 0; i < n_img; i++) h[i] = (float) sin(0.001 * (double) i);
    float *images = be->iface->alloc(be, n_img * sizeof(float));
    be->iface->upload(be, images, h, n_img * sizeof(float));
    poa_vit_acts a;
    poa_vit_acts_create(be, &m, &a, B, S, 1);
    poa_vit_input in = {images, B, S, S, NULL, NULL};
    for (size_t i = 0; i < n_out; i++) h[i] = (float) cos(0.01 * (double) i);

    /* the yardstick, after every timed step (not with --profile: its time would count as the
     * step's "outside ops") */
    bench_sgemm probe = bench_sgemm_create(1024);
    double t[MAX_REPS], tc[MAX_REPS], sg[MAX_REPS], sg_split[MAX_REPS], sg_pool[MAX_REPS], cpu0 = 0;
    ab_switch ab = o.ab ? ab_parse(o.ab) : (ab_switch){{0}, NULL, NULL};
    for (int r = -o.warmup; r < o.reps; r++) {
        if (o.ab) ab_set(&ab, r);
        if (o.profile && r == 0) {
            profile_install(be);
            cpu0 = prof_clock();
        }
        be->iface->synchronize(be);
        double t0 = now(), c0 = cpu_now();
        be->iface->zero(be, grads, P);
        poa_vit_forward(be, &m, &w, &sn, &in, &a);
        if (r == -o.warmup) be->iface->act_upload(be, a.d_out, h, n_out);
        poa_vit_backward(be, &m, &w, grads, &a, a.d_out);
        be->iface->synchronize(be);
        if (r >= 0) t[r] = now() - t0, tc[r] = cpu_now() - c0;
        if (r >= 0 && !o.profile) {
            const bench_sgemm_rate rate = bench_sgemm_run(&probe);
            sg[r] = rate.best, sg_split[r] = rate.split, sg_pool[r] = rate.pool;
        } else if (r >= 0) {
            sg[r] = sg_split[r] = sg_pool[r] = NAN;
        }
    }
    if (o.ab) {
        ab_report(&ab, t, o.reps);
        ab_set(&ab, 0);
        free(ab.value_a);
    }
    const double step = median(t, o.reps);
    const double step_cpu = median(tc, o.reps);
    if (o.profile) {
        double total = 0;
        for (int r = 0; r < o.reps; r++) total += t[r];
        if (prof_cpu) total = prof_clock() - cpu0;
        profile_report(total, o.reps);
        be->nn = &real;
        be->iface = &real_iface;
    }
    const double img_s = B / step;
    const double gflops = flops_per_image(&cfg, S, sn.width, sn.depth) * B / step * 1e-9;
    const double sgemm = median(sg, o.reps), sgemm_split = median(sg_split, o.reps),
                 sgemm_pool = median(sg_pool, o.reps);
    bench_sgemm_destroy(&probe);
    const int threads = omp_get_max_threads();
    printf("C  config=%s size=%d batch=%d subnet=(%d,%d) threads=%d gemm=%s step_ms=%.1f "
           "cpu_ms=%.1f img_s=%.2f gflops=%.2f sgemm_gflops=%.2f sgemm_split_gflops=%.2f "
           "sgemm_pool_gflops=%.2f frac_sgemm=%.3f\n",
           o.config, S, B, sn.width, sn.depth, threads, poa_cpu_gemm_impl(), step * 1e3,
           step_cpu * 1e3, img_s, gflops, sgemm, sgemm_split, sgemm_pool, gflops / sgemm);
    printf("RESULT config=%s threads=%d img_s=%.2f gflops=%.2f sgemm_gflops=%.2f frac_sgemm=%.2f "
           "torch_img_s=%.2f ratio_torch=%.2f\n",
           strcmp(o.config, "vit_small") == 0 ? "vit_small_224" : o.config, threads, img_s, gflops,
           sgemm, gflops / sgemm, o.torch_img_s, img_s / o.torch_img_s);

    poa_vit_acts_destroy(be, &a);
    be->iface->free(be, images), be->iface->free(be, params), be->iface->free(be, grads);
    free(h);
    poa_model_free(&m);
    poa_backend_destroy(be);
    return 0;
}
