/* tool.c — see tool.h. */
#include "tool/tool.h"
#include "common/h5check.h"
#include "common/log.h"

#include <mpi.h>
#include <stdio.h>

int poa_tool_main(int *argc, char ***argv, const char *program, int verbose, int (*run)(void *ctx),
                  void *ctx)
{
    MPI_Init(argc, argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    poa_log_init(rank, size, verbose);
    int rc = run(ctx);
    poa_tool_check_hdf5_closed(program);
    MPI_Finalize();
    return rc;
}

int poa_tool_agree(int code)
{
    int worst = code;
    MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

int poa_tool_read_exit_code(poa_status st)
{
    return st == POA_ERR_ARG || st == POA_ERR_CONFIG ? POA_EXIT_USAGE : POA_EXIT_DATA;
}

/* This rank opens path; its exit code (0: opened). */
static int open_here(const char *program, const char *path, poa_weights_from from,
                     poa_model_source *src)
{
    poa_err err = {0};
    poa_status st = poa_model_source_open(path, from, src, &err);
    if (!st) return 0;
    poa_error("%s: %s", program, err.msg);
    return poa_tool_read_exit_code(st);
}

int poa_tool_open_source(const char *program, const char *arg, poa_weights_from from,
                         poa_model_source *src)
{
    char path[POA_IO_PATH_MAX] = "";
    int code = 0;
    if (poa_log_rank() == 0) {
        code = open_here(program, arg, from, src);
        snprintf(path, sizeof path, "%s", src->path);
    }
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (code) return code;
    MPI_Bcast(path, (int) sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (poa_log_rank() != 0) code = open_here(program, path, from, src);
    return poa_tool_agree(code);
}

long poa_tool_check_hdf5_closed(const char *program)
{
    char what[256];
    long n = poa_hdf5_open_objects(what, sizeof what);
    if (n > 0) poa_warn("%s: %ld HDF5 objects left open at exit: %s", program, n, what);
    return n;
}
