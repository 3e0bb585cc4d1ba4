/* cuda_sizes.h — sizes of the buffers the CUDA backend's callers provide, computable without a
 * device and without CUDA: the attention and KoLeo entries (cuda_attention.cu, cuda_loss.cu)
 * return these, and so does
 * the planning backend of a build or a machine without CUDA (backend.c, poa_backend_planner).
 * One definition, so a plan made on a login node is the size the GPU run asks for.  No CUDA
 * types; C and C++. */
#ifndef POA_BACKEND_CUDA_SIZES_H
#define POA_BACKEND_CUDA_SIZES_H

#include "backend/backend.h"

#include <stddef.h>
#include <stdint.h>

/* One fp32 value per (image, head, query row); negative counts as 0. */
static inline size_t poa_cuda_attention_row_values_bytes(int B, int T, int H)
{
    return (size_t) (B > 0 ? B : 0) * (size_t) (H > 0 ? H : 0) * (size_t) (T > 0 ? T : 0) *
           sizeof(float);
}

/* attention_saved_bytes: two statistics per query row, the maximum m of its scaled scores and
 * 1/l, l = Σ_j exp(s_ij − m) ([B, H, T] pairs; backward recomputes the probabilities from them:
 * cuda_attention.cu, "What is saved"). */
static inline size_t poa_cuda_attention_saved_size(const poa_backend *be, int B, int T, int H,
                                                   int Dh)
{
    (void) be, (void) Dh;
    return 2 * poa_cuda_attention_row_values_bytes(B, T, H);
}

/* attention_scratch_bytes: backward's D_i = Σ_j P_ij dP_ij [B, H, T] (forward needs none). */
static inline size_t poa_cuda_attention_scratch_size(const poa_backend *be, int B, int T, int H,
                                                     int Dh)
{
    (void) be, (void) Dh;
    return poa_cuda_attention_row_values_bytes(B, T, H);
}

/* koleo_scratch_bytes (cuda_loss.cu): the sections of the caller's KoLeo scratch for n rows of
 * c features, each 256-byte aligned from the scratch's start: per-row losses −log(d_i + eps)
 * (double), the normalised rows and their gradient [n, c] (fp32), the norms, the coefficients
 * c_i, the nearest neighbours, and the inverse neighbour lists (n + 1 start offsets, then the
 * rows i with nn(i) = r in increasing order). */
typedef struct poa_cuda_koleo_layout {
    size_t rowloss, x, dx, norm, coef, nn, inv_start, inv_idx, total;
} poa_cuda_koleo_layout;

static inline size_t poa_cuda_koleo_take(size_t *at, size_t bytes)
{
    const size_t offset = *at;
    *at += (bytes + 255) / 256 * 256;
    return offset;
}

static inline poa_cuda_koleo_layout poa_cuda_koleo_layout_of(int n, int c)
{
    poa_cuda_koleo_layout L;
    size_t at = 0;
    const size_t nz = (size_t) (n > 0 ? n : 0), nc = nz * (size_t) (c > 0 ? c : 0);
    L.rowloss = poa_cuda_koleo_take(&at, sizeof(double) * nz);
    L.x = poa_cuda_koleo_take(&at, sizeof(float) * nc);
    L.dx = poa_cuda_koleo_take(&at, sizeof(float) * nc);
    L.norm = poa_cuda_koleo_take(&at, sizeof(float) * nz);
    L.coef = poa_cuda_koleo_take(&at, sizeof(float) * nz);
    L.nn = poa_cuda_koleo_take(&at, sizeof(int32_t) * nz);
    L.inv_start = poa_cuda_koleo_take(&at, sizeof(int32_t) * (nz + 1));
    L.inv_idx = poa_cuda_koleo_take(&at, sizeof(int32_t) * nz);
    L.total = at;
    return L;
}

static inline size_t poa_cuda_koleo_scratch_size(const poa_backend *be, int n, int c)
{
    (void) be;
    return poa_cuda_koleo_layout_of(n, c).total;
}

#endif
