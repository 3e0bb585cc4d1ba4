/* cpu_backend.c — the CPU backend's device interface (memory, copies, events: host memory and
 * synchronous ops, so transfers complete at once and events are timestamps), its creation and
 * the description of its kernels.  The op tables live in cpu_nn.c (layers) and cpu_train.c
 * (losses, optimizer, reductions). */
#include "poa_config.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_nn.h"
#include "common/poa_error.h"
#include "common/timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sysinfo.h>

#ifdef POA_HAVE_OPENBLAS
/* Weak, as in bench/bench_step.c: NULL when the OpenBLAS linked has no such symbol. */
extern char *openblas_get_corename(void) __attribute__((weak));
#endif

/* ------------------------------------------------------------------ memory */

static void *cpu_alloc(poa_backend *be, size_t bytes)
{
    (void) be;
    void *p = NULL;
    size_t rounded = (bytes + 255) / 256 * 256;
    POA_CHECK(posix_memalign(&p, 256, rounded ? rounded : 256) == 0,
              "out of host memory allocating %zu bytes", bytes);
    return p;
}

static void cpu_free(poa_backend *be, void *p)
{
    (void) be;
    free(p);
}

static void cpu_copy(poa_backend *be, void *dst, const void *src, size_t bytes)
{
    (void) be;
    if (bytes) memmove(dst, src, bytes);
}

static void cpu_zero(poa_backend *be, void *dst, size_t bytes)
{
    (void) be;
    if (bytes) memset(dst, 0, bytes);
}

/* Activations are fp32 on the CPU: plain copies. */
static void cpu_act_upload(poa_backend *be, poa_act *dst, const float *host_src, size_t n)
{
    cpu_copy(be, dst, host_src, n * sizeof(float));
}

static void cpu_act_download(poa_backend *be, float *host_dst, const poa_act *src, size_t n)
{
    cpu_copy(be, host_dst, src, n * sizeof(float));
}

/* ------------------------------------------------------------------ events */

/* Ops run before they return, so an event is complete when recorded: its timestamp measures the
 * work done before it. */
struct poa_event {
    double t;
};

static poa_event *cpu_event_create(poa_backend *be)
{
    (void) be;
    poa_event *ev = poa_xcalloc(1, sizeof *ev);
    ev->t = poa_now();
    return ev;
}

static void cpu_event_destroy(poa_backend *be, poa_event *ev)
{
    (void) be;
    free(ev);
}

static void cpu_event_record(poa_backend *be, poa_event *ev)
{
    (void) be;
    ev->t = poa_now();
}

static void cpu_event_wait(poa_backend *be, poa_event *ev)
{
    (void) be, (void) ev;
}

static double cpu_event_elapsed(poa_backend *be, poa_event *start, poa_event *end)
{
    (void) be;
    return end->t - start->t;
}

static void cpu_synchronize(poa_backend *be)
{
    (void) be;
}

static void *cpu_native_stream(poa_backend *be)
{
    (void) be;
    return NULL;
}

/* The transfer "stream" copies at once; `done` is then complete. */
static void cpu_upload_async(poa_backend *be, void *dst, const void *host_src, size_t bytes,
                             poa_event *done)
{
    cpu_copy(be, dst, host_src, bytes);
    if (done) cpu_event_record(be, done);
}

/* ------------------------------------------------------------------ the device */

static int cpu_is_host(const poa_backend *be)
{
    (void) be;
    return 1;
}

/* Available and total host memory: MemAvailable of /proc/meminfo (what the kernel can hand out
 * without swapping), else sysinfo's free RAM. */
static void cpu_mem_info(poa_backend *be, size_t *free_bytes, size_t *total_bytes)
{
    (void) be;
    struct sysinfo si;
    size_t total = 0, avail = 0;
    if (sysinfo(&si) == 0) {
        total = (size_t) si.totalram * si.mem_unit;
        avail = (size_t) si.freeram * si.mem_unit;
    }
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kib;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) avail = (size_t) kib * 1024;
        fclose(f);
    }
    if (free_bytes) *free_bytes = avail;
    if (total_bytes) *total_bytes = total;
}

static void cpu_describe(poa_backend *be, char *buf, size_t n)
{
    (void) be;
    char kernels[160];
    poa_cpu_describe_kernels(kernels, sizeof kernels);
    const char *warning = poa_cpu_blas_core_warning();
    const int threads = poa_cpu_get_threads();
    snprintf(buf, n, "cpu: %d thread%s, compute fp32, kernels %s%s%s", threads,
             threads == 1 ? "" : "s", kernels, warning ? "\nwarning: " : "",
             warning ? warning : "");
}

static void cpu_destroy(poa_backend *be)
{
    free(be);
}

const poa_backend_iface poa_cpu_iface = {
    .describe = cpu_describe,
    .is_host = cpu_is_host,
    .mem_info = cpu_mem_info,
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .host_alloc = cpu_alloc,
    .host_free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .act_upload = cpu_act_upload,
    .act_download = cpu_act_download,
    .upload_async = cpu_upload_async,
    .download_async = cpu_upload_async,
    .event_create = cpu_event_create,
    .event_destroy = cpu_event_destroy,
    .event_record = cpu_event_record,
    .stream_wait = cpu_event_wait,
    .event_synchronize = cpu_event_wait,
    .event_elapsed = cpu_event_elapsed,
    .synchronize = cpu_synchronize,
    .native_stream = cpu_native_stream,
};

void poa_cpu_backend_tables(const poa_backend_iface **iface, const poa_nn_ops **nn,
                            const poa_train_ops **train)
{
    *iface = &poa_cpu_iface;
    *nn = &poa_cpu_nn_ops;
    *train = &poa_cpu_train_ops;
}

poa_backend *poa_cpu_backend_create(const poa_backend_opts *opts, char *errbuf, size_t errlen)
{
    if (opts && opts->act_dtype != POA_DT_F32) {
        snprintf(errbuf, errlen,
                 "compute_precision.compute_dtype = %s: the CPU backend computes in fp32 only "
                 "(use fp32 or auto)",
                 poa_dtype_name(opts->act_dtype));
        return NULL;
    }
    poa_backend *be = poa_xcalloc(1, sizeof *be);
    be->name = "cpu";
    be->act_dtype = POA_DT_F32;
    be->act_size = sizeof(float);
    poa_cpu_backend_tables(&be->iface, &be->nn, &be->train);
    return be;
}

#ifdef POA_HAVE_OPENBLAS
/* 1 when the first "flags" line of /proc/cpuinfo holds the word `flag` (only the OpenBLAS core
 * warning asks). */
static int cpu_has_flag(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[8192];
    int found = 0;
    const size_t n = strlen(flag);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) != 0) continue;
        for (char *p = strstr(line, flag); p; p = strstr(p + 1, flag))
            if ((p[-1] == ' ' || p[-1] == '\t') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0')) {
                found = 1;
                break;
            }
        break;
    }
    fclose(f);
    return found;
}
#endif

const char *poa_cpu_blas_core_warning(void)
{
#ifdef POA_HAVE_OPENBLAS
    if (!openblas_get_corename) return NULL;
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "prescott") != 0) return NULL;
    if (cpu_has_flag("avx512f"))
        return "OpenBLAS uses its Prescott (SSE3) kernels on a CPU with AVX-512; set "
               "OPENBLAS_CORETYPE=SkylakeX (poa's own AVX-512 GEMM runs the layers, but narrower "
               "GEMMs and POA_CPU_GEMM=blas go to OpenBLAS, 3-5x slower in these kernels)";
    if (cpu_has_flag("avx2"))
        return "OpenBLAS uses its Prescott (SSE3) kernels on a CPU with AVX2; set "
               "OPENBLAS_CORETYPE=Haswell for 3-5x faster GEMMs";
#endif
    return NULL;
}

void poa_cpu_describe_kernels(char *buf, size_t n)
{
    const char *core = NULL;
#ifdef POA_HAVE_OPENBLAS
    if (openblas_get_corename) core = openblas_get_corename();
#endif
    snprintf(buf, n, "gemm %s, attention %s, gelu %s, blas %s", poa_cpu_gemm_impl(),
             poa_cpu_attention_impl(), poa_cpu_gelu_impl(), core ? core : "(not OpenBLAS)");
}
