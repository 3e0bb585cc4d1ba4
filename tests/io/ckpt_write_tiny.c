/* ckpt_write_tiny.c — writes a full and an evaluation checkpoint of the tiny table (tests/io/
 * tiny_table.h) for test_checkpoint_h5py.sh.  Element j of parameter i holds i·100000 + j in
 * the teacher and the negated value in the student (exact in float32), so the Python side can
 * check the memory layout, not only names and shapes.
 *   ckpt_write_tiny DIR */
#include "common/log.h"
#include "io/checkpoint.h"
#include "tiny_table.h"

#include <stdio.h>
#include <stdlib.h>

static void fill_pattern(const poa_param_table *t, float *buf, float sign)
{
    for (int i = 0; i < t->n; i++)
        for (size_t j = 0; j < t->p[i].numel; j++)
            buf[t->p[i].offset + j] = sign * (float) ((size_t) i * 100000u + j);
}

static void set_meta(poa_ckpt_meta *m, const tiny_dims *g)
{
    int64_t K[4], widths[] = {16, 32}, depths[] = {1, 2};
    for (int h = 0; h < g->n_heads; h++) K[h] = g->K[h];
    poa_meta_set_string(m, "arch", "vit_tiny");
    poa_meta_set_int(m, "embed_dim", g->D);
    poa_meta_set_int(m, "depth", g->depth);
    poa_meta_set_int(m, "head_dim", 16);
    poa_meta_set_int(m, "mlp_ratio", 4);
    poa_meta_set_int(m, "patch_size", g->patch);
    poa_meta_set_int(m, "img_size", g->img);
    poa_meta_set_int(m, "in_chans", 3);
    poa_meta_set_int(m, "head_hidden_dim", g->hidden);
    poa_meta_set_int(m, "head_bottleneck_dim", g->bottleneck);
    poa_meta_set_ints(m, "head_prototypes", K, g->n_heads);
    poa_meta_set_ints(m, "elastic_widths", widths, 2);
    poa_meta_set_ints(m, "elastic_depths", depths, 2);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return POA_EXIT_USAGE;
    }
    poa_param_table t;
    tiny_table_build(&t, &TINY_DEFAULT);
    float *teacher = calloc(t.total, sizeof(float)), *student = calloc(t.total, sizeof(float));
    fill_pattern(&t, teacher, 1.0f);
    fill_pattern(&t, student, -1.0f);
    uint64_t s0[3] = {1, 2, 3}, s1[2] = {4, 5}, *states[2] = {s0, s1};
    size_t lens[2] = {3, 2};
    poa_ckpt_header h = {.iteration = 799,
                         .epoch = 0,
                         .adam_step = 800,
                         .world_size = 2,
                         .rank_groups_per_rank = 1,
                         .config_yaml = "train:\n  seed: 0\n",
                         .n_rank_states = 2,
                         .rank_state = states,
                         .rank_state_len = lens};
    set_meta(&h.meta, &TINY_DEFAULT);
    poa_ckpt_tensors x = {teacher, student, student, teacher};
    poa_err e;
    char path[4096];
    if (poa_ckpt_write(argv[1], &t, &x, &h, NULL, path, sizeof path, &e) ||
        poa_ckpt_write_eval(argv[1], &t, teacher, &h, NULL, path, sizeof path, &e)) {
        fprintf(stderr, "ckpt_write_tiny: %s\n", e.msg);
        return poa_status_exit_code(e.code);
    }
    free(teacher);
    free(student);
    poa_params_free(&t);
    return 0;
}
