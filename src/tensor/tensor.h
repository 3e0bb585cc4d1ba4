/* tensor.h — views of backend memory.
 *
 * Model code holds backend pointers (host memory on the CPU backend, device memory on CUDA)
 * and never dereferences them; it only forms views and passes them to backend ops.
 * All matrices are row-major: element (r, c) is at p[r * ld + c].
 */
#ifndef POA_TENSOR_TENSOR_H
#define POA_TENSOR_TENSOR_H

#include <stddef.h>

/* A row-major matrix view: rows × cols with leading dimension ld (ld ≥ cols). */
typedef struct poa_mat {
    float *p;
    int rows, cols, ld;
} poa_mat;

static inline poa_mat poa_mat_make(float *p, int rows, int cols, int ld)
{
    poa_mat m = {p, rows, cols, ld};
    return m;
}
/* Leading `rows` × `cols` block of m (an elastic slice is just this). */
static inline poa_mat poa_mat_slice(poa_mat m, int row0, int col0, int rows, int cols)
{
    poa_mat s = {m.p + (size_t) row0 * m.ld + col0, rows, cols, m.ld};
    return s;
}

#endif
