/* data_util.c — see data_util.h. */
#include "data/data_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

void poa_strtab_init(poa_strtab *t)
{
    memset(t, 0, sizeof *t);
}

void poa_strtab_free(poa_strtab *t)
{
    free(t->off);
    free(t->buf);
    memset(t, 0, sizeof *t);
}

void poa_strtab_push_n(poa_strtab *t, const char *s, size_t len)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->off = poa_xrealloc(t->off, t->cap * sizeof *t->off);
    }
    if (t->used + len + 1 > t->size) {
        size_t want = t->size ? 2 * t->size : 1024;
        while (want < t->used + len + 1) want *= 2;
        t->buf = poa_xrealloc(t->buf, want);
        t->size = want;
    }
    memcpy(t->buf + t->used, s, len);
    t->buf[t->used + len] = '\0';
    t->off[t->n++] = t->used;
    t->used += len + 1;
}

void poa_strtab_push(poa_strtab *t, const char *s)
{
    poa_strtab_push_n(t, s, strlen(s));
}

size_t poa_strtab_max_len(const poa_strtab *t)
{
    size_t m = 0;
    for (size_t i = 0; i < t->n; i++) {
        size_t end = i + 1 < t->n ? t->off[i + 1] : t->used;
        size_t len = end - t->off[i] - 1;
        if (len > m) m = len;
    }
    return m;
}

/* ------------------------------------------------------------------ CRC-32 */
uint32_t poa_crc32(uint32_t crc, const void *data, size_t n)
{
    return (uint32_t) crc32_z(crc, data, n);
}

uint64_t poa_fnv1a64(uint64_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------------------ files */
static const char *file_type_name(mode_t m)
{
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISDIR(m)) return "a directory";
    return "not a regular file";
}

poa_status poa_read_file(const char *path, uint8_t **data, size_t *size, poa_err *err)
{
    *data = NULL;
    *size = 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        struct stat lst;
        if (e == ENOENT && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
            return poa_err_set(err, POA_ERR_IO, "%s: cannot open: dangling symbolic link", path);
        return poa_err_set(err, POA_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode))
        return poa_err_set(err, POA_ERR_IO, "%s: cannot read: %s", path,
                           file_type_name(st.st_mode));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return poa_err_set(err, POA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t n = (size_t) st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return poa_err_set(err, POA_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return poa_err_set(err, POA_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break; /* file shrank while reading: keep what is there */
        got += (size_t) r;
    }
    close(fd);
    *data = buf;
    *size = got;
    return POA_OK;
}

poa_status poa_path_join(char *buf, size_t n, const char *dir, const char *name, poa_err *err)
{
    int k = snprintf(buf, n, "%s/%s", dir, name);
    if (k < 0 || (size_t) k >= n)
        return poa_err_set(err, POA_ERR_ARG, "path too long: %s/%s", dir, name);
    return POA_OK;
}
