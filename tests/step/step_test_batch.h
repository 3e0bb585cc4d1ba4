/* step_test_batch.h — a deterministic random batch (crops and iBOT masks) for tests of the POA
 * step on a small model. */
#ifndef POA_TESTS_STEP_BATCH_H
#define POA_TESTS_STEP_BATCH_H

#include "tests/step/step_test_util.h"
#include "train/step.h"

#include <string.h>

typedef struct test_batch {
    float *glob, *loc; /* backend memory */
    uint8_t *masks;    /* host           */
    poa_step_batch b;
} test_batch;

/* G groups of B images: 2B global crops and V·B local crops per group, masks on every other
 * crop (3 patches each, at least).  Group g's data depends only on (seed, g), so a batch of
 * groups [g0, g0 + G) holds the same numbers as the matching groups of a larger batch. */
static inline void test_batch_make(test_batch *t, poa_backend *be, const poa_model *m, int B,
                                   int g0, int G, int V, uint64_t seed)
{
    const int C = m->cfg.in_chans, Sg = m->cfg.global_crops_size, Sl = m->cfg.local_crops_size;
    const int N = poa_model_n_patches(&m->cfg, Sg, Sg);
    const size_t ng = (size_t) 2 * B * C * Sg * Sg, nl = (size_t) V * B * C * Sl * Sl;
    float *h = malloc(sizeof(float) * (ng > nl ? ng : nl) + sizeof(float));
    t->glob = be->iface->alloc(be, sizeof(float) * ng * G);
    t->loc = be->iface->alloc(be, sizeof(float) * (nl * G + 1));
    t->masks = calloc((size_t) G * 2 * B * N, 1);
    for (int g = 0; g < G; g++) {
        fill_normal(h, ng, seed * 1000 + 2 * (g0 + g), 1.0f);
        be->iface->upload(be, t->glob + ng * g, h, sizeof(float) * ng);
        if (nl) {
            fill_normal(h, nl, seed * 1000 + 2 * (g0 + g) + 1, 1.0f);
            be->iface->upload(be, t->loc + nl * g, h, sizeof(float) * nl);
        }
        for (int c = 0; c < 2 * B; c += 2)
            for (int p = (c + g0 + g) % 3; p < N; p += 3)
                t->masks[((size_t) g * 2 * B + c) * N + p] = 1;
    }
    free(h);
    memset(&t->b, 0, sizeof t->b);
    t->b.global_crops = t->glob;
    t->b.local_crops = t->loc;
    t->b.masks = t->masks;
}

static inline void test_batch_free(test_batch *t, poa_backend *be)
{
    be->iface->free(be, t->glob);
    be->iface->free(be, t->loc);
    free(t->masks);
}

/* The step tests' fixture: the CPU backend (fp32) and the tiny model.  0, or −1 when either
 * cannot be had (a CMocka group setup's failure). */
static inline int tiny_cpu_fixture_setup(poa_backend **be, poa_model *m)
{
    char err[128];
    poa_model_config mc;
    *be = poa_backend_create("cpu", NULL, err, sizeof err);
    if (!*be || poa_model_config_from_arch(&mc, "tiny", NULL) != POA_OK) return -1;
    poa_model_build(m, &mc);
    return 0;
}

static inline void tiny_cpu_fixture_teardown(poa_backend *be, poa_model *m)
{
    poa_model_free(m);
    poa_backend_destroy(be);
}

#endif
