/* model_source.c — see model_source.h. */
#include "modelio/model_source.h"
#include "common/config.h"
#include "common/log.h"
#include "model/extract.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *poa_weights_from_name(poa_weights_from from)
{
    return from == POA_FROM_STUDENT ? "student" : "teacher";
}

poa_status poa_weights_from_parse(const char *text, poa_weights_from *from, poa_err *err)
{
    if (strcmp(text, "teacher") == 0)
        *from = POA_FROM_TEACHER;
    else if (strcmp(text, "student") == 0)
        *from = POA_FROM_STUDENT;
    else
        return poa_err_set(err, POA_ERR_ARG, "'%s': the weights are 'teacher' or 'student'", text);
    return POA_OK;
}

/* The same message under another status: the file is at fault, not the command line. */
static poa_status recode(poa_err *err, poa_status code)
{
    if (err) err->code = code;
    return code;
}

/* ================================================================== /model description */

void poa_model_ckpt_meta(const poa_model *m, poa_ckpt_meta *meta)
{
    const poa_model_config *c = &m->cfg;
    int widths[POA_META_MAX_INTS], depths[POA_META_MAX_INTS];
    int64_t v[POA_META_MAX_INTS];
    memset(meta, 0, sizeof *meta);
    poa_meta_set_string(meta, "arch", c->arch);
    poa_meta_set_int(meta, "embed_dim", c->max_embed_dim);
    poa_meta_set_int(meta, "depth", c->max_depth);
    poa_meta_set_int(meta, "head_dim", c->head_dim);
    poa_meta_set_int(meta, "mlp_ratio", c->mlp_ratio);
    poa_meta_set_int(meta, "patch_size", c->patch_size);
    poa_meta_set_int(meta, "img_size", c->img_size);
    poa_meta_set_int(meta, "in_chans", c->in_chans);
    int nw = poa_model_widths(c, widths, POA_META_MAX_INTS);
    int nd = poa_model_depths(c, depths, POA_META_MAX_INTS);
    nw = nw < POA_META_MAX_INTS ? nw : POA_META_MAX_INTS;
    nd = nd < POA_META_MAX_INTS ? nd : POA_META_MAX_INTS;
    for (int i = 0; i < nw; i++) v[i] = widths[i];
    poa_meta_set_ints(meta, "elastic_widths", v, nw);
    for (int i = 0; i < nd; i++) v[i] = depths[i];
    poa_meta_set_ints(meta, "elastic_depths", v, nd);
    for (int h = 0; h < c->n_heads; h++) v[h] = c->head_n_prototypes[h];
    poa_meta_set_ints(meta, "head_prototypes", v, c->n_heads);
    poa_meta_set_int(meta, "head_hidden_dim", c->head_hidden_dim);
    poa_meta_set_int(meta, "head_bottleneck_dim", c->head_bottleneck_dim);
    poa_meta_set_int(meta, "local_crops_size", c->local_crops_size);
}

/* The stored /model description agrees with the model built from the stored configuration:
 * every key of poa_model_ckpt_meta the file has must match (embed_dim, depth, head_dim and
 * patch_size must be there: shapes alone do not give head_dim). */
static poa_status check_meta(const char *path, const poa_model *m, const poa_ckpt_meta *stored,
                             poa_err *err)
{
    static const char *const required[] = {"embed_dim", "depth", "head_dim", "patch_size"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!poa_meta_get(stored, required[i]))
            return poa_err_set(err, POA_ERR_FORMAT, "%s: /model attribute '%s' is missing", path,
                               required[i]);
    poa_ckpt_meta want;
    poa_model_ckpt_meta(m, &want);
    for (int i = 0; i < want.n; i++) {
        const poa_meta_item *w = &want.item[i], *s = poa_meta_get(stored, w->key);
        if (!s || w->type == POA_META_STRING) continue; /* arch: a name, not a shape */
        int same = s->type == w->type && s->n == w->n;
        for (int k = 0; same && k < w->n; k++) same = s->v[k] == w->v[k];
        if (!same)
            return poa_err_set(err, POA_ERR_FORMAT,
                               "%s: /model attribute '%s' = %" PRId64 "%s does not match the "
                               "model of the stored configuration (%" PRId64 "%s)",
                               path, w->key, s->v[0], s->n > 1 ? ", ..." : "", w->v[0],
                               w->n > 1 ? ", ..." : "");
    }
    return POA_OK;
}

/* ================================================================== checkpoints */

/* The run's configuration from the YAML stored in the checkpoint, finalized as the trainer
 * does for the world size that wrote it. */
static poa_status stored_config(const char *path, const poa_ckpt_header *h, poa_config *cfg,
                                poa_err *err)
{
    char name[POA_IO_PATH_MAX + 16];
    snprintf(name, sizeof name, "%s:/config", path);
    poa_config_defaults(cfg);
    poa_status st =
        poa_config_load_yaml_string(cfg, name, h->config_yaml ? h->config_yaml : "", err);
    int world = h->world_size > 0 && h->world_size < (1 << 20) ? (int) h->world_size : 1;
    if (!st) st = poa_config_finalize(cfg, world, err);
    if (st) {
        recode(err, POA_ERR_FORMAT);
        return poa_err_prefix(err, "%s: the configuration stored in the checkpoint", path);
    }
    return POA_OK;
}

static poa_status open_checkpoint(const char *path, poa_weights_from from, poa_model_source *src,
                                  poa_err *err)
{
    poa_ckpt_header h;
    memset(&h, 0, sizeof h);
    poa_status st = poa_ckpt_read_header(path, &h, err);
    if (st) return st;
    if (from == POA_FROM_STUDENT && strcmp(h.content, "full") != 0)
        st = poa_err_set(err, POA_ERR_ARG,
                         "%s is an evaluation checkpoint (teacher weights only): the student "
                         "weights are in the run's checkpoint_<iteration>.h5 files",
                         path);
    poa_config *cfg = poa_xcalloc(1, sizeof *cfg);
    poa_model_config mc;
    if (!st) st = stored_config(path, &h, cfg, err);
    if (!st && poa_model_config_from_config(cfg, &mc, err) != POA_OK) {
        st = recode(err, POA_ERR_FORMAT);
        poa_err_prefix(err, "%s", path);
    }
    free(cfg);
    if (!st) {
        poa_model_build(&src->model, &mc);
        st = check_meta(path, &src->model, &h.meta, err);
        src->params = poa_xmalloc(src->model.table.total * sizeof(float));
    }
    if (!st) {
        poa_ckpt_tensors x = {0};
        *(from == POA_FROM_STUDENT ? &x.student : &x.teacher) = src->params;
        poa_ckpt_load_opts lo = {0, 0};
        st = poa_ckpt_load(path, &src->model.table, &x, NULL, &lo, err);
    }
    if (!st) {
        src->kind = POA_SOURCE_CHECKPOINT;
        src->container = POA_FILE_H5;
        src->from = from;
        src->iteration = h.iteration;
        src->world_size = h.world_size;
        snprintf(src->program_version, sizeof src->program_version, "%s", h.program_version);
        snprintf(src->content, sizeof src->content, "%s", h.content);
        src->config_yaml = h.config_yaml;
        h.config_yaml = NULL;
    }
    poa_ckpt_header_free(&h);
    return st;
}

/* The newest checkpoint of a run directory that opens; others are skipped with a warning. */
static poa_status open_run_dir(const char *dir, poa_weights_from from, poa_model_source *src,
                               poa_err *err)
{
    int64_t *its = NULL;
    int n = 0;
    poa_status st = poa_ckpt_list(dir, &its, &n, err);
    if (st) return st;
    if (n == 0)
        st = poa_err_set(err, POA_ERR_NOTFOUND,
                         "%s holds no checkpoint_<iteration>.h5 (not a poa-train output "
                         "directory, or the run wrote no checkpoint yet)",
                         dir);
    for (int i = 0; i < n; i++) {
        char path[POA_IO_PATH_MAX];
        poa_ckpt_path(dir, its[i], path, sizeof path);
        st = open_checkpoint(path, from, src, err);
        if (st == POA_OK) {
            snprintf(src->path, sizeof src->path, "%s", path);
            break;
        }
        poa_model_source_close(src);
        if (st == POA_ERR_VERSION || st == POA_ERR_ARG || i == n - 1) break;
        poa_warn("skipping %s: %s", path, err ? err->msg : "cannot be read");
    }
    free(its);
    return st;
}

/* ================================================================== extracted models */

/* The file holds at least the float32 parameters of the model its metadata describes: checked
 * before they are allocated, so metadata cannot make poa allocate more than the file
 * justifies (both containers store the tensors uncompressed). */
static poa_status check_file_holds(const char *path, const poa_model *m, poa_err *err)
{
    uint64_t bytes = 0;
    for (int i = 0; i < m->table.n; i++) bytes += (uint64_t) m->table.p[i].numel * sizeof(float);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return poa_err_set(err, POA_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (bytes > (uint64_t) sb.st_size)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s: the %dx%d model its metadata describes has %.1f MiB of parameters, "
                           "more than the %lld-byte file holds (corrupt metadata or a truncated "
                           "file)",
                           path, m->cfg.max_embed_dim, m->cfg.max_depth, (double) bytes / 1048576.0,
                           (long long) sb.st_size);
    return POA_OK;
}

static poa_status open_extracted(const char *path, poa_model_source *src, poa_err *err)
{
    poa_extracted_meta *x = &src->extracted;
    poa_status st = poa_extracted_read_meta(path, &src->container, x, err);
    if (st) return st;
    poa_vit_shape shape = {x->embed_dim,  x->depth,    x->head_dim, x->mlp_ratio,
                           x->patch_size, x->img_size, x->in_chans, (float) x->ln_eps};
    poa_model_config mc;
    if (poa_extract_config_of_shape(&shape, &mc, err) != POA_OK) {
        recode(err, POA_ERR_FORMAT);
        return poa_err_prefix(err, "%s: the model its metadata describes", path);
    }
    poa_model_build(&src->model, &mc);
    if ((st = check_file_holds(path, &src->model, err))) return st;
    src->params = poa_xmalloc(src->model.table.total * sizeof(float));
    memset(src->params, 0, src->model.table.total * sizeof(float)); /* alignment padding */
    st = poa_extracted_load(path, &src->model.table, src->params, err);
    if (st) return st;
    src->kind = POA_SOURCE_EXTRACTED;
    if (poa_weights_from_parse(x->source_weights, &src->from, NULL) != POA_OK)
        src->from = POA_FROM_TEACHER;
    src->iteration = x->source_iteration;
    snprintf(src->program_version, sizeof src->program_version, "%s", x->program_version);
    src->config_yaml = x->config_yaml;
    x->config_yaml = NULL;
    return POA_OK;
}

/* ================================================================== the source */

static poa_status open_file(const char *path, poa_weights_from from, poa_model_source *src,
                            poa_err *err)
{
    poa_file_format container;
    char format[64];
    poa_status st = poa_file_identify(path, &container, format, sizeof format, err);
    if (st) return st;
    if (strcmp(format, POA_CKPT_FORMAT_NAME) == 0) return open_checkpoint(path, from, src, err);
    if (strcmp(format, POA_EXTRACTED_FORMAT_NAME) == 0) return open_extracted(path, src, err);
    return poa_err_set(err, POA_ERR_VERSION,
                       "%s: a%s %s file that is neither a poa checkpoint ('%s') nor an extracted "
                       "model ('%s')",
                       path, format[0] ? "" : "n unlabelled", poa_file_format_name(container),
                       POA_CKPT_FORMAT_NAME, POA_EXTRACTED_FORMAT_NAME);
}

poa_status poa_model_source_open(const char *path, poa_weights_from from, poa_model_source *src,
                                 poa_err *err)
{
    memset(src, 0, sizeof *src);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return poa_err_set(err, errno == ENOENT ? POA_ERR_NOTFOUND : POA_ERR_FORMAT,
                           "cannot open %s: %s", path, strerror(errno));
    snprintf(src->path, sizeof src->path, "%s", path);
    poa_status st =
        S_ISDIR(sb.st_mode) ? open_run_dir(path, from, src, err) : open_file(path, from, src, err);
    if (st) poa_model_source_close(src);
    return st;
}

void poa_model_source_close(poa_model_source *src)
{
    if (src->model.table.p) poa_model_free(&src->model);
    free(src->params);
    free(src->config_yaml);
    poa_extracted_meta_free(&src->extracted);
    memset(src, 0, sizeof *src);
}

/* ================================================================== sub-networks */

enum { MAX_WIDTHS = 1024 };
/* The elastic widths (returned count) and depths (*nd) of c. */
static int elastic_sets(const poa_model_config *c, int *widths, int *depths, int *nd)
{
    int nw = poa_model_widths(c, widths, MAX_WIDTHS);
    *nd = poa_model_depths(c, depths, POA_ARCH_MAX_DEPTH);
    POA_CHECK(nw <= MAX_WIDTHS && *nd <= POA_ARCH_MAX_DEPTH, "%d widths, %d depths", nw, *nd);
    return nw;
}

int poa_model_source_subnets(const poa_model_source *src, poa_subnet *out, int cap)
{
    const poa_model_config *c = &src->model.cfg;
    int widths[MAX_WIDTHS], depths[POA_ARCH_MAX_DEPTH], nd;
    int nw = elastic_sets(c, widths, depths, &nd);
    int n = 0;
    for (int u = 0; u < nw; u++)
        for (int v = 0; v < nd; v++, n++)
            if (n < cap) poa_subnet_make(c, widths[u], depths[v], &out[n], NULL);
    return n;
}

/* "64, 96, 128" */
static void list_text(const int *v, int n, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && k < len; i++)
        k += (size_t) snprintf(buf + k, len - k, i ? ", %d" : "%d", v[i]);
}

poa_status poa_model_source_subnet(const poa_model_source *src, int width, int depth,
                                   poa_subnet *sn, poa_err *err)
{
    const poa_model_config *c = &src->model.cfg;
    int widths[MAX_WIDTHS], depths[POA_ARCH_MAX_DEPTH], nd;
    int nw = elastic_sets(c, widths, depths, &nd);
    int w_ok = 0, d_ok = 0;
    for (int i = 0; i < nw; i++) w_ok |= widths[i] == width;
    for (int i = 0; i < nd; i++) d_ok |= depths[i] == depth;
    if (!w_ok || !d_ok) {
        char ws[512], ds[512];
        list_text(widths, nw, ws, sizeof ws);
        list_text(depths, nd, ds, sizeof ds);
        return poa_err_set(err, POA_ERR_ARG,
                           "%dx%d: %s %d is not %s of this model (widths %s; depths %s)", width,
                           depth, w_ok ? "depth" : "width", w_ok ? depth : width,
                           w_ok ? "an elastic depth" : "an elastic width", ws, ds);
    }
    return poa_subnet_make(c, width, depth, sn, err);
}

/* The preset's sub-network when it is a named size of src. */
static int named_size(const poa_model_source *src, const poa_arch_preset *a, poa_subnet *sn)
{
    const poa_model_config *c = &src->model.cfg;
    return a->patch_size == c->patch_size && a->head_dim == c->head_dim &&
           poa_model_source_subnet(src, a->max_embed_dim, a->max_depth, sn, NULL) == POA_OK;
}

void poa_model_source_named_list(const poa_model_source *src, char *buf, size_t n)
{
    int count = 0;
    const poa_arch_preset *all = poa_arch_presets(&count);
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < count && k < n; i++) {
        poa_subnet sn;
        if (!named_size(src, &all[i], &sn)) continue;
        k += (size_t) snprintf(buf + k, n - k, "%s%s (%dx%d)", k ? ", " : "", all[i].name, sn.width,
                               sn.depth);
    }
    if (!buf[0]) snprintf(buf, n, "none");
}

poa_status poa_model_source_named(const poa_model_source *src, const char *name, poa_subnet *sn,
                                  poa_err *err)
{
    const poa_arch_preset *a = poa_arch_preset_find(name);
    if (a && named_size(src, a, sn)) return POA_OK;
    char valid[512];
    poa_model_source_named_list(src, valid, sizeof valid);
    if (!a)
        return poa_err_set(err, POA_ERR_ARG,
                           "'%s' is not an architecture name (names: %s); "
                           "named sizes of this model: %s",
                           name, poa_arch_preset_names(), valid);
    return poa_err_set(err, POA_ERR_ARG,
                       "'%s' (%dx%d, patch %d, heads of %d) is not a sub-network of this model "
                       "(patch %d, heads of %d); named sizes of this model: %s",
                       name, a->max_embed_dim, a->max_depth, a->patch_size, a->head_dim,
                       src->model.cfg.patch_size, src->model.cfg.head_dim, valid);
}
