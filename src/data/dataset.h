/* dataset.h — one split of a packed folder (metadata.h5 + its shards) opened for reading.
 *
 * poa_dataset_open validates metadata.h5 and every shard of the split (schema, invariants, the
 * counts the metadata gives), keeps their index tables in memory and closes HDF5 again; records
 * are then read with pread() (poa_dataset_read is safe from any number of threads and never calls
 * HDF5).  Per image it keeps 16 bytes (offset, label, CRC-32): 20 MB for ImageNet-1k train.
 * Every read checks the image's stored CRC-32 (POA_ERR_CORRUPT names the shard and the sample).
 * Entry i of the split is the i-th image in the shards' order = the metadata entries. */
#ifndef POA_DATA_DATASET_H
#define POA_DATA_DATASET_H

#include "common/poa_error.h"
#include "data/shard.h"

#include <stdint.h>

typedef struct poa_dataset {
    char dir[4096], split[16];
    int64_t num_images;
    int num_shards;
    poa_shard *shards;
    int64_t *first; /* [num_shards + 1]: entry index of each shard's first image */
    int num_classes;
} poa_dataset;

poa_status poa_dataset_open(poa_dataset *d, const char *dir, const char *split, poa_err *err);
void poa_dataset_close(poa_dataset *d);

/* Shard and record of entry i. */
void poa_dataset_locate(const poa_dataset *d, int64_t i, int *shard, int64_t *record);
/* Bytes of entry i into *buf (grown as needed), its label (class index, -1 for none). */
poa_status poa_dataset_read(const poa_dataset *d, int64_t i, uint8_t **buf, size_t *cap,
                            size_t *size, int32_t *label, poa_err *err);

#endif
