/* seeded_params.h — trained-like random parameters for tests: every tensor of a model filled
 * from a Philox stream with values in the ranges a trained network has (LayerScale and LayerNorm
 * weights around 1, non-zero biases and tokens, weights at their initialisation's scale), so that
 * every part of the network matters to a test's outputs. */
#ifndef POA_TESTS_LIB_SEEDED_PARAMS_H
#define POA_TESTS_LIB_SEEDED_PARAMS_H

#include "model/model.h"

#include <stdint.h>

/* Fill host (m->table.total floats; padding zeroed) from stream `seed`. */
void seeded_params(const poa_model *m, float *host, uint64_t seed);

#endif
