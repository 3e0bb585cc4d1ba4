/* poa_train.c — poa-train: POA pretraining, one MPI rank per GPU (or group of CPU cores).
 *   mpiexec -n N poa-train --config FILE --data DIR --output DIR [options] [key=value ...]
 * Options → init → loop → report: src/train/trainer_cli.h, src/train/loop.h;
 * documentation: src/train/README-train.md. */
#include "comm/signals.h"
#include "train/trainer_cli.h"

int main(int argc, char **argv)
{
    /* Before anything else: a SIGTERM/SIGUSR1 from the batch system during start-up (MPI
     * initialisation, data and model set-up) is recorded and stops the run after its first
     * step with a checkpoint (exit 75); one after the loop ends is ignored (the run finished). */
    poa_signals_install();
    poa_train_args args;
    int rc = poa_train_cli_setup(argc, argv, &args);
    if (rc < 0) rc = poa_train_cli_run(&args);
    return poa_train_cli_finish(&args, rc);
}
