/* linear.c — see linear.h. */
#include "eval/linear.h"
#include "common/poa_error.h"
#include "common/rng.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const double poa_linear_default_lrs[13] = {1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3,
                                           2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1};

/* numpy.round(num / 4): half to even. */
static int round_quarter(int num)
{
    const int q = num / 4, r = num % 4;
    return r < 2 ? q : r > 2 ? q + 1 : q + (q & 1);
}

void poa_linear_block_positions(int depth, int pos[POA_LINEAR_BLOCKS])
{
    for (int i = 1; i < POA_LINEAR_BLOCKS; i++) pos[i - 1] = round_quarter(depth * i);
    pos[POA_LINEAR_BLOCKS - 1] = depth - 1;
}

/* ------------------------------------------------------------------ the grid */

static void add_input(poa_linear *c, int n_blocks, int avgpool, int offset, int dim)
{
    poa_linear_input *in = &c->in[c->n_in++];
    const size_t M = (size_t) c->n_lr * c->n_classes;
    in->n_blocks = n_blocks, in->avgpool = avgpool, in->offset = offset, in->dim = dim;
    in->w_off = c->n_params;
    in->b_off = in->w_off + M * (size_t) dim;
    c->n_params = in->b_off + M;
}

static void set_rates(poa_linear *c, int n_classes, const double *rates, int n_lr, double scale,
                      int max_rows, int row)
{
    POA_CHECK(n_lr >= 1 && n_lr <= POA_LINEAR_MAX_LRS, "%d learning rates (1..%d)", n_lr,
              POA_LINEAR_MAX_LRS);
    POA_CHECK(n_classes >= 1 && max_rows >= 1, "%d classes, %d rows", n_classes, max_rows);
    memset(c, 0, sizeof *c);
    c->n_lr = n_lr, c->n_classes = n_classes, c->max_rows = max_rows, c->row = row;
    for (int l = 0; l < n_lr; l++) c->rate[l] = rates[l], c->lr[l] = rates[l] * scale;
}

/* Buffers for the inputs added; weights N(0, 0.01²) in parameter order, biases 0. */
static void allocate(poa_linear *c, uint64_t seed)
{
    const int K = poa_linear_count(c);
    c->params = poa_xcalloc(c->n_params, sizeof(float));
    c->grad = poa_xcalloc(c->n_params, sizeof(float));
    c->sums = poa_xcalloc(c->n_params + 2 * (size_t) K, sizeof(int64_t));
    c->loss_sum = poa_xcalloc((size_t) K, sizeof(double));
    c->momentum = poa_xcalloc(c->n_params, sizeof(float));
    c->logits = poa_xmalloc(sizeof(float) * (size_t) c->max_rows * c->n_lr * c->n_classes);
    c->row_loss = poa_xmalloc(sizeof(double) * (size_t) c->max_rows * c->n_lr);
    poa_rng r;
    poa_rng_init(&r, seed, 0, POA_RNG_EVAL, 0);
    for (int g = 0; g < c->n_in; g++)
        for (size_t i = c->in[g].w_off; i < c->in[g].b_off; i++)
            c->params[i] = (float) (POA_LINEAR_INIT_STD * poa_rng_normal(&r));
}

void poa_linear_init_blocks(poa_linear *c, int d, int n_classes, const double *rates, int n_lr,
                            double lr_scale, int max_rows, uint64_t seed)
{
    set_rates(c, n_classes, rates, n_lr, lr_scale, max_rows, 5 * d);
    add_input(c, 1, 0, 3 * d, d);
    add_input(c, 1, 1, 3 * d, 2 * d);
    add_input(c, 4, 0, 0, 4 * d);
    add_input(c, 4, 1, 0, 5 * d);
    allocate(c, seed);
}

void poa_linear_init_pixels(poa_linear *c, int dim, int n_classes, const double *rates, int n_lr,
                            double lr_scale, int max_rows, uint64_t seed)
{
    set_rates(c, n_classes, rates, n_lr, lr_scale, max_rows, dim);
    add_input(c, 0, 0, 0, dim);
    allocate(c, seed);
}

void poa_linear_free(poa_linear *c)
{
    free(c->params);
    free(c->grad);
    free(c->sums);
    free(c->loss_sum);
    free(c->momentum);
    free(c->logits);
    free(c->row_loss);
    memset(c, 0, sizeof *c);
}

int poa_linear_count(const poa_linear *c)
{
    return c->n_in * c->n_lr;
}

const poa_linear_input *poa_linear_input_of(const poa_linear *c, int k)
{
    return &c->in[k / c->n_lr];
}

double poa_linear_rate_of(const poa_linear *c, int k)
{
    return c->rate[k % c->n_lr];
}

double poa_linear_lr_of(const poa_linear *c, int k)
{
    return c->lr[k % c->n_lr];
}

/* ------------------------------------------------------------------ training */

int64_t *poa_linear_sums(poa_linear *c, size_t *n)
{
    *n = c->n_params + 2 * (size_t) poa_linear_count(c);
    return c->sums;
}

void poa_linear_zero_grad(poa_linear *c)
{
    memset(c->sums, 0, sizeof(int64_t) * (c->n_params + 2 * (size_t) poa_linear_count(c)));
}

/* logits [rows, n_lr · C] of input g: x_g · W_gᵀ + b_g. */
static void logits_of(poa_linear *c, int g, const float *x, int rows)
{
    const poa_linear_input *in = &c->in[g];
    const int M = c->n_lr * c->n_classes;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, M, in->dim, 1.0f, x + in->offset,
                c->row, c->params + in->w_off, in->dim, 0.0f, c->logits, M);
    const float *b = c->params + in->b_off;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < M; j++) c->logits[(size_t) r * M + j] += b[j];
}

/* One classifier's C logits z of a row → its cross-entropy; z becomes scale · (p − onehot). */
static double cross_entropy(float *z, int C, int label, float scale)
{
    double mx = z[0];
    for (int j = 1; j < C; j++) mx = z[j] > mx ? z[j] : mx;
    double sum = 0;
    for (int j = 0; j < C; j++) sum += exp(z[j] - mx);
    const double lse = mx + log(sum), loss = lse - z[label];
    for (int j = 0; j < C; j++) z[j] = (float) (scale * (exp(z[j] - lse) - (j == label)));
    return loss;
}

/* The parameter ranges of classifier k: its weights [w, w + nw) and biases [b, b + C). */
static void ranges(const poa_linear *c, int k, size_t *w, size_t *nw, size_t *b)
{
    const poa_linear_input *in = &c->in[k / c->n_lr];
    const size_t C = (size_t) c->n_classes, l = (size_t) (k % c->n_lr);
    *nw = C * (size_t) in->dim;
    *w = in->w_off + l * *nw;
    *b = in->b_off + l * C;
}

/* sum[i] += v[i] in units of `unit` (truncated toward zero: any deterministic rounding keeps the
 * sums exact; |v| < 2^62 units, checked by the caller).  The additions wrap around (unsigned),
 * so a partial sum that leaves the int64 range in one order and not in another still ends at
 * the same total. */
static void to_fixed(const float *v, size_t n, double unit, int64_t *sum)
{
    for (size_t i = 0; i < n; i++)
        sum[i] = (int64_t) ((uint64_t) sum[i] + (uint64_t) (int64_t) ((double) v[i] * unit));
}

/* Classifier k's fp32 gradient of one call (c->grad) and its loss sum into the fixed-point
 * sums, or its divergence count + 1 when a value is not finite or not below 2^22 (a batch's
 * gradient is at most the largest |feature|, so its total stays within the int64 range for
 * features below 2^22). */
static void add_to_sums(poa_linear *c, int k, double loss)
{
    size_t w, nw, b;
    ranges(c, k, &w, &nw, &b);
    const int K = poa_linear_count(c);
    int ok = fabs(loss) < 0x1p30;
    for (size_t i = w; i < w + nw && ok; i++) ok = fabsf(c->grad[i]) < 0x1p22f;
    for (size_t i = b; i < b + (size_t) c->n_classes && ok; i++) ok = fabsf(c->grad[i]) < 0x1p22f;
    if (!ok) {
        c->sums[c->n_params + (size_t) K + (size_t) k]++;
        return;
    }
    const double unit = ldexp(1.0, POA_LINEAR_GRAD_BITS);
    to_fixed(c->grad + w, nw, unit, c->sums + w);
    to_fixed(c->grad + b, (size_t) c->n_classes, unit, c->sums + b);
    const float lf = (float) loss; /* the loss is only reported: fp32 is enough */
    to_fixed(&lf, 1, ldexp(1.0, POA_LINEAR_LOSS_BITS), c->sums + c->n_params + (size_t) k);
}

void poa_linear_accumulate(poa_linear *c, const float *x, int rows, const int32_t *labels,
                           float scale)
{
    POA_CHECK(rows >= 0 && rows <= c->max_rows, "%d rows, planned for %d", rows, c->max_rows);
    if (rows == 0) return;
    const int C = c->n_classes, L = c->n_lr, M = L * C;
    double *loss = c->row_loss;
    memset(c->grad, 0, sizeof(float) * c->n_params);
    for (int g = 0; g < c->n_in; g++) {
        const poa_linear_input *in = &c->in[g];
        logits_of(c, g, x, rows);
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++)
            for (int l = 0; l < L; l++)
                loss[(size_t) r * L + l] =
                    cross_entropy(c->logits + (size_t) r * M + (size_t) l * C, C, labels[r], scale);
        /* dW_g = dzᵀ · x_g, db_g = Σ_rows dz; losses summed in row order */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, in->dim, rows, 1.0f, c->logits, M,
                    x + in->offset, c->row, 0.0f, c->grad + in->w_off, in->dim);
        float *db = c->grad + in->b_off;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < M; j++) db[j] += c->logits[(size_t) r * M + j];
        for (int l = 0; l < L; l++) {
            double sum = 0;
            for (int r = 0; r < rows; r++) sum += loss[(size_t) r * L + l];
            add_to_sums(c, g * L + l, sum);
        }
    }
}

void poa_linear_gradient(const poa_linear *c, float *grad, double *loss_sum)
{
    const int K = poa_linear_count(c);
    const double unit = ldexp(1.0, -POA_LINEAR_GRAD_BITS);
    for (size_t i = 0; i < c->n_params; i++) grad[i] = (float) ((double) c->sums[i] * unit);
    for (int k = 0; k < K; k++) {
        const int diverged = c->sums[c->n_params + (size_t) K + (size_t) k] != 0;
        if (loss_sum)
            loss_sum[k] =
                diverged ? NAN
                         : ldexp((double) c->sums[c->n_params + (size_t) k], -POA_LINEAR_LOSS_BITS);
        if (!diverged) continue;
        size_t w, nw, b;
        ranges(c, k, &w, &nw, &b);
        for (size_t i = w; i < w + nw; i++) grad[i] = NAN;
        for (size_t i = b; i < b + (size_t) c->n_classes; i++) grad[i] = NAN;
    }
}

/* PyTorch's SGD on n values: m = 0.9 · m + g; p −= lr · m (fp32). */
static void sgd(float *p, float *m, const float *g, size_t n, float lr)
{
    const float mu = (float) POA_LINEAR_MOMENTUM;
    for (size_t i = 0; i < n; i++) {
        m[i] = m[i] * mu + g[i];
        p[i] += -lr * m[i];
    }
}

void poa_linear_step(poa_linear *c, double factor)
{
    const size_t C = (size_t) c->n_classes;
    poa_linear_gradient(c, c->grad, c->loss_sum);
    for (int g = 0; g < c->n_in; g++) {
        const poa_linear_input *in = &c->in[g];
        for (int l = 0; l < c->n_lr; l++) {
            const float lr = (float) (c->lr[l] * factor);
            const size_t w = in->w_off + (size_t) l * C * in->dim, b = in->b_off + (size_t) l * C;
            sgd(c->params + w, c->momentum + w, c->grad + w, C * in->dim, lr);
            sgd(c->params + b, c->momentum + b, c->grad + b, C, lr);
        }
    }
}

double poa_linear_cosine(int64_t t, int64_t T)
{
    return 0.5 * (1.0 + cos(M_PI * (double) t / (double) T));
}

/* ------------------------------------------------------------------ accuracy */

void poa_linear_score(poa_linear *c, const float *x, int rows, const int32_t *labels,
                      int64_t *correct1, int64_t *correct5)
{
    POA_CHECK(rows >= 0 && rows <= c->max_rows, "%d rows, planned for %d", rows, c->max_rows);
    const int C = c->n_classes, L = c->n_lr, M = L * C;
    for (int g = 0; g < c->n_in && rows > 0; g++) {
        logits_of(c, g, x, rows);
        for (int r = 0; r < rows; r++)
            for (int l = 0; l < L; l++) {
                const float *z = c->logits + (size_t) r * M + (size_t) l * C;
                const int y = labels[r];
                int rank = 0; /* classes ahead of the label */
                for (int j = 0; j < C; j++) rank += z[j] > z[y] || (z[j] == z[y] && j < y);
                correct1[g * L + l] += rank == 0;
                correct5[g * L + l] += rank < 5;
            }
    }
}

int poa_linear_best(const poa_linear *c, const int64_t *correct1)
{
    int best = 0;
    for (int k = 1; k < poa_linear_count(c); k++)
        if (correct1[k] > correct1[best]) best = k;
    return best;
}

/* ------------------------------------------------------------------ data order */

void poa_linear_order_init(poa_linear_order *o, int64_t n, uint64_t seed)
{
    POA_CHECK(n >= 1 && n <= UINT32_MAX, "%lld training images", (long long) n);
    o->n = n, o->seed = seed, o->pass = -1;
    o->perm = poa_xmalloc(sizeof(uint32_t) * (size_t) n);
}

void poa_linear_batch(poa_linear_order *o, int64_t t, int B, int64_t *images)
{
    for (int j = 0; j < B; j++) {
        const int64_t e = t * B + j, pass = e / o->n;
        if (pass != o->pass) {
            poa_rng r;
            poa_rng_init(&r, o->seed, 1, POA_RNG_EVAL, (uint64_t) pass << 40);
            for (int64_t i = 0; i < o->n; i++) o->perm[i] = (uint32_t) i;
            poa_rng_shuffle_u32(&r, o->perm, (uint64_t) o->n);
            o->pass = pass;
        }
        images[j] = o->perm[e % o->n];
    }
}

void poa_linear_order_free(poa_linear_order *o)
{
    free(o->perm);
    o->perm = NULL;
}
