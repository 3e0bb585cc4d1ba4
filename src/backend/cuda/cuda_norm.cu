// cuda_norm.cu — the CUDA backend's normalisation layers (backend.h, poa_nn_ops):
// LayerNorm forward/backward on activations in the compute dtype (float or bf16; statistics
// and parameters fp32), and the DINO head's fp32 L2 normalisation and weight normalisation.
// Arithmetic as the CPU backend's (src/backend/cpu/cpu_nn_norm.c): row sums in double, the
// element formulas in fp32, the same clamp rules.
//
// Why it is written this way:
//  - rows are independent and short (d ≤ 4096, C ≤ 256): one warp per row, four rows per
//    block, so that tens of thousands of rows fill the device and no block-wide barrier is
//    needed; lanes take 16-byte chunks of the row (cuda_chunks.cuh), vectorised where the
//    tensors are aligned, with the same summation order either way;
//  - LayerNorm's parameter gradients are column sums over all rows: each block of 32 columns
//    × 8 row groups sums one of at most 64 row chunks in a fixed pattern into the backend's
//    fixed scratch, and a second kernel adds the chunk partials in chunk order and `+=`s them
//    into dw/db — deterministic, no floating-point atomics (a resumed run must equal an
//    uninterrupted one bit for bit);
//  - columns d … ld−1 are never read or written.
#include "backend/cuda/cuda_chunks.cuh"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_ops.h"

#include <math.h>

namespace
{

constexpr int ROW_WARPS = 4; // rows (warps) per block of the row kernels
constexpr int F4 = 4;        // chunk width of fp32 rows

unsigned row_blocks(int rows)
{
    return (unsigned) ((rows + ROW_WARPS - 1) / ROW_WARPS);
}

// The row of the calling warp, and its lane.
__device__ __forceinline__ int warp_row()
{
    return blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
}
__device__ __forceinline__ int lane_id()
{
    return threadIdx.x & 31;
}

// Whether a row kernel over d columns may use the 16-byte vector path with chunks of N.
bool rows_vec_ok(int d, int N)
{
    return d % N == 0;
}
bool ptr_aligned(const void *p)
{
    return chunk_rows_aligned(p, 0, 1);
}

// ------------------------------------------------------------------------------- LayerNorm

// Row `row` (one warp): mean and biased variance in double (two passes over the row),
// m = (float) mean, rs = (float) (1 / sqrt(var + eps)), y = (x − m) · rs · w + b.
template <typename T, bool VEC>
__global__ void layernorm_fwd_kernel(T *y, int ldy, float *mean, float *rstd, const T *x, int ldx,
                                     const float *w, const float *b, int rows, int d, float eps)
{
    constexpr int N = poa_chunk_width<T>::value;
    const int row = warp_row(), lane = lane_id();
    if (row >= rows) return; // the whole warp: no barrier follows
    const T *xr = x + (size_t) row * ldx;
    T *yr = y + (size_t) row * ldy;

    double s = 0;
    for (int k0 = lane * N; k0 < d; k0 += 32 * N) {
        float f[N];
        chunk_load<N, VEC>(f, xr, k0, d);
#pragma unroll
        for (int j = 0; j < N; j++)
            if (VEC || k0 + j < d) s += f[j];
    }
    const double mu = warp_sum(s) / d;
    double q = 0;
    for (int k0 = lane * N; k0 < d; k0 += 32 * N) {
        float f[N];
        chunk_load<N, VEC>(f, xr, k0, d);
#pragma unroll
        for (int j = 0; j < N; j++)
            if (VEC || k0 + j < d) {
                const double t = f[j] - mu;
                q += t * t;
            }
    }
    const double var = warp_sum(q) / d;
    const float m = (float) mu, rs = (float) (1.0 / sqrt(var + (double) eps));
    if (lane == 0) mean[row] = m, rstd[row] = rs;

    for (int k0 = lane * N; k0 < d; k0 += 32 * N) {
        float f[N], fw[N], fb[N];
        chunk_load<N, VEC>(f, xr, k0, d);
        chunk_load<N, VEC>(fw, w, k0, d);
        chunk_load<N, VEC>(fb, b, k0, d);
#pragma unroll
        for (int j = 0; j < N; j++) f[j] = (f[j] - m) * rs * fw[j] + fb[j];
        chunk_store<N, VEC>(yr, f, k0, d);
    }
}

// Row `row` (one warp): with g = dy ⊙ w and x̂ = (x − mean) · rstd,
// dx (= or +=) rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)), the two means from double sums.
template <typename T, bool VEC>
__global__ void layernorm_bwd_dx_kernel(T *dx, int lddx, int accumulate, const T *dy, int lddy,
                                        const T *x, int ldx, const float *mean, const float *rstd,
                                        const float *w, int rows, int d)
{
    constexpr int N = poa_chunk_width<T>::value;
    const int row = warp_row(), lane = lane_id();
    if (row >= rows) return;
    const T *dyr = dy + (size_t) row * lddy, *xr = x + (size_t) row * ldx;
    T *dxr = dx + (size_t) row * lddx;
    const float m = mean[row], rs = rstd[row];

    double sg = 0, sgx = 0;
    for (int k0 = lane * N; k0 < d; k0 += 32 * N) {
        float fg[N], fx[N], fw[N];
        chunk_load<N, VEC>(fg, dyr, k0, d);
        chunk_load<N, VEC>(fx, xr, k0, d);
        chunk_load<N, VEC>(fw, w, k0, d);
#pragma unroll
        for (int j = 0; j < N; j++)
            if (VEC || k0 + j < d) {
                const float g = fg[j] * fw[j], xh = (fx[j] - m) * rs;
                sg += g;
                sgx += (double) g * xh;
            }
    }
    const float mg = (float) (warp_sum(sg) / d), mgx = (float) (warp_sum(sgx) / d);

    for (int k0 = lane * N; k0 < d; k0 += 32 * N) {
        float fg[N], fx[N], fw[N], fo[N];
        chunk_load<N, VEC>(fg, dyr, k0, d);
        chunk_load<N, VEC>(fx, xr, k0, d);
        chunk_load<N, VEC>(fw, w, k0, d);
        if (accumulate) {
            chunk_load<N, VEC>(fo, dxr, k0, d);
        } else {
#pragma unroll
            for (int j = 0; j < N; j++) fo[j] = 0.0f;
        }
#pragma unroll
        for (int j = 0; j < N; j++) {
            const float xh = (fx[j] - m) * rs;
            const float v = rs * (fg[j] * fw[j] - mg - xh * mgx);
            fo[j] = accumulate ? fo[j] + v : v;
        }
        chunk_store<N, VEC>(dxr, fo, k0, d);
    }
}

// Column sums of the parameter gradients: block (blockIdx.x, chunk) covers the 32 columns
// c = 32·blockIdx.x + threadIdx.x of the rows of its chunk; row group threadIdx.y takes the
// chunk's rows r0 + ty, r0 + ty + 8, ... in order; the 8 group sums are added in group order.
//   pw[chunk·d + c] = Σ dy[r, c] · x̂[r, c],   pb[chunk·d + c] = Σ dy[r, c]   (double).
constexpr int PG_COLS = 32, PG_GROUPS = 8;
template <typename T>
__global__ void layernorm_param_partials_kernel(double *pw, double *pb, const T *dy, int lddy,
                                                const T *x, int ldx, const float *mean,
                                                const float *rstd, int rows, int d,
                                                int rows_per_chunk)
{
    __shared__ double sw[PG_GROUPS][PG_COLS], sb[PG_GROUPS][PG_COLS];
    const int c = blockIdx.x * PG_COLS + threadIdx.x, ty = threadIdx.y;
    const long long a = (long long) blockIdx.y * rows_per_chunk, e = a + rows_per_chunk;
    const int r0 = (int) (a < rows ? a : rows), r1 = (int) (e < rows ? e : rows);
    double aw = 0, ab = 0;
    if (c < d)
        for (int r = r0 + ty; r < r1; r += PG_GROUPS) {
            const float g = to_f32(dy[(size_t) r * lddy + c]);
            const float xh = (to_f32(x[(size_t) r * ldx + c]) - mean[r]) * rstd[r];
            aw += (double) g * xh;
            ab += g;
        }
    sw[ty][threadIdx.x] = aw;
    sb[ty][threadIdx.x] = ab;
    __syncthreads();
    if (ty == 0 && c < d) {
        double tw = 0, tb = 0;
        for (int q = 0; q < PG_GROUPS; q++) tw += sw[q][threadIdx.x], tb += sb[q][threadIdx.x];
        pw[(size_t) blockIdx.y * d + c] = tw;
        pb[(size_t) blockIdx.y * d + c] = tb;
    }
}

// dw[c] += (float) Σ_chunk pw[chunk·d + c], db likewise, chunks in order; either may be NULL.
__global__ void layernorm_param_finish_kernel(float *dw, float *db, const double *pw,
                                              const double *pb, int chunks, int d)
{
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= d) return;
    double tw = 0, tb = 0;
    for (int q = 0; q < chunks; q++) tw += pw[(size_t) q * d + c], tb += pb[(size_t) q * d + c];
    if (dw) dw[c] += (float) tw;
    if (db) db[c] += (float) tb;
}

// ------------------------------------------------------------------------ L2 normalisation

// Row `row` (one warp): n = (float) ||x|| (double sum), norms = n, y = x / max(n, eps).
template <bool VEC>
__global__ void l2norm_fwd_kernel(float *y, int ldy, float *norms, const float *x, int ldx,
                                  int rows, int cols, float eps)
{
    const int row = warp_row(), lane = lane_id();
    if (row >= rows) return;
    const float *xr = x + (size_t) row * ldx;
    float *yr = y + (size_t) row * ldy;
    double s = 0;
    for (int k0 = lane * F4; k0 < cols; k0 += 32 * F4) {
        float f[F4];
        chunk_load<F4, VEC>(f, xr, k0, cols);
#pragma unroll
        for (int j = 0; j < F4; j++)
            if (VEC || k0 + j < cols) s += (double) f[j] * f[j];
    }
    const float n = (float) sqrt(warp_sum(s)), den = n > eps ? n : eps;
    if (lane == 0) norms[row] = n;
    for (int k0 = lane * F4; k0 < cols; k0 += 32 * F4) {
        float f[F4];
        chunk_load<F4, VEC>(f, xr, k0, cols);
#pragma unroll
        for (int j = 0; j < F4; j++) f[j] = __fdiv_rn(f[j], den);
        chunk_store<F4, VEC>(yr, f, k0, cols);
    }
}

// Row `row` (one warp): n ≥ eps: dx = dy / n − x (x·dy) / n³ (as dy·(float)(1/n) −
// x·(float)((x·dy)/n³)); n < eps (the clamp is a constant): dx = dy / eps.  dx (=) may be dy.
template <bool VEC>
__global__ void l2norm_bwd_kernel(float *dx, int lddx, const float *dy, int lddy, const float *x,
                                  int ldx, const float *norms, int rows, int cols, float eps)
{
    const int row = warp_row(), lane = lane_id();
    if (row >= rows) return;
    const float *xr = x + (size_t) row * ldx, *gr = dy + (size_t) row * lddy;
    float *dxr = dx + (size_t) row * lddx;
    const double n = norms[row];
    if (n >= eps) { // the same for the whole warp
        double dot = 0;
        for (int k0 = lane * F4; k0 < cols; k0 += 32 * F4) {
            float fx[F4], fg[F4];
            chunk_load<F4, VEC>(fx, xr, k0, cols);
            chunk_load<F4, VEC>(fg, gr, k0, cols);
#pragma unroll
            for (int j = 0; j < F4; j++)
                if (VEC || k0 + j < cols) dot += (double) fx[j] * fg[j];
        }
        dot = warp_sum(dot);
        const float inv = (float) (1.0 / n), coef = (float) (dot / (n * n * n));
        for (int k0 = lane * F4; k0 < cols; k0 += 32 * F4) {
            float fx[F4], fg[F4];
            chunk_load<F4, VEC>(fx, xr, k0, cols);
            chunk_load<F4, VEC>(fg, gr, k0, cols);
#pragma unroll
            for (int j = 0; j < F4; j++) fg[j] = fg[j] * inv - fx[j] * coef;
            chunk_store<F4, VEC>(dxr, fg, k0, cols);
        }
    } else {
        for (int k0 = lane * F4; k0 < cols; k0 += 32 * F4) {
            float fg[F4];
            chunk_load<F4, VEC>(fg, gr, k0, cols);
#pragma unroll
            for (int j = 0; j < F4; j++) fg[j] = __fdiv_rn(fg[j], eps);
            chunk_store<F4, VEC>(dxr, fg, k0, cols);
        }
    }
}

// --------------------------------------------------------------------- weight normalisation

// Row k (one warp) of v [K, C]: n = (float) ||v_k||, f = g_k / n, W_k = v_k · f, vnorm_k = n.
template <bool VEC>
__global__ void weightnorm_fwd_kernel(float *W, float *vnorm, const float *g, const float *v, int K,
                                      int C)
{
    const int k = warp_row(), lane = lane_id();
    if (k >= K) return;
    const float *vk = v + (size_t) k * C;
    float *Wk = W + (size_t) k * C;
    double s = 0;
    for (int c0 = lane * F4; c0 < C; c0 += 32 * F4) {
        float f[F4];
        chunk_load<F4, VEC>(f, vk, c0, C);
#pragma unroll
        for (int j = 0; j < F4; j++)
            if (VEC || c0 + j < C) s += (double) f[j] * f[j];
    }
    const float n = (float) sqrt(warp_sum(s)), fac = __fdiv_rn(g[k], n);
    if (lane == 0) vnorm[k] = n;
    for (int c0 = lane * F4; c0 < C; c0 += 32 * F4) {
        float f[F4];
        chunk_load<F4, VEC>(f, vk, c0, C);
#pragma unroll
        for (int j = 0; j < F4; j++) f[j] *= fac;
        chunk_store<F4, VEC>(Wk, f, c0, C);
    }
}

// Row k (one warp): dot = dW_k·v_k (double); dg_k += (float) (dot / n);
// dv_k += a·dW_k − b·v_k with a = (float) (g_k / n), b = (float) (g_k·dot / n³).
template <bool VEC>
__global__ void weightnorm_bwd_kernel(float *dg, float *dv, const float *dW, const float *g,
                                      const float *v, const float *vnorm, int K, int C)
{
    const int k = warp_row(), lane = lane_id();
    if (k >= K) return;
    const float *vk = v + (size_t) k * C, *gk = dW + (size_t) k * C;
    double dot = 0;
    for (int c0 = lane * F4; c0 < C; c0 += 32 * F4) {
        float fg[F4], fv[F4];
        chunk_load<F4, VEC>(fg, gk, c0, C);
        chunk_load<F4, VEC>(fv, vk, c0, C);
#pragma unroll
        for (int j = 0; j < F4; j++)
            if (VEC || c0 + j < C) dot += (double) fg[j] * fv[j];
    }
    dot = warp_sum(dot);
    const double n = vnorm[k];
    if (dg && lane == 0) dg[k] += (float) (dot / n);
    if (!dv) return;
    float *dvk = dv + (size_t) k * C;
    const float a = (float) (g[k] / n), b = (float) (g[k] * dot / (n * n * n));
    for (int c0 = lane * F4; c0 < C; c0 += 32 * F4) {
        float fg[F4], fv[F4], fo[F4];
        chunk_load<F4, VEC>(fg, gk, c0, C);
        chunk_load<F4, VEC>(fv, vk, c0, C);
        chunk_load<F4, VEC>(fo, dvk, c0, C);
#pragma unroll
        for (int j = 0; j < F4; j++) fo[j] += a * fg[j] - b * fv[j];
        chunk_store<F4, VEC>(dvk, fo, c0, C);
    }
}

} // namespace

// ================================================================================== entries

void poa_cuda_layernorm_fwd(poa_backend *be, poa_act *y, int ldy, float *mean, float *rstd,
                            const poa_act *x, int ldx, const float *w, const float *b, int rows,
                            int d, float eps)
{
    if (rows <= 0) return;
    cudaStream_t st = poa_cuda_stream(be);
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        constexpr int N = poa_chunk_width<T>::value;
        T *yt = act_ptr<T>(y);
        const T *xt = act_ptr<T>(x);
        const bool vec = rows_vec_ok(d, N) && chunk_rows_aligned(yt, ldy, sizeof(T)) &&
                         chunk_rows_aligned(xt, ldx, sizeof(T)) && ptr_aligned(w) && ptr_aligned(b);
        if (vec)
            layernorm_fwd_kernel<T, true><<<row_blocks(rows), 32 * ROW_WARPS, 0, st>>>(
                yt, ldy, mean, rstd, xt, ldx, w, b, rows, d, eps);
        else
            layernorm_fwd_kernel<T, false><<<row_blocks(rows), 32 * ROW_WARPS, 0, st>>>(
                yt, ldy, mean, rstd, xt, ldx, w, b, rows, d, eps);
        POA_CUDA_LAUNCHED("layernorm_fwd_kernel");
    });
}

void poa_cuda_layernorm_bwd(poa_backend *be, poa_act *dx, int lddx, float dx_beta, float *dw,
                            float *db, const poa_act *dy, int lddy, const poa_act *x, int ldx,
                            const float *mean, const float *rstd, const float *w, int rows, int d)
{
    POA_CHECK(dx_beta == 0.0f || dx_beta == 1.0f, "layernorm_bwd: dx_beta %g (0 or 1)",
              (double) dx_beta);
    if (rows <= 0 || d <= 0) return;
    cudaStream_t st = poa_cuda_stream(be);
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        constexpr int N = poa_chunk_width<T>::value;
        const T *dyt = act_ptr<T>(dy), *xt = act_ptr<T>(x);
        // Parameter gradients first: they read dy and x only, so the op stays correct even
        // if a caller passes dx aliasing dy.
        if (dw || db) {
            const int chunks = poa_cuda_reduce_chunks(rows, d, 2 * sizeof(double), 256);
            POA_CHECK((size_t) chunks * d * 2 * sizeof(double) <= POA_CUDA_SCRATCH_BYTES,
                      "layernorm_bwd: d = %d exceeds the reduction scratch", d);
            const int rpc = (rows + chunks - 1) / chunks;
            double *pw = static_cast<double *>(poa_cuda_impl(be)->scratch);
            double *pb = pw + (size_t) chunks * d;
            const dim3 grid((unsigned) ((d + PG_COLS - 1) / PG_COLS), (unsigned) chunks);
            layernorm_param_partials_kernel<T><<<grid, dim3(PG_COLS, PG_GROUPS), 0, st>>>(
                pw, pb, dyt, lddy, xt, ldx, mean, rstd, rows, d, rpc);
            POA_CUDA_LAUNCHED("layernorm_param_partials_kernel");
            layernorm_param_finish_kernel<<<(unsigned) ((d + 255) / 256), 256, 0, st>>>(
                dw, db, pw, pb, chunks, d);
            POA_CUDA_LAUNCHED("layernorm_param_finish_kernel");
        }
        if (dx) {
            T *dxt = act_ptr<T>(dx);
            const int acc = dx_beta != 0.0f;
            const bool vec = rows_vec_ok(d, N) && chunk_rows_aligned(dxt, lddx, sizeof(T)) &&
                             chunk_rows_aligned(dyt, lddy, sizeof(T)) &&
                             chunk_rows_aligned(xt, ldx, sizeof(T)) && ptr_aligned(w);
            if (vec)
                layernorm_bwd_dx_kernel<T, true><<<row_blocks(rows), 32 * ROW_WARPS, 0, st>>>(
                    dxt, lddx, acc, dyt, lddy, xt, ldx, mean, rstd, w, rows, d);
            else
                layernorm_bwd_dx_kernel<T, false><<<row_blocks(rows), 32 * ROW_WARPS, 0, st>>>(
                    dxt, lddx, acc, dyt, lddy, xt, ldx, mean, rstd, w, rows, d);
            POA_CUDA_LAUNCHED("layernorm_bwd_dx_kernel");
        }
    });
}

void poa_cuda_l2norm_fwd(poa_backend *be, float *y, int ldy, float *norms, const float *x, int ldx,
                         int rows, int cols, float eps)
{
    if (rows <= 0) return;
    cudaStream_t st = poa_cuda_stream(be);
    const bool vec = rows_vec_ok(cols, F4) && chunk_rows_aligned(y, ldy, sizeof(float)) &&
                     chunk_rows_aligned(x, ldx, sizeof(float));
    if (vec)
        l2norm_fwd_kernel<true>
            <<<row_blocks(rows), 32 * ROW_WARPS, 0, st>>>(y, ldy, norms, x, ldx, rows, cols, eps);
    else
        l2norm_fwd_kernel<false>
            <<<row_blocks(rows), 32 * ROW_WARPS, 0, st>>>(y, ldy, norms, x, ldx, rows, cols, eps);
    POA_CUDA_LAUNCHED("l2norm_fwd_kernel");
}

void poa_cuda_l2norm_bwd(poa_backend *be, float *dx, int lddx, const float *dy, int lddy,
                         const float *x, int ldx, const float *norms, int rows, int cols, float eps)
{
    if (rows <= 0) return;
    cudaStream_t st = poa_cuda_stream(be);
    const bool vec = rows_vec_ok(cols, F4) && chunk_rows_aligned(dx, lddx, sizeof(float)) &&
                     chunk_rows_aligned(dy, lddy, sizeof(float)) &&
                     chunk_rows_aligned(x, ldx, sizeof(float));
    if (vec)
        l2norm_bwd_kernel<true><<<row_blocks(rows), 32 * ROW_WARPS, 0, st>>>(
            dx, lddx, dy, lddy, x, ldx, norms, rows, cols, eps);
    else
        l2norm_bwd_kernel<false><<<row_blocks(rows), 32 * ROW_WARPS, 0, st>>>(
            dx, lddx, dy, lddy, x, ldx, norms, rows, cols, eps);
    POA_CUDA_LAUNCHED("l2norm_bwd_kernel");
}

void poa_cuda_weightnorm_fwd(poa_backend *be, float *W, float *vnorm, const float *g,
                             const float *v, int K, int C)
{
    if (K <= 0) return;
    cudaStream_t st = poa_cuda_stream(be);
    const bool vec = rows_vec_ok(C, F4) && chunk_rows_aligned(W, C, sizeof(float)) &&
                     chunk_rows_aligned(v, C, sizeof(float));
    if (vec)
        weightnorm_fwd_kernel<true><<<row_blocks(K), 32 * ROW_WARPS, 0, st>>>(W, vnorm, g, v, K, C);
    else
        weightnorm_fwd_kernel<false>
            <<<row_blocks(K), 32 * ROW_WARPS, 0, st>>>(W, vnorm, g, v, K, C);
    POA_CUDA_LAUNCHED("weightnorm_fwd_kernel");
}

void poa_cuda_weightnorm_bwd(poa_backend *be, float *dg, float *dv, const float *dW, const float *g,
                             const float *v, const float *vnorm, int K, int C)
{
    if (K <= 0 || (!dg && !dv)) return;
    cudaStream_t st = poa_cuda_stream(be);
    const bool vec = rows_vec_ok(C, F4) && chunk_rows_aligned(dv, C, sizeof(float)) &&
                     chunk_rows_aligned(dW, C, sizeof(float)) &&
                     chunk_rows_aligned(v, C, sizeof(float));
    if (vec)
        weightnorm_bwd_kernel<true>
            <<<row_blocks(K), 32 * ROW_WARPS, 0, st>>>(dg, dv, dW, g, v, vnorm, K, C);
    else
        weightnorm_bwd_kernel<false>
            <<<row_blocks(K), 32 * ROW_WARPS, 0, st>>>(dg, dv, dW, g, v, vnorm, K, C);
    POA_CUDA_LAUNCHED("weightnorm_bwd_kernel");
}
