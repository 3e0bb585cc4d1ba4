/* image_ref.c — see image_ref.h.  Compiled like src/data (no FMA contraction), so that the
 * reference computes in the same float32 steps as Pillow. */
#include "tests/lib/image_ref.h"

#include <math.h>
#include <stdint.h>

static inline int clip8i(int v)
{
    return v < 0 ? 0 : v > 255 ? 255 : v;
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

void poa_adjust_hue_reference(poa_image *im, double hue_factor)
{
    uint8_t shift = (uint8_t) (int) (hue_factor * 255);
    size_t npix = (size_t) im->w * im->h;
    for (size_t i = 0; i < npix; i++) {
        uint8_t hsv[3];
        poa_rgb_to_hsv(im->p + 3 * i, hsv);
        hsv[0] = (uint8_t) (hsv[0] + shift);
        hsv_to_rgb(hsv, im->p + 3 * i);
    }
}
