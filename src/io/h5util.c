/* h5util.c — see h5util.h. */
#include "io/h5util.h"
#include "common/atomic_io.h"
#include "common/h5check.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

/* Float32 tensors are chunked along their first dimension so that no chunk exceeds this size:
 * the Fletcher-32 filter needs a chunk-sized staging buffer on read and write. */
#define H5U_MAX_CHUNK_BYTES ((size_t) 16 << 20)

void poa_h5_quiet_begin(poa_h5_quiet *saved)
{
    H5Eget_auto2(H5E_DEFAULT, &saved->func, &saved->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void poa_h5_quiet_end(const poa_h5_quiet *saved)
{
    H5Eset_auto2(H5E_DEFAULT, saved->func, saved->data);
}

typedef struct innermost {
    char *buf;
    size_t n;
} innermost;

/* H5E_WALK_UPWARD visits the most specific error first (n == 0). */
static herr_t take_innermost(unsigned n, const H5E_error2_t *e, void *ctx)
{
    innermost *out = ctx;
    if (n != 0) return 0;
    char minor[128] = "", desc[384];
    H5Eget_msg(e->min_num, NULL, minor, sizeof minor);
    poa_hdf5_tidy_message(e->desc ? e->desc : "", desc, sizeof desc);
    snprintf(out->buf, out->n, "%s%s%s%s", desc, minor[0] ? " (" : "", minor, minor[0] ? ")" : "");
    return 0;
}

void poa_h5_last_error(char *buf, size_t n)
{
    innermost out = {buf, n};
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, &out);
}

poa_status poa_h5_fail(poa_err *err, poa_status code, const char *what)
{
    char h5msg[512];
    poa_h5_last_error(h5msg, sizeof h5msg);
    H5Eclear2(H5E_DEFAULT);
    if (h5msg[0]) return poa_err_set(err, code, "%s: %s", what, h5msg);
    return poa_err_set(err, code, "%s", what);
}

hid_t poa_h5_open_read(const char *path, poa_err *err)
{
    if (poa_hdf5_precheck(path, err) != POA_OK) return H5I_INVALID_HID;
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    hid_t fapl = poa_h5_fapl();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    poa_h5_quiet_end(&q);
    if (f < 0) {
        char what[4200];
        snprintf(what, sizeof what, "cannot open %s (truncated or not an HDF5 file)", path);
        poa_h5_fail(err, POA_ERR_FORMAT, what);
    }
    return f;
}

uint64_t poa_h5_file_bytes(hid_t loc)
{
    hid_t f = H5Iget_file_id(loc);
    hsize_t n = 0;
    if (f >= 0) {
        if (H5Fget_filesize(f, &n) < 0) n = 0;
        H5Fclose(f);
    }
    return n;
}

poa_status poa_h5_check_claim(hid_t loc, const char *what, uint64_t count, size_t elem,
                              poa_err *err)
{
    uint64_t limit = poa_h5_file_bytes(loc);
    if (limit == 0 || elem == 0) return POA_OK;
    if (count > UINT64_MAX / elem || count * elem > limit)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s claims %llu elements of %zu bytes, more than the %llu-byte file "
                           "holds (corrupt header)",
                           what, (unsigned long long) count, elem, (unsigned long long) limit);
    return POA_OK;
}

/* H5Pset_file_locking appeared in 1.10.7 and 1.12.1. */
#if (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7) || H5_VERSION_GE(1, 12, 1)
#define H5U_HAVE_FILE_LOCKING_PROP 1
#endif

hid_t poa_h5_fapl(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#ifdef H5U_HAVE_FILE_LOCKING_PROP
    if (fapl >= 0) H5Pset_file_locking(fapl, 1, 1);
#endif
    return fapl;
}

int poa_h5_exists(hid_t loc, const char *name)
{
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    htri_t r = H5Lexists(loc, name, H5P_DEFAULT);
    if (r > 0) r = H5Oexists_by_name(loc, name, H5P_DEFAULT);
    H5Eclear2(H5E_DEFAULT);
    poa_h5_quiet_end(&q);
    return r > 0;
}

hid_t poa_h5_create_group(hid_t loc, const char *name)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0) return -1;
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    return g;
}

/* ------------------------------------------------------------------ writing a file */

uint64_t poa_h5_size_bound(uint64_t data_bytes, uint64_t n_datasets, uint64_t text_bytes)
{
    const uint64_t per_dataset = 8192;
    return data_bytes + n_datasets * per_dataset + text_bytes + ((uint64_t) 1 << 20);
}

/* Close the objects of file f (not f itself) that are still open; returns how many, their
 * names in names[0..n) (comma-separated, cut short when long). */
static int close_leftovers(hid_t f, char *names, size_t n)
{
    const unsigned types =
        H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL;
    int closed = 0;
    size_t k = 0;
    names[0] = '\0';
    hid_t ids[64];
    ssize_t got;
    while ((got = H5Fget_obj_ids(f, types, 64, ids)) > 0) {
        for (ssize_t i = 0; i < got; i++, closed++) {
            char name[128] = "";
            H5I_type_t t = H5Iget_type(ids[i]);
            if (t != H5I_ATTR) H5Iget_name(ids[i], name, sizeof name);
            if (k < n)
                k += (size_t) snprintf(names + k, n - k, "%s%s", closed ? ", " : "",
                                       t == H5I_ATTR ? "an attribute" : name);
            if (t == H5I_ATTR)
                H5Aclose(ids[i]);
            else if (t == H5I_DATATYPE)
                H5Tclose(ids[i]);
            else
                H5Oclose(ids[i]);
        }
        if (closed > 4096) break; /* objects that will not close: stop */
    }
    return closed;
}

poa_status poa_h5_write_atomic(const char *final, const char *what, uint64_t bound,
                               poa_h5_fill_fn fill, void *ctx, poa_err *err)
{
    poa_io_atomic a;
    poa_status st = poa_io_atomic_begin(&a, final, what, err);
    if (st) return poa_io_atomic_end(&a, st, err);
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    hid_t fapl = poa_h5_fapl();
    hid_t f = H5Fcreate(a.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    poa_h5_quiet_end(&q);
    if (f < 0) {
        char msg[sizeof a.tmp + 32];
        snprintf(msg, sizeof msg, "cannot create %s", a.tmp);
        return poa_io_atomic_end(&a, poa_h5_fail(err, POA_ERR_IO, msg), err);
    }
    st = poa_hdf5_reserve(a.tmp, bound, err);
    if (!st) st = fill(f, ctx, err);
    poa_h5_quiet_begin(&q);
    char left[256];
    int n_left = close_leftovers(f, left, sizeof left);
    if (n_left > 0 && !st)
        poa_warn("%s: %d HDF5 objects left open by its writer were closed: %s", final, n_left,
                 left);
    if (!st && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) st = poa_h5_fail(err, POA_ERR_IO, "H5Fflush");
    if (st)
        poa_hdf5_close_discarding(f); /* never H5Fclose a file whose writes failed */
    else if (H5Fclose(f) < 0)
        st = poa_h5_fail(err, POA_ERR_IO, "H5Fclose");
    poa_h5_quiet_end(&q);
    if (!st) poa_hdf5_release_reserve(a.tmp);
    return poa_io_atomic_end(&a, st, err);
}

/* ------------------------------------------------------------------ attributes */

static hid_t utf8_string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

/* Create (or replace) attribute `name` of type/space and write `buf` with memory type mtype. */
static poa_status write_attr(hid_t obj, const char *name, hid_t ftype, hid_t mtype, hid_t space,
                             const void *buf, poa_err *err)
{
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    poa_status st = POA_OK;
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mtype, buf) < 0) {
        char what[160];
        snprintf(what, sizeof what, "cannot write attribute '%s'", name);
        st = poa_h5_fail(err, POA_ERR_IO, what);
    }
    if (a >= 0) H5Aclose(a);
    poa_h5_quiet_end(&q);
    return st;
}

poa_status poa_h5_attr_write_string(hid_t obj, const char *name, const char *value, poa_err *err)
{
    hid_t t = utf8_string_type();
    hid_t s = H5Screate(H5S_SCALAR);
    poa_status st = write_attr(obj, name, t, t, s, &value, err);
    H5Sclose(s);
    H5Tclose(t);
    return st;
}

poa_status poa_h5_attr_write_i64(hid_t obj, const char *name, int64_t value, poa_err *err)
{
    hid_t s = H5Screate(H5S_SCALAR);
    poa_status st = write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, s, &value, err);
    H5Sclose(s);
    return st;
}

poa_status poa_h5_attr_write_i64_array(hid_t obj, const char *name, const int64_t *v, size_t n,
                                       poa_err *err)
{
    hsize_t dim = n;
    hid_t s = H5Screate_simple(1, &dim, NULL);
    poa_status st = write_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, s, v, err);
    H5Sclose(s);
    return st;
}

poa_status poa_h5_attr_write_f64(hid_t obj, const char *name, double value, poa_err *err)
{
    hid_t s = H5Screate(H5S_SCALAR);
    poa_status st = write_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s, &value, err);
    H5Sclose(s);
    return st;
}

static poa_status open_attr(hid_t obj, const char *name, hid_t *a, poa_err *err)
{
    if (H5Aexists(obj, name) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return poa_err_set(err, POA_ERR_NOTFOUND, "attribute '%s' is missing", name);
    }
    *a = H5Aopen(obj, name, H5P_DEFAULT);
    if (*a < 0) return poa_h5_fail(err, POA_ERR_FORMAT, "cannot open attribute");
    return POA_OK;
}

/* Elements in the dataspace of obj (get_space: H5Aget_space or H5Dget_space); -1 on failure.
 * A string is read into room for one: a header that says more must not be read (libhdf5 would
 * write past it). */
static hssize_t points(hid_t obj, hid_t (*get_space)(hid_t))
{
    hid_t sp = get_space(obj);
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0) H5Sclose(sp);
    return n;
}

/* Read a variable- or fixed-length string attribute (h5py writes either, depending on type). */
static poa_status read_string_attr(hid_t a, const char *name, char *buf, size_t n, poa_err *err)
{
    hid_t ft = H5Aget_type(a);
    poa_status st = POA_OK;
    if (H5Tget_class(ft) != H5T_STRING || points(a, H5Aget_space) != 1) {
        st = poa_err_set(err, POA_ERR_FORMAT, "attribute '%s' is not a single string", name);
    } else if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = utf8_string_type();
        H5Tset_cset(mt, H5Tget_cset(ft));
        char *s = NULL;
        if (H5Aread(a, mt, &s) < 0) {
            st = poa_h5_fail(err, POA_ERR_FORMAT, "cannot read string attribute");
        } else {
            snprintf(buf, n, "%s", s ? s : "");
            H5free_memory(s);
        }
        H5Tclose(mt);
    } else if ((st = poa_h5_check_claim(a, "a string attribute", H5Tget_size(ft), 1, err)) ==
               POA_OK) {
        size_t len = H5Tget_size(ft);
        char *tmp = poa_xcalloc(1, len + 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, len + 1);
        H5Tset_cset(mt, H5Tget_cset(ft));
        if (H5Aread(a, mt, tmp) < 0)
            st = poa_h5_fail(err, POA_ERR_FORMAT, "cannot read string attribute");
        else
            snprintf(buf, n, "%s", tmp);
        H5Tclose(mt);
        free(tmp);
    }
    H5Tclose(ft);
    return st;
}

poa_status poa_h5_attr_read_string(hid_t obj, const char *name, char *buf, size_t n, poa_err *err)
{
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    hid_t a = -1;
    poa_status st = open_attr(obj, name, &a, err);
    if (st == POA_OK) st = read_string_attr(a, name, buf, n, err);
    if (a >= 0) H5Aclose(a);
    poa_h5_quiet_end(&q);
    return st;
}

poa_status poa_h5_attr_read_i64_array(hid_t obj, const char *name, int64_t *v, size_t cap,
                                      size_t *n, int *rank, poa_err *err)
{
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    hid_t a = -1, ft = -1, sp = -1;
    poa_status st = open_attr(obj, name, &a, err);
    if (st == POA_OK) {
        ft = H5Aget_type(a);
        sp = H5Aget_space(a);
        int r = H5Sget_simple_extent_ndims(sp);
        hssize_t count = H5Sget_simple_extent_npoints(sp);
        if (H5Tget_class(ft) != H5T_INTEGER || r < 0 || r > 1)
            st = poa_err_set(err, POA_ERR_FORMAT, "attribute '%s' is not an integer scalar/vector",
                             name);
        else if ((size_t) count > cap)
            st = poa_err_set(err, POA_ERR_FORMAT, "attribute '%s' has %lld values (at most %zu)",
                             name, (long long) count, cap);
        else if (count > 0 && H5Aread(a, H5T_NATIVE_INT64, v) < 0)
            st = poa_h5_fail(err, POA_ERR_FORMAT, "cannot read integer attribute");
        if (st == POA_OK) {
            *n = (size_t) count;
            if (rank) *rank = r;
        }
    }
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    poa_h5_quiet_end(&q);
    return st;
}

poa_status poa_h5_attr_read_i64(hid_t obj, const char *name, int64_t *value, poa_err *err)
{
    int64_t v[1];
    size_t n = 0;
    int rank = 0;
    poa_status st = poa_h5_attr_read_i64_array(obj, name, v, 1, &n, &rank, err);
    if (st != POA_OK) return st;
    if (n != 1) return poa_err_set(err, POA_ERR_FORMAT, "attribute '%s' is not a scalar", name);
    *value = v[0];
    return POA_OK;
}

poa_status poa_h5_attr_read_f64(hid_t obj, const char *name, double *value, poa_err *err)
{
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    hid_t a = -1, ft = -1, sp = -1;
    poa_status st = open_attr(obj, name, &a, err);
    if (st == POA_OK) {
        ft = H5Aget_type(a);
        sp = H5Aget_space(a);
        H5T_class_t c = H5Tget_class(ft);
        if ((c != H5T_FLOAT && c != H5T_INTEGER) || H5Sget_simple_extent_npoints(sp) != 1)
            st = poa_err_set(err, POA_ERR_FORMAT, "attribute '%s' is not a number", name);
        else if (H5Aread(a, H5T_NATIVE_DOUBLE, value) < 0)
            st = poa_h5_fail(err, POA_ERR_FORMAT, "cannot read attribute");
    }
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    poa_h5_quiet_end(&q);
    return st;
}

/* ------------------------------------------------------------------ datasets */

static void shape_str(int ndim, const hsize_t *d, char *buf, size_t n)
{
    size_t k = (size_t) snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t) snprintf(buf + k, n - k, i ? ", %llu" : "%llu", (unsigned long long) d[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Chunk = the whole tensor, cut along dim 0 to at most H5U_MAX_CHUNK_BYTES. */
static void choose_chunk(int ndim, const hsize_t *dims, size_t elem, hsize_t *chunk)
{
    size_t row = elem;
    for (int i = 1; i < ndim; i++) {
        chunk[i] = dims[i];
        row *= dims[i];
    }
    hsize_t rows = row >= H5U_MAX_CHUNK_BYTES ? 1 : H5U_MAX_CHUNK_BYTES / row;
    chunk[0] = dims[0] < rows ? dims[0] : rows;
}

/* Create dataset `name` of file type ftype over space (creation list dcpl) and write buf in
 * memory type mtype (nothing when buf is NULL). */
static poa_status write_dataset(hid_t loc, const char *name, hid_t ftype, hid_t mtype, hid_t space,
                                hid_t dcpl, const void *buf, poa_err *err)
{
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    poa_status st = POA_OK;
    hid_t ds = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (ds < 0 || (buf && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)) {
        char what[200];
        snprintf(what, sizeof what, "cannot write dataset '%s'", name);
        st = poa_h5_fail(err, POA_ERR_IO, what);
    }
    if (ds >= 0) H5Dclose(ds);
    poa_h5_quiet_end(&q);
    return st;
}

poa_status poa_h5_write_f32(hid_t loc, const char *name, int ndim, const int64_t *dims,
                            const float *data, poa_err *err)
{
    hsize_t d[H5S_MAX_RANK], chunk[H5S_MAX_RANK];
    for (int i = 0; i < ndim; i++) d[i] = (hsize_t) dims[i];
    choose_chunk(ndim, d, sizeof(float), chunk);
    hid_t sp = H5Screate_simple(ndim, d, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, ndim, chunk);
    H5Pset_fletcher32(dcpl);
    poa_status st = write_dataset(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, sp, dcpl, data, err);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return st;
}

/* Open dataset `name` and check its class and shape; *ds stays open on success. */
static poa_status open_checked(hid_t loc, const char *name, H5T_class_t cls, int ndim,
                               const int64_t *dims, hid_t *ds, poa_err *err)
{
    if (!poa_h5_exists(loc, name))
        return poa_err_set(err, POA_ERR_NOTFOUND, "dataset '%s' is missing", name);
    *ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (*ds < 0) {
        char what[200];
        snprintf(what, sizeof what, "cannot open dataset '%s'", name);
        return poa_h5_fail(err, POA_ERR_FORMAT, what);
    }
    hid_t t = H5Dget_type(*ds), sp = H5Dget_space(*ds);
    hsize_t have[H5S_MAX_RANK] = {0}, want[H5S_MAX_RANK] = {0};
    int r = H5Sget_simple_extent_dims(sp, have, NULL);
    int same = r == ndim;
    for (int i = 0; i < ndim; i++) {
        want[i] = (hsize_t) dims[i];
        if (same && have[i] != want[i]) same = 0;
    }
    poa_status st = POA_OK;
    if (H5Tget_class(t) != cls) {
        st = poa_err_set(err, POA_ERR_FORMAT, "dataset '%s' has the wrong element type", name);
    } else if (!same) {
        char hs[128], ws[128];
        shape_str(r < 0 ? 0 : r, have, hs, sizeof hs);
        shape_str(ndim, want, ws, sizeof ws);
        st = poa_err_set(err, POA_ERR_FORMAT,
                         "dataset '%s' has shape %s, expected %s (different model configuration?)",
                         name, hs, ws);
    }
    H5Tclose(t);
    H5Sclose(sp);
    if (st != POA_OK) {
        H5Dclose(*ds);
        *ds = -1;
    }
    return st;
}

poa_status poa_h5_check_shape(hid_t loc, const char *name, int ndim, const int64_t *dims,
                              poa_err *err)
{
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    hid_t ds = -1;
    poa_status st = open_checked(loc, name, H5T_FLOAT, ndim, dims, &ds, err);
    if (ds >= 0) H5Dclose(ds);
    poa_h5_quiet_end(&q);
    return st;
}

poa_status poa_h5_read_f32(hid_t loc, const char *name, int ndim, const int64_t *dims, float *data,
                           poa_err *err)
{
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    hid_t ds = -1;
    poa_status st = open_checked(loc, name, H5T_FLOAT, ndim, dims, &ds, err);
    if (st == POA_OK && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        char what[200];
        snprintf(what, sizeof what, "cannot read dataset '%s' (corrupt data or checksum mismatch)",
                 name);
        st = poa_h5_fail(err, POA_ERR_FORMAT, what);
    }
    if (ds >= 0) H5Dclose(ds);
    poa_h5_quiet_end(&q);
    return st;
}

poa_status poa_h5_write_u64(hid_t loc, const char *name, const uint64_t *data, size_t n,
                            poa_err *err)
{
    hsize_t dim = n;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    poa_status st = write_dataset(loc, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, sp, H5P_DEFAULT,
                                  n > 0 ? data : NULL, err);
    H5Sclose(sp);
    return st;
}

poa_status poa_h5_read_u64_alloc(hid_t loc, const char *name, uint64_t **data, size_t *n,
                                 poa_err *err)
{
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    poa_status st = POA_OK;
    *data = NULL;
    *n = 0;
    hid_t ds = -1, sp = -1, t = -1;
    if (!poa_h5_exists(loc, name)) {
        st = poa_err_set(err, POA_ERR_NOTFOUND, "dataset '%s' is missing", name);
        goto done;
    }
    ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) {
        st = poa_h5_fail(err, POA_ERR_FORMAT, "cannot open dataset");
        goto done;
    }
    sp = H5Dget_space(ds);
    t = H5Dget_type(ds);
    if (H5Tget_class(t) != H5T_INTEGER || H5Sget_simple_extent_ndims(sp) != 1) {
        st = poa_err_set(err, POA_ERR_FORMAT, "dataset '%s' is not a 1-D integer array", name);
        goto done;
    }
    hssize_t count = H5Sget_simple_extent_npoints(sp);
    char what[160];
    snprintf(what, sizeof what, "dataset '%s'", name);
    if ((st = poa_h5_check_claim(ds, what, (uint64_t) (count > 0 ? count : 0), 1, err)) != POA_OK)
        goto done;
    *data = poa_xmalloc((size_t) (count > 0 ? count : 1) * sizeof(uint64_t));
    if (count > 0 && H5Dread(ds, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, *data) < 0) {
        free(*data);
        *data = NULL;
        st = poa_h5_fail(err, POA_ERR_FORMAT, "cannot read dataset");
        goto done;
    }
    *n = (size_t) count;
done:
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    poa_h5_quiet_end(&q);
    return st;
}

poa_status poa_h5_write_string(hid_t loc, const char *name, const char *value, poa_err *err)
{
    hid_t t = utf8_string_type();
    hid_t sp = H5Screate(H5S_SCALAR);
    poa_status st = write_dataset(loc, name, t, t, sp, H5P_DEFAULT, &value, err);
    H5Sclose(sp);
    H5Tclose(t);
    return st;
}

poa_status poa_h5_read_string_alloc(hid_t loc, const char *name, char **value, poa_err *err)
{
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    poa_status st = POA_OK;
    *value = NULL;
    hid_t ds = -1, t = -1, mt = -1;
    if (!poa_h5_exists(loc, name)) {
        st = poa_err_set(err, POA_ERR_NOTFOUND, "dataset '%s' is missing", name);
        goto done;
    }
    ds = H5Dopen2(loc, name, H5P_DEFAULT);
    t = ds >= 0 ? H5Dget_type(ds) : -1;
    if (t < 0 || H5Tget_class(t) != H5T_STRING || points(ds, H5Dget_space) != 1) {
        st = poa_err_set(err, POA_ERR_FORMAT, "dataset '%s' is not a single string", name);
        goto done;
    }
    if (H5Tis_variable_str(t) > 0) {
        mt = utf8_string_type();
        H5Tset_cset(mt, H5Tget_cset(t));
        char *s = NULL;
        if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s) < 0) {
            st = poa_h5_fail(err, POA_ERR_FORMAT, "cannot read string dataset");
            goto done;
        }
        *value = poa_xstrdup(s ? s : "");
        H5free_memory(s);
    } else {
        size_t len = H5Tget_size(t);
        if ((st = poa_h5_check_claim(ds, "a string dataset", len, 1, err)) != POA_OK) goto done;
        mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, len + 1);
        *value = poa_xcalloc(1, len + 1);
        if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, *value) < 0) {
            free(*value);
            *value = NULL;
            st = poa_h5_fail(err, POA_ERR_FORMAT, "cannot read string dataset");
        }
    }
done:
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (ds >= 0) H5Dclose(ds);
    poa_h5_quiet_end(&q);
    return st;
}
