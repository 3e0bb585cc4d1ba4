/* h5data.h — the HDF5 helpers of the data layer (dataset shards and the metadata file).
 *
 * Conventions of the data files (hdf5-schemas/dataset.md):
 *  - attributes: integers are little-endian int64 (uint64 for hashes), strings variable-length
 *    UTF-8 (h5py returns them as str);
 *  - string *datasets* (file names, class names) are fixed-length, NUL-padded UTF-8 of the width
 *    of the longest entry (one contiguous block; h5py returns bytes);
 *  - numeric datasets are contiguous and unfiltered, so the loader can read encoded images with
 *    pread() at H5Dget_offset() and never calls HDF5 from its worker threads.
 *
 * HDF5 may be called by one thread at a time unless the library is thread-safe
 * (POA_HDF5_THREADSAFE): every function here takes poa_dh5_lock() for its duration.  HDF5's
 * automatic error printing is switched off inside these functions; failures come back as a
 * poa_err naming the file/object and the innermost HDF5 message.
 */
#ifndef POA_DATA_H5DATA_H
#define POA_DATA_H5DATA_H

#include "common/poa_error.h"
#include "data/data_util.h"

#include <hdf5.h>
#include <stdint.h>

/* Serialise HDF5 calls of the data layer (a no-op lock when HDF5 is thread-safe, which
 * serialises internally).  Recursive: the helpers below take it too. */
void poa_dh5_lock(void);
void poa_dh5_unlock(void);

/* poa_err_set(err, code, "<formatted>: <innermost HDF5 message>"). */
poa_status poa_dh5_fail(poa_err *err, poa_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Create (truncate) / open read-only.  Return a file id or H5I_INVALID_HID with err set. */
hid_t poa_dh5_create(const char *path, poa_err *err);
hid_t poa_dh5_open_ro(const char *path, poa_err *err);
/* End the writing of file f (from poa_dh5_create): flush and close it when st is POA_OK,
 * else (or when the flush fails) close it discarding what is still buffered
 * (poa_hdf5_close_discarding: libhdf5 cannot close a file whose writes fail).  The file is always
 * closed; returns st or the flush/close error. */
poa_status poa_dh5_finish(hid_t f, poa_status st, const char *path, poa_err *err);
/* Close any HDF5 object id (ignores invalid ids). */
void poa_dh5_close(hid_t id);
/* Whether the link `path` exists below loc (intermediate groups are checked one by one). */
int poa_dh5_exists(hid_t loc, const char *path);

/* ------------------------------------------------------------------ attributes */
poa_status poa_dh5_attr_put_str(hid_t obj, const char *name, const char *value, poa_err *err);
poa_status poa_dh5_attr_put_i64(hid_t obj, const char *name, int64_t value, poa_err *err);
poa_status poa_dh5_attr_put_u64(hid_t obj, const char *name, uint64_t value, poa_err *err);
poa_status poa_dh5_attr_get_str(hid_t obj, const char *name, char *buf, size_t n, poa_err *err);
poa_status poa_dh5_attr_get_i64(hid_t obj, const char *name, int64_t *value, poa_err *err);
poa_status poa_dh5_attr_get_u64(hid_t obj, const char *name, uint64_t *value, poa_err *err);

/* ------------------------------------------------------------------ datasets */
/* Contiguous dataset of `rank` dims; file_type e.g. H5T_STD_U64LE, mem_type H5T_NATIVE_UINT64. */
poa_status poa_dh5_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank,
                         const hsize_t *dims, const void *data, poa_err *err);
/* 1-D fixed-length UTF-8 string dataset (width = longest string, at least 1). */
poa_status poa_dh5_write_strtab(hid_t loc, const char *name, const poa_strtab *t, poa_err *err);
/* Read a whole numeric dataset converted to mem_type (element size elem) into a malloc'ed
 * buffer; dims (up to 4) and rank returned.  The rank must equal want_rank. */
poa_status poa_dh5_read_alloc(hid_t loc, const char *name, hid_t mem_type, size_t elem,
                              int want_rank, hsize_t *dims, void **data, poa_err *err);
/* Read a 1-D string dataset (fixed- or variable-length) into t (appended). */
poa_status poa_dh5_read_strtab(hid_t loc, const char *name, poa_strtab *t, poa_err *err);

#endif
