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
 * or all of that and the forward runners in one call, poa_tool_open_models, and the data in
 * another, poa_tool_open_splits.  Apart from those two (collective), nothing here talks to the
 * other ranks: every rank computes the same list from the same sources.  Errors are POA_ERR_ARG
 * with the message of a usage error. */
#ifndef POA_TOOL_NETWORKS_H
#define POA_TOOL_NETWORKS_H

#include "eval/images.h"
#include "modelio/features.h"
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

/* What an evaluation program's command line asks to evaluate, and how. */
#define POA_TOOL_MAX_SOURCES  64  /* checkpoints one evaluation reads */
#define POA_TOOL_MAX_REQUESTS 256 /* --subnet / --arch items */
typedef struct poa_tool_eval_ask {
    const char *paths[POA_TOOL_MAX_SOURCES]; /* checkpoints, run directories, extracted files */
    int n_paths;
    poa_weights_from from;
    int crop, resize; /* 0: from the sources (poa_tool_choose_transform) */
    poa_tool_request req[POA_TOOL_MAX_REQUESTS];
    int n_req, all, pixels; /* --subnet/--arch, --all-subnets, --pixels */
    int batch;              /* images per forward; 0: poa_tool_default_batch */
    const char *backend;    /* forward runners: "cpu" or "cuda" */
    poa_dtype dtype;
    int max_blocks; /* blocks whose outputs a runner returns (poa_features_opts) */
} poa_tool_eval_ask;

/* The models an evaluation program evaluates, opened on every rank. */
typedef struct poa_tool_models {
    int n_src;
    poa_model_source *src; /* [n_src], the caller's array                        */
    poa_features **feat;   /* [n_src] one forward runner per source (its weights
                              uploaded once, one workspace)                       */
    poa_eval_transform t;
    int batch; /* images per forward */
} poa_tool_models;

/* Collective: open every source of `ask` on every rank (poa_tool_open_source) into m->src and
 * m->feat (arrays of at least ask->n_paths), choose the transform and the batch, list the
 * networks into nets (at most cap) and create the forward runners (on this rank's node-local
 * CUDA device).  A request the sources cannot meet is a usage error of spec.  Returns the agreed
 * exit code; close with poa_tool_close_models whatever it returned. */
int poa_tool_open_models(const char *program, const poa_cli_spec *spec,
                         const poa_tool_eval_ask *ask, poa_tool_models *m, poa_tool_net *nets,
                         int cap, int *n_net);
void poa_tool_close_models(poa_tool_models *m);

/* Collective: the train and val splits of the packed data set `data` through the transform t,
 * n_train / n_val evenly spaced images of each (0: all); both splits must have the same
 * classes.  A failure is printed ("<program>: ...") and the agreed exit code returned
 * (poa_tool_read_exit_code); close the readers with poa_eval_reader_close whatever it
 * returned. */
int poa_tool_open_splits(const char *program, const char *data, const poa_eval_transform *t,
                         int64_t n_train, int64_t n_val, poa_eval_reader **train,
                         poa_eval_reader **val);

#endif
