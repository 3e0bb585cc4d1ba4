/* seeded_ckpt.c — see seeded_ckpt.h. */
#include "seeded_ckpt.h"
#include "common/rng.h"
#include "io/checkpoint.h"
#include "modelio/model_source.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *config_text(const poa_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    poa_err e;
    poa_config_write_yaml(cfg, f, false, &e);
    fclose(f);
    return text;
}

static int fail(const poa_err *e)
{
    fprintf(stderr, "seeded_ckpt: %s\n", e->msg);
    return poa_status_exit_code(e->code);
}

int seeded_ckpt_write(const char *dir, const char *config_file, const char *const *overrides, int n,
                      uint64_t seed, int64_t iteration, poa_model *m_out, float **teacher_out)
{
    poa_config *cfg = calloc(1, sizeof *cfg);
    poa_err e;
    poa_config_defaults(cfg);
    if (config_file && poa_config_load_yaml(cfg, config_file, &e)) return fail(&e);
    for (int i = 0; i < n; i++)
        if (poa_config_set_override(cfg, overrides[i], &e)) return fail(&e);
    poa_model_config mc;
    if (poa_config_finalize(cfg, 1, &e) || poa_model_config_from_config(cfg, &mc, &e))
        return fail(&e);
    poa_model m;
    poa_model_build(&m, &mc);
    float *teacher = malloc(m.table.total * sizeof(float));
    float *student = malloc(m.table.total * sizeof(float));
    seeded_params(&m, teacher, seed);
    seeded_params(&m, student, seed + 1);
    uint64_t state[2] = {1, 2}, *states[1] = {state};
    size_t lens[1] = {2};
    poa_ckpt_header h = {.iteration = iteration,
                         .epoch = iteration / cfg->train.OFFICIAL_EPOCH_LENGTH,
                         .adam_step = iteration + 1,
                         .world_size = 1,
                         .rank_groups_per_rank = cfg->train.rank_groups,
                         .config_yaml = config_text(cfg),
                         .n_rank_states = 1,
                         .rank_state = states,
                         .rank_state_len = lens};
    poa_model_ckpt_meta(&m, &h.meta);
    poa_ckpt_tensors x = {teacher, student, student, teacher};
    poa_ckpt_write_opts wo = {100, NULL};
    int rc = 0;
    if (poa_ckpt_write(dir, &m.table, &x, &h, &wo, NULL, 0, &e) ||
        poa_ckpt_write_eval(dir, &m.table, teacher, &h, &wo, NULL, 0, &e))
        rc = fail(&e);
    free(h.config_yaml);
    free(student);
    free(cfg);
    if (teacher_out)
        *teacher_out = teacher;
    else
        free(teacher);
    if (m_out)
        *m_out = m;
    else
        poa_model_free(&m);
    return rc;
}
