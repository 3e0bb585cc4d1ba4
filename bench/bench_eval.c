/* bench_eval.c — feature extraction speed of the evaluation programs: poa's inference forward
 * (poa_features_run, src/modelio/features.h, what poa-eval-knn runs per batch) of a model file on
 * random normalised images, in images per second.  bench/bench_eval.py runs it next to a PyTorch
 * forward of the same extracted ViT (make bench-eval).
 *
 *   bench_eval --model FILE [--batch B] [--reps N]
 * FILE: an extracted vit_<W>x<D>.h5 / .safetensors or a checkpoint (its intact teacher).  One
 * warm-up batch, then the median of N timed batches.  Threads: OMP_NUM_THREADS.
 * Prints `C model=… size=… batch=… threads=… ms=… img_s=…`. */
#include "common/cli.h"
#include "common/log.h"
#include "common/timer.h"
#include "modelio/features.h"
#include "modelio/model_source.h"

#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const poa_cli_option options[] = {
    {"model", 'm', "FILE", "extracted model or checkpoint"},
    {"batch", 'b', "B", "images per forward (default 64)"},
    {"reps", 'r', "N", "timed forwards (default 5)"},
};
static const poa_cli_spec spec = {
    .program = "bench_eval",
    .summary = "images/s of poa's inference forward (the features of poa-eval-knn)",
    .options = options,
    .n_options = 3,
};

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    poa_log_init(0, 1, 0);
    poa_cli cli;
    poa_err err;
    int rc = poa_cli_main_setup(&spec, argc, argv, &cli, NULL, 1, &err);
    if (rc >= 0) goto done;
    int B, reps;
    const char *path = poa_cli_value(&cli, &spec, "model");
    if (!path || poa_cli_int(&cli, &spec, "batch", 64, 1, 4096, &B, &err) ||
        poa_cli_int(&cli, &spec, "reps", 5, 1, 1000, &reps, &err)) {
        rc = poa_cli_usage_error(&spec, "%s", path ? err.msg : "--model FILE is required");
        goto done;
    }
    poa_model_source src;
    memset(&src, 0, sizeof src);
    if (poa_model_source_open(path, POA_FROM_TEACHER, &src, &err) != POA_OK) {
        fprintf(stderr, "bench_eval: %s\n", err.msg);
        rc = 3;
        goto done;
    }
    const int S = src.model.cfg.img_size;
    poa_features *f;
    poa_features_opts o = {.backend = "cpu", .max_images = B, .max_size = S};
    if (poa_features_create(&f, &src, &o, &err) != POA_OK) {
        fprintf(stderr, "bench_eval: %s\n", err.msg);
        rc = 2;
        poa_model_source_close(&src);
        goto done;
    }
    const poa_subnet sn = poa_subnet_intact(&src.model.cfg);
    const size_t n_px = (size_t) B * 3 * S * S;
    float *images = poa_xmalloc(sizeof(float) * n_px);
    float *cls = poa_xmalloc(sizeof(float) * (size_t) B * sn.width);
    uint32_t state = 12345;
    for (size_t i = 0; i < n_px; i++) { /* roughly normalised pixels in [-2, 2) */
        state = state * 1664525u + 1013904223u;
        images[i] = (float) (state >> 8) / (float) (1u << 24) * 4.0f - 2.0f;
    }
    double *ms = poa_xmalloc(sizeof(double) * (size_t) reps);
    for (int r = -1; r < reps; r++) {
        const double t0 = poa_now();
        POA_CHECK(poa_features_run(f, &sn, images, B, S, S, cls, NULL, &err) == POA_OK, "%s",
                  err.msg);
        if (r >= 0) ms[r] = 1e3 * (poa_now() - t0);
    }
    qsort(ms, (size_t) reps, sizeof *ms, cmp_double);
    const double med = ms[reps / 2];
    printf("C model=%dx%d size=%d batch=%d threads=%d ms=%.1f img_s=%.2f\n", sn.width, sn.depth, S,
           B, omp_get_max_threads(), med, 1e3 * B / med);
    free(images), free(cls), free(ms);
    poa_features_destroy(f);
    poa_model_source_close(&src);
    rc = 0;
done:
    poa_cli_free(&cli);
    MPI_Finalize();
    return rc;
}
