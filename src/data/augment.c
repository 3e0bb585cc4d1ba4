/* augment.c — see augment.h; the random decisions follow torchvision 0.14's transforms. */
#include "data/augment.h"

#include <math.h>
#include <string.h>

const float poa_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float poa_imagenet_std[3] = {0.229f, 0.224f, 0.225f};

void poa_view_params_official(poa_view_params *v, int k, int global_size, int local_size,
                              const double global_scale[2], const double local_scale[2],
                              poa_blur_semantics blur)
{
    int is_global = k < 2;
    memset(v, 0, sizeof *v);
    v->size = is_global ? global_size : local_size;
    v->scale[0] = is_global ? global_scale[0] : local_scale[0];
    v->scale[1] = is_global ? global_scale[1] : local_scale[1];
    v->ratio[0] = 3.0 / 4.0;
    v->ratio[1] = 4.0 / 3.0;
    v->flip_p = 0.5;
    v->jitter_p = 0.8;
    v->gray_p = 0.2;
    /* docs/algorithm.md §9.1: the official GaussianBlur wrapper passes 1 - p to RandomApply. */
    static const double official[3] = {0.0, 0.9, 0.5}, paper[3] = {1.0, 0.1, 0.5};
    v->blur_p = (blur == POA_BLUR_PAPER ? paper : official)[is_global ? k : 2];
    v->solarize_p = k == 1 ? 0.2 : 0.0;
    v->brightness = 0.4;
    v->contrast = 0.4;
    v->saturation = 0.2;
    v->hue = 0.1;
    v->sigma[0] = 0.1;
    v->sigma[1] = 2.0;
    v->blur_kernel = 9;
    v->solarize_threshold = 128;
}

/* ------------------------------------------------------------------ drawing */
void poa_rrc_from_draws(int W, int H, const double ratio[2], const float area_frac[10],
                        const float log_ratio[10], double u_top, double u_left, poa_crop_params *p)
{
    double area = (double) H * W;
    for (int k = 0; k < 10; k++) {
        double target = area * (double) area_frac[k];
        double ar = (double) expf(log_ratio[k]);
        int w = (int) rint(sqrt(target * ar)); /* Python round(): half to even */
        int h = (int) rint(sqrt(target / ar));
        if (0 < w && w <= W && 0 < h && h <= H) {
            p->top = (int) floor(u_top * (H - h + 1));
            p->left = (int) floor(u_left * (W - w + 1));
            p->height = h;
            p->width = w;
            return;
        }
    }
    /* Fallback: central crop with the aspect ratio clamped to the range. */
    double in_ratio = (double) W / (double) H, rmin = fmin(ratio[0], ratio[1]),
           rmax = fmax(ratio[0], ratio[1]);
    int w = W, h = H;
    if (in_ratio < rmin)
        h = (int) rint(w / rmin);
    else if (in_ratio > rmax)
        w = (int) rint(h * rmax);
    p->top = (H - h) / 2;
    p->left = (W - w) / 2;
    p->height = h;
    p->width = w;
}

/* torch.empty(1).uniform_(a, b) on a float tensor: a float32 value in [a, b). */
static float uniform_f32(poa_rng *r, float a, float b)
{
    float v = a + (b - a) * poa_u32_to_unit_float(poa_rng_u32(r));
    return v < b ? v : a;
}

/* torch.rand(1) < p */
static int bernoulli(poa_rng *r, double p)
{
    return poa_u32_to_unit_float(poa_rng_u32(r)) < p;
}

void poa_crop_draw(const poa_view_params *v, int W, int H, poa_rng *r, poa_crop_params *p)
{
    memset(p, 0, sizeof *p);
    float area_frac[10], log_ratio[10];
    float lr0 = logf((float) v->ratio[0]), lr1 = logf((float) v->ratio[1]);
    for (int k = 0; k < 10; k++) {
        area_frac[k] = uniform_f32(r, (float) v->scale[0], (float) v->scale[1]);
        log_ratio[k] = uniform_f32(r, lr0, lr1);
    }
    double u_top = poa_rng_uniform(r), u_left = poa_rng_uniform(r);
    poa_rrc_from_draws(W, H, v->ratio, area_frac, log_ratio, u_top, u_left, p);
    p->flip = bernoulli(r, v->flip_p);
    /* RandomApply applies when its uniform draw is <= p. */
    p->jitter = poa_u32_to_unit_float(poa_rng_u32(r)) <= v->jitter_p;
    for (int i = 0; i < 4; i++) p->order[i] = i;
    for (int i = 3; i > 0; i--) { /* torch.randperm(4) */
        int j = (int) poa_rng_below(r, (uint32_t) (i + 1));
        int t = p->order[i];
        p->order[i] = p->order[j];
        p->order[j] = t;
    }
    p->brightness = uniform_f32(r, (float) (1 - v->brightness), (float) (1 + v->brightness));
    p->contrast = uniform_f32(r, (float) (1 - v->contrast), (float) (1 + v->contrast));
    p->saturation = uniform_f32(r, (float) (1 - v->saturation), (float) (1 + v->saturation));
    p->hue = uniform_f32(r, (float) -v->hue, (float) v->hue);
    p->gray = bernoulli(r, v->gray_p);
    p->blur = poa_u32_to_unit_float(poa_rng_u32(r)) <= v->blur_p && v->blur_p > 0;
    p->sigma = uniform_f32(r, (float) v->sigma[0], (float) v->sigma[1]);
    p->solarize = bernoulli(r, v->solarize_p);
}

/* ------------------------------------------------------------------ applying */
void poa_aug_scratch_free(poa_aug_scratch *s)
{
    poa_image_free(&s->crop);
    poa_image_scratch_free(&s->img);
}

static void crop_box(const poa_image *src, double sc, const poa_crop_params *p, int *region,
                     float *box)
{
    if (sc == 1.0) {
        region[0] = p->left, region[1] = p->top, region[2] = p->width, region[3] = p->height;
        box[0] = 0, box[1] = 0, box[2] = (float) p->width, box[3] = (float) p->height;
        return;
    }
    double x0 = p->left * sc, y0 = p->top * sc, x1 = (p->left + p->width) * sc,
           y1 = (p->top + p->height) * sc;
    int rx0 = (int) floor(x0), ry0 = (int) floor(y0);
    int rx1 = (int) ceil(x1), ry1 = (int) ceil(y1);
    if (rx1 > src->w) rx1 = src->w;
    if (ry1 > src->h) ry1 = src->h;
    if (rx1 <= rx0) rx1 = rx0 + 1;
    if (ry1 <= ry0) ry1 = ry0 + 1;
    region[0] = rx0, region[1] = ry0, region[2] = rx1 - rx0, region[3] = ry1 - ry0;
    box[0] = (float) (x0 - rx0), box[1] = (float) (y0 - ry0);
    box[2] = (float) fmin(x1 - rx0, region[2]), box[3] = (float) fmin(y1 - ry0, region[3]);
}

static void color_jitter(poa_image *im, const poa_crop_params *p)
{
    for (int i = 0; i < 4; i++) switch (p->order[i]) {
        case 0:
            poa_adjust_brightness(im, p->brightness);
            break;
        case 1:
            poa_adjust_contrast(im, p->contrast);
            break;
        case 2:
            poa_adjust_saturation(im, p->saturation);
            break;
        default:
            poa_adjust_hue(im, (double) p->hue);
            break;
        }
}

void poa_crop_apply_u8(const poa_image *src, double src_scale, const poa_crop_params *p, int size,
                       int solarize_threshold, int blur_kernel, poa_aug_scratch *s)
{
    int region[4];
    float box[4];
    crop_box(src, src_scale, p, region, box);
    poa_resize_bicubic(src, region[0], region[1], region[2], region[3], box, size, size, &s->crop,
                       &s->img);
    if (p->flip) poa_hflip(&s->crop);
    if (p->jitter) color_jitter(&s->crop, p);
    if (p->gray) poa_grayscale(&s->crop);
    if (p->blur) poa_gaussian_blur(&s->crop, blur_kernel, p->sigma, &s->img);
    if (p->solarize) poa_solarize(&s->crop, solarize_threshold);
}

void poa_crop_apply(const poa_image *src, double src_scale, const poa_crop_params *p, int size,
                    int solarize_threshold, int blur_kernel, const float mean[3],
                    const float std[3], float *out, poa_aug_scratch *s)
{
    poa_crop_apply_u8(src, src_scale, p, size, solarize_threshold, blur_kernel, s);
    poa_normalize_chw(&s->crop, mean, std, out);
}

int poa_dct_scale(const poa_crop_params *crops, const int *sizes, int n, double min_ratio)
{
    if (min_ratio <= 0 || n == 0) return 8;
    double r = INFINITY;
    for (int i = 0; i < n; i++) {
        r = fmin(r, (double) crops[i].width / sizes[i]);
        r = fmin(r, (double) crops[i].height / sizes[i]);
    }
    if (r < min_ratio) return 8;
    int num = 1;
    while (num < 8 && num * r < 8.0) num++; /* smallest num/8 with (num/8)·r >= 1 */
    return num;
}
