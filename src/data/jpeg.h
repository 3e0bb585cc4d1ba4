/* jpeg.h — JPEG probing, decoding and encoding with libjpeg-turbo's TurboJPEG API.
 *
 * Decoding gives what the official pipeline's PIL `Image.open(f).convert("RGB")` gives: the same
 * libjpeg-turbo with its default (accurate integer IDCT, fancy upsampling); grayscale replicated
 * to RGB; CMYK/YCCK read with Adobe's inverted convention and converted with Pillow's cmyk2rgb.
 * Optional DCT-domain scaling (scale_num/8) decodes a reduced image when every crop of it is much
 * smaller than the source (see augment.h).
 *
 * A file is "decodable" when it is a JPEG that libjpeg-turbo decodes completely; warnings about
 * corrupt data inside the scan are accepted (PIL accepts them too), a premature end of the file
 * is not (PIL raises "image file is truncated").
 */
#ifndef POA_DATA_JPEG_H
#define POA_DATA_JPEG_H

#include "common/poa_error.h"
#include "data/image.h"

#include <stddef.h>
#include <stdint.h>

/* The largest image poa decodes, in pixels: PIL's decompression-bomb limit (2 x
 * Image.MAX_IMAGE_PIXELS), above which the official pipeline's Image.open fails too.  A 16-bit
 * frame header can claim up to 65535 x 65535 pixels (12.9 GB of RGB) in a file of a few hundred
 * bytes; such files are rejected by the probe and the decoder before anything is allocated. */
#define POA_JPEG_MAX_PIXELS 178956970LL

typedef struct poa_jpeg_info {
    int width, height;
    int components;  /* 1 gray, 3 colour, 4 CMYK / YCCK */
    int precision;   /* bits per sample: 8 (12, 16 are rejected) */
    int progressive; /* SOF2 / SOF6 / SOF10 / SOF14 */
    int cmyk;        /* 4 components */
} poa_jpeg_info;

/* Parse the markers up to the first SOF.  POA_ERR_DECODE with a reason for anything that is not
 * a decodable 8-bit JPEG: empty file, another format (named: PNG, GIF, …), no SOF, 12-bit or
 * lossless JPEG, truncated header, more than POA_JPEG_MAX_PIXELS pixels. */
poa_status poa_jpeg_probe(const uint8_t *data, size_t n, poa_jpeg_info *info, poa_err *err);

typedef struct poa_jpeg_decoder {
    void *tj; /* tjhandle */
    uint8_t *tmp;
    size_t tmp_cap;
} poa_jpeg_decoder;

void poa_jpeg_decoder_init(poa_jpeg_decoder *d);
void poa_jpeg_decoder_free(poa_jpeg_decoder *d);

/* Decode to RGB at scale scale_num/8 (8 = full size; sizes rounded up like libjpeg).  *warned is
 * set when libjpeg-turbo reported a recoverable problem (may be NULL). */
poa_status poa_jpeg_decode(poa_jpeg_decoder *d, const uint8_t *data, size_t n, int scale_num,
                           poa_image *out, int *warned, poa_err *err);

/* Decoded size at scale scale_num/8 (libjpeg's ceil(w·num/8)). */
static inline int poa_jpeg_scaled(int size, int scale_num)
{
    return (size * scale_num + 7) / 8;
}

/* Encode RGB (or, gray != 0, a single-channel w×h plane) as a baseline JPEG; *out is
 * malloc'ed.  RGB uses 4:2:0 subsampling unless subsamp444. */
poa_status poa_jpeg_encode(const uint8_t *pixels, int w, int h, int gray, int quality,
                           int subsamp444, uint8_t **out, size_t *out_size, poa_err *err);

#endif
