/* extract_features.c — poa's features of a model source for the Python tests
 * (check_extracted.py): N seeded images (normal pixels, the model's image size) and, for each
 * sub-network asked, the cls token and the patch tokens after the final norm.
 *   extract_features SOURCE OUT.h5 N SEED [WxD ...]
 * SOURCE is a checkpoint (sub-networks WxD, elastic views) or an extracted file (no WxD: its
 * own).  OUT.h5: /images [N, C, S, S]; /WxD/cls [N, d]; /WxD/patches [N, (S/P)², d]. */
#include "io/h5util.h"
#include "common/rng.h"
#include "modelio/features.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, const poa_err *e)
{
    fprintf(stderr, "extract_features: %s: %s\n", what, e->msg);
    return poa_status_exit_code(e->code);
}

static int write_subnet(hid_t f, poa_features *fe, const poa_model_source *src,
                        const poa_subnet *sn, const float *img, int n, int S)
{
    const int d = sn->width, N = poa_model_n_patches(&src->model.cfg, S, S);
    float *cls = malloc(sizeof(float) * (size_t) n * d);
    float *patches = malloc(sizeof(float) * (size_t) n * N * d);
    poa_err e;
    if (poa_features_run(fe, sn, img, n, S, S, cls, patches, &e)) return fail("forward", &e);
    char name[64];
    snprintf(name, sizeof name, "%dx%d", sn->width, sn->depth);
    hid_t g = poa_h5_create_group(f, name);
    int64_t dc[2] = {n, d}, dp[3] = {n, N, d};
    if (poa_h5_write_f32(g, "cls", 2, dc, cls, &e) ||
        poa_h5_write_f32(g, "patches", 3, dp, patches, &e))
        return fail(name, &e);
    H5Gclose(g);
    free(cls);
    free(patches);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s SOURCE OUT.h5 N SEED [WxD ...]\n", argv[0]);
        return 2;
    }
    const int n = atoi(argv[3]);
    poa_model_source src;
    poa_err e;
    if (poa_model_source_open(argv[1], POA_FROM_TEACHER, &src, &e)) return fail(argv[1], &e);
    const poa_model_config *c = &src.model.cfg;
    const int S = c->img_size;
    const size_t len = (size_t) n * c->in_chans * S * S;
    float *img = malloc(sizeof(float) * len);
    poa_rng r;
    poa_rng_init(&r, strtoull(argv[4], NULL, 10), 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < len; i++) img[i] = (float) poa_rng_normal(&r);
    poa_features *fe;
    poa_features_opts o = {.backend = "cpu", .max_images = n, .max_size = S};
    if (poa_features_create(&fe, &src, &o, &e)) return fail("backend", &e);
    hid_t f = H5Fcreate(argv[2], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int64_t di[4] = {n, c->in_chans, S, S};
    if (f < 0 || poa_h5_write_f32(f, "images", 4, di, img, &e)) return fail(argv[2], &e);
    int rc = 0;
    if (argc == 5) {
        poa_subnet sn = poa_subnet_intact(c);
        rc = write_subnet(f, fe, &src, &sn, img, n, S);
    }
    for (int i = 5; i < argc && rc == 0; i++) {
        int w, d;
        poa_subnet sn;
        if (sscanf(argv[i], "%dx%d", &w, &d) != 2 || poa_model_source_subnet(&src, w, d, &sn, &e))
            return fail(argv[i], &e);
        rc = write_subnet(f, fe, &src, &sn, img, n, S);
    }
    H5Fclose(f);
    poa_features_destroy(fe);
    poa_model_source_close(&src);
    free(img);
    return rc;
}
