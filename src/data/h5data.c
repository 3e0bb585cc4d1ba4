/* h5data.c — see h5data.h. */
#include "poa_config.h"

#include "data/h5data.h"

#include "common/h5check.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ locking */
#ifndef POA_HDF5_THREADSAFE
static pthread_mutex_t dh5_mutex;
static pthread_once_t dh5_once = PTHREAD_ONCE_INIT;
static void dh5_mutex_init(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&dh5_mutex, &a);
    pthread_mutexattr_destroy(&a);
}
#endif

void poa_dh5_lock(void)
{
#ifndef POA_HDF5_THREADSAFE
    pthread_once(&dh5_once, dh5_mutex_init);
    pthread_mutex_lock(&dh5_mutex);
#endif
}

void poa_dh5_unlock(void)
{
#ifndef POA_HDF5_THREADSAFE
    pthread_mutex_unlock(&dh5_mutex);
#endif
}

/* Entering a helper: take the lock and silence HDF5's automatic error printing (restored on
 * leave).  The error stack stays available for poa_dh5_fail. */
typedef struct dh5_scope {
    H5E_auto2_t func;
    void *data;
} dh5_scope;

static void scope_enter(dh5_scope *s)
{
    poa_dh5_lock();
    H5Eget_auto2(H5E_DEFAULT, &s->func, &s->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void scope_leave(const dh5_scope *s)
{
    H5Eset_auto2(H5E_DEFAULT, s->func, s->data);
    poa_dh5_unlock();
}

static herr_t innermost_cb(unsigned n, const H5E_error2_t *e, void *client)
{
    if (n == 0 && e->desc) poa_hdf5_tidy_message(e->desc, (char *) client, 256);
    return 0;
}

poa_status poa_dh5_fail(poa_err *err, poa_status code, const char *fmt, ...)
{
    char what[768], h5msg[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_cb, h5msg);
    H5Eclear2(H5E_DEFAULT);
    if (h5msg[0]) return poa_err_set(err, code, "%s: %s", what, h5msg);
    return poa_err_set(err, code, "%s", what);
}

/* ------------------------------------------------------------------ size limits */
/* Bytes of the file that holds loc (0 when unknown). */
static uint64_t file_bytes(hid_t loc)
{
    hid_t f = H5Iget_file_id(loc);
    hsize_t n = 0;
    if (f >= 0) {
        if (H5Fget_filesize(f, &n) < 0) n = 0;
        H5Fclose(f);
    }
    return n;
}

/* Unfiltered data cannot be larger than the file; filtered (compressed: an h5repack'ed copy)
 * by at most deflate's ratio (~1032:1). */
#define MAX_FILTER_RATIO 1100

/* A table of count elements of elem bytes claimed by the header of `name`: refuse it when the
 * file cannot hold it, before anything is allocated. */
static poa_status check_claim(hid_t loc, hid_t dset, const char *name, uint64_t count, size_t elem,
                              poa_err *err)
{
    uint64_t limit = file_bytes(loc), ratio = 1;
    hid_t dcpl = dset >= 0 ? H5Dget_create_plist(dset) : -1;
    if (dcpl >= 0) {
        if (H5Pget_nfilters(dcpl) > 0) ratio = MAX_FILTER_RATIO;
        H5Pclose(dcpl);
    }
    if (limit == 0 || elem == 0) return POA_OK;
    if (count > UINT64_MAX / elem / ratio || count * elem > limit * ratio)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "'%s' claims %llu elements of %zu bytes, more than the %llu-byte file "
                           "holds (corrupt header)",
                           name, (unsigned long long) count, elem, (unsigned long long) limit);
    return POA_OK;
}

/* Elements of a dataspace, with overflow checked (UINT64_MAX when it overflows). */
static uint64_t extent_count(int rank, const hsize_t *dims)
{
    uint64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] && n > UINT64_MAX / dims[i]) return UINT64_MAX;
        n *= dims[i];
    }
    return n;
}

/* ------------------------------------------------------------------ files */
hid_t poa_dh5_create(const char *path, poa_err *err)
{
    dh5_scope s;
    scope_enter(&s);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) poa_dh5_fail(err, POA_ERR_IO, "%s: cannot create HDF5 file", path);
    scope_leave(&s);
    return f;
}

hid_t poa_dh5_open_ro(const char *path, poa_err *err)
{
    if (poa_hdf5_precheck(path, err) != POA_OK) return H5I_INVALID_HID;
    dh5_scope s;
    scope_enter(&s);
    hid_t f = H5I_INVALID_HID;
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0)
        poa_dh5_fail(err, is < 0 ? POA_ERR_NOTFOUND : POA_ERR_FORMAT, "%s: %s", path,
                     is < 0 ? "cannot open (missing or unreadable)"
                            : "not an HDF5 file (truncated or overwritten?)");
    else {
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) poa_dh5_fail(err, POA_ERR_FORMAT, "%s: cannot open HDF5 file", path);
    }
    scope_leave(&s);
    return f;
}

poa_status poa_dh5_finish(hid_t f, poa_status st, const char *path, poa_err *err)
{
    dh5_scope s;
    scope_enter(&s);
    if (st == POA_OK && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0)
        st = poa_dh5_fail(err, POA_ERR_IO, "%s: cannot write (flush)", path);
    if (st != POA_OK)
        poa_hdf5_close_discarding(f);
    else if (H5Fclose(f) < 0)
        st = poa_dh5_fail(err, POA_ERR_IO, "%s: cannot close", path);
    scope_leave(&s);
    return st;
}

void poa_dh5_close(hid_t id)
{
    if (id < 0) return;
    dh5_scope s;
    scope_enter(&s);
    switch (H5Iget_type(id)) {
    case H5I_FILE:
        H5Fclose(id);
        break;
    case H5I_GROUP:
        H5Gclose(id);
        break;
    case H5I_DATASET:
        H5Dclose(id);
        break;
    case H5I_ATTR:
        H5Aclose(id);
        break;
    case H5I_DATATYPE:
        H5Tclose(id);
        break;
    case H5I_DATASPACE:
        H5Sclose(id);
        break;
    default:
        break;
    }
    scope_leave(&s);
}

int poa_dh5_exists(hid_t loc, const char *path)
{
    dh5_scope s;
    scope_enter(&s);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    int ok = 1;
    for (char *p = buf + (buf[0] == '/'); ok; p++) {
        p = strchr(p, '/');
        if (p) *p = '\0';
        if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) ok = 0;
        if (!p) break;
        *p = '/';
    }
    H5Eclear2(H5E_DEFAULT);
    scope_leave(&s);
    return ok;
}

/* ------------------------------------------------------------------ attributes */
static poa_status attr_put(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v,
                           poa_err *err)
{
    dh5_scope s;
    scope_enter(&s);
    poa_status st = POA_OK;
    hid_t sp = H5Screate(H5S_SCALAR);
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mtype, v) < 0)
        st = poa_dh5_fail(err, POA_ERR_IO, "cannot write attribute '%s'", name);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    scope_leave(&s);
    return st;
}

poa_status poa_dh5_attr_put_str(hid_t obj, const char *name, const char *value, poa_err *err)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    poa_status st = attr_put(obj, name, t, t, &value, err);
    H5Tclose(t);
    return st;
}

poa_status poa_dh5_attr_put_i64(hid_t obj, const char *name, int64_t value, poa_err *err)
{
    return attr_put(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, err);
}

poa_status poa_dh5_attr_put_u64(hid_t obj, const char *name, uint64_t value, poa_err *err)
{
    return attr_put(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value, err);
}

static poa_status attr_open(hid_t obj, const char *name, hid_t *a, poa_err *err)
{
    *a = H5I_INVALID_HID;
    if (H5Aexists(obj, name) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return poa_err_set(err, POA_ERR_NOTFOUND, "attribute '%s' missing", name);
    }
    *a = H5Aopen(obj, name, H5P_DEFAULT);
    if (*a < 0) return poa_dh5_fail(err, POA_ERR_FORMAT, "cannot open attribute '%s'", name);
    return POA_OK;
}

poa_status poa_dh5_attr_get_str(hid_t obj, const char *name, char *buf, size_t n, poa_err *err)
{
    dh5_scope s;
    scope_enter(&s);
    poa_status st = POA_OK;
    buf[0] = '\0';
    hid_t a;
    st = attr_open(obj, name, &a, err);
    if (st != POA_OK) {
        scope_leave(&s);
        return st;
    }
    hid_t ft = H5Aget_type(a), sp1 = H5Aget_space(a);
    hssize_t count = sp1 >= 0 ? H5Sget_simple_extent_npoints(sp1) : -1;
    if (sp1 >= 0) H5Sclose(sp1);
    if (H5Tget_class(ft) != H5T_STRING || count != 1) { /* room for one string is read into */
        st = poa_err_set(err, POA_ERR_FORMAT, "attribute '%s' is not a single string", name);
    } else if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char *v = NULL;
        if (H5Aread(a, mt, &v) < 0)
            st = poa_dh5_fail(err, POA_ERR_FORMAT, "cannot read attribute '%s'", name);
        else {
            snprintf(buf, n, "%s", v ? v : "");
            hid_t sp = H5Aget_space(a);
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, &v);
            H5Sclose(sp);
        }
        H5Tclose(mt);
    } else if ((st = check_claim(obj, -1, name, H5Tget_size(ft), 1, err)) == POA_OK) {
        size_t sz = H5Tget_size(ft);
        char *tmp = poa_xcalloc(1, sz + 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        if (H5Aread(a, mt, tmp) < 0)
            st = poa_dh5_fail(err, POA_ERR_FORMAT, "cannot read attribute '%s'", name);
        else
            snprintf(buf, n, "%s", tmp);
        H5Tclose(mt);
        free(tmp);
    }
    H5Tclose(ft);
    H5Aclose(a);
    scope_leave(&s);
    return st;
}

static poa_status attr_get_int(hid_t obj, const char *name, hid_t mtype, void *v, poa_err *err)
{
    dh5_scope s;
    scope_enter(&s);
    poa_status st = POA_OK;
    hid_t a;
    st = attr_open(obj, name, &a, err);
    if (st != POA_OK) {
        scope_leave(&s);
        return st;
    }
    hid_t ft = H5Aget_type(a);
    hid_t sp = H5Aget_space(a);
    if (H5Tget_class(ft) != H5T_INTEGER || H5Sget_simple_extent_npoints(sp) != 1)
        st = poa_err_set(err, POA_ERR_FORMAT, "attribute '%s' is not a scalar integer", name);
    else if (H5Aread(a, mtype, v) < 0)
        st = poa_dh5_fail(err, POA_ERR_FORMAT, "cannot read attribute '%s'", name);
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
    scope_leave(&s);
    return st;
}

poa_status poa_dh5_attr_get_i64(hid_t obj, const char *name, int64_t *value, poa_err *err)
{
    return attr_get_int(obj, name, H5T_NATIVE_INT64, value, err);
}

poa_status poa_dh5_attr_get_u64(hid_t obj, const char *name, uint64_t *value, poa_err *err)
{
    return attr_get_int(obj, name, H5T_NATIVE_UINT64, value, err);
}

/* ------------------------------------------------------------------ datasets */
static poa_status write_ds(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                           const hsize_t *dims, const void *data, poa_err *err)
{
    poa_status st = POA_OK;
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_layout(dcpl, H5D_CONTIGUOUS);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    hid_t d = H5Dcreate2(loc, name, ftype, sp, lcpl, dcpl, H5P_DEFAULT);
    hssize_t npts = H5Sget_simple_extent_npoints(sp);
    if (d < 0)
        st = poa_dh5_fail(err, POA_ERR_IO, "cannot create dataset '%s'", name);
    else if (npts > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        st = poa_dh5_fail(err, POA_ERR_IO, "cannot write dataset '%s'", name);
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(sp);
    return st;
}

poa_status poa_dh5_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank,
                         const hsize_t *dims, const void *data, poa_err *err)
{
    dh5_scope s;
    scope_enter(&s);
    poa_status st = write_ds(loc, name, file_type, mem_type, rank, dims, data, err);
    scope_leave(&s);
    return st;
}

poa_status poa_dh5_write_strtab(hid_t loc, const char *name, const poa_strtab *t, poa_err *err)
{
    size_t width = poa_strtab_max_len(t);
    if (width == 0) width = 1;
    char *block = poa_xcalloc(t->n ? t->n : 1, width);
    for (size_t i = 0; i < t->n; i++) {
        const char *v = poa_strtab_get(t, i);
        memcpy(block + i * width, v, strlen(v));
    }
    dh5_scope s;
    scope_enter(&s);
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, width);
    H5Tset_strpad(ty, H5T_STR_NULLPAD);
    H5Tset_cset(ty, H5T_CSET_UTF8);
    hsize_t dims[1] = {t->n};
    poa_status st = write_ds(loc, name, ty, ty, 1, dims, block, err);
    H5Tclose(ty);
    scope_leave(&s);
    free(block);
    return st;
}

poa_status poa_dh5_read_alloc(hid_t loc, const char *name, hid_t mem_type, size_t elem,
                              int want_rank, hsize_t *dims, void **data, poa_err *err)
{
    dh5_scope s;
    scope_enter(&s);
    poa_status st = POA_OK;
    *data = NULL;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) {
        st = poa_dh5_fail(err, POA_ERR_NOTFOUND, "dataset '%s' missing", name);
        scope_leave(&s);
        return st;
    }
    hid_t sp = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t d4[4] = {0, 0, 0, 0};
    if (rank != want_rank || rank > 4) {
        st = poa_err_set(err, POA_ERR_FORMAT, "dataset '%s' has rank %d, expected %d", name, rank,
                         want_rank);
    } else {
        H5Sget_simple_extent_dims(sp, d4, NULL);
        uint64_t count = extent_count(rank, d4);
        hid_t ft = H5Dget_type(d);
        size_t fsize = H5Tget_size(ft);
        H5Tclose(ft);
        st = check_claim(loc, d, name, count, fsize > elem ? fsize : elem, err);
        size_t n = (size_t) count;
        void *buf = st == POA_OK ? malloc(n > 0 ? n * elem : 1) : NULL;
        if (st != POA_OK) {
            /* refused above */
        } else if (!buf)
            st = poa_err_set(err, POA_ERR_NOMEM, "dataset '%s': cannot allocate %zu bytes", name,
                             n * elem);
        else if (n > 0 && H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            st = poa_dh5_fail(err, POA_ERR_FORMAT, "cannot read dataset '%s'", name);
            free(buf);
        } else {
            *data = buf;
            for (int i = 0; i < rank; i++) dims[i] = d4[i];
        }
    }
    H5Sclose(sp);
    H5Dclose(d);
    scope_leave(&s);
    return st;
}

poa_status poa_dh5_read_strtab(hid_t loc, const char *name, poa_strtab *t, poa_err *err)
{
    dh5_scope s;
    scope_enter(&s);
    poa_status st = POA_OK;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) {
        st = poa_dh5_fail(err, POA_ERR_NOTFOUND, "dataset '%s' missing", name);
        scope_leave(&s);
        return st;
    }
    hid_t ft = H5Dget_type(d);
    hid_t sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    size_t width = H5Tget_size(ft);
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_ndims(sp) != 1) {
        st = poa_err_set(err, POA_ERR_FORMAT, "dataset '%s' is not a 1-D string array", name);
    } else if ((st = check_claim(loc, d, name, (uint64_t) (n > 0 ? n : 0), width > 8 ? width : 8,
                                 err)) != POA_OK) {
        /* a header that claims more strings than the file holds */
    } else if (n > 0 && H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char **v = poa_xcalloc((size_t) n, sizeof *v);
        if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
            st = poa_dh5_fail(err, POA_ERR_FORMAT, "cannot read dataset '%s'", name);
        else {
            for (hssize_t i = 0; i < n; i++) poa_strtab_push(t, v[i] ? v[i] : "");
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
        }
        free(v);
        H5Tclose(mt);
    } else if (n > 0) {
        size_t w = H5Tget_size(ft);
        char *block = malloc((size_t) n * w);
        hid_t mt = H5Tcopy(ft);
        if (!block)
            st = poa_err_set(err, POA_ERR_NOMEM, "dataset '%s': out of memory", name);
        else if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, block) < 0)
            st = poa_dh5_fail(err, POA_ERR_FORMAT, "cannot read dataset '%s'", name);
        else {
            int spacepad = H5Tget_strpad(ft) == H5T_STR_SPACEPAD;
            for (hssize_t i = 0; i < n; i++) {
                const char *p = block + (size_t) i * w;
                size_t len = strnlen(p, w);
                while (spacepad && len > 0 && p[len - 1] == ' ') len--;
                poa_strtab_push_n(t, p, len);
            }
        }
        H5Tclose(mt);
        free(block);
    }
    H5Sclose(sp);
    H5Tclose(ft);
    H5Dclose(d);
    scope_leave(&s);
    return st;
}
