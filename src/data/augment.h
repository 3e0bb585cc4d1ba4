/* augment.h — the DINOv2/POA multi-crop augmentation (docs/algorithm.md §9.1), per crop:
 *
 *   RandomResizedCrop(size, scale, ratio (3/4, 4/3), BICUBIC) → RandomHorizontalFlip(0.5)
 *   → RandomApply(ColorJitter(0.4, 0.4, 0.2, 0.1), 0.8) → RandomGrayscale(0.2)
 *   → GaussianBlur(9, sigma U(0.1, 2.0)) with p = 0.0 / 0.9 / 0.5 (official) or 1.0 / 0.1 / 0.5
 *     (paper) for global 1 / global 2 / local → RandomSolarize(128, 0.2) on global 2 only
 *   → ToTensor + Normalize(ImageNet mean, std)
 *
 * The random decisions of a crop are drawn first into a poa_crop_params (poa_crop_draw, from a
 * Philox stream); poa_crop_apply then runs the ops with those explicit values — which is how the
 * tests compare each op, and whole crops, with torchvision on the same parameters.
 */
#ifndef POA_DATA_AUGMENT_H
#define POA_DATA_AUGMENT_H

#include "common/rng.h"
#include "data/image.h"

typedef enum { POA_BLUR_OFFICIAL = 0, POA_BLUR_PAPER = 1 } poa_blur_semantics;

/* How one kind of view is drawn (global 1, global 2, local). */
typedef struct poa_view_params {
    int size;
    double scale[2], ratio[2];
    double flip_p, jitter_p, gray_p, blur_p, solarize_p;
    double brightness, contrast, saturation, hue; /* ColorJitter strengths */
    double sigma[2];
    int blur_kernel, solarize_threshold;
} poa_view_params;

/* View k of an image: 0 = global 1, 1 = global 2, 2… = local. */
void poa_view_params_official(poa_view_params *v, int k, int global_size, int local_size,
                              const double global_scale[2], const double local_scale[2],
                              poa_blur_semantics blur);

/* One drawn crop. */
typedef struct poa_crop_params {
    int top, left, height, width; /* crop box in source pixels (RandomResizedCrop.get_params) */
    int flip;
    int jitter;   /* ColorJitter applied */
    int order[4]; /* 0 brightness, 1 contrast, 2 saturation, 3 hue: application order */
    float brightness, contrast, saturation, hue; /* factors (float32, as torch draws them) */
    int gray;
    int blur;
    float sigma;
    int solarize;
} poa_crop_params;

/* RandomResizedCrop.get_params from explicit draws: area_frac[k] = U(scale) and log_ratio[k] =
 * U(log ratio) as float32 for the 10 attempts; u_top, u_left in [0, 1) give randint(0, H-h) and
 * randint(0, W-w).  Fills top/left/height/width. */
void poa_rrc_from_draws(int W, int H, const double ratio[2], const float area_frac[10],
                        const float log_ratio[10], double u_top, double u_left, poa_crop_params *p);

/* Draw every decision of a crop of a W×H image. */
void poa_crop_draw(const poa_view_params *v, int W, int H, poa_rng *r, poa_crop_params *p);

/* Scratch of one thread. */
typedef struct poa_aug_scratch {
    poa_image crop;
    poa_image_scratch img;
} poa_aug_scratch;
void poa_aug_scratch_free(poa_aug_scratch *s);

/* Apply p to src and write the normalised crop [3][size][size] to out.  src_scale is the size of
 * src relative to the image the box refers to (1 normally; num/8 when the JPEG was decoded with
 * DCT scaling, see poa_dct_scale): the box is then mapped to src coordinates with sub-pixel
 * precision (Pillow's resize box). */
void poa_crop_apply(const poa_image *src, double src_scale, const poa_crop_params *p, int size,
                    int solarize_threshold, int blur_kernel, const float mean[3],
                    const float std[3], float *out, poa_aug_scratch *s);
/* The same up to the uint8 result (before normalisation), into s->crop. */
void poa_crop_apply_u8(const poa_image *src, double src_scale, const poa_crop_params *p, int size,
                       int solarize_threshold, int blur_kernel, poa_aug_scratch *s);

/* DCT scaling: the numerator num of num/8 at which to decode a JPEG so that every crop is still
 * at least its output size (a downscale), when every crop is at least min_ratio times smaller
 * than its box (8 = full size; min_ratio <= 0 disables). */
int poa_dct_scale(const poa_crop_params *crops, const int *sizes, int n, double min_ratio);

extern const float poa_imagenet_mean[3], poa_imagenet_std[3];

#endif
