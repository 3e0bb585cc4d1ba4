/* dataset.c — see dataset.h. */
#include "data/dataset.h"
#include "data/metadata.h"
#include "data/schema.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static poa_status open_shards(poa_dataset *d, const poa_meta_split *m, poa_err *err)
{
    if (m->shard_files.n > (size_t) INT_MAX)
        return poa_err_set(err, POA_ERR_FORMAT, "split '%s' lists %zu shards (at most %d)",
                           d->split, m->shard_files.n, INT_MAX);
    d->num_shards = (int) m->shard_files.n;
    d->shards = poa_xcalloc((size_t) (d->num_shards ? d->num_shards : 1), sizeof *d->shards);
    d->first = poa_xcalloc((size_t) d->num_shards + 1, sizeof *d->first);
    for (int k = 0; k < d->num_shards; k++) d->shards[k].fd = -1;
    for (int k = 0; k < d->num_shards; k++) {
        char path[8200];
        snprintf(path, sizeof path, "%s/%s", d->dir, poa_strtab_get(&m->shard_files, (size_t) k));
        poa_status st = poa_shard_open(&d->shards[k], path, POA_SHARD_INDEX_ONLY, err);
        if (st != POA_OK) return st;
        const poa_shard *s = &d->shards[k];
        if ((uint64_t) s->num_images != m->shard_num_images[k] || strcmp(s->info.split, d->split))
            return poa_err_set(err, POA_ERR_FORMAT,
                               "%s: holds %lld images of split '%s', %s/%s says %llu of '%s' "
                               "(a shard from another packing run? run poa-pack --verify %s)",
                               path, (long long) s->num_images, s->info.split, d->dir,
                               POA_METADATA_FILE, (unsigned long long) m->shard_num_images[k],
                               d->split, d->dir);
        for (int64_t i = 0; i < s->num_images; i++)
            if (s->labels[i] < -1 || s->labels[i] >= (int32_t) m->class_ids.n)
                return poa_err_set(
                    err, POA_ERR_FORMAT,
                    "%s: record %lld has label %d, outside [-1, %zu) (the classes of "
                    "%s/%s; run poa-pack --verify %s)",
                    path, (long long) i, s->labels[i], m->class_ids.n, d->dir, POA_METADATA_FILE,
                    d->dir);
        d->first[k + 1] = d->first[k] + s->num_images;
    }
    return POA_OK;
}

poa_status poa_dataset_open(poa_dataset *d, const char *dir, const char *split, poa_err *err)
{
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    snprintf(d->split, sizeof d->split, "%s", split);
    char path[8200];
    snprintf(path, sizeof path, "%s/%s", dir, POA_METADATA_FILE);
    poa_metadata m;
    poa_status st = poa_metadata_read(path, &m, 0, err);
    if (st != POA_OK) return st;
    const poa_meta_split *ms = poa_metadata_find(&m, split);
    if (!ms) {
        st = poa_err_set(err, POA_ERR_NOTFOUND,
                         "%s: no split '%s' (pack it with poa-pack --splits)", path, split);
    } else {
        d->num_images = ms->num_images;
        d->num_classes = (int) ms->class_ids.n;
        st = open_shards(d, ms, err);
        if (st == POA_OK && d->num_images == 0)
            st = poa_err_set(err, POA_ERR_FORMAT, "%s: split '%s' holds no images", path, split);
    }
    poa_metadata_free(&m);
    if (st != POA_OK) poa_dataset_close(d);
    return st;
}

void poa_dataset_close(poa_dataset *d)
{
    for (int k = 0; k < d->num_shards; k++) poa_shard_close(&d->shards[k]);
    free(d->shards);
    free(d->first);
    d->shards = NULL;
    d->first = NULL;
    d->num_shards = 0;
}

void poa_dataset_locate(const poa_dataset *d, int64_t i, int *shard, int64_t *record)
{
    int lo = 0, hi = d->num_shards - 1;
    while (lo < hi) { /* last shard whose first entry is <= i */
        int mid = (lo + hi + 1) / 2;
        if (d->first[mid] <= i)
            lo = mid;
        else
            hi = mid - 1;
    }
    *shard = lo;
    *record = i - d->first[lo];
}

poa_status poa_dataset_read(const poa_dataset *d, int64_t i, uint8_t **buf, size_t *cap,
                            size_t *size, int32_t *label, poa_err *err)
{
    if (i < 0 || i >= d->num_images)
        return poa_err_set(err, POA_ERR_ARG, "entry %lld outside [0, %lld)", (long long) i,
                           (long long) d->num_images);
    int k;
    int64_t r;
    poa_dataset_locate(d, i, &k, &r);
    if (label) *label = d->shards[k].labels[r];
    return poa_shard_read(&d->shards[k], r, buf, cap, size, err);
}
