/* metadata.h — the dataset metadata file `metadata.h5` of a packed directory
 * (format: hdf5-schemas/dataset.md, "Dataset metadata").
 *
 * It holds what the official `ImageNet.dump_extra()` writes into EXTRA (docs/algorithm.md §9.3),
 * one HDF5 group per split instead of one .npy file per array: class ids and names per class index,
 * and per packed image its actual_index, class_index and file name — plus the shard list that maps
 * an entry index to (shard, record), and the files that could not be packed. */
#ifndef POA_DATA_METADATA_H
#define POA_DATA_METADATA_H

#include "common/poa_error.h"
#include "data/data_util.h"

#include <stdint.h>

#define POA_MAX_SPLITS 3

typedef struct poa_meta_split {
    char name[16]; /* train, val, test */
    poa_strtab class_ids, class_names;
    int64_t num_images; /* entries */
    uint32_t *actual_index, *class_index;
    uint64_t *ids;
    poa_strtab file_names;
    poa_strtab shard_files; /* file names relative to the packed directory */
    uint64_t *shard_num_images;
    poa_strtab skipped_names, skipped_reasons;
    int64_t num_source_files;
} poa_meta_split;

typedef struct poa_metadata {
    char source_root[4096];
    int n_splits;
    poa_meta_split splits[POA_MAX_SPLITS];
} poa_metadata;

void poa_metadata_init(poa_metadata *m);
void poa_metadata_free(poa_metadata *m);
/* Add an empty split (strtabs initialised, arrays NULL) and return it. */
poa_meta_split *poa_metadata_add_split(poa_metadata *m, const char *name);
/* The split named `name`, or NULL. */
const poa_meta_split *poa_metadata_find(const poa_metadata *m, const char *name);

/* Write (temporary file + rename). */
poa_status poa_metadata_write(const char *path, const poa_metadata *m, poa_err *err);

enum {
    POA_META_LOAD_ENTRIES = 1, /* entries and skipped lists (large); else classes and shards */
};
/* Read and validate against the schema. */
poa_status poa_metadata_read(const char *path, poa_metadata *m, unsigned flags, poa_err *err);

#endif
