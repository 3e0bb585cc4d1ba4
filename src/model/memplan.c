/* memplan.c — memory plan of a model config (docs/algorithm.md §5.4), for the trainer's
 * --dry-run. */
#include "model/head.h"
#include "model/model.h"
#include "model/vit.h"

#include <stdio.h>

void poa_model_memory_plan(const poa_backend *be, const poa_model *m, poa_model_memplan *plan)
{
    const poa_model_config *c = &m->cfg;
    *plan = (poa_model_memplan){0};
    for (int i = 0; i < m->table.n; i++) {
        const poa_param_desc *p = &m->table.p[i];
        plan->n_params += p->numel;
        if (p->flags & POA_PF_BACKBONE)
            plan->n_backbone += p->numel;
        else
            plan->n_heads_params += p->numel;
    }
    const size_t flat = m->table.total * sizeof(float);
    plan->params_bytes = flat;
    plan->grads_bytes = flat;
    plan->adam_bytes = 2 * flat;
    plan->teacher_bytes = flat;
    plan->compute_dtype = be->act_dtype;
    plan->compute_copy_bytes =
        be->act_dtype == POA_DT_F32 ? 0 : 2 * poa_act_bytes(be, m->table.total);
    size_t protos = 0, logits_per_row = 0;
    for (int h = 0; h < c->n_heads; h++) {
        protos += (size_t) c->head_n_prototypes[h] * (c->head_bottleneck_dim + 1);
        logits_per_row += (size_t) c->head_n_prototypes[h];
    }
    /* student: composed W + ||v|| + dW; teacher: W + ||v|| */
    plan->head_weights_bytes = (3 * protos + protos) * sizeof(float);
    plan->head_logits_bytes_per_row = logits_per_row * sizeof(float);
    plan->head_acts_bytes_per_row = poa_head_acts_floats(m, 1, 1) * sizeof(float);
    plan->act_global_per_image = poa_vit_acts_bytes(be, m, 1, c->global_crops_size, 1);
    plan->act_local_per_image = poa_vit_acts_bytes(be, m, 1, c->local_crops_size, 1);
    plan->teacher_act_per_image = poa_vit_acts_bytes(be, m, 1, c->global_crops_size, 0);
}

size_t poa_model_memory_step_bytes(const poa_model_memplan *p, int images, int local_crops)
{
    const size_t B = (size_t) images, V = (size_t) local_crops;
    size_t fixed = p->params_bytes + p->grads_bytes + p->adam_bytes + p->teacher_bytes +
                   p->compute_copy_bytes + p->head_weights_bytes;
    /* two student branches (intact, elastic ≤ intact), each 2 global + V local crops; the
     * teacher runs the 2 global crops without saving activations. */
    size_t backbone = B * (2 * (2 * p->act_global_per_image + V * p->act_local_per_image) +
                           2 * p->teacher_act_per_image);
    /* head rows: cls tokens of every crop for both branches, the teacher's 2 global crops;
     * logits plus their gradient for the student rows (iBOT patch rows not included). */
    size_t rows_student = 2 * B * (2 + V), rows_teacher = 2 * B;
    size_t heads = rows_student * (2 * p->head_logits_bytes_per_row + p->head_acts_bytes_per_row) +
                   rows_teacher * (p->head_logits_bytes_per_row + p->head_acts_bytes_per_row);
    return fixed + backbone + heads;
}

static void line(FILE *f, const char *what, size_t bytes)
{
    if (bytes < 1024 * 1024)
        fprintf(f, "  %-34s %10.1f KiB\n", what, (double) bytes / 1024.0);
    else
        fprintf(f, "  %-34s %10.1f MiB\n", what, (double) bytes / (1024.0 * 1024.0));
}

void poa_model_memory_plan_print(const poa_model *m, const poa_model_memplan *p, FILE *f)
{
    const poa_model_config *c = &m->cfg;
    fprintf(f, "model %s: D_max %d, L_max %d, %d widths x %d depths, %d heads\n", c->arch,
            c->max_embed_dim, c->max_depth, m->n_widths, m->n_depths, c->n_heads);
    fprintf(f, "  %-34s %10zu (backbone %zu, heads %zu)\n", "parameters", p->n_params,
            p->n_backbone, p->n_heads_params);
    line(f, "student parameters (fp32)", p->params_bytes);
    line(f, "gradients", p->grads_bytes);
    line(f, "AdamW moments", p->adam_bytes);
    line(f, "EMA teacher", p->teacher_bytes);
    if (p->compute_copy_bytes) line(f, "GEMM weights, compute copies", p->compute_copy_bytes);
    line(f, "weight-normalised prototypes", p->head_weights_bytes);
    fprintf(f, "  %-34s %10s\n", "compute dtype (activations)", poa_dtype_name(p->compute_dtype));
    line(f, "activations / image, global crop", p->act_global_per_image);
    line(f, "activations / image, local crop", p->act_local_per_image);
    line(f, "teacher workspace / image", p->teacher_act_per_image);
    line(f, "head logits / row", p->head_logits_bytes_per_row);
    line(f, "head activations / row", p->head_acts_bytes_per_row);
}
