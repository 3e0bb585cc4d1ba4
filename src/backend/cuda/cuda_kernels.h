/* cuda_kernels.h — plain C launchers for the CUDA kernels (no CUDA types in this header).
 * Every launcher returns 0 on success or a CUDA error code; `stream` is a cudaStream_t. */
#ifndef POA_BACKEND_CUDA_KERNELS_H
#define POA_BACKEND_CUDA_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

int poa_cuda_device_count(void);
const char *poa_cuda_error_string(int code);
int poa_cuda_axpy(float *y, float a, const float *x, size_t n, void *stream);
int poa_cuda_scale(float *x, float a, size_t n, void *stream);
/* Σ x² into a double on the host (synchronises the stream). */
int poa_cuda_sum_squares(const float *x, size_t n, double *out, void *stream);

#ifdef __cplusplus
}
#endif
#endif
