/* test_backend_ops — every op of the backend tables (src/backend/backend.h) on every backend
 * the build has, in every compute dtype the backend supports, against the naive double
 * references (backend/cpu/cpu_naive.h), through alloc / upload / download only.
 *
 *   test_backend_ops [--backend cpu|cuda|emu|all] [--dtype fp32|bf16|all] [--op NAME]
 *                    [--grad | --perf] [--seed N] [--reps N] [--images N] [--small]
 *                    [--verbose] [--list] [--help]
 *
 * Backends: cpu always, cuda where built and a device is visible; emu (only when named) is a
 * fixture, the CPU backend with bf16 activations (backend_ops_emu.c).
 *
 * Modes: the default checks each op's results (views with ld > cols, unaligned starts, edge
 * shapes, NULL optional outputs), that it writes nothing outside its outputs' views, and that
 * a second run gives the same bits; --grad checks the backward ops against central finite
 * differences of the naive double forward (and, for the losses, against the backend's own
 * loss); --perf times each op at ViT-S/ViT-L block shapes and the heads' shapes (median of
 * --reps runs, timed with the backend's events).  tests/ops/README.md lists the cases and the
 * tolerances.
 *
 * Every op of the tables must have a test here: the program reads the op names that
 * poa_backend_missing_ops knows and fails on one without a test ("op X has no test").
 *
 * Exit status: 0 all passed, 1 a failure, 2 usage, 77 the requested backend (or dtype) is not
 * available here (not built, no device).
 */
#include "backend_ops.h"

#include "common/poa_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const bo_vit bo_vits[2] = {
    {"ViT-S/16", 384, 6, 64, 1536},
    {"ViT-L/16", 1024, 16, 64, 4096},
};

/* The memory and transfer entries every case uses. */
static const char *const basic_ops[] = {"alloc",         "free",          "upload",
                                        "download",      "act_upload",    "act_download",
                                        "event_create",  "event_record",  "event_synchronize",
                                        "event_elapsed", "event_destroy", "synchronize"};

static const bo_op_test tests[] = {
    /* device interface */
    {"describe", "", bo_check_describe, NULL, NULL},
    {"mem_info", "", bo_check_mem_info, NULL, NULL},
    {"destroy", "scale", bo_check_destroy, NULL, NULL},
    {"alloc free", "", bo_check_alloc, NULL, NULL},
    {"host_alloc host_free", "", bo_check_host_alloc, NULL, NULL},
    {"upload download copy zero", "", bo_check_copies, NULL, bo_perf_copies},
    {"act_upload act_download", "", bo_check_act_transfer, NULL, bo_perf_act_transfer},
    {"upload_async download_async stream_wait", "host_alloc host_free scale axpy copy zero",
     bo_check_async, NULL, NULL},
    {"event_create event_destroy event_record event_synchronize event_elapsed synchronize",
     "gemm zero", bo_check_events, NULL, NULL},
    {"native_stream is_host", "", bo_check_native_stream, NULL, NULL},
    /* fp32 layer ops (heads) */
    {"gemm", "bias_grad", bo_check_gemm, bo_grad_gemm, bo_perf_gemm},
    {"gemm_strided_batched", "", bo_check_gemm_strided_batched, NULL, bo_perf_gemm_strided_batched},
    {"gemm_bias", "", bo_check_gemm_bias, NULL, bo_perf_gemm_bias},
    {"bias_grad", "", bo_check_bias_grad, bo_grad_bias_grad, bo_perf_bias_grad},
    {"gelu_fwd", "", bo_check_gelu_fwd, NULL, bo_perf_gelu_fwd},
    {"gelu_bwd", "gelu_fwd", bo_check_gelu_bwd, bo_grad_gelu, bo_perf_gelu_bwd},
    {"l2norm_fwd", "", bo_check_l2norm_fwd, NULL, bo_perf_l2norm_fwd},
    {"l2norm_bwd", "", bo_check_l2norm_bwd, bo_grad_l2norm, bo_perf_l2norm_bwd},
    {"weightnorm_fwd", "", bo_check_weightnorm_fwd, NULL, bo_perf_weightnorm_fwd},
    {"weightnorm_bwd", "", bo_check_weightnorm_bwd, bo_grad_weightnorm, bo_perf_weightnorm_bwd},
    {"axpy", "", bo_check_axpy, NULL, bo_perf_axpy},
    {"scale", "", bo_check_scale, NULL, bo_perf_scale},
    {"pos_resample_fwd", "", bo_check_pos_resample_fwd, NULL, bo_perf_pos_resample_fwd},
    {"pos_resample_bwd", "", bo_check_pos_resample_bwd, bo_grad_pos_resample,
     bo_perf_pos_resample_bwd},
    /* the backbone, in the compute dtype */
    {"act_from_f32", "", bo_check_act_from_f32, NULL, bo_perf_act_from_f32},
    {"act_gemm", "act_gemm_wgrad act_bias_grad", bo_check_act_gemm, bo_grad_act_gemm,
     bo_perf_act_gemm},
    {"act_gemm_bias", "", bo_check_act_gemm_bias, NULL, bo_perf_act_gemm_bias},
    {"act_gemm_wgrad", "", bo_check_act_gemm_wgrad, NULL, bo_perf_act_gemm_wgrad},
    {"act_bias_grad", "", bo_check_act_bias_grad, bo_grad_act_bias_grad, bo_perf_act_bias_grad},
    {"act_gelu_fwd", "", bo_check_act_gelu_fwd, NULL, bo_perf_act_gelu_fwd},
    {"act_gelu_bwd", "act_gelu_fwd", bo_check_act_gelu_bwd, bo_grad_act_gelu, bo_perf_act_gelu_bwd},
    {"layernorm_fwd", "", bo_check_layernorm_fwd, NULL, bo_perf_layernorm_fwd},
    {"layernorm_bwd", "", bo_check_layernorm_bwd, bo_grad_layernorm, bo_perf_layernorm_bwd},
    {"attention_fwd", "attention_saved_bytes attention_scratch_bytes", bo_check_attention_fwd, NULL,
     bo_perf_attention_fwd},
    {"attention_bwd", "attention_fwd attention_saved_bytes attention_scratch_bytes",
     bo_check_attention_bwd, bo_grad_attention, bo_perf_attention_bwd},
    {"attention_saved_bytes attention_scratch_bytes", "", bo_check_attention_sizes, NULL, NULL},
    {"residual_ls_fwd", "", bo_check_residual_ls_fwd, NULL, bo_perf_residual_ls_fwd},
    {"residual_ls_bwd", "", bo_check_residual_ls_bwd, bo_grad_residual_ls, bo_perf_residual_ls_bwd},
    {"patch_unfold", "", bo_check_patch_unfold, NULL, bo_perf_patch_unfold},
    {"tokens_fwd", "", bo_check_tokens_fwd, NULL, bo_perf_tokens_fwd},
    {"tokens_bwd", "", bo_check_tokens_bwd, bo_grad_tokens, bo_perf_tokens_bwd},
    {"act_gather_rows", "", bo_check_act_gather_rows, NULL, bo_perf_act_gather_rows},
    {"act_scatter_add_rows", "", bo_check_act_scatter_add_rows, bo_grad_act_scatter_add_rows,
     bo_perf_act_scatter_add_rows},
    {"act_gather_rows_f32", "", bo_check_act_gather_rows_f32, NULL, bo_perf_act_gather_rows_f32},
    {"act_scatter_add_rows_f32", "", bo_check_act_scatter_add_rows_f32,
     bo_grad_act_scatter_add_rows_f32, bo_perf_act_scatter_add_rows_f32},
    /* losses, optimizer, reductions */
    {"sum_squares", "", bo_check_sum_squares, NULL, bo_perf_sum_squares},
    {"softmax_rows", "", bo_check_softmax_rows, NULL, bo_perf_softmax_rows},
    {"xent", "", bo_check_xent, bo_grad_xent, bo_perf_xent},
    {"col_max", "", bo_check_col_max, NULL, bo_perf_col_max},
    {"sk_exp", "", bo_check_sk_exp, NULL, bo_perf_sk_exp},
    {"sk_normalize", "col_max sk_exp", bo_check_sk_normalize, NULL, bo_perf_sk_normalize},
    {"koleo koleo_scratch_bytes", "", bo_check_koleo, bo_grad_koleo, bo_perf_koleo},
    {"adamw", "", bo_check_adamw, NULL, bo_perf_adamw},
    {"ema", "", bo_check_ema, NULL, bo_perf_ema},
};
enum { N_TESTS = sizeof tests / sizeof *tests, MAX_OPS = 256 };

/* ------------------------------------------------------------------------ op names */
/* Whether `name` is one of the space-separated words of `list`. */
static int in_list(const char *list, const char *name)
{
    const size_t n = strlen(name);
    for (const char *p = list; *p;) {
        while (*p == ' ') p++;
        const char *e = strchr(p, ' ');
        const size_t len = e ? (size_t) (e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return 1;
        p += len;
    }
    return 0;
}

/* Every entry of the three tables, by the names poa_backend_missing_ops uses: the ops a
 * backend whose tables are all NULL lacks. */
static int table_op_names(const char **names)
{
    static const poa_backend_iface no_iface;
    static const poa_nn_ops no_nn;
    static const poa_train_ops no_train;
    poa_backend shell = {.name = "none", .iface = &no_iface, .nn = &no_nn, .train = &no_train};
    const int n = poa_backend_missing_ops(&shell, names, MAX_OPS);
    POA_ASSERT(n <= MAX_OPS);
    return n;
}

static const bo_op_test *test_of(const char *op)
{
    for (int i = 0; i < N_TESTS; i++)
        if (in_list(tests[i].ops, op)) return &tests[i];
    return NULL;
}

/* Each op of the tables has a test with a check, and each test names ops of the tables;
 * returns the number of problems (printed). */
static int check_coverage(void)
{
    const char *names[MAX_OPS];
    const int n = table_op_names(names);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        const bo_op_test *t = test_of(names[i]);
        if (!t || !t->check) {
            printf("FAIL op %s has no test\n", names[i]);
            bad++;
        }
    }
    for (int i = 0; i < N_TESTS; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s %s", tests[i].ops, tests[i].needs);
        for (char *w = strtok(buf, " "); w; w = strtok(NULL, " ")) {
            int known = 0;
            for (int j = 0; j < n && !known; j++) known = strcmp(names[j], w) == 0;
            if (!known) {
                printf("FAIL the tests name op %s, which the tables do not have\n", w);
                bad++;
            }
        }
    }
    return bad;
}

/* Whether backend `name`'s tables fill `op` (without creating it: no device needed). */
static const char *implemented(const char *name, const char *op, int total)
{
    const char *missing[MAX_OPS];
    const int n = poa_backend_missing_ops_of(name, missing, MAX_OPS);
    if (n == total) return "not built";
    for (int i = 0; i < n; i++)
        if (!strcmp(missing[i], op)) return "NULL";
    return "yes";
}

static void list_tests(void)
{
    const char *names[MAX_OPS];
    const int n = table_op_names(names);
    printf("%-24s %-6s %-6s %-6s %-10s %-10s %s\n", "op", "check", "grad", "perf", "cpu", "cuda",
           "tested with");
    for (int i = 0; i < n; i++) {
        const bo_op_test *t = test_of(names[i]);
        printf("%-24s %-6s %-6s %-6s %-10s %-10s %s\n", names[i], t && t->check ? "yes" : "-",
               t && t->grad ? "yes" : "-", t && t->perf ? "yes" : "-",
               implemented("cpu", names[i], n), implemented("cuda", names[i], n),
               t ? t->ops : "NO TEST");
    }
}

/* ------------------------------------------------------------------------ options */
typedef struct options {
    const char *backend, *dtype, *op;
    bo_mode mode;
    uint64_t seed;
    int verbose, list, reps, images, small;
} options;

static void usage(FILE *f)
{
    fprintf(
        f, "usage: test_backend_ops [--backend cpu|cuda|emu|all] [--dtype fp32|bf16|all]\n"
           "                        [--op NAME] [--grad | --perf] [--seed N] [--reps N]\n"
           "                        [--images N] [--small] [--verbose] [--list] [--help]\n"
           "Runs every op of the backend tables on every backend of the build (cuda where a\n"
           "device is visible) in every compute dtype the backend supports, against naive\n"
           "double references.\n"
           "  --backend B   cpu, cuda or all (default all); emu: the CPU backend with bf16\n"
           "                activations (a fixture that runs this program's bf16 paths)\n"
           "  --dtype D     compute dtype: fp32, bf16 or all (default all; cpu: fp32 only)\n"
           "  --op NAME     only the tests of ops whose name contains NAME\n"
           "  --grad        backward ops against central finite differences\n"
           "  --perf        time each op at ViT-S/ViT-L and head shapes (median of --reps)\n"
           "  --seed N      random inputs' seed (default 1)\n"
           "  --reps N      --perf repetitions (default 20 on cuda, 5 on cpu)\n"
           "  --images N    --perf images per batch, rows = images x 197 tokens (default 64\n"
           "                on cuda, 4 on cpu)\n"
           "  --small       for compute-sanitizer: skip the cases with a buffer over 131072\n"
           "                elements, and the repeat runs (the determinism check)\n"
           "  --verbose     print the worst element of every comparison, passing or not\n"
           "  --list        the ops of the tables and the modes that test them\n"
           "Exit status: 0 all passed, 1 a failure, 2 usage, 77 backend or dtype not available.\n");
}

static int parse_int(const char *opt, const char *v, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    const long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || errno || *end || x < lo || x > hi) {
        fprintf(stderr, "test_backend_ops: %s needs an integer in [%lld, %lld], got '%s'\n", opt,
                lo, hi, v ? v : "");
        return 0;
    }
    *out = x;
    return 1;
}

/* v is one of the '|'-separated words of `choices` */
static int parse_choice(const char *opt, const char *v, const char *choices)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", choices);
    for (char *w = strtok(buf, "|"); w && v; w = strtok(NULL, "|"))
        if (!strcmp(w, v)) return 1;
    fprintf(stderr, "test_backend_ops: %s needs one of %s, got '%s'\n", opt, choices, v ? v : "");
    return 0;
}

/* One option with its value (argv[*i + 1]); 0 on a bad value. */
static int parse_valued(const char *a, const char *v, options *o)
{
    long long x = 0;
    if (!strcmp(a, "--backend")) return parse_choice(a, v, "cpu|cuda|emu|all") && (o->backend = v);
    if (!strcmp(a, "--dtype")) return parse_choice(a, v, "fp32|bf16|all") && (o->dtype = v);
    if (!strcmp(a, "--op")) {
        if (!v) fprintf(stderr, "test_backend_ops: --op needs a name\n");
        return v && (o->op = v);
    }
    if (!strcmp(a, "--seed"))
        return parse_int(a, v, 0, INT64_MAX, &x) && (o->seed = (uint64_t) x, 1);
    if (!strcmp(a, "--reps")) return parse_int(a, v, 1, 100000, &x) && (o->reps = (int) x);
    if (!strcmp(a, "--images")) return parse_int(a, v, 1, 4096, &x) && (o->images = (int) x);
    fprintf(stderr, "test_backend_ops: unknown option '%s' (see --help)\n", a);
    return 0;
}

/* 0 ok, 2 usage error, -1 --help */
static int parse(int argc, char **argv, options *o)
{
    *o = (options){"all", "all", NULL, BO_CHECK, 1, 0, 0, 0, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return -1;
        if (!strcmp(a, "--grad"))
            o->mode = BO_GRAD;
        else if (!strcmp(a, "--perf"))
            o->mode = BO_PERF;
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v"))
            o->verbose = 1;
        else if (!strcmp(a, "--list"))
            o->list = 1;
        else if (!strcmp(a, "--small"))
            o->small = 1;
        else if (!parse_valued(a, i + 1 < argc ? argv[i + 1] : NULL, o))
            return 2;
        else
            i++;
    }
    return 0;
}

/* ------------------------------------------------------------------------ running */
/* The compute dtypes each backend must support (emu: bf16 only). */
static int supports(const char *backend, poa_dtype dt)
{
    if (!strcmp(backend, "emu")) return dt == POA_DT_BF16;
    return dt == POA_DT_F32 || strcmp(backend, "cuda") == 0;
}

poa_backend *bo_backend_create(const char *name, const poa_backend_opts *opts, char *err,
                               size_t errlen)
{
    if (!strcmp(name, "emu")) return bo_emu_create(err, errlen);
    return poa_backend_create(name, opts, err, errlen);
}

/* The test's ops and needs that the backend lacks (into `which`); 0 if none. */
static int lacks(const bo_op_test *t, const char *const *missing, int nmissing, char *which,
                 size_t n)
{
    int count = 0;
    which[0] = 0;
    for (int i = 0; i < nmissing; i++)
        if (in_list(t->ops, missing[i]) || in_list(t->needs, missing[i])) {
            const size_t len = strlen(which);
            snprintf(which + len, n - len, "%s%s", count ? " " : "", missing[i]);
            count++;
        }
    return count;
}

static int matches(const bo_op_test *t, const char *filter)
{
    if (!filter) return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", t->ops);
    for (char *w = strtok(buf, " "); w; w = strtok(NULL, " "))
        if (strstr(w, filter)) return 1;
    return 0;
}

/* --perf: lines printed and the sum of their medians, over the backends run. */
static int perf_lines;
static double perf_total_s;

/* All selected tests on one backend in one dtype; returns failures. */
static int run_backend(const options *o, const char *name, poa_dtype dt, int *ran)
{
    poa_backend_opts opts = {dt, 0, 0};
    char err[512];
    poa_backend *be = bo_backend_create(name, &opts, err, sizeof err);
    if (!be) {
        printf("FAIL %s/%s: the backend could not be created: %s\n", name, poa_dtype_name(dt), err);
        return 1;
    }
    *ran = 1;
    const int cuda = strcmp(name, "cuda") == 0;
    bo_ctx c = {0};
    c.be = be, c.name = name, c.opts = opts, c.mode = o->mode, c.seed = o->seed;
    c.verbose = o->verbose, c.small = o->small;
    c.reps = o->reps ? o->reps : cuda ? 20 : 5;
    c.images = o->images ? o->images : cuda ? 64 : 4;
    char desc[512];
    be->iface->describe(be, desc, sizeof desc);
    printf("== %s/%s: %s\n", name, poa_dtype_name(dt), desc);
    const char *missing[MAX_OPS];
    const int nmissing = poa_backend_missing_ops(be, missing, MAX_OPS);
    int failures = 0;
    for (int i = 0; i < nmissing; i++)
        printf("FAIL %s/%s: op %s is not implemented\n", name, poa_dtype_name(dt), missing[i]);
    failures += nmissing;
    for (size_t i = 0; i < sizeof basic_ops / sizeof *basic_ops; i++)
        for (int j = 0; j < nmissing; j++)
            if (!strcmp(basic_ops[i], missing[j])) {
                printf("FAIL %s/%s: without %s no op can be tested\n", name, poa_dtype_name(dt),
                       basic_ops[i]);
                poa_backend_destroy(be);
                return failures;
            }
    for (int i = 0; i < N_TESTS; i++) {
        const bo_op_test *t = &tests[i];
        const bo_test_fn fn = o->mode == BO_PERF   ? t->perf
                              : o->mode == BO_GRAD ? t->grad
                                                   : t->check;
        if (!fn || !matches(t, o->op)) continue;
        char which[256];
        if (lacks(t, missing, nmissing, which, sizeof which)) {
            printf("SKIP %s/%s %s: the backend lacks %s\n", name, poa_dtype_name(dt), t->ops,
                   which);
            c.skipped++;
            continue;
        }
        char first[64];
        snprintf(first, sizeof first, "%s", t->ops);
        strtok(first, " ");
        c.op = first;
        fn(&c);
    }
    failures += c.failed;
    perf_lines += c.perf_lines, perf_total_s += c.perf_total_s;
    if (o->mode == BO_PERF)
        printf("== %s/%s: %d ops timed, sum of medians %.3f ms\n", name, poa_dtype_name(dt),
               c.perf_lines, c.perf_total_s * 1e3);
    else
        printf("== %s/%s: %d cases, %d failed, %d skipped\n", name, poa_dtype_name(dt), c.cases,
               c.failed, c.skipped);
    poa_backend_destroy(be);
    return failures;
}

int main(int argc, char **argv)
{
    options o;
    const int p = parse(argc, argv, &o);
    if (p == -1) {
        usage(stdout);
        return 0;
    }
    if (p) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (o.list) {
        list_tests();
        return check_coverage() ? 1 : 0;
    }
    int failures = check_coverage(), ran = 0, unavailable = 0;
    const char *all_ops[MAX_OPS];
    const int n_ops = table_op_names(all_ops);
    const char *backends[] = {"cpu", "cuda", "emu"}; /* emu only when asked for */
    const poa_dtype dtypes[] = {POA_DT_F32, POA_DT_BF16};
    for (int b = 0; b < 3; b++) {
        const char *name = backends[b];
        if (strcmp(o.backend, name) && (strcmp(o.backend, "all") || !strcmp(name, "emu"))) continue;
        if (strcmp(name, "emu") && poa_backend_device_count(name) < 1) {
            const int built = poa_backend_missing_ops_of(name, NULL, 0) < n_ops;
            printf("SKIP %s: %s\n", name, built ? "no device visible" : "not built");
            unavailable++;
            continue;
        }
        for (int d = 0; d < 2; d++) {
            if (strcmp(o.dtype, "all") && strcmp(o.dtype, poa_dtype_name(dtypes[d]))) continue;
            if (!supports(name, dtypes[d])) {
                if (strcmp(o.dtype, "all"))
                    printf("SKIP %s/%s: not a compute dtype of %s\n", name,
                           poa_dtype_name(dtypes[d]), name);
                continue;
            }
            failures += run_backend(&o, name, dtypes[d], &ran);
        }
    }
    const char *mode = o.mode == BO_PERF ? "perf" : o.mode == BO_GRAD ? "grad" : "check";
    if (!ran && !failures) {
        printf("RESULT SKIP mode=%s: nothing to run (%s)\n", mode,
               unavailable ? "backend not available" : "dtype not supported");
        return 77;
    }
    printf("RESULT %s mode=%s backend=%s dtype=%s failures=%d", failures ? "FAIL" : "PASS", mode,
           o.backend, o.dtype, failures);
    if (o.mode == BO_PERF)
        printf(" timed=%d sum_of_medians_ms=%.3f", perf_lines, perf_total_s * 1e3);
    printf("\n");
    return failures ? 1 : 0;
}
