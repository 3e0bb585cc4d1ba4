/* backend_ops_harness.c — buffers, runs, comparisons, finite differences and timing of
 * tests/ops/test_backend_ops (see backend_ops.h). */
#include "backend_ops.h"

#include "common/bf16.h"
#include "common/poa_error.h"
#include "common/rng.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double bo_u_act(const bo_ctx *c)
{
    return c->be->act_dtype == POA_DT_BF16 ? BO_U16 : BO_U32;
}

double bo_round_act(const bo_ctx *c, double x)
{
    return c->be->act_dtype == POA_DT_BF16 ? (double) poa_round_bf16((float) x)
                                           : (double) (float) x;
}

const char *bo_dtype(const bo_ctx *c)
{
    return poa_dtype_name(c->be->act_dtype);
}

/* ------------------------------------------------------------------------ messages */
/* Lines under a case's line: failures always, notes with --verbose. */
static void case_msg(bo_case *k, int failure, const char *fmt, va_list ap)
{
    if (k->skip) return;
    if (failure) k->failed = 1;
    if (!failure && !k->c->verbose) return;
    char line[768];
    vsnprintf(line, sizeof line, fmt, ap);
    const size_t have = k->msgs ? strlen(k->msgs) : 0, add = strlen(line) + 8;
    k->msgs = poa_xrealloc(k->msgs, have + add);
    snprintf(k->msgs + have, add, "    %s\n", line);
}

void bo_fail(bo_case *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    case_msg(k, 1, fmt, ap);
    va_end(ap);
}

void bo_note(bo_case *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    case_msg(k, 0, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ cases */
void bo_case_begin(bo_case *k, bo_ctx *c, const char *fmt, ...)
{
    memset(k, 0, sizeof *k);
    k->c = c;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->desc, sizeof k->desc, fmt, ap);
    va_end(ap);
}

static void buf_release(bo_case *k, bo_buf *b)
{
    if (b->dev) k->c->be->iface->free(k->c->be, b->dev);
    free(b->h), free(b->g), free(b->init), free(b->got), free(b->inview);
}

int bo_case_end(bo_case *k)
{
    bo_ctx *c = k->c;
    for (int i = 0; i < k->nbuf; i++) buf_release(k, &k->buf[i]);
    for (int i = 0; i < k->ntmp; i++) free(k->tmp[i]);
    if (k->skip) {
        c->skipped++;
        printf("skip %s/%s %s (--small)\n", c->be->name, bo_dtype(c), k->desc);
        free(k->msgs);
        memset(k, 0, sizeof *k);
        return 1;
    }
    c->cases++;
    if (k->failed) c->failed++;
    printf("%-4s %s/%s %s\n", k->failed ? "FAIL" : "ok", c->be->name, bo_dtype(c), k->desc);
    if (k->msgs) fputs(k->msgs, stdout);
    fflush(stdout);
    free(k->msgs);
    const int ok = !k->failed;
    memset(k, 0, sizeof *k);
    return ok;
}

void *bo_tmp(bo_case *k, size_t bytes)
{
    POA_ASSERT(k->ntmp < BO_MAX_TMP);
    return k->tmp[k->ntmp++] = poa_xcalloc(bytes ? bytes : 1, 1);
}

double *bo_tmpd(bo_case *k, size_t n)
{
    return bo_tmp(k, sizeof(double) * n);
}

/* ------------------------------------------------------------------------ buffers */
static size_t kind_size(const bo_ctx *c, bo_kind kind)
{
    switch (kind) {
    case BO_F32:
        return 4;
    case BO_ACT:
        return c->be->act_size;
    case BO_F64:
        return 8;
    case BO_I32:
        return 4;
    case BO_U8:
    case BO_BYTES:
        return 1;
    }
    return 1;
}

/* FNV-1a over a string, folded into h */
static uint64_t hash_str(uint64_t h, const char *s)
{
    for (; *s; s++) h = (h ^ (unsigned char) *s) * 0x100000001b3ull;
    return h;
}

static void buf_rng(const bo_buf *b, const bo_case *k, poa_rng *r)
{
    uint64_t h = hash_str(hash_str(0xcbf29ce484222325ull ^ k->c->seed, k->desc), b->name);
    h = hash_str(h, k->c->op ? k->c->op : "");
    poa_rng_init(r, h, 0, POA_RNG_TEST, 0);
}

void bo_fill(bo_buf *b, double lo, double hi)
{
    poa_rng r;
    buf_rng(b, b->owner, &r);
    if (b->kind == BO_BYTES) {
        for (size_t i = 0; i < b->n; i++) b->init[i] = (unsigned char) poa_rng_below(&r, 256);
        return;
    }
    for (size_t i = 0; i < b->n; i++) b->h[i] = poa_rng_uniform_range(&r, lo, hi);
}

bo_buf *bo_new_batched(bo_case *k, const char *name, bo_kind kind, bo_role role, int batch,
                       int rows, int cols, int ld, size_t stride, size_t off)
{
    POA_ASSERT(k->nbuf < BO_MAX_BUFS);
    POA_ASSERT(batch >= 1 && rows >= 0 && cols >= 0 && (rows <= 1 || ld >= cols));
    const size_t span = rows && cols ? (size_t) (rows - 1) * ld + cols : 0;
    POA_ASSERT(batch == 1 || stride >= span);
    bo_buf *b = &k->buf[k->nbuf++];
    memset(b, 0, sizeof *b);
    if (k->c->small && (size_t) batch * rows * cols > BO_SMALL_ELEMENTS) k->skip = 1;
    b->owner = k;
    b->name = name;
    b->kind = kind;
    b->role = role;
    b->batch = batch, b->rows = rows, b->cols = cols, b->ld = ld, b->stride = stride;
    b->off = off;
    b->guard = kind == BO_BYTES ? 8 * BO_GUARD : BO_GUARD; /* bytes: 64 */
    b->n = off + (span ? (size_t) (batch - 1) * stride + span : 0) + b->guard;
    b->esize = kind_size(k->c, kind);
    b->init = poa_xcalloc(b->n, b->esize);
    b->got = poa_xcalloc(b->n, b->esize);
    b->inview = poa_xcalloc(b->n, 1);
    for (int i = 0; i < batch; i++)
        for (int r = 0; r < rows; r++)
            for (int cc = 0; cc < cols; cc++) b->inview[bo_index(b, i, r, cc)] = 1;
    if (kind != BO_BYTES) {
        b->h = poa_xcalloc(b->n, sizeof(double));
        b->g = poa_xcalloc(b->n, sizeof(double));
    }
    if (kind == BO_F32 || kind == BO_ACT || kind == BO_F64 || kind == BO_BYTES) bo_fill(b, -1, 1);
    return b;
}

bo_buf *bo_new(bo_case *k, const char *name, bo_kind kind, bo_role role, int rows, int cols, int ld,
               size_t off)
{
    return bo_new_batched(k, name, kind, role, 1, rows, cols, ld, 0, off);
}

bo_buf *bo_vec(bo_case *k, const char *name, bo_kind kind, bo_role role, size_t n)
{
    return bo_new(k, name, kind, role, n ? 1 : 0, (int) n, (int) n, 0);
}

void bo_set_bytes(bo_buf *b, const void *src, size_t bytes)
{
    POA_ASSERT(b->kind == BO_BYTES && bytes <= b->n);
    memcpy(b->init, src, bytes);
}

void *bo_dev(const bo_buf *b)
{
    POA_ASSERT(b->dev != NULL); /* buffers reach the device at the first bo_run */
    return (char *) b->dev + b->off * b->esize;
}

const int32_t *bo_i32(const bo_buf *b)
{
    POA_ASSERT(b->kind == BO_I32 && (b->prepared || b->owner->skip));
    return (const int32_t *) b->init + b->off;
}

const uint8_t *bo_u8(const bo_buf *b)
{
    POA_ASSERT(b->kind == BO_U8 && (b->prepared || b->owner->skip));
    return b->init + b->off;
}

double *bo_want(bo_case *k, const bo_buf *b)
{
    double *w = bo_tmpd(k, b->n);
    memcpy(w, b->h, sizeof(double) * b->n);
    return w;
}

double *bo_delta(bo_case *k, const bo_buf *b)
{
    double *d = bo_tmpd(k, b->n);
    for (size_t i = 0; i < b->n; i++) d[i] = b->g[i] - b->h[i];
    return d;
}

/* Host values → initial backend bytes; for activations the values become those the backend
 * holds after act_upload (rounded to the compute dtype). */
static void buf_prepare(bo_case *k, bo_buf *b)
{
    poa_backend *be = k->c->be;
    const size_t bytes = b->n * b->esize;
    b->dev = be->iface->alloc(be, bytes);
    float *f = NULL;
    switch (b->kind) {
    case BO_F32:
        f = (float *) b->init;
        for (size_t i = 0; i < b->n; i++) f[i] = (float) b->h[i], b->h[i] = f[i];
        break;
    case BO_ACT:
        f = poa_xmalloc(sizeof(float) * b->n);
        for (size_t i = 0; i < b->n; i++) f[i] = (float) b->h[i];
        be->iface->act_upload(be, b->dev, f, b->n);
        be->iface->download(be, b->init, b->dev, bytes);
        be->iface->act_download(be, f, b->dev, b->n);
        for (size_t i = 0; i < b->n; i++) b->h[i] = f[i];
        free(f);
        break;
    case BO_F64:
        memcpy(b->init, b->h, bytes);
        break;
    case BO_I32:
        for (size_t i = 0; i < b->n; i++) ((int32_t *) b->init)[i] = (int32_t) lround(b->h[i]);
        break;
    case BO_U8:
        for (size_t i = 0; i < b->n; i++) b->init[i] = (uint8_t) lround(b->h[i]);
        break;
    case BO_BYTES:
        break;
    }
    be->iface->upload(be, b->dev, b->init, bytes);
    b->prepared = 1;
}

/* Backend bytes after the run → b->got, and their values → b->g. */
static void buf_fetch(bo_case *k, bo_buf *b)
{
    poa_backend *be = k->c->be;
    be->iface->download(be, b->got, b->dev, b->n * b->esize);
    if (b->kind == BO_BYTES) return;
    if (b->kind == BO_ACT) {
        float *f = poa_xmalloc(sizeof(float) * b->n);
        be->iface->act_download(be, f, b->dev, b->n);
        for (size_t i = 0; i < b->n; i++) b->g[i] = f[i];
        free(f);
        return;
    }
    for (size_t i = 0; i < b->n; i++) switch (b->kind) {
        case BO_F32:
            b->g[i] = ((const float *) b->got)[i];
            break;
        case BO_F64:
            b->g[i] = ((const double *) b->got)[i];
            break;
        case BO_I32:
            b->g[i] = ((const int32_t *) b->got)[i];
            break;
        default:
            b->g[i] = b->got[i];
            break;
        }
}

/* Element index → "(r, c)" of the view, or where outside it the element lies. */
static void where(const bo_buf *b, size_t e, char *s, size_t n)
{
    if (e < b->off) {
        snprintf(s, n, "element %zu before the view (offset %zu)", e, b->off);
        return;
    }
    const size_t rel = e - b->off, span = b->n - b->guard - b->off;
    if (rel >= span) {
        snprintf(s, n, "guard element %zu after the view", rel - span);
        return;
    }
    const size_t ld = b->ld ? (size_t) b->ld : 1, bt = b->batch > 1 ? rel / b->stride : 0;
    const size_t in = rel - bt * b->stride;
    if (b->batch > 1)
        snprintf(s, n, "[%zu](%zu, %zu)%s", bt, in / ld, in % ld, b->inview[e] ? "" : " (padding)");
    else
        snprintf(s, n, "(%zu, %zu)%s", in / ld, in % ld, b->inview[e] ? "" : " (padding)");
}

/* Elements whose bytes differ between a and b, counting those where `only_outside` says; the
 * first is described in `first`. */
static size_t bytes_differ(const bo_buf *b, const unsigned char *x, const unsigned char *y,
                           int only_outside, size_t *first)
{
    size_t count = 0;
    for (size_t e = 0; e < b->n; e++) {
        if (only_outside && b->inview[e]) continue;
        if (memcmp(x + e * b->esize, y + e * b->esize, b->esize) == 0) continue;
        if (!count) *first = e;
        count++;
    }
    return count;
}

static void check_untouched(bo_case *k, const bo_buf *b)
{
    size_t first = 0, bad;
    char at[96];
    switch (b->role) {
    case BO_IN:
        bad = bytes_differ(b, b->init, b->got, 0, &first);
        if (!bad) return;
        where(b, first, at, sizeof at);
        bo_fail(k, "input %s modified: %zu elements, the first at %s", b->name, bad, at);
        return;
    case BO_OUT:
        bad = bytes_differ(b, b->init, b->got, 1, &first);
        if (!bad) return;
        where(b, first, at, sizeof at);
        bo_fail(k, "%s written outside its view: %zu elements, the first at %s", b->name, bad, at);
        return;
    case BO_SCRATCH: /* only the guard after the declared size */
        for (size_t e = b->n - b->guard; e < b->n; e++)
            if (b->init[e] != b->got[e]) {
                bo_fail(k, "%s (scratch) written past its %zu bytes", b->name, b->n - b->guard);
                return;
            }
        return;
    }
}

static void upload_all(bo_case *k)
{
    poa_backend *be = k->c->be;
    for (int i = 0; i < k->nbuf; i++) {
        bo_buf *b = &k->buf[i];
        if (!b->prepared)
            buf_prepare(k, b);
        else
            be->iface->upload(be, b->dev, b->init, b->n * b->esize);
    }
}

void bo_prepare(bo_case *k)
{
    for (int i = 0; i < k->nbuf; i++)
        if (!k->buf[i].prepared) buf_prepare(k, &k->buf[i]);
}

/* The op again on the same initial state: the outputs' bytes must repeat. */
static void check_repeat(bo_case *k, bo_fn fn, void *args)
{
    poa_backend *be = k->c->be;
    upload_all(k);
    fn(be, args);
    for (int i = 0; i < k->nbuf; i++) {
        const bo_buf *b = &k->buf[i];
        if (b->role != BO_OUT) continue;
        unsigned char *again = poa_xmalloc(b->n * b->esize);
        be->iface->download(be, again, b->dev, b->n * b->esize);
        size_t first = 0;
        const size_t bad = bytes_differ(b, b->got, again, 0, &first);
        if (bad) {
            char at[96];
            where(b, first, at, sizeof at);
            bo_fail(k,
                    "not deterministic: %s differs between two runs in %zu elements, the "
                    "first at %s",
                    b->name, bad, at);
        }
        free(again);
    }
}

void bo_run(bo_case *k, bo_fn fn, void *args)
{
    k->runs++;
    if (k->skip) return;
    poa_backend *be = k->c->be;
    upload_all(k);
    fn(be, args);
    for (int i = 0; i < k->nbuf; i++) buf_fetch(k, &k->buf[i]);
    for (int i = 0; i < k->nbuf; i++) check_untouched(k, &k->buf[i]);
    if (k->c->mode == BO_CHECK && !k->c->small) check_repeat(k, fn, args);
}

/* ------------------------------------------------------------------------ comparisons */
/* The view's values `vals` (whole-allocation layout) against want; `what` names them. */
static void expect_values(bo_case *k, const bo_buf *b, const char *what, const double *vals,
                          const double *want, const double *mag, bo_tol tol)
{
    if (k->skip) return;
    POA_ASSERT(k->runs > 0);
    size_t bad = 0, count = 0, worst = 0;
    double worst_ratio = -1;
    for (int bt = 0; bt < b->batch; bt++)
        for (int r = 0; r < b->rows; r++)
            for (int cc = 0; cc < b->cols; cc++) {
                const size_t e = bo_index(b, bt, r, cc);
                const double got = vals[e], w = want[e];
                const double bound = tol.atol + tol.rtol * fabs(w) + (mag ? tol.mtol * mag[e] : 0);
                double ratio;
                if (isnan(w))
                    ratio = isnan(got) ? 0 : INFINITY;
                else if (isnan(got) || isinf(got) != isinf(w))
                    ratio = INFINITY;
                else if (isinf(w))
                    ratio = got == w ? 0 : INFINITY;
                else
                    ratio = fabs(got - w) <= bound ? (bound > 0 ? fabs(got - w) / bound : 0)
                                                   : (bound > 0 ? fabs(got - w) / bound : INFINITY);
                count++;
                if (!(ratio <= 1)) bad++;
                if (!(ratio <= worst_ratio)) worst_ratio = ratio, worst = e;
            }
    if (!count) return;
    const double got = vals[worst], w = want[worst];
    const double bound = tol.atol + tol.rtol * fabs(w) + (mag ? tol.mtol * mag[worst] : 0);
    char at[96];
    where(b, worst, at, sizeof at);
    if (bad)
        bo_fail(k,
                "%s: %zu of %zu elements beyond tolerance; worst at %s: got %.9g want %.9g "
                "|diff| %.3g > tol %.3g",
                what, bad, count, at, got, w, fabs(got - w), bound);
    else
        bo_note(k, "%s: worst at %s: got %.9g want %.9g |diff| %.3g, tol %.3g (%zu elements)", what,
                at, got, w, fabs(got - w), bound, count);
}

void bo_expect(bo_case *k, const bo_buf *b, const double *want, const double *mag, bo_tol tol)
{
    expect_values(k, b, b->name, b->g, want, mag, tol);
}

void bo_expect_added(bo_case *k, const bo_buf *b, const double *added, const double *mag,
                     bo_tol tol)
{
    if (k->skip) return;
    char what[96];
    snprintf(what, sizeof what, "%s (what the op added)", b->name);
    expect_values(k, b, what, bo_delta(k, b), added, mag, tol);
}

void bo_expect_norm(bo_case *k, const bo_buf *b, const double *want, double ntol)
{
    if (k->skip) return;
    POA_ASSERT(k->runs > 0);
    double num = 0, den = 0, wd = -1;
    size_t worst = b->off;
    for (int bt = 0; bt < b->batch; bt++)
        for (int r = 0; r < b->rows; r++)
            for (int cc = 0; cc < b->cols; cc++) {
                const size_t e = bo_index(b, bt, r, cc);
                const double d = b->g[e] - want[e];
                num += d * d, den += want[e] * want[e];
                if (!(fabs(d) <= wd)) wd = fabs(d), worst = e;
            }
    const double err = sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);
    char at[96];
    where(b, worst, at, sizeof at);
    if (!(err <= ntol))
        bo_fail(k, "%s: norm-wise relative error %.3g > %.3g; worst at %s: got %.9g want %.9g",
                b->name, err, ntol, at, b->g[worst], want[worst]);
    else
        bo_note(k, "%s: norm-wise relative error %.3g (tol %.3g); worst at %s: got %.9g want %.9g",
                b->name, err, ntol, at, b->g[worst], want[worst]);
}

void bo_expect_norm_values(bo_case *k, const char *what, const double *got, const double *want,
                           size_t n, double ntol)
{
    if (k->skip) return;
    double num = 0, den = 0, wd = -1;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = got[i] - want[i];
        num += d * d, den += want[i] * want[i];
        if (!(fabs(d) <= wd)) wd = fabs(d), worst = i;
    }
    if (!n) return;
    const double err = sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);
    if (!(err <= ntol))
        bo_fail(k, "%s: norm-wise relative error %.3g > %.3g; worst [%zu]: got %.9g want %.9g",
                what, err, ntol, worst, got[worst], want[worst]);
    else
        bo_note(k, "%s: norm-wise relative error %.3g (tol %.3g); worst [%zu]: got %.9g want %.9g",
                what, err, ntol, worst, got[worst], want[worst]);
}

double *bo_view_copy(bo_case *k, const bo_buf *b, const double *full)
{
    double *v = bo_tmpd(k, (size_t) b->batch * b->rows * b->cols);
    size_t i = 0;
    for (int bt = 0; bt < b->batch; bt++)
        for (int r = 0; r < b->rows; r++)
            for (int cc = 0; cc < b->cols; cc++) v[i++] = full[bo_index(b, bt, r, cc)];
    return v;
}

void bo_expect_scalar(bo_case *k, const char *what, double got, double want, double atol,
                      double rtol)
{
    if (k->skip) return;
    const double bound = atol + rtol * fabs(want);
    if (!(fabs(got - want) <= bound) && !(isnan(want) && isnan(got)))
        bo_fail(k, "%s: got %.12g want %.12g |diff| %.3g > tol %.3g", what, got, want,
                fabs(got - want), bound);
    else
        bo_note(k, "%s: got %.12g want %.12g |diff| %.3g, tol %.3g", what, got, want,
                fabs(got - want), bound);
}

void bo_expect_same_bytes(bo_case *k, const bo_buf *a, const bo_buf *b)
{
    if (k->skip) return;
    POA_ASSERT(a->rows == b->rows && a->cols == b->cols && a->esize == b->esize);
    for (int r = 0; r < a->rows; r++)
        for (int cc = 0; cc < a->cols; cc++) {
            const size_t ea = a->off + (size_t) r * a->ld + cc,
                         eb = b->off + (size_t) r * b->ld + cc;
            if (memcmp(a->got + ea * a->esize, b->got + eb * b->esize, a->esize) != 0) {
                bo_fail(k, "%s and %s differ in their bits at (%d, %d): %.9g vs %.9g", a->name,
                        b->name, r, cc, a->g ? a->g[ea] : 0.0, b->g ? b->g[eb] : 0.0);
                return;
            }
        }
    bo_note(k, "%s and %s: the same bits", a->name, b->name);
}

void bo_expect_unchanged(bo_case *k, const bo_buf *b)
{
    if (k->skip) return;
    size_t first = 0;
    const size_t bad = bytes_differ(b, b->init, b->got, 0, &first);
    if (!bad) return;
    char at[96];
    where(b, first, at, sizeof at);
    bo_fail(k, "%s changed (%zu elements, the first at %s) where it must not", b->name, bad, at);
}

double bo_max_abs(const double *x, int rows, int cols, int ld)
{
    double m = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) m = fmax(m, fabs(x[(size_t) r * ld + c]));
    return m;
}

/* ------------------------------------------------------------------------ gradients */
double bo_dot(const double *w, const double *y, int rows, int cols, int ld)
{
    double s = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) s += w[(size_t) r * ld + c] * y[(size_t) r * ld + c];
    return s;
}

void bo_fd(bo_case *k, const char *what, bo_objective L, void *ctx, double *param, int rows,
           int cols, int ld, const double *naive, const double *got, int ldg, int max_checks,
           double h, double tol_naive, double tol_got)
{
    const long total = (long) rows * cols;
    if (total == 0 || k->skip) return;
    const long step = total > max_checks ? (total + max_checks - 1) / max_checks : 1;
    const int n = (int) ((total + step - 1) / step);
    double *fd = poa_xmalloc(sizeof(double) * (size_t) n);
    size_t *at = poa_xmalloc(sizeof(size_t) * (size_t) n),
           *ag = poa_xmalloc(sizeof(size_t) * (size_t) n);
    for (int i = 0; i < n; i++) {
        const long e = (i * step + (i % 7)) % total; /* varied columns */
        at[i] = (size_t) (e / cols) * ld + (size_t) (e % cols);
        ag[i] = (size_t) (e / cols) * ldg + (size_t) (e % cols);
        const double keep = param[at[i]];
        param[at[i]] = keep + h;
        const double lp = L(ctx);
        param[at[i]] = keep - h;
        const double lm = L(ctx);
        param[at[i]] = keep;
        fd[i] = (lp - lm) / (2 * h);
    }
    double scale = 1e-3;
    for (int i = 0; i < n; i++) scale = fmax(scale, fabs(fd[i]));
    const double *grads[2] = {naive, got};
    const double tols[2] = {tol_naive, tol_got};
    const char *names[2] = {"naive backward", "backend backward"};
    for (int g = 0; g < 2; g++) {
        if (!grads[g]) continue;
        double worst = -1;
        int wi = 0;
        for (int i = 0; i < n; i++) {
            const double e = fabs(grads[g][ag[i]] - fd[i]) / scale;
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e, wi = i;
        }
        const size_t r = ag[wi] / (size_t) ldg, c = ag[wi] % (size_t) ldg;
        if (!(worst <= tols[g]))
            bo_fail(k,
                    "%s: %s vs finite differences at (%zu, %zu): %.9g vs %.9g (|diff| / "
                    "max|FD| %.3g = %.3g > %.3g; %d entries)",
                    what, names[g], r, c, grads[g][ag[wi]], fd[wi], scale, worst, tols[g], n);
        else
            bo_note(k,
                    "%s: %s vs finite differences: worst at (%zu, %zu) %.3g of max|FD| %.3g "
                    "(tol %.3g; %d entries)",
                    what, names[g], r, c, worst, scale, tols[g], n);
    }
    free(fd), free(at), free(ag);
}

/* ------------------------------------------------------------------------ timing */
void *bo_perf_alloc(bo_ctx *c, bo_kind kind, size_t n, double lo, double hi)
{
    poa_backend *be = c->be;
    const size_t es = kind_size(c, kind), chunk = (size_t) 1 << 20;
    void *dev = be->iface->alloc(be, (n ? n : 1) * es);
    float *f = poa_xmalloc(sizeof(float) * chunk);
    poa_rng r;
    poa_rng_init(&r, c->seed ^ n, 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < n; i += chunk) {
        const size_t m = n - i < chunk ? n - i : chunk;
        for (size_t j = 0; j < m; j++) f[j] = (float) poa_rng_uniform_range(&r, lo, hi);
        if (kind == BO_ACT)
            be->iface->act_upload(be, (poa_act *) ((char *) dev + i * es), f, m);
        else if (kind == BO_F32)
            be->iface->upload(be, (char *) dev + i * es, f, m * es);
        else
            be->iface->zero(be, (char *) dev + i * es, m * es);
    }
    free(f);
    return dev;
}

void bo_perf_free(bo_ctx *c, void *p)
{
    c->be->iface->free(c->be, p);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

double bo_time(bo_ctx *c, bo_fn fn, void *args)
{
    poa_backend *be = c->be;
    const poa_backend_iface *io = be->iface;
    poa_event *t0 = io->event_create(be), *t1 = io->event_create(be);
    const int reps = c->reps > 0 ? c->reps : 1;
    double *s = poa_xmalloc(sizeof(double) * (size_t) reps);
    fn(be, args); /* warm-up: plans, caches, first-touch */
    io->synchronize(be);
    for (int i = 0; i < reps; i++) {
        io->event_record(be, t0);
        fn(be, args);
        io->event_record(be, t1);
        io->event_synchronize(be, t1);
        s[i] = io->event_elapsed(be, t0, t1);
    }
    qsort(s, (size_t) reps, sizeof *s, cmp_double);
    const double med = reps % 2 ? s[reps / 2] : 0.5 * (s[reps / 2 - 1] + s[reps / 2]);
    free(s);
    io->event_destroy(be, t0);
    io->event_destroy(be, t1);
    return med;
}

void bo_perf_line(bo_ctx *c, const char *shape, double seconds, double bytes, double flops)
{
    char rate[64] = "";
    if (flops > 0)
        snprintf(rate, sizeof rate, "%8.3f TFLOP/s", seconds > 0 ? flops / seconds * 1e-12 : 0);
    else if (bytes > 0)
        snprintf(rate, sizeof rate, "%8.1f GB/s", seconds > 0 ? bytes / seconds * 1e-9 : 0);
    printf("perf %s/%s %-24s %-52s %11.1f us %s\n", c->be->name, bo_dtype(c), c->op, shape,
           seconds * 1e6, rate);
    fflush(stdout);
    c->perf_total_s += seconds;
    c->perf_lines++;
}
