/* bench_loader — images/s of the poa data loader (decode + multi-crop + masks + batch assembly)
 * on a packed folder.  Run by `make bench-loader` through bench/bench_loader.py, which puts the
 * torchvision/PIL figures next to these.
 *
 *   bench_loader --data DIR [--threads T] [--batch B] [--batches N] [--rounds R]
 *                [--global S] [--local s] [--nlocal V] [--patch P] [--split NAME]
 *
 * Prints one line per round, the cost of the per-image CRC-32 check (the check every read makes,
 * timed alone over every image of the split, against the CPU time per image of the best round),
 * and a final "BENCH threads=T img_s=… img_per_cpu_s=… crc_share=…" (best round). */
#include "common/cli.h"
#include "common/log.h"
#include "common/timer.h"
#include "data/data_util.h"
#include "data/dataset.h"
#include "data/loader.h"

#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CPU seconds used by the process (all threads): the per-core figure divides by these, so it
 * does not depend on what else runs on a shared machine. */
static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static const poa_cli_option options[] = {
    {"data", 0, "DIR", "packed folder (poa-pack output)"},
    {"split", 0, "NAME", "split to read (default train)"},
    {"threads", 0, "T", "loader threads (default: the loader's default)"},
    {"batch", 0, "B", "images per batch (default 32)"},
    {"batches", 0, "N", "timed batches per round (default 8)"},
    {"rounds", 0, "R", "rounds; the best one is reported (default 2)"},
    {"global", 0, "S", "global crop side (default: the loader's default)"},
    {"local", 0, "s", "local crop side (default: the loader's default)"},
    {"nlocal", 0, "V", "local crops per image (default: the loader's default)"},
    {"patch", 0, "P", "patch size of the masks (default: the loader's default)"},
};
static const poa_cli_spec spec = {
    .program = "bench_loader",
    .summary = "Images/s of the poa data loader on a packed folder (make bench-loader).",
    .options = options,
    .n_options = (int) (sizeof options / sizeof options[0]),
};

/* The numeric options into p, batches and rounds; a usage error's exit code or -1. */
static int numeric_options(const poa_cli *cli, poa_loader_params *p, int *batches, int *rounds)
{
    poa_err err = {0};
    if (poa_cli_int(cli, &spec, "threads", p->threads, 1, 1024, &p->threads, &err) != POA_OK ||
        poa_cli_int(cli, &spec, "batch", 32, 1, 1 << 20, &p->batch_size, &err) != POA_OK ||
        poa_cli_int(cli, &spec, "batches", 8, 1, 1 << 20, batches, &err) != POA_OK ||
        poa_cli_int(cli, &spec, "rounds", 2, 1, 1000, rounds, &err) != POA_OK ||
        poa_cli_int(cli, &spec, "global", p->global_crops_size, 1, 1 << 14, &p->global_crops_size,
                    &err) != POA_OK ||
        poa_cli_int(cli, &spec, "local", p->local_crops_size, 1, 1 << 14, &p->local_crops_size,
                    &err) != POA_OK ||
        poa_cli_int(cli, &spec, "nlocal", p->local_crops_number, 0, 256, &p->local_crops_number,
                    &err) != POA_OK ||
        poa_cli_int(cli, &spec, "patch", p->patch_size, 1, 1024, &p->patch_size, &err) != POA_OK)
        return poa_cli_usage_error(&spec, "%s", err.msg);
    return -1;
}

/* CPU seconds per image of the CRC-32 the loader checks on every read (poa_crc32, zlib), timed
 * alone over the split's first 4096 images (held in memory), and their mean size.  Returns -1
 * when the split cannot be read. */
static double crc_seconds_per_image(const char *data, const char *split, double *mean_bytes)
{
    poa_dataset d;
    poa_err err = {0};
    if (poa_dataset_open(&d, data, split, &err) != POA_OK) return -1;
    const int64_t n = d.num_images < 4096 ? d.num_images : 4096;
    uint8_t *buf = NULL, **imgs = poa_xcalloc((size_t) n + 1, sizeof *imgs);
    size_t cap = 0, size, *sizes = poa_xcalloc((size_t) n + 1, sizeof *sizes);
    double total = 0;
    int32_t label;
    for (int64_t i = 0; i < n; i++) {
        cap = 0;
        buf = NULL;
        if (poa_dataset_read(&d, i, &buf, &cap, &size, &label, &err) != POA_OK) break;
        imgs[i] = buf;
        sizes[i] = size;
        total += (double) size;
    }
    uint32_t sink = 0;
    int reps = 0;
    double c0 = cpu_seconds(), dc;
    do { /* at least 0.2 CPU-s, so that getrusage's resolution does not matter */
        for (int64_t i = 0; i < n; i++)
            if (imgs[i]) sink ^= poa_crc32(0, imgs[i], sizes[i]);
        reps++;
    } while ((dc = cpu_seconds() - c0) < 0.2);
    for (int64_t i = 0; i < n; i++) free(imgs[i]);
    free(imgs);
    free(sizes);
    poa_dataset_close(&d);
    if (n == 0 || sink == 0xFFFFFFFFu) return -1; /* sink: keep the loop */
    *mean_bytes = total / (double) n;
    return dc / ((double) reps * (double) n);
}

int main(int argc, char **argv)
{
    poa_loader_params p;
    poa_loader_params_default(&p);
    poa_cli cli;
    poa_err cli_err = {0};
    int batches, rounds;
    int rc = poa_cli_main_setup(&spec, argc, argv, &cli, NULL, 1, &cli_err);
    if (rc < 0) rc = numeric_options(&cli, &p, &batches, &rounds);
    const char *data = poa_cli_value(&cli, &spec, "data");
    const char *split = poa_cli_value(&cli, &spec, "split");
    if (!split) split = "train";
    if (rc < 0 && !data) rc = poa_cli_usage_error(&spec, "--data DIR is required");
    poa_cli_free(&cli); /* the values point into argv */
    if (rc >= 0) return rc;
    p.prefetch = p.threads + 2;
    double best = 0, best_cpu = 0;
    for (int round = 0; round < rounds; round++) {
        poa_loader *L;
        poa_err err = {0};
        p.seed = (uint64_t) round;
        if (poa_loader_open(&L, data, split, &p, NULL, &err) != POA_OK) {
            fprintf(stderr, "bench_loader: %s\n", err.msg);
            return poa_status_exit_code(err.code);
        }
        const poa_batch *b;
        if (poa_loader_next(L, &b, &err) != POA_OK) { /* warm-up: threads, page cache */
            fprintf(stderr, "bench_loader: %s\n", err.msg);
            return 1;
        }
        poa_loader_stats s0, s1;
        poa_loader_get_stats(L, &s0);
        double t0 = poa_now(), c0 = cpu_seconds();
        for (int i = 0; i < batches; i++)
            if (poa_loader_next(L, &b, &err) != POA_OK) {
                fprintf(stderr, "bench_loader: %s\n", err.msg);
                return 1;
            }
        double dt = poa_now() - t0, dc = cpu_seconds() - c0;
        poa_loader_get_stats(L, &s1);
        poa_loader_close(L);
        double rate = batches * (double) p.batch_size / dt;
        double rate_cpu = batches * (double) p.batch_size / dc;
        double done = (double) (s1.images - s0.images);
        printf("poa loader: %d thread(s), %d x %d images in %.2f s (%.2f CPU s): %.1f img/s, %.1f "
               "img per CPU-s; per image %.2f ms decode, %.2f ms crops\n",
               p.threads, batches, p.batch_size, dt, dc, rate, rate_cpu,
               done > 0 ? 1e3 * (s1.decode_s - s0.decode_s) / done : 0,
               done > 0 ? 1e3 * (s1.augment_s - s0.augment_s) / done : 0);
        if (rate > best) best = rate;
        if (rate_cpu > best_cpu) best_cpu = rate_cpu;
    }
    double mean_bytes = 0, crc_s = crc_seconds_per_image(data, split, &mean_bytes);
    double crc_share = crc_s > 0 ? crc_s * best_cpu : 0; /* of the CPU time per image */
    if (crc_s > 0)
        printf("CRC-32 check: %.0f bytes per image, %.2f us per image (%.0f MB/s), %.3f %% of the "
               "loader's CPU time per image\n",
               mean_bytes, 1e6 * crc_s, mean_bytes / crc_s / 1e6, 100 * crc_share);
    printf("BENCH threads=%d img_s=%.2f img_per_cpu_s=%.2f crc_share=%.5f\n", p.threads, best,
           best_cpu, crc_share);
    return 0;
}
