/* config_set.c — from text to values: the scalar and list parsers shared by the YAML loader
 * (config_yaml.c) and the key=value overrides of the command line, with the type and range
 * errors that name the place of the text. */
#include "common/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

poa_status poa_cfg_type_error(const char *where, const poa_cfg_key *k, const char *got,
                              poa_err *err)
{
    if (k->type == POA_CFG_TYPE_ENUM) {
        char ch[512];
        poa_cfg_format_choices(k, ch, sizeof ch);
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

/* Offset of the first byte that makes s not well-formed UTF-8, or -1 when it is fine.  Every
 * string value must be: the effective configuration is saved as YAML with every run and must
 * read back to the same value, and libyaml refuses what is not well-formed (control characters
 * are fine: they are saved escaped, config_print.c).  Well-formed as Unicode defines it: no
 * overlong forms, no surrogates (U+D800..DFFF), nothing above U+10FFFF. */
static long bad_text_at(const char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    for (long i = 0; p[i];) {
        const unsigned c = p[i];
        unsigned lo = 0x80, hi = 0xBF; /* the second byte's range */
        int extra;
        if (c < 0x80) {
            extra = 0;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0) lo = 0xA0; /* overlong below U+0800 */
            if (c == 0xED) hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0) lo = 0x90; /* overlong below U+10000 */
            if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
        } else {
            return i;
        }
        for (int k = 1; k <= extra; k++) {
            const unsigned b = p[i + k]; /* a NUL fails here, before anything past it is read */
            if (k == 1 ? b < lo || b > hi : (b & 0xC0) != 0x80) return i;
        }
        i += 1 + extra;
    }
    return -1;
}

static poa_status range_error(const char *where, const poa_cfg_key *k, const char *text,
                              poa_err *err)
{
    char r[128];
    poa_cfg_format_range(k, r, sizeof r);
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
        if (is_null || !parse_bool(text, out)) return poa_cfg_type_error(where, k, got, err);
        return POA_OK;
    case POA_CFG_TYPE_INT:
    case POA_CFG_TYPE_INT_LIST: {
        int v;
        if (is_null || !parse_int(text, &v)) return poa_cfg_type_error(where, k, got, err);
        if (v < k->min || v > k->max) return range_error(where, k, text, err);
        *(int *) out = v;
        return POA_OK;
    }
    case POA_CFG_TYPE_FLOAT:
    case POA_CFG_TYPE_FLOAT_LIST: {
        double v;
        if (is_null || !parse_float(text, &v)) return poa_cfg_type_error(where, k, got, err);
        if (v < k->min || v > k->max) return range_error(where, k, text, err);
        *(double *) out = v;
        return POA_OK;
    }
    case POA_CFG_TYPE_STRING:
        if (strlen(text) >= POA_CFG_STR_MAX)
            return poa_err_set(err, POA_ERR_CONFIG, "%s: %s: value longer than %d characters",
                               where, k->name, POA_CFG_STR_MAX - 1);
        if (!is_null && bad_text_at(text) >= 0)
            return poa_err_set(
                err, POA_ERR_CONFIG, "%s: %s: byte %ld of the value (0x%02x) is not UTF-8", where,
                k->name, bad_text_at(text) + 1, (unsigned char) text[bad_text_at(text)]);
        snprintf(out, POA_CFG_STR_MAX, "%s", is_null ? "" : text);
        return POA_OK;
    case POA_CFG_TYPE_ENUM:
        for (int i = 0; !is_null && i < k->n_choices; i++)
            if (strcmp(text, k->choices[i]) == 0) return *(int *) out = i, POA_OK;
        return poa_cfg_type_error(where, k, got, err);
    }
    return POA_ERR_INTERNAL;
}

static bool is_list(const poa_cfg_key *k)
{
    return k->type == POA_CFG_TYPE_INT_LIST || k->type == POA_CFG_TYPE_FLOAT_LIST;
}

poa_status poa_cfg_set_scalar(poa_config *cfg, const poa_cfg_key *k, const char *text, bool is_null,
                              poa_cfg_origin origin, const char *where, poa_err *err)
{
    if (is_list(k)) {
        char got[300];
        snprintf(got, sizeof got, is_null ? "null" : "'%.256s'", text);
        return poa_cfg_type_error(where, k, got, err);
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
    cfg->origin[poa_cfg_key_index(k)] = origin;
    return POA_OK;
}

poa_status poa_cfg_set_list(poa_config *cfg, const poa_cfg_key *k, char *const *items, int n,
                            poa_cfg_origin origin, const char *where, poa_err *err)
{
    if (!is_list(k)) return poa_cfg_type_error(where, k, "a list", err);
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
    cfg->origin[poa_cfg_key_index(k)] = origin;
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
    if (!k) return poa_cfg_unknown_key_error(where, key, err);
    if (is_list(k)) {
        char buf[4096], *items[POA_CFG_LIST_MAX + 1];
        snprintf(buf, sizeof buf, "%s", text);
        int n = split_list(buf, items, POA_CFG_LIST_MAX + 1);
        if (n < 0) n = POA_CFG_LIST_MAX + 1;
        return poa_cfg_set_list(cfg, k, items, n, origin, where, err);
    }
    if (k->type == POA_CFG_TYPE_STRING)
        return poa_cfg_set_scalar(cfg, k, text, false, origin, where, err);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    trim(buf);
    return poa_cfg_set_scalar(cfg, k, buf, false, origin, where, err);
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
