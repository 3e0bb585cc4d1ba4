/* pack_meta.c — metadata.h5 from the complete shards of every split, and the list of skipped
 * files for the summary. */
#include "pack.h"

#include "common/log.h"
#include "data/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append_shard(poa_meta_split *m, const poa_shard *s, size_t *cap)
{
    size_t n0 = (size_t) m->num_images, need = n0 + (size_t) s->num_images;
    if (need > *cap) {
        *cap = need > 2 * *cap ? need : 2 * *cap;
        m->actual_index = poa_xrealloc(m->actual_index, *cap * sizeof *m->actual_index);
        m->class_index = poa_xrealloc(m->class_index, *cap * sizeof *m->class_index);
        m->ids = poa_xrealloc(m->ids, *cap * sizeof *m->ids);
    }
    for (int64_t i = 0; i < s->num_images; i++) {
        const char *name = poa_strtab_get(&s->file_names, (size_t) i);
        m->actual_index[n0 + i] = poa_actual_index(name);
        m->class_index[n0 + i] = s->labels[i] < 0 ? UINT32_MAX : (uint32_t) s->labels[i];
        m->ids[n0 + i] = s->ids[i];
        poa_strtab_push(&m->file_names, name);
    }
    for (size_t i = 0; i < s->skipped_names.n; i++) {
        poa_strtab_push(&m->skipped_names, poa_strtab_get(&s->skipped_names, i));
        poa_strtab_push(&m->skipped_reasons, poa_strtab_get(&s->skipped_reasons, i));
    }
    m->num_images = (int64_t) need;
}

static poa_status collect_split(const pack_options *o, split_plan *p, poa_meta_split *m,
                                poa_err *err)
{
    const poa_scan_split *s = &p->scan;
    for (size_t c = 0; c < s->classes.n; c++) {
        poa_strtab_push(&m->class_ids, poa_strtab_get(&s->classes, c));
        poa_strtab_push(&m->class_names, poa_strtab_get(&s->class_names, c));
    }
    m->shard_num_images = poa_xmalloc((p->n_shards ? p->n_shards : 1) * sizeof(uint64_t));
    m->num_source_files = (int64_t) s->files.n;
    size_t cap = 0;
    for (size_t k = 0; k < p->n_shards; k++) {
        char path[4400], name[128];
        pack_shard_path(path, sizeof path, o->output, s->name, k, p->n_shards);
        pack_shard_name(name, sizeof name, s->name, k, p->n_shards);
        poa_shard sh;
        poa_status st = poa_shard_open(&sh, path, POA_SHARD_LOAD_NAMES, err);
        if (st != POA_OK) return st;
        append_shard(m, &sh, &cap);
        poa_strtab_push(&m->shard_files, name);
        m->shard_num_images[k] = (uint64_t) sh.num_images;
        poa_shard_close(&sh);
    }
    return POA_OK;
}

static void print_skipped(const poa_metadata *m)
{
    size_t total = 0, shown = 0;
    for (int i = 0; i < m->n_splits; i++) total += m->splits[i].skipped_names.n;
    if (total == 0) return;
    poa_info("skipped %zu file(s) that could not be packed:", total);
    for (int i = 0; i < m->n_splits; i++) {
        const poa_meta_split *s = &m->splits[i];
        for (size_t j = 0; j < s->skipped_names.n && shown < 100; j++, shown++)
            poa_info("  %s/%s: %s", s->name, poa_strtab_get(&s->skipped_names, j),
                     poa_strtab_get(&s->skipped_reasons, j));
    }
    if (total > shown)
        poa_info("  ... and %zu more (all listed in metadata.h5, /<split>/skipped)", total - shown);
}

poa_status pack_write_metadata(const pack_options *o, split_plan *plans, int n, size_t *missing,
                               poa_err *err)
{
    *missing = 0;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < plans[i].n_shards; k++) {
            char why[4600];
            if (!pack_shard_complete(o, &plans[i], k, why, sizeof why)) (*missing)++;
        }
    if (*missing) return POA_OK;
    poa_metadata m;
    poa_metadata_init(&m);
    snprintf(m.source_root, sizeof m.source_root, "%s", o->root);
    poa_status st = POA_OK;
    for (int i = 0; i < n && st == POA_OK; i++)
        st = collect_split(o, &plans[i], poa_metadata_add_split(&m, plans[i].scan.name), err);
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", o->output, POA_METADATA_FILE);
    if (st == POA_OK) st = poa_metadata_write(path, &m, err);
    if (st == POA_OK) print_skipped(&m);
    poa_metadata_free(&m);
    return st;
}
