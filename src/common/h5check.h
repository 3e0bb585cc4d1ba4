/* h5check.h — what poa checks in an HDF5 file before libhdf5 sees it.
 *
 * libhdf5 (1.10) trusts its own metadata: arbitrary bytes in a superblock, an object header or a
 * heap can crash or hang it (README.md, "Reliability").  poa cannot make the library robust, but
 * the cheapest and most common damage — a file cut short by a full disk or an interrupted copy,
 * a file that is not HDF5 at all, a zeroed or overwritten first block — is caught here, from the
 * superblock alone, with a message naming the file:
 *   - the HDF5 signature at byte 0 (poa's files have no user block);
 *   - a superblock version poa's HDF5 writes (0 to 3) with 8-byte addresses and lengths;
 *   - the end-of-file address the superblock records <= the file's size (truncation).
 * Plain byte parsing, no HDF5 call: usable by every layer. */
#ifndef POA_COMMON_H5CHECK_H
#define POA_COMMON_H5CHECK_H

#include "common/poa_error.h"

#include <stddef.h>

/* POA_OK, or POA_ERR_NOTFOUND / POA_ERR_IO (cannot open) / POA_ERR_FORMAT with the reason. */
poa_status poa_hdf5_precheck(const char *path, poa_err *err);

/* Writing HDF5 files on a full disk.  libhdf5 1.10.8 does not survive a write error inside its
 * metadata-cache flush: the flush leaves the cache's skip list enabled, every later flush and
 * H5Fclose fail ("slist already enabled?"), the file stays half-closed, and HDF5's atexit
 * cleanup closes it a second time and crashes (SIGSEGV in H5F__close_cb at exit).  So poa's
 * writers never let HDF5 meet a full disk:
 *   1. poa_hdf5_reserve: right after H5Fcreate, the space the file will need (an upper bound)
 *      is reserved with fallocate(FALLOC_FL_KEEP_SIZE): a full disk (or quota) is reported here,
 *      before HDF5 has written anything, with the size asked for;
 *   2. on any error, poa_hdf5_close_discarding: HDF5's descriptor is first pointed at an
 *      anonymous in-memory file, so the closing flush cannot fail; the caller unlinks the file;
 *   3. after a successful close, poa_hdf5_release_reserve gives back the reserved blocks past
 *      the end of the file;
 *   4. on file systems without fallocate (some NFS and Lustre versions) step 1 is skipped and
 *      HDF5 can meet the full disk in its flush; H5Fclose then fails even with step 2, and the
 *      file's ID can never be released.  poa_hdf5_close_discarding then registers an exit
 *      handler that runs before libhdf5's atexit cleanup and ends the process with the same exit
 *      status without it (stdio flushed): the full disk is reported with exit 4, not a SIGSEGV
 *      at exit (README.md, "Reliability"). */
poa_status poa_hdf5_reserve(const char *path, unsigned long long bytes, poa_err *err);
void poa_hdf5_release_reserve(const char *path);
/* Close file f after an error (steps 2 and 4 above): its descriptor no longer refers to the
 * file.  Returns H5Fclose's result. */
int poa_hdf5_close_discarding(long long file_id);

/* The HDF5 objects (files, groups, datasets, datatypes, attributes) still open in the process,
 * not counting the files that poa_hdf5_close_discarding could not close (step 4 above: their
 * IDs stay open for good); what[0..n) gets the names of a few of them. */
long poa_hdf5_open_objects(char *what, size_t n);

/* An HDF5 error description on one line: the sec2 driver's read and write errors span two
 * lines (time, file name, descriptor, errno, buffer address, sizes); their first words and the
 * system's text are kept, e.g. "file write failed: No space left on device". */
void poa_hdf5_tidy_message(const char *desc, char *out, size_t n);

#endif
