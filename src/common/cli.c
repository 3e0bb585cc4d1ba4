/* cli.c — see cli.h. */
#include "common/cli.h"
#include "common/log.h"

#include "poa_config.h" /* PACKAGE_VERSION */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <mpi.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* The options every program has (index < 0 in lookups). */
static const poa_cli_option common_options[] = {
    {"config", 'c', "FILE", "read the configuration from FILE (YAML; repeatable, later files win)"},
    {"help", 'h', NULL, "print this help (and the configuration keys) and exit"},
    {"verbose", 'v', NULL, "every MPI rank prints, not only rank 0"},
    {"version", 'V', NULL, "print the version and exit"},
};
enum { N_COMMON = sizeof common_options / sizeof common_options[0] };

static bool is_override(const char *arg)
{
    const char *eq = strchr(arg, '=');
    return arg[0] != '-' && eq && eq != arg;
}

/* Name of the long option closest to `name` among the common and the program options. */
static const char *closest_option(const poa_cli_spec *spec, const char *name)
{
    const char *best = common_options[0].name;
    int best_d = INT_MAX;
    for (int i = 0; i < N_COMMON + spec->n_options; i++) {
        const char *cand = i < N_COMMON ? common_options[i].name : spec->options[i - N_COMMON].name;
        int d = poa_levenshtein(name, cand);
        if (d < best_d) best_d = d, best = cand;
    }
    return best;
}

/* Program option by long name (NULL-terminated at '=' if any) or short letter; -1 if none. */
static int find_program_option(const poa_cli_spec *spec, const char *name, size_t len, char letter)
{
    for (int i = 0; i < spec->n_options; i++) {
        const poa_cli_option *o = &spec->options[i];
        if (letter ? o->short_name == letter
                   : strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return i;
    }
    return -1;
}

static poa_status add_config(poa_cli *cli, const poa_cli_spec *spec, const char *path, poa_err *err)
{
    if (!spec->uses_config)
        return poa_err_set(err, POA_ERR_ARG, "%s takes no configuration file", spec->program);
    if (cli->n_configs == POA_CFG_MAX_FILES)
        return poa_err_set(err, POA_ERR_ARG, "at most %d --config files", POA_CFG_MAX_FILES);
    cli->configs[cli->n_configs++] = path;
    return POA_OK;
}

/* Handle one common option; *used_next says whether its argument was argv[i+1]. */
static poa_status common_option(poa_cli *cli, const poa_cli_spec *spec, int which,
                                const char *inline_arg, const char *next, bool *used_next,
                                poa_err *err)
{
    *used_next = false;
    const char *name = common_options[which].name;
    if (common_options[which].arg_name) {
        const char *arg = inline_arg;
        if (!arg) {
            if (!next)
                return poa_err_set(err, POA_ERR_ARG, "option --%s needs a %s", name,
                                   common_options[which].arg_name);
            arg = next;
            *used_next = true;
        }
        return add_config(cli, spec, arg, err);
    }
    if (inline_arg) return poa_err_set(err, POA_ERR_ARG, "option --%s takes no argument", name);
    if (which == 1) cli->help = true;
    if (which == 2) cli->verbose = true;
    if (which == 3) cli->version = true;
    return POA_OK;
}

static poa_status program_option(poa_cli *cli, const poa_cli_spec *spec, int which,
                                 const char *inline_arg, const char *next, bool *used_next,
                                 poa_err *err)
{
    const poa_cli_option *o = &spec->options[which];
    *used_next = false;
    cli->count[which]++;
    if (!o->arg_name) {
        if (inline_arg)
            return poa_err_set(err, POA_ERR_ARG, "option --%s takes no argument", o->name);
        return POA_OK;
    }
    if (!inline_arg) {
        if (!next)
            return poa_err_set(err, POA_ERR_ARG, "option --%s needs a %s", o->name, o->arg_name);
        inline_arg = next;
        *used_next = true;
    }
    cli->value[which] = inline_arg;
    cli->given[cli->n_given] = inline_arg;
    cli->given_option[cli->n_given++] = which;
    return POA_OK;
}

static int find_common(const char *name, size_t len, char letter)
{
    for (int i = 0; i < N_COMMON; i++) {
        const poa_cli_option *o = &common_options[i];
        if (letter ? o->short_name == letter
                   : strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return i;
    }
    if (!letter && len == strlen("config-file") && strncmp(name, "config-file", len) == 0)
        return 0; /* the official train.py spelling */
    return -1;
}

/* argv[i] starts with '-'; dispatch it.  *consumed = number of argv entries used. */
static poa_status parse_option(poa_cli *cli, const poa_cli_spec *spec, char **argv, int argc, int i,
                               int *consumed, poa_err *err)
{
    const char *arg = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
    const char *name, *inline_arg = NULL;
    size_t len;
    char letter = 0;
    if (arg[1] == '-') {
        name = arg + 2;
        const char *eq = strchr(name, '=');
        len = eq ? (size_t) (eq - name) : strlen(name);
        if (eq) inline_arg = eq + 1;
    } else {
        if (arg[1] == '\0' || arg[2] != '\0')
            return poa_err_set(err, POA_ERR_ARG,
                               "unknown option '%s' (short options stand alone: -h, -v)", arg);
        name = arg + 1;
        len = 1;
        letter = arg[1];
    }
    bool used_next = false;
    poa_status st;
    int c = find_common(name, len, letter), p = find_program_option(spec, name, len, letter);
    if (c >= 0 && (c != 0 || spec->uses_config))
        st = common_option(cli, spec, c, inline_arg, next, &used_next, err);
    else if (p >= 0)
        st = program_option(cli, spec, p, inline_arg, next, &used_next, err);
    else {
        char typed[128];
        snprintf(typed, sizeof typed, "%.*s", (int) (len < 100 ? len : 100), name);
        return poa_err_set(err, POA_ERR_ARG, "unknown option '%s'; did you mean '--%s'?", arg,
                           closest_option(spec, typed));
    }
    *consumed = used_next ? 2 : 1;
    return st;
}

poa_status poa_cli_parse(poa_cli *cli, const poa_cli_spec *spec, int argc, char **argv,
                         poa_err *err)
{
    memset(cli, 0, sizeof *cli);
    POA_ASSERT(spec->n_options <= POA_CLI_MAX_OPTIONS);
    cli->overrides = poa_xcalloc((size_t) argc + 1, sizeof *cli->overrides);
    cli->positional = poa_xcalloc((size_t) argc + 1, sizeof *cli->positional);
    cli->given = poa_xcalloc((size_t) argc + 1, sizeof *cli->given);
    cli->given_option = poa_xcalloc((size_t) argc + 1, sizeof *cli->given_option);
    bool options_done = false;
    for (int i = 1; i < argc;) {
        const char *arg = argv[i];
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            i++;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            int consumed = 1;
            poa_status st = parse_option(cli, spec, argv, argc, i, &consumed, err);
            if (st != POA_OK) return st;
            i += consumed;
            continue;
        }
        if (spec->uses_config && is_override(arg)) {
            cli->overrides[cli->n_overrides++] = arg;
        } else if (spec->positional) {
            cli->positional[cli->n_positional++] = arg;
        } else {
            return poa_err_set(err, POA_ERR_ARG, "unexpected argument '%s'%s", arg,
                               spec->uses_config ? " (configuration overrides are key=value)" : "");
        }
        i++;
    }
    return POA_OK;
}

void poa_cli_free(poa_cli *cli)
{
    free(cli->overrides);
    free(cli->positional);
    free(cli->given);
    free(cli->given_option);
    cli->overrides = cli->positional = cli->given = NULL;
    cli->given_option = NULL;
}

const char *poa_cli_value(const poa_cli *cli, const poa_cli_spec *spec, const char *name)
{
    int i = find_program_option(spec, name, strlen(name), 0);
    POA_CHECK(i >= 0, "%s has no option --%s", spec->program, name);
    return cli->value[i];
}

bool poa_cli_flag(const poa_cli *cli, const poa_cli_spec *spec, const char *name)
{
    int i = find_program_option(spec, name, strlen(name), 0);
    POA_CHECK(i >= 0, "%s has no option --%s", spec->program, name);
    return cli->count[i] > 0;
}

poa_status poa_cli_long(const poa_cli *cli, const poa_cli_spec *spec, const char *name, long dflt,
                        long lo, long hi, long *out, poa_err *err)
{
    const char *v = poa_cli_value(cli, spec, name);
    if (!v) return *out = dflt, POA_OK;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return poa_err_set(err, POA_ERR_ARG,
                           "option --%s: expected an integer in [%ld, %ld], got '%s'", name, lo, hi,
                           v);
    *out = x;
    return POA_OK;
}

poa_status poa_cli_int(const poa_cli *cli, const poa_cli_spec *spec, const char *name, int dflt,
                       int lo, int hi, int *out, poa_err *err)
{
    long x;
    poa_status st = poa_cli_long(cli, spec, name, dflt, lo, hi, &x, err);
    if (st == POA_OK) *out = (int) x;
    return st;
}

poa_status poa_cli_double(const poa_cli *cli, const poa_cli_spec *spec, const char *name,
                          double dflt, double lo, double hi, bool nan_ok, double *out, poa_err *err)
{
    const char *v = poa_cli_value(cli, spec, name);
    if (!v) return *out = dflt, POA_OK;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    bool ok = *v && !*end && !errno && (isnan(x) ? nan_ok : x >= lo && x <= hi);
    if (!ok)
        return poa_err_set(err, POA_ERR_ARG,
                           "option --%s: expected a number in [%g, %g]%s, got '%s'", name, lo, hi,
                           nan_ok ? " or nan" : "", v);
    *out = x;
    return POA_OK;
}

int poa_cli_usage_error(const poa_cli_spec *spec, const char *fmt, ...)
{
    if (poa_log_rank() != 0) return POA_EXIT_USAGE;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: error: %s\nTry '%s --help'.\n", spec->program, msg, spec->program);
    return POA_EXIT_USAGE;
}

static void print_option(FILE *out, const poa_cli_option *o, const char *help)
{
    char left[96];
    if (o->short_name)
        snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name, o->arg_name ? " " : "",
                 o->arg_name ? o->arg_name : "");
    else
        snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg_name ? " " : "",
                 o->arg_name ? o->arg_name : "");
    const char *nl = strchr(help, '\n');
    fprintf(out, "  %-26s %.*s\n", left, nl ? (int) (nl - help) : (int) strlen(help), help);
    for (const char *line = nl; line; line = nl) { /* continuation lines, under the text */
        line++;
        nl = strchr(line, '\n');
        fprintf(out, "  %-26s %.*s\n", "", nl ? (int) (nl - line) : (int) strlen(line), line);
    }
}

void poa_cli_usage(const poa_cli_spec *spec, FILE *out)
{
    fprintf(out, "Usage: %s%s [OPTIONS]%s%s%s\n%s\n\nOptions:\n", spec->program,
            spec->uses_config ? " [--config FILE]..." : "", spec->positional ? " " : "",
            spec->positional ? spec->positional : "", spec->uses_config ? " [key=value ...]" : "",
            spec->summary);
    for (int i = 0; i < N_COMMON; i++) {
        const char *help = common_options[i].help;
        if (i == 1 && !spec->uses_config) help = "print this help and exit";
        if (i == 2 && spec->verbose_help) help = spec->verbose_help;
        if (i != 0 || spec->uses_config) print_option(out, &common_options[i], help);
    }
    for (int i = 0; i < spec->n_options; i++)
        print_option(out, &spec->options[i], spec->options[i].help);
    if (spec->uses_config)
        fprintf(out, "\nConfiguration: defaults (the official ViT-L recipe) <- each --config file "
                     "<- each key=value\nargument (dotted keys as in the official code, e.g. "
                     "optim.epochs=10 'crops.global_crops_scale=[0.4,1]').\n"
                     "Check a configuration with poa-config before submitting a job.\n\n");
    if (spec->epilog) fprintf(out, "%s%s\n\n", spec->uses_config ? "" : "\n", spec->epilog);
    if (spec->uses_config) poa_config_help(out);
}

void poa_cli_print_version(const poa_cli_spec *spec, FILE *out)
{
    fprintf(out, "%s (poa) %s\n", spec->program, PACKAGE_VERSION);
}

/* The whole file in a NUL-terminated buffer (the caller frees it). */
static poa_status read_whole_file(const char *path, char **text, poa_err *err)
{
    *text = NULL;
    FILE *f = poa_config_open_file(path, err);
    if (!f) return err->code;
    size_t cap = 4096, n = 0;
    char *buf = poa_xmalloc(cap);
    for (size_t got; (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) buf = poa_xrealloc(buf, cap *= 2);
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return poa_err_set(err, POA_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *text = buf;
    return POA_OK;
}

/* Under MPI with several ranks, rank 0 reads the file and broadcasts it: every rank parses the
 * same bytes (one reader on the shared file system; no rank sees a different or missing file). */
static poa_status load_config_file(poa_config *cfg, const char *path, poa_err *err)
{
    int up = 0, down = 0, size = 1, rank = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down) {
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    }
    if (size == 1) return poa_config_load_yaml(cfg, path, err);
    char *text = NULL;
    poa_err local = {0};
    long long header[2] = {0, 0}; /* status, length */
    if (rank == 0) {
        header[0] = read_whole_file(path, &text, &local);
        header[1] = text ? (long long) strlen(text) : (long long) strlen(local.msg);
    }
    MPI_Bcast(header, 2, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    if (rank != 0) text = poa_xcalloc((size_t) header[1] + 1, 1);
    char *payload = header[0] == POA_OK ? text : local.msg;
    MPI_Bcast(payload, (int) header[1], MPI_CHAR, 0, MPI_COMM_WORLD);
    poa_status st;
    if (header[0] != POA_OK)
        st = poa_err_set(err, (poa_status) header[0], "%s", payload);
    else
        st = poa_config_load_yaml_string(cfg, path, text, err);
    free(text);
    return st;
}

poa_status poa_cli_build_config(const poa_cli *cli, poa_config *cfg, int world_size, poa_err *err)
{
    poa_config_defaults(cfg);
    poa_status st;
    for (int i = 0; i < cli->n_configs; i++)
        if ((st = load_config_file(cfg, cli->configs[i], err)) != POA_OK) return st;
    for (int i = 0; i < cli->n_overrides; i++)
        if ((st = poa_config_set_override(cfg, cli->overrides[i], err)) != POA_OK) return st;
    return poa_config_finalize(cfg, world_size, err);
}

static bool is_rank0(void)
{
    return poa_log_rank() == 0;
}

int poa_cli_main_setup(const poa_cli_spec *spec, int argc, char **argv, poa_cli *cli,
                       poa_config *cfg, int world_size, poa_err *err)
{
    poa_status st = poa_cli_parse(cli, spec, argc, argv, err);
    if (st != POA_OK) {
        if (is_rank0())
            fprintf(stderr, "%s: error: %s\nTry '%s --help'.\n", spec->program, err->msg,
                    spec->program);
        return POA_EXIT_USAGE;
    }
    if (cli->verbose) poa_log_init(poa_log_rank(), poa_log_world_size(), 1);
    if (cli->help || cli->version) {
        if (is_rank0()) {
            if (cli->help)
                poa_cli_usage(spec, stdout);
            else
                poa_cli_print_version(spec, stdout);
            fflush(stdout);
        }
        return POA_EXIT_OK;
    }
    if (!cfg) return -1;
    if ((st = poa_cli_build_config(cli, cfg, world_size, err)) != POA_OK) {
        if (is_rank0()) fprintf(stderr, "%s: error: %s\n", spec->program, err->msg);
        return POA_EXIT_USAGE;
    }
    if (poa_log_speaks()) poa_config_print(cfg, stdout);
    return -1;
}
