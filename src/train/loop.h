/* loop.h — the POA pretraining rank loop (docs/algorithm.md §7, §8.5, §14;
 * docs/architecture.md §6).
 *
 * One process per rank (one GPU, or a group of cores with the CPU backend).  Every iteration:
 *   batch of this rank's G rank groups (loader) → upload → poa_step_run (teacher, students,
 *   losses, backward with the bucketed gradient all-reduce overlapped, non-finite guard, AdamW,
 *   EMA) → signal agreement (one small all-reduce) → log line / metrics record every
 *   train.log_period_iterations → resumable checkpoint every train.checkpoint_period_iterations
 *   and at the end, teacher checkpoint every evaluation.eval_period_iterations.
 *
 * Data parallelism: global batch = train.batch_size_per_gpu × train.rank_groups × ranks; the
 * gradients are averaged over every rank group of every rank, Sinkhorn-Knopp pools every rank's
 * rows (trainer_comm.h).  All ranks hold identical students and teachers (checked with a hash
 * whenever a checkpoint is written).
 *
 * Exit codes (common/poa_error.h): 0 done (or --max-steps reached, checkpoint written),
 * 3 data / checkpoint format, 4 output not writable, 5 non-finite loss or gradient (nothing is
 * written; the last good checkpoint stays), 75 stopped by SIGUSR1/SIGTERM/SIGINT after writing a
 * checkpoint (requeue).  Every rank returns the same code.
 */
#ifndef POA_TRAIN_LOOP_H
#define POA_TRAIN_LOOP_H

#include "common/config.h"
#include "common/poa_error.h"
#include "comm/comm.h"
#include "train/step.h"

#include <stdio.h>

typedef struct poa_trainer poa_trainer;

typedef struct poa_trainer_opts {
    int no_resume;                /* start from scratch even if output_dir holds checkpoints   */
    int synthetic_data;           /* random batches instead of data (benchmarks, tests)        */
    long long max_steps;          /* > 0: stop after this many iterations, with a checkpoint   */
    long long debug_nonfinite_at; /* >= 0: poison a weight before that iteration (tests)       */
    long long profile_at;         /* >= 0: time every backend op of that iteration (rank 0's
                                   * table on stdout; src/backend/README.md, "Profiling")      */
    int quiet;                    /* no startup table / log lines (tests)                      */
} poa_trainer_opts;

void poa_trainer_opts_default(poa_trainer_opts *o);

/* What a run did (rank 0's view; losses are averages over every rank group). */
typedef struct poa_trainer_summary {
    long long first_it, last_it; /* iterations run by this invocation (last_it < first_it: none) */
    long long total_its;
    int resumed;
    int stop_signal;               /* signal that stopped the run, 0 if none                */
    int exit_code;                 /* what the program returns                              */
    double seconds;                /* loop wall time                                        */
    double img_s;                  /* global images per second over the loop                */
    double data_wait_frac;         /* share of the loop time waiting for batches       */
    double comm_s, comm_exposed_s; /* gradient all-reduce over the loop            */
    double step_s;                 /* time inside poa_step_run                          */
    double first_loss, last_loss;
    char checkpoint[4096]; /* last checkpoint written or loaded ("" none) */
} poa_trainer_summary;

/* Collective over the ranks of d.  The data set is cfg->train.dataset_path and the output
 * directory cfg->train.output_dir (poa-train sets them from --data / --output).
 * Builds the model and the step, checks the output directory
 * (created if needed; not writable → POA_ERR_IO), saves OUTPUT/config.yaml, opens the data
 * (POA_ERR_NOTFOUND / FORMAT / VERSION), resumes from the newest loadable checkpoint unless
 * opts->no_resume, opens OUTPUT/training_metrics.json.  cfg must outlive the trainer.  On error
 * every rank returns the same status (the message is on the rank that found it, and rank 0). */
poa_status poa_trainer_create(const poa_config *cfg, poa_comm *d, const poa_trainer_opts *opts,
                              poa_trainer **out, poa_err *err);
/* Run to the end of the schedule (or --max-steps, a signal, a non-finite step, a write error).
 * Returns the exit code (same on every rank); the summary says why. */
int poa_trainer_run(poa_trainer *t);
void poa_trainer_destroy(poa_trainer *t);

const poa_trainer_summary *poa_trainer_get_summary(const poa_trainer *t);
/* The step (parameters, teacher, optimizer) and the last step's report, for tests. */
poa_step *poa_trainer_step(poa_trainer *t);
const poa_step_report *poa_trainer_last_report(const poa_trainer *t);
/* Total loss and terms of the last iteration averaged over every rank group of every rank. */
double poa_trainer_last_loss(const poa_trainer *t, double terms[]);
const poa_model *poa_trainer_model(const poa_trainer *t);

/* The backend train.backend selects, as the config enum: POA_BACKEND_CUDA (auto: when built with
 * CUDA and NCCL, a GPU is visible and the CUDA backend implements every op) or POA_BACKEND_CPU.
 * The CUDA backend needs the NCCL comm kind. */
int poa_trainer_backend_kind(const poa_config *cfg);
/* Its name ("cpu", "cuda"), for poa_backend_create and messages. */
const char *poa_trainer_backend_name(const poa_config *cfg);

/* --dry-run: the model, the sub-network set and the memory plan per rank of a world_size-rank
 * job at the configured batch on the backend train.backend selects (its compute dtype and
 * attention sizes, without its device), for any configuration; no data, no training, no MPI
 * needed. */
poa_status poa_train_dry_run(const poa_config *cfg, int world_size, FILE *f, poa_err *err);

#endif
