/* fuzz_seeds.c — writes the HDF5 and JPEG seeds of the fuzz targets with poa's own writers, so
 * that the seeds are exactly what poa-pack and poa-train produce (tests/fuzz/make-seeds.sh puts
 * them under tests/fuzz/corpus/<target>/):
 *   OUT/checkpoint/full.h5, OUT/checkpoint/teacher.h5  the table of fuzz_tables.h
 *   OUT/shard/train.h5, OUT/shard/test.h5               3 tiny JPEGs each (+ one skipped file)
 *   OUT/metadata/metadata.h5                            a train and a test split
 *   OUT/jpeg/<name>.jpg                                 gray, 4:2:0 and 4:4:4 colour
 *     fuzz_seeds OUT */
#include "fuzz_tables.h"

#include "data/jpeg.h"
#include "data/metadata.h"
#include "data/shard.h"
#include "io/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void die(const poa_err *e)
{
    fprintf(stderr, "fuzz_seeds: %s\n", e->msg);
    exit(1);
}

static void picture(uint8_t *rgb, int w, int h, int k)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                rgb[3 * (y * w + x) + c] = (uint8_t) (x * 31 + y * 17 + c * 70 + k * 50);
}

static void write_bytes(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(d, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* JPEG k: w x h, gray / 4:2:0 / 4:4:4 by k % 3. */
static uint8_t *jpeg(int k, int w, int h, size_t *n)
{
    uint8_t *rgb = malloc((size_t) w * h * 3), *out = NULL;
    picture(rgb, w, h, k);
    poa_err e;
    if (poa_jpeg_encode(rgb, w, h, k % 3 == 0, 75, k % 3 == 2, &out, n, &e) != POA_OK) die(&e);
    free(rgb);
    return out;
}

static void seeds_jpeg(const char *out)
{
    static const int sz[][2] = {{8, 8}, {17, 9}, {16, 24}};
    for (int k = 0; k < 3; k++) {
        size_t n;
        uint8_t *j = jpeg(k, sz[k][0], sz[k][1], &n);
        char p[4200];
        snprintf(p, sizeof p, "%s/jpeg/seed-%d.jpg", out, k);
        write_bytes(p, j, n);
        free(j);
    }
}

static void seeds_shard(const char *out, const char *split, int labeled)
{
    poa_shard_record recs[3];
    uint8_t *bufs[3];
    char names[3][32];
    for (int i = 0; i < 3; i++) {
        size_t n;
        bufs[i] = jpeg(i, 8 + 4 * i, 8, &n);
        snprintf(names[i], sizeof names[i], labeled ? "c%d/img_%d.JPEG" : "img_%d.JPEG", i, i);
        recs[i] = (poa_shard_record){bufs[i],  n, labeled ? i % 2 : -1,  (uint64_t) i,
                                     names[i], 8, (uint32_t) (8 + 4 * i)};
    }
    poa_strtab skipped, reasons;
    poa_strtab_init(&skipped);
    poa_strtab_init(&reasons);
    poa_strtab_push(&skipped, labeled ? "c1/broken.JPEG" : "broken.JPEG");
    poa_strtab_push(&reasons, "not a JPEG file (starts with 0x00 0x00)");
    poa_shard_info info = {"", 0, 1, 0, 4, 0x0123456789abcdefull, 0, 90};
    snprintf(info.split, sizeof info.split, "%s", split);
    char p[4200];
    snprintf(p, sizeof p, "%s/shard/%s.h5", out, split);
    poa_err e;
    if (poa_shard_write(p, &info, recs, 3, &skipped, &reasons, &e) != POA_OK) die(&e);
    for (int i = 0; i < 3; i++) free(bufs[i]);
    poa_strtab_free(&skipped);
    poa_strtab_free(&reasons);
}

static void seeds_metadata(const char *out)
{
    poa_metadata m;
    poa_metadata_init(&m);
    snprintf(m.source_root, sizeof m.source_root, "/data/imagenet");
    for (int s = 0; s < 2; s++) {
        int labeled = s == 0, n = 3;
        poa_meta_split *ms = poa_metadata_add_split(&m, labeled ? "train" : "test");
        if (labeled) {
            poa_strtab_push(&ms->class_ids, "n01440764");
            poa_strtab_push(&ms->class_ids, "n01443537");
            poa_strtab_push(&ms->class_names, "tench");
            poa_strtab_push(&ms->class_names, "goldfish, Carassius auratus");
        }
        ms->num_images = n;
        ms->num_source_files = n + 1;
        ms->actual_index = calloc((size_t) n, 4);
        ms->class_index = calloc((size_t) n, 4);
        ms->ids = calloc((size_t) n, 8);
        ms->shard_num_images = calloc(1, 8);
        ms->shard_num_images[0] = (uint64_t) n;
        for (int i = 0; i < n; i++) {
            char name[48];
            snprintf(name, sizeof name, labeled ? "n0144%d/x_%d.JPEG" : "test_%d.JPEG", i, 10 + i);
            poa_strtab_push(&ms->file_names, name);
            ms->actual_index[i] = (uint32_t) (10 + i);
            ms->class_index[i] = labeled ? (uint32_t) (i % 2) : UINT32_MAX;
            ms->ids[i] = (uint64_t) i;
        }
        poa_strtab_push(&ms->shard_files,
                        labeled ? "train-00000-of-00001.h5" : "test-00000-of-00001.h5");
        poa_strtab_push(&ms->skipped_names, "broken.JPEG");
        poa_strtab_push(&ms->skipped_reasons, "empty file (0 bytes)");
    }
    char p[4200];
    snprintf(p, sizeof p, "%s/metadata/metadata.h5", out);
    poa_err e;
    if (poa_metadata_write(p, &m, &e) != POA_OK) die(&e);
    poa_metadata_free(&m);
}

static void seeds_checkpoint(const char *out)
{
    poa_param_table t;
    fuzz_ckpt_table(&t);
    float *a = calloc(t.total, sizeof(float)), *b = calloc(t.total, sizeof(float));
    for (size_t i = 0; i < t.total; i++) a[i] = (float) i * 0.25f, b[i] = -(float) i;
    float center[FUZZ_CKPT_ARRAY_N] = {0.5f, -1.0f, 2.0f};
    poa_ckpt_array arr = {FUZZ_CKPT_ARRAY, center, FUZZ_CKPT_ARRAY_N};
    uint64_t s0[3] = {1, 2, 3}, s1[2] = {4, 5}, *states[2] = {s0, s1};
    size_t lens[2] = {3, 2};
    poa_ckpt_header h = {.iteration = 7,
                         .epoch = 0,
                         .adam_step = 8,
                         .world_size = 2,
                         .rank_groups_per_rank = 1,
                         .config_yaml = "train:\n  seed: 0\n",
                         .n_rank_states = 2,
                         .rank_state = states,
                         .rank_state_len = lens,
                         .n_arrays = 1,
                         .arrays = &arr};
    int64_t widths[2] = {2, 4};
    poa_meta_set_string(&h.meta, "arch", "vit_fuzz");
    poa_meta_set_int(&h.meta, "embed_dim", 4);
    poa_meta_set_ints(&h.meta, "elastic_widths", widths, 2);
    poa_ckpt_tensors x = {a, b, b, a};
    char dir[4200], p[4300];
    snprintf(dir, sizeof dir, "%s/checkpoint", out);
    poa_err e;
    if (poa_ckpt_write(dir, &t, &x, &h, NULL, p, sizeof p, &e) != POA_OK) die(&e);
    if (poa_ckpt_write_eval(dir, &t, a, &h, NULL, p, sizeof p, &e) != POA_OK) die(&e);
    free(a);
    free(b);
    poa_params_free(&t);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT\n", argv[0]);
        return 2;
    }
    const char *out = argv[1];
    const char *sub[] = {"", "/jpeg", "/shard", "/metadata", "/checkpoint"};
    for (int i = 0; i < 5; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", out, sub[i]);
        mkdir(p, 0777);
    }
    seeds_jpeg(out);
    seeds_shard(out, "train", 1);
    seeds_shard(out, "test", 0);
    seeds_metadata(out);
    seeds_checkpoint(out);
    return 0;
}
