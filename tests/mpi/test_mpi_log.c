/* test_mpi_log.c — runs under mpiexec -n 2: rank-aware logging and per-rank RNG streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/rng.h"

#include <mpi.h>

static int rank, size;

static void test_world_is_two_ranks(void **state)
{
    (void) state;
    assert_int_equal(size, 2);
    poa_log_init(rank, size, 0);
    assert_int_equal(poa_log_speaks(), rank == 0);
}

/* Streams are keyed by rank: the same (seed, purpose, index) differs across ranks, and every
 * rank can compute every other rank's numbers. */
static void test_rank_streams(void **state)
{
    (void) state;
    poa_philox4 mine = poa_rng_block(11, (uint32_t) rank, POA_RNG_DROPPATH, 0);
    uint32_t all[2][4];
    MPI_Allgather(mine.v, 4, MPI_UINT32_T, all, 4, MPI_UINT32_T, MPI_COMM_WORLD);
    assert_memory_not_equal(all[0], all[1], sizeof all[0]);
    for (int r = 0; r < 2; r++) {
        poa_philox4 b = poa_rng_block(11, (uint32_t) r, POA_RNG_DROPPATH, 0);
        assert_memory_equal(b.v, all[r], sizeof all[r]);
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_world_is_two_ranks),
        cmocka_unit_test(test_rank_streams),
    };
    int failed = cmocka_run_group_tests_name("mpi_log", tests, NULL, NULL);
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any ? 1 : 0;
}
