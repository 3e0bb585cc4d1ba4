/* poa_error.c — see poa_error.h. */
#include "common/poa_error.h"
#include "common/log.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const status_names[POA_STATUS_COUNT] = {
    [POA_OK] = "ok",
    [POA_ERR_ARG] = "invalid argument",
    [POA_ERR_CONFIG] = "configuration error",
    [POA_ERR_IO] = "I/O error",
    [POA_ERR_NOTFOUND] = "not found",
    [POA_ERR_FORMAT] = "malformed or truncated data",
    [POA_ERR_VERSION] = "format version mismatch",
    [POA_ERR_DECODE] = "decode error",
    [POA_ERR_NOMEM] = "out of memory",
    [POA_ERR_NONFINITE] = "non-finite value",
    [POA_ERR_INTERRUPT] = "interrupted by a signal",
    [POA_ERR_INTERNAL] = "internal error",
    [POA_ERR_CORRUPT] = "corrupt data (checksum mismatch)",
};

const char *poa_status_name(poa_status s)
{
    if ((int) s < 0 || s >= POA_STATUS_COUNT) return "unknown status";
    return status_names[s];
}

int poa_status_exit_code(poa_status s)
{
    switch (s) {
    case POA_OK:
        return POA_EXIT_OK;
    case POA_ERR_ARG:
    case POA_ERR_CONFIG:
        return POA_EXIT_USAGE;
    case POA_ERR_NOTFOUND:
    case POA_ERR_FORMAT:
    case POA_ERR_VERSION:
    case POA_ERR_DECODE:
    case POA_ERR_CORRUPT:
        return POA_EXIT_DATA;
    case POA_ERR_IO:
        return POA_EXIT_IO;
    case POA_ERR_NONFINITE:
        return POA_EXIT_NONFINITE;
    case POA_ERR_INTERRUPT:
        return POA_EXIT_REQUEUE;
    default:
        return POA_EXIT_FAILURE;
    }
}

poa_status poa_err_set(poa_err *err, poa_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

poa_status poa_err_prefix(poa_err *err, const char *fmt, ...)
{
    if (!err) return POA_ERR_INTERNAL;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Compose in a buffer large enough for both, then truncate into the record. */
    char joined[sizeof prefix + sizeof old + 2];
    int n = snprintf(joined, sizeof joined, "%s: %s", prefix, old);
    size_t len = n < 0 ? 0 : (size_t) n;
    if (len >= sizeof err->msg) len = sizeof err->msg - 1;
    memcpy(err->msg, joined, len);
    err->msg[len] = '\0';
    return err->code;
}

void poa_err_clear(poa_err *err)
{
    if (err) {
        err->code = POA_OK;
        err->msg[0] = '\0';
    }
}

static struct {
    poa_abort_hook fn;
    void *ctx;
} abort_hooks[8];
static int n_abort_hooks;

void poa_register_abort_hook(poa_abort_hook fn, void *ctx)
{
    POA_CHECK(n_abort_hooks < 8, "too many abort hooks");
    abort_hooks[n_abort_hooks].fn = fn;
    abort_hooks[n_abort_hooks].ctx = ctx;
    n_abort_hooks++;
}

/* Run hooks once, then leave through MPI_Abort if MPI is up (a bare exit would hang the
 * other ranks), else exit(). */
static _Noreturn void terminate_process(int exit_code)
{
    static int in_progress;
    if (!in_progress) {
        in_progress = 1;
        for (int i = n_abort_hooks - 1; i >= 0; i--) abort_hooks[i].fn(abort_hooks[i].ctx);
    }
    fflush(stdout);
    fflush(stderr);
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    int size = 1;
    if (up && !down) MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (up && !down && size > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
    if (up && !down) MPI_Finalize();
    exit(exit_code);
}

static void print_prefix(FILE *f)
{
    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    fprintf(f, "[rank %d/%d %s] ", poa_log_rank(), poa_log_world_size(), host);
}

void poa_fatal_at(const char *file, int line, const char *func, const char *expr, const char *fmt,
                  ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_prefix(stderr);
    if (expr)
        fprintf(stderr, "%s:%d %s: %s -> %s\n", file, line, func, expr, msg);
    else
        fprintf(stderr, "%s:%d %s: %s\n", file, line, func, msg);
    terminate_process(POA_EXIT_FATAL);
}

void poa_die(int exit_code, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_prefix(stderr);
    fprintf(stderr, "error: %s\n", msg);
    terminate_process(exit_code);
}

void *poa_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    POA_CHECK(p != NULL, "out of host memory allocating %zu bytes", n);
    return p;
}

void *poa_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    POA_CHECK(p != NULL, "out of host memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *poa_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    POA_CHECK(q != NULL, "out of host memory reallocating to %zu bytes", n);
    return q;
}

char *poa_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = poa_xmalloc(n);
    memcpy(d, s, n);
    return d;
}
