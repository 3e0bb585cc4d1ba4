/* enospc_shim.c — an LD_PRELOAD library that makes a file system look full (tests/fault/, README.md
 * "Reliability"): no privileges, no tmpfs, any process (poa-train's ranks under mpiexec, poa-pack's
 * threads, libhdf5's sec2 driver).
 *
 *   POA_FAULT_PATH=SUBSTRING    only files whose path contains SUBSTRING are affected (required:
 *                               without it the shim does nothing)
 *   POA_FAULT_ENOSPC_AFTER=N    bytes that may still be written to those files, over the whole
 *                               process; the write that crosses N is cut short there and every
 *                               later one fails with ENOSPC
 *   POA_FAULT_FSYNC=1           once the budget is spent, fsync/fdatasync of those files fail
 *                               with ENOSPC too (what NFS or Lustre report when the data did not
 *                               fit)
 *   POA_FAULT_NO_FALLOCATE=1    fallocate / posix_fallocate of those files fail with EOPNOTSUPP
 *                               (file systems without it): the full disk is then met by libhdf5's
 *                               own writes
 *
 * Space reserved with fallocate / posix_fallocate is taken from the budget at once (ENOSPC when
 * it does not fit, as a real file system does); writes inside a file's reserved range then cost
 * nothing more.
 *
 * Interposed: write, pwrite, pwrite64, writev, pwritev, fallocate, posix_fallocate, fsync,
 * fdatasync.  glibc's stdio writes through internal calls that LD_PRELOAD cannot see, so
 * fwrite/fprintf are not affected (poa's large outputs, HDF5 files, go through pwrite). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static atomic_llong budget = -1; /* bytes left; -1: not initialised */
static const char *pattern;
static int fail_fsync, no_fallocate;

static void init(void)
{
    static atomic_int done;
    if (atomic_exchange(&done, 1)) return;
    pattern = getenv("POA_FAULT_PATH");
    if (pattern && !*pattern) pattern = NULL;
    const char *after = getenv("POA_FAULT_ENOSPC_AFTER");
    const char *f = getenv("POA_FAULT_FSYNC");
    fail_fsync = f && f[0] == '1';
    const char *nf = getenv("POA_FAULT_NO_FALLOCATE");
    no_fallocate = nf && nf[0] == '1';
    atomic_store(&budget, after ? atoll(after) : (long long) 1 << 62);
}

/* Whether fd is a regular file whose path contains the pattern. */
static int affected(int fd)
{
    init();
    if (!pattern) return 0;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    return strstr(path, pattern) != NULL;
}

/* Reserved ranges [0, end) per file (by device and inode). */
#define MAX_RESERVED 64
static struct {
    dev_t dev;
    ino_t ino;
    off_t end;
} reserved[MAX_RESERVED];
static atomic_flag reserved_lock = ATOMIC_FLAG_INIT;

static void lock(void)
{
    while (atomic_flag_test_and_set(&reserved_lock)) {
    }
}

static void unlock(void)
{
    atomic_flag_clear(&reserved_lock);
}

/* End of fd's reserved range (0: none); with set, raise it to `end`. */
static off_t reserved_end(int fd, off_t set)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    off_t end = 0;
    lock();
    int free_slot = -1;
    for (int i = 0; i < MAX_RESERVED; i++) {
        if (reserved[i].end > 0 && reserved[i].dev == st.st_dev && reserved[i].ino == st.st_ino) {
            if (set > reserved[i].end) reserved[i].end = set;
            end = reserved[i].end;
            free_slot = -2;
            break;
        }
        if (reserved[i].end == 0 && free_slot == -1) free_slot = i;
    }
    if (set > 0 && free_slot >= 0) {
        reserved[free_slot].dev = st.st_dev;
        reserved[free_slot].ino = st.st_ino;
        reserved[free_slot].end = end = set;
    }
    unlock();
    return end;
}

/* Bytes of [off, off + n) past fd's reserved range (what a write there costs). */
static size_t unreserved(int fd, off_t off, size_t n)
{
    off_t end = reserved_end(fd, 0);
    if (off >= end) return n;
    return off + (off_t) n <= end ? 0 : (size_t) (off + (off_t) n - end);
}

/* How many of `want` bytes may be written now (0: none, the caller fails with ENOSPC). */
static size_t grant(size_t want)
{
    long long left = atomic_load(&budget);
    for (;;) {
        if (left <= 0) return 0;
        long long take = (long long) want < left ? (long long) want : left;
        if (atomic_compare_exchange_weak(&budget, &left, left - take)) return (size_t) take;
    }
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*sync_fn)(int);

/* The next definition of `name` (libc's), looked up once. */
#define REAL(name, type)                                                                           \
    static type real_##name;                                                                       \
    if (!real_##name) real_##name = (type) dlsym(RTLD_NEXT, #name)

/* Bytes of a write of `count` at `off` that may proceed (0: ENOSPC). */
static size_t allowed(int fd, off_t off, size_t count)
{
    size_t cost = unreserved(fd, off, count);
    if (cost == 0) return count;
    size_t ok = grant(cost);
    return ok == cost ? count : count - cost + ok;
}

ssize_t write(int fd, const void *buf, size_t count)
{
    REAL(write, write_fn);
    if (count == 0 || !affected(fd)) return real_write(fd, buf, count);
    size_t ok = allowed(fd, lseek(fd, 0, SEEK_CUR), count);
    if (ok == 0) return errno = ENOSPC, -1;
    return real_write(fd, buf, ok);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t off)
{
    REAL(pwrite, pwrite_fn);
    if (count == 0 || !affected(fd)) return real_pwrite(fd, buf, count, off);
    size_t ok = allowed(fd, off, count);
    if (ok == 0) return errno = ENOSPC, -1;
    return real_pwrite(fd, buf, ok, off);
}

typedef int (*fallocate_fn)(int, int, off_t, off_t);

/* Reserve [off, off + len): all or nothing. */
static int reserve(int fd, off_t off, off_t len)
{
    off_t end = reserved_end(fd, 0), want = off + len - (end > off ? end : off);
    if (want > 0 && grant((size_t) want) < (size_t) want) return ENOSPC;
    reserved_end(fd, off + len);
    return 0;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate, fallocate_fn);
    if (affected(fd) && len > 0) {
        int e = no_fallocate ? EOPNOTSUPP : reserve(fd, off, len);
        if (e) return errno = e, -1;
    }
    return real_fallocate(fd, mode, off, len);
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
    return fallocate(fd, mode, off, len);
}

typedef int (*posix_fallocate_fn)(int, off_t, off_t);

int posix_fallocate(int fd, off_t off, off_t len)
{
    REAL(posix_fallocate, posix_fallocate_fn);
    if (affected(fd) && len > 0) {
        int e = no_fallocate ? EOPNOTSUPP : reserve(fd, off, len);
        if (e) return e;
    }
    return real_posix_fallocate(fd, off, len);
}

int posix_fallocate64(int fd, off_t off, off_t len)
{
    return posix_fallocate(fd, off, len);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t off)
{
    return pwrite(fd, buf, count, off);
}

/* Vector writes: all or nothing (a partial grant fails the call; simpler, and just as full). */
static ssize_t vector_write(int fd, const struct iovec *iov, int n, off_t off, int positional)
{
    REAL(writev, writev_fn);
    REAL(pwritev, pwritev_fn);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += iov[i].iov_len;
    if (total > 0 && affected(fd)) {
        size_t cost = unreserved(fd, positional ? off : lseek(fd, 0, SEEK_CUR), total);
        if (cost > 0 && grant(cost) < cost) return errno = ENOSPC, -1;
    }
    return positional ? real_pwritev(fd, iov, n, off) : real_writev(fd, iov, n);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    return vector_write(fd, iov, n, 0, 0);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    return vector_write(fd, iov, n, off, 1);
}

static int full(int fd)
{
    return fail_fsync && affected(fd) && atomic_load(&budget) <= 0;
}

int fsync(int fd)
{
    REAL(fsync, sync_fn);
    if (full(fd)) return errno = ENOSPC, -1;
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(fdatasync, sync_fn);
    if (full(fd)) return errno = ENOSPC, -1;
    return real_fdatasync(fd);
}
