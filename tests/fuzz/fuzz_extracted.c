/* fuzz_extracted.c — an extracted model (vit_<W>x<D>.h5 or .safetensors of poa-extract) read
 * the way the evaluation programs read one: poa_model_source_open (src/modelio/model_source.h)
 * detects the container, checks the format name and version, reads and checks the metadata,
 * builds the standalone ViT the metadata describes and loads every tensor strictly.
 *
 * Built twice: fuzz_extracted_h5 (HDF5 files, mutated through the HDF5 API: fuzz_h5mutate.h)
 * and, with FUZZ_SAFETENSORS, fuzz_extracted_st (safetensors files, header text, numbers,
 * strings, length field and data mutated apart: fuzz_stmutate.h).  Either reads any input
 * (the container is detected from the bytes, as the programs do); the mutator decides what the
 * inputs look like.
 *
 * Oracle besides "survives": an extracted file that opens holds at least the bytes of the
 * parameters poa allocated for it (a header cannot make poa allocate more than the file
 * justifies), and the model's one sub-network is the width and depth its metadata names. */
#include "poa_config.h"

#include "fuzz_util.h"
#ifdef FUZZ_SAFETENSORS
#include "fuzz_stmutate.h"
#else
#include "fuzz_h5mutate.h"
#endif

#include "modelio/model_source.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef POA_FUZZING
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
#ifdef FUZZ_SAFETENSORS
    return fuzz_st_mutate(data, size, max_size, seed);
#else
    return fuzz_h5_mutate(data, size, max_size, seed);
#endif
}
#endif

static void check_opened(const poa_model_source *src, size_t size)
{
    if (src->kind != POA_SOURCE_EXTRACTED)
        return; /* mutated into a checkpoint: fuzz_checkpoint's */
    const poa_model_config *c = &src->model.cfg;
    size_t bytes = 0;
    for (int i = 0; i < src->model.table.n; i++)
        bytes += src->model.table.p[i].numel * sizeof(float);
    if (bytes > size) {
        fprintf(stderr, "fuzz_extracted: %zu bytes of parameters for a %zu-byte file\n", bytes,
                size);
        abort();
    }
    poa_subnet sn[2];
    int n = poa_model_source_subnets(src, sn, 2);
    if (n != 1 || sn[0].width != src->extracted.embed_dim || sn[0].depth != src->extracted.depth ||
        c->max_embed_dim != src->extracted.embed_dim) {
        fprintf(stderr, "fuzz_extracted: %d sub-networks, the first %dx%d; metadata %dx%d\n", n,
                n ? sn[0].width : 0, n ? sn[0].depth : 0, src->extracted.embed_dim,
                src->extracted.depth);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    const char *path = fuzz_input_file(data, size);
    poa_model_source src;
    poa_err err = {0};
    poa_status st = poa_model_source_open(path, POA_FROM_TEACHER, &src, &err);
    fuzz_note("extracted model", st, err.msg);
    if (st == POA_OK) check_opened(&src, size);
    poa_model_source_close(&src);
    return 0;
}
