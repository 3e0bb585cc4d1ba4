/* fuzz_checkpoint.c — a training checkpoint (io/checkpoint.c): the header alone (as poa-train's
 * resume and the tools read it), then a full load of a small table (fuzz_tables.h) with every
 * tensor group, the optimizer step, the per-rank states, the model meta and a state array.
 * Mutations: fuzz_h5mutate.h (data flips inside the Fletcher-32 chunks included). */
#include "poa_config.h"

#include "fuzz_util.h"
#include "fuzz_h5mutate.h"
#include "fuzz_tables.h"

#include "io/checkpoint.h"

#include <stdlib.h>

#ifdef POA_FUZZING
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
    return fuzz_h5_mutate(data, size, max_size, seed);
}
#endif

static poa_param_table table;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    if (!table.n) fuzz_ckpt_table(&table);
    const char *path = fuzz_input_file(data, size);
    poa_err err;
    poa_ckpt_header h = {0};
    poa_status st = poa_ckpt_read_header(path, &h, &err);
    fuzz_note("checkpoint header", st, err.msg);
    if (st == POA_OK) poa_ckpt_header_free(&h);
    float *buf[4], center[FUZZ_CKPT_ARRAY_N];
    for (int i = 0; i < 4; i++) buf[i] = calloc(table.total, sizeof(float));
    poa_ckpt_tensors x = {buf[0], buf[1], buf[2], buf[3]};
    poa_ckpt_array arr = {FUZZ_CKPT_ARRAY, center, FUZZ_CKPT_ARRAY_N};
    poa_ckpt_header h2 = {.n_arrays = 1, .arrays = &arr};
    poa_ckpt_load_opts lo = {2, (int) (size & 1)};
    st = poa_ckpt_load(path, &table, &x, &h2, &lo, &err);
    fuzz_note("checkpoint load", st, err.msg);
    if (st == POA_OK) poa_ckpt_header_free(&h2);
    for (int i = 0; i < 4; i++) free(buf[i]);
    return 0;
}
