/* bf16.h — bfloat16 ↔ float on the host (tests, uploads of activations, checkpoints of
 * compute copies).  bfloat16 is the upper half of an IEEE float: 8 exponent bits, 7 mantissa
 * bits.  Conversion to bf16 rounds to nearest, ties to even, as CUDA's __float2bfloat16 does;
 * NaN stays a (quiet) NaN, ±Inf stays ±Inf, values beyond the largest bf16 round to ±Inf.   */
#ifndef POA_COMMON_BF16_H
#define POA_COMMON_BF16_H

#include <stdint.h>
#include <string.h>

static inline uint16_t poa_bf16_from_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t) ((u >> 16) | 0x0040u); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even on the dropped 16 bits */
    return (uint16_t) (u >> 16);
}

static inline float poa_f32_from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t) h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* x rounded to the nearest bf16 value, as a float. */
static inline float poa_round_bf16(float x)
{
    return poa_f32_from_bf16(poa_bf16_from_f32(x));
}

#endif
