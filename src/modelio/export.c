/* export.c — see export.h. */
#include "poa_config.h"
#include "modelio/export.h"
#include "model/extract.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void poa_export_basename(int width, int depth, char *buf, size_t n)
{
    snprintf(buf, n, "vit_%dx%d", width, depth);
}

void poa_export_meta(const poa_model_source *src, const poa_subnet *sn, poa_extracted_meta *meta)
{
    const poa_model_config *c = &src->model.cfg;
    memset(meta, 0, sizeof *meta);
    meta->embed_dim = sn->width;
    meta->depth = sn->depth;
    meta->head_dim = c->head_dim;
    meta->num_heads = poa_model_n_attn_heads(c, sn->width);
    meta->mlp_ratio = c->mlp_ratio;
    meta->patch_size = c->patch_size;
    meta->img_size = c->img_size;
    meta->in_chans = c->in_chans;
    meta->ln_eps = c->ln_eps;
    for (int j = 0; j < sn->depth; j++) meta->blocks[j] = sn->blocks[j];
    /* the absolute path, so the file says where it came from wherever it is read */
    char *abs = realpath(src->path, NULL);
    snprintf(meta->source_checkpoint, sizeof meta->source_checkpoint, "%s", abs ? abs : src->path);
    free(abs);
    meta->source_iteration = src->iteration;
    snprintf(meta->source_weights, sizeof meta->source_weights, "%s",
             poa_weights_from_name(src->from));
    snprintf(meta->source_arch, sizeof meta->source_arch, "%s", c->arch);
    meta->source_embed_dim = c->max_embed_dim;
    meta->source_depth = c->max_depth;
    meta->alpha = poa_subnet_alpha(c, sn);
    snprintf(meta->program_version, sizeof meta->program_version, "%s", PACKAGE_VERSION);
    /* one time for the whole set of files of this sub-network, so its formats agree */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(meta->created, sizeof meta->created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    meta->config_yaml = src->config_yaml;
}

poa_status poa_export_subnet(const poa_model_source *src, int width, int depth, const char *dir,
                             unsigned formats, char (*paths)[POA_IO_PATH_MAX], poa_err *err)
{
    if (src->kind != POA_SOURCE_CHECKPOINT)
        return poa_err_set(err, POA_ERR_ARG,
                           "%s is an extracted model: sub-networks are extracted from a training "
                           "checkpoint",
                           src->path);
    poa_subnet sn;
    poa_status st = poa_model_source_subnet(src, width, depth, &sn, err);
    if (st) return st;
    if ((st = poa_io_make_dirs(dir, err))) return st;
    poa_model out;
    float *weights = NULL;
    if ((st = poa_extract_subnet(&src->model, src->params, width, depth, &out, &weights, err)))
        return st;
    poa_extracted_meta meta;
    poa_export_meta(src, &sn, &meta);
    char base[64];
    poa_export_basename(width, depth, base, sizeof base);
    static const poa_file_format order[] = {POA_FILE_H5, POA_FILE_SAFETENSORS};
    int k = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0] && st == POA_OK; i++) {
        if (!(formats & (unsigned) order[i])) continue;
        char path[POA_IO_PATH_MAX];
        int w = snprintf(path, sizeof path, "%s/%s%s", dir, base, poa_file_format_suffix(order[i]));
        if (w < 0 || (size_t) w >= sizeof path)
            st = poa_err_set(err, POA_ERR_ARG, "output path too long: %s/%s", dir, base);
        if (!st) st = poa_extracted_write(path, order[i], &out.table, weights, &meta, err);
        if (!st && paths) snprintf(paths[k++], POA_IO_PATH_MAX, "%s", path);
    }
    free(weights);
    poa_model_free(&out);
    return st;
}
