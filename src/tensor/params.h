/* params.h — the generic parameter table behind "one model description".
 *
 * The model (src/model/) declares every parameter once (name = official PyTorch state-dict key,
 * PyTorch shape, init rule, optimizer flags); this table turns the declarations into sizes and
 * aligned offsets in one flat buffer.  Parameters, gradients, AdamW moments and the teacher all
 * use the same offsets, so EMA/AdamW/grad-norm/checkpoint code is one loop, and a block's
 * parameters are contiguous (block-major order: declare block l before block l+1).
 */
#ifndef POA_TENSOR_PARAMS_H
#define POA_TENSOR_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#define POA_PARAM_NAME_MAX 96
#define POA_PARAM_MAX_DIMS 4
/* Offsets are multiples of this many floats (64 bytes: a cache line, and aligned for vector
 * loads on both backends). */
#define POA_PARAM_ALIGN_FLOATS 16

/* Initialisation rules (docs/algorithm.md §2.7). */
typedef enum poa_init_rule {
    POA_INIT_ZERO,
    POA_INIT_ONE,
    POA_INIT_CONST,        /* value = init_arg (LayerScale 1e-5)                         */
    POA_INIT_TRUNC_NORMAL, /* N(0, init_arg²) truncated at absolute ±2 (std 0.02)        */
    POA_INIT_NORMAL,       /* N(0, init_arg²) (cls_token: 1e-6)                          */
    POA_INIT_UNIFORM,      /* U(-init_arg, +init_arg) (conv default, weight_v)           */
} poa_init_rule;

/* Optimizer / module flags (docs/algorithm.md §8.2, §8.3). */
enum poa_param_flags {
    POA_PF_NO_WD = 1u << 0,      /* wd_mult = 0 (.bias, norm, gamma)                    */
    POA_PF_LAST_LAYER = 1u << 1, /* last-layer lr schedule (frozen in the first epoch)  */
    POA_PF_HEAD = 1u << 2,       /* part of dino_head (clipped together, lr_mult 1)     */
    POA_PF_BACKBONE = 1u << 3,   /* part of the backbone (clipped together)             */
};

typedef struct poa_param_desc {
    char name[POA_PARAM_NAME_MAX]; /* official key without the backbone./dino_head. prefix */
    const char *module;            /* "backbone" or "dino_head" (checkpoint prefix)        */
    int ndim;
    int64_t shape[POA_PARAM_MAX_DIMS]; /* PyTorch shape                                   */
    size_t numel;
    size_t offset; /* in floats, into every flat buffer                                    */
    int block;     /* intact block index, or -1                                            */
    int bucket;    /* all-reduce bucket id (one per block; embeddings, final norm, heads)  */
    poa_init_rule init;
    double init_arg;
    unsigned flags;
    float lr_mult; /* layer-wise decay × patch-embed multiplier (docs/algorithm.md §8.2) */
    float wd_mult;
} poa_param_desc;

typedef struct poa_param_table {
    poa_param_desc *p;
    int n, cap;
    size_t total; /* floats, including alignment padding */
    int n_buckets;
} poa_param_table;

void poa_params_init(poa_param_table *t);
void poa_params_free(poa_param_table *t);
/* Append a parameter; its offset is the next aligned position.  Returns its index. */
int poa_params_add(poa_param_table *t, const char *module, const char *name, int ndim,
                   const int64_t *shape, int block, int bucket, poa_init_rule init, double init_arg,
                   unsigned flags, float lr_mult, float wd_mult);
/* Index of a parameter by name (without module prefix), or -1. */
int poa_params_find(const poa_param_table *t, const char *name);
/* Offset range [begin, end) in floats of one bucket (parameters of a bucket are contiguous). */
void poa_params_bucket_range(const poa_param_table *t, int bucket, size_t *begin, size_t *end);
/* "[2048, 1024]" */
void poa_params_shape_str(const poa_param_desc *d, char *buf, size_t n);

#endif
