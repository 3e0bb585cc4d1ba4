/* tool.h — what the programs that read models share: poa-extract, poa-eval-knn and
 * poa-eval-linear (src/local.mk); the evaluation programs' networks are tool/networks.h.  Each
 * runs as one process (an MPI singleton) or under mpiexec/srun with N ranks on MPI_COMM_WORLD;
 * the functions below that say "collective" must be called by every rank.
 *
 *     int main(int argc, char **argv)
 *     {
 *         ... parse the command line (no MPI yet) ...
 *         return poa_tool_main(&argc, &argv, verbose, run, &args);
 *     }
 *     static int run(void *args)
 *     {
 *         poa_model_source src;
 *         int code = poa_tool_open_source("poa-x", path, POA_FROM_TEACHER, &src);
 *         ... work; after each step that can fail on some rank: code = poa_tool_agree(code) ...
 *     }
 *
 * Exit codes are README.md's ("Exit codes"); the ranks agree on the worst, so every rank of a
 * job ends with the same code. */
#ifndef POA_TOOL_TOOL_H
#define POA_TOOL_TOOL_H

#include "common/cli.h"
#include "common/poa_error.h"
#include "modelio/model_source.h"

#include <stdint.h>
#include <stdio.h>

/* MPI_Init, the rank-aware log (poa_log_init with the rank and world size), run(ctx), the check
 * that no HDF5 object was left open (poa_tool_check_hdf5_closed), MPI_Finalize.  Returns
 * run's exit code. */
int poa_tool_main(int *argc, char ***argv, const char *program, int verbose, int (*run)(void *ctx),
                  void *ctx);

/* Collective: the worst (largest) exit code of all ranks. */
int poa_tool_agree(int code);

/* The exit code of failing to read an input: POA_EXIT_USAGE when the command line asked for
 * what the input cannot give (POA_ERR_ARG, POA_ERR_CONFIG), POA_EXIT_DATA otherwise (missing,
 * corrupt or mismatched file). */
int poa_tool_read_exit_code(poa_status st);

/* Collective: rank 0 opens arg (a run directory resolves to its newest loadable checkpoint),
 * then every other rank opens the file rank 0 opened.  A failure is printed as
 * "<program>: <message>" by the rank that has it.  Returns the agreed exit code: 0 when every
 * rank has *src (close it with poa_model_source_close in every case). */
int poa_tool_open_source(const char *program, const char *arg, poa_weights_from from,
                         poa_model_source *src);

/* [lo, hi) of n items that rank r of p takes (contiguous, balanced). */
void poa_tool_share(int64_t n, int r, int p, int64_t *lo, int64_t *hi);

/* Collective: this rank's index on its node (the CUDA device of a rank). */
int poa_tool_local_rank(void);

/* Collective: rank 0 creates dir (mkdir -p).  0, or POA_EXIT_IO after "<program>: cannot create
 * the output directory: ...", agreed. */
int poa_tool_make_output_dir(const char *program, const char *dir);

/* ------------------------------------------------------------------ the command line */

/* The sub-networks a command line asks for, in the order given: --subnet WxD or --arch NAME. */
typedef struct poa_tool_request {
    int width, depth; /* --subnet WxD                      */
    char *name;       /* --arch NAME (malloc'ed), or NULL */
} poa_tool_request;

/* A positive decimal of at most 6 digits in [s, end), or 0. */
int poa_tool_positive(const char *s, const char *end);

/* An option's argument split at commas: fn(ctx, opt, item) for each item until one returns
 * non-zero, which is returned; a usage error (poa_cli_usage_error of spec) when it names
 * nothing. */
int poa_tool_each_item(const poa_cli_spec *spec, const char *opt, const char *arg,
                       int (*fn)(void *ctx, const char *opt, const char *item), void *ctx);

/* One item of --subnet ("384x12": positive widths and depths of at most 6 digits) or of --arch
 * (a preset name of common/arch.h) into *r: 0, or the exit code of a usage error naming the
 * option and the item. */
int poa_tool_parse_request(const poa_cli_spec *spec, const char *opt, const char *item,
                           poa_tool_request *r);
/* The same appended to req[*n] (*n < cap), *n incremented: 0, or the exit code of a usage error
 * (also when the list already holds cap requests). */
int poa_tool_add_request(const poa_cli_spec *spec, const char *opt, const char *item,
                         poa_tool_request *req, int *n, int cap);

/* The sub-network of src that r asks for: POA_OK, or POA_ERR_ARG with "--subnet|--arch <why>
 * (<file>)", the why listing what src offers. */
poa_status poa_tool_resolve_request(const poa_model_source *src, const poa_tool_request *r,
                                    poa_subnet *sn, poa_err *err);

/* ------------------------------------------------------------------ result files (one rank) */

/* text as a JSON string (quotes, backslashes and control characters escaped). */
void poa_tool_json_string(FILE *f, const char *text);

/* Write dir/name atomically (common/atomic_io.h) with writer(f, ctx); the final path into path
 * (POA_IO_PATH_MAX).  0, or POA_EXIT_IO after "<program>: writing <path>: <why>". */
int poa_tool_write_file(const char *program, const char *dir, const char *name,
                        void (*writer)(FILE *f, const void *ctx), const void *ctx, char *path);

/* ------------------------------------------------------------------ at exit */

/* The HDF5 objects still open in this process (files that libhdf5 could not close after a full
 * disk excepted: common/h5check.h), with a warning naming them and "<program>".  Every reader
 * and writer of poa closes what it opens on every path, so this is 0; the full-disk tests
 * check it (tests/fault/test_fault_enospc.sh). */
long poa_tool_check_hdf5_closed(const char *program);

#endif
