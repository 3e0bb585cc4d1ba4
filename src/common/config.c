/* config.c — see config.h.  The key table, defaults and struct all come from config_keys.def. */
#include "common/config.h"
#include "common/arch.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define POA_UNPAREN(...)      __VA_ARGS__
#define POA_CFG_KIND_official true
#define POA_CFG_KIND_poa      false

/* ============================================================ key table */

#define POA_CFG_CHOICE_TEXT(constant, text) text,
#define POA_CFG_ENUM(kind, sec, key, def, help)                                                    \
    static const char *const choices_##sec##_##key[] = {                                           \
        POA_CFG_CHOICES_##sec##_##key(POA_CFG_CHOICE_TEXT) NULL};
#include "common/config_keys.def"
#undef POA_CFG_ENUM

#define KEY_COMMON(kind_, sec, key_, type_, help_)                                                 \
    .name = #sec "." #key_, .section = #sec, .leaf = #key_, .type = POA_CFG_TYPE_##type_,          \
    .official = POA_CFG_KIND_##kind_, .offset = offsetof(poa_config, sec.key_), .help = help_
#define POA_CFG_BOOL(kind, sec, key, def, help) {KEY_COMMON(kind, sec, key, BOOL, help)},
#define POA_CFG_INT(kind, sec, key, def, lo, hi, help)                                             \
    {KEY_COMMON(kind, sec, key, INT, help), .min = (lo), .max = (hi)},
#define POA_CFG_FLOAT(kind, sec, key, def, lo, hi, help)                                           \
    {KEY_COMMON(kind, sec, key, FLOAT, help), .min = (lo), .max = (hi)},
#define POA_CFG_STRING(kind, sec, key, def, help) {KEY_COMMON(kind, sec, key, STRING, help)},
#define POA_CFG_ENUM(kind, sec, key, def, help)                                                    \
    {KEY_COMMON(kind, sec, key, ENUM, help), .choices = choices_##sec##_##key,                     \
     .n_choices = (int) (sizeof choices_##sec##_##key / sizeof(char *)) - 1},
#define POA_CFG_INT_LIST(kind, sec, key, def, nlo, nhi, lo, hi, help)                              \
    {KEY_COMMON(kind, sec, key, INT_LIST, help), .min = (lo), .max = (hi), .min_len = (nlo),       \
     .max_len = (nhi)},
#define POA_CFG_FLOAT_LIST(kind, sec, key, def, nlo, nhi, lo, hi, help)                            \
    {KEY_COMMON(kind, sec, key, FLOAT_LIST, help), .min = (lo), .max = (hi), .min_len = (nlo),     \
     .max_len = (nhi)},
static const poa_cfg_key key_table[POA_CFG_NKEYS] = {
#include "common/config_keys.def"
};
#undef POA_CFG_BOOL
#undef POA_CFG_INT
#undef POA_CFG_FLOAT
#undef POA_CFG_STRING
#undef POA_CFG_ENUM
#undef POA_CFG_INT_LIST
#undef POA_CFG_FLOAT_LIST

/* Section help texts, in table order. */
#define POA_CFG_SECTION(sec, help) {#sec, help},
static const struct {
    const char *name, *help;
} section_table[] = {
#include "common/config_keys.def"
};
#undef POA_CFG_SECTION
enum { N_SECTIONS = sizeof section_table / sizeof section_table[0] };

/* Official keys that poa accepts and ignores: FSDP sharding/mixed-precision internals. */
static const char *const ignored_prefixes[] = {"compute_precision.teacher",
                                               "compute_precision.student"};

const poa_cfg_key *poa_config_keys(void)
{
    return key_table;
}

const poa_cfg_key *poa_config_key(poa_cfg_key_id id)
{
    return (int) id >= 0 && id < POA_CFG_NKEYS ? &key_table[id] : NULL;
}

static poa_cfg_key_id key_id(const poa_cfg_key *k)
{
    return (poa_cfg_key_id) (k - key_table);
}

const poa_cfg_key *poa_config_find_key(const char *name)
{
    for (int i = 0; i < POA_CFG_NKEYS; i++)
        if (strcmp(key_table[i].name, name) == 0) return &key_table[i];
    return NULL;
}

const char *poa_cfg_type_name(poa_cfg_type t)
{
    switch (t) {
    case POA_CFG_TYPE_BOOL:
        return "bool";
    case POA_CFG_TYPE_INT:
        return "int";
    case POA_CFG_TYPE_FLOAT:
        return "float";
    case POA_CFG_TYPE_STRING:
        return "string";
    case POA_CFG_TYPE_ENUM:
        return "enum";
    case POA_CFG_TYPE_INT_LIST:
        return "list of int";
    case POA_CFG_TYPE_FLOAT_LIST:
        return "list of float";
    }
    return "?";
}

const char *poa_config_enum_text(poa_cfg_key_id id, int value)
{
    const poa_cfg_key *k = poa_config_key(id);
    if (!k || k->type != POA_CFG_TYPE_ENUM || value < 0 || value >= k->n_choices) return NULL;
    return k->choices[value];
}

/* ============================================================ suggestions */

int poa_levenshtein(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > 255) na = 255;
    if (nb > 255) nb = 255;
    int row[256];
    for (size_t j = 0; j <= nb; j++) row[j] = (int) j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = (int) i;
        for (size_t j = 1; j <= nb; j++) {
            int up = row[j];
            int cost = tolower((unsigned char) a[i - 1]) != tolower((unsigned char) b[j - 1]);
            int best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

static const char *leaf_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

/* Distance of a typed name to a key: the whole dotted name, or the leaf in the wrong section
 * (`train.base_lr`, `base_lr` → `optim.base_lr`) at a small extra cost. */
static int key_distance(const char *name, const poa_cfg_key *k)
{
    int whole = poa_levenshtein(name, k->name);
    int leaf = poa_levenshtein(leaf_of(name), k->leaf) + 2;
    return whole < leaf ? whole : leaf;
}

const poa_cfg_key *poa_config_closest_key(const char *name)
{
    const poa_cfg_key *best = &key_table[0];
    int best_d = INT_MAX;
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        int d = key_distance(name, &key_table[i]);
        if (d < best_d) best_d = d, best = &key_table[i];
    }
    return best;
}

static poa_status unknown_key_error(const char *where, const char *name, poa_err *err)
{
    const poa_cfg_key *k = poa_config_closest_key(name);
    return poa_err_set(err, POA_ERR_CONFIG,
                       "%s: unknown key '%s'; did you mean '%s'? (poa-config --help lists every "
                       "key)",
                       where, name, k->name);
}

static bool is_section_prefix(const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < POA_CFG_NKEYS; i++)
        if (strncmp(key_table[i].name, name, n) == 0 && key_table[i].name[n] == '.') return true;
    return false;
}

static bool is_ignored(const char *name)
{
    for (size_t i = 0; i < sizeof ignored_prefixes / sizeof *ignored_prefixes; i++) {
        size_t n = strlen(ignored_prefixes[i]);
        if (strncmp(name, ignored_prefixes[i], n) == 0 && (name[n] == '\0' || name[n] == '.'))
            return true;
    }
    return false;
}

/* ============================================================ defaults */

static void set_int_list(poa_cfg_int_list *l, const int *v, size_t n)
{
    l->n = (int) n;
    for (size_t i = 0; i < n; i++) l->v[i] = v[i];
}

static void set_float_list(poa_cfg_float_list *l, const double *v, size_t n)
{
    l->n = (int) n;
    for (size_t i = 0; i < n; i++) l->v[i] = v[i];
}

void poa_config_defaults(poa_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
#define POA_CFG_BOOL(kind, sec, key, def, help)          cfg->sec.key = (def);
#define POA_CFG_INT(kind, sec, key, def, lo, hi, help)   cfg->sec.key = (def);
#define POA_CFG_FLOAT(kind, sec, key, def, lo, hi, help) cfg->sec.key = (def);
#define POA_CFG_STRING(kind, sec, key, def, help)                                                  \
    snprintf(cfg->sec.key, sizeof cfg->sec.key, "%s", def);
#define POA_CFG_ENUM(kind, sec, key, def, help) cfg->sec.key = (def);
#define POA_CFG_INT_LIST(kind, sec, key, def, nlo, nhi, lo, hi, help)                              \
    {                                                                                              \
        static const int d_[] = {POA_UNPAREN def};                                                 \
        _Static_assert(sizeof d_ / sizeof d_[0] <= POA_CFG_LIST_MAX, "list too long");             \
        set_int_list(&cfg->sec.key, d_, sizeof d_ / sizeof d_[0]);                                 \
    }
#define POA_CFG_FLOAT_LIST(kind, sec, key, def, nlo, nhi, lo, hi, help)                            \
    {                                                                                              \
        static const double d_[] = {POA_UNPAREN def};                                              \
        _Static_assert(sizeof d_ / sizeof d_[0] <= POA_CFG_LIST_MAX, "list too long");             \
        set_float_list(&cfg->sec.key, d_, sizeof d_ / sizeof d_[0]);                               \
    }
#include "common/config_keys.def"
#undef POA_CFG_BOOL
#undef POA_CFG_INT
#undef POA_CFG_FLOAT
#undef POA_CFG_STRING
#undef POA_CFG_ENUM
#undef POA_CFG_INT_LIST
#undef POA_CFG_FLOAT_LIST
    cfg->world_size = 1;
}

/* ============================================================ values */

void *poa_config_value_ptr(poa_config *cfg, const poa_cfg_key *key)
{
    return (char *) cfg + key->offset;
}

const void *poa_config_value_cptr(const poa_config *cfg, const poa_cfg_key *key)
{
    return (const char *) cfg + key->offset;
}

static void trim(char *s)
{
    size_t n = strlen(s), b = 0;
    while (n > 0 && isspace((unsigned char) s[n - 1])) s[--n] = '\0';
    while (b < n && isspace((unsigned char) s[b])) b++;
    memmove(s, s + b, n - b + 1);
}

static bool parse_bool(const char *t, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(t, yes[i]) == 0) return *out = true, true;
        if (strcasecmp(t, no[i]) == 0) return *out = false, true;
    }
    return false;
}

static bool parse_int(const char *t, int *out)
{
    if (!*t) return false;
    errno = 0;
    char *end;
    long long v = strtoll(t, &end, 10);
    if (*end || errno == ERANGE || v < INT_MIN || v > INT_MAX) return false;
    *out = (int) v;
    return true;
}

static bool parse_float(const char *t, double *out)
{
    if (!*t) return false;
    /* Reject hex floats and words (inf, nan): decimal numbers only. */
    for (const char *p = t; *p; p++)
        if (!strchr("0123456789+-.eE", *p)) return false;
    errno = 0;
    char *end;
    double v = strtod(t, &end);
    if (*end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static void format_double(double v, char *buf, size_t len);

static void format_range(const poa_cfg_key *k, char *buf, size_t len)
{
    if (k->type == POA_CFG_TYPE_INT || k->type == POA_CFG_TYPE_INT_LIST) {
        snprintf(buf, len, "[%.0f, %.0f]", k->min, k->max);
        return;
    }
    char lo[64], hi[64];
    format_double(k->min, lo, sizeof lo);
    format_double(k->max, hi, sizeof hi);
    snprintf(buf, len, "[%s, %s]", lo, hi);
}

static void format_choices(const poa_cfg_key *k, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < k->n_choices; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? ", " : "", k->choices[i]);
    }
}

static poa_status type_error(const char *where, const poa_cfg_key *k, const char *got, poa_err *err)
{
    if (k->type == POA_CFG_TYPE_ENUM) {
        char ch[512];
        format_choices(k, ch, sizeof ch);
        return poa_err_set(err, POA_ERR_CONFIG, "%s: %s: expected one of {%s}, got %s", where,
                           k->name, ch, got);
    }
    const char *example = k->type == POA_CFG_TYPE_INT_LIST     ? " (e.g. [64, 128])"
                          : k->type == POA_CFG_TYPE_FLOAT_LIST ? " (e.g. [0.1, 0.5])"
                          : k->type == POA_CFG_TYPE_BOOL       ? " (true or false)"
                                                               : "";
    return poa_err_set(err, POA_ERR_CONFIG, "%s: %s: expected %s%s, got %s", where, k->name,
                       poa_cfg_type_name(k->type), example, got);
}

static poa_status range_error(const char *where, const poa_cfg_key *k, const char *text,
                              poa_err *err)
{
    char r[128];
    format_range(k, r, sizeof r);
    return poa_err_set(err, POA_ERR_CONFIG, "%s: %s = %s is out of range %s", where, k->name, text,
                       r);
}

/* Parse one scalar into `out` (of the key's scalar type, or the element type of a list). */
static poa_status parse_element(const poa_cfg_key *k, const char *text, bool is_null, void *out,
                                const char *where, poa_err *err)
{
    char got[300];
    snprintf(got, sizeof got, is_null ? "null" : "'%.256s'", text);
    switch (k->type) {
    case POA_CFG_TYPE_BOOL:
        if (is_null || !parse_bool(text, out)) return type_error(where, k, got, err);
        return POA_OK;
    case POA_CFG_TYPE_INT:
    case POA_CFG_TYPE_INT_LIST: {
        int v;
        if (is_null || !parse_int(text, &v)) return type_error(where, k, got, err);
        if (v < k->min || v > k->max) return range_error(where, k, text, err);
        *(int *) out = v;
        return POA_OK;
    }
    case POA_CFG_TYPE_FLOAT:
    case POA_CFG_TYPE_FLOAT_LIST: {
        double v;
        if (is_null || !parse_float(text, &v)) return type_error(where, k, got, err);
        if (v < k->min || v > k->max) return range_error(where, k, text, err);
        *(double *) out = v;
        return POA_OK;
    }
    case POA_CFG_TYPE_STRING:
        if (strlen(text) >= POA_CFG_STR_MAX)
            return poa_err_set(err, POA_ERR_CONFIG, "%s: %s: value longer than %d characters",
                               where, k->name, POA_CFG_STR_MAX - 1);
        snprintf(out, POA_CFG_STR_MAX, "%s", is_null ? "" : text);
        return POA_OK;
    case POA_CFG_TYPE_ENUM:
        for (int i = 0; !is_null && i < k->n_choices; i++)
            if (strcmp(text, k->choices[i]) == 0) return *(int *) out = i, POA_OK;
        return type_error(where, k, got, err);
    }
    return POA_ERR_INTERNAL;
}

static bool is_list(const poa_cfg_key *k)
{
    return k->type == POA_CFG_TYPE_INT_LIST || k->type == POA_CFG_TYPE_FLOAT_LIST;
}

static poa_status set_scalar(poa_config *cfg, const poa_cfg_key *k, const char *text, bool is_null,
                             poa_cfg_origin origin, const char *where, poa_err *err)
{
    if (is_list(k)) {
        char got[300];
        snprintf(got, sizeof got, is_null ? "null" : "'%.256s'", text);
        return type_error(where, k, got, err);
    }
    union {
        bool b;
        int i;
        double f;
        char s[POA_CFG_STR_MAX];
    } tmp;
    poa_status st = parse_element(k, text, is_null, &tmp, where, err);
    if (st != POA_OK) return st;
    void *dst = poa_config_value_ptr(cfg, k);
    switch (k->type) {
    case POA_CFG_TYPE_BOOL:
        *(bool *) dst = tmp.b;
        break;
    case POA_CFG_TYPE_INT:
    case POA_CFG_TYPE_ENUM:
        *(int *) dst = tmp.i;
        break;
    case POA_CFG_TYPE_FLOAT:
        *(double *) dst = tmp.f;
        break;
    case POA_CFG_TYPE_STRING:
        memcpy(dst, tmp.s, POA_CFG_STR_MAX);
        break;
    default:
        return POA_ERR_INTERNAL;
    }
    cfg->origin[key_id(k)] = origin;
    return POA_OK;
}

static poa_status set_list(poa_config *cfg, const poa_cfg_key *k, char *const *items, int n,
                           poa_cfg_origin origin, const char *where, poa_err *err)
{
    if (!is_list(k)) return type_error(where, k, "a list", err);
    if (n < k->min_len || n > k->max_len) {
        if (k->min_len == k->max_len)
            return poa_err_set(err, POA_ERR_CONFIG, "%s: %s: expected a list of %d values, got %d",
                               where, k->name, k->min_len, n);
        return poa_err_set(err, POA_ERR_CONFIG,
                           "%s: %s: expected a list of %d to %d values, got %d", where, k->name,
                           k->min_len, k->max_len, n);
    }
    if (k->type == POA_CFG_TYPE_INT_LIST) {
        poa_cfg_int_list l = {.n = n};
        for (int i = 0; i < n; i++) {
            poa_status st = parse_element(k, items[i], false, &l.v[i], where, err);
            if (st != POA_OK) return st;
        }
        *(poa_cfg_int_list *) poa_config_value_ptr(cfg, k) = l;
    } else {
        poa_cfg_float_list l = {.n = n};
        for (int i = 0; i < n; i++) {
            poa_status st = parse_element(k, items[i], false, &l.v[i], where, err);
            if (st != POA_OK) return st;
        }
        *(poa_cfg_float_list *) poa_config_value_ptr(cfg, k) = l;
    }
    cfg->origin[key_id(k)] = origin;
    return POA_OK;
}

/* "[a, b]" or "a,b" → trimmed items (in place); returns the count or -1 when too many. */
static int split_list(char *text, char **items, int max_items)
{
    trim(text);
    size_t n = strlen(text);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text[n - 1] = '\0';
        text++;
        trim(text);
    }
    if (!*text) return 0;
    int count = 0;
    for (char *p = text;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (count == max_items) return -1;
        trim(p);
        items[count++] = p;
        if (!comma) break;
        p = comma + 1;
    }
    return count;
}

poa_status poa_config_set_text(poa_config *cfg, const char *key, const char *text,
                               poa_cfg_origin origin, poa_err *err)
{
    char where[POA_CFG_STR_MAX + 64];
    if (origin.source == POA_CFG_SRC_FILE && origin.file >= 0 && origin.file < cfg->n_files)
        snprintf(where, sizeof where, "%s:%d:%d", cfg->files[origin.file], origin.line,
                 origin.column);
    else
        snprintf(where, sizeof where, "command line argument '%s=%.200s'", key, text);
    const poa_cfg_key *k = poa_config_find_key(key);
    if (!k) return unknown_key_error(where, key, err);
    if (is_list(k)) {
        char buf[4096], *items[POA_CFG_LIST_MAX + 1];
        snprintf(buf, sizeof buf, "%s", text);
        int n = split_list(buf, items, POA_CFG_LIST_MAX + 1);
        if (n < 0) n = POA_CFG_LIST_MAX + 1;
        return set_list(cfg, k, items, n, origin, where, err);
    }
    if (k->type == POA_CFG_TYPE_STRING) return set_scalar(cfg, k, text, false, origin, where, err);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    trim(buf);
    return set_scalar(cfg, k, buf, false, origin, where, err);
}

poa_status poa_config_set_override(poa_config *cfg, const char *assignment, poa_err *err)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "command line argument '%s': expected key=value (e.g. optim.epochs=10)",
                           assignment);
    char key[256];
    size_t n = (size_t) (eq - assignment);
    if (n >= sizeof key) n = sizeof key - 1;
    memcpy(key, assignment, n);
    key[n] = '\0';
    poa_cfg_origin origin = {.source = POA_CFG_SRC_CLI};
    return poa_config_set_text(cfg, key, eq + 1, origin, err);
}

/* ============================================================ YAML loading */

typedef struct yaml_ctx {
    yaml_parser_t parser;
    poa_config *cfg;
    const char *name; /* path shown in messages */
    int file;         /* index into cfg->files */
    int seen_line[POA_CFG_NKEYS];
    poa_err *err;
} yaml_ctx;

static poa_status yaml_syntax_error(yaml_ctx *c)
{
    yaml_parser_t *p = &c->parser;
    if (p->error == YAML_READER_ERROR)
        return poa_err_set(c->err, POA_ERR_CONFIG, "%s: byte %zu: malformed YAML: %s", c->name,
                           p->problem_offset, p->problem ? p->problem : "cannot read");
    char ctx[256] = "";
    if (p->context)
        snprintf(ctx, sizeof ctx, " (%s, line %zu column %zu)", p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
    return poa_err_set(c->err, POA_ERR_CONFIG, "%s:%zu:%zu: malformed YAML: %s%s", c->name,
                       p->problem_mark.line + 1, p->problem_mark.column + 1,
                       p->problem ? p->problem : "syntax error", ctx);
}

static poa_status next_event(yaml_ctx *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->parser, ev)) return yaml_syntax_error(c);
    return POA_OK;
}

static void mark_where(const yaml_ctx *c, yaml_mark_t m, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%zu:%zu", c->name, m.line + 1, m.column + 1);
}

static poa_cfg_origin mark_origin(const yaml_ctx *c, yaml_mark_t m)
{
    return (poa_cfg_origin){.source = POA_CFG_SRC_FILE,
                            .file = c->file,
                            .line = (int) m.line + 1,
                            .column = (int) m.column + 1};
}

static const char *event_kind(yaml_event_type_t t)
{
    switch (t) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_ALIAS_EVENT:
        return "an alias";
    default:
        return "a value";
    }
}

/* Skip the rest of a node whose start event was just read. */
static poa_status skip_node(yaml_ctx *c, yaml_event_type_t start)
{
    if (start != YAML_MAPPING_START_EVENT && start != YAML_SEQUENCE_START_EVENT) return POA_OK;
    for (int depth = 1; depth > 0;) {
        yaml_event_t ev;
        poa_status st = next_event(c, &ev);
        if (st != POA_OK) return st;
        if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT) depth++;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) depth--;
        yaml_event_delete(&ev);
    }
    return POA_OK;
}

static bool scalar_is_null(const yaml_event_t *ev)
{
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
    const char *t = (const char *) ev->data.scalar.value;
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

/* A key's value was seen: refuse a second occurrence in the same file. */
static poa_status note_seen(yaml_ctx *c, const poa_cfg_key *k, yaml_mark_t key_mark)
{
    int id = key_id(k);
    if (c->seen_line[id]) {
        char where[POA_CFG_STR_MAX + 64];
        mark_where(c, key_mark, where, sizeof where);
        return poa_err_set(c->err, POA_ERR_CONFIG, "%s: duplicate key '%s' (first set at line %d)",
                           where, k->name, c->seen_line[id]);
    }
    c->seen_line[id] = (int) key_mark.line + 1;
    return POA_OK;
}

static poa_status load_sequence(yaml_ctx *c, const poa_cfg_key *k, yaml_mark_t start)
{
    char where[POA_CFG_STR_MAX + 64];
    mark_where(c, start, where, sizeof where);
    char *items[POA_CFG_LIST_MAX + 1];
    int n = 0;
    poa_status st = POA_OK;
    for (;;) {
        yaml_event_t ev;
        if ((st = next_event(c, &ev)) != POA_OK) break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t != YAML_SCALAR_EVENT) {
            char w[POA_CFG_STR_MAX + 64];
            mark_where(c, ev.start_mark, w, sizeof w);
            yaml_event_delete(&ev);
            st = poa_err_set(c->err, POA_ERR_CONFIG, "%s: %s: list elements must be plain values",
                             w, k->name);
            break;
        }
        if (n <= POA_CFG_LIST_MAX) items[n] = poa_xstrdup((const char *) ev.data.scalar.value);
        n++;
        yaml_event_delete(&ev);
    }
    int kept = n <= POA_CFG_LIST_MAX + 1 ? n : POA_CFG_LIST_MAX + 1;
    if (st == POA_OK) st = set_list(c->cfg, k, items, kept, mark_origin(c, start), where, c->err);
    for (int i = 0; i < kept; i++) free(items[i]);
    return st;
}

static poa_status load_mapping(yaml_ctx *c, const char *prefix);

/* The value event `val` of key `name` (key event at key_mark). */
static poa_status load_value(yaml_ctx *c, const char *name, yaml_mark_t key_mark, yaml_event_t *val)
{
    char where[POA_CFG_STR_MAX + 64];
    mark_where(c, val->start_mark, where, sizeof where);
    const poa_cfg_key *k = poa_config_find_key(name);
    if (val->type == YAML_ALIAS_EVENT)
        return poa_err_set(c->err, POA_ERR_CONFIG, "%s: %s: YAML aliases are not supported", where,
                           name);
    if (!k) {
        if (is_ignored(name)) return skip_node(c, val->type);
        if (val->type == YAML_MAPPING_START_EVENT) return load_mapping(c, name);
        char kw[POA_CFG_STR_MAX + 64];
        mark_where(c, key_mark, kw, sizeof kw);
        if (is_section_prefix(name))
            return poa_err_set(c->err, POA_ERR_CONFIG,
                               "%s: '%s' is a section: expected a mapping of its keys, got %s", kw,
                               name, event_kind(val->type));
        return unknown_key_error(kw, name, c->err);
    }
    poa_status st = note_seen(c, k, key_mark);
    if (st != POA_OK) return st;
    switch (val->type) {
    case YAML_SCALAR_EVENT:
        return set_scalar(c->cfg, k, (const char *) val->data.scalar.value, scalar_is_null(val),
                          mark_origin(c, val->start_mark), where, c->err);
    case YAML_SEQUENCE_START_EVENT:
        return load_sequence(c, k, val->start_mark);
    default:
        return type_error(where, k, event_kind(val->type), c->err);
    }
}

static poa_status load_mapping(yaml_ctx *c, const char *prefix)
{
    for (;;) {
        yaml_event_t key, val;
        poa_status st = next_event(c, &key);
        if (st != POA_OK) return st;
        if (key.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&key);
            return POA_OK;
        }
        if (key.type != YAML_SCALAR_EVENT) {
            char where[POA_CFG_STR_MAX + 64];
            mark_where(c, key.start_mark, where, sizeof where);
            yaml_event_delete(&key);
            return poa_err_set(c->err, POA_ERR_CONFIG, "%s: mapping keys must be plain names",
                               where);
        }
        char name[512];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "",
                 (const char *) key.data.scalar.value);
        yaml_mark_t key_mark = key.start_mark;
        yaml_event_delete(&key);
        if ((st = next_event(c, &val)) != POA_OK) return st;
        st = load_value(c, name, key_mark, &val);
        yaml_event_delete(&val);
        if (st != POA_OK) return st;
    }
}

/* stream → at most one document → a top-level mapping (or nothing). */
static poa_status load_stream(yaml_ctx *c)
{
    yaml_event_t ev;
    poa_status st;
    int documents = 0;
    for (;;) {
        if ((st = next_event(c, &ev)) != POA_OK) return st;
        yaml_event_type_t t = ev.type;
        yaml_mark_t m = ev.start_mark;
        bool null_doc = t == YAML_SCALAR_EVENT && scalar_is_null(&ev);
        yaml_event_delete(&ev);
        char where[POA_CFG_STR_MAX + 64];
        mark_where(c, m, where, sizeof where);
        switch (t) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            return POA_OK;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1)
                return poa_err_set(c->err, POA_ERR_CONFIG,
                                   "%s: a configuration file holds one YAML document", where);
            break;
        case YAML_MAPPING_START_EVENT:
            if ((st = load_mapping(c, "")) != POA_OK) return st;
            break;
        default:
            if (null_doc) break;
            return poa_err_set(c->err, POA_ERR_CONFIG,
                               "%s: the top level must be a mapping of sections (e.g. 'optim:'), "
                               "got %s",
                               where, event_kind(t));
        }
    }
}

static int remember_file(poa_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_files; i++)
        if (strcmp(cfg->files[i], name) == 0) return i;
    int i = cfg->n_files < POA_CFG_MAX_FILES ? cfg->n_files++ : POA_CFG_MAX_FILES - 1;
    snprintf(cfg->files[i], sizeof cfg->files[i], "%s", name);
    return i;
}

static poa_status load_with_parser(yaml_ctx *c)
{
    c->file = remember_file(c->cfg, c->name);
    poa_status st = load_stream(c);
    yaml_parser_delete(&c->parser);
    return st;
}

poa_status poa_config_load_yaml_string(poa_config *cfg, const char *name, const char *text,
                                       poa_err *err)
{
    yaml_ctx *c = poa_xcalloc(1, sizeof *c);
    c->cfg = cfg, c->name = name, c->err = err;
    if (!yaml_parser_initialize(&c->parser)) {
        free(c);
        return poa_err_set(err, POA_ERR_NOMEM, "%s: cannot initialise the YAML parser", name);
    }
    yaml_parser_set_input_string(&c->parser, (const unsigned char *) text, strlen(text));
    poa_status st = load_with_parser(c);
    free(c);
    return st;
}

FILE *poa_config_open_file(const char *path, poa_err *err)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        poa_err_set(err, POA_ERR_IO, "%s: is a directory, not a config file", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        poa_err_set(err, errno == ENOENT ? POA_ERR_NOTFOUND : POA_ERR_IO,
                    "%s: cannot open config file: %s", path, strerror(errno));
    return f;
}

poa_status poa_config_load_yaml(poa_config *cfg, const char *path, poa_err *err)
{
    poa_err open_err = {0};
    FILE *f = poa_config_open_file(path, &open_err);
    if (!f) {
        if (err) *err = open_err;
        return open_err.code;
    }
    yaml_ctx *c = poa_xcalloc(1, sizeof *c);
    c->cfg = cfg, c->name = path, c->err = err;
    if (!yaml_parser_initialize(&c->parser)) {
        fclose(f);
        free(c);
        return poa_err_set(err, POA_ERR_NOMEM, "%s: cannot initialise the YAML parser", path);
    }
    yaml_parser_set_input_file(&c->parser, f);
    poa_status st = load_with_parser(c);
    if (st == POA_OK && ferror(f)) st = poa_err_set(err, POA_ERR_IO, "%s: read error", path);
    fclose(f);
    free(c);
    return st;
}

/* ============================================================ formatting */

/* Shortest decimal that reads back to the same double, shaped as a YAML 1.1 float
 * ("1.0e-05", "3.0") so PyYAML/OmegaConf also read it as a float. */
static void format_double(double v, char *buf, size_t len)
{
    char tmp[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*g", p, v);
        if (strtod(tmp, NULL) == v) break;
    }
    if (strchr(tmp, 'e') && fabs(v) >= 1e-4 && fabs(v) < 1e16) /* 100.0, not 1.0e+02 */
        for (int d = 0; d <= 20; d++) {
            snprintf(tmp, sizeof tmp, "%.*f", d, v);
            if (strtod(tmp, NULL) == v) break;
        }
    char *e = strchr(tmp, 'e');
    if (!strchr(tmp, '.')) {
        if (e) {
            char exp[32];
            snprintf(exp, sizeof exp, "%s", e);
            *e = '\0';
            snprintf(buf, len, "%s.0%s", tmp, exp);
            return;
        }
        snprintf(buf, len, "%s.0", tmp);
        return;
    }
    snprintf(buf, len, "%s", tmp);
}

/* Double-quoted YAML string with escapes. */
static void format_string(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    if (len < 3) return;
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *) s; *p && o + 6 < len; p++) {
        if (*p == '"' || *p == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char) *p;
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t) snprintf(buf + o, len - o, "\\x%02x", *p);
        } else {
            buf[o++] = (char) *p;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

char *poa_config_format_value(const poa_config *cfg, const poa_cfg_key *k, char *buf, size_t len)
{
    const void *v = poa_config_value_cptr(cfg, k);
    char num[64];
    switch (k->type) {
    case POA_CFG_TYPE_BOOL:
        snprintf(buf, len, "%s", *(const bool *) v ? "true" : "false");
        break;
    case POA_CFG_TYPE_INT:
        snprintf(buf, len, "%d", *(const int *) v);
        break;
    case POA_CFG_TYPE_FLOAT:
        format_double(*(const double *) v, buf, len);
        break;
    case POA_CFG_TYPE_STRING:
        format_string(v, buf, len);
        break;
    case POA_CFG_TYPE_ENUM: {
        int i = *(const int *) v;
        snprintf(buf, len, "%s", i >= 0 && i < k->n_choices ? k->choices[i] : "?");
        break;
    }
    case POA_CFG_TYPE_INT_LIST:
    case POA_CFG_TYPE_FLOAT_LIST: {
        const poa_cfg_int_list *il = v;
        const poa_cfg_float_list *fl = v;
        int n = k->type == POA_CFG_TYPE_INT_LIST ? il->n : fl->n;
        size_t o = (size_t) snprintf(buf, len, "[");
        for (int i = 0; i < n && o < len; i++) {
            if (k->type == POA_CFG_TYPE_INT_LIST)
                snprintf(num, sizeof num, "%d", il->v[i]);
            else
                format_double(fl->v[i], num, sizeof num);
            o += (size_t) snprintf(buf + o, len - o, "%s%s", i ? ", " : "", num);
        }
        if (o < len) snprintf(buf + o, len - o, "]");
        break;
    }
    }
    return buf;
}

char *poa_config_format_origin(const poa_config *cfg, poa_cfg_key_id id, char *buf, size_t len)
{
    poa_cfg_origin o = cfg->origin[id];
    switch (o.source) {
    case POA_CFG_SRC_DEFAULT:
        snprintf(buf, len, "default");
        break;
    case POA_CFG_SRC_FILE:
        snprintf(buf, len, "%s:%d:%d",
                 o.file >= 0 && o.file < cfg->n_files ? cfg->files[o.file] : "?", o.line, o.column);
        break;
    case POA_CFG_SRC_CLI:
        snprintf(buf, len, "command line");
        break;
    case POA_CFG_SRC_PRESET:
        snprintf(buf, len, "student.arch preset");
        break;
    case POA_CFG_SRC_DERIVED:
        snprintf(buf, len, "derived");
        break;
    }
    return buf;
}

const char *poa_config_first_difference(const poa_config *a, const poa_config *b)
{
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        char va[POA_CFG_STR_MAX * 2], vb[POA_CFG_STR_MAX * 2];
        poa_config_format_value(a, &key_table[i], va, sizeof va);
        poa_config_format_value(b, &key_table[i], vb, sizeof vb);
        if (strcmp(va, vb) != 0) return key_table[i].name;
    }
    return NULL;
}

/* ============================================================ derived values, presets, checks */

long long poa_config_global_batch(const poa_config *cfg, int world_size)
{
    return (long long) cfg->train.batch_size_per_gpu * cfg->train.rank_groups *
           (world_size > 0 ? world_size : 1);
}

long long poa_config_total_iterations(const poa_config *cfg)
{
    return (long long) cfg->optim.epochs * cfg->train.OFFICIAL_EPOCH_LENGTH;
}

static void preset_key(poa_config *cfg, poa_cfg_key_id id, int *field, int value)
{
    if (cfg->origin[id].source != POA_CFG_SRC_DEFAULT &&
        cfg->origin[id].source != POA_CFG_SRC_PRESET)
        return; /* set explicitly: the explicit value wins */
    *field = value;
    cfg->origin[id].source = POA_CFG_SRC_PRESET;
}

/* The backbone sizes of the student.arch preset (common/arch.h) into the keys still at their
 * default.  vit_dynamic is the official name of the elastic ViT-L whose sizes are the keys'
 * defaults: they stay "default". */
static void apply_arch_preset(poa_config *cfg)
{
    if (cfg->student.arch == POA_ARCH_VIT_DYNAMIC) return;
    const poa_arch_preset *p =
        poa_arch_preset_find(poa_config_enum_text(POA_CFG_KEY_student_arch, cfg->student.arch));
    if (!p) return;
    preset_key(cfg, POA_CFG_KEY_student_min_embed_dim, &cfg->student.min_embed_dim,
               p->min_embed_dim);
    preset_key(cfg, POA_CFG_KEY_student_max_embed_dim, &cfg->student.max_embed_dim,
               p->max_embed_dim);
    preset_key(cfg, POA_CFG_KEY_student_min_depth, &cfg->student.min_depth, p->min_depth);
    preset_key(cfg, POA_CFG_KEY_student_max_depth, &cfg->student.max_depth, p->max_depth);
    preset_key(cfg, POA_CFG_KEY_student_head_dim, &cfg->student.head_dim, p->head_dim);
    preset_key(cfg, POA_CFG_KEY_student_patch_size, &cfg->student.patch_size, p->patch_size);
}

static void derive(poa_config *cfg, poa_cfg_key_id id)
{
    cfg->origin[id] = (poa_cfg_origin){.source = POA_CFG_SRC_DERIVED};
}

poa_status poa_config_finalize(poa_config *cfg, int world_size, poa_err *err)
{
    if (world_size < 1) return poa_err_set(err, POA_ERR_ARG, "world size %d < 1", world_size);
    cfg->world_size = world_size;
    apply_arch_preset(cfg);
    /* optim.lr is always recomputed, as the official apply_scaling_rules_to_cfg does. */
    double batch = (double) poa_config_global_batch(cfg, world_size);
    double factor = cfg->optim.scaling_rule == POA_LR_SCALING_SQRT_WRT_1024 ? sqrt(batch / 1024.0)
                    : cfg->optim.scaling_rule == POA_LR_SCALING_LINEAR_WRT_1024 ? batch / 1024.0
                                                                                : 1.0;
    cfg->optim.lr = cfg->optim.base_lr * factor;
    derive(cfg, POA_CFG_KEY_optim_lr);
    if (cfg->train.checkpoint_period_iterations == 0) {
        /* official PeriodicCheckpointer period: 3 epochs */
        long long period = 3LL * cfg->train.OFFICIAL_EPOCH_LENGTH;
        cfg->train.checkpoint_period_iterations = period > INT_MAX ? INT_MAX : (int) period;
        derive(cfg, POA_CFG_KEY_train_checkpoint_period_iterations);
    }
    if (cfg->train.data_threads == 0) {
        cfg->train.data_threads = cfg->train.num_workers > 0 ? cfg->train.num_workers : 1;
        derive(cfg, POA_CFG_KEY_train_data_threads);
    }
    return poa_config_validate(cfg, err);
}

/* ---- validation ---- */

static const char *origin_text(const poa_config *cfg, poa_cfg_key_id id, char *buf, size_t len)
{
    return poa_config_format_origin(cfg, id, buf, len);
}

/* How specific an origin is: a file line beats the command line beats the rest. */
static int origin_rank(poa_cfg_source s)
{
    return s == POA_CFG_SRC_FILE ? 3 : s == POA_CFG_SRC_CLI ? 2 : s == POA_CFG_SRC_DEFAULT ? 0 : 1;
}

/* A broken rule between keys a and (optionally) b: "<most specific origin>: msg (a: origin;
 * b: origin)", so the message starts with the place the user most likely has to edit. */
static poa_status rule_error(const poa_config *cfg, poa_cfg_key_id a, poa_cfg_key_id b,
                             poa_err *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static poa_status rule_error(const poa_config *cfg, poa_cfg_key_id a, poa_cfg_key_id b,
                             poa_err *err, const char *fmt, ...)
{
    char msg[600], oa[POA_CFG_STR_MAX + 32], ob[POA_CFG_STR_MAX + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    origin_text(cfg, a, oa, sizeof oa);
    if ((int) b < 0 || b == a) return poa_err_set(err, POA_ERR_CONFIG, "%s: %s", oa, msg);
    origin_text(cfg, b, ob, sizeof ob);
    bool b_first = origin_rank(cfg->origin[b].source) > origin_rank(cfg->origin[a].source);
    return poa_err_set(err, POA_ERR_CONFIG, "%s: %s (%s: %s; %s: %s)", b_first ? ob : oa, msg,
                       key_table[a].name, oa, key_table[b].name, ob);
}

#define NOKEY ((poa_cfg_key_id) -1)

/* Every value within its key's range (values set through the API are checked here too). */
static poa_status validate_ranges(const poa_config *cfg, poa_err *err)
{
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        const poa_cfg_key *k = &key_table[i];
        const void *v = poa_config_value_cptr(cfg, k);
        char text[POA_CFG_STR_MAX * 2];
        poa_config_format_value(cfg, k, text, sizeof text);
        bool bad = false;
        switch (k->type) {
        case POA_CFG_TYPE_INT:
            bad = *(const int *) v < k->min || *(const int *) v > k->max;
            break;
        case POA_CFG_TYPE_FLOAT:
            bad = !(*(const double *) v >= k->min && *(const double *) v <= k->max);
            break;
        case POA_CFG_TYPE_ENUM:
            bad = *(const int *) v < 0 || *(const int *) v >= k->n_choices;
            break;
        case POA_CFG_TYPE_INT_LIST: {
            const poa_cfg_int_list *l = v;
            bad = l->n < k->min_len || l->n > k->max_len;
            for (int j = 0; !bad && j < l->n; j++) bad = l->v[j] < k->min || l->v[j] > k->max;
            break;
        }
        case POA_CFG_TYPE_FLOAT_LIST: {
            const poa_cfg_float_list *l = v;
            bad = l->n < k->min_len || l->n > k->max_len;
            for (int j = 0; !bad && j < l->n; j++) bad = !(l->v[j] >= k->min && l->v[j] <= k->max);
            break;
        }
        default:
            break;
        }
        if (bad) {
            char r[128];
            format_range(k, r, sizeof r);
            return rule_error(cfg, (poa_cfg_key_id) i, NOKEY, err, "%s = %s is out of range %s",
                              k->name, text, r);
        }
    }
    return POA_OK;
}

/* The model's shape as the configuration describes it (what poa-train builds from it). */
static poa_arch_shape arch_shape(const poa_config *cfg)
{
    const typeof(cfg->student) *s = &cfg->student;
    return (poa_arch_shape){
        .patch_size = s->patch_size,
        .in_chans = 3,
        .mlp_ratio = 4,
        .head_dim = s->head_dim,
        .min_embed_dim = s->min_embed_dim,
        .max_embed_dim = s->max_embed_dim,
        .width_interval = s->width_interval,
        .min_depth = s->min_depth,
        .max_depth = s->max_depth,
        .depth_interval = s->depth_interval,
        .qkv_bias = s->qkv_bias,
        .proj_bias = s->proj_bias,
        .ffn_bias = s->ffn_bias,
        .img_size = cfg->crops.global_crops_size,
        .global_crops_size = cfg->crops.global_crops_size,
        .local_crops_size = cfg->crops.local_crops_size,
        .n_heads = cfg->dino.head_n_prototypes.n,
        .head_n_prototypes = cfg->dino.head_n_prototypes.v,
        .head_hidden_dim = cfg->dino.head_hidden_dim,
        .head_bottleneck_dim = cfg->dino.head_bottleneck_dim,
        .head_nlayers = cfg->dino.head_nlayers,
        .extracted = false,
    };
}

static poa_cfg_key_id key_id_of(const char *name)
{
    const poa_cfg_key *k = name ? poa_config_find_key(name) : NULL;
    return k ? key_id(k) : NOKEY;
}

/* The one model check (common/arch.h), citing the origins of the keys at fault. */
static poa_status validate_model(const poa_config *cfg, poa_err *err)
{
    poa_arch_shape shape = arch_shape(cfg);
    poa_arch_fault fault;
    if (!poa_arch_shape_check(&shape, &fault)) {
        poa_cfg_key_id a = key_id_of(fault.key), b = key_id_of(fault.other);
        if (a == NOKEY) return poa_err_set(err, POA_ERR_CONFIG, "%s", fault.msg);
        return rule_error(cfg, a, b, err, "%s", fault.msg);
    }
    if (!cfg->student.drop_path_uniform)
        return rule_error(cfg, POA_CFG_KEY_student_drop_path_uniform, NOKEY, err,
                          "student.drop_path_uniform = false is not supported (POA uses true)");
    return POA_OK;
}

static poa_status validate_crops(const poa_config *cfg, poa_err *err)
{
    /* the crops are whole patches: checked with the model (validate_model) */
    int p = cfg->student.patch_size;
    if ((cfg->crops.global_crops_size / p) % cfg->train.scale_for_num_patch)
        return rule_error(cfg, POA_CFG_KEY_train_scale_for_num_patch,
                          POA_CFG_KEY_crops_global_crops_size, err,
                          "the global patch grid %d is not a multiple of train.scale_for_num_patch "
                          "= %d",
                          cfg->crops.global_crops_size / p, cfg->train.scale_for_num_patch);
    static const struct {
        poa_cfg_key_id id;
        bool positive; /* the lower bound must be > 0 */
    } ranges[] = {{POA_CFG_KEY_crops_global_crops_scale, true},
                  {POA_CFG_KEY_crops_local_crops_scale, true},
                  {POA_CFG_KEY_ibot_mask_ratio_min_max, false}};
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
        const poa_cfg_float_list *l = poa_config_value_cptr(cfg, &key_table[ranges[i].id]);
        if (l->v[0] > l->v[1] || (ranges[i].positive && l->v[0] <= 0))
            return rule_error(
                cfg, ranges[i].id, NOKEY, err, "%s = [%g, %g] must be [min, max] with %smin <= max",
                key_table[ranges[i].id].name, l->v[0], l->v[1], ranges[i].positive ? "0 < " : "");
    }
    return POA_OK;
}

static poa_status validate_training(const poa_config *cfg, poa_err *err)
{
    if (cfg->ibot.separate_head)
        return rule_error(cfg, POA_CFG_KEY_ibot_separate_head, NOKEY, err,
                          "ibot.separate_head = true is not supported (POA shares the DINO heads)");
    if (cfg->optim.warmup_epochs > cfg->optim.epochs)
        return rule_error(cfg, POA_CFG_KEY_optim_warmup_epochs, POA_CFG_KEY_optim_epochs, err,
                          "optim.warmup_epochs = %d exceeds optim.epochs = %d",
                          cfg->optim.warmup_epochs, cfg->optim.epochs);
    if (poa_config_total_iterations(cfg) > INT_MAX)
        return rule_error(
            cfg, POA_CFG_KEY_optim_epochs, POA_CFG_KEY_train_OFFICIAL_EPOCH_LENGTH, err,
            "optim.epochs x train.OFFICIAL_EPOCH_LENGTH = %lld iterations is too many",
            poa_config_total_iterations(cfg));
    if (cfg->dino.loss_weight > 0 && cfg->dino.koleo_loss_weight > 0 &&
        cfg->train.batch_size_per_gpu < 2)
        return rule_error(cfg, POA_CFG_KEY_train_batch_size_per_gpu,
                          POA_CFG_KEY_dino_koleo_loss_weight, err,
                          "KoLeo needs train.batch_size_per_gpu >= 2 (nearest neighbour within the "
                          "rank group)");
    if (cfg->ibot.loss_weight > 0 &&
        (cfg->ibot.mask_sample_probability <= 0 || cfg->ibot.mask_ratio_min_max.v[1] <= 0))
        return rule_error(cfg, POA_CFG_KEY_ibot_mask_sample_probability,
                          POA_CFG_KEY_ibot_loss_weight, err,
                          "the iBOT loss needs ibot.mask_sample_probability > 0 and a positive "
                          "maximum in ibot.mask_ratio_min_max");
    return POA_OK;
}

poa_status poa_config_validate(const poa_config *cfg, poa_err *err)
{
    poa_status st;
    if ((st = validate_ranges(cfg, err)) != POA_OK) return st;
    if ((st = validate_model(cfg, err)) != POA_OK) return st;
    if ((st = validate_crops(cfg, err)) != POA_OK) return st;
    return validate_training(cfg, err);
}

/* ============================================================ output */

static void write_wrapped(FILE *out, const char *indent, const char *marker, const char *text)
{
    /* wrap at ~96 columns */
    const char *p = text;
    while (*p) {
        size_t room = 94 - strlen(indent), n = strlen(p);
        if (n > room) {
            n = room;
            while (n > 0 && p[n] != ' ') n--;
            if (n == 0) n = room;
        }
        fprintf(out, "%s%s%.*s\n", indent, marker, (int) n, p);
        p += n;
        while (*p == ' ') p++;
    }
}

poa_status poa_config_write_yaml(const poa_config *cfg, FILE *out, bool comments, poa_err *err)
{
    fprintf(out, "# poa effective configuration (reload with --config FILE; key reference: "
                 "poa-config --help)\n");
    const char *section = "";
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        const poa_cfg_key *k = &key_table[i];
        if (strcmp(section, k->section) != 0) {
            section = k->section;
            for (int s = 0; comments && s < N_SECTIONS; s++)
                if (!strcmp(section_table[s].name, section)) {
                    fputc('\n', out);
                    write_wrapped(out, "", "# ", section_table[s].help);
                }
            fprintf(out, "%s:\n", section);
        }
        char v[POA_CFG_STR_MAX * 2];
        if (comments) {
            char h[1200];
            snprintf(h, sizeof h, "%s%s", k->official ? "" : "[poa] ", k->help);
            write_wrapped(out, "  ", "# ", h);
        }
        fprintf(out, "  %s: %s\n", k->leaf, poa_config_format_value(cfg, k, v, sizeof v));
    }
    if (ferror(out)) return poa_err_set(err, POA_ERR_IO, "cannot write the configuration");
    return POA_OK;
}

poa_status poa_config_save(const poa_config *cfg, const char *path, bool comments, poa_err *err)
{
    char tmp[POA_CFG_STR_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return poa_err_set(err, POA_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    poa_status st = poa_config_write_yaml(cfg, f, comments, err);
    if (fclose(f) != 0 && st == POA_OK)
        st = poa_err_set(err, POA_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    if (st == POA_OK && rename(tmp, path) != 0)
        st =
            poa_err_set(err, POA_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (st != POA_OK) {
        remove(tmp);
        return poa_err_prefix(err, "saving the configuration to %s", path);
    }
    return POA_OK;
}

void poa_config_print(const poa_config *cfg, FILE *out)
{
    fprintf(out, "effective configuration (%d keys; origin shown where not the default):\n",
            (int) POA_CFG_NKEYS);
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        char v[POA_CFG_STR_MAX * 2], o[POA_CFG_STR_MAX + 32];
        poa_config_format_value(cfg, &key_table[i], v, sizeof v);
        if (cfg->origin[i].source == POA_CFG_SRC_DEFAULT)
            fprintf(out, "  %-40s %s\n", key_table[i].name, v);
        else
            fprintf(out, "  %-40s %-24s # %s\n", key_table[i].name, v,
                    poa_config_format_origin(cfg, (poa_cfg_key_id) i, o, sizeof o));
    }
    fflush(out);
}

static void describe_domain(const poa_cfg_key *k, char *buf, size_t len)
{
    char r[256];
    switch (k->type) {
    case POA_CFG_TYPE_INT:
    case POA_CFG_TYPE_FLOAT:
        format_range(k, r, sizeof r);
        snprintf(buf, len, "%s in %s", poa_cfg_type_name(k->type), r);
        break;
    case POA_CFG_TYPE_ENUM:
        format_choices(k, r, sizeof r);
        snprintf(buf, len, "one of {%s}", r);
        break;
    case POA_CFG_TYPE_INT_LIST:
    case POA_CFG_TYPE_FLOAT_LIST:
        format_range(k, r, sizeof r);
        if (k->min_len == k->max_len)
            snprintf(buf, len, "%s, %d values in %s", poa_cfg_type_name(k->type), k->min_len, r);
        else
            snprintf(buf, len, "%s, %d to %d values in %s", poa_cfg_type_name(k->type), k->min_len,
                     k->max_len, r);
        break;
    default:
        snprintf(buf, len, "%s", poa_cfg_type_name(k->type));
        break;
    }
}

void poa_config_help(FILE *out)
{
    poa_config def;
    poa_config_defaults(&def);
    fprintf(out, "Configuration keys (YAML sections, or key=value on the command line; [poa] = "
                 "not in the official POA configuration):\n");
    const char *section = "";
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        const poa_cfg_key *k = &key_table[i];
        if (strcmp(section, k->section) != 0) {
            section = k->section;
            for (int s = 0; s < N_SECTIONS; s++)
                if (!strcmp(section_table[s].name, section))
                    fprintf(out, "\n%s: %s\n", section, section_table[s].help);
        }
        char v[POA_CFG_STR_MAX * 2], d[512];
        poa_config_format_value(&def, k, v, sizeof v);
        describe_domain(k, d, sizeof d);
        fprintf(out, "  %s = %s   (%s)%s\n", k->name, v, d, k->official ? "" : " [poa]");
        write_wrapped(out, "      ", "", k->help);
    }
}

void poa_config_help_markdown(FILE *out)
{
    poa_config def;
    poa_config_defaults(&def);
    fprintf(out, "| key | type and range | default | origin | meaning |\n|---|---|---|---|---|\n");
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        const poa_cfg_key *k = &key_table[i];
        char v[POA_CFG_STR_MAX * 2], d[512];
        poa_config_format_value(&def, k, v, sizeof v);
        describe_domain(k, d, sizeof d);
        fprintf(out, "| `%s` | %s | `%s` | %s | ", k->name, d, v, k->official ? "official" : "poa");
        for (const char *p = k->help; *p; p++) {
            if (*p == '|')
                fputs("\\|", out);
            else
                fputc(*p, out);
        }
        fputs(" |\n", out);
    }
}
