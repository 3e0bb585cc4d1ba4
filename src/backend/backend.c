/* backend.c — backend factory. */
#include "poa_config.h"
#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#ifdef POA_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef void (*any_op)(void);
typedef struct op_entry {
    const char *name;
    size_t offset;
} op_entry;

#define NN_OP(f)                                                                                   \
    {                                                                                              \
#f, offsetof(poa_nn_ops, f)                                                                \
    }
#define TRAIN_OP(f)                                                                                \
    {                                                                                              \
#f, offsetof(poa_train_ops, f)                                                             \
    }
static const op_entry nn_ops[] = {NN_OP(alloc),
                                  NN_OP(free),
                                  NN_OP(upload),
                                  NN_OP(download),
                                  NN_OP(copy),
                                  NN_OP(zero),
                                  NN_OP(sync),
                                  NN_OP(gemm),
                                  NN_OP(gemm_strided_batched),
                                  NN_OP(gemm_bias),
                                  NN_OP(bias_grad),
                                  NN_OP(layernorm_fwd),
                                  NN_OP(layernorm_bwd),
                                  NN_OP(gelu_fwd),
                                  NN_OP(gelu_bwd),
                                  NN_OP(attention_fwd),
                                  NN_OP(attention_bwd),
                                  NN_OP(attention_scratch),
                                  NN_OP(residual_ls_fwd),
                                  NN_OP(residual_ls_bwd),
                                  NN_OP(patch_unfold),
                                  NN_OP(pos_resample_fwd),
                                  NN_OP(pos_resample_bwd),
                                  NN_OP(tokens_fwd),
                                  NN_OP(tokens_bwd),
                                  NN_OP(gather_rows),
                                  NN_OP(scatter_add_rows),
                                  NN_OP(l2norm_fwd),
                                  NN_OP(l2norm_bwd),
                                  NN_OP(weightnorm_fwd),
                                  NN_OP(weightnorm_bwd),
                                  NN_OP(axpy),
                                  NN_OP(scale)};
static const op_entry train_ops[] = {
    TRAIN_OP(sum_squares),   TRAIN_OP(all_finite), TRAIN_OP(softmax_rows), TRAIN_OP(xent),
    TRAIN_OP(col_max),       TRAIN_OP(sk_exp),     TRAIN_OP(sk_normalize), TRAIN_OP(koleo),
    TRAIN_OP(koleo_scratch), TRAIN_OP(adamw),      TRAIN_OP(ema)};
/* Every op of the tables is listed (the tables hold function pointers only): an op added to
 * backend.h without a line here stops the build. */
_Static_assert(sizeof nn_ops / sizeof nn_ops[0] == sizeof(poa_nn_ops) / sizeof(any_op),
               "nn_ops[] must list every op of poa_nn_ops");
_Static_assert(sizeof train_ops / sizeof train_ops[0] == sizeof(poa_train_ops) / sizeof(any_op),
               "train_ops[] must list every op of poa_train_ops");

static int missing_in(const void *table, const op_entry *ops, int n, const char **names, int max,
                      int count)
{
    for (int i = 0; i < n; i++) {
        any_op f;
        memcpy(&f, (const char *) table + ops[i].offset, sizeof f);
        if (f) continue;
        if (count < max) names[count] = ops[i].name;
        count++;
    }
    return count;
}

int poa_backend_missing_ops(const poa_nn_ops *nn, const poa_train_ops *train, const char **names,
                            int max)
{
    const int n_nn = (int) (sizeof nn_ops / sizeof nn_ops[0]);
    const int n_train = (int) (sizeof train_ops / sizeof train_ops[0]);
    return missing_in(train, train_ops, n_train, names, max,
                      missing_in(nn, nn_ops, n_nn, names, max, 0));
}

poa_backend *poa_backend_create(const char *name, char *errbuf, size_t errlen)
{
    if (strcmp(name, "cpu") == 0) return poa_cpu_backend_create();
    if (strcmp(name, "cuda") == 0) {
#ifdef POA_HAVE_CUDA
        return poa_cuda_backend_create(errbuf, errlen);
#else
        snprintf(errbuf, errlen, "backend 'cuda' is not built (reconfigure with --with-cuda)");
        return NULL;
#endif
    }
    snprintf(errbuf, errlen, "unknown backend '%s' (valid: cpu, cuda)", name);
    return NULL;
}

void poa_backend_destroy(poa_backend *be)
{
    if (!be) return;
#ifdef POA_HAVE_CUDA
    if (strcmp(be->name, "cuda") == 0) {
        poa_cuda_backend_destroy(be);
        return;
    }
#endif
    poa_cpu_backend_destroy(be);
}
