/* metrics.c — see metrics.h. */
#include "train/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void poa_timing_window_add(poa_timing_window *w, const poa_iter_timing *t, long long images)
{
    w->iters++;
    w->images += images;
    w->sum.data_s += t->data_s;
    w->sum.step_s += t->step_s;
    w->sum.comm_s += t->comm_s;
    w->sum.exposed_s += t->exposed_s;
    w->sum.iter_s += t->iter_s;
    for (int i = 0; i < POA_N_PHASES; i++) w->sum.phase_s[i] += t->phase_s[i];
}

void poa_timing_window_reset(poa_timing_window *w)
{
    memset(w, 0, sizeof *w);
}

void poa_metrics_terms_from_slots(const double *slots, int n_heads, double terms[POA_N_TERMS])
{
    for (int t = 0; t < POA_N_TERMS; t++) {
        double v = 0;
        if (t < POA_N_HEAD_TERMS) {
            for (int h = 0; h < n_heads; h++) v += slots[poa_loss_slot(n_heads, h, t)];
            v = n_heads > 0 ? v / n_heads : 0;
        } else {
            v = slots[poa_loss_slot(n_heads, 0, (poa_loss_term) t)];
        }
        terms[t] = v;
    }
}

void poa_format_duration(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e9) {
        snprintf(buf, n, "?");
        return;
    }
    long long t = (long long) (s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%lldh%02lldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60)
        snprintf(buf, n, "%lldm%02llds", t / 60, t % 60);
    else
        snprintf(buf, n, "%llds", t);
}

#define OUT(...) (k += (size_t) snprintf(buf + (k < n ? k : n), k < n ? n - k : 0, __VA_ARGS__))

static double pct(double part, double whole)
{
    return whole > 0 ? 100.0 * part / whole : 0.0;
}

void poa_metrics_format_line(const poa_metrics_record *r, char *buf, size_t n)
{
    size_t k = 0;
    char eta[32];
    poa_format_duration(r->eta_s, eta, sizeof eta);
    OUT("epoch %lld it %lld/%lld loss %.5f (", r->epoch, r->iteration, r->total_iterations,
        r->total_loss);
    for (int t = 0; t < POA_N_TERMS; t++)
        OUT("%s%s %.4f", t ? " " : "", poa_loss_term_name((poa_loss_term) t), r->terms[t]);
    OUT(") lr %.3e wd %.4f mom %.5f tt %.4f sub", r->lr, r->wd, r->mom, r->teacher_temp);
    int shown = r->n_subnets < 4 ? r->n_subnets : 4;
    for (int g = 0; g < shown; g++) OUT("%s%dx%d", g ? "," : " ", r->width[g], r->depth[g]);
    if (r->n_subnets > shown) OUT(",+%d", r->n_subnets - shown);
    OUT(" img/s %.1f | data %.0f%% compute %.0f%% comm %.3fs (exposed %.3fs) | %.2fs/it ETA %s",
        r->img_s, pct(r->data_time, r->iter_time), pct(r->compute_time, r->iter_time), r->comm_time,
        r->comm_exposed_time, r->iter_time, eta);
}

/* A JSON number; NaN/Infinity as Python's json module writes them. */
static void num(char *buf, size_t n, size_t *kp, const char *key, double v)
{
    size_t k = *kp;
    if (isnan(v))
        OUT(", \"%s\": NaN", key);
    else if (isinf(v))
        OUT(", \"%s\": %sInfinity", key, v < 0 ? "-" : "");
    else
        OUT(", \"%s\": %.9g", key, v);
    *kp = k;
}

void poa_metrics_format_json(const poa_metrics_record *r, char *buf, size_t n)
{
    size_t k = 0;
    OUT("{\"iteration\": %lld, \"epoch\": %lld", r->iteration, r->epoch);
    num(buf, n, &k, "total_loss", r->total_loss);
    for (int t = 0; t < POA_N_TERMS; t++)
        num(buf, n, &k, poa_loss_term_name((poa_loss_term) t), r->terms[t]);
    num(buf, n, &k, "lr", r->lr);
    num(buf, n, &k, "last_layer_lr", r->last_layer_lr);
    num(buf, n, &k, "wd", r->wd);
    num(buf, n, &k, "mom", r->mom);
    num(buf, n, &k, "teacher_temp", r->teacher_temp);
    OUT(", \"ibot_active\": %d", r->ibot_active);
    num(buf, n, &k, "grad_norm_backbone", r->grad_norm_backbone);
    num(buf, n, &k, "grad_norm_head", r->grad_norm_head);
    OUT(", \"elastic_width\": %d, \"elastic_depth\": %d", r->n_subnets ? r->width[0] : 0,
        r->n_subnets ? r->depth[0] : 0);
    OUT(", \"elastic_widths\": [");
    for (int g = 0; g < r->n_subnets; g++) OUT("%s%d", g ? ", " : "", r->width[g]);
    OUT("], \"elastic_depths\": [");
    for (int g = 0; g < r->n_subnets; g++) OUT("%s%d", g ? ", " : "", r->depth[g]);
    OUT("], \"current_batch_size\": %lld", r->batch_size);
    num(buf, n, &k, "img_s", r->img_s);
    num(buf, n, &k, "iter_time", r->iter_time);
    num(buf, n, &k, "data_time", r->data_time);
    num(buf, n, &k, "compute_time", r->compute_time);
    num(buf, n, &k, "comm_time", r->comm_time);
    num(buf, n, &k, "comm_exposed_time", r->comm_exposed_time);
    num(buf, n, &k, "eta_s", r->eta_s);
    for (int i = 0; i < POA_N_PHASES; i++) {
        char key[64];
        snprintf(key, sizeof key, "time_%s", poa_step_phase_name(i));
        num(buf, n, &k, key, r->phase_time[i]);
    }
    OUT("}");
}
#undef OUT

/* Iteration of a record line, -1 when the line has none. */
static long long line_iteration(const char *line)
{
    const char *p = strstr(line, "\"iteration\":");
    if (!p) return -1;
    char *end;
    long long it = strtoll(p + 12, &end, 10);
    return end == p + 12 ? -1 : it;
}

/* Keep only the records with iteration <= keep_through (temporary file + rename). */
static poa_status truncate_records(const char *path, long long keep_through, poa_err *err)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        if (errno == ENOENT) return POA_OK;
        return poa_err_set(err, POA_ERR_IO, "%s: %s", path, strerror(errno));
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long) getpid());
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return poa_err_set(err, POA_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long dropped = 0;
    while ((len = getline(&line, &cap, in)) > 0) {
        long long it = line_iteration(line);
        if (it > keep_through) {
            dropped++;
            continue;
        }
        fwrite(line, 1, (size_t) len, out);
    }
    free(line);
    fclose(in);
    int bad = fflush(out) != 0 || fsync(fileno(out)) != 0;
    bad |= fclose(out) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return poa_err_set(err, POA_ERR_IO, "%s: %s", path, strerror(e));
    }
    (void) dropped;
    return POA_OK;
}

poa_status poa_metrics_open(poa_metrics_file *mf, const char *path, long long keep_through,
                            poa_err *err)
{
    memset(mf, 0, sizeof *mf);
    snprintf(mf->path, sizeof mf->path, "%s", path);
    if (keep_through >= 0) {
        poa_status st = truncate_records(path, keep_through, err);
        if (st != POA_OK) return st;
    } else if (access(path, F_OK) == 0) {
        char old[4200];
        snprintf(old, sizeof old, "%s.old", path);
        if (rename(path, old) != 0)
            return poa_err_set(err, POA_ERR_IO, "%s: cannot rename to %s: %s", path, old,
                               strerror(errno));
    }
    mf->f = fopen(path, "a");
    if (!mf->f) return poa_err_set(err, POA_ERR_IO, "%s: %s", path, strerror(errno));
    return POA_OK;
}

poa_status poa_metrics_append(poa_metrics_file *mf, const poa_metrics_record *r, poa_err *err)
{
    if (!mf->f) return POA_OK;
    char buf[8192];
    poa_metrics_format_json(r, buf, sizeof buf);
    if (fprintf(mf->f, "%s\n", buf) < 0 || fflush(mf->f) != 0)
        return poa_err_set(err, POA_ERR_IO, "%s: %s", mf->path, strerror(errno));
    return POA_OK;
}

void poa_metrics_close(poa_metrics_file *mf)
{
    if (mf->f) fclose(mf->f);
    mf->f = NULL;
}
