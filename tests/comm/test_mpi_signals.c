/* test_mpi_signals.c — runs under mpiexec -n 2: a signal delivered to one rank only is seen by
 * every rank through the collective poa_signal_agree(), so all ranks stop after the same step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "comm/comm.h"
#include "comm/signals.h"

#include <mpi.h>
#include <signal.h>

static poa_comm *d;
static int rank;

static void test_no_signal_no_stop(void **state)
{
    (void) state;
    poa_signal_clear();
    assert_int_equal(poa_signal_pending(), 0);
    assert_int_equal(poa_signal_agree(d), 0);
}

static void test_sigusr1_on_rank1_stops_both(void **state)
{
    (void) state;
    poa_signal_clear();
    if (rank == 1) raise(SIGUSR1); /* the process survives: the handler only records it */
    assert_int_equal(poa_signal_pending(), rank == 1 ? SIGUSR1 : 0);
    assert_int_equal(poa_signal_agree(d), SIGUSR1);
    assert_int_equal(poa_signal_count(), rank == 1 ? 1 : 0);
    poa_signal_clear();
    assert_int_equal(poa_signal_agree(d), 0);
}

static void test_sigterm_on_rank0_stops_both(void **state)
{
    (void) state;
    poa_signal_clear();
    if (rank == 0) {
        raise(SIGTERM);
        raise(SIGTERM); /* repeated: still only recorded */
        assert_int_equal(poa_signal_count(), 2);
    }
    assert_int_equal(poa_signal_agree(d), SIGTERM);
    poa_signal_clear();
}

/* The training-loop pattern: rank 1 is signalled during step 3; both leave after step 3. */
static void test_all_ranks_stop_at_the_same_step(void **state)
{
    (void) state;
    poa_signal_clear();
    int stopped_at = -1;
    for (int step = 0; step < 100; step++) {
        if (rank == 1 && step == 3) raise(SIGUSR1);
        if (poa_signal_agree(d)) {
            stopped_at = step;
            break;
        }
    }
    int all[2] = {-2, -2};
    MPI_Allgather(&stopped_at, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
    assert_int_equal(all[0], 3);
    assert_int_equal(all[1], 3);
    poa_signal_clear();
}

int main(int argc, char **argv)
{
    d = poa_comm_init(&argc, &argv, POA_COMM_MPI);
    rank = poa_comm_rank(d);
    poa_signals_install();
    poa_signals_install(); /* nests: undone by two restores */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_signal_no_stop),
        cmocka_unit_test(test_sigusr1_on_rank1_stops_both),
        cmocka_unit_test(test_sigterm_on_rank0_stops_both),
        cmocka_unit_test(test_all_ranks_stop_at_the_same_step),
    };
    int failed = cmocka_run_group_tests_name("mpi_signals", tests, NULL, NULL);
    int any = poa_comm_max_int(d, failed);
    poa_signals_restore();
    poa_signals_restore();
    poa_comm_finalize(d);
    return any ? 1 : 0;
}
