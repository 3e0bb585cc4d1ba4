/* trainer_config.h — from the run configuration (common/config.h, official key names) to the
 * struct of the step, poa_step_config (docs/algorithm.md §6, §8), plus the checks of the values
 * poa-train does not implement.  (The model's struct comes from poa_model_config_from_config,
 * src/model/model_config.h.)
 *
 * Nothing here depends on MPI: the rank layout is passed in (rank, world size), so the dry run
 * can plan an N-rank job from one process.
 */
#ifndef POA_TRAIN_TRAINER_CONFIG_H
#define POA_TRAIN_TRAINER_CONFIG_H

#include "common/config.h"
#include "common/poa_error.h"
#include "model/model.h"
#include "train/step.h"

/* Values poa-train does not implement (with the key to change): softmax centering, fp16
 * compute, bf16 on the CPU backend, student.pretrained_weights, MODEL.WEIGHTS.  backend_kind:
 * POA_BACKEND_CPU or POA_BACKEND_CUDA (poa_trainer_backend_kind). */
poa_status poa_trainer_check_supported(const poa_config *cfg, int backend_kind, poa_err *err);

/* The run's compute dtype (backend.h, "Precision"): compute_precision.compute_dtype, with auto
 * = bf16 on CUDA and fp32 on the CPU.  Call after poa_trainer_check_supported (fp16 is
 * rejected there). */
poa_dtype poa_trainer_compute_dtype(const poa_config *cfg, int backend_kind);

/* 1 when the student's drop path runs per-sample Bernoulli masks, 0 for batch subsets:
 * train.drop_path_mode, where auto is the official rule (Bernoulli for rates ≤ 0.1). */
int poa_trainer_drop_path_bernoulli(const poa_config *cfg);

/* Step configuration of rank `rank` of `world_size`: B = train.batch_size_per_gpu,
 * G = train.rank_groups, first global rank group = rank·G, losses, AdamW, clipping, schedules
 * (optim.lr is the derived peak lr of cfg, computed by poa_config_finalize for cfg->world_size
 * ranks). */
poa_status poa_trainer_step_config(const poa_config *cfg, const poa_model *m, int rank,
                                   int world_size, poa_step_config *sc, poa_err *err);

/* Upper bound of the masked patches of one rank group (docs/algorithm.md §9.2: int(2B·p) masked
 * crops, each at most ratio_max·N patches), used to size the step's iBOT buffers; 2B·N when
 * unsure. */
int poa_trainer_max_masked(const poa_config *cfg, int n_patches);

/* Iterations of the run: optim.epochs × train.OFFICIAL_EPOCH_LENGTH (docs/algorithm.md §8.5). */
long long poa_trainer_total_iterations(const poa_config *cfg);
/* Resumable checkpoint after iteration `it` (0-based) — the fvcore PeriodicCheckpointer rule
 * of the official code: (it + 1) % period == 0, and the last iteration. */
int poa_trainer_is_checkpoint_iteration(const poa_config *cfg, long long it);
/* Evaluation (teacher) checkpoint after iteration `it`: (it + 1) % eval_period == 0
 * (docs/algorithm.md §14, upstream do_test), never when evaluation.eval_period_iterations is 0. */
int poa_trainer_is_eval_iteration(const poa_config *cfg, long long it);

#endif
