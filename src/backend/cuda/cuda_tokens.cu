// cuda_tokens.cu — the CUDA backend's token ops: patch_unfold (fp32 pixels → compute dtype),
// tokens_fwd/bwd (the [cls | patches] + pos assembly and its gradients), pos_resample_fwd/bwd
// (bicubic resampling of the position-embedding grid, fp32) and the row gather/scatter pairs
// (act_gather_rows, act_scatter_add_rows, act_gather_rows_f32, act_scatter_add_rows_f32).
//
// Shape of the code: element-per-thread kernels over [rows, cols] views (cuda_core.cuh; the row
// gathers and scatters move 16-byte chunks where they can), templates
// over the activation storage type, fp32 arithmetic.  Every gradient is a gather, never a
// scatter with atomics, so every sum runs in a fixed order (backend.h, determinism):
//  - tokens_bwd: dpos[t] and dcls sum the B images of token t in image order (one thread per
//    (t, column), double accumulation); dmask_token is the deterministic column sum of
//    cuda_core.cuh over the masked patch rows;
//  - pos_resample_bwd: each dsrc element gathers over the outputs whose taps touch it, in two
//    separable passes through the backend's scratch (columns, then rows);
//  - act_scatter_add_rows: the indices are distinct (backend.h), so each destination row has one
//    writer.
//
// Bicubic taps: the tap indices and weights of one output index along one axis are computed on
// the device with the arithmetic of the CPU backend (src/backend/cpu/cpu_nn_tokens.c, itself bit
// for bit torch's fp32 F.interpolate): scale (n_out + 0.1)/n_in in double, ratio = (float)(1/s),
// src = ratio·(o + 0.5) − 0.5 in double, not clamped; i0 = min(floor(src), n_in − 1),
// t = (float)(src − i0) clamped to [0, 1]; Keys kernel with A = −0.75 in float with the CPU's
// fused multiply-adds (fmaf) and no other contraction (the _rn intrinsics are never fused by the
// compiler); taps i0 − 1 … i0 + 2 clamped to [0, n_in − 1].  So the GPU's weights equal the CPU's.
#include "backend/cuda/cuda_chunks.cuh"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_core.cuh"
#include "backend/cuda/cuda_ops.h"

#include <type_traits>

// ---------------------------------------------------------------- patch unfolding
// cols[(b·gh + py)·gw + px, (c·P + i)·P + j] = img[b, c, py·P + i, px·P + j]: the order in which a
// [D, C, P, P] convolution weight flattens, so the patch embedding is one GEMM.
template <typename T>
__global__ void patch_unfold_kernel(T *cols, const float *img, int C, int Hi, int Wi, int P, int gh,
                                    int gw, long long rows, int rowlen)
{
    POA_RC_LOOP(row, e, rows, rowlen)
    {
        const long long px = row % gw, py = (row / gw) % gh, b = row / ((long long) gw * gh);
        const int j = e % P, i = (e / P) % P, c = e / (P * P);
        const size_t pix = (((size_t) b * C + c) * Hi + py * P + i) * Wi + px * P + j;
        cols[row * rowlen + e] = from_f32<T>(img[pix]);
    }
}

extern "C" void poa_cuda_patch_unfold(poa_backend *be, poa_act *cols, const float *img, int B,
                                      int C, int Hi, int Wi, int P)
{
    POA_CHECK(P > 0, "patch_unfold: patch size %d", P);
    const int gh = Hi / P, gw = Wi / P, rowlen = C * P * P;
    const long long rows = (long long) B * gh * gw;
    if (rows <= 0 || rowlen <= 0) return;
    const poa_rc_launch l = poa_rc_geometry(rows, rowlen);
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        patch_unfold_kernel<T><<<l.grid, l.block, 0, poa_cuda_stream(be)>>>(
            act_ptr<T>(cols), img, C, Hi, Wi, P, gh, gw, rows, rowlen);
        POA_CUDA_LAUNCHED("patch_unfold_kernel");
    });
}

// ---------------------------------------------------------------- token assembly
// x[b·T + t, c] = e + pos[t, c], e = cls (t = 0), mask_token (masked patch) or emb[b·N + t − 1].
template <typename T>
__global__ void tokens_fwd_kernel(T *x, int ldx, const T *emb, int ldemb, const float *cls,
                                  const float *pos, int ldpos, const float *mask_token,
                                  const uint8_t *mask, int N, long long rows, int d)
{
    const int tokens = N + 1;
    POA_RC_LOOP(r, c, rows, d)
    {
        const long long b = r / tokens;
        const int t = (int) (r % tokens);
        float e;
        if (t == 0) {
            e = cls[c];
        } else {
            const long long p = b * N + (t - 1);
            e = mask && mask[p] ? mask_token[c] : to_f32(emb[p * ldemb + c]);
        }
        x[r * ldx + c] = from_f32<T>(e + pos[(long long) t * ldpos + c]);
    }
}

// demb[b·N + n, c] = dx[b·T + 1 + n, c], 0 at masked patches.
template <typename T>
__global__ void tokens_demb_kernel(T *demb, int lddemb, const T *dx, int lddx, const uint8_t *mask,
                                   int N, long long patches, int d)
{
    const int tokens = N + 1;
    POA_RC_LOOP(p, c, patches, d)
    {
        const long long b = p / N, n = p % N;
        demb[p * lddemb + c] =
            mask && mask[p] ? from_f32<T>(0.0f) : dx[(b * tokens + 1 + n) * lddx + c];
    }
}

// dpos[t, c] += Σ_b dx[b·T + t, c] (b in order, double); dcls[c] += the same sum of t = 0.
template <typename T>
__global__ void tokens_dpos_kernel(float *dpos, int ldpos, float *dcls, const T *dx, int lddx,
                                   int B, int tokens, int d)
{
    POA_RC_LOOP(t, c, tokens, d)
    {
        double acc = 0.0;
        for (int b = 0; b < B; b++)
            acc += (double) to_f32(dx[((long long) b * tokens + t) * lddx + c]);
        if (dpos) dpos[t * ldpos + c] += (float) acc;
        if (dcls && t == 0) dcls[c] += (float) acc;
    }
}

// dmask_token's term of patch row p (= b·N + n): dx[b·T + 1 + n] where the patch is masked.
template <typename T> struct masked_patch_term {
    const T *dx;
    int lddx, N;
    const uint8_t *mask;
    __device__ double operator()(int p, int c) const
    {
        if (!mask[p]) return 0.0;
        const long long b = p / N, n = p % N;
        return (double) to_f32(dx[(b * (N + 1) + 1 + n) * lddx + c]);
    }
};

extern "C" void poa_cuda_tokens_fwd(poa_backend *be, poa_act *x, int ldx, const poa_act *emb,
                                    int ldemb, const float *cls, const float *pos, int ldpos,
                                    const float *mask_token, const uint8_t *mask, int B, int N,
                                    int d)
{
    const long long rows = (long long) B * (N + 1);
    if (rows <= 0 || d <= 0) return;
    const poa_rc_launch l = poa_rc_geometry(rows, d);
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        tokens_fwd_kernel<T><<<l.grid, l.block, 0, poa_cuda_stream(be)>>>(
            act_ptr<T>(x), ldx, act_ptr<T>(emb), ldemb, cls, pos, ldpos, mask_token, mask, N, rows,
            d);
        POA_CUDA_LAUNCHED("tokens_fwd_kernel");
    });
}

extern "C" void poa_cuda_tokens_bwd(poa_backend *be, poa_act *demb, int lddemb, float *dcls,
                                    float *dpos, int ldpos, float *dmask_token, const poa_act *dx,
                                    int lddx, const uint8_t *mask, int B, int N, int d)
{
    if (B <= 0 || N < 0 || d <= 0) return;
    const long long patches = (long long) B * N;
    const int tokens = N + 1;
    const cudaStream_t s = poa_cuda_stream(be);
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        if (demb && patches > 0) {
            const poa_rc_launch l = poa_rc_geometry(patches, d);
            tokens_demb_kernel<T><<<l.grid, l.block, 0, s>>>(
                act_ptr<T>(demb), lddemb, act_ptr<T>(dx), lddx, mask, N, patches, d);
            POA_CUDA_LAUNCHED("tokens_demb_kernel");
        }
        if (dpos || dcls) {
            const poa_rc_launch l = poa_rc_geometry(tokens, d);
            tokens_dpos_kernel<T>
                <<<l.grid, l.block, 0, s>>>(dpos, ldpos, dcls, act_ptr<T>(dx), lddx, B, tokens, d);
            POA_CUDA_LAUNCHED("tokens_dpos_kernel");
        }
        if (dmask_token && mask && patches > 0) {
            masked_patch_term<T> f;
            f.dx = act_ptr<T>(dx), f.lddx = lddx, f.N = N, f.mask = mask;
            poa_colsum_add(be, dmask_token, f, (int) patches, d);
        }
    });
}

// ---------------------------------------------------------------- bicubic taps
struct cubic_taps {
    int idx[4];
    float w[4];
};

__device__ float cubic_near(float x) // |x| ≤ 1: ((A + 2)x − (A + 3))x² + 1
{
    const float A = -0.75f;
    const float u = fmaf(A + 2.0f, x, -(A + 3.0f));
    const float v = __fmul_rn(u, x);
    const float r = __fmul_rn(v, x);
    return __fadd_rn(r, 1.0f);
}

__device__ float cubic_far(float x) // 1 < |x| < 2: ((A x − 5A) x + 8A) x − 4A
{
    const float A = -0.75f;
    const float u = fmaf(A, x, -5.0f * A);
    const float v = fmaf(u, x, 8.0f * A);
    const float r = __fmul_rn(v, x);
    return __fsub_rn(r, 4.0f * A);
}

__device__ cubic_taps cubic_taps_of(int o, int n_in, int n_out)
{
    const double s = __ddiv_rn(__dadd_rn((double) n_out, 0.1), (double) n_in);
    const float ratio = __double2float_rn(__ddiv_rn(1.0, s));
    const double src = __dadd_rn(__dmul_rn((double) ratio, __dadd_rn((double) o, 0.5)), -0.5);
    int i0 = (int) floor(src);
    if (i0 > n_in - 1) i0 = n_in - 1;
    float t = __double2float_rn(__dadd_rn(src, -(double) i0));
    t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
    cubic_taps ct;
    ct.w[0] = cubic_far(__fadd_rn(t, 1.0f));
    ct.w[1] = cubic_near(t);
    const float t2 = __fsub_rn(1.0f, t);
    ct.w[2] = cubic_near(t2);
    ct.w[3] = cubic_far(__fadd_rn(t2, 1.0f));
    for (int j = 0; j < 4; j++) {
        const int k = i0 - 1 + j;
        ct.idx[j] = k < 0 ? 0 : k > n_in - 1 ? n_in - 1 : k;
    }
    return ct;
}

// ty[h0] (rows: M → h0) then tx[w0] (columns: M → w0).
__global__ void cubic_taps_kernel(cubic_taps *ty, cubic_taps *tx, int M, int h0, int w0)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < h0)
        ty[i] = cubic_taps_of(i, M, h0);
    else if (i < h0 + w0)
        tx[i - h0] = cubic_taps_of(i - h0, M, w0);
}

// Total weight of source index k in the taps of one output index (clamped taps can repeat an
// index); `touched` says whether any tap is k (an untouched index contributes nothing, not 0·x).
__device__ __forceinline__ float tap_weight(const cubic_taps &ct, int k, bool *touched)
{
    float w = 0.0f;
    bool any = false;
    for (int j = 0; j < 4; j++)
        if (ct.idx[j] == k) {
            w += ct.w[j];
            any = true;
        }
    *touched = any;
    return w;
}

// Scratch layout of pos_resample: the taps of both axes, then (backward) the [h0, M, d] fp32
// intermediate of the separable adjoint.
struct resample_scratch {
    cubic_taps *ty, *tx;
    float *tmp;
};

static resample_scratch resample_plan(const poa_backend *be, int M, int h0, int w0,
                                      size_t tmp_elems)
{
    const size_t taps_bytes = ((size_t) (h0 + w0) * sizeof(cubic_taps) + 255) / 256 * 256;
    POA_CHECK(taps_bytes + tmp_elems * sizeof(float) <= POA_CUDA_SCRATCH_BYTES,
              "pos_resample: grid %dx%d from %d needs %zu bytes of scratch (%zu available)", h0, w0,
              M, taps_bytes + tmp_elems * sizeof(float), (size_t) POA_CUDA_SCRATCH_BYTES);
    char *base = (char *) poa_cuda_impl(be)->scratch;
    resample_scratch rs;
    rs.ty = (cubic_taps *) base;
    rs.tx = rs.ty + h0;
    rs.tmp = (float *) (base + taps_bytes);
    const int n = h0 + w0;
    cubic_taps_kernel<<<(n + 127) / 128, 128, 0, poa_cuda_stream(be)>>>(rs.ty, rs.tx, M, h0, w0);
    POA_CUDA_LAUNCHED("cubic_taps_kernel");
    return rs;
}

// ---------------------------------------------------------------- pos resampling
// dst[oy·w0 + ox, c] = Σ_i wy_i (Σ_j wx_j src[iy_i·M + ix_j, c]), in the CPU backend's order.
__global__ void pos_resample_fwd_kernel(float *dst, int ldd, const float *src, int lds,
                                        const cubic_taps *ty, const cubic_taps *tx, int M, int w0,
                                        long long outputs, int d)
{
    POA_RC_LOOP(op, c, outputs, d)
    {
        const cubic_taps cy = ty[op / w0], cx = tx[op % w0];
        float out = 0.0f;
        for (int i = 0; i < 4; i++) {
            const float *row = src + (long long) cy.idx[i] * M * lds + c;
            const float v = row[(long long) cx.idx[0] * lds] * cx.w[0] +
                            row[(long long) cx.idx[1] * lds] * cx.w[1] +
                            row[(long long) cx.idx[2] * lds] * cx.w[2] +
                            row[(long long) cx.idx[3] * lds] * cx.w[3];
            out = i == 0 ? v * cy.w[0] : out + v * cy.w[i];
        }
        dst[op * ldd + c] = out;
    }
}

// Backward pass 1 (columns): tmp[oy, kx, c] = Σ_ox Wx[ox, kx] · ddst[oy·w0 + ox, c].
__global__ void pos_resample_bwd_cols_kernel(float *tmp, const float *ddst, int ldd,
                                             const cubic_taps *tx, int M, int w0, long long rows,
                                             int d)
{
    POA_RC_LOOP(row, c, rows, d) // row = oy·M + kx
    {
        const long long oy = row / M;
        const int kx = (int) (row % M);
        float acc = 0.0f;
        for (int ox = 0; ox < w0; ox++) {
            bool touched;
            const float w = tap_weight(tx[ox], kx, &touched);
            if (touched) acc += w * ddst[(oy * w0 + ox) * ldd + c];
        }
        tmp[row * d + c] = acc;
    }
}

// Backward pass 2 (rows): dsrc[ky·M + kx, c] += Σ_oy Wy[oy, ky] · tmp[oy, kx, c].
__global__ void pos_resample_bwd_rows_kernel(float *dsrc, int lds, const float *tmp,
                                             const cubic_taps *ty, int M, int h0, long long rows,
                                             int d)
{
    POA_RC_LOOP(row, c, rows, d) // row = ky·M + kx
    {
        const int ky = (int) (row / M), kx = (int) (row % M);
        float acc = 0.0f;
        for (int oy = 0; oy < h0; oy++) {
            bool touched;
            const float w = tap_weight(ty[oy], ky, &touched);
            if (touched) acc += w * tmp[((long long) oy * M + kx) * d + c];
        }
        dsrc[row * lds + c] += acc;
    }
}

extern "C" void poa_cuda_pos_resample_fwd(poa_backend *be, float *dst, int ldd, const float *src,
                                          int lds, int M, int h0, int w0, int d)
{
    POA_CHECK(M > 0, "pos_resample_fwd: source grid side %d", M);
    if (h0 <= 0 || w0 <= 0 || d <= 0) return;
    const resample_scratch rs = resample_plan(be, M, h0, w0, 0);
    const long long outputs = (long long) h0 * w0;
    const poa_rc_launch l = poa_rc_geometry(outputs, d);
    pos_resample_fwd_kernel<<<l.grid, l.block, 0, poa_cuda_stream(be)>>>(dst, ldd, src, lds, rs.ty,
                                                                         rs.tx, M, w0, outputs, d);
    POA_CUDA_LAUNCHED("pos_resample_fwd_kernel");
}

extern "C" void poa_cuda_pos_resample_bwd(poa_backend *be, float *dsrc, int lds, const float *ddst,
                                          int ldd, int M, int h0, int w0, int d)
{
    POA_CHECK(M > 0, "pos_resample_bwd: source grid side %d", M);
    if (h0 <= 0 || w0 <= 0 || d <= 0) return;
    const long long tmp_rows = (long long) h0 * M, src_rows = (long long) M * M;
    const resample_scratch rs = resample_plan(be, M, h0, w0, (size_t) tmp_rows * d);
    const cudaStream_t s = poa_cuda_stream(be);
    const poa_rc_launch l1 = poa_rc_geometry(tmp_rows, d);
    pos_resample_bwd_cols_kernel<<<l1.grid, l1.block, 0, s>>>(rs.tmp, ddst, ldd, rs.tx, M, w0,
                                                              tmp_rows, d);
    POA_CUDA_LAUNCHED("pos_resample_bwd_cols_kernel");
    const poa_rc_launch l2 = poa_rc_geometry(src_rows, d);
    pos_resample_bwd_rows_kernel<<<l2.grid, l2.block, 0, s>>>(dsrc, lds, rs.tmp, rs.ty, M, h0,
                                                              src_rows, d);
    POA_CUDA_LAUNCHED("pos_resample_bwd_rows_kernel");
}

// ---------------------------------------------------------------- row gather / scatter
// dst[i, :cols] = src[idx[i], :cols] (D and S: compute dtype or fp32).  VEC (D == S, rows
// 16-byte aligned, cols a whole number of 16-byte chunks): one chunk per thread step, each
// element converted as on the scalar path, so the bits do not depend on the path.  The drop-path
// subsets gather and scatter every branch's rows (src/model/vit.c), a memory-bound pass each.
template <typename D, typename S, bool VEC>
__global__ void gather_rows_kernel(D *dst, int ldd, const S *src, int lds, const int32_t *idx,
                                   int n, int cols)
{
    if constexpr (VEC) {
        constexpr int N = poa_chunk_width<D>::value;
        POA_RC_LOOP(i, q, n, cols / N)
        {
            float f[N];
            chunk_load_vec<N>(f, src + (long long) idx[i] * lds + q * N);
            chunk_store_vec<N>(dst + i * ldd + q * N, f);
        }
    } else {
        POA_RC_LOOP(i, c, n, cols)
        {
            dst[i * ldd + c] = from_f32<D>(to_f32(src[(long long) idx[i] * lds + c]));
        }
    }
}

// dst[idx[i], :cols] += src[i, :cols] in fp32; the indices are distinct, so each destination
// element has one writer.  VEC as gather_rows_kernel.
template <typename D, typename S, bool VEC>
__global__ void scatter_add_rows_kernel(D *dst, int ldd, const S *src, int lds, const int32_t *idx,
                                        int n, int cols)
{
    if constexpr (VEC) {
        constexpr int N = poa_chunk_width<D>::value;
        POA_RC_LOOP(i, q, n, cols / N)
        {
            D *p = dst + (long long) idx[i] * ldd + q * N;
            float f[N], g[N];
            chunk_load_vec<N>(f, p);
            chunk_load_vec<N>(g, src + i * lds + q * N);
#pragma unroll
            for (int j = 0; j < N; j++) f[j] = f[j] + g[j];
            chunk_store_vec<N>(p, f);
        }
    } else {
        POA_RC_LOOP(i, c, n, cols)
        {
            D *p = dst + (long long) idx[i] * ldd + c;
            *p = from_f32<D>(to_f32(*p) + to_f32(src[i * lds + c]));
        }
    }
}

// Whether a row copy or add can take the vector path: D == S (checked at compile time by the
// callers), rows 16-byte aligned, cols a whole number of chunks.
template <typename D>
static bool rows_vec_ok(const D *dst, int ldd, const D *src, int lds, int cols)
{
    return cols % poa_chunk_width<D>::value == 0 && chunk_rows_aligned(dst, ldd, sizeof(D)) &&
           chunk_rows_aligned(src, lds, sizeof(D));
}

template <typename D, typename S>
static void launch_gather(const poa_backend *be, D *dst, int ldd, const S *src, int lds,
                          const int32_t *idx, int n, int cols)
{
    if (n <= 0 || cols <= 0) return;
    if constexpr (std::is_same<D, S>::value) {
        if (rows_vec_ok(dst, ldd, src, lds, cols)) {
            const poa_rc_launch l = poa_rc_geometry(n, cols / poa_chunk_width<D>::value);
            gather_rows_kernel<D, S, true>
                <<<l.grid, l.block, 0, poa_cuda_stream(be)>>>(dst, ldd, src, lds, idx, n, cols);
            POA_CUDA_LAUNCHED("gather_rows_kernel");
            return;
        }
    }
    const poa_rc_launch l = poa_rc_geometry(n, cols);
    gather_rows_kernel<D, S, false>
        <<<l.grid, l.block, 0, poa_cuda_stream(be)>>>(dst, ldd, src, lds, idx, n, cols);
    POA_CUDA_LAUNCHED("gather_rows_kernel");
}

template <typename D, typename S>
static void launch_scatter_add(const poa_backend *be, D *dst, int ldd, const S *src, int lds,
                               const int32_t *idx, int n, int cols)
{
    if (n <= 0 || cols <= 0) return;
    if constexpr (std::is_same<D, S>::value) {
        if (rows_vec_ok(dst, ldd, src, lds, cols)) {
            const poa_rc_launch l = poa_rc_geometry(n, cols / poa_chunk_width<D>::value);
            scatter_add_rows_kernel<D, S, true>
                <<<l.grid, l.block, 0, poa_cuda_stream(be)>>>(dst, ldd, src, lds, idx, n, cols);
            POA_CUDA_LAUNCHED("scatter_add_rows_kernel");
            return;
        }
    }
    const poa_rc_launch l = poa_rc_geometry(n, cols);
    scatter_add_rows_kernel<D, S, false>
        <<<l.grid, l.block, 0, poa_cuda_stream(be)>>>(dst, ldd, src, lds, idx, n, cols);
    POA_CUDA_LAUNCHED("scatter_add_rows_kernel");
}

extern "C" void poa_cuda_act_gather_rows(poa_backend *be, poa_act *dst, int ldd, const poa_act *src,
                                         int lds, const int32_t *idx, int n, int cols)
{
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        launch_gather<T, T>(be, act_ptr<T>(dst), ldd, act_ptr<T>(src), lds, idx, n, cols);
    });
}

extern "C" void poa_cuda_act_scatter_add_rows(poa_backend *be, poa_act *dst, int ldd,
                                              const poa_act *src, int lds, const int32_t *idx,
                                              int n, int cols)
{
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        launch_scatter_add<T, T>(be, act_ptr<T>(dst), ldd, act_ptr<T>(src), lds, idx, n, cols);
    });
}

extern "C" void poa_cuda_act_gather_rows_f32(poa_backend *be, float *dst, int ldd,
                                             const poa_act *src, int lds, const int32_t *idx, int n,
                                             int cols)
{
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        launch_gather<float, T>(be, dst, ldd, act_ptr<T>(src), lds, idx, n, cols);
    });
}

extern "C" void poa_cuda_act_scatter_add_rows_f32(poa_backend *be, poa_act *dst, int ldd,
                                                  const float *src, int lds, const int32_t *idx,
                                                  int n, int cols)
{
    POA_CUDA_DISPATCH_ACT(be, [&](auto tag) {
        using T = decltype(tag);
        launch_scatter_add<T, float>(be, act_ptr<T>(dst), ldd, src, lds, idx, n, cols);
    });
}
