/* cpu_simd.h — run-time ISA dispatch for the CPU backend's elementwise kernels.
 *
 * The library is built for the baseline x86-64 (SSE2) so that one binary runs on every node;
 * POA_CPU_CLONES compiles a kernel three times — AVX-512F, AVX2 and baseline — and lets the
 * dynamic loader pick one from the CPU's flags (GCC target_clones, an ifunc).  The inner loops
 * are plain `omp simd` loops, so every clone computes the same expression in the same order;
 * only the vector width (and with it the split of a row reduction over lanes) differs.
 *
 * Cloned kernels must not contain OpenMP parallel regions: GCC outlines a region's body into
 * a separate function before cloning, which would then run baseline code.  The ops therefore
 * fork in the op function and call a cloned kernel on each thread's share (poa_cpu_share).
 *
 * Without GCC on x86-64 glibc (clang, other architectures, other C libraries, sanitizers that
 * do not support ifuncs) the macro is empty and the kernels are compiled once for the
 * target the compiler was given.
 */
#ifndef POA_BACKEND_CPU_SIMD_H
#define POA_BACKEND_CPU_SIMD_H

#include <math.h> /* first: defines __GLIBC__ (features.h) for the tests below */
#include <omp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__) &&       \
    !defined(__SANITIZE_ADDRESS__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define POA_CPU_CLONES      __attribute__((target_clones("avx512f", "avx2", "default")))
#define POA_CPU_CLONES_AVX2 __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef POA_CPU_CLONES
#define POA_CPU_CLONES
#define POA_CPU_CLONES_AVX2
#endif

/* glibc's libmvec (linked through libm.so's AS_NEEDED) has SSE (4 lanes), AVX2 (8) and
 * AVX-512 (16) versions of erff (since 2.35) and expf (since 2.22), accurate to a few ulp:
 * declaring the functions `simd` lets GCC call the variant of the clone's ISA from `omp simd`
 * loops (_ZGVbN4v_erff, _ZGVdN8v_erff, _ZGVeN16v_erff), as <math.h> does under -ffast-math.
 * The scalar erff costs ~15 ns per element, which made GELU a tenth of the MLP's time.
 *
 * POA_CPU_CLONES_AVX2 (no AVX-512 clone) is for loops that call erff: glibc 2.36's 16-lane
 * _ZGVeN16v_erff saturates to ±1 from |x| ≈ 3.65 on (absolute error up to 2.4e-7, measured
 * against double erf over [−7, 7] in 1e-4 steps), while the 4- and 8-lane versions stay
 * within 7.1e-8; GELU's 1 + erf(x/√2) for x ≪ 0 turns that into the whole result (the op test
 * test_gelu checks it to 2e-7).  The 16-lane erff was no faster either (1.35 vs 1.17 ns per
 * element; SSE: 2.85).  expf's three variants are all within 2.5e-7 relative.
 *
 * Only CPUs without AVX-512F (or POA_CPU_GELU=libm) still run GELU through erff.  Even with the
 * 8-lane erff, 1 + erf(x/√2) is accurate only in absolute terms: GELU(−4.2) comes out 4e-4 off
 * relative, GELU(−5) 6 %, and from x ≈ −5.6 on it is 0.  The AVX-512F CPUs use
 * cpu_gelu_avx512.c instead: erfc-based, within 6e-7 relative everywhere, ~2× faster. */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__GLIBC_PREREQ) && !defined(__clang__)
#if __GLIBC_PREREQ(2, 35)
__attribute__((simd("notinbranch"))) float erff(float);
#endif
#if __GLIBC_PREREQ(2, 22)
__attribute__((simd("notinbranch"))) float expf(float);
#endif
#endif

/* Helpers called from cloned kernels must be inlined into each clone: an out-of-line static
 * helper is compiled once, for the baseline, and a call into SSE code from AVX-512 code
 * runs it at SSE width (LayerNorm forward ran 2× slower than unvectorised until its row sums
 * were inlined). */
#if defined(__GNUC__)
#define POA_CPU_INLINE static inline __attribute__((always_inline))
#else
#define POA_CPU_INLINE static inline
#endif

/* 1 if the environment variable var is set to value: the overrides that force a fallback kernel
 * (POA_CPU_GEMM=blas, POA_CPU_ATTN=blas, POA_CPU_GELU=libm), read on every call so that a test
 * can switch. */
static inline int poa_cpu_env_forces(const char *var, const char *value)
{
    const char *e = getenv(var);
    return e && strcmp(e, value) == 0;
}

/* This thread's share [*lo, *hi) of n items in a parallel region (static schedule, whole
 * multiples of `align` items per thread so that the vector loops of each share stay full);
 * outside a parallel region the whole range. */
static inline void poa_cpu_share(size_t n, size_t align, size_t *lo, size_t *hi)
{
    const size_t nt = (size_t) omp_get_num_threads(), t = (size_t) omp_get_thread_num();
    size_t step = (n + nt - 1) / nt;
    step = (step + align - 1) / align * align;
    const size_t a = t * step, b = a + step;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}

#endif
