/* bench_step.c — throughput of the complete POA training step (src/train/step.h) on a backend
 * (the CPU by default): teacher, intact and elastic students on 2 global + V_l local crops per
 * image, heads, all losses (iBOT on), backward, clipping, AdamW, EMA; on the CPU next to
 * OpenBLAS's sgemm at the same thread count measured in the same run (make bench-step;
 * bench_step.py runs it next to PyTorch), on a GPU next to PyTorch's step (make bench-step-gpu,
 * bench/bench_step_gpu.py).
 *
 * usage: bench_step --config NAME [--batch B] [--groups G] [--local V] [--width W --depth L]
 *                   [--reps N] [--warmup N] [--torch-img-s X] [--serve]
 *                   [--backend cpu|cuda] [--dtype fp32|bf16] [--tf32 0|1] [--profile N]
 * The elastic sub-network is fixed (--width/--depth, default the middle of the elastic ranges) so
 * that both sides run the same work.  Prints the per-phase times of the median step and one
 * `RESULT config=… threads=… img_s=… gflops=… sgemm_gflops=… frac_sgemm=… torch_img_s=…
 * ratio_torch=… backend=… dtype=… tflops=…` line (medians over the timed steps).  gflops is wall
 * clock (analytic FLOPs over the median step), tflops the same rate in TFLOP/s.  On the CPU
 * backend a 1024³ OpenBLAS sgemm on the same number of threads, wall clock, is timed before every
 * timed step (bench_sgemm.h), and frac_sgemm = gflops / its median; on other backends there is
 * no sgemm yardstick and sgemm_gflops and frac_sgemm are nan.
 * Threads: OMP_NUM_THREADS.
 *
 * --profile N: after the timed steps, N more with the per-op profiler attached
 * (src/backend/backend_profile.h): where the step's time goes, op by op, before the RESULT line.
 *
 * --serve: after the set-up (and --warmup steps) read commands from stdin, so that a driver can
 * interleave our steps with PyTorch's on a shared machine: "step" times the sgemm and then one
 * step and answers "STEP <wall s> <cpu s> <sgemm GFLOP/s>"; "result <torch img/s>" prints the
 * RESULT line over the timed steps so far and exits.
 */
#include "backend/backend.h"
#include "backend/backend_profile.h"
#include "backend/cpu/cpu_nn.h"
#include "common/cli.h"
#include "common/timer.h"
#include "train/step.h"

#include "bench_sgemm.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct options {
    const char *config, *backend, *dtype;
    int batch, groups, local, width, depth, reps, warmup, serve, tf32, profile;
    double torch_img_s;
} options;

/* OpenBLAS names the kernel set it chose (NULL with another BLAS).  A CPU it does not recognise
 * gets the generic Prescott (SSE3) kernels, several times slower than the AVX-512 ones; setting
 * OPENBLAS_CORETYPE (e.g. SKYLAKEX) fixes that for every process, PyTorch included. */
extern char *openblas_get_corename(void) __attribute__((weak));

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double) t.tv_sec + 1e-9 * (double) t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static const poa_cli_option cli_options[] = {
    {"config", 0, "NAME", "architecture preset (default demo)"},
    {"batch", 0, "B", "images per rank group (default 32)"},
    {"groups", 0, "G", "rank groups (default 1)"},
    {"local", 0, "V", "local crops per image (default 8)"},
    {"width", 0, "W", "width of the elastic student (default: the middle width)"},
    {"depth", 0, "L", "depth of the elastic student (default: the middle depth)"},
    {"reps", 0, "N", "timed steps (default 3, at most 64)"},
    {"warmup", 0, "N", "untimed steps first (default 1)"},
    {"torch-img-s", 0, "X", "PyTorch's img/s, printed next to ours in the RESULT line"},
    {"backend", 0, "NAME", "cpu (default) or cuda"},
    {"dtype", 0, "T", "the backbone's compute dtype: fp32 (default) or bf16 (CUDA)"},
    {"tf32", 0, "0|1", "TF32 tensor cores for the fp32 GEMMs of the heads (CUDA; default 1)"},
    {"profile", 0, "N",
     "after the timed steps, N more with every backend op timed (events on the\n"
     "compute stream): a table per op and the longest GEMM shapes (default 0)"},
    {"serve", 0, NULL,
     "after the set-up, read \"step\" / \"result <torch img/s>\" commands\n"
     "from stdin (bench/bench_step.py)"},
};
static const poa_cli_spec spec = {
    .program = "bench_step",
    .summary = "Throughput of the complete POA training step on a backend (default: cpu, demo, 32 "
               "images,\n8 local crops, 3 timed steps after 1 warm-up), on the CPU next to "
               "OpenBLAS's sgemm on as\nmany threads, wall clock; the last line is RESULT "
               "config=... threads=... (see make\nbench-step, make bench-step-gpu).",
    .options = cli_options,
    .n_options = (int) (sizeof cli_options / sizeof cli_options[0]),
    .epilog = "Threads: OMP_NUM_THREADS.  Exit codes: 0 done, 1 step failed, 2 bad option or "
              "backend\nunavailable.",
};

/* The command line into o: -1 to go on, else the exit code. */
static int parse(int argc, char **argv, options *o)
{
    *o = (options){"demo", "cpu", "fp32", 32, 1, 8, 0, 0, 3, 1, 0, 1, 0, NAN};
    poa_cli cli;
    poa_err err = {0};
    int rc = poa_cli_main_setup(&spec, argc, argv, &cli, NULL, 1, &err);
    if (rc < 0) {
        const char *config = poa_cli_value(&cli, &spec, "config");
        if (config) o->config = config;
        const char *backend = poa_cli_value(&cli, &spec, "backend");
        if (backend) o->backend = backend;
        const char *dtype = poa_cli_value(&cli, &spec, "dtype");
        if (dtype) o->dtype = dtype;
        o->serve = poa_cli_flag(&cli, &spec, "serve");
        if (poa_cli_int(&cli, &spec, "batch", 32, 1, 1 << 20, &o->batch, &err) != POA_OK ||
            poa_cli_int(&cli, &spec, "groups", 1, 1, POA_STEP_MAX_GROUPS, &o->groups, &err) !=
                POA_OK ||
            poa_cli_int(&cli, &spec, "local", 8, 0, 256, &o->local, &err) != POA_OK ||
            poa_cli_int(&cli, &spec, "width", 0, 1, 1 << 16, &o->width, &err) != POA_OK ||
            poa_cli_int(&cli, &spec, "depth", 0, 1, 1024, &o->depth, &err) != POA_OK ||
            poa_cli_int(&cli, &spec, "reps", 3, 1, 64, &o->reps, &err) != POA_OK ||
            poa_cli_int(&cli, &spec, "warmup", 1, 0, 1000, &o->warmup, &err) != POA_OK ||
            poa_cli_int(&cli, &spec, "tf32", 1, 0, 1, &o->tf32, &err) != POA_OK ||
            poa_cli_int(&cli, &spec, "profile", 0, 0, 64, &o->profile, &err) != POA_OK ||
            poa_cli_double(&cli, &spec, "torch-img-s", NAN, 0, 1e12, true, &o->torch_img_s, &err) !=
                POA_OK)
            rc = poa_cli_usage_error(&spec, "%s", err.msg);
        else if (strcmp(o->dtype, "fp32") != 0 && strcmp(o->dtype, "bf16") != 0)
            rc = poa_cli_usage_error(&spec, "--dtype %s: expected fp32 or bf16", o->dtype);
    }
    poa_cli_free(&cli); /* the values point into argv */
    return rc;
}

/* The backend of the run, or exit 2 naming why it cannot run the step (not built, no device,
 * dtype refused, ops missing). */
static poa_backend *create_backend(const options *o)
{
    char ebuf[256];
    const poa_backend_opts opts = {strcmp(o->dtype, "bf16") ? POA_DT_F32 : POA_DT_BF16, 0, o->tf32};
    poa_backend *be = poa_backend_create(o->backend, &opts, ebuf, sizeof ebuf);
    if (!be) fprintf(stderr, "bench_step: backend %s: %s\n", o->backend, ebuf), exit(2);
    const char *names[6];
    const int n = poa_backend_missing_ops(be, names, 6);
    if (n > 0) {
        fprintf(stderr,
                "bench_step: the %s backend lacks %d of the ops the step needs:", o->backend, n);
        for (int i = 0; i < n && i < 6; i++) fprintf(stderr, " %s", names[i]);
        fprintf(stderr, "%s\n", n > 6 ? " ..." : "");
        exit(2);
    }
    return be;
}

/* FLOPs (2 per multiply-add) of one backbone call of n images of side S at width d, depth L;
 * backward adds two products per forward product (one for the patch embedding). */
static double backbone_flops(const poa_model_config *c, int S, int d, int L, int n, int backward)
{
    const double N = poa_model_n_patches(c, S, S), T = N + 1,
                 cpp = 3.0 * c->patch_size * c->patch_size;
    const double r = c->mlp_ratio, pe = 2.0 * N * cpp * d;
    const double block = 2.0 * T * d * d * (3 + 1 + 2 * r) + 2.0 * 2.0 * T * T * d;
    double f = pe + L * block;
    if (backward) f += 2.0 * L * block + pe;
    return f * n;
}

/* All heads on `rows` rows of width d (forward; backward ×3 in total). */
static double heads_flops(const poa_model_config *c, int d, int rows, int backward)
{
    double f = 0;
    const double hid = c->head_hidden_dim, bn = c->head_bottleneck_dim;
    for (int h = 0; h < c->n_heads; h++)
        f += 2.0 * rows * (d * hid + hid * hid + hid * bn + bn * c->head_n_prototypes[h]);
    return backward ? 3 * f : f;
}

static double step_flops(const poa_model_config *c, int B, int V, int n_masked,
                         const poa_subnet *es)
{
    const int D = c->max_embed_dim, L = c->max_depth, Sg = c->global_crops_size,
              Sl = c->local_crops_size;
    const int rows = (2 + V) * B + n_masked;
    double f = backbone_flops(c, Sg, D, L, 2 * B, 0) + heads_flops(c, D, 2 * B + n_masked, 0);
    f += backbone_flops(c, Sg, D, L, 2 * B, 1) + backbone_flops(c, Sl, D, L, V * B, 1);
    f += backbone_flops(c, Sg, es->width, es->depth, 2 * B, 1) +
         backbone_flops(c, Sl, es->width, es->depth, V * B, 1);
    f += heads_flops(c, D, rows, 1) + heads_flops(c, es->width, rows, 1);
    return f;
}

/* `steps` more steps with every op timed; the table on stdout.  0, or 1 if a step failed. */
static int profile_steps(poa_backend *be, poa_step *st, poa_step_batch *b, long long *it, int steps)
{
    poa_profile *prof = poa_profile_attach(be, 0, NULL);
    poa_step_report r;
    double total = 0;
    for (int k = 0; k < steps; k++) {
        if (poa_step_run(st, b, &r) != POA_OK) {
            fprintf(stderr, "bench_step: profiled step failed: %s\n", r.bad_what);
            poa_profile_detach(prof);
            return 1;
        }
        b->it = ++*it;
        poa_profile_collect(prof);
        total += r.seconds[POA_PHASE_TOTAL];
    }
    poa_profile_report(prof, stdout, total / steps, 20);
    poa_profile_detach(prof);
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    poa_model_config cfg;
    poa_err err;
    if (poa_model_config_from_arch(&cfg, o.config, &err) != POA_OK) {
        fprintf(stderr, "bench_step: %s\n", err.msg);
        return 2;
    }
    int widths[64], depths[POA_MODEL_MAX_DEPTH];
    int nw = poa_model_widths(&cfg, widths, 64),
        nd = poa_model_depths(&cfg, depths, POA_MODEL_MAX_DEPTH);
    if (!o.width) o.width = widths[nw / 2];
    if (!o.depth) o.depth = depths[nd / 2];
    poa_backend *be = create_backend(&o);
    const int on_cpu = strcmp(o.backend, "cpu") == 0;
    poa_model m;
    poa_model_build(&m, &cfg);
    poa_subnet es;
    if (poa_subnet_make(&cfg, o.width, o.depth, &es, &err) != POA_OK) {
        fprintf(stderr, "bench_step: %s\n", err.msg);
        return 2;
    }
    /* the sgemm yardstick only on the CPU backend: a GPU step is not measured against it */
    bench_sgemm probe = {0};
    if (on_cpu) probe = bench_sgemm_create(1024);

    const int B = o.batch, G = o.groups, V = o.local, C = cfg.in_chans;
    const int Sg = cfg.global_crops_size, Sl = cfg.local_crops_size;
    const int N = poa_model_n_patches(&cfg, Sg, Sg);
    poa_step_config sc = poa_step_config_official(&m, B, G, V);
    poa_step *st = poa_step_create(be, &m, &sc, NULL, NULL);
    poa_step_init_params(st, 0);

    /* crops; iBOT masks on every other global crop (every third patch) */
    const size_t ng = (size_t) G * 2 * B * C * Sg * Sg, nl = (size_t) G * V * B * C * Sl * Sl;
    float *h = malloc(sizeof(float) * (ng > nl ? ng : nl));
    float *glob = be->iface->alloc(be, sizeof(float) * ng),
          *loc = be->iface->alloc(be, sizeof(float) * (nl + 1));
    for (size_t i = 0; i < ng; i++) h[i] = (float) sin(0.001 * (double) i);
    be->iface->upload(be, glob, h, sizeof(float) * ng);
    for (size_t i = 0; i < nl; i++) h[i] = (float) cos(0.002 * (double) i);
    if (nl) be->iface->upload(be, loc, h, sizeof(float) * nl);
    free(h);
    uint8_t *masks = calloc((size_t) G * 2 * B * N, 1);
    int n_masked = 0;
    for (int c = 0; c < G * 2 * B; c += 2)
        for (int p = c % 3; p < N; p += 3) masks[(size_t) c * N + p] = 1, n_masked++;
    poa_subnet subnets[POA_STEP_MAX_GROUPS];
    for (int g = 0; g < G; g++) subnets[g] = es;
    poa_step_batch b = {0, glob, loc, masks, subnets, NULL, NULL, NULL};
    const long long it0 = sc.sched.ibot_activate_epochs * sc.sched.epoch_length; /* iBOT on */

    enum { MAX_REPS = 64 };
    double t[MAX_REPS], cpu[MAX_REPS], phases[MAX_REPS][POA_N_PHASES];
    double sg[MAX_REPS], sg_split[MAX_REPS], sg_pool[MAX_REPS];
    poa_step_report r;
    long long it = it0;
    int n = 0;
    for (int k = -o.warmup; o.serve || k < o.reps; k++) {
        if (k >= 0 && o.serve) { /* wait for the driver's next command */
            char cmd[128];
            fflush(stdout);
            if (!fgets(cmd, sizeof cmd, stdin)) break;
            if (!strncmp(cmd, "result", 6)) {
                o.torch_img_s = atof(cmd + 6);
                break;
            }
        }
        if (k >= 0) { /* the yardstick, under the same load as this step */
            if (n == MAX_REPS) break;
            const bench_sgemm_rate rate =
                on_cpu ? bench_sgemm_run(&probe) : (bench_sgemm_rate){NAN, NAN, NAN};
            sg[n] = rate.best, sg_split[n] = rate.split, sg_pool[n] = rate.pool;
        }
        double t0 = poa_now(), c0 = cpu_now();
        if (poa_step_run(st, &b, &r) != POA_OK) {
            fprintf(stderr, "bench_step: step failed: %s\n", r.bad_what);
            return 1;
        }
        b.it = ++it;
        be->iface->synchronize(be);
        if (k >= 0) {
            t[n] = poa_now() - t0;
            cpu[n] = cpu_now() - c0;
            memcpy(phases[n], r.seconds, sizeof r.seconds);
            if (o.serve) printf("STEP %.6f %.6f %.3f\n", t[n], cpu[n], sg[n]);
            n++;
        }
    }
    bench_sgemm_destroy(&probe);
    if (n == 0) return 1;
    if (o.profile > 0 && profile_steps(be, st, &b, &it, o.profile) != 0) return 1;
    double sorted[MAX_REPS], csorted[MAX_REPS];
    memcpy(sorted, t, sizeof(double) * (size_t) n);
    memcpy(csorted, cpu, sizeof(double) * (size_t) n);
    qsort(sorted, (size_t) n, sizeof(double), cmp_double);
    qsort(csorted, (size_t) n, sizeof(double), cmp_double);
    const double med = sorted[n / 2], cpu_med = csorted[n / 2];
    const double sgemm = bench_median(sg, n), sgemm_split = bench_median(sg_split, n),
                 sgemm_pool = bench_median(sg_pool, n);
    int km = 0;
    for (int k = 0; k < n; k++)
        if (t[k] == med) km = k;
    const double flops = G * step_flops(&cfg, B, V, n_masked / G, &es);
    /* both wall clock: the step's GFLOP/s and the sgemm's on as many threads (bench_sgemm.h) */
    const double img_s = B * G / med, gflops = flops / med * 1e-9;
    const int threads = omp_get_max_threads();
    printf("config=%s batch=%d groups=%d local=%d elastic=%dx%d masked=%d threads=%d steps=%d "
           "step=%.3fs cpu=%.3fs gflop=%.6g loss=%.4f blas_core=%s sgemm_split_gflops=%.2f "
           "sgemm_pool_gflops=%.2f\n",
           o.config, B, G, V, es.width, es.depth, n_masked, threads, n, med, cpu_med, flops * 1e-9,
           r.loss, openblas_get_corename ? openblas_get_corename() : "n/a", sgemm_split,
           sgemm_pool);
    printf("phases:");
    for (int p = 0; p < POA_N_PHASES; p++)
        printf(" %s=%.3fs", poa_step_phase_name(p), phases[km][p]);
    printf("\n");
    printf("RESULT config=%s threads=%d img_s=%.3f gflops=%.2f sgemm_gflops=%.2f frac_sgemm=%.3f "
           "torch_img_s=%.3f ratio_torch=%.3f backend=%s dtype=%s tflops=%.3f\n",
           o.config, threads, img_s, gflops, sgemm, gflops / sgemm, o.torch_img_s,
           img_s / o.torch_img_s, o.backend, o.dtype, flops / med * 1e-12);
    free(masks);
    be->iface->free(be, glob), be->iface->free(be, loc);
    poa_step_destroy(st);
    poa_model_free(&m);
    poa_backend_destroy(be);
    return 0;
}
