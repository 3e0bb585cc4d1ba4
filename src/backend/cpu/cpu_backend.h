/* cpu_backend.h — the fp32 CPU reference backend (BLAS GEMMs, OpenMP loops). */
#ifndef POA_BACKEND_CPU_H
#define POA_BACKEND_CPU_H

#include "backend/backend.h"

poa_backend *poa_cpu_backend_create(void);

/* Shared between the CPU backend's files. */
extern const poa_nn_ops poa_cpu_nn_ops;
extern const poa_train_ops poa_cpu_train_ops;
void *poa_cpu_alloc(poa_backend *be, size_t bytes);
void poa_cpu_free(poa_backend *be, void *p);
void poa_cpu_copy(poa_backend *be, void *dst, const void *src, size_t bytes);
void poa_cpu_zero(poa_backend *be, void *dst, size_t bytes);
void poa_cpu_sync(poa_backend *be);
void poa_cpu_backend_destroy(poa_backend *be);

/* When poa is linked against OpenBLAS and OpenBLAS runs its generic Prescott (SSE3) kernels on a
 * CPU whose flags (/proc/cpuinfo) show AVX-512 or AVX2 — what OpenBLAS does when a hypervisor
 * hides the CPU model — a one-line warning naming the OPENBLAS_CORETYPE to set; NULL otherwise
 * (another BLAS, another kernel set, no AVX2, no /proc/cpuinfo).  The string is static. */
const char *poa_cpu_blas_core_warning(void);

/* One line naming the kernels the CPU ops use now, e.g. "gemm avx512, attention avx512, gelu
 * avx512, blas SkylakeX" (POA_CPU_GEMM=blas / POA_CPU_ATTN=blas switch the first two to OpenBLAS,
 * POA_CPU_GELU=libm the third to libmvec's erff), written into buf (n bytes). */
void poa_cpu_describe_kernels(char *buf, size_t n);

#endif
