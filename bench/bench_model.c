/* bench_model.c — forward+backward throughput of the ViT backbone on the CPU backend, next to
 * OpenBLAS's sgemm at the same thread count measured in the same run (make bench-model;
 * bench_model.py runs it next to PyTorch).
 *
 * usage: bench_model --config NAME [--size S] [--batch B] [--reps N] [--warmup N]
 *                    [--width W --depth L] [--torch-img-s X] [--profile] [--ab VAR=VALUE]
 * --profile times every backend op of the timed steps (per op and the 10 longest GEMM shapes, 40
 * with POA_BENCH_GEMM_SHAPES=1; src/backend/backend_profile.h);
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
#include "backend/backend_profile.h"
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
/* With --profile-cpu: this thread's CPU time (meaningful with one thread on a busy machine);
 * with --profile, the backend's events (wall time on the CPU).  src/backend/backend_profile.h. */
static int prof_cpu;
static double thread_cpu_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
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
    {"profile", 0, NULL,
     "time every backend op (per op, and the longest GEMM shapes; the sgemm is\nthen not timed)"},
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
    poa_profile *prof = NULL;
    ab_switch ab = o.ab ? ab_parse(o.ab) : (ab_switch){{0}, NULL, NULL};
    for (int r = -o.warmup; r < o.reps; r++) {
        if (o.ab) ab_set(&ab, r);
        if (o.profile && r == 0) {
            prof = poa_profile_attach(be, 0, prof_cpu ? thread_cpu_clock : NULL);
            if (prof_cpu) cpu0 = thread_cpu_clock();
        }
        be->iface->synchronize(be);
        double t0 = now(), c0 = cpu_now();
        be->iface->zero(be, grads, P);
        poa_vit_forward(be, &m, &w, &sn, &in, &a);
        if (r == -o.warmup) be->iface->act_upload(be, a.d_out, h, n_out);
        poa_vit_backward(be, &m, &w, grads, &a, a.d_out);
        be->iface->synchronize(be);
        if (r >= 0) t[r] = now() - t0, tc[r] = cpu_now() - c0;
        if (prof) poa_profile_collect(prof);
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
    if (prof) {
        double total = 0;
        for (int r = 0; r < o.reps; r++) total += t[r];
        if (prof_cpu) total = thread_cpu_clock() - cpu0;
        poa_profile_report(prof, stdout, total / o.reps, getenv("POA_BENCH_GEMM_SHAPES") ? 40 : 10);
        poa_profile_detach(prof);
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
