/* backend_profile.c — per-op timing wrappers over a backend's tables (backend_profile.h;
 * src/backend/README.md, "Profiling"). */
#include "backend/backend_profile.h"

#include "common/poa_error.h"

#include <stdlib.h>
#include <string.h>

/* Every timed op, by its table entry's name. */
#define PROFILE_OPS(X)                                                                             \
    X(gemm)                                                                                        \
    X(gemm_strided_batched)                                                                        \
    X(gemm_bias)                                                                                   \
    X(bias_grad)                                                                                   \
    X(gelu_fwd)                                                                                    \
    X(gelu_bwd)                                                                                    \
    X(l2norm_fwd)                                                                                  \
    X(l2norm_bwd)                                                                                  \
    X(weightnorm_fwd)                                                                              \
    X(weightnorm_bwd)                                                                              \
    X(axpy)                                                                                        \
    X(scale)                                                                                       \
    X(pos_resample_fwd)                                                                            \
    X(pos_resample_bwd)                                                                            \
    X(act_from_f32)                                                                                \
    X(act_gemm)                                                                                    \
    X(act_gemm_bias)                                                                               \
    X(act_gemm_wgrad)                                                                              \
    X(act_bias_grad)                                                                               \
    X(act_gelu_fwd)                                                                                \
    X(act_gelu_bwd)                                                                                \
    X(layernorm_fwd)                                                                               \
    X(layernorm_bwd)                                                                               \
    X(attention_fwd)                                                                               \
    X(attention_bwd)                                                                               \
    X(residual_ls_fwd)                                                                             \
    X(residual_ls_bwd)                                                                             \
    X(patch_unfold)                                                                                \
    X(tokens_fwd)                                                                                  \
    X(tokens_bwd)                                                                                  \
    X(act_gather_rows)                                                                             \
    X(act_scatter_add_rows)                                                                        \
    X(act_gather_rows_f32)                                                                         \
    X(act_scatter_add_rows_f32)                                                                    \
    X(sum_squares)                                                                                 \
    X(softmax_rows)                                                                                \
    X(xent)                                                                                        \
    X(col_max)                                                                                     \
    X(sk_exp)                                                                                      \
    X(sk_normalize)                                                                                \
    X(koleo)                                                                                       \
    X(adamw)                                                                                       \
    X(ema)                                                                                         \
    X(copy)                                                                                        \
    X(zero)

#define AS_ENUM(op) OP_##op,
#define AS_NAME(op) #op,
enum { PROFILE_OPS(AS_ENUM) OP_N };
static const char *const op_name[OP_N] = {PROFILE_OPS(AS_NAME)};

enum { MAX_SHAPES = 256 };
typedef struct gemm_shape {
    int op, ta, tb, M, N, K, batch;
    long long calls;
    double seconds;
} gemm_shape;

struct poa_profile {
    poa_backend *be;
    const poa_backend_iface *real_iface;
    const poa_nn_ops *real_nn;
    const poa_train_ops *real_train;
    poa_backend_iface iface;
    poa_nn_ops nn;
    poa_train_ops train;
    double (*clock)(void);
    int cap, n, depth, steps;
    poa_event **ev;    /* 2 · cap: begin and end of the step's i-th timed call */
    short *op_of;      /* cap: the op of pair i */
    short *shape_of;   /* cap: its GEMM shape, or −1 */
    long long untimed; /* calls past the pool, all steps */
    long long calls[OP_N];
    double seconds[OP_N], flops[OP_N];
    gemm_shape shapes[MAX_SHAPES];
    int n_shapes;
};

static poa_profile *P; /* the profiled backend's state (one at a time) */

/* ------------------------------------------------------------------ timing of one call */
typedef struct call_tok {
    int op, shape, slot; /* slot: the event pair, −1 untimed or nested, −2 host clock */
    double t0;
} call_tok;

static call_tok call_begin(int op, int shape, double flops)
{
    call_tok t = {op, shape, -1, 0};
    /* an op that a backend implements through its own tables counts once, as the outer call */
    if (P->depth++ > 0) return t;
    P->calls[op]++;
    P->flops[op] += flops;
    if (shape >= 0) P->shapes[shape].calls++;
    if (P->clock) {
        t.slot = -2;
        t.t0 = P->clock();
    } else if (P->n < P->cap) {
        t.slot = P->n++;
        P->op_of[t.slot] = (short) op;
        P->shape_of[t.slot] = (short) shape;
        P->real_iface->event_record(P->be, P->ev[2 * t.slot]);
    } else {
        P->untimed++;
    }
    return t;
}

static void call_end(call_tok t)
{
    P->depth--;
    if (t.slot == -2) {
        const double dt = P->clock() - t.t0;
        P->seconds[t.op] += dt;
        if (t.shape >= 0) P->shapes[t.shape].seconds += dt;
    } else if (t.slot >= 0) {
        P->real_iface->event_record(P->be, P->ev[2 * t.slot + 1]);
    }
}

/* The shape's row in the table (−1 when the table is full or the call is nested). */
static int shape_index(int op, int ta, int tb, int M, int N, int K, int batch)
{
    if (P->depth > 0) return -1;
    for (int i = 0; i < P->n_shapes; i++) {
        const gemm_shape *s = &P->shapes[i];
        if (s->op == op && s->ta == ta && s->tb == tb && s->M == M && s->N == N && s->K == K &&
            s->batch == batch)
            return i;
    }
    if (P->n_shapes == MAX_SHAPES) return -1;
    P->shapes[P->n_shapes] = (gemm_shape){op, ta, tb, M, N, K, batch, 0, 0};
    return P->n_shapes++;
}

#define TIMED(op, shape, flops, call)                                                              \
    do {                                                                                           \
        const call_tok tok_ = call_begin(OP_##op, shape, flops);                                   \
        call;                                                                                      \
        call_end(tok_);                                                                            \
    } while (0)

/* A wrapper that times the table entry `op` of table `tbl` (nn, train or iface). */
#define WRAP(tbl, op, params, args)                                                                \
    static void w_##op params                                                                      \
    {                                                                                              \
        TIMED(op, -1, 0.0, P->real_##tbl->op args);                                                \
    }
/* The same for a GEMM: 2·M·N·K·batch FLOPs, kept per shape too. */
#define WRAP_GEMM(op, params, args, batch)                                                         \
    static void w_##op params                                                                      \
    {                                                                                              \
        const int s_ = shape_index(OP_##op, ta, tb, M, N, K, batch);                               \
        TIMED(op, s_, 2.0 * M * N * K * (double) (batch), P->real_nn->op args);                    \
    }

/* ------------------------------------------------------------------ the wrappers */
WRAP_GEMM(gemm,
          (poa_backend * be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
           const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc),
          (be, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), 1)
WRAP_GEMM(gemm_strided_batched,
          (poa_backend * be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
           const float *A, int lda, long long sA, const float *B, int ldb, long long sB, float beta,
           float *C, int ldc, long long sC, int batch),
          (be, ta, tb, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch), batch)
WRAP_GEMM(gemm_bias,
          (poa_backend * be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
           const float *A, int lda, const float *B, int ldb, const float *bias, float *C, int ldc),
          (be, ta, tb, M, N, K, alpha, A, lda, B, ldb, bias, C, ldc), 1)
WRAP(nn, bias_grad, (poa_backend * be, float *db, const float *dy, int lddy, int rows, int cols),
     (be, db, dy, lddy, rows, cols))
WRAP(nn, gelu_fwd, (poa_backend * be, float *y, const float *x, size_t n), (be, y, x, n))
WRAP(nn, gelu_bwd,
     (poa_backend * be, float *dx, float *y, const float *dy, const float *x, size_t n),
     (be, dx, y, dy, x, n))
WRAP(nn, l2norm_fwd,
     (poa_backend * be, float *y, int ldy, float *norms, const float *x, int ldx, int rows,
      int cols, float eps),
     (be, y, ldy, norms, x, ldx, rows, cols, eps))
WRAP(nn, l2norm_bwd,
     (poa_backend * be, float *dx, int lddx, const float *dy, int lddy, const float *x, int ldx,
      const float *norms, int rows, int cols, float eps),
     (be, dx, lddx, dy, lddy, x, ldx, norms, rows, cols, eps))
WRAP(nn, weightnorm_fwd,
     (poa_backend * be, float *W, float *vnorm, const float *g, const float *v, int K, int C),
     (be, W, vnorm, g, v, K, C))
WRAP(nn, weightnorm_bwd,
     (poa_backend * be, float *dg, float *dv, const float *dW, const float *g, const float *v,
      const float *vnorm, int K, int C),
     (be, dg, dv, dW, g, v, vnorm, K, C))
WRAP(nn, axpy, (poa_backend * be, float *y, float a, const float *x, size_t n), (be, y, a, x, n))
WRAP(nn, scale, (poa_backend * be, float *x, float a, size_t n), (be, x, a, n))
WRAP(nn, pos_resample_fwd,
     (poa_backend * be, float *dst, int ldd, const float *src, int lds, int M, int h0, int w0,
      int d),
     (be, dst, ldd, src, lds, M, h0, w0, d))
WRAP(nn, pos_resample_bwd,
     (poa_backend * be, float *dsrc, int lds, const float *ddst, int ldd, int M, int h0, int w0,
      int d),
     (be, dsrc, lds, ddst, ldd, M, h0, w0, d))
WRAP(nn, act_from_f32, (poa_backend * be, poa_act *dst, const float *src, size_t n),
     (be, dst, src, n))
WRAP_GEMM(act_gemm,
          (poa_backend * be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
           const poa_act *A, int lda, const poa_act *B, int ldb, float beta, poa_act *C, int ldc),
          (be, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), 1)
WRAP_GEMM(act_gemm_bias,
          (poa_backend * be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
           const poa_act *A, int lda, const poa_act *B, int ldb, const float *bias, poa_act *C,
           int ldc),
          (be, ta, tb, M, N, K, alpha, A, lda, B, ldb, bias, C, ldc), 1)
WRAP_GEMM(act_gemm_wgrad,
          (poa_backend * be, poa_trans ta, poa_trans tb, int M, int N, int K, float alpha,
           const poa_act *A, int lda, const poa_act *B, int ldb, float *C, int ldc),
          (be, ta, tb, M, N, K, alpha, A, lda, B, ldb, C, ldc), 1)
WRAP(nn, act_bias_grad,
     (poa_backend * be, float *db, const poa_act *dy, int lddy, int rows, int cols),
     (be, db, dy, lddy, rows, cols))
WRAP(nn, act_gelu_fwd, (poa_backend * be, poa_act *y, const poa_act *x, size_t n), (be, y, x, n))
WRAP(nn, act_gelu_bwd,
     (poa_backend * be, poa_act *dx, poa_act *y, const poa_act *dy, const poa_act *x, size_t n),
     (be, dx, y, dy, x, n))
WRAP(nn, layernorm_fwd,
     (poa_backend * be, poa_act *y, int ldy, float *mean, float *rstd, const poa_act *x, int ldx,
      const float *w, const float *b, int rows, int d, float eps),
     (be, y, ldy, mean, rstd, x, ldx, w, b, rows, d, eps))
WRAP(nn, layernorm_bwd,
     (poa_backend * be, poa_act *dx, int lddx, float dx_beta, float *dw, float *db,
      const poa_act *dy, int lddy, const poa_act *x, int ldx, const float *mean, const float *rstd,
      const float *w, int rows, int d),
     (be, dx, lddx, dx_beta, dw, db, dy, lddy, x, ldx, mean, rstd, w, rows, d))
WRAP(nn, attention_fwd,
     (poa_backend * be, poa_act *out, int ldout, void *saved, const poa_act *qkv, int ldqkv, int B,
      int T, int H, int Dh, float scale, void *scratch),
     (be, out, ldout, saved, qkv, ldqkv, B, T, H, Dh, scale, scratch))
WRAP(nn, attention_bwd,
     (poa_backend * be, poa_act *dqkv, int lddqkv, const poa_act *dout, int lddout,
      const poa_act *qkv, int ldqkv, const void *saved, int B, int T, int H, int Dh, float scale,
      void *scratch),
     (be, dqkv, lddqkv, dout, lddout, qkv, ldqkv, saved, B, T, H, Dh, scale, scratch))
WRAP(nn, residual_ls_fwd,
     (poa_backend * be, poa_act *x, int ldx, const poa_act *base, int ldbase, const poa_act *y,
      int ldy, const float *gamma, const float *s, int B, int T, int d),
     (be, x, ldx, base, ldbase, y, ldy, gamma, s, B, T, d))
WRAP(nn, residual_ls_bwd,
     (poa_backend * be, poa_act *dy, int lddy, float *dgamma, const poa_act *dx, int lddx,
      const poa_act *y, int ldy, const float *gamma, const float *s, int B, int T, int d),
     (be, dy, lddy, dgamma, dx, lddx, y, ldy, gamma, s, B, T, d))
WRAP(nn, patch_unfold,
     (poa_backend * be, poa_act *cols, const float *img, int B, int C, int Hi, int Wi, int Pp),
     (be, cols, img, B, C, Hi, Wi, Pp))
WRAP(nn, tokens_fwd,
     (poa_backend * be, poa_act *x, int ldx, const poa_act *emb, int ldemb, const float *cls,
      const float *pos, int ldpos, const float *mask_token, const uint8_t *mask, int B, int N,
      int d),
     (be, x, ldx, emb, ldemb, cls, pos, ldpos, mask_token, mask, B, N, d))
WRAP(nn, tokens_bwd,
     (poa_backend * be, poa_act *demb, int lddemb, float *dcls, float *dpos, int ldpos,
      float *dmask_token, const poa_act *dx, int lddx, const uint8_t *mask, int B, int N, int d),
     (be, demb, lddemb, dcls, dpos, ldpos, dmask_token, dx, lddx, mask, B, N, d))
WRAP(nn, act_gather_rows,
     (poa_backend * be, poa_act *dst, int ldd, const poa_act *src, int lds, const int32_t *idx,
      int n, int cols),
     (be, dst, ldd, src, lds, idx, n, cols))
WRAP(nn, act_scatter_add_rows,
     (poa_backend * be, poa_act *dst, int ldd, const poa_act *src, int lds, const int32_t *idx,
      int n, int cols),
     (be, dst, ldd, src, lds, idx, n, cols))
WRAP(nn, act_gather_rows_f32,
     (poa_backend * be, float *dst, int ldd, const poa_act *src, int lds, const int32_t *idx, int n,
      int cols),
     (be, dst, ldd, src, lds, idx, n, cols))
WRAP(nn, act_scatter_add_rows_f32,
     (poa_backend * be, poa_act *dst, int ldd, const float *src, int lds, const int32_t *idx, int n,
      int cols),
     (be, dst, ldd, src, lds, idx, n, cols))

WRAP(train, sum_squares, (poa_backend * be, double *out, const float *x, size_t n), (be, out, x, n))
WRAP(train, softmax_rows,
     (poa_backend * be, float *y, int ldy, const float *x, int ldx, int n, int K, float inv_tau),
     (be, y, ldy, x, ldx, n, K, inv_tau))
WRAP(train, xent,
     (poa_backend * be, double *loss, float *ds, int ldds, const float *s, int lds, const float *t,
      int ldt, int t_period, int t_shift, const float *w, int n, int K, float inv_tau,
      float loss_scale, float grad_scale),
     (be, loss, ds, ldds, s, lds, t, ldt, t_period, t_shift, w, n, K, inv_tau, loss_scale,
      grad_scale))
WRAP(train, col_max, (poa_backend * be, double *mx, const float *x, int ldx, int n, int K),
     (be, mx, x, ldx, n, K))
WRAP(train, sk_exp,
     (poa_backend * be, float *q, int ldq, double *psum, const float *x, int ldx, const double *mx,
      int n, int K, float inv_tau),
     (be, q, ldq, psum, x, ldx, mx, n, K, inv_tau))
WRAP(train, sk_normalize,
     (poa_backend * be, float *q, int ldq, double *psum_next, const double *psum, double *scratch,
      int n, int K),
     (be, q, ldq, psum_next, psum, scratch, n, K))
WRAP(train, koleo,
     (poa_backend * be, double *loss, float *dz, int lddz, const float *z, int ldz, int n, int c,
      float loss_scale, float grad_scale, void *scratch),
     (be, loss, dz, lddz, z, ldz, n, c, loss_scale, grad_scale, scratch))
WRAP(train, adamw,
     (poa_backend * be, float *param, float *m, float *v, const float *grad,
      const poa_optim_seg *segs, int nseg, const poa_adamw_args *a, poa_act *param_act),
     (be, param, m, v, grad, segs, nseg, a, param_act))
WRAP(train, ema, (poa_backend * be, float *t, const float *s, size_t n, double m, poa_act *t_act),
     (be, t, s, n, m, t_act))

WRAP(iface, copy, (poa_backend * be, void *dst, const void *src, size_t bytes),
     (be, dst, src, bytes))
WRAP(iface, zero, (poa_backend * be, void *dst, size_t bytes), (be, dst, bytes))

/* ------------------------------------------------------------------ attach / collect / report */
/* Each wrapper replaces an entry the backend has (a NULL entry stays NULL: missing ops are
 * reported by poa_backend_missing_ops as before). */
#define SET(tbl, op) P->tbl.op = P->real_##tbl->op ? w_##op : NULL

poa_profile *poa_profile_attach(poa_backend *be, int events, double (*clock)(void))
{
    POA_CHECK(P == NULL, "poa_profile_attach: a backend is already profiled");
    poa_profile *p = poa_xcalloc(1, sizeof *p);
    P = p;
    p->be = be, p->clock = clock;
    p->real_iface = be->iface, p->real_nn = be->nn, p->real_train = be->train;
    p->iface = *be->iface, p->nn = *be->nn, p->train = *be->train;
    SET(nn, gemm);
    SET(nn, gemm_strided_batched);
    SET(nn, gemm_bias);
    SET(nn, bias_grad);
    SET(nn, gelu_fwd);
    SET(nn, gelu_bwd);
    SET(nn, l2norm_fwd);
    SET(nn, l2norm_bwd);
    SET(nn, weightnorm_fwd);
    SET(nn, weightnorm_bwd);
    SET(nn, axpy);
    SET(nn, scale);
    SET(nn, pos_resample_fwd);
    SET(nn, pos_resample_bwd);
    SET(nn, act_from_f32);
    SET(nn, act_gemm);
    SET(nn, act_gemm_bias);
    SET(nn, act_gemm_wgrad);
    SET(nn, act_bias_grad);
    SET(nn, act_gelu_fwd);
    SET(nn, act_gelu_bwd);
    SET(nn, layernorm_fwd);
    SET(nn, layernorm_bwd);
    SET(nn, attention_fwd);
    SET(nn, attention_bwd);
    SET(nn, residual_ls_fwd);
    SET(nn, residual_ls_bwd);
    SET(nn, patch_unfold);
    SET(nn, tokens_fwd);
    SET(nn, tokens_bwd);
    SET(nn, act_gather_rows);
    SET(nn, act_scatter_add_rows);
    SET(nn, act_gather_rows_f32);
    SET(nn, act_scatter_add_rows_f32);
    SET(train, sum_squares);
    SET(train, softmax_rows);
    SET(train, xent);
    SET(train, col_max);
    SET(train, sk_exp);
    SET(train, sk_normalize);
    SET(train, koleo);
    SET(train, adamw);
    SET(train, ema);
    SET(iface, copy);
    SET(iface, zero);
    if (!clock) {
        p->cap = events > 0 ? events : 16384;
        p->ev = poa_xcalloc((size_t) 2 * p->cap, sizeof *p->ev);
        for (int i = 0; i < 2 * p->cap; i++) p->ev[i] = be->iface->event_create(be);
        p->op_of = poa_xcalloc((size_t) p->cap, sizeof *p->op_of);
        p->shape_of = poa_xcalloc((size_t) p->cap, sizeof *p->shape_of);
    }
    be->iface = &p->iface, be->nn = &p->nn, be->train = &p->train;
    return p;
}

void poa_profile_collect(poa_profile *p)
{
    p->real_iface->synchronize(p->be);
    for (int i = 0; i < p->n; i++) {
        const double dt = p->real_iface->event_elapsed(p->be, p->ev[2 * i], p->ev[2 * i + 1]);
        p->seconds[p->op_of[i]] += dt;
        if (p->shape_of[i] >= 0) p->shapes[p->shape_of[i]].seconds += dt;
    }
    p->n = 0;
    p->steps++;
}

double poa_profile_op_ms(const poa_profile *p, const char *op)
{
    for (int i = 0; i < OP_N; i++)
        if (strcmp(op_name[i], op) == 0) return p->steps ? p->seconds[i] / p->steps * 1e3 : 0.0;
    return -1;
}

double poa_profile_calls_per_step(const poa_profile *p)
{
    long long n = 0;
    for (int i = 0; i < OP_N; i++) n += p->calls[i];
    return p->steps ? (double) (n - p->untimed) / p->steps : 0.0;
}

long long poa_profile_untimed(const poa_profile *p)
{
    return p->untimed;
}

static const poa_profile *sort_p;
static int by_time_desc(const void *a, const void *b)
{
    const double ta = sort_p->seconds[*(const int *) a], tb = sort_p->seconds[*(const int *) b];
    return (ta < tb) - (ta > tb);
}
static int shape_by_time_desc(const void *a, const void *b)
{
    const double ta = ((const gemm_shape *) a)->seconds, tb = ((const gemm_shape *) b)->seconds;
    return (ta < tb) - (ta > tb);
}

void poa_profile_report(const poa_profile *p, FILE *out, double step_seconds, int top_shapes)
{
    const double steps = p->steps > 0 ? p->steps : 1;
    int order[OP_N];
    double sum = 0;
    for (int i = 0; i < OP_N; i++) order[i] = i, sum += p->seconds[i];
    sort_p = p;
    qsort(order, OP_N, sizeof order[0], by_time_desc);
    const double ref = step_seconds > 0 ? step_seconds : sum / steps;
    fprintf(out, "profile: %d step(s), %.0f timed op calls per step, %s\n", p->steps,
            poa_profile_calls_per_step(p),
            p->clock ? "host clock around each call"
                     : "events on the compute stream around each call");
    if (p->untimed)
        fprintf(out, "profile: %lld calls past the pool of %d were not timed\n", p->untimed,
                p->cap);
    fprintf(out, "  %-26s %10s %10s %7s %9s\n", "op", "calls/step", "ms/step", "% step", "TFLOP/s");
    for (int k = 0; k < OP_N; k++) {
        const int i = order[k];
        if (p->calls[i] == 0) continue;
        fprintf(out, "  %-26s %10.1f %10.3f %7.1f", op_name[i], p->calls[i] / steps,
                p->seconds[i] / steps * 1e3, 100 * p->seconds[i] / steps / ref);
        if (p->flops[i] > 0 && p->seconds[i] > 0)
            fprintf(out, " %9.4g", p->flops[i] / p->seconds[i] * 1e-12);
        fprintf(out, "\n");
    }
    fprintf(out, "  %-26s %10s %10.3f %7.1f\n", "all ops", "", sum / steps * 1e3,
            100 * sum / steps / ref);
    if (step_seconds > 0)
        fprintf(out, "  %-26s %10s %10.3f %7.1f  (host gaps, communication waits)\n", "outside ops",
                "", (step_seconds - sum / steps) * 1e3,
                100 * (step_seconds - sum / steps) / step_seconds);
    if (top_shapes <= 0 || p->n_shapes == 0) return;
    gemm_shape s[MAX_SHAPES];
    memcpy(s, p->shapes, sizeof s[0] * (size_t) p->n_shapes);
    qsort(s, (size_t) p->n_shapes, sizeof s[0], shape_by_time_desc);
    fprintf(out, "  GEMM shapes, longest first (%d of %d):\n",
            top_shapes < p->n_shapes ? top_shapes : p->n_shapes, p->n_shapes);
    for (int i = 0; i < p->n_shapes && i < top_shapes; i++) {
        const double fl = 2.0 * s[i].M * s[i].N * s[i].K * s[i].batch * (double) s[i].calls;
        fprintf(out, "  %-20s %c%c M=%-6d N=%-6d K=%-6d", op_name[s[i].op], s[i].ta ? 'T' : 'N',
                s[i].tb ? 'T' : 'N', s[i].M, s[i].N, s[i].K);
        if (s[i].batch != 1) fprintf(out, " x%d", s[i].batch);
        fprintf(out, " %8.1f/step %9.3f ms %9.4g TFLOP/s\n", s[i].calls / steps,
                s[i].seconds / steps * 1e3, s[i].seconds > 0 ? fl / s[i].seconds * 1e-12 : 0.0);
    }
}

void poa_profile_detach(poa_profile *p)
{
    if (!p) return;
    poa_backend *be = p->be;
    be->iface = p->real_iface, be->nn = p->real_nn, be->train = p->real_train;
    if (p->ev) {
        be->iface->synchronize(be);
        for (int i = 0; i < 2 * p->cap; i++) be->iface->event_destroy(be, p->ev[i]);
    }
    free(p->ev), free(p->op_of), free(p->shape_of);
    free(p);
    P = NULL;
}
