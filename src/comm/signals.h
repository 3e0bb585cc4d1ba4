/* signals.h — job control for Slurm: stop cleanly on SIGUSR1 / SIGTERM / SIGINT.
 *
 * The handlers only record the signal (async-signal-safe); the training loop polls
 * poa_signal_pending() and, every step (or every few steps), calls the collective
 * poa_signal_agree() so that all ranks stop after the same step.  The trainer then writes a
 * checkpoint (temporary file + rename: a signal or kill during the write never leaves a partial
 * file under a final name) and every rank exits with POA_EXIT_REQUEUE (75) — see
 * src/comm/README.md for the Slurm side (--signal, requeue).
 *
 * A second SIGINT while the first is still being handled restores the default action and
 * re-raises it (Ctrl-C twice kills an interactive run at once); repeated SIGTERM/SIGUSR1 are
 * only recorded again.
 */
#ifndef POA_COMM_SIGNALS_H
#define POA_COMM_SIGNALS_H

#include "comm/comm.h"

/* Install the handlers (SA_RESTART, so interrupted system calls resume).  Calls nest: poa-train
 * installs them first thing in main() (a stop signal during start-up is then recorded and
 * honoured at the first step, instead of killing the process before it can write a checkpoint)
 * and the rank loop installs them again around the loop; each restore undoes one install, and
 * the last restores the actions that were in place before the first. */
void poa_signals_install(void);
void poa_signals_restore(void);

/* The first recorded signal number (SIGUSR1, SIGTERM or SIGINT), 0 when none.  Local. */
int poa_signal_pending(void);
/* How many handled signals arrived since install/clear. */
int poa_signal_count(void);
/* Forget the recorded signals (e.g. after the checkpoint was written and before exiting). */
void poa_signal_clear(void);

/* Collective over all ranks of d: the largest pending signal number over the ranks (0 when no
 * rank has one), identical on every rank, so all ranks stop at the same step.  Costs one small
 * MPI_Allreduce. */
int poa_signal_agree(poa_comm *d);

/* "SIGUSR1", "SIGTERM", "SIGINT", "signal N". */
const char *poa_signal_name(int sig);

#endif
