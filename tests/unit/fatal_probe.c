/* fatal_probe.c — helper for test_fatal_path.sh: exercises the fatal-error path.
 *   fatal_probe check      POA_CHECK fails on every rank (exit 70 with the documented message)
 *   fatal_probe rank1      under mpiexec: only rank 1 fails; MPI_Abort must stop rank 0 too
 *   fatal_probe die        poa_die with exit code 3
 *   fatal_probe hang       sleeps forever (for the harness time-limit test) */
#include "common/log.h"
#include "common/poa_error.h"

#include <mpi.h>
#include <string.h>
#include <unistd.h>

static void hook(void *ctx)
{
    fprintf(stderr, "abort hook ran: %s\n", (const char *) ctx);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "check";
    if (strcmp(mode, "hang") == 0) {
        for (;;) sleep(1);
    }
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    poa_log_init(rank, size, 0);
    poa_register_abort_hook(hook, "comm");
    int answer = 41;
    if (strcmp(mode, "check") == 0) POA_CHECK(answer == 42, "answer is %d", answer);
    if (strcmp(mode, "die") == 0) poa_die(POA_EXIT_DATA, "shard %s is truncated", "x.h5");
    if (strcmp(mode, "rank1") == 0) {
        if (rank == 1) POA_CHECK(answer == 42, "rank one fails");
        /* rank 0 would wait forever here without MPI_Abort */
        MPI_Barrier(MPI_COMM_WORLD);
        for (;;) sleep(1);
    }
    MPI_Finalize();
    return 0;
}
