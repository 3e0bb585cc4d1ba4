/* backend_ops_emu.c — "emu", a test fixture of tests/ops/test_backend_ops: the CPU backend with
 * its activations stored in bf16.  Every op on activations converts its inputs to fp32, runs the
 * CPU's fp32 op and rounds its outputs to bf16 (nearest even), writing only the outputs' views;
 * everything else is the CPU backend's.  It exercises the program's bf16 paths (2-byte
 * activations, unaligned views, the bf16 tolerances of a single rounding per stored value)
 * where no GPU is, so that a GPU session does not debug the test.  `--backend emu`. */
#include "backend_ops.h"

#include "common/bf16.h"
#include "common/poa_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct emu {
    poa_backend pub; /* first: the ops get &pub */
    poa_backend *cpu;
    poa_backend_iface iface;
    poa_nn_ops nn;
    poa_train_ops train;
} emu;

static poa_backend *cpu_of(poa_backend *be)
{
    return ((emu *) be)->cpu;
}

static poa_backend *cpu_of_c(const poa_backend *be)
{
    return ((const emu *) be)->cpu;
}

/* ------------------------------------------------------------------------ conversions */
static size_t span(int rows, int cols, int ld)
{
    return rows > 0 && cols > 0 ? (size_t) (rows - 1) * ld + cols : 0;
}

/* The rows × cols view (ld) of bf16 values as fp32, same layout; NULL for NULL. */
static float *in32(const poa_act *p, int rows, int cols, int ld)
{
    if (!p) return NULL;
    const size_t n = span(rows, cols, ld);
    const uint16_t *h = (const uint16_t *) p;
    float *f = poa_xmalloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) f[i] = poa_f32_from_bf16(h[i]);
    return f;
}

/* The view's elements of f rounded into p (elements outside the view untouched). */
static void out16(poa_act *p, const float *f, int rows, int cols, int ld)
{
    if (!p) return;
    uint16_t *h = (uint16_t *) p;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const size_t e = (size_t) r * ld + c;
            h[e] = poa_bf16_from_f32(f[e]);
        }
}

#define AS_ACT(f) ((poa_act *) (f))

/* ------------------------------------------------------------------------ interface */
static void emu_describe(poa_backend *be, char *buf, size_t n)
{
    char inner[384];
    poa_backend *cpu = cpu_of(be);
    cpu->iface->describe(cpu, inner, sizeof inner);
    snprintf(buf, n, "emu: bf16 activations over the fp32 %s", inner);
}

static void emu_destroy(poa_backend *be)
{
    poa_backend_destroy(cpu_of(be));
    free(be);
}

static void emu_act_upload(poa_backend *be, poa_act *dst, const float *src, size_t n)
{
    (void) be;
    for (size_t i = 0; i < n; i++) ((uint16_t *) dst)[i] = poa_bf16_from_f32(src[i]);
}

static void emu_act_download(poa_backend *be, float *dst, const poa_act *src, size_t n)
{
    (void) be;
    for (size_t i = 0; i < n; i++) dst[i] = poa_f32_from_bf16(((const uint16_t *) src)[i]);
}

/* The CPU's entries called with the CPU backend. */
#define FWD_IFACE(name, ret, params, args)                                                         \
    static ret emu_##name params                                                                   \
    {                                                                                              \
        poa_backend *cpu = cpu_of(be);                                                             \
        return cpu->iface->name args;                                                              \
    }
FWD_IFACE(mem_info, void, (poa_backend * be, size_t *f, size_t *t), (cpu, f, t))
FWD_IFACE(alloc, void *, (poa_backend * be, size_t n), (cpu, n))
FWD_IFACE(free, void, (poa_backend * be, void *p), (cpu, p))
FWD_IFACE(host_alloc, void *, (poa_backend * be, size_t n), (cpu, n))
FWD_IFACE(host_free, void, (poa_backend * be, void *p), (cpu, p))
FWD_IFACE(upload, void, (poa_backend * be, void *d, const void *s, size_t n), (cpu, d, s, n))
FWD_IFACE(download, void, (poa_backend * be, void *d, const void *s, size_t n), (cpu, d, s, n))
FWD_IFACE(copy, void, (poa_backend * be, void *d, const void *s, size_t n), (cpu, d, s, n))
FWD_IFACE(zero, void, (poa_backend * be, void *d, size_t n), (cpu, d, n))
FWD_IFACE(upload_async, void, (poa_backend * be, void *d, const void *s, size_t n, poa_event *e),
          (cpu, d, s, n, e))
FWD_IFACE(download_async, void, (poa_backend * be, void *d, const void *s, size_t n, poa_event *e),
          (cpu, d, s, n, e))
FWD_IFACE(event_create, poa_event *, (poa_backend * be), (cpu))
FWD_IFACE(event_destroy, void, (poa_backend * be, poa_event *e), (cpu, e))
FWD_IFACE(event_record, void, (poa_backend * be, poa_event *e), (cpu, e))
FWD_IFACE(stream_wait, void, (poa_backend * be, poa_event *e), (cpu, e))
FWD_IFACE(event_synchronize, void, (poa_backend * be, poa_event *e), (cpu, e))
FWD_IFACE(event_elapsed, double, (poa_backend * be, poa_event *a, poa_event *b), (cpu, a, b))
FWD_IFACE(synchronize, void, (poa_backend * be), (cpu))
FWD_IFACE(native_stream, void *, (poa_backend * be), (cpu))

static int emu_is_host(const poa_backend *be)
{
    const poa_backend *cpu = cpu_of_c(be);
    return cpu->iface->is_host(cpu);
}

/* ------------------------------------------------------------------------ GEMMs */
static void emu_act_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                         float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                         float beta, poa_act *C, int ldc)
{
    poa_backend *cpu = cpu_of(be);
    float *a = in32(A, ta ? K : M, ta ? M : K, lda), *b = in32(B, tb ? N : K, tb ? K : N, ldb);
    float *c = in32(C, M, N, ldc);
    cpu->nn->act_gemm(cpu, ta, tb, M, N, K, alpha, AS_ACT(a), lda, AS_ACT(b), ldb, beta, AS_ACT(c),
                      ldc);
    out16(C, c, M, N, ldc);
    free(a), free(b), free(c);
}

static void emu_act_gemm_bias(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                              float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                              const float *bias, poa_act *C, int ldc)
{
    poa_backend *cpu = cpu_of(be);
    float *a = in32(A, ta ? K : M, ta ? M : K, lda), *b = in32(B, tb ? N : K, tb ? K : N, ldb);
    float *c = poa_xmalloc(sizeof(float) * (span(M, N, ldc) + 1));
    cpu->nn->act_gemm_bias(cpu, ta, tb, M, N, K, alpha, AS_ACT(a), lda, AS_ACT(b), ldb, bias,
                           AS_ACT(c), ldc);
    out16(C, c, M, N, ldc);
    free(a), free(b), free(c);
}

static void emu_act_gemm_wgrad(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                               float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                               float *C, int ldc)
{
    poa_backend *cpu = cpu_of(be);
    float *a = in32(A, ta ? K : M, ta ? M : K, lda), *b = in32(B, tb ? N : K, tb ? K : N, ldb);
    cpu->nn->act_gemm_wgrad(cpu, ta, tb, M, N, K, alpha, AS_ACT(a), lda, AS_ACT(b), ldb, C, ldc);
    free(a), free(b);
}

static void emu_act_bias_grad(poa_backend *be, float *db, const poa_act *dy, int lddy, int rows,
                              int cols)
{
    poa_backend *cpu = cpu_of(be);
    float *d = in32(dy, rows, cols, lddy);
    cpu->nn->act_bias_grad(cpu, db, AS_ACT(d), lddy, rows, cols);
    free(d);
}

static void emu_act_from_f32(poa_backend *be, poa_act *dst, const float *src, size_t n)
{
    emu_act_upload(be, dst, src, n);
}

/* ------------------------------------------------------------------------ element-wise */
static void emu_act_gelu_fwd(poa_backend *be, poa_act *y, const poa_act *x, size_t n)
{
    poa_backend *cpu = cpu_of(be);
    float *fx = in32(x, 1, (int) n, (int) n), *fy = poa_xmalloc(sizeof(float) * (n + 1));
    cpu->nn->act_gelu_fwd(cpu, AS_ACT(fy), AS_ACT(fx), n);
    out16(y, fy, 1, (int) n, (int) n);
    free(fx), free(fy);
}

static void emu_act_gelu_bwd(poa_backend *be, poa_act *dx, poa_act *y, const poa_act *dy,
                             const poa_act *x, size_t n)
{
    poa_backend *cpu = cpu_of(be);
    float *fx = in32(x, 1, (int) n, (int) n), *fdy = in32(dy, 1, (int) n, (int) n);
    float *fdx = poa_xmalloc(sizeof(float) * (n + 1)),
          *fy = y ? poa_xmalloc(sizeof(float) * n) : NULL;
    cpu->nn->act_gelu_bwd(cpu, AS_ACT(fdx), AS_ACT(fy), AS_ACT(fdy), AS_ACT(fx), n);
    out16(dx, fdx, 1, (int) n, (int) n);
    out16(y, fy, 1, (int) n, (int) n);
    free(fx), free(fdy), free(fdx), free(fy);
}

/* ------------------------------------------------------------------------ LayerNorm */
static void emu_layernorm_fwd(poa_backend *be, poa_act *y, int ldy, float *mean, float *rstd,
                              const poa_act *x, int ldx, const float *w, const float *b, int rows,
                              int d, float eps)
{
    poa_backend *cpu = cpu_of(be);
    float *fx = in32(x, rows, d, ldx), *fy = poa_xmalloc(sizeof(float) * (span(rows, d, ldy) + 1));
    cpu->nn->layernorm_fwd(cpu, AS_ACT(fy), ldy, mean, rstd, AS_ACT(fx), ldx, w, b, rows, d, eps);
    out16(y, fy, rows, d, ldy);
    free(fx), free(fy);
}

static void emu_layernorm_bwd(poa_backend *be, poa_act *dx, int lddx, float dx_beta, float *dw,
                              float *db, const poa_act *dy, int lddy, const poa_act *x, int ldx,
                              const float *mean, const float *rstd, const float *w, int rows, int d)
{
    poa_backend *cpu = cpu_of(be);
    float *fx = in32(x, rows, d, ldx), *fdy = in32(dy, rows, d, lddy);
    float *fdx = dx ? in32(dx, rows, d, lddx) : NULL;
    cpu->nn->layernorm_bwd(cpu, AS_ACT(fdx), lddx, dx_beta, dw, db, AS_ACT(fdy), lddy, AS_ACT(fx),
                           ldx, mean, rstd, w, rows, d);
    out16(dx, fdx, rows, d, lddx);
    free(fx), free(fdy), free(fdx);
}

/* ------------------------------------------------------------------------ attention */
static size_t emu_attention_saved_bytes(const poa_backend *be, int B, int T, int H, int Dh)
{
    const poa_backend *cpu = cpu_of_c(be);
    return cpu->nn->attention_saved_bytes(cpu, B, T, H, Dh);
}

static size_t emu_attention_scratch_bytes(const poa_backend *be, int B, int T, int H, int Dh)
{
    const poa_backend *cpu = cpu_of_c(be);
    return cpu->nn->attention_scratch_bytes(cpu, B, T, H, Dh);
}

static void emu_attention_fwd(poa_backend *be, poa_act *out, int ldout, void *saved,
                              const poa_act *qkv, int ldqkv, int B, int T, int H, int Dh,
                              float scale, void *scratch)
{
    poa_backend *cpu = cpu_of(be);
    const int rows = B * T, w = H * Dh;
    float *fq = in32(qkv, rows, 3 * w, ldqkv);
    float *fo = poa_xmalloc(sizeof(float) * (span(rows, w, ldout) + 1));
    cpu->nn->attention_fwd(cpu, AS_ACT(fo), ldout, saved, AS_ACT(fq), ldqkv, B, T, H, Dh, scale,
                           scratch);
    out16(out, fo, rows, w, ldout);
    free(fq), free(fo);
}

static void emu_attention_bwd(poa_backend *be, poa_act *dqkv, int lddqkv, const poa_act *dout,
                              int lddout, const poa_act *qkv, int ldqkv, const void *saved, int B,
                              int T, int H, int Dh, float scale, void *scratch)
{
    poa_backend *cpu = cpu_of(be);
    const int rows = B * T, w = H * Dh;
    float *fq = in32(qkv, rows, 3 * w, ldqkv), *fdo = in32(dout, rows, w, lddout);
    float *fdq = poa_xmalloc(sizeof(float) * (span(rows, 3 * w, lddqkv) + 1));
    cpu->nn->attention_bwd(cpu, AS_ACT(fdq), lddqkv, AS_ACT(fdo), lddout, AS_ACT(fq), ldqkv, saved,
                           B, T, H, Dh, scale, scratch);
    out16(dqkv, fdq, rows, 3 * w, lddqkv);
    free(fq), free(fdo), free(fdq);
}

/* ------------------------------------------------------------------------ residual, tokens */
static void emu_residual_ls_fwd(poa_backend *be, poa_act *x, int ldx, const poa_act *base,
                                int ldbase, const poa_act *y, int ldy, const float *gamma,
                                const float *s, int B, int T, int d)
{
    poa_backend *cpu = cpu_of(be);
    const int rows = B * T;
    float *fx = in32(x, rows, d, ldx), *fy = in32(y, rows, d, ldy);
    float *fb = base == x ? fx : in32(base, rows, d, ldbase);
    cpu->nn->residual_ls_fwd(cpu, AS_ACT(fx), ldx, AS_ACT(fb), ldbase, AS_ACT(fy), ldy, gamma, s, B,
                             T, d);
    out16(x, fx, rows, d, ldx);
    if (fb != fx) free(fb);
    free(fx), free(fy);
}

static void emu_residual_ls_bwd(poa_backend *be, poa_act *dy, int lddy, float *dgamma,
                                const poa_act *dx, int lddx, const poa_act *y, int ldy,
                                const float *gamma, const float *s, int B, int T, int d)
{
    poa_backend *cpu = cpu_of(be);
    const int rows = B * T;
    float *fdx = in32(dx, rows, d, lddx), *fy = in32(y, rows, d, ldy);
    float *fdy = dy ? poa_xmalloc(sizeof(float) * (span(rows, d, lddy) + 1)) : NULL;
    cpu->nn->residual_ls_bwd(cpu, AS_ACT(fdy), lddy, dgamma, AS_ACT(fdx), lddx, AS_ACT(fy), ldy,
                             gamma, s, B, T, d);
    out16(dy, fdy, rows, d, lddy);
    free(fdx), free(fy), free(fdy);
}

static void emu_patch_unfold(poa_backend *be, poa_act *cols, const float *img, int B, int C, int Hi,
                             int Wi, int P)
{
    poa_backend *cpu = cpu_of(be);
    const int n = B * (Hi / P) * (Wi / P), len = C * P * P;
    float *f = poa_xmalloc(sizeof(float) * ((size_t) n * len + 1));
    cpu->nn->patch_unfold(cpu, AS_ACT(f), img, B, C, Hi, Wi, P);
    out16(cols, f, n, len, len);
    free(f);
}

static void emu_tokens_fwd(poa_backend *be, poa_act *x, int ldx, const poa_act *emb, int ldemb,
                           const float *cls, const float *pos, int ldpos, const float *mask_token,
                           const uint8_t *mask, int B, int N, int d)
{
    poa_backend *cpu = cpu_of(be);
    float *fe = in32(emb, B * N, d, ldemb);
    float *fx = poa_xmalloc(sizeof(float) * (span(B * (N + 1), d, ldx) + 1));
    cpu->nn->tokens_fwd(cpu, AS_ACT(fx), ldx, AS_ACT(fe), ldemb, cls, pos, ldpos, mask_token, mask,
                        B, N, d);
    out16(x, fx, B * (N + 1), d, ldx);
    free(fe), free(fx);
}

static void emu_tokens_bwd(poa_backend *be, poa_act *demb, int lddemb, float *dcls, float *dpos,
                           int ldpos, float *dmask_token, const poa_act *dx, int lddx,
                           const uint8_t *mask, int B, int N, int d)
{
    poa_backend *cpu = cpu_of(be);
    float *fdx = in32(dx, B * (N + 1), d, lddx);
    float *fe = demb ? poa_xmalloc(sizeof(float) * (span(B * N, d, lddemb) + 1)) : NULL;
    cpu->nn->tokens_bwd(cpu, AS_ACT(fe), lddemb, dcls, dpos, ldpos, dmask_token, AS_ACT(fdx), lddx,
                        mask, B, N, d);
    out16(demb, fe, B * N, d, lddemb);
    free(fdx), free(fe);
}

/* ------------------------------------------------------------------------ rows */
static void emu_act_gather_rows(poa_backend *be, poa_act *dst, int ldd, const poa_act *src, int lds,
                                const int32_t *idx, int n, int cols)
{
    (void) be;
    for (int i = 0; i < n; i++)
        memcpy((uint16_t *) dst + (size_t) i * ldd, (const uint16_t *) src + (size_t) idx[i] * lds,
               sizeof(uint16_t) * (size_t) cols);
}

static void emu_act_scatter_add_rows(poa_backend *be, poa_act *dst, int ldd, const poa_act *src,
                                     int lds, const int32_t *idx, int n, int cols)
{
    (void) be;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < cols; c++) {
            uint16_t *o = (uint16_t *) dst + (size_t) idx[i] * ldd + c;
            const float a = poa_f32_from_bf16(((const uint16_t *) src)[(size_t) i * lds + c]);
            *o = poa_bf16_from_f32(poa_f32_from_bf16(*o) + a);
        }
}

static void emu_act_gather_rows_f32(poa_backend *be, float *dst, int ldd, const poa_act *src,
                                    int lds, const int32_t *idx, int n, int cols)
{
    (void) be;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < cols; c++)
            dst[(size_t) i * ldd + c] =
                poa_f32_from_bf16(((const uint16_t *) src)[(size_t) idx[i] * lds + c]);
}

static void emu_act_scatter_add_rows_f32(poa_backend *be, poa_act *dst, int ldd, const float *src,
                                         int lds, const int32_t *idx, int n, int cols)
{
    (void) be;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < cols; c++) {
            uint16_t *o = (uint16_t *) dst + (size_t) idx[i] * ldd + c;
            *o = poa_bf16_from_f32(poa_f32_from_bf16(*o) + src[(size_t) i * lds + c]);
        }
}

/* ------------------------------------------------------------------------ optimizer */
static void emu_adamw(poa_backend *be, float *param, float *m, float *v, const float *grad,
                      const poa_optim_seg *segs, int nseg, const poa_adamw_args *a,
                      poa_act *param_act)
{
    poa_backend *cpu = cpu_of(be);
    cpu->train->adamw(cpu, param, m, v, grad, segs, nseg, a, NULL);
    for (int s = 0; param_act && s < nseg; s++)
        emu_act_upload(be, (poa_act *) ((uint16_t *) param_act + segs[s].offset),
                       param + segs[s].offset, segs[s].numel);
}

static void emu_ema(poa_backend *be, float *t, const float *s, size_t n, double m, poa_act *t_act)
{
    poa_backend *cpu = cpu_of(be);
    cpu->train->ema(cpu, t, s, n, m, NULL);
    if (t_act) emu_act_upload(be, t_act, t, n);
}

static size_t emu_koleo_scratch_bytes(const poa_backend *be, int n, int c)
{
    const poa_backend *cpu = cpu_of_c(be);
    return cpu->train->koleo_scratch_bytes(cpu, n, c);
}

/* ------------------------------------------------------------------------ creation */
/* The CPU's fp32 ops that take no activations, called with the emu backend, work because they
 * use nothing of it but the CPU's private state (impl), which emu shares. */
poa_backend *bo_emu_create(char *err, size_t errlen)
{
    poa_backend *cpu = poa_backend_create("cpu", NULL, err, errlen);
    if (!cpu) return NULL;
    emu *e = poa_xcalloc(1, sizeof *e);
    e->cpu = cpu;
    e->iface = *cpu->iface;
    e->nn = *cpu->nn;
    e->train = *cpu->train;
    e->iface.describe = emu_describe, e->iface.is_host = emu_is_host;
    e->iface.mem_info = emu_mem_info, e->iface.destroy = emu_destroy;
    e->iface.alloc = emu_alloc, e->iface.free = emu_free;
    e->iface.host_alloc = emu_host_alloc, e->iface.host_free = emu_host_free;
    e->iface.upload = emu_upload, e->iface.download = emu_download;
    e->iface.copy = emu_copy, e->iface.zero = emu_zero;
    e->iface.act_upload = emu_act_upload, e->iface.act_download = emu_act_download;
    e->iface.upload_async = emu_upload_async, e->iface.download_async = emu_download_async;
    e->iface.event_create = emu_event_create, e->iface.event_destroy = emu_event_destroy;
    e->iface.event_record = emu_event_record, e->iface.stream_wait = emu_stream_wait;
    e->iface.event_synchronize = emu_event_synchronize, e->iface.event_elapsed = emu_event_elapsed;
    e->iface.synchronize = emu_synchronize, e->iface.native_stream = emu_native_stream;
    e->nn.act_from_f32 = emu_act_from_f32;
    e->nn.act_gemm = emu_act_gemm, e->nn.act_gemm_bias = emu_act_gemm_bias;
    e->nn.act_gemm_wgrad = emu_act_gemm_wgrad, e->nn.act_bias_grad = emu_act_bias_grad;
    e->nn.act_gelu_fwd = emu_act_gelu_fwd, e->nn.act_gelu_bwd = emu_act_gelu_bwd;
    e->nn.layernorm_fwd = emu_layernorm_fwd, e->nn.layernorm_bwd = emu_layernorm_bwd;
    e->nn.attention_fwd = emu_attention_fwd, e->nn.attention_bwd = emu_attention_bwd;
    e->nn.attention_saved_bytes = emu_attention_saved_bytes;
    e->nn.attention_scratch_bytes = emu_attention_scratch_bytes;
    e->nn.residual_ls_fwd = emu_residual_ls_fwd, e->nn.residual_ls_bwd = emu_residual_ls_bwd;
    e->nn.patch_unfold = emu_patch_unfold;
    e->nn.tokens_fwd = emu_tokens_fwd, e->nn.tokens_bwd = emu_tokens_bwd;
    e->nn.act_gather_rows = emu_act_gather_rows;
    e->nn.act_scatter_add_rows = emu_act_scatter_add_rows;
    e->nn.act_gather_rows_f32 = emu_act_gather_rows_f32;
    e->nn.act_scatter_add_rows_f32 = emu_act_scatter_add_rows_f32;
    e->train.adamw = emu_adamw, e->train.ema = emu_ema;
    e->train.koleo_scratch_bytes = emu_koleo_scratch_bytes;
    e->pub = *cpu;
    e->pub.name = "emu";
    e->pub.act_dtype = POA_DT_BF16;
    e->pub.act_size = 2;
    e->pub.iface = &e->iface, e->pub.nn = &e->nn, e->pub.train = &e->train;
    return &e->pub;
}
