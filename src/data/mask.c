/* mask.c — see mask.h. */
#include "data/mask.h"

#include "common/poa_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void poa_mask_params_default(poa_mask_params *p, int img_size, int patch_size)
{
    int g = img_size / patch_size;
    double half = floor(0.5 * img_size / patch_size); /* (0.5 * img_size) // patch_size */
    *p = (poa_mask_params){g, g, 4.0, floor(half * img_size / patch_size), 0.3, 0.0, 0.5, 0.1, 0.5};
}

/* Python's random.uniform(a, b) and random.randint(a, b) on a Philox stream. */
static double uniform(poa_rng *r, double a, double b)
{
    return a + (b - a) * poa_rng_uniform(r);
}
static int randint(poa_rng *r, int a, int b)
{
    return a + (int) poa_rng_below(r, (uint32_t) (b - a + 1));
}

int poa_mask_add_block(const poa_mask_params *p, poa_rng *r, uint8_t *mask, double budget)
{
    double max_aspect = p->max_aspect > 0 ? p->max_aspect : 1.0 / p->min_aspect;
    double la = log(p->min_aspect), lb = log(max_aspect);
    int delta = 0;
    for (int attempt = 0; attempt < 10; attempt++) {
        double area = uniform(r, p->min_num_patches, budget);
        double ar = exp(uniform(r, la, lb));
        int h = (int) rint(sqrt(area * ar)); /* Python round(): half to even */
        int w = (int) rint(sqrt(area / ar));
        if (w < p->grid_w && h < p->grid_h) {
            int top = randint(r, 0, p->grid_h - h), left = randint(r, 0, p->grid_w - w);
            int already = 0;
            for (int i = top; i < top + h; i++)
                for (int j = left; j < left + w; j++) already += mask[i * p->grid_w + j];
            if (0 < h * w - already && h * w - already <= budget) {
                for (int i = top; i < top + h; i++)
                    for (int j = left; j < left + w; j++)
                        if (!mask[i * p->grid_w + j]) {
                            mask[i * p->grid_w + j] = 1;
                            delta++;
                        }
            }
            if (delta > 0) break;
        }
    }
    return delta;
}

int poa_mask_generate(const poa_mask_params *p, poa_rng *r, int target, uint8_t *mask)
{
    memset(mask, 0, (size_t) p->grid_h * p->grid_w);
    int count = 0;
    while (count < target) {
        double budget = target - count;
        if (budget > p->max_num_patches) budget = p->max_num_patches;
        int delta = poa_mask_add_block(p, r, mask, budget);
        if (delta == 0) break;
        count += delta;
    }
    return count;
}

float poa_linspace_f32(double a, double b, int steps, int i)
{
    /* torch.linspace on the CPU (ATen's linspace kernel as dispatched on x86-64, AVX2): float
     * step = (end - start) / (steps - 1); the output is written 16 values per iteration as two
     * 8-lane vectors, each lane j = base + j·step with base = fma(step, i0, start) (or
     * fma(-step, steps - i0 - 1, end) once i0 reaches steps / 2), and the remaining
     * steps % 16 values one by one as fma(step, i, start) / fma(-step, steps - i - 1, end).  The
     * masked-patch counts of collate_data_and_cast depend on these float32 values
     * (docs/algorithm.md §9.2). */
    float start = (float) a, end = (float) b;
    if (steps == 1) return start;
    float step = (end - start) / (float) (steps - 1);
    int halfway = steps / 2, vectorised = steps / 16 * 16;
    if (i < vectorised) {
        int i0 = i / 8 * 8;
        float base = i0 < halfway ? fmaf(step, (float) i0, start)
                                  : fmaf(-step, (float) (steps - i0 - 1), end);
        float lane = (float) (i - i0) * step;
        return base + lane;
    }
    return i < halfway ? fmaf(step, (float) i, start) : fmaf(-step, (float) (steps - i - 1), end);
}

int poa_mask_target(int n_tokens, float lo, float hi, double u)
{
    float ratio = lo + (hi - lo) * (float) u; /* float32 tensor arithmetic */
    return (int) ((float) n_tokens * ratio);
}

int poa_mask_batch(const poa_mask_params *p, poa_rng *r, int n_crops, uint8_t *masks,
                   int64_t *upperbound)
{
    int n_tokens = p->grid_h * p->grid_w;
    int n_masked = (int) (n_crops * p->mask_probability);
    int *order = poa_xmalloc((size_t) (n_crops ? n_crops : 1) * sizeof *order);
    uint8_t *tmp = poa_xmalloc((size_t) (n_crops ? n_crops : 1) * n_tokens);
    int64_t ub = 0;
    int total = 0;
    for (int k = 0; k < n_crops; k++) {
        int target = 0;
        if (k < n_masked) {
            float lo = poa_linspace_f32(p->ratio_min, p->ratio_max, n_masked + 1, k);
            float hi = poa_linspace_f32(p->ratio_min, p->ratio_max, n_masked + 1, k + 1);
            target = poa_mask_target(n_tokens, lo, hi, poa_rng_uniform(r));
            ub += (int64_t) ((float) n_tokens * hi);
        }
        total += poa_mask_generate(p, r, target, tmp + (size_t) k * n_tokens);
        order[k] = k;
    }
    /* random.shuffle: Fisher-Yates from the end. */
    for (int i = n_crops - 1; i > 0; i--) {
        int j = (int) poa_rng_below(r, (uint32_t) (i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int k = 0; k < n_crops; k++)
        memcpy(masks + (size_t) k * n_tokens, tmp + (size_t) order[k] * n_tokens,
               (size_t) n_tokens);
    free(tmp);
    free(order);
    if (upperbound) *upperbound = ub;
    return total;
}
