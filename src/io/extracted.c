/* extracted.c — see extracted.h and hdf5-schemas/extracted-model.md. */
#include "poa_config.h"
#include "io/extracted.h"
#include "io/h5util.h"
#include "io/safetensors.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const GROUP_TENSORS = "state_dict";
static const char *const DATASET_CONFIG = "config";
/* safetensors names of the format keys (HDF5: "format", "format_version"; safetensors keeps
 * "format" for its own convention, "pt") */
static const char *const ST_FORMAT = "poa_format";
static const char *const ST_FORMAT_VERSION = "poa_format_version";
static const char *const ST_CONFIG = "config_yaml";

const char *poa_file_format_name(poa_file_format f)
{
    return f == POA_FILE_H5 ? "h5" : f == POA_FILE_SAFETENSORS ? "safetensors" : "?";
}

const char *poa_file_format_suffix(poa_file_format f)
{
    return f == POA_FILE_H5 ? ".h5" : f == POA_FILE_SAFETENSORS ? ".safetensors" : "";
}

poa_status poa_file_detect(const char *path, poa_file_format *fmt, poa_err *err)
{
    static const unsigned char h5sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char b[9];
    FILE *f = fopen(path, "rb");
    if (!f)
        return poa_err_set(err, errno == ENOENT ? POA_ERR_NOTFOUND : POA_ERR_IO,
                           "cannot open %s: %s", path, strerror(errno));
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n >= 8 && memcmp(b, h5sig, 8) == 0) {
        *fmt = POA_FILE_H5;
        return POA_OK;
    }
    if (n == 9 && b[8] == '{') {
        *fmt = POA_FILE_SAFETENSORS;
        return POA_OK;
    }
    return poa_err_set(err, POA_ERR_FORMAT,
                       "%s: neither an HDF5 nor a safetensors file (empty, truncated, or another "
                       "format)",
                       path);
}

poa_status poa_file_identify(const char *path, poa_file_format *container, char *format, size_t n,
                             poa_err *err)
{
    poa_status st = poa_file_detect(path, container, err);
    if (st) return st;
    format[0] = '\0';
    if (*container == POA_FILE_SAFETENSORS) {
        poa_st_file f;
        st = poa_st_open(path, &f, err);
        const char *name = st ? NULL : poa_st_meta_get(&f, ST_FORMAT);
        if (name) snprintf(format, n, "%s", name);
        poa_st_close(&f);
        return st;
    }
    hid_t f = poa_h5_open_read(path, err);
    if (f < 0) return err ? err->code : POA_ERR_FORMAT;
    if (poa_h5_attr_read_string(f, "format", format, n, NULL) != POA_OK) format[0] = '\0';
    H5Fclose(f);
    return POA_OK;
}

/* ================================================================== metadata as text */

/* The shortest decimal text that reads back as the same float (eps 1e-6f → "1e-06"). */
static void float_text(float v, char *buf, size_t n)
{
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double) v);
        if ((float) strtod(buf, NULL) == v) return;
    }
}

static void blocks_text(const poa_extracted_meta *m, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int j = 0; j < m->depth && k < n; j++)
        k += (size_t) snprintf(buf + k, n - k, j ? ",%d" : "%d", m->blocks[j]);
}

static void utc_now(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The integer fields, in the order they are written (both formats), with the largest value a
 * reader accepts (the smallest is 1). */
#define META_INTS(X)                                                                               \
    X(embed_dim, POA_EXTRACTED_MAX_DIM)                                                            \
    X(depth, POA_ARCH_MAX_DEPTH)                                                                   \
    X(num_heads, POA_EXTRACTED_MAX_DIM)                                                            \
    X(head_dim, POA_EXTRACTED_MAX_DIM)                                                             \
    X(mlp_ratio, POA_EXTRACTED_MAX_DIM)                                                            \
    X(patch_size, POA_EXTRACTED_MAX_DIM)                                                           \
    X(img_size, POA_EXTRACTED_MAX_DIM)                                                             \
    X(in_chans, POA_EXTRACTED_MAX_DIM)
#define META_SOURCE_INTS(X)                                                                        \
    X(source_embed_dim, POA_EXTRACTED_MAX_DIM)                                                     \
    X(source_depth, POA_ARCH_MAX_DEPTH)

/* ================================================================== writing */

static poa_status write_h5_attrs(hid_t f, const poa_extracted_meta *m, int n_tensors,
                                 const char *created, const char *version, poa_err *err)
{
    char eps[32];
    float_text((float) m->ln_eps, eps, sizeof eps);
    int64_t blocks[POA_ARCH_MAX_DEPTH];
    for (int j = 0; j < m->depth; j++) blocks[j] = m->blocks[j];
    poa_status st = poa_h5_attr_write_string(f, "format", POA_EXTRACTED_FORMAT_NAME, err);
    if (!st) st = poa_h5_attr_write_i64(f, "format_version", POA_EXTRACTED_FORMAT_VERSION, err);
    if (!st) st = poa_h5_attr_write_string(f, "program", PACKAGE_NAME, err);
    if (!st) st = poa_h5_attr_write_string(f, "program_version", version, err);
    if (!st) st = poa_h5_attr_write_string(f, "created", created, err);
#define W_INT(field, max)                                                                          \
    if (!st) st = poa_h5_attr_write_i64(f, #field, m->field, err);
    META_INTS(W_INT)
    if (!st) st = poa_h5_attr_write_f64(f, "ln_eps", strtod(eps, NULL), err);
    if (!st) st = poa_h5_attr_write_i64_array(f, "blocks", blocks, (size_t) m->depth, err);
    if (!st) st = poa_h5_attr_write_string(f, "source_checkpoint", m->source_checkpoint, err);
    if (!st) st = poa_h5_attr_write_i64(f, "source_iteration", m->source_iteration, err);
    if (!st) st = poa_h5_attr_write_string(f, "source_weights", m->source_weights, err);
    if (!st) st = poa_h5_attr_write_string(f, "source_arch", m->source_arch, err);
    META_SOURCE_INTS(W_INT)
#undef W_INT
    if (!st) st = poa_h5_attr_write_f64(f, "alpha", m->alpha, err);
    if (!st) st = poa_h5_attr_write_i64(f, "num_tensors", n_tensors, err);
    return st;
}

/* What an extracted HDF5 file holds. */
typedef struct h5_write {
    const poa_param_table *t;
    const float *buf;
    const poa_extracted_meta *m;
    const char *created, *version;
} h5_write;

/* Everything except the file handling (a poa_h5_fill_fn: ctx is an h5_write). */
static poa_status write_h5_contents(hid_t f, void *ctx, poa_err *err)
{
    const h5_write *w = ctx;
    const poa_param_table *t = w->t;
    poa_status st = write_h5_attrs(f, w->m, t->n, w->created, w->version, err);
    const char *cfg = w->m->config_yaml ? w->m->config_yaml : "";
    if (!st) st = poa_h5_write_string(f, DATASET_CONFIG, cfg, err);
    if (st) return st;
    hid_t g = poa_h5_create_group(f, GROUP_TENSORS);
    if (g < 0) return poa_h5_fail(err, POA_ERR_IO, "cannot create /state_dict");
    for (int i = 0; i < t->n && st == POA_OK; i++) {
        const poa_param_desc *d = &t->p[i];
        st = poa_h5_write_f32(g, d->name, d->ndim, d->shape, w->buf + d->offset, err);
    }
    H5Gclose(g);
    return st;
}

/* Atomically, the space reserved first, the file closed and deleted on every error path
 * (io/h5util.h). */
static poa_status write_h5(const char *path, const poa_param_table *t, const float *buf,
                           const poa_extracted_meta *m, const char *created, const char *version,
                           poa_err *err)
{
    h5_write w = {t, buf, m, created, version};
    const char *cfg = m->config_yaml ? m->config_yaml : "";
    uint64_t bound = poa_h5_size_bound(t->total * sizeof(float), (uint64_t) t->n + 1, strlen(cfg));
    return poa_h5_write_atomic(path, "", bound, write_h5_contents, &w, err);
}

/* The metadata as safetensors strings (storage for the texts in txt). */
enum { ST_META_MAX = 32, ST_TEXT = 64 };
static int st_meta(const poa_extracted_meta *m, const char *created, const char *version,
                   int n_tensors, char blocks[], size_t blocks_len, char txt[][ST_TEXT],
                   poa_st_kv *kv)
{
    int n = 0, k = 0;
#define KV(name, text)       (kv[n].key = (name), kv[n].value = (text), n++)
#define KV_NUM(name, fmt, v) (snprintf(txt[k], ST_TEXT, fmt, v), KV(name, txt[k]), k++)
    KV("format", "pt");
    KV(ST_FORMAT, POA_EXTRACTED_FORMAT_NAME);
    KV_NUM(ST_FORMAT_VERSION, "%d", POA_EXTRACTED_FORMAT_VERSION);
    KV("program", PACKAGE_NAME);
    KV("program_version", version);
    KV("created", created);
#define S_INT(field, max) KV_NUM(#field, "%d", m->field);
    META_INTS(S_INT)
    float_text((float) m->ln_eps, txt[k], ST_TEXT), KV("ln_eps", txt[k]), k++;
    blocks_text(m, blocks, blocks_len), KV("blocks", blocks);
    KV("source_checkpoint", m->source_checkpoint);
    KV_NUM("source_iteration", "%" PRId64, m->source_iteration);
    KV("source_weights", m->source_weights);
    KV("source_arch", m->source_arch);
    META_SOURCE_INTS(S_INT)
#undef S_INT
    KV_NUM("alpha", "%.17g", m->alpha);
    KV_NUM("num_tensors", "%d", n_tensors);
    KV(ST_CONFIG, m->config_yaml ? m->config_yaml : "");
#undef KV_NUM
#undef KV
    POA_CHECK(n <= ST_META_MAX && k <= ST_META_MAX, "metadata table too small");
    return n;
}

poa_status poa_extracted_write(const char *path, poa_file_format fmt, const poa_param_table *t,
                               const float *buf, const poa_extracted_meta *meta, poa_err *err)
{
    if (meta->depth < 1 || meta->depth > POA_ARCH_MAX_DEPTH)
        return poa_err_set(err, POA_ERR_ARG, "%s: depth %d", path, meta->depth);
    char created[32];
    if (meta->created[0])
        snprintf(created, sizeof created, "%s", meta->created);
    else
        utc_now(created, sizeof created);
    const char *version = meta->program_version[0] ? meta->program_version : PACKAGE_VERSION;
    if (fmt == POA_FILE_SAFETENSORS) {
        char txt[ST_META_MAX][ST_TEXT], blocks[POA_ARCH_MAX_DEPTH * 5 + 8];
        poa_st_kv kv[ST_META_MAX];
        int n = st_meta(meta, created, version, t->n, blocks, sizeof blocks, txt, kv);
        return poa_st_write_table(path, t, buf, kv, n, err);
    }
    if (fmt != POA_FILE_H5) return poa_err_set(err, POA_ERR_ARG, "%s: unknown format", path);
    return write_h5(path, t, buf, meta, created, version, err);
}

/* ================================================================== reading */

static poa_status version_error(const char *path, const char *name, int64_t version,
                                const char *writer, poa_err *err)
{
    if (strcmp(name, POA_EXTRACTED_FORMAT_NAME) != 0)
        return poa_err_set(err, POA_ERR_VERSION,
                           "%s: format '%s' is not an extracted model ('%s'); poa-extract writes "
                           "those from a training checkpoint",
                           path, name, POA_EXTRACTED_FORMAT_NAME);
    return poa_err_set(err, POA_ERR_VERSION,
                       "%s: extracted-model format version %" PRId64
                       " (written by poa %s); this poa reads version %d: extract the model again "
                       "with this poa-extract, or read it with the poa that wrote it",
                       path, version, writer[0] ? writer : "?", POA_EXTRACTED_FORMAT_VERSION);
}

/* An integer of the metadata into *out when it lies in [1, max]. */
static poa_status int_field(const char *path, const char *key, int64_t v, int max, int *out,
                            poa_err *err)
{
    if (v < 1 || v > max)
        return poa_err_set(err, POA_ERR_FORMAT, "%s: metadata '%s' = %" PRId64 " is not in [1, %d]",
                           path, key, v, max);
    *out = (int) v;
    return POA_OK;
}

/* The checks every reader makes on the metadata it read, after the ranges (extracted.h). */
static poa_status check_meta(const char *path, const poa_extracted_meta *m, poa_err *err)
{
    if (m->embed_dim % m->head_dim || m->num_heads != m->embed_dim / m->head_dim)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s: inconsistent model metadata (embed_dim %d, num_heads %d, "
                           "head_dim %d)",
                           path, m->embed_dim, m->num_heads, m->head_dim);
    if (m->source_embed_dim < m->embed_dim || m->source_depth < m->depth)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s: a %dx%d model cut from a %dx%d one (source_embed_dim x "
                           "source_depth)",
                           path, m->embed_dim, m->depth, m->source_embed_dim, m->source_depth);
    for (int j = 0; j < m->depth; j++)
        if (m->blocks[j] < 0 || m->blocks[j] >= m->source_depth ||
            (j > 0 && m->blocks[j] <= m->blocks[j - 1]))
            return poa_err_set(err, POA_ERR_FORMAT,
                               "%s: metadata 'blocks': %d at position %d is not an increasing "
                               "block index below source_depth %d",
                               path, m->blocks[j], j, m->source_depth);
    if (!(m->ln_eps > 0) || !isfinite(m->ln_eps) || !(m->alpha > 0) || !isfinite(m->alpha))
        return poa_err_set(err, POA_ERR_FORMAT, "%s: ln_eps %g, alpha %g (positive and finite)",
                           path, m->ln_eps, m->alpha);
    return POA_OK;
}

static poa_status read_h5_ints(const char *path, hid_t f, poa_extracted_meta *m, poa_err *err)
{
    int64_t v = 0, blocks[POA_ARCH_MAX_DEPTH];
    size_t n = 0;
    poa_status st = POA_OK;
#define R_INT(field, max)                                                                          \
    if (!st) st = poa_h5_attr_read_i64(f, #field, &v, err);                                        \
    if (!st) st = int_field(path, #field, v, max, &m->field, err);
    META_INTS(R_INT)
    META_SOURCE_INTS(R_INT)
#undef R_INT
    if (!st) st = poa_h5_attr_read_i64(f, "source_iteration", &m->source_iteration, err);
    if (!st)
        st = poa_h5_attr_read_i64_array(f, "blocks", blocks, POA_ARCH_MAX_DEPTH, &n, NULL, err);
    if (!st && (int) n != m->depth)
        return poa_err_set(err, POA_ERR_FORMAT, "attribute 'blocks' has %zu values, depth is %d", n,
                           m->depth);
    for (size_t j = 0; !st && j < n; j++) /* checked by check_meta */
        m->blocks[j] = blocks[j] < 0 || blocks[j] > INT32_MAX ? -1 : (int) blocks[j];
    return st;
}

static poa_status read_h5_meta(const char *path, poa_extracted_meta *m, poa_err *err)
{
    hid_t f = poa_h5_open_read(path, err);
    if (f < 0) return err ? err->code : POA_ERR_FORMAT;
    char name[64] = "";
    int64_t version = 0;
    poa_status st = poa_h5_attr_read_string(f, "format", name, sizeof name, err);
    if (!st) st = poa_h5_attr_read_i64(f, "format_version", &version, err);
    poa_h5_attr_read_string(f, "program_version", m->program_version, sizeof m->program_version,
                            NULL);
    if (!st && (strcmp(name, POA_EXTRACTED_FORMAT_NAME) || version != POA_EXTRACTED_FORMAT_VERSION))
        st = version_error(path, name, version, m->program_version, err);
    else if (st)
        poa_err_prefix(err, "%s: not an extracted model", path);
    if (!st) poa_h5_attr_read_string(f, "created", m->created, sizeof m->created, NULL);
    if (!st) st = read_h5_ints(path, f, m, err);
    if (!st) st = poa_h5_attr_read_f64(f, "ln_eps", &m->ln_eps, err);
    if (!st) st = poa_h5_attr_read_f64(f, "alpha", &m->alpha, err);
    if (!st)
        st = poa_h5_attr_read_string(f, "source_checkpoint", m->source_checkpoint,
                                     sizeof m->source_checkpoint, err);
    if (!st)
        st = poa_h5_attr_read_string(f, "source_weights", m->source_weights,
                                     sizeof m->source_weights, err);
    if (!st)
        st = poa_h5_attr_read_string(f, "source_arch", m->source_arch, sizeof m->source_arch, err);
    if (!st) st = poa_h5_read_string_alloc(f, DATASET_CONFIG, &m->config_yaml, err);
    H5Fclose(f);
    if (st && st != POA_ERR_VERSION && !strstr(err ? err->msg : "", path))
        poa_err_prefix(err, "%s", path);
    return st;
}

/* A metadata string of the safetensors header, required. */
static poa_status st_get(const poa_st_file *f, const char *key, const char **v, poa_err *err)
{
    *v = poa_st_meta_get(f, key);
    if (!*v) return poa_err_set(err, POA_ERR_FORMAT, "%s: metadata '%s' is missing", f->path, key);
    return POA_OK;
}

static poa_status st_long(const poa_st_file *f, const char *key, long long *v, poa_err *err)
{
    const char *s;
    poa_status st = st_get(f, key, &s, err);
    if (st) return st;
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return poa_err_set(err, POA_ERR_FORMAT, "%s: metadata '%s' = '%s' is not an integer",
                           f->path, key, s);
    return POA_OK;
}

static poa_status st_double(const poa_st_file *f, const char *key, double *v, poa_err *err)
{
    const char *s;
    poa_status st = st_get(f, key, &s, err);
    if (st) return st;
    char *end;
    *v = strtod(s, &end);
    if (end == s || *end)
        return poa_err_set(err, POA_ERR_FORMAT, "%s: metadata '%s' = '%s' is not a number", f->path,
                           key, s);
    return POA_OK;
}

static poa_status st_string(const poa_st_file *f, const char *key, char *buf, size_t n,
                            poa_err *err)
{
    const char *s;
    poa_status st = st_get(f, key, &s, err);
    if (!st) snprintf(buf, n, "%s", s);
    return st;
}

static poa_status st_blocks(const poa_st_file *f, poa_extracted_meta *m, poa_err *err)
{
    const char *s;
    poa_status st = st_get(f, "blocks", &s, err);
    int n = 0;
    for (const char *c = s; !st && *c;) {
        char *end;
        long b = strtol(c, &end, 10);
        if (end == c || n == POA_ARCH_MAX_DEPTH || b < 0 || b > INT32_MAX || (*end && *end != ','))
            return poa_err_set(err, POA_ERR_FORMAT,
                               "%s: metadata 'blocks' = '%s' is not a list "
                               "of block indices",
                               f->path, s);
        m->blocks[n++] = (int) b;
        c = *end ? end + 1 : end;
    }
    if (!st && n != m->depth)
        return poa_err_set(err, POA_ERR_FORMAT, "%s: metadata 'blocks' has %d indices, depth is %d",
                           f->path, n, m->depth);
    return st;
}

static poa_status read_st_meta(const char *path, poa_extracted_meta *m, poa_err *err)
{
    poa_st_file f;
    poa_status st = poa_st_open(path, &f, err);
    const char *name = NULL;
    long long v = 0;
    if (!st && !(name = poa_st_meta_get(&f, ST_FORMAT)))
        st = poa_err_set(err, POA_ERR_VERSION,
                         "%s: a safetensors file without '%s' metadata: not an extracted model "
                         "written by poa-extract",
                         path, ST_FORMAT);
    if (!st) st = st_long(&f, ST_FORMAT_VERSION, &v, err);
    if (!st) {
        const char *w = poa_st_meta_get(&f, "program_version");
        snprintf(m->program_version, sizeof m->program_version, "%s", w ? w : "");
        if (strcmp(name, POA_EXTRACTED_FORMAT_NAME) || v != POA_EXTRACTED_FORMAT_VERSION)
            st = version_error(path, name, v, m->program_version, err);
    }
    if (!st) st_string(&f, "created", m->created, sizeof m->created, NULL);
#define R_INT(field, max)                                                                          \
    if (!st) st = st_long(&f, #field, &v, err);                                                    \
    if (!st) st = int_field(path, #field, v, max, &m->field, err);
    META_INTS(R_INT)
    META_SOURCE_INTS(R_INT)
#undef R_INT
    if (!st) st = st_long(&f, "source_iteration", &v, err);
    if (!st) m->source_iteration = v;
    if (!st) st = st_double(&f, "ln_eps", &m->ln_eps, err);
    if (!st) st = st_double(&f, "alpha", &m->alpha, err);
    if (!st) st = st_blocks(&f, m, err);
    if (!st)
        st = st_string(&f, "source_checkpoint", m->source_checkpoint, sizeof m->source_checkpoint,
                       err);
    if (!st) st = st_string(&f, "source_weights", m->source_weights, sizeof m->source_weights, err);
    if (!st) st = st_string(&f, "source_arch", m->source_arch, sizeof m->source_arch, err);
    const char *cfg = NULL;
    if (!st) st = st_get(&f, ST_CONFIG, &cfg, err);
    if (!st) m->config_yaml = poa_xstrdup(cfg);
    poa_st_close(&f);
    return st;
}

poa_status poa_extracted_read_meta(const char *path, poa_file_format *fmt, poa_extracted_meta *meta,
                                   poa_err *err)
{
    memset(meta, 0, sizeof *meta);
    poa_file_format f;
    poa_status st = poa_file_detect(path, &f, err);
    if (st) return st;
    if (fmt) *fmt = f;
    st = f == POA_FILE_H5 ? read_h5_meta(path, meta, err) : read_st_meta(path, meta, err);
    if (!st) st = check_meta(path, meta, err);
    if (st) poa_extracted_meta_free(meta);
    return st;
}

static poa_status load_h5(const char *path, const poa_param_table *t, float *buf, poa_err *err)
{
    hid_t f = poa_h5_open_read(path, err);
    if (f < 0) return err ? err->code : POA_ERR_FORMAT;
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    hid_t g = H5Gopen2(f, GROUP_TENSORS, H5P_DEFAULT);
    H5G_info_t info;
    int have = g >= 0 && H5Gget_info(g, &info) >= 0 ? (int) info.nlinks : -1;
    poa_h5_quiet_end(&q);
    poa_status st = POA_OK;
    if (g < 0) st = poa_err_set(err, POA_ERR_FORMAT, "%s: cannot open /%s", path, GROUP_TENSORS);
    for (int i = 0; i < t->n && st == POA_OK; i++) {
        const poa_param_desc *d = &t->p[i];
        if (!poa_h5_exists(g, d->name))
            st = poa_err_set(err, POA_ERR_NOTFOUND, "%s: tensor /%s/%s is missing", path,
                             GROUP_TENSORS, d->name);
        else if ((st = poa_h5_read_f32(g, d->name, d->ndim, d->shape, buf + d->offset, err)))
            poa_err_prefix(err, "%s: /%s", path, GROUP_TENSORS);
    }
    if (st == POA_OK && have != t->n)
        st = poa_err_set(err, POA_ERR_FORMAT, "%s: /%s holds %d tensors, the model has %d", path,
                         GROUP_TENSORS, have, t->n);
    if (g >= 0) H5Gclose(g);
    H5Fclose(f);
    return st;
}

poa_status poa_extracted_load(const char *path, const poa_param_table *t, float *buf, poa_err *err)
{
    poa_file_format fmt;
    poa_status st = poa_file_detect(path, &fmt, err);
    if (st) return st;
    if (fmt == POA_FILE_H5) return load_h5(path, t, buf, err);
    poa_st_file f;
    st = poa_st_open(path, &f, err);
    if (!st) st = poa_st_load_table(&f, t, buf, err);
    poa_st_close(&f);
    return st;
}

void poa_extracted_meta_free(poa_extracted_meta *meta)
{
    free(meta->config_yaml);
    meta->config_yaml = NULL;
}
