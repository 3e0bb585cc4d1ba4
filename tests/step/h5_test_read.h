/* h5_test_read.h — minimal HDF5 readers for the parity tests of the losses and the step (the files
 * are written by the PyTorch references under tests/reference/).  Missing objects are fatal with a
 * message naming the path. */
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

/* ------------------------------------------------------------------ one test per case */
/* The references write one HDF5 group per case; each becomes a cmocka test whose state is the
 * case's name.  Callers include <cmocka.h> before this header. */
#define H5R_MAX_CASES 16

static inline herr_t h5r_list_case(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void) g, (void) info;
    char(*names)[64] = data;
    for (int i = 0; i < H5R_MAX_CASES; i++)
        if (!names[i][0]) {
            snprintf(names[i], 64, "%s", name);
            break;
        }
    return 0;
}

/* Runs fn once for every member of group `cases` of the file at `path` ("." for the root).
 * Returns cmocka's status: 0 when every case passed; 1 when the file has no cases; 99 (the
 * harness's "hard error") when the file cannot be opened. */
static inline int h5r_run_cases(const char *suite, const char *path, const char *cases,
                                CMUnitTestFunction fn)
{
    static char names[H5R_MAX_CASES][64];
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 99;
    hid_t g = H5Gopen2(f, cases, H5P_DEFAULT);
    if (g < 0) h5r_die("group", cases);
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, h5r_list_case, names);
    H5Gclose(g);
    H5Fclose(f);
    if (!names[0][0]) {
        fprintf(stderr, "%s: no cases in %s\n", suite, path);
        return 1;
    }
    struct CMUnitTest tests[H5R_MAX_CASES];
    int n = 0;
    for (; n < H5R_MAX_CASES && names[n][0]; n++) {
        struct CMUnitTest t = {names[n], fn, NULL, NULL, names[n]};
        tests[n] = t;
    }
    return _cmocka_run_group_tests(suite, tests, (size_t) n, NULL, NULL);
}

#endif
