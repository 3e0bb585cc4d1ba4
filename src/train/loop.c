/* loop.c — the POA pretraining rank loop (see loop.h).  Order of one iteration (docs/algorithm.md
 * §7):
 *   1. this rank's batch of G rank groups, fetched from the source and uploaded during the
 *      previous iteration's step (see "Batches" below);
 *   2. poa_step_run (schedules, sub-networks, teacher + SK over all ranks, students, losses,
 *      backward with the bucketed all-reduce, non-finite guard, AdamW, EMA); once its passes
 *      are enqueued it stages the next batch;
 *   3. loss slots averaged over the ranks (one small all-reduce) and the signal agreement
 *      (another), so every rank takes the same decisions;
 *   4. log line + metrics record, checkpoints (periods: docs/algorithm.md §14), stop on
 *      signal / max steps.
 */
#include "poa_config.h"
#include "train/loop.h"
#include "backend/backend_profile.h"
#include "common/log.h"
#include "common/timer.h"
#include "comm/signals.h"
#include "io/checkpoint.h"
#include "train/trainer_config.h"
#include "train/trainer_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void poa_trainer_opts_default(poa_trainer_opts *o)
{
    memset(o, 0, sizeof *o);
    o->debug_nonfinite_at = -1;
    o->profile_at = -1;
}

const poa_trainer_summary *poa_trainer_get_summary(const poa_trainer *t)
{
    return &t->summary;
}
poa_step *poa_trainer_step(poa_trainer *t)
{
    return t->step;
}
const poa_step_report *poa_trainer_last_report(const poa_trainer *t)
{
    return &t->last_report;
}
const poa_model *poa_trainer_model(const poa_trainer *t)
{
    return &t->model;
}
double poa_trainer_last_loss(const poa_trainer *t, double terms[])
{
    if (terms) memcpy(terms, t->last_terms, sizeof t->last_terms);
    return t->last_loss_global;
}

/* ------------------------------------------------------------------ creation */

poa_status poa_trainer_agree(poa_trainer *t, poa_status st, poa_err *err)
{
    int code = poa_comm_max_int(t->d, (int) st);
    if (code == POA_OK) return POA_OK;
    int root = t->world - poa_comm_max_int(t->d, st != POA_OK ? t->world - t->rank : 0);
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", st != POA_OK ? err->msg : "");
    poa_comm_host_broadcast(t->d, msg, sizeof msg, root);
    err->code = (poa_status) code;
    snprintf(err->msg, sizeof err->msg, "%s", msg);
    return (poa_status) code;
}
#define agree poa_trainer_agree

/* mkdir -p */
static poa_status make_dirs(const char *path, poa_err *err)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return poa_err_set(err, POA_ERR_IO, "cannot create output directory %s: %s", buf,
                               strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return poa_err_set(err, POA_ERR_IO, "cannot create output directory %s: %s", buf,
                           strerror(errno));
    return POA_OK;
}

/* Rank 0: the output directory exists (created if needed) and takes files. */
static poa_status check_output_dir(const char *dir, poa_err *err)
{
    if (!dir[0]) return poa_err_set(err, POA_ERR_ARG, "no output directory (--output DIR)");
    poa_status st = make_dirs(dir, err);
    if (st != POA_OK) return st;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return poa_err_set(err, POA_ERR_IO, "output %s is not a directory", dir);
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.poa-write-test.%ld", dir, (long) getpid());
    FILE *f = fopen(probe, "w");
    if (!f || fputs("poa\n", f) < 0 || fclose(f) != 0)
        return poa_err_set(err, POA_ERR_IO, "output directory %s is not writable: %s", dir,
                           strerror(errno));
    unlink(probe);
    char logs[4200];
    snprintf(logs, sizeof logs, "%s/logs", dir);
    return make_dirs(logs, err);
}

static poa_status open_outputs(poa_trainer *t, poa_err *err)
{
    const char *dir = t->cfg->train.output_dir;
    char path[4200];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    poa_status st = poa_config_save(t->cfg, path, true, err);
    if (st != POA_OK) return poa_err_set(err, POA_ERR_IO, "%s", err->msg);
    snprintf(path, sizeof path, "%s/training_metrics.json", dir);
    st = poa_metrics_open(&t->metrics, path, t->resumed ? t->start_it - 1 : -1, err);
    if (st != POA_OK) return st;
    snprintf(path, sizeof path, "%s/logs/log.txt", dir);
    t->log_file = fopen(path, "a");
    if (!t->log_file) return poa_err_set(err, POA_ERR_IO, "%s: %s", path, strerror(errno));
    return POA_OK;
}

int poa_trainer_backend_kind(const poa_config *cfg)
{
    const int b = cfg->train.backend;
    if (b != POA_BACKEND_AUTO) return b;
#ifdef POA_HAVE_NCCL
    /* CUDA only where it can train: NCCL built, a GPU visible, no op missing */
    if (poa_backend_device_count("cuda") > 0 && poa_backend_missing_ops_of("cuda", NULL, 0) == 0)
        return POA_BACKEND_CUDA;
#endif
    return POA_BACKEND_CPU;
}

const char *poa_trainer_backend_name(const poa_config *cfg)
{
    return poa_config_enum_text(POA_CFG_KEY_train_backend, poa_trainer_backend_kind(cfg));
}

/* A backend that lacks ops the step calls would crash on the first one: say so instead. */
static poa_status check_backend_complete(const poa_trainer *t, poa_err *err)
{
    const char *names[6];
    const int n = poa_backend_missing_ops(t->be, names, 6);
    if (n == 0) return POA_OK;
    char list[256] = "";
    for (int i = 0; i < n && i < 6; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    return poa_err_set(err, POA_ERR_CONFIG,
                       "train.backend = %s: this backend does not implement %d of the ops "
                       "training needs yet (%s%s); use train.backend = cpu",
                       poa_trainer_backend_name(t->cfg), n, list, n > 6 ? ", ..." : "");
}

/* The backend of train.backend in the run's compute dtype, on GPU local rank mod GPUs. */
static poa_status create_backend(poa_trainer *t, poa_err *err)
{
    t->backend_kind = poa_trainer_backend_kind(t->cfg);
    const char *name = poa_trainer_backend_name(t->cfg);
    poa_status st = poa_trainer_check_supported(t->cfg, t->backend_kind, err);
    if (st != POA_OK) return st;
    const int gpus = poa_backend_device_count(name);
    poa_backend_opts opts = {
        .act_dtype = poa_trainer_compute_dtype(t->cfg, t->backend_kind),
        .device = gpus > 0 ? poa_comm_local_rank(t->d) % gpus : 0,
    };
    /* TF32 for the heads' fp32 GEMMs in bf16 runs; fp32 runs (parity) keep full fp32 */
    opts.allow_tf32 = opts.act_dtype != POA_DT_F32;
    char msg[512] = "";
    t->be = poa_backend_create(name, &opts, msg, sizeof msg);
    if (!t->be) return poa_err_set(err, POA_ERR_CONFIG, "train.backend = %s: %s", name, msg);
    if ((st = check_backend_complete(t, err)) != POA_OK) return st;
    if (!t->be->iface->is_host(t->be) && poa_comm_kind_of(t->d) != POA_COMM_NCCL)
        return poa_err_set(err, POA_ERR_CONFIG,
                           "train.backend = %s needs the NCCL comm layer (build with --with-nccl)",
                           name);
    void *stream = t->be->iface->native_stream(t->be);
    if (stream) poa_comm_set_compute_stream(t->d, stream);
    return POA_OK;
}

/* A device that cannot hold the step's memory plan would fail at one of its allocations inside
 * step creation (a fatal error, exit 70): refuse before, as a configuration that does not fit,
 * with the numbers and what to change.  Host backends are not checked (the host's memory is
 * shared and overcommitted; the plan is printed at start). */
static poa_status check_device_memory(const poa_trainer *t, poa_err *err)
{
    if (t->be->iface->is_host(t->be)) return POA_OK;
    poa_step_memory x;
    poa_step_memory_plan(t->be, &t->model, &t->scfg, &x);
    const size_t need = poa_trainer_peak_backend_bytes(t->cfg, &t->model, &x);
    size_t free_bytes = 0, total_bytes = 0;
    t->be->iface->mem_info(t->be, &free_bytes, &total_bytes);
    if (need <= free_bytes) return POA_OK;
    const double gib = 1024.0 * 1024.0 * 1024.0;
    return poa_err_set(err, POA_ERR_CONFIG,
                       "train.backend = %s: a step of %d images per rank group needs %.2f GiB of "
                       "device memory (poa-train --dry-run prints the plan), the device has "
                       "%.2f GiB free of %.2f GiB; lower train.batch_size_per_gpu or use a GPU "
                       "with more memory (src/train/README-train.md, \"Dry run\")",
                       t->be->name, t->cfg->train.batch_size_per_gpu, (double) need / gib,
                       (double) free_bytes / gib, (double) total_bytes / gib);
}

static poa_status create_model_and_step(poa_trainer *t, poa_err *err)
{
    poa_model_config mc;
    poa_status st = poa_model_config_from_config(t->cfg, &mc, err);
    if (st != POA_OK) return st;
    poa_model_build(&t->model, &mc);
    st = poa_trainer_step_config(t->cfg, &t->model, t->rank, t->world, &t->scfg, err);
    if (st == POA_OK) st = check_device_memory(t, err);
    if (st != POA_OK) return st;
    poa_trainer_comm_init(&t->comm, t->d, t->be, &t->model);
    poa_collective coll = poa_trainer_comm_collective(&t->comm);
    poa_step_hooks hooks = poa_trainer_comm_hooks(&t->comm);
    t->step = poa_step_create(t->be, &t->model, &t->scfg, &coll, &hooks);
    poa_trainer_comm_attach(&t->comm, poa_step_grads(t->step));
    poa_step_init_params(t->step, (uint64_t) t->cfg->train.seed);
    return POA_OK;
}

/* ------------------------------------------------------------------ batches
 * A batch reaches the backend through two slots (iteration it uses slot it % 2), each with
 * pinned host buffers (iface->host_alloc), backend buffers and an event.  The batch of it + 1 is
 * fetched from the source, copied into its slot's pinned buffers and uploaded on the backend's
 * transfer stream while step `it` computes (poa_step_batch.enqueued); step it + 1's compute
 * waits for that upload's event (stream_wait).  Before rewriting a slot's pinned buffers the host
 * waits for the slot's previous upload (event_synchronize).  A slot's backend buffers are
 * rewritten two iterations after the step that read them, which synchronised before returning.
 * On the CPU the copies happen at once and the results are those of a plain upload.
 *
 * The source has then handed out one batch more than the iterations run: a checkpoint written
 * after iteration it saves the source's state as it was after batch it (src_state). */

static void create_slots(poa_trainer *t, const poa_data_params *p)
{
    poa_backend *be = t->be;
    const size_t n_patches =
        (size_t) (p->global_size / p->patch_size) * (size_t) (p->global_size / p->patch_size);
    t->n_global = (size_t) p->G * 2 * p->B * p->channels * p->global_size * p->global_size;
    t->n_local = (size_t) p->G * p->n_local * p->B * p->channels * p->local_size * p->local_size;
    t->n_masks = (size_t) p->G * 2 * p->B * n_patches;
    const size_t bg = sizeof(float) * t->n_global,
                 bl = sizeof(float) * (t->n_local ? t->n_local : 1);
    for (int k = 0; k < 2; k++) {
        poa_batch_slot *sl = &t->slot[k];
        sl->pinned_global = be->iface->host_alloc(be, bg);
        sl->pinned_local = be->iface->host_alloc(be, bl);
        sl->dev_global = be->iface->alloc(be, bg);
        sl->dev_local = be->iface->alloc(be, bl);
        sl->masks = poa_xmalloc(t->n_masks + 1);
        sl->uploaded = be->iface->event_create(be);
        sl->it = -1;
    }
    t->src_state_words = t->src->state_words(t->src);
    t->src_state = poa_xcalloc(t->src_state_words + 1, sizeof(uint64_t));
    t->src_state_it = -1;
}

static void destroy_slots(poa_trainer *t)
{
    poa_backend *be = t->be;
    if (!be) return;
    be->iface->synchronize(be);
    for (int k = 0; k < 2; k++) {
        poa_batch_slot *sl = &t->slot[k];
        if (sl->pinned_global) be->iface->host_free(be, sl->pinned_global);
        if (sl->pinned_local) be->iface->host_free(be, sl->pinned_local);
        if (sl->dev_global) be->iface->free(be, sl->dev_global);
        if (sl->dev_local) be->iface->free(be, sl->dev_local);
        if (sl->uploaded) be->iface->event_destroy(be, sl->uploaded);
        free(sl->masks);
    }
    free(t->src_state);
}

/* Fetch the batch of iteration `it` into slot it % 2 and start its upload.  A source error is
 * kept in the slot for run_one(it), which agrees on it with the other ranks. */
static void stage_batch(poa_trainer *t, long long it)
{
    poa_backend *be = t->be;
    poa_batch_slot *sl = &t->slot[it % 2];
    if (t->src_state_words) { /* the source's state after batch it − 1 */
        t->src->get_state(t->src, t->src_state);
        t->src_state_it = it - 1;
    }
    double t0 = poa_now();
    poa_host_batch hb;
    sl->it = it;
    sl->status = t->src->next(t->src, it, &hb, &sl->err);
    sl->fetch_s = poa_now() - t0;
    if (sl->status != POA_OK) return;
    be->iface->event_synchronize(be, sl->uploaded); /* iteration it − 2 is off the pinned buffers */
    const size_t bg = sizeof(float) * t->n_global, bl = sizeof(float) * t->n_local;
    memcpy(sl->pinned_global, hb.global_crops, bg);
    if (t->n_local) memcpy(sl->pinned_local, hb.local_crops, bl);
    sl->has_masks = hb.masks != NULL;
    if (hb.masks) memcpy(sl->masks, hb.masks, t->n_masks);
    be->iface->upload_async(be, sl->dev_global, sl->pinned_global, bg,
                            t->n_local ? NULL : sl->uploaded);
    if (t->n_local) be->iface->upload_async(be, sl->dev_local, sl->pinned_local, bl, sl->uploaded);
}

/* poa_step_batch.enqueued: the next iteration's batch, unless the run ends with this one. */
static void stage_next(void *ctx)
{
    poa_trainer *t = ctx;
    if (t->stage_next_it < 0) return;
    double t0 = poa_now();
    stage_batch(t, t->stage_next_it);
    t->stage_in_step_s = poa_now() - t0;
}

void poa_trainer_source_state(poa_trainer *t, long long it, uint64_t *words)
{
    if (!t->src_state_words) return;
    if (t->src_state_it == it) /* batch it + 1 was fetched already */
        memcpy(words, t->src_state, sizeof(uint64_t) * t->src_state_words);
    else
        t->src->get_state(t->src, words);
}

static poa_status create_source(poa_trainer *t, poa_err *err)
{
    poa_data_params p = poa_data_params_of(t->cfg, t->rank, t->world);
    poa_status st = POA_OK;
    if (t->opts.synthetic_data)
        t->src = poa_batch_source_synthetic(&p);
    else
        st = poa_batch_source_loader(&p, &t->src, err);
    if (st != POA_OK) return st;
    create_slots(t, &p);
    return POA_OK;
}

poa_status poa_trainer_create(const poa_config *cfg, poa_comm *d, const poa_trainer_opts *opts,
                              poa_trainer **out, poa_err *err)
{
    poa_trainer *t = poa_xcalloc(1, sizeof *t);
    *out = t;
    if (opts)
        t->opts = *opts;
    else
        poa_trainer_opts_default(&t->opts);
    t->cfg = cfg;
    t->d = d;
    t->rank = poa_comm_rank(d);
    t->world = poa_comm_world_size(d);
    t->total_its = poa_trainer_total_iterations(cfg);
    t->images_per_it = poa_config_global_batch(cfg, t->world);
    t->last_done = t->last_ckpt = -1;
    poa_status st = create_backend(t, err);
    if ((st = agree(t, st, err)) != POA_OK) return st;
    st = create_model_and_step(t, err);
    if ((st = agree(t, st, err)) != POA_OK) return st;
    st = t->rank == 0 ? check_output_dir(cfg->train.output_dir, err) : POA_OK;
    if ((st = agree(t, st, err)) != POA_OK) return st;
    st = create_source(t, err);
    if ((st = agree(t, st, err)) != POA_OK) return st;
    int found = 0;
    if (!t->opts.no_resume) {
        st = poa_trainer_resume(t, &found, err); /* agreed inside */
        if (st != POA_OK) return st;
    } else if (t->rank == 0) {
        poa_info("--no-resume: starting from scratch; checkpoints already in %s are rotated out "
                 "by the new ones",
                 cfg->train.output_dir);
    }
    if (!found) {
        st = t->src->set_state(t->src, NULL, 0, 0, err);
        if ((st = agree(t, st, err)) != POA_OK) return st;
    }
    t->resumed = found;
    t->summary.resumed = found;
    st = t->rank == 0 ? open_outputs(t, err) : POA_OK;
    if ((st = agree(t, st, err)) != POA_OK) return st;
    if (t->rank == 0 && !t->opts.quiet) {
        poa_trainer_print_startup(t, stdout);
        poa_trainer_print_startup(t, t->log_file);
    }
    return POA_OK;
}

void poa_trainer_destroy(poa_trainer *t)
{
    if (!t) return;
    if (t->step) poa_step_destroy(t->step);
    poa_trainer_comm_free(&t->comm);
    destroy_slots(t);
    poa_batch_source_destroy(t->src);
    if (t->model.table.p) poa_model_free(&t->model);
    if (t->be) poa_backend_destroy(t->be);
    poa_metrics_close(&t->metrics);
    if (t->log_file) fclose(t->log_file);
    free(t);
}

/* ------------------------------------------------------------------ one iteration */

/* Tests: a NaN in the last rank's student before iteration `it` (the guard must name the
 * term on that rank and stop every rank). */
static void inject_nonfinite(poa_trainer *t, long long it)
{
    if (it != t->opts.debug_nonfinite_at || t->rank != t->world - 1) return;
    float nan = NAN;
    float *p = poa_step_params(t->step) + t->model.vit.norm_w;
    t->be->iface->upload(t->be, p, &nan, sizeof nan);
    poa_step_params_written(t->step);
    poa_warn("--debug-nonfinite-at: student weight backbone.norm.norm.weight[0] set to NaN");
}

/* The last iteration this invocation runs (end of the schedule, --max-steps), signals aside. */
static long long last_iteration(const poa_trainer *t)
{
    long long last = t->total_its - 1;
    if (t->opts.max_steps > 0 && t->start_it + t->opts.max_steps - 1 < last)
        last = t->start_it + t->opts.max_steps - 1;
    return last;
}

/* 1 when iteration it is the last one of this invocation. */
static int last_of_run(const poa_trainer *t, long long it)
{
    return it >= last_iteration(t);
}

/* --profile-at: where iteration `it`'s time went, op by op.  Every rank profiles its step (the
 * same ops run everywhere); rank 0 prints its table. */
static void report_profile(poa_trainer *t, poa_profile *prof, long long it)
{
    poa_profile_collect(prof);
    if (t->rank == 0) {
        printf("profile of iteration %lld on rank 0 (--profile-at; src/backend/README.md, "
               "\"Profiling\"):\n",
               it);
        poa_profile_report(prof, stdout, t->last_report.seconds[POA_PHASE_TOTAL], 10);
        fflush(stdout);
    }
    poa_profile_detach(prof);
}

static poa_status run_one(poa_trainer *t, long long it, poa_iter_timing *tm, poa_err *err)
{
    poa_batch_slot *sl = &t->slot[it % 2];
    if (sl->it != it) stage_batch(t, it); /* the first iteration of the run */
    tm->data_s = sl->fetch_s;
    poa_status st = sl->status;
    if (st != POA_OK) *err = sl->err;
    /* every rank must leave together: the step's collectives would wait for a missing rank */
    if ((st = poa_trainer_agree(t, st, err)) != POA_OK) return st;
    inject_nonfinite(t, it);
    t->be->iface->stream_wait(t->be, sl->uploaded);
    poa_step_batch b = {.it = it,
                        .global_crops = sl->dev_global,
                        .local_crops = t->n_local ? sl->dev_local : NULL,
                        .masks = sl->has_masks ? sl->masks : NULL,
                        .enqueued = stage_next, /* stages it + 1 while this step computes */
                        .enqueued_ctx = t};
    t->stage_next_it = last_of_run(t, it) ? -1 : it + 1;
    t->stage_in_step_s = 0;
    poa_profile *prof = it == t->opts.profile_at ? poa_profile_attach(t->be, 0, NULL) : NULL;
    double t1 = poa_now();
    st = poa_step_run(t->step, &b, &t->last_report);
    tm->step_s = poa_now() - t1 - t->stage_in_step_s;
    memcpy(tm->phase_s, t->last_report.seconds, sizeof tm->phase_s);
    if (prof) report_profile(t, prof, it);
    return st;
}

/* Loss and terms averaged over every rank group of every rank (the step reports this rank's
 * mean over its G groups; all ranks have the same G). */
static void global_losses(poa_trainer *t)
{
    const poa_step_report *r = &t->last_report;
    double v[POA_MODEL_MAX_HEADS * POA_N_HEAD_TERMS + 3];
    const int n = r->n_slots;
    memcpy(v, r->slots, sizeof(double) * (size_t) n);
    v[n] = r->loss;
    if (t->world > 1) poa_comm_host_allreduce_sum_f64(t->d, v, (size_t) n + 1);
    for (int i = 0; i <= n; i++) v[i] /= t->world;
    t->last_loss_global = v[n];
    poa_metrics_terms_from_slots(v, t->model.cfg.n_heads, t->last_terms);
}

/* Sub-networks of every rank group of every rank (log time only). */
static void gather_subnets(poa_trainer *t, poa_metrics_record *rec)
{
    const int G = t->scfg.G, n = t->world * G;
    const int cap = n < POA_METRICS_MAX_SUBNETS ? n : POA_METRICS_MAX_SUBNETS;
    int64_t *v = poa_xcalloc(2 * (size_t) n, sizeof(int64_t));
    for (int g = 0; g < G; g++) {
        v[2 * (t->rank * G + g)] = t->last_report.subnet_width[g];
        v[2 * (t->rank * G + g) + 1] = t->last_report.subnet_depth[g];
    }
    if (t->world > 1) poa_comm_host_allreduce_sum_i64(t->d, v, 2 * (size_t) n);
    rec->n_subnets = cap;
    for (int i = 0; i < cap; i++)
        rec->width[i] = (int) v[2 * i], rec->depth[i] = (int) v[2 * i + 1];
    free(v);
}

static void log_iteration(poa_trainer *t, long long it)
{
    const poa_step_report *r = &t->last_report;
    poa_metrics_record rec;
    memset(&rec, 0, sizeof rec);
    double comm = 0, exposed = 0;
    poa_trainer_comm_timing(&t->comm, &comm, &exposed);
    t->summary.comm_s += comm;
    t->summary.comm_exposed_s += exposed;
    gather_subnets(t, &rec); /* collective */
    const poa_timing_window *w = &t->window;
    const double n = w->iters > 0 ? (double) w->iters : 1.0;
    rec.iteration = it;
    rec.epoch = it / t->cfg->train.OFFICIAL_EPOCH_LENGTH;
    rec.total_iterations = t->total_its;
    rec.total_loss = t->last_loss_global;
    memcpy(rec.terms, t->last_terms, sizeof rec.terms);
    rec.lr = r->sched.lr;
    rec.last_layer_lr = r->sched.last_layer_lr;
    rec.wd = r->sched.wd;
    rec.mom = r->sched.momentum;
    rec.teacher_temp = r->sched.teacher_temp;
    rec.ibot_active = r->sched.ibot_active;
    rec.grad_norm_backbone = r->grad_norm[POA_CLIP_BACKBONE];
    rec.grad_norm_head = r->grad_norm[POA_CLIP_HEAD];
    rec.batch_size = t->images_per_it;
    rec.img_s = w->sum.iter_s > 0 ? (double) w->images / w->sum.iter_s : 0;
    rec.iter_time = w->sum.iter_s / n;
    rec.data_time = w->sum.data_s / n;
    rec.comm_time = comm / n;
    rec.comm_exposed_time = exposed / n;
    rec.compute_time = rec.iter_time - rec.data_time - rec.comm_exposed_time;
    rec.eta_s = rec.iter_time * (double) (t->total_its - 1 - it);
    for (int i = 0; i < POA_N_PHASES; i++) rec.phase_time[i] = w->sum.phase_s[i] / n;
    poa_timing_window_reset(&t->window);
    if (t->rank != 0 || t->opts.quiet) return;
    char line[4096];
    poa_metrics_format_line(&rec, line, sizeof line);
    if (t->use_progress) fputs("\r\033[K", stdout);
    poa_info("%s", line);
    if (t->log_file) fprintf(t->log_file, "%s\n", line), fflush(t->log_file);
    poa_err e;
    if (poa_metrics_append(&t->metrics, &rec, &e) != POA_OK) poa_warn("metrics: %s", e.msg);
}

static int is_log_iteration(const poa_trainer *t, long long it)
{
    return it % t->cfg->train.log_period_iterations == 0 || it == t->total_its - 1;
}

/* ------------------------------------------------------------------ the loop */

static int fail(poa_trainer *t, poa_status st, const poa_err *err, const char *when)
{
    if (t->rank == 0 || st == POA_ERR_NONFINITE) poa_error("%s: %s", when, err->msg);
    return poa_status_exit_code(st);
}

/* After iteration `it`: checkpoints by period, and the stop checkpoint. */
static int after_iteration(poa_trainer *t, long long it, int stop)
{
    poa_err err;
    int full = poa_trainer_is_checkpoint_iteration(t->cfg, it) || stop;
    int eval = poa_trainer_is_eval_iteration(t->cfg, it);
    if (!full && !eval) return 0;
    poa_status st = poa_trainer_write_checkpoint(t, it, full, eval, &err);
    return st == POA_OK ? 0 : fail(t, st, &err, "writing a checkpoint");
}

static void finish_summary(poa_trainer *t, long long first)
{
    poa_trainer_summary *s = &t->summary;
    s->first_it = first;
    s->last_it = t->last_done;
    s->total_its = t->total_its;
    s->seconds = poa_now() - t->t_loop_start;
    s->last_loss = t->last_loss_global;
    long long its = t->last_done - first + 1;
    s->img_s = s->seconds > 0 && its > 0 ? (double) (its * t->images_per_it) / s->seconds : 0;
    s->data_wait_frac = s->seconds > 0 ? s->data_wait_frac / s->seconds : 0;
}

static int loop_body(poa_trainer *t, long long first)
{
    for (long long it = first; it < t->total_its; it++) {
        poa_iter_timing tm = {0};
        poa_err err;
        double t0 = poa_now();
        poa_status st = run_one(t, it, &tm, &err);
        if (st == POA_ERR_NONFINITE) {
            if (t->last_report.bad_what[0]) {
                snprintf(err.msg, sizeof err.msg,
                         "iteration %lld: %s; stopping without writing a checkpoint (the last good "
                         "one is iteration %lld)",
                         it, t->last_report.bad_what, t->last_ckpt);
            }
            return fail(t, st, &err, "non-finite step");
        }
        if (st != POA_OK) return fail(t, st, &err, "reading data");
        t->last_done = it;
        global_losses(t);
        if (it == first) t->summary.first_loss = t->last_loss_global;
        int sig = poa_signal_agree(t->d);
        tm.iter_s = poa_now() - t0;
        poa_timing_window_add(&t->window, &tm, t->images_per_it);
        t->summary.data_wait_frac += tm.data_s;
        t->summary.step_s += tm.step_s;
        if (t->use_progress) {
            char extra[64];
            snprintf(extra, sizeof extra, "loss %.4f", t->last_loss_global);
            poa_progress_update(&t->progress, it + 1, extra);
        }
        if (is_log_iteration(t, it)) log_iteration(t, it);
        int max_reached = t->opts.max_steps > 0 && it - first + 1 >= t->opts.max_steps;
        int rc = after_iteration(t, it, sig || max_reached);
        if (rc) return rc;
        if (sig) {
            t->summary.stop_signal = sig;
            if (t->rank == 0)
                poa_info("%s: stopped after iteration %lld with a checkpoint; exit %d (requeue "
                         "the job to resume)",
                         poa_signal_name(sig), it, POA_EXIT_REQUEUE);
            return POA_EXIT_REQUEUE;
        }
        if (max_reached) {
            if (t->rank == 0)
                poa_info("--max-steps %lld reached after iteration %lld", t->opts.max_steps, it);
            return POA_EXIT_OK;
        }
    }
    return POA_EXIT_OK;
}

/* A progress bar on a terminal: stdout is a TTY and the process was not started by Open MPI's
 * mpiexec (which gives every rank a pseudo-terminal even when its own output is a pipe).
 * POA_PROGRESS=1 / 0 forces it on / off. */
static int want_progress_bar(void)
{
    const char *force = getenv("POA_PROGRESS");
    if (force && *force) return strcmp(force, "0") != 0;
    return isatty(STDOUT_FILENO) && !getenv("OMPI_COMM_WORLD_SIZE");
}

int poa_trainer_run(poa_trainer *t)
{
    const long long first = t->start_it;
    t->t_loop_start = poa_now();
    t->use_progress = t->rank == 0 && !t->opts.quiet && want_progress_bar();
    if (t->use_progress) poa_progress_begin(&t->progress, "train", t->total_its, 10.0);
    if (first >= t->total_its && t->rank == 0)
        poa_info("nothing to do: iteration %lld of %lld is done", first - 1, t->total_its);
    const long long last = last_iteration(t);
    if (t->opts.profile_at >= 0 && (t->opts.profile_at < first || t->opts.profile_at > last) &&
        t->rank == 0)
        poa_warn("--profile-at %lld: this invocation runs iterations %lld to %lld; nothing will be "
                 "profiled",
                 t->opts.profile_at, first, last);
    poa_signals_install();
    int rc = loop_body(t, first);
    poa_signals_restore();
    if (t->use_progress) fputs("\n", stdout);
    finish_summary(t, first);
    t->summary.exit_code = rc;
    return rc;
}
