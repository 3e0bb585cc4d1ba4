/* cuda_backend.h — creating the CUDA backend (backend/backend.c's factory calls these; model/ and
 * train/ go through poa_backend_create).  No CUDA types here.  src/backend/cuda/README.md
 * describes the backend. */
#ifndef POA_BACKEND_CUDA_H
#define POA_BACKEND_CUDA_H

#include "backend/backend.h"

#include <stddef.h>

/* The backend on opts->device, computing in opts->act_dtype (fp32 or bf16).  NULL with a
 * message in errbuf when no device is visible, the index is out of range, the device cannot run
 * the kernels this build holds, or a library cannot be initialised. */
poa_backend *poa_cuda_backend_create(const poa_backend_opts *opts, char *errbuf, size_t errlen);
/* Visible CUDA devices; 0 without a driver or without a GPU (never fatal). */
int poa_cuda_devices(void);
/* The three tables, without a device (for poa_backend_missing_ops_of). */
void poa_cuda_backend_tables(const poa_backend_iface **iface, const poa_nn_ops **nn,
                             const poa_train_ops **train);

#endif
