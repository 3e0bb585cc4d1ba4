/* atomic.h — files that appear complete or not at all.
 *
 * Every file poa writes for others to read (checkpoints, extracted models) is written under a
 * temporary name in its final directory, flushed and fsync'ed, then renamed to its final name
 * (atomic on POSIX file systems, Lustre and GPFS included) and the directory fsync'ed, so a
 * crash, SIGKILL or full disk leaves either no file or the complete one, never a partial file
 * under the final name.  Temporary names start with '.' and end in ".tmp.<pid>": readers never
 * pick them up, and writers may delete leftovers.
 *
 * All functions return a poa_status and fill err with a message naming the path at fault.
 */
#ifndef POA_IO_ATOMIC_H
#define POA_IO_ATOMIC_H

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

#endif
