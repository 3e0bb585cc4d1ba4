/* trainer_cli.h — the poa-train program around the rank loop (src/poa_train.c is its main):
 * command line, MPI start, configuration, the comm layer, and the exit code.
 *
 *   poa-train --config FILE --data DIR --output DIR [options] [key=value ...]
 *
 * See src/train/README-train.md for the options, outputs, exit codes, signals and resume.
 */
#ifndef POA_TRAIN_TRAINER_CLI_H
#define POA_TRAIN_TRAINER_CLI_H

#include "common/cli.h"
#include "common/config.h"
#include "train/loop.h"

typedef struct poa_train_args {
    poa_cli cli;
    poa_config cfg;
    poa_trainer_opts opts;
    int dry_run;
    int ranks; /* --ranks (dry run), default the MPI world size */
    int rank, world;
    int mpi_started; /* this program called MPI_Init */
} poa_train_args;

/* Start MPI, parse the command line, build the configuration (--data / --output set
 * train.dataset_path / train.output_dir), print it.  Returns -1 to go on, else the exit code
 * (0 after --help/--version, 2 on a usage or configuration error). */
int poa_train_cli_setup(int argc, char **argv, poa_train_args *a);
/* --dry-run, or comm init → trainer → run → summary.  Returns the exit code. */
int poa_train_cli_run(poa_train_args *a);
/* Finalize MPI; returns rc. */
int poa_train_cli_finish(poa_train_args *a, int rc);

#endif
