/* h5ref.c — see h5ref.h. */
#include "h5ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, const char *path)
{
    fprintf(stderr, "h5ref: %s: %s\n", what, path);
    exit(1);
}

hid_t h5ref_open(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) die("cannot open", path);
    return f;
}

int h5ref_exists(hid_t file, const char *path)
{
    return H5Lexists(file, path, H5P_DEFAULT) > 0;
}

static void *read_as(hid_t file, const char *path, hid_t type, size_t elem, size_t *n)
{
    hid_t ds = H5Dopen2(file, path, H5P_DEFAULT);
    if (ds < 0) die("no dataset", path);
    hid_t sp = H5Dget_space(ds);
    hssize_t count = H5Sget_simple_extent_npoints(sp);
    void *buf = malloc((size_t) (count > 0 ? count : 1) * elem);
    if (count > 0 && H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        die("cannot read", path);
    H5Sclose(sp);
    H5Dclose(ds);
    if (n) *n = (size_t) count;
    return buf;
}

float *h5ref_read_f32(hid_t file, const char *path, size_t *n)
{
    return read_as(file, path, H5T_NATIVE_FLOAT, sizeof(float), n);
}

double *h5ref_read_f64(hid_t file, const char *path, size_t *n)
{
    return read_as(file, path, H5T_NATIVE_DOUBLE, sizeof(double), n);
}

uint8_t *h5ref_read_u8(hid_t file, const char *path, size_t *n)
{
    return read_as(file, path, H5T_NATIVE_UINT8, 1, n);
}

int h5ref_attr_int(hid_t file, const char *obj, const char *name)
{
    long long v = 0;
    hid_t a = H5Aopen_by_name(file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) die("no attribute", name);
    if (H5Aread(a, H5T_NATIVE_LLONG, &v) < 0) die("cannot read attribute", name);
    H5Aclose(a);
    return (int) v;
}

void h5ref_attr_str(hid_t file, const char *obj, const char *name, char *buf, size_t n)
{
    hid_t a = H5Aopen_by_name(file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) die("no attribute", name);
    hid_t ft = H5Aget_type(a);
    buf[0] = 0;
    if (H5Tis_variable_str(ft) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        char *s = NULL;
        if (H5Aread(a, mt, &s) < 0) die("cannot read attribute", name);
        snprintf(buf, n, "%s", s ? s : "");
        H5free_memory(s);
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(ft);
        char *tmp = calloc(sz + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        H5Tset_cset(mt, H5Tget_cset(ft));
        if (H5Aread(a, mt, tmp) < 0) die("cannot read attribute", name);
        snprintf(buf, n, "%s", tmp);
        free(tmp);
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
}

int h5ref_group_members(hid_t file, const char *group, char names[][128], int cap)
{
    hid_t g = H5Gopen2(file, group, H5P_DEFAULT);
    if (g < 0) die("no group", group);
    H5G_info_t info;
    H5Gget_info(g, &info);
    int n = 0;
    for (hsize_t i = 0; i < info.nlinks && n < cap; i++, n++)
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, names[n], 128, H5P_DEFAULT);
    H5Gclose(g);
    return n;
}
