/* cli.h — the command line shared by every poa program.
 *
 *   PROGRAM [--config FILE]... [program options] [key=value ...]
 *
 * Common options: --config FILE (-c, also --config-file as in the official train.py; repeatable,
 * later files override earlier ones), --help/-h, --verbose/-v, --version/-V, and `--` (everything
 * after it is a key=value override).  Program options are declared in a poa_cli_option table.
 * Arguments of the form key=value are configuration overrides; they are applied after all files
 * in the order given, so the command line always wins.
 *
 * Under MPI every rank parses the same arguments; only rank 0 prints (poa_log_rank()).
 *
 *     static const poa_cli_option opts[] = {
 *         {"output-dir", 'o', "DIR", "write logs and checkpoints to DIR"},
 *         {"no-resume", 0, NULL, "start from scratch even if DIR holds a checkpoint"},
 *     };
 *     static const poa_cli_spec spec = {"poa-train", "pretrain a POA model", opts, 2, true};
 *     poa_cli cli;  poa_config cfg;  poa_err err;
 *     int rc = poa_cli_main_setup(&spec, argc, argv, &cli, &cfg, world_size, &err);
 *     if (rc >= 0) { finalize MPI; return rc; }      // --help/--version (0) or an error (2)
 */
#ifndef POA_COMMON_CLI_H
#define POA_COMMON_CLI_H

#include "common/config.h"
#include "common/poa_error.h"

#include <stdbool.h>
#include <stdio.h>

#define POA_CLI_MAX_OPTIONS 32

typedef struct poa_cli_option {
    const char *name;     /* long name without "--", e.g. "output-dir"         */
    char short_name;      /* e.g. 'o', or 0                                     */
    const char *arg_name; /* NULL: a flag; else the argument's name ("DIR")    */
    const char *help;     /* '\n' starts a continuation line (indented under the text) */
} poa_cli_option;

typedef struct poa_cli_spec {
    const char *program; /* "poa-train"                                  */
    const char *summary; /* one line: what the program does             */
    const poa_cli_option *options;
    int n_options;
    bool uses_config;         /* accepts --config and key=value; --help lists the config keys */
    const char *positional;   /* name of positional arguments ("FILE..."), or NULL: none */
    const char *epilog;       /* extra text at the end of --help, or NULL */
    const char *verbose_help; /* --help text of --verbose when it means more than "every MPI
                                 rank prints" (e.g. debug output), or NULL */
} poa_cli_spec;

typedef struct poa_cli {
    bool help, version, verbose;
    int n_configs;
    const char *configs[POA_CFG_MAX_FILES]; /* --config files, in order */
    int n_overrides;
    const char **overrides; /* "key=value" arguments, in order (points into argv) */
    int n_positional;
    const char **positional;
    const char *value[POA_CLI_MAX_OPTIONS]; /* argument of each program option, or NULL */
    int count[POA_CLI_MAX_OPTIONS];         /* times each program option was given       */
    /* Every program option's argument in command-line order (repeatable options: all of them):
     * given[k] is an argument of option given_option[k] (index into spec->options). */
    int n_given;
    const char **given;
    int *given_option;
} poa_cli;

/* Parse argv.  Errors (unknown option, with the closest one; missing argument; stray argument)
 * return POA_ERR_ARG.  Free with poa_cli_free. */
poa_status poa_cli_parse(poa_cli *cli, const poa_cli_spec *spec, int argc, char **argv,
                         poa_err *err);
void poa_cli_free(poa_cli *cli);

/* A program option's argument (NULL if not given; the last one when given several times) /
 * whether a flag was given. */
const char *poa_cli_value(const poa_cli *cli, const poa_cli_spec *spec, const char *name);

bool poa_cli_flag(const poa_cli *cli, const poa_cli_spec *spec, const char *name);
/* An option's argument as an int / a long in [lo, hi] (decimal), or a finite double in
 * [lo, hi] ("nan" too when nan_ok); *out = dflt when the option was not given.  POA_ERR_ARG
 * with "option --NAME: expected ..., got '...'" otherwise. */
poa_status poa_cli_int(const poa_cli *cli, const poa_cli_spec *spec, const char *name, int dflt,
                       int lo, int hi, int *out, poa_err *err);
poa_status poa_cli_long(const poa_cli *cli, const poa_cli_spec *spec, const char *name, long dflt,
                        long lo, long hi, long *out, poa_err *err);
poa_status poa_cli_double(const poa_cli *cli, const poa_cli_spec *spec, const char *name,
                          double dflt, double lo, double hi, bool nan_ok, double *out,
                          poa_err *err);

/* A usage error found after parsing (a missing option, a bad value): on rank 0,
 * "PROGRAM: error: MESSAGE" and "Try 'PROGRAM --help'." on stderr.  Returns POA_EXIT_USAGE. */
int poa_cli_usage_error(const poa_cli_spec *spec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Usage, options and (when spec->uses_config) the configuration key reference. */
void poa_cli_usage(const poa_cli_spec *spec, FILE *out);
void poa_cli_print_version(const poa_cli_spec *spec, FILE *out);

/* Defaults ← each --config file ← each key=value ← poa_config_finalize(world_size). */
poa_status poa_cli_build_config(const poa_cli *cli, poa_config *cfg, int world_size, poa_err *err);

/* The usual start of a main(): parse, answer --help/--version (rank 0 prints), build and validate
 * the configuration and print it (rank 0, or every rank with --verbose).  Returns -1 when the
 * program should go on, else the exit code to return: 0 after --help/--version, POA_EXIT_USAGE
 * after a command-line or configuration error (printed on rank 0 as "PROGRAM: error: ...").
 * cfg may be NULL for programs without a configuration. */
int poa_cli_main_setup(const poa_cli_spec *spec, int argc, char **argv, poa_cli *cli,
                       poa_config *cfg, int world_size, poa_err *err);

#endif
