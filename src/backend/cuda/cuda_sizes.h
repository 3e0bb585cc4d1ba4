/* cuda_sizes.h — sizes of the buffers the CUDA backend's callers provide, computable without a
 * device and without CUDA: the attention entries (cuda_attention.cu) return these, and so does
 * the planning backend of a build or a machine without CUDA (backend.c, poa_backend_planner).
 * One definition, so a plan made on a login node is the size the GPU run asks for.  No CUDA
 * types; C and C++. */
#ifndef POA_BACKEND_CUDA_SIZES_H
#define POA_BACKEND_CUDA_SIZES_H

#include "backend/backend.h"

#include <stddef.h>

/* One fp32 value per (image, head, query row); negative counts as 0. */
static inline size_t poa_cuda_attention_row_values_bytes(int B, int T, int H)
{
    return (size_t) (B > 0 ? B : 0) * (size_t) (H > 0 ? H : 0) * (size_t) (T > 0 ? T : 0) *
           sizeof(float);
}

/* attention_saved_bytes: the rows' log-sum-exps LSE [B, H, T] (backward recomputes the
 * probabilities from them). */
static inline size_t poa_cuda_attention_saved_size(const poa_backend *be, int B, int T, int H,
                                                   int Dh)
{
    (void) be, (void) Dh;
    return poa_cuda_attention_row_values_bytes(B, T, H);
}

/* attention_scratch_bytes: backward's D_i = Σ_j P_ij dP_ij [B, H, T] (forward needs none). */
static inline size_t poa_cuda_attention_scratch_size(const poa_backend *be, int B, int T, int H,
                                                     int Dh)
{
    (void) be, (void) Dh;
    return poa_cuda_attention_row_values_bytes(B, T, H);
}

#endif
