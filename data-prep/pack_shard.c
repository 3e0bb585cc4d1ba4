/* pack_shard.c — building one shard: worker threads read, check (full decode) and optionally
 * re-encode the planned files; the results are written in plan order. */
#include "pack.h"

#include "common/atomic_io.h"
#include "common/log.h"
#include "data/image.h"
#include "data/jpeg.h"

#include <glob.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct file_result {
    uint8_t *data; /* bytes to store (the file itself, or its re-encoding) */
    size_t size, input_size;
    uint32_t height, width;
    int ok, gray, cmyk, progressive, warned, reencoded;
    char reason[512];
} file_result;

typedef struct shard_job {
    const pack_options *o;
    const split_plan *p;
    const shard_plan *sp;
    file_result *res;
    atomic_size_t next;
    volatile long long *files_done;
} shard_job;

/* Strip a leading "<path>: " from a message, the file name is printed next to it anyway. */
static void set_reason(file_result *r, const char *path, const char *msg)
{
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') msg += n + 2;
    snprintf(r->reason, sizeof r->reason, "%s", msg);
}

/* Re-encode when the longest side exceeds max_side: Pillow-bicubic down-scaling to a longest
 * side of max_side (the other side rounded), then JPEG at the given quality. */
static poa_status reencode(const pack_options *o, const poa_image *im, int gray,
                           poa_image_scratch *scr, file_result *r, poa_err *err)
{
    int w = im->w, h = im->h, m = w > h ? w : h;
    double s = (double) o->max_side / m;
    int nw = w >= h ? o->max_side : (int) (w * s + 0.5),
        nh = h >= w ? o->max_side : (int) (h * s + 0.5);
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    poa_image out = {0};
    float box[4] = {0, 0, (float) w, (float) h};
    poa_resize_bicubic(im, 0, 0, w, h, box, nw, nh, &out, scr);
    uint8_t *plane = NULL;
    if (gray) {
        plane = poa_xmalloc((size_t) nw * nh);
        for (size_t i = 0; i < (size_t) nw * nh; i++) plane[i] = out.p[3 * i];
    }
    uint8_t *enc = NULL;
    size_t n = 0;
    poa_status st =
        poa_jpeg_encode(gray ? plane : out.p, nw, nh, gray, o->quality, 0, &enc, &n, err);
    free(plane);
    poa_image_free(&out);
    if (st != POA_OK) return st;
    free(r->data);
    r->data = enc;
    r->size = n;
    r->width = (uint32_t) nw;
    r->height = (uint32_t) nh;
    r->reencoded = 1;
    return POA_OK;
}

static void process_file(shard_job *job, size_t i, poa_jpeg_decoder *dec, poa_image *im,
                         poa_image_scratch *scr)
{
    const poa_scan_split *s = &job->p->scan;
    file_result *r = &job->res[i - job->sp->first];
    char path[8400];
    snprintf(path, sizeof path, "%s/%s/%s", job->o->root, s->name, poa_strtab_get(&s->files, i));
    poa_err err = {0};
    poa_jpeg_info info;
    if (poa_read_file(path, &r->data, &r->size, &err) != POA_OK ||
        poa_jpeg_probe(r->data, r->size, &info, &err) != POA_OK ||
        poa_jpeg_decode(dec, r->data, r->size, 8, im, &r->warned, &err) != POA_OK) {
        set_reason(r, path, err.msg);
        free(r->data);
        r->data = NULL;
        return;
    }
    r->input_size = r->size;
    r->width = (uint32_t) im->w;
    r->height = (uint32_t) im->h;
    r->gray = info.components == 1;
    r->cmyk = info.cmyk;
    r->progressive = info.progressive;
    int m = im->w > im->h ? im->w : im->h;
    if (job->o->max_side > 0 && m > job->o->max_side &&
        reencode(job->o, im, r->gray, scr, r, &err) != POA_OK) {
        set_reason(r, path, err.msg);
        free(r->data);
        r->data = NULL;
        return;
    }
    r->ok = 1;
}

static void *worker(void *arg)
{
    shard_job *job = arg;
    poa_jpeg_decoder dec;
    poa_jpeg_decoder_init(&dec);
    poa_image im = {0};
    poa_image_scratch scr = {0};
    for (;;) {
        size_t j = atomic_fetch_add(&job->next, 1);
        if (j >= job->sp->count) break;
        process_file(job, job->sp->first + j, &dec, &im, &scr);
        __atomic_add_fetch(job->files_done, 1, __ATOMIC_RELAXED);
    }
    poa_image_scratch_free(&scr);
    poa_image_free(&im);
    poa_jpeg_decoder_free(&dec);
    return NULL;
}

static void run_workers(shard_job *job, int threads)
{
    if (threads < 1) threads = 1;
    pthread_t *t = poa_xmalloc((size_t) threads * sizeof *t);
    for (int i = 1; i < threads; i++)
        POA_CHECK(pthread_create(&t[i], NULL, worker, job) == 0, "pthread_create");
    worker(job);
    for (int i = 1; i < threads; i++) pthread_join(t[i], NULL);
    free(t);
}

void pack_remove_stale_tmp(const char *final_path)
{
    /* The temporary names of final_path's writes by any process (common/atomic_io.h): this
     * process's name with its pid replaced by '*'. */
    char pattern[POA_IO_PATH_MAX + 64];
    if (poa_io_temp_path(final_path, pattern, sizeof pattern, NULL) != POA_OK) return;
    char *pid = strrchr(pattern, '.');
    snprintf(pid + 1, sizeof pattern - (size_t) (pid + 1 - pattern), "*");
    glob_t g;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            poa_info("removing %s (left by an interrupted run)", g.gl_pathv[i]);
            unlink(g.gl_pathv[i]);
        }
    }
    globfree(&g);
}

static void account(const file_result *r, pack_stats *st)
{
    if (!r->ok) {
        st->skipped++;
        return;
    }
    st->images++;
    st->bytes += (double) r->size;
    st->input_bytes += (double) r->input_size;
    st->gray += r->gray;
    st->cmyk += r->cmyk;
    st->progressive += r->progressive;
    st->warned += r->warned;
    st->reencoded += r->reencoded;
}

static poa_status write_results(const pack_options *o, const split_plan *p, size_t k,
                                file_result *res, pack_stats *stats, poa_err *err)
{
    const shard_plan *sp = &p->shards[k];
    const poa_scan_split *s = &p->scan;
    poa_shard_record *recs = poa_xmalloc((sp->count ? sp->count : 1) * sizeof *recs);
    poa_strtab skipped, reasons;
    poa_strtab_init(&skipped);
    poa_strtab_init(&reasons);
    size_t n = 0;
    for (size_t j = 0; j < sp->count; j++) {
        size_t i = sp->first + j;
        const char *name = poa_strtab_get(&s->files, i);
        account(&res[j], stats);
        if (!res[j].ok) {
            poa_warn("%s %s/%s: %s", o->strict ? "undecodable" : "skipped", s->name, name,
                     res[j].reason);
            poa_strtab_push(&skipped, name);
            poa_strtab_push(&reasons, res[j].reason);
            continue;
        }
        recs[n++] = (poa_shard_record){res[j].data, res[j].size,   s->labels[i], (uint64_t) i,
                                       name,        res[j].height, res[j].width};
    }
    poa_status st = POA_OK;
    char path[4400];
    pack_shard_path(path, sizeof path, o->output, s->name, k, p->n_shards);
    if (o->strict && skipped.n) {
        st = poa_err_set(err, POA_ERR_DECODE,
                         "--strict: %zu file(s) of %s could not be packed (listed above); "
                         "shard %s not written",
                         skipped.n, s->name, path);
    } else {
        poa_shard_info info;
        pack_shard_info(o, p, k, &info);
        st = poa_shard_write(path, &info, recs, n, &skipped, &reasons, err);
        if (st == POA_OK) stats->shards_written++;
    }
    poa_strtab_free(&skipped);
    poa_strtab_free(&reasons);
    free(recs);
    return st;
}

poa_status pack_build_shard(const pack_options *o, const split_plan *p, size_t k, pack_stats *stats,
                            volatile long long *files_done, poa_err *err)
{
    const shard_plan *sp = &p->shards[k];
    shard_job job = {o, p,         sp, poa_xcalloc(sp->count ? sp->count : 1, sizeof(file_result)),
                     0, files_done};
    run_workers(&job, o->threads);
    poa_status st = write_results(o, p, k, job.res, stats, err);
    for (size_t j = 0; j < sp->count; j++) free(job.res[j].data);
    free(job.res);
    return st;
}

int pack_shard_complete(const pack_options *o, const split_plan *p, size_t k, char *why, size_t n)
{
    char path[4400];
    pack_shard_path(path, sizeof path, o->output, p->scan.name, k, p->n_shards);
    why[0] = '\0';
    if (access(path, F_OK) != 0) return 0;
    poa_shard s;
    poa_err err = {0};
    if (poa_shard_open(&s, path, 0, &err) != POA_OK) {
        snprintf(why, n, "%s", err.msg);
        return 0;
    }
    poa_shard_info want;
    pack_shard_info(o, p, k, &want);
    int same = strcmp(s.info.split, want.split) == 0 && s.info.shard_index == want.shard_index &&
               s.info.shard_count == want.shard_count && s.info.source_first == want.source_first &&
               s.info.source_count == want.source_count &&
               s.info.plan_fingerprint == want.plan_fingerprint;
    if (!same)
        snprintf(why, n,
                 "%s: written for another input or options (file list, sizes, dates, "
                 "--max-side/--quality or shard size changed)",
                 path);
    poa_shard_close(&s);
    return same;
}
