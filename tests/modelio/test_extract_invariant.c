/* test_extract_invariant.c — the extraction invariant (docs/algorithm.md §10) for every
 * sub-network of the demo configuration (configs/demo.yaml: widths {64, 96, 128} × depths
 * {3, ..., 6} = 12): a checkpoint with seeded trained-like weights is written by the checkpoint
 * writer, each sub-network is extracted to files by the library code of poa-extract
 * (poa_export_subnet, HDF5 and safetensors), the files are opened again as model sources, and
 * poa's forward of the standalone model equals the elastic sub-network's forward inside the
 * full model, image by image: cls and patch tokens after the final norm, at the model's image
 * size (32 px) and at the local crop size (16 px, position embeddings resampled).
 *
 * The only difference allowed is fp32 rounding: the standalone model multiplies α into its
 * weights once (W' = fl(α·W)) where the elastic view scales each GEMM by α.  Per image the
 * relative difference is max|Δ| / max|reference| over its tokens; it must stay below 1e-5 and
 * the largest one is printed.  The HDF5 and the safetensors file give identical weights and
 * identical features.  A negative control (the standalone model against another depth) shows
 * the comparison sees a wrong block selection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/rng.h"
#include "modelio/export.h"
#include "modelio/features.h"
#include "seeded_ckpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B        5
#define TOL      1e-5
#define MAX_NETS 64

static char out_dir[4096];

static void random_images(float *x, size_t n, uint64_t seed)
{
    poa_rng r;
    poa_rng_init(&r, seed, 0, POA_RNG_TEST, 1u << 20);
    for (size_t i = 0; i < n; i++) x[i] = (float) poa_rng_normal(&r);
}

/* Tokens of one image: cls then its N patches. */
typedef struct tokens {
    float *cls, *patches;
    int d, N;
} tokens;

static double image_rel_diff(const tokens *a, const tokens *ref, int b)
{
    double diff = 0, scale = 0;
    const float *xs[2] = {a->cls + (size_t) b * a->d, a->patches + (size_t) b * a->N * a->d};
    const float *rs[2] = {ref->cls + (size_t) b * ref->d,
                          ref->patches + (size_t) b * ref->N * ref->d};
    const size_t len[2] = {(size_t) a->d, (size_t) a->N * a->d};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < len[k]; i++) {
            diff = fmax(diff, fabs((double) xs[k][i] - rs[k][i]));
            scale = fmax(scale, fabs((double) rs[k][i]));
        }
    return diff / scale;
}

static void run_features(poa_features *f, const poa_subnet *sn, const float *img, int S,
                         const poa_model_config *c, tokens *t)
{
    t->d = sn->width;
    t->N = poa_model_n_patches(c, S, S);
    t->cls = malloc(sizeof(float) * B * t->d);
    t->patches = malloc(sizeof(float) * (size_t) B * t->N * t->d);
    poa_err err;
    if (poa_features_run(f, sn, img, B, S, S, t->cls, t->patches, &err) != POA_OK)
        fail_msg("features: %s", err.msg);
}

static void free_tokens(tokens *t)
{
    free(t->cls);
    free(t->patches);
}

/* One extracted file against the elastic reference; returns the largest per-image difference. */
static double compare_file(const char *path, const poa_subnet *sn, poa_features *full,
                           const float *img[2], const int sizes[2], const poa_model_config *c,
                           tokens ref_out[2])
{
    poa_model_source x;
    poa_err err;
    if (poa_model_source_open(path, POA_FROM_TEACHER, &x, &err) != POA_OK) fail_msg("%s", err.msg);
    assert_int_equal(x.kind, POA_SOURCE_EXTRACTED);
    assert_int_equal(x.model.cfg.max_embed_dim, sn->width);
    assert_int_equal(x.model.cfg.max_depth, sn->depth);
    assert_int_equal(x.model.cfg.n_heads, 0);
    for (int j = 0; j < sn->depth; j++) assert_int_equal(x.extracted.blocks[j], sn->blocks[j]);
    poa_features *f;
    poa_features_opts o = {.backend = "cpu", .max_images = B, .max_size = sizes[0]};
    assert_int_equal(poa_features_create(&f, &x, &o, &err), POA_OK);
    poa_subnet intact = poa_subnet_intact(&x.model.cfg);
    double worst = 0;
    for (int s = 0; s < 2; s++) {
        tokens ref, got;
        run_features(full, sn, img[s], sizes[s], c, &ref);
        run_features(f, &intact, img[s], sizes[s], c, &got);
        for (int b = 0; b < B; b++) {
            double e = image_rel_diff(&got, &ref, b);
            if (!(e <= TOL))
                fail_msg("%s, %d px, image %d: extracted forward differs from the elastic "
                         "sub-network by %.3e (relative)",
                         path, sizes[s], b, e);
            worst = fmax(worst, e);
        }
        free_tokens(&ref);
        ref_out[s] = got; /* the caller compares the two formats */
    }
    poa_features_destroy(f);
    poa_model_source_close(&x);
    return worst;
}

static void test_every_demo_subnet(void **state)
{
    (void) state;
    char ckdir[4200], xdir[4200];
    snprintf(ckdir, sizeof ckdir, "%s/run", out_dir);
    snprintf(xdir, sizeof xdir, "%s/extracted", out_dir);
    char demo[4096];
    snprintf(demo, sizeof demo, "%s/configs/demo.yaml", getenv("POA_TOP_SRCDIR"));
    assert_int_equal(seeded_ckpt_write(ckdir, demo, NULL, 0, 11, 399, NULL, NULL), 0);

    poa_model_source src;
    poa_err err;
    if (poa_model_source_open(ckdir, POA_FROM_TEACHER, &src, &err) != POA_OK)
        fail_msg("%s", err.msg);
    const poa_model_config *c = &src.model.cfg;
    poa_subnet nets[MAX_NETS];
    const int n = poa_model_source_subnets(&src, nets, MAX_NETS);
    assert_int_equal(n, 12);

    const int sizes[2] = {c->img_size, c->local_crops_size};
    float *img[2];
    for (int s = 0; s < 2; s++) {
        size_t len = (size_t) B * c->in_chans * sizes[s] * sizes[s];
        img[s] = malloc(sizeof(float) * len);
        random_images(img[s], len, 100 + (uint64_t) s);
    }
    poa_features *full;
    poa_features_opts o = {.backend = "cpu", .max_images = B, .max_size = sizes[0]};
    assert_int_equal(poa_features_create(&full, &src, &o, &err), POA_OK);

    double worst = 0;
    for (int i = 0; i < n; i++) {
        char paths[2][POA_IO_PATH_MAX];
        if (poa_export_subnet(&src, nets[i].width, nets[i].depth, xdir,
                              POA_FILE_H5 | POA_FILE_SAFETENSORS, paths, &err) != POA_OK)
            fail_msg("%dx%d: %s", nets[i].width, nets[i].depth, err.msg);
        tokens by_format[2][2];
        double net_worst = 0;
        for (int k = 0; k < 2; k++)
            net_worst = fmax(net_worst, compare_file(paths[k], &nets[i], full, (const float **) img,
                                                     sizes, c, by_format[k]));
        for (int s = 0; s < 2; s++) {
            const tokens *h = &by_format[0][s], *st = &by_format[1][s];
            assert_memory_equal(h->cls, st->cls, sizeof(float) * B * h->d);
            assert_memory_equal(h->patches, st->patches, sizeof(float) * (size_t) B * h->N * h->d);
            free_tokens(&by_format[0][s]);
            free_tokens(&by_format[1][s]);
        }
        printf("  %3dx%d (blocks %d..%d): max relative difference %.3e\n", nets[i].width,
               nets[i].depth, nets[i].blocks[0], nets[i].blocks[nets[i].depth - 1], net_worst);
        worst = fmax(worst, net_worst);
    }
    printf("extraction invariant: %d sub-networks x %d images x 2 sizes x 2 formats: max "
           "relative difference %.3e (tolerance %.0e)\n",
           n, B, worst, TOL);

    /* Negative control: the standalone 64x3 against the elastic 64x4 (other blocks). */
    char path[4300];
    snprintf(path, sizeof path, "%s/vit_64x3.safetensors", xdir);
    poa_model_source x;
    assert_int_equal(poa_model_source_open(path, POA_FROM_TEACHER, &x, &err), POA_OK);
    poa_features *f;
    assert_int_equal(poa_features_create(&f, &x, &o, &err), POA_OK);
    poa_subnet other, intact = poa_subnet_intact(&x.model.cfg);
    assert_int_equal(poa_model_source_subnet(&src, 64, 4, &other, &err), POA_OK);
    tokens ref, got;
    run_features(full, &other, img[0], sizes[0], c, &ref);
    run_features(f, &intact, img[0], sizes[0], c, &got);
    double e = image_rel_diff(&got, &ref, 0);
    printf("negative control (64x3 file against the elastic 64x4): relative difference %.3e\n", e);
    assert_true(e > 1e-2);
    free_tokens(&ref);
    free_tokens(&got);
    poa_features_destroy(f);
    poa_model_source_close(&x);

    poa_features_destroy(full);
    free(img[0]);
    free(img[1]);
    poa_model_source_close(&src);
}

int main(void)
{
    const char *top = getenv("POA_TOP_BUILDDIR");
    snprintf(out_dir, sizeof out_dir, "%s/tests/out/modelio/invariant", top ? top : ".");
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", out_dir, out_dir);
    if (system(cmd) != 0) return 1;
    if (!getenv("POA_TOP_SRCDIR")) {
        fprintf(stderr, "run through make check (POA_TOP_SRCDIR)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_demo_subnet)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
