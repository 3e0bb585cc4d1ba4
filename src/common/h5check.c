/* h5check.c — see h5check.h; the superblock layout is HDF5's File Format Specification, "Format
 * Signature and Superblock" (versions 0/1: fixed fields, then base, free-space, end-of-file
 * and driver addresses; versions 2/3: base, extension and end-of-file addresses). */
#include "common/h5check.h"

#define _GNU_SOURCE
#include <hdf5.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

poa_status poa_hdf5_precheck(const char *path, poa_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return poa_err_set(err, errno == ENOENT ? POA_ERR_NOTFOUND : POA_ERR_IO,
                           "%s: cannot open: %s", path, strerror(errno));
    unsigned char sb[96];
    struct stat st;
    ssize_t n = fstat(fd, &st) == 0 ? pread(fd, sb, sizeof sb, 0) : -1;
    int e = errno;
    close(fd);
    if (n < 0) return poa_err_set(err, POA_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    if (n < 8 || memcmp(sb, "\x89HDF\r\n\x1a\n", 8) != 0)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s: not an HDF5 file (no HDF5 signature at byte 0; %lld bytes: empty, "
                           "overwritten or another format)",
                           path, (long long) st.st_size);
    int version = n > 8 ? sb[8] : -1;
    /* offset of "size of offsets", "size of lengths" and of the end-of-file address */
    int at_sizes, at_eof;
    if (version == 0 || version == 1) {
        at_sizes = 13;
        at_eof = (version == 0 ? 24 : 28) + 16;
    } else if (version == 2 || version == 3) {
        at_sizes = 9;
        at_eof = 12 + 16;
    } else {
        return poa_err_set(err, POA_ERR_FORMAT, "%s: HDF5 superblock version %d is unknown", path,
                           version);
    }
    if (n < at_eof + 8)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s: truncated: %lld bytes, shorter than its HDF5 superblock", path,
                           (long long) n);
    if (sb[at_sizes] != 8 || sb[at_sizes + 1] != 8)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s: HDF5 superblock with %d-byte addresses and %d-byte lengths (poa's "
                           "files use 8): corrupt",
                           path, sb[at_sizes], sb[at_sizes + 1]);
    uint64_t eof = le64(sb + at_eof);
    if (eof > (uint64_t) st.st_size)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s: truncated: the HDF5 superblock records %llu bytes, the file has "
                           "%lld (an interrupted write or copy, or a full disk)",
                           path, (unsigned long long) eof, (long long) st.st_size);
    return POA_OK;
}

poa_status poa_hdf5_reserve(const char *path, unsigned long long bytes, poa_err *err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return poa_err_set(err, POA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t) bytes);
    int e = errno;
    close(fd);
    if (rc == 0 || e == EOPNOTSUPP || e == ENOSYS || e == EINVAL) return POA_OK;
    return poa_err_set(err, POA_ERR_IO, "%s: cannot reserve %.1f MiB for the file: %s", path,
                       (double) bytes / 1048576.0, strerror(e));
}

void poa_hdf5_release_reserve(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) (void) truncate(path, st.st_size); /* frees blocks past the end */
}

/* Registered (once) when libhdf5 could not close a file: runs before libhdf5's own atexit
 * cleanup (exit handlers run in reverse order of registration; libhdf5 registered its handler
 * when it started) and ends the process with the same status without it.  stdio is flushed;
 * MPI is finalized by then (poa's programs return from main after MPI_Finalize). */
static void exit_without_hdf5_cleanup(int status, void *arg)
{
    (void) arg;
    fflush(NULL);
    _exit(status);
}

static void skip_hdf5_cleanup_at_exit(void)
{
    static atomic_flag registered = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&registered)) (void) on_exit(exit_without_hdf5_cleanup, NULL);
}

static atomic_int files_abandoned; /* files whose H5Fclose failed after a full disk */

int poa_hdf5_close_discarding(long long file_id)
{
    hid_t f = (hid_t) file_id;
    H5E_auto2_t func;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &func, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Fget_access_plist(f);
    void *handle = NULL;
    if (fapl >= 0 && H5Pget_driver(fapl) == H5FD_SEC2 && H5Fget_vfd_handle(f, fapl, &handle) >= 0 &&
        handle) {
        int fd = *(int *) handle, sink = memfd_create("poa-discarded-hdf5", MFD_CLOEXEC);
        if (sink >= 0) {
            dup2(sink, fd); /* fd keeps its number, HDF5 never notices */
            close(sink);
        }
    }
    if (fapl >= 0) H5Pclose(fapl);
    herr_t r = H5Fclose(f);
    if (r < 0 && getenv("POA_DEBUG_H5")) H5Eprint2(H5E_DEFAULT, stderr);
    if (r < 0) { /* the file stays half-closed inside libhdf5 */
        skip_hdf5_cleanup_at_exit();
        atomic_fetch_add(&files_abandoned, 1);
    }
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, func, data);
    return r;
}

long poa_hdf5_open_objects(char *what, size_t n)
{
    const unsigned objects = H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR;
    ssize_t files = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE);
    ssize_t others = H5Fget_obj_count(H5F_OBJ_ALL, objects);
    long open = (long) (files > 0 ? files : 0) - atomic_load(&files_abandoned);
    open = (open > 0 ? open : 0) + (long) (others > 0 ? others : 0);
    if (what && n) what[0] = '\0';
    if (open == 0 || !what || !n) return open;
    hid_t ids[8];
    ssize_t got = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_ALL, 8, ids);
    size_t k = 0;
    for (ssize_t i = 0; i < got && k < n; i++) {
        char name[160] = "?";
        H5I_type_t t = H5Iget_type(ids[i]);
        if (t == H5I_FILE)
            H5Fget_name(ids[i], name, sizeof name);
        else if (t != H5I_ATTR)
            H5Iget_name(ids[i], name, sizeof name);
        k += (size_t) snprintf(what + k, n - k, "%s%s %s", i ? ", " : "",
                               t == H5I_FILE      ? "file"
                               : t == H5I_GROUP   ? "group"
                               : t == H5I_DATASET ? "dataset"
                               : t == H5I_ATTR    ? "attribute"
                                                  : "datatype",
                               name);
    }
    return open;
}

void poa_hdf5_tidy_message(const char *desc, char *out, size_t n)
{
    static const char key[] = "error message = '";
    const char *m = strstr(desc, key), *colon = strchr(desc, ':');
    if (m && colon && colon < m) {
        m += sizeof key - 1;
        const char *end = strchr(m, '\'');
        snprintf(out, n, "%.*s: %.*s", (int) (colon - desc), desc,
                 end ? (int) (end - m) : (int) strlen(m), m);
    } else {
        snprintf(out, n, "%s", desc);
    }
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}
