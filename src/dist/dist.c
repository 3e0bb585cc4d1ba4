/* dist.c — process setup and small collectives (see dist.h). */
#include "poa_config.h"
#include "dist/dist_internal.h"
#include "common/log.h"
#include "common/poa_error.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

void dist_mpi_check(int rc, const char *expr, const char *file, int line, const char *func)
{
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    poa_fatal_at(file, line, func, expr, "MPI error: %s", msg);
}

const char *dist_kind_name(poa_dist_kind kind)
{
    return kind == POA_DIST_NCCL ? "nccl" : "mpi";
}

int dist_kind_available(poa_dist_kind kind)
{
#ifdef POA_HAVE_NCCL
    return kind == POA_DIST_MPI || kind == POA_DIST_NCCL;
#else
    return kind == POA_DIST_MPI;
#endif
}

static void init_mpi(int *argc, char ***argv, poa_dist *d)
{
    int up = 0;
    MPI_Initialized(&up);
    if (up) return;
    /* FUNNELED: only the main thread calls MPI (loader threads never do). */
    int provided = 0;
    MPI_OK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    d->owns_mpi = 1;
}

poa_dist *dist_init(int *argc, char ***argv, poa_dist_kind kind)
{
    if (!dist_kind_available(kind))
        poa_die(POA_EXIT_USAGE,
                "distributed backend '%s' is not built (reconfigure with "
                "--with-cuda --with-nccl, or use the CPU backend)",
                dist_kind_name(kind));
    poa_dist *d = poa_xcalloc(1, sizeof *d);
    d->kind = kind;
    init_mpi(argc, argv, d);
    MPI_OK(MPI_Comm_dup(MPI_COMM_WORLD, &d->comm));
    /* Our communicator returns errors so that MPI_OK prints them and runs the abort hooks. */
    MPI_OK(MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN));
    MPI_OK(MPI_Comm_rank(d->comm, &d->rank));
    MPI_OK(MPI_Comm_size(d->comm, &d->size));
    MPI_OK(MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &d->local));
    MPI_OK(MPI_Comm_rank(d->local, &d->local_rank));
    MPI_OK(MPI_Comm_size(d->local, &d->local_size));
#ifdef POA_HAVE_NCCL
    if (kind == POA_DIST_NCCL)
        d->nccl = dist_nccl_init(d->comm, d->rank, d->size, d->local_rank, d->local_size);
#endif
    poa_debug("dist: %s, rank %d of %d, local rank %d of %d", dist_kind_name(kind), d->rank,
              d->size, d->local_rank, d->local_size);
    return d;
}

void dist_finalize(poa_dist *d)
{
    if (!d) return;
#ifdef POA_HAVE_NCCL
    if (d->nccl) dist_nccl_finalize(d->nccl);
#endif
    MPI_OK(MPI_Comm_free(&d->local));
    MPI_OK(MPI_Comm_free(&d->comm));
    if (d->owns_mpi) MPI_Finalize();
    free(d);
}

int dist_rank(const poa_dist *d)
{
    return d->rank;
}
int dist_world_size(const poa_dist *d)
{
    return d->size;
}
int dist_local_rank(const poa_dist *d)
{
    return d->local_rank;
}
int dist_local_size(const poa_dist *d)
{
    return d->local_size;
}
poa_dist_kind dist_kind(const poa_dist *d)
{
    return d->kind;
}
MPI_Comm dist_mpi_comm(const poa_dist *d)
{
    return d->comm;
}

void dist_set_compute_stream(poa_dist *d, void *stream)
{
#ifdef POA_HAVE_NCCL
    if (d->nccl) dist_nccl_set_stream(d->nccl, stream);
#else
    (void) d;
    (void) stream;
#endif
}

/* ------------------------------------------------------------------ MPI helpers */

/* MPI counts are int: split long buffers into pieces of at most INT_MAX/2 elements. */
#define MPI_PIECE ((size_t) INT_MAX / 2)

static void mpi_allreduce(poa_dist *d, void *buf, size_t n, MPI_Datatype t, size_t elem, MPI_Op op)
{
    char *p = buf;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < MPI_PIECE ? n - done : MPI_PIECE;
        MPI_OK(MPI_Allreduce(MPI_IN_PLACE, p + done * elem, (int) k, t, op, d->comm));
        done += k;
    }
}

static void mpi_bcast(poa_dist *d, void *buf, size_t bytes, int root)
{
    char *p = buf;
    for (size_t done = 0; done < bytes;) {
        size_t k = bytes - done < MPI_PIECE ? bytes - done : MPI_PIECE;
        MPI_OK(MPI_Bcast(p + done, (int) k, MPI_BYTE, root, d->comm));
        done += k;
    }
}

#ifdef POA_HAVE_NCCL
/* NCCL kind with a device pointer → NCCL on the compute stream; anything else → MPI. */
static int use_nccl(const poa_dist *d, const void *buf)
{
    return d->nccl && dist_nccl_is_device_ptr(buf);
}
#endif

/* ------------------------------------------------------------------ backend-memory collectives */

void dist_allreduce_sum_f32(poa_dist *d, float *buf, size_t n)
{
    if (n == 0) return;
#ifdef POA_HAVE_NCCL
    if (use_nccl(d, buf)) {
        dist_nccl_allreduce(d->nccl, buf, n, DIST_F32, DIST_SUM);
        return;
    }
#endif
    mpi_allreduce(d, buf, n, MPI_FLOAT, sizeof(float), MPI_SUM);
}

void dist_allreduce_sum_f64(poa_dist *d, double *buf, size_t n)
{
    if (n == 0) return;
#ifdef POA_HAVE_NCCL
    if (use_nccl(d, buf)) {
        dist_nccl_allreduce(d->nccl, buf, n, DIST_F64, DIST_SUM);
        return;
    }
#endif
    mpi_allreduce(d, buf, n, MPI_DOUBLE, sizeof(double), MPI_SUM);
}

void dist_allreduce_max_f32(poa_dist *d, float *buf, size_t n)
{
    if (n == 0) return;
#ifdef POA_HAVE_NCCL
    if (use_nccl(d, buf)) {
        dist_nccl_allreduce(d->nccl, buf, n, DIST_F32, DIST_MAX);
        return;
    }
#endif
    mpi_allreduce(d, buf, n, MPI_FLOAT, sizeof(float), MPI_MAX);
}

void dist_allreduce_max_f64(poa_dist *d, double *buf, size_t n)
{
    if (n == 0) return;
#ifdef POA_HAVE_NCCL
    if (use_nccl(d, buf)) {
        dist_nccl_allreduce(d->nccl, buf, n, DIST_F64, DIST_MAX);
        return;
    }
#endif
    mpi_allreduce(d, buf, n, MPI_DOUBLE, sizeof(double), MPI_MAX);
}

void dist_broadcast_f32(poa_dist *d, float *buf, size_t n, int root)
{
    if (n == 0) return;
#ifdef POA_HAVE_NCCL
    if (use_nccl(d, buf)) {
        dist_nccl_broadcast(d->nccl, buf, n, DIST_F32, root);
        return;
    }
#endif
    mpi_bcast(d, buf, n * sizeof(float), root);
}

int dist_check_identical(poa_dist *d, const void *buf, size_t bytes, int *first_diff)
{
#ifdef POA_HAVE_NCCL
    if (bytes > 0 && use_nccl(d, buf)) {
        void *host = poa_xmalloc(bytes);
        dist_nccl_download(d->nccl, host, buf, bytes);
        int same = dist_check_identical_host(d, host, bytes, first_diff);
        free(host);
        return same;
    }
#endif
    return dist_check_identical_host(d, buf, bytes, first_diff);
}

/* ------------------------------------------------------------------ host collectives */

void dist_host_allreduce_sum_f64(poa_dist *d, double *buf, size_t n)
{
    mpi_allreduce(d, buf, n, MPI_DOUBLE, sizeof(double), MPI_SUM);
}

void dist_host_allreduce_sum_i64(poa_dist *d, int64_t *buf, size_t n)
{
    mpi_allreduce(d, buf, n, MPI_INT64_T, sizeof(int64_t), MPI_SUM);
}

void dist_host_allreduce_max_f64(poa_dist *d, double *buf, size_t n)
{
    mpi_allreduce(d, buf, n, MPI_DOUBLE, sizeof(double), MPI_MAX);
}

void dist_host_broadcast(poa_dist *d, void *buf, size_t bytes, int root)
{
    mpi_bcast(d, buf, bytes, root);
}

int dist_max_int(poa_dist *d, int v)
{
    int out = v;
    MPI_OK(MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, d->comm));
    return out;
}

int dist_any(poa_dist *d, int flag)
{
    return dist_max_int(d, flag != 0);
}

void dist_barrier(poa_dist *d)
{
    MPI_OK(MPI_Barrier(d->comm));
}

int dist_check_identical_host(poa_dist *d, const void *buf, size_t bytes, int *first_diff)
{
    uint64_t mine = dist_hash64(buf, bytes);
    uint64_t *all = poa_xmalloc((size_t) d->size * sizeof *all);
    MPI_OK(MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, d->comm));
    int diff = -1;
    for (int r = 1; r < d->size && diff < 0; r++)
        if (all[r] != all[0]) diff = r;
    free(all);
    if (first_diff) *first_diff = diff;
    return diff < 0;
}

/* ------------------------------------------------------------------ per-rank blobs */

void dist_gather_blobs(poa_dist *d, const uint64_t *mine, size_t n, int root, uint64_t ***all,
                       size_t **lens)
{
    POA_CHECK(n <= (size_t) INT_MAX, "blob of %zu values is too large", n);
    int count = (int) n, *counts = NULL, *displs = NULL;
    uint64_t *flat = NULL;
    if (d->rank == root) counts = poa_xcalloc((size_t) d->size, sizeof *counts);
    MPI_OK(MPI_Gather(&count, 1, MPI_INT, counts, 1, MPI_INT, root, d->comm));
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
    MPI_OK(
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

void dist_scatter_blobs(poa_dist *d, uint64_t *const *all, const size_t *lens, int n_root, int root,
                        uint64_t **mine, size_t *n)
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
    MPI_OK(MPI_Scatter(counts, 1, MPI_INT, &count, 1, MPI_INT, root, d->comm));
    *mine = poa_xmalloc((size_t) count * sizeof **mine);
    *n = (size_t) count;
    MPI_OK(MPI_Scatterv(flat, counts, displs, MPI_UINT64_T, *mine, count, MPI_UINT64_T, root,
                        d->comm));
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

uint64_t dist_hash64(const void *buf, size_t bytes)
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
