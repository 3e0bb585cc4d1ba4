/* cuda_ops.h — the CUDA backend's implementations of the backend.h tables, one function per
 * entry, named poa_cuda_<entry> with the entry's exact signature (C linkage, no CUDA types).
 * Which file implements which: see src/backend/cuda/README.md.  cuda_backend.c puts them in
 * the tables. */
#ifndef POA_BACKEND_CUDA_OPS_H
#define POA_BACKEND_CUDA_OPS_H

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

void poa_cuda_describe(poa_backend *be, char *buf, size_t n);
int poa_cuda_is_host(const poa_backend *be);
void poa_cuda_mem_info(poa_backend *be, size_t *free_bytes, size_t *total_bytes);
void poa_cuda_destroy(poa_backend *be);
void *poa_cuda_alloc(poa_backend *be, size_t bytes);
void poa_cuda_free(poa_backend *be, void *p);
void *poa_cuda_host_alloc(poa_backend *be, size_t bytes);
void poa_cuda_host_free(poa_backend *be, void *p);
void poa_cuda_upload(poa_backend *be, void *dst, const void *host_src, size_t bytes);
void poa_cuda_download(poa_backend *be, void *host_dst, const void *src, size_t bytes);
void poa_cuda_copy(poa_backend *be, void *dst, const void *src, size_t bytes);
void poa_cuda_zero(poa_backend *be, void *dst, size_t bytes);
void poa_cuda_act_upload(poa_backend *be, poa_act *dst, const float *host_src, size_t n);
void poa_cuda_act_download(poa_backend *be, float *host_dst, const poa_act *src, size_t n);
void poa_cuda_upload_async(poa_backend *be, void *dst, const void *host_src, size_t bytes,
                           poa_event *done);
void poa_cuda_download_async(poa_backend *be, void *host_dst, const void *src, size_t bytes,
                             poa_event *done);
poa_event *poa_cuda_event_create(poa_backend *be);
void poa_cuda_event_destroy(poa_backend *be, poa_event *ev);
void poa_cuda_event_record(poa_backend *be, poa_event *ev);
void poa_cuda_stream_wait(poa_backend *be, poa_event *ev);
void poa_cuda_event_synchronize(poa_backend *be, poa_event *ev);
double poa_cuda_event_elapsed(poa_backend *be, poa_event *start, poa_event *end);
void poa_cuda_synchronize(poa_backend *be);
void *poa_cuda_native_stream(poa_backend *be);
void poa_cuda_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void poa_cuda_gemm_strided_batched(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                                   float alpha, const float *A, int lda, long long strideA,
                                   const float *B, int ldb, long long strideB, float beta, float *C,
                                   int ldc, long long strideC, int batch);
void poa_cuda_gemm_bias(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                        float alpha, const float *A, int lda, const float *B, int ldb,
                        const float *bias, float *C, int ldc);
void poa_cuda_bias_grad(poa_backend *be, float *db, const float *dy, int lddy, int rows, int cols);
void poa_cuda_gelu_fwd(poa_backend *be, float *y, const float *x, size_t n);
void poa_cuda_gelu_bwd(poa_backend *be, float *dx, float *y, const float *dy, const float *x,
                       size_t n);
void poa_cuda_l2norm_fwd(poa_backend *be, float *y, int ldy, float *norms, const float *x, int ldx,
                         int rows, int cols, float eps);
void poa_cuda_l2norm_bwd(poa_backend *be, float *dx, int lddx, const float *dy, int lddy,
                         const float *x, int ldx, const float *norms, int rows, int cols,
                         float eps);
void poa_cuda_weightnorm_fwd(poa_backend *be, float *W, float *vnorm, const float *g,
                             const float *v, int K, int C);
void poa_cuda_weightnorm_bwd(poa_backend *be, float *dg, float *dv, const float *dW, const float *g,
                             const float *v, const float *vnorm, int K, int C);
void poa_cuda_axpy(poa_backend *be, float *y, float a, const float *x, size_t n);
void poa_cuda_scale(poa_backend *be, float *x, float a, size_t n);
void poa_cuda_pos_resample_fwd(poa_backend *be, float *dst, int ldd, const float *src, int lds,
                               int M, int h0, int w0, int d);
void poa_cuda_pos_resample_bwd(poa_backend *be, float *dsrc, int lds, const float *ddst, int ldd,
                               int M, int h0, int w0, int d);
void poa_cuda_act_from_f32(poa_backend *be, poa_act *dst, const float *src, size_t n);
void poa_cuda_act_gemm(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                       float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                       float beta, poa_act *C, int ldc);
void poa_cuda_act_gemm_bias(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                            float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                            const float *bias, poa_act *C, int ldc);
void poa_cuda_act_gemm_wgrad(poa_backend *be, poa_trans ta, poa_trans tb, int M, int N, int K,
                             float alpha, const poa_act *A, int lda, const poa_act *B, int ldb,
                             float *C, int ldc);
void poa_cuda_act_bias_grad(poa_backend *be, float *db, const poa_act *dy, int lddy, int rows,
                            int cols);
void poa_cuda_act_gelu_fwd(poa_backend *be, poa_act *y, const poa_act *x, size_t n);
void poa_cuda_act_gelu_bwd(poa_backend *be, poa_act *dx, poa_act *y, const poa_act *dy,
                           const poa_act *x, size_t n);
void poa_cuda_layernorm_fwd(poa_backend *be, poa_act *y, int ldy, float *mean, float *rstd,
                            const poa_act *x, int ldx, const float *w, const float *b, int rows,
                            int d, float eps);
void poa_cuda_layernorm_bwd(poa_backend *be, poa_act *dx, int lddx, float dx_beta, float *dw,
                            float *db, const poa_act *dy, int lddy, const poa_act *x, int ldx,
                            const float *mean, const float *rstd, const float *w, int rows, int d);
void poa_cuda_attention_fwd(poa_backend *be, poa_act *out, int ldout, void *saved,
                            const poa_act *qkv, int ldqkv, int B, int T, int H, int Dh, float scale,
                            void *scratch);
void poa_cuda_attention_bwd(poa_backend *be, poa_act *dqkv, int lddqkv, const poa_act *dout,
                            int lddout, const poa_act *qkv, int ldqkv, const void *saved, int B,
                            int T, int H, int Dh, float scale, void *scratch);
size_t poa_cuda_attention_saved_bytes(const poa_backend *be, int B, int T, int H, int Dh);
size_t poa_cuda_attention_scratch_bytes(const poa_backend *be, int B, int T, int H, int Dh);
void poa_cuda_residual_ls_fwd(poa_backend *be, poa_act *x, int ldx, const poa_act *base, int ldbase,
                              const poa_act *y, int ldy, const float *gamma, const float *s, int B,
                              int T, int d);
void poa_cuda_residual_ls_bwd(poa_backend *be, poa_act *dy, int lddy, float *dgamma,
                              const poa_act *dx, int lddx, const poa_act *y, int ldy,
                              const float *gamma, const float *s, int B, int T, int d);
void poa_cuda_patch_unfold(poa_backend *be, poa_act *cols, const float *img, int B, int C, int Hi,
                           int Wi, int P);
void poa_cuda_tokens_fwd(poa_backend *be, poa_act *x, int ldx, const poa_act *emb, int ldemb,
                         const float *cls, const float *pos, int ldpos, const float *mask_token,
                         const uint8_t *mask, int B, int N, int d);
void poa_cuda_tokens_bwd(poa_backend *be, poa_act *demb, int lddemb, float *dcls, float *dpos,
                         int ldpos, float *dmask_token, const poa_act *dx, int lddx,
                         const uint8_t *mask, int B, int N, int d);
void poa_cuda_act_gather_rows(poa_backend *be, poa_act *dst, int ldd, const poa_act *src, int lds,
                              const int32_t *idx, int n, int cols);
void poa_cuda_act_scatter_add_rows(poa_backend *be, poa_act *dst, int ldd, const poa_act *src,
                                   int lds, const int32_t *idx, int n, int cols);
void poa_cuda_act_gather_rows_f32(poa_backend *be, float *dst, int ldd, const poa_act *src, int lds,
                                  const int32_t *idx, int n, int cols);
void poa_cuda_act_scatter_add_rows_f32(poa_backend *be, poa_act *dst, int ldd, const float *src,
                                       int lds, const int32_t *idx, int n, int cols);
void poa_cuda_sum_squares(poa_backend *be, double *out, const float *x, size_t n);
void poa_cuda_softmax_rows(poa_backend *be, float *y, int ldy, const float *x, int ldx, int n,
                           int K, float inv_tau);
void poa_cuda_xent(poa_backend *be, double *loss, float *ds, int ldds, const float *s, int lds,
                   const float *t, int ldt, int t_period, int t_shift, const float *w, int n, int K,
                   float inv_tau, float loss_scale, float grad_scale);
void poa_cuda_col_max(poa_backend *be, double *mx, const float *x, int ldx, int n, int K);
void poa_cuda_sk_exp(poa_backend *be, float *q, int ldq, double *psum, const float *x, int ldx,
                     const double *mx, int n, int K, float inv_tau);
void poa_cuda_sk_normalize(poa_backend *be, float *q, int ldq, double *psum_next,
                           const double *psum, double *scratch, int n, int K);
void poa_cuda_koleo(poa_backend *be, double *loss, float *dz, int lddz, const float *z, int ldz,
                    int n, int c, float loss_scale, float grad_scale, void *scratch);
size_t poa_cuda_koleo_scratch_bytes(const poa_backend *be, int n, int c);
void poa_cuda_adamw(poa_backend *be, float *param, float *m, float *v, const float *grad,
                    const poa_optim_seg *segs, int nseg, const poa_adamw_args *a,
                    poa_act *param_act);
void poa_cuda_ema(poa_backend *be, float *t, const float *s, size_t n, double m, poa_act *t_act);

#ifdef __cplusplus
}
#endif
#endif
