/* poa_eval_linear.c — poa-eval-linear: the linear probe of POA on a packed data set
 * (docs/algorithm.md, "Linear probing"), for any sub-networks of pretraining checkpoints, for
 * extracted models and for the raw pixels.
 *   poa-eval-linear --checkpoint FILE... --data PACKED --output DIR
 *                   [--subnet WxD | --arch NAME | --all-subnets] [--from teacher|student]
 *                   [--pixels] [--mode cached|augmented] [--epochs E] [--iterations T]
 *                   [--batch-size B] [--lr LIST] [--seed S] ...
 * Options → open the models and the two splits → features: the class tokens of 4 block outputs
 * and the last one's mean patch token of every network (the val split; in the cached mode the
 * train split too, through the evaluation transform) → the grid of linear classifiers of every
 * network trained at once on the same batches (in the augmented mode every batch is read with
 * RandomResizedCrop + flip and run through the frozen networks) → every classifier on the val
 * split, the best one reported.
 *
 * Ranks.  The images are read in fixed forward batches whatever the number of ranks, each rank
 * taking a contiguous run of them, so a feature does not depend on the number of ranks.  Every
 * rank draws the same order of training images; the images of an iteration's batch are computed
 * by the ranks that hold them (cached: whose share of the train split they are in, in fixed
 * blocks of the split; augmented: whose fixed forward batches of the iteration they fall in), one
 * gradient per block or forward batch, whatever the number of ranks.  Those gradients are summed
 * in fixed point (src/eval/linear.h, "Exact sums") over the ranks (src/comm) and every rank takes
 * the same step: all ranks hold the same classifiers (checked at the end), and the results are
 * the same bits for any number of ranks (tests/eval/test_eval_linear.sh compares 1 and 2).
 */
#include "poa_config.h"
#include "comm/comm.h"
#include "common/atomic_io.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/timer.h"
#include "eval/images.h"
#include "eval/linear.h"
#include "io/h5util.h"
#include "modelio/features.h"
#include "modelio/model_source.h"
#include "tool/eval_args.h"
#include "tool/networks.h"
#include "tool/tool.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NETWORKS 256
#define PROGRAM      "poa-eval-linear"

static const poa_cli_option options[] = {
    {"checkpoint", 'c', "PATH",
     "pretraining checkpoint (checkpoint_<it>.h5, a teacher_checkpoint.h5,\n"
     "or a run directory: its newest), or an extracted vit_<W>x<D>.h5 /\n"
     ".safetensors (poa-extract); repeatable, more as positional arguments"},
    {"data", 'd', "DIR", "packed data set (poa-pack) with a train and a val split"},
    {"output", 'o', "DIR", "results directory (created): results_eval_linear.json, ..."},
    {"subnet", 's', "WxD",
     "a sub-network of the checkpoints: width x depth (repeatable, or a\n"
     "comma list; default: the intact network)"},
    {"arch", 'a', "NAME", "a named size: vit_small (384x12), vit_base, ... (repeatable)"},
    {"all-subnets", 0, NULL, "every elastic width x depth of the checkpoints"},
    {"from", 0, "WHICH", "teacher (default: the EMA teacher) or student weights"},
    {"pixels", 0, NULL,
     "also the raw-pixel baseline: linear classifiers on the normalised\n"
     "pixels (one input, the learning rates of the grid)"},
    {"mode", 'm', "MODE",
     "cached (default): the train features computed once, through the\n"
     "evaluation transform, and the classifiers trained on them; augmented:\n"
     "the official protocol, every training batch read with RandomResizedCrop\n"
     "(scale 0.08-1) + flip and run through the frozen networks (costs one\n"
     "forward per training image and iteration)"},
    {"epochs", 'e', "N", "passes of --epoch-length iterations (default 10)"},
    {"epoch-length", 0, "N",
     "iterations per epoch (default: one pass over the train split,\n"
     "train images / --batch-size)"},
    {"iterations", 'i', "N", "training iterations (default: --epochs x --epoch-length)"},
    {"batch-size", 'B', "N",
     "training images per iteration, all ranks together (default 256);\n"
     "the learning rates are scaled by batch-size / 256"},
    {"lr", 0, "LIST",
     "learning rates per 256 images, comma-separated (default the official\n"
     "13: 1e-5,2e-5,5e-5,1e-4,2e-4,5e-4,1e-3,2e-3,5e-3,1e-2,2e-2,5e-2,0.1)"},
    {"seed", 0, "N",
     "seed of the classifiers' initial weights, the order of the training\n"
     "images and the training crops (default 0)"},
    {"resize", 0, "N",
     "evaluation transform: shorter side before the centre crop (default:\n"
     "the crop below 224 px, crop x 256/224 from 224 px up)"},
    {"crop", 0, "N", "centre crop = model input side (default: the checkpoint's crop size)"},
    {"batch", 'b', "N",
     "images per forward (default: 8192 tokens, 8..256 images: 126 for\n"
     "32 px at patch 4, 41 for 224 px at patch 16)"},
    {"train-blocks", 0, "S",
     "cached mode: the train split is cut into S blocks of whole forward\n"
     "batches, the unit the ranks share and of one gradient, summed exactly\n"
     "(default 8: up to 8 ranks share the training; each block costs one\n"
     "pass over the classifiers per iteration)"},
    {"train", 0, "N", "use N evenly spaced train images (default: all)"},
    {"val", 0, "N", "use N evenly spaced val images (default: all)"},
    {"backend", 0, "NAME", "cpu (default) or cuda"},
    {"dtype", 0, "DT", "compute dtype: f32 (default) or bf16 (cuda)"},
    {"save-features", 0, NULL,
     "also write DIR/linear_<i>_<net>.h5: the features, the order of the\n"
     "training images, the initial and final classifiers\n"
     "(hdf5-schemas/linear-features.md)"},
};
static const int n_options = (int) (sizeof options / sizeof options[0]);

static const poa_cli_spec spec = {
    .program = PROGRAM,
    .summary =
        "       poa-eval-linear --checkpoint FILE... --data PACKED --output DIR [options]\n"
        "Linear probe (POA protocol): the frozen network's outputs after 4 of its blocks\n"
        "(round(L/4*i), i = 1, 2, 3, and L-1) through the final norm; linear classifiers on the\n"
        "class tokens of the last n in {1, 4} of them, with or without the mean patch token,\n"
        "for every learning rate: 52 classifiers trained at once with SGD (momentum 0.9, cosine\n"
        "to 0); the best on the val split is reported (top-1, top-5).\n"
        "The default --mode cached computes the train features once without augmentation, which\n"
        "is what makes the probe affordable on CPUs (minutes for Fashion-MNIST on 2 cores, where\n"
        "--mode augmented, the official protocol, runs the network on every training batch).\n"
        "Under mpiexec/srun the ranks share the images and sum the classifiers' gradients\n"
        "exactly (fixed point); the results do not depend on the number of ranks.",
    .options = options,
    .n_options = n_options,
    .positional = "CHECKPOINT...",
    .epilog =
        "Output: a table on stdout; DIR/results_eval_linear.json, one JSON object per line per\n"
        "network (checkpoint, iteration, network = teacher|student|<W>x<D>|pixels, width,\n"
        "depth, top1, top5 in percent of the best classifier, its n_blocks, avgpool, lr,\n"
        "iterations, ..., and \"classifiers\": every classifier's setting and accuracy).\n"
        "Exit codes: 0 ok, 1 non-finite features, 2 bad command line (unknown option, a size\n"
        "the run does not have, a crop that is not a multiple of the patch size), 3 missing,\n"
        "corrupt or mismatched checkpoint or data set, 4 an output file could not be written.",
};

/* ------------------------------------------------------------------ arguments */

typedef enum { MODE_CACHED = 0, MODE_AUGMENTED = 1 } train_mode;

typedef struct linear_args {
    poa_cli cli;
    poa_tool_eval_args ev; /* the options every evaluation program has */
    train_mode mode;
    int epochs, epoch_length, iterations, batch_size;
    int n_lr;
    double lr[POA_LINEAR_MAX_LRS];
    long seed;
    int train_blocks, n_train, n_val;
} linear_args;

/* The --lr list; -1 on success, else the exit code.  Unlike --subnet and --arch
 * (poa_tool_each_item), a list that names nothing is an error only when no --lr before it
 * named a rate. */
static int parse_lrs(linear_args *a, const char *arg)
{
    char *copy = poa_xstrdup(arg), *save = NULL;
    int rc = -1;
    for (char *t = strtok_r(copy, ",", &save); t && rc < 0; t = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        const double v = strtod(t, &end);
        if (end == t || *end || !(v > 0) || !isfinite(v))
            rc = poa_cli_usage_error(&spec, "--lr '%s': expected positive numbers", t);
        else if (a->n_lr == POA_LINEAR_MAX_LRS)
            rc = poa_cli_usage_error(&spec, "--lr: at most %d values", POA_LINEAR_MAX_LRS);
        else
            a->lr[a->n_lr++] = v;
    }
    if (rc < 0 && a->n_lr == 0) rc = poa_cli_usage_error(&spec, "--lr '%s' names nothing", arg);
    free(copy);
    return rc;
}

static int parse_numbers(linear_args *a)
{
    poa_err err;
    if (poa_cli_int(&a->cli, &spec, "epochs", 10, 1, 1 << 20, &a->epochs, &err) ||
        poa_cli_int(&a->cli, &spec, "epoch-length", 0, 1, 1 << 30, &a->epoch_length, &err) ||
        poa_cli_int(&a->cli, &spec, "iterations", 0, 1, 1 << 30, &a->iterations, &err) ||
        poa_cli_int(&a->cli, &spec, "batch-size", 256, 1, 1 << 20, &a->batch_size, &err) ||
        poa_cli_long(&a->cli, &spec, "seed", 0, 0, 2147483647L, &a->seed, &err) ||
        poa_cli_int(&a->cli, &spec, "train-blocks", 8, 1, 4096, &a->train_blocks, &err) ||
        poa_cli_int(&a->cli, &spec, "train", 0, 1, 1 << 30, &a->n_train, &err) ||
        poa_cli_int(&a->cli, &spec, "val", 0, 1, 1 << 30, &a->n_val, &err))
        return poa_cli_usage_error(&spec, "%s", err.msg);
    return -1;
}

/* --mode. */
static int parse_mode(linear_args *a)
{
    const char *mode = poa_cli_value(&a->cli, &spec, "mode");
    a->mode = MODE_CACHED;
    if (mode && strcmp(mode, "augmented") == 0)
        a->mode = MODE_AUGMENTED;
    else if (mode && strcmp(mode, "cached") != 0)
        return poa_cli_usage_error(&spec, "--mode '%s': expected cached or augmented", mode);
    return -1;
}

/* The command line into a.  -1: go on; else the exit code (0 after --help / --version). */
static int parse_args(int argc, char **argv, linear_args *a)
{
    int rc = poa_cli_main_setup(&spec, argc, argv, &a->cli, NULL, 1, &(poa_err){0});
    if (rc >= 0) return rc;
    if ((rc = poa_tool_parse_eval_args(&spec, &a->cli, &a->ev)) >= 0 || (rc = parse_mode(a)) >= 0)
        return rc;
    a->ev.ask.max_blocks = POA_LINEAR_BLOCKS; /* the features of the kept blocks */
    for (int k = 0; k < a->cli.n_given; k++)
        if (strcmp(options[a->cli.given_option[k]].name, "lr") == 0)
            if ((rc = parse_lrs(a, a->cli.given[k])) >= 0) return rc;
    if (a->n_lr == 0) {
        a->n_lr = 13;
        memcpy(a->lr, poa_linear_default_lrs, sizeof poa_linear_default_lrs);
    }
    if ((rc = parse_numbers(a)) >= 0) return rc;
    if (a->iterations &&
        (poa_cli_value(&a->cli, &spec, "epochs") || poa_cli_value(&a->cli, &spec, "epoch-length")))
        return poa_cli_usage_error(&spec, "--iterations replaces --epochs and --epoch-length: "
                                          "give one or the other");
    return -1;
}

/* ------------------------------------------------------------------ state */

typedef struct network {
    poa_tool_net id;
    int width;                    /* backbone width d, or the pixel count              */
    int pos[POA_LINEAR_BLOCKS];   /* kept blocks (backbones)                           */
    poa_linear c;                 /* the classifiers                                   */
    float *train;                 /* cached mode: this rank's train rows [tr_hi − tr_lo, row] */
    float *val;                   /* this rank's val rows [va_hi − va_lo, row]         */
    float *init;                  /* --save-features: the initial parameters           */
    float *loss;                  /* [classifiers] mean loss of the last iteration     */
    int64_t *correct1, *correct5; /* [classifiers] on the val split                   */
    int best;
} network;

typedef struct eval_state {
    const linear_args *a;
    poa_comm *comm;
    poa_model_source src[POA_TOOL_MAX_SOURCES];
    poa_features *feat[POA_TOOL_MAX_SOURCES];
    poa_tool_models m; /* the sources (src, feat above), transform and batch */
    int n_net;
    network net[MAX_NETWORKS];
    poa_eval_reader *train, *val;
    int n_classes;
    int64_t n_tr, n_va;   /* images used */
    int64_t block;        /* train images per block (cached mode; whole forward batches) */
    int64_t tr_lo, tr_hi; /* this rank's train images (cached mode: whole blocks) */
    int64_t va_lo, va_hi; /* this rank's val images */
    int32_t *tr_labels;   /* all train labels */
    int32_t *va_labels;   /* all val labels */
    int64_t iterations;   /* T */
    int B;                /* --batch-size */
    int64_t *order;       /* --save-features: [T · B] the images of every iteration */
    double features_s, train_s;
} eval_state;

static int cached(const eval_state *s)
{
    return s->a->mode == MODE_CACHED;
}

/* Floats of a network's feature row. */
static int row_of(const network *n)
{
    return n->id.source >= 0 ? POA_LINEAR_BLOCKS * n->width + n->width : n->width;
}

/* ------------------------------------------------------------------ models and data */

static int open_models(eval_state *s)
{
    const linear_args *a = s->a;
    s->m.src = s->src, s->m.feat = s->feat;
    poa_tool_net *nets = poa_xmalloc(sizeof *nets * MAX_NETWORKS);
    int code =
        poa_tool_open_models(PROGRAM, &spec, &a->ev.ask, &s->m, nets, MAX_NETWORKS, &s->n_net);
    for (int i = 0; i < s->n_net && !code; i++) {
        network *n = &s->net[i];
        memset(n, 0, sizeof *n);
        n->id = nets[i];
        n->width = n->id.source >= 0 ? n->id.sn.width : 3 * s->m.t.crop * s->m.t.crop;
        if (n->id.source >= 0) poa_linear_block_positions(n->id.sn.depth, n->pos);
    }
    free(nets);
    return code;
}

/* [lo, hi) of rank r's images of a split of n, in whole units of `unit` images. */
static void rank_images(int64_t n, int64_t unit, int r, int64_t *lo, int64_t *hi)
{
    const int64_t n_b = (n + unit - 1) / unit;
    poa_tool_share(n_b, r, poa_log_world_size(), lo, hi);
    *lo *= unit;
    *hi = *hi * unit < n ? *hi * unit : n;
}

static int open_data(eval_state *s)
{
    const linear_args *a = s->a;
    poa_err err = {0};
    int code = poa_tool_open_splits(PROGRAM, a->ev.data, &s->m.t, a->n_train, a->n_val, &s->train,
                                    &s->val);
    if (code) return code;
    s->n_classes = poa_eval_reader_classes(s->train);
    s->n_tr = poa_eval_reader_count(s->train), s->n_va = poa_eval_reader_count(s->val);
    const int64_t per_block = (s->n_tr + a->train_blocks - 1) / a->train_blocks;
    s->block = ((per_block + s->m.batch - 1) / s->m.batch) * (int64_t) s->m.batch;
    rank_images(s->n_tr, s->block, poa_log_rank(), &s->tr_lo, &s->tr_hi);
    rank_images(s->n_va, s->m.batch, poa_log_rank(), &s->va_lo, &s->va_hi);
    s->tr_labels = poa_xmalloc(sizeof(int32_t) * (size_t) s->n_tr);
    s->va_labels = poa_xmalloc(sizeof(int32_t) * (size_t) s->n_va);
    POA_CHECK(poa_eval_reader_labels(s->train, 0, s->n_tr, s->tr_labels, &err) == POA_OK, "%s",
              err.msg);
    POA_CHECK(poa_eval_reader_labels(s->val, 0, s->n_va, s->va_labels, &err) == POA_OK, "%s",
              err.msg);
    s->B = a->batch_size;
    const int64_t epoch = a->epoch_length      ? a->epoch_length
                          : s->n_tr / s->B > 0 ? s->n_tr / s->B
                                               : 1;
    s->iterations = a->iterations ? a->iterations : epoch * a->epochs;
    return 0;
}

/* The classifiers of every network: the same seed for all (the official probe seeds each run
 * alike); rows per call: the batch size, at most 1024. */
static void create_classifiers(eval_state *s)
{
    const linear_args *a = s->a;
    const int rows = s->B < 1024 ? s->B : 1024;
    for (int i = 0; i < s->n_net; i++) {
        network *n = &s->net[i];
        if (n->id.source >= 0)
            poa_linear_init_blocks(&n->c, n->width, s->n_classes, a->lr, a->n_lr, s->B / 256.0,
                                   rows, (uint64_t) a->seed);
        else
            poa_linear_init_pixels(&n->c, n->width, s->n_classes, a->lr, a->n_lr, s->B / 256.0,
                                   rows, (uint64_t) a->seed);
        const int K = poa_linear_count(&n->c);
        n->loss = poa_xcalloc((size_t) K, sizeof(float));
        n->correct1 = poa_xcalloc((size_t) K, sizeof(int64_t));
        n->correct5 = poa_xcalloc((size_t) K, sizeof(int64_t));
        if (a->ev.save) {
            n->init = poa_xmalloc(sizeof(float) * n->c.n_params);
            memcpy(n->init, n->c.params, sizeof(float) * n->c.n_params);
        }
    }
}

/* ------------------------------------------------------------------ features */

/* Feature rows [b, row] of network n for b images (pixels [b, 3, crop, crop]); scratch holds
 * b · 4 · d floats.  0, or POA_EXIT_FAILURE after the message. */
static int feature_rows(eval_state *s, network *n, const float *pixels, int b, float *rows,
                        float *scratch)
{
    const int row = row_of(n), d = n->width;
    if (n->id.source < 0) {
        memcpy(rows, pixels, sizeof(float) * (size_t) b * d);
    } else {
        poa_err err;
        float *mean = scratch + (size_t) b * POA_LINEAR_BLOCKS * d;
        poa_status st =
            poa_features_run_blocks(s->m.feat[n->id.source], &n->id.sn, pixels, b, s->m.t.crop,
                                    s->m.t.crop, n->pos, POA_LINEAR_BLOCKS, scratch, mean, &err);
        if (st) {
            poa_error(PROGRAM ": %s", err.msg);
            return POA_EXIT_FAILURE;
        }
        for (int j = 0; j < b; j++) {
            float *r = rows + (size_t) j * row;
            memcpy(r, scratch + (size_t) j * POA_LINEAR_BLOCKS * d,
                   sizeof(float) * POA_LINEAR_BLOCKS * d);
            memcpy(r + POA_LINEAR_BLOCKS * d, mean + (size_t) j * d, sizeof(float) * d);
        }
    }
    for (size_t k = 0; k < (size_t) b * row; k++)
        if (!isfinite(rows[k])) {
            poa_error(PROGRAM ": %s %s: non-finite features (image %zu of a batch of %d): the "
                              "weights are broken",
                      n->id.source >= 0 ? s->m.src[n->id.source].path : "", n->id.name, k / row, b);
            return POA_EXIT_FAILURE;
        }
    return 0;
}

static size_t scratch_floats(const eval_state *s)
{
    size_t most = 1;
    for (int i = 0; i < s->n_net; i++) {
        const size_t f = (size_t) s->m.batch * (POA_LINEAR_BLOCKS + 1) * s->net[i].width;
        most = f > most ? f : most;
    }
    return most;
}

/* This rank's share of the val split (and, cached, of the train split) through every network,
 * one forward batch at a time. */
static int extract_features(eval_state *s)
{
    const int B = s->m.batch;
    const int64_t n_tr = cached(s) ? s->tr_hi - s->tr_lo : 0, n_va = s->va_hi - s->va_lo;
    for (int i = 0; i < s->n_net; i++) {
        network *n = &s->net[i];
        const size_t row = (size_t) row_of(n);
        n->train = n_tr ? poa_xmalloc(sizeof(float) * (size_t) n_tr * row) : NULL;
        n->val = poa_xmalloc(sizeof(float) * (size_t) (n_va > 0 ? n_va : 1) * row);
    }
    float *pixels = poa_xmalloc(sizeof(float) * (size_t) B * 3 * s->m.t.crop * s->m.t.crop);
    float *scratch = poa_xmalloc(sizeof(float) * scratch_floats(s));
    poa_progress pr;
    char what[96];
    snprintf(what, sizeof what, "features (%d network%s%s)", s->n_net, s->n_net > 1 ? "s" : "",
             poa_log_world_size() > 1 ? ", rank 0's share" : "");
    poa_progress_begin(&pr, what, n_tr + n_va, 10.0);
    int code = 0;
    int64_t done = 0;
    for (int split = cached(s) ? 0 : 1; split < 2 && !code; split++) {
        poa_eval_reader *r = split == 0 ? s->train : s->val;
        const int64_t lo = split == 0 ? s->tr_lo : s->va_lo, hi = split == 0 ? s->tr_hi : s->va_hi;
        for (int64_t p = lo; p < hi && !code; p += B) {
            const int b = hi - p < B ? (int) (hi - p) : B;
            poa_err err;
            if (poa_eval_reader_read(r, p, b, pixels, NULL, &err) != POA_OK) {
                poa_error(PROGRAM ": %s", err.msg);
                code = POA_EXIT_DATA;
                break;
            }
            for (int i = 0; i < s->n_net && !code; i++) {
                network *n = &s->net[i];
                float *dst = (split == 0 ? n->train : n->val) + (size_t) (p - lo) * row_of(n);
                code = feature_rows(s, n, pixels, b, dst, scratch);
            }
            done += b;
            poa_progress_update(&pr, done, NULL);
        }
    }
    poa_progress_end(&pr, done, NULL);
    free(pixels);
    free(scratch);
    return poa_tool_agree(code);
}

/* ------------------------------------------------------------------ training */

/* Rows x [rows, row] with their labels through network n's classifiers, max_rows at a time. */
static void accumulate(eval_state *s, network *n, const float *x, int rows, const int32_t *labels)
{
    const int step = n->c.max_rows, row = row_of(n);
    for (int r = 0; r < rows; r += step) {
        const int m = rows - r < step ? rows - r : step;
        poa_linear_accumulate(&n->c, x + (size_t) r * row, m, labels + r, 1.0f / (float) s->B);
    }
}

/* Cached mode: the rows of batch `images` that this rank holds, one poa_linear_accumulate per
 * train block (its rows in batch order): the same calls whatever the number of ranks. */
static void accumulate_cached(eval_state *s, const int64_t *images, float *x, int32_t *labels,
                              int64_t *mine)
{
    const int64_t b_lo = s->tr_lo / s->block, b_hi = (s->tr_hi + s->block - 1) / s->block;
    for (int64_t blk = b_lo; blk < b_hi; blk++) {
        int rows = 0;
        for (int j = 0; j < s->B; j++)
            if (images[j] / s->block == blk) mine[rows++] = images[j];
        for (int i = 0; i < s->n_net && rows; i++) {
            network *n = &s->net[i];
            const size_t row = (size_t) row_of(n);
            for (int j = 0; j < rows; j++) {
                memcpy(x + j * row, n->train + (size_t) (mine[j] - s->tr_lo) * row,
                       sizeof(float) * row);
                labels[j] = s->tr_labels[mine[j]];
            }
            accumulate(s, n, x, rows, labels);
        }
    }
}

/* Augmented mode: this rank's fixed forward batches of the iteration's batch, read with the
 * training transform (keys: the images' places in the training stream) and run through every
 * network.  0 or an exit code. */
static int accumulate_augmented(eval_state *s, int64_t t, const int64_t *images, float *pixels,
                                float *x, int32_t *labels, float *scratch)
{
    const int64_t n_fb = (s->B + s->m.batch - 1) / s->m.batch;
    int64_t lo, hi;
    poa_tool_share(n_fb, poa_log_rank(), poa_log_world_size(), &lo, &hi);
    uint64_t *keys = poa_xmalloc(sizeof(uint64_t) * (size_t) s->m.batch);
    int code = 0;
    for (int64_t f = lo; f < hi && !code; f++) {
        const int p0 = (int) (f * s->m.batch), b = s->B - p0 < s->m.batch ? s->B - p0 : s->m.batch;
        for (int j = 0; j < b; j++) keys[j] = (uint64_t) (t * s->B + p0 + j);
        const poa_eval_augment aug = {(uint64_t) s->a->seed, keys};
        poa_err err;
        if (poa_eval_reader_read_list(s->train, images + p0, b, &aug, pixels, labels, &err)) {
            poa_error(PROGRAM ": %s", err.msg);
            code = POA_EXIT_DATA;
            break;
        }
        for (int i = 0; i < s->n_net && !code; i++) {
            network *n = &s->net[i];
            code = feature_rows(s, n, pixels, b, x, scratch);
            if (!code) accumulate(s, n, x, b, labels);
        }
    }
    free(keys);
    return code;
}

/* The gradients summed over the ranks (exactly: fixed-point int64), then one step of every
 * classifier. */
static void step_all(eval_state *s, int64_t t)
{
    for (int i = 0; i < s->n_net; i++) {
        network *n = &s->net[i];
        size_t len;
        int64_t *sums = poa_linear_sums(&n->c, &len);
        poa_comm_host_allreduce_sum_i64(s->comm, sums, len);
        poa_linear_step(&n->c, poa_linear_cosine(t, s->iterations));
        const int K = poa_linear_count(&n->c);
        for (int k = 0; k < K; k++) n->loss[k] = (float) (n->c.loss_sum[k] / s->B);
    }
}

/* Progress text: the first network's summed loss (the official "loss"). */
static void loss_text(const eval_state *s, char *buf, size_t len)
{
    const network *n = &s->net[0];
    double sum = 0;
    for (int k = 0; k < poa_linear_count(&n->c); k++) sum += n->loss[k];
    snprintf(buf, len, "%s loss %.4g", n->id.name, sum);
}

static int train(eval_state *s)
{
    size_t most_row = 1;
    for (int i = 0; i < s->n_net; i++)
        most_row = (size_t) row_of(&s->net[i]) > most_row ? (size_t) row_of(&s->net[i]) : most_row;
    const int x_rows = cached(s) ? s->B : s->m.batch;
    float *x = poa_xmalloc(sizeof(float) * most_row * (size_t) x_rows);
    int32_t *labels =
        poa_xmalloc(sizeof(int32_t) * (size_t) (s->B > s->m.batch ? s->B : s->m.batch));
    float *pixels =
        cached(s)
            ? NULL
            : poa_xmalloc(sizeof(float) * (size_t) s->m.batch * 3 * s->m.t.crop * s->m.t.crop);
    float *scratch = cached(s) ? NULL : poa_xmalloc(sizeof(float) * scratch_floats(s));
    int64_t *images = poa_xmalloc(sizeof(int64_t) * (size_t) s->B);
    int64_t *mine = poa_xmalloc(sizeof(int64_t) * (size_t) s->B);
    poa_linear_order order;
    poa_linear_order_init(&order, s->n_tr, (uint64_t) s->a->seed);
    if (s->a->ev.save) s->order = poa_xmalloc(sizeof(int64_t) * (size_t) (s->iterations * s->B));
    poa_progress pr;
    char what[64], extra[96];
    snprintf(what, sizeof what, "training (%s)", cached(s) ? "cached features" : "augmented");
    poa_progress_begin(&pr, what, s->iterations, 10.0);
    int code = 0;
    for (int64_t t = 0; t < s->iterations && !code; t++) {
        poa_linear_batch(&order, t, s->B, images);
        if (s->order) memcpy(s->order + t * s->B, images, sizeof(int64_t) * (size_t) s->B);
        for (int i = 0; i < s->n_net; i++) poa_linear_zero_grad(&s->net[i].c);
        if (cached(s))
            accumulate_cached(s, images, x, labels, mine);
        else
            code = accumulate_augmented(s, t, images, pixels, x, labels, scratch);
        if ((code = poa_tool_agree(code))) break;
        step_all(s, t);
        loss_text(s, extra, sizeof extra);
        poa_progress_update(&pr, t + 1, extra);
    }
    poa_progress_end(&pr, s->iterations, code ? NULL : extra);
    poa_linear_order_free(&order);
    free(images);
    free(mine);
    free(x);
    free(labels);
    free(pixels);
    free(scratch);
    return code;
}

/* Every classifier on the val split (each rank its share, the counts summed), the best one;
 * and the check that every rank holds the same classifiers. */
static void evaluate(eval_state *s)
{
    for (int i = 0; i < s->n_net; i++) {
        network *n = &s->net[i];
        const int K = poa_linear_count(&n->c), step = n->c.max_rows, row = row_of(n);
        POA_CHECK(poa_comm_check_identical_host(s->comm, n->c.params, sizeof(float) * n->c.n_params,
                                                NULL),
                  "the ranks' classifiers of %s differ after training", n->id.name);
        for (int64_t p = s->va_lo; p < s->va_hi; p += step) {
            const int m = s->va_hi - p < step ? (int) (s->va_hi - p) : step;
            poa_linear_score(&n->c, n->val + (size_t) (p - s->va_lo) * row, m, s->va_labels + p,
                             n->correct1, n->correct5);
        }
        poa_comm_host_allreduce_sum_i64(s->comm, n->correct1, (size_t) K);
        poa_comm_host_allreduce_sum_i64(s->comm, n->correct5, (size_t) K);
        n->best = poa_linear_best(&n->c, n->correct1);
    }
}

/* ------------------------------------------------------------------ --save-features */

/* Rank 0 gathers a split's rows of network n (each rank's contiguous share, in units of
 * `unit` images) into all. */
static void gather_rows(const network *n, const float *mine, int64_t total, int64_t unit,
                        float *all)
{
    const int P = poa_log_world_size(), row = row_of(n);
    int *counts = poa_xmalloc(sizeof(int) * P), *displs = poa_xmalloc(sizeof(int) * P);
    for (int r = 0; r < P; r++) {
        int64_t lo, hi;
        rank_images(total, unit, r, &lo, &hi);
        POA_CHECK((hi - lo) * row <= INT32_MAX && lo * row <= INT32_MAX,
                  "features of %s too large for one MPI call", n->id.name);
        counts[r] = (int) ((hi - lo) * row), displs[r] = (int) (lo * row);
    }
    MPI_Gatherv(mine, counts[poa_log_rank()], MPI_FLOAT, all, counts, displs, MPI_FLOAT, 0,
                MPI_COMM_WORLD);
    free(counts);
    free(displs);
}

static poa_status write_u64(hid_t g, const char *name, const int64_t *v64, const int32_t *v,
                            size_t n, poa_err *err)
{
    uint64_t *u = poa_xmalloc(sizeof(uint64_t) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) u[i] = (uint64_t) (v64 ? v64[i] : v[i]);
    poa_status st = poa_h5_write_u64(g, name, u, n, err);
    free(u);
    return st;
}

static poa_status write_split(hid_t f, const char *name, const network *n, const float *rows,
                              int64_t count, const int32_t *labels, const int64_t *order,
                              int64_t n_order, poa_err *err)
{
    hid_t g = poa_h5_create_group(f, name);
    if (g < 0) return poa_err_set(err, POA_ERR_IO, "cannot create /%s", name);
    const int64_t dims[2] = {count, row_of(n)};
    poa_status st = rows ? poa_h5_write_f32(g, "features", 2, dims, rows, err) : POA_OK;
    if (!st) st = write_u64(g, "labels", NULL, labels, (size_t) count, err);
    if (!st && order) st = write_u64(g, "order", order, NULL, (size_t) n_order, err);
    H5Gclose(g);
    return st;
}

static poa_status write_classifiers(hid_t f, const eval_state *s, const network *n, poa_err *err)
{
    hid_t g = poa_h5_create_group(f, "classifiers");
    if (g < 0) return poa_err_set(err, POA_ERR_IO, "cannot create /classifiers");
    const int K = poa_linear_count(&n->c);
    int64_t *v = poa_xmalloc(sizeof(int64_t) * 4 * (size_t) K);
    for (int k = 0; k < K; k++) {
        const poa_linear_input *in = poa_linear_input_of(&n->c, k);
        v[k] = in->n_blocks, v[K + k] = in->avgpool, v[2 * K + k] = in->offset;
        v[3 * K + k] = in->dim;
    }
    const int64_t dims[1] = {(int64_t) n->c.n_params};
    poa_status st = write_u64(g, "n_blocks", v, NULL, (size_t) K, err);
    if (!st) st = write_u64(g, "avgpool", v + K, NULL, (size_t) K, err);
    if (!st) st = write_u64(g, "offset", v + 2 * K, NULL, (size_t) K, err);
    if (!st) st = write_u64(g, "dim", v + 3 * K, NULL, (size_t) K, err);
    if (!st) st = poa_h5_write_f32(g, "init", 1, dims, n->init, err);
    if (!st) st = poa_h5_write_f32(g, "final", 1, dims, n->c.params, err);
    if (!st) st = poa_h5_attr_write_f64(g, "lr_scale", s->B / 256.0, err);
    free(v);
    H5Gclose(g);
    return st;
}

static poa_status write_attributes(hid_t f, const eval_state *s, const network *n, poa_err *err)
{
    int64_t blocks[POA_LINEAR_BLOCKS];
    for (int j = 0; j < POA_LINEAR_BLOCKS; j++) blocks[j] = n->pos[j];
    poa_status st = poa_h5_attr_write_string(f, "format", "poa-linear-features", err);
    if (!st) st = poa_h5_attr_write_i64(f, "format_version", 1, err);
    if (!st) st = poa_h5_attr_write_string(f, "network", n->id.name, err);
    if (!st) st = poa_h5_attr_write_string(f, "mode", cached(s) ? "cached" : "augmented", err);
    if (!st) st = poa_h5_attr_write_i64(f, "width", n->id.source >= 0 ? n->width : 0, err);
    if (!st) st = poa_h5_attr_write_i64(f, "row", row_of(n), err);
    if (!st) st = poa_h5_attr_write_i64(f, "n_classes", s->n_classes, err);
    if (!st) st = poa_h5_attr_write_i64(f, "iterations", s->iterations, err);
    if (!st) st = poa_h5_attr_write_i64(f, "batch_size", s->B, err);
    if (!st) st = poa_h5_attr_write_i64(f, "seed", s->a->seed, err);
    if (!st && n->id.source >= 0)
        st = poa_h5_attr_write_i64_array(f, "blocks", blocks, POA_LINEAR_BLOCKS, err);
    return st;
}

/* What one --save-features file holds: network n's rows of the train (cached mode) and val
 * splits, gathered by rank 0. */
typedef struct saved_network {
    const eval_state *s;
    const network *n;
    const float *train, *val;
} saved_network;

static poa_status fill_network(hid_t f, void *ctx, poa_err *err)
{
    const saved_network *sv = ctx;
    const eval_state *s = sv->s;
    const network *n = sv->n;
    poa_status st = write_attributes(f, s, n, err);
    if (!st)
        st = write_split(f, "train", n, sv->train, s->n_tr, s->tr_labels, s->order,
                         s->iterations * s->B, err);
    if (!st) st = write_split(f, "val", n, sv->val, s->n_va, s->va_labels, NULL, 0, err);
    if (!st) st = write_classifiers(f, s, n, err);
    return st;
}

/* The bytes of the datasets fill_network writes. */
static uint64_t saved_bytes(const eval_state *s, const network *n, int with_train)
{
    const uint64_t row = (uint64_t) row_of(n) * sizeof(float);
    const uint64_t rows = (uint64_t) (with_train ? s->n_tr : 0) + (uint64_t) s->n_va;
    const uint64_t labels = (uint64_t) (s->n_tr + s->n_va + s->iterations * s->B);
    const uint64_t classifiers = 4 * (uint64_t) poa_linear_count(&n->c) * sizeof(uint64_t) +
                                 2 * (uint64_t) n->c.n_params * sizeof(float);
    return rows * row + labels * sizeof(uint64_t) + classifiers;
}

/* DIR/linear_<i>_<name>.h5 (hdf5-schemas/linear-features.md), written by rank 0. */
static int save_network(const eval_state *s, int i, const float *train, const float *val)
{
    const network *n = &s->net[i];
    char path[POA_IO_PATH_MAX];
    snprintf(path, sizeof path, "%s/linear_%d_%s.h5", s->a->ev.output, i, n->id.name);
    saved_network sv = {s, n, train, val};
    const uint64_t bound = poa_h5_size_bound(saved_bytes(s, n, train != NULL), 11, 0);
    poa_err err = {0};
    if (poa_h5_write_atomic(path, "", bound, fill_network, &sv, &err)) {
        poa_error(PROGRAM ": %s", err.msg);
        return POA_EXIT_IO;
    }
    poa_info(PROGRAM ": wrote %s", path);
    return 0;
}

static int save_features(const eval_state *s)
{
    const int root = poa_log_rank() == 0;
    int code = 0;
    for (int i = 0; i < s->n_net; i++) {
        const network *n = &s->net[i];
        const size_t row = (size_t) row_of(n);
        float *train =
            root && cached(s) ? poa_xmalloc(sizeof(float) * (size_t) s->n_tr * row) : NULL;
        float *val = root ? poa_xmalloc(sizeof(float) * (size_t) s->n_va * row) : NULL;
        if (cached(s)) gather_rows(n, n->train, s->n_tr, s->block, train);
        gather_rows(n, n->val, s->n_va, s->m.batch, val);
        if (root && !code) code = save_network(s, i, train, val);
        free(train);
        free(val);
    }
    return poa_tool_agree(code);
}

/* ------------------------------------------------------------------ output */

static double pct(int64_t correct, int64_t n)
{
    return 100.0 * (double) correct / (double) n;
}

static void print_table(const eval_state *s)
{
    printf("\nlinear probe on %s: %lld train / %lld val images, %d classes, %dx%d crop (resize "
           "%d), %s, %lld iterations of %d images\n",
           s->a->ev.data, (long long) s->n_tr, (long long) s->n_va, s->n_classes, s->m.t.crop,
           s->m.t.crop, s->m.t.resize, cached(s) ? "cached features" : "augmented",
           (long long) s->iterations, s->B);
    printf("%-10s %6s %6s %8s %8s %3s %7s %10s  %s\n", "network", "width", "depth", "top-1",
           "top-5", "n", "avgpool", "lr", "checkpoint (iteration)");
    for (int i = 0; i < s->n_net; i++) {
        const network *n = &s->net[i];
        const poa_linear_input *in = poa_linear_input_of(&n->c, n->best);
        const double t1 = pct(n->correct1[n->best], s->n_va),
                     t5 = pct(n->correct5[n->best], s->n_va);
        const double lr = poa_linear_lr_of(&n->c, n->best);
        if (n->id.source >= 0)
            printf("%-10s %6d %6d %7.2f%% %7.2f%% %3d %7s %10.4g  %s (%lld)\n", n->id.name,
                   n->id.sn.width, n->id.sn.depth, t1, t5, in->n_blocks, in->avgpool ? "yes" : "no",
                   lr, s->m.src[n->id.source].path, (long long) s->m.src[n->id.source].iteration);
        else
            printf("%-10s %6s %6s %7.2f%% %7.2f%% %3s %7s %10.4g  -\n", n->id.name, "-", "-", t1,
                   t5, "-", "-", lr);
    }
    fflush(stdout);
}

/* v with the fewest digits that read back as the same double (1e-05, 0.025). */
static void json_double(FILE *f, double v)
{
    char buf[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, f);
}

static void write_classifier_list(FILE *f, const eval_state *s, const network *n)
{
    fputs(", \"classifiers\": [", f);
    for (int k = 0; k < poa_linear_count(&n->c); k++) {
        const poa_linear_input *in = poa_linear_input_of(&n->c, k);
        fprintf(f, "%s{\"n_blocks\": %d, \"avgpool\": %s, \"lr\": ", k ? ", " : "", in->n_blocks,
                in->avgpool ? "true" : "false");
        json_double(f, poa_linear_lr_of(&n->c, k));
        fputs(", \"rate\": ", f);
        json_double(f, poa_linear_rate_of(&n->c, k));
        fprintf(f, ", \"top1\": %.4f, \"top5\": %.4f, \"loss\": %.9g}",
                pct(n->correct1[k], s->n_va), pct(n->correct5[k], s->n_va), (double) n->loss[k]);
    }
    fputs("]", f);
}

static void write_json(FILE *f, const void *ctx)
{
    const eval_state *s = ctx;
    for (int i = 0; i < s->n_net; i++) {
        const network *n = &s->net[i];
        const poa_model_source *src = n->id.source >= 0 ? &s->m.src[n->id.source] : NULL;
        const poa_linear_input *in = poa_linear_input_of(&n->c, n->best);
        fputs("{\"checkpoint\": ", f);
        if (src) {
            poa_tool_json_string(f, src->path);
            fprintf(f, ", \"iteration\": %lld, ", (long long) src->iteration);
        } else {
            fputs("null, \"iteration\": null, ", f);
        }
        fputs("\"network\": ", f);
        poa_tool_json_string(f, n->id.name);
        if (src)
            fprintf(f, ", \"width\": %d, \"depth\": %d, \"blocks\": [%d, %d, %d, %d]",
                    n->id.sn.width, n->id.sn.depth, n->pos[0], n->pos[1], n->pos[2], n->pos[3]);
        else
            fputs(", \"width\": null, \"depth\": null, \"blocks\": null", f);
        fprintf(f, ", \"top1\": %.4f, \"top5\": %.4f, \"n_blocks\": %d, \"avgpool\": %s, \"lr\": ",
                pct(n->correct1[n->best], s->n_va), pct(n->correct5[n->best], s->n_va),
                in->n_blocks, in->avgpool ? "true" : "false");
        json_double(f, poa_linear_lr_of(&n->c, n->best));
        fputs(", \"rate\": ", f);
        json_double(f, poa_linear_rate_of(&n->c, n->best));
        fprintf(f,
                ", \"iterations\": %lld, \"batch_size\": %d, \"mode\": \"%s\", \"seed\": %ld, "
                "\"n_train\": %lld, \"n_val\": %lld, \"crop\": %d, \"resize\": %d",
                (long long) s->iterations, s->B, cached(s) ? "cached" : "augmented", s->a->seed,
                (long long) s->n_tr, (long long) s->n_va, s->m.t.crop, s->m.t.resize);
        write_classifier_list(f, s, n);
        fputs("}\n", f);
    }
}

static int write_results(const eval_state *s)
{
    if (poa_log_rank() != 0) return poa_tool_agree(0);
    print_table(s);
    char path[POA_IO_PATH_MAX];
    int code = poa_tool_write_file(PROGRAM, s->a->ev.output, "results_eval_linear.json", write_json,
                                   s, path);
    if (!code) poa_info(PROGRAM ": wrote %s", path);
    return poa_tool_agree(code);
}

/* ------------------------------------------------------------------ main */

static void print_plan(const eval_state *s)
{
    const linear_args *a = s->a;
    poa_info(PROGRAM
             " %s: %d network(s) on %s (%lld train / %lld val images, %d classes), crop "
             "%d resize %d, %s, %lld iterations of %d images (%d learning rates x %d inputs), "
             "batch %d per forward, seed %ld, %d rank(s)",
             PACKAGE_VERSION, s->n_net, a->ev.data, (long long) s->n_tr, (long long) s->n_va,
             s->n_classes, s->m.t.crop, s->m.t.resize, cached(s) ? "cached features" : "augmented",
             (long long) s->iterations, s->B, a->n_lr, s->n_net ? s->net[0].c.n_in : 0, s->m.batch,
             a->seed, poa_log_world_size());
    for (int i = 0; i < s->m.n_src; i++)
        poa_info("  [%d] %s: %s weights of iteration %lld", i, s->m.src[i].path,
                 poa_weights_from_name(s->m.src[i].from), (long long) s->m.src[i].iteration);
    for (int i = 0; i < s->n_net; i++)
        if (s->net[i].id.source >= 0)
            poa_info("  %s: blocks %d, %d, %d, %d of %d", s->net[i].id.name, s->net[i].pos[0],
                     s->net[i].pos[1], s->net[i].pos[2], s->net[i].pos[3], s->net[i].id.sn.depth);
}

static int run(void *args)
{
    const linear_args *a = args;
    /* MPI is up (poa_tool_main): the communicator only wraps MPI_COMM_WORLD */
    poa_comm *comm = poa_comm_init(NULL, NULL, POA_COMM_MPI);
    eval_state *s = poa_xcalloc(1, sizeof *s);
    s->a = a, s->comm = comm;
    int code = poa_tool_make_output_dir(PROGRAM, a->ev.output);
    if (!code) code = open_models(s);
    if (!code) code = open_data(s);
    if (!code) {
        create_classifiers(s);
        print_plan(s);
        double t0 = poa_now();
        code = extract_features(s);
        s->features_s = poa_now() - t0;
        if (!code) {
            poa_info(PROGRAM ": features in %.1f s", s->features_s);
            t0 = poa_now();
            code = train(s);
            s->train_s = poa_now() - t0;
        }
        if (!code) {
            poa_info(PROGRAM ": training in %.1f s", s->train_s);
            evaluate(s);
            if (a->ev.save) code = save_features(s);
        }
        if (!code) code = write_results(s);
    }
    for (int i = 0; i < s->n_net; i++) {
        network *n = &s->net[i];
        free(n->train), free(n->val), free(n->init), free(n->loss);
        free(n->correct1), free(n->correct5);
        poa_linear_free(&n->c);
    }
    poa_tool_close_models(&s->m);
    poa_eval_reader_close(s->train);
    poa_eval_reader_close(s->val);
    free(s->tr_labels);
    free(s->va_labels);
    free(s->order);
    free(s);
    poa_comm_finalize(comm);
    return code;
}

int main(int argc, char **argv)
{
    linear_args *a = poa_xcalloc(1, sizeof *a);
    int rc = parse_args(argc, argv, a);
    if (rc < 0) rc = poa_tool_main(&argc, &argv, PROGRAM, a->cli.verbose, run, a);
    poa_tool_free_eval_args(&a->ev);
    poa_cli_free(&a->cli);
    free(a);
    return rc;
}
