/* poa_error.h — fatal errors, always-on asserts and recoverable status codes.
 *
 * Two kinds of failure (docs/architecture.md §11):
 *  - library failures in backends/comm and broken invariants are fatal: POA_CHECK / POA_ASSERT
 *    print "[rank r/N host] file:line func: expr -> message", run the abort hooks (NCCL
 *    communicators), then MPI_Abort when MPI is up;
 *  - io, data, config and checkpoint functions return a poa_status and fill a poa_err with a
 *    message, so tests can drive their failure paths; only train/ and main() make them fatal.
 */
#ifndef POA_COMMON_ERROR_H
#define POA_COMMON_ERROR_H

#include <stdarg.h>
#include <stddef.h>

/* C++ (the CUDA backend's .cu files) sees the same declarations with C linkage. */
#ifdef __cplusplus
#define POA_NORETURN [[noreturn]]
extern "C" {
#else
#define POA_NORETURN _Noreturn
#endif

/* Process exit codes of every poa program (documented in README.md, "Exit codes"). */
enum poa_exit_code {
    POA_EXIT_OK = 0,
    POA_EXIT_FAILURE = 1,   /* generic runtime failure                                  */
    POA_EXIT_USAGE = 2,     /* bad command line or configuration                        */
    POA_EXIT_DATA = 3,      /* missing/corrupt input data, wrong file format or version */
    POA_EXIT_IO = 4,        /* cannot write output                                      */
    POA_EXIT_NONFINITE = 5, /* training stopped on a NaN/Inf loss or gradient           */
    POA_EXIT_FATAL = 70,    /* internal error / failed invariant (EX_SOFTWARE)          */
    POA_EXIT_REQUEUE = 75,  /* stopped by a signal after a checkpoint (EX_TEMPFAIL)     */
};

typedef enum poa_status {
    POA_OK = 0,
    POA_ERR_ARG,       /* invalid argument / usage                      */
    POA_ERR_CONFIG,    /* configuration key, type, range or syntax       */
    POA_ERR_IO,        /* open/read/write/rename failed                  */
    POA_ERR_NOTFOUND,  /* file, key or dataset missing                   */
    POA_ERR_FORMAT,    /* malformed or truncated content                 */
    POA_ERR_VERSION,   /* format name/version mismatch                   */
    POA_ERR_DECODE,    /* image could not be decoded                     */
    POA_ERR_NOMEM,     /* allocation failed                              */
    POA_ERR_NONFINITE, /* NaN or Inf detected                            */
    POA_ERR_INTERRUPT, /* stopped by a signal                            */
    POA_ERR_INTERNAL,  /* should not happen                              */
    POA_ERR_CORRUPT,   /* stored data fails its checksum (a shard gone bad after packing) */
    POA_STATUS_COUNT
} poa_status;

/* Error record filled by functions that return a poa_status.  A NULL poa_err is allowed. */
typedef struct poa_err {
    poa_status code;
    char msg[1024];
} poa_err;

const char *poa_status_name(poa_status s);
/* Map a status to the program exit code that a main() should use. */
int poa_status_exit_code(poa_status s);

/* Record code + printf-style message in err (if non-NULL); returns code so callers can write
 * `return poa_err_set(err, POA_ERR_IO, "%s: %s", path, strerror(errno));`. */
poa_status poa_err_set(poa_err *err, poa_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing message with more context ("while reading X: <old message>"). */
poa_status poa_err_prefix(poa_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void poa_err_clear(poa_err *err);

/* Fatal path.  Never returns. */
POA_NORETURN void poa_fatal_at(const char *file, int line, const char *func, const char *expr,
                               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Hooks run by the fatal path before MPI_Abort (e.g. ncclCommAbort).  At most 8. */
typedef void (*poa_abort_hook)(void *ctx);
void poa_register_abort_hook(poa_abort_hook fn, void *ctx);

/* Print "message" the same way as the fatal path, run hooks, exit/MPI_Abort with code. */
POA_NORETURN void poa_die(int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define POA_FATAL(...) poa_fatal_at(__FILE__, __LINE__, __func__, NULL, __VA_ARGS__)
/* Always-on check of a library call or invariant; never put side effects you rely on being
 * skipped: the expression is always evaluated exactly once. */
#define POA_CHECK(expr, ...)                                                                       \
    do {                                                                                           \
        if (!(expr)) poa_fatal_at(__FILE__, __LINE__, __func__, #expr, __VA_ARGS__);               \
    } while (0)
#define POA_ASSERT(expr)                                                                           \
    do {                                                                                           \
        if (!(expr)) poa_fatal_at(__FILE__, __LINE__, __func__, #expr, "assertion failed");        \
    } while (0)

/* Allocation helpers that are fatal on failure (host memory only). */
void *poa_xmalloc(size_t n);
void *poa_xcalloc(size_t count, size_t size);
void *poa_xrealloc(void *p, size_t n);
char *poa_xstrdup(const char *s);

#ifdef __cplusplus
}
#endif
#endif
