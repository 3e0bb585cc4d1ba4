/* atomic_io.h — files that appear complete or not at all.
 *
 * Every file poa writes for others to read (dataset shards and metadata, checkpoints, extracted
 * models, evaluation results) is written under a temporary name in its final directory,
 * flushed and fsync'ed, then renamed to its final name (atomic on POSIX file systems, Lustre
 * and GPFS included) and the directory fsync'ed, so a crash, SIGKILL or full disk leaves either
 * no file or the complete one, never a partial file under the final name.  Temporary names
 * start with '.' and end in ".tmp.<pid>": readers never pick them up, and writers may delete
 * leftovers.
 *
 * All functions return a poa_status and fill err with a message naming the path at fault.
 */
#ifndef POA_COMMON_ATOMIC_IO_H
#define POA_COMMON_ATOMIC_IO_H

#include "common/poa_error.h"

#include <stddef.h>

#define POA_IO_PATH_MAX 4096

/* mkdir -p dir. */
poa_status poa_io_make_dirs(const char *dir, poa_err *err);
/* The directory part of path ("." when it has none) into dir. */
void poa_io_dirname(const char *path, char *dir, size_t n);
/* fsync a file or a directory by path (a directory's fsync makes a rename in it durable;
 * file systems that refuse fsync on directories are accepted). */
poa_status poa_io_fsync_path(const char *path, int is_dir, poa_err *err);
/* The temporary name of final path "<dir>/<base>": "<dir>/.<base>.tmp.<pid>". */
poa_status poa_io_temp_path(const char *final, char *tmp, size_t n, poa_err *err);
/* The end of an atomic write: fsync tmp (written and closed by the caller), rename it to final,
 * fsync final's directory.  On failure tmp is deleted and err names final. */
poa_status poa_io_commit(const char *tmp, const char *final, poa_err *err);

/* One atomic write, start to end, with every failure cleaned up the same way:
 *
 *     poa_io_atomic a;
 *     poa_status st = poa_io_atomic_begin(&a, path, "checkpoint", err);
 *     if (!st) st = write_and_close(a.tmp, ...);   // the caller's writer; closes in every case
 *     return poa_io_atomic_end(&a, st, err);       // commit, or delete the temporary file
 *
 * The HDF5 form, which also reserves the space and closes the file after a failed write, is
 * poa_h5_write_atomic (io/h5util.h). */
typedef struct poa_io_atomic {
    char final[POA_IO_PATH_MAX];
    char tmp[POA_IO_PATH_MAX + 64]; /* poa_io_temp_path(final); "" when begin failed */
    char what[32];                  /* what the file is, for messages ("checkpoint"; "": none) */
} poa_io_atomic;

/* The paths of an atomic write of final (nothing is created). */
poa_status poa_io_atomic_begin(poa_io_atomic *a, const char *final, const char *what, poa_err *err);
/* st: the status of the caller's write (its file closed whatever happened).  POA_OK: commit
 * (poa_io_commit's fsync, rename, fsync of the directory).  On any failure, the caller's or the
 * commit's, the temporary file is deleted and err is prefixed "writing [what ]final: ".
 * Returns the final status. */
poa_status poa_io_atomic_end(poa_io_atomic *a, poa_status st, poa_err *err);

/* One piece of a file written from memory. */
typedef struct poa_io_span {
    const void *data;
    size_t size;
} poa_io_span;

/* Write the concatenation of n spans to path atomically (begin, write, end as above). */
poa_status poa_io_write_spans(const char *path, const poa_io_span *spans, int n, poa_err *err);

#endif
