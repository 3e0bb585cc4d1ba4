/* arch.h — the model architectures poa knows: the named presets of student.arch, and the one
 * check of a model's shape (sizes, elastic ranges, heads, crops).
 *
 * Both the run configuration (common/config_validate.c: poa_config_finalize fills the preset
 * into the student.* keys and validates them, which poa-config does without the model library)
 * and the model (model/model_config.c: poa_model_config_from_arch, poa_model_config_validate) use
 * this table and this check, so a shape that one accepts the other accepts too.  It lives in
 * common/ because common/ is the only layer both can reach.
 *
 * The shape's fields carry the official configuration key names; the check's messages name
 * them ("student.min_embed_dim = 400 is not a multiple of student.head_dim = 64") and its fault
 * says which keys are at fault, so the configuration can cite where each value came from.
 */
#ifndef POA_COMMON_ARCH_H
#define POA_COMMON_ARCH_H

#include <stdbool.h>

#define POA_ARCH_MAX_HEADS 8   /* projection heads (MPH)  */
#define POA_ARCH_MAX_DEPTH 128 /* blocks of the intact ViT */

/* A named architecture: the backbone, the projection heads and the crop sizes it is planned
 * for. */
typedef struct poa_arch_preset {
    const char *name; /* the student.arch value */
    int img_size;     /* side of the position-embedding grid (= global crop) */
    int patch_size, min_embed_dim, max_embed_dim, min_depth, max_depth, head_dim;
    int n_heads, head_n_prototypes[4], head_hidden_dim, head_bottleneck_dim;
    int global_crops_size, local_crops_size;
} poa_arch_preset;

/* The table (tiny, demo, vit_small, vit_base, vit_large, vit_dynamic); *n gets its length. */
const poa_arch_preset *poa_arch_presets(int *n);
/* The preset named `name`, or NULL. */
const poa_arch_preset *poa_arch_preset_find(const char *name);
/* "tiny, demo, vit_small, vit_base, vit_large, vit_dynamic" (for messages). */
const char *poa_arch_preset_names(void);

/* The shape of a model, as the configuration keys describe it. */
typedef struct poa_arch_shape {
    int patch_size, in_chans, mlp_ratio, head_dim;
    int min_embed_dim, max_embed_dim, width_interval;
    int min_depth, max_depth, depth_interval;
    bool qkv_bias, proj_bias, ffn_bias;
    int img_size; /* side of the position-embedding grid */
    int global_crops_size, local_crops_size;
    int n_heads;                  /* length of dino.head_n_prototypes */
    const int *head_n_prototypes; /* [n_heads]                        */
    int head_hidden_dim, head_bottleneck_dim, head_nlayers;
    bool extracted; /* a standalone ViT: one width, one depth, no heads */
} poa_arch_shape;

/* The rule a shape breaks: a message naming the keys and values, and the configuration keys at
 * fault ("student.head_dim"; `other` may be NULL; a name that is not a configuration key, such
 * as "in_chans", belongs to a value the configuration does not set). */
typedef struct poa_arch_fault {
    const char *key, *other;
    char msg[512];
} poa_arch_fault;

/* Whether the model can be built and trained with this shape: sizes >= 1, widths multiples of
 * student.head_dim that reach student.max_embed_dim in steps of width_interval heads, depths
 * in [1, POA_ARCH_MAX_DEPTH] that reach student.max_depth in steps of depth_interval, crops
 * multiples of the patch size, at most POA_ARCH_MAX_HEADS heads of 3 layers, biases in every
 * linear layer.  false: *fault says which rule (the first broken one, in that order). */
bool poa_arch_shape_check(const poa_arch_shape *shape, poa_arch_fault *fault);

#endif
