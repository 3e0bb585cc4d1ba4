/* trainer_report.c — what poa-train prints before training: the startup table and --dry-run
 * (the model, the sub-network set of docs/algorithm.md §3.5 and the memory plan per rank,
 * docs/algorithm.md §5.4). */
#include "poa_config.h"
#include "common/log.h"
#include "train/trainer_config.h"
#include "train/trainer_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_W 64

static double mib(size_t bytes)
{
    return (double) bytes / (1024.0 * 1024.0);
}

/* The candidate counts of docs/algorithm.md §3.5 as a table (rows = depth, columns = width). */
static void print_subnets(const poa_model_config *mc, double scale, FILE *f)
{
    int widths[MAX_W], depths[POA_MODEL_MAX_DEPTH];
    int nw = poa_model_widths(mc, widths, MAX_W),
        nd = poa_model_depths(mc, depths, POA_MODEL_MAX_DEPTH);
    if (nw > MAX_W || nd > POA_MODEL_MAX_DEPTH) {
        fprintf(f, "sub-networks: %d widths x %d depths (too many to list)\n", nw, nd);
        return;
    }
    int *counts = poa_xcalloc((size_t) nw * nd, sizeof(int));
    int total = poa_model_candidate_counts(mc, scale, counts, nw * nd);
    fprintf(f,
            "sub-networks (docs/algorithm.md §3.5): %d widths x %d depths = %d, candidate list "
            "of %d, cycle of %d per rank group (intact excluded); counts (rows depth, columns "
            "width):\n",
            nw, nd, nw * nd, total, total - 1);
    fprintf(f, "  %5s |", "L\\D");
    for (int u = 0; u < nw; u++) fprintf(f, " %5d", widths[u]);
    fprintf(f, "\n");
    for (int v = 0; v < nd; v++) {
        fprintf(f, "  %5d |", depths[v]);
        for (int u = 0; u < nw; u++) {
            int c = counts[u * nd + v];
            if (u == nw - 1 && v == nd - 1) c -= 1; /* the intact network is never sampled */
            fprintf(f, " %5d", c);
        }
        fprintf(f, "\n");
    }
    free(counts);
}

/* Bytes per rank of the buffers the step plans (step.c create_workspaces) beyond the model's
 * fixed buffers and one rank group's activations: teacher targets of all G groups. */
static size_t targets_bytes(const poa_config *cfg, const poa_model *m)
{
    const int G = cfg->train.rank_groups, B = cfg->train.batch_size_per_gpu;
    const int N = poa_model_n_patches(&m->cfg, m->cfg.global_crops_size, m->cfg.global_crops_size);
    size_t K = 0;
    for (int h = 0; h < m->cfg.n_heads; h++) K += (size_t) m->cfg.head_n_prototypes[h];
    size_t rows = (size_t) G * (2 * B + poa_trainer_max_masked(cfg, N));
    return rows * K * sizeof(float);
}

static size_t batch_bytes(const poa_config *cfg)
{
    const size_t G = (size_t) cfg->train.rank_groups, B = (size_t) cfg->train.batch_size_per_gpu;
    const size_t sg = (size_t) cfg->crops.global_crops_size,
                 sl = (size_t) cfg->crops.local_crops_size;
    const size_t V = (size_t) cfg->crops.local_crops_number;
    return G * B * 3 * (2 * sg * sg + V * sl * sl) * sizeof(float);
}

/* be: the run's backend or a planning backend (its compute dtype and attention sizes). */
static void print_memory(const poa_config *cfg, const poa_backend *be, const poa_model *m, FILE *f)
{
    poa_model_memplan p;
    poa_model_memory_plan(be, m, &p);
    const int B = cfg->train.batch_size_per_gpu, V = cfg->crops.local_crops_number;
    size_t fixed = p.params_bytes + p.grads_bytes + p.adam_bytes + p.teacher_bytes +
                   p.compute_copy_bytes + p.head_weights_bytes;
    size_t step = poa_model_memory_step_bytes(&p, B, V);
    size_t acts = step - fixed, tg = targets_bytes(cfg, m), batch = 4 * batch_bytes(cfg);
    fprintf(f,
            "memory plan per rank (fp32 master copies, compute %s, batch of %d rank group(s) of "
            "%d images):\n",
            poa_dtype_name(p.compute_dtype), cfg->train.rank_groups, B);
    fprintf(f, "  %-50s %12zu (backbone %zu, heads %zu)\n", "parameters", p.n_params, p.n_backbone,
            p.n_heads_params);
    fprintf(f, "  %-50s %10.1f MiB\n", "student parameters", mib(p.params_bytes));
    fprintf(f, "  %-50s %10.1f MiB\n", "gradients", mib(p.grads_bytes));
    fprintf(f, "  %-50s %10.1f MiB\n", "optimizer (AdamW m, v)", mib(p.adam_bytes));
    fprintf(f, "  %-50s %10.1f MiB\n", "EMA teacher", mib(p.teacher_bytes));
    if (p.compute_copy_bytes)
        fprintf(f, "  %-50s %10.1f MiB\n", "GEMM weights, compute copies (student, teacher)",
                mib(p.compute_copy_bytes));
    fprintf(f, "  %-50s %10.1f MiB\n", "weight-normalised prototypes", mib(p.head_weights_bytes));
    fprintf(f, "  %-50s %10.1f MiB\n", "activations (one rank group: teacher, 2 students)",
            mib(acts));
    fprintf(f, "  %-50s %10.1f MiB\n", "teacher targets (all groups, cls + iBOT rows)", mib(tg));
    fprintf(f, "  %-50s %10.1f MiB\n", "batch (2 slots: pinned host + device copy)", mib(batch));
    fprintf(f, "  %-50s %10.1f MiB\n", "total (estimate)", mib(step + tg + batch));
}

static void print_run(const poa_config *cfg, int world, const char *backend, FILE *f)
{
    const long long gb = poa_config_global_batch(cfg, world);
    fprintf(f,
            "run: %d rank(s) x %d rank group(s) x %d images = global batch %lld, peak lr %.6g "
            "(%s), %lld iterations (%d epochs x %d), backend %s\n",
            world, cfg->train.rank_groups, cfg->train.batch_size_per_gpu, gb, cfg->optim.lr,
            poa_config_enum_text(POA_CFG_KEY_optim_scaling_rule, cfg->optim.scaling_rule),
            poa_trainer_total_iterations(cfg), cfg->optim.epochs, cfg->train.OFFICIAL_EPOCH_LENGTH,
            backend);
}

poa_status poa_train_dry_run(const poa_config *cfg, int world_size, FILE *f, poa_err *err)
{
    const int kind = poa_trainer_backend_kind(cfg);
    const char *backend = poa_trainer_backend_name(cfg);
    poa_model_config mc;
    poa_status st = poa_trainer_model_config(cfg, &mc, err);
    if (st == POA_OK) st = poa_trainer_check_supported(cfg, kind, err);
    if (st != POA_OK) return st;
    /* the backend's sizes without its device: a GPU-less login node can plan a GPU job */
    poa_backend planner_storage;
    const poa_backend *be =
        poa_backend_planner(backend, poa_trainer_compute_dtype(cfg, kind), &planner_storage);
    POA_CHECK(be, "no planning backend for %s", backend);
    poa_model *m = poa_xcalloc(1, sizeof *m);
    poa_model_build(m, &mc);
    fprintf(f, "poa-train --dry-run (poa %s)\n", PACKAGE_VERSION);
    print_run(cfg, world_size, backend, f);
    poa_model_memplan p;
    poa_model_memory_plan(be, m, &p);
    poa_model_memory_plan_print(m, &p, f);
    print_subnets(&mc, cfg->student.net_select_scale, f);
    print_memory(cfg, be, m, f);
    fflush(f);
    poa_model_free(m);
    free(m);
    return POA_OK;
}

void poa_trainer_print_startup(poa_trainer *t, FILE *f)
{
    const poa_config *cfg = t->cfg;
    const char *threads = getenv("OMP_NUM_THREADS");
    const char *backend = poa_trainer_backend_name(cfg);
    fprintf(f, "poa-train %s: %d rank(s), comm %s, backend %s, OMP_NUM_THREADS %s\n",
            PACKAGE_VERSION, t->world, poa_comm_kind_name(poa_comm_kind_of(t->d)), backend,
            threads ? threads : "(unset)");
    char desc[1024];
    t->be->iface->describe(t->be, desc, sizeof desc);
    fprintf(f, "backend: %s\n", desc); /* may end with "warning: ..." lines */
    print_run(cfg, t->world, backend, f);
    if (strcmp(t->src->name, "synthetic") == 0)
        fprintf(f, "data: synthetic batches (no data set)");
    else
        fprintf(f, "data: %s (%lld images)", cfg->train.dataset_path, t->src->images_total);
    fprintf(f, ", output: %s\n", cfg->train.output_dir);
    fprintf(f,
            "schedule: checkpoint every %d iterations (keep %d), teacher checkpoint every %d, "
            "log every %d; iBOT from iteration %lld\n",
            cfg->train.checkpoint_period_iterations, cfg->train.checkpoint_keep,
            cfg->evaluation.eval_period_iterations, cfg->train.log_period_iterations,
            (long long) cfg->optim.ibot_activate_epochs * cfg->train.OFFICIAL_EPOCH_LENGTH);
    poa_model_memplan p;
    poa_model_memory_plan(t->be, &t->model, &p);
    poa_model_memory_plan_print(&t->model, &p, f);
    print_subnets(&t->model.cfg, cfg->student.net_select_scale, f);
    print_memory(cfg, t->be, &t->model, f);
    if (t->resumed)
        fprintf(f, "resumed: continuing at iteration %lld of %lld\n", t->start_it, t->total_its);
    else
        fprintf(f, "starting from iteration 0 of %lld\n", t->total_its);
    fflush(f);
}
