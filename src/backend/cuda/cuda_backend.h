/* cuda_backend.h — creating the CUDA backend (cuBLAS GEMMs, CUDA kernels).  No CUDA types here.
 * Seen by the backend factory (backend.c) and the GPU tests; model/ and train/ see backend.h
 * alone. */
#ifndef POA_BACKEND_CUDA_H
#define POA_BACKEND_CUDA_H

#include "backend/backend.h"

#include <stddef.h>

/* The backend on GPU opts->device in compute dtype opts->act_dtype; NULL (message in errbuf)
 * when no CUDA device is usable. */
poa_backend *poa_cuda_backend_create(const poa_backend_opts *opts, char *errbuf, size_t errlen);
/* Number of visible CUDA devices (0 without a driver or device). */
int poa_cuda_devices(void);
/* The three tables, without a device (for poa_backend_missing_ops_of). */
void poa_cuda_backend_tables(const poa_backend_iface **iface, const poa_nn_ops **nn,
                             const poa_train_ops **train);

#endif
