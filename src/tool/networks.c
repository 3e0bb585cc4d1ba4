/* networks.c — see networks.h. */
#include "tool/networks.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static poa_status add_network(const poa_model_source *src, int source, const poa_subnet *sn,
                              int subnet, poa_tool_net *out, int cap, int *n, poa_err *err)
{
    for (int i = 0; i < *n; i++)
        if (out[i].source == source && out[i].sn.width == sn->width && out[i].sn.depth == sn->depth)
            return POA_OK;
    if (*n == cap) return poa_err_set(err, POA_ERR_ARG, "more than %d networks", cap);
    poa_tool_net *net = &out[(*n)++];
    memset(net, 0, sizeof *net);
    net->source = source, net->sn = *sn, net->subnet = subnet;
    const poa_model_config *c = &src->model.cfg;
    if (src->kind == POA_SOURCE_CHECKPOINT && sn->width == c->max_embed_dim &&
        sn->depth == c->max_depth && !subnet)
        snprintf(net->name, sizeof net->name, "%s", poa_weights_from_name(src->from));
    else
        snprintf(net->name, sizeof net->name, "%dx%d", sn->width, sn->depth);
    return POA_OK;
}

/* The networks of source i (see poa_tool_networks). */
static poa_status source_networks(const poa_model_source *src, int i, const poa_tool_request *req,
                                  int n_req, int all, poa_tool_net *out, int cap, int *n,
                                  poa_err *err)
{
    if (src->kind == POA_SOURCE_EXTRACTED) {
        poa_subnet sn = poa_subnet_intact(&src->model.cfg);
        return add_network(src, i, &sn, 0, out, cap, n, err);
    }
    poa_status st = POA_OK;
    if (all) {
        poa_subnet *grid = poa_xmalloc(sizeof *grid * (size_t) cap);
        const int m = poa_model_source_subnets(src, grid, cap);
        for (int j = 0; j < m && !st; j++) st = add_network(src, i, &grid[j], 1, out, cap, n, err);
        free(grid);
    }
    for (int j = 0; j < n_req && !st; j++) {
        poa_subnet sn;
        st = poa_tool_resolve_request(src, &req[j], &sn, err);
        if (!st) st = add_network(src, i, &sn, 0, out, cap, n, err);
    }
    if (!st && !all && n_req == 0) {
        poa_subnet sn = poa_subnet_intact(&src->model.cfg);
        st = add_network(src, i, &sn, 0, out, cap, n, err);
    }
    return st;
}

poa_status poa_tool_networks(const poa_model_source *src, int n_src, const poa_tool_request *req,
                             int n_req, int all, poa_tool_net *out, int cap, int *n, poa_err *err)
{
    *n = 0;
    for (int i = 0; i < n_src; i++) {
        poa_status st = source_networks(&src[i], i, req, n_req, all, out, cap, n, err);
        if (st) return st;
    }
    return POA_OK;
}

poa_status poa_tool_add_pixels(poa_tool_net *out, int cap, int *n, poa_err *err)
{
    if (*n == cap) return poa_err_set(err, POA_ERR_ARG, "too many networks");
    poa_tool_net *net = &out[(*n)++];
    memset(net, 0, sizeof *net);
    net->source = -1;
    snprintf(net->name, sizeof net->name, "pixels");
    return POA_OK;
}

poa_status poa_tool_choose_transform(const poa_model_source *src, int n_src, int crop, int resize,
                                     poa_eval_transform *t, poa_err *err)
{
    const int asked = crop;
    for (int i = 0; i < n_src && !asked; i++) {
        const int c = src[i].model.cfg.img_size;
        if (crop && c != crop)
            return poa_err_set(err, POA_ERR_ARG,
                               "%s was trained on %d px crops, %s on %d px: give --crop",
                               src[0].path, crop, src[i].path, c);
        crop = c;
    }
    for (int i = 0; i < n_src; i++) {
        const poa_model_config *c = &src[i].model.cfg;
        if (crop % c->patch_size)
            return poa_err_set(err, POA_ERR_ARG,
                               "crop %d px is not a multiple of the patch size %d of %s", crop,
                               c->patch_size, src[i].path);
        if (c->in_chans != 3)
            return poa_err_set(err, POA_ERR_ARG,
                               "%s takes %d channels; the data set has RGB images", src[i].path,
                               c->in_chans);
    }
    poa_eval_transform_default(crop, resize, t);
    return POA_OK;
}

int poa_tool_default_batch(const poa_model_source *src, int n_src, int crop, int asked)
{
    if (asked) return asked;
    int tokens = 1;
    for (int i = 0; i < n_src; i++) {
        const int g = crop / src[i].model.cfg.patch_size;
        tokens = 1 + g * g > tokens ? 1 + g * g : tokens;
    }
    const int batch = n_src ? 8192 / tokens : 256;
    return batch < 8 ? 8 : batch > 256 ? 256 : batch;
}

int poa_tool_open_models(const char *program, const poa_cli_spec *spec,
                         const poa_tool_eval_ask *ask, poa_tool_models *m, poa_tool_net *nets,
                         int cap, int *n_net)
{
    for (int i = 0; i < ask->n_paths; i++) {
        int code = poa_tool_open_source(program, ask->paths[i], ask->from, &m->src[m->n_src]);
        if (code) return code;
        m->feat[m->n_src++] = NULL;
    }
    poa_err err = {0};
    poa_status st =
        poa_tool_choose_transform(m->src, m->n_src, ask->crop, ask->resize, &m->t, &err);
    if (!st)
        st = poa_tool_networks(m->src, m->n_src, ask->req, ask->n_req, ask->all, nets, cap, n_net,
                               &err);
    if (!st && ask->pixels) st = poa_tool_add_pixels(nets, cap, n_net, &err);
    /* every rank computed the same list: the same usage error everywhere, no need to agree */
    if (st) return poa_cli_usage_error(spec, "%s", err.msg);
    m->batch = poa_tool_default_batch(m->src, m->n_src, m->t.crop, ask->batch);
    const int dev = poa_tool_local_rank();
    int code = 0;
    for (int i = 0; i < m->n_src && !code; i++) {
        poa_features_opts o = {.backend = ask->backend,
                               .max_images = m->batch,
                               .max_size = m->t.crop,
                               .compute_dtype = ask->dtype,
                               .device = dev,
                               .max_blocks = ask->max_blocks};
        if (poa_features_create(&m->feat[i], &m->src[i], &o, &err) != POA_OK) {
            if (poa_log_rank() == 0) poa_error("%s: %s", program, err.msg);
            code = POA_EXIT_USAGE;
        }
    }
    return poa_tool_agree(code);
}

void poa_tool_close_models(poa_tool_models *m)
{
    for (int i = 0; i < m->n_src; i++) {
        poa_features_destroy(m->feat[i]);
        poa_model_source_close(&m->src[i]);
    }
    m->n_src = 0;
}

int poa_tool_open_splits(const char *program, const char *data, const poa_eval_transform *t,
                         int64_t n_train, int64_t n_val, poa_eval_reader **train,
                         poa_eval_reader **val)
{
    poa_err err = {0};
    poa_status st = poa_eval_reader_open(train, data, "train", t, &err);
    if (!st) st = poa_eval_reader_open(val, data, "val", t, &err);
    if (!st && poa_eval_reader_classes(*train) != poa_eval_reader_classes(*val))
        st = poa_err_set(&err, POA_ERR_FORMAT, "%s: train has %d classes, val %d", data,
                         poa_eval_reader_classes(*train), poa_eval_reader_classes(*val));
    int code = 0;
    if (st) {
        if (poa_log_rank() == 0) poa_error("%s: %s", program, err.msg);
        code = poa_tool_read_exit_code(st);
    }
    if ((code = poa_tool_agree(code))) return code;
    poa_eval_reader_use(*train, n_train);
    poa_eval_reader_use(*val, n_val);
    return 0;
}
