/* cpu_backend.h — the fp32 CPU reference backend (BLAS GEMMs, OpenMP loops): its creation, its
 * tables and the descriptions of the kernels it runs.  Seen by the backend factory, the CPU
 * backend's own files, tests and benchmarks; model/ and train/ see backend.h alone. */
#ifndef POA_BACKEND_CPU_H
#define POA_BACKEND_CPU_H

#include "backend/backend.h"

/* The CPU backend computes in fp32 only: opts->act_dtype must be POA_DT_F32 (NULL with a
 * message naming compute_precision.compute_dtype otherwise). */
poa_backend *poa_cpu_backend_create(const poa_backend_opts *opts, char *errbuf, size_t errlen);
/* The three tables, without creating a backend. */
void poa_cpu_backend_tables(const poa_backend_iface **iface, const poa_nn_ops **nn,
                            const poa_train_ops **train);

/* Shared between the CPU backend's files. */
extern const poa_backend_iface poa_cpu_iface;
extern const poa_nn_ops poa_cpu_nn_ops;
extern const poa_train_ops poa_cpu_train_ops;

/* When poa is linked against OpenBLAS and OpenBLAS runs its generic Prescott (SSE3) kernels on a
 * CPU whose flags (/proc/cpuinfo) show AVX-512 or AVX2 — what OpenBLAS does when a hypervisor
 * hides the CPU model — a one-line warning naming the OPENBLAS_CORETYPE to set; NULL otherwise
 * (another BLAS, another kernel set, no AVX2, no /proc/cpuinfo).  The string is static.  The
 * backend's describe() appends it as a "warning: " line. */
const char *poa_cpu_blas_core_warning(void);

/* One line naming the kernels the CPU ops use now, e.g. "gemm avx512, attention avx512, gelu
 * avx512, blas SkylakeX" (POA_CPU_GEMM=blas / POA_CPU_ATTN=blas switch the first two to OpenBLAS,
 * POA_CPU_GELU=libm the third to libmvec's erff), written into buf (n bytes). */
void poa_cpu_describe_kernels(char *buf, size_t n);

#endif
