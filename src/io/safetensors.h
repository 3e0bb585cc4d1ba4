/* safetensors.h — the safetensors tensor file format, written and read by poa itself (no
 * library).  Layout (hdf5-schemas/extracted-model.md, "safetensors"):
 *
 *   8 bytes   N, unsigned 64-bit little-endian: the length of the header;
 *   N bytes   the header: UTF-8 JSON text that starts with '{', padded at its end with spaces
 *             (0x20) so that 8 + N is a multiple of 8 (the data then start 8-byte aligned);
 *             one member per tensor, "NAME": {"dtype": "F32", "shape": [d0, d1, ...],
 *             "data_offsets": [BEGIN, END]}, and optionally "__metadata__": a map of strings
 *             to strings;
 *   the rest  the data buffer: every tensor's elements, little-endian, row-major (C order),
 *             at bytes [BEGIN, END) of the buffer.
 *
 * Rules every reader of the format enforces, and poa_st_open checks: N at most 100,000,000
 * bytes; no duplicate names; sorted by BEGIN, the tensors tile the buffer without holes or
 * overlaps, from 0 to the end of the file; END − BEGIN = elements × dtype size.
 *
 * poa writes float32 ("F32") tensors in the order of a parameter table (model order), with the
 * metadata first.  The reader accepts any dtype in the header but converts only F32 data.
 *
 * All functions return a poa_status and fill err with a message that names the file.
 */
#ifndef POA_IO_SAFETENSORS_H
#define POA_IO_SAFETENSORS_H

#include "common/atomic_io.h"
#include "common/poa_error.h"
#include "tensor/params.h"

#include <stdint.h>
#include <stdio.h>

#define POA_ST_MAX_HEADER 100000000ull /* bytes: the format's limit */
#define POA_ST_MAX_DIMS   8

/* A string pair of the "__metadata__" map. */
typedef struct poa_st_kv {
    const char *key, *value;
} poa_st_kv;

/* One tensor of an opened file. */
typedef struct poa_st_tensor {
    char *name;
    char dtype[8]; /* "F32", "F16", "BF16", "F64", "I64", ... as written */
    int elem_size; /* bytes of one element of dtype */
    int ndim;
    int64_t shape[POA_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end; /* byte range in the data buffer */
} poa_st_tensor;

/* An opened file: its header parsed and checked; data read on demand. */
typedef struct poa_st_file {
    char path[POA_IO_PATH_MAX];
    FILE *fp;
    uint64_t file_size;
    uint64_t header_len;  /* N                                                   */
    uint64_t data_offset; /* 8 + N: where the data buffer starts in the file     */
    int n_tensors;
    poa_st_tensor *tensors; /* in the header's order                            */
    int n_meta;
    poa_st_kv *meta; /* "__metadata__", in the header's order (owned strings) */
} poa_st_file;

/* Write the tensors of table t (names t->p[i].name, PyTorch shapes, data buf + p[i].offset, in
 * table order) as F32, with the metadata pairs (NULL / 0: none), atomically (temporary file,
 * fsync, rename: src/common/atomic_io.h).  POA_ERR_IO names path on failure, and no file is
 * left. */
poa_status poa_st_write_table(const char *path, const poa_param_table *t, const float *buf,
                              const poa_st_kv *meta, int n_meta, poa_err *err);

/* Open path and check its header (rules above): POA_ERR_NOTFOUND when it does not exist,
 * POA_ERR_FORMAT naming the first broken rule (a truncated file breaks the last one).  Close
 * with poa_st_close, also after a failure. */
poa_status poa_st_open(const char *path, poa_st_file *f, poa_err *err);
void poa_st_close(poa_st_file *f);

/* The value of a metadata key, or NULL. */
const char *poa_st_meta_get(const poa_st_file *f, const char *key);
/* The tensor named name, or NULL. */
const poa_st_tensor *poa_st_find(const poa_st_file *f, const char *name);
/* Read an F32 tensor's numel values into dst (host order). */
poa_status poa_st_read_f32(const poa_st_file *f, const poa_st_tensor *t, float *dst, poa_err *err);
/* Read every tensor of table t by name into buf + p[i].offset: each must exist, be F32 and have
 * the table's shape (the message gives both shapes), and the file must hold no other tensor
 * (like PyTorch's strict load_state_dict).  POA_ERR_FORMAT / POA_ERR_NOTFOUND otherwise. */
poa_status poa_st_load_table(const poa_st_file *f, const poa_param_table *t, float *buf,
                             poa_err *err);

#endif
