/* safetensors.c — see safetensors.h.  The header is read with a small strict JSON parser
 * (objects, arrays, strings with escapes, numbers, true/false/null), which is all the format
 * needs; nothing is evaluated. */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#define POA_ST_BIG_ENDIAN 1
#endif

/* ================================================================== JSON */

typedef enum { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT } json_type;

/* One value: 32 bytes, and a number allocates nothing (it points into the header text), so a
 * header parses in memory linear in its length (about 16 bytes per byte of "1,1,1,..."). */
typedef struct json {
    json_type type;
    int n;              /* J_ARRAY, J_OBJECT: members; J_NUMBER: the literal's length */
    char *text;         /* J_STRING: the decoded string (owned); J_NUMBER: the literal in the
                           header text (not owned, not NUL-terminated) */
    struct json *items; /* [n] */
    char **keys;        /* J_OBJECT: [n] decoded keys */
} json;

typedef struct json_parser {
    const char *start, *s, *end;
    int depth;
    char msg[256];
} json_parser;

#define JSON_MAX_DEPTH 16

static void json_free(json *v)
{
    for (int i = 0; v->items && i < v->n; i++) {
        json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    if (v->type == J_STRING) free(v->text);
    memset(v, 0, sizeof *v);
}

static int json_fail(json_parser *p, const char *what)
{
    if (!p->msg[0])
        snprintf(p->msg, sizeof p->msg, "%s at header byte %ld", what, (long) (p->s - p->start));
    return -1;
}

static void skip_ws(json_parser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned) (c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned) (c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned) (c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void put_utf8(char **o, unsigned cp)
{
    unsigned char *u = (unsigned char *) *o;
    if (cp < 0x80) {
        *u++ = (unsigned char) cp;
    } else if (cp < 0x800) {
        *u++ = (unsigned char) (0xC0 | (cp >> 6));
        *u++ = (unsigned char) (0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *u++ = (unsigned char) (0xE0 | (cp >> 12));
        *u++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
        *u++ = (unsigned char) (0x80 | (cp & 0x3F));
    } else {
        *u++ = (unsigned char) (0xF0 | (cp >> 18));
        *u++ = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
        *u++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
        *u++ = (unsigned char) (0x80 | (cp & 0x3F));
    }
    *o = (char *) u;
}

/* A string starting at the opening quote; the decoded text (malloc'ed) in *out. */
static int parse_string(json_parser *p, char **out)
{
    if (p->s >= p->end || *p->s != '"') return json_fail(p, "expected a string");
    const char *s = ++p->s;
    size_t cap = 0;
    while (s < p->end && *s != '"') { /* the decoded text is never longer than the escaped one */
        if (*s == '\\') s++, cap++;
        s++, cap++;
    }
    if (s >= p->end) return json_fail(p, "unterminated string");
    char *buf = poa_xmalloc(cap + 1), *o = buf;
    while (*p->s != '"') {
        unsigned char c = (unsigned char) *p->s++;
        if (c < 0x20) {
            free(buf);
            return json_fail(p, "control character in a string");
        }
        if (c != '\\') {
            *o++ = (char) c;
            continue;
        }
        char e = *p->s++;
        unsigned cp;
        switch (e) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '/':
            *o++ = '/';
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u':
            if (p->end - p->s < 4 || hex4(p->s, &cp)) {
                free(buf);
                return json_fail(p, "bad \\u escape");
            }
            p->s += 4;
            if (cp >= 0xD800 && cp < 0xDC00) { /* a surrogate pair */
                unsigned lo;
                if (p->end - p->s < 6 || p->s[0] != '\\' || p->s[1] != 'u' || hex4(p->s + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF) {
                    free(buf);
                    return json_fail(p, "bad surrogate pair");
                }
                p->s += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            put_utf8(&o, cp);
            break;
        default:
            free(buf);
            return json_fail(p, "bad escape in a string");
        }
    }
    p->s++; /* closing quote */
    *o = '\0';
    *out = buf;
    return 0;
}

static int parse_value(json_parser *p, json *v);

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* An object's keys are unique: checked on a sorted copy, O(n log n) (a header of 100 MB holds
 * millions of keys; comparing each with all before it would take hours). */
static int check_unique_keys(json_parser *p, const json *v)
{
    if (v->n < 2) return 0;
    char **k = poa_xmalloc((size_t) v->n * sizeof *k);
    memcpy(k, v->keys, (size_t) v->n * sizeof *k);
    qsort(k, (size_t) v->n, sizeof *k, cmp_keys);
    int dup = 0;
    for (int i = 1; i < v->n && !dup; i++) dup = strcmp(k[i - 1], k[i]) == 0;
    free(k);
    return dup ? json_fail(p, "duplicate key") : 0;
}

static int parse_members(json_parser *p, json *v, int object)
{
    const char close = object ? '}' : ']';
    int cap = 0;
    p->s++; /* opening bracket */
    skip_ws(p);
    if (p->s < p->end && *p->s == close) {
        p->s++;
        return 0;
    }
    for (;;) {
        if (v->n == cap) {
            cap = cap ? 2 * cap : 8;
            v->items = poa_xrealloc(v->items, (size_t) cap * sizeof *v->items);
            if (object) v->keys = poa_xrealloc(v->keys, (size_t) cap * sizeof *v->keys);
        }
        json *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        if (object) {
            skip_ws(p);
            if (parse_string(p, &v->keys[v->n])) return -1;
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':') {
                free(v->keys[v->n]);
                return json_fail(p, "expected ':'");
            }
            p->s++;
        }
        v->n++;
        if (parse_value(p, item)) return -1;
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == close) {
            p->s++;
            return object ? check_unique_keys(p, v) : 0;
        }
        return json_fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_number(json_parser *p, json *v)
{
    const char *s = p->s;
    if (s < p->end && *s == '-') s++;
    const char *digits = s;
    while (s < p->end && ((*s >= '0' && *s <= '9') || *s == '.' || *s == 'e' || *s == 'E' ||
                          *s == '+' || *s == '-'))
        s++;
    if (s == digits) return json_fail(p, "unexpected character");
    if (s - p->s > 64) return json_fail(p, "number too long");
    v->type = J_NUMBER;
    v->text = (char *) p->s;
    v->n = (int) (s - p->s);
    p->s = s;
    return 0;
}

static int parse_literal(json_parser *p, json *v, const char *word, json_type t)
{
    size_t n = strlen(word);
    if ((size_t) (p->end - p->s) < n || memcmp(p->s, word, n) != 0)
        return json_fail(p, "unexpected character");
    p->s += n;
    v->type = t;
    return 0;
}

static int parse_value(json_parser *p, json *v)
{
    skip_ws(p);
    if (p->s >= p->end) return json_fail(p, "unexpected end");
    if (++p->depth > JSON_MAX_DEPTH) return json_fail(p, "nested too deeply");
    int rc;
    switch (*p->s) {
    case '{':
        v->type = J_OBJECT, rc = parse_members(p, v, 1);
        break;
    case '[':
        v->type = J_ARRAY, rc = parse_members(p, v, 0);
        break;
    case '"':
        v->type = J_STRING, rc = parse_string(p, &v->text);
        break;
    case 't':
        rc = parse_literal(p, v, "true", J_BOOL);
        break;
    case 'f':
        rc = parse_literal(p, v, "false", J_BOOL);
        break;
    case 'n':
        rc = parse_literal(p, v, "null", J_NULL);
        break;
    default:
        rc = parse_number(p, v);
    }
    p->depth--;
    return rc;
}

static const json *json_member(const json *obj, const char *key)
{
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

/* A non-negative integer literal (no sign, fraction or exponent) that fits uint64. */
static int json_u64(const json *v, uint64_t *out)
{
    char digits[72];
    if (v->type != J_NUMBER || v->n < 1 || v->n >= (int) sizeof digits) return -1;
    memcpy(digits, v->text, (size_t) v->n);
    digits[v->n] = '\0';
    for (const char *c = digits; *c; c++)
        if (*c < '0' || *c > '9') return -1;
    errno = 0;
    unsigned long long x = strtoull(digits, NULL, 10);
    if (errno) return -1;
    *out = x;
    return 0;
}

/* ================================================================== writing */

/* JSON string literal of s (UTF-8 passes through; quotes, backslashes and controls escaped). */
static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
        switch (*c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*c < 0x20)
                fprintf(f, "\\u%04x", *c);
            else
                fputc(*c, f);
        }
    }
    fputc('"', f);
}

/* The header text (malloc'ed, *len bytes incl. padding) for table t. */
static char *build_header(const poa_param_table *t, const poa_st_kv *meta, int n_meta, size_t *len)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    POA_CHECK(f != NULL, "open_memstream failed");
    fputc('{', f);
    if (n_meta > 0) {
        fputs("\"__metadata__\":{", f);
        for (int i = 0; i < n_meta; i++) {
            if (i) fputc(',', f);
            put_json_string(f, meta[i].key);
            fputc(':', f);
            put_json_string(f, meta[i].value ? meta[i].value : "");
        }
        fputc('}', f);
    }
    uint64_t at = 0;
    for (int i = 0; i < t->n; i++) {
        const poa_param_desc *d = &t->p[i];
        if (i || n_meta > 0) fputc(',', f);
        put_json_string(f, d->name);
        fputs(":{\"dtype\":\"F32\",\"shape\":[", f);
        for (int k = 0; k < d->ndim; k++) fprintf(f, k ? ",%" PRId64 : "%" PRId64, d->shape[k]);
        uint64_t bytes = (uint64_t) d->numel * sizeof(float);
        fprintf(f, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", at, at + bytes);
        at += bytes;
    }
    fputc('}', f);
    /* spaces up to a multiple of 8, so the data buffer starts 8-byte aligned (8 + N ≡ 0) */
    while (ftell(f) % 8) fputc(' ', f);
    fclose(f);
    *len = n;
    return text;
}

/* n bytes to fd, through short writes and interruptions; errno on failure, else 0. */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        p += w, n -= (size_t) w;
    }
    return 0;
}

/* n floats as little-endian bytes. */
static int write_f32_le(int fd, const float *x, size_t n)
{
#ifdef POA_ST_BIG_ENDIAN
    uint32_t chunk[4096];
    for (size_t at = 0; at < n;) {
        size_t k = n - at < 4096 ? n - at : 4096;
        memcpy(chunk, x + at, k * sizeof(float));
        for (size_t i = 0; i < k; i++) chunk[i] = __builtin_bswap32(chunk[i]);
        int e = write_all(fd, chunk, k * sizeof(float));
        if (e) return e;
        at += k;
    }
    return 0;
#else
    return write_all(fd, x, n * sizeof(float));
#endif
}

/* The whole file into tmp: plain write(2) calls, so that a full disk is met (and reported)
 * here, and closed in every case. */
static poa_status write_file(const char *tmp, const char *header, size_t hlen,
                             const poa_param_table *t, const float *buf, poa_err *err)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return poa_err_set(err, POA_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char) ((uint64_t) hlen >> (8 * i));
    int e = write_all(fd, len, 8);
    if (!e) e = write_all(fd, header, hlen);
    for (int i = 0; i < t->n && !e; i++) e = write_f32_le(fd, buf + t->p[i].offset, t->p[i].numel);
    if (close(fd) != 0 && !e) e = errno;
    return e ? poa_err_set(err, POA_ERR_IO, "%s: %s", tmp, strerror(e)) : POA_OK;
}

poa_status poa_st_write_table(const char *path, const poa_param_table *t, const float *buf,
                              const poa_st_kv *meta, int n_meta, poa_err *err)
{
    size_t hlen;
    char *header = build_header(t, meta, n_meta, &hlen);
    if (hlen > POA_ST_MAX_HEADER) {
        free(header);
        return poa_err_set(err, POA_ERR_ARG, "%s: the safetensors header would have %zu bytes",
                           path, hlen);
    }
    poa_io_atomic a;
    poa_status st = poa_io_atomic_begin(&a, path, "", err);
    if (!st) st = write_file(a.tmp, header, hlen, t, buf, err);
    free(header);
    return poa_io_atomic_end(&a, st, err);
}

/* ================================================================== reading */

static const struct {
    const char *name;
    int size;
} DTYPES[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
              {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
              {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};

static int dtype_size(const char *name)
{
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, name) == 0) return DTYPES[i].size;
    return 0;
}

static poa_status bad_header(const poa_st_file *f, poa_err *err, const char *fmt, const char *a)
{
    char what[512];
    snprintf(what, sizeof what, fmt, a);
    return poa_err_set(err, POA_ERR_FORMAT, "%s: not a valid safetensors file: %s", f->path, what);
}

static poa_status read_metadata(poa_st_file *f, const json *m, poa_err *err)
{
    if (m->type != J_OBJECT) return bad_header(f, err, "%s is not a map", "__metadata__");
    f->meta = poa_xcalloc((size_t) m->n + 1, sizeof *f->meta);
    for (int i = 0; i < m->n; i++) {
        if (m->items[i].type != J_STRING)
            return bad_header(f, err, "__metadata__ value of '%s' is not a string", m->keys[i]);
        f->meta[f->n_meta].key = poa_xstrdup(m->keys[i]);
        f->meta[f->n_meta].value = poa_xstrdup(m->items[i].text);
        f->n_meta++;
    }
    return POA_OK;
}

static poa_status read_tensor(poa_st_file *f, const char *name, const json *v, poa_st_tensor *t,
                              poa_err *err)
{
    if (v->type != J_OBJECT) return bad_header(f, err, "entry '%s' is not an object", name);
    const json *dt = json_member(v, "dtype"), *sh = json_member(v, "shape"),
               *off = json_member(v, "data_offsets");
    if (!dt || dt->type != J_STRING || !(t->elem_size = dtype_size(dt->text)))
        return bad_header(f, err, "tensor '%s': missing or unknown dtype", name);
    if (!sh || sh->type != J_ARRAY || sh->n > POA_ST_MAX_DIMS)
        return bad_header(f, err, "tensor '%s': shape is not a list of at most 8 sizes", name);
    if (!off || off->type != J_ARRAY || off->n != 2 || json_u64(&off->items[0], &t->begin) ||
        json_u64(&off->items[1], &t->end) || t->end < t->begin)
        return bad_header(f, err, "tensor '%s': data_offsets is not [BEGIN, END]", name);
    t->name = poa_xstrdup(name);
    snprintf(t->dtype, sizeof t->dtype, "%s", dt->text);
    t->ndim = sh->n;
    uint64_t numel = 1;
    for (int k = 0; k < sh->n; k++) {
        uint64_t d;
        if (json_u64(&sh->items[k], &d) || d > INT64_MAX ||
            (d && numel > UINT64_MAX / d / (uint64_t) t->elem_size))
            return bad_header(f, err, "tensor '%s': bad shape", name);
        t->shape[k] = (int64_t) d;
        numel *= d;
    }
    t->numel = numel;
    if (t->end - t->begin != numel * (uint64_t) t->elem_size)
        return bad_header(f, err, "tensor '%s': data_offsets do not match dtype and shape", name);
    return POA_OK;
}

static int cmp_begin(const void *a, const void *b)
{
    const poa_st_tensor *x = *(const poa_st_tensor *const *) a,
                        *y = *(const poa_st_tensor *const *) b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Sorted by BEGIN, the tensors tile [0, data length). */
static poa_status check_tiling(poa_st_file *f, poa_err *err)
{
    const poa_st_tensor **by = poa_xmalloc((size_t) (f->n_tensors + 1) * sizeof *by);
    for (int i = 0; i < f->n_tensors; i++) by[i] = &f->tensors[i];
    qsort(by, (size_t) f->n_tensors, sizeof *by, cmp_begin);
    uint64_t at = 0;
    const char *hole = NULL;
    for (int i = 0; i < f->n_tensors && !hole; i++) {
        if (by[i]->begin != at) hole = by[i]->name;
        at = by[i]->end;
    }
    free(by);
    if (hole)
        return bad_header(f, err,
                          "the data of tensor '%s' does not follow the one before it "
                          "(tensors must tile the data buffer)",
                          hole);
    uint64_t have = f->file_size - f->data_offset;
    if (at != have)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s: the header's tensors need %" PRIu64
                           " bytes of data, the file holds "
                           "%" PRIu64 " (truncated or corrupt file)",
                           f->path, at, have);
    return POA_OK;
}

static poa_status read_header_text(poa_st_file *f, char **text, poa_err *err)
{
    unsigned char b[8];
    if (f->file_size < 8 || fread(b, 1, 8, f->fp) != 8)
        return poa_err_set(err, POA_ERR_FORMAT, "%s: not a safetensors file (%" PRIu64 " bytes)",
                           f->path, f->file_size);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t) b[i] << (8 * i);
    if (n > POA_ST_MAX_HEADER || n + 8 > f->file_size)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s: not a safetensors file, or truncated: header length %" PRIu64
                           " (file %" PRIu64 " bytes)",
                           f->path, n, f->file_size);
    f->header_len = n;
    f->data_offset = 8 + n;
    *text = poa_xmalloc(n + 1);
    if (fread(*text, 1, n, f->fp) != n)
        return poa_err_set(err, POA_ERR_IO, "%s: cannot read the header: %s", f->path,
                           strerror(errno));
    (*text)[n] = '\0';
    if (n == 0 || (*text)[0] != '{')
        return bad_header(f, err, "%s", "the header does not start with '{'");
    return POA_OK;
}

poa_status poa_st_open(const char *path, poa_st_file *f, poa_err *err)
{
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->fp = fopen(path, "rb");
    if (!f->fp)
        return poa_err_set(err, errno == ENOENT ? POA_ERR_NOTFOUND : POA_ERR_IO,
                           "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f->fp), &sb) != 0 || !S_ISREG(sb.st_mode))
        return poa_err_set(err, POA_ERR_FORMAT, "%s: not a regular file", path);
    f->file_size = (uint64_t) sb.st_size;
    char *text = NULL;
    poa_status st = read_header_text(f, &text, err);
    json root;
    memset(&root, 0, sizeof root);
    if (st == POA_OK) {
        json_parser p = {text, text, text + f->header_len, 0, ""};
        int rc = parse_value(&p, &root);
        skip_ws(&p);
        if (rc == 0 && p.s != p.end) rc = json_fail(&p, "text after the header object");
        if (rc)
            st = bad_header(f, err, "JSON: %s", p.msg);
        else if (root.type != J_OBJECT)
            st = bad_header(f, err, "%s", "the header is not a JSON object");
    }
    if (st == POA_OK) f->tensors = poa_xcalloc((size_t) root.n + 1, sizeof *f->tensors);
    for (int i = 0; st == POA_OK && i < root.n; i++) {
        if (strcmp(root.keys[i], "__metadata__") == 0)
            st = read_metadata(f, &root.items[i], err);
        else
            st = read_tensor(f, root.keys[i], &root.items[i], &f->tensors[f->n_tensors++], err);
    }
    if (st == POA_OK) st = check_tiling(f, err);
    json_free(&root);
    free(text);
    return st;
}

void poa_st_close(poa_st_file *f)
{
    if (f->fp) fclose(f->fp);
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free((char *) f->meta[i].key);
        free((char *) f->meta[i].value);
    }
    free(f->meta);
    memset(f, 0, sizeof *f);
}

const char *poa_st_meta_get(const poa_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

const poa_st_tensor *poa_st_find(const poa_st_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

poa_status poa_st_read_f32(const poa_st_file *f, const poa_st_tensor *t, float *dst, poa_err *err)
{
    if (strcmp(t->dtype, "F32") != 0)
        return poa_err_set(err, POA_ERR_FORMAT, "%s: tensor '%s' is %s, not F32", f->path, t->name,
                           t->dtype);
    if (fseeko(f->fp, (off_t) (f->data_offset + t->begin), SEEK_SET) != 0 ||
        fread(dst, sizeof(float), t->numel, f->fp) != t->numel)
        return poa_err_set(err, POA_ERR_FORMAT, "%s: cannot read tensor '%s' (truncated file?)",
                           f->path, t->name);
#ifdef POA_ST_BIG_ENDIAN
    uint32_t *u = (uint32_t *) dst;
    for (uint64_t i = 0; i < t->numel; i++) u[i] = __builtin_bswap32(u[i]);
#endif
    return POA_OK;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t k = (size_t) snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t) snprintf(buf + k, n - k, i ? ", %" PRId64 : "%" PRId64, shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

poa_status poa_st_load_table(const poa_st_file *f, const poa_param_table *t, float *buf,
                             poa_err *err)
{
    /* The first tensor the table lacks is among the first t->n + 1 (the names are unique): the
     * search stays O(n²) in the table's size, whatever the file holds. */
    for (int i = 0; i < f->n_tensors && i <= t->n; i++)
        if (poa_params_find(t, f->tensors[i].name) < 0)
            return poa_err_set(err, POA_ERR_FORMAT,
                               "%s: unexpected tensor '%s' (not a parameter of the model)", f->path,
                               f->tensors[i].name);
    for (int i = 0; i < t->n; i++) {
        const poa_param_desc *d = &t->p[i];
        const poa_st_tensor *x = poa_st_find(f, d->name);
        if (!x)
            return poa_err_set(err, POA_ERR_NOTFOUND, "%s: tensor '%s' is missing", f->path,
                               d->name);
        int same = x->ndim == d->ndim;
        for (int k = 0; same && k < d->ndim; k++) same = x->shape[k] == d->shape[k];
        if (!same) {
            char want[96], have[96];
            shape_str(d->ndim, d->shape, want, sizeof want);
            shape_str(x->ndim, x->shape, have, sizeof have);
            return poa_err_set(err, POA_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s",
                               f->path, d->name, have, want);
        }
        poa_status st = poa_st_read_f32(f, x, buf + d->offset, err);
        if (st) return st;
    }
    return POA_OK;
}
