/* cpu_naive.c — naive double-precision reference of every CPU layer op (tests only; see
 * cpu_naive.h).  Written for obviousness, not speed: one output element at a time, straight
 * from the formulas of docs/algorithm.md §2 (docs/architecture.md §3.2). */
#include "tests/lib/cpu_naive.h"
#include "common/poa_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* element (r, c) of op(X) where X is stored row-major with leading dimension ld */
static double at(const double *X, int ld, poa_trans t, int r, int c)
{
    return t ? X[(size_t) c * ld + r] : X[(size_t) r * ld + c];
}

void poa_naive_gemm(poa_trans ta, poa_trans tb, int M, int N, int K, double alpha, const double *A,
                    int lda, const double *B, int ldb, double beta, double *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += at(A, lda, ta, i, k) * at(B, ldb, tb, k, j);
            double *c = &C[(size_t) i * ldc + j];
            *c = alpha * s + (beta == 0 ? 0 : beta * *c);
        }
}

void poa_naive_gemm_strided_batched(poa_trans ta, poa_trans tb, int M, int N, int K, double alpha,
                                    const double *A, int lda, long long strideA, const double *B,
                                    int ldb, long long strideB, double beta, double *C, int ldc,
                                    long long strideC, int batch)
{
    for (int i = 0; i < batch; i++)
        poa_naive_gemm(ta, tb, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta,
                       C + i * strideC, ldc);
}

void poa_naive_add_bias(double *y, int ldy, const double *b, int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) y[(size_t) r * ldy + c] += b[c];
}

void poa_naive_bias_grad(double *db, const double *dy, int lddy, int rows, int cols)
{
    for (int c = 0; c < cols; c++)
        for (int r = 0; r < rows; r++) db[c] += dy[(size_t) r * lddy + c];
}

/* ------------------------------------------------------------------------ LayerNorm */
void poa_naive_layernorm_fwd(double *y, int ldy, double *mean, double *rstd, const double *x,
                             int ldx, const double *w, const double *b, int rows, int d, double eps)
{
    for (int r = 0; r < rows; r++) {
        const double *xr = x + (size_t) r * ldx;
        double mu = 0, var = 0;
        for (int c = 0; c < d; c++) mu += xr[c];
        mu /= d;
        for (int c = 0; c < d; c++) var += (xr[c] - mu) * (xr[c] - mu);
        var /= d; /* biased */
        mean[r] = mu;
        rstd[r] = 1.0 / sqrt(var + eps);
        for (int c = 0; c < d; c++) y[(size_t) r * ldy + c] = (xr[c] - mu) * rstd[r] * w[c] + b[c];
    }
}

/* With x̂ = (x − μ)·ρ:  ∂L/∂x_j = ρ (g_j − mean_c g_c − x̂_j mean_c(g_c x̂_c)), g = dy ⊙ w. */
void poa_naive_layernorm_bwd(double *dx, int lddx, double *dw, double *db, const double *dy,
                             int lddy, const double *x, int ldx, const double *mean,
                             const double *rstd, const double *w, int rows, int d)
{
    for (int r = 0; r < rows; r++) {
        const double *xr = x + (size_t) r * ldx, *gr = dy + (size_t) r * lddy;
        double mg = 0, mgx = 0;
        for (int c = 0; c < d; c++) {
            const double xh = (xr[c] - mean[r]) * rstd[r];
            mg += gr[c] * w[c] / d;
            mgx += gr[c] * w[c] * xh / d;
            if (dw) dw[c] += gr[c] * xh;
            if (db) db[c] += gr[c];
        }
        if (!dx) continue;
        for (int c = 0; c < d; c++) {
            const double xh = (xr[c] - mean[r]) * rstd[r];
            dx[(size_t) r * lddx + c] = rstd[r] * (gr[c] * w[c] - mg - xh * mgx);
        }
    }
}

/* ------------------------------------------------------------------------ GELU */
/* Φ(x) = 0.5 erfc(−x/√2), equal to 0.5 (1 + erf(x/√2)) but without its cancellation for x ≪ 0,
 * so that the reference keeps its relative accuracy in the negative tail (GELU(−10) = −7.6e-23,
 * where 1 + erf(−10/√2) is 0 in double). */
static double gelu_cdf(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

void poa_naive_gelu_fwd(double *y, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = x[i] * gelu_cdf(x[i]);
}

void poa_naive_gelu_bwd(double *dx, const double *dy, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const double pdf = exp(-0.5 * x[i] * x[i]) / sqrt(2.0 * M_PI);
        dx[i] = dy[i] * (gelu_cdf(x[i]) + x[i] * pdf);
    }
}

/* ------------------------------------------------------------------------ attention */
/* q, k, v of image b, head h, token t, dim e */
static size_t qkv_index(int ld, int b, int t, int part, int h, int e, int T, int H, int Dh)
{
    return ((size_t) b * T + t) * ld + (size_t) part * H * Dh + (size_t) h * Dh + e;
}

void poa_naive_attention_fwd(double *out, int ldout, double *probs, const double *qkv, int ldqkv,
                             int B, int T, int H, int Dh, double scale)
{
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            double *P = probs + ((size_t) b * H + h) * T * T;
            for (int i = 0; i < T; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    double s = 0;
                    for (int e = 0; e < Dh; e++)
                        s += qkv[qkv_index(ldqkv, b, i, 0, h, e, T, H, Dh)] *
                             qkv[qkv_index(ldqkv, b, j, 1, h, e, T, H, Dh)];
                    P[(size_t) i * T + j] = s * scale;
                    if (s * scale > mx) mx = s * scale;
                }
                for (int j = 0; j < T; j++) sum += exp(P[(size_t) i * T + j] - mx);
                for (int j = 0; j < T; j++)
                    P[(size_t) i * T + j] = exp(P[(size_t) i * T + j] - mx) / sum;
                for (int e = 0; e < Dh; e++) {
                    double o = 0;
                    for (int j = 0; j < T; j++)
                        o += P[(size_t) i * T + j] * qkv[qkv_index(ldqkv, b, j, 2, h, e, T, H, Dh)];
                    out[((size_t) b * T + i) * ldout + (size_t) h * Dh + e] = o;
                }
            }
        }
}

/* dV = Pᵀ dO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = scale dS K, dK = scale dSᵀ Q. */
void poa_naive_attention_bwd(double *dqkv, int lddqkv, const double *dout, int lddout,
                             const double *qkv, int ldqkv, const double *probs, int B, int T, int H,
                             int Dh, double scale)
{
    double *dS = poa_xmalloc(sizeof(double) * (size_t) T * T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const double *P = probs + ((size_t) b * H + h) * T * T;
            const double *dO = dout + (size_t) b * T * lddout + (size_t) h * Dh;
            for (int i = 0; i < T; i++) {
                double rowdot = 0;
                for (int j = 0; j < T; j++) {
                    double dp = 0;
                    for (int e = 0; e < Dh; e++)
                        dp += dO[(size_t) i * lddout + e] *
                              qkv[qkv_index(ldqkv, b, j, 2, h, e, T, H, Dh)];
                    dS[(size_t) i * T + j] = dp;
                    rowdot += dp * P[(size_t) i * T + j];
                }
                for (int j = 0; j < T; j++)
                    dS[(size_t) i * T + j] =
                        P[(size_t) i * T + j] * (dS[(size_t) i * T + j] - rowdot);
            }
            for (int t = 0; t < T; t++)
                for (int e = 0; e < Dh; e++) {
                    double dq = 0, dk = 0, dv = 0;
                    for (int j = 0; j < T; j++) {
                        dq +=
                            dS[(size_t) t * T + j] * qkv[qkv_index(ldqkv, b, j, 1, h, e, T, H, Dh)];
                        dk +=
                            dS[(size_t) j * T + t] * qkv[qkv_index(ldqkv, b, j, 0, h, e, T, H, Dh)];
                        dv += P[(size_t) j * T + t] * dO[(size_t) j * lddout + e];
                    }
                    dqkv[qkv_index(lddqkv, b, t, 0, h, e, T, H, Dh)] = scale * dq;
                    dqkv[qkv_index(lddqkv, b, t, 1, h, e, T, H, Dh)] = scale * dk;
                    dqkv[qkv_index(lddqkv, b, t, 2, h, e, T, H, Dh)] = dv;
                }
        }
    free(dS);
}

/* ------------------------------------------------------------------------ residual */
void poa_naive_residual_ls_fwd(double *x, int ldx, const double *y, int ldy, const double *gamma,
                               const double *s, int B, int T, int d)
{
    for (int b = 0; b < B; b++) {
        const double sb = s ? s[b] : 1.0;
        if (sb == 0) continue; /* dropped image: its y is never read */
        for (int t = 0; t < T; t++)
            for (int c = 0; c < d; c++) {
                const size_t r = (size_t) b * T + t;
                x[r * ldx + c] += sb * gamma[c] * y[r * ldy + c];
            }
    }
}

void poa_naive_residual_ls_bwd(double *dy, int lddy, double *dgamma, const double *dx, int lddx,
                               const double *y, int ldy, const double *gamma, const double *s,
                               int B, int T, int d)
{
    for (int b = 0; b < B; b++) {
        const double sb = s ? s[b] : 1.0;
        for (int t = 0; t < T; t++)
            for (int c = 0; c < d; c++) {
                const size_t r = (size_t) b * T + t;
                if (dy) dy[r * lddy + c] = sb * gamma[c] * dx[r * lddx + c];
                if (dgamma && sb != 0) dgamma[c] += sb * dx[r * lddx + c] * y[r * ldy + c];
            }
    }
}

/* ------------------------------------------------------------------------ tokens */
void poa_naive_patch_unfold(double *cols, const double *img, int B, int C, int Hi, int Wi, int P)
{
    const int gh = Hi / P, gw = Wi / P, len = C * P * P;
    for (int b = 0; b < B; b++)
        for (int py = 0; py < gh; py++)
            for (int px = 0; px < gw; px++)
                for (int c = 0; c < C; c++)
                    for (int i = 0; i < P; i++)
                        for (int j = 0; j < P; j++) {
                            const size_t row = ((size_t) b * gh + py) * gw + px;
                            const size_t pix =
                                (((size_t) b * C + c) * Hi + py * P + i) * Wi + px * P + j;
                            cols[row * len + (size_t) c * P * P + i * P + j] = img[pix];
                        }
}

/* Keys cubic kernel, A = −0.75 (docs/algorithm.md §2.3). */
static double keys_cubic(double dist)
{
    const double A = -0.75, a = fabs(dist);
    if (a <= 1) return (A + 2) * a * a * a - (A + 3) * a * a + 1;
    if (a < 2) return A * a * a * a - 5 * A * a * a + 8 * A * a - 4 * A;
    return 0;
}

/* Weight of source index k (0 … n_in−1) in output index o along one axis: the four taps
 * floor(src)−1 … floor(src)+2, clamped (edge replication), so a clamped tap adds its weight
 * to the edge sample. */
static double axis_weight(int o, int k, int n_in, int n_out)
{
    const double s = (n_out + 0.1) / n_in;
    const double src = (o + 0.5) / s - 0.5;
    const double x0 = floor(src), t = src - x0;
    double wsum = 0;
    for (int j = -1; j <= 2; j++) {
        int tap = (int) x0 + j;
        tap = tap < 0 ? 0 : tap > n_in - 1 ? n_in - 1 : tap;
        if (tap == k) wsum += keys_cubic(t - j);
    }
    return wsum;
}

/* [n_out, n_in] matrix of axis_weight */
static double *axis_weights(int n_in, int n_out)
{
    double *w = poa_xmalloc(sizeof(double) * (size_t) n_in * n_out);
    for (int o = 0; o < n_out; o++)
        for (int k = 0; k < n_in; k++) w[(size_t) o * n_in + k] = axis_weight(o, k, n_in, n_out);
    return w;
}

void poa_naive_pos_resample_fwd(double *dst, int ldd, const double *src, int lds, int M, int h0,
                                int w0, int d)
{
    double *wy = axis_weights(M, h0), *wx = axis_weights(M, w0);
    for (int oy = 0; oy < h0; oy++)
        for (int ox = 0; ox < w0; ox++)
            for (int c = 0; c < d; c++) {
                double v = 0;
                for (int ky = 0; ky < M; ky++)
                    for (int kx = 0; kx < M; kx++)
                        v += wy[oy * M + ky] * wx[ox * M + kx] *
                             src[((size_t) ky * M + kx) * lds + c];
                dst[((size_t) oy * w0 + ox) * ldd + c] = v;
            }
    free(wy), free(wx);
}

void poa_naive_pos_resample_bwd(double *dsrc, int lds, const double *ddst, int ldd, int M, int h0,
                                int w0, int d)
{
    double *wy = axis_weights(M, h0), *wx = axis_weights(M, w0);
    for (int ky = 0; ky < M; ky++)
        for (int kx = 0; kx < M; kx++)
            for (int c = 0; c < d; c++) {
                double g = 0;
                for (int oy = 0; oy < h0; oy++)
                    for (int ox = 0; ox < w0; ox++)
                        g += wy[oy * M + ky] * wx[ox * M + kx] *
                             ddst[((size_t) oy * w0 + ox) * ldd + c];
                dsrc[((size_t) ky * M + kx) * lds + c] += g;
            }
    free(wy), free(wx);
}

void poa_naive_tokens_fwd(double *x, int ldx, const double *emb, int ldemb, const double *cls,
                          const double *pos, int ldpos, const double *mask_token,
                          const uint8_t *mask, int B, int N, int d)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t <= N; t++)
            for (int c = 0; c < d; c++) {
                double e;
                if (t == 0)
                    e = cls[c];
                else if (mask && mask[b * N + t - 1])
                    e = mask_token[c];
                else
                    e = emb[((size_t) b * N + t - 1) * ldemb + c];
                x[((size_t) b * (N + 1) + t) * ldx + c] = e + pos[(size_t) t * ldpos + c];
            }
}

void poa_naive_tokens_bwd(double *demb, int lddemb, double *dcls, double *dpos, int ldpos,
                          double *dmask_token, const double *dx, int lddx, const uint8_t *mask,
                          int B, int N, int d)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t <= N; t++)
            for (int c = 0; c < d; c++) {
                const double g = dx[((size_t) b * (N + 1) + t) * lddx + c];
                if (dpos) dpos[(size_t) t * ldpos + c] += g;
                if (t == 0) {
                    if (dcls) dcls[c] += g;
                    continue;
                }
                const int masked = mask && mask[b * N + t - 1];
                if (masked && dmask_token) dmask_token[c] += g;
                if (demb) demb[((size_t) b * N + t - 1) * lddemb + c] = masked ? 0 : g;
            }
}

/* ------------------------------------------------------------------------ rows */
void poa_naive_gather_rows(double *dst, int ldd, const double *src, int lds, const int32_t *idx,
                           int n, int cols)
{
    for (int i = 0; i < n; i++)
        for (int c = 0; c < cols; c++) dst[(size_t) i * ldd + c] = src[(size_t) idx[i] * lds + c];
}

void poa_naive_scatter_add_rows(double *dst, int ldd, const double *src, int lds,
                                const int32_t *idx, int n, int cols)
{
    for (int i = 0; i < n; i++)
        for (int c = 0; c < cols; c++) dst[(size_t) idx[i] * ldd + c] += src[(size_t) i * lds + c];
}

/* ------------------------------------------------------------------------ L2 / weight norm */
void poa_naive_l2norm_fwd(double *y, int ldy, double *norms, const double *x, int ldx, int rows,
                          int cols, double eps)
{
    for (int r = 0; r < rows; r++) {
        double n = 0;
        for (int c = 0; c < cols; c++) n += x[(size_t) r * ldx + c] * x[(size_t) r * ldx + c];
        n = sqrt(n);
        norms[r] = n;
        for (int c = 0; c < cols; c++)
            y[(size_t) r * ldy + c] = x[(size_t) r * ldx + c] / (n > eps ? n : eps);
    }
}

/* ∂(x_j / n)/∂x_c = δ_jc / n − x_j x_c / n³ for n ≥ eps; δ_jc / eps below. */
void poa_naive_l2norm_bwd(double *dx, int lddx, const double *dy, int lddy, const double *x,
                          int ldx, const double *norms, int rows, int cols, double eps)
{
    for (int r = 0; r < rows; r++) {
        const double n = norms[r];
        for (int c = 0; c < cols; c++) {
            double g = 0;
            for (int j = 0; j < cols; j++) {
                double jac = (j == c) ? 1.0 / (n >= eps ? n : eps) : 0.0;
                if (n >= eps)
                    jac -= x[(size_t) r * ldx + j] * x[(size_t) r * ldx + c] / (n * n * n);
                g += dy[(size_t) r * lddy + j] * jac;
            }
            dx[(size_t) r * lddx + c] = g;
        }
    }
}

void poa_naive_weightnorm_fwd(double *W, double *vnorm, const double *g, const double *v, int K,
                              int C)
{
    for (int k = 0; k < K; k++) {
        double n = 0;
        for (int c = 0; c < C; c++) n += v[(size_t) k * C + c] * v[(size_t) k * C + c];
        vnorm[k] = sqrt(n);
        for (int c = 0; c < C; c++) W[(size_t) k * C + c] = g[k] * v[(size_t) k * C + c] / vnorm[k];
    }
}

void poa_naive_weightnorm_bwd(double *dg, double *dv, const double *dW, const double *g,
                              const double *v, const double *vnorm, int K, int C)
{
    for (int k = 0; k < K; k++) {
        const double n = vnorm[k];
        for (int c = 0; c < C; c++) {
            /* ∂W_kj/∂g_k = v_kj / n;  ∂W_kj/∂v_kc = g (δ_jc / n − v_kj v_kc / n³) */
            if (dg) dg[k] += dW[(size_t) k * C + c] * v[(size_t) k * C + c] / n;
            double s = 0;
            for (int j = 0; j < C; j++) {
                double jac = (j == c ? 1.0 / n : 0.0) -
                             v[(size_t) k * C + j] * v[(size_t) k * C + c] / (n * n * n);
                s += dW[(size_t) k * C + j] * g[k] * jac;
            }
            if (dv) dv[(size_t) k * C + c] += s;
        }
    }
}
