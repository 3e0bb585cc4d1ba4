/* metrics.h — what poa-train reports per logged iteration: the record, its log line and its
 * JSON line in OUTPUT/training_metrics.json (one object per logged iteration, as the official
 * MetricLogger writes it; docs/algorithm.md §14), and the timing accumulators behind images/s and
 * the data / compute / communication split.
 *
 * JSON: one object per line, keys in a fixed order; non-finite numbers are written as NaN /
 * Infinity like Python's json module does, so `json.loads` reads every line.
 */
#ifndef POA_TRAIN_METRICS_H
#define POA_TRAIN_METRICS_H

#include "common/poa_error.h"
#include "model/loss.h"
#include "train/step.h"

#include <stdio.h>

#define POA_METRICS_MAX_SUBNETS 256 /* elastic sub-networks listed per record (rank groups) */

/* Seconds of one iteration on this rank. */
typedef struct poa_iter_timing {
    double data_s;    /* blocked waiting for the loader (batch not ready)                     */
    double step_s;    /* poa_step_run wall time                                               */
    double comm_s;    /* gradient all-reduce, first bucket start → last completion           */
    double exposed_s; /* of it, time compute waited for communication                         */
    double iter_s;    /* whole iteration: data + upload + step + agreement                    */
    double phase_s[POA_N_PHASES]; /* the step's phases (poa_step_report.seconds)          */
} poa_iter_timing;

/* Sums over the iterations since the last log line. */
typedef struct poa_timing_window {
    long long iters, images;
    poa_iter_timing sum;
} poa_timing_window;

void poa_timing_window_add(poa_timing_window *w, const poa_iter_timing *t, long long images);
void poa_timing_window_reset(poa_timing_window *w);

/* One logged iteration (losses averaged over every rank group of every rank). */
typedef struct poa_metrics_record {
    long long iteration, epoch, total_iterations;
    double total_loss;
    double terms[POA_N_TERMS]; /* head terms averaged over the heads (poa_step_report_format) */
    double lr, last_layer_lr, wd, mom, teacher_temp;
    int ibot_active;
    double grad_norm_backbone, grad_norm_head;
    int n_subnets; /* rank groups of the iteration, all ranks (listed up to the max) */
    int width[POA_METRICS_MAX_SUBNETS], depth[POA_METRICS_MAX_SUBNETS];
    long long batch_size; /* global batch (images per iteration)                             */
    double img_s;         /* global images per second over the window                        */
    double iter_time, data_time, compute_time, comm_time, comm_exposed_time; /* s / iteration */
    double eta_s;
    double phase_time[POA_N_PHASES]; /* s / iteration in each phase of the step              */
} poa_metrics_record;

/* Terms of a step report's slots: head terms averaged over the heads. */
void poa_metrics_terms_from_slots(const double *slots, int n_heads, double terms[POA_N_TERMS]);

/* "epoch 3 it 150/300 loss 9.8765 (dino_is … koleo_es …) lr … wd … mom … tt … sub 96x4,64x3
 *  img/s 41.2 data 2% compute 93% comm 0.01s (exposed 0.00s) ETA 3m12s" */
void poa_metrics_format_line(const poa_metrics_record *r, char *buf, size_t n);
/* The JSON object (one line, no newline). */
void poa_metrics_format_json(const poa_metrics_record *r, char *buf, size_t n);

/* OUTPUT/training_metrics.json, appended to.  keep_through >= 0 (a resumed run): first drop
 * every record with an iteration > keep_through (the resumed run recomputes them), via a
 * temporary file and rename; lines without an iteration are kept.  keep_through < 0 (a run
 * from scratch): an existing file is renamed to training_metrics.json.old.  Rank 0 only. */
typedef struct poa_metrics_file {
    FILE *f;
    char path[4096];
} poa_metrics_file;

poa_status poa_metrics_open(poa_metrics_file *mf, const char *path, long long keep_through,
                            poa_err *err);
poa_status poa_metrics_append(poa_metrics_file *mf, const poa_metrics_record *r, poa_err *err);
void poa_metrics_close(poa_metrics_file *mf);

/* "1h02m", "3m12s", "45s". */
void poa_format_duration(double seconds, char *buf, size_t n);

#endif
