/* poa_eval_knn.c — poa-eval-knn: the k-NN evaluation of DINO / DINOv2 / POA on a packed data set
 * (docs/algorithm.md, "k-NN"), for any sub-networks of pretraining checkpoints, for extracted
 * models, and for the raw pixels.
 *   poa-eval-knn --checkpoint FILE... --data PACKED --output DIR
 *                [--subnet WxD | --arch NAME | --all-subnets] [--from teacher|student]
 *                [--pixels] [--k 10,20,100,200] [--resize N] [--crop N] [--train N] [--val N]
 * Options → open the models and the two splits → features of every network from the same image
 * batches (the ranks share the batches) → k-NN of the val split against the whole train split
 * (the ranks share the train features; their top-K lists are merged on rank 0) → results.
 *
 * Ranks: the train split is cut into fixed blocks of images and the val split into fixed
 * batches, whatever the number of ranks; each rank takes a contiguous run of them.  Every image
 * is therefore always computed in the same batch and every similarity by the same GEMM shape,
 * and the neighbour lists are merged in a total order (similarity, then index): the results do
 * not depend on the number of ranks (tests/eval/test_eval_knn.sh checks 1 against 2 ranks).
 */
#include "poa_config.h"
#include "common/atomic_io.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/timer.h"
#include "eval/images.h"
#include "eval/knn.h"
#include "io/h5util.h"
#include "modelio/features.h"
#include "modelio/model_source.h"
#include "tool/eval_args.h"
#include "tool/networks.h"
#include "tool/tool.h"

#include <math.h>
#include <mpi.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_NETWORKS 1024
#define BANK_BLOCK   2048 /* default --bank-block */
#define QUERY_CHUNK  256  /* val images per similarity GEMM                               */

static const poa_cli_option options[] = {
    {"checkpoint", 'c', "PATH",
     "pretraining checkpoint (checkpoint_<it>.h5, a teacher_checkpoint.h5,\n"
     "or a run directory: its newest), or an extracted vit_<W>x<D>.h5 /\n"
     ".safetensors (poa-extract); repeatable, more as positional arguments"},
    {"data", 'd', "DIR", "packed data set (poa-pack) with a train and a val split"},
    {"output", 'o', "DIR", "results directory (created): results_eval_knn.json, ..."},
    {"subnet", 's', "WxD",
     "a sub-network of the checkpoints: width x depth (repeatable, or a\n"
     "comma list; default: the intact network)"},
    {"arch", 'a', "NAME", "a named size: vit_small (384x12), vit_base, ... (repeatable)"},
    {"all-subnets", 0, NULL,
     "every elastic width x depth of the checkpoints; also writes\n"
     "knn_subnets.csv and a heatmap knn_subnets.png (tools/plot_knn.py)"},
    {"from", 0, "WHICH", "teacher (default: the EMA teacher) or student weights"},
    {"pixels", 0, NULL, "also the raw-pixel baseline: the same k-NN on the normalised pixels"},
    {"k", 'k', "LIST", "neighbour counts (default 10,20,100,200)"},
    {"temperature", 0, "T", "softmax temperature of the votes (default 0.07)"},
    {"resize", 0, "N",
     "shorter side before the centre crop (default: the crop below 224 px,\n"
     "crop x 256/224 from 224 px up)"},
    {"crop", 0, "N", "centre crop = model input side (default: the checkpoint's crop size)"},
    {"batch", 'b', "N",
     "images per forward (default: 8192 tokens, 8..256 images: 126 for\n"
     "32 px at patch 4, 41 for 224 px at patch 16)"},
    {"bank-block", 0, "N",
     "train images per similarity block, the unit the ranks share\n"
     "(default 2048, rounded up to whole batches)"},
    {"train", 0, "N", "use N evenly spaced train images (default: all)"},
    {"val", 0, "N", "use N evenly spaced val images (default: all)"},
    {"backend", 0, "NAME", "cpu (default) or cuda"},
    {"dtype", 0, "DT", "compute dtype: f32 (default) or bf16 (cuda)"},
    {"save-features", 0, NULL,
     "also write the L2-normalised features: DIR/features_<i>_<net>.h5\n"
     "(/train/features, /train/labels, /val/...)"},
};
static const int n_options = (int) (sizeof options / sizeof options[0]);

static const poa_cli_spec spec = {
    .program = "poa-eval-knn",
    .summary = "       poa-eval-knn --checkpoint FILE... --data PACKED --output DIR [options]\n"
               "k-NN evaluation (DINOv2 protocol): class-token features after the final norm,\n"
               "L2-normalised; cosine similarity of every val image to the whole train split; the\n"
               "K = max(k) nearest, weighted by softmax(sim / T); top-1 and top-5 for every k.\n"
               "Under mpiexec/srun the ranks share the images and the train features; the results\n"
               "do not depend on the number of ranks.",
    .options = options,
    .n_options = n_options,
    .positional = "CHECKPOINT...",
    .epilog =
        "Output: a table on stdout; DIR/results_eval_knn.json, one JSON object per line per\n"
        "network and k (checkpoint, iteration, network = teacher|student|<W>x<D>|pixels,\n"
        "width, depth, k, top1, top5 in percent, n_train, n_val); with --all-subnets\n"
        "DIR/knn_subnets.csv and DIR/knn_subnets.png (needs python3 with matplotlib; set\n"
        "POA_PYTHON to choose the interpreter; skipped with a note otherwise).\n"
        "Exit codes: 0 ok, 1 non-finite features, 2 bad command line (unknown option, a size\n"
        "the run does not have, a crop that is not a multiple of the patch size), 3 missing,\n"
        "corrupt or mismatched checkpoint or data set, 4 an output file could not be written.",
};

/* ------------------------------------------------------------------ arguments */

typedef struct knn_args {
    poa_cli cli;
    poa_tool_eval_args ev; /* the options every evaluation program has */
    int nk, ks[POA_KNN_MAX_KS];
    double T;
    int bank_block, n_train, n_val;
} knn_args;

/* One item of --k. */
static int add_k(void *ctx, const char *opt, const char *t)
{
    (void) opt;
    knn_args *a = ctx;
    int k = poa_tool_positive(t, t + strlen(t));
    if (k < 1) return poa_cli_usage_error(&spec, "--k '%s': expected positive integers", t);
    if (a->nk == POA_KNN_MAX_KS)
        return poa_cli_usage_error(&spec, "--k: at most %d values", POA_KNN_MAX_KS);
    for (int i = 0; i < a->nk; i++)
        if (a->ks[i] == k) return 0;
    a->ks[a->nk++] = k;
    return 0;
}

static int parse_numbers(knn_args *a)
{
    poa_err err;
    if (poa_cli_int(&a->cli, &spec, "bank-block", BANK_BLOCK, 1, 1 << 20, &a->bank_block, &err) ||
        poa_cli_int(&a->cli, &spec, "train", 0, 1, 1 << 30, &a->n_train, &err) ||
        poa_cli_int(&a->cli, &spec, "val", 0, 1, 1 << 30, &a->n_val, &err) ||
        poa_cli_double(&a->cli, &spec, "temperature", POA_KNN_TEMPERATURE, 1e-4, 1e4, false, &a->T,
                       &err))
        return poa_cli_usage_error(&spec, "%s", err.msg);
    return -1;
}

/* The command line into a.  -1: go on; else the exit code (0 after --help / --version). */
static int parse_args(int argc, char **argv, knn_args *a)
{
    int rc = poa_cli_main_setup(&spec, argc, argv, &a->cli, NULL, 1, &(poa_err){0});
    if (rc >= 0) return rc;
    if ((rc = poa_tool_parse_eval_args(&spec, &a->cli, &a->ev)) >= 0) return rc;
    for (int k = 0; k < a->cli.n_given; k++)
        if (strcmp(options[a->cli.given_option[k]].name, "k") == 0)
            if ((rc = poa_tool_each_item(&spec, "k", a->cli.given[k], add_k, a)) > 0) return rc;
    if (a->nk == 0) {
        static const int dflt[] = {10, 20, 100, 200};
        memcpy(a->ks, dflt, sizeof dflt);
        a->nk = 4;
    }
    return parse_numbers(a);
}

/* ------------------------------------------------------------------ ranks */

static int rank_of(void)
{
    return poa_log_rank();
}

static int world(void)
{
    return poa_log_world_size();
}

/* ------------------------------------------------------------------ models and networks */

typedef struct network {
    int source; /* index of the model source; -1: the raw pixels */
    poa_subnet sn;
    int dim;
    char name[32]; /* teacher | student | <W>x<D> | pixels */
    int subnet;    /* one of an --all-subnets grid (for the CSV) */
    float *bank;   /* [this rank's train images, dim], L2-normalised */
    float *val;    /* [all val images, dim] (this rank's part until gathered) */
    int64_t correct1[POA_KNN_MAX_KS], correct5[POA_KNN_MAX_KS];
} network;

typedef struct eval_state {
    const knn_args *a;
    poa_model_source src[POA_TOOL_MAX_SOURCES];
    poa_features *feat[POA_TOOL_MAX_SOURCES];
    poa_tool_models m; /* the sources (src, feat above), transform and batch */
    int n_net;
    network net[MAX_NETWORKS];
    poa_eval_reader *train, *val;
    int n_classes;
    int64_t n_tr, n_va;   /* images used */
    int64_t block;        /* train images per block (a multiple of the batch) */
    int64_t tr_lo, tr_hi; /* this rank's train images */
    int64_t va_lo, va_hi; /* this rank's val images (before the gather) */
    int32_t *tr_labels;   /* all train labels */
    int32_t *va_labels;   /* all val labels */
} eval_state;

/* The sources, their networks, the transform and one forward runner per source. */
static int open_models(eval_state *s)
{
    const knn_args *a = s->a;
    s->m.src = s->src, s->m.feat = s->feat;
    poa_tool_net *nets = poa_xmalloc(sizeof *nets * MAX_NETWORKS);
    int code = poa_tool_open_models("poa-eval-knn", &spec, &a->ev.ask, &s->m, nets, MAX_NETWORKS,
                                    &s->n_net);
    for (int i = 0; i < s->n_net && !code; i++) {
        network *n = &s->net[i];
        memset(n, 0, sizeof *n);
        n->source = nets[i].source, n->sn = nets[i].sn, n->subnet = nets[i].subnet;
        n->dim = n->source >= 0 ? n->sn.width : 3 * s->m.t.crop * s->m.t.crop;
        snprintf(n->name, sizeof n->name, "%s", nets[i].name);
    }
    free(nets);
    return code;
}

/* ------------------------------------------------------------------ data */

static int open_data(eval_state *s)
{
    const knn_args *a = s->a;
    int code = poa_tool_open_splits("poa-eval-knn", a->ev.data, &s->m.t, a->n_train, a->n_val,
                                    &s->train, &s->val);
    if (code) return code;
    s->n_classes = poa_eval_reader_classes(s->train);
    s->n_tr = poa_eval_reader_count(s->train), s->n_va = poa_eval_reader_count(s->val);
    s->block = ((a->bank_block + s->m.batch - 1) / s->m.batch) * (int64_t) s->m.batch;
    const int64_t n_blocks = (s->n_tr + s->block - 1) / s->block;
    const int64_t n_vb = (s->n_va + s->m.batch - 1) / s->m.batch;
    int64_t lo, hi;
    poa_tool_share(n_blocks, rank_of(), world(), &lo, &hi);
    s->tr_lo = lo * s->block, s->tr_hi = hi * s->block < s->n_tr ? hi * s->block : s->n_tr;
    poa_tool_share(n_vb, rank_of(), world(), &lo, &hi);
    s->va_lo = lo * s->m.batch, s->va_hi = hi * s->m.batch < s->n_va ? hi * s->m.batch : s->n_va;
    return 0;
}

/* ------------------------------------------------------------------ features */

/* Features of every network for the images [p0, p0 + b) of a split, into row `row` of each
 * network's bank (train) or val array; pixels [b, 3, crop, crop] already read. */
static int batch_features(eval_state *s, const float *pixels, int b, int train, int64_t row,
                          float *cls)
{
    const int64_t per = 3 * (int64_t) s->m.t.crop * s->m.t.crop;
    for (int i = 0; i < s->n_net; i++) {
        network *n = &s->net[i];
        float *dst = (train ? n->bank : n->val) + (size_t) row * n->dim;
        if (n->source < 0) {
            memcpy(dst, pixels, sizeof(float) * (size_t) b * per);
        } else {
            poa_err err;
            poa_status st = poa_features_run(s->m.feat[n->source], &n->sn, pixels, b, s->m.t.crop,
                                             s->m.t.crop, cls, NULL, &err);
            if (st) {
                poa_error("poa-eval-knn: %s", err.msg);
                return POA_EXIT_FAILURE;
            }
            memcpy(dst, cls, sizeof(float) * (size_t) b * n->dim);
        }
        const int64_t bad = poa_knn_normalise_rows(dst, b, n->dim);
        if (bad) {
            poa_error("poa-eval-knn: %s %s: %lld of %d %s features are not finite (image %lld "
                      "on): the weights are broken",
                      n->source >= 0 ? s->m.src[n->source].path : "", n->name, (long long) bad, b,
                      train ? "train" : "val", (long long) row);
            return POA_EXIT_FAILURE;
        }
    }
    return 0;
}

/* This rank's share of both splits through every network, one batch of images at a time. */
static int extract_features(eval_state *s)
{
    const int B = s->m.batch;
    const int64_t n_tr = s->tr_hi - s->tr_lo, n_va = s->va_hi - s->va_lo;
    int max_dim = 1;
    for (int i = 0; i < s->n_net; i++) {
        network *n = &s->net[i];
        n->bank = poa_xmalloc(sizeof(float) * (size_t) (n_tr > 0 ? n_tr : 1) * n->dim);
        n->val = poa_xmalloc(sizeof(float) * (size_t) s->n_va * n->dim);
        if (n->source >= 0 && n->dim > max_dim) max_dim = n->dim;
    }
    float *pixels = poa_xmalloc(sizeof(float) * (size_t) B * 3 * s->m.t.crop * s->m.t.crop);
    float *cls = poa_xmalloc(sizeof(float) * (size_t) B * max_dim);
    poa_progress pr;
    char what[96];
    snprintf(what, sizeof what, "features (%d network%s%s)", s->n_net, s->n_net > 1 ? "s" : "",
             world() > 1 ? ", rank 0's share" : "");
    poa_progress_begin(&pr, what, n_tr + n_va, 10.0);
    int code = 0;
    int64_t done = 0;
    for (int split = 0; split < 2 && !code; split++) {
        poa_eval_reader *r = split == 0 ? s->train : s->val;
        const int64_t lo = split == 0 ? s->tr_lo : s->va_lo, hi = split == 0 ? s->tr_hi : s->va_hi;
        for (int64_t p = lo; p < hi && !code; p += B) {
            const int b = hi - p < B ? (int) (hi - p) : B;
            poa_err err;
            poa_status st = poa_eval_reader_read(r, p, b, pixels, NULL, &err);
            if (st) {
                poa_error("poa-eval-knn: %s", err.msg);
                code = POA_EXIT_DATA;
                break;
            }
            /* train rows are this rank's bank rows; val rows their place in the whole split */
            code = batch_features(s, pixels, b, split == 0, split == 0 ? p - lo : p, cls);
            done += b;
            poa_progress_update(&pr, done, NULL);
        }
    }
    poa_progress_end(&pr, done, NULL);
    free(pixels);
    free(cls);
    return poa_tool_agree(code);
}

/* Every rank gets all val features and all labels. */
static void gather_val_and_labels(eval_state *s)
{
    const int P = world();
    int *counts = poa_xmalloc(sizeof(int) * P), *displs = poa_xmalloc(sizeof(int) * P);
    s->va_labels = poa_xmalloc(sizeof(int32_t) * (size_t) s->n_va);
    s->tr_labels = poa_xmalloc(sizeof(int32_t) * (size_t) s->n_tr);
    poa_err err;
    POA_CHECK(poa_eval_reader_labels(s->val, 0, s->n_va, s->va_labels, &err) == POA_OK, "%s",
              err.msg);
    POA_CHECK(poa_eval_reader_labels(s->train, 0, s->n_tr, s->tr_labels, &err) == POA_OK, "%s",
              err.msg);
    const int64_t n_vb = (s->n_va + s->m.batch - 1) / s->m.batch;
    for (int i = 0; i < s->n_net; i++) {
        network *n = &s->net[i];
        for (int r = 0; r < P; r++) {
            int64_t lo, hi;
            poa_tool_share(n_vb, r, P, &lo, &hi);
            lo *= s->m.batch, hi = hi * s->m.batch < s->n_va ? hi * s->m.batch : s->n_va;
            const int64_t c = (hi - lo) * n->dim, d = lo * n->dim;
            POA_CHECK(c <= INT32_MAX && d <= INT32_MAX,
                      "val features of %s too large for one MPI call", n->name);
            counts[r] = (int) c, displs[r] = (int) d;
        }
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, n->val, counts, displs, MPI_FLOAT,
                       MPI_COMM_WORLD);
    }
    free(counts);
    free(displs);
}

/* ------------------------------------------------------------------ k-NN */

/* This rank's lists of one chunk of val queries against its bank blocks. */
static void chunk_lists(const eval_state *s, const network *n, int64_t q0, int nq, poa_knn_lists *l,
                        float *sim)
{
    poa_knn_lists_reset(l);
    l->nq = nq;
    for (int64_t b0 = s->tr_lo; b0 < s->tr_hi; b0 += s->block) {
        const int nb = (int) (s->tr_hi - b0 < s->block ? s->tr_hi - b0 : s->block);
        poa_knn_similarity(n->val + (size_t) q0 * n->dim, nq,
                           n->bank + (size_t) (b0 - s->tr_lo) * n->dim, nb, n->dim, sim);
        poa_knn_lists_update(l, sim, nq, nb, (size_t) nb, b0);
    }
}

/* Rank 0 gathers the ranks' lists of the chunk, merges them and votes. */
static void merge_and_vote(const eval_state *s, network *n, poa_knn_lists *mine, poa_knn_lists *all,
                           poa_knn_lists *merged, int64_t q0, int nq, int K)
{
    const int P = world(), root = rank_of() == 0;
    const size_t m = (size_t) QUERY_CHUNK * K;
    MPI_Gather(mine->sim, (int) m, MPI_FLOAT, root ? all[0].sim : NULL, (int) m, MPI_FLOAT, 0,
               MPI_COMM_WORLD);
    MPI_Gather(mine->idx, (int) m, MPI_INT64_T, root ? all[0].idx : NULL, (int) m, MPI_INT64_T, 0,
               MPI_COMM_WORLD);
    MPI_Gather(mine->count, QUERY_CHUNK, MPI_INT, root ? all[0].count : NULL, QUERY_CHUNK, MPI_INT,
               0, MPI_COMM_WORLD);
    if (!root) return;
    for (int r = 0; r < P; r++) all[r].nq = nq;
    merged->nq = nq;
    poa_knn_lists_merge(merged, all, P);
    poa_knn_vote(merged, s->tr_labels, s->va_labels + q0, s->n_classes, s->a->ks, s->a->nk, s->a->T,
                 n->correct1, n->correct5);
}

static void knn_all(eval_state *s)
{
    int K = 0;
    for (int i = 0; i < s->a->nk; i++) K = s->a->ks[i] > K ? s->a->ks[i] : K;
    if (K > s->n_tr) {
        if (rank_of() == 0)
            poa_warn("poa-eval-knn: k up to %d but only %lld train images: every k above uses "
                     "all of them",
                     K, (long long) s->n_tr);
        K = (int) s->n_tr;
    }
    const int P = world(), root = rank_of() == 0;
    poa_knn_lists mine, merged, *all = NULL;
    poa_knn_lists_init(&mine, QUERY_CHUNK, K);
    if (root) {
        /* the gathered lists: P lists in one allocation each (rank r at offset r) */
        all = poa_xcalloc((size_t) P, sizeof *all);
        poa_knn_lists_init(&all[0], QUERY_CHUNK * P, K);
        for (int r = 1; r < P; r++)
            all[r] = (poa_knn_lists){QUERY_CHUNK, K, all[0].sim + (size_t) r * QUERY_CHUNK * K,
                                     all[0].idx + (size_t) r * QUERY_CHUNK * K,
                                     all[0].count + (size_t) r * QUERY_CHUNK};
        poa_knn_lists_init(&merged, QUERY_CHUNK, K);
    }
    float *sim = poa_xmalloc(sizeof(float) * (size_t) QUERY_CHUNK * s->block);
    const int64_t n_chunks = (s->n_va + QUERY_CHUNK - 1) / QUERY_CHUNK;
    poa_progress pr;
    poa_progress_begin(&pr, "k-NN", n_chunks * s->n_net, 10.0);
    for (int i = 0; i < s->n_net; i++) {
        network *n = &s->net[i];
        for (int64_t c = 0; c < n_chunks; c++) {
            const int64_t q0 = c * QUERY_CHUNK;
            const int nq = (int) (s->n_va - q0 < QUERY_CHUNK ? s->n_va - q0 : QUERY_CHUNK);
            chunk_lists(s, n, q0, nq, &mine, sim);
            mine.nq = QUERY_CHUNK; /* gathered whole: unused rows have count 0 */
            for (int q = nq; q < QUERY_CHUNK; q++) mine.count[q] = 0;
            merge_and_vote(s, n, &mine, all, &merged, q0, nq, K);
            poa_progress_update(&pr, i * n_chunks + c + 1, n->name);
        }
        free(n->bank), n->bank = NULL;
    }
    poa_progress_end(&pr, s->n_net * n_chunks, NULL);
    free(sim);
    poa_knn_lists_free(&mine);
    if (root) {
        all[0].nq = QUERY_CHUNK * P;
        poa_knn_lists_free(&all[0]);
        free(all);
        poa_knn_lists_free(&merged);
    }
}

/* ------------------------------------------------------------------ output */

/* The features file of one network: its train features (all ranks' gathered) and val features. */
typedef struct features_file {
    const eval_state *s;
    const network *n;
    const float *train;
} features_file;

static poa_status fill_features(hid_t f, void *ctx, poa_err *err)
{
    const features_file *ff = ctx;
    const eval_state *s = ff->s;
    poa_status st = poa_h5_attr_write_string(f, "format", "poa-knn-features", err);
    if (!st) st = poa_h5_attr_write_i64(f, "format_version", 1, err);
    if (!st) st = poa_h5_attr_write_string(f, "network", ff->n->name, err);
    if (!st) st = poa_h5_attr_write_i64(f, "dim", ff->n->dim, err);
    if (!st) st = poa_h5_attr_write_i64(f, "n_classes", s->n_classes, err);
    if (!st) st = poa_h5_attr_write_i64(f, "crop", s->m.t.crop, err);
    if (!st) st = poa_h5_attr_write_i64(f, "resize", s->m.t.resize, err);
    for (int split = 0; split < 2 && !st; split++) {
        hid_t g = poa_h5_create_group(f, split == 0 ? "train" : "val");
        if (g < 0) return poa_h5_fail(err, POA_ERR_IO, "cannot create a group");
        const int64_t rows = split == 0 ? s->n_tr : s->n_va;
        const int64_t dims[2] = {rows, ff->n->dim};
        uint64_t *lab = poa_xmalloc(sizeof(uint64_t) * (size_t) rows);
        const int32_t *src = split == 0 ? s->tr_labels : s->va_labels;
        for (int64_t j = 0; j < rows; j++) lab[j] = (uint64_t) src[j];
        st = poa_h5_write_f32(g, "features", 2, dims, split == 0 ? ff->train : ff->n->val, err);
        if (!st) st = poa_h5_write_u64(g, "labels", lab, (size_t) rows, err);
        free(lab);
        H5Gclose(g);
    }
    return st;
}

/* --save-features: rank 0 gathers the train features of each network and writes
 * DIR/features_<i>_<name>.h5 (hdf5-schemas/knn-features.md). */
static int save_features(eval_state *s)
{
    const int P = world(), root = rank_of() == 0;
    int code = 0;
    int *counts = poa_xmalloc(sizeof(int) * P), *displs = poa_xmalloc(sizeof(int) * P);
    const int64_t n_blocks = (s->n_tr + s->block - 1) / s->block;
    for (int i = 0; i < s->n_net; i++) {
        network *n = &s->net[i];
        for (int r = 0; r < P; r++) {
            int64_t lo, hi;
            poa_tool_share(n_blocks, r, P, &lo, &hi);
            lo *= s->block, hi = hi * s->block < s->n_tr ? hi * s->block : s->n_tr;
            counts[r] = (int) ((hi - lo) * n->dim), displs[r] = (int) (lo * n->dim);
        }
        float *all = root ? poa_xmalloc(sizeof(float) * (size_t) s->n_tr * n->dim) : NULL;
        MPI_Gatherv(n->bank, counts[rank_of()], MPI_FLOAT, all, counts, displs, MPI_FLOAT, 0,
                    MPI_COMM_WORLD);
        if (root && !code) {
            char path[POA_IO_PATH_MAX];
            snprintf(path, sizeof path, "%s/features_%d_%s.h5", s->a->ev.output, i, n->name);
            features_file ff = {s, n, all};
            const uint64_t images = (uint64_t) (s->n_tr + s->n_va);
            const uint64_t bytes = images * ((uint64_t) n->dim * sizeof(float) + sizeof(uint64_t));
            poa_err err = {0};
            if (poa_h5_write_atomic(path, "", poa_h5_size_bound(bytes, 4, 0), fill_features, &ff,
                                    &err)) {
                poa_error("poa-eval-knn: %s", err.msg);
                code = POA_EXIT_IO;
            }
        }
        free(all);
    }
    free(counts);
    free(displs);
    return poa_tool_agree(code);
}

static double pct(int64_t correct, int64_t n)
{
    return 100.0 * (double) correct / (double) n;
}

static void print_table(const eval_state *s)
{
    printf("\nk-NN on %s: %lld train / %lld val images, %d classes, %dx%d crop (resize %d), T "
           "%.3g\n",
           s->a->ev.data, (long long) s->n_tr, (long long) s->n_va, s->n_classes, s->m.t.crop,
           s->m.t.crop, s->m.t.resize, s->a->T);
    printf("%-10s %6s %6s %5s %8s %8s  %s\n", "network", "width", "depth", "k", "top-1", "top-5",
           "checkpoint (iteration)");
    for (int i = 0; i < s->n_net; i++) {
        const network *n = &s->net[i];
        for (int j = 0; j < s->a->nk; j++) {
            if (n->source >= 0)
                printf("%-10s %6d %6d %5d %7.2f%% %7.2f%%  %s (%lld)\n", n->name, n->sn.width,
                       n->sn.depth, s->a->ks[j], pct(n->correct1[j], s->n_va),
                       pct(n->correct5[j], s->n_va), s->m.src[n->source].path,
                       (long long) s->m.src[n->source].iteration);
            else
                printf("%-10s %6s %6s %5d %7.2f%% %7.2f%%  -\n", n->name, "-", "-", s->a->ks[j],
                       pct(n->correct1[j], s->n_va), pct(n->correct5[j], s->n_va));
        }
    }
    fflush(stdout);
}

static void write_json(FILE *f, const void *ctx)
{
    const eval_state *s = ctx;
    for (int i = 0; i < s->n_net; i++) {
        const network *n = &s->net[i];
        const poa_model_source *src = n->source >= 0 ? &s->m.src[n->source] : NULL;
        for (int j = 0; j < s->a->nk; j++) {
            fputs("{\"checkpoint\": ", f);
            if (src) {
                poa_tool_json_string(f, src->path);
                fprintf(f, ", \"iteration\": %lld, ", (long long) src->iteration);
            } else {
                fputs("null, \"iteration\": null, ", f);
            }
            fputs("\"network\": ", f);
            poa_tool_json_string(f, n->name);
            if (src)
                fprintf(f, ", \"width\": %d, \"depth\": %d", n->sn.width, n->sn.depth);
            else
                fputs(", \"width\": null, \"depth\": null", f);
            fprintf(f,
                    ", \"k\": %d, \"top1\": %.4f, \"top5\": %.4f, \"n_train\": %lld, \"n_val\": "
                    "%lld, \"temperature\": %g, \"crop\": %d, \"resize\": %d}\n",
                    s->a->ks[j], pct(n->correct1[j], s->n_va), pct(n->correct5[j], s->n_va),
                    (long long) s->n_tr, (long long) s->n_va, s->a->T, s->m.t.crop, s->m.t.resize);
        }
    }
}

static void write_csv(FILE *f, const void *ctx)
{
    const eval_state *s = ctx;
    fputs("checkpoint,iteration,width,depth,k,top1,top5\n", f);
    for (int i = 0; i < s->n_net; i++) {
        const network *n = &s->net[i];
        if (!n->subnet) continue;
        for (int j = 0; j < s->a->nk; j++)
            fprintf(f, "%s,%lld,%d,%d,%d,%.4f,%.4f\n", s->m.src[n->source].path,
                    (long long) s->m.src[n->source].iteration, n->sn.width, n->sn.depth,
                    s->a->ks[j], pct(n->correct1[j], s->n_va), pct(n->correct5[j], s->n_va));
    }
}

/* The heatmap: tools/plot_knn.py CSV PNG under $POA_PYTHON (default: the python3 found at
 * configure time).  Missing Python or matplotlib only skip the picture. */
static void plot_heatmap(const char *csv, const char *out_dir)
{
    const char *py = getenv("POA_PYTHON");
    if (!py || !*py) py = POA_PYTHON_DEFAULT;
    const char *script = getenv("POA_PLOT_KNN");
    static const char *const candidates[] = {POA_PKGDATADIR "/plot_knn.py",
                                             POA_SRCDIR "/tools/plot_knn.py"};
    for (int i = 0; (!script || !*script) && i < 2; i++)
        if (access(candidates[i], R_OK) == 0) script = candidates[i];
    if (!script) {
        poa_warn("poa-eval-knn: plot_knn.py not found (set POA_PLOT_KNN): no knn_subnets.png");
        return;
    }
    char png[POA_IO_PATH_MAX];
    snprintf(png, sizeof png, "%s/knn_subnets.png", out_dir);
    char *argv[] = {(char *) py, (char *) script, (char *) csv, png, NULL};
    pid_t pid;
    if (posix_spawnp(&pid, py, NULL, NULL, argv, environ) != 0) {
        poa_warn("poa-eval-knn: cannot run %s: no knn_subnets.png", py);
        return;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (rc == 0)
        poa_info("poa-eval-knn: wrote %s", png);
    else if (rc == 3)
        poa_warn("poa-eval-knn: %s has no matplotlib (apt-get install python3-matplotlib, or "
                 "set POA_PYTHON): no knn_subnets.png",
                 py);
    else
        poa_warn("poa-eval-knn: %s %s failed (exit %d): no knn_subnets.png", py, script, rc);
}

static int write_results(const eval_state *s)
{
    if (rank_of() != 0) return poa_tool_agree(0);
    print_table(s);
    char path[POA_IO_PATH_MAX];
    int code = poa_tool_write_file(spec.program, s->a->ev.output, "results_eval_knn.json",
                                   write_json, s, path);
    if (!code) poa_info("poa-eval-knn: wrote %s", path);
    int any_subnet = 0;
    for (int i = 0; i < s->n_net; i++) any_subnet |= s->net[i].subnet;
    if (!code && s->a->ev.ask.all && any_subnet) {
        code = poa_tool_write_file(spec.program, s->a->ev.output, "knn_subnets.csv", write_csv, s,
                                   path);
        if (!code) {
            poa_info("poa-eval-knn: wrote %s", path);
            plot_heatmap(path, s->a->ev.output);
        }
    }
    return poa_tool_agree(code);
}

/* ------------------------------------------------------------------ main */

static void print_plan(const eval_state *s)
{
    poa_info("poa-eval-knn %s: %d network(s) on %s (%lld train / %lld val images, %d classes), "
             "crop %d resize %d, batch %d, k %d..%d, %d rank(s)",
             PACKAGE_VERSION, s->n_net, s->a->ev.data, (long long) s->n_tr, (long long) s->n_va,
             s->n_classes, s->m.t.crop, s->m.t.resize, s->m.batch, s->a->ks[0],
             s->a->ks[s->a->nk - 1], world());
    for (int i = 0; i < s->m.n_src; i++)
        poa_info("  [%d] %s: %s weights of iteration %lld", i, s->m.src[i].path,
                 poa_weights_from_name(s->m.src[i].from), (long long) s->m.src[i].iteration);
}

static int run(void *args)
{
    const knn_args *a = args;
    eval_state *s = poa_xcalloc(1, sizeof *s);
    s->a = a;
    int code = poa_tool_make_output_dir(spec.program, a->ev.output);
    if (!code) code = open_models(s);
    if (!code) code = open_data(s);
    if (!code) {
        print_plan(s);
        const double t0 = poa_now();
        code = extract_features(s);
        if (!code) {
            poa_info("poa-eval-knn: features in %.1f s", poa_now() - t0);
            gather_val_and_labels(s);
            if (a->ev.save) code = save_features(s);
        }
        if (!code) {
            const double t1 = poa_now();
            knn_all(s);
            poa_info("poa-eval-knn: k-NN in %.1f s", poa_now() - t1);
            code = write_results(s);
        }
    }
    for (int i = 0; i < s->n_net; i++) free(s->net[i].bank), free(s->net[i].val);
    poa_tool_close_models(&s->m);
    poa_eval_reader_close(s->train);
    poa_eval_reader_close(s->val);
    free(s->tr_labels);
    free(s->va_labels);
    free(s);
    return code;
}

int main(int argc, char **argv)
{
    knn_args *a = poa_xcalloc(1, sizeof *a);
    int rc = parse_args(argc, argv, a);
    if (rc < 0) rc = poa_tool_main(&argc, &argv, "poa-eval-knn", a->cli.verbose, run, a);
    poa_tool_free_eval_args(&a->ev);
    poa_cli_free(&a->cli);
    free(a);
    return rc;
}
