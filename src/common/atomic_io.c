/* atomic_io.c — see atomic_io.h. */
#include "common/atomic_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

poa_status poa_io_make_dirs(const char *dir, poa_err *err)
{
    char p[POA_IO_PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int) sizeof p)
        return poa_err_set(err, POA_ERR_ARG, "path too long: %s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return poa_err_set(err, POA_ERR_IO, "cannot create directory %s: %s", p,
                               strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return poa_err_set(err, POA_ERR_IO, "cannot create directory %s: %s", p, strerror(errno));
    struct stat sb;
    if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return poa_err_set(err, POA_ERR_IO, "%s exists and is not a directory", p);
    return POA_OK;
}

void poa_io_dirname(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else if (slash == path)
        snprintf(dir, n, "/");
    else
        snprintf(dir, n, "%.*s", (int) (slash - path), path);
}

poa_status poa_io_fsync_path(const char *path, int is_dir, poa_err *err)
{
    int fd = open(path, is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return poa_err_set(err, POA_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* Some file systems refuse fsync on directories (EINVAL); the rename is still atomic. */
    if (rc != 0 && !(is_dir && (e == EINVAL || e == EBADF)))
        return poa_err_set(err, POA_ERR_IO, "fsync %s: %s", path, strerror(e));
    return POA_OK;
}

poa_status poa_io_temp_path(const char *final, char *tmp, size_t n, poa_err *err)
{
    const char *slash = strrchr(final, '/');
    int dir_len = slash ? (int) (slash - final) + 1 : 0;
    const char *base = final + dir_len;
    if (!*base) return poa_err_set(err, POA_ERR_ARG, "%s: not a file name", final);
    int w = snprintf(tmp, n, "%.*s.%s.tmp.%ld", dir_len, final, base, (long) getpid());
    if (w < 0 || (size_t) w >= n) return poa_err_set(err, POA_ERR_ARG, "path too long: %s", final);
    return POA_OK;
}

/* fsync tmp, rename it to final, fsync final's directory. */
static poa_status commit(const char *tmp, const char *final, poa_err *err)
{
    char dir[POA_IO_PATH_MAX];
    poa_io_dirname(final, dir, sizeof dir);
    poa_status st = poa_io_fsync_path(tmp, 0, err);
    if (!st && rename(tmp, final) != 0)
        st =
            poa_err_set(err, POA_ERR_IO, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    if (!st) st = poa_io_fsync_path(dir, 1, err);
    return st;
}

poa_status poa_io_commit(const char *tmp, const char *final, poa_err *err)
{
    poa_status st = commit(tmp, final, err);
    if (st) {
        unlink(tmp);
        poa_err_prefix(err, "writing %s", final);
    }
    return st;
}

poa_status poa_io_atomic_begin(poa_io_atomic *a, const char *final, const char *what, poa_err *err)
{
    memset(a, 0, sizeof *a);
    snprintf(a->what, sizeof a->what, "%s", what ? what : "");
    if (snprintf(a->final, sizeof a->final, "%s", final) >= (int) sizeof a->final)
        return poa_err_set(err, POA_ERR_ARG, "path too long: %s", final);
    poa_status st = poa_io_temp_path(final, a->tmp, sizeof a->tmp, err);
    if (st) a->tmp[0] = '\0';
    return st;
}

poa_status poa_io_atomic_end(poa_io_atomic *a, poa_status st, poa_err *err)
{
    if (!st) st = commit(a->tmp, a->final, err);
    if (st) {
        if (a->tmp[0]) unlink(a->tmp);
        poa_err_prefix(err, "writing %s%s%s", a->what, a->what[0] ? " " : "", a->final);
    }
    return st;
}

/* write(2) all of it, across short writes and signals; 0 or the errno. */
static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno;
        p += w, n -= (size_t) w;
    }
    return 0;
}

poa_status poa_io_write_spans(const char *path, const poa_io_span *spans, int n, poa_err *err)
{
    poa_io_atomic a;
    poa_status st = poa_io_atomic_begin(&a, path, "", err);
    if (st) return st;
    int fd = open(a.tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        st = poa_err_set(err, POA_ERR_IO, "cannot create %s: %s", a.tmp, strerror(errno));
    } else {
        int e = 0;
        for (int i = 0; i < n && !e; i++) e = write_all(fd, spans[i].data, spans[i].size);
        if (close(fd) != 0 && !e) e = errno;
        if (e) st = poa_err_set(err, POA_ERR_IO, "%s", strerror(e));
    }
    return poa_io_atomic_end(&a, st, err);
}
