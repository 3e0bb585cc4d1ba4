/* config_keys.c — the key table, generated from config_keys.def with the struct of config.h:
 * lookups, suggestions for mistyped keys, defaults, value pointers. */
#include "common/config_internal.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

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
const poa_cfg_key poa_cfg_key_table[POA_CFG_NKEYS] = {
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

const char *poa_cfg_section_help(const char *section)
{
    for (size_t s = 0; s < sizeof section_table / sizeof section_table[0]; s++)
        if (!strcmp(section_table[s].name, section)) return section_table[s].help;
    return NULL;
}

/* Official keys that poa accepts and ignores: FSDP sharding/mixed-precision internals. */
static const char *const ignored_prefixes[] = {"compute_precision.teacher",
                                               "compute_precision.student"};

const poa_cfg_key *poa_config_keys(void)
{
    return poa_cfg_key_table;
}

const poa_cfg_key *poa_config_key(poa_cfg_key_id id)
{
    return (int) id >= 0 && id < POA_CFG_NKEYS ? &poa_cfg_key_table[id] : NULL;
}

const poa_cfg_key *poa_config_find_key(const char *name)
{
    for (int i = 0; i < POA_CFG_NKEYS; i++)
        if (strcmp(poa_cfg_key_table[i].name, name) == 0) return &poa_cfg_key_table[i];
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
    const poa_cfg_key *best = &poa_cfg_key_table[0];
    int best_d = INT_MAX;
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        int d = key_distance(name, &poa_cfg_key_table[i]);
        if (d < best_d) best_d = d, best = &poa_cfg_key_table[i];
    }
    return best;
}

poa_status poa_cfg_unknown_key_error(const char *where, const char *name, poa_err *err)
{
    const poa_cfg_key *k = poa_config_closest_key(name);
    return poa_err_set(err, POA_ERR_CONFIG,
                       "%s: unknown key '%s'; did you mean '%s'? (poa-config --help lists every "
                       "key)",
                       where, name, k->name);
}

bool poa_cfg_is_section_prefix(const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < POA_CFG_NKEYS; i++)
        if (strncmp(poa_cfg_key_table[i].name, name, n) == 0 && poa_cfg_key_table[i].name[n] == '.')
            return true;
    return false;
}

bool poa_cfg_is_ignored(const char *name)
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
