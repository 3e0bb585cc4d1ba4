/* h5util.h — small HDF5 helpers shared by the checkpoint code (and usable by data/, tools/).
 *
 * Every function returns a poa_status and fills a poa_err with a message that names the object
 * and, when HDF5 failed, the innermost HDF5 error description (docs/architecture.md §11).
 * HDF5's automatic error printing is switched off around each call (poa_h5_quiet_*), so a failed
 * open of a truncated file does not spill a stack dump on stderr; the message goes to poa_err.
 *
 * Conventions of the files poa writes (hdf5-schemas/):
 *  - strings are variable-length UTF-8 (h5py returns them as str for attributes);
 *  - integers are little-endian int64 / uint64, floats little-endian IEEE float32;
 *  - float32 tensors are chunked with the Fletcher-32 checksum filter, which HDF5 (and h5py)
 *    verify on every read: a flipped bit makes the read fail instead of returning bad numbers.
 */
#ifndef POA_IO_H5UTIL_H
#define POA_IO_H5UTIL_H

#include "common/poa_error.h"

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* Saved HDF5 automatic error reporting (see poa_h5_quiet_begin). */
typedef struct poa_h5_quiet {
    H5E_auto2_t func;
    void *data;
} poa_h5_quiet;

/* Switch HDF5's automatic error printing off / back to what it was. */
void poa_h5_quiet_begin(poa_h5_quiet *saved);
void poa_h5_quiet_end(const poa_h5_quiet *saved);

/* The innermost message of the current HDF5 error stack ("" when the stack is empty). */
void poa_h5_last_error(char *buf, size_t n);

/* poa_err_set(err, code, "<what>: <innermost HDF5 message>"); returns code. */
poa_status poa_h5_fail(poa_err *err, poa_status code, const char *what);

/* A file-access property list for poa's files (close it with H5Pclose): HDF5 ≥ 1.10.7 keeps
 * its file locking but ignores it where the file system has locking disabled (some Lustre/NFS
 * mounts), instead of failing every open with "unable to lock file". */
hid_t poa_h5_fapl(void);

/* Open path read-only as poa's readers do: the superblock checked first (poa_hdf5_precheck:
 * not HDF5, truncated), then H5Fopen with poa_h5_fapl and HDF5's error printing off.  The
 * file's ID, or a negative value with err set (POA_ERR_NOTFOUND, POA_ERR_IO, POA_ERR_FORMAT,
 * naming path).  Close it with H5Fclose. */
hid_t poa_h5_open_read(const char *path, poa_err *err);

/* Bytes of the file that holds loc (0 when unknown). */
uint64_t poa_h5_file_bytes(hid_t loc);
/* A header that claims count elements of elem bytes: POA_ERR_FORMAT when the file cannot hold
 * them (checked before anything is allocated, so a corrupt header cannot make a reader allocate
 * more than the file justifies). */
poa_status poa_h5_check_claim(hid_t loc, const char *what, uint64_t count, size_t elem,
                              poa_err *err);

/* Whether `name` (one link, no '/') exists in loc. */
int poa_h5_exists(hid_t loc, const char *name);

/* Create a group that remembers the creation order of its links and attributes, so that
 * h5py iterates datasets in the order they were written (model order, docs/algorithm.md §2.8). */
hid_t poa_h5_create_group(hid_t loc, const char *name);

/* ------------------------------------------------------------------ writing a file */
/* An upper bound of the size of an HDF5 file of poa's with n_datasets datasets holding
 * data_bytes of data and text_bytes of strings: per dataset 8 KB for its object header, chunk
 * index and checksums (measured: under 3 KB each in poa's files), plus 1 MiB for the
 * superblock, the groups and the attributes. */
uint64_t poa_h5_size_bound(uint64_t data_bytes, uint64_t n_datasets, uint64_t text_bytes);

/* What a writer puts into the file that poa_h5_write_atomic created. */
typedef poa_status (*poa_h5_fill_fn)(hid_t file, void *ctx, poa_err *err);

/* Write the HDF5 file `final` atomically (common/atomic_io.h): create its temporary file, reserve
 * `bound` bytes for it (poa_h5_size_bound: a full disk is reported before HDF5 writes
 * anything, common/h5check.h), fill(file, ctx, err), flush and close it, then commit it
 * (fsync, rename, fsync of the directory).  After any failure the file is closed with its
 * writes discarded (libhdf5 1.10 cannot close a file whose writes failed) and deleted, and err
 * is prefixed "writing [what ]final: ".  Nothing of the file stays open: objects that fill
 * left open are closed (with a warning naming them when the write succeeded: a writer's bug). */
poa_status poa_h5_write_atomic(const char *final, const char *what, uint64_t bound,
                               poa_h5_fill_fn fill, void *ctx, poa_err *err);

/* ------------------------------------------------------------------ attributes (on any object) */
poa_status poa_h5_attr_write_string(hid_t obj, const char *name, const char *value, poa_err *err);
poa_status poa_h5_attr_write_i64(hid_t obj, const char *name, int64_t value, poa_err *err);
poa_status poa_h5_attr_write_i64_array(hid_t obj, const char *name, const int64_t *v, size_t n,
                                       poa_err *err);
/* IEEE float64 scalar (LayerNorm eps, α of an extracted model). */
poa_status poa_h5_attr_write_f64(hid_t obj, const char *name, double value, poa_err *err);
/* Read a scalar number attribute (float or integer) as a double. */
poa_status poa_h5_attr_read_f64(hid_t obj, const char *name, double *value, poa_err *err);
/* Read a string attribute into buf (truncated to n-1 chars). */
poa_status poa_h5_attr_read_string(hid_t obj, const char *name, char *buf, size_t n, poa_err *err);
/* Read a scalar integer attribute (any integer type) as int64. */
poa_status poa_h5_attr_read_i64(hid_t obj, const char *name, int64_t *value, poa_err *err);
/* Read a scalar or 1-D integer attribute: up to cap values into v, count in *n; *rank gets the
 * dataspace rank (0 = scalar). */
poa_status poa_h5_attr_read_i64_array(hid_t obj, const char *name, int64_t *v, size_t cap,
                                      size_t *n, int *rank, poa_err *err);

/* ------------------------------------------------------------------ datasets */
/* A float32 tensor of ndim dims (PyTorch shape), chunked with Fletcher-32. */
poa_status poa_h5_write_f32(hid_t loc, const char *name, int ndim, const int64_t *dims,
                            const float *data, poa_err *err);
/* Read a float32 tensor after checking that its shape is exactly dims; the message of a shape
 * mismatch gives both shapes.  A checksum failure is POA_ERR_FORMAT. */
poa_status poa_h5_read_f32(hid_t loc, const char *name, int ndim, const int64_t *dims, float *data,
                           poa_err *err);
/* Check that dataset `name` exists and has shape dims (no data read). */
poa_status poa_h5_check_shape(hid_t loc, const char *name, int ndim, const int64_t *dims,
                              poa_err *err);
/* 1-D uint64 array (may be empty). */
poa_status poa_h5_write_u64(hid_t loc, const char *name, const uint64_t *data, size_t n,
                            poa_err *err);
/* Read a 1-D uint64 array into a malloc'ed buffer (*data, *n); free() it. */
poa_status poa_h5_read_u64_alloc(hid_t loc, const char *name, uint64_t **data, size_t *n,
                                 poa_err *err);
/* Scalar variable-length UTF-8 string dataset. */
poa_status poa_h5_write_string(hid_t loc, const char *name, const char *value, poa_err *err);
/* Read a scalar string dataset into a malloc'ed, NUL-terminated buffer; free() it. */
poa_status poa_h5_read_string_alloc(hid_t loc, const char *name, char **value, poa_err *err);

#endif
