/* poa-config — check a poa configuration before submitting a job.
 *
 *   poa-config [--config FILE]... [--ranks N] [--save FILE] [key=value ...]
 *
 * Builds the configuration exactly as the training program does (defaults ← files ← overrides),
 * validates it, prints the effective configuration with the origin of every non-default value,
 * and optionally saves it as a re-loadable YAML file.  Exit 0 when valid, 2 on a configuration
 * or usage error (the message names file:line:column), 4 when --save cannot write.
 */
#include "common/cli.h"
#include "common/config.h"
#include "common/poa_error.h"

#include <stdio.h>

static const poa_cli_option options[] = {
    {"ranks", 'n', "N",
     "MPI ranks of the job, for the derived global batch and optim.lr (default 1)"},
    {"save", 's', "FILE", "write the effective configuration to FILE (YAML, re-loadable)"},
    {"comments", 0, NULL, "with --save: put each key's help above it"},
    {"quiet", 'q', NULL, "print nothing but errors"},
    {"markdown", 0, NULL, "print the key reference as a Markdown table and exit"},
};

static const poa_cli_spec spec = {
    .program = "poa-config",
    .summary = "Validate a poa configuration and print (or save) the effective values.",
    .options = options,
    .n_options = (int) (sizeof options / sizeof options[0]),
    .uses_config = true,
    .epilog = "Exit status: 0 valid, 2 configuration or usage error, 4 cannot write --save FILE.",
};

static int fail(const char *msg, int code)
{
    fprintf(stderr, "poa-config: error: %s\n", msg);
    return code;
}

int main(int argc, char **argv)
{
    poa_cli cli;
    poa_err err = {0};
    if (poa_cli_parse(&cli, &spec, argc, argv, &err) != POA_OK) {
        fprintf(stderr, "poa-config: error: %s\nTry 'poa-config --help'.\n", err.msg);
        poa_cli_free(&cli);
        return POA_EXIT_USAGE;
    }
    int rc = POA_EXIT_OK, ranks = 1;
    poa_config cfg;
    const char *save = poa_cli_value(&cli, &spec, "save");
    if (cli.help) {
        poa_cli_usage(&spec, stdout);
    } else if (cli.version) {
        poa_cli_print_version(&spec, stdout);
    } else if (poa_cli_flag(&cli, &spec, "markdown")) {
        poa_config_help_markdown(stdout);
    } else if (poa_cli_int(&cli, &spec, "ranks", 1, 1, 1 << 20, &ranks, &err) != POA_OK) {
        rc = fail(err.msg, POA_EXIT_USAGE);
    } else if (poa_cli_build_config(&cli, &cfg, ranks, &err) != POA_OK) {
        rc = fail(err.msg, POA_EXIT_USAGE);
    } else {
        if (!poa_cli_flag(&cli, &spec, "quiet")) {
            poa_config_print(&cfg, stdout);
            printf("global batch %lld images (%d ranks), %lld iterations: configuration is valid\n",
                   poa_config_global_batch(&cfg, ranks), ranks, poa_config_total_iterations(&cfg));
        }
        if (save &&
            poa_config_save(&cfg, save, poa_cli_flag(&cli, &spec, "comments"), &err) != POA_OK)
            rc = fail(err.msg, POA_EXIT_IO);
    }
    poa_cli_free(&cli);
    return rc;
}
