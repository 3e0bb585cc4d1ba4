/* config_yaml.c — a YAML configuration file (libyaml events) into keys: nested mappings give
 * dotted names; every value remembers file:line:column. */
#include "common/config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

typedef struct yaml_ctx {
    yaml_parser_t parser;
    poa_config *cfg;
    const char *name; /* path shown in messages */
    int file;         /* index into cfg->files */
    int seen_line[POA_CFG_NKEYS];
    int depth; /* mappings open below the top level */
    poa_err *err;
} yaml_ctx;

/* Configuration keys are at most a few levels deep; deeper input is an error, not a recursion
 * as deep as the file is long. */
#define MAX_MAPPING_DEPTH 8

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
    int id = poa_cfg_key_index(k);
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
    if (st == POA_OK)
        st = poa_cfg_set_list(c->cfg, k, items, kept, mark_origin(c, start), where, c->err);
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
        if (poa_cfg_is_ignored(name)) return skip_node(c, val->type);
        if (val->type == YAML_MAPPING_START_EVENT) {
            if (c->depth >= MAX_MAPPING_DEPTH)
                return poa_err_set(c->err, POA_ERR_CONFIG,
                                   "%s: mappings nested deeper than %d levels (no key is)", where,
                                   MAX_MAPPING_DEPTH);
            c->depth++;
            poa_status st = load_mapping(c, name);
            c->depth--;
            return st;
        }
        char kw[POA_CFG_STR_MAX + 64];
        mark_where(c, key_mark, kw, sizeof kw);
        if (poa_cfg_is_section_prefix(name))
            return poa_err_set(c->err, POA_ERR_CONFIG,
                               "%s: '%s' is a section: expected a mapping of its keys, got %s", kw,
                               name, event_kind(val->type));
        return poa_cfg_unknown_key_error(kw, name, c->err);
    }
    poa_status st = note_seen(c, k, key_mark);
    if (st != POA_OK) return st;
    switch (val->type) {
    case YAML_SCALAR_EVENT:
        return poa_cfg_set_scalar(c->cfg, k, (const char *) val->data.scalar.value,
                                  scalar_is_null(val), mark_origin(c, val->start_mark), where,
                                  c->err);
    case YAML_SEQUENCE_START_EVENT:
        return load_sequence(c, k, val->start_mark);
    default:
        return poa_cfg_type_error(where, k, event_kind(val->type), c->err);
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
