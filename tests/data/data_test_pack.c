/* data_test_pack.c — see data_test_pack.h. */
#include "data_test_pack.h"

#include "data/jpeg.h"
#include "data/metadata.h"
#include "data/schema.h"
#include "data/shard.h"
#include "data_test_util.h"

poa_status test_make_packed(const char *dir, int n, int shards, int corrupt, poa_err *err)
{
    test_mkdir_p(dir);
    poa_metadata m;
    poa_metadata_init(&m);
    snprintf(m.source_root, sizeof m.source_root, "synthetic");
    poa_meta_split *ms = poa_metadata_add_split(&m, "train");
    for (int c = 0; c < 3; c++) {
        char id[16], name[16];
        snprintf(id, sizeof id, "c%d", c);
        snprintf(name, sizeof name, "class %d", c);
        poa_strtab_push(&ms->class_ids, id);
        poa_strtab_push(&ms->class_names, name);
    }
    ms->num_images = n;
    ms->num_source_files = n;
    ms->actual_index = calloc((size_t) n, 4);
    ms->class_index = calloc((size_t) n, 4);
    ms->ids = calloc((size_t) n, 8);
    ms->shard_num_images = calloc((size_t) shards, 8);
    poa_status st = POA_OK;
    int per = (n + shards - 1) / shards;
    for (int k = 0; k < shards && st == POA_OK; k++) {
        int first = k * per, count = first + per > n ? n - first : per;
        poa_shard_record *recs = calloc((size_t) count, sizeof *recs);
        char(*names)[32] = calloc((size_t) count, 32);
        for (int j = 0; j < count; j++) {
            int i = first + j, w = 28 + (i * 37) % 300, h = 28 + (i * 53) % 250;
            uint8_t *rgb = malloc((size_t) w * h * 3), *jpg;
            size_t size;
            test_picture(rgb, w, h, (unsigned) i);
            st = poa_jpeg_encode(rgb, w, h, i % 5 == 4, 90, 0, &jpg, &size, err);
            free(rgb);
            if (st != POA_OK) break;
            if (i == corrupt) memset(jpg, 0x42, size); /* no longer a JPEG */
            snprintf(names[j], 32, "c%d/img_%d.JPEG", i % 3, i);
            recs[j] = (poa_shard_record){jpg,      size,         i % 3,       (uint64_t) i,
                                         names[j], (uint32_t) h, (uint32_t) w};
            ms->actual_index[i] = (uint32_t) i;
            ms->class_index[i] = (uint32_t) (i % 3);
            ms->ids[i] = (uint64_t) i;
            poa_strtab_push(&ms->file_names, names[j]);
        }
        char name[64], path[4200];
        snprintf(name, sizeof name, "train-%05d-of-%05d.h5", k, shards);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        poa_strtab none;
        poa_strtab_init(&none);
        poa_shard_info info = {"train", k, shards, first, count, 0, 0, 0};
        if (st == POA_OK)
            st = poa_shard_write(path, &info, recs, (size_t) count, &none, &none, err);
        poa_strtab_push(&ms->shard_files, name);
        ms->shard_num_images[k] = (uint64_t) count;
        for (int j = 0; j < count; j++) free((void *) recs[j].data);
        free(recs);
        free(names);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, POA_METADATA_FILE);
    if (st == POA_OK) st = poa_metadata_write(path, &m, err);
    poa_metadata_free(&m);
    return st;
}
