/* pack_verify.c — poa-pack --verify DIR: re-read a packed directory and check it against its
 * metadata: schema of every file, counts, the entries of each shard, per-record and whole-array
 * CRC-32, and with --decode a full JPEG decode of every record.  Shards are divided over the
 * MPI ranks. */
#include "pack.h"

#include "common/log.h"
#include "common/timer.h"
#include "data/jpeg.h"
#include "data/npy.h"
#include "data/schema.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entries [first, first + n) of the metadata must be the shard's records. */
static poa_status check_entries(const poa_meta_split *m, size_t first, const poa_shard *s,
                                poa_err *err)
{
    for (int64_t i = 0; i < s->num_images; i++) {
        size_t e = first + (size_t) i;
        uint32_t ci = s->labels[i] < 0 ? UINT32_MAX : (uint32_t) s->labels[i];
        const char *name = poa_strtab_get(&s->file_names, (size_t) i);
        if (m->ids[e] != s->ids[i] || m->class_index[e] != ci ||
            strcmp(poa_strtab_get(&m->file_names, e), name) != 0)
            return poa_err_set(err, POA_ERR_FORMAT,
                               "%s: record %lld (%s, id %llu, class %u) differs from metadata "
                               "entry %zu (%s, id %llu, class %u)",
                               s->path, (long long) i, name, (unsigned long long) s->ids[i], ci, e,
                               poa_strtab_get(&m->file_names, e), (unsigned long long) m->ids[e],
                               m->class_index[e]);
    }
    return POA_OK;
}

static poa_status decode_all(const poa_shard *s, poa_err *err)
{
    poa_jpeg_decoder dec;
    poa_jpeg_decoder_init(&dec);
    poa_image im = {0};
    uint8_t *buf = NULL;
    size_t cap = 0, size = 0;
    poa_status st = POA_OK;
    for (int64_t i = 0; i < s->num_images && st == POA_OK; i++) {
        st = poa_shard_read(s, i, &buf, &cap, &size, err);
        if (st == POA_OK) st = poa_jpeg_decode(&dec, buf, size, 8, &im, NULL, err);
        if (st == POA_OK &&
            ((uint32_t) im.h != s->sizes[2 * i] || (uint32_t) im.w != s->sizes[2 * i + 1]))
            st = poa_err_set(err, POA_ERR_FORMAT, "decoded size %dx%d, image_size says %ux%u", im.w,
                             im.h, s->sizes[2 * i + 1], s->sizes[2 * i]);
        if (st != POA_OK)
            poa_err_prefix(err, "%s: record %lld (%s): ", s->path, (long long) i,
                           poa_strtab_get(&s->file_names, (size_t) i));
    }
    free(buf);
    poa_image_free(&im);
    poa_jpeg_decoder_free(&dec);
    return st;
}

static poa_status verify_shard(const pack_options *o, const poa_meta_split *m, size_t k,
                               size_t first, double *bytes, poa_err *err)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", o->verify_dir, poa_strtab_get(&m->shard_files, k));
    poa_shard s;
    poa_status st = poa_shard_open(&s, path, POA_SHARD_LOAD_NAMES, err);
    if (st != POA_OK) return st;
    if (strcmp(s.info.split, m->name) != 0 || s.info.shard_index != (int64_t) k ||
        s.info.shard_count != (int64_t) m->shard_files.n)
        st = poa_err_set(err, POA_ERR_FORMAT,
                         "%s: split/shard attributes (%s, %lld of %lld) do not match the "
                         "metadata (%s, %zu of %zu)",
                         path, s.info.split, (long long) s.info.shard_index,
                         (long long) s.info.shard_count, m->name, k, m->shard_files.n);
    else if ((uint64_t) s.num_images != m->shard_num_images[k])
        st = poa_err_set(err, POA_ERR_FORMAT, "%s: %lld images, the metadata says %llu", path,
                         (long long) s.num_images, (unsigned long long) m->shard_num_images[k]);
    if (st == POA_OK) st = check_entries(m, first, &s, err);
    if (st == POA_OK) st = poa_shard_check_crc(&s, err);
    if (st == POA_OK && o->decode) st = decode_all(&s, err);
    *bytes += (double) s.num_bytes;
    poa_shard_close(&s);
    return st;
}

int pack_verify(const pack_options *o, int rank, int size)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", o->verify_dir, POA_METADATA_FILE);
    poa_metadata m;
    poa_err err = {0};
    double t0 = poa_now();
    poa_status st = poa_metadata_read(path, &m, POA_META_LOAD_ENTRIES, &err);
    if (st != POA_OK) {
        if (rank == 0) poa_error("poa-pack --verify: %s", err.msg);
        return poa_status_exit_code(st);
    }
    double local[3] = {0, 0, 0}; /* failures, shards checked, bytes */
    size_t job = 0;
    for (int i = 0; i < m.n_splits; i++) {
        const poa_meta_split *sp = &m.splits[i];
        size_t first = 0;
        for (size_t k = 0; k < sp->shard_files.n; k++, job++) {
            if ((int) (job % (size_t) size) == rank) {
                poa_err e = {0};
                if (verify_shard(o, sp, k, first, &local[2], &e) != POA_OK) {
                    poa_error("%s", e.msg);
                    local[0]++;
                }
                local[1]++;
            }
            first += sp->shard_num_images[k];
        }
    }
    double total[3];
    MPI_Allreduce(local, total, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        for (int i = 0; i < m.n_splits; i++)
            poa_info("%s: %zu shards, %lld images, %zu skipped at packing", m.splits[i].name,
                     m.splits[i].shard_files.n, (long long) m.splits[i].num_images,
                     m.splits[i].skipped_names.n);
        poa_info("poa-pack --verify %s: %s — %.0f shards, %.1f MB checked%s in %.1f s",
                 o->verify_dir, total[0] == 0 ? "OK" : "FAILED", total[1], total[2] / 1e6,
                 o->decode ? " and decoded" : "", poa_now() - t0);
        if (total[0] > 0) poa_error("%.0f shard(s) failed verification (messages above)", total[0]);
    }
    int code = total[0] == 0 ? POA_EXIT_OK : POA_EXIT_DATA;
    if (rank == 0 && code == POA_EXIT_OK && o->export_extra) {
        if (poa_metadata_export_npy(&m, o->export_extra, &err) == POA_OK)
            poa_info("wrote the official metadata files (dump_extra) to %s", o->export_extra);
        else {
            poa_error("poa-pack: %s", err.msg);
            code = poa_status_exit_code(err.code);
        }
    }
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    poa_metadata_free(&m);
    return code;
}

poa_status pack_export_extra(const char *dir, const char *extra, poa_err *err)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, POA_METADATA_FILE);
    poa_metadata m;
    poa_status st = poa_metadata_read(path, &m, POA_META_LOAD_ENTRIES, err);
    if (st != POA_OK) return st;
    st = poa_metadata_export_npy(&m, extra, err);
    poa_metadata_free(&m);
    if (st == POA_OK) poa_info("wrote the official metadata files (dump_extra) to %s", extra);
    return st;
}
