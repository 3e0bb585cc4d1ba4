/* pack_plan.c — scanning ROOT on rank 0, broadcasting the file lists, planning the shards. */
#include "pack.h"

#include "common/log.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ scan on rank 0 */
static void report_scan(const poa_scan_split *s, const char *root)
{
    for (size_t i = 0; i < s->unlabeled_classes.n; i++)
        poa_warn("%s/%s/%s: class folder has no row in %s/labels.txt; its images are packed "
                 "with an empty class name",
                 root, s->name, poa_strtab_get(&s->unlabeled_classes, i), root);
    for (size_t i = 0; i < s->empty_classes.n; i++)
        poa_warn("%s/%s/%s: class folder without image files (the class index is kept)", root,
                 s->name, poa_strtab_get(&s->empty_classes, i));
    size_t show = s->ignored.n < 20 ? s->ignored.n : 20;
    for (size_t i = 0; i < show; i++)
        poa_info("ignored %s/%s", s->name, poa_strtab_get(&s->ignored, i));
    if (s->ignored.n > show)
        poa_info("ignored %zu more entries of %s/%s (not image file names)", s->ignored.n - show,
                 root, s->name);
    poa_info("%s: %zu image files in %zu class folders", s->name, s->files.n, s->classes.n);
}

static poa_status scan_rank0(const pack_options *o, split_plan *plans, poa_err *err)
{
    poa_labels labels;
    int need_labels = 0;
    for (int i = 0; i < o->n_splits; i++)
        if (strcmp(o->splits[i], "test") != 0) need_labels = 1;
    char path[4200];
    snprintf(path, sizeof path, "%s/labels.txt", o->root);
    poa_status st = need_labels ? poa_labels_read(path, &labels, err) : POA_OK;
    for (int i = 0; i < o->n_splits && st == POA_OK; i++) {
        st = poa_scan_split_dir(o->root, o->splits[i], need_labels ? &labels : NULL, &plans[i].scan,
                                err);
        if (st == POA_ERR_NOTFOUND)
            poa_err_prefix(err, "split '%s' requested (--splits %s...): ", o->splits[i],
                           o->splits[0]);
        if (st == POA_OK) report_scan(&plans[i].scan, o->root);
        if (st == POA_OK && o->strict && plans[i].scan.unlabeled_classes.n)
            st = poa_err_set(err, POA_ERR_FORMAT,
                             "--strict: %zu class folder(s) of %s have no row in %s",
                             plans[i].scan.unlabeled_classes.n, o->splits[i], path);
    }
    if (need_labels && (st == POA_OK || labels.wnids.n)) poa_labels_free(&labels);
    return st;
}

/* ------------------------------------------------------------------ broadcast */
typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *v, size_t n)
{
    if (n == 0) return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = poa_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}

static void get(const bytes *b, size_t *pos, void *v, size_t n)
{
    if (n == 0) return;
    POA_ASSERT(*pos + n <= b->n);
    memcpy(v, b->p + *pos, n);
    *pos += n;
}

static void put_strtab(bytes *b, const poa_strtab *t)
{
    uint64_t n = t->n, used = t->used;
    put(b, &n, 8);
    put(b, &used, 8);
    put(b, t->off, n * sizeof *t->off);
    put(b, t->buf, used);
}

static void get_strtab(const bytes *b, size_t *pos, poa_strtab *t)
{
    uint64_t n, used;
    get(b, pos, &n, 8);
    get(b, pos, &used, 8);
    poa_strtab_init(t);
    t->n = t->cap = n;
    t->used = t->size = used;
    t->off = poa_xmalloc((n ? n : 1) * sizeof *t->off);
    t->buf = poa_xmalloc(used ? used : 1);
    get(b, pos, t->off, n * sizeof *t->off);
    get(b, pos, t->buf, used);
}

static void serialise(const split_plan *plans, int n, bytes *b)
{
    for (int i = 0; i < n; i++) {
        const poa_scan_split *s = &plans[i].scan;
        put(b, s->name, sizeof s->name);
        put(b, &s->labeled, sizeof s->labeled);
        put_strtab(b, &s->classes);
        put_strtab(b, &s->class_names);
        put_strtab(b, &s->files);
        put(b, s->labels, s->files.n * sizeof *s->labels);
        put(b, s->sizes, s->files.n * sizeof *s->sizes);
        put(b, s->mtimes, s->files.n * sizeof *s->mtimes);
    }
}

static void deserialise(const bytes *b, split_plan *plans, int n)
{
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        poa_scan_split *s = &plans[i].scan;
        memset(s, 0, sizeof *s);
        get(b, &pos, s->name, sizeof s->name);
        get(b, &pos, &s->labeled, sizeof s->labeled);
        get_strtab(b, &pos, &s->classes);
        get_strtab(b, &pos, &s->class_names);
        get_strtab(b, &pos, &s->files);
        size_t nf = s->files.n;
        s->cap = nf ? nf : 1;
        s->labels = poa_xmalloc(s->cap * sizeof *s->labels);
        s->sizes = poa_xmalloc(s->cap * sizeof *s->sizes);
        s->mtimes = poa_xmalloc(s->cap * sizeof *s->mtimes);
        get(b, &pos, s->labels, nf * sizeof *s->labels);
        get(b, &pos, s->sizes, nf * sizeof *s->sizes);
        get(b, &pos, s->mtimes, nf * sizeof *s->mtimes);
        poa_strtab_init(&s->unlabeled_classes);
        poa_strtab_init(&s->empty_classes);
        poa_strtab_init(&s->ignored);
    }
}

static void bcast_bytes(bytes *b, int rank)
{
    uint64_t n = b->n;
    MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (rank != 0) {
        b->p = poa_xmalloc(n ? n : 1);
        b->n = b->cap = n;
    }
    for (uint64_t off = 0; off < n; off += 1 << 30) {
        int chunk = (int) (n - off < (1u << 30) ? n - off : (1u << 30));
        MPI_Bcast(b->p + off, chunk, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
}

poa_status pack_scan_all(const pack_options *o, split_plan *plans, poa_err *err)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int st = POA_OK;
    if (rank == 0) st = scan_rank0(o, plans, err);
    MPI_Bcast(&st, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (st != POA_OK) {
        if (rank != 0) poa_err_set(err, (poa_status) st, "scan failed on rank 0");
        return (poa_status) st;
    }
    if (size == 1) return POA_OK;
    bytes b = {0};
    if (rank == 0) serialise(plans, o->n_splits, &b);
    bcast_bytes(&b, rank);
    if (rank != 0) deserialise(&b, plans, o->n_splits);
    free(b.p);
    return POA_OK;
}

/* ------------------------------------------------------------------ plan */
static uint64_t fingerprint(const pack_options *o, const poa_scan_split *s, size_t first,
                            size_t count, size_t k, size_t n_shards)
{
    uint64_t h = POA_FNV64_INIT;
    int64_t head[6] = {(int64_t) first,    (int64_t) count, (int64_t) k,
                       (int64_t) n_shards, o->max_side,     o->max_side ? o->quality : 0};
    h = poa_fnv1a64(h, s->name, strlen(s->name) + 1);
    h = poa_fnv1a64(h, head, sizeof head);
    for (size_t i = first; i < first + count; i++) {
        const char *f = poa_strtab_get(&s->files, i);
        h = poa_fnv1a64(h, f, strlen(f) + 1);
        h = poa_fnv1a64(h, &s->labels[i], sizeof s->labels[i]);
        h = poa_fnv1a64(h, &s->sizes[i], sizeof s->sizes[i]);
        h = poa_fnv1a64(h, &s->mtimes[i], sizeof s->mtimes[i]);
    }
    return h;
}

void pack_plan_shards(const pack_options *o, split_plan *p)
{
    const poa_scan_split *s = &p->scan;
    size_t n = s->files.n, cap = 16;
    p->shards = poa_xmalloc(cap * sizeof *p->shards);
    p->n_shards = 0;
    double limit = o->shard_mb * 1e6;
    for (size_t i = 0; i < n;) {
        size_t first = i, count = 0;
        double acc = 0;
        while (i < n) {
            double sz = s->sizes[i] > 0 ? (double) s->sizes[i] : 0;
            int full = o->shard_images > 0 ? count >= (size_t) o->shard_images
                                           : count > 0 && acc + sz > limit;
            if (full) break;
            acc += sz;
            count++;
            i++;
        }
        if (p->n_shards == cap) p->shards = poa_xrealloc(p->shards, (cap *= 2) * sizeof *p->shards);
        p->shards[p->n_shards++] = (shard_plan){first, count, 0};
    }
    for (size_t k = 0; k < p->n_shards; k++)
        p->shards[k].fingerprint =
            fingerprint(o, s, p->shards[k].first, p->shards[k].count, k, p->n_shards);
}

void pack_plans_free(split_plan *plans, int n)
{
    for (int i = 0; i < n; i++) {
        poa_scan_split_free(&plans[i].scan);
        free(plans[i].shards);
    }
}

void pack_shard_name(char *buf, size_t n, const char *split, size_t k, size_t count)
{
    snprintf(buf, n, "%s-%05zu-of-%05zu.h5", split, k, count);
}

void pack_shard_path(char *buf, size_t n, const char *dir, const char *split, size_t k,
                     size_t count)
{
    char name[128];
    pack_shard_name(name, sizeof name, split, k, count);
    snprintf(buf, n, "%s/%s", dir, name);
}

int pack_shard_is_mine(const pack_options *o, size_t k, size_t n_shards, int rank, int size)
{
    (void) n_shards;
    size_t j; /* position of k among the shards of this task */
    if (o->range_kind == 1) {
        if ((long) k < o->r0 || (long) k >= o->r1) return 0;
        j = k - (size_t) o->r0;
    } else if (o->range_kind == 2) {
        if ((long) (k % (size_t) o->r1) != o->r0) return 0;
        j = k / (size_t) o->r1;
    } else {
        j = k;
    }
    return (int) (j % (size_t) size) == rank;
}

void pack_shard_info(const pack_options *o, const split_plan *p, size_t k, poa_shard_info *info)
{
    memset(info, 0, sizeof *info);
    snprintf(info->split, sizeof info->split, "%s", p->scan.name);
    info->shard_index = (int64_t) k;
    info->shard_count = (int64_t) p->n_shards;
    info->source_first = (int64_t) p->shards[k].first;
    info->source_count = (int64_t) p->shards[k].count;
    info->plan_fingerprint = p->shards[k].fingerprint;
    info->reencode_max_side = o->max_side;
    info->reencode_quality = o->max_side ? o->quality : 0;
}
