/* comm_internal.h — what comm.c, buckets.c and comm_nccl.c share.  Not for other layers. */
#ifndef POA_COMM_INTERNAL_H
#define POA_COMM_INTERNAL_H

#include "comm/comm.h"
#include "comm/comm_nccl.h"

#include <mpi.h>

struct poa_comm {
    poa_comm_kind kind;
    MPI_Comm comm;  /* private duplicate of MPI_COMM_WORLD, errors returned to us */
    MPI_Comm local; /* ranks of this node (MPI_COMM_TYPE_SHARED)                  */
    int rank, size, local_rank, local_size;
    int owns_mpi; /* poa_comm_init called MPI_Init_thread                              */
    poa_comm_nccl *nccl;
};

/* Fatal unless rc == MPI_SUCCESS; the message carries the MPI error string. */
void poa_comm_mpi_check(int rc, const char *expr, const char *file, int line, const char *func);
#define POA_COMM_MPI_OK(call) poa_comm_mpi_check((call), #call, __FILE__, __LINE__, __func__)

#endif
