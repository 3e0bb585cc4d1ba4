/* trainer_ckpt.c — the rank loop's checkpoints (format: hdf5-schemas/checkpoint.md, written by
 * src/io/checkpoint.c): what goes into them, who writes, and the exact resume.
 *
 * Writing (collective): every rank contributes its state blob (poa_comm_gather_blobs); rank 0
 * downloads teacher, student and AdamW moments and writes the file (temporary file, flush,
 * fsync, rename); the status is broadcast so every rank stops together on a write error.
 * Before writing, the ranks compare hashes of their students and teachers: identical
 * parameters on every rank are an invariant of data parallelism (fatal if broken).
 *
 * Rank state blob (uint64 words): magic, version, iteration, G, first rank group, number of
 * source words, then the batch source's state.  The sub-network cycles and the drop-path draws
 * are pure functions of (seed, rank group, iteration) (subnet_sampler.h, step.c) and need no
 * state; together with the bit-exact tensors and the AdamW step counter this makes a resumed
 * CPU run bit-identical to an uninterrupted one.
 */
#include "poa_config.h"
#include "common/log.h"
#include "io/checkpoint.h"
#include "modelio/model_source.h"
#include "train/trainer_config.h"
#include "train/trainer_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC   0x504f41525354ULL /* "POARST" */
#define STATE_VERSION 1
#define STATE_HEADER  6

/* ------------------------------------------------------------------ helpers */

static int backend_is_host(const poa_trainer *t)
{
    return t->be->iface->is_host(t->be);
}

/* Host view of a backend buffer: the buffer itself on the CPU backend, else a download. */
static float *host_copy(poa_trainer *t, float *dev, float **scratch)
{
    const size_t bytes = sizeof(float) * t->model.table.total;
    if (backend_is_host(t)) return dev;
    *scratch = poa_xmalloc(bytes);
    t->be->iface->download(t->be, *scratch, dev, bytes);
    return *scratch;
}

/* The effective configuration as YAML text (malloc'ed). */
static char *config_text(const poa_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    POA_CHECK(f != NULL, "open_memstream failed");
    poa_err e;
    poa_config_write_yaml(cfg, f, false, &e);
    fclose(f);
    return text;
}

/* This rank's state blob (malloc'ed, *n words). */
static uint64_t *rank_state(poa_trainer *t, long long it, size_t *n)
{
    size_t ns = t->src->state_words(t->src);
    uint64_t *w = poa_xcalloc(STATE_HEADER + ns, sizeof(uint64_t));
    w[0] = STATE_MAGIC;
    w[1] = STATE_VERSION;
    w[2] = (uint64_t) it;
    w[3] = (uint64_t) t->scfg.G;
    w[4] = (uint64_t) t->scfg.first_group;
    w[5] = (uint64_t) ns;
    if (ns) poa_trainer_source_state(t, it, w + STATE_HEADER);
    *n = STATE_HEADER + ns;
    return w;
}

#define agree poa_trainer_agree

/* ------------------------------------------------------------------ writing */

static void check_identical(poa_trainer *t, const char *what, float *buf)
{
    int first = -1;
    int same = poa_comm_check_identical(t->d, buf, sizeof(float) * t->model.table.total, &first);
    POA_CHECK(same, "the %s of rank %d differs from rank 0's: data-parallel ranks diverged", what,
              first);
}

static poa_status write_files(poa_trainer *t, long long it, int full, int eval, uint64_t **blobs,
                              size_t *lens, poa_err *err)
{
    const poa_config *cfg = t->cfg;
    poa_step *s = t->step;
    float *sc_t = NULL, *sc_s = NULL, *sc_m = NULL, *sc_v = NULL;
    poa_optim *o = poa_step_optim(s);
    poa_ckpt_tensors x = {host_copy(t, poa_step_teacher(s), &sc_t),
                          full ? host_copy(t, poa_step_params(s), &sc_s) : NULL,
                          full ? host_copy(t, o->m, &sc_m) : NULL,
                          full ? host_copy(t, o->v, &sc_v) : NULL};
    poa_ckpt_header h;
    memset(&h, 0, sizeof h);
    h.iteration = it;
    h.epoch = it / cfg->train.OFFICIAL_EPOCH_LENGTH;
    h.adam_step = o->step;
    h.world_size = t->world;
    h.rank_groups_per_rank = cfg->train.rank_groups;
    h.config_yaml = config_text(cfg);
    h.n_rank_states = t->world;
    h.rank_state = blobs;
    h.rank_state_len = lens;
    poa_model_ckpt_meta(&t->model, &h.meta);
    poa_ckpt_write_opts wo = {cfg->train.checkpoint_keep > 0 ? cfg->train.checkpoint_keep : INT_MAX,
                              PACKAGE_VERSION};
    const char *dir = cfg->train.output_dir;
    char path[4096] = "";
    poa_status st = POA_OK;
    if (full) st = poa_ckpt_write(dir, &t->model.table, &x, &h, &wo, path, sizeof path, err);
    if (full && st == POA_OK)
        snprintf(t->summary.checkpoint, sizeof t->summary.checkpoint, "%s", path);
    if (eval && st == POA_OK)
        st = poa_ckpt_write_eval(dir, &t->model.table, x.teacher, &h, &wo, path, sizeof path, err);
    free(h.config_yaml);
    free(sc_t), free(sc_s), free(sc_m), free(sc_v);
    return st;
}

poa_status poa_trainer_write_checkpoint(poa_trainer *t, long long it, int full, int eval,
                                        poa_err *err)
{
    check_identical(t, "student", poa_step_params(t->step));
    check_identical(t, "teacher", poa_step_teacher(t->step));
    if (t->world > 1)
        poa_info("iteration %lld: student and teacher identical on all %d ranks (hash check)", it,
                 t->world);
    size_t n = 0;
    uint64_t *mine = rank_state(t, it, &n);
    uint64_t **blobs = NULL;
    size_t *lens = NULL;
    poa_comm_gather_blobs(t->d, mine, n, 0, &blobs, &lens);
    free(mine);
    poa_status st = POA_OK;
    if (t->rank == 0) {
        st = write_files(t, it, full, eval, blobs, lens, err);
        for (int r = 0; r < t->world; r++) free(blobs[r]);
        free(blobs);
        free(lens);
    }
    st = agree(t, st, err);
    if (st == POA_OK && full) t->last_ckpt = it;
    return st;
}

/* ------------------------------------------------------------------ resume */

/* Config keys whose values differ between the checkpoint and this run (info for the log). */
static void report_config_changes(const poa_trainer *t, const char *yaml)
{
    poa_config *old = poa_xmalloc(sizeof *old);
    poa_err e;
    poa_config_defaults(old);
    if (!yaml || poa_config_load_yaml_string(old, "checkpoint config", yaml, &e) != POA_OK) {
        free(old);
        return;
    }
    const poa_cfg_key *keys = poa_config_keys();
    int shown = 0;
    for (int i = 0; i < POA_CFG_NKEYS; i++) {
        char a[256], b[256];
        poa_config_format_value(old, &keys[i], a, sizeof a);
        poa_config_format_value(t->cfg, &keys[i], b, sizeof b);
        if (strcmp(a, b) == 0) continue;
        if (strcmp(keys[i].name, "train.output_dir") == 0 ||
            strcmp(keys[i].name, "train.dataset_path") == 0)
            continue;
        if (shown++ < 12)
            poa_info("  changed since the checkpoint: %s %s -> %s", keys[i].name, a, b);
    }
    free(old);
}

/* Rank 0: load the newest loadable checkpoint into the step's buffers. */
static poa_status load_rank0(poa_trainer *t, poa_ckpt_header *h, char *path, size_t len,
                             poa_err *err)
{
    poa_step *s = t->step;
    poa_optim *o = poa_step_optim(s);
    const size_t total = t->model.table.total;
    float *bufs[4] = {poa_step_teacher(s), poa_step_params(s), o->m, o->v};
    float *host[4] = {0};
    for (int i = 0; i < 4; i++)
        host[i] = backend_is_host(t) ? bufs[i] : poa_xmalloc(sizeof(float) * total);
    poa_ckpt_tensors x = {host[0], host[1], host[2], host[3]};
    poa_ckpt_load_opts lo = {t->world, 0};
    poa_status st =
        poa_ckpt_load_latest(t->cfg->train.output_dir, &t->model.table, &x, h, &lo, path, len, err);
    for (int i = 0; i < 4; i++) {
        if (backend_is_host(t)) continue;
        if (st == POA_OK) t->be->iface->upload(t->be, bufs[i], host[i], sizeof(float) * total);
        free(host[i]);
    }
    return st;
}

/* Every rank: its state blob (rank r gets the writer's blob r); the batch source continues from
 * it when the layout matches, else restarts at the resume iteration. */
static poa_status restore_rank_state(poa_trainer *t, poa_ckpt_header *h, long long start,
                                     poa_err *err)
{
    uint64_t *mine = NULL;
    size_t n = 0;
    poa_comm_scatter_blobs(t->d, t->rank == 0 ? h->rank_state : NULL,
                           t->rank == 0 ? h->rank_state_len : NULL,
                           t->rank == 0 ? h->n_rank_states : 0, 0, &mine, &n);
    int usable = n >= STATE_HEADER && mine[0] == STATE_MAGIC && mine[1] == STATE_VERSION &&
                 (long long) mine[2] == start - 1 && mine[3] == (uint64_t) t->scfg.G &&
                 mine[4] == (uint64_t) t->scfg.first_group && n == STATE_HEADER + mine[5];
    poa_status st =
        usable ? t->src->set_state(t->src, mine + STATE_HEADER, n - STATE_HEADER, start, err)
               : t->src->set_state(t->src, NULL, 0, start, err);
    int all_usable = !poa_comm_any(t->d, !usable);
    if (!all_usable && t->rank == 0)
        poa_warn("the data order of the checkpoint's rank layout cannot be continued exactly "
                 "with this layout; every rank group restarts its data stream at iteration %lld",
                 start);
    free(mine);
    return st;
}

poa_status poa_trainer_resume(poa_trainer *t, int *found, poa_err *err)
{
    *found = 0;
    long long header[4] = {0, -1, 0, 0}; /* status, iteration, adam step, world size */
    poa_ckpt_header h;
    memset(&h, 0, sizeof h);
    char path[4096] = "";
    poa_status st = POA_OK;
    if (t->rank == 0) {
        int64_t *its = NULL;
        int n = 0;
        st = poa_ckpt_list(t->cfg->train.output_dir, &its, &n, err);
        free(its);
        if (st == POA_OK && n > 0) {
            st = load_rank0(t, &h, path, sizeof path, err);
            if (st != POA_OK)
                poa_err_prefix(err, "cannot resume (move the bad checkpoints away, or start "
                                    "from scratch with --no-resume)");
            header[1] = st == POA_OK ? h.iteration : -1;
            header[2] = h.adam_step;
            header[3] = h.world_size;
        }
    }
    if ((st = agree(t, st, err)) != POA_OK) {
        poa_ckpt_header_free(&h);
        return st;
    }
    poa_comm_host_broadcast(t->d, header, sizeof header, 0);
    if (header[1] < 0) return POA_OK; /* nothing to resume from */
    *found = 1;
    const size_t total = t->model.table.total;
    poa_optim *o = poa_step_optim(t->step);
    poa_comm_broadcast_f32(t->d, poa_step_teacher(t->step), total, 0);
    poa_comm_broadcast_f32(t->d, poa_step_params(t->step), total, 0);
    poa_comm_broadcast_f32(t->d, o->m, total, 0);
    poa_comm_broadcast_f32(t->d, o->v, total, 0);
    poa_step_params_written(t->step);
    o->step = header[2];
    t->start_it = header[1] + 1;
    t->last_ckpt = header[1];
    snprintf(t->summary.checkpoint, sizeof t->summary.checkpoint, "%s", path);
    if (t->rank == 0) {
        poa_info("resuming from %s: iteration %lld done, continuing at %lld", path,
                 (long long) header[1], t->start_it);
        if (header[3] != t->world)
            poa_info("the checkpoint was written by %lld ranks, this run has %d: the global "
                     "batch is now %lld images and the peak lr %.6g (re-derived by "
                     "optim.scaling_rule)",
                     (long long) header[3], t->world, t->images_per_it, t->cfg->optim.lr);
        report_config_changes(t, h.config_yaml);
    }
    st = restore_rank_state(t, &h, t->start_it, err);
    poa_ckpt_header_free(&h);
    return agree(t, st, err);
}
