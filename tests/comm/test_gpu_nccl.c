/* test_gpu_nccl.c — the NCCL kind of the comm layer on one rank (MPI singleton): exits 77
 * (skipped) without a CUDA device.  Checks the small collectives on device memory (enqueued on
 * the compute stream), the bucket path (events both ways, communication stream, 1/world scale:
 * the world is 1, so the result must equal the input bit for bit), the scale kernel on its own,
 * poa_comm_check_identical on a device buffer, and the event-based timers. */
#include "poa_config.h"
#include "comm/buckets.h"
#include "comm/comm_nccl.h"
#include "../io/tiny_table.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)
#define CU(call) CHECK((call) == cudaSuccess, "%s", #call)

static int device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

static void download(float *h, const float *dev, size_t n, cudaStream_t s)
{
    CU(cudaMemcpyAsync(h, dev, n * sizeof(float), cudaMemcpyDeviceToHost, s));
    CU(cudaStreamSynchronize(s));
}

static void test_small_collectives(poa_comm *d, cudaStream_t s)
{
    float h[5] = {1, -2, 3.5f, 1e-30f, 7}, back[5];
    float *dv = NULL;
    CU(cudaMalloc((void **) &dv, sizeof h));
    CU(cudaMemcpyAsync(dv, h, sizeof h, cudaMemcpyHostToDevice, s));
    poa_comm_allreduce_sum_f32(d, dv, 5); /* one rank: unchanged, but through NCCL */
    poa_comm_allreduce_max_f32(d, dv, 5);
    poa_comm_broadcast_f32(d, dv, 5, 0);
    download(back, dv, 5, s);
    CHECK(memcmp(back, h, sizeof h) == 0, "device sum/max/broadcast changed the values");
    CHECK(poa_comm_check_identical(d, dv, sizeof h, NULL) == 1, "check_identical on device memory");
    double hd[2] = {0.25, -1}, bd[2];
    double *dd = NULL;
    CU(cudaMalloc((void **) &dd, sizeof hd));
    CU(cudaMemcpyAsync(dd, hd, sizeof hd, cudaMemcpyHostToDevice, s));
    poa_comm_allreduce_sum_f64(d, dd, 2);
    poa_comm_allreduce_max_f64(d, dd, 2);
    CU(cudaMemcpyAsync(bd, dd, sizeof hd, cudaMemcpyDeviceToHost, s));
    CU(cudaStreamSynchronize(s));
    CHECK(bd[0] == 0.25 && bd[1] == -1, "f64 sum/max");
    /* Host memory in the NCCL kind goes through MPI. */
    float hh[2] = {2, 3};
    poa_comm_allreduce_sum_f32(d, hh, 2);
    CHECK(hh[0] == 2 && hh[1] == 3, "host-memory sum in the NCCL kind");
    cudaFree(dv);
    cudaFree(dd);
}

static void test_scale_kernel(cudaStream_t s)
{
    enum { N = 100003 };
    float *h = malloc(N * sizeof *h), *back = malloc(N * sizeof *back), *dv = NULL;
    for (int i = 0; i < N; i++) h[i] = (float) i - 5000.0f;
    CU(cudaMalloc((void **) &dv, N * sizeof *h));
    CU(cudaMemcpyAsync(dv, h, N * sizeof *h, cudaMemcpyHostToDevice, s));
    CHECK(poa_comm_cuda_scale(dv, 0.25f, N, s) == 0, "scale kernel launch");
    download(back, dv, N, s);
    for (int i = 0; i < N; i++)
        if (back[i] != h[i] * 0.25f) {
            CHECK(0, "scale: element %d is %g, expected %g", i, back[i], h[i] * 0.25f);
            break;
        }
    cudaFree(dv);
    free(h);
    free(back);
}

static void test_buckets(poa_comm *d, cudaStream_t s)
{
    poa_param_table t;
    tiny_table_build(&t, &TINY_DEFAULT);
    float *h = malloc(t.total * sizeof *h), *back = malloc(t.total * sizeof *back), *g = NULL;
    for (size_t i = 0; i < t.total; i++) h[i] = (float) ((i * 2654435761u) % 1000003) * 1e-3f;
    CU(cudaMalloc((void **) &g, t.total * sizeof *h));
    poa_comm_bucket_opts o = {.average = 1};
    poa_comm_bucket_set *bs = poa_comm_buckets_create(d, &t, g, &o);
    for (int step = 0; step < 6; step++) {
        /* the "backward" writes the gradients on the compute stream, then buckets start */
        CU(cudaMemcpyAsync(g, h, t.total * sizeof *h, cudaMemcpyHostToDevice, s));
        for (int b = poa_comm_buckets_count(bs) - 1; b >= 0; b--) {
            poa_comm_bucket_start(bs, b);
            CHECK(poa_comm_progress(bs) == 0, "NCCL progress reports nothing pending on the host");
        }
        poa_comm_buckets_wait_all(bs);
        download(back, g, t.total, s); /* ordered after the reduces by the events */
        CHECK(memcmp(back, h, t.total * sizeof *h) == 0, "step %d: reduced gradients differ", step);
    }
    poa_comm_timing tm;
    poa_comm_buckets_timing(bs, &tm);
    printf("6 steps: comm %.6f s, exposed %.6f s, calls %.6f s, %ld buckets\n", tm.comm_s,
           tm.exposed_s, tm.call_s, tm.buckets);
    CHECK(tm.steps == 6 && tm.buckets == 6 * t.n_buckets, "timing counters");
    CHECK(tm.comm_s > 0 && tm.exposed_s >= 0, "event timers");
    poa_comm_buckets_destroy(bs);
    cudaFree(g);
    free(h);
    free(back);
    poa_params_free(&t);
}

int main(int argc, char **argv)
{
    if (device_count() < 1) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    poa_comm *d = poa_comm_init(&argc, &argv, POA_COMM_NCCL);
    cudaStream_t s;
    CU(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); /* like the CUDA backend's */
    poa_comm_set_compute_stream(d, s);
    test_small_collectives(d, s);
    test_scale_kernel(s);
    test_buckets(d, s);
    cudaStreamDestroy(s);
    poa_comm_finalize(d);
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}
