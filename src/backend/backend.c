/* backend.c — backend factory, dtype names, the list of ops a backend leaves NULL, and the
 * planning backends of poa-train --dry-run. */
#include "poa_config.h"
#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_sizes.h"
#ifdef POA_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

#include <stddef.h>
#include <stdio.h>
#include <string.h>

const char *poa_dtype_name(poa_dtype t)
{
    return t == POA_DT_BF16 ? "bf16" : "fp32";
}

size_t poa_dtype_size(poa_dtype t)
{
    return t == POA_DT_BF16 ? 2 : 4;
}

/* ------------------------------------------------------------------ missing ops */

typedef void (*any_op)(void);
typedef struct op_entry {
    const char *name;
    size_t offset;
} op_entry;

#define OP(table, f)                                                                               \
    {                                                                                              \
#f, offsetof(table, f)                                                                     \
    }
#define IFACE_OP(f) OP(poa_backend_iface, f)
#define NN_OP(f)    OP(poa_nn_ops, f)
#define TRAIN_OP(f) OP(poa_train_ops, f)

static const op_entry iface_ops[] = {
    IFACE_OP(describe),       IFACE_OP(is_host),      IFACE_OP(mem_info),
    IFACE_OP(destroy),        IFACE_OP(alloc),        IFACE_OP(free),
    IFACE_OP(host_alloc),     IFACE_OP(host_free),    IFACE_OP(upload),
    IFACE_OP(download),       IFACE_OP(copy),         IFACE_OP(zero),
    IFACE_OP(act_upload),     IFACE_OP(act_download), IFACE_OP(upload_async),
    IFACE_OP(download_async), IFACE_OP(event_create), IFACE_OP(event_destroy),
    IFACE_OP(event_record),   IFACE_OP(stream_wait),  IFACE_OP(event_synchronize),
    IFACE_OP(event_elapsed),  IFACE_OP(synchronize),  IFACE_OP(native_stream)};
static const op_entry nn_ops[] = {NN_OP(gemm),
                                  NN_OP(gemm_strided_batched),
                                  NN_OP(gemm_bias),
                                  NN_OP(bias_grad),
                                  NN_OP(gelu_fwd),
                                  NN_OP(gelu_bwd),
                                  NN_OP(l2norm_fwd),
                                  NN_OP(l2norm_bwd),
                                  NN_OP(weightnorm_fwd),
                                  NN_OP(weightnorm_bwd),
                                  NN_OP(axpy),
                                  NN_OP(scale),
                                  NN_OP(pos_resample_fwd),
                                  NN_OP(pos_resample_bwd),
                                  NN_OP(act_from_f32),
                                  NN_OP(act_gemm),
                                  NN_OP(act_gemm_bias),
                                  NN_OP(act_gemm_wgrad),
                                  NN_OP(act_bias_grad),
                                  NN_OP(act_gelu_fwd),
                                  NN_OP(act_gelu_bwd),
                                  NN_OP(layernorm_fwd),
                                  NN_OP(layernorm_bwd),
                                  NN_OP(attention_fwd),
                                  NN_OP(attention_bwd),
                                  NN_OP(attention_saved_bytes),
                                  NN_OP(attention_scratch_bytes),
                                  NN_OP(residual_ls_fwd),
                                  NN_OP(residual_ls_bwd),
                                  NN_OP(patch_unfold),
                                  NN_OP(tokens_fwd),
                                  NN_OP(tokens_bwd),
                                  NN_OP(act_gather_rows),
                                  NN_OP(act_scatter_add_rows),
                                  NN_OP(act_gather_rows_f32),
                                  NN_OP(act_scatter_add_rows_f32)};
static const op_entry train_ops[] = {
    TRAIN_OP(sum_squares), TRAIN_OP(softmax_rows), TRAIN_OP(xent),  TRAIN_OP(col_max),
    TRAIN_OP(sk_exp),      TRAIN_OP(sk_normalize), TRAIN_OP(koleo), TRAIN_OP(koleo_scratch_bytes),
    TRAIN_OP(adamw),       TRAIN_OP(ema)};
/* Every op of the tables is listed (the tables hold function pointers only): an op added to
 * backend.h without a line here stops the build. */
_Static_assert(sizeof iface_ops / sizeof iface_ops[0] == sizeof(poa_backend_iface) / sizeof(any_op),
               "iface_ops[] must list every entry of poa_backend_iface");
_Static_assert(sizeof nn_ops / sizeof nn_ops[0] == sizeof(poa_nn_ops) / sizeof(any_op),
               "nn_ops[] must list every op of poa_nn_ops");
_Static_assert(sizeof train_ops / sizeof train_ops[0] == sizeof(poa_train_ops) / sizeof(any_op),
               "train_ops[] must list every op of poa_train_ops");

#define COUNT(a) ((int) (sizeof(a) / sizeof((a)[0])))

/* NULL entries of one table (a NULL table: all of them). */
static int missing_in(const void *table, const op_entry *ops, int n, const char **names, int max,
                      int count)
{
    for (int i = 0; i < n; i++) {
        any_op f = NULL;
        if (table) memcpy(&f, (const char *) table + ops[i].offset, sizeof f);
        if (f) continue;
        if (names && count < max) names[count] = ops[i].name;
        count++;
    }
    return count;
}

int poa_backend_missing_ops(const poa_backend *be, const char **names, int max)
{
    int count = missing_in(be->iface, iface_ops, COUNT(iface_ops), names, max, 0);
    count = missing_in(be->nn, nn_ops, COUNT(nn_ops), names, max, count);
    return missing_in(be->train, train_ops, COUNT(train_ops), names, max, count);
}

/* ------------------------------------------------------------------ factory */

poa_backend *poa_backend_create(const char *name, const poa_backend_opts *opts, char *errbuf,
                                size_t errlen)
{
    const poa_backend_opts dflt = {POA_DT_F32, 0, 0};
    if (!opts) opts = &dflt;
    if (strcmp(name, "cpu") == 0) return poa_cpu_backend_create(opts, errbuf, errlen);
    if (strcmp(name, "cuda") == 0) {
#ifdef POA_HAVE_CUDA
        return poa_cuda_backend_create(opts, errbuf, errlen);
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
    be->iface->synchronize(be);
    be->iface->destroy(be);
}

int poa_backend_device_count(const char *name)
{
    if (strcmp(name, "cpu") == 0) return 1;
#ifdef POA_HAVE_CUDA
    if (strcmp(name, "cuda") == 0) return poa_cuda_devices();
#endif
    return 0;
}

int poa_backend_missing_ops_of(const char *name, const char **names, int max)
{
    poa_backend shell = {.name = name};
    if (strcmp(name, "cpu") == 0) {
        poa_cpu_backend_tables(&shell.iface, &shell.nn, &shell.train);
        return poa_backend_missing_ops(&shell, names, max);
    }
#ifdef POA_HAVE_CUDA
    if (strcmp(name, "cuda") == 0) {
        poa_cuda_backend_tables(&shell.iface, &shell.nn, &shell.train);
        return poa_backend_missing_ops(&shell, names, max);
    }
#endif
    return poa_backend_missing_ops(&shell, names, max); /* not built: every op */
}

/* ------------------------------------------------------------------ planning backends */

/* The CUDA attention's and KoLeo's sizes from the header their entries use (no device, no CUDA
 * needed), so a build without CUDA and a machine without a GPU plan what a GPU run will ask for. */
static const poa_nn_ops cuda_plan_nn = {
    .attention_saved_bytes = poa_cuda_attention_saved_size,
    .attention_scratch_bytes = poa_cuda_attention_scratch_size,
};

static const poa_train_ops cuda_plan_train = {
    .koleo_scratch_bytes = poa_cuda_koleo_scratch_size,
};

const poa_backend *poa_backend_planner(const char *name, poa_dtype act_dtype, poa_backend *storage)
{
    memset(storage, 0, sizeof *storage);
    storage->name = name;
    storage->act_dtype = act_dtype;
    storage->act_size = poa_dtype_size(act_dtype);
    if (strcmp(name, "cpu") == 0) {
        const poa_backend_iface *iface;
        poa_cpu_backend_tables(&iface, &storage->nn, &storage->train);
        return storage;
    }
    if (strcmp(name, "cuda") == 0) {
        storage->nn = &cuda_plan_nn;
        storage->train = &cuda_plan_train;
        return storage;
    }
    return NULL;
}
