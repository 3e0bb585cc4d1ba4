/* seeded_ckpt.h — test checkpoints of a real configuration with seeded, trained-like weights:
 * the configuration file is loaded and finalized as poa-train does, the model built from it,
 * teacher and student filled from two Philox streams (seeded_params, tests/lib/seeded_params.h),
 * and the files
 * written by the checkpoint writer with the trainer's /model description and the configuration
 * as YAML.  Used by the tests of src/modelio/ and by ckpt_write_seeded. */
#ifndef POA_TESTS_MODELIO_SEEDED_CKPT_H
#define POA_TESTS_MODELIO_SEEDED_CKPT_H

#include "common/config.h"
#include "model/model.h"
#include "tests/lib/seeded_params.h"

#include <stdint.h>

/* Load config_file (NULL: defaults) plus overrides (n key=value strings), finalize for one
 * rank, write dir/checkpoint_<iteration>.h5 (teacher from seed, student from seed + 1) and the
 * evaluation checkpoint dir/eval/training_<iteration>/teacher_checkpoint.h5.  The model and
 * the teacher weights go to *m / *teacher when not NULL (free with poa_model_free / free).
 * Returns 0, or prints the error and returns its exit code. */
int seeded_ckpt_write(const char *dir, const char *config_file, const char *const *overrides, int n,
                      uint64_t seed, int64_t iteration, poa_model *m, float **teacher);

#endif
