/* jpeg.c — see jpeg.h. */
#include "data/jpeg.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* ------------------------------------------------------------------ probing */
static unsigned be16(const uint8_t *p)
{
    return (unsigned) p[0] << 8 | p[1];
}

/* Name the format of a file that is not a JPEG, from its first bytes. */
static const char *other_format(const uint8_t *d, size_t n)
{
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return "PNG";
    if (n >= 4 && memcmp(d, "GIF8", 4) == 0) return "GIF";
    if (n >= 2 && memcmp(d, "BM", 2) == 0) return "BMP";
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0)) return "TIFF";
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return "WebP";
    if (n >= 12 && memcmp(d, "\0\0\0\x0cjP  ", 8) == 0) return "JPEG 2000";
    if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6') return "PNM";
    if (n >= 12 && memcmp(d + 4, "ftyp", 4) == 0) return "ISO media (HEIF/AVIF/MP4)";
    return NULL;
}

static int is_sof(unsigned m)
{
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

poa_status poa_jpeg_probe(const uint8_t *d, size_t n, poa_jpeg_info *info, poa_err *err)
{
    memset(info, 0, sizeof *info);
    if (n == 0) return poa_err_set(err, POA_ERR_DECODE, "empty file (0 bytes)");
    if (n < 2 || d[0] != 0xFF || d[1] != 0xD8) {
        const char *fmt = other_format(d, n);
        if (fmt) return poa_err_set(err, POA_ERR_DECODE, "not a JPEG file: %s data", fmt);
        return poa_err_set(err, POA_ERR_DECODE, "not a JPEG file (starts with 0x%02x 0x%02x)", d[0],
                           n > 1 ? d[1] : 0);
    }
    size_t pos = 2;
    for (;;) {
        while (pos < n && d[pos] != 0xFF) pos++; /* tolerate junk between segments, as libjpeg */
        while (pos < n && d[pos] == 0xFF) pos++;
        if (pos >= n) break;
        unsigned m = d[pos++];
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue; /* markers without a length */
        if (m == 0xD9)
            return poa_err_set(err, POA_ERR_DECODE, "JPEG without image data (EOI before SOF)");
        if (m == 0xDA)
            return poa_err_set(err, POA_ERR_DECODE, "JPEG without frame header (SOS before SOF)");
        if (pos + 2 > n) break;
        unsigned len = be16(d + pos);
        if (len < 2)
            return poa_err_set(err, POA_ERR_DECODE, "corrupt JPEG marker 0xFF%02X length", m);
        if (is_sof(m)) {
            if (pos + 8 > n) break;
            info->precision = d[pos + 2];
            info->height = (int) be16(d + pos + 3);
            info->width = (int) be16(d + pos + 5);
            info->components = d[pos + 7];
            info->progressive = m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE;
            info->cmyk = info->components == 4;
            if (m == 0xC3 || m == 0xC7 || m == 0xCB || m == 0xCF)
                return poa_err_set(err, POA_ERR_DECODE,
                                   "lossless JPEG (SOF%u) is not supported by libjpeg-turbo 2.x",
                                   m - 0xC0);
            if (info->precision != 8)
                return poa_err_set(err, POA_ERR_DECODE,
                                   "%d-bit JPEG (sample precision %d) is not supported: the "
                                   "decoder (and PIL) read 8-bit JPEGs only",
                                   info->precision, info->precision);
            if (info->width == 0 || info->height == 0)
                return poa_err_set(err, POA_ERR_DECODE, "JPEG frame header gives size %dx%d",
                                   info->width, info->height);
            if ((long long) info->width * info->height > POA_JPEG_MAX_PIXELS)
                return poa_err_set(err, POA_ERR_DECODE,
                                   "JPEG of %dx%d pixels: more than %lld (PIL's decompression-bomb "
                                   "limit)",
                                   info->width, info->height, POA_JPEG_MAX_PIXELS);
            if (info->components != 1 && info->components != 3 && info->components != 4)
                return poa_err_set(err, POA_ERR_DECODE, "JPEG with %d components is not supported",
                                   info->components);
            return POA_OK;
        }
        pos += len;
    }
    return poa_err_set(err, POA_ERR_DECODE,
                       "truncated JPEG: the file ends inside the header (%zu bytes)", n);
}

/* ------------------------------------------------------------------ decoding */
void poa_jpeg_decoder_init(poa_jpeg_decoder *d)
{
    memset(d, 0, sizeof *d);
}

void poa_jpeg_decoder_free(poa_jpeg_decoder *d)
{
    if (d->tj) tjDestroy(d->tj);
    free(d->tmp);
    memset(d, 0, sizeof *d);
}

static uint8_t *tmp_buffer(poa_jpeg_decoder *d, size_t n)
{
    if (d->tmp_cap < n) {
        free(d->tmp);
        d->tmp = poa_xmalloc(n);
        d->tmp_cap = n;
    }
    return d->tmp;
}

/* Pillow reads CMYK JPEGs as "CMYK;I" (Adobe's inverted values) and converts to RGB with
 * nk = 255 - k; out = nk - nk·c/255 (MULDIV255 rounding). */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t npix)
{
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = cmyk + 4 * i;
        int nk = p[3]; /* 255 - (255 - raw k) */
        for (int c = 0; c < 3; c++) {
            int v = 255 - p[c];
            int tmp = v * nk + 128;
            int mul = ((tmp >> 8) + tmp) >> 8;
            int o = nk - mul;
            rgb[3 * i + c] = (uint8_t) (o < 0 ? 0 : o > 255 ? 255 : o);
        }
    }
}

static int is_truncation(const char *msg)
{
    return strstr(msg, "Premature end of JPEG file") != NULL;
}

poa_status poa_jpeg_decode(poa_jpeg_decoder *d, const uint8_t *data, size_t n, int scale_num,
                           poa_image *out, int *warned, poa_err *err)
{
    if (warned) *warned = 0;
    if (!d->tj && !(d->tj = tjInitDecompress()))
        return poa_err_set(err, POA_ERR_INTERNAL, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    int w = 0, h = 0, subsamp = 0, cs = 0;
    if (tjDecompressHeader3(d->tj, data, (unsigned long) n, &w, &h, &subsamp, &cs) != 0)
        return poa_err_set(err, POA_ERR_DECODE, "JPEG header: %s", tjGetErrorStr2(d->tj));
    /* A tables-only stream (quantisation/Huffman tables, no frame) is a success for
     * tjDecompressHeader3 that leaves the size unset (libjpeg-turbo 2.1): no image. */
    if (w <= 0 || h <= 0)
        return poa_err_set(err, POA_ERR_DECODE,
                           "JPEG holds no image: its header ends before a frame (a tables-only "
                           "JPEG stream?)");
    if ((long long) w * h > POA_JPEG_MAX_PIXELS)
        return poa_err_set(err, POA_ERR_DECODE,
                           "JPEG of %dx%d pixels: more than %lld (PIL's decompression-bomb limit)",
                           w, h, POA_JPEG_MAX_PIXELS);
    if (scale_num < 1 || scale_num > 8) scale_num = 8;
    int sw = poa_jpeg_scaled(w, scale_num), sh = poa_jpeg_scaled(h, scale_num);
    poa_image_resize_buffer(out, sw, sh);
    size_t npix = (size_t) sw * sh;
    int pf = cs == TJCS_GRAY                        ? TJPF_GRAY
             : (cs == TJCS_CMYK || cs == TJCS_YCCK) ? TJPF_CMYK
                                                    : TJPF_RGB;
    uint8_t *dst = pf == TJPF_RGB ? out->p : tmp_buffer(d, npix * (pf == TJPF_CMYK ? 4 : 1));
    if (tjDecompress2(d->tj, data, (unsigned long) n, dst, sw, 0, sh, pf, 0) != 0) {
        const char *msg = tjGetErrorStr2(d->tj);
        if (tjGetErrorCode(d->tj) != TJERR_WARNING || is_truncation(msg))
            return poa_err_set(err, POA_ERR_DECODE, "%s JPEG: %s",
                               is_truncation(msg) ? "truncated" : "corrupt", msg);
        if (warned) *warned = 1;
    }
    if (pf == TJPF_GRAY) {
        for (size_t i = npix; i-- > 0;)
            out->p[3 * i] = out->p[3 * i + 1] = out->p[3 * i + 2] = dst[i];
    } else if (pf == TJPF_CMYK) {
        cmyk_to_rgb(dst, out->p, npix);
    }
    return POA_OK;
}

/* ------------------------------------------------------------------ encoding */
poa_status poa_jpeg_encode(const uint8_t *pixels, int w, int h, int gray, int quality,
                           int subsamp444, uint8_t **out, size_t *out_size, poa_err *err)
{
    tjhandle tj = tjInitCompress();
    if (!tj) return poa_err_set(err, POA_ERR_INTERNAL, "tjInitCompress: %s", tjGetErrorStr2(NULL));
    unsigned char *buf = NULL;
    unsigned long size = 0;
    int samp = gray ? TJSAMP_GRAY : subsamp444 ? TJSAMP_444 : TJSAMP_420;
    int rc = tjCompress2(tj, pixels, w, 0, h, gray ? TJPF_GRAY : TJPF_RGB, &buf, &size, samp,
                         quality, 0);
    poa_status st = POA_OK;
    if (rc != 0) {
        st = poa_err_set(err, POA_ERR_INTERNAL, "JPEG encoding failed: %s", tjGetErrorStr2(tj));
    } else {
        *out = poa_xmalloc(size);
        memcpy(*out, buf, size);
        *out_size = size;
    }
    tjFree(buf);
    tjDestroy(tj);
    return st;
}
