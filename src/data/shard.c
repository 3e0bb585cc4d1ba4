/* shard.c — see shard.h. */
#include "data/shard.h"
#include "data/h5data.h"
#include "data/schema.h"

#include "common/atomic_io.h"
#include "common/h5check.h"

#include "poa_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CREATED_BY "poa-pack " PACKAGE_VERSION

/* ------------------------------------------------------------------ writing */
static poa_status write_attrs(hid_t f, const poa_shard_info *info, size_t n, uint64_t nbytes,
                              size_t n_skipped, uint32_t crc, poa_err *err)
{
    poa_status st = POA_OK;
#define PUT_I(name, v)                                                                             \
    if (st == POA_OK) st = poa_dh5_attr_put_i64(f, name, (int64_t) (v), err)
#define PUT_S(name, v)                                                                             \
    if (st == POA_OK) st = poa_dh5_attr_put_str(f, name, v, err)
    PUT_S("format", POA_SHARD_FORMAT);
    PUT_I("format_version", POA_SHARD_FORMAT_VERSION);
    PUT_S("created_by", CREATED_BY);
    PUT_S("split", info->split);
    PUT_I("shard_index", info->shard_index);
    PUT_I("shard_count", info->shard_count);
    PUT_I("num_images", n);
    PUT_I("num_bytes", nbytes);
    PUT_I("num_skipped", n_skipped);
    PUT_I("source_first", info->source_first);
    PUT_I("source_count", info->source_count);
    PUT_I("images_crc32", crc);
    PUT_I("reencode_max_side", info->reencode_max_side);
    PUT_I("reencode_quality", info->reencode_quality);
    if (st == POA_OK) st = poa_dh5_attr_put_u64(f, "plan_fingerprint", info->plan_fingerprint, err);
#undef PUT_I
#undef PUT_S
    return st;
}

static poa_status write_tables(hid_t f, const poa_shard_record *recs, size_t n,
                               const uint8_t *images, uint64_t nbytes, const uint64_t *offsets,
                               const poa_strtab *skipped_names, const poa_strtab *skipped_reasons,
                               poa_err *err)
{
    int32_t *labels = poa_xmalloc((n ? n : 1) * sizeof *labels);
    uint64_t *ids = poa_xmalloc((n ? n : 1) * sizeof *ids);
    uint32_t *sizes = poa_xmalloc((n ? n : 1) * 2 * sizeof *sizes);
    uint32_t *crc = poa_xmalloc((n ? n : 1) * sizeof *crc);
    poa_strtab names;
    poa_strtab_init(&names);
    for (size_t i = 0; i < n; i++) {
        labels[i] = recs[i].label;
        ids[i] = recs[i].id;
        sizes[2 * i] = recs[i].height;
        sizes[2 * i + 1] = recs[i].width;
        crc[i] = poa_crc32(0, recs[i].data, recs[i].size);
        poa_strtab_push(&names, recs[i].file_name);
    }
    hsize_t d_bytes[1] = {nbytes}, d_off[1] = {n + 1}, d_n[1] = {n}, d_n2[2] = {n, 2};
    poa_status st =
        poa_dh5_write(f, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, d_bytes, images, err);
    if (st == POA_OK)
        st = poa_dh5_write(f, "offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, d_off, offsets, err);
    if (st == POA_OK)
        st = poa_dh5_write(f, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, d_n, labels, err);
    if (st == POA_OK)
        st = poa_dh5_write(f, "ids", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, d_n, ids, err);
    if (st == POA_OK) st = poa_dh5_write_strtab(f, "file_names", &names, err);
    if (st == POA_OK)
        st = poa_dh5_write(f, "image_size", H5T_STD_U32LE, H5T_NATIVE_UINT32, 2, d_n2, sizes, err);
    if (st == POA_OK)
        st = poa_dh5_write(f, "crc32", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, d_n, crc, err);
    if (st == POA_OK) st = poa_dh5_write_strtab(f, "skipped_file_names", skipped_names, err);
    if (st == POA_OK) st = poa_dh5_write_strtab(f, "skipped_reasons", skipped_reasons, err);
    poa_strtab_free(&names);
    free(labels);
    free(ids);
    free(sizes);
    free(crc);
    return st;
}

/* An upper bound of the shard file's size (reserved before HDF5 writes, common/h5check.h): the
 * images, the per-image tables (offsets, label, id, size, CRC: 32 bytes) and names at the width
 * of the longest, the skipped lists, and 64 KiB + 1 % for HDF5's own structures (about 10 KB
 * measured). */
static uint64_t size_bound(const poa_shard_record *recs, size_t n, uint64_t nbytes,
                           const poa_strtab *skipped_names, const poa_strtab *skipped_reasons)
{
    size_t width = 1;
    for (size_t i = 0; i < n; i++) {
        size_t l = recs[i].file_name ? strlen(recs[i].file_name) : 0;
        if (l > width) width = l;
    }
    return nbytes + (uint64_t) n * (32 + width) +
           (uint64_t) skipped_names->n *
               (poa_strtab_max_len(skipped_names) + poa_strtab_max_len(skipped_reasons) + 2) +
           (uint64_t) 65536 + nbytes / 100;
}

poa_status poa_shard_write(const char *final_path, const poa_shard_info *info,
                           const poa_shard_record *recs, size_t n, const poa_strtab *skipped_names,
                           const poa_strtab *skipped_reasons, poa_err *err)
{
    POA_ASSERT(skipped_names->n == skipped_reasons->n);
    uint64_t *offsets = poa_xmalloc((n + 1) * sizeof *offsets);
    offsets[0] = 0;
    for (size_t i = 0; i < n; i++) offsets[i + 1] = offsets[i] + recs[i].size;
    uint64_t nbytes = offsets[n];
    /* Records that already lie back to back in one buffer (poa-pack) are written in place;
     * otherwise they are gathered into one. */
    int in_place = n > 0;
    for (size_t i = 0; i < n && in_place; i++)
        if (recs[i].data != recs[0].data + offsets[i]) in_place = 0;
    uint8_t *gathered = NULL;
    const uint8_t *images = in_place ? recs[0].data : NULL;
    if (!in_place) {
        gathered = malloc(nbytes ? nbytes : 1);
        if (!gathered) {
            free(offsets);
            return poa_err_set(err, POA_ERR_NOMEM, "%s: cannot allocate %llu bytes", final_path,
                               (unsigned long long) nbytes);
        }
        for (size_t i = 0; i < n; i++) memcpy(gathered + offsets[i], recs[i].data, recs[i].size);
        images = gathered;
    }
    uint32_t crc = poa_crc32(0, images, nbytes);

    char tmp[POA_IO_PATH_MAX + 64] = "";
    poa_status st = poa_io_temp_path(final_path, tmp, sizeof tmp, err);
    if (st != POA_OK) tmp[0] = '\0'; /* nothing to delete */
    hid_t f = st == POA_OK ? poa_dh5_create(tmp, err) : -1;
    if (st == POA_OK && f < 0) st = POA_ERR_IO;
    if (st == POA_OK)
        st =
            poa_hdf5_reserve(tmp, size_bound(recs, n, nbytes, skipped_names, skipped_reasons), err);
    if (st == POA_OK) st = write_attrs(f, info, n, nbytes, skipped_names->n, crc, err);
    if (st == POA_OK)
        st = write_tables(f, recs, n, images, nbytes, offsets, skipped_names, skipped_reasons, err);
    if (f >= 0) st = poa_dh5_finish(f, st, tmp, err);
    if (st == POA_OK) poa_hdf5_release_reserve(tmp);
    if (st == POA_OK) {
        st = poa_io_commit(tmp, final_path, err); /* on failure: tmp deleted, final named */
    } else {
        if (tmp[0]) unlink(tmp);
        poa_err_prefix(err, "writing %s", final_path);
    }
    free(gathered);
    free(offsets);
    return st;
}

/* ------------------------------------------------------------------ reading */
static poa_status read_info(hid_t f, poa_shard *s, poa_err *err)
{
    poa_status st = POA_OK;
    int64_t crc = 0;
#define GET_I(name, dst)                                                                           \
    if (st == POA_OK) st = poa_dh5_attr_get_i64(f, name, dst, err)
    GET_I("shard_index", &s->info.shard_index);
    GET_I("shard_count", &s->info.shard_count);
    GET_I("num_images", &s->num_images);
    GET_I("num_bytes", &s->num_bytes);
    GET_I("num_skipped", &s->num_skipped);
    GET_I("source_first", &s->info.source_first);
    GET_I("source_count", &s->info.source_count);
    GET_I("images_crc32", &crc);
    GET_I("reencode_max_side", &s->info.reencode_max_side);
    GET_I("reencode_quality", &s->info.reencode_quality);
#undef GET_I
    if (st == POA_OK)
        st = poa_dh5_attr_get_u64(f, "plan_fingerprint", &s->info.plan_fingerprint, err);
    if (st == POA_OK)
        st = poa_dh5_attr_get_str(f, "split", s->info.split, sizeof s->info.split, err);
    s->images_crc32 = (uint32_t) crc;
    return st;
}

static poa_status read_tables(hid_t f, poa_shard *s, unsigned flags, poa_err *err)
{
    hsize_t dims[4];
    poa_status st =
        poa_dh5_read_alloc(f, "offsets", H5T_NATIVE_UINT64, 8, 1, dims, (void **) &s->offsets, err);
    if (st == POA_OK)
        st = poa_dh5_read_alloc(f, "labels", H5T_NATIVE_INT32, 4, 1, dims, (void **) &s->labels,
                                err);
    int all = !(flags & POA_SHARD_INDEX_ONLY);
    if (st == POA_OK && all)
        st = poa_dh5_read_alloc(f, "ids", H5T_NATIVE_UINT64, 8, 1, dims, (void **) &s->ids, err);
    if (st == POA_OK && all)
        st = poa_dh5_read_alloc(f, "image_size", H5T_NATIVE_UINT32, 4, 2, dims, (void **) &s->sizes,
                                err);
    if (st == POA_OK)
        st = poa_dh5_read_alloc(f, "crc32", H5T_NATIVE_UINT32, 4, 1, dims, (void **) &s->crc, err);
    if (st == POA_OK && (flags & POA_SHARD_LOAD_NAMES)) {
        st = poa_dh5_read_strtab(f, "file_names", &s->file_names, err);
        if (st == POA_OK) st = poa_dh5_read_strtab(f, "skipped_file_names", &s->skipped_names, err);
        if (st == POA_OK) st = poa_dh5_read_strtab(f, "skipped_reasons", &s->skipped_reasons, err);
    }
    return st;
}

/* Invariants the schema cannot express. */
static poa_status check_invariants(const poa_shard *s, poa_err *err)
{
    if (s->offsets[0] != 0)
        return poa_err_set(err, POA_ERR_FORMAT, "offsets[0] = %llu, expected 0",
                           (unsigned long long) s->offsets[0]);
    for (int64_t i = 0; i < s->num_images; i++)
        if (s->offsets[i + 1] <= s->offsets[i])
            return poa_err_set(err, POA_ERR_FORMAT,
                               "offsets not increasing at record %lld (%llu -> %llu)",
                               (long long) i, (unsigned long long) s->offsets[i],
                               (unsigned long long) s->offsets[i + 1]);
    if (s->offsets[s->num_images] != (uint64_t) s->num_bytes)
        return poa_err_set(err, POA_ERR_FORMAT, "offsets[N] = %llu but num_bytes = %lld",
                           (unsigned long long) s->offsets[s->num_images],
                           (long long) s->num_bytes);
    if (s->info.shard_index < 0 || s->info.shard_index >= s->info.shard_count)
        return poa_err_set(err, POA_ERR_FORMAT, "shard_index %lld outside [0, %lld)",
                           (long long) s->info.shard_index, (long long) s->info.shard_count);
    if (s->num_images + s->num_skipped != s->info.source_count)
        return poa_err_set(
            err, POA_ERR_FORMAT, "num_images + num_skipped = %lld != source_count %lld",
            (long long) (s->num_images + s->num_skipped), (long long) s->info.source_count);
    return POA_OK;
}

static poa_status images_offset(hid_t f, poa_shard *s, poa_err *err)
{
    s->data_offset = -1;
    if (s->num_bytes == 0) return POA_OK;
    poa_dh5_lock();
    hid_t d = H5Dopen2(f, "images", H5P_DEFAULT);
    haddr_t a = d >= 0 ? H5Dget_offset(d) : HADDR_UNDEF;
    if (d >= 0) H5Dclose(d);
    poa_dh5_unlock();
    if (a == HADDR_UNDEF)
        return poa_err_set(err, POA_ERR_FORMAT, "dataset 'images' has no allocated storage");
    s->data_offset = (int64_t) a;
    return POA_OK;
}

/* /images must end inside the file: a shard truncated after packing is reported when it is
 * opened, with both sizes. */
static poa_status check_extent(const poa_shard *s, poa_err *err)
{
    struct stat sb;
    if (fstat(s->fd, &sb) != 0)
        return poa_err_set(err, POA_ERR_IO, "cannot stat: %s", strerror(errno));
    if (s->num_bytes > 0 &&
        (uint64_t) s->data_offset + (uint64_t) s->num_bytes > (uint64_t) sb.st_size)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "truncated: /images ends at byte %llu but the file has %llu bytes",
                           (unsigned long long) s->data_offset + (unsigned long long) s->num_bytes,
                           (unsigned long long) sb.st_size);
    return POA_OK;
}

poa_status poa_shard_open(poa_shard *s, const char *path, unsigned flags, poa_err *err)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    poa_strtab_init(&s->file_names);
    poa_strtab_init(&s->skipped_names);
    poa_strtab_init(&s->skipped_reasons);
    snprintf(s->path, sizeof s->path, "%s", path);
    hid_t f = poa_dh5_open_ro(path, err);
    if (f < 0) return err ? err->code : POA_ERR_IO;
    poa_status st = poa_schema_validate(f, &poa_shard_schema, path, err);
    if (st == POA_OK) st = read_info(f, s, err);
    if (st == POA_OK) st = read_tables(f, s, flags, err);
    if (st == POA_OK) st = check_invariants(s, err);
    if (st == POA_OK) st = images_offset(f, s, err);
    poa_dh5_close(f);
    if (st == POA_OK) {
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0) st = poa_err_set(err, POA_ERR_IO, "cannot open: %s", strerror(errno));
    }
    if (st == POA_OK) st = check_extent(s, err);
    if (st != POA_OK) {
        if (err && strncmp(err->msg, path, strlen(path)) != 0) poa_err_prefix(err, "%s", path);
        poa_shard_close(s);
    }
    return st;
}

void poa_shard_close(poa_shard *s)
{
    free(s->offsets);
    free(s->labels);
    free(s->ids);
    free(s->sizes);
    free(s->crc);
    poa_strtab_free(&s->file_names);
    poa_strtab_free(&s->skipped_names);
    poa_strtab_free(&s->skipped_reasons);
    if (s->fd >= 0) close(s->fd);
    s->offsets = NULL;
    s->labels = NULL;
    s->ids = NULL;
    s->sizes = NULL;
    s->crc = NULL;
    s->fd = -1;
}

static poa_status pread_full(int fd, uint8_t *buf, size_t n, int64_t off, const char *path,
                             poa_err *err)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t) (off + (int64_t) got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return poa_err_set(err, POA_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (r == 0)
            return poa_err_set(err, POA_ERR_FORMAT, "%s: file truncated (record data past the end)",
                               path);
        got += (size_t) r;
    }
    return POA_OK;
}

poa_status poa_shard_read(const poa_shard *s, int64_t i, uint8_t **buf, size_t *cap, size_t *size,
                          poa_err *err)
{
    if (i < 0 || i >= s->num_images)
        return poa_err_set(err, POA_ERR_ARG, "%s: record %lld outside [0, %lld)", s->path,
                           (long long) i, (long long) s->num_images);
    size_t n = (size_t) (s->offsets[i + 1] - s->offsets[i]);
    if (*cap < n) {
        uint8_t *nb = realloc(*buf, n);
        if (!nb) return poa_err_set(err, POA_ERR_NOMEM, "cannot allocate %zu bytes", n);
        *buf = nb;
        *cap = n;
    }
    *size = n;
    poa_status st =
        pread_full(s->fd, *buf, n, s->data_offset + (int64_t) s->offsets[i], s->path, err);
    if (st != POA_OK || !s->crc) return st;
    uint32_t c = poa_crc32(0, *buf, n);
    if (c != s->crc[i])
        return poa_err_set(
            err, POA_ERR_CORRUPT,
            "%s: record %lld%s%s%s has CRC-32 %08x, expected %08x (corrupt data): its "
            "bytes changed after packing (run poa-pack --verify on the packed "
            "folder, then pack this shard again)",
            s->path, (long long) i, s->file_names.n ? " (" : "",
            s->file_names.n ? poa_strtab_get(&s->file_names, (size_t) i) : "",
            s->file_names.n ? ")" : "", c, s->crc[i]);
    return POA_OK;
}

poa_status poa_shard_check_crc(const poa_shard *s, poa_err *err)
{
    if (!s->crc) return poa_err_set(err, POA_ERR_ARG, "%s: opened without its CRC table", s->path);
    uint8_t *buf = NULL;
    size_t cap = 0, size = 0;
    uint32_t whole = 0;
    poa_status st = POA_OK;
    for (int64_t i = 0; i < s->num_images && st == POA_OK; i++) {
        st = poa_shard_read(s, i, &buf, &cap, &size, err); /* checks the record's CRC-32 */
        if (st == POA_OK) whole = poa_crc32(whole, buf, size);
    }
    if (st == POA_OK && whole != s->images_crc32)
        st = poa_err_set(err, POA_ERR_CORRUPT, "%s: /images CRC-32 %08x, expected %08x", s->path,
                         whole, s->images_crc32);
    free(buf);
    return st;
}
