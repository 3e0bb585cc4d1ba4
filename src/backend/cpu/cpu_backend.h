/* cpu_backend.h — the fp32 CPU reference backend (BLAS GEMMs, OpenMP loops). */
#ifndef POA_BACKEND_CPU_H
#define POA_BACKEND_CPU_H

#include "backend/backend.h"

poa_backend *poa_cpu_backend_create(void);
void poa_cpu_backend_destroy(poa_backend *be);

#endif
