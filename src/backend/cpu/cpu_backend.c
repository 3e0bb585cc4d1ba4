/* cpu_backend.c — memory ops of the CPU backend and its creation.  The op tables live in
 * cpu_nn.c (layers) and cpu_train.c (losses, optimizer, reductions). */
#include "backend/cpu/cpu_backend.h"
#include "common/poa_error.h"

#include <stdlib.h>
#include <string.h>

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
