/* fuzz_cli.c — the command line shared by every program (common/cli.c): poa_cli_parse, the
 * typed option readers and the configuration overrides.
 *
 * Input: arguments separated by NUL bytes; byte 0 chooses the program table (a table shaped like
 * poa-train's, with a configuration, or like poa-pack's positional form without one).  --config
 * files named by the input are not opened (that is fuzz_config's job): the configuration is built
 * from the overrides only. */
#include "fuzz_util.h"

#include "common/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const poa_cli_option train_like[] = {
    {"data", 'd', "DIR", "packed data"},
    {"output", 'o', "DIR", "output directory"},
    {"max-steps", 0, "N", "stop after N iterations"},
    {"no-resume", 0, NULL, "start from scratch"},
    {"ranks", 'r', "N", "plan for N ranks"},
    {"scale", 0, "X", "a number"},
    {"dry-run", 'n', NULL, "plan only"},
};
static const poa_cli_spec train_spec = {"poa-train", "pretrain", train_like, 7,
                                        true,        NULL,       NULL,       NULL};

static const poa_cli_option pack_like[] = {
    {"root", 0, "ROOT", "input folder"},
    {"jobs", 'j', "N", "threads"},
    {"verify", 0, NULL, "verify"},
    {"quality", 'q', "Q", "JPEG quality"},
};
static const poa_cli_spec pack_spec = {"poa-pack", "pack",    pack_like, 4,
                                       false,      "FILE...", NULL,      NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192) return 0;
    fuzz_quiet();
    const poa_cli_spec *spec = data[0] & 1 ? &pack_spec : &train_spec;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char **argv = malloc((size + 2) * sizeof *argv);
    int argc = 0;
    argv[argc++] = (char *) spec->program;
    for (size_t i = 0; i < size - 1;) { /* NUL-separated; a trailing NUL ends the list */
        argv[argc++] = text + i;
        i += strlen(text + i) + 1;
    }
    argv[argc] = NULL;
    poa_cli cli;
    poa_err err;
    poa_status st = poa_cli_parse(&cli, spec, argc, argv, &err);
    fuzz_note("cli parse", st, err.msg);
    if (st == POA_OK) {
        long l;
        int n;
        double x;
        if (spec == &train_spec) {
            poa_cli_long(&cli, spec, "max-steps", 0, 0, 1L << 40, &l, &err);
            poa_cli_int(&cli, spec, "ranks", 1, 1, 1 << 20, &n, &err);
            poa_cli_double(&cli, spec, "scale", 1.0, -1e9, 1e9, true, &x, &err);
            (void) poa_cli_value(&cli, spec, "data");
            (void) poa_cli_flag(&cli, spec, "dry-run");
            if (cli.n_configs == 0) {
                poa_config *cfg = malloc(sizeof *cfg);
                poa_cli_build_config(&cli, cfg, n > 0 ? n : 1, &err);
                free(cfg);
            }
        } else {
            poa_cli_int(&cli, spec, "jobs", 1, 1, 1024, &n, &err);
            poa_cli_int(&cli, spec, "quality", 90, 1, 100, &n, &err);
        }
    }
    poa_cli_free(&cli);
    free(argv);
    free(text);
    return 0;
}
