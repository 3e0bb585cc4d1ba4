/* networks.h — what the evaluation programs (poa-eval-knn, poa-eval-linear) share above the
 * models and the images: which networks they evaluate (model sources opened on every rank, their
 * sub-networks by --subnet / --arch / --all-subnets, the raw pixels), the transform those
 * networks agree on, how items are shared by the MPI ranks, and the result files.
 *
 *     poa_eval_request req[..];  poa_eval_parse_request("subnet", "96x5", &req[n++], &err);
 *     int code = poa_eval_open_source("poa-eval-knn", path, POA_FROM_TEACHER, &src[i]);  // all
 * ranks poa_eval_networks(src, n_src, req, n_req, all, nets, cap, &n_net, &err);
 *     poa_eval_choose_transform(src, n_src, crop, resize, &t, &err);
 *
 * Functions that talk to the other ranks say so and are collective over MPI_COMM_WORLD; their
 * exit codes are the worst of all ranks (README "Exit codes").  Messages go to rank 0's log,
 * prefixed by the program's name. */
#ifndef POA_EVAL_NETWORKS_H
#define POA_EVAL_NETWORKS_H

#include "eval/images.h"
#include "modelio/model_source.h"

#include <stdint.h>
#include <stdio.h>

/* A sub-network asked for on the command line: --subnet WxD (name NULL) or --arch NAME. */
typedef struct poa_eval_request {
    int width, depth;
    char *name; /* malloc'ed */
} poa_eval_request;

/* One item of --subnet ("WxD") or --arch (a preset name) into *r.  POA_ERR_ARG with the message
 * a usage error prints ("--subnet '64y3': expected ..."). */
poa_status poa_eval_parse_request(const char *option, const char *text, poa_eval_request *r,
                                  poa_err *err);

/* One network to evaluate. */
typedef struct poa_eval_net {
    int source; /* index of the model source; -1: the raw pixels                      */
    poa_subnet sn;
    char name[32]; /* teacher | student | <W>x<D> | pixels                          */
    int subnet;    /* one of an --all-subnets grid                                   */
} poa_eval_net;

/* The networks of the sources, in order: per source an extracted model's own network; a
 * checkpoint's --all-subnets grid (widths outer, depths inner), then its requests in the order
 * given, or its intact network when neither was asked (named "teacher" / "student").  Duplicates
 * are dropped.  POA_ERR_ARG naming the request and the file when a checkpoint has no such size,
 * or when more than cap networks result. */
poa_status poa_eval_networks(const poa_model_source *src, int n_src, const poa_eval_request *req,
                             int n_req, int all, poa_eval_net *out, int cap, int *n, poa_err *err);
/* Append the raw-pixel network; POA_ERR_ARG when the list is full. */
poa_status poa_eval_add_pixels(poa_eval_net *out, int cap, int *n, poa_err *err);

/* The transform of the sources: crop = `crop`, else the crop size they were trained on (which
 * must agree); it must be a multiple of every source's patch size and the sources must take RGB.
 * POA_ERR_ARG with the reason otherwise. */
poa_status poa_eval_choose_transform(const poa_model_source *src, int n_src, int crop, int resize,
                                     poa_eval_transform *t, poa_err *err);
/* Images per forward: `asked`, else about 8192 tokens of the largest grid, 8 to 256 (256 with
 * no source). */
int poa_eval_default_batch(const poa_model_source *src, int n_src, int crop, int asked);

/* ------------------------------------------------------------------ ranks (collective) */
int poa_eval_rank(void);
int poa_eval_world(void);
/* The worst (largest) exit code of all ranks. */
int poa_eval_agree(int code);
/* [lo, hi) of n items that rank r of p takes (contiguous, balanced). */
void poa_eval_share(int64_t n, int r, int p, int64_t *lo, int64_t *hi);
/* Exit code of a reader's status: 2 for POA_ERR_ARG / POA_ERR_CONFIG, else 3. */
int poa_eval_read_code(poa_status st);
/* Rank 0 opens path (resolving a run directory), then the others the same file: the agreed exit
 * code (0, 2 or 3; the message on the rank that failed). */
int poa_eval_open_source(const char *program, const char *path, poa_weights_from from,
                         poa_model_source *src);
/* This rank's index on its node (the CUDA device of a rank). */
int poa_eval_local_rank(void);
/* Rank 0 creates dir (mkdir -p): 0 or POA_EXIT_IO, agreed. */
int poa_eval_make_output_dir(const char *program, const char *dir);

/* ------------------------------------------------------------------ output (rank 0) */
/* text as a JSON string (quotes, backslashes and control characters escaped). */
void poa_eval_json_string(FILE *f, const char *text);
/* Write dir/name atomically (a temporary name, renamed when complete) with writer(f, ctx); the
 * final path into path (POA_IO_PATH_MAX).  0, or POA_EXIT_IO after the message. */
int poa_eval_write_file(const char *program, const char *dir, const char *name,
                        void (*writer)(FILE *f, const void *ctx), const void *ctx, char *path);

#endif
