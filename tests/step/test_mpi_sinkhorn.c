/* test_mpi_sinkhorn.c — Sinkhorn-Knopp over two MPI ranks through the collective interface
 * (model/loss_collective.h) equals Sinkhorn-Knopp over the union batch on one rank
 * (docs/algorithm.md §6.2, docs/architecture.md §7.2), also with an uneven split and with a rank
 * that holds no rows (iBOT without masked patches). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "model/loss.h"
#include "tests/step/step_test_util.h"

#include <mpi.h>
#include <string.h>

static poa_backend *be;
static int rank, nranks;

static void mpi_sum(void *ctx, double *buf, size_t n)
{
    MPI_Allreduce(MPI_IN_PLACE, buf, (int) n, MPI_DOUBLE, MPI_SUM, *(MPI_Comm *) ctx);
}

static void mpi_max(void *ctx, double *buf, size_t n)
{
    MPI_Allreduce(MPI_IN_PLACE, buf, (int) n, MPI_DOUBLE, MPI_MAX, *(MPI_Comm *) ctx);
}

static void check_split(int R, int K, int rows_rank0, float temp)
{
    float *L = malloc(sizeof(float) * R * K), *T_all = malloc(sizeof(float) * R * K);
    double *ws = malloc(sizeof(double) * 2 * K), *want = malloc(sizeof(double) * R * K);
    fill_uniform(L, (size_t) R * K, 77, -1, 1); /* same data on every rank */
    poa_collective single = poa_collective_single();
    poa_sinkhorn_knopp(be, &single, T_all, K, L, K, R, K, temp, 3, ws);
    MPI_Comm comm = MPI_COMM_WORLD;
    poa_collective coll = {&comm, mpi_sum, mpi_max};
    int r0 = rank == 0 ? 0 : rows_rank0, n = rank == 0 ? rows_rank0 : R - rows_rank0;
    float *T = malloc(sizeof(float) * (size_t) (n ? n : 1) * K);
    poa_sinkhorn_knopp(be, &coll, T, K, L + (size_t) r0 * K, K, n, K, temp, 3, ws);
    for (size_t i = 0; i < (size_t) n * K; i++) want[i] = T_all[(size_t) r0 * K + i];
    char what[96];
    snprintf(what, sizeof what, "rank %d: SK rows [%d, %d) of %d", rank, r0, r0 + n, R);
    int ok = n == 0 || check_close(what, T, want, (size_t) n * K, 1e-5);
    int all_ok;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    free(L), free(T_all), free(ws), free(want), free(T);
    assert_true(all_ok);
}

static void test_even_split(void **state)
{
    (void) state;
    check_split(32, 48, 16, 0.04f);
}

static void test_uneven_split(void **state)
{
    (void) state;
    check_split(30, 64, 7, 0.07f);
}

static void test_rank_without_rows(void **state)
{
    (void) state;
    check_split(12, 40, 0, 0.05f);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    char err[128];
    be = poa_backend_create("cpu", NULL, err, sizeof err);
    int rc = 0;
    if (nranks != 2) {
        if (rank == 0) fprintf(stderr, "test_mpi_sinkhorn needs 2 ranks\n");
        rc = 1;
    } else {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_even_split),
            cmocka_unit_test(test_uneven_split),
            cmocka_unit_test(test_rank_without_rows),
        };
        rc = cmocka_run_group_tests(tests, NULL, NULL);
    }
    poa_backend_destroy(be);
    MPI_Finalize();
    return rc;
}
