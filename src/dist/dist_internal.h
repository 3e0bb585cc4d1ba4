/* dist_internal.h — what dist.c, buckets.c and dist_nccl.c share.  Not for other layers. */
#ifndef POA_DIST_INTERNAL_H
#define POA_DIST_INTERNAL_H

#include "dist/dist.h"
#include "dist/dist_nccl.h"

#include <mpi.h>

struct poa_dist {
    poa_dist_kind kind;
    MPI_Comm comm;  /* private duplicate of MPI_COMM_WORLD, errors returned to us */
    MPI_Comm local; /* ranks of this node (MPI_COMM_TYPE_SHARED)                  */
    int rank, size, local_rank, local_size;
    int owns_mpi; /* dist_init called MPI_Init_thread                              */
    dist_nccl *nccl;
};

/* Fatal unless rc == MPI_SUCCESS; the message carries the MPI error string. */
void dist_mpi_check(int rc, const char *expr, const char *file, int line, const char *func);
#define MPI_OK(call) dist_mpi_check((call), #call, __FILE__, __LINE__, __func__)

#endif
