/* h5_test_read.h — minimal HDF5 readers for the parity tests of issue #4 (the files are written
 * by the PyTorch references under tests/reference/).  Missing objects are fatal with a message
 * naming the path. */
#ifndef POA_TESTS_STEP_H5_TEST_READ_H
#define POA_TESTS_STEP_H5_TEST_READ_H

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

static inline void h5r_die(const char *what, const char *path)
{
    fprintf(stderr, "parity data: cannot read %s '%s'\n", what, path);
    exit(99);
}

static inline int h5r_exists(hid_t loc, const char *path)
{
    return H5Lexists(loc, path, H5P_DEFAULT) > 0;
}

/* Dataset as float or double (converted), shape in dims (up to 4; missing dims = 1).  Returns
 * the element count via *n. */
static inline void *h5r_read(hid_t loc, const char *path, hid_t type, size_t elem, size_t *n,
                             hsize_t dims[4])
{
    hid_t ds = H5Dopen2(loc, path, H5P_DEFAULT);
    if (ds < 0) h5r_die("dataset", path);
    hid_t sp = H5Dget_space(ds);
    hsize_t d[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int nd = H5Sget_simple_extent_dims(sp, d, NULL);
    size_t count = 1;
    for (int i = 0; i < nd; i++) count *= d[i];
    if (dims)
        for (int i = 0; i < 4; i++) dims[i] = i < nd ? d[i] : 1;
    void *buf = malloc(elem * (count ? count : 1));
    if (count && H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        h5r_die("dataset", path);
    H5Sclose(sp);
    H5Dclose(ds);
    if (n) *n = count;
    return buf;
}

static inline float *h5r_floats(hid_t loc, const char *path, size_t *n, hsize_t dims[4])
{
    return h5r_read(loc, path, H5T_NATIVE_FLOAT, sizeof(float), n, dims);
}

static inline double *h5r_doubles(hid_t loc, const char *path, size_t *n, hsize_t dims[4])
{
    return h5r_read(loc, path, H5T_NATIVE_DOUBLE, sizeof(double), n, dims);
}

/* Attribute `name` of the object at `path` (".": loc itself) as doubles; returns the count. */
static inline int h5r_attr(hid_t loc, const char *path, const char *name, double *out, int cap)
{
    hid_t a = H5Aopen_by_name(loc, path, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) h5r_die("attribute", name);
    hid_t sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    double *buf = malloc(sizeof(double) * (size_t) (n ? n : 1));
    H5Aread(a, H5T_NATIVE_DOUBLE, buf);
    for (int i = 0; i < n && i < cap; i++) out[i] = buf[i];
    free(buf);
    H5Sclose(sp);
    H5Aclose(a);
    return (int) n;
}

static inline double h5r_attr1(hid_t loc, const char *path, const char *name)
{
    double v = 0;
    h5r_attr(loc, path, name, &v, 1);
    return v;
}

#endif
