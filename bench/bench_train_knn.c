/* bench_train_knn.c — did the run learn anything?  A k-NN probe of teacher features (the
 * DINO/POA evaluation protocol: cosine similarity of L2-normalised cls features after the final
 * norm, k nearest training images, votes weighted by exp(sim / 0.07)) on a packed data set, for
 * checkpoints, for the same model at its random initialisation, and for the raw-pixel baseline
 * (the same k-NN on the L2-normalised evaluation images themselves), which a trained model must
 * beat.  Every elastic sub-network of the teacher (width x depth, the model's own views) can be
 * probed too.  The k-NN accuracy of a checkpoint that trained only a few steps with a small
 * LayerScale says little (every cls feature is nearly the same), so the probe also reports the
 * spread of the features (mean pairwise cosine similarity of the first 500 memory images).
 *
 *   bench_train_knn --config FILE [key=value...] --data PACKED [--checkpoint CKPT] [CKPT...]
 *                   [--train N] [--val N] [--k K] [--subnets LIST] [--no-pixels] [--no-init]
 * Evaluation transform: the whole image resized (Pillow bicubic) to crops.global_crops_size,
 * ImageNet mean/std (poa_eval_transform with resize = crop, src/eval/images.h).  The k-NN is the
 * library's (src/eval/knn.h), the one poa-eval-knn runs; this probe adds the baselines and the
 * feature spread for quick checks of a training run.  The images are decoded once and kept in
 * memory for every model and sub-network (3·S·S floats per image).  --subnets: teacher (default;
 * the intact network), all (the intact network and every elastic width x depth), or a list such as
 * 64x3,128x6. Output: a line per feature set and one machine-readable line per result, KNN_RESULT
 * ckpt=FILE net=WxD top1=0.xxxx cos=0.xxxx (ckpt=pixels / ckpt=init for the baselines), and for the
 * intact network of each checkpoint KNN pixels=… init=… trained=… cos_init=… cos_trained=…
 */
#include "common/cli.h"
#include "common/config.h"
#include "common/log.h"
#include "common/timer.h"
#include "eval/images.h"
#include "eval/knn.h"
#include "io/checkpoint.h"
#include "model/vit.h"
#include "train/trainer_config.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const poa_cli_option options[] = {
    {"data", 'd', "DIR", "packed data set with train and val splits"},
    {"checkpoint", 0, "FILE", "poa checkpoint (its /teacher is probed); more as positional args"},
    {"train", 0, "N", "training images used as the k-NN memory (default 5000; 60000 = all)"},
    {"val", 0, "N", "validation images classified (default 2000; 10000 = all)"},
    {"k", 0, "K", "neighbours (default 20)"},
    {"subnets", 0, "LIST", "teacher (default), all, or WxD,WxD,...: sub-networks probed"},
    {"no-pixels", 0, NULL, "skip the raw-pixel baseline"},
    {"no-init", 0, NULL, "skip the random-initialisation baseline"},
};
static const poa_cli_spec spec = {
    .program = "bench_train_knn",
    .summary = "k-NN probe of teacher features (and of its sub-networks): checkpoints vs baselines",
    .options = options,
    .n_options = (int) (sizeof options / sizeof options[0]),
    .uses_config = true,
    .positional = "CKPT...",
};

typedef struct feats {
    int n, d;
    float *x; /* [n, d] L2-normalised */
    const int32_t *label;
} feats;

/* Images of one split, decoded and normalised once. */
typedef struct split_images {
    int n, S;
    float *x; /* [n, 3, S, S] */
    int32_t *label;
} split_images;

/* n evenly spaced images of a split, resized and normalised. */
static void load_split(const char *dir, const char *split, int n, int S, split_images *out)
{
    poa_eval_transform t;
    poa_eval_transform_default(S, S, &t);
    poa_eval_reader *r;
    poa_err err;
    POA_CHECK(poa_eval_reader_open(&r, dir, split, &t, &err) == POA_OK, "%s", err.msg);
    poa_eval_reader_use(r, n);
    n = (int) poa_eval_reader_count(r);
    out->n = n, out->S = S;
    out->x = poa_xmalloc(sizeof(float) * (size_t) 3 * S * S * (size_t) n);
    out->label = poa_xmalloc(sizeof(int32_t) * (size_t) n);
    POA_CHECK(poa_eval_reader_read(r, 0, n, out->x, out->label, &err) == POA_OK, "%s", err.msg);
    poa_eval_reader_close(r);
}

/* Raw-pixel features: the evaluation images themselves. */
static void pixel_features(const split_images *im, feats *f)
{
    const int D = 3 * im->S * im->S;
    f->n = im->n, f->d = D, f->label = im->label;
    f->x = poa_xmalloc(sizeof(float) * (size_t) im->n * D);
    memcpy(f->x, im->x, sizeof(float) * (size_t) im->n * D);
    poa_knn_normalise_rows(f->x, im->n, D);
}

/* Cls features after the final norm of sub-network sn of the model with weights w. */
static void model_features(poa_backend *be, const poa_model *m, const float *w,
                           const poa_subnet *sn, const split_images *im, feats *f)
{
    const int S = im->S, BATCH = 128, d = sn->width;
    const int T = 1 + poa_model_n_patches(&m->cfg, S, S);
    const size_t per = (size_t) 3 * S * S;
    f->n = im->n, f->d = d, f->label = im->label;
    f->x = poa_xmalloc(sizeof(float) * (size_t) im->n * d);
    poa_vit_acts a;
    poa_vit_acts_create(be, m, &a, BATCH, S, 0);
    float *img = be->iface->alloc(be, sizeof(float) * (size_t) BATCH * per);
    const poa_weights wt = poa_weights_f32(be, w); /* the CPU backend computes in fp32 */
    float *out = poa_xmalloc(sizeof(float) * (size_t) BATCH * T * d);
    for (int at = 0; at < im->n; at += BATCH) {
        int b = im->n - at < BATCH ? im->n - at : BATCH;
        be->iface->upload(be, img, im->x + per * (size_t) at, sizeof(float) * (size_t) b * per);
        poa_vit_input in = {img, b, S, S, NULL, NULL};
        poa_vit_forward(be, m, &wt, sn, &in, &a);
        be->iface->act_download(be, out, a.out, (size_t) b * T * d);
        for (int j = 0; j < b; j++) /* the cls token row */
            memcpy(f->x + (size_t) (at + j) * d, out + (size_t) j * T * d, sizeof(float) * d);
        poa_knn_normalise_rows(f->x + (size_t) at * d, b, d);
    }
    free(out);
    be->iface->free(be, img);
    poa_vit_acts_destroy(be, &a);
}

/* Top-1 accuracy of the k-NN of poa-eval-knn (src/eval/knn.h: T = 0.07, softmax votes of the
 * k nearest) and the mean pairwise cosine of the first 500 memory images. */
static double knn(const feats *tr, const feats *va, int k, double *mean_cos)
{
    enum { QB = 256 };
    int nc = 0;
    for (int i = 0; i < tr->n; i++) nc = tr->label[i] + 1 > nc ? tr->label[i] + 1 : nc;
    for (int i = 0; i < va->n; i++) nc = va->label[i] + 1 > nc ? va->label[i] + 1 : nc;
    const int kk = k < tr->n ? k : tr->n;
    float *sim = poa_xmalloc(sizeof(float) * (size_t) QB * tr->n);
    poa_knn_lists l;
    poa_knn_lists_init(&l, QB, kk);
    int64_t correct1 = 0, correct5 = 0;
    for (int q0 = 0; q0 < va->n; q0 += QB) {
        const int nq = va->n - q0 < QB ? va->n - q0 : QB;
        poa_knn_similarity(va->x + (size_t) q0 * va->d, nq, tr->x, tr->n, tr->d, sim);
        l.nq = QB;
        poa_knn_lists_reset(&l);
        l.nq = nq;
        poa_knn_lists_update(&l, sim, nq, tr->n, (size_t) tr->n, 0);
        poa_knn_vote(&l, tr->label, va->label + q0, nc, &kk, 1, POA_KNN_TEMPERATURE, &correct1,
                     &correct5);
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
    l.nq = QB;
    poa_knn_lists_free(&l);
    free(sim);
    return (double) correct1 / va->n;
}

/* k-NN of one feature set (model == NULL: raw pixels); prints a line and a KNN_RESULT line. */
static double probe(poa_backend *be, const poa_model *m, const float *w, const poa_subnet *sn,
                    const split_images *tr_im, const split_images *va_im, int k, const char *what,
                    double *cos)
{
    feats tr, va;
    double t0 = poa_now();
    if (m) {
        model_features(be, m, w, sn, tr_im, &tr);
        model_features(be, m, w, sn, va_im, &va);
    } else {
        pixel_features(tr_im, &tr);
        pixel_features(va_im, &va);
    }
    double acc = knn(&tr, &va, k, cos);
    char net[32] = "pixels";
    if (m) snprintf(net, sizeof net, "%dx%d", sn->width, sn->depth);
    printf("%s %s: k-NN top-1 %.2f%% (k %d, %d train / %d val images), mean pairwise cosine of "
           "the features %.4f (%.1fs)\n",
           what, net, 100 * acc, k, tr.n, va.n, *cos, poa_now() - t0);
    printf("KNN_RESULT ckpt=%s net=%s top1=%.4f cos=%.4f\n", what, net, acc, *cos);
    fflush(stdout);
    free(tr.x), free(va.x);
    return acc;
}

/* The sub-networks to probe: the intact network first, then the requested elastic ones. */
static int parse_subnets(const poa_model_config *mc, const char *list, poa_subnet *out, int cap,
                         poa_err *err)
{
    int n = 0;
    out[n++] = poa_subnet_intact(mc);
    if (!list || strcmp(list, "teacher") == 0) return n;
    if (strcmp(list, "all") == 0) {
        int widths[64], depths[POA_MODEL_MAX_DEPTH];
        int nw = poa_model_widths(mc, widths, 64),
            nd = poa_model_depths(mc, depths, POA_MODEL_MAX_DEPTH);
        for (int i = 0; i < nw; i++)
            for (int j = 0; j < nd; j++) {
                if (widths[i] == mc->max_embed_dim && depths[j] == mc->max_depth) continue;
                if (n == cap) return poa_err_set(err, POA_ERR_ARG, "too many sub-networks"), -1;
                if (poa_subnet_make(mc, widths[i], depths[j], &out[n], err) != POA_OK) return -1;
                n++;
            }
        return n;
    }
    const char *p = list;
    while (*p) {
        int w, d, used;
        if (sscanf(p, "%dx%d%n", &w, &d, &used) != 2)
            return poa_err_set(err, POA_ERR_ARG, "--subnets: '%s' is not WxD[,WxD...]", p), -1;
        if (w == mc->max_embed_dim && d == mc->max_depth) {
            p += used;
        } else {
            if (n == cap) return poa_err_set(err, POA_ERR_ARG, "too many sub-networks"), -1;
            if (poa_subnet_make(mc, w, d, &out[n], err) != POA_OK) return -1;
            n++;
            p += used;
        }
        if (*p == ',')
            p++;
        else if (*p)
            return poa_err_set(err, POA_ERR_ARG, "--subnets: unexpected '%s'", p), -1;
    }
    return n;
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
    const char *ckpt1 = poa_cli_value(&cli, &spec, "checkpoint");
    const int n_ckpt = (ckpt1 != NULL) + cli.n_positional;
    int ntr, nva, k;
    if (!data || n_ckpt == 0 || poa_cli_build_config(&cli, cfg, 1, &err) != POA_OK ||
        poa_cli_int(&cli, &spec, "train", 5000, 1, 1 << 24, &ntr, &err) != POA_OK ||
        poa_cli_int(&cli, &spec, "val", 2000, 1, 1 << 24, &nva, &err) != POA_OK ||
        poa_cli_int(&cli, &spec, "k", 20, 1, 1000, &k, &err) != POA_OK) {
        fprintf(stderr, "bench_train_knn: %s\n",
                data && n_ckpt ? err.msg : "--data and a checkpoint are required");
        goto done;
    }
    poa_model_config mc;
    if (poa_model_config_from_config(cfg, &mc, &err) != POA_OK) {
        fprintf(stderr, "bench_train_knn: %s\n", err.msg);
        goto done;
    }
    poa_subnet nets[256];
    const int n_nets = parse_subnets(&mc, poa_cli_value(&cli, &spec, "subnets"), nets, 256, &err);
    if (n_nets < 0) {
        fprintf(stderr, "bench_train_knn: %s\n", err.msg);
        goto done;
    }
    poa_model *m = poa_xcalloc(1, sizeof *m);
    poa_model_build(m, &mc);
    char msg[256];
    poa_backend *be = poa_backend_create("cpu", NULL, msg, sizeof msg);
    float *w = be->iface->alloc(be, sizeof(float) * m->table.total); /* CPU: host memory */
    const int S = m->cfg.global_crops_size;
    split_images tr_im, va_im;
    double t0 = poa_now();
    load_split(data, "train", ntr, S, &tr_im);
    load_split(data, "val", nva, S, &va_im);
    printf("images: %d train / %d val, %dx%d (%.1fs)\n", tr_im.n, va_im.n, S, S, poa_now() - t0);
    double ap = -1, a0 = -1, cos0 = 0, cosp;
    if (!poa_cli_flag(&cli, &spec, "no-pixels"))
        ap = probe(be, NULL, NULL, NULL, &tr_im, &va_im, k, "pixels", &cosp);
    if (!poa_cli_flag(&cli, &spec, "no-init")) {
        poa_model_init_params(be, m, w, (uint64_t) cfg->train.seed);
        for (int j = 0; j < n_nets; j++) {
            double c, a = probe(be, m, w, &nets[j], &tr_im, &va_im, k, "init", &c);
            if (j == 0) a0 = a, cos0 = c;
        }
    }
    rc = 0;
    for (int c = 0; c < n_ckpt; c++) {
        const char *ckpt = c == 0 && ckpt1 ? ckpt1 : cli.positional[c - (ckpt1 != NULL)];
        poa_ckpt_tensors x = {w, NULL, NULL, NULL};
        poa_ckpt_load_opts lo = {0, 0};
        if (poa_ckpt_load(ckpt, &m->table, &x, NULL, &lo, &err) != POA_OK) {
            fprintf(stderr, "bench_train_knn: %s\n", err.msg);
            rc = 3;
            continue;
        }
        double cos1 = 0, a1 = 0;
        for (int j = 0; j < n_nets; j++) {
            double cj, a = probe(be, m, w, &nets[j], &tr_im, &va_im, k, ckpt, &cj);
            if (j == 0) a1 = a, cos1 = cj;
        }
        if (ap >= 0)
            printf("%s: trained features %s the raw-pixel baseline (%.2f%% vs %.2f%%)\n", ckpt,
                   a1 > ap ? "beat" : "do NOT beat", 100 * a1, 100 * ap);
        printf("KNN pixels=%.4f init=%.4f trained=%.4f cos_init=%.4f cos_trained=%.4f\n", ap, a0,
               a1, cos0, cos1);
        fflush(stdout);
    }
    free(tr_im.x), free(tr_im.label), free(va_im.x), free(va_im.label);
    be->iface->free(be, w);
    poa_backend_destroy(be);
    poa_model_free(m);
    free(m);
done:
    free(cfg);
    poa_cli_free(&cli);
    MPI_Finalize();
    return rc;
}
