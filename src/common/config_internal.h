/* config_internal.h — what the parts of the configuration (config_*.c) share; not for other
 * modules, which use config.h.
 *
 *   config_keys.c      the key table (config_keys.def), lookups, suggestions, defaults
 *   config_set.c       text -> value: the parsers shared by the YAML loader and key=value overrides
 *   config_yaml.c      walking a YAML file (libyaml events) into keys
 *   config_validate.c  finalize (presets, derived values) and the range and cross-key rules
 *   config_print.c     values as YAML text, the effective configuration, --help, the key reference
 */
#ifndef POA_COMMON_CONFIG_INTERNAL_H
#define POA_COMMON_CONFIG_INTERNAL_H

#include "common/config.h"
#include "common/poa_error.h"

#include <stdbool.h>
#include <stddef.h>

/* ---- config_keys.c */
/* The key table, indexed by poa_cfg_key_id. */
extern const poa_cfg_key poa_cfg_key_table[POA_CFG_NKEYS];
static inline poa_cfg_key_id poa_cfg_key_index(const poa_cfg_key *k)
{
    return (poa_cfg_key_id) (k - poa_cfg_key_table);
}
/* Help text of a section ("optim"), NULL when there is no such section. */
const char *poa_cfg_section_help(const char *section);
/* "<where>: unknown key '<name>'; did you mean '<closest>'? ..." (POA_ERR_CONFIG). */
poa_status poa_cfg_unknown_key_error(const char *where, const char *name, poa_err *err);
/* Whether name is a section ("optim") or a mapping inside one. */
bool poa_cfg_is_section_prefix(const char *name);
/* Official keys that poa accepts and ignores (FSDP internals). */
bool poa_cfg_is_ignored(const char *name);

/* ---- config_set.c */
/* "<where>: <key>: expected <type>, got <got>" (POA_ERR_CONFIG). */
poa_status poa_cfg_type_error(const char *where, const poa_cfg_key *k, const char *got,
                              poa_err *err);
/* Parse and set a scalar key (is_null: a YAML null); the value's origin becomes `origin`. */
poa_status poa_cfg_set_scalar(poa_config *cfg, const poa_cfg_key *k, const char *text, bool is_null,
                              poa_cfg_origin origin, const char *where, poa_err *err);
/* Parse and set a list key from n item texts. */
poa_status poa_cfg_set_list(poa_config *cfg, const poa_cfg_key *k, char *const *items, int n,
                            poa_cfg_origin origin, const char *where, poa_err *err);

/* ---- config_print.c */
/* Shortest decimal that reads back to the same double, as a YAML 1.1 float. */
void poa_cfg_format_double(double v, char *buf, size_t len);
/* A key's range "[lo, hi]" / its choices "a, b, c". */
void poa_cfg_format_range(const poa_cfg_key *k, char *buf, size_t len);
void poa_cfg_format_choices(const poa_cfg_key *k, char *buf, size_t len);

#endif
