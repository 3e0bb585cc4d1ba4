/* config_print.c — values as YAML text, the effective configuration (printed, saved), the key
 * reference of --help and its Markdown table (configs/README.md). */
#include "common/config_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shortest decimal that reads back to the same double, shaped as a YAML 1.1 float
 * ("1.0e-05", "3.0") so PyYAML/OmegaConf also read it as a float. */
void poa_cfg_format_double(double v, char *buf, size_t len)
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

/* The code point of the UTF-8 sequence at p, its length in *n.  String values are well-formed
 * (checked when they are set: config_set.c). */
static unsigned utf8_at(const unsigned char *p, int *n)
{
    if (p[0] < 0x80) return *n = 1, p[0];
    if (p[0] < 0xE0) return *n = 2, (p[0] & 0x1Fu) << 6 | (p[1] & 0x3Fu);
    if (p[0] < 0xF0) return *n = 3, (p[0] & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);
    return *n = 4,
           (p[0] & 0x07u) << 18 | (p[1] & 0x3Fu) << 12 | (p[2] & 0x3Fu) << 6 | (p[3] & 0x3Fu);
}

/* What a YAML reader must not meet raw in a double-quoted scalar: the C0 and C1 controls and
 * DEL (libyaml refuses them), NEL, LS and PS (line breaks, which a quoted scalar folds), the
 * byte-order mark and the non-characters U+FFFE, U+FFFF. */
static int yaml_escaped(unsigned c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x2028 || c == 0x2029 || c == 0xFEFF ||
           c == 0xFFFE || c == 0xFFFF;
}

/* Double-quoted YAML string with escapes: at most 6 characters per code point, which is at most
 * 4 per byte (POA_CFG_VALUE_TEXT_MAX). */
static void format_string(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    if (len < 3) return;
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *) s; *p && o + 7 < len;) {
        int n;
        const unsigned c = utf8_at(p, &n);
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char) c;
        } else if (yaml_escaped(c)) {
            o += (size_t) snprintf(buf + o, len - o, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
        } else {
            memcpy(buf + o, p, (size_t) n);
            o += (size_t) n;
        }
        p += n;
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
        poa_cfg_format_double(*(const double *) v, buf, len);
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
                poa_cfg_format_double(fl->v[i], num, sizeof num);
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
        char va[POA_CFG_VALUE_TEXT_MAX], vb[POA_CFG_VALUE_TEXT_MAX];
        poa_config_format_value(a, &poa_cfg_key_table[i], va, sizeof va);
        poa_config_format_value(b, &poa_cfg_key_table[i], vb, sizeof vb);
        if (strcmp(va, vb) != 0) return poa_cfg_key_table[i].name;
    }
    return NULL;
}

void poa_cfg_format_range(const poa_cfg_key *k, char *buf, size_t len)
{
    if (k->type == POA_CFG_TYPE_INT || k->type == POA_CFG_TYPE_INT_LIST) {
        snprintf(buf, len, "[%.0f, %.0f]", k->min, k->max);
        return;
    }
    char lo[64], hi[64];
    poa_cfg_format_double(k->min, lo, sizeof lo);
    poa_cfg_format_double(k->max, hi, sizeof hi);
    snprintf(buf, len, "[%s, %s]", lo, hi);
}

void poa_cfg_format_choices(const poa_cfg_key *k, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < k->n_choices; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? ", " : "", k->choices[i]);
    }
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
        const poa_cfg_key *k = &poa_cfg_key_table[i];
        if (strcmp(section, k->section) != 0) {
            section = k->section;
            const char *help = comments ? poa_cfg_section_help(section) : NULL;
            if (help) {
                fputc('\n', out);
                write_wrapped(out, "", "# ", help);
            }
            fprintf(out, "%s:\n", section);
        }
        char v[POA_CFG_VALUE_TEXT_MAX];
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
        char v[POA_CFG_VALUE_TEXT_MAX], o[POA_CFG_STR_MAX + 32];
        poa_config_format_value(cfg, &poa_cfg_key_table[i], v, sizeof v);
        if (cfg->origin[i].source == POA_CFG_SRC_DEFAULT)
            fprintf(out, "  %-40s %s\n", poa_cfg_key_table[i].name, v);
        else
            fprintf(out, "  %-40s %-24s # %s\n", poa_cfg_key_table[i].name, v,
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
        poa_cfg_format_range(k, r, sizeof r);
        snprintf(buf, len, "%s in %s", poa_cfg_type_name(k->type), r);
        break;
    case POA_CFG_TYPE_ENUM:
        poa_cfg_format_choices(k, r, sizeof r);
        snprintf(buf, len, "one of {%s}", r);
        break;
    case POA_CFG_TYPE_INT_LIST:
    case POA_CFG_TYPE_FLOAT_LIST:
        poa_cfg_format_range(k, r, sizeof r);
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
        const poa_cfg_key *k = &poa_cfg_key_table[i];
        if (strcmp(section, k->section) != 0) {
            section = k->section;
            const char *help = poa_cfg_section_help(section);
            if (help) fprintf(out, "\n%s: %s\n", section, help);
        }
        char v[POA_CFG_VALUE_TEXT_MAX], d[512];
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
        const poa_cfg_key *k = &poa_cfg_key_table[i];
        char v[POA_CFG_VALUE_TEXT_MAX], d[512];
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
