/* eval_args.c — see eval_args.h. */
#include "tool/eval_args.h"

#include <stdlib.h>
#include <string.h>

typedef struct request_ctx {
    const poa_cli_spec *spec;
    poa_tool_eval_ask *ask;
} request_ctx;

/* One item of --subnet or --arch. */
static int add_request(void *ctx, const char *opt, const char *item)
{
    const request_ctx *c = ctx;
    return poa_tool_add_request(c->spec, opt, item, c->ask->req, &c->ask->n_req,
                                POA_TOOL_MAX_REQUESTS);
}

static int add_path(const poa_cli_spec *spec, poa_tool_eval_ask *ask, const char *path)
{
    if (ask->n_paths == POA_TOOL_MAX_SOURCES)
        return poa_cli_usage_error(spec, "more than %d checkpoints", POA_TOOL_MAX_SOURCES);
    ask->paths[ask->n_paths++] = path;
    return -1;
}

/* --checkpoint, --subnet and --arch in the order given, then the positional paths. */
static int parse_lists(const poa_cli_spec *spec, const poa_cli *cli, poa_tool_eval_ask *ask)
{
    request_ctx ctx = {spec, ask};
    int rc;
    for (int k = 0; k < cli->n_given; k++) {
        const char *opt = spec->options[cli->given_option[k]].name, *arg = cli->given[k];
        if (strcmp(opt, "checkpoint") == 0 && (rc = add_path(spec, ask, arg)) >= 0) return rc;
        if (strcmp(opt, "subnet") == 0 || strcmp(opt, "arch") == 0)
            if ((rc = poa_tool_each_item(spec, opt, arg, add_request, &ctx)) > 0) return rc;
    }
    for (int i = 0; i < cli->n_positional; i++)
        if ((rc = add_path(spec, ask, cli->positional[i])) >= 0) return rc;
    return -1;
}

/* --from, --dtype, --backend. */
static int parse_words(const poa_cli_spec *spec, const poa_cli *cli, poa_tool_eval_ask *ask)
{
    poa_err err;
    const char *from = poa_cli_value(cli, spec, "from");
    if (from && poa_weights_from_parse(from, &ask->from, &err) != POA_OK)
        return poa_cli_usage_error(spec, "--from %s", err.msg);
    const char *dt = poa_cli_value(cli, spec, "dtype");
    ask->dtype = POA_DT_F32;
    if (dt && strcmp(dt, "bf16") == 0)
        ask->dtype = POA_DT_BF16;
    else if (dt && strcmp(dt, "f32") != 0 && strcmp(dt, "fp32") != 0)
        return poa_cli_usage_error(spec, "--dtype '%s': expected f32 or bf16", dt);
    ask->backend = poa_cli_value(cli, spec, "backend");
    if (ask->backend && strcmp(ask->backend, "cpu") != 0 && strcmp(ask->backend, "cuda") != 0)
        return poa_cli_usage_error(spec, "--backend '%s': expected cpu or cuda", ask->backend);
    return -1;
}

int poa_tool_parse_eval_args(const poa_cli_spec *spec, const poa_cli *cli, poa_tool_eval_args *ev)
{
    poa_tool_eval_ask *ask = &ev->ask;
    ev->data = poa_cli_value(cli, spec, "data");
    ev->output = poa_cli_value(cli, spec, "output");
    ev->save = poa_cli_flag(cli, spec, "save-features");
    ask->all = poa_cli_flag(cli, spec, "all-subnets");
    ask->pixels = poa_cli_flag(cli, spec, "pixels");
    int rc;
    if ((rc = parse_words(spec, cli, ask)) >= 0 || (rc = parse_lists(spec, cli, ask)) >= 0)
        return rc;
    poa_err err;
    if (poa_cli_int(cli, spec, "resize", 0, 1, 8192, &ask->resize, &err) ||
        poa_cli_int(cli, spec, "crop", 0, 1, 8192, &ask->crop, &err) ||
        poa_cli_int(cli, spec, "batch", 0, 1, 4096, &ask->batch, &err))
        return poa_cli_usage_error(spec, "%s", err.msg);
    if (ask->n_paths == 0 && !ask->pixels)
        return poa_cli_usage_error(spec, "--checkpoint PATH is required (or --pixels alone)");
    if (ask->n_paths == 0 && !ask->crop)
        return poa_cli_usage_error(spec, "--pixels without a checkpoint needs --crop N");
    if (!ev->data) return poa_cli_usage_error(spec, "--data DIR is required");
    if (!ev->output) return poa_cli_usage_error(spec, "--output DIR is required");
    if (ask->resize && ask->crop && ask->resize < ask->crop)
        return poa_cli_usage_error(spec, "--resize %d is smaller than --crop %d", ask->resize,
                                   ask->crop);
    return -1;
}

void poa_tool_free_eval_args(poa_tool_eval_args *ev)
{
    for (int i = 0; i < ev->ask.n_req; i++) free(ev->ask.req[i].name);
    ev->ask.n_req = 0;
}
