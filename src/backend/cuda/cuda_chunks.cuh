// cuda_chunks.cuh — chunked row access shared by the row kernels of cuda_norm.cu and
// cuda_loss.cu (internal).
//
// A row of d values is cut into chunks of N consecutive elements (N · sizeof(T) a multiple of
// 16 bytes); thread t of the P threads working on a row takes chunks t, t + P, t + 2P, ... and
// walks each chunk in element order.  The vector path (16-byte loads/stores, for tensors whose
// rows are 16-byte aligned and whose d is a multiple of N) and the scalar path (element loads,
// bounds-checked) visit the same elements in the same order, so a row's sums come out with the
// same bits whether or not a tensor happens to be aligned: only the speed differs.
#ifndef POA_BACKEND_CUDA_CHUNKS_CUH
#define POA_BACKEND_CUDA_CHUNKS_CUH

#include "backend/cuda/cuda_common.cuh"

#include <stdint.h>
#include <string.h>

// Elements of one 16-byte vector of T: the chunk width of the activation row kernels.
template <typename T> struct poa_chunk_width {
    static constexpr int value = (int) (16 / sizeof(T));
};

// f[0..N) = p[0..N) as fp32; p 16-byte aligned.
template <int N, typename T>
__device__ __forceinline__ void chunk_load_vec(float (&f)[N], const T *p)
{
    static_assert((N * sizeof(T)) % 16 == 0, "a chunk is a whole number of 16-byte vectors");
    constexpr int nv = (int) (N * sizeof(T) / 16);
    T e[N];
#pragma unroll
    for (int q = 0; q < nv; q++) {
        const uint4 u = reinterpret_cast<const uint4 *>(p)[q];
        memcpy(reinterpret_cast<char *>(e) + 16 * q, &u, 16);
    }
#pragma unroll
    for (int j = 0; j < N; j++) f[j] = to_f32(e[j]);
}

// p[0..N) = f[0..N) rounded to T; p 16-byte aligned.
template <int N, typename T>
__device__ __forceinline__ void chunk_store_vec(T *p, const float (&f)[N])
{
    static_assert((N * sizeof(T)) % 16 == 0, "a chunk is a whole number of 16-byte vectors");
    constexpr int nv = (int) (N * sizeof(T) / 16);
    T e[N];
#pragma unroll
    for (int j = 0; j < N; j++) e[j] = from_f32<T>(f[j]);
#pragma unroll
    for (int q = 0; q < nv; q++) {
        uint4 u;
        memcpy(&u, reinterpret_cast<const char *>(e) + 16 * q, 16);
        reinterpret_cast<uint4 *>(p)[q] = u;
    }
}

// f[j] = row[k0 + j] for the chunk starting at k0; elements at or beyond d read as 0 (scalar
// path only: the vector path is used when d is a multiple of N).  Callers skip those elements
// in their sums (`VEC || k0 + j < d`), so both paths add the same values in the same order.
template <int N, bool VEC, typename T>
__device__ __forceinline__ void chunk_load(float (&f)[N], const T *row, int k0, int d)
{
    if (VEC) {
        chunk_load_vec<N>(f, row + k0);
    } else {
#pragma unroll
        for (int j = 0; j < N; j++) f[j] = k0 + j < d ? to_f32(row[k0 + j]) : 0.0f;
    }
}

// row[k0 + j] = f[j] for the elements of the chunk below d (columns d … ld−1 are not touched).
template <int N, bool VEC, typename T>
__device__ __forceinline__ void chunk_store(T *row, const float (&f)[N], int k0, int d)
{
    if (VEC) {
        chunk_store_vec<N>(row + k0, f);
    } else {
#pragma unroll
        for (int j = 0; j < N; j++)
            if (k0 + j < d) row[k0 + j] = from_f32<T>(f[j]);
    }
}

// Host side: rows of a tensor at p with leading dimension ld (elements of elem_bytes) start on
// 16-byte boundaries.  NULL (an absent optional tensor) does not prevent the vector path.
static inline bool chunk_rows_aligned(const void *p, long long ld, size_t elem_bytes)
{
    return p == NULL ||
           ((uintptr_t) p % 16 == 0 && ((unsigned long long) ld * elem_bytes) % 16 == 0);
}

#endif
