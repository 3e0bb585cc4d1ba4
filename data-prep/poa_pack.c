/* poa-pack — pack an ImageNet-layout folder into sharded HDF5 files plus metadata.h5
 * (formats: hdf5-schemas/dataset.md), or check a packed folder (--verify).
 * Usage and examples: data-prep/README.md.
 *
 * Parallelism: MPI ranks (srun -n 32 poa-pack …) and Slurm array tasks (--shard-range) take
 * different shards; threads inside a rank decode the files of a shard.  Resumable: a shard whose
 * final file is complete and was planned from the same input and options is kept; anything else
 * is rewritten under a temporary name and renamed. */
#define _GNU_SOURCE
#include "pack.h"

#include "common/cli.h"
#include "common/log.h"
#include "common/timer.h"
#include "data/schema.h"

#include "poa_config.h"

#include <errno.h>
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const poa_cli_option options[] = {
    {"root", 'r', "ROOT", "ImageNet-layout input folder"},
    {"output", 'o', "DIR", "output folder (created)"},
    {"splits", 's', "LIST", "comma-separated splits (default train,val; test allowed)"},
    {"shard-images", 0, "N", "images per shard"},
    {"shard-mb", 0, "MB", "input megabytes per shard (default 512)"},
    {"max-side", 0, "PX", "re-encode images whose longest side exceeds PX to that side"},
    {"quality", 0, "Q", "JPEG quality of re-encoded images (default 90)"},
    {"threads", 'j', "N", "decoding threads per rank (default: CPUs of the rank)"},
    {"shard-range", 0, "SPEC",
     "only some shards of each split (Slurm array tasks): A:B = shards\n"
     "A..B-1; I/N = shards k with k % N == I; auto = I and N from\n"
     "SLURM_ARRAY_TASK_ID/_MIN and SLURM_ARRAY_TASK_COUNT"},
    {"strict", 0, NULL,
     "fail (exit 3) on any file that cannot be packed and on class\n"
     "folders missing from labels.txt, instead of skipping them"},
    {"verify", 0, "DIR", "re-read DIR: schema, counts, entries and CRC-32 of every shard"},
    {"decode", 0, NULL, "with --verify: also decode every image"},
    {"export-extra", 0, "EXTRA",
     "also write the official dump_extra() .npy files (entries-,\n"
     "class-ids-, class-names-<SPLIT>.npy) of the packed folder to\n"
     "EXTRA; with packing or with --verify"},
    {"print-schema", 0, "NAME",
     "print the format table of 'shard' or 'metadata' (the rows of\n"
     "hdf5-schemas/dataset-NAME.md) and exit"},
};

static const poa_cli_spec spec = {
    .program = "poa-pack",
    .summary = "       poa-pack --root ROOT --output DIR [options]\n"
               "       poa-pack --verify DIR [--decode]\n"
               "Pack ROOT/{train,val}/<wnid>/*.JPEG + ROOT/labels.txt into "
               "DIR/<split>-KKKKK-of-NNNNN.h5\nshards and DIR/" POA_METADATA_FILE
               ", or check a packed folder (--verify).  Run under srun/mpiexec\n"
               "to pack shards in parallel (data-prep/README.md).",
    .options = options,
    .n_options = (int) (sizeof options / sizeof options[0]),
    .epilog = "Exit codes: 0 ok, 2 usage, 3 bad or missing input / verification failed (or "
              "--strict\nand a file could not be packed), 4 cannot write the output.",
};

static int parse_splits(pack_options *o, const char *list)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    o->n_splits = 0;
    char *save = NULL;
    for (char *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        if (strcmp(s, "train") && strcmp(s, "val") && strcmp(s, "test"))
            return poa_cli_usage_error(&spec, "unknown split '%s' (train, val or test)", s);
        for (int i = 0; i < o->n_splits; i++)
            if (strcmp(o->splits[i], s) == 0)
                return poa_cli_usage_error(&spec, "split '%s' given twice", s);
        if (o->n_splits == POA_MAX_SPLITS)
            return poa_cli_usage_error(&spec, "too many splits in '%s'", list);
        snprintf(o->splits[o->n_splits++], sizeof o->splits[0], "%s", s);
    }
    return o->n_splits ? POA_EXIT_OK
                       : poa_cli_usage_error(&spec, "--splits '%s' names no split", list);
}

static int parse_range(pack_options *o, const char *arg)
{
    char tmp[64];
    if (strcmp(arg, "auto") == 0) {
        const char *id = getenv("SLURM_ARRAY_TASK_ID"), *mn = getenv("SLURM_ARRAY_TASK_MIN"),
                   *cnt = getenv("SLURM_ARRAY_TASK_COUNT");
        if (!id || !cnt)
            return poa_cli_usage_error(&spec, "--shard-range %s: not inside a Slurm array job",
                                       arg);
        snprintf(tmp, sizeof tmp, "%ld/%ld", atol(id) - (mn ? atol(mn) : 0), atol(cnt));
        arg = tmp;
    }
    char sep;
    long a, b;
    if (sscanf(arg, "%ld%c%ld", &a, &sep, &b) != 3 || (sep != ':' && sep != '/'))
        return poa_cli_usage_error(&spec, "--shard-range wants A:B, I/N or auto, got '%s'", arg);
    if (sep == ':' && (a < 0 || b <= a))
        return poa_cli_usage_error(&spec, "--shard-range %s: need 0 <= A < B", arg);
    if (sep == '/' && (b < 1 || a < 0 || a >= b))
        return poa_cli_usage_error(&spec, "--shard-range %s: need 0 <= I < N", arg);
    o->range_kind = sep == ':' ? 1 : 2;
    o->r0 = a;
    o->r1 = b;
    return POA_EXIT_OK;
}

static int default_threads(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    return 1;
}

/* A numeric option, or the usage error. */
static int cli_number(poa_status st, const poa_err *err)
{
    return st == POA_OK ? POA_EXIT_OK : poa_cli_usage_error(&spec, "%s", err->msg);
}

/* The command line into o.  Returns POA_EXIT_OK to go on, -1 when done (--help, --version,
 * --print-schema), else the exit code of a usage error. */
static int parse_options(int argc, char **argv, poa_cli *cli, pack_options *o)
{
    memset(o, 0, sizeof *o);
    int rc = poa_cli_main_setup(&spec, argc, argv, cli, NULL, 1, &(poa_err){0});
    if (rc >= 0) return rc == POA_EXIT_OK ? -1 : rc;
    const char *schema = poa_cli_value(cli, &spec, "print-schema");
    if (schema) {
        if (strcmp(schema, "shard") && strcmp(schema, "metadata"))
            return poa_cli_usage_error(
                &spec, "--print-schema wants 'shard' or 'metadata', got '%s'", schema);
        poa_schema_print(stdout,
                         strcmp(schema, "shard") ? &poa_metadata_schema : &poa_shard_schema);
        return -1;
    }
    o->root = poa_cli_value(cli, &spec, "root");
    o->output = poa_cli_value(cli, &spec, "output");
    o->verify_dir = poa_cli_value(cli, &spec, "verify");
    o->export_extra = poa_cli_value(cli, &spec, "export-extra");
    o->strict = poa_cli_flag(cli, &spec, "strict");
    o->decode = poa_cli_flag(cli, &spec, "decode");
    o->verbose = cli->verbose;
    const char *splits = poa_cli_value(cli, &spec, "splits");
    const char *range = poa_cli_value(cli, &spec, "shard-range");
    poa_err err = {0};
    if ((rc = parse_splits(o, splits ? splits : "train,val")) != POA_EXIT_OK ||
        (range && (rc = parse_range(o, range)) != POA_EXIT_OK))
        return rc;
    if ((rc = cli_number(
             poa_cli_long(cli, &spec, "shard-images", 0, 1, 1L << 40, &o->shard_images, &err),
             &err)) != POA_EXIT_OK ||
        (rc = cli_number(
             poa_cli_double(cli, &spec, "shard-mb", 512, 1e-6, 1e12, false, &o->shard_mb, &err),
             &err)) != POA_EXIT_OK ||
        (rc = cli_number(poa_cli_int(cli, &spec, "max-side", 0, 16, 65535, &o->max_side, &err),
                         &err)) != POA_EXIT_OK ||
        (rc = cli_number(poa_cli_int(cli, &spec, "quality", 90, 1, 100, &o->quality, &err),
                         &err)) != POA_EXIT_OK ||
        (rc = cli_number(
             poa_cli_int(cli, &spec, "threads", default_threads(), 1, 1024, &o->threads, &err),
             &err)) != POA_EXIT_OK)
        return rc;
    if (o->verify_dir) return POA_EXIT_OK;
    if (!o->root) return poa_cli_usage_error(&spec, "%s", "--root ROOT is required");
    if (!o->output) return poa_cli_usage_error(&spec, "%s", "--output DIR is required");
    return POA_EXIT_OK;
}

static poa_status make_output_dir(const char *dir, poa_err *err)
{
    char buf[4200];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return poa_err_set(err, POA_ERR_IO, "%s: cannot create: %s", buf, strerror(errno));
            *p = c;
        }
        if (c == '\0') break;
    }
    return POA_OK;
}

/* Pack this rank's shards.  Returns the first error. */
static poa_status pack_my_shards(const pack_options *o, split_plan *plans, int rank, int size,
                                 pack_stats *stats, poa_err *err)
{
    long long total = 0;
    volatile long long done = 0;
    for (int i = 0; i < o->n_splits; i++)
        for (size_t k = 0; k < plans[i].n_shards; k++)
            if (pack_shard_is_mine(o, k, plans[i].n_shards, rank, size))
                total += (long long) plans[i].shards[k].count;
    poa_progress prog;
    poa_progress_begin(&prog, "packing", total, 30.0);
    poa_status st = POA_OK;
    for (int i = 0; i < o->n_splits && st == POA_OK; i++) {
        split_plan *p = &plans[i];
        for (size_t k = 0; k < p->n_shards && st == POA_OK; k++) {
            if (!pack_shard_is_mine(o, k, p->n_shards, rank, size)) continue;
            char why[4600], path[4400];
            pack_shard_path(path, sizeof path, o->output, p->scan.name, k, p->n_shards);
            pack_remove_stale_tmp(path);
            if (pack_shard_complete(o, p, k, why, sizeof why)) {
                stats->shards_kept++;
                done += (long long) p->shards[k].count;
                poa_debug("%s shard %zu complete, kept", p->scan.name, k);
                continue;
            }
            if (why[0]) poa_info("rewriting: %s", why);
            st = pack_build_shard(o, p, k, stats, &done, err);
            char extra[128];
            snprintf(extra, sizeof extra, "shard %.15s-%05zu", p->scan.name, k);
            poa_progress_update(&prog, done, extra);
        }
    }
    poa_progress_end(&prog, done, NULL);
    return st;
}

static void print_summary(const pack_options *o, const pack_stats *t, double seconds, int size,
                          size_t missing, int code)
{
    poa_info("poa-pack: %.0f images packed (%.1f MB%s), %.0f skipped, %.0f shards written, %.0f "
             "kept from an earlier run, %.1f s, %.1f images/s (%d rank(s) x %d thread(s))",
             t->images, t->bytes / 1e6, t->reencoded ? ", re-encoded where larger" : "", t->skipped,
             t->shards_written, t->shards_kept, seconds, seconds > 0 ? t->images / seconds : 0.0,
             size, o->threads);
    if (t->images)
        poa_info(
            "input: %.1f MB; grayscale %.0f, CMYK %.0f, progressive %.0f, decoder warnings %.0f, "
            "re-encoded %.0f",
            t->input_bytes / 1e6, t->gray, t->cmyk, t->progressive, t->warned, t->reencoded);
    if (code != POA_EXIT_OK)
        poa_info("%s not written: packing failed (messages above); the complete shards are kept, "
                 "rerun poa-pack with the same options to finish",
                 POA_METADATA_FILE);
    else if (missing)
        poa_info("%s not written yet: %zu shard(s) are not complete (other array tasks still "
                 "running?). The run that completes the last shard writes it; or rerun poa-pack "
                 "with the same options.",
                 POA_METADATA_FILE, missing);
    else
        poa_info("wrote %s/%s; check with: poa-pack --verify %s", o->output, POA_METADATA_FILE,
                 o->output);
}

static int run_pack(const pack_options *o, int rank, int size)
{
    poa_err err = {0};
    double t0 = poa_now();
    split_plan plans[POA_MAX_SPLITS];
    memset(plans, 0, sizeof plans);
    poa_status st = pack_scan_all(o, plans, &err);
    int fail = st != POA_OK;
    if (!fail && rank == 0) st = make_output_dir(o->output, &err), fail = st != POA_OK;
    MPI_Bcast(&fail, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (fail) {
        if (rank == 0) poa_error("poa-pack: %s", err.msg);
        pack_plans_free(plans, o->n_splits);
        return rank == 0 ? poa_status_exit_code(st) : POA_EXIT_DATA;
    }
    for (int i = 0; i < o->n_splits; i++) pack_plan_shards(o, &plans[i]);
    pack_stats stats = {0}, total;
    st = pack_my_shards(o, plans, rank, size, &stats, &err);
    int code = st == POA_OK ? POA_EXIT_OK : poa_status_exit_code(st), worst;
    if (st != POA_OK) poa_error("poa-pack: %s", err.msg);
    MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Reduce(&stats, &total, (int) PACK_STATS_N, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    size_t missing = 0;
    if (rank == 0 && worst == POA_EXIT_OK) {
        st = pack_write_metadata(o, plans, o->n_splits, &missing, &err);
        if (st == POA_OK && !missing && o->export_extra)
            st = pack_export_extra(o->output, o->export_extra, &err);
        if (st != POA_OK) {
            poa_error("poa-pack: %s", err.msg);
            worst = poa_status_exit_code(st);
        }
    }
    if (rank == 0) print_summary(o, &total, poa_now() - t0, size, missing, worst);
    MPI_Bcast(&worst, 1, MPI_INT, 0, MPI_COMM_WORLD);
    pack_plans_free(plans, o->n_splits);
    return worst;
}

int main(int argc, char **argv)
{
    pack_options o;
    poa_cli cli;
    int rc = parse_options(argc, argv, &cli, &o);
    if (rc != POA_EXIT_OK) {
        poa_cli_free(&cli);
        return rc < 0 ? POA_EXIT_OK : rc;
    }
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    poa_log_init(rank, size, o.verbose);
    rc = o.verify_dir ? pack_verify(&o, rank, size) : run_pack(&o, rank, size);
    MPI_Finalize();
    poa_cli_free(&cli);
    return rc;
}
