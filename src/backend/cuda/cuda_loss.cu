// cuda_loss.cu — the CUDA backend's reductions and losses (backend.h, poa_train_ops):
// sum_squares, softmax_rows, xent, the Sinkhorn-Knopp pieces col_max / sk_exp / sk_normalize,
// and KoLeo.  fp32 tensors, sums in double, arithmetic as the CPU backend's
// (src/backend/cpu/cpu_train.c, cpu_train_sk.c) so both agree to rounding.
//
// Why it is written this way: a resumed run must equal an uninterrupted one bit for bit, so
// every reduction has a fixed order that depends on the shapes alone — never floating-point
// atomics, never the launch order of blocks:
//  - a row (softmax, cross-entropy, Sinkhorn-Knopp sample rows) is reduced by one block of
//    row_threads(K) threads: per-thread sums in chunk order (cuda_chunks.cuh), then
//    block_sum (cuda_common.cuh);
//  - a column sum or max (Sinkhorn-Knopp prototypes) is split into at most 64 row chunks
//    whose partials go to the backend's fixed scratch, then one thread per column adds them
//    in chunk order;
//  - a scalar (sum of squares, a loss) is formed from per-block or per-row partials in the
//    fixed scratch, summed by one block in index order (finish_sum_kernel).
// Nothing here allocates or synchronises with the host.
#include "backend/cuda/cuda_chunks.cuh"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_sizes.h"

#include <math.h>
#include <stdint.h>

namespace
{

constexpr int F4 = 4; // chunk width of fp32 rows (one 16-byte vector)

// ---------------------------------------------------------------------------------- helpers

// Threads of the block that reduces one row of K values: a function of K alone, so a row's
// summation order depends on its shape only.
unsigned row_threads(int K)
{
    return K >= 16384 ? 1024u : K >= 2048 ? 256u : 128u;
}

double *fixed_scratch(const poa_backend *be)
{
    return static_cast<double *>(poa_cuda_impl(be)->scratch);
}

// *out = (accumulate ? *out : 0) + scale · (Σ parts[0 .. n)) / div, the parts summed in a fixed
// order (thread t: parts t, t + P, ...; then block_sum).  One block.  scale = div = 1 gives the
// sum itself, bit for bit.
constexpr int FINISH_THREADS = 256;
__global__ void finish_sum_kernel(double *out, const double *parts, int n, double scale, double div,
                                  int accumulate)
{
    __shared__ double sh[32];
    double s = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += parts[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) {
        const double v = scale * s / div;
        *out = accumulate ? *out + v : v;
    }
}

void launch_finish_sum(const poa_backend *be, double *out, const double *parts, int n, double scale,
                       double div, int accumulate)
{
    finish_sum_kernel<<<1, FINISH_THREADS, 0, poa_cuda_stream(be)>>>(out, parts, n, scale, div,
                                                                     accumulate);
    POA_CUDA_LAUNCHED("finish_sum_kernel");
}

// Row chunks of a column reduction over n rows and K columns with partials of elem_bytes:
// the count (≤ 64, fits the scratch) and the rows per chunk.
void column_chunks(int n, int K, size_t elem_bytes, int *chunks, int *rows_per_chunk)
{
    *chunks = poa_cuda_reduce_chunks(n, K, elem_bytes, 32);
    POA_CHECK((size_t) *chunks * (size_t) K * elem_bytes <= POA_CUDA_SCRATCH_BYTES,
              "%d columns: partial sums exceed the reduction scratch", K);
    *rows_per_chunk = (int) (((long long) n + *chunks - 1) / *chunks);
    if (*rows_per_chunk < 1) *rows_per_chunk = 1;
}

// Rows [r0, r1) of chunk `chunk`.
__device__ __forceinline__ void chunk_rows(int chunk, int rows_per_chunk, int n, int *r0, int *r1)
{
    const long long a = (long long) chunk * rows_per_chunk, b = a + rows_per_chunk;
    *r0 = (int) (a < n ? a : n);
    *r1 = (int) (b < n ? b : n);
}

constexpr int COL_THREADS = 256;

dim3 column_grid(int K, int chunks)
{
    return dim3((unsigned) ((K + COL_THREADS - 1) / COL_THREADS), (unsigned) chunks);
}

// out[k] = Σ_c part[c·K + k] over the chunks in order (=).
__global__ void col_sum_finish_kernel(double *out, const double *part, int chunks, int K)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= K) return;
    double s = 0;
    for (int c = 0; c < chunks; c++) s += part[(size_t) c * K + k];
    out[k] = s;
}

void launch_col_sum_finish(const poa_backend *be, double *out, const double *part, int chunks,
                           int K)
{
    col_sum_finish_kernel<<<(unsigned) ((K + COL_THREADS - 1) / COL_THREADS), COL_THREADS, 0,
                            poa_cuda_stream(be)>>>(out, part, chunks, K);
    POA_CUDA_LAUNCHED("col_sum_finish_kernel");
}

// The largest of v and m, as the CPU's `v > m ? v : m`: a NaN v is skipped.
__device__ __forceinline__ float max_skip_nan(float m, float v)
{
    return v > m ? v : m;
}

// max_k x_k · inv_tau over a row (NaNs skipped; −inf for an all-NaN row).  Every thread of
// the block gets it.
template <bool VEC>
__device__ __forceinline__ float row_max_scaled(const float *xr, int K, float inv_tau, float *shm)
{
    float mx = -INFINITY;
    for (int k0 = threadIdx.x * F4; k0 < K; k0 += blockDim.x * F4) {
        float f[F4];
        chunk_load<F4, VEC>(f, xr, k0, K);
#pragma unroll
        for (int j = 0; j < F4; j++)
            if (VEC || k0 + j < K) mx = max_skip_nan(mx, __fmul_rn(f[j], inv_tau));
    }
    return block_max(mx, shm);
}

// ------------------------------------------------------------------------------ sum_squares

constexpr int SUMSQ_THREADS = 256, SUMSQ_UNROLL = 4, SUMSQ_MAX_BLOCKS = 1024;

// parts[block] = Σ x² over the block's tiles: tile t covers [t·1024, (t+1)·1024), thread j
// its elements j, j + 256, j + 512, j + 768 (coalesced loads, independent of alignment).
__global__ void sum_squares_partials_kernel(double *parts, const float *x, size_t n)
{
    __shared__ double sh[32];
    const size_t tile = (size_t) SUMSQ_THREADS * SUMSQ_UNROLL;
    double s = 0;
    for (size_t base = (size_t) blockIdx.x * tile; base < n; base += (size_t) gridDim.x * tile) {
        float v[SUMSQ_UNROLL];
#pragma unroll
        for (int q = 0; q < SUMSQ_UNROLL; q++) {
            const size_t i = base + (size_t) q * SUMSQ_THREADS + threadIdx.x;
            v[q] = i < n ? x[i] : 0.0f;
        }
#pragma unroll
        for (int q = 0; q < SUMSQ_UNROLL; q++) s += (double) v[q] * v[q];
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) parts[blockIdx.x] = s;
}

// ----------------------------------------------------------------------------- softmax_rows

// y = softmax(x · inv_tau) of row blockIdx.x: y_k = exp(a_k − m) · (1 / Σ_j exp(a_j − m)).
// y may be x (every element is read and written by the same thread, after the row maximum).
template <bool VEC>
__global__ void softmax_rows_kernel(float *y, int ldy, const float *x, int ldx, int K,
                                    float inv_tau)
{
    __shared__ float shm[32];
    __shared__ double shs[32];
    const float *xr = x + (size_t) blockIdx.x * ldx;
    float *yr = y + (size_t) blockIdx.x * ldy;
    const float mx = row_max_scaled<VEC>(xr, K, inv_tau, shm);
    double s = 0;
    for (int k0 = threadIdx.x * F4; k0 < K; k0 += blockDim.x * F4) {
        float f[F4];
        chunk_load<F4, VEC>(f, xr, k0, K);
#pragma unroll
        for (int j = 0; j < F4; j++) {
            f[j] = expf(__fmul_rn(f[j], inv_tau) - mx);
            if (VEC || k0 + j < K) s += f[j];
        }
        chunk_store<F4, VEC>(yr, f, k0, K);
    }
    s = block_sum(s, shs);
    const float r = (float) (1.0 / s);
    for (int k0 = threadIdx.x * F4; k0 < K; k0 += blockDim.x * F4) {
        float f[F4];
        chunk_load<F4, VEC>(f, yr, k0, K);
#pragma unroll
        for (int j = 0; j < F4; j++) f[j] *= r;
        chunk_store<F4, VEC>(yr, f, k0, K);
    }
}

// ------------------------------------------------------------------------------------- xent

// One row i = blockIdx.x of the soft-target cross-entropy.  With a = s·inv_tau, m = max a:
//   ce = log(Σ_k exp(a_k − m))·Σt − Σ_k t_k (a_k − m)   (two non-negative terms for t ≥ 0),
//   rowval[i] = w_i · ce                                  (if rowval != NULL),
//   ds_k += g · (exp(a_k − lse) · Σt − t_k),  g = grad_scale · w_i · inv_tau (if ds != NULL).
template <bool VEC>
__global__ void xent_rows_kernel(double *rowval, float *ds, int ldds, const float *s, int lds,
                                 const float *t, int ldt, int t_period, int t_shift, const float *w,
                                 int K, float inv_tau, float grad_scale)
{
    __shared__ float shm[32];
    __shared__ double shs[32];
    const int i = blockIdx.x;
    const float *si = s + (size_t) i * lds;
    const float *ti = t + (size_t) (((long long) i + t_shift) % t_period) * ldt;
    const double wi = w ? (double) w[i] : 1.0;
    const float mx = row_max_scaled<VEC>(si, K, inv_tau, shm);

    double se = 0, tsum = 0, td = 0;
    for (int k0 = threadIdx.x * F4; k0 < K; k0 += blockDim.x * F4) {
        float fs[F4], ft[F4];
        chunk_load<F4, VEC>(fs, si, k0, K);
        chunk_load<F4, VEC>(ft, ti, k0, K);
#pragma unroll
        for (int j = 0; j < F4; j++)
            if (VEC || k0 + j < K) {
                const float dlt = __fmul_rn(fs[j], inv_tau) - mx; // a_k − m ≤ 0
                se += expf(dlt);
                tsum += ft[j];
                td += (double) ft[j] * dlt;
            }
    }
    se = block_sum(se, shs);
    tsum = block_sum(tsum, shs);
    td = block_sum(td, shs);
    const double lse_m = log(se); // lse − m
    if (rowval && threadIdx.x == 0) rowval[i] = wi * (lse_m * tsum - td);
    if (!ds) return;

    float *dsi = ds + (size_t) i * ldds;
    const float lsef = (float) ((double) mx + lse_m), tsumf = (float) tsum;
    const float g = (float) ((double) grad_scale * wi * (double) inv_tau);
    for (int k0 = threadIdx.x * F4; k0 < K; k0 += blockDim.x * F4) {
        float fs[F4], ft[F4], fd[F4];
        chunk_load<F4, VEC>(fs, si, k0, K);
        chunk_load<F4, VEC>(ft, ti, k0, K);
        chunk_load<F4, VEC>(fd, dsi, k0, K);
#pragma unroll
        for (int j = 0; j < F4; j++)
            fd[j] += g * (expf(__fmul_rn(fs[j], inv_tau) - lsef) * tsumf - ft[j]);
        chunk_store<F4, VEC>(dsi, fd, k0, K);
    }
}

// --------------------------------------------------------------------------- Sinkhorn-Knopp

// part[chunk·K + k] = max over the chunk's rows of x[i, k] (NaNs skipped; −inf if none), rows
// in order; col_max_finish_kernel combines the chunks in order the same way, which gives the
// sequential scan's result exactly (max is exact).
__global__ void col_max_partials_kernel(float *part, const float *x, int ldx, int n, int K,
                                        int rows_per_chunk)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= K) return;
    int r0, r1;
    chunk_rows(blockIdx.y, rows_per_chunk, n, &r0, &r1);
    float m = -INFINITY;
    for (int i = r0; i < r1; i++) m = max_skip_nan(m, x[(size_t) i * ldx + k]);
    part[(size_t) blockIdx.y * K + k] = m;
}

__global__ void col_max_finish_kernel(double *mx, const float *part, int chunks, int K)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= K) return;
    float m = -INFINITY;
    for (int c = 0; c < chunks; c++) m = max_skip_nan(m, part[(size_t) c * K + k]);
    mx[k] = m;
}

// q[i, k] = exp((x[i, k] − (float) mx[k]) · inv_tau) over the chunk's rows; part[chunk·K + k]
// = their sum (double, rows in order).  q may be x.
__global__ void sk_exp_partials_kernel(double *part, float *q, int ldq, const float *x, int ldx,
                                       const double *mx, int n, int K, float inv_tau,
                                       int rows_per_chunk)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= K) return;
    int r0, r1;
    chunk_rows(blockIdx.y, rows_per_chunk, n, &r0, &r1);
    const float m = (float) mx[k];
    double acc = 0;
    for (int i = r0; i < r1; i++) {
        const float e = expf((x[(size_t) i * ldx + k] - m) * inv_tau);
        q[(size_t) i * ldq + k] = e;
        acc += e;
    }
    part[(size_t) blockIdx.y * K + k] = acc;
}

// part[chunk·K + k] = Σ over the chunk's rows of q[i, k] (double, rows in order).
__global__ void col_sum_partials_kernel(double *part, const float *q, int ldq, int n, int K,
                                        int rows_per_chunk)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= K) return;
    int r0, r1;
    chunk_rows(blockIdx.y, rows_per_chunk, n, &r0, &r1);
    double acc = 0;
    for (int i = r0; i < r1; i++) acc += q[(size_t) i * ldq + k];
    part[(size_t) blockIdx.y * K + k] = acc;
}

__global__ void reciprocal_kernel(double *rinv, const double *psum, int K)
{
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < K; k += gridDim.x * blockDim.x)
        rinv[k] = 1.0 / psum[k];
}

// Sample row blockIdx.x: q_k = (float) (q_k · rinv_k) (double product), then the row is
// scaled by (float) (1 / Σ_k q_k).
template <bool VEC>
__global__ void sk_normalize_rows_kernel(float *q, int ldq, const double *rinv, int K)
{
    __shared__ double shs[32];
    float *qr = q + (size_t) blockIdx.x * ldq;
    double rs = 0;
    for (int k0 = threadIdx.x * F4; k0 < K; k0 += blockDim.x * F4) {
        float f[F4];
        chunk_load<F4, VEC>(f, qr, k0, K);
#pragma unroll
        for (int j = 0; j < F4; j++)
            if (VEC || k0 + j < K) {
                f[j] = (float) ((double) f[j] * rinv[k0 + j]);
                rs += f[j];
            }
        chunk_store<F4, VEC>(qr, f, k0, K);
    }
    rs = block_sum(rs, shs);
    const float r = (float) (1.0 / rs);
    for (int k0 = threadIdx.x * F4; k0 < K; k0 += blockDim.x * F4) {
        float f[F4];
        chunk_load<F4, VEC>(f, qr, k0, K);
#pragma unroll
        for (int j = 0; j < F4; j++) f[j] *= r;
        chunk_store<F4, VEC>(qr, f, k0, K);
    }
}

// ------------------------------------------------------------------------------------ KoLeo
//
// KoLeo of n rows z (as the CPU backend, cpu_train_sk.c): x_i = z_i / max(||z_i||, eps);
// nn(i) = argmax_{j≠i} <x_i, x_j> (ties → smallest j; NaN dots never win; none valid → the
// first other row); d_i = ||x_i − x_nn(i) + eps||; loss = −(1/n) Σ_i log(d_i + eps).
// Gradient: dL/dx_i gets +c_i·(x_i − x_nn(i) + eps) and dL/dx_nn(i) gets −c_i·(...), with
// c_i = −grad_scale / (n (d_i + eps) d_i) (0 where d_i = 0); then through the normalisation.

#define KOLEO_EPS 1e-8f // F.normalize eps, PairwiseDistance eps and the log eps (as the CPU)

// Sections of the caller's KoLeo scratch: cuda_sizes.h, whose layout the planning backend of a
// build without CUDA sizes too.
typedef poa_cuda_koleo_layout koleo_layout;

koleo_layout koleo_layout_of(int n, int c)
{
    return poa_cuda_koleo_layout_of(n, c);
}

// Row i (one warp): norm[i] = (float) ||z_i|| (double sum), x_i = z_i / max(norm, eps).
__global__ void koleo_normalize_kernel(float *x, float *norm, const float *z, int ldz, int n, int c)
{
    const int i = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (i >= n) return;
    const float *zi = z + (size_t) i * ldz;
    double s = 0;
    for (int k = lane; k < c; k += 32) s += (double) zi[k] * zi[k];
    s = warp_sum(s);
    const float nrm = (float) sqrt(s), den = nrm > KOLEO_EPS ? nrm : KOLEO_EPS;
    if (lane == 0) norm[i] = nrm;
    for (int k = lane; k < c; k += 32) x[(size_t) i * c + k] = __fdiv_rn(zi[k], den);
}

// Nearest neighbours of the R rows i0 … i0+R−1 (blockIdx.x · R): the rows in shared memory,
// warp w scores the candidates j = w, w + W, ... (dot in double: lanes over k, then warp_sum)
// keeping the first best (strictly greater wins); the warps' bests are combined by
// (larger dot, then smaller j), which is the sequential scan's answer for the same dots.
constexpr int NN_THREADS = 256, NN_WARPS = NN_THREADS / 32;
// Rows per block by feature count: the R rows' features (dynamic) plus the warps' bests
// (static, < 1 KiB) must fit the 48 KiB of shared memory a launch gets without opting in.
constexpr int KOLEO_MAX_FEATURES_R4 = 3000; // 4 rows: 48,000 bytes
constexpr int KOLEO_MAX_FEATURES = 12000;   // 1 row:  48,000 bytes
template <int R> __global__ void koleo_nearest_kernel(int32_t *nn, const float *x, int n, int c)
{
    extern __shared__ float xi_sh[]; // [R][c]
    __shared__ double best_d_sh[NN_WARPS][R];
    __shared__ int best_j_sh[NN_WARPS][R];
    const int i0 = blockIdx.x * R, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int e = threadIdx.x; e < R * c; e += blockDim.x) {
        const int r = e / c, k = e - r * c;
        xi_sh[e] = i0 + r < n ? x[(size_t) (i0 + r) * c + k] : 0.0f;
    }
    __syncthreads();
    double best_d[R];
    int best_j[R];
#pragma unroll
    for (int r = 0; r < R; r++) best_d[r] = -INFINITY, best_j[r] = -1;
    for (int j = warp; j < n; j += NN_WARPS) {
        const float *xj = x + (size_t) j * c;
        double acc[R];
#pragma unroll
        for (int r = 0; r < R; r++) acc[r] = 0;
        for (int k = lane; k < c; k += 32) {
            const double v = xj[k];
#pragma unroll
            for (int r = 0; r < R; r++) acc[r] += (double) xi_sh[r * c + k] * v;
        }
#pragma unroll
        for (int r = 0; r < R; r++) {
            const double d = warp_sum(acc[r]); // the same bits in every lane
            if (j != i0 + r && d > best_d[r]) best_d[r] = d, best_j[r] = j;
        }
    }
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < R; r++) best_d_sh[warp][r] = best_d[r], best_j_sh[warp][r] = best_j[r];
    }
    __syncthreads();
    if (threadIdx.x < R && i0 + (int) threadIdx.x < n) {
        const int r = threadIdx.x, i = i0 + r;
        double bd = -INFINITY;
        int bj = -1;
        for (int w = 0; w < NN_WARPS; w++) {
            const int j = best_j_sh[w][r];
            const double d = best_d_sh[w][r];
            if (j < 0) continue;
            if (bj < 0 || d > bd || (d == bd && j < bj)) bd = d, bj = j;
        }
        nn[i] = bj >= 0 ? bj : (i == 0 ? 1 : 0);
    }
}

// Row i (one warp): d_i, rowloss[i] = −log(d_i + eps), coef[i] = c_i.
__global__ void koleo_dist_kernel(double *rowloss, float *coef, const float *x, const int32_t *nn,
                                  int n, int c, float grad_scale)
{
    const int i = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (i >= n) return;
    const float *xi = x + (size_t) i * c, *xj = x + (size_t) nn[i] * c;
    double s = 0;
    for (int k = lane; k < c; k += 32) {
        const float diff = (xi[k] - xj[k]) + KOLEO_EPS;
        s += (double) diff * diff;
    }
    s = warp_sum(s);
    if (lane == 0) {
        const float dist = (float) sqrt(s);
        rowloss[i] = -log((double) dist + (double) KOLEO_EPS);
        // d(−log(d + eps))/d diff = −diff / ((d + eps)·d); zero where d = 0
        coef[i] =
            dist > 0
                ? (float) (-(double) grad_scale / n / (((double) dist + (double) KOLEO_EPS) * dist))
                : 0.0f;
    }
}

// For every row r the rows i with nn(i) = r, in increasing order (one block; n is small).
__global__ void koleo_inverse_kernel(int32_t *inv_start, int32_t *inv_idx, const int32_t *nn, int n)
{
    for (int r = threadIdx.x; r < n; r += blockDim.x) {
        int cnt = 0;
        for (int i = 0; i < n; i++) cnt += nn[i] == r;
        inv_start[r + 1] = cnt;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        inv_start[0] = 0;
        for (int r = 0; r < n; r++) inv_start[r + 1] += inv_start[r];
    }
    __syncthreads();
    for (int r = threadIdx.x; r < n; r += blockDim.x) {
        int at = inv_start[r];
        for (int i = 0; i < n; i++)
            if (nn[i] == r) inv_idx[at++] = i;
    }
}

// Row r (one block): dx_r = the contributions +c_r·(x_r − x_nn(r) + eps) and
// −c_i·(x_i − x_r + eps) for nn(i) = r, added in increasing i from 0 — the CPU's order and
// rounding exactly (no contraction) — then dz_r += dx_r / den − z_r (dx_r·z_r) / (den² ||z_r||)
// when ||z_r|| ≥ eps (den = max(||z_r||, eps)), dx_r / den below.
__global__ void koleo_grad_kernel(float *dz, int lddz, float *dx, const float *z, int ldz,
                                  const float *x, const float *norm, const float *coef,
                                  const int32_t *nn, const int32_t *inv_start,
                                  const int32_t *inv_idx, int c)
{
    __shared__ double sh[32];
    const int r = blockIdx.x;
    const float *xr = x + (size_t) r * c, *xnr = x + (size_t) nn[r] * c;
    const float *zr = z + (size_t) r * ldz;
    float *dxr = dx + (size_t) r * c;
    const int p0 = inv_start[r], p1 = inv_start[r + 1];
    const float cr = coef[r];
    double proj = 0;
    for (int k = threadIdx.x; k < c; k += blockDim.x) {
        const float own = __fmul_rn(cr, (xr[k] - xnr[k]) + KOLEO_EPS);
        float acc = 0.0f;
        bool own_added = false;
        for (int p = p0; p < p1; p++) {
            const int i = inv_idx[p];
            if (!own_added && i > r) acc = __fadd_rn(acc, own), own_added = true;
            acc = __fsub_rn(acc, __fmul_rn(coef[i], (x[(size_t) i * c + k] - xr[k]) + KOLEO_EPS));
        }
        if (!own_added) acc = __fadd_rn(acc, own);
        dxr[k] = acc;
        proj += (double) acc * zr[k];
    }
    proj = block_sum(proj, sh);
    const float nr = norm[r];
    const double den = nr > KOLEO_EPS ? nr : KOLEO_EPS;
    proj = nr >= KOLEO_EPS ? proj / (den * den * nr) : 0.0;
    for (int k = threadIdx.x; k < c; k += blockDim.x)
        dz[(size_t) r * lddz + k] +=
            (float) __dsub_rn(__ddiv_rn((double) dxr[k], den), __dmul_rn((double) zr[k], proj));
}

} // namespace

// ================================================================================== entries

void poa_cuda_sum_squares(poa_backend *be, double *out, const float *x, size_t n)
{
    const size_t tile = (size_t) SUMSQ_THREADS * SUMSQ_UNROLL;
    size_t blocks = (n + tile - 1) / tile;
    if (blocks < 1) blocks = 1;
    if (blocks > SUMSQ_MAX_BLOCKS) blocks = SUMSQ_MAX_BLOCKS;
    double *parts = fixed_scratch(be);
    sum_squares_partials_kernel<<<(unsigned) blocks, SUMSQ_THREADS, 0, poa_cuda_stream(be)>>>(parts,
                                                                                              x, n);
    POA_CUDA_LAUNCHED("sum_squares_partials_kernel");
    launch_finish_sum(be, out, parts, (int) blocks, 1.0, 1.0, 0);
}

void poa_cuda_softmax_rows(poa_backend *be, float *y, int ldy, const float *x, int ldx, int n,
                           int K, float inv_tau)
{
    if (n <= 0 || K <= 0) return;
    const bool vec = K % F4 == 0 && chunk_rows_aligned(y, ldy, sizeof(float)) &&
                     chunk_rows_aligned(x, ldx, sizeof(float));
    const unsigned threads = row_threads(K);
    if (vec) {
        softmax_rows_kernel<true>
            <<<(unsigned) n, threads, 0, poa_cuda_stream(be)>>>(y, ldy, x, ldx, K, inv_tau);
    } else {
        softmax_rows_kernel<false>
            <<<(unsigned) n, threads, 0, poa_cuda_stream(be)>>>(y, ldy, x, ldx, K, inv_tau);
    }
    POA_CUDA_LAUNCHED("softmax_rows_kernel");
}

void poa_cuda_xent(poa_backend *be, double *loss, float *ds, int ldds, const float *s, int lds,
                   const float *t, int ldt, int t_period, int t_shift, const float *w, int n, int K,
                   float inv_tau, float loss_scale, float grad_scale)
{
    POA_CHECK(t_period >= 1 && t_shift >= 0, "xent: t_period %d, t_shift %d", t_period, t_shift);
    if (n <= 0 || (!loss && !ds)) return;
    POA_CHECK((size_t) n * sizeof(double) <= POA_CUDA_SCRATCH_BYTES,
              "xent: %d rows exceed the reduction scratch", n);
    double *rowval = loss ? fixed_scratch(be) : NULL;
    const bool vec = K % F4 == 0 && chunk_rows_aligned(s, lds, sizeof(float)) &&
                     chunk_rows_aligned(t, ldt, sizeof(float)) &&
                     chunk_rows_aligned(ds, ldds, sizeof(float));
    const unsigned threads = row_threads(K);
    if (vec) {
        xent_rows_kernel<true><<<(unsigned) n, threads, 0, poa_cuda_stream(be)>>>(
            rowval, ds, ldds, s, lds, t, ldt, t_period, t_shift, w, K, inv_tau, grad_scale);
    } else {
        xent_rows_kernel<false><<<(unsigned) n, threads, 0, poa_cuda_stream(be)>>>(
            rowval, ds, ldds, s, lds, t, ldt, t_period, t_shift, w, K, inv_tau, grad_scale);
    }
    POA_CUDA_LAUNCHED("xent_rows_kernel");
    if (loss) launch_finish_sum(be, loss, rowval, n, (double) loss_scale, 1.0, 1);
}

void poa_cuda_col_max(poa_backend *be, double *mx, const float *x, int ldx, int n, int K)
{
    if (K <= 0) return;
    int chunks, rpc;
    column_chunks(n, K, sizeof(float), &chunks, &rpc);
    float *part = static_cast<float *>(poa_cuda_impl(be)->scratch);
    col_max_partials_kernel<<<column_grid(K, chunks), COL_THREADS, 0, poa_cuda_stream(be)>>>(
        part, x, ldx, n, K, rpc);
    POA_CUDA_LAUNCHED("col_max_partials_kernel");
    col_max_finish_kernel<<<(unsigned) ((K + COL_THREADS - 1) / COL_THREADS), COL_THREADS, 0,
                            poa_cuda_stream(be)>>>(mx, part, chunks, K);
    POA_CUDA_LAUNCHED("col_max_finish_kernel");
}

void poa_cuda_sk_exp(poa_backend *be, float *q, int ldq, double *psum, const float *x, int ldx,
                     const double *mx, int n, int K, float inv_tau)
{
    if (K <= 0) return;
    int chunks, rpc;
    column_chunks(n, K, sizeof(double), &chunks, &rpc);
    double *part = fixed_scratch(be);
    sk_exp_partials_kernel<<<column_grid(K, chunks), COL_THREADS, 0, poa_cuda_stream(be)>>>(
        part, q, ldq, x, ldx, mx, n, K, inv_tau, rpc);
    POA_CUDA_LAUNCHED("sk_exp_partials_kernel");
    launch_col_sum_finish(be, psum, part, chunks, K);
}

void poa_cuda_sk_normalize(poa_backend *be, float *q, int ldq, double *psum_next,
                           const double *psum, double *scratch, int n, int K)
{
    if (K <= 0) return;
    cudaStream_t st = poa_cuda_stream(be);
    double *rinv = scratch;
    reciprocal_kernel<<<poa_cuda_grid((size_t) K, 256), 256, 0, st>>>(rinv, psum, K);
    POA_CUDA_LAUNCHED("reciprocal_kernel");
    if (n > 0) {
        const unsigned threads = row_threads(K);
        if (K % F4 == 0 && chunk_rows_aligned(q, ldq, sizeof(float)))
            sk_normalize_rows_kernel<true><<<(unsigned) n, threads, 0, st>>>(q, ldq, rinv, K);
        else
            sk_normalize_rows_kernel<false><<<(unsigned) n, threads, 0, st>>>(q, ldq, rinv, K);
        POA_CUDA_LAUNCHED("sk_normalize_rows_kernel");
    }
    if (!psum_next) return; // psum_next may be psum: psum was read by reciprocal_kernel above
    int chunks, rpc;
    column_chunks(n, K, sizeof(double), &chunks, &rpc);
    double *part = fixed_scratch(be);
    col_sum_partials_kernel<<<column_grid(K, chunks), COL_THREADS, 0, st>>>(part, q, ldq, n, K,
                                                                            rpc);
    POA_CUDA_LAUNCHED("col_sum_partials_kernel");
    launch_col_sum_finish(be, psum_next, part, chunks, K);
}

size_t poa_cuda_koleo_scratch_bytes(const poa_backend *be, int n, int c)
{
    (void) be;
    return koleo_layout_of(n, c).total;
}

void poa_cuda_koleo(poa_backend *be, double *loss, float *dz, int lddz, const float *z, int ldz,
                    int n, int c, float loss_scale, float grad_scale, void *scratch)
{
    POA_CHECK(n >= 2, "koleo: needs at least 2 rows, got %d", n);
    POA_CHECK(c >= 0 && c <= KOLEO_MAX_FEATURES, "koleo: %d features per row (at most %d)", c,
              KOLEO_MAX_FEATURES);
    if (!loss && !dz) return;
    const koleo_layout L = koleo_layout_of(n, c);
    char *base = static_cast<char *>(scratch);
    double *rowloss = reinterpret_cast<double *>(base + L.rowloss);
    float *x = reinterpret_cast<float *>(base + L.x), *dx = reinterpret_cast<float *>(base + L.dx);
    float *norm = reinterpret_cast<float *>(base + L.norm);
    float *coef = reinterpret_cast<float *>(base + L.coef);
    int32_t *nn = reinterpret_cast<int32_t *>(base + L.nn);
    int32_t *inv_start = reinterpret_cast<int32_t *>(base + L.inv_start);
    int32_t *inv_idx = reinterpret_cast<int32_t *>(base + L.inv_idx);
    cudaStream_t st = poa_cuda_stream(be);

    const unsigned row_warps = 4, warp_blocks = (unsigned) ((n + row_warps - 1) / row_warps);
    koleo_normalize_kernel<<<warp_blocks, 32 * row_warps, 0, st>>>(x, norm, z, ldz, n, c);
    POA_CUDA_LAUNCHED("koleo_normalize_kernel");
    if (c <= KOLEO_MAX_FEATURES_R4) {
        koleo_nearest_kernel<4>
            <<<(unsigned) ((n + 3) / 4), NN_THREADS, 4 * (size_t) c * sizeof(float), st>>>(nn, x, n,
                                                                                           c);
    } else {
        koleo_nearest_kernel<1>
            <<<(unsigned) n, NN_THREADS, (size_t) c * sizeof(float), st>>>(nn, x, n, c);
    }
    POA_CUDA_LAUNCHED("koleo_nearest_kernel");
    koleo_dist_kernel<<<warp_blocks, 32 * row_warps, 0, st>>>(rowloss, coef, x, nn, n, c,
                                                              grad_scale);
    POA_CUDA_LAUNCHED("koleo_dist_kernel");
    if (loss) launch_finish_sum(be, loss, rowloss, n, (double) loss_scale, (double) n, 1);
    if (!dz) return;
    koleo_inverse_kernel<<<1, 256, 0, st>>>(inv_start, inv_idx, nn, n);
    POA_CUDA_LAUNCHED("koleo_inverse_kernel");
    koleo_grad_kernel<<<(unsigned) n, 128, 0, st>>>(dz, lddz, dx, z, ldz, x, norm, coef, nn,
                                                    inv_start, inv_idx, c);
    POA_CUDA_LAUNCHED("koleo_grad_kernel");
}
