/* bench_loader — images/s of the poa data loader (decode + multi-crop + masks + batch assembly)
 * on a packed folder.  Run by `make bench-loader` through bench/bench_loader.py, which puts the
 * torchvision/PIL figures next to these.
 *
 *   bench_loader --data DIR [--threads T] [--batch B] [--batches N] [--rounds R]
 *                [--global S] [--local s] [--nlocal V] [--patch P]
 *
 * Prints one line per round and a final "BENCH threads=T img_s=… per_core=…" (best round). */
#include "common/log.h"
#include "common/timer.h"
#include "data/loader.h"

#include <getopt.h>
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

static int usage(FILE *f, int rc)
{
    fprintf(
        f,
        "Usage: bench_loader --data DIR [--threads T] [--batch B] [--batches N] [--rounds R]\n"
        "                    [--global S] [--local s] [--nlocal V] [--patch P] [--split NAME]\n");
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"data", required_argument, 0, 'd'},   {"threads", required_argument, 0, 't'},
        {"batch", required_argument, 0, 'b'},  {"batches", required_argument, 0, 'n'},
        {"rounds", required_argument, 0, 'r'}, {"global", required_argument, 0, 'G'},
        {"local", required_argument, 0, 'L'},  {"nlocal", required_argument, 0, 'V'},
        {"patch", required_argument, 0, 'P'},  {"split", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    poa_loader_params p;
    poa_loader_params_default(&p);
    p.batch_size = 32;
    const char *data = NULL, *split = "train";
    int batches = 8, rounds = 2, c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 't':
            p.threads = atoi(optarg);
            break;
        case 'b':
            p.batch_size = atoi(optarg);
            break;
        case 'n':
            batches = atoi(optarg);
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        case 'G':
            p.global_crops_size = atoi(optarg);
            break;
        case 'L':
            p.local_crops_size = atoi(optarg);
            break;
        case 'V':
            p.local_crops_number = atoi(optarg);
            break;
        case 'P':
            p.patch_size = atoi(optarg);
            break;
        case 's':
            split = optarg;
            break;
        case 'h':
            return usage(stdout, 0);
        default:
            return usage(stderr, 2);
        }
    }
    if (!data) return usage(stderr, 2);
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
    printf("BENCH threads=%d img_s=%.2f img_per_cpu_s=%.2f\n", p.threads, best, best_cpu);
    return 0;
}
