/* features.h — poa's own forward of a model source: the backbone features of a batch of
 * images for any of its sub-networks, what the evaluation programs compute on (k-NN, linear
 * probes) and what the tests compare extracted models with.
 *
 *     poa_features *f;
 *     poa_features_opts o = {.backend = "cpu", .max_images = 64, .max_size = 224};
 *     poa_features_create(&f, &src, &o, &err);
 *     poa_subnet sn;  poa_model_source_subnet(&src, 384, 12, &sn, &err);
 *     poa_features_run(f, &sn, images, B, 224, 224, cls, patches, &err);
 *     poa_features_destroy(f);
 *
 * images: host fp32 [B, C, H, W], normalised pixels (ImageNet mean/std), H and W multiples of
 * the patch size, at most max_size; other sizes than the model's img_size resample the
 * position embeddings (bicubic, docs/algorithm.md §2.3).  Outputs (host fp32, either may be
 * NULL): cls [B, d] = the class token after the final LayerNorm ("x_norm_clstoken"), patches
 * [B, N, d] = the patch tokens after it ("x_norm_patchtokens"), N = (H/P)·(W/P), d = sn->width.
 * A checkpoint source runs the sub-network as an elastic view of the full weights (α in the
 * GEMMs); an extracted source runs its one sub-network (poa_subnet_intact).  No drop path, no
 * masks: the inference forward of the teacher.
 *
 * This is the only file of the layer that talks to a backend: it creates it
 * (poa_backend_create with the compute dtype), uploads the fp32 weights once and, for a bf16
 * run, makes their compute copy, plans one activation workspace for (max_images, max_size) and
 * the intact width and depth, and reuses it for every call and every sub-network.
 */
#ifndef POA_MODELIO_FEATURES_H
#define POA_MODELIO_FEATURES_H

#include "modelio/model_source.h"

typedef struct poa_features poa_features;

typedef struct poa_features_opts {
    const char *backend;     /* "cpu" (default when NULL) or "cuda"                         */
    int max_images;          /* B of the largest call                                        */
    int max_size;            /* largest image side (0: the model's img_size)                 */
    poa_dtype compute_dtype; /* backbone activations and GEMM weights: POA_DT_F32 (default,
                                the only one on the CPU) or POA_DT_BF16 (CUDA); the weights
                                stay fp32 masters and the features come back as fp32         */
    int device;              /* CUDA device index                                            */
    int max_blocks;          /* intermediate outputs of one poa_features_run_blocks call (0: that
                                call is not used; the linear probe takes 4)                   */
} poa_features_opts;

/* A runner for src (which must outlive it).  POA_ERR_ARG when the backend is not available
 * here or cannot run the model (the message says why). */
poa_status poa_features_create(poa_features **f, const poa_model_source *src,
                               const poa_features_opts *opts, poa_err *err);
/* Features of B ≤ max_images images of H × W for sub-network sn (see above).  POA_ERR_ARG for
 * sizes that do not fit the plan or a sub-network the model cannot run. */
poa_status poa_features_run(poa_features *f, const poa_subnet *sn, const float *images, int B,
                            int H, int W, float *cls, float *patches, poa_err *err);
/* The intermediate outputs of the linear probe (docs/algorithm.md, "Linear probing"): for the
 * executed blocks blocks[0 .. n) of sn (0-based positions along its block sequence, < its
 * depth, at most opts.max_blocks, repeats allowed) the residual stream after that block through
 * the final LayerNorm, as its class token cls [B, n, d] (image b's n tokens in the order asked,
 * the row b·n·d .. (b + 1)·n·d) and, when patch_mean is not NULL, the mean over the patch tokens
 * of the last one asked, patch_mean [B, d] (summed in double).  The output after block
 * depth − 1 is what poa_features_run gives, bit for bit.  POA_ERR_ARG as poa_features_run, and
 * for positions outside the sub-network or more than planned. */
poa_status poa_features_run_blocks(poa_features *f, const poa_subnet *sn, const float *images,
                                   int B, int H, int W, const int *blocks, int n, float *cls,
                                   float *patch_mean, poa_err *err);
void poa_features_destroy(poa_features *f);

#endif
