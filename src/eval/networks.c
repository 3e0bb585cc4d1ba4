/* networks.c — see networks.h. */
#include "eval/networks.h"
#include "common/arch.h"
#include "common/log.h"
#include "io/atomic.h"

#include <errno.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

/* A positive decimal of at most 6 digits in [s, end), or 0. */
static int positive(const char *s, const char *end)
{
    if (end - s < 1 || end - s > 6) return 0;
    int v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9') return 0;
        v = 10 * v + (*s - '0');
    }
    return v;
}

poa_status poa_eval_parse_request(const char *option, const char *text, poa_eval_request *r,
                                  poa_err *err)
{
    if (strcmp(option, "arch") == 0) {
        if (!poa_arch_preset_find(text))
            return poa_err_set(err, POA_ERR_ARG,
                               "--arch '%s': not an architecture name (names: %s)", text,
                               poa_arch_preset_names());
        *r = (poa_eval_request){0, 0, poa_xstrdup(text)};
        return POA_OK;
    }
    const char *x = strpbrk(text, "xX");
    const int w = x ? positive(text, x) : 0, d = x ? positive(x + 1, text + strlen(text)) : 0;
    if (w < 1 || d < 1)
        return poa_err_set(err, POA_ERR_ARG,
                           "--subnet '%s': expected WIDTHxDEPTH with positive integers, e.g. "
                           "384x12",
                           text);
    *r = (poa_eval_request){w, d, NULL};
    return POA_OK;
}

static poa_status add_network(const poa_model_source *src, int source, const poa_subnet *sn,
                              int subnet, poa_eval_net *out, int cap, int *n, poa_err *err)
{
    for (int i = 0; i < *n; i++)
        if (out[i].source == source && out[i].sn.width == sn->width && out[i].sn.depth == sn->depth)
            return POA_OK;
    if (*n == cap) return poa_err_set(err, POA_ERR_ARG, "more than %d networks", cap);
    poa_eval_net *net = &out[(*n)++];
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

/* The networks of source i (see poa_eval_networks). */
static poa_status source_networks(const poa_model_source *src, int i, const poa_eval_request *req,
                                  int n_req, int all, poa_eval_net *out, int cap, int *n,
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
        const poa_eval_request *r = &req[j];
        poa_subnet sn;
        poa_err e;
        st = r->name ? poa_model_source_named(src, r->name, &sn, &e)
                     : poa_model_source_subnet(src, r->width, r->depth, &sn, &e);
        if (st)
            return poa_err_set(err, POA_ERR_ARG, "%s %s (%s)", r->name ? "--arch" : "--subnet",
                               e.msg, src->path);
        st = add_network(src, i, &sn, 0, out, cap, n, err);
    }
    if (!st && !all && n_req == 0) {
        poa_subnet sn = poa_subnet_intact(&src->model.cfg);
        st = add_network(src, i, &sn, 0, out, cap, n, err);
    }
    return st;
}

poa_status poa_eval_networks(const poa_model_source *src, int n_src, const poa_eval_request *req,
                             int n_req, int all, poa_eval_net *out, int cap, int *n, poa_err *err)
{
    *n = 0;
    for (int i = 0; i < n_src; i++) {
        poa_status st = source_networks(&src[i], i, req, n_req, all, out, cap, n, err);
        if (st) return st;
    }
    return POA_OK;
}

poa_status poa_eval_add_pixels(poa_eval_net *out, int cap, int *n, poa_err *err)
{
    if (*n == cap) return poa_err_set(err, POA_ERR_ARG, "too many networks");
    poa_eval_net *net = &out[(*n)++];
    memset(net, 0, sizeof *net);
    net->source = -1;
    snprintf(net->name, sizeof net->name, "pixels");
    return POA_OK;
}

poa_status poa_eval_choose_transform(const poa_model_source *src, int n_src, int crop, int resize,
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

int poa_eval_default_batch(const poa_model_source *src, int n_src, int crop, int asked)
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

/* ------------------------------------------------------------------ ranks */

int poa_eval_rank(void)
{
    return poa_log_rank();
}

int poa_eval_world(void)
{
    return poa_log_world_size();
}

int poa_eval_agree(int code)
{
    int worst = code;
    MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

void poa_eval_share(int64_t n, int r, int p, int64_t *lo, int64_t *hi)
{
    *lo = n * r / p, *hi = n * (r + 1) / p;
}

int poa_eval_read_code(poa_status st)
{
    return st == POA_ERR_ARG || st == POA_ERR_CONFIG ? POA_EXIT_USAGE : POA_EXIT_DATA;
}

int poa_eval_open_source(const char *program, const char *arg, poa_weights_from from,
                         poa_model_source *src)
{
    char path[POA_IO_PATH_MAX] = "";
    poa_err err = {0};
    int code = 0;
    if (poa_eval_rank() == 0) {
        poa_status st = poa_model_source_open(arg, from, src, &err);
        if (st) {
            poa_error("%s: %s", program, err.msg);
            code = poa_eval_read_code(st);
        }
        snprintf(path, sizeof path, "%s", src->path);
    }
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (code) return code;
    MPI_Bcast(path, (int) sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (poa_eval_rank() != 0) {
        poa_status st = poa_model_source_open(path, from, src, &err);
        if (st) {
            poa_error("%s: %s", program, err.msg);
            code = poa_eval_read_code(st);
        }
    }
    return poa_eval_agree(code);
}

int poa_eval_local_rank(void)
{
    int dev = 0;
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &dev);
    MPI_Comm_free(&local);
    return dev;
}

int poa_eval_make_output_dir(const char *program, const char *dir)
{
    int code = 0;
    if (poa_eval_rank() == 0) {
        poa_err err;
        if (poa_io_make_dirs(dir, &err) != POA_OK) {
            poa_error("%s: cannot create the output directory: %s", program, err.msg);
            code = POA_EXIT_IO;
        }
    }
    return poa_eval_agree(code);
}

/* ------------------------------------------------------------------ output */

void poa_eval_json_string(FILE *f, const char *text)
{
    fputc('"', f);
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', f);
        if ((unsigned char) *p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int poa_eval_write_file(const char *program, const char *dir, const char *name,
                        void (*writer)(FILE *f, const void *ctx), const void *ctx, char *path)
{
    poa_err err = {0};
    snprintf(path, POA_IO_PATH_MAX, "%s/%s", dir, name);
    poa_io_atomic at;
    poa_status st = poa_io_atomic_begin(&at, path, "", &err);
    FILE *f = st ? NULL : fopen(at.tmp, "w");
    if (!st && !f) st = poa_err_set(&err, POA_ERR_IO, "%s: %s", at.tmp, strerror(errno));
    if (f) {
        writer(f, ctx);
        errno = 0;
        int bad = ferror(f);
        if ((fclose(f) != 0 || bad) && !st)
            st = poa_err_set(&err, POA_ERR_IO, "%s: %s", at.tmp, strerror(errno ? errno : EIO));
    }
    if (poa_io_atomic_end(&at, st, &err)) {
        poa_error("%s: %s", program, err.msg);
        return POA_EXIT_IO;
    }
    return 0;
}
