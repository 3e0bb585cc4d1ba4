/* h5ref.h — minimal HDF5 reading for the model parity tests (reference data of
 * tests/reference/model_ref.py).  All functions abort the test with a message on failure. */
#ifndef POA_TESTS_MODEL_H5REF_H
#define POA_TESTS_MODEL_H5REF_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

hid_t h5ref_open(const char *path);
int h5ref_exists(hid_t file, const char *path);
/* Whole dataset converted to float / double / uint8; *n receives the element count. */
float *h5ref_read_f32(hid_t file, const char *path, size_t *n);
double *h5ref_read_f64(hid_t file, const char *path, size_t *n);
uint8_t *h5ref_read_u8(hid_t file, const char *path, size_t *n);
/* Integer attribute of an object. */
int h5ref_attr_int(hid_t file, const char *obj, const char *name);
/* String attribute into buf. */
void h5ref_attr_str(hid_t file, const char *obj, const char *name, char *buf, size_t n);
/* Names of the members of a group (sorted by HDF5's name index); returns the count. */
int h5ref_group_members(hid_t file, const char *group, char names[][128], int cap);

#endif
