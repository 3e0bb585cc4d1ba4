/* trainer_internal.h — the rank loop's state, shared by loop.c and the trainer_*.c files that
 * implement its parts (checkpoints, report).  Not a public interface: programs use loop.h. */
#ifndef POA_TRAIN_TRAINER_INTERNAL_H
#define POA_TRAIN_TRAINER_INTERNAL_H

#include "backend/backend.h"
#include "common/config.h"
#include "comm/comm.h"
#include "model/model.h"
#include "train/loop.h"
#include "train/metrics.h"
#include "train/step.h"
#include "train/trainer_comm.h"
#include "train/trainer_data.h"

struct poa_trainer {
    poa_trainer_opts opts;
    const poa_config *cfg;
    poa_comm *d;
    int rank, world;
    poa_backend *be;
    poa_model model;
    poa_step_config scfg;
    poa_step *step;
    poa_trainer_comm comm;
    poa_batch_source *src;
    float *dev_global, *dev_local; /* backend copies of the batch */
    size_t n_global, n_local;      /* floats of all G groups      */

    long long start_it;  /* first iteration of this invocation                */
    long long total_its; /* optim.epochs × OFFICIAL_EPOCH_LENGTH               */
    long long last_done; /* last completed iteration, -1 before the first      */
    long long last_ckpt; /* iteration of the newest checkpoint written/loaded  */
    long long images_per_it;
    int resumed;

    poa_metrics_file metrics;
    FILE *log_file; /* OUTPUT/log.txt (rank 0)            */
    poa_timing_window window;
    double t_loop_start;
    long long its_this_run;
    poa_progress progress;
    int use_progress;

    /* results */
    poa_step_report last_report;
    double last_loss_global; /* total loss averaged over every rank group  */
    double last_terms[POA_N_TERMS];
    poa_trainer_summary summary;
};

/* loop.c: the same status on every rank (the largest code), with the message of the lowest
 * failing rank copied to every rank.  Collective. */
poa_status poa_trainer_agree(poa_trainer *t, poa_status st, poa_err *err);

/* trainer_ckpt.c */
/* Write the resumable checkpoint of the last completed iteration (and the evaluation
 * checkpoint when `eval` is set).  Collective; the status is the same on every rank. */
poa_status poa_trainer_write_checkpoint(poa_trainer *t, long long it, int full, int eval,
                                        poa_err *err);
/* Resume from the newest loadable checkpoint of the output directory (collective): sets
 * t->start_it, the step's buffers and step counter, the batch source state.  *found = 0 when the
 * directory holds none (a run from scratch). */
poa_status poa_trainer_resume(poa_trainer *t, int *found, poa_err *err);

/* trainer_report.c */
void poa_trainer_print_startup(poa_trainer *t, FILE *f);

#endif
