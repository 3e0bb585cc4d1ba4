/* model.h — the one model description (docs/architecture.md §4).
 *
 * Every parameter of the ViT backbone and of the projection heads is declared once, in the
 * X-macro lists below: official state-dict key (docs/algorithm.md §2.8; extracted-model key, §10),
 * PyTorch shape, init rule (docs/algorithm.md §2.7).  poa_model_build() turns the lists into a
 * poa_param_table (sizes, aligned block-major offsets, buckets, optimizer flags per
 * docs/algorithm.md §8.2) and into the offset structs that forward/backward use.  Parameters,
 * gradients, AdamW moments and the teacher are flat buffers with the same offsets: `params +
 * m->blocks[i].qkv_w` is the intact qkv weight of block i in any of them.
 *
 * Flat-buffer order: cls_token, pos_embed, mask_token, patch_embed (bucket 0); block i (bucket
 * 1 + i); final norm (bucket L_max + 1); head h: mlp{h}.*, last_layer{h}.* (bucket L_max + 2 + h).
 * The backbone occupies [0, backbone_end), the heads (module dino_head) [backbone_end, total).
 */
#ifndef POA_MODEL_MODEL_H
#define POA_MODEL_MODEL_H

#include "backend/backend.h"
#include "model/model_config.h"
#include "tensor/params.h"

#include <stdint.h>
#include <stdio.h>

/* Shapes of the lists, resolved against the config (D = width of the table, C·P·P = patch). */
typedef enum poa_shape_kind {
    POA_SHAPE_1_1_D,   /* [1, 1, D]          cls_token                     */
    POA_SHAPE_1_POS_D, /* [1, 1 + M², D]     pos_embed                     */
    POA_SHAPE_1_D,     /* [1, D]             mask_token                    */
    POA_SHAPE_D_CPP,   /* [D, C, P, P]       patch-embed conv weight       */
    POA_SHAPE_D,       /* [D]                                              */
    POA_SHAPE_3D,      /* [3D]                                             */
    POA_SHAPE_3D_D,    /* [3D, D]                                          */
    POA_SHAPE_D_D,     /* [D, D]                                           */
    POA_SHAPE_4D,      /* [rD]   (r = mlp_ratio)                           */
    POA_SHAPE_4D_D,    /* [rD, D]                                          */
    POA_SHAPE_D_4D,    /* [D, rD]                                          */
    POA_SHAPE_HID_D,   /* [hidden, D]        head layer 0                  */
    POA_SHAPE_HID,     /* [hidden]                                         */
    POA_SHAPE_HID_HID, /* [hidden, hidden]   head layer 2                  */
    POA_SHAPE_BN_HID,  /* [bottleneck, hidden] head layer 4                */
    POA_SHAPE_BN,      /* [bottleneck]                                     */
    POA_SHAPE_K_1,     /* [K, 1]             weight_g                      */
    POA_SHAPE_K_BN,    /* [K, bottleneck]    weight_v                      */
} poa_shape_kind;

/* Init rules of the lists (docs/algorithm.md §2.7); arguments come from the config. */
typedef enum poa_init_kind {
    POA_INITK_ZERO,
    POA_INITK_ONE,
    POA_INITK_TRUNC02,    /* truncated normal std 0.02, absolute ±2 bounds         */
    POA_INITK_CLS,        /* N(0, 1e-6²)                                           */
    POA_INITK_CONV,       /* U(±1/√(C·P·P)) — PyTorch's default conv init          */
    POA_INITK_LAYERSCALE, /* constant cfg.layerscale                               */
    POA_INITK_LINEAR_BN,  /* U(±1/√bottleneck) — PyTorch's default Linear init     */
} poa_init_kind;

/* X(field, training name, extracted name, shape, init) — backbone embeddings, in order. */
#define POA_VIT_EMBED_PARAMS(X)                                                                    \
    X(cls_token, "cls_token", "cls_token", POA_SHAPE_1_1_D, POA_INITK_CLS)                         \
    X(pos_embed, "pos_embed", "pos_embed", POA_SHAPE_1_POS_D, POA_INITK_TRUNC02)                   \
    X(mask_token, "mask_token", "mask_token", POA_SHAPE_1_D, POA_INITK_ZERO)                       \
    X(pe_w, "patch_embed.proj.weight", "patch_embed.proj.weight", POA_SHAPE_D_CPP, POA_INITK_CONV) \
    X(pe_b, "patch_embed.proj.bias", "patch_embed.proj.bias", POA_SHAPE_D, POA_INITK_CONV)

/* One block; names are prefixed "blocks.{i}.". */
#define POA_VIT_BLOCK_PARAMS(X)                                                                    \
    X(norm1_w, "norm1.norm.weight", "norm1.weight", POA_SHAPE_D, POA_INITK_ONE)                    \
    X(norm1_b, "norm1.norm.bias", "norm1.bias", POA_SHAPE_D, POA_INITK_ZERO)                       \
    X(qkv_w, "attn.qkv.linear.weight", "attn.qkv.weight", POA_SHAPE_3D_D, POA_INITK_TRUNC02)       \
    X(qkv_b, "attn.qkv.linear.bias", "attn.qkv.bias", POA_SHAPE_3D, POA_INITK_ZERO)                \
    X(proj_w, "attn.proj.linear.weight", "attn.proj.weight", POA_SHAPE_D_D, POA_INITK_TRUNC02)     \
    X(proj_b, "attn.proj.linear.bias", "attn.proj.bias", POA_SHAPE_D, POA_INITK_ZERO)              \
    X(ls1, "ls1.gamma", "ls1.gamma", POA_SHAPE_D, POA_INITK_LAYERSCALE)                            \
    X(norm2_w, "norm2.norm.weight", "norm2.weight", POA_SHAPE_D, POA_INITK_ONE)                    \
    X(norm2_b, "norm2.norm.bias", "norm2.bias", POA_SHAPE_D, POA_INITK_ZERO)                       \
    X(fc1_w, "mlp.fc1.linear.weight", "mlp.fc1.weight", POA_SHAPE_4D_D, POA_INITK_TRUNC02)         \
    X(fc1_b, "mlp.fc1.linear.bias", "mlp.fc1.bias", POA_SHAPE_4D, POA_INITK_ZERO)                  \
    X(fc2_w, "mlp.fc2.linear.weight", "mlp.fc2.weight", POA_SHAPE_D_4D, POA_INITK_TRUNC02)         \
    X(fc2_b, "mlp.fc2.linear.bias", "mlp.fc2.bias", POA_SHAPE_D, POA_INITK_ZERO)                   \
    X(ls2, "ls2.gamma", "ls2.gamma", POA_SHAPE_D, POA_INITK_LAYERSCALE)

/* Final LayerNorm. */
#define POA_VIT_NORM_PARAMS(X)                                                                     \
    X(norm_w, "norm.norm.weight", "norm.weight", POA_SHAPE_D, POA_INITK_ONE)                       \
    X(norm_b, "norm.norm.bias", "norm.bias", POA_SHAPE_D, POA_INITK_ZERO)

/* One projection head (module dino_head); "%d" is the head index. */
#define POA_HEAD_PARAMS(X)                                                                         \
    X(w1, "mlp%d.0.linear.weight", "mlp%d.0.linear.weight", POA_SHAPE_HID_D, POA_INITK_TRUNC02)    \
    X(b1, "mlp%d.0.linear.bias", "mlp%d.0.linear.bias", POA_SHAPE_HID, POA_INITK_ZERO)             \
    X(w2, "mlp%d.2.weight", "mlp%d.2.weight", POA_SHAPE_HID_HID, POA_INITK_TRUNC02)                \
    X(b2, "mlp%d.2.bias", "mlp%d.2.bias", POA_SHAPE_HID, POA_INITK_ZERO)                           \
    X(w3, "mlp%d.4.weight", "mlp%d.4.weight", POA_SHAPE_BN_HID, POA_INITK_TRUNC02)                 \
    X(b3, "mlp%d.4.bias", "mlp%d.4.bias", POA_SHAPE_BN, POA_INITK_ZERO)                            \
    X(g, "last_layer%d.weight_g", "last_layer%d.weight_g", POA_SHAPE_K_1, POA_INITK_ONE)           \
    X(v, "last_layer%d.weight_v", "last_layer%d.weight_v", POA_SHAPE_K_BN, POA_INITK_LINEAR_BN)

#define POA_MODEL_OFFSET_FIELD(field, name, xname, shape, init) size_t field;
/* Offsets (floats) of the backbone's non-block parameters. */
typedef struct poa_vit_offsets {
    POA_VIT_EMBED_PARAMS(POA_MODEL_OFFSET_FIELD)
    POA_VIT_NORM_PARAMS(POA_MODEL_OFFSET_FIELD)
} poa_vit_offsets;
/* Offsets of one block's parameters (intact tensors). */
typedef struct poa_block_offsets {
    POA_VIT_BLOCK_PARAMS(POA_MODEL_OFFSET_FIELD)
} poa_block_offsets;
/* Offsets of one head's parameters. */
typedef struct poa_head_offsets {
    POA_HEAD_PARAMS(POA_MODEL_OFFSET_FIELD)
} poa_head_offsets;
#undef POA_MODEL_OFFSET_FIELD

typedef struct poa_model {
    poa_model_config cfg;
    poa_param_table table;
    poa_vit_offsets vit;
    poa_block_offsets blocks[POA_MODEL_MAX_DEPTH];
    poa_head_offsets heads[POA_MODEL_MAX_HEADS];
    size_t backbone_end; /* floats: [0, backbone_end) is the backbone, the rest dino_head */
    int n_widths, n_depths;
} poa_model;

/* Build the table from a validated config.  Fatal on an invalid config (validate first). */
void poa_model_build(poa_model *m, const poa_model_config *cfg);
void poa_model_free(poa_model *m);

/* Optimizer rules of docs/algorithm.md §8.2 evaluated on a name (without module prefix): */
double poa_model_lr_mult(const poa_model_config *cfg, const char *module, const char *name);
double poa_model_wd_mult(const char *name);

/* "backbone.blocks.0.attn.qkv.linear.weight" (checkpoint dataset name; extracted models have
 * no module prefix, docs/algorithm.md §2.8). */
void poa_model_param_key(const poa_model *m, int i, char *buf, size_t n);

/* Fill params (backend memory, table.total floats) per docs/algorithm.md §2.7 from Philox streams
 * (seed, rank 0, POA_RNG_INIT): parameter i uses counter indices i·2^40 + ..., so the values
 * of a tensor depend only on (seed, its index in the table, its shape).  Alignment padding is
 * zeroed. */
void poa_model_init_params(poa_backend *be, const poa_model *m, float *params, uint64_t seed);
/* The same on a host buffer (used by the above and by tests). */
void poa_model_init_params_host(const poa_model *m, float *host, uint64_t seed);

/* Memory plan of a config (docs/algorithm.md §5.4 sizes), in bytes, for the trainer's --dry-run and
 * start-up report.  Master copies are fp32; activations are in the backend's compute dtype. */
typedef struct poa_model_memplan {
    size_t n_params; /* parameter values (no padding) */
    size_t n_backbone, n_heads_params;
    poa_dtype compute_dtype;          /* the backend's activation dtype                       */
    size_t params_bytes;              /* one flat fp32 buffer incl. padding (student)         */
    size_t grads_bytes;               /* gradients                                            */
    size_t adam_bytes;                /* AdamW m and v                                        */
    size_t teacher_bytes;             /* EMA teacher                                          */
    size_t compute_copy_bytes;        /* GEMM weights' compute copies (student + teacher; 0
                                         when the compute dtype is fp32: they alias the masters) */
    size_t head_weights_bytes;        /* weight-normalised prototypes (student + teacher), dW */
    size_t head_logits_bytes_per_row; /* logits of all heads for one input row        */
    size_t head_acts_bytes_per_row;   /* saved head activations of one row            */
    /* backbone workspace per image for one training call of the intact network
     * (poa_vit_acts_bytes with train = 1), and for the teacher (train = 0) */
    size_t act_global_per_image;
    size_t act_local_per_image;
    size_t teacher_act_per_image;
} poa_model_memplan;
/* be: the backend that will run the model, or a planning backend (poa_backend_planner): its
 * compute dtype and attention sizes. */
void poa_model_memory_plan(const poa_backend *be, const poa_model *m, poa_model_memplan *plan);
/* Rough total of one training step on one device: fixed buffers + `images` images with 2 global
 * and `local_crops` local crops through both student branches and the teacher, plus the head
 * rows of their cls tokens (iBOT patch rows excluded). */
size_t poa_model_memory_step_bytes(const poa_model_memplan *plan, int images, int local_crops);
/* Human-readable report (one "name: value" line each). */
void poa_model_memory_plan_print(const poa_model *m, const poa_model_memplan *plan, FILE *f);

#endif
