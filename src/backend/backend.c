/* backend.c — backend factory. */
#include "poa_config.h"
#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#ifdef POA_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

#include <stdio.h>
#include <string.h>

poa_backend *poa_backend_create(const char *name, char *errbuf, size_t errlen)
{
    if (strcmp(name, "cpu") == 0) return poa_cpu_backend_create();
    if (strcmp(name, "cuda") == 0) {
#ifdef POA_HAVE_CUDA
        return poa_cuda_backend_create(errbuf, errlen);
#else
        snprintf(errbuf, errlen, "backend 'cuda' is not built (reconfigure with --with-cuda)");
        return NULL;
#endif
    }
    snprintf(errbuf, errlen, "unknown backend '%s' (valid: cpu, cuda)", name);
    return NULL;
}

void poa_backend_destroy(poa_backend *be)
{
    if (!be) return;
#ifdef POA_HAVE_CUDA
    if (strcmp(be->name, "cuda") == 0) {
        poa_cuda_backend_destroy(be);
        return;
    }
#endif
    poa_cpu_backend_destroy(be);
}
