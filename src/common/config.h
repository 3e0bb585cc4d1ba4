/* config.h — the run configuration: one typed struct generated from config_keys.def, YAML files
 * (libyaml), `key=value` command-line overrides, validation, and the effective configuration
 * printed at start and saved with every run.
 *
 * Key names are the official POA ones, dotted: `optim.base_lr` is `cfg->optim.base_lr`.
 * Typical use (cli.h wraps it):
 *
 *     poa_config cfg;
 *     poa_config_defaults(&cfg);
 *     poa_config_load_yaml(&cfg, "configs/tiny.yaml", &err);        // may be called repeatedly
 *     poa_config_set_override(&cfg, "optim.epochs=8", &err);         // command line wins
 *     poa_config_finalize(&cfg, world_size, &err);                   // presets, derived, checks
 *
 * Every value remembers where it came from (default, file:line:column, command line, preset,
 * derived), so validation errors cite the place to fix.  Errors return POA_ERR_CONFIG (or
 * POA_ERR_NOTFOUND / POA_ERR_IO for files) with a message in the poa_err.
 *
 * Implementation, by concern (config_internal.h): config_keys.c (key table, lookups, defaults),
 * config_set.c (text -> values, overrides), config_yaml.c (YAML files), config_validate.c
 * (finalize, checks), config_print.c (printing, saving, --help, the key reference).
 */
#ifndef POA_COMMON_CONFIG_H
#define POA_COMMON_CONFIG_H

#include "common/poa_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define POA_CFG_STR_MAX 1024 /* longest string value + 1 (paths)                 */
/* Room for a value formatted as YAML: a string in double quotes, each control character
 * escaped as \xNN (4 bytes), so that every value fits and reads back the same. */
#define POA_CFG_VALUE_TEXT_MAX (4 * POA_CFG_STR_MAX + 8)
#define POA_CFG_LIST_MAX       8 /* longest list value                               */
#define POA_CFG_MAX_FILES      8 /* config files one configuration can be read from  */

typedef struct poa_cfg_int_list {
    int n;
    int v[POA_CFG_LIST_MAX];
} poa_cfg_int_list;

typedef struct poa_cfg_float_list {
    int n;
    double v[POA_CFG_LIST_MAX];
} poa_cfg_float_list;

/* ---- enums of the enum keys: constants named in config_keys.def ------------------------- */
#define POA_CFG_CHOICE_CONSTANT(constant, text) constant,
#define POA_CFG_ENUM(kind, sec, key, def, help)                                                    \
    typedef enum { POA_CFG_CHOICES_##sec##_##key(POA_CFG_CHOICE_CONSTANT) } poa_cfg_##sec##_##key;
#include "common/config_keys.def"
#undef POA_CFG_ENUM

/* ---- key ids: POA_CFG_KEY_optim_base_lr ... ------------------------------------------------ */
#define POA_CFG_ID(sec, key)                    POA_CFG_KEY_##sec##_##key,
#define POA_CFG_BOOL(kind, sec, key, ...)       POA_CFG_ID(sec, key)
#define POA_CFG_INT(kind, sec, key, ...)        POA_CFG_ID(sec, key)
#define POA_CFG_FLOAT(kind, sec, key, ...)      POA_CFG_ID(sec, key)
#define POA_CFG_STRING(kind, sec, key, ...)     POA_CFG_ID(sec, key)
#define POA_CFG_ENUM(kind, sec, key, ...)       POA_CFG_ID(sec, key)
#define POA_CFG_INT_LIST(kind, sec, key, ...)   POA_CFG_ID(sec, key)
#define POA_CFG_FLOAT_LIST(kind, sec, key, ...) POA_CFG_ID(sec, key)
typedef enum poa_cfg_key_id {
#include "common/config_keys.def"
    POA_CFG_NKEYS
} poa_cfg_key_id;
#undef POA_CFG_BOOL
#undef POA_CFG_INT
#undef POA_CFG_FLOAT
#undef POA_CFG_STRING
#undef POA_CFG_ENUM
#undef POA_CFG_INT_LIST
#undef POA_CFG_FLOAT_LIST

/* Where a value came from. */
typedef enum poa_cfg_source {
    POA_CFG_SRC_DEFAULT = 0, /* the table's default (official ViT-L recipe)               */
    POA_CFG_SRC_FILE,        /* a YAML file: origin.file/line/column                      */
    POA_CFG_SRC_CLI,         /* a key=value argument                                       */
    POA_CFG_SRC_PRESET,      /* filled in by the student.arch preset                       */
    POA_CFG_SRC_DERIVED,     /* computed by poa_config_finalize (optim.lr, checkpoint period) */
} poa_cfg_source;

typedef struct poa_cfg_origin {
    poa_cfg_source source;
    int file; /* index into poa_config.files (POA_CFG_SRC_FILE)  */
    int line, column;
} poa_cfg_origin;

/* ---- the configuration --------------------------------------------------------------------- */
#define POA_CFG_SECTION(sec, help) struct {
#define POA_CFG_END(sec)                                                                           \
    }                                                                                              \
    sec;
#define POA_CFG_BOOL(kind, sec, key, ...)       bool key;
#define POA_CFG_INT(kind, sec, key, ...)        int key;
#define POA_CFG_FLOAT(kind, sec, key, ...)      double key;
#define POA_CFG_STRING(kind, sec, key, ...)     char key[POA_CFG_STR_MAX];
#define POA_CFG_ENUM(kind, sec, key, ...)       int key; /* poa_cfg_<sec>_<key> */
#define POA_CFG_INT_LIST(kind, sec, key, ...)   poa_cfg_int_list key;
#define POA_CFG_FLOAT_LIST(kind, sec, key, ...) poa_cfg_float_list key;
typedef struct poa_config {
#include "common/config_keys.def"
    poa_cfg_origin origin[POA_CFG_NKEYS]; /* indexed by poa_cfg_key_id */
    int n_files;
    char files[POA_CFG_MAX_FILES][POA_CFG_STR_MAX];
    int world_size; /* MPI ranks the derived values were computed for (poa_config_finalize) */
} poa_config;
#undef POA_CFG_SECTION
#undef POA_CFG_END
#undef POA_CFG_BOOL
#undef POA_CFG_INT
#undef POA_CFG_FLOAT
#undef POA_CFG_STRING
#undef POA_CFG_ENUM
#undef POA_CFG_INT_LIST
#undef POA_CFG_FLOAT_LIST
#undef POA_CFG_ID

/* ---- the key table (for generic code: printing, help, tests) --------------------------------- */
typedef enum poa_cfg_type {
    POA_CFG_TYPE_BOOL,
    POA_CFG_TYPE_INT,
    POA_CFG_TYPE_FLOAT,
    POA_CFG_TYPE_STRING,
    POA_CFG_TYPE_ENUM,
    POA_CFG_TYPE_INT_LIST,
    POA_CFG_TYPE_FLOAT_LIST,
} poa_cfg_type;

typedef struct poa_cfg_key {
    const char *name;    /* "optim.base_lr"                                    */
    const char *section; /* "optim"                                            */
    const char *leaf;    /* "base_lr"                                          */
    poa_cfg_type type;
    bool official;              /* key of the official POA configuration (else poa-specific) */
    size_t offset;              /* of the value in poa_config                               */
    double min, max;            /* value range (int, float, list elements), inclusive */
    int min_len, max_len;       /* lists                                              */
    const char *const *choices; /* enums: NULL-terminated, index = C constant    */
    int n_choices;
    const char *help;
} poa_cfg_key;

/* The table, in declaration order (sections in the official file's order). */
const poa_cfg_key *poa_config_keys(void);
const poa_cfg_key *poa_config_key(poa_cfg_key_id id);
/* Exact (case-sensitive) lookup; NULL if there is no such key. */
const poa_cfg_key *poa_config_find_key(const char *name);
/* The valid key closest to `name` (case-insensitive edit distance on dotted names). */
const poa_cfg_key *poa_config_closest_key(const char *name);
/* Edit distance (Levenshtein), case-insensitive; used for suggestions. */
int poa_levenshtein(const char *a, const char *b);
const char *poa_cfg_type_name(poa_cfg_type t); /* "float", "list of int", ... */

/* ---- building a configuration ---------------------------------------------------------------- */
/* Every key to its default (the official ViT-L recipe); origins cleared. */
void poa_config_defaults(poa_config *cfg);

/* Merge a YAML file: nested mappings give dotted keys; values overwrite earlier ones.  Errors
 * name `path:line:column`: malformed YAML, unknown key (with the closest valid key), wrong type
 * (with the expected type), out-of-range value, duplicate key.  A missing file is
 * POA_ERR_NOTFOUND.  On error cfg may be partly updated. */
poa_status poa_config_load_yaml(poa_config *cfg, const char *path, poa_err *err);
/* fopen(path, "rb") with the loader's messages (missing: POA_ERR_NOTFOUND; a directory or
 * unreadable: POA_ERR_IO); NULL on error. */
FILE *poa_config_open_file(const char *path, poa_err *err);
/* Same, from a string; `name` is used in messages in place of a path. */
poa_status poa_config_load_yaml_string(poa_config *cfg, const char *name, const char *text,
                                       poa_err *err);

/* One command-line override "key=value" (value parsed with the same rules as YAML scalars;
 * lists as "[a,b]" or "a,b").  Source: command line. */
poa_status poa_config_set_override(poa_config *cfg, const char *assignment, poa_err *err);
/* Set one key from text; `origin` says where the text came from (for later messages). */
poa_status poa_config_set_text(poa_config *cfg, const char *key, const char *text,
                               poa_cfg_origin origin, poa_err *err);

/* After all files and overrides: fill the student.arch preset into keys still at their default,
 * compute derived values (optim.lr from the scaling rule with the global batch
 * train.batch_size_per_gpu x train.rank_groups x world_size; train.checkpoint_period_iterations
 * 0 → 3 epochs), and validate (poa_config_validate). */
poa_status poa_config_finalize(poa_config *cfg, int world_size, poa_err *err);
/* Range and cross-key rules (each error cites the origin of the offending value). */
poa_status poa_config_validate(const poa_config *cfg, poa_err *err);

/* ---- reading values generically ----------------------------------------------------------------
 */
/* Pointer to the value of a key inside cfg (type as in the key's poa_cfg_type). */
void *poa_config_value_ptr(poa_config *cfg, const poa_cfg_key *key);
const void *poa_config_value_cptr(const poa_config *cfg, const poa_cfg_key *key);
/* The value as YAML text ("0.004", "[8192, 16384]", "true", "sinkhorn_knopp", "'a path'");
 * floats in the shortest form that reads back to the same double. Returns buf. */
char *poa_config_format_value(const poa_config *cfg, const poa_cfg_key *key, char *buf, size_t len);
/* "configs/tiny.yaml:12:3", "command line", "default", "student.arch preset", "derived". */
char *poa_config_format_origin(const poa_config *cfg, poa_cfg_key_id id, char *buf, size_t len);
/* Name of the first key whose value differs between a and b, or NULL when all are equal. */
const char *poa_config_first_difference(const poa_config *a, const poa_config *b);
/* The text of an enum value ("sinkhorn_knopp"). */
const char *poa_config_enum_text(poa_cfg_key_id id, int value);

/* ---- derived quantities used by the training code ----------------------------------------------
 */
/* Total images per iteration: batch_size_per_gpu x rank_groups x world_size. */
long long poa_config_global_batch(const poa_config *cfg, int world_size);
/* Total iterations: optim.epochs x train.OFFICIAL_EPOCH_LENGTH. */
long long poa_config_total_iterations(const poa_config *cfg);

/* ---- output -------------------------------------------------------------------------------------
 */
/* Nested YAML of every key, re-loadable (round trip).  With comments: each key's help above it. */
poa_status poa_config_write_yaml(const poa_config *cfg, FILE *out, bool comments, poa_err *err);
/* Write to path via a temporary file + rename (what every run saves as output_dir/config.yaml). */
poa_status poa_config_save(const poa_config *cfg, const char *path, bool comments, poa_err *err);
/* The effective configuration, one key per line, with the origin of every non-default value. */
void poa_config_print(const poa_config *cfg, FILE *out);
/* Key reference: name, type, default, range or choices, help. */
void poa_config_help(FILE *out);
/* The same as a Markdown table (configs/README.md). */
void poa_config_help_markdown(FILE *out);

#endif
