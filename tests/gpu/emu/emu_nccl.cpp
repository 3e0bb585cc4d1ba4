// emu_nccl.cpp — the CPU emulator's NCCL (tests/gpu/emu/README.md).  One rank: the collectives
// copy.  Several ranks: ncclCommInitRank splits MPI_COMM_WORLD by the id's tag (every process of
// the world must call it, as poa's ranks do), and the collectives are MPI collectives on the host
// memory that emulated device memory is.
#include "nccl.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unistd.h>

struct ncclComm {
    int nranks, rank;
    MPI_Comm mpi; // MPI_COMM_NULL with one rank
};

static size_t type_size(ncclDataType_t t)
{
    switch (t) {
    case ncclInt8:
    case ncclUint8:
        return 1;
    case ncclFloat16:
    case ncclBfloat16:
        return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32:
        return 4;
    default:
        return 8;
    }
}
static MPI_Datatype mpi_type(ncclDataType_t t)
{
    switch (t) {
    case ncclFloat32:
        return MPI_FLOAT;
    case ncclFloat64:
        return MPI_DOUBLE;
    case ncclInt32:
        return MPI_INT;
    case ncclInt64:
        return MPI_LONG_LONG;
    default:
        return MPI_DATATYPE_NULL;
    }
}

extern "C" {
ncclResult_t ncclGetVersion(int *v)
{
    return *v = NCCL_VERSION_CODE, ncclSuccess;
}
ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    memset(id, 0, sizeof *id);
    const unsigned tag = (unsigned) getpid() ^ (unsigned) time(NULL);
    snprintf(id->internal, sizeof id->internal, "poa-emu-nccl %u", tag & 0x3fffffffu);
    return ncclSuccess;
}
ncclResult_t ncclCommInitRank(ncclComm_t *c, int nranks, ncclUniqueId id, int rank)
{
    unsigned tag = 0;
    if (nranks < 1 || rank < 0 || rank >= nranks ||
        sscanf(id.internal, "poa-emu-nccl %u", &tag) != 1)
        return ncclInvalidArgument;
    ncclComm *n = new ncclComm{nranks, rank, MPI_COMM_NULL};
    if (nranks > 1) {
        int init = 0, size = 0;
        MPI_Initialized(&init);
        if (!init) return delete n, ncclInvalidUsage;
        if (MPI_Comm_split(MPI_COMM_WORLD, (int) tag, rank, &n->mpi) != MPI_SUCCESS)
            return delete n, ncclSystemError;
        MPI_Comm_size(n->mpi, &size);
        if (size != nranks) {
            fprintf(stderr, "cuda emulator: ncclCommInitRank: %d ranks asked, %d called\n", nranks,
                    size);
            return delete n, ncclInvalidUsage;
        }
    }
    *c = n;
    return ncclSuccess;
}
ncclResult_t ncclCommDestroy(ncclComm_t c)
{
    if (!c) return ncclInvalidArgument;
    if (c->mpi != MPI_COMM_NULL) MPI_Comm_free(&c->mpi);
    delete c;
    return ncclSuccess;
}
ncclResult_t ncclCommAbort(ncclComm_t c)
{
    return ncclCommDestroy(c);
}
ncclResult_t ncclAllReduce(const void *s, void *r, size_t n, ncclDataType_t t, ncclRedOp_t op,
                           ncclComm_t c, cudaStream_t)
{
    if (!c) return ncclInvalidArgument;
    if (c->nranks == 1) {
        if (s != r && n) memmove(r, s, n * type_size(t));
        return ncclSuccess;
    }
    const MPI_Datatype mt = mpi_type(t);
    if (mt == MPI_DATATYPE_NULL || n > (size_t) 0x7fffffff) return ncclInvalidArgument;
    const MPI_Op mo = op == ncclSum    ? MPI_SUM
                      : op == ncclMax  ? MPI_MAX
                      : op == ncclMin  ? MPI_MIN
                      : op == ncclProd ? MPI_PROD
                                       : MPI_OP_NULL;
    if (mo == MPI_OP_NULL) return ncclInvalidArgument;
    const int rc = MPI_Allreduce(s == r ? MPI_IN_PLACE : s, r, (int) n, mt, mo, c->mpi);
    return rc == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}
ncclResult_t ncclBroadcast(const void *s, void *r, size_t n, ncclDataType_t t, int root,
                           ncclComm_t c, cudaStream_t)
{
    if (!c || root < 0 || root >= c->nranks) return ncclInvalidArgument;
    const size_t bytes = n * type_size(t);
    if (c->rank == root && s != r && bytes) memmove(r, s, bytes);
    if (c->nranks == 1) return ncclSuccess;
    if (bytes > (size_t) 0x7fffffff) return ncclInvalidArgument;
    return MPI_Bcast(r, (int) bytes, MPI_BYTE, root, c->mpi) == MPI_SUCCESS ? ncclSuccess
                                                                            : ncclSystemError;
}
const char *ncclGetErrorString(ncclResult_t r)
{
    switch (r) {
    case ncclSuccess:
        return "no error";
    case ncclInvalidArgument:
        return "invalid argument";
    case ncclInvalidUsage:
        return "invalid usage";
    case ncclSystemError:
        return "system error";
    default:
        return "emulated NCCL error";
    }
}
const char *ncclGetLastError(ncclComm_t)
{
    return "";
}
} // extern "C"
