/* shard.h — one dataset shard file (format: hdf5-schemas/dataset.md, "Dataset shard").
 *
 * Writing: poa_shard_write() builds the whole file under a temporary name and renames it, so a
 * final name never holds a half-written shard.  Reading: poa_shard_open() validates the file
 * against the schema and its internal invariants, loads the small tables (offsets, labels, ids,
 * sizes, CRCs) and closes HDF5 again; records are then read with pread() on a plain file
 * descriptor at the contiguous dataset's file offset, which is safe from any number of threads
 * and involves no HDF5 handle (nothing to share across fork either).
 */
#ifndef POA_DATA_SHARD_H
#define POA_DATA_SHARD_H

#include "common/poa_error.h"
#include "data/data_util.h"

#include <stddef.h>
#include <stdint.h>

/* Identity of a shard in the pack plan (root attributes). */
typedef struct poa_shard_info {
    char split[16];
    int64_t shard_index, shard_count;
    int64_t source_first, source_count;
    uint64_t plan_fingerprint;
    int64_t reencode_max_side, reencode_quality;
} poa_shard_info;

/* One image to pack. */
typedef struct poa_shard_record {
    const uint8_t *data;
    size_t size;
    int32_t label;
    uint64_t id;
    const char *file_name;
    uint32_t height, width;
} poa_shard_record;

poa_status poa_shard_write(const char *final_path, const poa_shard_info *info,
                           const poa_shard_record *recs, size_t n, const poa_strtab *skipped_names,
                           const poa_strtab *skipped_reasons, poa_err *err);

enum {
    POA_SHARD_LOAD_NAMES = 1, /* also load file_names and the skipped lists          */
    POA_SHARD_INDEX_ONLY = 2, /* only offsets, labels and CRCs (the loader): ids and
                                 image_size stay NULL                                   */
};

typedef struct poa_shard {
    char path[4096];
    poa_shard_info info;
    int64_t num_images, num_bytes, num_skipped;
    uint32_t images_crc32;
    uint64_t *offsets;                                     /* [N+1] */
    int32_t *labels;                                       /* [N]   */
    uint64_t *ids;                                         /* [N]   */
    uint32_t *sizes;                                       /* [N,2] height, width */
    uint32_t *crc;                                         /* [N]   */
    poa_strtab file_names, skipped_names, skipped_reasons; /* with POA_SHARD_LOAD_NAMES */
    int64_t data_offset; /* file offset of /images (-1 when num_bytes = 0) */
    int fd;
} poa_shard;

/* Validates the schema, the invariants and the sizes: every table is read only after its size
 * was checked against the file's (a corrupt header cannot make the reader allocate more than
 * the file holds), and /images must end inside the file (a truncated shard is POA_ERR_FORMAT
 * here, not a short read later). */
poa_status poa_shard_open(poa_shard *s, const char *path, unsigned flags, poa_err *err);
void poa_shard_close(poa_shard *s);

/* Bytes of record i (size in *size); buf grows as needed (buf and cap are updated by realloc).
 * The record's stored CRC-32 is checked: a mismatch is POA_ERR_CORRUPT with a message naming
 * the shard and the sample (bytes that changed after packing are never handed on). */
poa_status poa_shard_read(const poa_shard *s, int64_t i, uint8_t **buf, size_t *cap, size_t *size,
                          poa_err *err);

/* Re-read every record and compare its CRC-32 and the whole-array CRC-32. */
poa_status poa_shard_check_crc(const poa_shard *s, poa_err *err);

#endif
