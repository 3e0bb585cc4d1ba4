/* test_mpi_config.c — runs under mpiexec -n 2: the configuration is read once (rank 0) and
 * broadcast, so every rank ends with the same values and the same errors.  The ranks work in
 * different directories and only rank 0's holds the file: rank 1 can only get its values through
 * the broadcast. */
#include "common/cli.h"
#include "common/config.h"
#include "common/log.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int rank, failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "[rank %d] FAIL %s:%d: %s: ", rank, __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static const poa_cli_spec spec = {
    .program = "test_mpi_config", .summary = "test", .uses_config = true};

/* Build the configuration from argv on every rank; returns the status. */
static poa_status build(char **argv, int argc, poa_config *cfg, poa_err *err)
{
    poa_cli cli;
    poa_status st = poa_cli_parse(&cli, &spec, argc, argv, err);
    if (st == POA_OK) st = poa_cli_build_config(&cli, cfg, 2, err);
    poa_cli_free(&cli);
    return st;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    poa_log_init(rank, 2, 0);
    const char *top = getenv("POA_TOP_BUILDDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", top && *top ? top : ".");
    const char *parts[] = {"/tests", "/out", "/config-mpi-rank"};
    for (int i = 0; i < 3; i++) { /* mkdir -p */
        snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "%s", parts[i]);
        if (i == 2) snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "%d", rank);
        mkdir(dir, 0777);
    }
    CHECK(chdir(dir) == 0, "cannot enter %s", dir);
    remove("mpi.yaml");
    if (rank == 0) {
        FILE *f = fopen("mpi.yaml", "w");
        CHECK(f != NULL, "cannot write mpi.yaml");
        if (f) {
            fputs("optim:\n  epochs: 12\n  warmup_epochs: 2\ntrain:\n  output_dir: only-rank0\n",
                  f);
            fclose(f);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);

    poa_config cfg;
    poa_err err = {0};
    char *good[] = {"prog", "--config", "mpi.yaml", "train.seed=5", NULL};
    poa_status st = build(good, 4, &cfg, &err);
    CHECK(st == POA_OK, "%s", err.msg);
    CHECK(cfg.optim.epochs == 12, "optim.epochs = %d", cfg.optim.epochs);
    CHECK(strcmp(cfg.train.output_dir, "only-rank0") == 0, "output_dir = %s", cfg.train.output_dir);
    CHECK(cfg.train.seed == 5, "train.seed = %d", cfg.train.seed);
    CHECK(cfg.origin[POA_CFG_KEY_optim_epochs].line == 2, "line %d",
          cfg.origin[POA_CFG_KEY_optim_epochs].line);

    /* a missing file: the same error on both ranks */
    char *missing[] = {"prog", "--config", "absent.yaml", NULL};
    st = build(missing, 3, &cfg, &err);
    CHECK(st == POA_ERR_NOTFOUND, "status %s: %s", poa_status_name(st), err.msg);
    CHECK(strstr(err.msg, "absent.yaml") != NULL, "%s", err.msg);
    char msgs[2][sizeof err.msg];
    MPI_Allgather(err.msg, sizeof err.msg, MPI_CHAR, msgs, sizeof err.msg, MPI_CHAR,
                  MPI_COMM_WORLD);
    CHECK(strcmp(msgs[0], msgs[1]) == 0, "ranks disagree: '%s' vs '%s'", msgs[0], msgs[1]);

    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("%s: %d failure(s)\n", argv[0], total);
    MPI_Finalize();
    return total ? 1 : 0;
}
