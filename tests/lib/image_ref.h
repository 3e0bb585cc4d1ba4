/* image_ref.h — the direct evaluation of the hue adjustment (Pillow's conversions one pixel
 * after the other), the reference of the table-driven poa_adjust_hue (src/data/image.h) in the
 * loader's unit tests.  Test code: built into tests/lib/libpoa_testutil.a, never into the
 * programs. */
#ifndef POA_TESTS_LIB_IMAGE_REF_H
#define POA_TESTS_LIB_IMAGE_REF_H

#include "data/image.h"

/* torchvision F_pil.adjust_hue computed pixel by pixel with Pillow's conversions (slow). */
void poa_adjust_hue_reference(poa_image *im, double hue_factor);

#endif
