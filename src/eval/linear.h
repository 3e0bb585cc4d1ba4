/* linear.h — the linear probe of POA (docs/algorithm.md, "Linear probing"): a grid of linear
 * classifiers trained at once on the frozen features of a network, in pieces that MPI ranks can
 * share.
 *
 *     int pos[4];  poa_linear_block_positions(depth, pos);     // blocks whose outputs are kept
 *     poa_linear c;  poa_linear_init_blocks(&c, d, n_classes, lrs, 13, B / 256.0, max_rows, seed);
 *     for t in 0 .. T − 1:
 *         poa_linear_zero_grad(&c);
 *         for each group of batch t's rows this rank computes:
 *             poa_linear_accumulate(&c, x, rows, labels, 1.0f / B);
 *         ... all-reduce (sum, int64) poa_linear_sums(&c) over the ranks ...
 *         poa_linear_step(&c, poa_linear_cosine(t, T));
 *     poa_linear_score(&c, x_val, rows, labels, correct1, correct5);   // += per classifier
 *
 * Features.  A network's feature row holds what every classifier of the grid reads: for a
 * backbone of width d, [cls₀ | cls₁ | cls₂ | cls₃ | mean] (5·d floats): the class tokens of the 4
 * kept block outputs in block order and the mean of the last one's patch tokens, all after the
 * final LayerNorm.  The official classifier inputs are then contiguous slices of that row:
 *     n = 1, no avgpool: cls₃            columns [3d, 4d)
 *     n = 1, avgpool:    cls₃ | mean     columns [3d, 5d)
 *     n = 4, no avgpool: cls₀ … cls₃     columns [0, 4d)
 *     n = 4, avgpool:    cls₀ … mean     columns [0, 5d)
 * For the raw pixels the row is the normalised image and there is one input, the whole row.
 *
 * Classifiers.  One per (input, learning rate), in the official order: n ∈ {1, 4} outer, avgpool
 * {no, yes}, then the learning rates as given.  Classifier k of input g and rate l is
 * k = g · n_lr + l.  Each is Linear(dim, C): weight N(0, 0.01²), bias 0.  The loss is the sum of
 * their plain cross-entropies (each a mean over the batch), so each classifier's gradient is its
 * own; SGD with momentum 0.9 (PyTorch's: buf = 0.9 · buf + grad, p −= lr · buf), no weight decay,
 * lr = rate · lr_scale (lr_scale = B_total / 256) times the cosine factor of the iteration.
 *
 * Parameters.  One flat fp32 buffer, input-major: for input g its weights W_g [n_lr · C, dim_g]
 * (the n_lr classifiers' [C, dim_g] matrices one after the other, row-major) then its biases
 * b_g [n_lr · C] (hdf5-schemas/linear-features.md stores the parameters in this layout).
 *
 * Exact sums.  A batch's gradient is summed in fixed point: each poa_linear_accumulate call
 * computes the fp32 gradient of its rows (one GEMM) and adds it to int64 sums in units of
 * 2^−40 (the losses in units of 2^−24).  Integer sums do not depend on their order, so however
 * the calls are spread over MPI ranks and whatever the order of the all-reduce, the step is the
 * same bits — as long as each call gets the same rows (callers group a batch's rows in units
 * that do not depend on the number of ranks).  A gradient value of 2^22 or more, or a
 * non-finite one, marks its classifier as diverged: its gradient becomes NaN (and so, after the
 * step, its parameters, which then count every row as wrong). */
#ifndef POA_EVAL_LINEAR_H
#define POA_EVAL_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#define POA_LINEAR_BLOCKS    4    /* block outputs kept                                 */
#define POA_LINEAR_MAX_LRS   32   /* learning rates of a grid                           */
#define POA_LINEAR_MAX_IN    4    /* classifier inputs of a backbone: n × avgpool       */
#define POA_LINEAR_MOMENTUM  0.9  /* SGD momentum of the official probe                */
#define POA_LINEAR_INIT_STD  0.01 /* std of the classifiers' initial weights            */
#define POA_LINEAR_GRAD_BITS 40   /* fixed point of the gradient sums: units of 2^-40    */
#define POA_LINEAR_LOSS_BITS 24   /* fixed point of the loss sums: units of 2^-24        */

/* The official learning rates, per 256 images: 1e-5 … 0.1 (13 values). */
extern const double poa_linear_default_lrs[13];

/* The kept block outputs of a (sub-)network of depth L, 0-based along its executed blocks:
 * round(L/4 · i) for i = 1, 2, 3 (numpy's rounding: half to even), then L − 1.  12 → 3, 6, 9,
 * 11; 24 → 6, 12, 18, 23; 14 → 4, 7, 10, 13.  Shallow networks repeat positions (3 → 1, 2, 2,
 * 2), which the official code cannot run (docs/algorithm.md, "Linear probing"). */
void poa_linear_block_positions(int depth, int pos[POA_LINEAR_BLOCKS]);

/* One classifier input: the columns [offset, offset + dim) of a feature row. */
typedef struct poa_linear_input {
    int n_blocks; /* 1 or 4; 0 for the raw pixels */
    int avgpool;
    int offset, dim;
    size_t w_off, b_off; /* its weights and biases in the parameter buffer */
} poa_linear_input;

typedef struct poa_linear {
    int n_in;
    poa_linear_input in[POA_LINEAR_MAX_IN];
    int n_lr;
    double rate[POA_LINEAR_MAX_LRS]; /* per 256 images, as given              */
    double lr[POA_LINEAR_MAX_LRS];   /* rate · lr_scale                         */
    int n_classes;
    int row;          /* floats per feature row                                */
    int max_rows;     /* rows per poa_linear_accumulate / poa_linear_score call */
    size_t n_params;  /* floats of the parameter buffer                       */
    float *params;    /* [n_params]                                            */
    float *grad;      /* [n_params] fp32 gradient: of one call, then of the step */
    int64_t *sums;    /* [n_params + 2·classifiers]: the batch's gradient (2^−40),
                         each classifier's loss sum (2^−24), its divergence count */
    double *loss_sum; /* [classifiers] summed loss of the last step (NaN: diverged) */
    float *momentum;  /* [n_params]                                            */
    float *logits;    /* scratch [max_rows, n_lr · C]                          */
    double *row_loss; /* scratch [max_rows, n_lr]                              */
} poa_linear;

/* The grid of a backbone of width d (4 inputs, feature rows of 5·d) / of raw pixels of dim values
 * (1 input).  Weights drawn from the Philox stream (seed, 0, POA_RNG_EVAL) in parameter order as
 * float(0.01 · N(0, 1)), biases 0, momentum 0. */
void poa_linear_init_blocks(poa_linear *c, int d, int n_classes, const double *rates, int n_lr,
                            double lr_scale, int max_rows, uint64_t seed);
void poa_linear_init_pixels(poa_linear *c, int dim, int n_classes, const double *rates, int n_lr,
                            double lr_scale, int max_rows, uint64_t seed);
void poa_linear_free(poa_linear *c);

/* Classifiers of the grid (n_in · n_lr). */
int poa_linear_count(const poa_linear *c);
/* The input of classifier k and its learning rate (per 256 images and as used). */
const poa_linear_input *poa_linear_input_of(const poa_linear *c, int k);
double poa_linear_rate_of(const poa_linear *c, int k);
double poa_linear_lr_of(const poa_linear *c, int k);

/* The batch's sums (n_params + 2 · classifiers int64: all-reduce them whole, MPI_SUM). */
int64_t *poa_linear_sums(poa_linear *c, size_t *n);
void poa_linear_zero_grad(poa_linear *c);
/* For rows ≤ max_rows feature rows x [rows, row] with labels in [0, C): every classifier's
 * cross-entropy gradient times `scale` (1 / B_total: the batch mean over all ranks' rows),
 * computed in fp32 (softmax in double), added to the fixed-point sums, and its summed loss (not
 * scaled) to the loss sums.  Rows with the same values in the same order give the same bits. */
void poa_linear_accumulate(poa_linear *c, const float *x, int rows, const int32_t *labels,
                           float scale);
/* The sums as an fp32 gradient [n_params] (NaN for a diverged classifier) and, when loss_sum is
 * not NULL, the loss sums [classifiers]. */
void poa_linear_gradient(const poa_linear *c, float *grad, double *loss_sum);
/* One SGD step of every classifier with momentum 0.9 on the summed gradient: lr = lr_k ·
 * factor; the loss sums of the batch into c->loss_sum. */
void poa_linear_step(poa_linear *c, double factor);
/* The cosine factor of iteration t of T (PyTorch's CosineAnnealingLR to 0, stepped per
 * iteration): (1 + cos(π t / T)) / 2. */
double poa_linear_cosine(int64_t t, int64_t T);

/* Every classifier on rows ≤ max_rows: correct1[k] / correct5[k] += the rows whose label has the
 * highest logit / is among the 5 highest (ties to the lower class index). */
void poa_linear_score(poa_linear *c, const float *x, int rows, const int32_t *labels,
                      int64_t *correct1, int64_t *correct5);
/* The classifier with the most correct top-1, the first in grid order among equals. */
int poa_linear_best(const poa_linear *c, const int64_t *correct1);

/* The order of the training images: an endless stream made of permutations of [0, n), one per
 * pass (Fisher-Yates on the Philox stream (seed, 1, POA_RNG_EVAL), pass p from counter p · 2^40);
 * batch t is entries [t · B, (t + 1) · B) of the stream, so passes need not end at a batch. */
typedef struct poa_linear_order {
    int64_t n;
    uint64_t seed;
    int64_t pass; /* the pass in perm, −1: none yet */
    uint32_t *perm;
} poa_linear_order;
void poa_linear_order_init(poa_linear_order *o, int64_t n, uint64_t seed);
/* The B images of batch t (sequential t is cheapest: one shuffle per pass). */
void poa_linear_batch(poa_linear_order *o, int64_t t, int B, int64_t *images);
void poa_linear_order_free(poa_linear_order *o);

#endif
