/* eval_args.h — the command line that poa-eval-knn and poa-eval-linear share: which models
 * (checkpoints, --subnet / --arch / --all-subnets / --pixels, --from), how they run (--backend,
 * --dtype, --batch), the transform (--resize, --crop) and where (--data, --output,
 * --save-features).  Each program declares these options in its own option table, under these
 * names, and parses its other options itself:
 *
 *     poa_tool_eval_args ev = {0};
 *     int rc = poa_tool_parse_eval_args(&spec, &cli, &ev);   // -1: go on, else the exit code
 *     ... the program's own options ...
 *     poa_tool_open_models(program, &spec, &ev.ask, ...);
 *     poa_tool_free_eval_args(&ev);
 */
#ifndef POA_TOOL_EVAL_ARGS_H
#define POA_TOOL_EVAL_ARGS_H

#include "common/cli.h"
#include "tool/networks.h"

typedef struct poa_tool_eval_args {
    poa_tool_eval_ask ask;     /* the models and how they run */
    const char *data, *output; /* --data DIR (packed), --output DIR (created) */
    int save;                  /* --save-features */
} poa_tool_eval_args;

/* The shared options of a parsed command line into ev (zeroed by the caller), then the checks
 * that need them together: a checkpoint (or --pixels with --crop), --data, --output, --resize not
 * below --crop.  -1: go on; else a usage error was printed and this is the exit code. */
int poa_tool_parse_eval_args(const poa_cli_spec *spec, const poa_cli *cli, poa_tool_eval_args *ev);

/* The --arch names the parse kept. */
void poa_tool_free_eval_args(poa_tool_eval_args *ev);

#endif
