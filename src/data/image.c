/* image.c — see image.h.  Every operation here reproduces the arithmetic (types, rounding,
 * evaluation order) of the library the official pipeline uses for it; the comments name it. */
#include "data/image.h"

#include "common/poa_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void poa_image_resize_buffer(poa_image *im, int w, int h)
{
    size_t need = (size_t) w * h * 3;
    if (im->cap < need) {
        free(im->p);
        im->p = poa_xmalloc(need ? need : 1);
        im->cap = need;
    }
    im->w = w;
    im->h = h;
}

void poa_image_free(poa_image *im)
{
    free(im->p);
    memset(im, 0, sizeof *im);
}

void poa_image_scratch_free(poa_image_scratch *s)
{
    free(s->tmp8);
    free(s->tmpf);
    free(s->coef);
    free(s->bounds);
    memset(s, 0, sizeof *s);
}

static void *grow(void *p, size_t *cap, size_t need)
{
    if (*cap >= need) return p;
    free(p);
    *cap = need;
    return poa_xmalloc(need);
}

/* ------------------------------------------------------------------ bicubic resize (Pillow) */
#define PRECISION_BITS (32 - 8 - 2)

static double bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc: for each output pixel the first input
 * index (bounds[2i]), the tap count (bounds[2i+1]) and ksize fixed-point weights.  Returns
 * ksize. */
static int resample_coeffs(int in_size, float in0, float in1, int out_size, int32_t **coef_p,
                           size_t *coef_cap, int **bounds_p, size_t *bounds_cap)
{
    double scale = (double) (in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int) ceil(support) * 2 + 1;
    int32_t *coef = *coef_p = grow(*coef_p, coef_cap, (size_t) out_size * ksize * sizeof *coef);
    int *bounds = *bounds_p = grow(*bounds_p, bounds_cap, (size_t) out_size * 2 * sizeof *bounds);
    double *k = malloc((size_t) ksize * sizeof *k);
    POA_ASSERT(k);
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int) (center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int) (center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? k[x] / ww : k[x]) : 0.0;
            coef[xx * ksize + x] = v < 0 ? (int32_t) (-0.5 + v * (1 << PRECISION_BITS))
                                         : (int32_t) (0.5 + v * (1 << PRECISION_BITS));
        }
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
    free(k);
    return ksize;
}

static inline uint8_t clip8(int32_t v)
{
    v >>= PRECISION_BITS; /* arithmetic shift, as Pillow's lookup index */
    return (uint8_t) (v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Horizontal pass: rows [y0, y0+nrows) of the region → tmp (ow × nrows). */
static void resample_h(const uint8_t *src, size_t stride, int rx, int y0, int nrows, int ow,
                       const int32_t *coef, const int *bounds, int ksize, uint8_t *dst)
{
    for (int y = 0; y < nrows; y++) {
        const uint8_t *row = src + (size_t) (y0 + y) * stride + (size_t) rx * 3;
        uint8_t *out = dst + (size_t) y * ow * 3;
        for (int xx = 0; xx < ow; xx++) {
            const int32_t *k = coef + (size_t) xx * ksize;
            const uint8_t *p = row + (size_t) bounds[2 * xx] * 3;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0, n = bounds[2 * xx + 1]; x < n; x++, p += 3) {
                s0 += p[0] * k[x];
                s1 += p[1] * k[x];
                s2 += p[2] * k[x];
            }
            out[3 * xx] = clip8(s0);
            out[3 * xx + 1] = clip8(s1);
            out[3 * xx + 2] = clip8(s2);
        }
    }
}

/* Vertical pass: src rows are already offset; output oh rows of width w. */
static void resample_v(const uint8_t *src, size_t stride, int w, int oh, const int32_t *coef,
                       const int *bounds, int ksize, uint8_t *dst)
{
    int32_t *acc = malloc((size_t) w * 3 * sizeof *acc);
    POA_ASSERT(acc);
    for (int yy = 0; yy < oh; yy++) {
        const int32_t *k = coef + (size_t) yy * ksize;
        int ymin = bounds[2 * yy], n = bounds[2 * yy + 1];
        for (int i = 0; i < w * 3; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        /* Row-by-row accumulation: the same integer sums as Pillow's column loop. */
        for (int y = 0; y < n; y++) {
            const uint8_t *row = src + (size_t) (ymin + y) * stride;
            int32_t ky = k[y];
            for (int i = 0; i < w * 3; i++) acc[i] += row[i] * ky;
        }
        uint8_t *out = dst + (size_t) yy * w * 3;
        for (int i = 0; i < w * 3; i++) out[i] = clip8(acc[i]);
    }
    free(acc);
}

void poa_resize_bicubic(const poa_image *src, int rx, int ry, int rw, int rh, const float box[4],
                        int ow, int oh, poa_image *dst, poa_image_scratch *s)
{
    POA_ASSERT(rx >= 0 && ry >= 0 && rw > 0 && rh > 0 && rx + rw <= src->w && ry + rh <= src->h);
    size_t stride = (size_t) src->w * 3;
    const uint8_t *region = src->p + (size_t) ry * stride;
    int need_h = ow != rw || box[0] != 0 || box[2] != ow;
    int need_v = oh != rh || box[1] != 0 || box[3] != oh;
    poa_image_resize_buffer(dst, ow, oh);

    int32_t *vcoef = NULL;
    int *vbounds = NULL;
    size_t vcoef_cap = 0, vbounds_cap = 0;
    int vk = resample_coeffs(rh, box[1], box[3], oh, &vcoef, &vcoef_cap, &vbounds, &vbounds_cap);
    int y_first = vbounds[0], y_last = vbounds[2 * oh - 2] + vbounds[2 * oh - 1];

    const uint8_t *vsrc = region;
    size_t vstride = stride;
    int vw = rw, vx = rx;
    if (need_h) {
        int hk = resample_coeffs(rw, box[0], box[2], ow, &s->coef, &s->coef_cap, &s->bounds,
                                 &s->bounds_cap);
        int nrows = y_last - y_first;
        s->tmp8 = grow(s->tmp8, &s->tmp8_cap, (size_t) ow * nrows * 3);
        resample_h(region, stride, rx, y_first, nrows, ow, s->coef, s->bounds, hk, s->tmp8);
        for (int i = 0; i < oh; i++) vbounds[2 * i] -= y_first;
        vsrc = s->tmp8;
        vstride = (size_t) ow * 3;
        vw = ow;
        vx = 0;
    }
    if (need_v) {
        resample_v(vsrc + (size_t) vx * 3, vstride, vw, oh, vcoef, vbounds, vk, dst->p);
    } else {
        for (int y = 0; y < oh; y++)
            memcpy(dst->p + (size_t) y * ow * 3, vsrc + (size_t) y * vstride + (size_t) vx * 3,
                   (size_t) ow * 3);
    }
    free(vcoef);
    free(vbounds);
}

/* ------------------------------------------------------------------ geometry */
void poa_hflip(poa_image *im)
{
    for (int y = 0; y < im->h; y++) {
        uint8_t *row = im->p + (size_t) y * im->w * 3;
        for (int a = 0, b = im->w - 1; a < b; a++, b--)
            for (int c = 0; c < 3; c++) {
                uint8_t t = row[3 * a + c];
                row[3 * a + c] = row[3 * b + c];
                row[3 * b + c] = t;
            }
    }
}

/* ------------------------------------------------------------------ colour (Pillow) */

/* Image.blend(degenerate, image, alpha) for one value: float arithmetic, clipped, truncated. */
static inline uint8_t blend(int degenerate, int value, float alpha)
{
    float t = (float) degenerate + alpha * (float) (value - degenerate);
    if (t <= 0.0f) return 0;
    if (t >= 255.0f) return 255;
    return (uint8_t) t;
}

void poa_adjust_brightness(poa_image *im, float factor)
{
    /* ImageEnhance.Brightness: blend with black.  A 256-entry table: the value depends only on
     * the input value. */
    uint8_t lut[256];
    for (int v = 0; v < 256; v++) lut[v] = blend(0, v, factor);
    size_t n = (size_t) im->w * im->h * 3;
    for (size_t i = 0; i < n; i++) im->p[i] = lut[im->p[i]];
}

void poa_adjust_contrast(poa_image *im, float factor)
{
    /* ImageEnhance.Contrast: blend with a uniform gray image whose level is
     * int(mean(convert("L")) + 0.5). */
    size_t npix = (size_t) im->w * im->h;
    uint64_t sum = 0;
    for (size_t i = 0; i < npix; i++) sum += poa_luma(im->p + 3 * i);
    double mean = npix ? (double) sum / (double) npix : 0.0;
    int m = (int) (mean + 0.5);
    uint8_t lut[256];
    for (int v = 0; v < 256; v++) lut[v] = blend(m, v, factor);
    for (size_t i = 0; i < npix * 3; i++) im->p[i] = lut[im->p[i]];
}

void poa_adjust_saturation(poa_image *im, float factor)
{
    /* ImageEnhance.Color: blend with convert("L").convert("RGB"). */
    size_t npix = (size_t) im->w * im->h;
    for (size_t i = 0; i < npix; i++) {
        uint8_t *p = im->p + 3 * i;
        int l = poa_luma(p);
        p[0] = blend(l, p[0], factor);
        p[1] = blend(l, p[1], factor);
        p[2] = blend(l, p[2], factor);
    }
}

static inline int clip8i(int v)
{
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* Pillow rgb2hsv_row (types as there: float locals, double constants). */
static void rgb_to_hsv(const uint8_t *in, uint8_t *out)
{
    uint8_t r = in[0], g = in[1], b = in[2];
    uint8_t maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
    uint8_t minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
    if (minc == maxc) {
        out[0] = out[1] = 0;
        out[2] = maxc;
        return;
    }
    float cr = (float) (maxc - minc);
    float s = cr / (float) maxc;
    float rc = ((float) (maxc - r)) / cr;
    float gc = ((float) (maxc - g)) / cr;
    float bc = ((float) (maxc - b)) / cr;
    float h;
    if (r == maxc)
        h = bc - gc;
    else if (g == maxc)
        h = 2.0 + rc - bc;
    else
        h = 4.0 + gc - rc;
    h = fmod((h / 6.0 + 1.0), 1.0);
    out[0] = (uint8_t) clip8i((int) (h * 255.0));
    out[1] = (uint8_t) clip8i((int) (s * 255.0));
    out[2] = maxc;
}

/* Pillow hsv2rgb. */
static void hsv_to_rgb(const uint8_t *in, uint8_t *out)
{
    uint8_t h = in[0], s = in[1], v = in[2];
    if (s == 0) {
        out[0] = out[1] = out[2] = v;
        return;
    }
    int i = (int) floor((float) h * 6.0 / 255.0);
    float f = (float) h * 6.0 / 255.0 - (float) i;
    float fs = ((float) s) / 255.0;
    int p = (int) round((float) v * (1.0 - fs));
    int q = (int) round((float) v * (1.0 - fs * f));
    int t = (int) round((float) v * (1.0 - fs * (1.0 - f)));
    uint8_t up = (uint8_t) clip8i(p), uq = (uint8_t) clip8i(q), ut = (uint8_t) clip8i(t);
    switch (i % 6) {
    case 0:
        out[0] = v, out[1] = ut, out[2] = up;
        break;
    case 1:
        out[0] = uq, out[1] = v, out[2] = up;
        break;
    case 2:
        out[0] = up, out[1] = v, out[2] = ut;
        break;
    case 3:
        out[0] = up, out[1] = uq, out[2] = v;
        break;
    case 4:
        out[0] = ut, out[1] = up, out[2] = v;
        break;
    default:
        out[0] = v, out[1] = up, out[2] = uq;
        break;
    }
}

void poa_adjust_hue(poa_image *im, double hue_factor)
{
    /* torchvision: np_h += np.uint8(hue_factor * 255) — a C cast of the double: truncation
     * toward zero, then modulo 256. */
    uint8_t shift = (uint8_t) (int) (hue_factor * 255);
    size_t npix = (size_t) im->w * im->h;
    for (size_t i = 0; i < npix; i++) {
        uint8_t hsv[3];
        rgb_to_hsv(im->p + 3 * i, hsv);
        hsv[0] = (uint8_t) (hsv[0] + shift);
        hsv_to_rgb(hsv, im->p + 3 * i);
    }
}

void poa_grayscale(poa_image *im)
{
    size_t npix = (size_t) im->w * im->h;
    for (size_t i = 0; i < npix; i++) {
        uint8_t *p = im->p + 3 * i;
        p[0] = p[1] = p[2] = poa_luma(p);
    }
}

void poa_solarize(poa_image *im, int threshold)
{
    size_t n = (size_t) im->w * im->h * 3;
    for (size_t i = 0; i < n; i++)
        if (im->p[i] >= threshold) im->p[i] = (uint8_t) (255 - im->p[i]);
}

/* ------------------------------------------------------------------ blur (torchvision) */

/* torchvision _get_gaussian_kernel1d in float32: x = linspace(-(k-1)/2, (k-1)/2, k),
 * pdf = exp(-0.5 (x/sigma)^2), kernel = pdf / sum(pdf). */
static void gaussian_kernel(int ksize, float sigma, float *k)
{
    float half = (float) ((ksize - 1) * 0.5);
    float sum = 0.0f;
    for (int i = 0; i < ksize; i++) {
        float x = -half + (float) i;
        float t = x / sigma;
        k[i] = expf(-0.5f * (t * t));
        sum += k[i];
    }
    for (int i = 0; i < ksize; i++) k[i] /= sum;
}

/* Index of the reflect-padded (mirror without repeating the edge) coordinate. */
static inline int reflect(int i, int n)
{
    if (i < 0) return -i;
    if (i >= n) return 2 * (n - 1) - i;
    return i;
}

void poa_gaussian_blur(poa_image *im, int ksize, float sigma, poa_image_scratch *s)
{
    /* torchvision convolves with the 2-D kernel outer(k, k) in float32; the separable form
     * computes the same sum in another order, so a value that lies within float32 round-off of
     * .5 may round the other way (one grey level, on a handful of pixels). */
    POA_ASSERT(ksize % 2 == 1 && ksize <= 63);
    float k[63];
    gaussian_kernel(ksize, sigma, k);
    int r = ksize / 2, w = im->w, h = im->h;
    POA_ASSERT(w > r && h > r);
    size_t n = (size_t) w * h * 3;
    s->tmpf = grow(s->tmpf, &s->tmpf_cap, n * sizeof(float));
    float *tmp = s->tmpf;
    /* vertical pass (uint8 → float) */
    for (int y = 0; y < h; y++) {
        float *out = tmp + (size_t) y * w * 3;
        for (int i = 0; i < w * 3; i++) out[i] = 0.0f;
        for (int t = -r; t <= r; t++) {
            const uint8_t *row = im->p + (size_t) reflect(y + t, h) * w * 3;
            float kt = k[t + r];
            for (int i = 0; i < w * 3; i++) out[i] += kt * (float) row[i];
        }
    }
    /* horizontal pass (float → uint8, round half to even like torch.round) */
    for (int y = 0; y < h; y++) {
        const float *row = tmp + (size_t) y * w * 3;
        uint8_t *out = im->p + (size_t) y * w * 3;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                float acc = 0.0f;
                for (int t = -r; t <= r; t++) acc += k[t + r] * row[3 * reflect(x + t, w) + c];
                float v = rintf(acc);
                out[3 * x + c] = (uint8_t) (v < 0 ? 0 : v > 255 ? 255 : v);
            }
    }
}

/* ------------------------------------------------------------------ normalise */
void poa_normalize_chw(const poa_image *im, const float mean[3], const float std[3], float *out)
{
    /* ToTensor: x.float().div(255); Normalize: (x - mean) / std — three float32 roundings. */
    size_t npix = (size_t) im->w * im->h;
    for (int c = 0; c < 3; c++) {
        float m = mean[c], sd = std[c];
        float lut[256];
        for (int v = 0; v < 256; v++) lut[v] = ((float) v / 255.0f - m) / sd;
        float *o = out + (size_t) c * npix;
        const uint8_t *p = im->p + c;
        for (size_t i = 0; i < npix; i++) o[i] = lut[p[3 * i]];
    }
}
