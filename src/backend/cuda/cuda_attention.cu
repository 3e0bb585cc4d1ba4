// cuda_attention.cu — multi-head attention of the CUDA backend (backend.h: attention_fwd,
// attention_bwd, attention_saved_bytes, attention_scratch_bytes).
//
// Semantics (backend.h): qkv rows [q (H·Dh) | k (H·Dh) | v (H·Dh)] at row b·T + t, leading
// dimension ldqkv; out [B·T, H·Dh] (ldout); P = softmax(scale · q kᵀ) row-wise in fp32 with the
// row maximum subtracted; out = P v.  Inputs and outputs are in the run's compute dtype (fp32 or
// bf16), every sum is accumulated in fp32.
//
// What is saved.  `saved` holds two fp32 statistics per query row, m[b, h, i] (the maximum of
// the row's scaled scores) and 1/l[b, h, i] with l = Σ_j exp(s_ij − m) (attention_saved_bytes =
// B·H·T·8), so that backward recomputes P_ij = exp(s_ij − m_i) / l_i from q and k instead of
// keeping the [T, T] probabilities.  Not the single log-sum-exp m + log l that FlashAttention
// saves: rounded to fp32 it carries the ulp of m, which at scores of 10³ shifts every P of a row
// by ~1e-4 relative, and backward's dP − D cancellation turns that into dq errors of 1e-3 of its
// size; s − m is exact near the maximum.
//
// Forward, one thread block per (image, head, tile of query rows), in two passes over the key
// tiles (no [T, T] matrix is ever stored, so any T ≥ 1 runs):
//   pass 1: s = scale · q kᵀ per key tile; running row maximum m and running sum
//           l = l · exp(m_old − m_new) + Σ exp(s − m_new);
//   pass 2: s again, P = exp(s − m) / l (normalised), O += P v.
// Two passes cost one extra q kᵀ (forward is 6·T²·Dh flops per head instead of 4) but need no
// rescaling of the output accumulators, which the tensor-core path keeps in opaque wmma
// fragments; and the P of pass 2 is the very expression backward recomputes.
//
// Backward.  `out` is not an input of attention_bwd (backend.h), so D_i = Σ_e dO_ie O_ie, the
// softmax-backward row term, is computed as D_i = Σ_j P_ij dP_ij (mathematically the same):
//   kernel dq  (one block per (image, head, query tile)):
//     pass 1: s, P = exp(s − m) / l, dP = dO vᵀ per key tile;  D_i = Σ_j P_ij dP_ij;
//     pass 2: s, P, dP again;  dS = P ⊙ (dP − D);  dQ += dS k;  dq = scale · dQ;
//             D is written to `scratch` ([B, H, T] fp32).
//   kernel dkv (one block per (image, head, key tile), looping over all query tiles):
//     s, P, dP, dS from q, k, v, dO, m, 1/l and D;  dV += Pᵀ dO;  dK += dSᵀ q;  dk = scale · dK.
// attention_scratch_bytes = B·H·T·4 (D).  Storing O (or D) at forward time instead is not
// possible within the contract: O would be as large as `out` itself, and D needs dO.
//
// Why no atomics.  dq of a query row depends on that row's dS only: the dq kernel owns its query
// rows.  dk and dv of a key sum over all queries: the dkv kernel owns its key rows and loops over
// every query tile itself, in a fixed order.  Every sum has a fixed order (per-thread loops, then
// fixed warp shuffles; the tensor-core mma is deterministic), so results are bit-identical run to
// run on a given device and build, as backend.h requires.
//
// Memory traffic per (image, head): forward reads q once and k twice (v once) per query tile:
// about (1 + 3·⌈T/tile⌉) · T·Dh elements, writes T·Dh + T floats; backward reads q, dO once and
// k, v twice per query tile (dq kernel), k, v once and q, dO, m, 1/l, D once per key tile (dkv
// kernel), and writes 3·T·Dh.  At ViT sizes (T ≤ 261) all of it is L2-resident: the kernels are
// bound by arithmetic and shared memory, not DRAM.  Flops per head: forward 6·T²·Dh; backward
// 18·T²·Dh (q kᵀ three times, dO vᵀ three times, dS k, Pᵀ dO, dSᵀ q).
//
// Two implementations (both deterministic, both any T ≥ 1 and any 1 ≤ Dh ≤ 128; a larger or
// non-positive Dh is a fatal error naming the value):
//   simple   FFMA in fp32 shared memory, 32-row tiles, 4 warps; a warp owns 8 rows, a lane one
//            key (query) of the inner tile for the scores and up to 4 head dims for the
//            accumulators.  Used for fp32 activations (parity runs), on devices before sm_80,
//            and for bf16 when POA_CUDA_ATTN=simple (read on every call, so a test can switch).
//   tc       bf16 tensor cores (nvcuda::wmma m16n16k16, fp32 accumulate), 64-row tiles, 4 warps;
//            a warp owns 16 rows.  Head dims are zero-padded to 16, 32, 64 or 128 in shared
//            memory.  P and dS are rounded to bf16 as the mma operands of P v, dS k, Pᵀ dO and
//            dSᵀ q (as FlashAttention does); scores, m, 1/l, D and all sums stay fp32.  The default
//            for bf16 activations on sm_80 and later.
// src/backend/cuda/README.md ("Attention") has the shared-memory sizes and what to check first.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_sizes.h"

#include <mma.h>

#include <limits.h>
#include <math.h>
#include <mutex>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <type_traits>

namespace
{

constexpr int kThreads = 128; // every attention kernel: 4 warps
constexpr int kMaxDh = 128;

// ================================================================ simple (FFMA) kernels
// Tiles of 32 rows (query rows for fwd/dq, keys for dkv) × inner tiles of 32 (one per lane).
// fp32 shared tiles with row stride Dh | 1 (odd: lane-strided reads hit distinct banks).
constexpr int kSRows = 32;   // rows of a block
constexpr int kSInner = 32;  // rows of an inner tile (= lanes)
constexpr int kSPerWarp = 8; // rows of a warp
constexpr int kSPld = 33;    // row stride of the [32][32] P / dS tiles

__host__ __device__ inline int simple_ld(int Dh)
{
    return Dh | 1;
}

// The saved statistics of a query row (attention_saved_bytes: [B, H, T] pairs of fp32): the
// maximum m of the row's scaled scores and 1/l, l = Σ_j exp(s_ij − m).  P_ij = exp(s_ij − m)/l:
// s_ij − m is exact near the maximum, so backward recomputes forward's probabilities to an ulp
// whatever the scores' size.  (One log-sum-exp m + log l would be rounded to the fp32 ulp of m:
// at scores of 10³ every P of the row moves by ~1e-4 relative, and dP − D, which cancels,
// turns that into dq errors of 1e-3 of its size.)
struct row_stat {
    float m, il;
};
__device__ __forceinline__ float attn_prob(float s, row_stat r)
{
    return expf(s - r.m) * r.il;
}
__device__ __forceinline__ row_stat load_stat(const float *stats, size_t row)
{
    return row_stat{stats[2 * row], stats[2 * row + 1]};
}
__device__ __forceinline__ void store_stat(float *stats, size_t row, row_stat r)
{
    stats[2 * row] = r.m, stats[2 * row + 1] = r.il;
}

// Shared-memory bytes of the simple kernels: `head_tiles` fp32 tiles [32][ld], `p_tiles` fp32
// tiles [32][33] and `vectors` fp32 vectors [32].
static inline size_t simple_smem(int Dh, int head_tiles, int p_tiles, int vectors)
{
    return sizeof(float) * ((size_t) head_tiles * kSRows * simple_ld(Dh) +
                            (size_t) p_tiles * kSRows * kSPld + (size_t) vectors * kSRows);
}

// dst[r][e] = src row (row0 + r), column e, as fp32; rows at or past T are zero.  Columns ≥ Dh
// of dst are never written and never read.
template <typename T>
__device__ void load_rows_f32(float *dst, int ld, const T *src, int ldsrc, int row0, int T_, int Dh)
{
    const int n = kSRows * Dh;
    for (int idx = threadIdx.x; idx < n; idx += kThreads) {
        const int r = idx / Dh, e = idx - r * Dh, t = row0 + r;
        dst[r * ld + e] = t < T_ ? to_f32(src[(size_t) t * ldsrc + e]) : 0.0f;
    }
}

// s[r] = Σ_e rows[r][e] · x[e] for the R rows of a warp (broadcast reads) and the lane's x.
// One summation order for every caller, so that recomputed scores are bit-identical.
template <int R>
__device__ __forceinline__ void dot_rows(float (&s)[R], const float *rows, int ld, const float *x,
                                         int Dh)
{
#pragma unroll
    for (int r = 0; r < R; r++) s[r] = 0.0f;
    for (int e = 0; e < Dh; e++) {
        const float xe = x[e];
#pragma unroll
        for (int r = 0; r < R; r++) s[r] = fmaf(rows[r * ld + e], xe, s[r]);
    }
}

// The lane's head dims e = lane + 32 c (c < DPL) of row j of a [32][ld] tile; 0 past Dh.
template <int DPL>
__device__ __forceinline__ void lane_dims(float (&v)[DPL], const float *row, int lane, int Dh)
{
#pragma unroll
    for (int c = 0; c < DPL; c++) {
        const int e = lane + 32 * c;
        v[c] = e < Dh ? row[e] : 0.0f;
    }
}

// Writes the warp's R rows of accumulators (times mul) to rows row0 + r of dst (ld), skipping
// rows at or past T and dims past Dh.
template <typename T, int R, int DPL>
__device__ __forceinline__ void store_lane_rows(T *dst, int ld, const float (&acc)[R][DPL],
                                                int row0, int T_, int Dh, float mul, int lane)
{
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int t = row0 + r;
        if (t >= T_) continue;
#pragma unroll
        for (int c = 0; c < DPL; c++) {
            const int e = lane + 32 * c;
            if (e < Dh) dst[(size_t) t * ld + e] = from_f32<T>(acc[r][c] * mul);
        }
    }
}

// Pointers to q, k, v of image b, head h at token 0.
template <typename T> struct head_qkv {
    const T *q, *k, *v;
};
template <typename T>
__device__ __forceinline__ head_qkv<T> head_of(const T *qkv, int ldqkv, int b, int h, int T_, int H,
                                               int Dh)
{
    const T *q = qkv + (size_t) b * T_ * ldqkv + (size_t) h * Dh;
    return head_qkv<T>{q, q + (size_t) H * Dh, q + (size_t) 2 * H * Dh};
}

// Forward.  grid (B·H, ⌈T/32⌉); smem: Q, K, V [32][ld], P [32][33].
template <typename T, int DPL>
__global__ void __launch_bounds__(kThreads)
    attn_fwd_simple(T *out, int ldout, float *stats, const T *qkv, int ldqkv, int T_, int H, int Dh,
                    float scale)
{
    extern __shared__ float smem_f[];
    const int ld = simple_ld(Dh), lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float *sQ = smem_f, *sK = sQ + kSRows * ld, *sV = sK + kSInner * ld, *sP = sV + kSInner * ld;
    const int bh = blockIdx.x, b = bh / H, h = bh - b * H, q0 = blockIdx.y * kSRows;
    const head_qkv<T> hq = head_of(qkv, ldqkv, b, h, T_, H, Dh);
    const float *myQ = sQ + warp * kSPerWarp * ld;
    float *myP = sP + warp * kSPerWarp * kSPld;
    load_rows_f32(sQ, ld, hq.q, ldqkv, q0, T_, Dh);

    // pass 1: row maximum and sum of exponentials, online over the key tiles
    float m[kSPerWarp], l[kSPerWarp], s[kSPerWarp];
#pragma unroll
    for (int r = 0; r < kSPerWarp; r++) m[r] = -INFINITY, l[r] = 0.0f;
    for (int k0 = 0; k0 < T_; k0 += kSInner) {
        __syncthreads(); // previous tile's readers of sK are done (first: sQ visible after next)
        load_rows_f32(sK, ld, hq.k, ldqkv, k0, T_, Dh);
        __syncthreads();
        dot_rows(s, myQ, ld, sK + lane * ld, Dh);
        const bool key_ok = k0 + lane < T_; // lane 0's key always is: m_new is finite
#pragma unroll
        for (int r = 0; r < kSPerWarp; r++) {
            const float sr = key_ok ? s[r] * scale : -INFINITY;
            const float m_new = fmaxf(m[r], warp_max(sr));
            const float p = key_ok ? expf(sr - m_new) : 0.0f;
            l[r] = l[r] * expf(m[r] - m_new) + warp_sum(p); // first tile: 0 · exp(−inf) = 0
            m[r] = m_new;
        }
    }
    row_stat row[kSPerWarp];
#pragma unroll
    for (int r = 0; r < kSPerWarp; r++) row[r] = row_stat{m[r], 1.0f / l[r]}; // l ≥ 1

    // pass 2: P = exp(s − m) / l, O += P V
    float o[kSPerWarp][DPL];
#pragma unroll
    for (int r = 0; r < kSPerWarp; r++)
#pragma unroll
        for (int c = 0; c < DPL; c++) o[r][c] = 0.0f;
    for (int k0 = 0; k0 < T_; k0 += kSInner) {
        __syncthreads();
        load_rows_f32(sK, ld, hq.k, ldqkv, k0, T_, Dh);
        load_rows_f32(sV, ld, hq.v, ldqkv, k0, T_, Dh);
        __syncthreads();
        dot_rows(s, myQ, ld, sK + lane * ld, Dh);
        const bool key_ok = k0 + lane < T_;
#pragma unroll
        for (int r = 0; r < kSPerWarp; r++)
            myP[r * kSPld + lane] = key_ok ? attn_prob(s[r] * scale, row[r]) : 0.0f;
        __syncwarp();
        const int nk = min(kSInner, T_ - k0);
        for (int j = 0; j < nk; j++) {
            float v[DPL];
            lane_dims(v, sV + j * ld, lane, Dh);
#pragma unroll
            for (int r = 0; r < kSPerWarp; r++) {
                const float p = myP[r * kSPld + j];
#pragma unroll
                for (int c = 0; c < DPL; c++) o[r][c] = fmaf(p, v[c], o[r][c]);
            }
        }
        // the next tile's writes to myP come after the __syncthreads at the loop top
    }

    const int row0 = q0 + warp * kSPerWarp;
    store_lane_rows<T>(out + (size_t) b * T_ * ldout + (size_t) h * Dh, ldout, o, row0, T_, Dh,
                       1.0f, lane);
    if (lane == 0)
#pragma unroll
        for (int r = 0; r < kSPerWarp; r++)
            if (row0 + r < T_) store_stat(stats, (size_t) bh * T_ + row0 + r, row[r]);
}

// Backward, dq and D.  grid (B·H, ⌈T/32⌉); smem: Q, dO, K, V [32][ld], dS [32][33].
template <typename T, int DPL>
__global__ void __launch_bounds__(kThreads)
    attn_bwd_dq_simple(T *dqkv, int lddqkv, float *dsum, const T *dout, int lddout, const T *qkv,
                       int ldqkv, const float *stats, int T_, int H, int Dh, float scale)
{
    extern __shared__ float smem_f[];
    const int ld = simple_ld(Dh), lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float *sQ = smem_f, *sdO = sQ + kSRows * ld, *sK = sdO + kSRows * ld, *sV = sK + kSInner * ld;
    float *sdS = sV + kSInner * ld;
    const int bh = blockIdx.x, b = bh / H, h = bh - b * H, q0 = blockIdx.y * kSRows;
    const head_qkv<T> hq = head_of(qkv, ldqkv, b, h, T_, H, Dh);
    const T *dO = dout + (size_t) b * T_ * lddout + (size_t) h * Dh;
    const int row0 = q0 + warp * kSPerWarp;
    const float *myQ = sQ + warp * kSPerWarp * ld, *mydO = sdO + warp * kSPerWarp * ld;
    float *mydS = sdS + warp * kSPerWarp * kSPld;
    load_rows_f32(sQ, ld, hq.q, ldqkv, q0, T_, Dh);
    load_rows_f32(sdO, ld, dO, lddout, q0, T_, Dh);

    bool row_ok[kSPerWarp];
    row_stat row[kSPerWarp];
    float s[kSPerWarp], dp[kSPerWarp], dpart[kSPerWarp], D[kSPerWarp];
#pragma unroll
    for (int r = 0; r < kSPerWarp; r++) {
        row_ok[r] = row0 + r < T_;
        row[r] = row_ok[r] ? load_stat(stats, (size_t) bh * T_ + row0 + r) : row_stat{0.0f, 0.0f};
        dpart[r] = 0.0f;
    }

    // pass 1: D_i = Σ_j P_ij dP_ij (per-lane partial sums, then one warp sum)
    for (int k0 = 0; k0 < T_; k0 += kSInner) {
        __syncthreads();
        load_rows_f32(sK, ld, hq.k, ldqkv, k0, T_, Dh);
        load_rows_f32(sV, ld, hq.v, ldqkv, k0, T_, Dh);
        __syncthreads();
        dot_rows(s, myQ, ld, sK + lane * ld, Dh);
        dot_rows(dp, mydO, ld, sV + lane * ld, Dh);
        const bool key_ok = k0 + lane < T_;
#pragma unroll
        for (int r = 0; r < kSPerWarp; r++) {
            const float p = key_ok && row_ok[r] ? attn_prob(s[r] * scale, row[r]) : 0.0f;
            dpart[r] = fmaf(p, dp[r], dpart[r]);
        }
    }
#pragma unroll
    for (int r = 0; r < kSPerWarp; r++) D[r] = warp_sum(dpart[r]);

    // pass 2: dS = P ⊙ (dP − D), dQ += dS K
    float acc[kSPerWarp][DPL];
#pragma unroll
    for (int r = 0; r < kSPerWarp; r++)
#pragma unroll
        for (int c = 0; c < DPL; c++) acc[r][c] = 0.0f;
    for (int k0 = 0; k0 < T_; k0 += kSInner) {
        __syncthreads();
        load_rows_f32(sK, ld, hq.k, ldqkv, k0, T_, Dh);
        load_rows_f32(sV, ld, hq.v, ldqkv, k0, T_, Dh);
        __syncthreads();
        dot_rows(s, myQ, ld, sK + lane * ld, Dh);
        dot_rows(dp, mydO, ld, sV + lane * ld, Dh);
        const bool key_ok = k0 + lane < T_;
#pragma unroll
        for (int r = 0; r < kSPerWarp; r++) {
            const float p = key_ok && row_ok[r] ? attn_prob(s[r] * scale, row[r]) : 0.0f;
            mydS[r * kSPld + lane] = p * (dp[r] - D[r]);
        }
        __syncwarp();
        const int nk = min(kSInner, T_ - k0);
        for (int j = 0; j < nk; j++) {
            float kv[DPL];
            lane_dims(kv, sK + j * ld, lane, Dh);
#pragma unroll
            for (int r = 0; r < kSPerWarp; r++) {
                const float ds = mydS[r * kSPld + j];
#pragma unroll
                for (int c = 0; c < DPL; c++) acc[r][c] = fmaf(ds, kv[c], acc[r][c]);
            }
        }
    }

    store_lane_rows<T>(dqkv + (size_t) b * T_ * lddqkv + (size_t) h * Dh, lddqkv, acc, row0, T_, Dh,
                       scale, lane);
    if (lane == 0)
#pragma unroll
        for (int r = 0; r < kSPerWarp; r++)
            if (row_ok[r]) dsum[(size_t) bh * T_ + row0 + r] = D[r];
}

// Backward, dk and dv.  grid (B·H, ⌈T/32⌉ key tiles); smem: K, V, Q, dO [32][ld], P, dS
// [32][33], m, 1/l, D [32].  A warp owns 8 keys; a lane is one query of the inner tile.
template <typename T, int DPL>
__global__ void __launch_bounds__(kThreads)
    attn_bwd_dkv_simple(T *dqkv, int lddqkv, const float *dsum, const T *dout, int lddout,
                        const T *qkv, int ldqkv, const float *stats, int T_, int H, int Dh,
                        float scale)
{
    extern __shared__ float smem_f[];
    const int ld = simple_ld(Dh), lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float *sK = smem_f, *sV = sK + kSRows * ld, *sQ = sV + kSRows * ld, *sdO = sQ + kSInner * ld;
    float *sP = sdO + kSInner * ld, *sdS = sP + kSRows * kSPld, *sM = sdS + kSRows * kSPld;
    float *sIl = sM + kSInner, *sD = sIl + kSInner;
    const int bh = blockIdx.x, b = bh / H, h = bh - b * H, k0 = blockIdx.y * kSRows;
    const head_qkv<T> hq = head_of(qkv, ldqkv, b, h, T_, H, Dh);
    const T *dO = dout + (size_t) b * T_ * lddout + (size_t) h * Dh;
    const int key0 = k0 + warp * kSPerWarp;
    const float *myK = sK + warp * kSPerWarp * ld, *myV = sV + warp * kSPerWarp * ld;
    float *myP = sP + warp * kSPerWarp * kSPld, *mydS = sdS + warp * kSPerWarp * kSPld;
    load_rows_f32(sK, ld, hq.k, ldqkv, k0, T_, Dh);
    load_rows_f32(sV, ld, hq.v, ldqkv, k0, T_, Dh);

    bool key_ok[kSPerWarp];
    float s[kSPerWarp], dp[kSPerWarp], dk[kSPerWarp][DPL], dv[kSPerWarp][DPL];
#pragma unroll
    for (int r = 0; r < kSPerWarp; r++) {
        key_ok[r] = key0 + r < T_;
#pragma unroll
        for (int c = 0; c < DPL; c++) dk[r][c] = 0.0f, dv[r][c] = 0.0f;
    }

    for (int q0 = 0; q0 < T_; q0 += kSInner) {
        __syncthreads(); // previous tile's readers are done (first: sK, sV visible after next)
        load_rows_f32(sQ, ld, hq.q, ldqkv, q0, T_, Dh);
        load_rows_f32(sdO, ld, dO, lddout, q0, T_, Dh);
        if (threadIdx.x < kSInner) {
            const int t = q0 + threadIdx.x;
            const row_stat st =
                t < T_ ? load_stat(stats, (size_t) bh * T_ + t) : row_stat{0.0f, 0.0f};
            sM[threadIdx.x] = st.m, sIl[threadIdx.x] = st.il;
            sD[threadIdx.x] = t < T_ ? dsum[(size_t) bh * T_ + t] : 0.0f;
        }
        __syncthreads();
        dot_rows(s, myK, ld, sQ + lane * ld, Dh);
        dot_rows(dp, myV, ld, sdO + lane * ld, Dh);
        const bool q_ok = q0 + lane < T_;
        const row_stat row_i = {sM[lane], sIl[lane]};
        const float D_i = sD[lane];
#pragma unroll
        for (int r = 0; r < kSPerWarp; r++) {
            const float p = q_ok && key_ok[r] ? attn_prob(s[r] * scale, row_i) : 0.0f;
            myP[r * kSPld + lane] = p;
            mydS[r * kSPld + lane] = p * (dp[r] - D_i);
        }
        __syncwarp();
        const int nq = min(kSInner, T_ - q0);
        for (int i = 0; i < nq; i++) {
            float ov[DPL], qv[DPL];
            lane_dims(ov, sdO + i * ld, lane, Dh);
            lane_dims(qv, sQ + i * ld, lane, Dh);
#pragma unroll
            for (int r = 0; r < kSPerWarp; r++) {
                const float p = myP[r * kSPld + i], ds = mydS[r * kSPld + i];
#pragma unroll
                for (int c = 0; c < DPL; c++) {
                    dv[r][c] = fmaf(p, ov[c], dv[r][c]);
                    dk[r][c] = fmaf(ds, qv[c], dk[r][c]);
                }
            }
        }
    }

    T *dbase = dqkv + (size_t) b * T_ * lddqkv + (size_t) h * Dh;
    store_lane_rows<T>(dbase + (size_t) H * Dh, lddqkv, dk, key0, T_, Dh, scale, lane);
    store_lane_rows<T>(dbase + (size_t) 2 * H * Dh, lddqkv, dv, key0, T_, Dh, 1.0f, lane);
}

// ================================================================ tensor-core (bf16) kernels
// Tiles of 64 rows, 4 warps of 16 rows.  Shared tiles are bf16 [64][DP + 8] (head dims padded
// with zeros to DP = 16·NF), the scores fp32 [64][LDS], P / dS bf16 [64][72].  Every region
// starts on a 128-byte boundary; wmma needs 32-byte aligned fragment pointers and leading
// dimensions that are multiples of 8 (bf16) or 4 (fp32): fragment pointers are region +
// (16·i)·ld + 16·j elements, i.e. multiples of 32 bytes for every ld used here.
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define POA_ATTN_TC_ARCH 1
#else
#define POA_ATTN_TC_ARCH 0
#endif

constexpr int kTRows = 64; // rows of a block and of an inner tile
constexpr int kTPerWarp = 16;

template <int NF> struct tc_layout {
    static constexpr int DP = 16 * NF;                          // padded head dim
    static constexpr int LDH = DP + 8;                          // bf16 head tiles
    static constexpr int LDS = (DP > kTRows ? DP : kTRows) + 4; // fp32 scores / output staging
    static constexpr int LDP = kTRows + 8;                      // bf16 P / dS tiles
    static constexpr size_t HT = (size_t) kTRows * LDH * 2;     // bytes of one head tile
    static constexpr size_t ST = (size_t) kTRows * LDS * 4;     // bytes of one score tile
    static constexpr size_t PT = (size_t) kTRows * LDP * 2;     // bytes of one P tile
    static constexpr size_t VEC = (size_t) kTRows * 4;          // bytes of one fp32 row vector
    // + 128: room to align the dynamic shared memory's start to 128 bytes
    static constexpr size_t fwd_bytes = 3 * HT + ST + PT + 128;
    static constexpr size_t dq_bytes = 4 * HT + 2 * ST + PT + 128;
    static constexpr size_t dkv_bytes = 4 * HT + 2 * ST + 2 * PT + 3 * VEC + 128;
    static_assert(HT % 128 == 0 && ST % 128 == 0 && PT % 128 == 0, "regions stay aligned");
};

#if POA_ATTN_TC_ARCH
namespace wmma = nvcuda::wmma;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> frag_a;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> frag_b;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> frag_bt;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_c;
#endif

__device__ __forceinline__ unsigned char *align128(unsigned char *p)
{
    const unsigned off = (unsigned) __cvta_generic_to_shared(p);
    return p + ((128u - (off & 127u)) & 127u);
}

// dst[r][e] (ld LDH) = src row (row0 + r), column e for r < 64, e < DP; zero at rows ≥ T and at
// columns ≥ Dh.  vec: 16-byte loads (the caller checked that src, ldsrc and Dh allow them).
template <int NF>
__device__ void load_tile_tc(bf16 *dst, const bf16 *src, int ldsrc, int row0, int T_, int Dh,
                             int vec)
{
    typedef tc_layout<NF> L;
    if (vec) {
        constexpr int G = L::DP / 8; // 16-byte groups of a row
        for (int idx = threadIdx.x; idx < kTRows * G; idx += kThreads) {
            const int r = idx / G, e = (idx - r * G) * 8, t = row0 + r;
            uint4 val = make_uint4(0u, 0u, 0u, 0u);
            if (t < T_ && e < Dh) // Dh % 8 == 0: the whole group is inside the row
                val = *reinterpret_cast<const uint4 *>(src + (size_t) t * ldsrc + e);
            *reinterpret_cast<uint4 *>(dst + r * L::LDH + e) = val;
        }
    } else {
        for (int idx = threadIdx.x; idx < kTRows * L::DP; idx += kThreads) {
            const int r = idx / L::DP, e = idx - r * L::DP, t = row0 + r;
            dst[r * L::LDH + e] =
                t < T_ && e < Dh ? src[(size_t) t * ldsrc + e] : __float2bfloat16_rn(0.0f);
        }
    }
}

#if POA_ATTN_TC_ARCH
// dst[16][64] (fp32, ld LDS) = a[16][DP] · b[64][DP]ᵀ: the warp's 16 rows against the 64 rows
// of an inner tile (scores q kᵀ, dO vᵀ, k qᵀ, v dOᵀ).
template <int NF>
__device__ __forceinline__ void strip_abt(float *dst, const bf16 *a, const bf16 *b)
{
    typedef tc_layout<NF> L;
    frag_c acc[kTRows / 16];
#pragma unroll
    for (int n = 0; n < kTRows / 16; n++) wmma::fill_fragment(acc[n], 0.0f);
#pragma unroll
    for (int kk = 0; kk < NF; kk++) {
        frag_a fa;
        wmma::load_matrix_sync(fa, a + kk * 16, L::LDH);
#pragma unroll
        for (int n = 0; n < kTRows / 16; n++) {
            frag_bt fb; // element (k, n') = b[16 n + n'][16 kk + k]
            wmma::load_matrix_sync(fb, b + n * 16 * L::LDH + kk * 16, L::LDH);
            wmma::mma_sync(acc[n], fa, fb, acc[n]);
        }
    }
#pragma unroll
    for (int n = 0; n < kTRows / 16; n++)
        wmma::store_matrix_sync(dst + n * 16, acc[n], L::LDS, wmma::mem_row_major);
}

// acc[16][DP] += a[16][64] (bf16, ld LDP) · b[64][DP] (bf16, ld LDH): P v, dS k, Pᵀ dO, dSᵀ q.
template <int NF>
__device__ __forceinline__ void strip_ab_acc(frag_c (&acc)[NF], const bf16 *a, const bf16 *b)
{
    typedef tc_layout<NF> L;
#pragma unroll
    for (int kk = 0; kk < kTRows / 16; kk++) {
        frag_a fa;
        wmma::load_matrix_sync(fa, a + kk * 16, L::LDP);
#pragma unroll
        for (int nf = 0; nf < NF; nf++) {
            frag_b fb; // element (k, n) = b[16 kk + k][16 nf + n]
            wmma::load_matrix_sync(fb, b + kk * 16 * L::LDH + nf * 16, L::LDH);
            wmma::mma_sync(acc[nf], fa, fb, acc[nf]);
        }
    }
}

// The warp's 16 × DP accumulators, times mul, to rows row0 + r of dst (ld), through the warp's
// own staging rows `stage` (fp32, ld LDS); rows at or past T and dims past Dh are skipped.
template <int NF>
__device__ __forceinline__ void store_strip(bf16 *dst, int ld, frag_c (&acc)[NF], float *stage,
                                            int row0, int T_, int Dh, float mul, int lane)
{
    typedef tc_layout<NF> L;
    __syncwarp(); // every lane is done reading `stage`
#pragma unroll
    for (int nf = 0; nf < NF; nf++)
        wmma::store_matrix_sync(stage + nf * 16, acc[nf], L::LDS, wmma::mem_row_major);
    __syncwarp();
    for (int r = 0; r < kTPerWarp; r++) {
        const int t = row0 + r;
        if (t >= T_) break;
        for (int e = lane; e < Dh; e += 32)
            dst[(size_t) t * ld + e] = __float2bfloat16_rn(stage[r * L::LDS + e] * mul);
    }
}
#endif

// Forward.  grid (B·H, ⌈T/64⌉); smem: Q, K, V head tiles, S fp32, P bf16.
template <int NF>
__global__ void __launch_bounds__(kThreads)
    attn_fwd_tc(bf16 *out, int ldout, float *stats, const bf16 *qkv, int ldqkv, int T_, int H,
                int Dh, float scale, int vec)
{
#if POA_ATTN_TC_ARCH
    typedef tc_layout<NF> L;
    extern __shared__ unsigned char smem_raw[];
    unsigned char *base = align128(smem_raw);
    bf16 *sQ = reinterpret_cast<bf16 *>(base);
    bf16 *sK = reinterpret_cast<bf16 *>(base + L::HT);
    bf16 *sV = reinterpret_cast<bf16 *>(base + 2 * L::HT);
    float *sS = reinterpret_cast<float *>(base + 3 * L::HT);
    bf16 *sP = reinterpret_cast<bf16 *>(base + 3 * L::HT + L::ST);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int bh = blockIdx.x, b = bh / H, h = bh - b * H, q0 = blockIdx.y * kTRows;
    const head_qkv<bf16> hq = head_of(qkv, ldqkv, b, h, T_, H, Dh);
    const bf16 *myQ = sQ + warp * kTPerWarp * L::LDH;
    float *myS = sS + warp * kTPerWarp * L::LDS;
    bf16 *myP = sP + warp * kTPerWarp * L::LDP;
    load_tile_tc<NF>(sQ, hq.q, ldqkv, q0, T_, Dh, vec);

    // pass 1: row maximum and sum of exponentials, online over the key tiles
    float m[kTPerWarp], l[kTPerWarp];
#pragma unroll
    for (int r = 0; r < kTPerWarp; r++) m[r] = -INFINITY, l[r] = 0.0f;
    for (int k0 = 0; k0 < T_; k0 += kTRows) {
        __syncthreads();
        load_tile_tc<NF>(sK, hq.k, ldqkv, k0, T_, Dh, vec);
        __syncthreads();
        strip_abt<NF>(myS, myQ, sK);
        __syncwarp();
        const bool ok0 = k0 + lane < T_, ok1 = k0 + lane + 32 < T_; // ok0 holds on lane 0
#pragma unroll
        for (int r = 0; r < kTPerWarp; r++) {
            const float s0 = ok0 ? myS[r * L::LDS + lane] * scale : -INFINITY;
            const float s1 = ok1 ? myS[r * L::LDS + lane + 32] * scale : -INFINITY;
            const float m_new = fmaxf(m[r], warp_max(fmaxf(s0, s1)));
            const float p = (ok0 ? expf(s0 - m_new) : 0.0f) + (ok1 ? expf(s1 - m_new) : 0.0f);
            l[r] = l[r] * expf(m[r] - m_new) + warp_sum(p);
            m[r] = m_new;
        }
    }
    row_stat row[kTPerWarp];
#pragma unroll
    for (int r = 0; r < kTPerWarp; r++) row[r] = row_stat{m[r], 1.0f / l[r]}; // l ≥ 1

    // pass 2: P = exp(s − m) / l rounded to bf16, O += P V
    frag_c o[NF];
#pragma unroll
    for (int nf = 0; nf < NF; nf++) wmma::fill_fragment(o[nf], 0.0f);
    for (int k0 = 0; k0 < T_; k0 += kTRows) {
        __syncthreads();
        load_tile_tc<NF>(sK, hq.k, ldqkv, k0, T_, Dh, vec);
        load_tile_tc<NF>(sV, hq.v, ldqkv, k0, T_, Dh, vec);
        __syncthreads();
        strip_abt<NF>(myS, myQ, sK);
        __syncwarp();
#pragma unroll
        for (int r = 0; r < kTPerWarp; r++)
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int c = lane + 32 * half;
                const float p = k0 + c < T_ ? attn_prob(myS[r * L::LDS + c] * scale, row[r]) : 0.0f;
                myP[r * L::LDP + c] = __float2bfloat16_rn(p);
            }
        __syncwarp();
        strip_ab_acc<NF>(o, myP, sV);
    }

    const int row0 = q0 + warp * kTPerWarp;
    store_strip<NF>(out + (size_t) b * T_ * ldout + (size_t) h * Dh, ldout, o, myS, row0, T_, Dh,
                    1.0f, lane);
    if (lane == 0)
#pragma unroll
        for (int r = 0; r < kTPerWarp; r++)
            if (row0 + r < T_) store_stat(stats, (size_t) bh * T_ + row0 + r, row[r]);
#else
    __trap(); // the host launches the tensor-core kernels on sm_80 and later only
#endif
}

// Backward, dq and D.  grid (B·H, ⌈T/64⌉); smem: Q, dO, K, V head tiles, S, dP fp32, dS bf16.
template <int NF>
__global__ void __launch_bounds__(kThreads)
    attn_bwd_dq_tc(bf16 *dqkv, int lddqkv, float *dsum, const bf16 *dout, int lddout,
                   const bf16 *qkv, int ldqkv, const float *stats, int T_, int H, int Dh,
                   float scale, int vec_qkv, int vec_dout)
{
#if POA_ATTN_TC_ARCH
    typedef tc_layout<NF> L;
    extern __shared__ unsigned char smem_raw[];
    unsigned char *base = align128(smem_raw);
    bf16 *sQ = reinterpret_cast<bf16 *>(base);
    bf16 *sdO = reinterpret_cast<bf16 *>(base + L::HT);
    bf16 *sK = reinterpret_cast<bf16 *>(base + 2 * L::HT);
    bf16 *sV = reinterpret_cast<bf16 *>(base + 3 * L::HT);
    float *sS = reinterpret_cast<float *>(base + 4 * L::HT);
    float *sdP = reinterpret_cast<float *>(base + 4 * L::HT + L::ST);
    bf16 *sdS = reinterpret_cast<bf16 *>(base + 4 * L::HT + 2 * L::ST);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int bh = blockIdx.x, b = bh / H, h = bh - b * H, q0 = blockIdx.y * kTRows;
    const head_qkv<bf16> hq = head_of(qkv, ldqkv, b, h, T_, H, Dh);
    const bf16 *dO = dout + (size_t) b * T_ * lddout + (size_t) h * Dh;
    const int row0 = q0 + warp * kTPerWarp;
    const bf16 *myQ = sQ + warp * kTPerWarp * L::LDH, *mydO = sdO + warp * kTPerWarp * L::LDH;
    float *myS = sS + warp * kTPerWarp * L::LDS, *mydP = sdP + warp * kTPerWarp * L::LDS;
    bf16 *mydS = sdS + warp * kTPerWarp * L::LDP;
    load_tile_tc<NF>(sQ, hq.q, ldqkv, q0, T_, Dh, vec_qkv);
    load_tile_tc<NF>(sdO, dO, lddout, q0, T_, Dh, vec_dout);

    bool row_ok[kTPerWarp];
    row_stat row[kTPerWarp];
    float dpart[kTPerWarp], D[kTPerWarp];
#pragma unroll
    for (int r = 0; r < kTPerWarp; r++) {
        row_ok[r] = row0 + r < T_;
        row[r] = row_ok[r] ? load_stat(stats, (size_t) bh * T_ + row0 + r) : row_stat{0.0f, 0.0f};
        dpart[r] = 0.0f;
    }

    // pass 1: D_i = Σ_j P_ij dP_ij
    for (int k0 = 0; k0 < T_; k0 += kTRows) {
        __syncthreads();
        load_tile_tc<NF>(sK, hq.k, ldqkv, k0, T_, Dh, vec_qkv);
        load_tile_tc<NF>(sV, hq.v, ldqkv, k0, T_, Dh, vec_qkv);
        __syncthreads();
        strip_abt<NF>(myS, myQ, sK);
        strip_abt<NF>(mydP, mydO, sV);
        __syncwarp();
#pragma unroll
        for (int r = 0; r < kTPerWarp; r++)
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int c = lane + 32 * half;
                const float p = row_ok[r] && k0 + c < T_
                                    ? attn_prob(myS[r * L::LDS + c] * scale, row[r])
                                    : 0.0f;
                dpart[r] = fmaf(p, mydP[r * L::LDS + c], dpart[r]);
            }
    }
#pragma unroll
    for (int r = 0; r < kTPerWarp; r++) D[r] = warp_sum(dpart[r]);

    // pass 2: dS = P ⊙ (dP − D) rounded to bf16, dQ += dS K
    frag_c acc[NF];
#pragma unroll
    for (int nf = 0; nf < NF; nf++) wmma::fill_fragment(acc[nf], 0.0f);
    for (int k0 = 0; k0 < T_; k0 += kTRows) {
        __syncthreads();
        load_tile_tc<NF>(sK, hq.k, ldqkv, k0, T_, Dh, vec_qkv);
        load_tile_tc<NF>(sV, hq.v, ldqkv, k0, T_, Dh, vec_qkv);
        __syncthreads();
        strip_abt<NF>(myS, myQ, sK);
        strip_abt<NF>(mydP, mydO, sV);
        __syncwarp();
#pragma unroll
        for (int r = 0; r < kTPerWarp; r++)
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int c = lane + 32 * half;
                const float p = row_ok[r] && k0 + c < T_
                                    ? attn_prob(myS[r * L::LDS + c] * scale, row[r])
                                    : 0.0f;
                mydS[r * L::LDP + c] = __float2bfloat16_rn(p * (mydP[r * L::LDS + c] - D[r]));
            }
        __syncwarp();
        strip_ab_acc<NF>(acc, mydS, sK);
    }

    store_strip<NF>(dqkv + (size_t) b * T_ * lddqkv + (size_t) h * Dh, lddqkv, acc, myS, row0, T_,
                    Dh, scale, lane);
    if (lane == 0)
#pragma unroll
        for (int r = 0; r < kTPerWarp; r++)
            if (row_ok[r]) dsum[(size_t) bh * T_ + row0 + r] = D[r];
#else
    __trap();
#endif
}

// Backward, dk and dv.  grid (B·H, ⌈T/64⌉ key tiles); smem: K, V, Q, dO head tiles, Sᵀ, dPᵀ
// fp32, Pᵀ, dSᵀ bf16, m, 1/l, D.  A warp owns 16 keys; the inner tiles are 64 queries.
template <int NF>
__global__ void __launch_bounds__(kThreads)
    attn_bwd_dkv_tc(bf16 *dqkv, int lddqkv, const float *dsum, const bf16 *dout, int lddout,
                    const bf16 *qkv, int ldqkv, const float *stats, int T_, int H, int Dh,
                    float scale, int vec_qkv, int vec_dout)
{
#if POA_ATTN_TC_ARCH
    typedef tc_layout<NF> L;
    extern __shared__ unsigned char smem_raw[];
    unsigned char *base = align128(smem_raw);
    bf16 *sK = reinterpret_cast<bf16 *>(base);
    bf16 *sV = reinterpret_cast<bf16 *>(base + L::HT);
    bf16 *sQ = reinterpret_cast<bf16 *>(base + 2 * L::HT);
    bf16 *sdO = reinterpret_cast<bf16 *>(base + 3 * L::HT);
    float *sS = reinterpret_cast<float *>(base + 4 * L::HT);
    float *sdP = reinterpret_cast<float *>(base + 4 * L::HT + L::ST);
    bf16 *sP = reinterpret_cast<bf16 *>(base + 4 * L::HT + 2 * L::ST);
    bf16 *sdS = reinterpret_cast<bf16 *>(base + 4 * L::HT + 2 * L::ST + L::PT);
    float *sM = reinterpret_cast<float *>(base + 4 * L::HT + 2 * L::ST + 2 * L::PT);
    float *sIl = sM + kTRows, *sD = sIl + kTRows;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int bh = blockIdx.x, b = bh / H, h = bh - b * H, k0 = blockIdx.y * kTRows;
    const head_qkv<bf16> hq = head_of(qkv, ldqkv, b, h, T_, H, Dh);
    const bf16 *dO = dout + (size_t) b * T_ * lddout + (size_t) h * Dh;
    const int key0 = k0 + warp * kTPerWarp;
    const bf16 *myK = sK + warp * kTPerWarp * L::LDH, *myV = sV + warp * kTPerWarp * L::LDH;
    float *myS = sS + warp * kTPerWarp * L::LDS, *mydP = sdP + warp * kTPerWarp * L::LDS;
    bf16 *myP = sP + warp * kTPerWarp * L::LDP, *mydS = sdS + warp * kTPerWarp * L::LDP;
    load_tile_tc<NF>(sK, hq.k, ldqkv, k0, T_, Dh, vec_qkv);
    load_tile_tc<NF>(sV, hq.v, ldqkv, k0, T_, Dh, vec_qkv);

    bool key_ok[kTPerWarp];
#pragma unroll
    for (int r = 0; r < kTPerWarp; r++) key_ok[r] = key0 + r < T_;
    frag_c dk[NF], dv[NF];
#pragma unroll
    for (int nf = 0; nf < NF; nf++)
        wmma::fill_fragment(dk[nf], 0.0f), wmma::fill_fragment(dv[nf], 0.0f);

    for (int q0 = 0; q0 < T_; q0 += kTRows) {
        __syncthreads(); // previous tile's readers are done (first: sK, sV visible after next)
        load_tile_tc<NF>(sQ, hq.q, ldqkv, q0, T_, Dh, vec_qkv);
        load_tile_tc<NF>(sdO, dO, lddout, q0, T_, Dh, vec_dout);
        if (threadIdx.x < kTRows) {
            const int t = q0 + threadIdx.x;
            const row_stat st =
                t < T_ ? load_stat(stats, (size_t) bh * T_ + t) : row_stat{0.0f, 0.0f};
            sM[threadIdx.x] = st.m, sIl[threadIdx.x] = st.il;
            sD[threadIdx.x] = t < T_ ? dsum[(size_t) bh * T_ + t] : 0.0f;
        }
        __syncthreads();
        strip_abt<NF>(myS, myK, sQ);   // Sᵀ: the warp's keys × the tile's queries
        strip_abt<NF>(mydP, myV, sdO); // dPᵀ
        __syncwarp();
#pragma unroll
        for (int r = 0; r < kTPerWarp; r++)
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const int c = lane + 32 * half;
                const float p = key_ok[r] && q0 + c < T_ ? attn_prob(myS[r * L::LDS + c] * scale,
                                                                     row_stat{sM[c], sIl[c]})
                                                         : 0.0f;
                myP[r * L::LDP + c] = __float2bfloat16_rn(p);
                mydS[r * L::LDP + c] = __float2bfloat16_rn(p * (mydP[r * L::LDS + c] - sD[c]));
            }
        __syncwarp();
        strip_ab_acc<NF>(dv, myP, sdO);
        strip_ab_acc<NF>(dk, mydS, sQ);
    }

    bf16 *dbase = dqkv + (size_t) b * T_ * lddqkv + (size_t) h * Dh;
    store_strip<NF>(dbase + (size_t) H * Dh, lddqkv, dk, myS, key0, T_, Dh, scale, lane);
    store_strip<NF>(dbase + (size_t) 2 * H * Dh, lddqkv, dv, myS, key0, T_, Dh, 1.0f, lane);
#else
    __trap();
#endif
}

// ================================================================ host side
typedef enum { ATTN_SIMPLE, ATTN_TC } attn_impl;

// The implementation to run: tc for bf16 activations on sm_80+, unless POA_CUDA_ATTN=simple.
static attn_impl attention_impl(const poa_backend *be)
{
    if (be->act_dtype != POA_DT_BF16 || poa_cuda_impl(be)->sm_major < 8) return ATTN_SIMPLE;
    const char *e = getenv("POA_CUDA_ATTN");
    return e && strcmp(e, "simple") == 0 ? ATTN_SIMPLE : ATTN_TC;
}

// Opts a kernel into `bytes` of dynamic shared memory when that exceeds the default 48 KiB:
// once per (kernel, device, size reached), fatal when the device cannot give it.
static void prepare_smem(const void *kernel, const char *name, size_t bytes, int T, int Dh)
{
    if (bytes <= (size_t) 48 * 1024) return;
    struct opted {
        const void *kernel;
        int device;
        size_t bytes;
    };
    static std::mutex mu;
    static opted done[128];
    static int ndone;
    int dev = 0;
    POA_CUDA_CHECK(cudaGetDevice(&dev));
    std::lock_guard<std::mutex> lock(mu);
    opted *slot = NULL;
    for (int i = 0; i < ndone; i++)
        if (done[i].kernel == kernel && done[i].device == dev) slot = &done[i];
    if (slot && slot->bytes >= bytes) return;
    int optin = 0;
    POA_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (bytes > (size_t) optin)
        poa_fatal_at(__FILE__, __LINE__, __func__, name,
                     "attention with T = %d, Dh = %d needs %zu bytes of shared memory per block; "
                     "device %d allows %d",
                     T, Dh, bytes, dev, optin);
    POA_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) bytes));
    if (!slot && ndone < (int) (sizeof done / sizeof done[0])) slot = &done[ndone++];
    if (slot) *slot = opted{kernel, dev, bytes};
}

// Fatal unless the shape and the buffers are usable; 0 when there is nothing to compute.
static int check_shape(const char *op, int B, int T, int H, int Dh, int ldqkv, int ldo,
                       const char *ldo_name, const void *saved, int needs_scratch,
                       const void *scratch)
{
    if (B < 0 || T < 0 || H < 0)
        poa_fatal_at(__FILE__, __LINE__, __func__, op, "negative shape B = %d, T = %d, H = %d", B,
                     T, H);
    if (Dh < 1 || Dh > kMaxDh)
        poa_fatal_at(__FILE__, __LINE__, __func__, op,
                     "head dim Dh = %d is not supported by the CUDA attention (1 ≤ Dh ≤ %d)", Dh,
                     kMaxDh);
    if (B == 0 || T == 0 || H == 0) return 0;
    if ((long long) ldqkv < 3LL * H * Dh || (long long) ldo < (long long) H * Dh)
        poa_fatal_at(__FILE__, __LINE__, __func__, op,
                     "leading dims too small: ldqkv = %d (needs ≥ 3·H·Dh = %lld), %s = %d (needs "
                     "≥ H·Dh = %lld)",
                     ldqkv, 3LL * H * Dh, ldo_name, ldo, (long long) H * Dh);
    if ((long long) B * H > INT_MAX || (T + kSRows - 1) / kSRows > 65535)
        poa_fatal_at(__FILE__, __LINE__, __func__, op,
                     "shape too large for one launch: B·H = %lld, T = %d", (long long) B * H, T);
    if (!saved || ((uintptr_t) saved & 3u))
        poa_fatal_at(__FILE__, __LINE__, __func__, op,
                     "`saved` (%p) must be a 4-byte aligned buffer of attention_saved_bytes",
                     saved);
    if (needs_scratch && (!scratch || ((uintptr_t) scratch & 3u)))
        poa_fatal_at(__FILE__, __LINE__, __func__, op,
                     "`scratch` (%p) must be a 4-byte aligned buffer of attention_scratch_bytes",
                     scratch);
    return 1;
}

// 16-byte loads of a bf16 head tile: base aligned, every row start and head offset a multiple
// of 8 elements.
static int vec_ok(const void *p, int ld, int Dh)
{
    return ((uintptr_t) p & 15u) == 0 && ld % 8 == 0 && Dh % 8 == 0;
}

// Dims per lane of the simple kernels, tensor-core fragments across the padded head dim.
template <typename F> static void with_dpl(int Dh, F &&body)
{
    switch ((Dh + 31) / 32) {
    case 1:
        body(std::integral_constant<int, 1>());
        break;
    case 2:
        body(std::integral_constant<int, 2>());
        break;
    case 3:
        body(std::integral_constant<int, 3>());
        break;
    default:
        body(std::integral_constant<int, 4>());
        break;
    }
}
template <typename F> static void with_nf(int Dh, F &&body)
{
    if (Dh <= 16)
        body(std::integral_constant<int, 1>());
    else if (Dh <= 32)
        body(std::integral_constant<int, 2>());
    else if (Dh <= 64)
        body(std::integral_constant<int, 4>());
    else
        body(std::integral_constant<int, 8>());
}

} // namespace

// The sizes are cuda_sizes.h's, which the planning backend of a build without CUDA uses too.
extern "C" size_t poa_cuda_attention_saved_bytes(const poa_backend *be, int B, int T, int H, int Dh)
{
    return poa_cuda_attention_saved_size(be, B, T, H, Dh); // (m, 1/l) per row, [B, H, T] × 2 fp32
}

extern "C" size_t poa_cuda_attention_scratch_bytes(const poa_backend *be, int B, int T, int H,
                                                   int Dh)
{
    return poa_cuda_attention_scratch_size(be, B, T, H, Dh); // D of backward, [B, H, T] fp32
}

extern "C" void poa_cuda_attention_fwd(poa_backend *be, poa_act *out, int ldout, void *saved,
                                       const poa_act *qkv, int ldqkv, int B, int T, int H, int Dh,
                                       float scale, void *scratch)
{
    (void) scratch;
    if (!check_shape("attention_fwd", B, T, H, Dh, ldqkv, ldout, "ldout", saved, 0, NULL)) return;
    cudaStream_t st = poa_cuda_stream(be);
    float *stats = static_cast<float *>(saved);
    if (attention_impl(be) == ATTN_TC) {
        const bf16 *x = act_ptr<bf16>(qkv);
        const int vec = vec_ok(x, ldqkv, Dh);
        with_nf(Dh, [&](auto nf) {
            constexpr int NF = decltype(nf)::value;
            const size_t smem = tc_layout<NF>::fwd_bytes;
            prepare_smem((const void *) attn_fwd_tc<NF>, "attn_fwd_tc", smem, T, Dh);
            const dim3 grid((unsigned) (B * H), (unsigned) ((T + kTRows - 1) / kTRows));
            attn_fwd_tc<NF><<<grid, kThreads, smem, st>>>(act_ptr<bf16>(out), ldout, stats, x,
                                                          ldqkv, T, H, Dh, scale, vec);
            POA_CUDA_LAUNCHED("attn_fwd_tc");
        });
        return;
    }
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using A = decltype(tag);
        with_dpl(Dh, [&](auto dpl) {
            constexpr int DPL = decltype(dpl)::value;
            const size_t smem = simple_smem(Dh, 3, 1, 0);
            prepare_smem((const void *) attn_fwd_simple<A, DPL>, "attn_fwd_simple", smem, T, Dh);
            const dim3 grid((unsigned) (B * H), (unsigned) ((T + kSRows - 1) / kSRows));
            attn_fwd_simple<A, DPL><<<grid, kThreads, smem, st>>>(
                act_ptr<A>(out), ldout, stats, act_ptr<A>(qkv), ldqkv, T, H, Dh, scale);
            POA_CUDA_LAUNCHED("attn_fwd_simple");
        });
    });
}

extern "C" void poa_cuda_attention_bwd(poa_backend *be, poa_act *dqkv, int lddqkv,
                                       const poa_act *dout, int lddout, const poa_act *qkv,
                                       int ldqkv, const void *saved, int B, int T, int H, int Dh,
                                       float scale, void *scratch)
{
    if (!check_shape("attention_bwd", B, T, H, Dh, ldqkv, lddout, "lddout", saved, 1, scratch))
        return;
    if ((long long) lddqkv < 3LL * H * Dh)
        poa_fatal_at(__FILE__, __LINE__, __func__, "attention_bwd",
                     "lddqkv = %d is below 3·H·Dh = %lld", lddqkv, 3LL * H * Dh);
    cudaStream_t st = poa_cuda_stream(be);
    const float *stats = static_cast<const float *>(saved);
    float *dsum = static_cast<float *>(scratch);
    if (attention_impl(be) == ATTN_TC) {
        const bf16 *x = act_ptr<bf16>(qkv), *dO = act_ptr<bf16>(dout);
        bf16 *dx = act_ptr<bf16>(dqkv);
        const int vq = vec_ok(x, ldqkv, Dh), vo = vec_ok(dO, lddout, Dh);
        with_nf(Dh, [&](auto nf) {
            constexpr int NF = decltype(nf)::value;
            const dim3 grid((unsigned) (B * H), (unsigned) ((T + kTRows - 1) / kTRows));
            const size_t smem_dq = tc_layout<NF>::dq_bytes, smem_dkv = tc_layout<NF>::dkv_bytes;
            prepare_smem((const void *) attn_bwd_dq_tc<NF>, "attn_bwd_dq_tc", smem_dq, T, Dh);
            prepare_smem((const void *) attn_bwd_dkv_tc<NF>, "attn_bwd_dkv_tc", smem_dkv, T, Dh);
            attn_bwd_dq_tc<NF><<<grid, kThreads, smem_dq, st>>>(
                dx, lddqkv, dsum, dO, lddout, x, ldqkv, stats, T, H, Dh, scale, vq, vo);
            POA_CUDA_LAUNCHED("attn_bwd_dq_tc");
            attn_bwd_dkv_tc<NF><<<grid, kThreads, smem_dkv, st>>>(
                dx, lddqkv, dsum, dO, lddout, x, ldqkv, stats, T, H, Dh, scale, vq, vo);
            POA_CUDA_LAUNCHED("attn_bwd_dkv_tc");
        });
        return;
    }
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using A = decltype(tag);
        with_dpl(Dh, [&](auto dpl) {
            constexpr int DPL = decltype(dpl)::value;
            const dim3 grid((unsigned) (B * H), (unsigned) ((T + kSRows - 1) / kSRows));
            const size_t smem_dq = simple_smem(Dh, 4, 1, 0), smem_dkv = simple_smem(Dh, 4, 2, 3);
            prepare_smem((const void *) attn_bwd_dq_simple<A, DPL>, "attn_bwd_dq_simple", smem_dq,
                         T, Dh);
            prepare_smem((const void *) attn_bwd_dkv_simple<A, DPL>, "attn_bwd_dkv_simple",
                         smem_dkv, T, Dh);
            attn_bwd_dq_simple<A, DPL><<<grid, kThreads, smem_dq, st>>>(
                act_ptr<A>(dqkv), lddqkv, dsum, act_ptr<A>(dout), lddout, act_ptr<A>(qkv), ldqkv,
                stats, T, H, Dh, scale);
            POA_CUDA_LAUNCHED("attn_bwd_dq_simple");
            attn_bwd_dkv_simple<A, DPL><<<grid, kThreads, smem_dkv, st>>>(
                act_ptr<A>(dqkv), lddqkv, dsum, act_ptr<A>(dout), lddout, act_ptr<A>(qkv), ldqkv,
                stats, T, H, Dh, scale);
            POA_CUDA_LAUNCHED("attn_bwd_dkv_simple");
        });
    });
}
