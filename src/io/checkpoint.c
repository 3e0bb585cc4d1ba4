/* checkpoint.c — see checkpoint.h and hdf5-schemas/checkpoint.md. */
#include "poa_config.h"
#include "io/checkpoint.h"
#include "io/h5util.h"
#include "common/atomic_io.h"
#include "common/log.h"
#include "common/timer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_MAX_LEN 4096
#define KEY_MAX      (POA_PARAM_NAME_MAX + 32)

/* HDF5 groups holding the tensor sets, in the order they are written. */
static const char *const GROUP_TEACHER = "teacher";
static const char *const GROUP_STUDENT = "student";
static const char *const GROUP_OPTIM = "optimizer";
static const char *const GROUP_EXP_AVG = "optimizer/exp_avg";
static const char *const GROUP_EXP_AVG_SQ = "optimizer/exp_avg_sq";
static const char *const GROUP_RANK_STATE = "rank_state";
static const char *const GROUP_STATE = "state";
static const char *const GROUP_MODEL = "model";
static const char *const DATASET_CONFIG = "config";

/* ================================================================== model meta */

static poa_meta_item *meta_slot(poa_ckpt_meta *m, const char *key)
{
    POA_CHECK(strlen(key) < POA_META_KEY_MAX, "meta key too long: %s", key);
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->item[i].key, key) == 0) return &m->item[i];
    POA_CHECK(m->n < POA_META_MAX_ITEMS, "too many model meta items (max %d)", POA_META_MAX_ITEMS);
    poa_meta_item *it = &m->item[m->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->key, sizeof it->key, "%s", key);
    return it;
}

void poa_meta_set_int(poa_ckpt_meta *m, const char *key, int64_t v)
{
    poa_meta_item *it = meta_slot(m, key);
    it->type = POA_META_INT;
    it->n = 1;
    it->v[0] = v;
}

void poa_meta_set_ints(poa_ckpt_meta *m, const char *key, const int64_t *v, int n)
{
    POA_CHECK(n >= 0 && n <= POA_META_MAX_INTS, "meta %s: %d values (max %d)", key, n,
              POA_META_MAX_INTS);
    poa_meta_item *it = meta_slot(m, key);
    it->type = POA_META_INTS;
    it->n = n;
    if (n > 0) memcpy(it->v, v, (size_t) n * sizeof *v);
}

void poa_meta_set_string(poa_ckpt_meta *m, const char *key, const char *s)
{
    POA_CHECK(strlen(s) < POA_META_STR_MAX, "meta %s: string too long", key);
    poa_meta_item *it = meta_slot(m, key);
    it->type = POA_META_STRING;
    it->n = 0;
    snprintf(it->s, sizeof it->s, "%s", s);
}

const poa_meta_item *poa_meta_get(const poa_ckpt_meta *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->item[i].key, key) == 0) return &m->item[i];
    return NULL;
}

void poa_ckpt_header_free(poa_ckpt_header *h)
{
    if (!h) return;
    free(h->config_yaml);
    h->config_yaml = NULL;
    for (int r = 0; r < h->n_rank_states; r++) free(h->rank_state[r]);
    free(h->rank_state);
    free(h->rank_state_len);
    h->rank_state = NULL;
    h->rank_state_len = NULL;
    h->n_rank_states = 0;
}

/* ================================================================== file-system helpers */

void poa_ckpt_path(const char *dir, int64_t iteration, char *path, size_t len)
{
    snprintf(path, len, "%s/checkpoint_%07" PRId64 ".h5", dir, iteration);
}

static void eval_dir_path(const char *dir, int64_t iteration, char *path, size_t len)
{
    snprintf(path, len, "%s/eval/training_%" PRId64, dir, iteration);
}

static void utc_now(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ================================================================== writing */

static void full_key(const poa_param_desc *d, char *key, size_t n)
{
    if (d->module && d->module[0])
        snprintf(key, n, "%s.%s", d->module, d->name);
    else
        snprintf(key, n, "%s", d->name);
}

static poa_status write_tensor_group(hid_t f, const char *group, const poa_param_table *t,
                                     const float *buf, poa_err *err)
{
    hid_t g = poa_h5_create_group(f, group);
    if (g < 0) return poa_h5_fail(err, POA_ERR_IO, "cannot create a tensor group");
    poa_status st = POA_OK;
    for (int i = 0; i < t->n && st == POA_OK; i++) {
        const poa_param_desc *d = &t->p[i];
        char key[KEY_MAX];
        full_key(d, key, sizeof key);
        st = poa_h5_write_f32(g, key, d->ndim, d->shape, buf + d->offset, err);
    }
    H5Gclose(g);
    if (st != POA_OK) poa_err_prefix(err, "/%s", group);
    return st;
}

static poa_status write_root_attrs(hid_t f, const poa_ckpt_header *h, const char *content,
                                   const char *version, int n_tensors, poa_err *err)
{
    char created[32];
    utc_now(created, sizeof created);
    poa_status st = poa_h5_attr_write_string(f, "format", POA_CKPT_FORMAT_NAME, err);
    if (!st) st = poa_h5_attr_write_i64(f, "format_version", POA_CKPT_FORMAT_VERSION, err);
    if (!st) st = poa_h5_attr_write_string(f, "content", content, err);
    if (!st) st = poa_h5_attr_write_string(f, "program", PACKAGE_NAME, err);
    if (!st) st = poa_h5_attr_write_string(f, "program_version", version, err);
    if (!st) st = poa_h5_attr_write_string(f, "created", created, err);
    if (!st) st = poa_h5_attr_write_i64(f, "iteration", h->iteration, err);
    if (!st) st = poa_h5_attr_write_i64(f, "epoch", h->epoch, err);
    if (!st) st = poa_h5_attr_write_i64(f, "world_size", h->world_size, err);
    if (!st) st = poa_h5_attr_write_i64(f, "rank_groups_per_rank", h->rank_groups_per_rank, err);
    if (!st)
        st = poa_h5_attr_write_i64(f, "rank_groups", h->world_size * h->rank_groups_per_rank, err);
    if (!st) st = poa_h5_attr_write_i64(f, "num_tensors", n_tensors, err);
    return st;
}

static poa_status write_meta(hid_t f, const poa_ckpt_meta *m, poa_err *err)
{
    hid_t g = poa_h5_create_group(f, GROUP_MODEL);
    if (g < 0) return poa_h5_fail(err, POA_ERR_IO, "cannot create /model");
    poa_status st = POA_OK;
    for (int i = 0; i < m->n && st == POA_OK; i++) {
        const poa_meta_item *it = &m->item[i];
        if (it->type == POA_META_STRING)
            st = poa_h5_attr_write_string(g, it->key, it->s, err);
        else if (it->type == POA_META_INT)
            st = poa_h5_attr_write_i64(g, it->key, it->v[0], err);
        else
            st = poa_h5_attr_write_i64_array(g, it->key, it->v, (size_t) it->n, err);
    }
    H5Gclose(g);
    return st;
}

static poa_status write_rank_states(hid_t f, const poa_ckpt_header *h, poa_err *err)
{
    hid_t g = poa_h5_create_group(f, GROUP_RANK_STATE);
    if (g < 0) return poa_h5_fail(err, POA_ERR_IO, "cannot create /rank_state");
    poa_status st = poa_h5_attr_write_i64(g, "n_ranks", h->n_rank_states, err);
    for (int r = 0; r < h->n_rank_states && st == POA_OK; r++) {
        char name[32];
        snprintf(name, sizeof name, "%05d", r);
        st = poa_h5_write_u64(g, name, h->rank_state[r], h->rank_state_len[r], err);
    }
    H5Gclose(g);
    return st;
}

static poa_status write_arrays(hid_t f, const poa_ckpt_header *h, poa_err *err)
{
    hid_t g = poa_h5_create_group(f, GROUP_STATE);
    if (g < 0) return poa_h5_fail(err, POA_ERR_IO, "cannot create /state");
    poa_status st = POA_OK;
    for (int i = 0; i < h->n_arrays && st == POA_OK; i++) {
        int64_t n = (int64_t) h->arrays[i].n;
        st = poa_h5_write_f32(g, h->arrays[i].name, 1, &n, h->arrays[i].data, err);
    }
    H5Gclose(g);
    return st;
}

static poa_status write_optimizer(hid_t f, const poa_param_table *t, const poa_ckpt_tensors *x,
                                  const poa_ckpt_header *h, poa_err *err)
{
    hid_t g = poa_h5_create_group(f, GROUP_OPTIM);
    if (g < 0) return poa_h5_fail(err, POA_ERR_IO, "cannot create /optimizer");
    poa_status st = poa_h5_attr_write_i64(g, "step", h->adam_step, err);
    if (!st) st = poa_h5_attr_write_string(g, "algorithm", "adamw", err);
    H5Gclose(g);
    if (!st && x->adam_m) st = write_tensor_group(f, GROUP_EXP_AVG, t, x->adam_m, err);
    if (!st && x->adam_v) st = write_tensor_group(f, GROUP_EXP_AVG_SQ, t, x->adam_v, err);
    return st;
}

/* What a checkpoint file holds; content: "full" or "teacher". */
typedef struct ckpt_write {
    const poa_param_table *t;
    const poa_ckpt_tensors *x;
    const poa_ckpt_header *h;
    const char *content, *version;
} ckpt_write;

/* Everything except the file handling (a poa_h5_fill_fn: ctx is a ckpt_write). */
static poa_status write_contents(hid_t f, void *ctx, poa_err *err)
{
    const ckpt_write *w = ctx;
    const poa_param_table *t = w->t;
    const poa_ckpt_tensors *x = w->x;
    const poa_ckpt_header *h = w->h;
    poa_status st = write_root_attrs(f, h, w->content, w->version, t->n, err);
    if (!st) st = write_meta(f, &h->meta, err);
    if (!st) st = poa_h5_write_string(f, DATASET_CONFIG, h->config_yaml ? h->config_yaml : "", err);
    if (!st && x->teacher) st = write_tensor_group(f, GROUP_TEACHER, t, x->teacher, err);
    if (strcmp(w->content, "full") != 0) return st;
    if (!st && x->student) st = write_tensor_group(f, GROUP_STUDENT, t, x->student, err);
    if (!st && (x->adam_m || x->adam_v)) st = write_optimizer(f, t, x, h, err);
    if (!st) st = write_rank_states(f, h, err);
    if (!st) st = write_arrays(f, h, err);
    return st;
}

/* An upper bound of the file's size (poa_h5_size_bound): the tensor groups, the rank states,
 * the state arrays and the configuration text. */
static uint64_t size_bound(const poa_param_table *t, const poa_ckpt_tensors *x,
                           const poa_ckpt_header *h, int full)
{
    int groups = !!x->teacher + (full ? !!x->student + !!x->adam_m + !!x->adam_v : 0);
    uint64_t data = (uint64_t) groups * t->total * sizeof(float);
    uint64_t datasets = (uint64_t) groups * (uint64_t) t->n;
    for (int r = 0; full && r < h->n_rank_states; r++, datasets++)
        data += h->rank_state_len[r] * sizeof(uint64_t);
    for (int i = 0; full && i < h->n_arrays; i++, datasets++)
        data += h->arrays[i].n * sizeof(float);
    return poa_h5_size_bound(data, datasets, h->config_yaml ? strlen(h->config_yaml) : 0);
}

/* The checkpoint final, written atomically (io/h5util.h: space reserved first, every error path
 * closes the file and deletes it). */
static poa_status write_atomically(const char *final, const poa_param_table *t,
                                   const poa_ckpt_tensors *x, const poa_ckpt_header *h,
                                   const char *content, const char *version, poa_err *err)
{
    ckpt_write w = {t, x, h, content, version};
    uint64_t bound = size_bound(t, x, h, strcmp(content, "full") == 0);
    return poa_h5_write_atomic(final, "checkpoint", bound, write_contents, &w, err);
}

static int cmp_desc_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x < y) - (x > y);
}

/* Parse "checkpoint_<digits>.h5" exactly; -1 otherwise (temporary files start with '.'). */
static int64_t parse_checkpoint_name(const char *name)
{
    const char *prefix = "checkpoint_";
    size_t lp = strlen(prefix);
    if (strncmp(name, prefix, lp) != 0) return -1;
    const char *s = name + lp;
    int64_t it = 0;
    int digits = 0;
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (it > (INT64_MAX - 9) / 10) return -1;
        it = it * 10 + (*s - '0');
    }
    if (digits == 0 || strcmp(s, ".h5") != 0) return -1;
    return it;
}

poa_status poa_ckpt_list(const char *dir, int64_t **its, int *n, poa_err *err)
{
    *its = NULL;
    *n = 0;
    DIR *dp = opendir(dir);
    if (!dp) {
        if (errno == ENOENT) return POA_OK;
        return poa_err_set(err, POA_ERR_IO, "cannot list %s: %s", dir, strerror(errno));
    }
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        int64_t it = parse_checkpoint_name(e->d_name);
        if (it < 0) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *its = poa_xrealloc(*its, (size_t) cap * sizeof **its);
        }
        (*its)[(*n)++] = it;
    }
    closedir(dp);
    if (*n > 1) qsort(*its, (size_t) *n, sizeof **its, cmp_desc_i64);
    return POA_OK;
}

/* Keep the newest `keep` checkpoints of dir. */
static poa_status rotate(const char *dir, int keep, poa_err *err)
{
    int64_t *its = NULL;
    int n = 0;
    poa_status st = poa_ckpt_list(dir, &its, &n, err);
    for (int i = keep; i < n && st == POA_OK; i++) {
        char path[PATH_MAX_LEN];
        poa_ckpt_path(dir, its[i], path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT)
            st = poa_err_set(err, POA_ERR_IO, "cannot delete old checkpoint %s: %s", path,
                             strerror(errno));
        else
            poa_debug("deleted old checkpoint %s", path);
    }
    free(its);
    return st;
}

static int is_temp_name(const char *name)
{
    return name[0] == '.' && strstr(name, ".h5.tmp.") != NULL &&
           (strncmp(name, ".checkpoint_", 12) == 0 ||
            strncmp(name, ".teacher_checkpoint", 19) == 0);
}

static poa_status clean_temp_in(const char *dir, int recurse_eval, poa_err *err)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        if (errno == ENOENT || errno == ENOTDIR) return POA_OK;
        return poa_err_set(err, POA_ERR_IO, "cannot list %s: %s", dir, strerror(errno));
    }
    poa_status st = POA_OK;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL && st == POA_OK) {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (is_temp_name(e->d_name)) {
            poa_warn("removing %s left by an interrupted checkpoint write", path);
            if (unlink(path) != 0 && errno != ENOENT)
                st = poa_err_set(err, POA_ERR_IO, "cannot delete %s: %s", path, strerror(errno));
        } else if (recurse_eval && strncmp(e->d_name, "training_", 9) == 0) {
            st = clean_temp_in(path, 0, err);
        }
    }
    closedir(dp);
    return st;
}

poa_status poa_ckpt_clean_temp(const char *dir, poa_err *err)
{
    poa_status st = clean_temp_in(dir, 0, err);
    if (st) return st;
    char eval[PATH_MAX_LEN];
    snprintf(eval, sizeof eval, "%s/eval", dir);
    return clean_temp_in(eval, 1, err);
}

static void log_written(const char *path, double seconds)
{
    struct stat sb;
    double mib = stat(path, &sb) == 0 ? (double) sb.st_size / (1 << 20) : 0;
    poa_info("wrote %s (%.1f MiB in %.2f s)", path, mib, seconds);
}

static const char *version_or_default(const poa_ckpt_write_opts *o)
{
    return o && o->program_version ? o->program_version : PACKAGE_VERSION;
}

poa_status poa_ckpt_write(const char *dir, const poa_param_table *t, const poa_ckpt_tensors *x,
                          const poa_ckpt_header *h, const poa_ckpt_write_opts *opts, char *path_out,
                          size_t path_len, poa_err *err)
{
    if (!dir || !t || !x || !h || h->iteration < 0)
        return poa_err_set(err, POA_ERR_ARG, "poa_ckpt_write: bad arguments");
    int keep = opts && opts->keep > 0 ? opts->keep : POA_CKPT_KEEP_DEFAULT;
    poa_status st = poa_io_make_dirs(dir, err);
    if (!st) st = poa_ckpt_clean_temp(dir, err);
    if (st) return st;
    char final[PATH_MAX_LEN];
    poa_ckpt_path(dir, h->iteration, final, sizeof final);
    double t0 = poa_now();
    st = write_atomically(final, t, x, h, "full", version_or_default(opts), err);
    if (st) return st;
    if (path_out) snprintf(path_out, path_len, "%s", final);
    log_written(final, poa_now() - t0);
    return rotate(dir, keep, err);
}

poa_status poa_ckpt_write_eval(const char *dir, const poa_param_table *t, const float *teacher,
                               const poa_ckpt_header *h, const poa_ckpt_write_opts *opts,
                               char *path_out, size_t path_len, poa_err *err)
{
    if (!dir || !t || !teacher || !h || h->iteration < 0)
        return poa_err_set(err, POA_ERR_ARG, "poa_ckpt_write_eval: bad arguments");
    char edir[PATH_MAX_LEN], final[PATH_MAX_LEN + 32];
    eval_dir_path(dir, h->iteration, edir, sizeof edir);
    poa_status st = poa_io_make_dirs(edir, err);
    if (st) return st;
    snprintf(final, sizeof final, "%s/teacher_checkpoint.h5", edir);
    poa_ckpt_tensors x = {.teacher = (float *) teacher};
    double t0 = poa_now();
    st = write_atomically(final, t, &x, h, "teacher", version_or_default(opts), err);
    if (st) return st;
    if (path_out) snprintf(path_out, path_len, "%s", final);
    log_written(final, poa_now() - t0);
    return POA_OK;
}

/* ================================================================== reading */

static poa_status open_checkpoint(const char *path, hid_t *f, poa_err *err)
{
    if (access(path, R_OK) != 0)
        return poa_err_set(err, errno == ENOENT ? POA_ERR_NOTFOUND : POA_ERR_IO, "%s: %s", path,
                           strerror(errno));
    *f = poa_h5_open_read(path, err);
    return *f < 0 ? (err ? err->code : POA_ERR_FORMAT) : POA_OK;
}

/* Format name and version; a mismatch says what to run (docs/architecture.md §10). */
static poa_status check_format(hid_t f, const char *path, poa_err *err)
{
    char name[128] = "", wrote[64] = "an unknown version";
    int64_t version = -1;
    poa_err local;
    if (poa_h5_attr_read_string(f, "format", name, sizeof name, &local) != POA_OK)
        return poa_err_set(err, POA_ERR_VERSION,
                           "%s is not a poa checkpoint (no 'format' attribute): pass a file "
                           "written by poa-train",
                           path);
    if (strcmp(name, POA_CKPT_FORMAT_NAME) != 0)
        return poa_err_set(err, POA_ERR_VERSION,
                           "%s is a '%s' file, not a '%s': pass a checkpoint written by poa-train",
                           path, name, POA_CKPT_FORMAT_NAME);
    poa_h5_attr_read_string(f, "program_version", wrote, sizeof wrote, &local);
    if (poa_h5_attr_read_i64(f, "format_version", &version, &local) != POA_OK ||
        version != POA_CKPT_FORMAT_VERSION)
        return poa_err_set(err, POA_ERR_VERSION,
                           "%s has %s format version %" PRId64 " (written by poa %s), but this "
                           "poa %s reads version %d: resume it with poa %s, or start a new run "
                           "in an empty output directory",
                           path, POA_CKPT_FORMAT_NAME, version, wrote, PACKAGE_VERSION,
                           POA_CKPT_FORMAT_VERSION, wrote);
    return POA_OK;
}

typedef struct meta_iter {
    poa_ckpt_meta *m;
} meta_iter;

static herr_t read_meta_attr(hid_t g, const char *name, const H5A_info_t *info, void *ctx)
{
    (void) info;
    poa_ckpt_meta *m = ((meta_iter *) ctx)->m;
    if (strlen(name) >= POA_META_KEY_MAX ||
        (m->n >= POA_META_MAX_ITEMS && !poa_meta_get(m, name))) {
        poa_warn("checkpoint /model attribute '%s' ignored (too many or too long)", name);
        return 0;
    }
    poa_err e;
    char s[POA_META_STR_MAX];
    int64_t v[POA_META_MAX_INTS];
    size_t n = 0;
    int rank = 0;
    if (poa_h5_attr_read_string(g, name, s, sizeof s, &e) == POA_OK)
        poa_meta_set_string(m, name, s);
    else if (poa_h5_attr_read_i64_array(g, name, v, POA_META_MAX_INTS, &n, &rank, &e) == POA_OK) {
        if (rank == 0)
            poa_meta_set_int(m, name, v[0]);
        else
            poa_meta_set_ints(m, name, v, (int) n);
    } else
        poa_warn("checkpoint /model attribute '%s' ignored: %s", name, e.msg);
    return 0;
}

static poa_status read_meta(hid_t f, poa_ckpt_meta *m, poa_err *err)
{
    memset(m, 0, sizeof *m);
    if (!poa_h5_exists(f, GROUP_MODEL)) return POA_OK;
    hid_t g = H5Gopen2(f, GROUP_MODEL, H5P_DEFAULT);
    if (g < 0) return poa_h5_fail(err, POA_ERR_FORMAT, "cannot open /model");
    meta_iter it = {m};
    poa_h5_quiet q;
    poa_h5_quiet_begin(&q);
    hsize_t idx = 0;
    /* Creation order when the group tracks it (poa files do), name order otherwise. */
    if (H5Aiterate2(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, read_meta_attr, &it) < 0) {
        H5Eclear2(H5E_DEFAULT);
        idx = 0;
        memset(m, 0, sizeof *m);
        H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, read_meta_attr, &it);
    }
    poa_h5_quiet_end(&q);
    H5Gclose(g);
    return POA_OK;
}

static poa_status read_rank_states(hid_t f, poa_ckpt_header *h, poa_err *err)
{
    if (!poa_h5_exists(f, GROUP_RANK_STATE)) return POA_OK;
    hid_t g = H5Gopen2(f, GROUP_RANK_STATE, H5P_DEFAULT);
    if (g < 0) return poa_h5_fail(err, POA_ERR_FORMAT, "cannot open /rank_state");
    int64_t n = 0;
    poa_status st = poa_h5_attr_read_i64(g, "n_ranks", &n, err);
    H5G_info_t gi;
    memset(&gi, 0, sizeof gi);
    if (!st && (n < 0 || n > (1 << 24) || H5Gget_info(g, &gi) < 0 || (hsize_t) n > gi.nlinks))
        st = poa_err_set(err, POA_ERR_FORMAT,
                         "/rank_state: n_ranks %" PRId64 " but the group holds %llu states", n,
                         (unsigned long long) gi.nlinks);
    if (!st && n > 0) {
        h->rank_state = poa_xcalloc((size_t) n, sizeof *h->rank_state);
        h->rank_state_len = poa_xcalloc((size_t) n, sizeof *h->rank_state_len);
        h->n_rank_states = (int) n;
    }
    for (int r = 0; r < h->n_rank_states && st == POA_OK; r++) {
        char name[32];
        snprintf(name, sizeof name, "%05d", r);
        st = poa_h5_read_u64_alloc(g, name, &h->rank_state[r], &h->rank_state_len[r], err);
    }
    H5Gclose(g);
    if (st) poa_err_prefix(err, "/rank_state");
    return st;
}

static poa_status read_arrays(hid_t f, poa_ckpt_header *h, poa_err *err)
{
    if (h->n_arrays == 0) return POA_OK;
    if (!poa_h5_exists(f, GROUP_STATE))
        return poa_err_set(err, POA_ERR_NOTFOUND, "group /state is missing");
    hid_t g = H5Gopen2(f, GROUP_STATE, H5P_DEFAULT);
    if (g < 0) return poa_h5_fail(err, POA_ERR_FORMAT, "cannot open /state");
    poa_status st = POA_OK;
    for (int i = 0; i < h->n_arrays && st == POA_OK; i++) {
        int64_t n = (int64_t) h->arrays[i].n;
        st = poa_h5_read_f32(g, h->arrays[i].name, 1, &n, h->arrays[i].data, err);
    }
    H5Gclose(g);
    if (st) poa_err_prefix(err, "/state");
    return st;
}

/* Scalars, config, meta, rank states and the caller's arrays; h->arrays is kept. */
static poa_status read_header_from(hid_t f, poa_ckpt_header *h, poa_err *err)
{
    int n_arrays = h->n_arrays;
    poa_ckpt_array *arrays = h->arrays;
    memset(h, 0, sizeof *h);
    h->n_arrays = n_arrays;
    h->arrays = arrays;
    poa_status st = poa_h5_attr_read_i64(f, "iteration", &h->iteration, err);
    if (!st) st = poa_h5_attr_read_i64(f, "epoch", &h->epoch, err);
    if (!st) st = poa_h5_attr_read_i64(f, "world_size", &h->world_size, err);
    if (!st) st = poa_h5_attr_read_i64(f, "rank_groups_per_rank", &h->rank_groups_per_rank, err);
    if (!st)
        st = poa_h5_attr_read_string(f, "program_version", h->program_version,
                                     sizeof h->program_version, err);
    if (!st) st = poa_h5_attr_read_string(f, "content", h->content, sizeof h->content, err);
    if (!st && poa_h5_exists(f, GROUP_OPTIM)) {
        hid_t g = H5Gopen2(f, GROUP_OPTIM, H5P_DEFAULT);
        st = poa_h5_attr_read_i64(g, "step", &h->adam_step, err);
        H5Gclose(g);
    }
    if (!st) st = poa_h5_read_string_alloc(f, DATASET_CONFIG, &h->config_yaml, err);
    if (!st) st = read_meta(f, &h->meta, err);
    if (!st) st = read_rank_states(f, h, err);
    if (!st) st = read_arrays(f, h, err);
    if (st) poa_ckpt_header_free(h);
    return st;
}

poa_status poa_ckpt_read_header(const char *path, poa_ckpt_header *h, poa_err *err)
{
    hid_t f = -1;
    poa_status st = open_checkpoint(path, &f, err);
    if (st) return st;
    st = check_format(f, path, err);
    if (!st) {
        st = read_header_from(f, h, err);
        if (st) poa_err_prefix(err, "checkpoint %s", path);
    }
    H5Fclose(f);
    return st;
}

typedef struct tensor_set {
    const char *group;
    float *buf;
} tensor_set;

static int requested_sets(const poa_ckpt_tensors *x, tensor_set *sets)
{
    int n = 0;
    if (x->teacher) sets[n++] = (tensor_set){GROUP_TEACHER, x->teacher};
    if (x->student) sets[n++] = (tensor_set){GROUP_STUDENT, x->student};
    if (x->adam_m) sets[n++] = (tensor_set){GROUP_EXP_AVG, x->adam_m};
    if (x->adam_v) sets[n++] = (tensor_set){GROUP_EXP_AVG_SQ, x->adam_v};
    return n;
}

typedef struct extra_iter {
    const poa_param_table *t;
    char first_extra[KEY_MAX];
    int n_extra;
} extra_iter;

static int table_has_key(const poa_param_table *t, const char *key)
{
    for (int i = 0; i < t->n; i++) {
        char k[KEY_MAX];
        full_key(&t->p[i], k, sizeof k);
        if (strcmp(k, key) == 0) return 1;
    }
    return 0;
}

static herr_t find_extra(hid_t g, const char *name, const H5L_info_t *info, void *ctx)
{
    (void) g;
    (void) info;
    extra_iter *it = ctx;
    if (!table_has_key(it->t, name)) {
        if (it->n_extra++ == 0) snprintf(it->first_extra, sizeof it->first_extra, "%s", name);
    }
    return 0;
}

/* Every table tensor present with its shape; no tensor the table lacks (unless allowed). */
static poa_status validate_group(hid_t f, const char *group, const poa_param_table *t,
                                 int allow_extra, poa_err *err)
{
    if (!poa_h5_exists(f, group))
        return poa_err_set(err, POA_ERR_NOTFOUND, "group /%s is missing", group);
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    if (g < 0) return poa_h5_fail(err, POA_ERR_FORMAT, "cannot open a tensor group");
    poa_status st = POA_OK;
    for (int i = 0; i < t->n && st == POA_OK; i++) {
        char key[KEY_MAX];
        full_key(&t->p[i], key, sizeof key);
        st = poa_h5_check_shape(g, key, t->p[i].ndim, t->p[i].shape, err);
        if (st) poa_err_prefix(err, "/%s", group);
    }
    if (!st && !allow_extra) {
        extra_iter it = {.t = t};
        hsize_t idx = 0;
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, find_extra, &it);
        if (it.n_extra)
            st = poa_err_set(err, POA_ERR_FORMAT,
                             "/%s/%s (and %d more) is not a tensor of this model "
                             "(different model configuration?)",
                             group, it.first_extra, it.n_extra - 1);
    }
    H5Gclose(g);
    return st;
}

static poa_status read_group(hid_t f, const char *group, const poa_param_table *t, float *buf,
                             poa_err *err)
{
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    if (g < 0) return poa_h5_fail(err, POA_ERR_FORMAT, "cannot open a tensor group");
    poa_status st = POA_OK;
    for (int i = 0; i < t->n && st == POA_OK; i++) {
        const poa_param_desc *d = &t->p[i];
        char key[KEY_MAX];
        full_key(d, key, sizeof key);
        st = poa_h5_read_f32(g, key, d->ndim, d->shape, buf + d->offset, err);
        if (st) poa_err_prefix(err, "/%s", group);
    }
    H5Gclose(g);
    return st;
}

static poa_status load_open_file(hid_t f, const char *path, const poa_param_table *t,
                                 poa_ckpt_tensors *x, poa_ckpt_header *h,
                                 const poa_ckpt_load_opts *opts, poa_err *err)
{
    poa_status st = check_format(f, path, err);
    if (st) return st;
    tensor_set sets[4];
    int n = requested_sets(x, sets);
    int allow_extra = opts && opts->allow_extra_tensors;
    for (int i = 0; i < n && st == POA_OK; i++)
        st = validate_group(f, sets[i].group, t, allow_extra, err);
    if (!st && h) st = read_header_from(f, h, err);
    for (int i = 0; i < n && st == POA_OK; i++)
        st = read_group(f, sets[i].group, t, sets[i].buf, err);
    if (st && h) poa_ckpt_header_free(h);
    return st;
}

poa_status poa_ckpt_load(const char *path, const poa_param_table *t, poa_ckpt_tensors *x,
                         poa_ckpt_header *h, const poa_ckpt_load_opts *opts, poa_err *err)
{
    if (!path || !t || !x) return poa_err_set(err, POA_ERR_ARG, "poa_ckpt_load: bad arguments");
    hid_t f = -1;
    poa_status st = open_checkpoint(path, &f, err);
    if (st) return st;
    st = load_open_file(f, path, t, x, h, opts, err);
    H5Fclose(f);
    if (st) {
        if (st != POA_ERR_VERSION) poa_err_prefix(err, "checkpoint %s", path);
        return st;
    }
    if (h && opts && opts->expect_world_size > 0 && h->world_size != opts->expect_world_size)
        poa_info("checkpoint %s was written by %" PRId64 " ranks; resuming on %" PRId64
                 " (per-rank states are remapped by the trainer)",
                 path, h->world_size, opts->expect_world_size);
    return POA_OK;
}

poa_status poa_ckpt_load_latest(const char *dir, const poa_param_table *t, poa_ckpt_tensors *x,
                                poa_ckpt_header *h, const poa_ckpt_load_opts *opts, char *path_out,
                                size_t path_len, poa_err *err)
{
    int64_t *its = NULL;
    int n = 0;
    poa_status st = poa_ckpt_list(dir, &its, &n, err);
    if (st) return st;
    if (n == 0) {
        free(its);
        return poa_err_set(err, POA_ERR_NOTFOUND, "no checkpoint_*.h5 in %s", dir);
    }
    poa_err first = {POA_OK, ""};
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX_LEN];
        poa_ckpt_path(dir, its[i], path, sizeof path);
        poa_err e = {POA_OK, ""};
        st = poa_ckpt_load(path, t, x, h, opts, &e);
        if (st == POA_OK) {
            if (path_out) snprintf(path_out, path_len, "%s", path);
            if (i > 0) poa_warn("resuming from %s, the newest loadable checkpoint", path);
            free(its);
            return POA_OK;
        }
        if (first.code == POA_OK) first = e;
        if (st == POA_ERR_VERSION || st == POA_ERR_ARG || st == POA_ERR_NOMEM) {
            free(its);
            if (err) *err = e;
            return st;
        }
        poa_warn("skipping checkpoint: %s", e.msg);
    }
    free(its);
    if (!err) return first.code;
    *err = first;
    poa_err_prefix(err, "no loadable checkpoint in %s (%d tried; the newest failed)", dir, n);
    return first.code;
}
