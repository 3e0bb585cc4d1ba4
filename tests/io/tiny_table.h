/* tiny_table.h — a tiny POA parameter table for the io/comm tests, built from the official
 * state-dict names of docs/algorithm.md §2.8 (independently of src/model/, so these tests do not
 * depend on the model code).  Buckets as in the model: embeddings 0, block i → 1 + i, final
 * norm L + 1, head h → L + 2 + h. */
#ifndef POA_TESTS_TINY_TABLE_H
#define POA_TESTS_TINY_TABLE_H

#include "tensor/params.h"

#include <stdio.h>

typedef struct tiny_dims {
    int D, depth, patch, img, hidden, bottleneck, n_heads;
    int K[4];
} tiny_dims;

static const tiny_dims TINY_DEFAULT = {32, 2, 4, 16, 64, 16, 2, {16, 32, 0, 0}};

static inline void tiny_add(poa_param_table *t, const char *module, const char *name, int block,
                            int bucket, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    int64_t shape[4] = {d0, d1, d2, d3};
    poa_params_add(t, module, name, ndim, shape, block, bucket, POA_INIT_ZERO, 0, 0, 1.0f, 1.0f);
}

static inline void tiny_table_build(poa_param_table *t, const tiny_dims *g)
{
    const char *bb = "backbone", *hd = "dino_head";
    int D = g->D, L = g->depth, M = g->img / g->patch;
    poa_params_init(t);
    tiny_add(t, bb, "cls_token", -1, 0, 3, 1, 1, D, 0);
    tiny_add(t, bb, "pos_embed", -1, 0, 3, 1, 1 + M * M, D, 0);
    tiny_add(t, bb, "mask_token", -1, 0, 2, 1, D, 0, 0);
    tiny_add(t, bb, "patch_embed.proj.weight", -1, 0, 4, D, 3, g->patch, g->patch);
    tiny_add(t, bb, "patch_embed.proj.bias", -1, 0, 1, D, 0, 0, 0);
    char n[POA_PARAM_NAME_MAX];
    for (int i = 0; i < L; i++) {
#define BLK(suffix, nd, a, b)                                                                      \
    snprintf(n, sizeof n, "blocks.%d.%s", i, suffix);                                              \
    tiny_add(t, bb, n, i, 1 + i, nd, a, b, 0, 0)
        BLK("norm1.norm.weight", 1, D, 0);
        BLK("norm1.norm.bias", 1, D, 0);
        BLK("attn.qkv.linear.weight", 2, 3 * D, D);
        BLK("attn.qkv.linear.bias", 1, 3 * D, 0);
        BLK("attn.proj.linear.weight", 2, D, D);
        BLK("attn.proj.linear.bias", 1, D, 0);
        BLK("ls1.gamma", 1, D, 0);
        BLK("norm2.norm.weight", 1, D, 0);
        BLK("norm2.norm.bias", 1, D, 0);
        BLK("mlp.fc1.linear.weight", 2, 4 * D, D);
        BLK("mlp.fc1.linear.bias", 1, 4 * D, 0);
        BLK("mlp.fc2.linear.weight", 2, D, 4 * D);
        BLK("mlp.fc2.linear.bias", 1, D, 0);
        BLK("ls2.gamma", 1, D, 0);
#undef BLK
    }
    tiny_add(t, bb, "norm.norm.weight", -1, L + 1, 1, D, 0, 0, 0);
    tiny_add(t, bb, "norm.norm.bias", -1, L + 1, 1, D, 0, 0, 0);
    for (int h = 0; h < g->n_heads; h++) {
        int bk = L + 2 + h;
#define HEAD(fmt, nd, a, b)                                                                        \
    snprintf(n, sizeof n, fmt, h);                                                                 \
    tiny_add(t, hd, n, -1, bk, nd, a, b, 0, 0)
        HEAD("mlp%d.0.linear.weight", 2, g->hidden, D);
        HEAD("mlp%d.0.linear.bias", 1, g->hidden, 0);
        HEAD("mlp%d.2.weight", 2, g->hidden, g->hidden);
        HEAD("mlp%d.2.bias", 1, g->hidden, 0);
        HEAD("mlp%d.4.weight", 2, g->bottleneck, g->hidden);
        HEAD("mlp%d.4.bias", 1, g->bottleneck, 0);
        HEAD("last_layer%d.weight_g", 2, g->K[h], 1);
        HEAD("last_layer%d.weight_v", 2, g->K[h], g->bottleneck);
#undef HEAD
    }
}

#endif
