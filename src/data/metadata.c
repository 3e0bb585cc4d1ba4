/* metadata.c — see metadata.h. */
#include "data/metadata.h"
#include "data/h5data.h"
#include "data/schema.h"

#include "common/atomic_io.h"
#include "common/h5check.h"

#include "poa_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void split_init(poa_meta_split *s, const char *name)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    poa_strtab_init(&s->class_ids);
    poa_strtab_init(&s->class_names);
    poa_strtab_init(&s->file_names);
    poa_strtab_init(&s->shard_files);
    poa_strtab_init(&s->skipped_names);
    poa_strtab_init(&s->skipped_reasons);
}

static void split_free(poa_meta_split *s)
{
    poa_strtab_free(&s->class_ids);
    poa_strtab_free(&s->class_names);
    poa_strtab_free(&s->file_names);
    poa_strtab_free(&s->shard_files);
    poa_strtab_free(&s->skipped_names);
    poa_strtab_free(&s->skipped_reasons);
    free(s->actual_index);
    free(s->class_index);
    free(s->ids);
    free(s->shard_num_images);
}

void poa_metadata_init(poa_metadata *m)
{
    memset(m, 0, sizeof *m);
}

void poa_metadata_free(poa_metadata *m)
{
    for (int i = 0; i < m->n_splits; i++) split_free(&m->splits[i]);
    memset(m, 0, sizeof *m);
}

poa_meta_split *poa_metadata_add_split(poa_metadata *m, const char *name)
{
    POA_ASSERT(m->n_splits < POA_MAX_SPLITS);
    poa_meta_split *s = &m->splits[m->n_splits++];
    split_init(s, name);
    return s;
}

const poa_meta_split *poa_metadata_find(const poa_metadata *m, const char *name)
{
    for (int i = 0; i < m->n_splits; i++)
        if (strcmp(m->splits[i].name, name) == 0) return &m->splits[i];
    return NULL;
}

/* ------------------------------------------------------------------ write */
static poa_status write_split(hid_t f, const poa_meta_split *s, poa_err *err)
{
    poa_dh5_lock();
    hid_t g = H5Gcreate2(f, s->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    poa_dh5_unlock();
    if (g < 0) return poa_dh5_fail(err, POA_ERR_IO, "cannot create group '%s'", s->name);
    poa_status st = POA_OK;
    int64_t n = s->num_images;
#define PUT_I(name, v)                                                                             \
    if (st == POA_OK) st = poa_dh5_attr_put_i64(g, name, (int64_t) (v), err)
    PUT_I("num_images", n);
    PUT_I("num_classes", s->class_ids.n);
    PUT_I("num_shards", s->shard_files.n);
    PUT_I("num_skipped", s->skipped_names.n);
    PUT_I("num_source_files", s->num_source_files);
#undef PUT_I
    hsize_t dn[1] = {(hsize_t) n}, ds[1] = {s->shard_files.n};
    if (st == POA_OK) st = poa_dh5_write_strtab(g, "class_ids", &s->class_ids, err);
    if (st == POA_OK) st = poa_dh5_write_strtab(g, "class_names", &s->class_names, err);
    if (st == POA_OK)
        st = poa_dh5_write(g, "entries/actual_index", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, dn,
                           s->actual_index, err);
    if (st == POA_OK)
        st = poa_dh5_write(g, "entries/class_index", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, dn,
                           s->class_index, err);
    if (st == POA_OK)
        st = poa_dh5_write(g, "entries/id", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, dn, s->ids, err);
    if (st == POA_OK) st = poa_dh5_write_strtab(g, "entries/file_name", &s->file_names, err);
    if (st == POA_OK) st = poa_dh5_write_strtab(g, "shards/file_name", &s->shard_files, err);
    if (st == POA_OK)
        st = poa_dh5_write(g, "shards/num_images", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, ds,
                           s->shard_num_images, err);
    if (st == POA_OK) st = poa_dh5_write_strtab(g, "skipped/file_name", &s->skipped_names, err);
    if (st == POA_OK) st = poa_dh5_write_strtab(g, "skipped/reason", &s->skipped_reasons, err);
    poa_dh5_close(g);
    return st;
}

/* An upper bound of the file's size (reserved before HDF5 writes, common/h5check.h): every
 * table at the width of its longest string, and 1 MiB for HDF5's own structures. */
static uint64_t size_bound(const poa_metadata *m)
{
    uint64_t b = (uint64_t) 1 << 20;
    for (int i = 0; i < m->n_splits; i++) {
        const poa_meta_split *s = &m->splits[i];
        b += (uint64_t) s->num_images * (16 + poa_strtab_max_len(&s->file_names) + 1);
        b += (uint64_t) s->class_ids.n *
             (poa_strtab_max_len(&s->class_ids) + poa_strtab_max_len(&s->class_names) + 2);
        b += (uint64_t) s->shard_files.n * (8 + poa_strtab_max_len(&s->shard_files) + 1);
        b += (uint64_t) s->skipped_names.n *
             (poa_strtab_max_len(&s->skipped_names) + poa_strtab_max_len(&s->skipped_reasons) + 2);
    }
    return b;
}

poa_status poa_metadata_write(const char *path, const poa_metadata *m, poa_err *err)
{
    char tmp[POA_IO_PATH_MAX + 64], splits[256] = "";
    poa_status st = poa_io_temp_path(path, tmp, sizeof tmp, err);
    if (st != POA_OK) return st;
    for (int i = 0; i < m->n_splits; i++) {
        POA_ASSERT((size_t) m->splits[i].num_images == m->splits[i].file_names.n);
        strncat(splits, i ? "," : "", sizeof splits - strlen(splits) - 1);
        strncat(splits, m->splits[i].name, sizeof splits - strlen(splits) - 1);
    }
    hid_t f = poa_dh5_create(tmp, err);
    if (f < 0) return err ? err->code : POA_ERR_IO;
    st = poa_hdf5_reserve(tmp, size_bound(m), err);
    if (st == POA_OK) st = poa_dh5_attr_put_str(f, "format", POA_METADATA_FORMAT, err);
    if (st == POA_OK)
        st = poa_dh5_attr_put_i64(f, "format_version", POA_METADATA_FORMAT_VERSION, err);
    if (st == POA_OK) st = poa_dh5_attr_put_str(f, "created_by", "poa-pack " PACKAGE_VERSION, err);
    if (st == POA_OK) st = poa_dh5_attr_put_str(f, "source_root", m->source_root, err);
    if (st == POA_OK) st = poa_dh5_attr_put_str(f, "splits", splits, err);
    for (int i = 0; i < m->n_splits && st == POA_OK; i++) st = write_split(f, &m->splits[i], err);
    st = poa_dh5_finish(f, st, tmp, err);
    if (st == POA_OK) poa_hdf5_release_reserve(tmp);
    /* poa_io_commit deletes tmp and names path on failure. */
    if (st == POA_OK) return poa_io_commit(tmp, path, err);
    unlink(tmp);
    poa_err_prefix(err, "writing %s", path);
    return st;
}

/* ------------------------------------------------------------------ read */
/* Every entry's class index names a class of its split (test: none, 4294967295). */
static poa_status check_classes(const poa_meta_split *s, poa_err *err)
{
    int labeled = strcmp(s->name, "test") != 0;
    for (int64_t i = 0; i < s->num_images; i++) {
        uint32_t ci = s->class_index[i];
        if (labeled ? ci >= s->class_ids.n : ci != UINT32_MAX)
            return poa_err_set(err, POA_ERR_FORMAT,
                               "split '%s': entry %lld has class index %u (%s)", s->name,
                               (long long) i, ci,
                               labeled ? "past its class list" : "the test split has no classes");
    }
    return POA_OK;
}

static poa_status read_split(hid_t f, poa_meta_split *s, unsigned flags, poa_err *err)
{
    poa_dh5_lock();
    hid_t g = H5Gopen2(f, s->name, H5P_DEFAULT);
    poa_dh5_unlock();
    if (g < 0) return poa_dh5_fail(err, POA_ERR_FORMAT, "group '%s' missing", s->name);
    hsize_t dims[4];
    poa_status st = poa_dh5_attr_get_i64(g, "num_images", &s->num_images, err);
    if (st == POA_OK) st = poa_dh5_attr_get_i64(g, "num_source_files", &s->num_source_files, err);
    if (st == POA_OK) st = poa_dh5_read_strtab(g, "class_ids", &s->class_ids, err);
    if (st == POA_OK) st = poa_dh5_read_strtab(g, "class_names", &s->class_names, err);
    if (st == POA_OK) st = poa_dh5_read_strtab(g, "shards/file_name", &s->shard_files, err);
    if (st == POA_OK)
        st = poa_dh5_read_alloc(g, "shards/num_images", H5T_NATIVE_UINT64, 8, 1, dims,
                                (void **) &s->shard_num_images, err);
    if (st == POA_OK && (flags & POA_META_LOAD_ENTRIES)) {
        st = poa_dh5_read_alloc(g, "entries/actual_index", H5T_NATIVE_UINT32, 4, 1, dims,
                                (void **) &s->actual_index, err);
        if (st == POA_OK)
            st = poa_dh5_read_alloc(g, "entries/class_index", H5T_NATIVE_UINT32, 4, 1, dims,
                                    (void **) &s->class_index, err);
        if (st == POA_OK)
            st = poa_dh5_read_alloc(g, "entries/id", H5T_NATIVE_UINT64, 8, 1, dims,
                                    (void **) &s->ids, err);
        if (st == POA_OK) st = poa_dh5_read_strtab(g, "entries/file_name", &s->file_names, err);
        if (st == POA_OK) st = poa_dh5_read_strtab(g, "skipped/file_name", &s->skipped_names, err);
        if (st == POA_OK) st = poa_dh5_read_strtab(g, "skipped/reason", &s->skipped_reasons, err);
    }
    if (st == POA_OK && (flags & POA_META_LOAD_ENTRIES)) st = check_classes(s, err);
    if (st == POA_OK) {
        uint64_t total = 0;
        for (size_t i = 0; i < s->shard_files.n && total <= (uint64_t) INT64_MAX; i++)
            total += s->shard_num_images[i] < (uint64_t) INT64_MAX ? s->shard_num_images[i]
                                                                   : (uint64_t) INT64_MAX;
        if (total != (uint64_t) s->num_images)
            st = poa_err_set(err, POA_ERR_FORMAT,
                             "split '%s': shards hold %llu images, num_images = %lld", s->name,
                             (unsigned long long) total, (long long) s->num_images);
    }
    poa_dh5_close(g);
    return st;
}

poa_status poa_metadata_read(const char *path, poa_metadata *m, unsigned flags, poa_err *err)
{
    poa_metadata_init(m);
    hid_t f = poa_dh5_open_ro(path, err);
    if (f < 0) return err ? err->code : POA_ERR_IO;
    poa_status st = poa_schema_validate(f, &poa_metadata_schema, path, err);
    char splits[256] = "";
    if (st == POA_OK)
        st = poa_dh5_attr_get_str(f, "source_root", m->source_root, sizeof m->source_root, err);
    if (st == POA_OK) st = poa_dh5_attr_get_str(f, "splits", splits, sizeof splits, err);
    char *save = NULL;
    for (char *sp = st == POA_OK ? strtok_r(splits, ",", &save) : NULL; sp && st == POA_OK;
         sp = strtok_r(NULL, ",", &save)) {
        if (m->n_splits == POA_MAX_SPLITS) {
            st = poa_err_set(err, POA_ERR_FORMAT, "too many splits");
            break;
        }
        st = read_split(f, poa_metadata_add_split(m, sp), flags, err);
    }
    poa_dh5_close(f);
    if (st != POA_OK) {
        if (err && strncmp(err->msg, path, strlen(path)) != 0) poa_err_prefix(err, "%s", path);
        poa_metadata_free(m);
    }
    return st;
}
