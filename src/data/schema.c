/* schema.c — see schema.h; the formats are documented in hdf5-schemas/. */
#include "data/schema.h"
#include "data/h5data.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define A POA_SCHEMA_ATTR
#define D POA_SCHEMA_DATASET
#define G POA_SCHEMA_GROUP

static const poa_schema_item shard_items[] = {
    {A, "@format", POA_DT_STR, "", POA_SHARD_FORMAT, 0, "format name"},
    {A, "@format_version", POA_DT_I64, "", "1", 0, "format version"},
    {A, "@created_by", POA_DT_STR, "", "", 0, "program and version that wrote the file"},
    {A, "@split", POA_DT_STR, "", "", 0, "split name: train, val or test"},
    {A, "@shard_index", POA_DT_I64, "", "", 0, "index of this shard in its split, 0-based"},
    {A, "@shard_count", POA_DT_I64, "", "", 0, "number of shards of the split"},
    {A, "@num_images", POA_DT_I64, "", "", 0, "N: images packed in this shard"},
    {A, "@num_bytes", POA_DT_I64, "", "", 0, "total size of /images in bytes"},
    {A, "@num_skipped", POA_DT_I64, "", "", 0, "planned files that could not be packed"},
    {A, "@source_first", POA_DT_I64, "", "", 0,
     "source index (ImageFolder order) of the first file planned for this shard"},
    {A, "@source_count", POA_DT_I64, "", "", 0, "files planned for this shard (N + skipped)"},
    {A, "@plan_fingerprint", POA_DT_U64, "", "", 0,
     "FNV-1a 64 of the planned file names, sizes, mtimes and pack options (resume check)"},
    {A, "@images_crc32", POA_DT_I64, "", "", 0, "CRC-32 (zlib) of the whole /images array"},
    {A, "@reencode_max_side", POA_DT_I64, "", "", 0,
     "longest side of re-encoded images in pixels, 0 = originals kept"},
    {A, "@reencode_quality", POA_DT_I64, "", "", 0, "JPEG quality of re-encoded images"},
    {D, "/images", POA_DT_U8, "[num_bytes]", "", POA_SCHEMA_CONTIGUOUS,
     "encoded JPEG files, concatenated"},
    {D, "/offsets", POA_DT_U64, "[num_images+1]", "", 0,
     "image i is bytes offsets[i] .. offsets[i+1]-1 of /images; offsets[0] = 0"},
    {D, "/labels", POA_DT_I32, "[num_images]", "", 0,
     "class index (ImageFolder), -1 = none (test)"},
    {D, "/ids", POA_DT_U64, "[num_images]", "", 0,
     "global id: index of the file in its split in ImageFolder order (before skipping)"},
    {D, "/file_names", POA_DT_STR, "[num_images]", "", 0,
     "path relative to the split folder, e.g. n01440764/n01440764_10026.JPEG"},
    {D, "/image_size", POA_DT_U32, "[num_images,2]", "", 0,
     "height, width of the stored JPEG in pixels"},
    {D, "/crc32", POA_DT_U32, "[num_images]", "", 0, "CRC-32 (zlib) of each stored JPEG"},
    {D, "/skipped_file_names", POA_DT_STR, "[num_skipped]", "", 0,
     "planned files that were not packed (relative to the split folder)"},
    {D, "/skipped_reasons", POA_DT_STR, "[num_skipped]", "", 0, "why each of them was skipped"},
};

static const poa_schema_item metadata_items[] = {
    {A, "@format", POA_DT_STR, "", POA_METADATA_FORMAT, 0, "format name"},
    {A, "@format_version", POA_DT_I64, "", "1", 0, "format version"},
    {A, "@created_by", POA_DT_STR, "", "", 0, "program and version that wrote the file"},
    {A, "@source_root", POA_DT_STR, "", "", 0, "ROOT folder that was packed"},
    {A, "@splits", POA_DT_STR, "", "", 0, "comma-separated split names, e.g. train,val"},
    {G, "/{split}", POA_DT_NONE, "", "", 0, "one group per split"},
    {A, "/{split}@num_images", POA_DT_I64, "", "", 0, "n: images packed in the split"},
    {A, "/{split}@num_classes", POA_DT_I64, "", "", 0, "C: class folders (0 for test)"},
    {A, "/{split}@num_shards", POA_DT_I64, "", "", 0, "S: shard files of the split"},
    {A, "/{split}@num_skipped", POA_DT_I64, "", "", 0, "image files that could not be packed"},
    {A, "/{split}@num_source_files", POA_DT_I64, "", "", 0,
     "image files found (num_images + num_skipped)"},
    {D, "/{split}/class_ids", POA_DT_STR, "[num_classes]", "", 0,
     "class folder name (wnid) per class index = class-ids-<SPLIT>.npy"},
    {D, "/{split}/class_names", POA_DT_STR, "[num_classes]", "", 0,
     "class name from labels.txt per class index = class-names-<SPLIT>.npy"},
    {D, "/{split}/entries/actual_index", POA_DT_U32, "[num_images]", "", 0,
     "integer after the last '_' of the file stem (entries-<SPLIT>.npy actual_index)"},
    {D, "/{split}/entries/class_index", POA_DT_U32, "[num_images]", "", 0,
     "class index, 4294967295 for test (entries-<SPLIT>.npy class_index)"},
    {D, "/{split}/entries/id", POA_DT_U64, "[num_images]", "", 0,
     "index of the file in ImageFolder order (= shard /ids)"},
    {D, "/{split}/entries/file_name", POA_DT_STR, "[num_images]", "", 0,
     "path relative to the split folder"},
    {D, "/{split}/shards/file_name", POA_DT_STR, "[num_shards]", "", 0,
     "shard files in order; entry i is in the shard where the running count passes i"},
    {D, "/{split}/shards/num_images", POA_DT_U64, "[num_shards]", "", 0, "images per shard"},
    {D, "/{split}/skipped/file_name", POA_DT_STR, "[num_skipped]", "", 0,
     "image files that were not packed"},
    {D, "/{split}/skipped/reason", POA_DT_STR, "[num_skipped]", "", 0,
     "why each of them was skipped"},
};

#undef A
#undef D
#undef G

const poa_schema poa_shard_schema = {POA_SHARD_FORMAT, POA_SHARD_FORMAT_VERSION, shard_items,
                                     sizeof shard_items / sizeof shard_items[0]};
const poa_schema poa_metadata_schema = {POA_METADATA_FORMAT, POA_METADATA_FORMAT_VERSION,
                                        metadata_items,
                                        sizeof metadata_items / sizeof metadata_items[0]};

const char *poa_schema_dtype_name(poa_schema_dtype t)
{
    switch (t) {
    case POA_DT_U8:
        return "uint8";
    case POA_DT_U32:
        return "uint32";
    case POA_DT_U64:
        return "uint64";
    case POA_DT_I32:
        return "int32";
    case POA_DT_I64:
        return "int64";
    case POA_DT_STR:
        return "string";
    default:
        return "-";
    }
}

static const char *kind_name(poa_schema_kind k)
{
    return k == POA_SCHEMA_ATTR ? "attribute" : k == POA_SCHEMA_DATASET ? "dataset" : "group";
}

void poa_schema_print(FILE *out, const poa_schema *s)
{
    for (size_t i = 0; i < s->n_items; i++) {
        const poa_schema_item *it = &s->items[i];
        fprintf(out, "| %s | `%s` | %s | %s | %s | %s%s |\n", kind_name(it->kind), it->path,
                poa_schema_dtype_name(it->dtype),
                it->shape[0]                   ? it->shape
                : it->kind == POA_SCHEMA_GROUP ? "-"
                                               : "scalar",
                it->value[0] ? it->value : "", it->doc,
                it->flags & POA_SCHEMA_CONTIGUOUS ? "; layout contiguous, no filters" : "");
    }
}

/* ------------------------------------------------------------------ validation */

/* Whether the HDF5 type t matches dtype (attributes: any integer type is accepted for integers,
 * as h5py may write them with another width). */
static int type_matches(hid_t t, poa_schema_dtype dt, int is_attr)
{
    H5T_class_t c = H5Tget_class(t);
    if (dt == POA_DT_STR) return c == H5T_STRING;
    if (c != H5T_INTEGER) return 0;
    if (is_attr) return 1;
    size_t size = H5Tget_size(t);
    int is_signed = H5Tget_sign(t) == H5T_SGN_2;
    switch (dt) {
    case POA_DT_U8:
        return size == 1 && !is_signed;
    case POA_DT_U32:
        return size == 4 && !is_signed;
    case POA_DT_U64:
        return size == 8 && !is_signed;
    case POA_DT_I32:
        return size == 4 && is_signed;
    case POA_DT_I64:
        return size == 8 && is_signed;
    default:
        return 0;
    }
}

/* Split "/a/b@name" into object path "/a/b" (or "/") and attribute name. */
static void split_attr_path(const char *path, char *obj, size_t n, const char **attr)
{
    const char *at = strchr(path, '@');
    size_t len = (size_t) (at - path);
    if (len == 0)
        snprintf(obj, n, "/");
    else
        snprintf(obj, n, "%.*s", (int) len, path);
    *attr = at + 1;
}

/* Value of integer attribute `var` on the nearest group enclosing `path` (a dataset path). */
static poa_status lookup_var(hid_t file, const char *path, const char *var, int64_t *v,
                             poa_err *err)
{
    char grp[512];
    snprintf(grp, sizeof grp, "%s", path);
    for (;;) {
        char *slash = strrchr(grp, '/');
        if (!slash) break;
        if (slash == grp)
            slash[1] = '\0';
        else
            *slash = '\0';
        hid_t g = H5Oopen(file, grp, H5P_DEFAULT);
        if (g >= 0) {
            int has = H5Aexists(g, var) > 0;
            poa_status st = has ? poa_dh5_attr_get_i64(g, var, v, err) : POA_OK;
            H5Oclose(g);
            if (has) return st;
        }
        if (strcmp(grp, "/") == 0) break;
    }
    H5Eclear2(H5E_DEFAULT);
    return poa_err_set(err, POA_ERR_FORMAT, "shape of '%s' refers to attribute '%s', not found",
                       path, var);
}

/* Evaluate "[a, b+1, 2]" into dims; returns rank or -1 on a bad expression. */
static int eval_shape(hid_t file, const char *path, const char *shape, hsize_t *dims, poa_err *err,
                      poa_status *st)
{
    int rank = 0;
    const char *p = shape;
    *st = POA_OK;
    if (*p != '[') return 0;
    p++;
    while (*p && *p != ']' && rank < 4) {
        char tok[64];
        size_t k = 0;
        while (*p == ' ') p++;
        while (*p && *p != ',' && *p != ']' && k < sizeof tok - 1) tok[k++] = *p++;
        tok[k] = '\0';
        if (*p == ',') p++;
        int plus = 0;
        char *pl = strchr(tok, '+');
        if (pl) {
            plus = atoi(pl + 1);
            *pl = '\0';
        }
        int64_t v;
        if (isdigit((unsigned char) tok[0]))
            v = atoll(tok);
        else if ((*st = lookup_var(file, path, tok, &v, err)) != POA_OK)
            return -1;
        if (v < 0 || v > INT64_MAX - plus) {
            *st = poa_err_set(err, POA_ERR_FORMAT, "attribute '%s' is out of range (%lld)", tok,
                              (long long) v);
            return -1;
        }
        dims[rank++] = (hsize_t) (v + plus);
    }
    return rank;
}

static poa_status check_attr(hid_t file, const char *path, const poa_schema_item *it,
                             const char *fname, poa_err *err)
{
    char obj[512];
    const char *name;
    split_attr_path(path, obj, sizeof obj, &name);
    hid_t o = H5Oopen(file, obj, H5P_DEFAULT);
    if (o < 0) return poa_err_set(err, POA_ERR_FORMAT, "%s: group '%s' missing", fname, obj);
    poa_status st = POA_OK;
    if (H5Aexists(o, name) <= 0) {
        st = poa_err_set(err, POA_ERR_FORMAT, "%s: attribute '%s' missing on '%s'", fname, name,
                         obj);
    } else {
        hid_t a = H5Aopen(o, name, H5P_DEFAULT);
        hid_t t = H5Aget_type(a);
        hid_t sp = H5Aget_space(a);
        if (!type_matches(t, it->dtype, 1) || H5Sget_simple_extent_npoints(sp) != 1)
            st = poa_err_set(err, POA_ERR_FORMAT, "%s: attribute '%s' on '%s' is not a scalar %s",
                             fname, name, obj, poa_schema_dtype_name(it->dtype));
        H5Sclose(sp);
        H5Tclose(t);
        H5Aclose(a);
    }
    if (st == POA_OK && it->value[0]) {
        char got[256] = "";
        if (it->dtype == POA_DT_STR) {
            st = poa_dh5_attr_get_str(o, name, got, sizeof got, err);
        } else {
            int64_t v = 0;
            st = poa_dh5_attr_get_i64(o, name, &v, err);
            snprintf(got, sizeof got, "%lld", (long long) v);
        }
        if (st == POA_OK && strcmp(got, it->value) != 0)
            st = poa_err_set(err, POA_ERR_FORMAT, "%s: attribute '%s' is '%s', expected '%s'",
                             fname, name, got, it->value);
    }
    H5Oclose(o);
    return st;
}

static poa_status check_dataset(hid_t file, const char *path, const poa_schema_item *it,
                                const char *fname, poa_err *err)
{
    if (!poa_dh5_exists(file, path))
        return poa_err_set(err, POA_ERR_FORMAT, "%s: dataset '%s' missing", fname, path);
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d < 0) return poa_dh5_fail(err, POA_ERR_FORMAT, "%s: '%s' is not a dataset", fname, path);
    poa_status st = POA_OK;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d), dcpl = H5Dget_create_plist(d);
    hsize_t want[4], got[4];
    int want_rank = eval_shape(file, path, it->shape, want, err, &st);
    int rank = H5Sget_simple_extent_ndims(sp);
    if (st != POA_OK) {
        poa_err_prefix(err, "%s", fname);
    } else if (!type_matches(t, it->dtype, 0)) {
        st = poa_err_set(err, POA_ERR_FORMAT, "%s: dataset '%s' has the wrong type (expected %s)",
                         fname, path, poa_schema_dtype_name(it->dtype));
    } else if (rank != want_rank) {
        st = poa_err_set(err, POA_ERR_FORMAT, "%s: dataset '%s' has rank %d, expected %d (%s)",
                         fname, path, rank, want_rank, it->shape);
    } else {
        H5Sget_simple_extent_dims(sp, got, NULL);
        for (int i = 0; i < rank && st == POA_OK; i++)
            if (got[i] != want[i])
                st = poa_err_set(err, POA_ERR_FORMAT,
                                 "%s: dataset '%s' dimension %d is %llu, expected %llu (%s)", fname,
                                 path, i, (unsigned long long) got[i], (unsigned long long) want[i],
                                 it->shape);
    }
    if (st == POA_OK && (it->flags & POA_SCHEMA_CONTIGUOUS) &&
        (H5Pget_layout(dcpl) != H5D_CONTIGUOUS || H5Pget_nfilters(dcpl) != 0))
        st = poa_err_set(err, POA_ERR_FORMAT,
                         "%s: dataset '%s' must be contiguous and unfiltered (was the file "
                         "rewritten by h5repack?); pack the data again with poa-pack",
                         fname, path);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
    return st;
}

static poa_status check_item(hid_t file, const char *path, const poa_schema_item *it,
                             const char *fname, poa_err *err)
{
    switch (it->kind) {
    case POA_SCHEMA_ATTR:
        return check_attr(file, path, it, fname, err);
    case POA_SCHEMA_DATASET:
        return check_dataset(file, path, it, fname, err);
    case POA_SCHEMA_GROUP:
        if (!poa_dh5_exists(file, path))
            return poa_err_set(err, POA_ERR_FORMAT, "%s: group '%s' missing", fname, path);
        return POA_OK;
    }
    return POA_OK;
}

/* Replace "{split}" in pattern by split. */
static void expand(char *buf, size_t n, const char *pattern, const char *split)
{
    const char *p = strstr(pattern, "{split}");
    if (!p)
        snprintf(buf, n, "%s", pattern);
    else
        snprintf(buf, n, "%.*s%s%s", (int) (p - pattern), pattern, split, p + 7);
}

static poa_status check_format(hid_t file, const poa_schema *s, const char *path, poa_err *err)
{
    char fmt[128] = "";
    int64_t ver = -1;
    if (poa_dh5_attr_get_str(file, "format", fmt, sizeof fmt, NULL) != POA_OK ||
        strcmp(fmt, s->format) != 0)
        return poa_err_set(err, POA_ERR_VERSION,
                           "%s: not a %s file (attribute format = '%s'); pack the data with "
                           "poa-pack",
                           path, s->format, fmt);
    if (poa_dh5_attr_get_i64(file, "format_version", &ver, NULL) != POA_OK || ver != s->version)
        return poa_err_set(err, POA_ERR_VERSION,
                           "%s: %s version %lld, this poa reads version %ld; pack the data again "
                           "with this poa-pack",
                           path, s->format, (long long) ver, s->version);
    return POA_OK;
}

poa_status poa_schema_validate(hid_t file, const poa_schema *s, const char *path, poa_err *err)
{
    poa_dh5_lock();
    H5E_auto2_t func;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &func, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    poa_status st = check_format(file, s, path, err);
    char splits[256] = "";
    int has_splits = 0;
    for (size_t i = 0; i < s->n_items && st == POA_OK; i++)
        if (strstr(s->items[i].path, "{split}")) has_splits = 1;
    if (st == POA_OK && has_splits)
        st = poa_dh5_attr_get_str(file, "splits", splits, sizeof splits, err);
    for (size_t i = 0; i < s->n_items && st == POA_OK; i++) {
        const poa_schema_item *it = &s->items[i];
        if (!strstr(it->path, "{split}")) {
            st = check_item(file, it->path, it, path, err);
            continue;
        }
        char list[256];
        snprintf(list, sizeof list, "%s", splits);
        char *save = NULL;
        for (char *sp = strtok_r(list, ",", &save); sp && st == POA_OK;
             sp = strtok_r(NULL, ",", &save)) {
            char full[512];
            expand(full, sizeof full, it->path, sp);
            st = check_item(file, full, it, path, err);
        }
    }
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, func, data);
    poa_dh5_unlock();
    return st;
}
