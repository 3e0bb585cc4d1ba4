/* fuzz_h5mutate.c — see fuzz_h5mutate.h.  Built into the HDF5 targets of a fuzzing build only
 * (the replay build has no libFuzzer, and replaying needs no mutator). */
#include "fuzz_h5mutate.h"
#include "fuzz_util.h"

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS      512
#define MAX_DATA_BYTES (1 << 20)

typedef struct item {
    char obj[256];  /* object path */
    char attr[128]; /* attribute name, "" for the object itself */
    int is_dataset;
} item;

typedef struct item_list {
    item v[MAX_ITEMS];
    int n;
} item_list;

static item *add(item_list *l)
{
    if (l->n == MAX_ITEMS) return NULL;
    item *it = &l->v[l->n++];
    memset(it, 0, sizeof *it);
    return it;
}

typedef struct attr_ctx {
    item_list *l;
    const char *obj;
} attr_ctx;

static herr_t on_attr(hid_t loc, const char *name, const H5A_info_t *info, void *op)
{
    (void) loc, (void) info;
    attr_ctx *c = op;
    item *it = add(c->l);
    if (it) {
        snprintf(it->obj, sizeof it->obj, "%s", c->obj);
        snprintf(it->attr, sizeof it->attr, "%s", name);
    }
    return 0;
}

static herr_t on_object(hid_t root, const char *name, const H5O_info_t *info, void *op)
{
    item_list *l = op;
    char path[256];
    snprintf(path, sizeof path, "%s%s", name[0] == '.' && !name[1] ? "/" : "/",
             name[0] == '.' && !name[1] ? "" : name);
    if (strcmp(path, "/") != 0) {
        item *it = add(l);
        if (it) {
            snprintf(it->obj, sizeof it->obj, "%s", path);
            it->is_dataset = info->type == H5O_TYPE_DATASET;
        }
    }
    hid_t o = H5Oopen(root, path, H5P_DEFAULT);
    if (o >= 0) {
        attr_ctx c = {l, path};
        hsize_t idx = 0;
        H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, on_attr, &c);
        H5Oclose(o);
    }
    return 0;
}

static const int64_t boundary[] = {0,
                                   1,
                                   -1,
                                   2,
                                   3,
                                   7,
                                   8,
                                   255,
                                   256,
                                   65535,
                                   65536,
                                   INT32_MAX,
                                   (int64_t) 1 << 31,
                                   (int64_t) 1 << 32,
                                   (int64_t) 1 << 40,
                                   INT64_MAX,
                                   INT64_MIN,
                                   INT32_MIN};

static int64_t interesting(fuzz_rng *r, int64_t old)
{
    uint64_t u = (uint64_t) old; /* wrapping arithmetic, on purpose */
    switch (fuzz_rng_below(r, 4)) {
    case 0:
        return (int64_t) (u + 1);
    case 1:
        return (int64_t) (u - 1);
    case 2:
        return (int64_t) (u * 2);
    default:
        return boundary[fuzz_rng_below(r, sizeof boundary / sizeof boundary[0])];
    }
}

static int set_int_attr(hid_t a, fuzz_rng *r)
{
    hid_t sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    if (n < 1 || n > 64) return 0;
    int64_t v[64];
    if (H5Aread(a, H5T_NATIVE_INT64, v) < 0) return 0;
    size_t i = (size_t) fuzz_rng_below(r, (uint64_t) n);
    v[i] = interesting(r, v[i]);
    return H5Awrite(a, H5T_NATIVE_INT64, v) >= 0;
}

static void random_text(fuzz_rng *r, char *s, size_t cap)
{
    static const char *const words[] = {"train",
                                        "val",
                                        "test",
                                        ",",
                                        "poa-checkpoint",
                                        "poa-dataset-shard",
                                        "poa-dataset-metadata",
                                        "poa-extracted-model",
                                        "student",
                                        "",
                                        "train,val",
                                        "train,train",
                                        "full",
                                        "teacher",
                                        "\xff\xfe",
                                        "../../etc",
                                        "%s%n"};
    size_t n = 0;
    s[0] = '\0';
    for (int k = (int) fuzz_rng_below(r, 3) + 1; k > 0; k--) {
        const char *w = words[fuzz_rng_below(r, sizeof words / sizeof words[0])];
        n += (size_t) snprintf(s + n, cap - n, "%s", w);
        if (n >= cap - 1) break;
    }
    if (fuzz_rng_below(r, 4) == 0 && n + 1 < cap) { /* a random byte somewhere */
        s[fuzz_rng_below(r, n + 1)] = (char) (1 + fuzz_rng_below(r, 255));
        s[n + 1 < cap ? n + 1 : n] = '\0';
    }
}

static int set_str_attr(hid_t obj, const char *name, fuzz_rng *r)
{
    char text[96];
    random_text(r, text, sizeof text);
    if (H5Adelete(obj, name) < 0) return 0;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    /* now and then an array of strings where readers expect one (they read into room for one) */
    hsize_t count = fuzz_rng_below(r, 4) == 0 ? 2 + fuzz_rng_below(r, 3) : 1;
    hid_t sp = count > 1 ? H5Screate_simple(1, &count, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    const char *p[4] = {text, text, text, text};
    int ok = a >= 0 && H5Awrite(a, t, p) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return ok;
}

static int mutate_attr(hid_t f, const item *it, fuzz_rng *r)
{
    hid_t o = H5Oopen(f, it->obj, H5P_DEFAULT);
    if (o < 0) return 0;
    int ok = 0;
    if (fuzz_rng_below(r, 8) == 0) {
        ok = H5Adelete(o, it->attr) >= 0;
    } else {
        hid_t a = H5Aopen(o, it->attr, H5P_DEFAULT);
        hid_t t = a >= 0 ? H5Aget_type(a) : -1;
        H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
        if (c == H5T_INTEGER) ok = set_int_attr(a, r);
        if (t >= 0) H5Tclose(t);
        if (a >= 0) H5Aclose(a);
        if (c == H5T_STRING) ok = set_str_attr(o, it->attr, r);
    }
    H5Oclose(o);
    return ok;
}

/* Read the dataset, let libFuzzer mutate its bytes, write them back (fixed-size types only). */
static int mutate_bytes(hid_t f, const item *it)
{
    hid_t d = H5Dopen2(f, it->obj, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    size_t size = H5Tget_size(t);
    int ok = 0;
    if (H5Tis_variable_str(t) <= 0 && H5Tget_class(t) != H5T_VLEN && n > 0 &&
        (size_t) n * size <= MAX_DATA_BYTES) {
        size_t bytes = (size_t) n * size;
        uint8_t *buf = malloc(bytes);
        if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
            LLVMFuzzerMutate(buf, bytes, bytes);
            ok = H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
        }
        free(buf);
    }
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
    return ok;
}

/* Replace the dataset by one of another shape and/or type. */
static int reshape(hid_t f, const item *it, fuzz_rng *r)
{
    hid_t d = H5Dopen2(f, it->obj, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    hsize_t dims[4] = {1, 1, 1, 1};
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank > 4 || rank < 0) rank = 1;
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(d);
    static const hid_t *const types[] = {&H5T_STD_U8LE_g,  &H5T_STD_I32LE_g, &H5T_STD_U32LE_g,
                                         &H5T_STD_I64LE_g, &H5T_STD_U64LE_g, &H5T_IEEE_F32LE_g,
                                         &H5T_IEEE_F64LE_g};
    hid_t nt = fuzz_rng_below(r, 2) ? H5Tcopy(t) : H5Tcopy(*types[fuzz_rng_below(r, 7)]);
    H5Tclose(t);
    if (fuzz_rng_below(r, 4) == 0) rank = (int) fuzz_rng_below(r, 4); /* 0 = scalar */
    for (int i = 0; i < rank; i++) {
        switch (fuzz_rng_below(r, 6)) {
        case 0:
            dims[i] = dims[i] + 1;
            break;
        case 1:
            dims[i] = dims[i] ? dims[i] - 1 : 0;
            break;
        case 2:
            dims[i] = 0;
            break;
        case 3:
            dims[i] = (hsize_t) 1 << (20 + fuzz_rng_below(r, 21)); /* no storage: a lying header */
            break;
        default:
            break;
        }
    }
    if (H5Ldelete(f, it->obj, H5P_DEFAULT) < 0) {
        H5Tclose(nt);
        return 0;
    }
    hid_t nsp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_layout(dcpl, H5D_CONTIGUOUS);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_LATE);
    hid_t nd = H5Dcreate2(f, it->obj, nt, nsp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int ok = nd >= 0;
    hssize_t n = H5Sget_simple_extent_npoints(nsp);
    size_t bytes = (size_t) n * H5Tget_size(nt);
    if (ok && n > 0 && bytes <= 65536 && H5Tis_variable_str(nt) <= 0) {
        uint8_t *buf = malloc(bytes);
        for (size_t i = 0; i < bytes; i++) buf[i] = (uint8_t) fuzz_rng_next(r);
        H5Dwrite(nd, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        free(buf);
    }
    if (nd >= 0) H5Dclose(nd);
    H5Pclose(dcpl);
    H5Sclose(nsp);
    H5Tclose(nt);
    return ok;
}

/* File offset and size of the first stored block of a dataset (0 size: none). */
static void data_region(hid_t f, const item *it, haddr_t *addr, hsize_t *size)
{
    *addr = HADDR_UNDEF;
    *size = 0;
    hid_t d = H5Dopen2(f, it->obj, H5P_DEFAULT);
    if (d < 0) return;
    hid_t t = H5Dget_type(d);
    int vlen = H5Tis_variable_str(t) > 0 || H5Tget_class(t) == H5T_VLEN;
    H5Tclose(t);
    if (vlen) { /* its stored data are references into HDF5's heap: metadata, not data */
        H5Dclose(d);
        return;
    }
    hid_t dcpl = H5Dget_create_plist(d);
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t nchunks = 0;
        H5Dget_num_chunks(d, H5S_ALL, &nchunks);
        if (nchunks > 0) H5Dget_chunk_info(d, H5S_ALL, 0, NULL, NULL, addr, size);
    } else if (H5Pget_layout(dcpl) == H5D_CONTIGUOUS) {
        *addr = H5Dget_offset(d);
        *size = H5Dget_storage_size(d);
    }
    H5Pclose(dcpl);
    H5Dclose(d);
}

static hid_t open_image(const uint8_t *data, size_t size, unsigned flags)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 65536, 0);
    H5Pset_file_image(fapl, (void *) data, size);
    hid_t f = H5Fopen("fuzz-image.h5", flags, fapl);
    H5Pclose(fapl);
    return f;
}

size_t fuzz_h5_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
    const char *raw = getenv("POA_FUZZ_RAW_HDF5");
    if (raw && raw[0] == '1') return LLVMFuzzerMutate(data, size, max_size);
    H5E_auto2_t func;
    void *client;
    H5Eget_auto2(H5E_DEFAULT, &func, &client);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    fuzz_rng r = {0x9e3779b97f4a7c15ull ^ seed};
    static item_list items;
    items.n = 0;
    size_t out = size;
    int flip = fuzz_rng_below(&r, 5) == 0;
    hid_t f = size >= 8 && memcmp(data, "\x89HDF\r\n\x1a\n", 8) == 0
                  ? open_image(data, size, flip ? H5F_ACC_RDONLY : H5F_ACC_RDWR)
                  : H5I_INVALID_HID;
    if (f >= 0) H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, on_object, &items, H5O_INFO_BASIC);
    if (f >= 0 && items.n > 0) {
        const item *it = &items.v[fuzz_rng_below(&r, (uint64_t) items.n)];
        if (flip) { /* bytes of stored data, in the image: metadata untouched */
            const item *ds = it;
            for (int k = 0; k < items.n && !(ds->is_dataset && !ds->attr[0]); k++)
                ds = &items.v[fuzz_rng_below(&r, (uint64_t) items.n)];
            haddr_t addr;
            hsize_t len;
            data_region(f, ds, &addr, &len);
            H5Fclose(f);
            f = H5I_INVALID_HID;
            if (addr != HADDR_UNDEF && len > 0 && addr + len <= size)
                for (int k = (int) fuzz_rng_below(&r, 4) + 1; k > 0; k--)
                    data[addr + fuzz_rng_below(&r, len)] ^= (uint8_t) (1 + fuzz_rng_below(&r, 255));
        } else {
            int ok = 0;
            if (it->attr[0])
                ok = mutate_attr(f, it, &r);
            else if (it->is_dataset)
                ok = fuzz_rng_below(&r, 3) ? mutate_bytes(f, it) : reshape(f, it, &r);
            else
                ok = H5Ldelete(f, it->obj, H5P_DEFAULT) >= 0;
            if (ok && H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0) {
                ssize_t n = H5Fget_file_image(f, NULL, 0);
                if (n > 0 && (size_t) n <= max_size && H5Fget_file_image(f, data, (size_t) n) == n)
                    out = (size_t) n;
            }
        }
    }
    if (f >= 0) H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, func, client);
    return out;
}
