/* npy.c — see npy.h. */
#include "data/npy.h"
#include "common/atomic_io.h"
#include "data/data_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* UTF-8 → code points (invalid bytes become U+FFFD, as Python's errors="replace").  Returns
 * the number of code points; writes at most cap of them to out (out may be NULL). */
static size_t utf8_decode(const char *s, uint32_t *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t n = 0;
    while (*p) {
        uint32_t c = *p;
        int extra = c < 0x80             ? 0
                    : (c & 0xE0) == 0xC0 ? 1
                    : (c & 0xF0) == 0xE0 ? 2
                    : (c & 0xF8) == 0xF0 ? 3
                                         : -1;
        int ok = extra >= 0;
        if (ok) {
            c = extra == 0 ? c : extra == 1 ? c & 0x1F : extra == 2 ? c & 0x0F : c & 0x07;
            for (int i = 1; i <= extra && ok; i++) {
                if ((p[i] & 0xC0) != 0x80)
                    ok = 0;
                else
                    c = c << 6 | (p[i] & 0x3F);
            }
        }
        if (!ok) {
            c = 0xFFFD;
            extra = 0;
        }
        if (out && n < cap) out[n] = c;
        n++;
        p += extra + 1;
    }
    return n;
}

static void put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v, p[1] = (uint8_t) (v >> 8), p[2] = (uint8_t) (v >> 16),
    p[3] = (uint8_t) (v >> 24);
}

/* A fixed-width UTF-32LE field of `width` code points. */
static void put_str(uint8_t *p, const char *s, size_t width)
{
    uint32_t *cp = calloc(width ? width : 1, sizeof *cp);
    size_t n = utf8_decode(s, cp, width);
    memset(p, 0, 4 * width);
    for (size_t i = 0; i < n && i < width; i++) put_u32le(p + 4 * i, cp[i]);
    free(cp);
}

/* numpy 1.24 _write_array_header + _wrap_header for a 1-D C-order array. */
static size_t npy_header(char *buf, size_t cap, const char *descr, size_t n)
{
    char dict[1024], shape[64];
    snprintf(shape, sizeof shape, "%zu", n);
    int k = snprintf(dict, sizeof dict, "{'descr': %s, 'fortran_order': False, 'shape': (%zu,), }",
                     descr, n);
    int growth = 21 - (int) strlen(shape); /* GROWTH_AXIS_MAX_DIGITS */
    for (int i = 0; i < growth && k < (int) sizeof dict - 1; i++) dict[k++] = ' ';
    dict[k] = '\0';
    size_t hlen = (size_t) k + 1, padlen = 64 - ((8 + 2 + hlen) % 64);
    size_t total = 10 + hlen + padlen;
    POA_ASSERT(total <= cap && hlen + padlen <= 65535);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char) ((hlen + padlen) & 0xFF);
    buf[9] = (char) ((hlen + padlen) >> 8);
    memcpy(buf + 10, dict, (size_t) k);
    memset(buf + 10 + k, ' ', padlen);
    buf[total - 1] = '\n';
    return total;
}

static poa_status write_npy(const char *dir, const char *name, const char *descr, size_t n,
                            const uint8_t *data, size_t bytes, poa_err *err)
{
    char path[POA_IO_PATH_MAX], header[2048];
    poa_status st = poa_path_join(path, sizeof path, dir, name, err);
    if (st != POA_OK) return st;
    const poa_io_span spans[2] = {{header, npy_header(header, sizeof header, descr, n)},
                                  {data, bytes}};
    return poa_io_write_spans(path, spans, 2, err);
}

static const char *class_str(const poa_strtab *t, uint32_t ci)
{
    return ci < t->n ? poa_strtab_get(t, ci) : "";
}

static poa_status export_entries(const poa_meta_split *s, const char *dir, const char *upper,
                                 poa_err *err)
{
    size_t n = (size_t) s->num_images, lid = 0, lname = 0;
    int labeled = strcmp(s->name, "test") != 0;
    for (size_t i = 0; labeled && i < n; i++) {
        size_t a = utf8_decode(class_str(&s->class_ids, s->class_index[i]), NULL, 0);
        size_t b = utf8_decode(class_str(&s->class_names, s->class_index[i]), NULL, 0);
        lid = a > lid ? a : lid;
        lname = b > lname ? b : lname;
    }
    size_t rec = 8 + 4 * lid + 4 * lname;
    uint8_t *data = calloc(n ? n * rec : 1, 1);
    if (!data) return poa_err_set(err, POA_ERR_NOMEM, "entries-%s: out of memory", upper);
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = data + i * rec;
        put_u32le(p, s->actual_index[i]);
        put_u32le(p + 4, s->class_index[i]);
        if (labeled) {
            put_str(p + 8, class_str(&s->class_ids, s->class_index[i]), lid);
            put_str(p + 8 + 4 * lid, class_str(&s->class_names, s->class_index[i]), lname);
        }
    }
    char descr[256], name[64];
    snprintf(descr, sizeof descr,
             "[('actual_index', '<u4'), ('class_index', '<u4'), ('class_id', '<U%zu'), "
             "('class_name', '<U%zu')]",
             lid, lname);
    snprintf(name, sizeof name, "entries-%s.npy", upper);
    poa_status st = write_npy(dir, name, descr, n, data, n * rec, err);
    free(data);
    return st;
}

/* class-ids / class-names: length max(class_index) + 1 over the entries, as dump_extra. */
static poa_status export_classes(const poa_meta_split *s, const poa_strtab *t, const char *dir,
                                 const char *file, poa_err *err)
{
    size_t n = (size_t) s->num_images, count = 0, width = 0;
    for (size_t i = 0; i < n; i++) {
        if (s->class_index[i] + (size_t) 1 > count) count = s->class_index[i] + (size_t) 1;
        size_t l = utf8_decode(class_str(t, s->class_index[i]), NULL, 0);
        width = l > width ? l : width;
    }
    uint8_t *data = calloc(count > 0 && width > 0 ? count * width * 4 : 1, 1);
    if (!data) return poa_err_set(err, POA_ERR_NOMEM, "%s: out of memory", file);
    for (size_t i = 0; i < n; i++)
        put_str(data + 4 * width * s->class_index[i], class_str(t, s->class_index[i]), width);
    char descr[32];
    snprintf(descr, sizeof descr, "'<U%zu'", width);
    poa_status st = write_npy(dir, file, descr, count, data, count * width * 4, err);
    free(data);
    return st;
}

poa_status poa_metadata_export_npy(const poa_metadata *m, const char *extra_dir, poa_err *err)
{
    if (mkdir(extra_dir, 0777) != 0 && errno != EEXIST)
        return poa_err_set(err, POA_ERR_IO, "%s: cannot create: %s", extra_dir, strerror(errno));
    poa_status st = POA_OK;
    for (int i = 0; i < m->n_splits && st == POA_OK; i++) {
        const poa_meta_split *s = &m->splits[i];
        POA_ASSERT(s->actual_index || s->num_images == 0);
        char upper[16], file[64];
        for (size_t k = 0; k < sizeof upper; k++)
            upper[k] = (char) toupper((unsigned char) s->name[k]);
        st = export_entries(s, extra_dir, upper, err);
        if (st != POA_OK || strcmp(s->name, "test") == 0) continue;
        snprintf(file, sizeof file, "class-ids-%s.npy", upper);
        st = export_classes(s, &s->class_ids, extra_dir, file, err);
        snprintf(file, sizeof file, "class-names-%s.npy", upper);
        if (st == POA_OK) st = export_classes(s, &s->class_names, extra_dir, file, err);
    }
    return st;
}
