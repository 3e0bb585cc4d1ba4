/* test_backend_smoke.c — the backend factory, the op-completeness check, the planning backends
 * and the CPU backend's device interface (memory, transfers, events) and BLAS/reduction ops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "poa_config.h"
#include "backend/backend.h"
#ifdef POA_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void test_factory(void **state)
{
    (void) state;
    char err[256];
    poa_backend *be = poa_backend_create("cpu", NULL, err, sizeof err);
    assert_non_null(be);
    assert_string_equal(be->name, "cpu");
    poa_backend_destroy(be);
    assert_null(poa_backend_create("tpu", NULL, err, sizeof err));
    assert_non_null(strstr(err, "unknown backend 'tpu'"));
    /* the CPU computes in fp32: bf16 is refused with the configuration key to change */
    poa_backend_opts bf16 = {POA_DT_BF16, 0, 0};
    assert_null(poa_backend_create("cpu", &bf16, err, sizeof err));
    assert_non_null(strstr(err, "compute_precision.compute_dtype = bf16"));
    poa_backend_opts f32 = {POA_DT_F32, 0, 0};
    be = poa_backend_create("cpu", &f32, err, sizeof err);
    assert_non_null(be);
    assert_int_equal(be->act_dtype, POA_DT_F32);
    assert_int_equal(be->act_size, 4);
    assert_int_equal(poa_backend_device_count("cpu"), 1);
    poa_backend_destroy(be);
    assert_string_equal(poa_dtype_name(POA_DT_BF16), "bf16");
    assert_int_equal(poa_dtype_size(POA_DT_BF16), 2);
}

/* The device interface of the CPU backend: host memory, transfers that complete at once,
 * events that time the work between them. */
static void test_cpu_iface(void **state)
{
    (void) state;
    char err[256];
    poa_backend *be = poa_backend_create("cpu", NULL, err, sizeof err);
    const poa_backend_iface *io = be->iface;
    char desc[512];
    io->describe(be, desc, sizeof desc);
    assert_true(strncmp(desc, "cpu: ", 5) == 0);
    assert_non_null(strstr(desc, "compute fp32, kernels gemm "));
    assert_true(io->is_host(be));
    assert_null(io->native_stream(be));
    size_t free_b = 0, total_b = 0;
    io->mem_info(be, &free_b, &total_b);
    assert_true(total_b > 0 && free_b <= total_b);

    float *pinned = io->host_alloc(be, 100 * sizeof(float));
    float *dev = io->alloc(be, 100 * sizeof(float)), back[100];
    assert_int_equal((uintptr_t) pinned % 256, 0);
    assert_int_equal((uintptr_t) dev % 256, 0);
    for (int i = 0; i < 100; i++) pinned[i] = (float) i;
    poa_event *up = io->event_create(be), *down = io->event_create(be);
    io->upload_async(be, dev, pinned, 100 * sizeof(float), up);
    io->stream_wait(be, up);
    io->event_synchronize(be, up);
    io->download_async(be, back, dev, 100 * sizeof(float), down);
    io->event_synchronize(be, down);
    assert_memory_equal(back, pinned, sizeof back);
    assert_true(io->event_elapsed(be, up, down) >= 0.0);

    /* activations are fp32: act transfers and the compute copy are plain copies */
    float act_back[100];
    io->act_upload(be, (poa_act *) dev, pinned, 100);
    io->act_download(be, act_back, (const poa_act *) dev, 100);
    assert_memory_equal(act_back, pinned, sizeof act_back);
    io->zero(be, dev, 100 * sizeof(float));
    be->nn->act_from_f32(be, (poa_act *) dev, pinned, 100);
    assert_memory_equal(dev, pinned, sizeof back);
    io->synchronize(be);
    io->event_destroy(be, up);
    io->event_destroy(be, down);
    io->free(be, dev);
    io->host_free(be, pinned);
    poa_backend_destroy(be);
}

/* Planning backends size a run without its device: the CPU keeps the attention probabilities,
 * CUDA two fp32 statistics per row (maximum, 1/l) and its backward needs one fp32 value per row
 * as scratch (src/backend/README.md, "Memory"). */
static void test_planner(void **state)
{
    (void) state;
    poa_backend storage;
    const poa_backend *cpu = poa_backend_planner("cpu", POA_DT_F32, &storage);
    assert_non_null(cpu);
    assert_int_equal(cpu->nn->attention_saved_bytes(cpu, 2, 5, 3, 4), 2 * 3 * 5 * 5 * 4);
    const poa_backend *cuda = poa_backend_planner("cuda", POA_DT_BF16, &storage);
    assert_non_null(cuda);
    assert_int_equal(cuda->act_size, 2);
    assert_int_equal(cuda->nn->attention_saved_bytes(cuda, 2, 5, 3, 4), 2 * 3 * 5 * 2 * 4);
    assert_int_equal(cuda->nn->attention_scratch_bytes(cuda, 2, 5, 3, 4), 2 * 3 * 5 * 4);
    /* KoLeo: eight sections (row losses in double, rows and their gradient, norms, coefficients,
     * neighbours, n + 1 starts, n indices), each rounded up to 256 bytes */
    assert_int_equal(cuda->train->koleo_scratch_bytes(cuda, 3, 5), 8 * 256);
    assert_int_equal(cuda->train->koleo_scratch_bytes(cuda, 100, 256), 1024 + 2 * 102400 + 5 * 512);
#ifdef POA_HAVE_CUDA
    /* the plan is what the CUDA op asks for (no device needed to ask) */
    const poa_backend_iface *iface;
    const poa_nn_ops *nn;
    const poa_train_ops *train;
    poa_cuda_backend_tables(&iface, &nn, &train);
    for (int n = 0; n < 70; n += 7)
        for (int c = 1; c < 300; c += 37)
            assert_int_equal(train->koleo_scratch_bytes(cuda, n, c),
                             cuda->train->koleo_scratch_bytes(cuda, n, c));
    assert_int_equal(nn->attention_saved_bytes(cuda, 2, 5, 3, 4),
                     cuda->nn->attention_saved_bytes(cuda, 2, 5, 3, 4));
    assert_int_equal(nn->attention_scratch_bytes(cuda, 2, 5, 3, 4),
                     cuda->nn->attention_scratch_bytes(cuda, 2, 5, 3, 4));
#endif
    assert_null(poa_backend_planner("tpu", POA_DT_F32, &storage));
}

static void test_gemm_matches_naive_with_views(void **state)
{
    (void) state;
    char err[256];
    poa_backend *be = poa_backend_create("cpu", NULL, err, sizeof err);
    enum { M = 5, N = 7, K = 6, LDA = 9, LDB = 8, LDC = 10 };
    float *A = be->iface->alloc(be, sizeof(float) * K * LDA);
    float *B = be->iface->alloc(be, sizeof(float) * K * LDB);
    float *C = be->iface->alloc(be, sizeof(float) * M * LDC);
    float hA[K * LDA], hB[K * LDB], hC[M * LDC], ref[M * LDC];
    for (int i = 0; i < K * LDA; i++) hA[i] = (float) ((i * 7) % 13) / 13.0f - 0.5f;
    for (int i = 0; i < K * LDB; i++) hB[i] = (float) ((i * 5) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < M * LDC; i++) hC[i] = (float) i;
    be->iface->upload(be, A, hA, sizeof hA);
    be->iface->upload(be, B, hB, sizeof hB);
    be->iface->upload(be, C, hC, sizeof hC);
    /* C = 0.5 * Aᵀ B + 2 C with A stored [K, M] in a wider buffer */
    be->nn->gemm(be, POA_TRANS, POA_NO_TRANS, M, N, K, 0.5f, A, LDA, B, LDB, 2.0f, C, LDC);
    memcpy(ref, hC, sizeof ref);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double) hA[k * LDA + i] * hB[k * LDB + j];
            ref[i * LDC + j] = (float) (0.5 * s + 2.0 * hC[i * LDC + j]);
        }
    be->iface->download(be, hC, C, sizeof hC);
    for (int i = 0; i < M * LDC; i++) assert_float_equal(hC[i], ref[i], 1e-5);
    be->iface->free(be, A);
    be->iface->free(be, B);
    be->iface->free(be, C);
    poa_backend_destroy(be);
}

static void test_axpy_scale_reductions(void **state)
{
    (void) state;
    char err[256];
    poa_backend *be = poa_backend_create("cpu", NULL, err, sizeof err);
    float x[4] = {1, 2, 3, 4}, y[4] = {1, 1, 1, 1};
    be->nn->axpy(be, y, 2.0f, x, 4);
    assert_float_equal(y[3], 9.0f, 0);
    be->nn->scale(be, y, 0.5f, 4);
    assert_float_equal(y[0], 1.5f, 0);
    /* Σ x² lands in backend memory (a double), and a non-finite value makes it non-finite */
    double *out = be->iface->alloc(be, sizeof(double)), host = 0;
    be->train->sum_squares(be, out, x, 4);
    be->iface->download(be, &host, out, sizeof host);
    assert_float_equal(host, 30.0, 0);
    x[2] = NAN;
    be->train->sum_squares(be, out, x, 4);
    be->iface->download(be, &host, out, sizeof host);
    assert_true(isnan(host));
    x[2] = INFINITY;
    be->train->sum_squares(be, out, x, 4);
    be->iface->download(be, &host, out, sizeof host);
    assert_true(isinf(host));
    be->train->sum_squares(be, out, x, 0);
    be->iface->download(be, &host, out, sizeof host);
    assert_float_equal(host, 0.0, 0);
    be->iface->free(be, out);
    poa_backend_destroy(be);
}

/* The CPU backend implements every op; a table with holes is reported op by op, in table order,
 * the count exact even when fewer names fit. */
static void test_missing_ops(void **state)
{
    (void) state;
    char err[256];
    poa_backend *be = poa_backend_create("cpu", NULL, err, sizeof err);
    const char *names[4] = {NULL};
    assert_int_equal(poa_backend_missing_ops(be, names, 4), 0);
    assert_null(names[0]);
    assert_int_equal(poa_backend_missing_ops_of("cpu", names, 4), 0);
    poa_backend_iface iface = *be->iface;
    poa_nn_ops nn = *be->nn;
    poa_train_ops train = *be->train;
    iface.host_alloc = NULL, nn.gemm_bias = NULL, nn.scale = NULL, train.ema = NULL;
    poa_backend holes = *be;
    holes.iface = &iface, holes.nn = &nn, holes.train = &train;
    assert_int_equal(poa_backend_missing_ops(&holes, names, 4), 4);
    assert_string_equal(names[0], "host_alloc");
    assert_string_equal(names[1], "gemm_bias");
    assert_string_equal(names[2], "scale");
    assert_string_equal(names[3], "ema");
    assert_int_equal(poa_backend_missing_ops(&holes, names, 1), 4);
    assert_int_equal(poa_backend_missing_ops(&holes, NULL, 0), 4);
    /* a backend that is not built lacks every op of the three tables */
    typedef void (*any_op)(void);
    const int n_all =
        (int) ((sizeof(poa_backend_iface) + sizeof(poa_nn_ops) + sizeof(poa_train_ops)) /
               sizeof(any_op));
    assert_int_equal(poa_backend_missing_ops_of("tpu", NULL, 0), n_all);
    const char *cuda_missing[4] = {NULL};
    const int n_cuda = poa_backend_missing_ops_of("cuda", cuda_missing, 4);
#ifdef POA_HAVE_CUDA
    /* the CUDA backend fills every entry of the three tables (no device needed to see it) */
    if (n_cuda != 0) fprintf(stderr, "cuda lacks %d ops, first %s\n", n_cuda, cuda_missing[0]);
    assert_int_equal(n_cuda, 0);
#else
    assert_int_equal(n_cuda, n_all);
#endif
    poa_backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factory),
        cmocka_unit_test(test_cpu_iface),
        cmocka_unit_test(test_planner),
        cmocka_unit_test(test_missing_ops),
        cmocka_unit_test(test_gemm_matches_naive_with_views),
        cmocka_unit_test(test_axpy_scale_reductions),
    };
    return cmocka_run_group_tests_name("backend_smoke", tests, NULL, NULL);
}
