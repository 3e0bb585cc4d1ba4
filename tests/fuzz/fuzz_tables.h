/* fuzz_tables.h — the small parameter table of fuzz_checkpoint and of its seeds (three tensors
 * and one state array: a checkpoint of a few KB with every group poa writes). */
#ifndef POA_TESTS_FUZZ_TABLES_H
#define POA_TESTS_FUZZ_TABLES_H

#include "tensor/params.h"

static inline void fuzz_ckpt_table(poa_param_table *t)
{
    static const struct {
        const char *module, *name;
        int ndim;
        int64_t shape[4];
    } p[] = {{"backbone", "cls_token", 3, {1, 1, 4, 0}},
             {"backbone", "blocks.0.norm1.norm.weight", 1, {4, 0, 0, 0}},
             {"dino_head", "last_layer0.weight_v", 2, {3, 4, 0, 0}}};
    poa_params_init(t);
    for (int i = 0; i < 3; i++)
        poa_params_add(t, p[i].module, p[i].name, p[i].ndim, p[i].shape, -1, 0, POA_INIT_ZERO, 0, 0,
                       1.0f, 1.0f);
}

#define FUZZ_CKPT_ARRAY   "dino_center_0"
#define FUZZ_CKPT_ARRAY_N 3

#endif
