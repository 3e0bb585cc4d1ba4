/* comm.c — process setup and small collectives (see comm.h). */
#include "poa_config.h"
#include "comm/comm_internal.h"
#include "common/log.h"
#include "common/poa_error.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

void poa_comm_mpi_check(int rc, const char *expr, const char *file, int line, const char *func)
{
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    poa_fatal_at(file, line, func, expr, "MPI error: %s", msg);
}

const char *poa_comm_kind_name(poa_comm_kind kind)
{
    return kind == POA_COMM_NCCL ? "nccl" : "mpi";
}

int poa_comm_kind_available(poa_comm_kind kind)
{
#ifdef POA_HAVE_NCCL
    return kind == POA_COMM_MPI || kind == POA_COMM_NCCL;
#else
    return kind == POA_COMM_MPI;
#endif
}

static void init_mpi(int *argc, char ***argv, poa_comm *d)
{
    int up = 0;
    MPI_Initialized(&up);
    if (up) return;
    /* FUNNELED: only the main thread calls MPI (loader threads never do). */
    int provided = 0;
    POA_COMM_MPI_OK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    d->owns_mpi = 1;
}

poa_comm *poa_comm_init(int *argc, char ***argv, poa_comm_kind kind)
{
    if (!poa_comm_kind_available(kind))
        poa_die(POA_EXIT_USAGE,
                "distributed backend '%s' is not built (reconfigure with "
                "--with-cuda --with-nccl, or use the CPU backend)",
                poa_comm_kind_name(kind));
    poa_comm *d = poa_xcalloc(1, sizeof *d);
    d->kind = kind;
    init_mpi(argc, argv, d);
    POA_COMM_MPI_OK(MPI_Comm_dup(MPI_COMM_WORLD, &d->comm));
    /* Our communicator returns errors so that POA_COMM_MPI_OK prints them and runs the abort hooks.
     */
    POA_COMM_MPI_OK(MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN));
    POA_COMM_MPI_OK(MPI_Comm_rank(d->comm, &d->rank));
    POA_COMM_MPI_OK(MPI_Comm_size(d->comm, &d->size));
    POA_COMM_MPI_OK(
        MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &d->local));
    POA_COMM_MPI_OK(MPI_Comm_rank(d->local, &d->local_rank));
    POA_COMM_MPI_OK(MPI_Comm_size(d->local, &d->local_size));
#ifdef POA_HAVE_NCCL
    if (kind == POA_COMM_NCCL)
        d->nccl = poa_comm_nccl_init(d->comm, d->rank, d->size, d->local_rank, d->local_size);
#endif
    poa_debug("comm: %s, rank %d of %d, local rank %d of %d", poa_comm_kind_name(kind), d->rank,
              d->size, d->local_rank, d->local_size);
    return d;
}

void poa_comm_finalize(poa_comm *d)
{
    if (!d) return;
#ifdef POA_HAVE_NCCL
    if (d->nccl) poa_comm_nccl_finalize(d->nccl);
#endif
    POA_COMM_MPI_OK(MPI_Comm_free(&d->local));
    POA_COMM_MPI_OK(MPI_Comm_free(&d->comm));
    if (d->owns_mpi) MPI_Finalize();
    free(d);
}

int poa_comm_rank(const poa_comm *d)
{
    return d->rank;
}
int poa_comm_world_size(const poa_comm *d)
{
    return d->size;
}
int poa_comm_local_rank(const poa_comm *d)
{
    return d->local_rank;
}
int poa_comm_local_size(const poa_comm *d)
{
    return d->local_size;
}
poa_comm_kind poa_comm_kind_of(const poa_comm *d)
{
    return d->kind;
}
MPI_Comm poa_comm_mpi_comm(const poa_comm *d)
{
    return d->comm;
}

void poa_comm_set_compute_stream(poa_comm *d, void *stream)
{
#ifdef POA_HAVE_NCCL
    if (d->nccl) poa_comm_nccl_set_stream(d->nccl, stream);
#else
    (void) d;
    (void) stream;
#endif
}

/* ------------------------------------------------------------------ MPI helpers */

/* MPI counts are int: split long buffers into pieces of at most INT_MAX/2 elements. */
#define MPI_PIECE ((size_t) INT_MAX / 2)

static void mpi_allreduce(poa_comm *d, void *buf, size_t n, MPI_Datatype t, size_t elem, MPI_Op op)
{
    char *p = buf;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < MPI_PIECE ? n - done : MPI_PIECE;
        POA_COMM_MPI_OK(MPI_Allreduce(MPI_IN_PLACE, p + done * elem, (int) k, t, op, d->comm));
        done += k;
    }
}

static void mpi_bcast(poa_comm *d, void *buf, size_t bytes, int root)
{
    char *p = buf;
    for (size_t done = 0; done < bytes;) {
        size_t k = bytes - done < MPI_PIECE ? bytes - done : MPI_PIECE;
        POA_COMM_MPI_OK(MPI_Bcast(p + done, (int) k, MPI_BYTE, root, d->comm));
        done += k;
    }
}

#ifdef POA_HAVE_NCCL
/* NCCL kind with a device pointer → NCCL on the compute stream; anything else → MPI. */
static int use_nccl(const poa_comm *d, const void *buf)
{
    return d->nccl && poa_comm_nccl_is_device_ptr(buf);
}
#endif

/* ------------------------------------------------------------------ backend-memory collectives */

void poa_comm_allreduce_sum_f32(poa_comm *d, float *buf, size_t n)
{
    if (n == 0) return;
#ifdef POA_HAVE_NCCL
    if (use_nccl(d, buf)) {
        poa_comm_nccl_allreduce(d->nccl, buf, n, POA_COMM_F32, POA_COMM_SUM);
        return;
    }
#endif
    mpi_allreduce(d, buf, n, MPI_FLOAT, sizeof(float), MPI_SUM);
}

void poa_comm_allreduce_sum_f64(poa_comm *d, double *buf, size_t n)
{
    if (n == 0) return;
#ifdef POA_HAVE_NCCL
    if (use_nccl(d, buf)) {
        poa_comm_nccl_allreduce(d->nccl, buf, n, POA_COMM_F64, POA_COMM_SUM);
        return;
    }
#endif
    mpi_allreduce(d, buf, n, MPI_DOUBLE, sizeof(double), MPI_SUM);
}

void poa_comm_allreduce_max_f32(poa_comm *d, float *buf, size_t n)
{
    if (n == 0) return;
#ifdef POA_HAVE_NCCL
    if (use_nccl(d, buf)) {
        poa_comm_nccl_allreduce(d->nccl, buf, n, POA_COMM_F32, POA_COMM_MAX);
        return;
    }
#endif
    mpi_allreduce(d, buf, n, MPI_FLOAT, sizeof(float), MPI_MAX);
}

void poa_comm_allreduce_max_f64(poa_comm *d, double *buf, size_t n)
{
    if (n == 0) return;
#ifdef POA_HAVE_NCCL
    if (use_nccl(d, buf)) {
        poa_comm_nccl_allreduce(d->nccl, buf, n, POA_COMM_F64, POA_COMM_MAX);
        return;
    }
#endif
    mpi_allreduce(d, buf, n, MPI_DOUBLE, sizeof(double), MPI_MAX);
}

void poa_comm_broadcast_f32(poa_comm *d, float *buf, size_t n, int root)
{
    if (n == 0) return;
#ifdef POA_HAVE_NCCL
    if (use_nccl(d, buf)) {
        poa_comm_nccl_broadcast(d->nccl, buf, n, POA_COMM_F32, root);
        return;
    }
#endif
    mpi_bcast(d, buf, n * sizeof(float), root);
}

int poa_comm_check_identical(poa_comm *d, const void *buf, size_t bytes, int *first_diff)
{
#ifdef POA_HAVE_NCCL
    if (bytes > 0 && use_nccl(d, buf)) {
        void *host = poa_xmalloc(bytes);
        poa_comm_nccl_download(d->nccl, host, buf, bytes);
        int same = poa_comm_check_identical_host(d, host, bytes, first_diff);
        free(host);
        return same;
    }
#endif
    return poa_comm_check_identical_host(d, buf, bytes, first_diff);
}

/* ------------------------------------------------------------------ host collectives */

void poa_comm_host_allreduce_sum_f64(poa_comm *d, double *buf, size_t n)
{
    mpi_allreduce(d, buf, n, MPI_DOUBLE, sizeof(double), MPI_SUM);
}

void poa_comm_host_allreduce_sum_i64(poa_comm *d, int64_t *buf, size_t n)
{
    mpi_allreduce(d, buf, n, MPI_INT64_T, sizeof(int64_t), MPI_SUM);
}

void poa_comm_host_allreduce_max_f64(poa_comm *d, double *buf, size_t n)
{
    mpi_allreduce(d, buf, n, MPI_DOUBLE, sizeof(double), MPI_MAX);
}

void poa_comm_host_broadcast(poa_comm *d, void *buf, size_t bytes, int root)
{
    mpi_bcast(d, buf, bytes, root);
}

int poa_comm_max_int(poa_comm *d, int v)
{
    int out = v;
    POA_COMM_MPI_OK(MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, d->comm));
    return out;
}

int poa_comm_any(poa_comm *d, int flag)
{
    return poa_comm_max_int(d, flag != 0);
}

void poa_comm_barrier(poa_comm *d)
{
    POA_COMM_MPI_OK(MPI_Barrier(d->comm));
}

int poa_comm_check_identical_host(poa_comm *d, const void *buf, size_t bytes, int *first_diff)
{
    uint64_t mine = poa_comm_hash64(buf, bytes);
    uint64_t *all = poa_xmalloc((size_t) d->size * sizeof *all);
    POA_COMM_MPI_OK(MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, d->comm));
    int diff = -1;
    for (int r = 1; r < d->size && diff < 0; r++)
        if (all[r] != all[0]) diff = r;
    free(all);
    if (first_diff) *first_diff = diff;
    return diff < 0;
}

/* ------------------------------------------------------------------ per-rank blobs */

void poa_comm_gather_blobs(poa_comm *d, const uint64_t *mine, size_t n, int root, uint64_t ***all,
                           size_t **lens)
{
    POA_CHECK(n <= (size_t) INT_MAX, "blob of %zu values is too large", n);
    int count = (int) n, *counts = NULL, *displs = NULL;
    uint64_t *flat = NULL;
    if (d->rank == root) counts = poa_xcalloc((size_t) d->size, sizeof *counts);
    POA_COMM_MPI_OK(MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, root, d->comm));
    if (d->rank == root) {
        displs = poa_xcalloc((size_t) d->size, sizeof *displs);
        long long total = 0;
        for (int r = 0; r < d->size; r++) {
            POA_CHECK(total <= INT_MAX - counts[r], "gathered blobs exceed INT_MAX values");
            displs[r] = (int) total;
            total += counts[r];
        }
        flat = poa_xmalloc((size_t) total * sizeof *flat);
    }
    POA_COMM_MPI_OK(
        MPI_Gatherv(mine, count, MPI_UINT64_T, flat, counts, displs, MPI_UINT64_T, root, d->comm));
    *all = NULL;
    *lens = NULL;
    if (d->rank != root) return;
    *all = poa_xcalloc((size_t) d->size, sizeof **all);
    *lens = poa_xcalloc((size_t) d->size, sizeof **lens);
    for (int r = 0; r < d->size; r++) {
        (*lens)[r] = (size_t) counts[r];
        (*all)[r] = poa_xmalloc((size_t) counts[r] * sizeof(uint64_t));
        memcpy((*all)[r], flat + displs[r], (size_t) counts[r] * sizeof(uint64_t));
    }
    free(flat);
    free(counts);
    free(displs);
}

void poa_comm_scatter_blobs(poa_comm *d, uint64_t *const *all, const size_t *lens, int n_root,
                            int root, uint64_t **mine, size_t *n)
{
    int *counts = NULL, *displs = NULL, count = 0;
    uint64_t *flat = NULL;
    if (d->rank == root) {
        counts = poa_xcalloc((size_t) d->size, sizeof *counts);
        displs = poa_xcalloc((size_t) d->size, sizeof *displs);
        long long total = 0;
        for (int r = 0; r < d->size; r++) {
            counts[r] = r < n_root ? (int) lens[r] : 0;
            POA_CHECK(r >= n_root || lens[r] <= (size_t) INT_MAX - (size_t) total,
                      "scattered blobs exceed INT_MAX values");
            displs[r] = (int) total;
            total += counts[r];
        }
        flat = poa_xmalloc((size_t) total * sizeof *flat);
        for (int r = 0; r < d->size; r++)
            if (counts[r]) memcpy(flat + displs[r], all[r], (size_t) counts[r] * sizeof *flat);
    }
    POA_COMM_MPI_OK(MPI_Scatter(counts, 1, MPI_INT, &count, 1, MPI_INT, root, d->comm));
    *mine = poa_xmalloc((size_t) count * sizeof **mine);
    *n = (size_t) count;
    POA_COMM_MPI_OK(MPI_Scatterv(flat, counts, displs, MPI_UINT64_T, *mine, count, MPI_UINT64_T,
                                 root, d->comm));
    free(flat);
    free(counts);
    free(displs);
}

/* ------------------------------------------------------------------ hash */

/* A 4-lane multiply-rotate hash in the style of xxHash64 (same primes and round function):
 * ~8 bytes per cycle, stable across machines (little-endian loads via memcpy on x86-64/arm64;
 * the value is only ever compared between ranks of one job). */
static const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full,
                      P3 = 0x165667B19E3779F9ull, P4 = 0x85EBCA77C2B2AE63ull,
                      P5 = 0x27D4EB2F165667C5ull;

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t hash_round(uint64_t acc, uint64_t w)
{
    return rotl64(acc + w * P2, 31) * P1;
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

uint64_t poa_comm_hash64(const void *buf, size_t bytes)
{
    const unsigned char *p = buf, *end = p + bytes;
    uint64_t h;
    if (bytes >= 32) {
        uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = 0 - P1;
        for (; p + 32 <= end; p += 32) {
            v1 = hash_round(v1, load64(p));
            v2 = hash_round(v2, load64(p + 8));
            v3 = hash_round(v3, load64(p + 16));
            v4 = hash_round(v4, load64(p + 24));
        }
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = (h ^ hash_round(0, v1)) * P1 + P4;
        h = (h ^ hash_round(0, v2)) * P1 + P4;
        h = (h ^ hash_round(0, v3)) * P1 + P4;
        h = (h ^ hash_round(0, v4)) * P1 + P4;
    } else {
        h = P5;
    }
    h += (uint64_t) bytes;
    for (; p + 8 <= end; p += 8) h = rotl64(h ^ hash_round(0, load64(p)), 27) * P1 + P4;
    for (; p < end; p++) h = rotl64(h ^ (*p * P5), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}
