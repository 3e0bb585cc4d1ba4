// cuda_norm_loss_check.cu — standalone GPU check of the CUDA backend's norm, loss and optimizer
// kernels (src/backend/cuda/cuda_norm.cu, cuda_loss.cu, cuda_optim.cu) against double
// references written from backend.h, independent of the rest of the CUDA backend (it builds
// its own minimal backend: a stream and the fixed reduction scratch).  Besides accuracy it
// checks the properties those files promise: the same bits run after run, the same bits for
// aligned and misaligned tensors (vector vs scalar path), untouched padding columns and
// segments, and AdamW/EMA bit-identical to the CPU backend's fp32 arithmetic.
//
// Build and run from the repository root (needs a GPU; exit status 0 when every check passes,
// 1 otherwise, 77 without a device), one command per line:
//   nvcc -std=c++17 -O2 -Xcompiler -ffp-contract=off -gencode arch=compute_80,code=sm_80
//        -gencode arch=compute_90,code=sm_90 -I src -o /tmp/cuda_norm_loss_check
//        tests/gpu/cuda_norm_loss_check.cu src/backend/cuda/cuda_norm.cu
//        src/backend/cuda/cuda_loss.cu src/backend/cuda/cuda_optim.cu
//   /tmp/cuda_norm_loss_check
//   compute-sanitizer --tool memcheck /tmp/cuda_norm_loss_check
// It is not part of `make check` (it links the three kernel files alone, with its own
// poa_fatal_at); the backend-generic op tests cover the same ops through the op tables.
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_ops.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <initializer_list>
#include <vector>

// ------------------------------------------------------------------ the fatal path the ops use
extern "C" void poa_fatal_at(const char *file, int line, const char *func, const char *expr,
                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d %s: %s -> ", file, line, func, expr ? expr : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d %s -> %s\n", __FILE__, __LINE__, #call,                         \
                    cudaGetErrorString(e_));                                                       \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

static int failures, checks;

static void report(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    checks++;
    if (!ok) failures++;
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

// ------------------------------------------------------------------ host helpers
static uint64_t rng_state = 88172645463325252ull;
static double urand() // [0, 1)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double) (rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static std::vector<float> uniform(size_t n, float lo, float hi)
{
    std::vector<float> v(n);
    for (auto &x : v) x = (float) (lo + (hi - lo) * urand());
    return v;
}

static uint16_t bf16_bits(float x) // round to nearest even
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return (uint16_t) ((u >> 16) | ((u & 0xffff) ? 64 : 0));
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t) (u >> 16);
}
static float bf16_value(uint16_t b)
{
    uint32_t u = (uint32_t) b << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static const char *dtype_name(poa_dtype t)
{
    return t == POA_DT_BF16 ? "bf16" : "fp32";
}

static bool same_bits(const void *a, const void *b, size_t bytes)
{
    return memcmp(a, b, bytes) == 0;
}

// Norm-wise relative error ||got − want|| / max(||want||, 1e-30).
static double rel_err(const float *got, const double *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double) got[i] - want[i];
        num += d * d, den += want[i] * want[i];
    }
    return sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);
}
static double rel_scalar(double got, double want)
{
    return fabs(got - want) / (fabs(want) > 1e-30 ? fabs(want) : 1e-30);
}

// ------------------------------------------------------------------ a minimal CUDA backend
static poa_backend *make_backend(poa_dtype dt)
{
    cuda_impl *im = (cuda_impl *) calloc(1, sizeof *im);
    CK(cudaStreamCreate(&im->stream));
    CK(cudaMalloc(&im->scratch, POA_CUDA_SCRATCH_BYTES));
    CK(cudaDeviceGetAttribute(&im->sm_count, cudaDevAttrMultiProcessorCount, 0));
    im->act = dt;
    poa_backend *be = (poa_backend *) calloc(1, sizeof *be);
    be->name = "cuda";
    be->act_dtype = dt;
    be->act_size = dt == POA_DT_BF16 ? 2 : 4;
    be->impl = im;
    return be;
}
static void sync(poa_backend *be)
{
    CK(cudaStreamSynchronize(poa_cuda_impl(be)->stream));
}

static void release(std::initializer_list<void *> ps)
{
    for (void *p : ps) CK(cudaFree(p));
}

template <typename T> static T *dev(size_t n)
{
    void *p = NULL;
    CK(cudaMalloc(&p, (n ? n : 1) * sizeof(T) + 64));
    return (T *) p;
}
template <typename T> static void up(T *d, const std::vector<T> &h)
{
    CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
}
template <typename T> static std::vector<T> down(poa_backend *be, const T *d, size_t n)
{
    sync(be);
    std::vector<T> h(n);
    CK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

// Activations: n values at element offset `off` of a fresh buffer (off = 1 misaligns it).
struct act_buf {
    void *base;
    size_t esz;
    poa_act *at(size_t off) const
    {
        return (poa_act *) ((char *) base + off * esz);
    }
};
static act_buf act_alloc(poa_backend *be, size_t n)
{
    act_buf a;
    a.esz = be->act_size;
    CK(cudaMalloc(&a.base, (n + 8) * a.esz));
    return a;
}
// The values as the device stores them (bf16-rounded for bf16).
static std::vector<float> act_round(poa_backend *be, std::vector<float> v)
{
    if (be->act_dtype == POA_DT_BF16)
        for (auto &x : v) x = bf16_value(bf16_bits(x));
    return v;
}
static void act_up(poa_backend *be, poa_act *d, const std::vector<float> &h)
{
    if (be->act_dtype == POA_DT_F32) {
        CK(cudaMemcpy(d, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
    } else {
        std::vector<uint16_t> b(h.size());
        for (size_t i = 0; i < h.size(); i++) b[i] = bf16_bits(h[i]);
        CK(cudaMemcpy(d, b.data(), b.size() * 2, cudaMemcpyHostToDevice));
    }
}
static std::vector<float> act_down(poa_backend *be, const poa_act *d, size_t n)
{
    sync(be);
    std::vector<float> h(n);
    if (be->act_dtype == POA_DT_F32) {
        CK(cudaMemcpy(h.data(), d, n * 4, cudaMemcpyDeviceToHost));
    } else {
        std::vector<uint16_t> b(n);
        CK(cudaMemcpy(b.data(), d, n * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; i++) h[i] = bf16_value(b[i]);
    }
    return h;
}

// ------------------------------------------------------------------ LayerNorm
static void ref_layernorm(const std::vector<float> &x, int ld, const std::vector<float> &w,
                          const std::vector<float> &b, int rows, int d, double eps,
                          std::vector<double> &y, std::vector<double> &mean,
                          std::vector<double> &rstd)
{
    y.assign((size_t) rows * d, 0), mean.assign(rows, 0), rstd.assign(rows, 0);
    for (int r = 0; r < rows; r++) {
        double mu = 0, var = 0;
        for (int c = 0; c < d; c++) mu += x[(size_t) r * ld + c];
        mu /= d;
        for (int c = 0; c < d; c++) var += pow(x[(size_t) r * ld + c] - mu, 2);
        var /= d;
        mean[r] = mu, rstd[r] = 1 / sqrt(var + eps);
        for (int c = 0; c < d; c++)
            y[(size_t) r * d + c] = (x[(size_t) r * ld + c] - mu) * rstd[r] * w[c] + b[c];
    }
}

static void ref_layernorm_bwd(const std::vector<float> &dy, const std::vector<float> &x, int ld,
                              const std::vector<float> &w, int rows, int d, double eps,
                              std::vector<double> &dx, std::vector<double> &dw,
                              std::vector<double> &db)
{
    dx.assign((size_t) rows * d, 0), dw.assign(d, 0), db.assign(d, 0);
    for (int r = 0; r < rows; r++) {
        double mu = 0, var = 0, mg = 0, mgx = 0;
        for (int c = 0; c < d; c++) mu += x[(size_t) r * ld + c];
        mu /= d;
        for (int c = 0; c < d; c++) var += pow(x[(size_t) r * ld + c] - mu, 2);
        const double rs = 1 / sqrt(var / d + eps);
        for (int c = 0; c < d; c++) {
            const double xh = (x[(size_t) r * ld + c] - mu) * rs, g = dy[(size_t) r * ld + c];
            mg += g * w[c] / d, mgx += g * w[c] * xh / d;
            dw[c] += g * xh, db[c] += g;
        }
        for (int c = 0; c < d; c++) {
            const double xh = (x[(size_t) r * ld + c] - mu) * rs;
            // the product in double: a float product here is off by ~1e-8·rstd, which is the
            // whole answer when d = 1 (dx is exactly 0 there)
            dx[(size_t) r * d + c] = rs * ((double) dy[(size_t) r * ld + c] * w[c] - mg - xh * mgx);
        }
    }
}

static std::vector<float> strip(const std::vector<float> &a, int rows, int d, int ld)
{
    std::vector<float> o((size_t) rows * d);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < d; c++) o[(size_t) r * d + c] = a[(size_t) r * ld + c];
    return o;
}
static bool pad_untouched(const std::vector<float> &a, const std::vector<float> &orig, int rows,
                          int d, int ld)
{
    for (int r = 0; r < rows; r++)
        for (int c = d; c < ld; c++)
            if (!same_bits(&a[(size_t) r * ld + c], &orig[(size_t) r * ld + c], 4)) return false;
    return true;
}

static void check_layernorm(poa_backend *be, int rows, int d, int ld)
{
    const char *dt = dtype_name(be->act_dtype);
    const bool bf = be->act_dtype == POA_DT_BF16;
    const double tol_act = bf ? 8e-3 : 2e-5, tol_par = bf ? 2e-4 : 2e-5;
    const float eps = 1e-6f;
    const size_t n = (size_t) rows * ld;
    auto x = act_round(be, uniform(n, -2, 3)), dy = act_round(be, uniform(n, -1, 1));
    auto y0 = act_round(be, uniform(n, -5, 5)), dx0 = act_round(be, uniform(n, -1, 1));
    auto w = uniform(d, 0.5f, 1.5f), b = uniform(d, -0.5f, 0.5f);
    auto dw0 = uniform(d, -1, 1), db0 = uniform(d, -1, 1);

    act_buf xa = act_alloc(be, n), ya = act_alloc(be, n), dya = act_alloc(be, n),
            dxa = act_alloc(be, n);
    float *dw_ = dev<float>(d), *db_ = dev<float>(d), *w_ = dev<float>(d), *b_ = dev<float>(d);
    float *mean = dev<float>(rows), *rstd = dev<float>(rows);
    up(w_, w), up(b_, b);

    // forward, aligned, then the same at a one-element offset (scalar path): same bits
    std::vector<float> yv[2], mv[2], rv[2];
    for (int off = 0; off < 2; off++) {
        act_up(be, xa.at(off), x), act_up(be, ya.at(off), y0);
        poa_cuda_layernorm_fwd(be, ya.at(off), ld, mean, rstd, xa.at(off), ld, w_, b_, rows, d,
                               eps);
        yv[off] = act_down(be, ya.at(off), n);
        mv[off] = down(be, mean, rows), rv[off] = down(be, rstd, rows);
    }
    std::vector<double> yr, mr, rr;
    ref_layernorm(x, ld, w, b, rows, d, eps, yr, mr, rr);
    const double e_y = rel_err(strip(yv[0], rows, d, ld).data(), yr.data(), (size_t) rows * d);
    const double e_m = rel_err(mv[0].data(), mr.data(), rows);
    const double e_r = rel_err(rv[0].data(), rr.data(), rows);
    report(e_y <= tol_act && e_m <= 1e-6 && e_r <= 1e-5,
           "layernorm_fwd %s rows %d d %d ld %d: y %.2e mean %.2e rstd %.2e", dt, rows, d, ld, e_y,
           e_m, e_r);
    report(pad_untouched(yv[0], y0, rows, d, ld), "layernorm_fwd %s: columns d..ld-1 untouched",
           dt);
    report(same_bits(yv[0].data(), yv[1].data(), n * 4) &&
               same_bits(mv[0].data(), mv[1].data(), rows * 4) &&
               same_bits(rv[0].data(), rv[1].data(), rows * 4),
           "layernorm_fwd %s: aligned and misaligned give the same bits", dt);

    // backward: every combination of dx (=, +=, NULL), dw, db; twice for the bits
    std::vector<double> dxr, dwr, dbr;
    ref_layernorm_bwd(dy, x, ld, w, rows, d, eps, dxr, dwr, dbr);
    act_up(be, xa.at(0), x), act_up(be, dya.at(0), dy);
    poa_cuda_layernorm_fwd(be, ya.at(0), ld, mean, rstd, xa.at(0), ld, w_, b_, rows, d, eps);
    for (int mode = 0; mode < 3; mode++)
        for (int pm = 0; pm < 4; pm++) {
            const bool want_dx = mode < 2, want_dw = pm & 1, want_db = pm & 2;
            std::vector<float> got_dx[2], got_dw[2], got_db[2];
            for (int rep = 0; rep < 2; rep++) {
                act_up(be, dxa.at(0), dx0), up(dw_, dw0), up(db_, db0);
                poa_cuda_layernorm_bwd(be, want_dx ? dxa.at(0) : NULL, ld, mode == 1 ? 1.0f : 0.0f,
                                       want_dw ? dw_ : NULL, want_db ? db_ : NULL, dya.at(0), ld,
                                       xa.at(0), ld, mean, rstd, w_, rows, d);
                got_dx[rep] = act_down(be, dxa.at(0), n);
                got_dw[rep] = down(be, dw_, d), got_db[rep] = down(be, db_, d);
            }
            std::vector<double> wdx((size_t) rows * d), wdw(d), wdb(d);
            for (size_t i = 0; i < wdx.size(); i++) {
                const size_t r = i / (d ? d : 1), c = i % (d ? d : 1);
                const double base = dx0[r * ld + c];
                wdx[i] = !want_dx ? base : mode == 1 ? base + dxr[i] : dxr[i];
            }
            for (int c = 0; c < d; c++) {
                wdw[c] = dw0[c] + (want_dw ? dwr[c] : 0);
                wdb[c] = db0[c] + (want_db ? dbr[c] : 0);
            }
            const double e_dx =
                rel_err(strip(got_dx[0], rows, d, ld).data(), wdx.data(), wdx.size());
            const double e_dw = rel_err(got_dw[0].data(), wdw.data(), d);
            const double e_db = rel_err(got_db[0].data(), wdb.data(), d);
            const bool same = same_bits(got_dx[0].data(), got_dx[1].data(), n * 4) &&
                              same_bits(got_dw[0].data(), got_dw[1].data(), d * 4) &&
                              same_bits(got_db[0].data(), got_db[1].data(), d * 4);
            report(e_dx <= (mode == 1 ? tol_act * 2 : tol_act) && e_dw <= tol_par &&
                       e_db <= tol_par && same && pad_untouched(got_dx[0], dx0, rows, d, ld),
                   "layernorm_bwd %s rows %d d %d ld %d dx %s dw %d db %d: dx %.2e dw %.2e db "
                   "%.2e, repeat %s",
                   dt, rows, d, ld,
                   mode == 0   ? "="
                   : mode == 1 ? "+="
                               : "NULL",
                   want_dw, want_db, e_dx, e_dw, e_db, same ? "same bits" : "DIFFERENT BITS");
        }
    release({xa.base, ya.base, dya.base, dxa.base});
    release({dw_, db_, w_, b_, mean, rstd});
}

// ------------------------------------------------------------------ L2 norm, weight norm
static void check_l2norm(poa_backend *be, int rows, int cols, int ld)
{
    const float eps = 1e-12f;
    const size_t n = (size_t) rows * ld;
    auto x = uniform(n, -1, 1), dy = uniform(n, -1, 1);
    if (rows > 1)
        for (int c = 0; c < ld; c++) x[c] = 0; // row 0 below eps: the clamp
    float *x_ = dev<float>(n), *y_ = dev<float>(n), *dy_ = dev<float>(n), *dx_ = dev<float>(n);
    float *nrm = dev<float>(rows);
    auto y0 = uniform(n, 5, 6);
    up(x_, x), up(dy_, dy), up(y_, y0), up(dx_, y0);
    poa_cuda_l2norm_fwd(be, y_, ld, nrm, x_, ld, rows, cols, eps);
    poa_cuda_l2norm_bwd(be, dx_, ld, dy_, ld, x_, ld, nrm, rows, cols, eps);
    auto y = down(be, y_, n), dx = down(be, dx_, n), gn = down(be, nrm, rows);
    std::vector<double> wy((size_t) rows * cols), wdx((size_t) rows * cols), wn(rows);
    for (int r = 0; r < rows; r++) {
        double s = 0, dot = 0;
        for (int c = 0; c < cols; c++) s += pow(x[(size_t) r * ld + c], 2);
        const double nr = sqrt(s), den = nr > eps ? nr : eps;
        wn[r] = nr;
        for (int c = 0; c < cols; c++)
            dot += (double) x[(size_t) r * ld + c] * dy[(size_t) r * ld + c];
        for (int c = 0; c < cols; c++) {
            const size_t i = (size_t) r * ld + c;
            wy[(size_t) r * cols + c] = x[i] / den;
            wdx[(size_t) r * cols + c] =
                nr >= eps ? dy[i] / nr - x[i] * dot / (nr * nr * nr) : dy[i] / eps;
        }
    }
    // the clamped zero row (rows > 1) exactly: y = 0, dx = dy / eps in fp32; the others to
    // rounding
    const int r0 = rows > 1 ? 1 : 0;
    bool clamp_ok = true;
    for (int c = 0; r0 == 1 && c < cols; c++) {
        const float want_dx = dy[c] / eps;
        clamp_ok &= y[c] == 0.0f && same_bits(&dx[c], &want_dx, 4) && gn[0] == 0.0f;
    }
    const size_t skip = (size_t) r0 * cols, rest = (size_t) (rows - r0) * cols;
    const double ey = rel_err(strip(y, rows, cols, ld).data() + skip, wy.data() + skip, rest);
    const double ed = rel_err(strip(dx, rows, cols, ld).data() + skip, wdx.data() + skip, rest);
    const double en = rel_err(gn.data() + r0, wn.data() + r0, rows - r0);
    report(ey <= 1e-6 && ed <= 1e-6 && en <= 1e-6 && clamp_ok &&
               pad_untouched(y, y0, rows, cols, ld) && pad_untouched(dx, y0, rows, cols, ld),
           "l2norm rows %d cols %d ld %d: y %.2e dx %.2e norms %.2e, clamped row exact %d", rows,
           cols, ld, ey, ed, en, clamp_ok);
    release({x_, y_, dy_, dx_, nrm});
}

static void check_weightnorm(poa_backend *be, int K, int C)
{
    const size_t n = (size_t) K * C;
    auto v = uniform(n, -1, 1), dW = uniform(n, -1, 1), g = uniform(K, 0.5f, 2);
    auto dg0 = uniform(K, -1, 1), dv0 = uniform(n, -1, 1);
    float *v_ = dev<float>(n), *W_ = dev<float>(n), *dW_ = dev<float>(n), *dv_ = dev<float>(n);
    float *g_ = dev<float>(K), *vn = dev<float>(K), *dg_ = dev<float>(K);
    up(v_, v), up(dW_, dW), up(g_, g);
    poa_cuda_weightnorm_fwd(be, W_, vn, g_, v_, K, C);
    auto W = down(be, W_, n);
    std::vector<double> wW(n), wdg(K), wdv(n);
    for (int k = 0; k < K; k++) {
        double s = 0, dot = 0;
        for (int c = 0; c < C; c++) s += pow(v[(size_t) k * C + c], 2);
        const double nr = sqrt(s);
        for (int c = 0; c < C; c++) dot += (double) dW[(size_t) k * C + c] * v[(size_t) k * C + c];
        wdg[k] = dg0[k] + dot / nr;
        for (int c = 0; c < C; c++) {
            const size_t i = (size_t) k * C + c;
            wW[i] = g[k] * v[i] / nr;
            wdv[i] = dv0[i] + g[k] * dW[i] / nr - g[k] * dot / (nr * nr * nr) * v[i];
        }
    }
    const double eW = rel_err(W.data(), wW.data(), n);
    for (int pm = 1; pm < 4; pm++) {
        up(dg_, dg0), up(dv_, dv0);
        poa_cuda_weightnorm_bwd(be, pm & 1 ? dg_ : NULL, pm & 2 ? dv_ : NULL, dW_, g_, v_, vn, K,
                                C);
        auto dg = down(be, dg_, K), dv = down(be, dv_, n);
        const double eg = (pm & 1) ? rel_err(dg.data(), wdg.data(), K) : 0;
        const double ev = (pm & 2) ? rel_err(dv.data(), wdv.data(), n) : 0;
        const bool kept = ((pm & 1) || same_bits(dg.data(), dg0.data(), K * 4)) &&
                          ((pm & 2) || same_bits(dv.data(), dv0.data(), n * 4));
        report(eW <= 1e-6 && eg <= 1e-6 && ev <= 1e-6 && kept,
               "weightnorm K %d C %d dg %d dv %d: W %.2e dg %.2e dv %.2e", K, C, pm & 1, pm >> 1,
               eW, eg, ev);
    }
    release({v_, W_, dW_, dv_, g_, vn, dg_});
}

// ------------------------------------------------------------------ sum of squares
static void check_sum_squares(poa_backend *be, size_t n)
{
    auto x = uniform(n, -3, 3);
    float *x_ = dev<float>(n + 1);
    double *out = dev<double>(1);
    up(x_, x);
    double want = 0;
    for (float v : x) want += (double) v * v;
    double got[2];
    for (int rep = 0; rep < 2; rep++) {
        poa_cuda_sum_squares(be, out, x_, n);
        got[rep] = down(be, out, 1)[0];
    }
    report(rel_scalar(got[0], want) <= 1e-12 && same_bits(&got[0], &got[1], 8),
           "sum_squares n %zu: rel %.2e, repeat same bits %d", n, rel_scalar(got[0], want),
           same_bits(&got[0], &got[1], 8));
    // a NaN makes it non-finite
    if (n > 0) {
        float nan = NAN;
        CK(cudaMemcpy(x_ + n / 2, &nan, 4, cudaMemcpyHostToDevice));
        poa_cuda_sum_squares(be, out, x_, n);
        report(!isfinite(down(be, out, 1)[0]), "sum_squares n %zu: a NaN gives a non-finite sum",
               n);
    }
    release({x_, out});
}

// ------------------------------------------------------------------ softmax, cross-entropy
static void ref_softmax_row(const float *x, int K, double inv_tau, double *p, double *lse)
{
    double mx = -INFINITY, s = 0;
    for (int k = 0; k < K; k++) mx = fmax(mx, x[k] * inv_tau);
    for (int k = 0; k < K; k++) s += exp(x[k] * inv_tau - mx);
    for (int k = 0; k < K; k++) p[k] = exp(x[k] * inv_tau - mx) / s;
    *lse = mx + log(s);
}

static void check_softmax(poa_backend *be, int n, int K, int ld)
{
    const size_t sz = (size_t) n * ld;
    auto x = uniform(sz, -2, 2), y0 = uniform(sz, 7, 8);
    float *x_ = dev<float>(sz + 1), *y_ = dev<float>(sz + 1);
    std::vector<double> want((size_t) n * K);
    for (int i = 0; i < n; i++) {
        double lse;
        ref_softmax_row(&x[(size_t) i * ld], K, 10.0, &want[(size_t) i * K], &lse);
    }
    std::vector<float> got[2];
    for (int off = 0; off < 2; off++) {
        up(x_ + off, x), up(y_ + off, y0);
        poa_cuda_softmax_rows(be, y_ + off, ld, x_ + off, ld, n, K, 10.0f);
        got[off] = down(be, y_ + off, sz);
    }
    const double e = rel_err(strip(got[0], n, K, ld).data(), want.data(), want.size());
    report(e <= 1e-6 && pad_untouched(got[0], y0, n, K, ld) &&
               same_bits(got[0].data(), got[1].data(), sz * 4),
           "softmax_rows n %d K %d ld %d: %.2e (aligned = misaligned bits: %d)", n, K, ld, e,
           same_bits(got[0].data(), got[1].data(), sz * 4));
    release({x_, y_});
}

struct xent_case {
    int n, K, ld, t_period, t_shift, use_w, use_loss, use_ds;
    float inv_tau, loss_scale, grad_scale;
};

static void check_xent(poa_backend *be, const xent_case &c)
{
    const size_t sz = (size_t) c.n * c.ld;
    auto s = uniform(sz, -1, 1), w = uniform(c.n, 0.1f, 1);
    std::vector<float> t((size_t) c.t_period * c.ld);
    for (int i = 0; i < c.t_period; i++) { // target rows: softmax of random logits
        auto raw = uniform(c.K, -3, 3);
        std::vector<double> p(c.K);
        double lse;
        ref_softmax_row(raw.data(), c.K, 1.0, p.data(), &lse);
        for (int k = 0; k < c.ld; k++) t[(size_t) i * c.ld + k] = k < c.K ? (float) p[k] : NAN;
    }
    // reference: loss and gradient in double
    double want_loss = 0;
    std::vector<double> want_ds(sz), p(c.K);
    for (int i = 0; i < c.n; i++) {
        const float *si = &s[(size_t) i * c.ld];
        const float *ti = &t[(size_t) ((i + c.t_shift) % c.t_period) * c.ld];
        const double wi = c.use_w ? w[i] : 1.0;
        double lse, ce = 0, tsum = 0;
        ref_softmax_row(si, c.K, c.inv_tau, p.data(), &lse);
        for (int k = 0; k < c.K; k++)
            ce -= ti[k] * (si[k] * (double) c.inv_tau - lse), tsum += ti[k];
        want_loss += wi * ce;
        for (int k = 0; k < c.ld; k++)
            want_ds[(size_t) i * c.ld + k] =
                0.25 +
                (k < c.K ? (double) c.grad_scale * wi * c.inv_tau * (p[k] * tsum - ti[k]) : 0);
    }
    want_loss = 1.5 + c.loss_scale * want_loss;

    float *s_ = dev<float>(sz + 1), *t_ = dev<float>(t.size() + 1), *w_ = dev<float>(c.n + 1);
    float *ds_ = dev<float>(sz + 1);
    double *loss_ = dev<double>(1);
    std::vector<float> got_ds[3];
    double got_loss[3];
    for (int run = 0; run < 3; run++) { // 0, 1: aligned (twice); 2: misaligned
        const int off = run == 2;
        up(s_ + off, s), up(t_ + off, t), up(w_, w);
        up(ds_ + off, std::vector<float>(sz, 0.25f));
        up(loss_, std::vector<double>(1, 1.5));
        poa_cuda_xent(be, c.use_loss ? loss_ : NULL, c.use_ds ? ds_ + off : NULL, c.ld, s_ + off,
                      c.ld, t_ + off, c.ld, c.t_period, c.t_shift, c.use_w ? w_ : NULL, c.n, c.K,
                      c.inv_tau, c.loss_scale, c.grad_scale);
        got_ds[run] = down(be, ds_ + off, sz);
        got_loss[run] = down(be, loss_, 1)[0];
    }
    if (!c.use_loss) want_loss = 1.5;
    if (!c.use_ds)
        for (auto &v : want_ds) v = 0.25;
    const double el = rel_scalar(got_loss[0], want_loss);
    const double ed = rel_err(got_ds[0].data(), want_ds.data(), sz);
    const bool same = same_bits(&got_loss[0], &got_loss[1], 8) &&
                      same_bits(&got_loss[0], &got_loss[2], 8) &&
                      same_bits(got_ds[0].data(), got_ds[1].data(), sz * 4) &&
                      same_bits(got_ds[0].data(), got_ds[2].data(), sz * 4);
    report(el <= 1e-6 && ed <= 1e-5 && same,
           "xent n %d K %d ld %d period %d shift %d w %d loss %d ds %d: loss %.2e ds %.2e, "
           "repeat/misaligned %s",
           c.n, c.K, c.ld, c.t_period, c.t_shift, c.use_w, c.use_loss, c.use_ds, el, ed,
           same ? "same bits" : "DIFFERENT BITS");
    release({s_, t_, w_, ds_, loss_});
}

// ------------------------------------------------------------------ Sinkhorn-Knopp
// The official algorithm in double (no max subtraction), as the CPU backend's test.
static void ref_sk(std::vector<double> &T, const std::vector<float> &L, int R, int K,
                   double inv_tau, int iters)
{
    std::vector<double> Q((size_t) R * K);
    double tot = 0;
    for (int i = 0; i < R * K; i++) tot += Q[i] = exp(L[i] * inv_tau);
    for (auto &q : Q) q /= tot;
    for (int it = 0; it < iters; it++) {
        for (int k = 0; k < K; k++) {
            double s = 0;
            for (int r = 0; r < R; r++) s += Q[(size_t) r * K + k];
            for (int r = 0; r < R; r++) Q[(size_t) r * K + k] /= s * K;
        }
        for (int r = 0; r < R; r++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += Q[(size_t) r * K + k];
            for (int k = 0; k < K; k++) Q[(size_t) r * K + k] /= s * R;
        }
    }
    T.resize(Q.size());
    for (size_t i = 0; i < Q.size(); i++) T[i] = Q[i] * R;
}

static void check_sinkhorn(poa_backend *be, int R, int K)
{
    const size_t sz = (size_t) R * K;
    auto L = uniform(sz, -1, 1);
    std::vector<double> want;
    ref_sk(want, L, R, K, 25.0, 3);
    float *q_ = dev<float>(sz);
    double *mx = dev<double>(K), *ps = dev<double>(K), *rinv = dev<double>(K);
    std::vector<float> got[2];
    std::vector<double> gmx;
    for (int rep = 0; rep < 2; rep++) {
        up(q_, L);
        poa_cuda_col_max(be, mx, q_, K, R, K);
        gmx = down(be, mx, K);
        poa_cuda_sk_exp(be, q_, K, ps, q_, K, mx, R, K, 25.0f); // in place
        for (int it = 0; it < 3; it++)
            poa_cuda_sk_normalize(be, q_, K, it + 1 < 3 ? ps : NULL, ps, rinv, R, K);
        got[rep] = down(be, q_, sz);
    }
    bool max_exact = true;
    for (int k = 0; k < K; k++) {
        float m = -INFINITY;
        for (int r = 0; r < R; r++) m = L[(size_t) r * K + k] > m ? L[(size_t) r * K + k] : m;
        max_exact &= gmx[k] == (double) m;
    }
    const double e = rel_err(got[0].data(), want.data(), sz);
    report(e <= 1e-5 && max_exact && same_bits(got[0].data(), got[1].data(), sz * 4),
           "sinkhorn R %d K %d (3 iterations, in place): %.2e, col_max exact %d, repeat bits %d", R,
           K, e, max_exact, same_bits(got[0].data(), got[1].data(), sz * 4));
    release({q_, mx, ps, rinv});
}

// ------------------------------------------------------------------ KoLeo
// The CPU backend's definition in double: loss and the analytic gradient.
static double ref_koleo(const std::vector<float> &z, int ld, int n, int c, double gscale,
                        std::vector<double> &dz)
{
    const double eps = (double) 1e-8f;
    std::vector<double> x((size_t) n * c), nrm(n), dx((size_t) n * c, 0.0), coef(n);
    std::vector<int> nn(n);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < c; k++) s += pow(z[(size_t) i * ld + k], 2);
        nrm[i] = sqrt(s);
        const double den = nrm[i] > eps ? nrm[i] : eps;
        for (int k = 0; k < c; k++) x[(size_t) i * c + k] = z[(size_t) i * ld + k] / den;
    }
    double total = 0;
    for (int i = 0; i < n; i++) {
        int best = i == 0 ? 1 : 0;
        double bd = -INFINITY;
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            double d = 0;
            for (int k = 0; k < c; k++) d += x[(size_t) i * c + k] * x[(size_t) j * c + k];
            if (d > bd) bd = d, best = j;
        }
        nn[i] = best;
        double s = 0;
        for (int k = 0; k < c; k++)
            s += pow(x[(size_t) i * c + k] - x[(size_t) best * c + k] + eps, 2);
        const double dist = sqrt(s);
        total += -log(dist + eps);
        coef[i] = dist > 0 ? -gscale / n / ((dist + eps) * dist) : 0;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c; k++) {
            const double g = coef[i] * (x[(size_t) i * c + k] - x[(size_t) nn[i] * c + k] + eps);
            dx[(size_t) i * c + k] += g, dx[(size_t) nn[i] * c + k] -= g;
        }
    dz.assign((size_t) n * c, 0);
    for (int i = 0; i < n; i++) {
        const double den = nrm[i] > eps ? nrm[i] : eps;
        double proj = 0;
        if (nrm[i] >= eps) {
            for (int k = 0; k < c; k++) proj += dx[(size_t) i * c + k] * z[(size_t) i * ld + k];
            proj /= den * den * nrm[i];
        }
        for (int k = 0; k < c; k++)
            dz[(size_t) i * c + k] = dx[(size_t) i * c + k] / den - z[(size_t) i * ld + k] * proj;
    }
    return total / n;
}

static void check_koleo(poa_backend *be, int n, int c, int ld, bool identical)
{
    const size_t sz = (size_t) n * ld;
    auto z = uniform(sz, -1, 1);
    if (identical)
        for (int i = 0; i < n; i++)
            for (int k = 0; k < c; k++) z[(size_t) i * ld + k] = (float) (k + 1);
    std::vector<double> wdz;
    const double wl = ref_koleo(z, ld, n, c, 0.25, wdz);
    float *z_ = dev<float>(sz), *dz_ = dev<float>(sz);
    double *loss = dev<double>(1);
    void *scratch = NULL;
    CK(cudaMalloc(&scratch, poa_cuda_koleo_scratch_bytes(be, n, c)));
    up(z_, z);
    std::vector<float> got[2];
    double gl[2];
    for (int rep = 0; rep < 2; rep++) {
        up(dz_, std::vector<float>(sz, 0.0f));
        up(loss, std::vector<double>(1, 0.0));
        poa_cuda_koleo(be, loss, dz_, ld, z_, ld, n, c, 0.5f, 0.25f, scratch);
        got[rep] = down(be, dz_, sz);
        gl[rep] = down(be, loss, 1)[0];
    }
    const bool same = same_bits(got[0].data(), got[1].data(), sz * 4) && gl[0] == gl[1];
    if (identical) {
        bool finite = isfinite(gl[0]) && gl[0] > 5;
        for (float v : got[0]) finite &= isfinite(v);
        report(finite && same,
               "koleo n %d c %d identical rows: loss %.4g finite and large, dz finite", n, c,
               gl[0]);
    } else {
        const double el = rel_scalar(gl[0], 0.5 * wl);
        const double ed = rel_err(strip(got[0], n, c, ld).data(), wdz.data(), wdz.size());
        report(el <= 1e-6 && ed <= 1e-4 && same,
               "koleo n %d c %d ld %d: loss %.2e dz %.2e, repeat %s", n, c, ld, el, ed,
               same ? "same bits" : "DIFFERENT BITS");
    }
    release({z_, dz_, loss, scratch});
}

// ------------------------------------------------------------------ AdamW, EMA
// The CPU backend's scalar arithmetic (src/backend/cpu/cpu_train_optim.c), fp32, no FMA.
static void cpu_adamw(std::vector<float> &p, std::vector<float> &m, std::vector<float> &v,
                      const std::vector<float> &g, const std::vector<poa_optim_seg> &segs,
                      const poa_adamw_args &a)
{
    const double bc1 = 1.0 - pow(a.beta1, (double) a.step);
    const double bc2_sqrt = sqrt(1.0 - pow(a.beta2, (double) a.step));
    for (const auto &sg : segs) {
        const double lr = (sg.last_layer ? a.last_layer_lr : a.lr) * sg.lr_mult;
        const double wd = a.wd * sg.wd_mult;
        const float gs = a.grad_scale[sg.clip_group], decay = (float) (1.0 - lr * wd);
        const float b1 = (float) a.beta1, omb1 = (float) (1.0 - a.beta1), b2 = (float) a.beta2;
        const float omb2 = (float) (1.0 - a.beta2), bc2s = (float) bc2_sqrt, eps = (float) a.eps;
        const float neg_step = (float) (-(lr / bc1));
        for (uint64_t j = sg.offset; j < sg.offset + sg.numel; j++) {
            const float gi = g[j] * gs;
            const float mi = m[j] * b1 + omb1 * gi;
            const float vi = v[j] * b2 + omb2 * gi * gi;
            m[j] = mi, v[j] = vi;
            p[j] = p[j] * decay + neg_step * (mi / (sqrtf(vi) / bc2s + eps));
        }
    }
}

static void check_adamw(poa_backend *be)
{
    const int N = 100003;
    std::vector<poa_optim_seg> segs = {
        {0, 40, 0.5f, 1.0f, 0, 0},      // decayed, lr × 0.5, backbone clip group
        {48, 16, 1.0f, 0.0f, 0, 0},     // no weight decay
        {64, 32, 1.0f, 1.0f, 1, 1},     // last layer, head clip group
        {100, 99901, 1.0f, 1.0f, 0, 2}, // a large one, third group
        {100001, 1, 2.0f, 1.0f, 0, 0},  // a single element
    };
    auto p = uniform(N, -0.1f, 0.1f), m = std::vector<float>(N, 0.0f), v = m;
    float *p_ = dev<float>(N), *m_ = dev<float>(N), *v_ = dev<float>(N), *g_ = dev<float>(N);
    poa_optim_seg *s_ = dev<poa_optim_seg>(segs.size());
    act_buf pa = act_alloc(be, N);
    up(p_, p), up(m_, m), up(v_, v), up(s_, segs);
    auto pa0 = act_round(be, uniform(N, 5, 6));
    act_up(be, pa.at(0), pa0);
    bool bits = true;
    for (int step = 1; step <= 3; step++) {
        auto g = uniform(N, -0.01f, 0.01f);
        up(g_, g);
        poa_adamw_args a = {};
        a.lr = 1e-3 * step, a.last_layer_lr = step == 1 ? 0 : 2e-3, a.wd = 0.04;
        a.beta1 = 0.9, a.beta2 = 0.999, a.eps = 1e-8, a.step = step;
        a.grad_scale[0] = 1.0f, a.grad_scale[1] = 0.5f, a.grad_scale[2] = 0.75f;
        a.grad_scale[3] = 1.0f;
        cpu_adamw(p, m, v, g, segs, a);
        poa_cuda_adamw(be, p_, m_, v_, g_, s_, (int) segs.size(), &a, step == 3 ? pa.at(0) : NULL);
        bits &= same_bits(down(be, p_, N).data(), p.data(), (size_t) N * 4) &&
                same_bits(down(be, m_, N).data(), m.data(), (size_t) N * 4) &&
                same_bits(down(be, v_, N).data(), v.data(), (size_t) N * 4);
    }
    auto gpa = act_down(be, pa.at(0), N), gp = down(be, p_, N), pr = act_round(be, p);
    bool act_ok = true, pad_ok = true;
    for (int j = 0; j < N; j++) {
        bool in = false;
        for (const auto &sg : segs) in |= j >= (int) sg.offset && j < (int) (sg.offset + sg.numel);
        act_ok &= same_bits(&gpa[j], in ? &pr[j] : &pa0[j], 4);
        pad_ok &= same_bits(&gp[j], &p[j], 4); // p holds the initial values off the segments
    }
    report(bits, "adamw %s: params and moments bit-identical to the CPU arithmetic (3 steps)",
           dtype_name(be->act_dtype));
    report(act_ok && pad_ok,
           "adamw %s: param_act = rounded params on the segments, padding untouched",
           dtype_name(be->act_dtype));
    release({p_, m_, v_, g_, s_, pa.base});
}

static void check_ema(poa_backend *be, size_t n)
{
    auto t = uniform(n, -1, 1), s = uniform(n, -1, 1);
    float *t_ = dev<float>(n), *s_ = dev<float>(n);
    act_buf ta = act_alloc(be, n);
    up(t_, t), up(s_, s);
    const double mom = 0.9961;
    poa_cuda_ema(be, t_, s_, n, mom, ta.at(0));
    const float mf = (float) mom, one_m = (float) (1.0 - mom);
    for (size_t i = 0; i < n; i++) t[i] = t[i] * mf + one_m * s[i];
    auto got = down(be, t_, n), gact = act_down(be, ta.at(0), n);
    report(same_bits(got.data(), t.data(), n * 4) &&
               same_bits(gact.data(), act_round(be, t).data(), n * 4),
           "ema %s n %zu: bit-identical to the CPU arithmetic, t_act rounded",
           dtype_name(be->act_dtype), n);
    release({t_, s_, ta.base});
}

// ------------------------------------------------------------------ main

int main()
{
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    for (int dt = 0; dt < 2; dt++) {
        poa_backend *be = make_backend(dt ? POA_DT_BF16 : POA_DT_F32);
        const int ln_shapes[][3] = {{0, 8, 8},       {1, 1, 1},      {5, 7, 9},
                                    {37, 64, 64},    {3, 768, 776},  {2, 1000, 1003},
                                    {4, 4096, 4096}, {1031, 96, 104}};
        for (auto &s : ln_shapes) check_layernorm(be, s[0], s[1], s[2]);
        check_adamw(be);
        check_ema(be, 1000003);
        if (dt == 0) { // fp32-only ops: once
            check_l2norm(be, 1, 1, 1);
            check_l2norm(be, 9, 256, 256);
            check_l2norm(be, 5, 37, 41);
            check_weightnorm(be, 1, 1);
            check_weightnorm(be, 300, 256);
            check_weightnorm(be, 7, 13);
            check_sum_squares(be, 0);
            check_sum_squares(be, 1);
            check_sum_squares(be, 1000003);
            check_sum_squares(be, 5000000);
            check_softmax(be, 1, 1, 1);
            check_softmax(be, 7, 33, 40);
            check_softmax(be, 3, 1000, 1004);
            check_softmax(be, 2, 65536, 65536);
            const xent_case xc[] = {
                {6, 24, 28, 6, 0, 0, 1, 1, 10.0f, 1.0f, 1.0f},
                {6, 24, 28, 6, 3, 1, 1, 1, 10.0f, 0.5f, 0.125f},
                {6, 24, 28, 2, 1, 0, 1, 1, 4.0f, 1.0f / 3, 0.7f},
                {6, 24, 28, 2, 1, 1, 0, 1, 4.0f, 1.0f, 0.7f},
                {6, 24, 28, 2, 1, 1, 1, 0, 4.0f, 1.0f, 0.7f},
                {3, 1000, 1004, 3, 1, 1, 1, 1, 10.0f, 0.5f, 0.25f},
                {3, 65536, 65536, 1, 0, 1, 1, 1, 10.0f, 1.0f, 1.0f},
                {1, 1, 1, 1, 0, 0, 1, 1, 10.0f, 1.0f, 1.0f},
            };
            for (auto &c : xc) check_xent(be, c);
            check_sinkhorn(be, 40, 24);
            check_sinkhorn(be, 40, 600);
            check_sinkhorn(be, 1, 24);
            check_sinkhorn(be, 300, 4096);
            check_koleo(be, 9, 13, 16, false);
            check_koleo(be, 2, 5, 5, false);
            check_koleo(be, 64, 1024, 1024, false);
            check_koleo(be, 40, 3500, 3500, false);
            check_koleo(be, 9, 13, 16, true);
        }
    }
    printf("%d of %d checks passed\n", checks - failures, checks);
    return failures ? 1 : 0;
}
