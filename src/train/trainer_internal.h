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

/* One of the two batch slots (loop.c, "batches"). */
typedef struct poa_batch_slot {
    long long it;                        /* iteration whose batch the slot holds (-1 none) */
    poa_status status;                   /* of the source's next()                         */
    poa_err err;                         /* its message                                    */
    double fetch_s;                      /* time the source took                           */
    float *pinned_global, *pinned_local; /* host_alloc                                     */
    float *dev_global, *dev_local;       /* backend copies                                 */
    uint8_t *masks;                      /* host copy of the iBOT masks                     */
    int has_masks;
    poa_event *uploaded; /* the slot's upload is done                                     */
} poa_batch_slot;

struct poa_trainer {
    poa_trainer_opts opts;
    const poa_config *cfg;
    poa_comm *d;
    int rank, world;
    int backend_kind; /* POA_BACKEND_CPU / POA_BACKEND_CUDA (config enum) */
    poa_backend *be;
    poa_model model;
    poa_step_config scfg;
    poa_step *step;
    poa_trainer_comm comm;
    poa_batch_source *src;
    poa_batch_slot slot[2];   /* iteration it in slot it % 2                       */
    size_t n_global, n_local; /* floats of all G groups                            */
    size_t n_masks;           /* bytes of the masks of all G groups                */
    long long stage_next_it;  /* batch the running step stages (-1: none)           */
    double stage_in_step_s;   /* time staging took inside the step                  */
    uint64_t *src_state;      /* the source's state after batch src_state_it       */
    size_t src_state_words;
    long long src_state_it;

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

/* trainer_report.c: the peak backend memory of a run: the step's plan x (poa_step_memory) and
 * the two batch slots' device copies (create_slots); the "peak backend memory" line prints it. */
size_t poa_trainer_peak_backend_bytes(const poa_config *cfg, const poa_model *m,
                                      const poa_step_memory *x);

/* trainer_ckpt.c */
/* Write the resumable checkpoint of the last completed iteration (and the evaluation
 * checkpoint when `eval` is set).  Collective; the status is the same on every rank. */
poa_status poa_trainer_write_checkpoint(poa_trainer *t, long long it, int full, int eval,
                                        poa_err *err);
/* Resume from the newest loadable checkpoint of the output directory (collective): sets
 * t->start_it, the step's buffers and step counter, the batch source state.  *found = 0 when the
 * directory holds none (a run from scratch). */
poa_status poa_trainer_resume(poa_trainer *t, int *found, poa_err *err);

/* loop.c: the batch source's state after batch `it` (state_words words), for the checkpoint
 * written after iteration it (the source may already have handed out batch it + 1). */
void poa_trainer_source_state(poa_trainer *t, long long it, uint64_t *words);

/* trainer_report.c */
void poa_trainer_print_startup(poa_trainer *t, FILE *f);

#endif
