/* images.h — the evaluation images of a packed data set split: decoded, resized and centre
 * cropped, normalised (docs/algorithm.md, "Evaluation protocols").
 *
 *     poa_eval_transform t;
 *     poa_eval_transform_default(32, &t);             // crop 32, resize 32 (small images)
 *     poa_eval_reader *r;
 *     poa_eval_reader_open(&r, "/data/packed", "val", &t, &err);
 *     poa_eval_reader_read(r, first, n, pixels, labels, &err);  // [n, 3, crop, crop]
 *     poa_eval_reader_close(r);
 *
 * The transform is torchvision's Resize(resize) (shorter side to `resize`, the longer side
 * int(resize · long / short); Pillow bicubic with its antialiasing) then CenterCrop(crop), then
 * ToTensor and Normalize with the ImageNet mean and std.  It runs as one Pillow resample of the
 * source box that the crop keeps (the same pixel centres and filter supports as resizing the
 * whole image and cropping).  For square images with resize == crop it is the whole image
 * resized to crop × crop — the small-image default (Fashion-MNIST: 28 px → 32 px). */
#ifndef POA_EVAL_IMAGES_H
#define POA_EVAL_IMAGES_H

#include "common/poa_error.h"

#include <stdint.h>

typedef struct poa_eval_transform {
    int resize;    /* shorter side after the resize                         */
    int crop;      /* centre crop side; the model's input is crop × crop    */
    float mean[3]; /* Normalize (ImageNet)                                  */
    float std[3];
} poa_eval_transform;

/* The default for a model trained on crop × crop global crops: the official 256/224 transform
 * scaled to the crop (resize = round(crop · 256 / 224)) from 224 px up, the whole image resized
 * to crop × crop below (small images: a centre crop would cut off their border).  resize = 0
 * keeps that default; otherwise it is used as given. */
void poa_eval_transform_default(int crop, int resize, poa_eval_transform *t);

typedef struct poa_eval_reader poa_eval_reader;

/* Open split `split` ("train", "val") of the packed folder dir.  POA_ERR_NOTFOUND / FORMAT /
 * VERSION from the data set checks; POA_ERR_FORMAT when a record has no label (k-NN and linear
 * probes need classes); POA_ERR_ARG for a transform with crop > resize or a side < 1. */
poa_status poa_eval_reader_open(poa_eval_reader **r, const char *dir, const char *split,
                                const poa_eval_transform *t, poa_err *err);
/* Present n evenly spaced images of the split (image p = entry p · total / n) instead of all
 * of them (n ≤ 0 or ≥ the total: all). */
void poa_eval_reader_use(poa_eval_reader *r, int64_t n);
/* Images presented (all of the split unless poa_eval_reader_use). */
int64_t poa_eval_reader_count(const poa_eval_reader *r);
int poa_eval_reader_classes(const poa_eval_reader *r);
/* Labels of the images presented [first, first + n) (no decoding). */
poa_status poa_eval_reader_labels(const poa_eval_reader *r, int64_t first, int64_t n,
                                  int32_t *labels, poa_err *err);
/* Images presented [first, first + n): pixels [n, 3, crop, crop] (fp32, normalised) and their
 * labels (either may be NULL).  Decoded on the OpenMP threads.  POA_ERR_DECODE / POA_ERR_IO naming
 * the image index and the shard on a bad record. */
poa_status poa_eval_reader_read(poa_eval_reader *r, int64_t first, int n, float *pixels,
                                int32_t *labels, poa_err *err);
/* The linear probe's training transform (docs/algorithm.md, "Linear probing"):
 * RandomResizedCrop(crop, scale (0.08, 1), ratio (3/4, 4/3), bicubic) → RandomHorizontalFlip(0.5)
 * → ToTensor → Normalize, as torchvision draws and applies them (data/augment.h).  Image j's
 * decisions come from the Philox stream (seed, 2, POA_RNG_EVAL) from counter keys[j] · 64: a
 * pure function of (seed, key), whichever rank or thread reads the image. */
typedef struct poa_eval_augment {
    uint64_t seed;
    const uint64_t *keys; /* [n]: one per image read (e.g. its place in the training stream) */
} poa_eval_augment;

/* The images presented at indices images[0 .. n) (any order, repeats allowed): pixels [n, 3,
 * crop, crop] through the evaluation transform (aug NULL) or the training transform (aug), and
 * their labels (either output may be NULL).  Errors as poa_eval_reader_read. */
poa_status poa_eval_reader_read_list(poa_eval_reader *r, const int64_t *images, int n,
                                     const poa_eval_augment *aug, float *pixels, int32_t *labels,
                                     poa_err *err);
void poa_eval_reader_close(poa_eval_reader *r);

#endif
