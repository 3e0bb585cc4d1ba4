/* bench_train_knn.c — did the run learn anything?  A quick k-NN probe of teacher features
 * (spec §8.1 protocol: cosine similarity of L2-normalised cls features, k nearest training
 * images, votes weighted by exp(sim / 0.07)) on a packed data set, for a checkpoint and for the
 * same model at its random initialisation, next to the raw-pixel baseline (the same k-NN on the
 * L2-normalised evaluation images themselves), which a trained model must beat.  Spec §13 item 8:
 * k-NN accuracy of an early checkpoint is meaningless (LayerScale 1e-5 makes every cls feature
 * nearly the same), so the probe also reports the spread of the features (mean pairwise cosine
 * similarity).
 *
 *   bench_train_knn --config FILE [key=value...] --data PACKED --checkpoint CKPT
 *                   [--train N] [--val N] [--k K]
 * Evaluation transform: the whole image resized (Pillow bicubic) to crops.global_crops_size,
 * ImageNet mean/std.  Prints one line per feature set and
 * "KNN pixels=… init=… trained=… cos_init=… cos_trained=…" last.
 */
#include "common/cli.h"
#include "common/config.h"
#include "common/log.h"
#include "common/timer.h"
#include "data/dataset.h"
#include "data/jpeg.h"
#include "io/checkpoint.h"
#include "model/vit.h"
#include "train/trainer_config.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const poa_cli_option options[] = {
    {"data", 'd', "DIR", "packed data set with train and val splits"},
    {"checkpoint", 0, "FILE", "poa checkpoint (its /teacher is probed)"},
    {"train", 0, "N", "training images used as the k-NN memory (default 5000)"},
    {"val", 0, "N", "validation images classified (default 2000)"},
    {"k", 0, "K", "neighbours (default 20)"},
};
static const poa_cli_spec spec = {
    "bench_train_knn",
    "k-NN probe of teacher features: a checkpoint vs its random initialisation",
    options,
    5,
    true,
    NULL,
    NULL};

typedef struct feats {
    int n, d;
    float *x; /* [n, d] L2-normalised */
    int *label;
} feats;

/* Whole image → S×S bicubic → normalised CHW. */
static void load_image(const poa_dataset *ds, int64_t i, int S, float *out, int *label,
                       poa_jpeg_decoder *dec, poa_image *im, poa_image *rs, poa_image_scratch *sc)
{
    static uint8_t *buf;
    static size_t cap;
    size_t n = 0;
    int32_t lab = -1;
    poa_err err;
    POA_CHECK(poa_dataset_read(ds, i, &buf, &cap, &n, &lab, &err) == POA_OK, "%s", err.msg);
    POA_CHECK(poa_jpeg_decode(dec, buf, n, 8, im, NULL, &err) == POA_OK, "%s", err.msg);
    const float box[4] = {0, 0, (float) im->w, (float) im->h};
    poa_resize_bicubic(im, 0, 0, im->w, im->h, box, S, S, rs, sc);
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    poa_normalize_chw(rs, mean, stdv, out);
    *label = lab;
}

/* Row j of v (d values) L2-normalised into f->x row at. */
static void put_normalised(feats *f, int at, const float *v, int d)
{
    double nn2 = 0;
    for (int k = 0; k < d; k++) nn2 += (double) v[k] * v[k];
    float inv = (float) (1.0 / fmax(sqrt(nn2), 1e-12));
    for (int k = 0; k < d; k++) f->x[(size_t) at * d + k] = v[k] * inv;
}

/* Teacher cls features of n evenly spaced images of a split; with m == NULL the evaluation
 * images themselves (3·S·S raw-pixel features, S = size). */
static void features(poa_backend *be, const poa_model *m, const float *w, int size, const char *dir,
                     const char *split, int n, feats *f)
{
    poa_dataset ds;
    poa_err err;
    memset(&ds, 0, sizeof ds);
    POA_CHECK(poa_dataset_open(&ds, dir, split, &err) == POA_OK, "%s", err.msg);
    if (n > ds.num_images) n = (int) ds.num_images;
    const int S = size, BATCH = 64, raw = m == NULL;
    const int D = raw ? 3 * S * S : m->cfg.max_embed_dim;
    const int T = raw ? 1 : 1 + poa_model_n_patches(&m->cfg, S, S);
    f->n = n, f->d = D;
    f->x = poa_xmalloc(sizeof(float) * (size_t) n * D);
    f->label = poa_xmalloc(sizeof(int) * (size_t) n);
    poa_vit_acts a;
    if (!raw) poa_vit_acts_create(be, m, &a, BATCH, S, 0);
    float *img = be->iface->alloc(be, sizeof(float) * (size_t) BATCH * 3 * S * S);
    float *host = poa_xmalloc(sizeof(float) * (size_t) BATCH * 3 * S * S);
    float *out = poa_xmalloc(sizeof(float) * (size_t) BATCH * T * D);
    poa_jpeg_decoder dec;
    poa_jpeg_decoder_init(&dec);
    poa_image im = {0}, rs = {0};
    poa_image_scratch sc;
    memset(&sc, 0, sizeof sc);
    const poa_subnet intact = raw ? (poa_subnet){0} : poa_subnet_intact(&m->cfg);
    for (int at = 0; at < n; at += BATCH) {
        int b = n - at < BATCH ? n - at : BATCH;
        for (int j = 0; j < b; j++) {
            int64_t idx = (int64_t) (at + j) * ds.num_images / n;
            load_image(&ds, idx, S, host + (size_t) j * 3 * S * S, &f->label[at + j], &dec, &im,
                       &rs, &sc);
        }
        if (raw) {
            for (int j = 0; j < b; j++) put_normalised(f, at + j, host + (size_t) j * D, D);
            continue;
        }
        be->iface->upload(be, img, host, sizeof(float) * (size_t) b * 3 * S * S);
        poa_vit_input in = {img, b, S, S, NULL, NULL};
        const poa_weights wt = poa_weights_f32(be, w);
        poa_vit_forward(be, m, &wt, &intact, &in, &a);
        be->iface->act_download(be, out, a.out, (size_t) b * T * D);
        for (int j = 0; j < b; j++) /* the cls token row */
            put_normalised(f, at + j, out + (size_t) j * T * D, D);
    }
    poa_jpeg_decoder_free(&dec);
    poa_image_free(&im);
    poa_image_free(&rs);
    poa_image_scratch_free(&sc);
    free(host);
    free(out);
    be->iface->free(be, img);
    if (!raw) poa_vit_acts_destroy(be, &a);
    poa_dataset_close(&ds);
}

/* Top-1 accuracy of weighted k-NN (T = 0.07) and the mean pairwise cosine of the memory. */
static double knn(const feats *tr, const feats *va, int k, double *mean_cos)
{
    int correct = 0, nc = 0;
    for (int i = 0; i < tr->n; i++) nc = tr->label[i] + 1 > nc ? tr->label[i] + 1 : nc;
    float *sim = poa_xmalloc(sizeof(float) * (size_t) tr->n);
    int *top = poa_xmalloc(sizeof(int) * (size_t) k);
    double *votes = poa_xcalloc((size_t) nc + 1, sizeof(double));
    for (int q = 0; q < va->n; q++) {
        const float *x = va->x + (size_t) q * va->d;
        for (int i = 0; i < tr->n; i++) {
            const float *y = tr->x + (size_t) i * tr->d;
            double s = 0;
            for (int j = 0; j < tr->d; j++) s += (double) x[j] * y[j];
            sim[i] = (float) s;
        }
        int kk = k < tr->n ? k : tr->n;
        for (int t = 0; t < kk; t++) { /* partial selection: the kk largest, ties by index */
            int best = -1;
            for (int i = 0; i < tr->n; i++) {
                int used = 0;
                for (int u = 0; u < t; u++) used |= top[u] == i;
                if (!used && (best < 0 || sim[i] > sim[best])) best = i;
            }
            top[t] = best;
        }
        memset(votes, 0, sizeof(double) * (size_t) nc);
        for (int t = 0; t < kk; t++) votes[tr->label[top[t]]] += exp(sim[top[t]] / 0.07);
        int arg = 0;
        for (int c = 1; c < nc; c++) arg = votes[c] > votes[arg] ? c : arg;
        correct += arg == va->label[q];
    }
    double s = 0;
    long pairs = 0;
    for (int i = 0; i < tr->n && i < 500; i++)
        for (int j = i + 1; j < tr->n && j < 500; j++, pairs++) {
            double c = 0;
            for (int u = 0; u < tr->d; u++)
                c += (double) tr->x[(size_t) i * tr->d + u] * tr->x[(size_t) j * tr->d + u];
            s += c;
        }
    *mean_cos = pairs ? s / pairs : 0;
    free(sim);
    free(top);
    free(votes);
    return (double) correct / va->n;
}

static double probe(poa_backend *be, const poa_model *m, const float *w, int size, const char *dir,
                    int ntr, int nva, int k, const char *what, double *cos)
{
    feats tr, va;
    double t0 = poa_now();
    features(be, m, w, size, dir, "train", ntr, &tr);
    features(be, m, w, size, dir, "val", nva, &va);
    double acc = knn(&tr, &va, k, cos);
    printf("%-10s k-NN top-1 %.2f%% (k %d, %d train / %d val images), mean pairwise cosine of the "
           "features %.4f (%.1fs)\n",
           what, 100 * acc, k, tr.n, va.n, *cos, poa_now() - t0);
    free(tr.x), free(tr.label), free(va.x), free(va.label);
    return acc;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    poa_log_init(0, 1, 0);
    poa_cli cli;
    poa_config *cfg = poa_xcalloc(1, sizeof *cfg);
    poa_err err;
    int rc = poa_cli_main_setup(&spec, argc, argv, &cli, NULL, 1, &err);
    if (rc >= 0) goto done;
    rc = 2;
    const char *data = poa_cli_value(&cli, &spec, "data");
    const char *ckpt = poa_cli_value(&cli, &spec, "checkpoint");
    int ntr, nva, k;
    if (!data || !ckpt || poa_cli_build_config(&cli, cfg, 1, &err) != POA_OK ||
        poa_cli_int(&cli, &spec, "train", 5000, 1, 1 << 24, &ntr, &err) != POA_OK ||
        poa_cli_int(&cli, &spec, "val", 2000, 1, 1 << 24, &nva, &err) != POA_OK ||
        poa_cli_int(&cli, &spec, "k", 20, 1, 1000, &k, &err) != POA_OK) {
        fprintf(stderr, "bench_train_knn: %s\n",
                data && ckpt ? err.msg : "--data and --checkpoint are required");
        goto done;
    }
    poa_model_config mc;
    if (poa_trainer_model_config(cfg, &mc, &err) != POA_OK) {
        fprintf(stderr, "bench_train_knn: %s\n", err.msg);
        goto done;
    }
    poa_model *m = poa_xcalloc(1, sizeof *m);
    poa_model_build(m, &mc);
    char msg[256];
    poa_backend *be = poa_backend_create("cpu", NULL, msg, sizeof msg);
    float *w = be->iface->alloc(be, sizeof(float) * m->table.total); /* CPU: host memory */
    poa_model_init_params(be, m, w, (uint64_t) cfg->train.seed);
    float *wt = be->iface->alloc(be, sizeof(float) * m->table.total);
    poa_ckpt_tensors x = {wt, NULL, NULL, NULL};
    poa_ckpt_load_opts lo = {0, 0};
    if (poa_ckpt_load(ckpt, &m->table, &x, NULL, &lo, &err) != POA_OK) {
        fprintf(stderr, "bench_train_knn: %s\n", err.msg);
        rc = 3;
        goto done;
    }
    double cos0, cos1, cosp;
    const int S = m->cfg.global_crops_size;
    double ap = probe(be, NULL, NULL, S, data, ntr, nva, k, "pixels", &cosp);
    double a0 = probe(be, m, w, S, data, ntr, nva, k, "init", &cos0);
    double a1 = probe(be, m, wt, S, data, ntr, nva, k, "trained", &cos1);
    printf("trained features %s the raw-pixel baseline (%.2f%% vs %.2f%%)\n",
           a1 > ap ? "beat" : "do NOT beat", 100 * a1, 100 * ap);
    printf("KNN pixels=%.4f init=%.4f trained=%.4f cos_init=%.4f cos_trained=%.4f\n", ap, a0, a1,
           cos0, cos1);
    rc = 0;
    be->iface->free(be, w);
    be->iface->free(be, wt);
    poa_backend_destroy(be);
    poa_model_free(m);
    free(m);
done:
    free(cfg);
    poa_cli_free(&cli);
    MPI_Finalize();
    return rc;
}
