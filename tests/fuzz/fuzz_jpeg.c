/* fuzz_jpeg.c — one image through the loader's path: poa_jpeg_probe, poa_jpeg_decode (with the
 * DCT scaling the loader picks) and the multi-crop augmentation (two global and two local views,
 * every random decision drawn from a stream seeded by the input, so each input is one
 * deterministic run).
 *
 * Images over FUZZ_MAX_PIXELS (4 Mpx) are only probed: decoding them is correct but slow (tens of
 * milliseconds), and the fuzzer's time is better spent on many small inputs; the size limit of
 * the decoder itself (POA_JPEG_MAX_PIXELS) is checked by the probe either way. */
#include "fuzz_util.h"

#include "data/augment.h"
#include "data/jpeg.h"

#include <stdlib.h>

#define FUZZ_MAX_PIXELS (1 << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    poa_jpeg_info info;
    poa_err err;
    if (poa_jpeg_probe(data, size, &info, &err) != POA_OK) {
        fuzz_note("jpeg probe", 1, err.msg);
        return 0;
    }
    if ((int64_t) info.width * info.height > FUZZ_MAX_PIXELS) return 0;
    uint64_t h = fuzz_hash(data, size);
    enum { N_VIEWS = 4 };
    const double gscale[2] = {0.32, 1.0}, lscale[2] = {0.05, 0.32};
    poa_view_params views[N_VIEWS];
    poa_crop_params crops[N_VIEWS];
    int sizes[N_VIEWS];
    for (int c = 0; c < N_VIEWS; c++) {
        poa_view_params_official(&views[c], c, 32, 16, gscale, lscale,
                                 (h >> 8) & 1 ? POA_BLUR_PAPER : POA_BLUR_OFFICIAL);
        poa_rng r;
        poa_rng_init(&r, h, 0, POA_RNG_AUGMENT, (uint64_t) c << 10);
        poa_crop_draw(&views[c], info.width, info.height, &r, &crops[c]);
        sizes[c] = views[c].size;
    }
    double min_ratio = (h & 3) == 0 ? 0.0 : 2.0; /* 0: always full size */
    int num = poa_dct_scale(crops, sizes, N_VIEWS, min_ratio);
    poa_jpeg_decoder dec;
    poa_jpeg_decoder_init(&dec);
    poa_image img = {0};
    int warned = 0;
    poa_status st = poa_jpeg_decode(&dec, data, size, num, &img, &warned, &err);
    fuzz_note("jpeg decode", st, err.msg);
    if (st == POA_OK) {
        poa_aug_scratch scratch = {0};
        float *out = malloc(3 * 32 * 32 * sizeof *out);
        for (int c = 0; c < N_VIEWS; c++)
            poa_crop_apply(&img, num / 8.0, &crops[c], views[c].size, views[c].solarize_threshold,
                           views[c].blur_kernel, poa_imagenet_mean, poa_imagenet_std, out,
                           &scratch);
        free(out);
        poa_aug_scratch_free(&scratch);
    }
    poa_image_free(&img);
    poa_jpeg_decoder_free(&dec);
    return 0;
}
