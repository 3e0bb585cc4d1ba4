/* pack.h — internals of poa-pack (data-prep/README.md describes the program). */
#ifndef POA_DATAPREP_PACK_H
#define POA_DATAPREP_PACK_H

#include "common/poa_error.h"
#include "data/metadata.h"
#include "data/scan.h"
#include "data/shard.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pack_options {
    const char *root, *output, *verify_dir, *export_extra;
    char splits[POA_MAX_SPLITS][16];
    int n_splits;
    long shard_images; /* images per shard (0: use shard_mb)       */
    double shard_mb;   /* input megabytes per shard                */
    int max_side;      /* re-encode images larger than this (0: no) */
    int quality;       /* JPEG quality of re-encoded images        */
    int threads;
    int range_kind; /* 0 all shards, 1 [r0, r1), 2 k % r1 == r0 */
    long r0, r1;
    int strict, verbose, decode;
} pack_options;

/* One planned shard: files [first, first + count) of the split's scan. */
typedef struct shard_plan {
    size_t first, count;
    uint64_t fingerprint;
} shard_plan;

typedef struct split_plan {
    poa_scan_split scan;
    shard_plan *shards;
    size_t n_shards;
} split_plan;

/* Counters of one rank, reduced over ranks for the summary. */
typedef struct pack_stats {
    double images, bytes, skipped, shards_written, shards_kept, gray, cmyk, progressive, warned,
        reencoded, input_bytes;
} pack_stats;
#define PACK_STATS_N (sizeof(pack_stats) / sizeof(double))

/* pack_plan.c: rank 0 reads labels.txt and scans the splits, every rank receives the scan;
 * then the shard plan of each split. */
poa_status pack_scan_all(const pack_options *o, split_plan *plans, poa_err *err);
void pack_plan_shards(const pack_options *o, split_plan *p);
void pack_plans_free(split_plan *plans, int n);
/* "<output>/<split>-<k:05d>-of-<n:05d>.h5" */
void pack_shard_path(char *buf, size_t n, const char *dir, const char *split, size_t k,
                     size_t count);
void pack_shard_name(char *buf, size_t n, const char *split, size_t k, size_t count);
/* Whether shard k of this plan is to be done by this rank (shard range, then round-robin). */
int pack_shard_is_mine(const pack_options *o, size_t k, size_t n_shards, int rank, int size);
void pack_shard_info(const pack_options *o, const split_plan *p, size_t k, poa_shard_info *info);

/* pack_shard.c: build shard k (threads), write it; strict mode fails on any skipped file.
 * *files_done is advanced as files are processed (progress). */
poa_status pack_build_shard(const pack_options *o, const split_plan *p, size_t k, pack_stats *stats,
                            volatile long long *files_done, poa_err *err);
/* Remove temporary files of a shard left by a killed run ("<final>.tmp.<host>.<pid>"). */
void pack_remove_stale_tmp(const char *final_path);
/* Whether the final file of shard k is complete and belongs to this plan; *why says why not
 * (empty when the file does not exist). */
int pack_shard_complete(const pack_options *o, const split_plan *p, size_t k, char *why, size_t n);

/* pack_meta.c: when every shard of every split is complete, write metadata.h5 (rank 0) and
 * print the skipped files.  *missing gets the number of shards still missing. */
poa_status pack_write_metadata(const pack_options *o, split_plan *plans, int n, size_t *missing,
                               poa_err *err);

/* pack_verify.c: poa-pack --verify DIR (all ranks). Returns an exit code. */
int pack_verify(const pack_options *o, int rank, int size);
/* --export-extra EXTRA: the official dump_extra() .npy files of the packed folder dir. */
poa_status pack_export_extra(const char *dir, const char *extra, poa_err *err);

#endif
