/* cuda_backend.h — the CUDA backend (cuBLAS GEMMs, CUDA kernels).  No CUDA types here. */
#ifndef POA_BACKEND_CUDA_H
#define POA_BACKEND_CUDA_H

#include "backend/backend.h"

#include <stddef.h>

/* NULL (message in errbuf) when no CUDA device is usable. */
poa_backend *poa_cuda_backend_create(char *errbuf, size_t errlen);
void poa_cuda_backend_destroy(poa_backend *be);
/* The backend's compute stream (a cudaStream_t), for poa_comm_set_compute_stream(): NCCL
 * collectives must be ordered after the backend's kernels (docs/architecture.md §7.3). */
void *poa_cuda_backend_stream(poa_backend *be);
/* Number of visible CUDA devices (0 without a driver or device). */
int poa_cuda_devices(void);
/* The backend's op tables (for poa_backend_missing_ops without a device). */
void poa_cuda_backend_ops(const poa_nn_ops **nn, const poa_train_ops **train);

#endif
