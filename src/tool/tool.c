/* tool.c — see tool.h. */
#include "tool/tool.h"
#include "common/atomic_io.h"
#include "common/h5check.h"
#include "common/log.h"

#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int poa_tool_main(int *argc, char ***argv, const char *program, int verbose, int (*run)(void *ctx),
                  void *ctx)
{
    MPI_Init(argc, argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    poa_log_init(rank, size, verbose);
    int rc = run(ctx);
    poa_tool_check_hdf5_closed(program);
    MPI_Finalize();
    return rc;
}

int poa_tool_agree(int code)
{
    int worst = code;
    MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

int poa_tool_read_exit_code(poa_status st)
{
    return st == POA_ERR_ARG || st == POA_ERR_CONFIG ? POA_EXIT_USAGE : POA_EXIT_DATA;
}

/* This rank opens path; its exit code (0: opened). */
static int open_here(const char *program, const char *path, poa_weights_from from,
                     poa_model_source *src)
{
    poa_err err = {0};
    poa_status st = poa_model_source_open(path, from, src, &err);
    if (!st) return 0;
    poa_error("%s: %s", program, err.msg);
    return poa_tool_read_exit_code(st);
}

int poa_tool_open_source(const char *program, const char *arg, poa_weights_from from,
                         poa_model_source *src)
{
    char path[POA_IO_PATH_MAX] = "";
    int code = 0;
    if (poa_log_rank() == 0) {
        code = open_here(program, arg, from, src);
        snprintf(path, sizeof path, "%s", src->path);
    }
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (code) return code;
    MPI_Bcast(path, (int) sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (poa_log_rank() != 0) code = open_here(program, path, from, src);
    return poa_tool_agree(code);
}

void poa_tool_share(int64_t n, int r, int p, int64_t *lo, int64_t *hi)
{
    *lo = n * r / p, *hi = n * (r + 1) / p;
}

int poa_tool_local_rank(void)
{
    int dev = 0;
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &dev);
    MPI_Comm_free(&local);
    return dev;
}

int poa_tool_make_output_dir(const char *program, const char *dir)
{
    int code = 0;
    if (poa_log_rank() == 0) {
        poa_err err;
        if (poa_io_make_dirs(dir, &err) != POA_OK) {
            poa_error("%s: cannot create the output directory: %s", program, err.msg);
            code = POA_EXIT_IO;
        }
    }
    return poa_tool_agree(code);
}

int poa_tool_positive(const char *s, const char *end)
{
    if (end - s < 1 || end - s > 6) return 0;
    int v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9') return 0;
        v = 10 * v + (*s - '0');
    }
    return v;
}

int poa_tool_each_item(const poa_cli_spec *spec, const char *opt, const char *arg,
                       int (*fn)(void *ctx, const char *opt, const char *item), void *ctx)
{
    char *copy = poa_xstrdup(arg), *save = NULL;
    int rc = 0, any = 0;
    for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save))
        any = 1, rc = fn(ctx, opt, t);
    if (!any) rc = poa_cli_usage_error(spec, "--%s '%s' names nothing", opt, arg);
    free(copy);
    return rc;
}

int poa_tool_parse_request(const poa_cli_spec *spec, const char *opt, const char *item,
                           poa_tool_request *r)
{
    *r = (poa_tool_request){0, 0, NULL};
    if (strcmp(opt, "arch") == 0) {
        if (!poa_arch_preset_find(item))
            return poa_cli_usage_error(spec, "--arch '%s': not an architecture name (names: %s)",
                                       item, poa_arch_preset_names());
        r->name = poa_xstrdup(item);
        return 0;
    }
    const char *x = strpbrk(item, "xX"), *end = item + strlen(item);
    r->width = x ? poa_tool_positive(item, x) : 0;
    r->depth = x ? poa_tool_positive(x + 1, end) : 0;
    if (r->width < 1 || r->depth < 1)
        return poa_cli_usage_error(spec,
                                   "--subnet '%s': expected WIDTHxDEPTH with positive integers, "
                                   "e.g. 384x12",
                                   item);
    return 0;
}

int poa_tool_add_request(const poa_cli_spec *spec, const char *opt, const char *item,
                         poa_tool_request *req, int *n, int cap)
{
    if (*n == cap) return poa_cli_usage_error(spec, "more than %d sub-networks requested", cap);
    int rc = poa_tool_parse_request(spec, opt, item, &req[*n]);
    if (!rc) (*n)++;
    return rc;
}

poa_status poa_tool_resolve_request(const poa_model_source *src, const poa_tool_request *r,
                                    poa_subnet *sn, poa_err *err)
{
    poa_status st = r->name ? poa_model_source_named(src, r->name, sn, err)
                            : poa_model_source_subnet(src, r->width, r->depth, sn, err);
    if (st && err) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        poa_err_set(err, st, "%s %s (%s)", r->name ? "--arch" : "--subnet", why, src->path);
    }
    return st;
}

void poa_tool_json_string(FILE *f, const char *text)
{
    fputc('"', f);
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', f);
        if ((unsigned char) *p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int poa_tool_write_file(const char *program, const char *dir, const char *name,
                        void (*writer)(FILE *f, const void *ctx), const void *ctx, char *path)
{
    poa_err err = {0};
    snprintf(path, POA_IO_PATH_MAX, "%s/%s", dir, name);
    poa_io_atomic at;
    poa_status st = poa_io_atomic_begin(&at, path, "", &err);
    FILE *f = st ? NULL : fopen(at.tmp, "w");
    if (!st && !f) st = poa_err_set(&err, POA_ERR_IO, "%s: %s", at.tmp, strerror(errno));
    if (f) {
        writer(f, ctx);
        errno = 0;
        int bad = ferror(f);
        if ((fclose(f) != 0 || bad) && !st)
            st = poa_err_set(&err, POA_ERR_IO, "%s: %s", at.tmp, strerror(errno ? errno : EIO));
    }
    if (poa_io_atomic_end(&at, st, &err)) {
        poa_error("%s: %s", program, err.msg);
        return POA_EXIT_IO;
    }
    return 0;
}

long poa_tool_check_hdf5_closed(const char *program)
{
    char what[256];
    long n = poa_hdf5_open_objects(what, sizeof what);
    if (n > 0) poa_warn("%s: %ld HDF5 objects left open at exit: %s", program, n, what);
    return n;
}
