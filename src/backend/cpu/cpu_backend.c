/* cpu_backend.c — memory ops of the CPU backend and its creation.  The op tables live in
 * cpu_nn.c (layers) and cpu_train.c (losses, optimizer, reductions). */
#include "poa_config.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_nn.h"
#include "common/poa_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef POA_HAVE_OPENBLAS
/* Weak, as in bench/bench_step.c: NULL when the OpenBLAS linked has no such symbol. */
extern char *openblas_get_corename(void) __attribute__((weak));
#endif

void *poa_cpu_alloc(poa_backend *be, size_t bytes)
{
    (void) be;
    void *p = NULL;
    size_t rounded = (bytes + 255) / 256 * 256;
    POA_CHECK(posix_memalign(&p, 256, rounded ? rounded : 256) == 0,
              "out of host memory allocating %zu bytes", bytes);
    return p;
}

void poa_cpu_free(poa_backend *be, void *p)
{
    (void) be;
    free(p);
}

void poa_cpu_copy(poa_backend *be, void *dst, const void *src, size_t bytes)
{
    (void) be;
    if (bytes) memmove(dst, src, bytes);
}

void poa_cpu_zero(poa_backend *be, void *dst, size_t bytes)
{
    (void) be;
    if (bytes) memset(dst, 0, bytes);
}

void poa_cpu_sync(poa_backend *be)
{
    (void) be;
}

poa_backend *poa_cpu_backend_create(void)
{
    poa_backend *be = poa_xcalloc(1, sizeof *be);
    be->name = "cpu";
    be->nn = &poa_cpu_nn_ops;
    be->train = &poa_cpu_train_ops;
    return be;
}

void poa_cpu_backend_destroy(poa_backend *be)
{
    free(be);
}

/* 1 when the first "flags" line of /proc/cpuinfo holds the word `flag`. */
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
