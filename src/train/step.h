/* step.h — one POA training iteration on one rank (docs/algorithm.md §7), for G rank groups of B
 * images.
 *
 *   teacher forward (no gradient, no drop path, all groups) → Sinkhorn-Knopp targets pooled over
 *   every rank group of every rank → per group: intact student forward, elastic student forward
 *   (its own sub-network), heads, losses, head backward, elastic backbone backward, intact
 *   backbone backward (the pass that touches every block last; its backward announces each
 *   backbone bucket as soon as it is final, hooks.bucket_ready) → gradient reduce hook →
 *   non-finite guard → per-module clipping → AdamW with the parameter groups → EMA teacher.
 *
 * G groups on one rank compute exactly what G ranks with one group each compute (docs/algorithm.md
 * §1.2, §3.5, §8.5): every group has its own sub-network cycle, drop-path draws, masks and
 * KoLeo batch; SK runs over the union of all groups of all ranks (poa_collective); the
 * back-propagated loss is the mean over the groups, and the gradient reduce hook must average
 * over ranks (comm buckets with average = 1), which together is the official FSDP mean.
 *
 * All workspaces are planned by poa_step_create(); a step allocates nothing.
 */
#ifndef POA_TRAIN_STEP_H
#define POA_TRAIN_STEP_H

#include "backend/backend.h"
#include "model/head.h"
#include "model/loss.h"
#include "model/model.h"
#include "model/vit.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "train/subnet_sampler.h"

#include <stdint.h>

#define POA_STEP_MAX_GROUPS 64

typedef struct poa_step_config {
    int B;                 /* images per rank group (train.batch_size_per_gpu)               */
    int G;                 /* rank groups on this rank (train.rank_groups)                    */
    uint32_t first_group;  /* global index of this rank's first group (rank · G)            */
    int n_local;           /* V_l (crops.local_crops_number)                                  */
    int global_size;       /* crops.global_crops_size                                         */
    int local_size;        /* crops.local_crops_size                                          */
    int max_masked;        /* masked patches per group the workspaces hold (0: all patches)    */
    double drop_path_rate; /* student.drop_path_rate (0.2); 0 = off                     */
    /* 1: batches may bring their own sub-networks and drop-path scales (poa_step_batch.subnets,
     * .droppath; tests): every workspace is planned for the intact network and every branch for
     * all images.  0: the step draws them, and the elastic workspaces are planned for the largest
     * elastic candidate, drop-path branches for the k images batch subsets keep.             */
    int overrides;
    int drop_path_bernoulli;  /* 1: per-sample Bernoulli masks, 0: batch subsets (official 0.2) */
    double net_select_scale;  /* student.net_select_scale (3)                              */
    uint64_t seed;            /* train.seed: sub-network cycles and drop path                     */
    poa_loss_cfg loss;        /* weights and temperatures (B, n_local, n_heads, groups: set here) */
    double beta1, beta2, eps; /* optim.adamw_beta1/2, eps (1e-8)                           */
    double clip_grad;         /* optim.clip_grad (1.5); 0 = no clipping                           */
    poa_schedule_hparams sched;
} poa_step_config;

/* The backend memory of a step, by what it holds (bytes; src/train/README.md, "Memory").  The
 * step allocates exactly this (poa_step_create checks it); a planning backend
 * (poa_backend_planner) gives the plan of a device this machine does not have. */
typedef struct poa_step_memory {
    size_t params, grads, teacher, moments; /* fp32 flat buffers (student, its gradients, the EMA
                                               teacher, AdamW m and v)                      */
    size_t compute_copies;                  /* GEMM weights in the compute dtype, student and
                                               teacher (0 in fp32 runs: the masters serve)   */
    size_t optim_table;                     /* AdamW's per-tensor segment table            */
    size_t head_weights;                    /* composed prototypes: student W, ||v||, dW;
                                               teacher W, ||v||                              */
    size_t student[4]; /* saved activations of the calls intact-global, intact-local,
                          elastic-global, elastic-local (kept from forward to backward)     */
    size_t targets;    /* teacher Sinkhorn-Knopp targets: class-token and iBOT rows of every
                          group, every head                                                 */
    /* The shared working region and the three phases that take turns in it. */
    size_t shared;
    size_t shared_teacher;  /* teacher backbone (inference) or teacher head, + gathered rows */
    size_t shared_backbone; /* the students' backbone transients, largest call              */
    size_t shared_heads;    /* the heads' working set, the sum of the four below            */
    size_t heads_logits;    /* two [rows, K_max] logits buffers + class-token logits       */
    size_t heads_acts;      /* one head call's activations (rows)                          */
    size_t heads_inputs;    /* head inputs and their gradients, both branches              */
    size_t heads_scratch;   /* loss and KoLeo scratch                                      */
    size_t small;           /* row indices, masks, loss slots, SK workspace, norms        */
    size_t total;           /* everything above (shared counted once)                      */
    /* what the plan was made for */
    int rows;               /* student rows of a group: (2 + V)·B class tokens + masked patches */
    int masked;             /* masked patches per group planned for                             */
    int kept[2];            /* images a drop-path branch computes: global call, local call      */
    int images[2];          /* images of a call: 2B, V·B                                        */
    int es_width, es_depth; /* the elastic global call's workspace is planned for this shape */
} poa_step_memory;

/* The memory poa_step_create(be, m, cfg) allocates; be may be a planning backend. */
void poa_step_memory_plan(const poa_backend *be, const poa_model *m, const poa_step_config *cfg,
                          poa_step_memory *out);

/* Official values (docs/algorithm.md §6, §8) for a model, B images per group and G groups. */
poa_step_config poa_step_config_official(const poa_model *m, int B, int G, int n_local);

/* Hooks into the distributed layer (NULL members: one rank). */
typedef struct poa_step_hooks {
    void *ctx;
    /* The gradients of bucket `bucket` (poa_param_desc.bucket) are final for this step: its
     * reduce may start; nothing writes them again until the next step zeroes them.  Called
     * exactly once per bucket and step, heads first (highest bucket first, right after the
     * last group's head backward), then the backbone buckets in decreasing order — the final
     * norm, blocks L−1 … 0, the embeddings — each during the last group's intact global
     * backward pass (the last pass, which touches every block) as soon as that pass is past
     * it (poa_vit_acts.grads_done), while the rest of the pass runs.  Always before
     * reduce_grads. */
    void (*bucket_ready)(void *ctx, int bucket);
    /* Called between the large ops of the backward (after each block's MLP and attention
     * backward, after each pass) while reduces may be in flight. */
    void (*progress)(void *ctx);
    /* After the last backward pass: the gradients must be averaged over ranks when this
     * returns (start what was not started, wait for everything). */
    void (*reduce_grads)(void *ctx, float *grads, size_t n);
    /* 1 on every rank when flag != 0 on any rank (a non-finite step is skipped everywhere). */
    int (*any)(void *ctx, int flag);
} poa_step_hooks;

/* One step's input, for the G groups of this rank. */
typedef struct poa_step_batch {
    long long it;              /* 0-based iteration (schedules, sampler, drop path)       */
    const float *global_crops; /* backend [G][2B, C, S_g, S_g]: per group crop 0 of every
                                  image, then crop 1 (docs/algorithm.md §9.2 "crop-major") */
    const float *local_crops;  /* backend [G][V_l·B, C, S_l, S_l]: local 0 of every image… */
    const uint8_t *masks;      /* host [G][2B, N_g] iBOT masks (1 = masked) or NULL; used
                                  only once iBOT is active (docs/algorithm.md §6.8)        */
    /* Test overrides (NULL: sampled by the step). */
    const poa_subnet *subnets; /* [G] elastic sub-network of each group                   */
    /* [G][4] host arrays of drop-path scales [n_blocks][2][n] for the calls intact-global,
     * intact-local, elastic-global, elastic-local (poa_vit_input.droppath).                */
    const float *const *droppath;
    /* Optional: called once the step's forward and backward passes are enqueued, before the
     * host first waits for them (the download of the loss slots).  The rank loop stages the
     * next batch there, so that its upload overlaps this step's compute.  The batch's host
     * arrays (masks) are no longer read when it is called.                                  */
    void (*enqueued)(void *ctx);
    void *enqueued_ctx;
} poa_step_batch;

enum {
    POA_PHASE_TEACHER,
    POA_PHASE_STUDENT_FWD,
    POA_PHASE_HEADS_LOSS,
    POA_PHASE_BACKWARD,
    POA_PHASE_REDUCE,
    POA_PHASE_OPTIM,
    POA_PHASE_TOTAL,
    POA_N_PHASES
};

/* Everything a log line needs.  Phase times come from events recorded on the backend's compute
 * stream at the phase boundaries (device time on a GPU, wall time on the CPU) and are read after
 * the step's final synchronisation. */
typedef struct poa_step_report {
    long long it;
    int ok;             /* 0: a loss term or gradient was NaN/Inf; nothing was updated     */
    char bad_what[160]; /* which term or gradient went bad                                 */
    double loss;        /* back-propagated total (mean over this rank's groups)            */
    int n_slots;
    double slots[POA_MODEL_MAX_HEADS * POA_N_HEAD_TERMS + 2]; /* loss.h slot layout          */
    double grad_norm[POA_N_CLIP_GROUPS]; /* before clipping: backbone, dino_head            */
    float clip_coef[POA_N_CLIP_GROUPS];
    poa_schedule_values sched; /* lr, last-layer lr, wd, momentum, teacher temp, iBOT        */
    int G;
    int subnet_width[POA_STEP_MAX_GROUPS], subnet_depth[POA_STEP_MAX_GROUPS];
    int n_masked[POA_STEP_MAX_GROUPS];
    double seconds[POA_N_PHASES];
} poa_step_report;

const char *poa_step_phase_name(int phase);

typedef struct poa_step poa_step;

/* Plans and allocates every buffer; parameters are zero until poa_step_init_params(). */
poa_step *poa_step_create(poa_backend *be, const poa_model *m, const poa_step_config *cfg,
                          const poa_collective *coll, const poa_step_hooks *hooks);
void poa_step_destroy(poa_step *s);

/* Student from the model's seeded initialisation, teacher = copy (docs/algorithm.md §2.7). */
void poa_step_init_params(poa_step *s, uint64_t seed);
/* The caller wrote the student or teacher flat buffers (resume, broadcast, tests): refresh the
 * compute copies of the GEMM weights (nothing to do when the compute dtype is fp32). */
void poa_step_params_written(poa_step *s);
/* Flat buffers (backend memory, m->table.total floats, fp32 master copies): student
 * parameters, gradients of the last step (unclipped), teacher, AdamW moments.  After writing
 * parameters or teacher, call poa_step_params_written. */
float *poa_step_params(poa_step *s);
float *poa_step_grads(poa_step *s);
float *poa_step_teacher(poa_step *s);
poa_optim *poa_step_optim(poa_step *s);
const poa_schedules *poa_step_schedules(const poa_step *s);
/* The memory plan the step was created with (what it allocated). */
const poa_step_memory *poa_step_memory_of(const poa_step *s);

/* One iteration.  Returns POA_ERR_NONFINITE (report->ok = 0, bad_what set, parameters,
 * moments, step counter and teacher untouched) when a loss term or gradient is NaN or Inf
 * (docs/algorithm.md §8.6), else POA_OK. */
poa_status poa_step_run(poa_step *s, const poa_step_batch *batch, poa_step_report *report);

/* "it 12 loss 9.8765 dino_is 10.1 … lr 1.2e-04 … sub 48x3,32x2 teacher 0.12s …" */
void poa_step_report_format(const poa_step *s, const poa_step_report *r, char *buf, size_t n);

#endif
