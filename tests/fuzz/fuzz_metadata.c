/* fuzz_metadata.c — the metadata file of a packed folder (data/metadata.c: metadata.h5, read
 * with every entry as poa-pack --verify and --export-extra read it) and what is made from it:
 * the official .npy files (data/npy.c, written to a scratch folder).  poa has no .npy reader:
 * it only writes them, from this file.  Mutations: fuzz_h5mutate.h. */
#include "poa_config.h"

#include "fuzz_util.h"
#include "fuzz_h5mutate.h"

#include "data/metadata.h"
#include "data/npy.h"

#ifdef POA_FUZZING
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
    return fuzz_h5_mutate(data, size, max_size, seed);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    const char *path = fuzz_input_file(data, size);
    poa_metadata m;
    poa_err err;
    if (poa_metadata_read(path, &m, 0, &err) == POA_OK) poa_metadata_free(&m);
    poa_status st = poa_metadata_read(path, &m, POA_META_LOAD_ENTRIES, &err);
    fuzz_note("metadata read", st, err.msg);
    if (st == POA_OK) {
        st = poa_metadata_export_npy(&m, fuzz_scratch_dir(), &err);
        fuzz_note("npy export", st, err.msg);
        fuzz_scratch_clear();
        poa_metadata_free(&m);
    }
    return 0;
}
