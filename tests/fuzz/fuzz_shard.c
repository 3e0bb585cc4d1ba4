/* fuzz_shard.c — a dataset shard (data/shard.c): the HDF5 file is opened as the loader opens it
 * (offsets, labels, CRCs) and as poa-pack --verify opens it (every table and the name lists), and
 * every record is read back through the CRC check.  Mutations: fuzz_h5mutate.h. */
#include "poa_config.h"

#include "fuzz_util.h"
#include "fuzz_h5mutate.h"

#include "data/shard.h"

#include <stdlib.h>

#ifdef POA_FUZZING
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
    return fuzz_h5_mutate(data, size, max_size, seed);
}
#endif

static void read_all(const poa_shard *s)
{
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    poa_err err;
    for (int64_t i = 0; i < s->num_images; i++)
        if (poa_shard_read(s, i, &buf, &cap, &n, &err) != POA_OK) {
            fuzz_note("shard read", 1, err.msg);
            break;
        }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    const char *path = fuzz_input_file(data, size);
    poa_shard s;
    poa_err err;
    poa_status st = poa_shard_open(&s, path, POA_SHARD_INDEX_ONLY, &err);
    fuzz_note("shard open (index)", st, err.msg);
    if (st == POA_OK) {
        read_all(&s);
        poa_shard_close(&s);
    }
    st = poa_shard_open(&s, path, POA_SHARD_LOAD_NAMES, &err);
    fuzz_note("shard open (all)", st, err.msg);
    if (st == POA_OK) {
        st = poa_shard_check_crc(&s, &err);
        fuzz_note("shard CRC check", st, err.msg);
        poa_shard_close(&s);
    }
    return 0;
}
