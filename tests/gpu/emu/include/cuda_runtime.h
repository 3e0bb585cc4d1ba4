// cuda_runtime.h — the CPU emulator's device side (tests/gpu/emu/README.md), C++ only: what
// poa's kernels use of CUDA C++ — the qualifiers, the built-in index variables, __syncthreads,
// __syncwarp, __shfl_xor_sync, the _rn intrinsics, dim3, uint4 — and the launch, which the
// emulator's nvcc writes as emu_launch(grid, block, smem, stream, kernel, args...).
//
// Every thread of a block is a fiber; the blocks of a grid run one after another on the calling
// thread.  Barriers count threads that have returned as arrived (as the GPU does); a shuffle in a
// warp with a returned lane, threads waiting at different barriers, a launch outside the device
// limits and dynamic shared memory above the kernel's limit are reported.  Dynamic shared memory
// is filled with 0xff bytes (NaN in fp32 and bf16) before each block, so that reads of unwritten
// shared memory show in the results.
#ifndef POA_EMU_CUDA_RUNTIME_H
#define POA_EMU_CUDA_RUNTIME_H
#include "cuda_bf16.h"
#include "cuda_runtime_api.h"
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <math.h>
#include <tuple>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct uint4 {
    unsigned x, y, z, w;
};
struct float4 {
    float x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d)
{
    return uint4{a, b, c, d};
}
inline float4 make_float4(float a, float b, float c, float d)
{
    return float4{a, b, c, d};
}

// Plain globals, not thread_local: kernels run on one host thread at a time (every launch runs
// to completion before it returns), and a thread_local of a class type costs a call per use.
extern dim3 emu_tid, emu_bid;
extern unsigned emu_linear; // linear thread index in the block
extern dim3 emu_bdim, emu_gdim;
#define threadIdx emu_tid
#define blockIdx  emu_bid
#define blockDim  emu_bdim
#define gridDim   emu_gdim
#define warpSize  32

void emu_syncthreads();
void emu_syncwarp();
void emu_shfl_exchange(uint64_t mine, uint64_t *out, int partner);
unsigned char *emu_smem_ptr();
size_t emu_smem_size();
void emu_error(const char *fmt, ...);

inline void __syncthreads()
{
    emu_syncthreads();
}
inline void __syncwarp(unsigned = 0xffffffffu)
{
    emu_syncwarp();
}
template <typename V> inline V emu_shfl_xor(V v, int o)
{
    uint64_t mine = 0, got = 0;
    memcpy(&mine, &v, sizeof v);
    emu_shfl_exchange(mine, &got, (int) ((emu_linear & 31u) ^ (unsigned) o));
    V r;
    memcpy(&r, &got, sizeof r);
    return r;
}
inline float __shfl_xor_sync(unsigned, float v, int o)
{
    return emu_shfl_xor(v, o);
}
inline double __shfl_xor_sync(unsigned, double v, int o)
{
    return emu_shfl_xor(v, o);
}
inline int __shfl_xor_sync(unsigned, int v, int o)
{
    return emu_shfl_xor(v, o);
}
inline unsigned __shfl_xor_sync(unsigned, unsigned v, int o)
{
    return emu_shfl_xor(v, o);
}

// round-to-nearest intrinsics: plain IEEE operations (the emulator is built with
// -ffp-contract=off, so nothing is fused)
inline float __fmul_rn(float a, float b)
{
    return a * b;
}
inline float __fadd_rn(float a, float b)
{
    return a + b;
}
inline float __fsub_rn(float a, float b)
{
    return a - b;
}
inline float __fdiv_rn(float a, float b)
{
    return a / b;
}
inline float __fsqrt_rn(float a)
{
    return sqrtf(a);
}
inline double __dmul_rn(double a, double b)
{
    return a * b;
}
inline double __dadd_rn(double a, double b)
{
    return a + b;
}
inline double __dsub_rn(double a, double b)
{
    return a - b;
}
inline double __ddiv_rn(double a, double b)
{
    return a / b;
}
inline float __expf(float x)
{
    return expf(x);
}
inline float __double2float_rn(double x)
{
    return (float) x;
}

// the address's offset in the block's shared memory window
inline size_t __cvta_generic_to_shared(const void *p)
{
    return (size_t) ((const unsigned char *) p - emu_smem_ptr());
}

[[noreturn]] inline void __trap()
{
    fprintf(stderr, "emu: __trap() in block (%u,%u,%u) thread (%u,%u,%u)\n", emu_bid.x, emu_bid.y,
            emu_bid.z, emu_tid.x, emu_tid.y, emu_tid.z);
    abort();
}
inline int min(int a, int b)
{
    return a < b ? a : b;
}
inline int max(int a, int b)
{
    return a > b ? a : b;
}
inline unsigned min(unsigned a, unsigned b)
{
    return a < b ? a : b;
}
inline unsigned max(unsigned a, unsigned b)
{
    return a > b ? a : b;
}
inline long long min(long long a, long long b)
{
    return a < b ? a : b;
}
inline long long max(long long a, long long b)
{
    return a > b ? a : b;
}
inline size_t min(size_t a, size_t b)
{
    return a < b ? a : b;
}
inline size_t max(size_t a, size_t b)
{
    return a > b ? a : b;
}
inline float min(float a, float b)
{
    return fminf(a, b);
}
inline float max(float a, float b)
{
    return fmaxf(a, b);
}
inline double min(double a, double b)
{
    return fmin(a, b);
}
inline double max(double a, double b)
{
    return fmax(a, b);
}

inline dim3 emu_dim3(dim3 d)
{
    return d;
}
inline dim3 emu_dim3(unsigned long long n)
{
    return dim3((unsigned) n);
}

struct emu_launch_cfg {
    dim3 grid, block;
    size_t smem;
};
// Checks the configuration (cudaGetLastError reports a bad one) and runs every block: body(i)
// runs thread i's copy of the kernel.
void emu_run_grid(const emu_launch_cfg &c, const void *kernel, void (*body)(void *), void *ctx);

template <class K, class... A> struct emu_call {
    K kernel;
    std::tuple<A...> args;
};
template <class K, class... A> void emu_call_body(void *p)
{
    auto *c = static_cast<emu_call<K, A...> *>(p);
    std::apply([&](auto &...a) { c->kernel(a...); }, c->args);
}
template <class G, class B, class K, class... A>
void emu_launch(G grid, B block, size_t smem, cudaStream_t, K kernel, A... args)
{
    emu_launch_cfg cfg{emu_dim3(grid), emu_dim3(block), smem};
    emu_call<K, A...> call{kernel, std::tuple<A...>(args...)};
    emu_run_grid(cfg, (const void *) kernel, &emu_call_body<K, A...>, &call);
}
#endif
