/* ops_test_util.h — helpers shared by the CPU op tests (tests/ops/test_ops_*.c): random buffers
 * from the test RNG stream, float ↔ double copies, comparisons that print the worst element, and
 * central finite differences of a scalar objective evaluated in double.
 * Include after <cmocka.h>. */
#ifndef POA_TESTS_OPS_TEST_UTIL_H
#define POA_TESTS_OPS_TEST_UTIL_H

#include "backend/backend.h"
#include "tests/lib/cpu_naive.h"
#include "common/poa_error.h"
#include "common/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* uniform values in [lo, hi) from the test stream `seed` */
static inline float *rand_floats(size_t n, float lo, float hi, uint64_t seed)
{
    float *x = poa_xmalloc(sizeof(float) * (n ? n : 1));
    poa_rng r;
    poa_rng_init(&r, seed, 0, POA_RNG_TEST, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float) poa_rng_uniform_range(&r, lo, hi);
    return x;
}

static inline double *to_double(const float *x, size_t n)
{
    double *d = poa_xmalloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static inline float *copy_floats(const float *x, size_t n)
{
    float *c = poa_xmalloc(sizeof(float) * (n ? n : 1));
    memcpy(c, x, sizeof(float) * n);
    return c;
}

/* Compare `got` (float) with `want` (double) over a rows × cols view with leading dimension ld;
 * element passes when |got − want| ≤ atol + rtol |want|.  Prints the worst element on failure.
 * Returns 1 if all pass. */
static inline int close_view(const char *what, const float *got, const double *want, int rows,
                             int cols, int ld, double atol, double rtol)
{
    double worst = -INFINITY, wgot = 0, wwant = 0;
    int wr = -1, wc = -1, bad = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const double g = got[(size_t) r * ld + c], w = want[(size_t) r * ld + c];
            double excess = fabs(g - w) - (atol + rtol * fabs(w));
            if (isnan(excess)) excess = INFINITY;
            if (excess > 0) bad++;
            if (excess > worst) worst = excess, wr = r, wc = c, wgot = g, wwant = w;
        }
    if (bad)
        fprintf(stderr,
                "%s: %d of %d elements differ; worst at (%d, %d): got %.9g want %.9g "
                "(|diff| %.3g, atol %.3g rtol %.3g)\n",
                what, bad, rows * cols, wr, wc, wgot, wwant, fabs(wgot - wwant), atol, rtol);
    return bad == 0;
}

/* Whole-buffer variant (n contiguous values). */
static inline int close_all(const char *what, const float *got, const double *want, size_t n,
                            double atol, double rtol)
{
    return close_view(what, got, want, 1, (int) n, (int) n, atol, rtol);
}

static inline double max_abs_d(const double *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* Objective L(ctx) = Σ w ⊙ y evaluated by a naive (double) forward on the current inputs. */
typedef double (*objective_fn)(void *ctx);

/* Central finite differences of L with respect to the (r, c) entries of the rows × cols view
 * `param` (leading dimension ld, double, perturbed in place and restored), at most
 * `max_checks` entries spread over the view.  The gradients hold entry (r, c) at r·ldg + c:
 *   - `g_naive` (double; may be NULL) must match within fd_tol · scale;
 *   - `g_fast` (float; may be NULL) minus `g_fast0` (its value before a += op, or NULL for =)
 *     must match within fast_tol · scale,
 * scale = max(|FD|) over the checked entries (at least 1e-3).  Prints the worst entry.
 * Returns 1 if all pass. */
static inline int fd_check(const char *what, objective_fn L, void *ctx, double *param, int rows,
                           int cols, int ld, const double *g_naive, const float *g_fast,
                           const float *g_fast0, int ldg, int max_checks, double h, double fd_tol,
                           double fast_tol)
{
    const long total = (long) rows * cols;
    const long step = total > max_checks ? (total + max_checks - 1) / max_checks : 1;
    const int n = (int) ((total + step - 1) / step);
    double *fd = poa_xmalloc(sizeof(double) * (size_t) n);
    size_t *at = poa_xmalloc(sizeof(size_t) * (size_t) n),
           *ag = poa_xmalloc(sizeof(size_t) * (size_t) n);
    for (int i = 0; i < n; i++) {
        /* a stride co-prime-ish with cols visits varied columns */
        const long e = (i * step + (i % 7)) % total;
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
    const double scale = fmax(max_abs_d(fd, (size_t) n), 1e-3);
    int ok = 1;
    double worst_n = 0, worst_f = 0;
    int in = -1, jf = -1;
    for (int i = 0; i < n; i++) {
        if (g_naive) {
            const double e = fabs(g_naive[ag[i]] - fd[i]) / scale;
            if (!(e <= worst_n)) worst_n = isnan(e) ? INFINITY : e, in = i;
        }
        if (g_fast) {
            const double got = (double) g_fast[ag[i]] - (g_fast0 ? g_fast0[ag[i]] : 0.0);
            const double e = fabs(got - fd[i]) / scale;
            if (!(e <= worst_f)) worst_f = isnan(e) ? INFINITY : e, jf = i;
        }
    }
    if (g_naive && !(worst_n <= fd_tol)) {
        fprintf(stderr,
                "%s: naive backward vs finite differences: entry %zu: %.9g vs FD %.9g "
                "(rel. to max|FD| %.3g: %.3g > %.3g)\n",
                what, ag[in], g_naive[ag[in]], fd[in], scale, worst_n, fd_tol);
        ok = 0;
    }
    if (g_fast && !(worst_f <= fast_tol)) {
        const double got = (double) g_fast[ag[jf]] - (g_fast0 ? g_fast0[ag[jf]] : 0.0);
        fprintf(stderr,
                "%s: CPU backward vs finite differences: entry %zu: %.9g vs FD %.9g "
                "(rel. to max|FD| %.3g: %.3g > %.3g)\n",
                what, ag[jf], got, fd[jf], scale, worst_f, fast_tol);
        ok = 0;
    }
    free(fd);
    free(at);
    free(ag);
    return ok;
}

/* Σ w ⊙ y over a rows × cols view with leading dimension ld */
static inline double weighted_sum(const double *w, const double *y, int rows, int cols, int ld)
{
    double s = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) s += w[(size_t) r * ld + c] * y[(size_t) r * ld + c];
    return s;
}

/* The CPU backend computes in fp32 (backend.h, "Precision"): a float buffer is an activation
 * buffer, and the tests pass their float arrays to the activation ops through these casts. */
#define ACT(p) _Generic((p), const float * : (const poa_act *) (p), default : (poa_act *) (p))

static inline poa_backend *cpu_backend(void)
{
    char err[256];
    poa_backend *be = poa_backend_create("cpu", NULL, err, sizeof err);
    if (!be) fprintf(stderr, "%s\n", err);
    return be;
}

#endif
