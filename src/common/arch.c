/* arch.c — see arch.h. */
#include "common/arch.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Official heads (docs/algorithm.md §5.2): 4 heads, hidden 2048, bottleneck 256. */
#define OFFICIAL_HEADS                                                                             \
    .n_heads = 4, .head_n_prototypes = {8192, 16384, 32768, 65536}, .head_hidden_dim = 2048,       \
    .head_bottleneck_dim = 256

/* Backbone sizes of the named architectures (docs/algorithm.md §2.1, §12.1, §12.3; demo:
 * configs/README.md), with the heads and crops each one is planned for. */
static const poa_arch_preset presets[] = {
    /* docs/algorithm.md §12.1: D 64, 4 blocks, 4 heads of 16, patch 8, 32/16 px, widths {32,48,64},
     * depths {2,3,4}, MPH K = {64, 128}, hidden 128, bottleneck 32. */
    {.name = "tiny",
     .img_size = 32,
     .patch_size = 8,
     .min_embed_dim = 32,
     .max_embed_dim = 64,
     .min_depth = 2,
     .max_depth = 4,
     .head_dim = 16,
     .n_heads = 2,
     .head_n_prototypes = {64, 128},
     .head_hidden_dim = 128,
     .head_bottleneck_dim = 32,
     .global_crops_size = 32,
     .local_crops_size = 16},
    /* Fashion-MNIST on CPU (src/model/README.md): D 128 with heads of 32 → widths {64,96,128},
     * 6 blocks → depths {3,...,6}, patch 4 on 32/16 px crops, MPH K = {256, 512}. */
    {.name = "demo",
     .img_size = 32,
     .patch_size = 4,
     .min_embed_dim = 64,
     .max_embed_dim = 128,
     .min_depth = 3,
     .max_depth = 6,
     .head_dim = 32,
     .n_heads = 2,
     .head_n_prototypes = {256, 512},
     .head_hidden_dim = 256,
     .head_bottleneck_dim = 64,
     .global_crops_size = 32,
     .local_crops_size = 16},
    /* docs/algorithm.md §12.3: intact ViT-S/16, widths 192..384, depths 6..12,
     * K = {2048,...,16384}. */
    {.name = "vit_small",
     .img_size = 224,
     .patch_size = 16,
     .min_embed_dim = 192,
     .max_embed_dim = 384,
     .min_depth = 6,
     .max_depth = 12,
     .head_dim = 64,
     .n_heads = 4,
     .head_n_prototypes = {2048, 4096, 8192, 16384},
     .head_hidden_dim = 2048,
     .head_bottleneck_dim = 256,
     .global_crops_size = 224,
     .local_crops_size = 96},
    /* ViT-B/16 intact, widths 384..768 (ViT-S and up), depths 6..12 [REC]; poa choice: half the
     * official model's width and depth. */
    {.name = "vit_base",
     .img_size = 224,
     .patch_size = 16,
     .min_embed_dim = 384,
     .max_embed_dim = 768,
     .min_depth = 6,
     .max_depth = 12,
     .head_dim = 64,
     OFFICIAL_HEADS,
     .global_crops_size = 224,
     .local_crops_size = 96},
    /* The official POA teacher (docs/algorithm.md §2.1, §3.1): 11 widths × 13 depths. */
    {.name = "vit_large",
     .img_size = 224,
     .patch_size = 16,
     .min_embed_dim = 384,
     .max_embed_dim = 1024,
     .min_depth = 12,
     .max_depth = 24,
     .head_dim = 64,
     OFFICIAL_HEADS,
     .global_crops_size = 224,
     .local_crops_size = 96},
    /* The official configuration's name for the same elastic ViT-L (the keys' defaults). */
    {.name = "vit_dynamic",
     .img_size = 224,
     .patch_size = 16,
     .min_embed_dim = 384,
     .max_embed_dim = 1024,
     .min_depth = 12,
     .max_depth = 24,
     .head_dim = 64,
     OFFICIAL_HEADS,
     .global_crops_size = 224,
     .local_crops_size = 96},
};
enum { N_PRESETS = sizeof presets / sizeof presets[0] };

const poa_arch_preset *poa_arch_presets(int *n)
{
    if (n) *n = N_PRESETS;
    return presets;
}

const poa_arch_preset *poa_arch_preset_find(const char *name)
{
    for (int i = 0; name && i < N_PRESETS; i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

const char *poa_arch_preset_names(void)
{
    static char names[256];
    if (!names[0])
        for (int i = 0; i < N_PRESETS; i++) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", presets[i].name);
        }
    return names;
}

/* ------------------------------------------------------------------ the check */

static bool fault_at(poa_arch_fault *f, const char *key, const char *other, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool fault_at(poa_arch_fault *f, const char *key, const char *other, const char *fmt, ...)
{
    f->key = key;
    f->other = other;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    return false;
}

/* Sizes the other rules divide by or count with: all at least 1. */
static bool check_positive(const poa_arch_shape *s, poa_arch_fault *f)
{
    const struct {
        const char *key;
        int value;
    } sizes[] = {
        {"student.patch_size", s->patch_size},
        {"in_chans", s->in_chans},
        {"mlp_ratio", s->mlp_ratio},
        {"student.head_dim", s->head_dim},
        {"student.width_interval", s->width_interval},
        {"student.max_depth", s->max_depth},
        {"student.min_depth", s->min_depth},
        {"student.depth_interval", s->depth_interval},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].value < 1)
            return fault_at(f, sizes[i].key, NULL, "%s = %d must be at least 1", sizes[i].key,
                            sizes[i].value);
    return true;
}

/* Elastic widths: range(min_embed_dim, max_embed_dim + 1, head_dim x width_interval) must end
 * at max_embed_dim, the intact network. */
static bool check_widths(const poa_arch_shape *s, poa_arch_fault *f)
{
    if (s->max_embed_dim % s->head_dim)
        return fault_at(f, "student.max_embed_dim", "student.head_dim",
                        "student.max_embed_dim = %d is not a multiple of student.head_dim = %d",
                        s->max_embed_dim, s->head_dim);
    if (s->min_embed_dim % s->head_dim)
        return fault_at(f, "student.min_embed_dim", "student.head_dim",
                        "student.min_embed_dim = %d is not a multiple of student.head_dim = %d",
                        s->min_embed_dim, s->head_dim);
    if (s->min_embed_dim < s->head_dim)
        return fault_at(f, "student.min_embed_dim", "student.head_dim",
                        "student.min_embed_dim = %d is smaller than student.head_dim = %d",
                        s->min_embed_dim, s->head_dim);
    if (s->min_embed_dim > s->max_embed_dim)
        return fault_at(f, "student.min_embed_dim", "student.max_embed_dim",
                        "student.min_embed_dim = %d exceeds student.max_embed_dim = %d",
                        s->min_embed_dim, s->max_embed_dim);
    if ((s->max_embed_dim - s->min_embed_dim) % (s->head_dim * s->width_interval))
        return fault_at(f, "student.width_interval", "student.min_embed_dim",
                        "the widths from student.min_embed_dim = %d in steps of width_interval x "
                        "head_dim = %d do not reach student.max_embed_dim = %d",
                        s->min_embed_dim, s->head_dim * s->width_interval, s->max_embed_dim);
    return true;
}

/* Elastic depths: range(min_depth, max_depth + 1, depth_interval) must end at max_depth. */
static bool check_depths(const poa_arch_shape *s, poa_arch_fault *f)
{
    if (s->max_depth > POA_ARCH_MAX_DEPTH)
        return fault_at(f, "student.max_depth", NULL,
                        "student.max_depth = %d: at most %d blocks are supported", s->max_depth,
                        POA_ARCH_MAX_DEPTH);
    if (s->min_depth > s->max_depth)
        return fault_at(f, "student.min_depth", "student.max_depth",
                        "student.min_depth = %d exceeds student.max_depth = %d", s->min_depth,
                        s->max_depth);
    if ((s->max_depth - s->min_depth) % s->depth_interval)
        return fault_at(f, "student.depth_interval", "student.min_depth",
                        "the depths from student.min_depth = %d in steps of %d do not reach "
                        "student.max_depth = %d",
                        s->min_depth, s->depth_interval, s->max_depth);
    return true;
}

/* Every linear layer of the POA ViT has a bias. */
static bool check_biases(const poa_arch_shape *s, poa_arch_fault *f)
{
    if (s->qkv_bias && s->proj_bias && s->ffn_bias) return true;
    return fault_at(f,
                    !s->qkv_bias    ? "student.qkv_bias"
                    : !s->proj_bias ? "student.proj_bias"
                                    : "student.ffn_bias",
                    NULL,
                    "student.qkv_bias, student.proj_bias and student.ffn_bias must be true: "
                    "the POA ViT has biases in every linear layer (docs/algorithm.md §2.1)");
}

/* The global crops, the local crops and the position-embedding grid are whole patches. */
static bool check_crops(const poa_arch_shape *s, poa_arch_fault *f)
{
    const struct {
        const char *key;
        int value;
    } sides[] = {
        {"crops.global_crops_size", s->global_crops_size},
        {"crops.local_crops_size", s->local_crops_size},
        {"img_size", s->img_size},
    };
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++) {
        if (sides[i].value < 1)
            return fault_at(f, sides[i].key, "student.patch_size",
                            "%s = %d must be a positive multiple of student.patch_size = %d",
                            sides[i].key, sides[i].value, s->patch_size);
        if (sides[i].value % s->patch_size)
            return fault_at(f, sides[i].key, "student.patch_size",
                            "%s = %d is not a multiple of student.patch_size = %d", sides[i].key,
                            sides[i].value, s->patch_size);
    }
    return true;
}

/* The projection heads (dino.*, shared by iBOT). */
static bool check_heads(const poa_arch_shape *s, poa_arch_fault *f)
{
    if (s->n_heads < 0 || s->n_heads > POA_ARCH_MAX_HEADS)
        return fault_at(f, "dino.head_n_prototypes", NULL,
                        "dino.head_n_prototypes: %d heads (at most %d)", s->n_heads,
                        POA_ARCH_MAX_HEADS);
    if (s->n_heads == 0) return true;
    if (s->head_nlayers != 3)
        return fault_at(f, "dino.head_nlayers", NULL, "dino.head_nlayers = %d: only 3 is supported",
                        s->head_nlayers);
    for (int h = 0; h < s->n_heads; h++)
        if (s->head_n_prototypes[h] < 1)
            return fault_at(f, "dino.head_n_prototypes", NULL,
                            "dino.head_n_prototypes: head %d has %d prototypes (at least 1)", h,
                            s->head_n_prototypes[h]);
    if (s->head_hidden_dim < 1)
        return fault_at(f, "dino.head_hidden_dim", NULL,
                        "dino.head_hidden_dim = %d must be at least 1", s->head_hidden_dim);
    if (s->head_bottleneck_dim < 1)
        return fault_at(f, "dino.head_bottleneck_dim", NULL,
                        "dino.head_bottleneck_dim = %d must be at least 1", s->head_bottleneck_dim);
    return true;
}

bool poa_arch_shape_check(const poa_arch_shape *s, poa_arch_fault *f)
{
    poa_arch_fault scratch;
    if (!f) f = &scratch;
    if (!check_positive(s, f) || !check_widths(s, f) || !check_depths(s, f) ||
        !check_biases(s, f) || !check_crops(s, f) || !check_heads(s, f))
        return false;
    if (s->extracted &&
        (s->n_heads != 0 || s->min_embed_dim != s->max_embed_dim || s->min_depth != s->max_depth))
        return fault_at(f, NULL, NULL,
                        "an extracted model has one width, one depth and no heads (widths %d..%d, "
                        "depths %d..%d, %d heads)",
                        s->min_embed_dim, s->max_embed_dim, s->min_depth, s->max_depth, s->n_heads);
    return true;
}
