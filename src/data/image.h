/* image.h — 8-bit RGB images and the pixel operations of the multi-crop augmentation
 * (docs/algorithm.md §9.1), each with the arithmetic of the library the official pipeline runs it
 * in (Pillow 9 on PIL images, torchvision 0.14 for the Gaussian blur and ToTensor/Normalize), so
 * that the C results match torchvision's bit for bit (blur: within one grey level on a few pixels):
 *
 *   resize   Pillow ImagingResample, BICUBIC (a = -0.5, support stretched when down-scaling,
 *            22-bit fixed-point coefficients, horizontal pass then vertical, uint8 in between);
 *   colour   Pillow ImageEnhance (Image.blend: float blend, clip, *truncate*), convert("L")
 *            (ITU-R 601 with 16-bit fixed point, rounded), convert("HSV") and back;
 *   blur     torchvision gaussian_blur on a float32 tensor, reflect padding, torch.round
 *            (half to even);
 *   normalize ToTensor (x / 255 in float32) then (x - mean) / std in float32.
 *
 * Pixels are interleaved RGB, row stride 3·w.
 */
#ifndef POA_DATA_IMAGE_H
#define POA_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct poa_image {
    uint8_t *p;
    int w, h;
    size_t cap; /* bytes allocated */
} poa_image;

/* Make room for w×h (keeps the allocation when it is large enough). */
void poa_image_resize_buffer(poa_image *im, int w, int h);
void poa_image_free(poa_image *im);

/* Scratch memory of the resampler and the blur (one per thread). */
typedef struct poa_image_scratch {
    uint8_t *tmp8;
    size_t tmp8_cap;
    float *tmpf;
    size_t tmpf_cap;
    int32_t *coef;
    size_t coef_cap;
    int *bounds;
    size_t bounds_cap;
    int32_t *vcoef, *acc;
    size_t vcoef_cap, acc_cap;
    int *vbounds;
    size_t vbounds_cap;
    uint8_t *tmp8b;
    size_t tmp8b_cap;
} poa_image_scratch;
void poa_image_scratch_free(poa_image_scratch *s);

/* Pillow's resize(…, BICUBIC, box) of the region (rx, ry, rw, rh) of src, the region acting as
 * the whole input image (Pillow clips the filter support at its borders — this is
 * crop(region).resize(size, BICUBIC, box)); box = (x0, y0, x1, y1) in region coordinates, floats
 * as Pillow takes them.  Output ow×oh into dst. */
void poa_resize_bicubic(const poa_image *src, int rx, int ry, int rw, int rh, const float box[4],
                        int ow, int oh, poa_image *dst, poa_image_scratch *s);

void poa_hflip(poa_image *im);
/* ImageEnhance.Brightness / Contrast / Color (saturation), factor as Pillow's C float. */
void poa_adjust_brightness(poa_image *im, float factor);
void poa_adjust_contrast(poa_image *im, float factor);
void poa_adjust_saturation(poa_image *im, float factor);
/* torchvision F_pil.adjust_hue: H channel of convert("HSV") += uint8(hue_factor * 255). */
void poa_adjust_hue(poa_image *im, double hue_factor);
/* Pillow's per-pixel convert("HSV") (the tables of poa_adjust_hue are built from it). */
void poa_rgb_to_hsv(const uint8_t *rgb, uint8_t *hsv);
/* convert("L") copied to the three channels (RandomGrayscale with 3 output channels). */
void poa_grayscale(poa_image *im);
/* torchvision GaussianBlur(kernel_size, sigma) on the float32 tensor of the image. */
void poa_gaussian_blur(poa_image *im, int kernel_size, float sigma, poa_image_scratch *s);
/* ImageOps.solarize: every value >= threshold becomes 255 - value. */
void poa_solarize(poa_image *im, int threshold);
/* ToTensor + Normalize into out[3][h][w] (channel-major). */
void poa_normalize_chw(const poa_image *im, const float mean[3], const float std[3], float *out);

/* Pillow's convert("L") of one pixel. */
static inline uint8_t poa_luma(const uint8_t *rgb)
{
    return (uint8_t) ((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

#endif
