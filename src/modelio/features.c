/* features.c — see features.h.  Every backend call of the model-from-file layer is here. */
#include "modelio/features.h"
#include "model/vit.h"

#include <stdlib.h>
#include <string.h>

struct poa_features {
    poa_backend *be;
    const poa_model *m;
    int max_images, max_size;
    float *params;       /* backend memory: the source's fp32 weights                 */
    poa_act *params_act; /* backend memory: their compute copy (bf16), or NULL (fp32) */
    poa_weights w;       /* what the forward reads                                     */
    float *images;       /* backend memory: [max_images, C, S, S]                      */
    float *out;          /* host: [max_images · T, d_max] tokens                        */
    poa_vit_acts acts;
    int max_blocks; /* intermediate outputs planned (poa_features_run_blocks)     */
    poa_act **taps; /* backend memory: [max_images · T, d_max] each               */
};

/* The backend by name and compute dtype; NULL with the reason in err. */
static poa_backend *create_backend(const poa_features_opts *opts, poa_err *err)
{
    const char *name = opts->backend ? opts->backend : "cpu";
    const poa_backend_opts bo = {.act_dtype = opts->compute_dtype, .device = opts->device};
    char why[512] = "";
    poa_backend *be = poa_backend_create(name, &bo, why, sizeof why);
    if (!be) {
        poa_err_set(err, POA_ERR_ARG, "backend '%s' (%s) is not available: %s", name,
                    poa_dtype_name(opts->compute_dtype), why);
        return NULL;
    }
    const char *missing[4];
    int n = poa_backend_missing_ops(be, missing, 4);
    if (n > 0) {
        poa_err_set(err, POA_ERR_ARG,
                    "backend '%s' cannot run the model yet (%d ops missing: %s%s)", name, n,
                    missing[0], n > 1 ? ", ..." : "");
        poa_backend_destroy(be);
        return NULL;
    }
    return be;
}

/* The source's weights on the backend: fp32 masters, and their compute copy when the backend
 * computes in bf16. */
static void upload_weights(poa_features *f, const float *host)
{
    poa_backend *be = f->be;
    const size_t n = f->m->table.total;
    f->params = be->iface->alloc(be, sizeof(float) * n);
    be->iface->upload(be, f->params, host, sizeof(float) * n);
    if (be->act_dtype == POA_DT_F32) {
        f->w = poa_weights_f32(be, f->params);
        return;
    }
    f->params_act = be->iface->alloc(be, poa_act_bytes(be, n));
    be->nn->act_from_f32(be, f->params_act, f->params, n);
    f->w = (poa_weights){f->params, f->params_act};
}

/* One inference forward of sub-network sn on the B images uploaded; tokens to f->out (fp32),
 * and the n intermediate outputs after blocks[] to f->taps (backend memory). */
static void forward(poa_features *f, const poa_subnet *sn, int B, int H, int W, const int *blocks,
                    int n)
{
    poa_backend *be = f->be;
    poa_vit_input in = {f->images, B, H, W, NULL, NULL};
    poa_vit_forward_blocks(be, f->m, &f->w, sn, &in, blocks, n, f->taps, &f->acts);
    const size_t T = 1 + (size_t) poa_model_n_patches(&f->m->cfg, H, W);
    if (n == 0) be->iface->act_download(be, f->out, f->acts.out, (size_t) B * T * sn->width);
}

poa_status poa_features_create(poa_features **out, const poa_model_source *src,
                               const poa_features_opts *opts, poa_err *err)
{
    *out = NULL;
    const poa_model *m = &src->model;
    const int max_size = opts->max_size > 0 ? opts->max_size : m->cfg.img_size;
    if (opts->max_images < 1 || max_size % m->cfg.patch_size)
        return poa_err_set(err, POA_ERR_ARG,
                           "features: %d images of at most %d px (a multiple of the patch size "
                           "%d)",
                           opts->max_images, max_size, m->cfg.patch_size);
    poa_backend *be = create_backend(opts, err);
    if (!be) return POA_ERR_ARG;
    poa_features *f = poa_xcalloc(1, sizeof *f);
    f->be = be;
    f->m = m;
    f->max_images = opts->max_images;
    f->max_size = max_size;
    const size_t pixels = (size_t) opts->max_images * m->cfg.in_chans * max_size * max_size;
    const size_t tokens =
        (size_t) opts->max_images * (1 + poa_model_n_patches(&m->cfg, max_size, max_size));
    upload_weights(f, src->params);
    f->images = be->iface->alloc(be, sizeof(float) * pixels);
    f->out = poa_xmalloc(sizeof(float) * tokens * m->cfg.max_embed_dim);
    poa_vit_acts_create(be, m, &f->acts, opts->max_images, max_size, 0);
    f->max_blocks = opts->max_blocks > 0 ? opts->max_blocks : 0;
    if (f->max_blocks) {
        f->taps = poa_xcalloc((size_t) f->max_blocks, sizeof *f->taps);
        for (int j = 0; j < f->max_blocks; j++)
            f->taps[j] = be->iface->alloc(be, poa_act_bytes(be, tokens * m->cfg.max_embed_dim));
    }
    *out = f;
    return POA_OK;
}

/* The checks of a call and the upload of its images. */
static poa_status prepare(poa_features *f, const poa_subnet *sn, const float *images, int B, int H,
                          int W, poa_err *err)
{
    const poa_model_config *c = &f->m->cfg;
    if (B < 1 || B > f->max_images || H < c->patch_size || W < c->patch_size || H % c->patch_size ||
        W % c->patch_size || H > f->max_size || W > f->max_size)
        return poa_err_set(err, POA_ERR_ARG,
                           "features: %d images of %dx%d (planned: at most %d of at most %d px, "
                           "sides multiples of %d)",
                           B, H, W, f->max_images, f->max_size, c->patch_size);
    poa_subnet check;
    poa_status st = poa_subnet_make(c, sn->width, sn->depth, &check, err);
    if (st) return st;
    f->be->iface->upload(f->be, f->images, images,
                         sizeof(float) * (size_t) B * c->in_chans * (size_t) H * W);
    return POA_OK;
}

poa_status poa_features_run(poa_features *f, const poa_subnet *sn, const float *images, int B,
                            int H, int W, float *cls, float *patches, poa_err *err)
{
    const poa_model_config *c = &f->m->cfg;
    poa_status st = prepare(f, sn, images, B, H, W, err);
    if (st) return st;
    forward(f, sn, B, H, W, NULL, 0);
    const int d = sn->width, N = poa_model_n_patches(c, H, W), T = N + 1;
    for (int b = 0; b < B; b++) {
        const float *tok = f->out + (size_t) b * T * d;
        if (cls) memcpy(cls + (size_t) b * d, tok, sizeof(float) * d);
        if (patches) memcpy(patches + (size_t) b * N * d, tok + d, sizeof(float) * (size_t) N * d);
    }
    return POA_OK;
}

poa_status poa_features_run_blocks(poa_features *f, const poa_subnet *sn, const float *images,
                                   int B, int H, int W, const int *blocks, int n, float *cls,
                                   float *patch_mean, poa_err *err)
{
    if (n < 1 || n > f->max_blocks)
        return poa_err_set(err, POA_ERR_ARG,
                           "features: %d intermediate outputs asked, %d planned (max_blocks)", n,
                           f->max_blocks);
    for (int j = 0; j < n; j++)
        if (blocks[j] < 0 || blocks[j] >= sn->depth)
            return poa_err_set(err, POA_ERR_ARG,
                               "features: output after block %d of a sub-network of depth %d",
                               blocks[j], sn->depth);
    poa_status st = prepare(f, sn, images, B, H, W, err);
    if (st) return st;
    forward(f, sn, B, H, W, blocks, n);
    const int d = sn->width, N = poa_model_n_patches(&f->m->cfg, H, W), T = N + 1;
    for (int j = 0; j < n; j++) {
        f->be->iface->act_download(f->be, f->out, f->taps[j], (size_t) B * T * d);
        for (int b = 0; b < B; b++)
            memcpy(cls + ((size_t) b * n + j) * d, f->out + (size_t) b * T * d, sizeof(float) * d);
    }
    if (!patch_mean) return POA_OK;
    double *sum = poa_xmalloc(sizeof(double) * d);
    for (int b = 0; b < B; b++) { /* f->out holds the last output asked */
        const float *tok = f->out + (size_t) b * T * d + d;
        for (int k = 0; k < d; k++) sum[k] = 0;
        for (int p = 0; p < N; p++)
            for (int k = 0; k < d; k++) sum[k] += tok[(size_t) p * d + k];
        for (int k = 0; k < d; k++) patch_mean[(size_t) b * d + k] = (float) (sum[k] / N);
    }
    free(sum);
    return POA_OK;
}

void poa_features_destroy(poa_features *f)
{
    if (!f) return;
    for (int j = 0; j < f->max_blocks; j++) f->be->iface->free(f->be, f->taps[j]);
    free(f->taps);
    poa_vit_acts_destroy(f->be, &f->acts);
    f->be->iface->free(f->be, f->images);
    if (f->params_act) f->be->iface->free(f->be, f->params_act);
    f->be->iface->free(f->be, f->params);
    free(f->out);
    poa_backend_destroy(f->be);
    free(f);
}
