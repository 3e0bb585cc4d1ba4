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

static double gib(size_t bytes)
{
    return (double) bytes / (1024.0 * 1024.0 * 1024.0);
}

/* Backend bytes of the rank loop's two batch slots (loop.c create_slots: the device copies of the
 * global and the local crops of all G groups; the pinned host copies are host memory). */
static size_t batch_slot_bytes(const poa_config *cfg, const poa_model *m)
{
    const size_t G = (size_t) cfg->train.rank_groups, B = (size_t) cfg->train.batch_size_per_gpu;
    const size_t C = (size_t) m->cfg.in_chans, V = (size_t) cfg->crops.local_crops_number;
    const size_t sg = (size_t) cfg->crops.global_crops_size,
                 sl = (size_t) cfg->crops.local_crops_size;
    const size_t global = G * 2 * B * C * sg * sg, local = G * V * B * C * sl * sl;
    return 2 * sizeof(float) * (global + (local ? local : 1));
}

static void mem_line(FILE *f, const char *what, size_t bytes)
{
    fprintf(f, "  %-62s %10.1f MiB\n", what, mib(bytes));
}

/* The step's memory plan (poa_step_memory: what poa_step_create allocates, the same numbers
 * whether planned here or read back from a created step) and the batch slots. */
static void print_memory(const poa_config *cfg, const poa_backend *be, const poa_model *m,
                         const poa_step_memory *x, FILE *f)
{
    const size_t slots = batch_slot_bytes(cfg, m), peak = poa_trainer_peak_backend_bytes(cfg, m, x);
    fprintf(f,
            "memory plan per rank (%s, fp32 master copies, compute %s, %d rank group(s) of %d "
            "images; src/train/README.md, \"Memory\"):\n",
            be->name, poa_dtype_name(be->act_dtype), cfg->train.rank_groups,
            cfg->train.batch_size_per_gpu);
    mem_line(f, "student parameters", x->params);
    mem_line(f, "gradients", x->grads);
    mem_line(f, "optimizer (AdamW m, v)", x->moments);
    mem_line(f, "EMA teacher", x->teacher);
    if (x->compute_copies)
        mem_line(f, "GEMM weights, compute copies (student, teacher)", x->compute_copies);
    mem_line(f, "weight-normalised prototypes (student W, ||v||, dW; teacher)", x->head_weights);
    char what[128];
    snprintf(what, sizeof what, "kept activations, intact student, global (%d of %d images)",
             x->kept[0], x->images[0]);
    mem_line(f, what, x->student[0]);
    mem_line(f, "kept activations, intact student, local", x->student[1]);
    snprintf(what, sizeof what, "kept activations, elastic student, global (planned %dx%d)",
             x->es_width, x->es_depth);
    mem_line(f, what, x->student[2]);
    mem_line(f, "kept activations, elastic student, local", x->student[3]);
    snprintf(what, sizeof what, "teacher targets (cls + %d iBOT rows per group, all heads)",
             x->masked);
    mem_line(f, what, x->targets);
    mem_line(f, "shared working region: the largest of", x->shared);
    mem_line(f, "  teacher (backbone, then head) + gathered rows", x->shared_teacher);
    mem_line(f, "  students' backbone transients", x->shared_backbone);
    snprintf(what, sizeof what, "  heads (%d student rows per group):", x->rows);
    mem_line(f, what, x->shared_heads);
    mem_line(f, "    logits (two [rows, K_max] + class-token rows)", x->heads_logits);
    mem_line(f, "    head activations", x->heads_acts);
    mem_line(f, "    head inputs and their gradients", x->heads_inputs);
    mem_line(f, "    loss and KoLeo scratch", x->heads_scratch);
    mem_line(f, "indices, masks, loss slots, SK workspace, norms, AdamW table",
             x->small + x->optim_table);
    mem_line(f, "step total", x->total);
    mem_line(f, "batch slots (2 device copies of the crops)", slots);
    fprintf(f,
            "  %-62s %10.1f MiB (%.2f GiB, %.2f GB; allocated before the first step, a step "
            "allocates nothing; the device runtime's own memory is not included)\n",
            "peak backend memory", mib(peak), gib(peak), (double) peak / 1e9);
}

size_t poa_trainer_peak_backend_bytes(const poa_config *cfg, const poa_model *m,
                                      const poa_step_memory *x)
{
    return x->total + batch_slot_bytes(cfg, m);
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
    poa_status st = poa_model_config_from_config(cfg, &mc, err);
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
    /* what train.backend = auto saw; scripts count GPUs with it (no nvidia-smi needed) */
    fprintf(f, "CUDA devices visible on this node: %d\n", poa_backend_device_count("cuda"));
    poa_model_memplan p;
    poa_model_memory_plan(be, m, &p);
    poa_model_memory_plan_print(m, &p, f);
    print_subnets(&mc, cfg->student.net_select_scale, f);
    poa_step_config sc;
    st = poa_trainer_step_config(cfg, m, 0, world_size, &sc, err);
    if (st == POA_OK) {
        poa_step_memory x;
        poa_step_memory_plan(be, m, &sc, &x); /* what poa_step_create will allocate */
        print_memory(cfg, be, m, &x, f);
    }
    fflush(f);
    poa_model_free(m);
    free(m);
    return st;
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
    print_memory(cfg, t->be, &t->model, poa_step_memory_of(t->step), f);
    if (t->resumed)
        fprintf(f, "resumed: continuing at iteration %lld of %lld\n", t->start_it, t->total_its);
    else
        fprintf(f, "starting from iteration 0 of %lld\n", t->total_its);
    fflush(f);
}
