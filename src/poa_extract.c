/* poa_extract.c — poa-extract: sub-networks of a POA training checkpoint as standalone ViT
 * files (HDF5 and safetensors; hdf5-schemas/extracted-model.md, docs/algorithm.md §10).
 *   poa-extract --checkpoint CK.h5|RUN_DIR --output DIR (--subnet WxD | --arch NAME | --all)
 *               [--from teacher|student] [--format h5,safetensors]
 * Options → open the checkpoint → extract and write each sub-network → report.  The work is in
 * src/modelio/ (model_source.h, export.h); this file is the command line and the rank logic.
 *
 * Ranks: poa-extract runs as one process (MPI singleton), or under mpiexec/srun with N ranks
 * that share the sub-networks round-robin (each rank reads the checkpoint's weights itself;
 * rank 0 resolves a run directory to one file first).  The ranks agree on every error, and the
 * exit code is the worst of all ranks'.
 */
#include "poa_config.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/timer.h"
#include "modelio/export.h"
#include "modelio/model_source.h"
#include "tool/tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_REQUESTS 4096

static const poa_cli_option options[] = {
    {"checkpoint", 'c', "PATH",
     "training checkpoint (checkpoint_<it>.h5, or eval/training_<it>/\n"
     "teacher_checkpoint.h5), or a run directory: its newest checkpoint"},
    {"output", 'o', "DIR", "output directory (created)"},
    {"subnet", 's', "WxD",
     "a sub-network: width x depth, e.g. 384x12 (repeatable, or a comma\n"
     "list); both must be elastic sizes of the run (--list shows them)"},
    {"arch", 'a', "NAME",
     "a named size: vit_small (384x12), vit_base (768x12), vit_large\n"
     "(1024x24), ... when the run has it (repeatable, or a comma list)"},
    {"all", 0, NULL, "every sub-network of the run: elastic widths x depths"},
    {"from", 0, "WHICH", "teacher (default: the EMA teacher) or student weights"},
    {"format", 'f', "FMT", "h5, safetensors, or both (default; repeatable, or a comma list)"},
    {"list", 0, NULL, "print the run's sub-networks and named sizes, write nothing"},
};
static const int n_options = (int) (sizeof options / sizeof options[0]);

static const poa_cli_spec spec = {
    .program = "poa-extract",
    .summary = "       poa-extract --checkpoint CK --output DIR --subnet WxD|--arch NAME|--all\n"
               "Write sub-networks of a POA checkpoint as standalone ViTs (DINOv2/timm names):\n"
               "DIR/vit_<W>x<D>.h5 and DIR/vit_<W>x<D>.safetensors, written atomically.\n"
               "Width scaling folded into the weights, blocks renumbered, final norm kept\n"
               "(hdf5-schemas/extracted-model.md).  Under mpiexec/srun the ranks share the\n"
               "sub-networks.",
    .options = options,
    .n_options = n_options,
    .epilog = "Exit codes: 0 ok, 2 bad command line (unknown option, bad --subnet, a size the\n"
              "run does not have), 3 missing, corrupt or mismatched checkpoint, 4 an output\n"
              "file could not be written (no partial file is left).",
};

typedef struct extract_args {
    poa_cli cli;
    const char *checkpoint, *output;
    poa_weights_from from;
    unsigned formats;
    int all, list;
    int n_req;
    poa_tool_request req[MAX_REQUESTS]; /* what to extract, before the checkpoint is known */
} extract_args;

static int parse_format(extract_args *a, const char *t)
{
    if (strcmp(t, "h5") == 0 || strcmp(t, "hdf5") == 0)
        a->formats |= POA_FILE_H5;
    else if (strcmp(t, "safetensors") == 0)
        a->formats |= POA_FILE_SAFETENSORS;
    else
        return poa_cli_usage_error(&spec, "--format '%s': expected h5 or safetensors", t);
    return 0;
}

/* One item of --subnet, --arch or --format. */
static int add_item(void *ctx, const char *opt, const char *t)
{
    extract_args *a = ctx;
    if (strcmp(opt, "format") == 0) return parse_format(a, t);
    return poa_tool_add_request(&spec, opt, t, a->req, &a->n_req, MAX_REQUESTS);
}

/* The command line into a.  -1: go on; else the exit code (0 after --help / --version). */
static int parse_args(int argc, char **argv, extract_args *a)
{
    int rc = poa_cli_main_setup(&spec, argc, argv, &a->cli, NULL, 1, &(poa_err){0});
    if (rc >= 0) return rc;
    a->checkpoint = poa_cli_value(&a->cli, &spec, "checkpoint");
    a->output = poa_cli_value(&a->cli, &spec, "output");
    a->all = poa_cli_flag(&a->cli, &spec, "all");
    a->list = poa_cli_flag(&a->cli, &spec, "list");
    if (!a->checkpoint) return poa_cli_usage_error(&spec, "--checkpoint PATH is required");
    const char *from = poa_cli_value(&a->cli, &spec, "from");
    poa_err err;
    if (from && poa_weights_from_parse(from, &a->from, &err) != POA_OK)
        return poa_cli_usage_error(&spec, "--from %s", err.msg);
    /* --subnet, --arch and --format, in command-line order (the order files are written) */
    for (int k = 0; k < a->cli.n_given; k++) {
        const char *opt = options[a->cli.given_option[k]].name, *arg = a->cli.given[k];
        if (strcmp(opt, "subnet") == 0 || strcmp(opt, "arch") == 0 || strcmp(opt, "format") == 0)
            rc = poa_tool_each_item(&spec, opt, arg, add_item, a);
        if (rc > 0) return rc;
    }
    if (!a->formats) a->formats = POA_FILE_H5 | POA_FILE_SAFETENSORS;
    if (a->list) return -1;
    if (!a->output) return poa_cli_usage_error(&spec, "--output DIR is required");
    if (!a->all && a->n_req == 0)
        return poa_cli_usage_error(&spec, "say which sub-networks: --subnet WxD, --arch NAME or "
                                          "--all (--list shows the run's)");
    return -1;
}

/* ------------------------------------------------------------------ ranks */

static int rank_of(void)
{
    return poa_log_rank();
}

/* Every rank opens the checkpoint (tool.h: rank 0 resolves a run directory to its newest
 * loadable file first).  Returns the agreed exit code. */
static int open_source(const extract_args *a, poa_model_source *src)
{
    int code = poa_tool_open_source("poa-extract", a->checkpoint, a->from, src);
    if (code == 0 && src->kind != POA_SOURCE_CHECKPOINT) { /* the same file on every rank */
        if (rank_of() == 0)
            poa_error("poa-extract: %s is an extracted model, not a training checkpoint: "
                      "poa-extract reads checkpoint_<iteration>.h5 files (or a run directory)",
                      src->path);
        code = POA_EXIT_DATA;
    }
    return code;
}

/* ------------------------------------------------------------------ the work list */

typedef struct job {
    poa_subnet sn;
} job;

static int contains(const job *jobs, int n, int width, int depth)
{
    for (int i = 0; i < n; i++)
        if (jobs[i].sn.width == width && jobs[i].sn.depth == depth) return 1;
    return 0;
}

/* The requests resolved against the run: --all first, then --subnet / --arch in the order
 * given, duplicates once.  Returns the count, or -(exit code) on a usage error (rank 0 says
 * why; every rank computes the same). */
static int resolve(const extract_args *a, const poa_model_source *src, job *jobs, int cap)
{
    int n = 0;
    if (a->all) {
        poa_subnet *all = poa_xmalloc(sizeof *all * (size_t) cap);
        int k = poa_model_source_subnets(src, all, cap);
        for (int i = 0; i < k && i < cap; i++) jobs[n++].sn = all[i];
        free(all);
    }
    for (int i = 0; i < a->n_req; i++) {
        poa_subnet sn;
        poa_err err;
        if (poa_tool_resolve_request(src, &a->req[i], &sn, &err)) {
            if (rank_of() == 0) poa_cli_usage_error(&spec, "%s", err.msg);
            return -POA_EXIT_USAGE;
        }
        if (!contains(jobs, n, sn.width, sn.depth) && n < cap) jobs[n++].sn = sn;
    }
    return n;
}

/* ------------------------------------------------------------------ --list */

static void print_list(const poa_model_source *src)
{
    if (rank_of() != 0) return;
    const poa_model_config *c = &src->model.cfg;
    poa_subnet *all = poa_xmalloc(sizeof *all * MAX_REQUESTS);
    int n = poa_model_source_subnets(src, all, MAX_REQUESTS);
    char named[512];
    poa_model_source_named_list(src, named, sizeof named);
    printf("%s: %s weights of iteration %lld (poa %s), arch %s, patch %d, heads of %d\n", src->path,
           poa_weights_from_name(src->from), (long long) src->iteration, src->program_version,
           c->arch, c->patch_size, c->head_dim);
    printf("sub-networks (%d):", n);
    for (int i = 0; i < n && i < MAX_REQUESTS; i++) printf(" %dx%d", all[i].width, all[i].depth);
    printf("\nnamed sizes: %s\n", named);
    free(all);
}

/* ------------------------------------------------------------------ writing */

static double file_mib(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (double) sb.st_size / (1 << 20) : 0;
}

/* Job i on this rank: extract and write; the exit code. */
static int run_job(const extract_args *a, const poa_model_source *src, const job *jb, int i, int n)
{
    char paths[2][POA_IO_PATH_MAX];
    poa_err err = {0};
    double t0 = poa_now();
    poa_status st =
        poa_export_subnet(src, jb->sn.width, jb->sn.depth, a->output, a->formats, paths, &err);
    if (st) {
        poa_error("poa-extract: %s", err.msg);
        return st == POA_ERR_IO ? POA_EXIT_IO : st == POA_ERR_ARG ? POA_EXIT_USAGE : POA_EXIT_DATA;
    }
    int nf = __builtin_popcount(a->formats);
    char files[3 * POA_IO_PATH_MAX], blocks[POA_ARCH_MAX_DEPTH * 5];
    size_t k = 0, b = 0;
    for (int f = 0; f < nf; f++)
        k += (size_t) snprintf(files + k, sizeof files - k, "%s%s %.2f MiB", f ? ", " : "",
                               paths[f], file_mib(paths[f]));
    for (int j = 0; j < jb->sn.depth; j++)
        b += (size_t) snprintf(blocks + b, sizeof blocks - b, j ? ",%d" : "%d", jb->sn.blocks[j]);
    poa_info("[%d/%d] %dx%d (blocks %s): %s (%.2f s)", i + 1, n, jb->sn.width, jb->sn.depth, blocks,
             files, poa_now() - t0);
    return 0;
}

/* Jobs round-robin over the ranks; after each round the ranks agree on the errors so far and
 * rank 0 reports how many sub-networks all ranks have written.  Returns the agreed exit code. */
static int run_jobs(const extract_args *a, const poa_model_source *src, const job *jobs, int n)
{
    const int rank = rank_of(), world = poa_log_world_size();
    const double t0 = poa_now();
    int code = 0;
    for (int round = 0; round * world < n; round++) {
        const int i = round * world + rank;
        if (i < n && code == 0) code = run_job(a, src, &jobs[i], i, n);
        code = poa_tool_agree(code);
        if (code) break;
        int done = (round + 1) * world < n ? (round + 1) * world : n;
        if (world > 1)
            poa_info("%d/%d sub-networks written by the %d ranks (%.1f s)", done, n, world,
                     poa_now() - t0);
    }
    return code;
}

static void print_plan(const extract_args *a, const poa_model_source *src, int n)
{
    char fmts[64] = "";
    if (a->formats & POA_FILE_H5) strcat(fmts, "h5");
    if (a->formats & POA_FILE_SAFETENSORS) strcat(fmts, fmts[0] ? ", safetensors" : "safetensors");
    poa_info("poa-extract %s: %d sub-network(s) of %s (%s weights, iteration %lld) -> %s (%s)%s",
             PACKAGE_VERSION, n, src->path, poa_weights_from_name(src->from),
             (long long) src->iteration, a->output, fmts,
             poa_log_world_size() > 1 ? ", shared by the ranks" : "");
}

static int run(void *args)
{
    const extract_args *a = args;
    poa_model_source src;
    memset(&src, 0, sizeof src);
    int code = open_source(a, &src);
    if (code) {
        poa_model_source_close(&src);
        return code;
    }
    if (a->list) {
        print_list(&src);
        poa_model_source_close(&src);
        return 0;
    }
    job *jobs = poa_xcalloc(MAX_REQUESTS, sizeof *jobs);
    int n = resolve(a, &src, jobs, MAX_REQUESTS);
    if (n > 0) {
        print_plan(a, &src, n);
        double t0 = poa_now();
        code = run_jobs(a, &src, jobs, n);
        if (!code)
            poa_info("poa-extract: wrote %d file(s) for %d sub-network(s) to %s in %.1f s",
                     n * __builtin_popcount(a->formats), n, a->output, poa_now() - t0);
    } else {
        code = n < 0 ? -n : POA_EXIT_USAGE;
    }
    free(jobs);
    poa_model_source_close(&src);
    return code;
}

int main(int argc, char **argv)
{
    extract_args *a = poa_xcalloc(1, sizeof *a);
    int rc = parse_args(argc, argv, a);
    if (rc < 0) rc = poa_tool_main(&argc, &argv, "poa-extract", a->cli.verbose, run, a);
    for (int i = 0; i < a->n_req; i++) free(a->req[i].name);
    poa_cli_free(&a->cli);
    free(a);
    return rc;
}
