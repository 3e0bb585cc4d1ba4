/* networks.h — which networks the evaluation programs (poa-eval-knn, poa-eval-linear) evaluate
 * and the transform those networks agree on: the model sources' networks (an extracted file's
 * own, a checkpoint's sub-networks by --subnet / --arch / --all-subnets) and the raw pixels.
 * What every program that reads models shares (requests, sources opened on every rank, agreed
 * exit codes, result files) is tool.h.
 *
 *     poa_tool_request req[..];   // poa_tool_parse_request of each --subnet / --arch item
 *     poa_tool_open_source(program, path, POA_FROM_TEACHER, &src[i]);   // every rank
 *     poa_tool_choose_transform(src, n_src, crop, resize, &t, &err);
 *     poa_tool_networks(src, n_src, req, n_req, all, nets, cap, &n_net, &err);
 *
 * Nothing here talks to the other ranks: every rank computes the same list from the same
 * sources.  Errors are POA_ERR_ARG with the message of a usage error. */
#ifndef POA_TOOL_NETWORKS_H
#define POA_TOOL_NETWORKS_H

#include "eval/images.h"
#include "modelio/model_source.h"
#include "tool/tool.h"

/* One network to evaluate. */
typedef struct poa_tool_net {
    int source; /* index of the model source; -1: the raw pixels                      */
    poa_subnet sn;
    char name[32]; /* teacher | student | <W>x<D> | pixels                          */
    int subnet;    /* one of an --all-subnets grid                                   */
} poa_tool_net;

/* The networks of the sources, in order: per source an extracted model's own network; a
 * checkpoint's --all-subnets grid (widths outer, depths inner), then its requests in the order
 * given, or its intact network when neither was asked (named "teacher" / "student").  Duplicates
 * are dropped.  An error naming the request and the file (poa_tool_resolve_request) when a
 * checkpoint has no such size, POA_ERR_ARG when more than cap networks result. */
poa_status poa_tool_networks(const poa_model_source *src, int n_src, const poa_tool_request *req,
                             int n_req, int all, poa_tool_net *out, int cap, int *n, poa_err *err);
/* Append the raw-pixel network; POA_ERR_ARG when the list is full. */
poa_status poa_tool_add_pixels(poa_tool_net *out, int cap, int *n, poa_err *err);

/* The transform of the sources: crop = `crop`, else the crop size they were trained on (which
 * must agree); it must be a multiple of every source's patch size and the sources must take RGB.
 * POA_ERR_ARG with the reason otherwise. */
poa_status poa_tool_choose_transform(const poa_model_source *src, int n_src, int crop, int resize,
                                     poa_eval_transform *t, poa_err *err);
/* Images per forward: `asked`, else about 8192 tokens of the largest grid, 8 to 256 (256 with
 * no source). */
int poa_tool_default_batch(const poa_model_source *src, int n_src, int crop, int asked);

#endif
