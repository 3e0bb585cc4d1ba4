// mma.h — the CPU emulator's nvcuda::wmma (tests/gpu/emu/README.md), m16n16k16 with fp32
// accumulators: every lane holds the whole 16×16 A and B matrices (a load reads all of it, which
// is stricter than the hardware about a missing __syncwarp before it); of an accumulator a lane
// computes and stores only its own elements (element % 32 == lane), like the hardware's
// disjoint fragments.  Pointers
// must be 32-byte aligned and inside the block's shared memory, as poa's kernels keep them.
#ifndef POA_EMU_MMA_H
#define POA_EMU_MMA_H
#include "cuda_runtime.h"
#include <type_traits>
namespace nvcuda
{
namespace wmma
{
struct matrix_a {
};
struct matrix_b {
};
struct accumulator {
};
struct row_major {
};
struct col_major {
};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    float x[256];
};
inline float emu_f(float v)
{
    return v;
}
inline float emu_f(__nv_bfloat16 v)
{
    return __bfloat162float(v);
}
inline void emu_check(const void *p, unsigned ldm, size_t es)
{
    if (((uintptr_t) p & 31u) || (ldm * es) % 16) {
        fprintf(stderr, "wmma: misaligned pointer %p or ldm %u\n", p, ldm);
        abort();
    }
    const unsigned char *c = (const unsigned char *) p;
    if (c < emu_smem_ptr() || c >= emu_smem_ptr() + emu_smem_size()) {
        fprintf(stderr, "wmma: pointer outside shared memory\n");
        abort();
    }
}
template <class Use, class T, class L>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, L> &f, const T *p, unsigned ldm)
{
    emu_check(p, ldm, sizeof(T));
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            f.x[i * 16 + j] =
                std::is_same<L, row_major>::value ? emu_f(p[i * ldm + j]) : emu_f(p[j * ldm + i]);
}
// Each lane computes only the accumulator elements it owns (element % 32 == lane, those its
// store writes): the others are never read, since poa's kernels touch accumulators only through
// fill, mma and store.  Saves the 31 copies of every product the other lanes would compute.
template <class T, class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
                     const fragment<matrix_a, 16, 16, 16, T, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, T, LB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c)
{
    const int lane = (int) (emu_linear & 31u);
    float t[8];
    for (int r = 0; r < 8; r++) {
        const int idx = lane + 32 * r, i = idx / 16, j = idx % 16;
        float s = c.x[idx];
        for (int k = 0; k < 16; k++) s = fmaf(a.x[i * 16 + k], b.x[k * 16 + j], s);
        t[r] = s;
    }
    for (int r = 0; r < 8; r++) d.x[lane + 32 * r] = t[r];
}
inline void fill_fragment(fragment<accumulator, 16, 16, 16, float> &f, float v)
{
    for (int i = 0; i < 256; i++) f.x[i] = v;
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f,
                              unsigned ldm, layout_t l)
{
    emu_check(p, ldm, 4);
    if (l != mem_row_major) abort();
    for (int idx = (int) (emu_linear & 31u); idx < 256; idx += 32)
        p[(idx / 16) * ldm + idx % 16] = f.x[idx];
}
} // namespace wmma
} // namespace nvcuda
#endif
