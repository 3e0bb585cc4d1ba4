/* image.c — see image.h.  Every operation here reproduces the arithmetic (types, rounding,
 * evaluation order) of the library the official pipeline uses for it; the comments name it. */
#include "data/image.h"

#include "common/poa_error.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Pixel kernels are compiled twice, for AVX2 and for the baseline, and picked at load time. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
#define POA_HOT __attribute__((target_clones("avx2", "default")))
#else
#define POA_HOT
#endif

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
    free(s->vcoef);
    free(s->vbounds);
    free(s->tmp8b);
    free(s->acc);
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

/* The one resampling kernel of both passes: output line j is Σ_t coef[j][t] · in[bounds[2j] + t]
 * over lines of n uint8 values, with Pillow's rounding offset and clip.  The taps loop is outside
 * the loop over the line, so the compiler vectorises the (exact, integer) sums. */
POA_HOT static void resample_lines(const uint8_t *in, size_t in_stride, int n, int out_lines,
                                   const int32_t *coef, const int *bounds, int ksize, uint8_t *out,
                                   size_t out_stride, int32_t *acc)
{
    for (int j = 0; j < out_lines; j++) {
        const int32_t *k = coef + (size_t) j * ksize;
        int first = bounds[2 * j], taps = bounds[2 * j + 1];
        for (int i = 0; i < n; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        for (int t = 0; t < taps; t++) {
            const uint8_t *line = in + (size_t) (first + t) * in_stride;
            int32_t kt = k[t];
            for (int i = 0; i < n; i++) acc[i] += (int32_t) line[i] * kt;
        }
        uint8_t *o = out + (size_t) j * out_stride;
        for (int i = 0; i < n; i++) o[i] = clip8(acc[i]);
    }
}

/* dst (w rows of h RGB pixels) = src (h rows of w RGB pixels) transposed. */
static void transpose_rgb(const uint8_t *src, size_t src_stride, int w, int h, uint8_t *dst)
{
    enum { TILE = 32 };
    for (int y0 = 0; y0 < h; y0 += TILE)
        for (int x0 = 0; x0 < w; x0 += TILE)
            for (int y = y0; y < h && y < y0 + TILE; y++) {
                const uint8_t *in = src + (size_t) y * src_stride;
                for (int x = x0; x < w && x < x0 + TILE; x++) {
                    uint8_t *o = dst + ((size_t) x * h + y) * 3;
                    o[0] = in[3 * x], o[1] = in[3 * x + 1], o[2] = in[3 * x + 2];
                }
            }
}

/* Horizontal pass of rows [y0, y0 + nrows) of the region (x from rx, width rw) → tmp (ow ×
 * nrows): the region is transposed so that the pass runs over contiguous lines, then back. */
static void resample_h(const uint8_t *src, size_t stride, int rx, int rw, int y0, int nrows, int ow,
                       const int32_t *coef, const int *bounds, int ksize, uint8_t *dst,
                       poa_image_scratch *s)
{
    size_t tsize = (size_t) rw * nrows * 3, rsize = (size_t) ow * nrows * 3;
    s->tmp8b = grow(s->tmp8b, &s->tmp8b_cap, tsize + rsize);
    s->acc = grow(s->acc, &s->acc_cap, (size_t) nrows * 3 * sizeof(int32_t));
    uint8_t *t = s->tmp8b, *r = s->tmp8b + tsize;
    transpose_rgb(src + (size_t) y0 * stride + (size_t) rx * 3, stride, rw, nrows, t);
    resample_lines(t, (size_t) nrows * 3, nrows * 3, ow, coef, bounds, ksize, r, (size_t) nrows * 3,
                   s->acc);
    transpose_rgb(r, (size_t) nrows * 3, nrows, ow, dst);
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

    int vk = resample_coeffs(rh, box[1], box[3], oh, &s->vcoef, &s->vcoef_cap, &s->vbounds,
                             &s->vbounds_cap);
    int *vbounds = s->vbounds;
    int y_first = vbounds[0], y_last = vbounds[2 * oh - 2] + vbounds[2 * oh - 1];

    const uint8_t *vsrc = region + (size_t) rx * 3;
    size_t vstride = stride;
    int vw = rw;
    if (need_h) {
        int hk = resample_coeffs(rw, box[0], box[2], ow, &s->coef, &s->coef_cap, &s->bounds,
                                 &s->bounds_cap);
        int nrows = y_last - y_first;
        s->tmp8 = grow(s->tmp8, &s->tmp8_cap, (size_t) ow * nrows * 3);
        resample_h(region, stride, rx, rw, y_first, nrows, ow, s->coef, s->bounds, hk, s->tmp8, s);
        for (int i = 0; i < oh; i++) vbounds[2 * i] -= y_first;
        vsrc = s->tmp8;
        vstride = (size_t) ow * 3;
        vw = ow;
    }
    if (need_v) {
        s->acc = grow(s->acc, &s->acc_cap, (size_t) vw * 3 * sizeof(int32_t));
        resample_lines(vsrc, vstride, vw * 3, oh, s->vcoef, vbounds, vk, dst->p, (size_t) ow * 3,
                       s->acc);
    } else {
        for (int y = 0; y < oh; y++)
            memcpy(dst->p + (size_t) y * ow * 3, vsrc + (size_t) y * vstride, (size_t) ow * 3);
    }
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
void poa_rgb_to_hsv(const uint8_t *in, uint8_t *out)
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

/* Tables that give exactly what poa_rgb_to_hsv / Pillow's hsv2rgb compute, without their divisions:
 *  - hue: with cr = max - min, one of the two non-max channels equals min, so Pillow's h depends
 *    only on which channel is the max (in Pillow's test order r, g, b), which other channel is the
 *    min, cr and x = max - (the remaining channel): 3 · 2 · 256 · 256 entries;
 *  - saturation: (int)((cr / max) · 255) from (max, cr);
 *  - back to RGB: floor/fraction of h·6/255 and s/255 per value; p = round(v (1 - fs)) per (v, s);
 *    q and t are computed (one float product, as Pillow).  Built once, from the functions above. */
static uint8_t hue_lut[3][2][256][256];
static uint8_t sat_lut[256][256];
static uint8_t hsv_p_lut[256][256];
static int hsv_i_lut[256];
static float hsv_f_lut[256], hsv_fs_lut[256];
static pthread_once_t hsv_once = PTHREAD_ONCE_INIT;

static void hsv_tables_init(void)
{
    for (int cr = 0; cr < 256; cr++)
        for (int x = 0; x <= cr; x++)
            for (int c = 0; c < 3; c++)
                for (int sub = 0; sub < 2; sub++) {
                    /* max channel c = cr, min channel (first or second other one) = 0,
                     * remaining channel = cr - x */
                    uint8_t rgb[3], hsv[3];
                    int o1 = (c + 1) % 3, o2 = (c + 2) % 3;
                    if (o1 > o2) {
                        int t = o1;
                        o1 = o2;
                        o2 = t;
                    }
                    rgb[c] = (uint8_t) cr;
                    rgb[sub ? o2 : o1] = 0;
                    rgb[sub ? o1 : o2] = (uint8_t) (cr - x);
                    poa_rgb_to_hsv(rgb, hsv);
                    hue_lut[c][sub][cr][x] = hsv[0];
                }
    for (int mx = 0; mx < 256; mx++)
        for (int cr = 0; cr <= mx; cr++) {
            uint8_t rgb[3] = {(uint8_t) mx, (uint8_t) (mx - cr), (uint8_t) (mx - cr)}, hsv[3];
            poa_rgb_to_hsv(rgb, hsv);
            sat_lut[mx][cr] = hsv[1];
        }
    for (int h = 0; h < 256; h++) {
        hsv_i_lut[h] = (int) floor((float) h * 6.0 / 255.0);
        hsv_f_lut[h] = (float) ((float) h * 6.0 / 255.0 - (float) hsv_i_lut[h]);
        float fs = ((float) h) / 255.0;
        hsv_fs_lut[h] = fs;
        for (int v = 0; v < 256; v++)
            hsv_p_lut[v][h] = (uint8_t) clip8i((int) round((float) v * (1.0 - fs)));
    }
}

/* C round() (half away from zero) of x >= 0 without a library call. */
static inline int round_pos(double x)
{
    int t = (int) x;
    return x - t >= 0.5 ? t + 1 : t;
}

static inline void hue_shift_pixel(uint8_t *px, uint8_t shift)
{
    int r = px[0], g = px[1], b = px[2];
    int mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
    int mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
    if (mx == mn) return; /* s = 0: unchanged by any hue */
    int cr = mx - mn, c, o1, o2;
    if (r == mx)
        c = 0, o1 = g, o2 = b;
    else if (g == mx)
        c = 1, o1 = r, o2 = b;
    else
        c = 2, o1 = r, o2 = g;
    int sub = o1 != mn; /* 0: the first other channel is the min */
    int x = mx - (sub ? o1 : o2);
    uint8_t h = (uint8_t) (hue_lut[c][sub][cr][x] + shift), s = sat_lut[mx][cr];
    uint8_t v = (uint8_t) mx;
    if (s == 0) {
        px[0] = px[1] = px[2] = v;
        return;
    }
    int i = hsv_i_lut[h];
    float f = hsv_f_lut[h], fs = hsv_fs_lut[s];
    uint8_t up = hsv_p_lut[v][s];
    switch (i % 6) {
    case 0: {
        uint8_t ut = (uint8_t) clip8i(round_pos((float) v * (1.0 - fs * (1.0 - f))));
        px[0] = v, px[1] = ut, px[2] = up;
        break;
    }
    case 1: {
        uint8_t uq = (uint8_t) clip8i(round_pos((float) v * (1.0 - fs * f)));
        px[0] = uq, px[1] = v, px[2] = up;
        break;
    }
    case 2: {
        uint8_t ut = (uint8_t) clip8i(round_pos((float) v * (1.0 - fs * (1.0 - f))));
        px[0] = up, px[1] = v, px[2] = ut;
        break;
    }
    case 3: {
        uint8_t uq = (uint8_t) clip8i(round_pos((float) v * (1.0 - fs * f)));
        px[0] = up, px[1] = uq, px[2] = v;
        break;
    }
    case 4: {
        uint8_t ut = (uint8_t) clip8i(round_pos((float) v * (1.0 - fs * (1.0 - f))));
        px[0] = ut, px[1] = up, px[2] = v;
        break;
    }
    default: {
        uint8_t uq = (uint8_t) clip8i(round_pos((float) v * (1.0 - fs * f)));
        px[0] = v, px[1] = up, px[2] = uq;
        break;
    }
    }
}

void poa_adjust_hue(poa_image *im, double hue_factor)
{
    /* torchvision: np_h += np.uint8(hue_factor * 255) — a C cast of the double: truncation
     * toward zero, then modulo 256. */
    uint8_t shift = (uint8_t) (int) (hue_factor * 255);
    pthread_once(&hsv_once, hsv_tables_init);
    size_t npix = (size_t) im->w * im->h;
    for (size_t i = 0; i < npix; i++) hue_shift_pixel(im->p + 3 * i, shift);
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

/* rint() of a float in [0, 2^22): adding and subtracting 1.5 · 2^23 rounds to nearest, ties to
 * even, in the default rounding mode — torch.round, in a form the compiler can vectorise. */
static inline float round_half_even(float x)
{
    const float magic = 12582912.0f;
    return (x + magic) - magic;
}

/* Vertical pass of the blur into row y of tmp (3w floats, then r reflected pixels each side). */
POA_HOT static void blur_vertical(const uint8_t *img, int w, int h, int y, const float *k, int r,
                                  float *out)
{
    int row = 3 * w;
    for (int i = 0; i < row; i++) out[i] = 0.0f;
    for (int t = -r; t <= r; t++) {
        const uint8_t *in = img + (size_t) reflect(y + t, h) * row;
        float kt = k[t + r];
        for (int i = 0; i < row; i++) out[i] += kt * (float) in[i];
    }
}

/* Horizontal pass over a padded row, rounded half to even like torch.round. */
POA_HOT static void blur_horizontal(const float *in, int n, const float *k, int ksize, float *acc,
                                    uint8_t *out)
{
    for (int i = 0; i < n; i++) acc[i] = 0.0f;
    for (int t = 0; t < ksize; t++) {
        float kt = k[t];
        const float *p = in + 3 * t;
        for (int i = 0; i < n; i++) acc[i] += kt * p[i];
    }
    for (int i = 0; i < n; i++) out[i] = (uint8_t) round_half_even(acc[i]);
}

void poa_gaussian_blur(poa_image *im, int ksize, float sigma, poa_image_scratch *s)
{
    /* torchvision convolves with the 2-D kernel outer(k, k) in float32; the separable form
     * computes the same sum in another order, so a value that lies within float32 round-off of
     * .5 may round the other way (one grey level, on a handful of pixels). */
    POA_ASSERT(ksize % 2 == 1 && ksize <= 63);
    float k[63];
    gaussian_kernel(ksize, sigma, k);
    int r = ksize / 2, w = im->w, h = im->h, row = 3 * w;
    POA_ASSERT(w > r && h > r);
    size_t prow = (size_t) 3 * (w + 2 * r);
    s->tmpf = grow(s->tmpf, &s->tmpf_cap, (prow * h + row) * sizeof(float));
    float *acc = s->tmpf + prow * h;
    for (int y = 0; y < h; y++) {
        float *out = s->tmpf + (size_t) y * prow + 3 * r;
        blur_vertical(im->p, w, h, y, k, r, out);
        for (int x = 1; x <= r; x++) /* reflect padding of the row */
            for (int c = 0; c < 3; c++) {
                out[3 * -x + c] = out[3 * x + c];
                out[3 * (w - 1 + x) + c] = out[3 * (w - 1 - x) + c];
            }
    }
    for (int y = 0; y < h; y++)
        blur_horizontal(s->tmpf + (size_t) y * prow, row, k, ksize, acc, im->p + (size_t) y * row);
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
