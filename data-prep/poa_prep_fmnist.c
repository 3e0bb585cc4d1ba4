/* poa-prep-fmnist — convert Fashion-MNIST (the idx files of Debian's dataset-fashion-mnist
 * package) into the upstream ImageNet layout, the embedded default data set of the demo and the
 * tests:
 *
 *   OUT/labels.txt                        10 lines "fm<k>_<name>,<class name>"
 *   OUT/train/fm<k>_<name>/fm<k>_<name>_<i>.JPEG      i = index in the training idx file
 *   OUT/val/fm<k>_<name>/FMNIST_val_<i:08d>.JPEG      i = index in the t10k idx file
 *
 * Images are 28×28 JPEGs, grayscale by default (the loader's convert("RGB") replicates the
 * channel, exactly as PIL would; a third of the size and decode work of RGB), RGB with --rgb.
 */
#include "common/cli.h"
#include "common/log.h"
#include "common/poa_error.h"
#include "data/data_util.h"
#include "data/jpeg.h"

#include "poa_config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define DEFAULT_SOURCE "/usr/share/datasets/fashion-mnist"

static const char *const class_ids[10] = {
    "fm0_tshirt_top", "fm1_trouser", "fm2_pullover", "fm3_dress", "fm4_coat",
    "fm5_sandal",     "fm6_shirt",   "fm7_sneaker",  "fm8_bag",   "fm9_ankle_boot"};
static const char *const class_names[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                            "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                            "Bag",         "Ankle boot"};

typedef struct options {
    const char *output, *source;
    long limit;
    int rgb, quality, verbose;
} options;

static const poa_cli_option cli_options[] = {
    {"output", 'o', "DIR", "output ROOT (created): labels.txt, train/, val/"},
    {"source", 's', "DIR",
     "folder with the four *-idx*-ubyte.gz files\n"
     "(default " DEFAULT_SOURCE ",\n"
     "Debian package dataset-fashion-mnist)"},
    {"limit", 'n', "N", "convert only the first N images of each split (default: all)"},
    {"rgb", 0, NULL, "write 3-channel RGB JPEGs (default: 1-channel grayscale)"},
    {"quality", 'q', "Q", "JPEG quality 1..100 (default 95)"},
};

static const poa_cli_spec spec = {
    .program = "poa-prep-fmnist",
    .summary = "       poa-prep-fmnist --output DIR [options]\n"
               "Convert Fashion-MNIST (idx files) to the ImageNet folder layout read by poa-pack.",
    .options = cli_options,
    .n_options = (int) (sizeof cli_options / sizeof cli_options[0]),
    .epilog = "Exit codes: 0 ok, 2 usage, 3 missing/corrupt idx files, 4 cannot write output.",
    .verbose_help = "more output (debug messages)",
};

/* Whole gzip-compressed idx file. */
static poa_status read_gz(const char *path, uint8_t **data, size_t *n, poa_err *err)
{
    gzFile g = gzopen(path, "rb");
    if (!g)
        return poa_err_set(err, POA_ERR_NOTFOUND,
                           "%s: cannot open: %s (install the Debian package dataset-fashion-mnist "
                           "or give --source)",
                           path, strerror(errno));
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = poa_xmalloc(cap);
    for (;;) {
        if (len == cap) buf = poa_xrealloc(buf, cap *= 2);
        int r = gzread(g, buf + len, (unsigned) (cap - len));
        if (r < 0) {
            int e;
            const char *msg = gzerror(g, &e);
            gzclose(g);
            free(buf);
            return poa_err_set(err, POA_ERR_FORMAT, "%s: %s", path, msg);
        }
        if (r == 0) break;
        len += (size_t) r;
    }
    gzclose(g);
    *data = buf;
    *n = len;
    return POA_OK;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

typedef struct idx_split {
    uint8_t *images, *labels; /* raw files */
    const uint8_t *pixels, *label;
    uint32_t count, rows, cols;
} idx_split;

static poa_status load_split(const char *source, const char *prefix, idx_split *s, poa_err *err)
{
    char ip[4096], lp[4096];
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", source, prefix);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", source, prefix);
    size_t ni = 0, nl = 0;
    memset(s, 0, sizeof *s);
    poa_status st = read_gz(ip, &s->images, &ni, err);
    if (st == POA_OK) st = read_gz(lp, &s->labels, &nl, err);
    if (st != POA_OK) return st;
    if (ni < 16 || be32(s->images) != 0x803)
        return poa_err_set(err, POA_ERR_FORMAT, "%s: not an idx3 image file", ip);
    if (nl < 8 || be32(s->labels) != 0x801)
        return poa_err_set(err, POA_ERR_FORMAT, "%s: not an idx1 label file", lp);
    s->count = be32(s->images + 4);
    s->rows = be32(s->images + 8);
    s->cols = be32(s->images + 12);
    if (be32(s->labels + 4) != s->count)
        return poa_err_set(err, POA_ERR_FORMAT, "%s and %s disagree on the image count", ip, lp);
    if (ni < 16 + (size_t) s->count * s->rows * s->cols || nl < 8 + (size_t) s->count)
        return poa_err_set(err, POA_ERR_FORMAT, "%s: truncated", ni < 16 ? ip : lp);
    s->pixels = s->images + 16;
    s->label = s->labels + 8;
    for (uint32_t i = 0; i < s->count; i++)
        if (s->label[i] > 9)
            return poa_err_set(err, POA_ERR_FORMAT, "%s: label %u of image %u is not 0..9", lp,
                               s->label[i], i);
    return POA_OK;
}

static poa_status make_dir(const char *path, poa_err *err)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return poa_err_set(err, POA_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    return POA_OK;
}

/* Renamed into place when complete, like every file poa writes, but not fsync'ed (unlike
 * common/atomic_io.h): 70,000 small JPEGs that a rerun makes again, where an fsync each would
 * cost more than the conversion. */
static poa_status write_file(const char *path, const uint8_t *data, size_t n, poa_err *err)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return poa_err_set(err, POA_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    size_t w = fwrite(data, 1, n, f);
    int bad = fclose(f) != 0 || w != n;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return poa_err_set(err, POA_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    return POA_OK;
}

static poa_status write_labels(const char *out, poa_err *err)
{
    char path[4200], text[1024] = "";
    snprintf(path, sizeof path, "%s/labels.txt", out);
    for (int k = 0; k < 10; k++) {
        char line[128];
        snprintf(line, sizeof line, "%s,%s\n", class_ids[k], class_names[k]);
        strcat(text, line);
    }
    return write_file(path, (const uint8_t *) text, strlen(text), err);
}

static poa_status convert_split(const options *o, const idx_split *s, const char *split,
                                poa_err *err)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", o->output, split);
    poa_status st = make_dir(dir, err);
    for (int k = 0; k < 10 && st == POA_OK; k++) {
        char cdir[4300];
        snprintf(cdir, sizeof cdir, "%s/%s", dir, class_ids[k]);
        st = make_dir(cdir, err);
    }
    uint32_t n = o->limit > 0 && (uint32_t) o->limit < s->count ? (uint32_t) o->limit : s->count;
    size_t npix = (size_t) s->rows * s->cols;
    uint8_t *rgb = poa_xmalloc(npix * 3);
    poa_progress prog;
    poa_progress_begin(&prog, split, n, 10.0);
    for (uint32_t i = 0; i < n && st == POA_OK; i++) {
        const uint8_t *px = s->pixels + (size_t) i * npix;
        if (o->rgb)
            for (size_t p = 0; p < npix; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = px[p];
        uint8_t *jpg = NULL;
        size_t jn = 0;
        st = poa_jpeg_encode(o->rgb ? rgb : px, (int) s->cols, (int) s->rows, !o->rgb, o->quality,
                             1, &jpg, &jn, err);
        if (st != POA_OK) break;
        const char *cid = class_ids[s->label[i]];
        char path[4400];
        if (strcmp(split, "train") == 0)
            snprintf(path, sizeof path, "%s/%s/%s_%u.JPEG", dir, cid, cid, i);
        else
            snprintf(path, sizeof path, "%s/%s/FMNIST_val_%08u.JPEG", dir, cid, i);
        st = write_file(path, jpg, jn, err);
        free(jpg);
        poa_progress_update(&prog, i + 1, NULL);
    }
    poa_progress_end(&prog, n, NULL);
    free(rgb);
    return st;
}

/* The command line into o.  Returns POA_EXIT_OK to go on, -1 after --help/--version, else the
 * exit code of a usage error. */
static int parse_options(int argc, char **argv, poa_cli *cli, options *o)
{
    *o = (options){NULL, DEFAULT_SOURCE, 0, 0, 95, 0};
    poa_err err = {0};
    int rc = poa_cli_main_setup(&spec, argc, argv, cli, NULL, 1, &err);
    if (rc >= 0) return rc == POA_EXIT_OK ? -1 : rc;
    o->output = poa_cli_value(cli, &spec, "output");
    const char *source = poa_cli_value(cli, &spec, "source");
    if (source) o->source = source;
    o->rgb = poa_cli_flag(cli, &spec, "rgb");
    o->verbose = cli->verbose;
    if (poa_cli_long(cli, &spec, "limit", 0, 0, INT_MAX, &o->limit, &err) != POA_OK ||
        poa_cli_int(cli, &spec, "quality", 95, 1, 100, &o->quality, &err) != POA_OK)
        return poa_cli_usage_error(&spec, "%s", err.msg);
    if (!o->output) return poa_cli_usage_error(&spec, "--output DIR is required");
    return POA_EXIT_OK;
}

int main(int argc, char **argv)
{
    options o;
    poa_cli cli;
    int rc = parse_options(argc, argv, &cli, &o);
    poa_cli_free(&cli);
    if (rc != POA_EXIT_OK) return rc < 0 ? POA_EXIT_OK : rc;
    if (o.verbose) poa_log_set_level(POA_LOG_DEBUG);
    poa_err err = {0};
    idx_split train, val;
    poa_status st = load_split(o.source, "train", &train, &err);
    if (st == POA_OK) st = load_split(o.source, "t10k", &val, &err);
    if (st == POA_OK) st = make_dir(o.output, &err);
    if (st == POA_OK) st = write_labels(o.output, &err);
    if (st == POA_OK) st = convert_split(&o, &train, "train", &err);
    if (st == POA_OK) st = convert_split(&o, &val, "val", &err);
    if (st != POA_OK) {
        poa_error("poa-prep-fmnist: %s", err.msg);
        return poa_status_exit_code(st);
    }
    long nt = o.limit > 0 && o.limit < (long) train.count ? o.limit : (long) train.count;
    long nv = o.limit > 0 && o.limit < (long) val.count ? o.limit : (long) val.count;
    poa_info("poa-prep-fmnist: wrote %ld train + %ld val %dx%d %s JPEGs (quality %d) and "
             "labels.txt to %s",
             nt, nv, (int) train.cols, (int) train.rows, o.rgb ? "RGB" : "grayscale", o.quality,
             o.output);
    free(train.images);
    free(train.labels);
    free(val.images);
    free(val.labels);
    return POA_EXIT_OK;
}
