/* backend_ops.h — the harness of tests/ops/test_backend_ops (test_backend_ops.c holds main()):
 * test cases that run one op of the backend tables (src/backend/backend.h) on backend memory,
 * through alloc / upload / download only, and compare what comes back with the naive double
 * references of backend/cpu/cpu_naive.h.
 *
 * A case (bo_case) owns its buffers (bo_buf).  Each buffer is a view (rows × cols with a
 * leading dimension, `off` elements into its allocation, followed by a guard of BO_GUARD
 * elements) whose whole allocation gets random initial values on the host.  bo_run() uploads
 * them, runs the op, downloads every buffer and checks what every op promises:
 *   - inputs are not modified, and outputs are not modified outside their views (padding
 *     columns, the elements before an offset view, the guard after it);
 *   - (check mode) the op run a second time on the same initial state gives the same bytes.
 * The case then compares its outputs with references computed on the host from the values
 * the backend actually holds (for activations: the values after rounding to the compute dtype).
 */
#ifndef POA_TESTS_OPS_BACKEND_OPS_H
#define POA_TESTS_OPS_BACKEND_OPS_H

#include "backend/backend.h"
#include "tests/lib/cpu_naive.h"

#include <stddef.h>
#include <stdint.h>

/* Unit roundoffs: one rounding to fp32 / bf16 changes a value by at most this, relatively
 * (fp32 keeps 24 significant bits, bf16 8). */
#define BO_U32 0x1p-24
#define BO_U16 0x1p-8

typedef enum { BO_CHECK = 0, BO_GRAD, BO_PERF } bo_mode;

/* One backend in one compute dtype, and the tallies of its cases. */
typedef struct bo_ctx {
    poa_backend *be;
    const char *name;      /* the backend's name for poa_backend_create */
    poa_backend_opts opts; /* how it was created                        */
    bo_mode mode;
    uint64_t seed;
    int verbose;
    int small;      /* --small: no case over BO_SMALL_ELEMENTS, no repeat runs         */
    int reps;       /* --perf: timed repetitions per op (the median is printed)      */
    int images;     /* --perf: images per batch (rows = images × tokens)              */
    const char *op; /* the op under test (set by the driver)                           */
    int cases, failed, skipped;
    double perf_total_s; /* --perf: sum of the medians                                 */
    int perf_lines;
} bo_ctx;

/* poa_backend_create, and the test fixture "emu" (backend_ops_emu.c: the CPU backend with
 * bf16 activations). */
poa_backend *bo_backend_create(const char *name, const poa_backend_opts *opts, char *err,
                               size_t errlen);
poa_backend *bo_emu_create(char *err, size_t errlen);

/* The unit roundoff of the compute dtype (BO_U32 or BO_U16). */
double bo_u_act(const bo_ctx *c);
/* x rounded to the compute dtype, as the backend's conversions round (nearest even). */
double bo_round_act(const bo_ctx *c, double x);
const char *bo_dtype(const bo_ctx *c);

typedef enum { BO_F32, BO_ACT, BO_F64, BO_I32, BO_U8, BO_BYTES } bo_kind;
typedef enum { BO_IN = 0, BO_OUT = 1, BO_SCRATCH = 2 } bo_role;

#define BO_GUARD 8
/* --small (for compute-sanitizer): cases whose largest buffer exceeds this are skipped, and
 * no case runs twice. */
#define BO_SMALL_ELEMENTS 131072

struct bo_case;
typedef struct bo_buf {
    struct bo_case *owner;
    const char *name;
    bo_kind kind;
    bo_role role;
    int batch, rows, cols, ld; /* the view: batch blocks of rows × cols, ld apart rows,  */
    size_t stride;             /* blocks `stride` elements apart                         */
    size_t off;                /* elements before the view                                   */
    size_t n;                  /* elements allocated: off + view span + guard                 */
    size_t guard;              /* elements after the view: BO_GUARD (bytes: 8 · BO_GUARD)     */
    size_t esize;              /* bytes per element in backend memory                         */
    void *dev;                 /* the allocation                                              */
    double *h;                 /* initial values of all n elements, as the backend holds them */
    double *g;                 /* values after the (first) run                                */
    unsigned char *init, *got; /* backend bytes before and after the run              */
    unsigned char *inview;     /* 1 for the elements of the view                      */
    int prepared;
} bo_buf;

#define BO_MAX_BUFS 16
#define BO_MAX_TMP  64

typedef struct bo_case {
    bo_ctx *c;
    char desc[320];
    bo_buf buf[BO_MAX_BUFS];
    int nbuf;
    void *tmp[BO_MAX_TMP];
    int ntmp;
    int failed;
    int runs;
    int skip;   /* --small and a buffer too large: nothing runs, nothing is compared */
    char *msgs; /* lines printed under the case's line */
} bo_case;

/* Element passes when |got − want| ≤ atol + rtol·|want| + mtol·mag (mag: per element, the
 * magnitude of the terms the value sums, e.g. Σ|a||b| of a GEMM; 0 where not given).  NaN
 * wants NaN. */
typedef struct bo_tol {
    double atol, rtol, mtol;
} bo_tol;

/* ------------------------------------------------------------------------ cases */
void bo_case_begin(bo_case *k, bo_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints the case's line (ok / FAIL), frees everything, tallies; returns 1 if it passed. */
int bo_case_end(bo_case *k);
/* A failure of the case with a message (printed under the case's line). */
void bo_fail(bo_case *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line printed under the case's line with --verbose. */
void bo_note(bo_case *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Zeroed host memory freed with the case. */
void *bo_tmp(bo_case *k, size_t bytes);
double *bo_tmpd(bo_case *k, size_t n);

/* A buffer of the case: a rows × cols view with leading dimension ld, `off` elements into the
 * allocation; initial values uniform in [-1, 1) (integers: 0) from a stream named by the
 * case, the buffer and --seed.  Change b->h (whole allocation) before the first bo_run. */
bo_buf *bo_new(bo_case *k, const char *name, bo_kind kind, bo_role role, int rows, int cols, int ld,
               size_t off);
/* A batch of views, `stride` elements apart (strided-batched GEMM operands). */
bo_buf *bo_new_batched(bo_case *k, const char *name, bo_kind kind, bo_role role, int batch,
                       int rows, int cols, int ld, size_t stride, size_t off);
/* Shorthands: a contiguous vector of n elements. */
bo_buf *bo_vec(bo_case *k, const char *name, bo_kind kind, bo_role role, size_t n);
/* Initial values uniform in [lo, hi) over the whole allocation. */
void bo_fill(bo_buf *b, double lo, double hi);
/* Initial bytes of a BO_BYTES buffer (instead of random ones). */
void bo_set_bytes(bo_buf *b, const void *src, size_t bytes);

/* Index in the allocation of element (r, c) of block i of the view. */
static inline size_t bo_index(const bo_buf *b, int i, int r, int c)
{
    return b->off + (size_t) i * b->stride + (size_t) r * b->ld + (size_t) c;
}

/* The view in backend memory. */
void *bo_dev(const bo_buf *b);
#define BO_F(b) ((float *) bo_dev(b))
#define BO_A(b) ((poa_act *) bo_dev(b))
#define BO_D(b) ((double *) bo_dev(b))
#define BO_I(b) ((int32_t *) bo_dev(b))
#define BO_U(b) ((uint8_t *) bo_dev(b))
/* Host views: initial values, values after the run (double, whole-allocation arrays offset
 * to the view). */
#define BO_HV(b) ((b)->h + (b)->off)
#define BO_GV(b) ((b)->g + (b)->off)
/* A copy of the initial values (whole allocation) for a reference to update; its view. */
double *bo_want(bo_case *k, const bo_buf *b);
#define BO_WV(w, b) ((w) + (b)->off)
/* got − initial values (whole allocation): what a += op added. */
double *bo_delta(bo_case *k, const bo_buf *b);
/* Host copies of integer buffers' initial values (view pointer). */
const int32_t *bo_i32(const bo_buf *b);
const uint8_t *bo_u8(const bo_buf *b);

/* Uploads the buffers made so far (their host values become what the backend holds), so that
 * inputs computed on the host from them (saved statistics) see the rounded values; buffers
 * made later are uploaded by bo_run. */
void bo_prepare(bo_case *k);
/* Uploads the initial state (every run), runs fn(be, args), downloads and checks the
 * promises above; in check mode runs it twice. */
typedef void (*bo_fn)(poa_backend *be, void *args);
void bo_run(bo_case *k, bo_fn fn, void *args);

/* Compare b's view after the run with want (whole-allocation layout); mag may be NULL. */
void bo_expect(bo_case *k, const bo_buf *b, const double *want, const double *mag, bo_tol tol);
/* The same for what a += op added: got − initial values against `added` (whole layout). */
void bo_expect_added(bo_case *k, const bo_buf *b, const double *added, const double *mag,
                     bo_tol tol);
/* Norm-wise: ||got − want|| / ||want|| ≤ ntol over the view (the worst element printed). */
void bo_expect_norm(bo_case *k, const bo_buf *b, const double *want, double ntol);
/* The same over two arrays of n values (e.g. a += op's delta, from bo_view_copy). */
void bo_expect_norm_values(bo_case *k, const char *what, const double *got, const double *want,
                           size_t n, double ntol);
/* A contiguous copy (batch·rows·cols values) of b's view in a whole-allocation array. */
double *bo_view_copy(bo_case *k, const bo_buf *b, const double *full);
/* A scalar: |got − want| ≤ rtol·|want| (+ atol). */
void bo_expect_scalar(bo_case *k, const char *what, double got, double want, double atol,
                      double rtol);
/* Two buffers (views of equal shape) hold the same bytes after the run. */
void bo_expect_same_bytes(bo_case *k, const bo_buf *a, const bo_buf *b);
/* The view after the run is bit for bit its initial state. */
void bo_expect_unchanged(bo_case *k, const bo_buf *b);

/* Largest |x| over a rows × cols view. */
double bo_max_abs(const double *x, int rows, int cols, int ld);

/* ------------------------------------------------------------------------ gradients */
/* L(ctx): the objective, evaluated by a naive forward on the current double inputs. */
typedef double (*bo_objective)(void *ctx);
/* Central finite differences of L with respect to entries of the rows × cols view `param`
 * (perturbed in place and restored), at most max_checks entries spread over the view.  The
 * gradients hold entry (r, c) at r·ldg + c; `naive` (the reference backward, may be NULL)
 * must match within tol_naive, `got` (the backend's, may be NULL) within tol_got, both
 * relative to max |FD| over the checked entries (at least 1e-3). */
void bo_fd(bo_case *k, const char *what, bo_objective L, void *ctx, double *param, int rows,
           int cols, int ld, const double *naive, const double *got, int ldg, int max_checks,
           double h, double tol_naive, double tol_got);
/* Σ w ⊙ y over a rows × cols view (ld for both). */
double bo_dot(const double *w, const double *y, int rows, int cols, int ld);

/* ------------------------------------------------------------------------ timing */
/* Backend memory of n elements of `kind` with values uniform in [lo, hi) (perf mode). */
void *bo_perf_alloc(bo_ctx *c, bo_kind kind, size_t n, double lo, double hi);
void bo_perf_free(bo_ctx *c, void *p);
/* Median seconds of fn over c->reps runs (after one untimed run), timed with the backend's
 * events on its compute stream. */
double bo_time(bo_ctx *c, bo_fn fn, void *args);
/* One line: the op, its shape, the median time and the rate (GB/s from `bytes`, TFLOP/s
 * from `flops` when > 0). */
void bo_perf_line(bo_ctx *c, const char *shape, double seconds, double bytes, double flops);

/* ------------------------------------------------------------------------ the op tests */
/* What tests ops of the tables in each mode (NULL: nothing in that mode). */
typedef void (*bo_test_fn)(bo_ctx *c);
typedef struct bo_op_test {
    const char *ops;   /* the table entries it tests, space-separated            */
    const char *needs; /* other entries its cases call (besides memory/transfers) */
    bo_test_fn check, grad, perf;
} bo_op_test;

/* backend_ops_iface.c */
void bo_check_describe(bo_ctx *c);
void bo_check_mem_info(bo_ctx *c);
void bo_check_destroy(bo_ctx *c);
void bo_check_alloc(bo_ctx *c);
void bo_check_host_alloc(bo_ctx *c);
void bo_check_copies(bo_ctx *c);
void bo_check_act_transfer(bo_ctx *c);
void bo_check_async(bo_ctx *c);
void bo_check_events(bo_ctx *c);
void bo_check_native_stream(bo_ctx *c);
void bo_perf_copies(bo_ctx *c);
void bo_perf_act_transfer(bo_ctx *c);

/* backend_ops_gemm.c */
void bo_check_gemm(bo_ctx *c);
void bo_check_gemm_strided_batched(bo_ctx *c);
void bo_check_gemm_bias(bo_ctx *c);
void bo_check_act_gemm(bo_ctx *c);
void bo_check_act_gemm_bias(bo_ctx *c);
void bo_check_act_gemm_wgrad(bo_ctx *c);
void bo_check_bias_grad(bo_ctx *c);
void bo_check_act_bias_grad(bo_ctx *c);
void bo_grad_bias_grad(bo_ctx *c);
void bo_grad_act_bias_grad(bo_ctx *c);
void bo_grad_act_gemm(bo_ctx *c);
void bo_grad_gemm(bo_ctx *c);
void bo_perf_gemm(bo_ctx *c);
void bo_perf_gemm_strided_batched(bo_ctx *c);
void bo_perf_gemm_bias(bo_ctx *c);
void bo_perf_act_gemm(bo_ctx *c);
void bo_perf_act_gemm_bias(bo_ctx *c);
void bo_perf_act_gemm_wgrad(bo_ctx *c);
void bo_perf_bias_grad(bo_ctx *c);
void bo_perf_act_bias_grad(bo_ctx *c);

/* backend_ops_nn.c */
void bo_check_gelu_fwd(bo_ctx *c);
void bo_check_gelu_bwd(bo_ctx *c);
void bo_check_act_gelu_fwd(bo_ctx *c);
void bo_check_act_gelu_bwd(bo_ctx *c);
void bo_grad_gelu(bo_ctx *c);
void bo_grad_act_gelu(bo_ctx *c);
void bo_check_l2norm_fwd(bo_ctx *c);
void bo_check_l2norm_bwd(bo_ctx *c);
void bo_grad_l2norm(bo_ctx *c);
void bo_check_weightnorm_fwd(bo_ctx *c);
void bo_check_weightnorm_bwd(bo_ctx *c);
void bo_grad_weightnorm(bo_ctx *c);
void bo_check_axpy(bo_ctx *c);
void bo_check_scale(bo_ctx *c);
void bo_check_pos_resample_fwd(bo_ctx *c);
void bo_check_pos_resample_bwd(bo_ctx *c);
void bo_grad_pos_resample(bo_ctx *c);
void bo_check_act_from_f32(bo_ctx *c);
void bo_perf_gelu_fwd(bo_ctx *c);
void bo_perf_gelu_bwd(bo_ctx *c);
void bo_perf_act_gelu_fwd(bo_ctx *c);
void bo_perf_act_gelu_bwd(bo_ctx *c);
void bo_perf_l2norm_fwd(bo_ctx *c);
void bo_perf_l2norm_bwd(bo_ctx *c);
void bo_perf_weightnorm_fwd(bo_ctx *c);
void bo_perf_weightnorm_bwd(bo_ctx *c);
void bo_perf_axpy(bo_ctx *c);
void bo_perf_scale(bo_ctx *c);
void bo_perf_pos_resample_fwd(bo_ctx *c);
void bo_perf_pos_resample_bwd(bo_ctx *c);
void bo_perf_act_from_f32(bo_ctx *c);

/* backend_ops_vit.c */
void bo_check_layernorm_fwd(bo_ctx *c);
void bo_check_layernorm_bwd(bo_ctx *c);
void bo_grad_layernorm(bo_ctx *c);
void bo_check_attention_fwd(bo_ctx *c);
void bo_check_attention_bwd(bo_ctx *c);
void bo_check_attention_sizes(bo_ctx *c);
void bo_grad_attention(bo_ctx *c);
void bo_check_residual_ls_fwd(bo_ctx *c);
void bo_check_residual_ls_bwd(bo_ctx *c);
void bo_grad_residual_ls(bo_ctx *c);
void bo_check_patch_unfold(bo_ctx *c);
void bo_check_tokens_fwd(bo_ctx *c);
void bo_check_tokens_bwd(bo_ctx *c);
void bo_grad_tokens(bo_ctx *c);
void bo_check_act_gather_rows(bo_ctx *c);
void bo_check_act_scatter_add_rows(bo_ctx *c);
void bo_check_act_gather_rows_f32(bo_ctx *c);
void bo_check_act_scatter_add_rows_f32(bo_ctx *c);
void bo_grad_act_scatter_add_rows(bo_ctx *c);
void bo_grad_act_scatter_add_rows_f32(bo_ctx *c);
void bo_perf_layernorm_fwd(bo_ctx *c);
void bo_perf_layernorm_bwd(bo_ctx *c);
void bo_perf_attention_fwd(bo_ctx *c);
void bo_perf_attention_bwd(bo_ctx *c);
void bo_perf_residual_ls_fwd(bo_ctx *c);
void bo_perf_residual_ls_bwd(bo_ctx *c);
void bo_perf_patch_unfold(bo_ctx *c);
void bo_perf_tokens_fwd(bo_ctx *c);
void bo_perf_tokens_bwd(bo_ctx *c);
void bo_perf_act_gather_rows(bo_ctx *c);
void bo_perf_act_scatter_add_rows(bo_ctx *c);
void bo_perf_act_gather_rows_f32(bo_ctx *c);
void bo_perf_act_scatter_add_rows_f32(bo_ctx *c);

/* backend_ops_train.c */
void bo_check_sum_squares(bo_ctx *c);
void bo_check_softmax_rows(bo_ctx *c);
void bo_check_xent(bo_ctx *c);
void bo_grad_xent(bo_ctx *c);
void bo_check_col_max(bo_ctx *c);
void bo_check_sk_exp(bo_ctx *c);
void bo_check_sk_normalize(bo_ctx *c);
void bo_check_koleo(bo_ctx *c);
void bo_grad_koleo(bo_ctx *c);
void bo_check_adamw(bo_ctx *c);
void bo_check_ema(bo_ctx *c);
void bo_perf_sum_squares(bo_ctx *c);
void bo_perf_softmax_rows(bo_ctx *c);
void bo_perf_xent(bo_ctx *c);
void bo_perf_col_max(bo_ctx *c);
void bo_perf_sk_exp(bo_ctx *c);
void bo_perf_sk_normalize(bo_ctx *c);
void bo_perf_koleo(bo_ctx *c);
void bo_perf_adamw(bo_ctx *c);
void bo_perf_ema(bo_ctx *c);

/* Perf shapes. */
typedef struct bo_vit {
    const char *name;
    int d, heads, head_dim, mlp;
} bo_vit;
extern const bo_vit bo_vits[2]; /* ViT-S/16, ViT-L/16 */
#define BO_TOKENS       197     /* 224-px crop, patch 16, + cls */
#define BO_LOCAL_TOKENS 37      /* 96-px crop, patch 16, + cls */
#define BO_PROTOTYPES   65536   /* the DINO head's K                       */
#define BO_HEAD_DIM     256     /* the heads' bottleneck                   */

#endif
