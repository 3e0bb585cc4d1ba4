/* test_mpi_data_loader.c — under mpiexec -n 2: each rank's loader reads a disjoint half of every
 * pass (the union is the whole dataset minus N mod 2 images), and the two ranks' augmentations
 * differ (the rank is part of the random streams' key). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/log.h"
#include "data/loader.h"
#include "data_test_pack.h"
#include "data_test_util.h"

#include <mpi.h>

enum { N_IMAGES = 23, B = 4 };
static char packed[4096];
static int rank, size;

static void test_ranks_read_disjoint_halves(void **state)
{
    (void) state;
    poa_loader_params p;
    poa_loader_params_default(&p);
    p.global_crops_size = 32, p.local_crops_size = 16, p.local_crops_number = 2, p.patch_size = 8;
    p.batch_size = B, p.seed = 5, p.threads = 1, p.prefetch = 2;
    p.rank = rank, p.world_size = size;
    poa_loader *L;
    poa_err err = {0};
    if (poa_loader_open(&L, packed, "train", &p, NULL, &err) != POA_OK) fail_msg("%s", err.msg);
    int per_pass = N_IMAGES / size;
    int mine[64], n = 0;
    float first_value = 0;
    while (n < per_pass) {
        const poa_batch *b;
        if (poa_loader_next(L, &b, &err) != POA_OK) fail_msg("%s", err.msg);
        if (n == 0) first_value = b->global_crops[0];
        for (int k = 0; k < B && n < per_pass; k++) mine[n++] = (int) b->indices[k];
    }
    poa_loader_close(L);
    int all[64 * 8];
    MPI_Allgather(mine, per_pass, MPI_INT, all, per_pass, MPI_INT, MPI_COMM_WORLD);
    int seen[N_IMAGES] = {0};
    for (int i = 0; i < per_pass * size; i++) {
        assert_true(all[i] >= 0 && all[i] < N_IMAGES);
        if (seen[all[i]]++) fail_msg("image %d read by two ranks in the first pass", all[i]);
    }
    float firsts[8];
    MPI_Allgather(&first_value, 1, MPI_FLOAT, firsts, 1, MPI_FLOAT, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%d ranks read %d distinct images of %d in the first pass\n", size, per_pass * size,
               N_IMAGES);
    assert_true(size < 2 || firsts[0] != firsts[1]);
}

static int setup(void **state)
{
    (void) state;
    test_scratch(packed, sizeof packed, "mpi_loader");
    int st = POA_OK;
    poa_err err = {0};
    if (rank == 0) st = test_make_packed(packed, N_IMAGES, 2, -1, &err);
    MPI_Bcast(&st, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (st != POA_OK && rank == 0) fprintf(stderr, "%s\n", err.msg);
    return st == POA_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    poa_log_init(rank, size, 0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ranks_read_disjoint_halves)};
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    int worst;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return worst;
}
